//! Test fixtures for the grant controller: the managed Role/RoleBinding objects each grant kind writes,
//! a scenario as a list of steps (what the watch caches hold, then the exact requests the reconciles
//! send, one `Expect` per request), and one call that reconciles every namespace the scenario mentions
//! against the mock API server.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PartialObjectMeta;
use muster_exchange_api::credentials_policy::{CredentialsPolicy, NamespaceRefusal};
use muster_exchange_api::names::GRANT_KIND_LABEL;
use serde_json::{Value, json};

use super::controller::GrantContext;
use super::credential_grants::CredentialGrantConfig;
use super::grant_sync::SyncReport;
use super::kubeconfig_grants::KubeconfigGrantConfig;
use super::namespace_sync::sync_namespace_grants;
use super::rbac_objects::GrantKind;
use super::stores::{GrantStores, KindStores, Synced};
use super::subjects::parse_service_account;
use crate::runtime::fixtures::{Expect, run_scenario, synced, synced_store, test_context};

/// One step of a scenario: something the caches hold, or a request the reconciles must send.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Organization namespaces (in the cache of all namespaces too).
    Organizations(Vec<String>),
    /// Secrets of one namespace, by name.
    Secrets(String, Vec<String>),
    /// Opted-in credentials Secrets, `(namespace, name)`.
    OptedIn(Vec<(String, String)>),
    /// Roles of one grant kind.
    Roles(GrantKind, Vec<Value>),
    /// RoleBindings of one grant kind.
    Bindings(GrantKind, Vec<Value>),
    /// An expected request.
    Request(Expect),
}

impl Step {
    /// The expected request answered with `status` (a failure).
    pub fn failing(self, status: u16) -> Self {
        match self {
            Step::Request(e) => Step::Request(e.failing(status)),
            other => other,
        }
    }
}

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
/// The query string of every server-side apply the controller sends.
const APPLY: &str = "?&force=true&fieldManager=muster-exchange-controller";

/// One kind of grant: the name its Role and RoleBinding share, its kind label, and the subjects its
/// RoleBinding binds when the sync runs with the test configuration of that kind.
pub(super) struct Grant {
    pub name: &'static str,
    pub kind: &'static str,
    grant_kind: GrantKind,
    subject: (&'static str, &'static str),
}

/// Kubeconfig grants, bound to `muster/mcp-kubernetes` (see [`kubeconfig_config`]).
pub(super) const KUBECONFIG: Grant = Grant {
    name: "muster-exchange-kubeconfig-reader",
    kind: "kubeconfig",
    grant_kind: GrantKind::Kubeconfig,
    subject: ("muster", "mcp-kubernetes"),
};

/// Credential grants, bound to the reader `muster/muster` (see [`credential_config`]).
pub(super) const CREDENTIALS: Grant = Grant {
    name: "muster-exchange-credentials-reader",
    kind: "credentials",
    grant_kind: GrantKind::Credentials,
    subject: ("muster", "muster"),
};

impl Grant {
    /// The managed Role in `ns` allowing `get` on exactly `secrets`.
    pub fn role(&self, ns: &str, secrets: &[&str]) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": self.meta(ns),
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": secrets, "verbs": ["get"]}]})
    }

    /// The managed RoleBinding in `ns` to this kind's test subject.
    pub fn binding(&self, ns: &str) -> Value {
        let (namespace, name) = self.subject;
        self.binding_to(
            ns,
            json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]),
        )
    }

    /// The managed RoleBinding in `ns` to `subjects`.
    pub fn binding_to(&self, ns: &str, subjects: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": self.meta(ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": self.name},
            "subjects": subjects})
    }

    fn meta(&self, ns: &str) -> Value {
        json!({"name": self.name, "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "muster-exchange", GRANT_KIND_LABEL: self.kind},
            "annotations": {"exchange.muster.giantswarm.io/description":
                "Managed by the muster-exchange controller; edits are overwritten."}})
    }

    /// The cache of this kind's Roles (watched by name) holds `roles`.
    pub fn list_roles(&self, roles: Vec<Value>) -> Step {
        Step::Roles(self.grant_kind, roles)
    }

    /// The cache of this kind's RoleBindings (watched by name) holds `bindings`.
    pub fn list_bindings(&self, bindings: Vec<Value>) -> Step {
        Step::Bindings(self.grant_kind, bindings)
    }

    /// `PATCH {RBAC}/namespaces/{ns}/roles/{name}{APPLY}` with exactly `self.role(ns, secrets)`.
    pub fn apply_role(&self, ns: &str, secrets: &[&str]) -> Step {
        Step::Request(Expect::apply(
            format!("{}{APPLY}", self.uri("roles", ns)),
            self.role(ns, secrets),
        ))
    }

    /// `PATCH {RBAC}/namespaces/{ns}/rolebindings/{name}{APPLY}` with exactly `self.binding(ns)`.
    pub fn apply_binding(&self, ns: &str) -> Step {
        Step::Request(Expect::apply(
            format!("{}{APPLY}", self.uri("rolebindings", ns)),
            self.binding(ns),
        ))
    }

    /// `DELETE {RBAC}/namespaces/{ns}/roles/{name}?` guarded by `uid` and resourceVersion 7.
    pub fn delete_role(&self, ns: &str, uid: &str) -> Step {
        Step::Request(Expect::delete(
            format!("{}?", self.uri("roles", ns)),
            guarded_delete(uid),
        ))
    }

    /// `DELETE {RBAC}/namespaces/{ns}/rolebindings/{name}?` guarded by `uid` and resourceVersion 7.
    pub fn delete_binding(&self, ns: &str, uid: &str) -> Step {
        Step::Request(Expect::delete(
            format!("{}?", self.uri("rolebindings", ns)),
            guarded_delete(uid),
        ))
    }

    fn uri(&self, resource: &str, ns: &str) -> String {
        format!("{RBAC}/namespaces/{ns}/{resource}/{}", self.name)
    }
}

/// An object as the API server returns it: with uid and resourceVersion 7.
pub(super) fn stored(mut object: Value, uid: &str) -> Value {
    object["metadata"]["uid"] = json!(uid);
    object["metadata"]["resourceVersion"] = json!("7");
    object
}

/// The body of a delete that only goes through if the object is still the one the sync read.
fn guarded_delete(uid: &str) -> Value {
    json!({"preconditions": {"resourceVersion": "7", "uid": uid}})
}

/// The cache of organization namespaces holds `names`.
pub(super) fn list_org_namespaces(names: &[&str]) -> Step {
    Step::Organizations(names.iter().map(|n| n.to_string()).collect())
}

/// The Secret cache holds Secrets named `names` in `ns`.
pub(super) fn list_secrets(ns: &str, names: &[&str]) -> Step {
    Step::Secrets(ns.to_string(), names.iter().map(|n| n.to_string()).collect())
}

/// The cache of opted-in credentials Secrets (label and type `Opaque`) holds `secrets` (`(ns, name)`).
pub(super) fn list_opted_in(secrets: &[(&str, &str)]) -> Step {
    Step::OptedIn(
        secrets
            .iter()
            .map(|(ns, name)| (ns.to_string(), name.to_string()))
            .collect(),
    )
}

/// Kubeconfig grants for organization namespaces to `muster/mcp-kubernetes`; `muster-exchange` is the
/// controller's own namespace.
pub(super) fn kubeconfig_config() -> KubeconfigGrantConfig {
    KubeconfigGrantConfig {
        namespace_selector: "giantswarm.io/organization".into(),
        subjects: vec![parse_service_account("serviceaccount:muster/mcp-kubernetes").unwrap()],
        secret_suffix: "-kubeconfig".into(),
        controller_namespace: "muster-exchange".into(),
    }
}

/// What the reconciles of a scenario did, summed over its namespaces.
#[derive(Debug, Default)]
pub(super) struct Totals {
    /// Writes and failures of the grant kind under test.
    pub sync: SyncReport,
    /// Refusals of that kind: `(namespace, why)` for kubeconfig grants, `(namespace/secret, why)` for
    /// credential grants.
    pub refused: Vec<(String, NamespaceRefusal)>,
    /// `namespace/secret` of credentials Secrets not granted because they have not opted in.
    pub not_opted_in: Vec<String>,
}

fn meta(ns: Option<&str>, name: &str) -> Value {
    let mut meta = json!({"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1"});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta})
}

/// Reconciles every namespace `steps` and `servers` mention (in name order) from caches filled by
/// `steps`, against an API server expecting exactly the requests in `steps`; sums the reports of `kind`.
pub(super) async fn reconcile_all(
    kind: GrantKind,
    steps: Vec<Step>,
    servers: Vec<Value>,
    kubeconfig: KubeconfigGrantConfig,
    credentials: CredentialGrantConfig,
) -> Totals {
    let (mut organizations, mut secrets, mut expected) = (Vec::new(), Vec::new(), Vec::new());
    let mut opted_in = Vec::new();
    let (mut roles, mut bindings) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut namespaces = BTreeSet::new();
    let index = |k: GrantKind| usize::from(k == GrantKind::Credentials);
    for step in steps {
        match step {
            Step::Organizations(names) => {
                namespaces.extend(names.iter().cloned());
                organizations.extend(names.iter().map(|n| meta(None, n)));
            }
            Step::Secrets(ns, names) => {
                namespaces.insert(ns.clone());
                secrets.extend(names.iter().map(|n| meta(Some(&ns), n)));
            }
            Step::OptedIn(pairs) => {
                for (ns, name) in pairs {
                    namespaces.insert(ns.clone());
                    opted_in.push(meta(Some(&ns), &name));
                }
            }
            Step::Roles(k, objects) => roles[index(k)].extend(objects),
            Step::Bindings(k, objects) => bindings[index(k)].extend(objects),
            Step::Request(e) => expected.push(e),
        }
    }
    for object in roles.iter().chain(&bindings).flatten().chain(&servers) {
        namespaces.extend(object["metadata"]["namespace"].as_str().map(str::to_string));
    }
    for server in &servers {
        let reference = &server["spec"]["auth"]["tokenExchange"]["clientCredentialsSecretRef"]["namespace"];
        namespaces.extend(reference.as_str().map(str::to_string));
    }
    let all: Vec<Value> = namespaces.iter().map(|n| meta(None, n)).collect();
    let kind_stores = |i: usize| KindStores {
        roles: synced::<Role>(&roles[i], ()),
        bindings: synced::<RoleBinding>(&bindings[i], ()),
    };
    let stores = GrantStores {
        namespaces: synced::<PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>>(&all, ()),
        organizations: synced(&organizations, ()),
        secrets: synced::<PartialObjectMeta<k8s_openapi::api::core::v1::Secret>>(&secrets, ()),
        opted_in: synced::<PartialObjectMeta<k8s_openapi::api::core::v1::Secret>>(&opted_in, ()),
        kubeconfig: kind_stores(0),
        credentials: kind_stores(1),
        servers: synced_store(&servers),
        synced: Synced::complete(),
    };
    run_scenario(expected, |client| async move {
        crate::probe::tests::install_crypto();
        let (_leader_tx, leader) = tokio::sync::watch::channel(true);
        let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
        let probe = crate::probe::controller_tests::probe_config(std::time::Duration::from_secs(60));
        let mut ctx = test_context(client, exchange, leader, probe);
        ctx.kubeconfig = kubeconfig;
        ctx.credentials = credentials;
        let g = GrantContext::new(Arc::new(ctx), stores);
        let mut totals = Totals::default();
        for ns in &namespaces {
            let report = sync_namespace_grants(&g, ns).await;
            totals.not_opted_in.extend(report.credentials_not_opted_in);
            let (sync, refused) = match kind {
                GrantKind::Kubeconfig => (
                    report.kubeconfig,
                    report
                        .kubeconfig_refused
                        .map(|why| (ns.clone(), why))
                        .into_iter()
                        .collect(),
                ),
                GrantKind::Credentials => (report.credentials, report.credentials_refused),
            };
            totals.sync.applied += sync.applied;
            totals.sync.deleted += sync.deleted;
            totals.sync.granted_namespaces += sync.granted_namespaces;
            totals.sync.errors.extend(sync.errors);
            totals.sync.unmanaged_conflicts.extend(sync.unmanaged_conflicts);
            totals.refused.extend(refused);
        }
        totals
    })
    .await
}

/// Reconciles the kubeconfig grants of `steps` with [`kubeconfig_config`] (no MCPServers).
pub(super) async fn sync_kubeconfig(steps: Vec<Step>) -> Totals {
    let credentials = credential_config(None, "muster-exchange", false);
    reconcile_all(
        GrantKind::Kubeconfig,
        steps,
        Vec::new(),
        kubeconfig_config(),
        credentials,
    )
    .await
}

/// Credential grants with `reader` (`serviceaccount:ns/name`, or none), the controller in
/// `controller_namespace` and cross-namespace Secrets allowed or not.
pub(super) fn credential_config(
    reader: Option<&str>,
    controller_namespace: &str,
    allow_cross_namespace: bool,
) -> CredentialGrantConfig {
    CredentialGrantConfig {
        reader: reader.map(|r| parse_service_account(r).unwrap()),
        policy: CredentialsPolicy::for_controller(controller_namespace, allow_cross_namespace),
    }
}

/// Reconciles the credential grants of `steps` and `servers` (no kubeconfig grant subjects).
pub(super) async fn sync_credentials(
    steps: Vec<Step>,
    servers: Vec<Value>,
    config: CredentialGrantConfig,
) -> Totals {
    let mut kubeconfig = kubeconfig_config();
    kubeconfig.subjects.clear();
    reconcile_all(GrantKind::Credentials, steps, servers, kubeconfig, config).await
}

/// An oauth MCPServer `ns/name` with token exchange `enabled` and this `clientCredentialsSecretRef`.
pub(super) fn mcpserver(ns: &str, name: &str, enabled: bool, secret: Value) -> Value {
    json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": enabled, "dexTokenEndpoint": "https://dex.example/token",
                "connectorId": "local", "clientCredentialsSecretRef": secret}}}
    })
}

/// Every grant cache synced and empty.
pub(super) fn synced_stores() -> GrantStores {
    let kind_stores = || KindStores {
        roles: synced::<Role>(&[], ()),
        bindings: synced::<RoleBinding>(&[], ()),
    };
    GrantStores {
        namespaces: synced(&[], ()),
        organizations: synced(&[], ()),
        secrets: synced(&[], ()),
        opted_in: synced(&[], ()),
        kubeconfig: kind_stores(),
        credentials: kind_stores(),
        servers: synced_store(&[]),
        synced: Synced::complete(),
    }
}
