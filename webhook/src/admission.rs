//! Reading an AdmissionReview body and writing the answer.
//!
//! The body is parsed once, straight into the fields the webhook uses with the object kept as JSON:
//! no typed `ObjectMeta` round trip on the hot path. Anything that is not a v1 AdmissionReview with a
//! request is a client error (HTTP 400 with the reason), never a panic and never a 500.

use std::sync::Arc;

use json_patch::Patch;
use kube::core::admission::Operation;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub enum MalformedReview {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}; send admission.k8s.io/v1 AdmissionReview JSON")]
    NotAReview(#[from] serde_json::Error),
    /// Not UTF-8, so not JSON (RFC 8259).
    #[error("the body is not UTF-8 ({0}); send admission.k8s.io/v1 AdmissionReview JSON")]
    NotUtf8(#[from] std::str::Utf8Error),
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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review<Request> {
    api_version: String,
    kind: String,
    request: Option<Request>,
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
    /// The object, `None` for DELETE; without `metadata.managedFields`, which no decision reads.
    #[serde(default, deserialize_with = "crate::review_object::without_managed_fields")]
    pub object: Option<Value>,
    /// The object before an UPDATE (and the deleted one on DELETE); without managedFields as well.
    #[serde(default, deserialize_with = "crate::review_object::without_managed_fields")]
    pub old_object: Option<Value>,
    /// No persistence; the webhook has no side effects, so it changes nothing here.
    #[serde(default)]
    pub dry_run: bool,
    /// Who sent the request (user, groups, uid, extra); read by the credentials Secret access check.
    #[serde(default)]
    pub user_info: Option<k8s_openapi::api::authentication::v1::UserInfo>,
}

/// [`AdmissionRequest`] of a pod review: `object` (but not `oldObject`, which no pod decision reads)
/// keeps only what injection reads, see [`crate::review_pod`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodAdmissionRequest {
    uid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    #[serde(default, deserialize_with = "crate::review_pod::pod_for_injection")]
    object: Option<Value>,
    #[serde(default, deserialize_with = "crate::review_object::without_managed_fields")]
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: bool,
}

impl From<PodAdmissionRequest> for AdmissionRequest {
    fn from(r: PodAdmissionRequest) -> Self {
        Self {
            uid: r.uid,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            object: r.object,
            old_object: r.old_object,
            dry_run: r.dry_run,
            user_info: None,
        }
    }
}

/// Parses `body` into the request it carries.
pub fn parse_request(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
    parse::<AdmissionRequest>(body)
}

/// [`parse_request`] for `/mutate-pods`: the pod's `spec` is reduced to what injection reads.
pub fn parse_pod_request(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
    parse::<PodAdmissionRequest>(body).map(AdmissionRequest::from)
}

fn parse<Request: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Request, MalformedReview> {
    // serde_json skips the members no decision reads without checking their UTF-8, so the whole body
    // is checked first: a body that is not JSON is refused whatever part of it is broken.
    let review: Review<Request> = serde_json::from_str(std::str::from_utf8(body)?)?;
    if review.api_version != API_VERSION || review.kind != KIND {
        return Err(MalformedReview::WrongType {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    // `object` is an object or `None` by construction (see `review_object`).
    review.request.ok_or(MalformedReview::NoRequest)
}

/// The webhook's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionAnswer {
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
        self.patch = Some(AnswerPatch::Operations(patch));
        self
    }

    /// Allowed with a patch given as base64 of its JSON (the form [`Self::to_body`] writes).
    #[must_use]
    pub fn with_encoded_patch(mut self, base64_json_patch: Arc<str>) -> Self {
        self.patch = Some(AnswerPatch::Encoded(base64_json_patch));
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
    use serde_json::json;

    use super::*;

    fn request() -> AdmissionRequest {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
            "operation":"CREATE","object":null,"kind":{"group":"","version":"v1","kind":"Pod"}}}"#;
        parse_request(body).unwrap()
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed_even_in_members_no_decision_reads() {
        let body = |ignored: &[u8]| {
            let mut body =
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","#
                    .to_vec();
            body.extend_from_slice(br#""operation":"CREATE","userInfo":{"username":""#);
            body.extend_from_slice(ignored);
            body.extend_from_slice(
                br#""},"object":{"metadata":{},"spec":{"containers":[],"securityContext":{""#,
            );
            body.extend_from_slice(ignored);
            body.extend_from_slice(br#"":true}}}}}"#);
            body
        };
        assert!(parse_request(&body(b"ok")).is_ok());
        assert!(parse_pod_request(&body(b"ok")).is_ok());
        for parse in [parse_request, parse_pod_request] {
            let error = parse(&body(b"\xae\xae")).err().unwrap();
            assert!(matches!(error, MalformedReview::NotUtf8(_)), "{error}");
            assert!(error.to_string().starts_with("the body is not UTF-8"), "{error}");
        }
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
