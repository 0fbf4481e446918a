//! Reading an AdmissionReview body and writing the answer.
//!
//! The body is parsed once, straight into the fields the webhook uses with the object kept as JSON:
//! no typed `ObjectMeta` round trip on the hot path. Anything that is not a v1 AdmissionReview with a
//! request is a client error (HTTP 400 with the reason), never a panic and never a 500.

use base64::Engine;
use json_patch::Patch;
use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::{Map, Value, json};

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub enum MalformedReview {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}; send admission.k8s.io/v1 AdmissionReview JSON")]
    NotAReview(#[from] serde_json::Error),
    /// Wrong `apiVersion`/`kind`.
    #[error(
        "unsupported {api_version:?} {kind:?}; this webhook speaks admission.k8s.io/v1 AdmissionReview only \
         (set admissionReviewVersions: [v1])"
    )]
    WrongType {
        /// The `apiVersion` received.
        api_version: String,
        /// The `kind` received.
        kind: String,
    },
    /// No `request` member.
    #[error("the AdmissionReview has no request; the API server always sends one")]
    NoRequest,
    /// `request.object` is not an object.
    #[error("the body is not an AdmissionReview: request.object must be a JSON object")]
    ObjectNotAnObject,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: String,
    kind: String,
    request: Option<AdmissionRequest>,
}

/// The parts of an admission request the webhook uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// Object name; empty on CREATE with `generateName`.
    #[serde(default)]
    pub name: String,
    /// Namespace of the request.
    #[serde(default)]
    pub namespace: Option<String>,
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub operation: Operation,
    /// The object, `None` for DELETE.
    #[serde(default)]
    pub object: Option<Value>,
    /// The object before an UPDATE (and the deleted one on DELETE).
    #[serde(default)]
    pub old_object: Option<Value>,
    /// No persistence; the webhook has no side effects, so it changes nothing here.
    #[serde(default)]
    pub dry_run: bool,
}

/// Parses `body` into the request it carries.
pub fn parse_request(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
    let review: Review = serde_json::from_slice(body)?;
    if review.api_version != API_VERSION || review.kind != KIND {
        return Err(MalformedReview::WrongType {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let mut request = review.request.ok_or(MalformedReview::NoRequest)?;
    match &request.object {
        Some(Value::Null) => request.object = None,
        Some(Value::Object(_)) | None => {}
        Some(_) => return Err(MalformedReview::ObjectNotAnObject),
    }
    Ok(request)
}

/// The webhook's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionAnswer {
    uid: String,
    allowed: bool,
    message: Option<String>,
    patch: Option<Patch>,
    warnings: Vec<String>,
}

impl AdmissionAnswer {
    /// Allowed, unchanged.
    pub fn allow(request: &AdmissionRequest) -> Self {
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
    pub fn deny(mut self, message: impl Into<String>) -> Self {
        self.allowed = false;
        self.message = Some(message.into());
        self
    }

    /// Allowed with `patch` applied.
    #[must_use]
    pub fn with_patch(mut self, patch: Patch) -> Self {
        self.patch = Some(patch);
        self
    }

    /// Warnings shown to the client (kubectl prints them).
    #[must_use]
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// Whether the request is admitted.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The AdmissionReview the API server expects. The patch is a base64 string, the JSON form of a
    /// Go `[]byte`.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut response = Map::new();
        response.insert("uid".into(), json!(self.uid));
        response.insert("allowed".into(), json!(self.allowed));
        let status = match &self.message {
            Some(message) => json!({"code": 403, "reason": "Forbidden", "message": message}),
            None => json!({}),
        };
        response.insert("status".into(), status);
        if let Some(patch) = &self.patch {
            let encoded = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(patch)?);
            response.insert("patchType".into(), json!("JSONPatch"));
            response.insert("patch".into(), json!(encoded));
        }
        if !self.warnings.is_empty() {
            response.insert("warnings".into(), json!(self.warnings));
        }
        serde_json::to_vec(&json!({"apiVersion": API_VERSION, "kind": KIND, "response": response}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AdmissionRequest {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
            "operation":"CREATE","object":null,"kind":{"group":"","version":"v1","kind":"Pod"}}}"#;
        parse_request(body).unwrap()
    }

    #[test]
    fn a_null_object_is_no_object() {
        assert_eq!(request().object, None);
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
}
