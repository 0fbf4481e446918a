//! Writing the answer to an AdmissionReview: allowed or denied with a message, with an optional JSON
//! Patch and warnings, serialised straight from borrowed parts.

use std::sync::Arc;

use json_patch::Patch;
use serde::Serialize;

use super::review::{API_VERSION, AdmissionRequest, KIND};

/// The webhook's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AdmissionAnswer {
    uid: String,
    allowed: bool,
    message: Option<String>,
    patch: Option<AnswerPatch>,
    warnings: Vec<String>,
}

/// A JSON Patch, or one already serialised and base64-encoded (shared from the render cache).
#[derive(Debug, Clone, PartialEq)]
enum AnswerPatch {
    Operations(Patch),
    Encoded(Arc<str>),
}

/// The AdmissionReview answer, serialised straight from borrowed parts (no intermediate JSON tree).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewBody<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseBody<'a> {
    uid: &'a str,
    allowed: bool,
    status: StatusBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// `{}` when allowed; code, reason and message when denied.
#[derive(Serialize)]
struct StatusBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl AdmissionAnswer {
    /// Allowed, unchanged.
    pub(crate) fn allow(request: &AdmissionRequest) -> Self {
        Self {
            uid: request.uid.clone(),
            allowed: true,
            message: None,
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// Denied with `message`, which the user sees.
    #[must_use]
    pub(crate) fn deny(mut self, message: impl Into<String>) -> Self {
        self.allowed = false;
        self.message = Some(message.into());
        self
    }

    /// Allowed with `patch` applied.
    #[must_use]
    pub(crate) fn with_patch(mut self, patch: Patch) -> Self {
        self.patch = Some(AnswerPatch::Operations(patch));
        self
    }

    /// Allowed with a patch given as base64 of its JSON (the form [`Self::to_body`] writes).
    #[must_use]
    pub(crate) fn with_encoded_patch(mut self, base64_json_patch: Arc<str>) -> Self {
        self.patch = Some(AnswerPatch::Encoded(base64_json_patch));
        self
    }

    /// Warnings shown to the client (kubectl prints them).
    #[must_use]
    pub(crate) fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// Whether the request is admitted.
    pub(crate) fn allowed(&self) -> bool {
        self.allowed
    }

    /// The AdmissionReview the API server expects. The patch is a base64 string, the JSON form of a
    /// Go `[]byte`.
    pub(crate) fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let encoded = match &self.patch {
            Some(AnswerPatch::Operations(patch)) => {
                Some(std::borrow::Cow::Owned(crate::inject::encode_patch(patch)?))
            }
            Some(AnswerPatch::Encoded(encoded)) => Some(std::borrow::Cow::Borrowed(&**encoded)),
            None => None,
        };
        let message = self.message.as_deref();
        let body = ReviewBody {
            api_version: API_VERSION,
            kind: KIND,
            response: ResponseBody {
                uid: &self.uid,
                allowed: self.allowed,
                status: StatusBody {
                    code: message.map(|_| 403),
                    reason: message.map(|_| "Forbidden"),
                    message,
                },
                patch_type: encoded.as_ref().map(|_| "JSONPatch"),
                patch: encoded.as_deref(),
                warnings: &self.warnings,
            },
        };
        let mut out = Vec::with_capacity(256 + encoded.as_ref().map_or(0, |e| e.len()));
        serde_json::to_writer(&mut out, &body)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::{Value, json};

    use super::*;
    use crate::admission::review::parse_request;

    fn request() -> AdmissionRequest {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
            "operation":"CREATE","object":null,"kind":{"group":"","version":"v1","kind":"Pod"}}}"#;
        parse_request(body).unwrap()
    }

    #[test]
    fn a_denial_carries_403_and_the_message() {
        let body = AdmissionAnswer::allow(&request()).deny("no").to_body().unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            answer,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                "uid": "u1", "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "no"}}})
        );
    }

    #[test]
    fn a_patch_is_base64_json_patch_and_warnings_are_listed() {
        let patch: Patch = serde_json::from_value(json!([{"op": "add", "path": "/a", "value": 1}])).unwrap();
        let answer = AdmissionAnswer::allow(&request())
            .with_patch(patch)
            .with_warnings(vec!["w".into()]);
        let answer: Value = serde_json::from_slice(&answer.to_body().unwrap()).unwrap();
        let response = &answer["response"];
        assert_eq!(response["patchType"], "JSONPatch");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            r#"[{"op":"add","path":"/a","value":1}]"#
        );
        assert_eq!(response["warnings"], json!(["w"]));
    }

    #[test]
    fn an_encoded_patch_is_written_as_given() {
        let answer = AdmissionAnswer::allow(&request()).with_encoded_patch("W10=".into());
        let answer: Value = serde_json::from_slice(&answer.to_body().unwrap()).unwrap();
        assert_eq!(
            answer["response"],
            json!({"uid": "u1", "allowed": true, "status": {}, "patchType": "JSONPatch", "patch": "W10="})
        );
    }
}
