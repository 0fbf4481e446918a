//! A short negative cache per failure scope, so a broken cluster (or a refused caller) does not hammer
//! Dex: after a failure, requests in that scope get the same error with `Retry-After` until the delay
//! passes. Delays double per consecutive failure up to a cap; a success clears the scope. Scopes are
//! per cluster (or per cluster and subject), so other clusters are unaffected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Delay after the first failure, and the cap.
#[derive(Debug, Clone, Copy)]
pub struct BackoffOptions {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for BackoffOptions {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// Size from which lapsed scopes are pruned on insert (so pruning is rare while the map is small).
const PRUNE_THRESHOLD: usize = 1024;

struct Blocked<E> {
    failures: u32,
    until: Instant,
    last: E,
}

/// The negative cache; `E` is the remembered failure.
pub struct Backoff<E> {
    options: BackoffOptions,
    scopes: Mutex<HashMap<String, Blocked<E>>>,
}

impl<E: Clone> Backoff<E> {
    /// An empty cache.
    pub fn new(options: BackoffOptions) -> Self {
        Self {
            options,
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// The remembered failure and the time left, while `scope` is blocked.
    pub fn blocked(&self, scope: &str) -> Option<(E, Duration)> {
        let now = Instant::now();
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let blocked = scopes.get(scope)?;
        (blocked.until > now).then(|| (blocked.last.clone(), blocked.until - now))
    }

    /// Records a failure and returns how long `scope` is now blocked.
    pub fn record_failure(&self, scope: &str, failure: E) -> Duration {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let failures = scopes.get(scope).map_or(0, |b| b.failures).saturating_add(1);
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        let delay = self.options.initial.saturating_mul(factor).min(self.options.max);
        let now = Instant::now();
        if scopes.len() >= PRUNE_THRESHOLD && !scopes.contains_key(scope) {
            // Per-caller scopes come from arbitrary tokens Dex refused: drop the lapsed ones so the map
            // stays bounded by the callers refused within the last `max` delay.
            scopes.retain(|_, blocked| blocked.until > now);
        }
        scopes.insert(
            scope.to_string(),
            Blocked {
                failures,
                until: now + delay,
                last: failure,
            },
        );
        delay
    }

    /// Number of remembered scopes (active or lapsed).
    pub fn len(&self) -> usize {
        self.scopes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Clears `scope` after a success.
    pub fn record_success(&self, scope: &str) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        if !scopes.is_empty() {
            scopes.remove(scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_success_clears() {
        let b = Backoff::new(BackoffOptions {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
        });
        assert!(b.blocked("a").is_none());
        assert_eq!(b.record_failure("a", "e1"), Duration::from_secs(1));
        assert_eq!(b.record_failure("a", "e2"), Duration::from_secs(2));
        assert_eq!(b.record_failure("a", "e3"), Duration::from_secs(3));
        let (last, left) = b.blocked("a").unwrap();
        assert_eq!(last, "e3");
        assert!(left <= Duration::from_secs(3) && left > Duration::from_secs(2));
        assert!(b.blocked("b").is_none(), "other scopes are unaffected");
        b.record_success("a");
        assert!(b.blocked("a").is_none());
    }

    #[test]
    fn lapsed_scopes_are_pruned_so_the_map_stays_bounded() {
        let b = Backoff::new(BackoffOptions {
            initial: Duration::ZERO,
            max: Duration::ZERO,
        });
        for i in 0..10 * PRUNE_THRESHOLD {
            b.record_failure(&format!("alpha/caller-{i}"), ());
        }
        assert!(b.len() <= PRUNE_THRESHOLD, "{} scopes kept", b.len());
        let long = Backoff::new(BackoffOptions::default());
        for i in 0..PRUNE_THRESHOLD + 5 {
            long.record_failure(&format!("alpha/caller-{i}"), ());
        }
        assert_eq!(long.len(), PRUNE_THRESHOLD + 5, "active blocks are kept");
    }

    #[test]
    fn block_expires() {
        let b = Backoff::new(BackoffOptions {
            initial: Duration::ZERO,
            max: Duration::ZERO,
        });
        b.record_failure("a", ());
        assert!(b.blocked("a").is_none());
    }
}
