//! The answers of `/healthz`, `/readyz` and `/metrics`, the same in every component, so one kubelet
//! probe, one Prometheus scrape configuration and one troubleshooting page fit them all.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Content type of [`openmetrics`]: prometheus-client encodes OpenMetrics text (it ends in `# EOF`),
/// which Prometheus parses as such only under this content type.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/healthz`: 200 `ok`. Liveness only says the process answers HTTP; anything it waits for belongs in
/// [`readyz`], or the kubelet would restart a pod that only waits.
pub fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// `/readyz`: 200 `ready` when `problems` is empty, otherwise 503 with
/// `{"ready":false,"problems":[...]}`, each problem a sentence that tells an operator who fetches
/// the endpoint what is missing.
pub fn readyz<P: AsRef<str>>(problems: &[P]) -> Response {
    if problems.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let problems: Vec<&str> = problems.iter().map(AsRef::as_ref).collect();
    let body = serde_json::json!({"ready": false, "problems": problems});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// `/metrics`: the registry's OpenMetrics text (`prometheus_client::encoding::text::encode`) with
/// content type `application/openmetrics-text; version=1.0.0; charset=utf-8`, or 500 when encoding
/// failed.
pub fn openmetrics(encoded: Result<String, std::fmt::Error>) -> Response {
    match encoded {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => {
            tracing::error!("cannot encode the metrics registry");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics; see the log\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    async fn parts(response: Response) -> (u16, Option<String>, String) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_is_ok() {
        let (status, _, body) = parts(healthz()).await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }

    #[tokio::test]
    async fn readiness_lists_the_problems_as_json() {
        let none: [&str; 0] = [];
        let (status, _, body) = parts(readyz(&none)).await;
        assert_eq!((status, body.as_str()), (200, "ready\n"));
        let (status, content_type, body) = parts(readyz(&["caches not synced yet".to_string()])).await;
        assert_eq!(status, 503);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ready": false, "problems": ["caches not synced yet"]})
        );
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text() {
        let (status, content_type, body) = parts(openmetrics(Ok("# EOF\n".into()))).await;
        assert_eq!(status, 200);
        assert_eq!(content_type.as_deref(), Some(OPENMETRICS_CONTENT_TYPE));
        assert_eq!(body, "# EOF\n");
        let (status, _, body) = parts(openmetrics(Err(std::fmt::Error))).await;
        assert_eq!(status, 500);
        assert!(body.contains("cannot encode"), "{body}");
    }
}
