//! `muster-exchange diagnose`: the controller's checks run once, from a laptop or CI, like `linkerd check`.
//! One block per MCPServer with each condition's status, reason and message; MCPServers are checked
//! concurrently, so black-holed clusters cost one probe timeout in total, not one each.

use std::fmt::Write as _;

use futures::StreamExt;
use kube::{Client, ResourceExt};
use muster_exchange_dex::ExchangeClient;

use super::sources::{FileInputs, ServerList, list_mcpservers};
use crate::probe::ProbeSettings;
use crate::probe::conditions::build::conditions_for;
use crate::probe::fleet::probe_fleet;
use crate::probe::outcome::ProbeOutcome;
use crate::probe::read_target::{LocatedLookup, target_from_lookup};
use crate::probe::secret_optin::{SecretLookup, judge_found, read_credentials_secret};
use crate::probe::target::{ProbeTarget, credentials_secret_of};
use crate::runtime::error::Error;
use muster_exchange_api::credentials_policy::CredentialsPolicy;

/// Most MCPServers probed at once by `diagnose`.
pub(crate) const DIAGNOSE_CONCURRENCY: usize = 64;

/// What to check, and what was found along the way.
#[derive(Debug, Default)]
pub(crate) struct DiagnoseInput {
    /// MCPServers someone exchanges for (topology M or F).
    pub(crate) targets: Vec<ProbeTarget>,
    /// MCPServers skipped because nobody exchanges for them (named, so nothing is silently skipped).
    pub(crate) skipped: Vec<String>,
    /// Objects that are not valid MCPServers, with why.
    pub(crate) malformed: Vec<String>,
    /// Objects in the files that are neither MCPServers nor Secrets.
    pub(crate) ignored: Vec<String>,
}

fn split(
    servers: &ServerList,
    policy: &CredentialsPolicy,
    mut secret_of: impl FnMut(&str, &str) -> Result<Option<LocatedLookup>, String>,
) -> DiagnoseInput {
    let mut input = DiagnoseInput {
        malformed: servers.malformed.clone(),
        ..DiagnoseInput::default()
    };
    for server in &servers.servers {
        let read = match credentials_secret_of(server, policy)
            .and_then(|l| l.readable().map(|(ns, name)| (ns.to_string(), name.to_string())))
        {
            Some((ns, name)) => secret_of(&ns, &name),
            None => Ok(None),
        };
        match target_from_lookup(
            server,
            read.as_ref().map(Option::as_ref).map_err(Clone::clone),
            policy,
        ) {
            Some(target) => input.targets.push(target),
            None => input.skipped.push(format!(
                "{}/{}",
                server.namespace().unwrap_or_default(),
                server.name_any()
            )),
        }
    }
    input
}

/// Targets from manifest files; Secrets come from the same files (judged by the controller's rule, so
/// diagnose predicts what the controller reports).
pub(crate) fn input_from_files(files: &FileInputs, policy: &CredentialsPolicy) -> DiagnoseInput {
    let mut input = split(&files.servers, policy, |ns, name| {
        let lookup = match files.secrets.get(&(ns.to_string(), name.to_string())) {
            Some(secret) => judge_found(secret.clone()),
            None => SecretLookup::NotFound,
        };
        Ok(Some(LocatedLookup {
            namespace: ns.to_string(),
            name: name.to_string(),
            lookup,
        }))
    });
    input.ignored = files.ignored.clone();
    input
}

/// Targets from the cluster of the current kubeconfig context. Secrets `policy` refuses are never read,
/// nor are the values of Secrets that have not opted in.
pub(crate) async fn input_from_cluster(
    client: &Client,
    namespace: Option<&str>,
    policy: &CredentialsPolicy,
) -> Result<DiagnoseInput, Error> {
    let servers = list_mcpservers(client, namespace).await?;
    let mut secrets = std::collections::BTreeMap::new();
    let locations = servers
        .servers
        .iter()
        .filter_map(|s| credentials_secret_of(s, policy));
    for location in locations {
        let Some((ns, name)) = location.readable() else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(entry) =
            secrets.entry((ns.to_string(), name.to_string()))
        {
            let lookup = read_credentials_secret(client, ns, name).await?;
            entry.insert(LocatedLookup {
                namespace: ns.to_string(),
                name: name.to_string(),
                lookup,
            });
        }
    }
    Ok(split(&servers, policy, |ns, name| {
        Ok(secrets.get(&(ns.to_string(), name.to_string())).cloned())
    }))
}

/// Probes every target concurrently; results sorted by `namespace/name`.
pub(crate) async fn check_all(
    client: &ExchangeClient,
    targets: Vec<ProbeTarget>,
    settings: &ProbeSettings,
) -> Vec<(ProbeTarget, ProbeOutcome)> {
    let mut results: Vec<_> = probe_fleet(client, targets, settings, DIAGNOSE_CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(t, _)| t.key());
    results
}

fn mark(status: &str) -> &'static str {
    match status {
        "True" => "[ok]  ",
        "False" => "[FAIL]",
        _ => "[--]  ",
    }
}

/// The report: one block per MCPServer, then notes and a summary line.
pub(crate) fn render(input_notes: &DiagnoseInput, results: &[(ProbeTarget, ProbeOutcome)]) -> String {
    let mut out = String::new();
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    for (target, outcome) in results {
        let verdict = if outcome.is_ready() {
            "TokenExchangeReady"
        } else {
            "NOT READY"
        };
        let _ = writeln!(out, "mcpserver {}: {verdict} ({})", target.key(), target.endpoint);
        for c in conditions_for(outcome, target.generation, &now) {
            let _ = writeln!(
                out,
                "  {} {:<24} {:<7} {}: {}",
                mark(&c.status),
                c.type_,
                c.status,
                c.reason,
                c.message
            );
        }
        out.push('\n');
    }
    for m in &input_notes.malformed {
        let _ = writeln!(out, "[FAIL] {m}");
    }
    for s in &input_notes.skipped {
        let _ = writeln!(
            out,
            "[--]   mcpserver {s}: no token exchange (neither tokenExchange.enabled nor forwardToken), nothing to check"
        );
    }
    for i in &input_notes.ignored {
        let _ = writeln!(out, "[--]   {i}: neither an MCPServer nor a Secret, ignored");
    }
    let not_ready = results.iter().filter(|(_, o)| !o.is_ready()).count() + input_notes.malformed.len();
    let total = results.len() + input_notes.malformed.len();
    let _ = writeln!(
        out,
        "{} of {total} MCPServers with token exchange are ready",
        total - not_ready
    );
    out
}

/// True when every checked MCPServer is ready and none was malformed.
pub(crate) fn all_ready(input: &DiagnoseInput, results: &[(ProbeTarget, ProbeOutcome)]) -> bool {
    input.malformed.is_empty() && results.iter().all(|(_, o)| o.is_ready())
}
