//! Single flight under load, background re-exchange near expiry, and the 401 retry path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Harness, HarnessOptions, eventually, subject_token};
use muster_exchange_sidecar::SidecarOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_requests_make_exactly_one_exchange() {
    let h = Harness::start().await;
    // Slow Dex: every request arrives while the one exchange is in flight.
    h.dex().update(|b| b.delay = Duration::from_millis(300));
    let subject = subject_token("alice");
    let statuses = h
        .get_all_at_once("/mcp", vec![subject; 500], |r| r.status().as_u16())
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(h.dex().token_requests(), 1);
    assert_eq!(h.dex().exchanges(), 1);
    assert_eq!(h.upstream.seen().len(), 500);
    let subs: std::collections::BTreeSet<String> =
        h.upstream.seen().iter().filter_map(|s| s.bearer_sub()).collect();
    assert_eq!(
        subs.into_iter().collect::<Vec<_>>(),
        vec!["exchanged-1".to_string()]
    );
}

#[tokio::test]
async fn re_exchange_near_expiry_happens_once_in_the_background() {
    let mut sidecar = SidecarOptions {
        exchange_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    sidecar.cache.expiry_margin = Duration::from_secs(1);
    sidecar.cache.refresh_window = Duration::from_secs(60);
    let h = Harness::start_with(HarnessOptions {
        sidecar,
        ..Default::default()
    })
    .await;
    // Lifetime 3 s, margin 1 s: the entry serves for 2 s and is refreshed from 1 s on (second half).
    h.dex().update(|b| b.expires_in = Some(3));
    let subject = subject_token("alice");
    let first_at = Instant::now();
    assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    assert_eq!(h.dex().exchanges(), 1);
    // The refresh will take 700 ms at Dex: requests meanwhile must not wait for it.
    h.dex().update(|b| b.delay = Duration::from_millis(700));
    tokio::time::sleep_until((first_at + Duration::from_millis(1100)).into()).await;
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "served from cache while refreshing: {:?}",
        started.elapsed()
    );
    let seen = h.upstream.seen();
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.bearer_sub().as_deref() == Some("exchanged-1"))
    );
    eventually("one background re-exchange reaches Dex", || {
        h.dex().token_requests() == 2
    })
    .await;
    eventually("the background exchange completes", || h.dex().exchanges() == 2).await;
    let state = h.state.clone();
    eventually("the refreshed entry is stored", || state.cache.len() == 1).await;
    // Poll until the new token is served (the store happens right after Dex answers).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert_eq!(h.get("/mcp", &subject).await.status(), 200);
        if h.upstream.seen().last().unwrap().bearer_sub().as_deref() == Some("exchanged-2") {
            break;
        }
        assert!(Instant::now() < deadline, "refreshed token never served");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        h.dex().token_requests(),
        2,
        "exactly one re-exchange for six requests in the window"
    );
    h.assert_metric(r#"muster_exchange_sidecar_background_refreshes_total{cluster="alpha"} 1"#)
        .await;
}

#[tokio::test]
async fn app_401_drops_the_entry_and_retries_once_with_a_fresh_exchange() {
    let h = Harness::start().await;
    h.upstream.reject_subjects(["exchanged-1"]);
    let subject = subject_token("alice");
    let response = h.post("/tools/call", &subject, "{\"id\":7}").await;
    assert_eq!(response.status(), 200);
    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].bearer_sub().as_deref(), Some("exchanged-1"));
    assert_eq!(seen[1].bearer_sub().as_deref(), Some("exchanged-2"));
    assert_eq!(
        (seen[0].body.as_ref(), seen[1].body.as_ref()),
        (b"{\"id\":7}".as_ref(), b"{\"id\":7}".as_ref())
    );
    assert_eq!(h.dex().exchanges(), 2);
    // The fresh token is cached: the next call exchanges nothing.
    assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    assert_eq!(h.dex().exchanges(), 2);
    h.assert_metric(r#"muster_exchange_sidecar_unauthorized_retries_total{cluster="alpha"} 1"#)
        .await;

    // A second 401 is passed through (one retry only).
    h.upstream.reject_subjects(["exchanged-2", "exchanged-3"]);
    let response = h.get("/mcp", &subject).await;
    assert_eq!(response.status(), 401);
    assert_eq!(h.dex().exchanges(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_distinct_tokens_never_runs_more_than_sixteen_exchanges_at_once() {
    let h = Harness::start().await;
    h.dex().update(|b| b.delay = Duration::from_millis(100));
    let subjects = (0..40).map(|i| subject_token(&format!("user-{i}")));
    let statuses = h.get_all_at_once("/mcp", subjects, |r| r.status().as_u16()).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(h.dex().exchanges(), 40, "one exchange per distinct token");
    let peak = h.dex().max_concurrent_requests();
    assert!(
        peak <= muster_exchange_sidecar::exchanger::MAX_CONCURRENT_EXCHANGES && peak > 1,
        "peak {peak}"
    );
}

#[tokio::test]
async fn an_app_refusing_every_fresh_token_costs_one_exchange_not_one_per_request() {
    let mut options = HarnessOptions::default();
    options.sidecar.unauthorized_retry_cooldown = Duration::from_secs(30);
    let h = Harness::start_with(options).await;
    h.upstream
        .reject_subjects((1..=50).map(|i| format!("exchanged-{i}")));
    let subject = subject_token("alice");
    for _ in 0..20 {
        let response = h.post("/tools/call", &subject, "{\"id\":7}").await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), "token rejected");
    }
    assert_eq!(h.dex().exchanges(), 1);
    assert_eq!(h.upstream.seen().len(), 20);
    h.assert_metric(r#"muster_exchange_sidecar_unauthorized_retries_total{cluster="alpha"} 0"#)
        .await;
}

#[tokio::test]
async fn a_subject_in_its_last_margin_is_still_cached_until_its_exp() {
    let h = Harness::start().await;
    // 10 s left: inside the default 30 s margin, which applies to the exchanged token only.
    let subject = common::subject_token_with_exp("alice", common::epoch_now() + 10);
    for _ in 0..5 {
        assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    }
    assert_eq!(h.dex().exchanges(), 1);
}
