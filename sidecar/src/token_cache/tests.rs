use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

#[derive(Clone, Debug, PartialEq)]
struct Failed;

impl FromAbortedFlight for Failed {
    fn aborted_flight() -> Self {
        Failed
    }
}

type Cache = TokenCache<String, Failed>;

fn options() -> CacheOptions {
    CacheOptions {
        max_entries: 100,
        expiry_margin: Duration::from_secs(1),
        refresh_window: Duration::from_secs(60),
    }
}

/// A cache that holds at most `max_entries`, otherwise with the test [`options`].
fn with_room_for(max_entries: usize) -> Cache {
    Cache::new(CacheOptions {
        max_entries,
        ..options()
    })
}

/// `count` keys for the same subject on clusters 0, 1, ...
fn distinct_keys(count: usize) -> Vec<CacheKey> {
    (0..count).map(|i| CacheKey::new(i, "s")).collect()
}

fn fetched(value: &str, lifetime: Duration) -> Fetched<String> {
    Fetched {
        value: value.to_string(),
        expires_at: SystemTime::now() + lifetime,
        subject_expires_at: None,
    }
}

/// A fetch that succeeds at once with `value`, valid for ten minutes.
fn fill(value: &'static str) -> impl FnOnce() -> std::future::Ready<Result<Fetched<String>, Failed>> {
    move || std::future::ready(Ok(fetched(value, Duration::from_secs(600))))
}

/// Moves the stored entry for `key` into its refresh window, so the next hit starts a refresh.
fn make_refresh_due(cache: &Cache, key: &CacheKey) {
    let mut state = cache.lock();
    if let Some(Slot::Ready(e)) = state.slots.get_mut(key) {
        e.validity.refresh_at = Some(Instant::now());
    }
}

/// Polls until the slot for `key` holds a stored entry for which `stored` is true.
async fn eventually_stored(cache: &Cache, key: &CacheKey, stored: impl Fn(&Entry<String>) -> bool) {
    eventually(|| {
        cache
            .lock()
            .slots
            .get(key)
            .is_some_and(|s| matches!(s, Slot::Ready(e) if stored(e)))
    })
    .await;
}

/// Polls `condition` until it holds or 5 s pass.
async fn eventually(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_fetch() {
    let cache = Cache::new(options());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let key = CacheKey::new(0, "subject");
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let (cache, calls, gate, key) = (cache.clone(), calls.clone(), gate.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get(&key, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let _permit = gate.acquire().await;
                        Ok(fetched("token-1", Duration::from_secs(600)))
                    }
                })
                .await
        }));
    }
    eventually(|| calls.load(Ordering::SeqCst) == 1).await;
    gate.add_permits(1);
    let mut misses = 0;
    for task in tasks {
        let (value, lookup) = task.await.unwrap();
        assert_eq!(value, Ok("token-1".to_string()));
        misses += usize::from(lookup == Lookup::Miss);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(misses, 1);
}

#[tokio::test]
async fn refresh_runs_once_in_the_background_while_the_old_value_serves() {
    let cache = Cache::new(CacheOptions {
        refresh_window: Duration::from_secs(3600),
        ..options()
    });
    let key = CacheKey::new(0, "subject");
    let (v, lookup) = cache.get(&key, fill("old")).await;
    assert_eq!((v, lookup), (Ok("old".to_string()), Lookup::Miss));
    // Refresh window > lifetime: refresh is due at half the lifetime; move into it by re-storing.
    make_refresh_due(&cache, &key);
    let refreshes = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    for round in 0..3 {
        let (refreshes, gate) = (refreshes.clone(), gate.clone());
        let (v, lookup) = cache
            .get(&key, move || {
                refreshes.fetch_add(1, Ordering::SeqCst);
                async move {
                    let _permit = gate.acquire().await;
                    Ok(fetched("new", Duration::from_secs(600)))
                }
            })
            .await;
        assert_eq!(
            v,
            Ok("old".to_string()),
            "round {round} is served from the cache at once"
        );
        assert_eq!(
            lookup,
            if round == 0 {
                Lookup::HitRefreshing
            } else {
                Lookup::Hit
            }
        );
    }
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    gate.add_permits(1);
    let never = || async { Err::<Fetched<String>, _>(Failed) };
    eventually_stored(&cache, &key, |e| e.value == "new").await;
    assert_eq!(cache.get(&key, never).await, (Ok("new".to_string()), Lookup::Hit));
}

#[tokio::test]
async fn failures_are_not_cached_and_subject_expiry_bounds_entries() {
    let cache = Cache::new(options());
    let key = CacheKey::new(1, "s");
    let (v, _) = cache.get(&key, || async { Err(Failed) }).await;
    assert_eq!(v, Err(Failed));
    assert!(cache.is_empty());
    let with_subject_left = |left: Duration| {
        move || async move {
            Ok(Fetched {
                subject_expires_at: Some(SystemTime::now() + left),
                ..fetched("bounded", Duration::from_secs(600))
            })
        }
    };
    let (v, _) = cache.get(&key, with_subject_left(Duration::ZERO)).await;
    assert_eq!(v, Ok("bounded".to_string()));
    assert!(cache.is_empty(), "the subject has expired: not cached");
    // Inside the margin (1 s) of the subject's life the entry is still stored, and ends with the subject.
    cache
        .get(&key, with_subject_left(Duration::from_millis(600)))
        .await
        .0
        .unwrap();
    assert_eq!(
        cache.get(&key, || async { Err(Failed) }).await,
        (Ok("bounded".to_string()), Lookup::Hit)
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.get(&key, || async { Err(Failed) }).await.1, Lookup::Miss);
}

#[tokio::test]
async fn evicts_least_recently_used_and_invalidates_only_the_stale_value() {
    let cache = with_room_for(2);
    let keys = distinct_keys(3);
    cache.get(&keys[0], fill("a")).await.0.unwrap();
    cache.get(&keys[1], fill("b")).await.0.unwrap();
    assert_eq!(cache.get(&keys[0], fill("x")).await.1, Lookup::Hit);
    cache.get(&keys[2], fill("c")).await.0.unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(
        cache.get(&keys[0], fill("x")).await,
        (Ok("a".into()), Lookup::Hit)
    );
    assert_eq!(
        cache.get(&keys[1], fill("b2")).await.1,
        Lookup::Miss,
        "b was least recently used"
    );
    cache.invalidate(&keys[1], |v| v == "b");
    assert_eq!(
        cache.get(&keys[1], fill("y")).await.1,
        Lookup::Hit,
        "b2 is not the stale value"
    );
    cache.invalidate(&keys[1], |v| v == "b2");
    assert_eq!(
        cache.get(&keys[1], fill("b3")).await,
        (Ok("b3".into()), Lookup::Miss)
    );
}

#[test]
fn keys_hash_the_subject() {
    let key = CacheKey::new(0, "secret-token");
    assert_eq!(
        key.subject_fingerprint(),
        muster_exchange_api::redact::short_hash("secret-token")
    );
    assert!(!format!("{key:?}").contains("secret-token"));
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_and_is_retried_later_not_on_every_hit() {
    let cache = Cache::new(options());
    let key = CacheKey::new(0, "subject");
    cache.get(&key, fill("old")).await.0.unwrap();
    make_refresh_due(&cache, &key);
    let attempts = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let attempts = attempts.clone();
        let failing = move || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err(Failed) }
        };
        assert_eq!(cache.get(&key, failing).await.0, Ok("old".to_string()));
        eventually_stored(&cache, &key, |e| !e.refreshing.load(Ordering::SeqCst)).await;
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "retried only after REFRESH_RETRY_DELAY"
    );
}

#[tokio::test]
async fn a_full_cache_evicts_a_batch_so_the_scan_is_not_repeated_on_every_store() {
    let cache = with_room_for(10);
    let keys = distinct_keys(12);
    for key in &keys[..10] {
        cache.get(key, fill("v")).await.0.unwrap();
    }
    assert_eq!(cache.get(&keys[0], fill("x")).await.1, Lookup::Hit);
    cache.get(&keys[10], fill("v")).await.0.unwrap();
    assert_eq!(cache.len(), 9, "evicted down to 90 % of the maximum");
    cache.get(&keys[11], fill("v")).await.0.unwrap();
    assert_eq!(cache.len(), 10, "room left: no scan");
    assert_eq!(
        cache.get(&keys[0], fill("x")).await.1,
        Lookup::Hit,
        "recently used, kept"
    );
    for (key, lookup) in [(&keys[1], Lookup::Miss), (&keys[2], Lookup::Miss)] {
        assert_eq!(
            cache.get(key, fill("v")).await.1,
            lookup,
            "least recently used, evicted"
        );
    }
}
