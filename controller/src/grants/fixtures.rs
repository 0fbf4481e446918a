//! Test fixtures for the grant reconcilers: the managed Role/RoleBinding objects each grant kind writes,
//! the exact requests its sync sends (one `Expect` per request, so a test's expected list still reads
//! request by request), and one call that runs a sync against the mock API server.

use muster_exchange_api::MCPServer;
use muster_exchange_api::credentials_policy::CredentialsPolicy;
use muster_exchange_api::names::GRANT_KIND_LABEL;
use serde_json::{Value, json};

use super::credential_grants::{CredentialGrantConfig, CredentialSyncReport, sync_credential_grants};
use super::kubeconfig_grants::{KubeconfigGrantConfig, KubeconfigSyncReport, sync_kubeconfig_grants};
use super::subjects::parse_service_account;
use crate::runtime::error::Error;
use crate::runtime::fixtures::{Expect, list, metadata_list, run_scenario};

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
/// The query string of every server-side apply the controller sends.
const APPLY: &str = "?&force=true&fieldManager=muster-exchange-controller";

/// One kind of grant: the name its Role and RoleBinding share, its kind label, and the subjects its
/// RoleBinding binds when the sync runs with the test configuration of that kind.
pub(super) struct Grant {
    pub name: &'static str,
    pub kind: &'static str,
    subject: (&'static str, &'static str),
}

/// Kubeconfig grants, bound to `muster/mcp-kubernetes` (see [`kubeconfig_config`]).
pub(super) const KUBECONFIG: Grant = Grant {
    name: "muster-exchange-kubeconfig-reader",
    kind: "kubeconfig",
    subject: ("muster", "mcp-kubernetes"),
};

/// Credential grants, bound to the reader `muster/muster` (see [`credential_config`]).
pub(super) const CREDENTIALS: Grant = Grant {
    name: "muster-exchange-credentials-reader",
    kind: "credentials",
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

    /// `GET {RBAC}/roles?&fieldSelector=metadata.name%3D{name}`, answered with `roles`.
    pub fn list_roles(&self, roles: Vec<Value>) -> Expect {
        let uri = format!("{RBAC}/roles?&fieldSelector=metadata.name%3D{}", self.name);
        Expect::get(uri, list("RoleList", "rbac.authorization.k8s.io/v1", roles))
    }

    /// `GET {RBAC}/rolebindings?&fieldSelector=metadata.name%3D{name}`, answered with `bindings`.
    pub fn list_bindings(&self, bindings: Vec<Value>) -> Expect {
        let uri = format!("{RBAC}/rolebindings?&fieldSelector=metadata.name%3D{}", self.name);
        Expect::get(
            uri,
            list("RoleBindingList", "rbac.authorization.k8s.io/v1", bindings),
        )
    }

    /// `PATCH {RBAC}/namespaces/{ns}/roles/{name}{APPLY}` with exactly `self.role(ns, secrets)`.
    pub fn apply_role(&self, ns: &str, secrets: &[&str]) -> Expect {
        Expect::apply(
            format!("{}{APPLY}", self.uri("roles", ns)),
            self.role(ns, secrets),
        )
    }

    /// `PATCH {RBAC}/namespaces/{ns}/rolebindings/{name}{APPLY}` with exactly `self.binding(ns)`.
    pub fn apply_binding(&self, ns: &str) -> Expect {
        Expect::apply(
            format!("{}{APPLY}", self.uri("rolebindings", ns)),
            self.binding(ns),
        )
    }

    /// `DELETE {RBAC}/namespaces/{ns}/roles/{name}?` guarded by `uid` and resourceVersion 7.
    pub fn delete_role(&self, ns: &str, uid: &str) -> Expect {
        Expect::delete(format!("{}?", self.uri("roles", ns)), guarded_delete(uid))
    }

    /// `DELETE {RBAC}/namespaces/{ns}/rolebindings/{name}?` guarded by `uid` and resourceVersion 7.
    pub fn delete_binding(&self, ns: &str, uid: &str) -> Expect {
        Expect::delete(format!("{}?", self.uri("rolebindings", ns)), guarded_delete(uid))
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

/// `GET /api/v1/namespaces?&labelSelector=giantswarm.io%2Forganization`, answered with `names`.
pub(super) fn list_org_namespaces(names: &[&str]) -> Expect {
    Expect::get(
        "/api/v1/namespaces?&labelSelector=giantswarm.io%2Forganization",
        metadata_list("", names),
    )
}

/// `GET /api/v1/namespaces/{ns}/secrets?`, answered with Secrets named `names`.
pub(super) fn list_secrets(ns: &str, names: &[&str]) -> Expect {
    Expect::get(secrets_uri(ns), metadata_list(ns, names))
}

/// `GET /api/v1/namespaces/{ns}/secrets?` answered with a 500.
pub(super) fn list_secrets_failing(ns: &str) -> Expect {
    Expect::get(secrets_uri(ns), json!({})).failing(500)
}

fn secrets_uri(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets?")
}

/// Kubeconfig grants for organization namespaces to `muster/mcp-kubernetes`; `muster-exchange` is the
/// controller's own namespace.
pub(super) fn kubeconfig_config() -> KubeconfigGrantConfig {
    KubeconfigGrantConfig {
        namespace_selector: "giantswarm.io/organization".into(),
        subjects: vec![parse_service_account("serviceaccount:muster/mcp-kubernetes").unwrap()],
        secret_suffix: "-kubeconfig".into(),
        controller_namespace: "muster-exchange".into(),
        concurrency: 1,
    }
}

/// Runs one kubeconfig-grant sync with [`kubeconfig_config`] against an API server expecting `expected`.
pub(super) async fn sync_kubeconfig(expected: Vec<Expect>) -> Result<KubeconfigSyncReport, Error> {
    run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &kubeconfig_config()).await
    })
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
        concurrency: 1,
    }
}

/// Runs one credential-grant sync of `servers` against an API server expecting `expected`.
pub(super) async fn sync_credentials(
    expected: Vec<Expect>,
    servers: Vec<MCPServer>,
    config: CredentialGrantConfig,
    incomplete: bool,
) -> Result<CredentialSyncReport, Error> {
    run_scenario(expected, |client| async move {
        sync_credential_grants(&client, &servers, &config, incomplete).await
    })
    .await
}

/// An oauth MCPServer `ns/name` with token exchange `enabled` and this `clientCredentialsSecretRef`.
pub(super) fn mcpserver(ns: &str, name: &str, enabled: bool, secret: Value) -> MCPServer {
    serde_json::from_value(json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": enabled, "dexTokenEndpoint": "https://dex.example/token",
                "connectorId": "local", "clientCredentialsSecretRef": secret}}}
    }))
    .unwrap()
}
