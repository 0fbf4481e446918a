//! What a probe found: one check per condition, each with status, reason and message.

/// Status of one check, as Kubernetes condition statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckStatus {
    /// The check passed.
    True,
    /// The check failed.
    False,
    /// The check could not run (an earlier one failed, or it is switched off).
    Unknown,
}

impl CheckStatus {
    /// `True`, `False` or `Unknown`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CheckStatus::True => "True",
            CheckStatus::False => "False",
            CheckStatus::Unknown => "Unknown",
        }
    }
}

/// Most bytes of a condition message: whatever a remote Dex answers, a condition stays far below the
/// CRD's 32768-character limit and readable in `kubectl describe`.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;

/// `message` cut to [`MAX_MESSAGE_BYTES`] on a character boundary, marked with `…` when cut.
pub(crate) fn cap_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// Passed, failed or not run.
    pub(crate) status: CheckStatus,
    /// CamelCase reason (a bounded set: used as a metric label).
    pub(crate) reason: &'static str,
    /// What was found and what to do; never a secret; at most [`MAX_MESSAGE_BYTES`].
    pub(crate) message: String,
}

impl Check {
    /// A passing check.
    pub(crate) fn ok(reason: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: CheckStatus::True,
            reason,
            message: cap_message(message.into()),
        }
    }

    /// A failing check.
    pub(crate) fn fail(reason: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: CheckStatus::False,
            reason,
            message: cap_message(message.into()),
        }
    }

    /// A check that did not run.
    pub(crate) fn unknown(reason: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: CheckStatus::Unknown,
            reason,
            message: cap_message(message.into()),
        }
    }
}

/// The three probed checks of one MCPServer (the aggregate `TokenExchangeReady` is derived from them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeOutcome {
    /// `ExchangeCredentialsReady`.
    pub(crate) credentials: Check,
    /// `DexConnected`.
    pub(crate) connected: Check,
    /// `TokenExchangeVerified`.
    pub(crate) token_exchange: Check,
}

impl ProbeOutcome {
    /// True when nothing failed (used for backoff and diagnose's exit code).
    pub(crate) fn is_ready(&self) -> bool {
        crate::probe::conditions::build::ready_check(self).status == CheckStatus::True
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_capped_on_a_char_boundary() {
        let long = format!("Dex said: {}", "ü".repeat(20_000));
        for check in [
            Check::ok("A", long.clone()),
            Check::fail("B", long.clone()),
            Check::unknown("C", long.clone()),
        ] {
            assert!(
                check.message.len() <= MAX_MESSAGE_BYTES,
                "{}",
                check.message.len()
            );
            assert!(check.message.starts_with("Dex said: üü") && check.message.ends_with('…'));
        }
        assert_eq!(Check::fail("D", "short").message, "short");
    }
}
