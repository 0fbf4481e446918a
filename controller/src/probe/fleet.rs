//! Probing many MCPServers at once: at most `concurrency` in flight, each under its own timeout, results
//! streamed in completion order so a slow cluster never holds back a fast one's status.

use futures::{Stream, StreamExt, stream};
use muster_exchange_dex::ExchangeClient;

use super::outcome::ProbeOutcome;
use super::target::ProbeTarget;
use super::{ProbeSettings, probe_one};

/// Probes `targets`, yielding each `(target, outcome)` as soon as it is known.
pub(crate) fn probe_fleet<'a>(
    client: &'a ExchangeClient,
    targets: Vec<ProbeTarget>,
    settings: &'a ProbeSettings,
    concurrency: usize,
) -> impl Stream<Item = (ProbeTarget, ProbeOutcome)> + 'a {
    stream::iter(targets)
        .map(move |target| async move {
            let outcome = probe_one(client, &target, settings).await;
            (target, outcome)
        })
        .buffer_unordered(concurrency.max(1))
}
