//! Pure: a probe outcome becomes our four condition types (`names::OUR_CONDITION_TYPES`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::probe::outcome::{Check, CheckStatus, ProbeOutcome};
use muster_exchange_api::names::{
    CONDITION_DEX_CONNECTED, CONDITION_EXCHANGE_CREDENTIALS_READY, CONDITION_TOKEN_EXCHANGE_READY,
    CONDITION_TOKEN_EXCHANGE_VERIFIED,
};

fn condition(type_: &str, check: &Check, generation: Option<i64>, now: &Time) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: check.status.as_str().to_string(),
        reason: check.reason.to_string(),
        message: check.message.clone(),
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// `TokenExchangeReady` from the three checks: True only when each is True (the probe exchange behind
/// `TokenExchangeVerified` may be switched off).
pub(crate) fn ready_check(outcome: &ProbeOutcome) -> Check {
    let checks = [
        (CONDITION_EXCHANGE_CREDENTIALS_READY, &outcome.credentials),
        (CONDITION_DEX_CONNECTED, &outcome.connected),
        (CONDITION_TOKEN_EXCHANGE_VERIFIED, &outcome.token_exchange),
    ];
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(type_, check)| {
            check.status != CheckStatus::True
                && !(*type_ == CONDITION_TOKEN_EXCHANGE_VERIFIED && check.reason == "ProbeDisabled")
        })
        .map(|(type_, _)| *type_)
        .collect();
    if failing.is_empty() {
        Check::ok(
            "AllChecksPassed",
            "credentials, Dex connection and token exchange are ready",
        )
    } else {
        Check::fail("ChecksFailing", format!("not ready: {}", failing.join(", ")))
    }
}

/// The four conditions for `outcome`, with `now` as transition time (kept later by the merge).
pub(crate) fn conditions_for(outcome: &ProbeOutcome, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    vec![
        condition(
            CONDITION_EXCHANGE_CREDENTIALS_READY,
            &outcome.credentials,
            generation,
            now,
        ),
        condition(CONDITION_DEX_CONNECTED, &outcome.connected, generation, now),
        condition(
            CONDITION_TOKEN_EXCHANGE_VERIFIED,
            &outcome.token_exchange,
            generation,
            now,
        ),
        condition(
            CONDITION_TOKEN_EXCHANGE_READY,
            &ready_check(outcome),
            generation,
            now,
        ),
    ]
}
