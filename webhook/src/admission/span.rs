//! The tracing span a review is decided in, so every log line of one review carries its ids.
//!
//! Only ids go in: the AdmissionReview `uid`, the object's kind, namespace and name, and the route.
//! Never the object's contents, its annotations or the requesting user (a review may carry tokens or
//! Secret data elsewhere in its body).

use super::AdmissionRequest;

/// Longest id value a span carries; longer values (a crafted review) are cut. Kubernetes names are at
/// most 253 characters.
const MAX_ID: usize = 253;

/// The span of one review on `route`. The namespace is checked to be a namespace name before the span
/// is made (see `crate::routes`).
pub(crate) fn review_span(route: &'static str, request: &AdmissionRequest) -> tracing::Span {
    tracing::info_span!(
        "admission_review",
        route,
        uid = bounded(&request.uid),
        kind = bounded(&request.kind),
        namespace = bounded(request.namespace.as_deref().unwrap_or_default()),
        name = bounded(&request.name),
    )
}

/// `text` cut to [`MAX_ID`] characters.
fn bounded(text: &str) -> &str {
    match text.char_indices().nth(MAX_ID) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_are_cut() {
        let long = "n".repeat(MAX_ID + 10);
        assert_eq!(bounded(&long).len(), MAX_ID);
        assert_eq!(bounded("pod-a"), "pod-a");
        let multibyte = "é".repeat(MAX_ID + 1);
        assert_eq!(bounded(&multibyte).chars().count(), MAX_ID);
    }
}
