//! One MCPServer's probe schedule: when it is due, whether a probe is in flight, and how the schedule
//! moves after a probe (interval after success, backoff after failures, at once after a spec change).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use crate::backoff::next_probe_delay;

/// The schedule of one MCPServer.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// When the next probe may start.
    pub next_due: Instant,
    /// Generation last seen in the cache: a spec change is probed right away, not one interval later.
    pub generation: Option<i64>,
    /// Consecutive failed probes (drives the backoff).
    pub failures: u32,
    /// When this MCPServer's Dex last answered, for the `Disconnected` message.
    pub last_answered: Option<Timestamp>,
    /// A probe is running.
    pub in_flight: bool,
}

/// How a finished probe went, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy)]
pub struct ProbeResult {
    /// The generation the probe ran against.
    pub generation: Option<i64>,
    /// Every condition is True.
    pub ready: bool,
    /// The remote Dex answered at all.
    pub answered: bool,
}

/// Moves `schedule` after a probe finished at `now`. `unit_random` in `[0, 1)` jitters the delay.
pub fn after_probe(
    schedule: &mut Schedule,
    result: ProbeResult,
    (interval, max_backoff): (Duration, Duration),
    now: Instant,
    unit_random: f64,
) {
    schedule.in_flight = false;
    if result.answered {
        schedule.last_answered = Some(Timestamp::now());
    }
    if schedule.generation != result.generation {
        // The spec changed while this probe ran: the result describes the old spec, probe the new one now.
        schedule.failures = 0;
        schedule.next_due = now;
        return;
    }
    schedule.failures = if result.ready {
        0
    } else {
        schedule.failures.saturating_add(1)
    };
    let delay = next_probe_delay(interval, max_backoff, schedule.failures, unit_random);
    schedule.next_due = now.checked_add(delay).unwrap_or(now + interval);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(600));

    fn schedule(generation: i64, failures: u32, now: Instant) -> Schedule {
        Schedule {
            next_due: now,
            generation: Some(generation),
            failures,
            last_answered: None,
            in_flight: true,
        }
    }

    #[test]
    fn a_spec_change_during_the_probe_makes_the_next_probe_due_at_once() {
        let now = Instant::now();
        // The cache saw generation 3 while the probe of generation 2 was in flight.
        let mut s = schedule(3, 4, now);
        let result = ProbeResult {
            generation: Some(2),
            ready: false,
            answered: false,
        };
        after_probe(&mut s, result, TIMES, now, 0.5);
        assert_eq!((s.next_due, s.failures, s.in_flight), (now, 0, false));
    }

    #[test]
    fn same_generation_waits_the_interval_or_backs_off() {
        let now = Instant::now();
        let mut s = schedule(2, 0, now);
        let ok = ProbeResult {
            generation: Some(2),
            ready: true,
            answered: true,
        };
        after_probe(&mut s, ok, TIMES, now, 0.5);
        assert_eq!((s.next_due - now, s.failures), (Duration::from_secs(60), 0));
        assert!(s.last_answered.is_some());
        let failed = ProbeResult { ready: false, ..ok };
        after_probe(&mut s, failed, TIMES, now, 0.5);
        after_probe(&mut s, failed, TIMES, now, 0.5);
        assert_eq!((s.next_due - now, s.failures), (Duration::from_secs(120), 2));
    }
}
