//! `/healthz`, `/readyz` and `/metrics`, answered as every component answers them (`muster-exchange-ops`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics registry.
    pub registry: Arc<Registry>,
    /// True once the caches have synced.
    pub ready: Arc<AtomicBool>,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { muster_exchange_ops::healthz() }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        muster_exchange_ops::readyz::<&str>(&[])
    } else {
        muster_exchange_ops::readyz(&["the watch caches have not synced yet"])
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut body = String::new();
    let encoded = prometheus_client::encoding::text::encode(&mut body, &state.registry).map(|()| body);
    muster_exchange_ops::openmetrics(encoded)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::runtime::metrics::{GrantLabels, Metrics};

    async fn get_text(router: Router, path: &str) -> (u16, String) {
        let response = router
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics
            .grants_managed
            .get_or_create(&GrantLabels { kind: "kubeconfig" })
            .set(3);
        let ready = Arc::new(AtomicBool::new(false));
        let app = router(HttpState {
            registry: Arc::new(registry),
            ready: ready.clone(),
        });
        assert_eq!(get_text(app.clone(), "/healthz").await, (200, "ok\n".into()));
        let (status, body) = get_text(app.clone(), "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"ready": false, "problems": ["the watch caches have not synced yet"]})
        );
        ready.store(true, Ordering::SeqCst);
        assert_eq!(get_text(app.clone(), "/readyz").await, (200, "ready\n".into()));
        let (status, body) = get_text(app, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("muster_exchange_controller_grants_managed{kind=\"kubeconfig\"} 3\n"),
            "{body}"
        );
    }
}
