//! The elector against a mock API server on paused time: exact instants of stepping down, and the
//! order of shutdown (step down, writers stop, then release).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::elector::run_elector;
use crate::leader::lease::ElectionConfig;

type Log = Arc<Mutex<Vec<(String, Value, Instant)>>>;

fn config() -> ElectionConfig {
    ElectionConfig {
        lease_name: "l".into(),
        namespace: "mx".into(),
        identity: "pod-a".into(),
        lease_duration: Duration::from_secs(10),
        renew_period: Duration::from_secs(4),
    }
}

/// Serves the elector: `answer(index, method)` gives the status and body, `None` never answers.
fn mock(log: Log, answer: impl Fn(usize, &str, &Value) -> Option<(u16, Value)> + Send + 'static) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut hung = Vec::new();
        let mut index = 0;
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            log.lock()
                .unwrap()
                .push((method.clone(), body.clone(), Instant::now()));
            match answer(index, &method, &body) {
                Some((status, answer)) => send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                ),
                None => hung.push(send),
            }
            index += 1;
        }
    });
    Client::new(service, "default")
}

fn not_found() -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404})
}

/// First round: no Lease (404), create it (echo). Later requests as `later` says.
fn create_then(
    later: impl Fn(&str, &Value) -> Option<(u16, Value)> + Send + 'static,
) -> impl Fn(usize, &str, &Value) -> Option<(u16, Value)> + Send + 'static {
    move |index, method, body| match index {
        0 => Some((404, not_found())),
        1 => Some((201, body.clone())),
        _ => later(method, body),
    }
}

/// A hung GET does not keep the replica leading: the round times out, and the replica steps
/// down at (start of the last successful round) + lease duration − renew period, while the next round
/// still hangs.
#[tokio::test(start_paused = true)]
async fn a_hung_round_steps_down_before_the_lease_can_expire() {
    let log: Log = Arc::default();
    let client = mock(log.clone(), create_then(|_, _| None));
    let (leader_tx, mut leader) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let elector = tokio::spawn(run_elector(
        client,
        config(),
        leader_tx,
        shutdown.clone(),
        std::future::ready(()),
    ));
    leader.wait_for(|l| *l).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    leader.wait_for(|l| !*l).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(6),
        "10 s lease − 4 s renew period"
    );
    let requests: Vec<(String, Duration)> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(m, _, at)| (m.clone(), *at - start))
        .collect();
    // Round two started at 4 s and still hangs (it times out at 8 s).
    assert_eq!(
        requests,
        [
            ("GET".to_string(), Duration::ZERO),
            ("POST".to_string(), Duration::ZERO),
            ("GET".to_string(), Duration::from_secs(4))
        ]
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(60), elector).await;
}

/// The Lease is released only after the writers stopped, so a new leader never writes alongside.
#[tokio::test(start_paused = true)]
async fn the_lease_is_released_only_after_the_writers_stopped() {
    let log: Log = Arc::default();
    let held = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "mx", "resourceVersion": "3"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 10}});
    let client = mock(
        log.clone(),
        create_then(move |method, body| match method {
            "GET" => Some((200, held.clone())),
            _ => Some((200, body.clone())),
        }),
    );
    let (leader_tx, mut leader) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
    let elector = tokio::spawn(run_elector(
        client,
        config(),
        leader_tx,
        shutdown.clone(),
        async {
            let _ = stopped_rx.await;
        },
    ));
    leader.wait_for(|l| *l).await.unwrap();
    shutdown.cancel();
    leader.wait_for(|l| !*l).await.unwrap();
    // However long the writers take, nothing is sent before they stopped.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(log.lock().unwrap().len(), 2);
    stopped_tx.send(()).unwrap();
    elector.await.unwrap();
    let log = log.lock().unwrap();
    let methods: Vec<&str> = log.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(methods, ["GET", "POST", "GET", "PUT"]);
    // The holder is cleared (absent), the duration shortened.
    assert_eq!(log[3].1["spec"], json!({"leaseDurationSeconds": 1}));
}
