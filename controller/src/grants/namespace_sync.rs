//! One namespace's reconcile: both grant kinds brought in line with the caches, and what it did
//! counted in the metrics.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use muster_exchange_api::credentials_policy::NamespaceRefusal;

use super::controller::GrantContext;
use super::credential_grants::desired_credential_grants;
use super::credential_optin::retain_opted_in;
use super::grant_sync::{SyncReport, sync_namespace};
use super::kubeconfig_grants::desired_kubeconfig_grant;
use super::rbac_objects::GrantKind;
use crate::probe::mcpserver::{credentials_namespace, parse_lenient};
use crate::runtime::metrics::{ErrorLabels, GrantLabels, LoopLabels, WriteLabels};

/// What one namespace's reconcile did, per grant kind.
#[derive(Debug, Default)]
pub(crate) struct NamespaceReport {
    /// Kubeconfig grant writes and failures.
    pub(crate) kubeconfig: SyncReport,
    /// Why the namespace may not hold a kubeconfig grant.
    pub(crate) kubeconfig_refused: Option<NamespaceRefusal>,
    /// Credential grant writes and failures.
    pub(crate) credentials: SyncReport,
    /// `(namespace/secret, why)` for credential Secrets here that may not be granted.
    pub(crate) credentials_refused: Vec<(String, NamespaceRefusal)>,
    /// `namespace/secret` of credentials Secrets here not granted because they have not opted in.
    pub(crate) credentials_not_opted_in: Vec<String>,
}

/// Both grant kinds of `namespace`, from the caches.
pub(crate) async fn sync_namespace_grants(g: &GrantContext, namespace: &str) -> NamespaceReport {
    let ctx = &g.ctx;
    let stores = &g.stores;
    let mut report = NamespaceReport::default();

    let organization = stores.organizations.get(&ObjectRef::new(namespace)).is_some();
    let secret_names = stores
        .secrets
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .map(|s| s.name_any());
    let kubeconfig = match desired_kubeconfig_grant(namespace, organization, secret_names, &ctx.kubeconfig) {
        Ok(grant) => grant,
        Err(why) => {
            tracing::warn!(reason = why.reason(), "refusing to grant kubeconfig access here");
            report.kubeconfig_refused = Some(why);
            None
        }
    };
    let observed = stores.observed(GrantKind::Kubeconfig, namespace);
    report.kubeconfig = sync_namespace(
        &ctx.client,
        GrantKind::Kubeconfig,
        namespace,
        kubeconfig.as_ref(),
        &observed,
        true,
    )
    .await;

    // Only MCPServers whose credentials Secret is here; one that does not parse holds back deletes.
    let mut incomplete = false;
    let servers: Vec<_> = stores
        .servers
        .state()
        .into_iter()
        .filter(|o| credentials_namespace(o).is_none_or(|ns| ns == namespace))
        .filter_map(|o| match parse_lenient(&o) {
            Ok(server) => Some(server),
            Err(e) => {
                incomplete = true;
                tracing::warn!(name = ?o.metadata.name, mcpserver_namespace = ?o.metadata.namespace, error = %e,
                    "a malformed MCPServer: no credential grant is deleted here until it is fixed");
                None
            }
        })
        .collect();
    let (mut desired, refused) = desired_credential_grants(&servers, &ctx.credentials);
    for (secret, why) in &refused {
        tracing::warn!(secret = %secret, reason = why.reason(), "refusing to grant credential Secret access here");
    }
    report.credentials_refused = refused;
    let opted_in = stores
        .opted_in
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .map(|s| (namespace.to_string(), s.name_any()))
        .collect();
    let mut here: BTreeMap<_, _> = desired
        .remove(namespace)
        .map(|g| (namespace.to_string(), g))
        .into_iter()
        .collect();
    report.credentials_not_opted_in = retain_opted_in(&mut here, &opted_in);
    for secret in &report.credentials_not_opted_in {
        tracing::warn!(secret = %secret,
            "not granting access to a credentials Secret that has not opted in (label and type Opaque)");
    }
    let credentials = here.remove(namespace);
    let observed = stores.observed(GrantKind::Credentials, namespace);
    report.credentials = sync_namespace(
        &ctx.client,
        GrantKind::Credentials,
        namespace,
        credentials.as_ref(),
        &observed,
        !incomplete,
    )
    .await;
    report
}

/// Counts writes, refusals and failures; returns the number of failures.
pub(super) fn record(g: &GrantContext, namespace: &str, report: &NamespaceReport) -> usize {
    let m = &g.ctx.metrics;
    let kinds = [
        (
            GrantKind::Kubeconfig,
            &report.kubeconfig,
            usize::from(report.kubeconfig_refused.is_some()),
        ),
        (
            GrantKind::Credentials,
            &report.credentials,
            report.credentials_refused.len() + report.credentials_not_opted_in.len(),
        ),
    ];
    let mut failed = 0;
    let mut gauges = g.gauges.lock().unwrap_or_else(|p| p.into_inner());
    for (kind, sync, refused) in kinds {
        let k = kind.label_value();
        let r#loop = match kind {
            GrantKind::Kubeconfig => "kubeconfig_grants",
            GrantKind::Credentials => "credential_grants",
        };
        m.reconciles.get_or_create(&LoopLabels { r#loop }).inc();
        for (operation, count) in [("apply", sync.applied), ("delete", sync.deleted)] {
            m.grant_writes
                .get_or_create(&WriteLabels { kind: k, operation })
                .inc_by(count as u64);
        }
        for e in &sync.errors {
            tracing::warn!(error = %e, grant = k, "grant write failed; retrying");
            m.errors
                .get_or_create(&ErrorLabels {
                    r#loop,
                    error: e.category(),
                })
                .inc();
        }
        failed += sync.errors.len();
        let entry = (sync.granted_namespaces > 0, refused);
        if entry == (false, 0) {
            gauges.remove(&(kind, namespace.to_string()));
        } else {
            gauges.insert((kind, namespace.to_string()), entry);
        }
        let of_kind = gauges.iter().filter(|((k2, _), _)| *k2 == kind);
        let (granted, refused) = of_kind.fold((0i64, 0i64), |(g, r), (_, (granted, refused))| {
            (g + i64::from(*granted), r + *refused as i64)
        });
        m.grants_managed
            .get_or_create(&GrantLabels { kind: k })
            .set(granted);
        m.grants_refused
            .get_or_create(&GrantLabels { kind: k })
            .set(refused);
    }
    failed
}
