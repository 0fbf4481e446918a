//! The exchanged-token cache: keyed by cluster and a SHA-256 of the subject token (never the token), with
//! single flight (concurrent misses for one key share one exchange), one background re-exchange inside
//! the refresh window while the cached value keeps serving, and a bounded size (least recently used
//! entries go first).
//!
//! Exchanges run in their own tasks: a caller that disconnects does not cancel an exchange others wait
//! for, and the result lands in the cache either way.

mod lifetime;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};

pub use lifetime::{Validity, instant_of, validity};

/// After a failed background refresh, the next one starts no sooner than this.
const REFRESH_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Cache key: the cluster index and SHA-256 of the subject token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    cluster: usize,
    subject_sha256: [u8; 32],
}

impl CacheKey {
    /// The key for `subject_token` at `cluster`.
    pub fn new(cluster: usize, subject_token: &str) -> Self {
        Self {
            cluster,
            subject_sha256: Sha256::digest(subject_token.as_bytes()).into(),
        }
    }

    /// The subject hash in hex (12 digits), for logs and backoff scopes.
    pub fn subject_fingerprint(&self) -> String {
        hex::encode(&self.subject_sha256[..6])
    }
}

/// Tuning.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// Most entries kept.
    pub max_entries: usize,
    /// Entries stop serving this long before the token expires.
    pub expiry_margin: Duration,
    /// Background re-exchange starts this long before the entry stops serving.
    pub refresh_window: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            expiry_margin: Duration::from_secs(30),
            refresh_window: Duration::from_secs(300),
        }
    }
}

/// A fetched value and when it expires (wall clock).
pub struct Fetched<V> {
    /// The value.
    pub value: V,
    /// Its expiry.
    pub expires_at: SystemTime,
    /// The subject token's expiry, when known. Worked out by the fetch (a miss or a refresh), never on a
    /// hit: the entry itself ends by then, so a hit cannot serve an expired subject.
    pub subject_expires_at: Option<SystemTime>,
}

/// How a lookup was served (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit,
    /// From the cache, and a background refresh was started.
    HitRefreshing,
    /// This caller started the exchange.
    Miss,
    /// Waited for an exchange another caller started.
    Joined,
}

/// The error when an exchange task died without an answer.
pub trait FromAbortedFlight {
    /// Builds the error.
    fn aborted_flight() -> Self;
}

type Flight<V, E> = Shared<BoxFuture<'static, Result<V, E>>>;

enum Plan<V, E> {
    Hit(V),
    HitRefreshing(V),
    Join(Flight<V, E>),
    Lead(Flight<V, E>),
}

enum Slot<V, E> {
    Ready(Entry<V>),
    Pending(Flight<V, E>),
}

struct Entry<V> {
    value: V,
    validity: Validity,
    /// Recency stamp for least-recently-used eviction (see [`TokenCache::touch`]). Atomic so a hit needs
    /// only the read lock.
    last_used: AtomicU64,
    /// A background refresh is running; set by exactly one hit.
    refreshing: AtomicBool,
}

struct State<V, E> {
    slots: HashMap<CacheKey, Slot<V, E>>,
}

/// The cache. Cheap to clone.
pub struct TokenCache<V, E> {
    inner: Arc<Inner<V, E>>,
}

struct Inner<V, E> {
    options: CacheOptions,
    /// Hits (the hot path) share the read lock; misses, stores and evictions take the write lock.
    state: RwLock<State<V, E>>,
    /// Number of stores so far: the recency clock, advanced by stores only, so hits never write it.
    stores: AtomicU64,
}

impl<V, E> Clone for TokenCache<V, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V, E> TokenCache<V, E>
where
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + FromAbortedFlight + 'static,
{
    /// An empty cache.
    pub fn new(options: CacheOptions) -> Self {
        let state = RwLock::new(State {
            slots: HashMap::new(),
        });
        Self {
            inner: Arc::new(Inner {
                options,
                state,
                stores: AtomicU64::new(0),
            }),
        }
    }

    /// The cached value for `key`, or the result of `fetch` (run once however many callers ask at once).
    /// `fetch` is also used, at most once per window, for the background refresh of a hit.
    pub async fn get<F, Fut>(&self, key: &CacheKey, fetch: F) -> (Result<V, E>, Lookup)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        // All lock work happens in `plan`, so no guard lives across an await.
        match self.plan(key, fetch) {
            Plan::Hit(value) => (Ok(value), Lookup::Hit),
            Plan::HitRefreshing(value) => (Ok(value), Lookup::HitRefreshing),
            Plan::Join(flight) => (flight.await, Lookup::Joined),
            Plan::Lead(flight) => (flight.await, Lookup::Miss),
        }
    }

    fn plan<F, Fut>(&self, key: &CacheKey, fetch: F) -> Plan<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        let now = Instant::now();
        {
            let state = self.read();
            match state.slots.get(key) {
                Some(Slot::Ready(entry)) if now < entry.validity.valid_until => {
                    self.touch(entry);
                    let value = entry.value.clone();
                    let refresh_due = entry.validity.refresh_at.is_some_and(|at| now >= at);
                    // `swap` lets exactly one of many concurrent hits start the refresh.
                    if !refresh_due || entry.refreshing.swap(true, Ordering::AcqRel) {
                        return Plan::Hit(value);
                    }
                    drop(state);
                    self.spawn_refresh(key.clone(), fetch());
                    return Plan::HitRefreshing(value);
                }
                Some(Slot::Pending(flight)) => return Plan::Join(flight.clone()),
                _ => {}
            }
        }
        let mut state = self.lock();
        // Another request may have started (or finished) the exchange between the two locks.
        match state.slots.get(key) {
            Some(Slot::Ready(entry)) if now < entry.validity.valid_until => {
                return Plan::Hit(entry.value.clone());
            }
            Some(Slot::Pending(flight)) => return Plan::Join(flight.clone()),
            _ => {}
        }
        let flight = self.start_flight(key.clone(), fetch());
        state.slots.insert(key.clone(), Slot::Pending(flight.clone()));
        Plan::Lead(flight)
    }

    /// Marks `entry` used: stores stamp `2n` (n = stores so far), hits `2n + 1`, so a hit ranks after
    /// every entry stored before it. Hits between two stores tie (approximate LRU), and the entry is
    /// written only when its stamp changes, so a hot key's cache line is not written by every hit.
    fn touch(&self, entry: &Entry<V>) {
        let stamp = self
            .inner
            .stores
            .load(Ordering::Relaxed)
            .saturating_mul(2)
            .saturating_add(1);
        if entry.last_used.load(Ordering::Relaxed) != stamp {
            entry.last_used.store(stamp, Ordering::Relaxed);
        }
    }

    /// Drops the entry for `key` when `is_stale` says its value is the one that was rejected (a newer
    /// value another request already fetched is kept).
    pub fn invalidate(&self, key: &CacheKey, is_stale: impl Fn(&V) -> bool) {
        let mut state = self.lock();
        if let Some(Slot::Ready(entry)) = state.slots.get(key)
            && is_stale(&entry.value)
        {
            state.slots.remove(key);
        }
    }

    /// Number of entries (ready or pending).
    pub fn len(&self) -> usize {
        self.read().slots.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> RwLockReadGuard<'_, State<V, E>> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> RwLockWriteGuard<'_, State<V, E>> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns the exchange; its task stores the result (or clears the pending slot on failure).
    fn start_flight<Fut>(&self, key: CacheKey, fetch: Fut) -> Flight<V, E>
    where
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        let cache = self.clone();
        let task = tokio::spawn(async move {
            let result = fetch.await;
            let mut state = cache.lock();
            match &result {
                Ok(fetched) => cache.store(&mut state, key, fetched),
                Err(_) => {
                    state.slots.remove(&key);
                }
            }
            result.map(|fetched| fetched.value)
        });
        async move { task.await.unwrap_or_else(|_| Err(E::aborted_flight())) }
            .boxed()
            .shared()
    }

    /// Re-exchanges while the old value keeps serving; a failure keeps the old value until it expires.
    fn spawn_refresh<Fut>(&self, key: CacheKey, fetch: Fut)
    where
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        let cache = self.clone();
        tokio::spawn(async move {
            let result = fetch.await;
            let mut state = cache.lock();
            match result {
                Ok(fetched) => cache.store(&mut state, key, &fetched),
                Err(_) => {
                    // Try again a little later, not on the very next hit: while Dex is failing (or the
                    // backoff holds) a busy key would otherwise start a refresh task per request.
                    if let Some(Slot::Ready(entry)) = state.slots.get_mut(&key) {
                        entry.refreshing.store(false, Ordering::Release);
                        entry.validity.refresh_at = Some(Instant::now() + REFRESH_RETRY_DELAY);
                    }
                }
            }
        });
    }

    fn store(&self, state: &mut State<V, E>, key: CacheKey, fetched: &Fetched<V>) {
        let now = Instant::now();
        let wall_now = SystemTime::now();
        let expiry = instant_of(fetched.expires_at, now, wall_now);
        let subject_expiry = fetched.subject_expires_at.map(|at| instant_of(at, now, wall_now));
        let options = &self.inner.options;
        let Some(validity) = validity(
            now,
            expiry,
            subject_expiry,
            options.expiry_margin,
            options.refresh_window,
        ) else {
            // Too short-lived to cache: callers of this flight still get the value.
            state.slots.remove(&key);
            return;
        };
        // Stores happen under the write lock, so no hit reads the clock mid-update.
        let stamp = self
            .inner
            .stores
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
            .saturating_mul(2);
        let entry = Entry {
            value: fetched.value.clone(),
            validity,
            last_used: AtomicU64::new(stamp),
            refreshing: AtomicBool::new(false),
        };
        state.slots.insert(key, Slot::Ready(entry));
        evict_over_capacity(state, options.max_entries, now);
    }
}

/// Drops expired entries, then the least recently used ones down to 90 % of `max`. Evicting a batch means
/// the linear scan runs once per `max / 10` stores once the cache is full, not on every store; it runs
/// only when an exchange completes, never on a cache hit.
fn evict_over_capacity<V, E>(state: &mut State<V, E>, max: usize, now: Instant) {
    if state.slots.len() <= max {
        return;
    }
    state
        .slots
        .retain(|_, slot| !matches!(slot, Slot::Ready(e) if e.validity.valid_until <= now));
    if state.slots.len() <= max {
        return;
    }
    let target = max - max / 10;
    let mut ready: Vec<(u64, CacheKey)> = state
        .slots
        .iter()
        .filter_map(|(k, slot)| match slot {
            Slot::Ready(e) => Some((e.last_used.load(Ordering::Relaxed), k.clone())),
            Slot::Pending(_) => None,
        })
        .collect();
    let excess = state.slots.len().saturating_sub(target).min(ready.len());
    if excess == 0 {
        return;
    }
    ready.select_nth_unstable_by_key(excess - 1, |(used, _)| *used);
    for (_, key) in &ready[..excess] {
        state.slots.remove(key);
    }
}

#[cfg(test)]
mod tests;
