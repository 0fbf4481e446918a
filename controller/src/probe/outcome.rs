//! What a probe found: one check per condition, each with status, reason and message.

/// Status of one check, as Kubernetes condition statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// The check passed.
    True,
    /// The check failed.
    False,
    /// The check could not run (an earlier one failed, or it is switched off).
    Unknown,
}

impl CheckStatus {
    /// `True`, `False` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::True => "True",
            CheckStatus::False => "False",
            CheckStatus::Unknown => "Unknown",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Passed, failed or not run.
    pub status: CheckStatus,
    /// CamelCase reason (a bounded set: used as a metric label).
    pub reason: &'static str,
    /// What was found and what to do; never a secret.
    pub message: String,
}

impl Check {
    /// A passing check.
    pub fn ok(reason: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: CheckStatus::True,
            reason,
            message: message.into(),
        }
    }

    /// A failing check.
    pub fn fail(reason: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: CheckStatus::False,
            reason,
            message: message.into(),
        }
    }

    /// A check that did not run.
    pub fn unknown(reason: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: CheckStatus::Unknown,
            reason,
            message: message.into(),
        }
    }
}

/// The three probed checks of one MCPServer (`Ready` is derived from them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// `CredentialsReady`.
    pub credentials: Check,
    /// `Connected`.
    pub connected: Check,
    /// `TokenExchangeReady`.
    pub token_exchange: Check,
}

impl ProbeOutcome {
    /// True when nothing failed (used for backoff and diagnose's exit code).
    pub fn is_ready(&self) -> bool {
        crate::probe::conditions::build::ready_check(self).status == CheckStatus::True
    }
}
