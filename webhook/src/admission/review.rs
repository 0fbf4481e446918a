//! Reading an AdmissionReview body.
//!
//! The body is parsed once, straight into the fields the webhook uses with the object kept as JSON:
//! no typed `ObjectMeta` round trip on the hot path. Anything that is not a v1 AdmissionReview with a
//! request is a client error (HTTP 400 with the reason), never a panic and never a 500.

use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::Value;

pub(super) const API_VERSION: &str = "admission.k8s.io/v1";
pub(super) const KIND: &str = "AdmissionReview";

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MalformedReview {
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
pub(crate) struct AdmissionRequest {
    /// Echoed in the response.
    pub(crate) uid: String,
    /// The reviewed object's kind (`request.kind.kind`), for logs only; read tolerantly, so a review
    /// is never refused for it.
    #[serde(default, deserialize_with = "kind_name")]
    pub(crate) kind: String,
    /// Object name; empty on CREATE with `generateName`.
    #[serde(default)]
    pub(crate) name: String,
    /// Namespace of the request.
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub(crate) operation: Operation,
    /// The object, `None` for DELETE; without `metadata.managedFields`, which no decision reads.
    #[serde(default, deserialize_with = "super::review_object::without_managed_fields")]
    pub(crate) object: Option<Value>,
    /// The object before an UPDATE (and the deleted one on DELETE); without managedFields as well.
    #[serde(default, deserialize_with = "super::review_object::without_managed_fields")]
    pub(crate) old_object: Option<Value>,
    /// Who sent the request (user, groups, uid, extra); read by the credentials Secret access check.
    #[serde(default)]
    pub(crate) user_info: Option<k8s_openapi::api::authentication::v1::UserInfo>,
}

/// [`AdmissionRequest`] of a pod review: `object` (but not `oldObject`, which no pod decision reads)
/// keeps only what injection reads, see [`super::review_pod`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodAdmissionRequest {
    uid: String,
    #[serde(default, deserialize_with = "kind_name")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    #[serde(default, deserialize_with = "super::review_pod::pod_for_injection")]
    object: Option<Value>,
    #[serde(default, deserialize_with = "super::review_object::without_managed_fields")]
    old_object: Option<Value>,
}

impl From<PodAdmissionRequest> for AdmissionRequest {
    fn from(r: PodAdmissionRequest) -> Self {
        Self {
            uid: r.uid,
            kind: r.kind,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            object: r.object,
            old_object: r.old_object,
            user_info: None,
        }
    }
}

/// `request.kind.kind`, or empty when it is missing or not a string.
fn kind_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let kind = Option::<Value>::deserialize(deserializer)?;
    Ok(kind
        .as_ref()
        .and_then(|k| k.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Parses `body` into the request it carries.
pub(crate) fn parse_request(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
    parse::<AdmissionRequest>(body)
}

/// [`parse_request`] for `/mutate-pods`: the pod's `spec` is reduced to what injection reads.
pub(crate) fn parse_pod_request(body: &[u8]) -> Result<AdmissionRequest, MalformedReview> {
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

#[cfg(test)]
mod tests {
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
    fn the_kind_is_read_tolerantly() {
        assert_eq!(request().kind, "Pod");
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
            "operation":"CREATE","kind":"Pod"}}"#;
        for parse in [parse_request, parse_pod_request] {
            assert_eq!(parse(body).unwrap().kind, "");
        }
    }

    #[test]
    fn a_null_object_is_no_object() {
        assert_eq!(request().object, None);
    }
}
