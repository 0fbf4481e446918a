//! How long a cached exchange may serve, and when to re-exchange in the background.

use std::time::{Duration, Instant, SystemTime};

/// Expiries further ahead than this are treated as this far ahead: the cache never holds an entry that
/// long anyway, and `Instant + Duration` must not overflow on a hostile `exp` or `expires_in`.
const FAR_FUTURE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Converts a wall-clock expiry into the monotonic clock the cache uses.
pub fn instant_of(at: SystemTime, now: Instant, wall_now: SystemTime) -> Instant {
    match at.duration_since(wall_now) {
        Ok(ahead) => now.checked_add(ahead.min(FAR_FUTURE)).unwrap_or(now),
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

/// The entry lives until `margin` before the exchanged token's expiry, and at most until the subject
/// token's expiry itself. The margin covers the exchanged token's trip to the app and the API server; the
/// subject needs none (a subject past `exp` is refused locally, and it is only checked at exchange time),
/// and applying it there made every request in the subject's last `margin` exchange without caching.
/// A refresh only helps when the exchanged token ends the entry (a new exchange with the same subject
/// token cannot outlive the subject); it starts `refresh_window` before the end, but never in the first half of
/// the lifetime, so short-lived tokens are not re-exchanged on every request.
pub fn validity(
    now: Instant,
    exchanged_expiry: Instant,
    subject_expiry: Option<Instant>,
    margin: Duration,
    refresh_window: Duration,
) -> Option<Validity> {
    let exchanged_until = exchanged_expiry.checked_sub(margin)?;
    let valid_until = subject_expiry.map_or(exchanged_until, |s| s.min(exchanged_until));
    if valid_until <= now {
        return None;
    }
    let refreshable = subject_expiry.is_none_or(|s| exchanged_until < s);
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
    fn lives_until_margin_before_the_exchanged_expiry_and_at_most_until_the_subjects() {
        let now = Instant::now();
        let v = validity(now, now + 1800 * S, Some(now + 600 * S), 30 * S, 300 * S).unwrap();
        assert_eq!(
            v,
            Validity {
                valid_until: now + 600 * S,
                refresh_at: None
            }
        );
        // The subject's last margin still caches: 20 s of subject life left, the exchanged token lasts.
        let v = validity(now, now + 1800 * S, Some(now + 20 * S), 30 * S, 300 * S).unwrap();
        assert_eq!(v.valid_until, now + 20 * S);
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
    fn far_future_expiries_do_not_overflow() {
        let (now, wall_now) = (Instant::now(), SystemTime::now());
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2);
        assert_eq!(instant_of(far, now, wall_now), now + FAR_FUTURE);
        assert_eq!(instant_of(wall_now - S, now, wall_now), now);
    }

    #[test]
    fn short_lifetimes_refresh_in_the_second_half_and_tiny_ones_are_not_cached() {
        let now = Instant::now();
        let v = validity(now, now + 130 * S, None, 30 * S, 300 * S).unwrap();
        assert_eq!(v.refresh_at, Some(now + 50 * S));
        assert_eq!(validity(now, now + 20 * S, None, 30 * S, 300 * S), None);
    }
}
