//! How long a cached exchange may serve, and when to re-exchange in the background.

use std::time::{Duration, Instant, SystemTime};

/// Converts a wall-clock expiry into the monotonic clock the cache uses.
pub fn instant_of(at: SystemTime, now: Instant, wall_now: SystemTime) -> Instant {
    match at.duration_since(wall_now) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}

/// When an entry stops serving and when its background refresh starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Entry unusable from here on.
    pub valid_until: Instant,
    /// Start one background re-exchange from here on (`None`: refreshing cannot help).
    pub refresh_at: Option<Instant>,
}

/// The entry lives until `margin` before the earlier of the exchanged and the subject token's expiry.
/// A refresh only helps when the exchanged token expires first (a new exchange with the same subject
/// token cannot outlive it); it starts `refresh_window` before the end, but never in the first half of
/// the lifetime, so short-lived tokens are not re-exchanged on every request.
pub fn validity(
    now: Instant,
    exchanged_expiry: Instant,
    subject_expiry: Option<Instant>,
    margin: Duration,
    refresh_window: Duration,
) -> Option<Validity> {
    let bound = subject_expiry.map_or(exchanged_expiry, |s| s.min(exchanged_expiry));
    let valid_until = bound.checked_sub(margin)?;
    if valid_until <= now {
        return None;
    }
    let refreshable = subject_expiry.is_none_or(|s| exchanged_expiry < s);
    let lifetime = valid_until - now;
    let refresh_at = refreshable.then(|| valid_until - refresh_window.min(lifetime / 2));
    Some(Validity {
        valid_until,
        refresh_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn lives_until_margin_before_the_earlier_expiry() {
        let now = Instant::now();
        let v = validity(now, now + 1800 * S, Some(now + 600 * S), 30 * S, 300 * S).unwrap();
        assert_eq!(
            v,
            Validity {
                valid_until: now + 570 * S,
                refresh_at: None
            }
        );
        let v = validity(now, now + 1800 * S, Some(now + 3600 * S), 30 * S, 300 * S).unwrap();
        assert_eq!(
            v,
            Validity {
                valid_until: now + 1770 * S,
                refresh_at: Some(now + 1470 * S)
            }
        );
    }

    #[test]
    fn short_lifetimes_refresh_in_the_second_half_and_tiny_ones_are_not_cached() {
        let now = Instant::now();
        let v = validity(now, now + 130 * S, None, 30 * S, 300 * S).unwrap();
        assert_eq!(v.refresh_at, Some(now + 50 * S));
        assert_eq!(validity(now, now + 20 * S, None, 30 * S, 300 * S), None);
    }
}
