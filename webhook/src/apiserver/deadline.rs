//! The deadline of one request/response call to the API server.

use std::future::Future;
use std::time::Duration;

/// Longest wait for the API server's answer to one request/response call. Generous for a healthy API
/// server (answers take milliseconds) and short enough that a hung call is retried by the loop that
/// made it (the certificate loop) or fails the start with a message.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A call the API server did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the API server did not answer {call} within {after:?}; check that the webhook can reach the API \
     server (network policies, proxy settings) and that the API server is not overloaded"
)]
pub(crate) struct CallTimedOut {
    /// What was asked, e.g. `get Secret muster-exchange/muster-exchange-webhook-ca`.
    pub(crate) call: String,
    /// The deadline.
    pub(crate) after: Duration,
}

/// `call`, or a [`CallTimedOut`] error (as `kube::Error::Service`, so callers' error types stay as
/// they are) when it has not finished within `after`. `describe` names the call; it runs only on
/// timeout.
pub(crate) async fn within<T>(
    after: Duration,
    describe: impl FnOnce() -> String,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    match tokio::time::timeout(after, call).await {
        Ok(result) => result,
        Err(_) => Err(kube::Error::Service(Box::new(CallTimedOut {
            call: describe(),
            after,
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that never finishes fails at the deadline, naming the call and what to check; paused time
    /// makes the ten seconds pass at once.
    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_fails_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let never = std::future::pending::<Result<(), kube::Error>>();
        let error = within(CALL_TIMEOUT, || "get Secret ns/ca".into(), never)
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), CALL_TIMEOUT);
        let message = error.to_string();
        assert!(
            message.contains("the API server did not answer get Secret ns/ca within 10s"),
            "{message}"
        );
        assert!(
            message.contains("check that the webhook can reach the API server"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_before_the_deadline_is_passed_through() {
        let answered = within(CALL_TIMEOUT, || unreachable!(), async { Ok::<_, kube::Error>(7) }).await;
        assert_eq!(answered.unwrap(), 7);
    }
}
