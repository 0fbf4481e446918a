//! When to probe an MCPServer next: the probe interval with jitter after a success, per-object
//! exponential backoff after failures (capped), so a broken cluster is probed less often and a fleet
//! does not probe in lockstep. The failure count lives in the probe controller's context (kube-runtime
//! keeps no per-object state between reconciles; see kube-rs/kube#1916).

use std::time::Duration;

/// Jitter applied to every delay: ±10 %.
pub(crate) const JITTER: f64 = 0.1;

/// The delay before the next probe. `consecutive_failures` is 0 after a success; `unit_random` is a
/// random number in `[0, 1)` (a parameter so tests are exact).
pub(crate) fn next_probe_delay(
    interval: Duration,
    max_backoff: Duration,
    consecutive_failures: u32,
    unit_random: f64,
) -> Duration {
    let base = if consecutive_failures == 0 {
        interval
    } else {
        let factor = 2u32.saturating_pow(consecutive_failures.saturating_sub(1).min(16));
        interval.saturating_mul(factor).min(max_backoff.max(interval))
    };
    let jitter = 1.0 + JITTER * (2.0 * unit_random.clamp(0.0, 1.0) - 1.0);
    base.mul_f64(jitter)
}

/// A random delay in `[0, interval / 10)` before the first probe of an MCPServer, spreading a fleet's
/// first probes.
pub(crate) fn initial_delay(interval: Duration, unit_random: f64) -> Duration {
    interval.mul_f64(unit_random.clamp(0.0, 1.0) * JITTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(600);

    #[test]
    fn success_waits_one_interval_with_jitter() {
        assert_eq!(next_probe_delay(MIN, MAX, 0, 0.5), Duration::from_secs(60));
        assert_eq!(next_probe_delay(MIN, MAX, 0, 0.0), Duration::from_secs(54));
        assert_eq!(next_probe_delay(MIN, MAX, 0, 1.0), Duration::from_secs(66));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let delays: Vec<u64> = (1..=6)
            .map(|n| next_probe_delay(MIN, MAX, n, 0.5).as_secs())
            .collect();
        assert_eq!(delays, [60, 120, 240, 480, 600, 600]);
        assert_eq!(next_probe_delay(MIN, MAX, u32::MAX, 0.5), MAX);
    }

    #[test]
    fn initial_delay_stays_within_a_tenth_of_the_interval() {
        assert_eq!(initial_delay(MIN, 0.0), Duration::ZERO);
        assert_eq!(initial_delay(MIN, 0.5), Duration::from_secs(3));
    }
}
