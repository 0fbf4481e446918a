//! The one syntax of every duration flag of every component: Go's (`500ms`, `30s`, `5m`, `1h30m`), the
//! syntax of Kubernetes' own durations and of the tools an operator runs next to ours, parsed by
//! [`kube::core::Duration`]. The functions here are clap value parsers; their errors say what is
//! accepted.

use std::time::Duration;

/// Longest accepted text. Keeps every parsed value far from overflowing `Duration`.
const MAX_LEN: usize = 32;
/// Most digits before the decimal point of one number (999999999h is over 100,000 years).
const MAX_INTEGER_DIGITS: usize = 9;
/// The units Go accepts, longest first so `ms` is not read as `m`.
const UNITS: [&str; 8] = ["ns", "us", "\u{00b5}s", "\u{03bc}s", "ms", "s", "m", "h"];

/// Parses a duration that must be greater than zero (an interval, a timeout, a lifetime).
pub fn parse_positive(value: &str) -> Result<Duration, String> {
    let duration = parse_non_negative(value)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {value:?}: it must be greater than zero, for example 30s"
        ));
    }
    Ok(duration)
}

/// Parses a duration that may be zero (a delay or a grace period that may be skipped).
pub fn parse_non_negative(value: &str) -> Result<Duration, String> {
    if !is_go_duration(value) {
        return Err(format!(
            "invalid duration {value:?}: use a number and a unit (ns, us, ms, s, m or h), \
             several in a row if needed, for example 500ms, 30s, 5m or 1h30m"
        ));
    }
    let parsed: kube::core::Duration = value.parse().map_err(|error| {
        format!("invalid duration {value:?}: {error}; for example 500ms, 30s, 5m or 1h30m")
    })?;
    if parsed.is_negative() && !Duration::from(parsed).is_zero() {
        return Err(format!(
            "invalid duration {value:?}: it must not be negative, for example 30s"
        ));
    }
    Ok(parsed.into())
}

/// Whether `value` is in Go's grammar `[-+]?("0" | (number unit)+)`, a number being digits with an
/// optional fraction, and short enough to parse without overflow. kube's parser panics on some
/// inputs outside this grammar (a sign inside, a huge number), so it only ever sees inputs inside.
fn is_go_duration(value: &str) -> bool {
    if value.len() > MAX_LEN {
        return false;
    }
    let rest = value.strip_prefix(['+', '-']).unwrap_or(value);
    if rest == "0" {
        return true;
    }
    let mut rest = rest;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let integer = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let mut number = integer;
        if rest[number..].starts_with('.') {
            let fraction = rest[number + 1..].len()
                - rest[number + 1..]
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            if integer + fraction == 0 {
                return false;
            }
            number += 1 + fraction;
        }
        if number == 0 || integer > MAX_INTEGER_DIGITS {
            return false;
        }
        rest = &rest[number..];
        let Some(unit) = UNITS.iter().find(|unit| rest.starts_with(**unit)) else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax_parses() {
        for (text, expected) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("720h", Duration::from_secs(720 * 3600)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("+2m", Duration::from_secs(120)),
            ("100us", Duration::from_micros(100)),
            ("10ns", Duration::from_nanos(10)),
        ] {
            assert_eq!(parse_positive(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn zero_is_refused_where_a_positive_duration_is_needed() {
        for zero in ["0", "0s", "-0s", "0h0m"] {
            assert_eq!(parse_non_negative(zero), Ok(Duration::ZERO), "{zero}");
            let error = parse_positive(zero).unwrap_err();
            assert!(error.contains("must be greater than zero"), "{error}");
        }
    }

    #[test]
    fn negative_durations_are_refused() {
        for negative in ["-1s", "-1h30m"] {
            let error = parse_non_negative(negative).unwrap_err();
            assert!(error.contains("must not be negative"), "{error}");
            assert!(parse_positive(negative).is_err());
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_syntax() {
        for bad in [
            "",
            "5",
            "60",
            "5 seconds",
            "5sec",
            "s",
            ".s",
            "1h-5m",
            "1h+5m",
            "1e3s",
            "inf",
            "NaNs",
            "1d",
            " 5s",
            "5s ",
            "-",
            "1..5s",
            "9999999999h",
            "1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h",
        ] {
            let error = parse_non_negative(bad).unwrap_err();
            assert!(
                error.contains("use a number and a unit (ns, us, ms, s, m or h)"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn the_longest_accepted_values_do_not_overflow() {
        let parsed = parse_positive("999999999h999999999m999999999s").unwrap();
        assert!(parsed > Duration::from_secs(999_999_999 * 3600));
    }
}
