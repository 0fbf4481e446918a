//! Reading an AdmissionReview body. Anything that is not a v1 AdmissionReview with a request is a client
//! error (HTTP 400 with the reason), never a panic and never a 500.

use base64::Engine;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

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
}

/// Parses `body` into the request it carries.
pub fn parse_request(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, MalformedReview> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    if review.types.api_version != "admission.k8s.io/v1" || review.types.kind != "AdmissionReview" {
        return Err(MalformedReview::WrongType {
            api_version: review.types.api_version,
            kind: review.types.kind,
        });
    }
    review.try_into().map_err(|_| MalformedReview::NoRequest)
}

/// The object of the request as JSON, `None` for DELETE and CONNECT.
pub fn object_json(
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Option<serde_json::Value>, serde_json::Error> {
    request.object.as_ref().map(serde_json::to_value).transpose()
}

/// The response serialised as the AdmissionReview the API server expects.
///
/// The patch is written as a base64 string, the canonical JSON form of a Go `[]byte`; kube would write
/// a JSON array of numbers, which the API server also accepts but which is four times larger and slower
/// to encode on every injected pod.
pub fn review_body(mut response: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    let patch = response.patch.take();
    let mut review = serde_json::to_value(response.into_review())?;
    if let (Some(patch), Some(body)) = (patch, review.get_mut("response").and_then(|r| r.as_object_mut())) {
        body.insert(
            "patch".into(),
            base64::engine::general_purpose::STANDARD.encode(patch).into(),
        );
    }
    serde_json::to_vec(&review)
}
