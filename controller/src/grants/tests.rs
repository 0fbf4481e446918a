//! ApiServerVerifier scenarios for the grant reconcilers: the exact requests each sync sends.

use muster_exchange_api::names::GRANT_KIND_LABEL;
use serde_json::{Value, json};

use super::kubeconfig_grants::{KubeconfigGrantConfig, sync_kubeconfig_grants};
use super::subjects::parse_service_account;
use crate::fixtures::{Expect, list, metadata_list, run_scenario};

pub(super) const NS_LIST: &str = "/api/v1/namespaces?&labelSelector=giantswarm.io%2Forganization";
pub(super) const ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/roles?&fieldSelector=metadata.name%3Dmuster-exchange-kubeconfig-reader";
pub(super) const BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/rolebindings?&fieldSelector=metadata.name%3Dmuster-exchange-kubeconfig-reader";
pub(super) const APPLY: &str = "?&force=true&fieldManager=muster-exchange-controller";

pub(super) fn config() -> KubeconfigGrantConfig {
    KubeconfigGrantConfig {
        namespace_selector: "giantswarm.io/organization".into(),
        subjects: vec![parse_service_account("serviceaccount:muster/mcp-kubernetes").unwrap()],
        secret_suffix: "-kubeconfig".into(),
        controller_namespace: "muster-exchange".into(),
        concurrency: 1,
    }
}

pub(super) fn secrets_uri(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets?")
}

fn labels(kind: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "muster-exchange", GRANT_KIND_LABEL: kind})
}

fn meta(ns: &str, name: &str, kind: &str) -> Value {
    json!({"name": name, "namespace": ns, "labels": labels(kind), "annotations": {
        "exchange.muster.giantswarm.io/description": "Managed by the muster-exchange controller; edits are overwritten."}})
}

pub(super) fn role(ns: &str, name: &str, kind: &str, secrets: &[&str]) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(ns, name, kind),
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": secrets, "verbs": ["get"]}]})
}

pub(super) fn binding(ns: &str, name: &str, kind: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(ns, name, kind),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": subjects})
}

pub(super) fn kc_role(ns: &str, secrets: &[&str]) -> Value {
    role(ns, "muster-exchange-kubeconfig-reader", "kubeconfig", secrets)
}

pub(super) fn kc_binding(ns: &str) -> Value {
    binding(
        ns,
        "muster-exchange-kubeconfig-reader",
        "kubeconfig",
        json!([{"kind": "ServiceAccount", "name": "mcp-kubernetes", "namespace": "muster"}]),
    )
}

/// An object as the API server returns it: with uid and resourceVersion.
pub(super) fn stored(mut object: Value, uid: &str) -> Value {
    object["metadata"]["uid"] = json!(uid);
    object["metadata"]["resourceVersion"] = json!("7");
    object
}

pub(super) fn role_list(items: Vec<Value>) -> Value {
    list("RoleList", "rbac.authorization.k8s.io/v1", items)
}

pub(super) fn binding_list(items: Vec<Value>) -> Value {
    list("RoleBindingList", "rbac.authorization.k8s.io/v1", items)
}

pub(super) fn kc_uri(kind: &str, ns: &str) -> String {
    format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/muster-exchange-kubeconfig-reader")
}

pub(super) fn guarded_delete(uid: &str) -> Value {
    json!({"preconditions": {"resourceVersion": "7", "uid": uid}})
}

#[tokio::test]
async fn first_sync_creates_role_and_binding_restricted_to_kubeconfig_secrets() {
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-acme"])),
        Expect::get(
            secrets_uri("org-acme"),
            metadata_list(
                "org-acme",
                &["b-kubeconfig", "a-kubeconfig", "-kubeconfig", "tls"],
            ),
        ),
        Expect::get(ROLES, role_list(vec![])),
        Expect::get(BINDINGS, binding_list(vec![])),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("roles", "org-acme")),
            kc_role("org-acme", &["a-kubeconfig", "b-kubeconfig"]),
        ),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("rolebindings", "org-acme")),
            kc_binding("org-acme"),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    let report = report.unwrap();
    assert_eq!(
        (report.sync.applied, report.sync.deleted, report.sync.errors.len()),
        (2, 0, 0)
    );
    assert_eq!(report.sync.granted_namespaces, 1);
}

#[tokio::test]
async fn resync_of_unchanged_state_writes_nothing() {
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-acme"])),
        Expect::get(
            secrets_uri("org-acme"),
            metadata_list("org-acme", &["a-kubeconfig"]),
        ),
        Expect::get(
            ROLES,
            role_list(vec![stored(kc_role("org-acme", &["a-kubeconfig"]), "r1")]),
        ),
        Expect::get(BINDINGS, binding_list(vec![stored(kc_binding("org-acme"), "b1")])),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    assert_eq!(report.unwrap().sync.writes(), 0);
}

#[tokio::test]
async fn a_new_kubeconfig_secret_updates_only_the_role() {
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-acme"])),
        Expect::get(
            secrets_uri("org-acme"),
            metadata_list("org-acme", &["a-kubeconfig", "c-kubeconfig"]),
        ),
        Expect::get(
            ROLES,
            role_list(vec![stored(kc_role("org-acme", &["a-kubeconfig"]), "r1")]),
        ),
        Expect::get(BINDINGS, binding_list(vec![stored(kc_binding("org-acme"), "b1")])),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("roles", "org-acme")),
            kc_role("org-acme", &["a-kubeconfig", "c-kubeconfig"]),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    assert_eq!(report.unwrap().sync.applied, 1);
}

#[tokio::test]
async fn namespace_losing_its_label_or_its_secrets_loses_its_grants() {
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-empty"])),
        Expect::get(secrets_uri("org-empty"), metadata_list("org-empty", &["tls"])),
        Expect::get(
            ROLES,
            role_list(vec![
                stored(kc_role("org-empty", &["x-kubeconfig"]), "r0"),
                stored(kc_role("org-gone", &["a-kubeconfig"]), "r1"),
            ]),
        ),
        Expect::get(BINDINGS, binding_list(vec![stored(kc_binding("org-gone"), "b1")])),
        Expect::delete(format!("{}?", kc_uri("roles", "org-empty")), guarded_delete("r0")),
        Expect::delete(format!("{}?", kc_uri("roles", "org-gone")), guarded_delete("r1")),
        Expect::delete(
            format!("{}?", kc_uri("rolebindings", "org-gone")),
            guarded_delete("b1"),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    let report = report.unwrap();
    assert_eq!(
        (
            report.sync.applied,
            report.sync.deleted,
            report.sync.granted_namespaces
        ),
        (0, 3, 0)
    );
}

#[tokio::test]
async fn system_and_controller_namespaces_are_refused_without_a_single_request() {
    let expected = vec![
        Expect::get(
            NS_LIST,
            metadata_list(
                "",
                &["kube-system", "kube-public", "kube-node-lease", "muster-exchange"],
            ),
        ),
        Expect::get(ROLES, role_list(vec![])),
        Expect::get(BINDINGS, binding_list(vec![])),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    let refused: Vec<_> = report
        .unwrap()
        .refused
        .iter()
        .map(|(ns, why)| format!("{ns}:{}", why.reason()))
        .collect();
    assert_eq!(
        refused,
        [
            "kube-system:SystemNamespace",
            "kube-public:SystemNamespace",
            "kube-node-lease:SystemNamespace",
            "muster-exchange:ControllerNamespace"
        ]
    );
}

#[tokio::test]
async fn unmanaged_roles_and_bindings_with_our_name_survive() {
    let mut unmanaged_role = stored(kc_role("org-acme", &["a-kubeconfig"]), "u1");
    unmanaged_role["metadata"]["labels"] = json!({"team": "platform"});
    let mut unmanaged_elsewhere = stored(kc_binding("org-gone"), "u2");
    unmanaged_elsewhere["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-acme"])),
        Expect::get(
            secrets_uri("org-acme"),
            metadata_list("org-acme", &["a-kubeconfig"]),
        ),
        Expect::get(ROLES, role_list(vec![unmanaged_role])),
        Expect::get(BINDINGS, binding_list(vec![unmanaged_elsewhere])),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    let report = report.unwrap();
    assert_eq!(report.sync.writes(), 0);
    assert_eq!(report.sync.unmanaged_conflicts, ["org-acme"]);
}

#[tokio::test]
async fn a_failed_apply_is_reported_and_other_namespaces_still_sync() {
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-a", "org-b"])),
        Expect::get(secrets_uri("org-a"), metadata_list("org-a", &["x-kubeconfig"])),
        Expect::get(secrets_uri("org-b"), metadata_list("org-b", &["y-kubeconfig"])),
        Expect::get(ROLES, role_list(vec![])),
        Expect::get(BINDINGS, binding_list(vec![])),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("roles", "org-a")),
            kc_role("org-a", &["x-kubeconfig"]),
        )
        .failing(500),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("roles", "org-b")),
            kc_role("org-b", &["y-kubeconfig"]),
        ),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("rolebindings", "org-b")),
            kc_binding("org-b"),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    let report = report.unwrap();
    assert_eq!(report.sync.applied, 2);
    assert_eq!(report.sync.errors.len(), 1);
    assert!(
        report.sync.errors[0]
            .to_string()
            .starts_with("cannot apply Role org-a/muster-exchange-kubeconfig-reader")
    );
}

#[tokio::test]
async fn changed_grant_subjects_update_only_the_binding() {
    let old_binding = binding(
        "org-acme",
        "muster-exchange-kubeconfig-reader",
        "kubeconfig",
        json!([{"kind": "ServiceAccount", "name": "old-reader", "namespace": "muster"}]),
    );
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-acme"])),
        Expect::get(
            secrets_uri("org-acme"),
            metadata_list("org-acme", &["a-kubeconfig"]),
        ),
        Expect::get(
            ROLES,
            role_list(vec![stored(kc_role("org-acme", &["a-kubeconfig"]), "r1")]),
        ),
        Expect::get(BINDINGS, binding_list(vec![stored(old_binding, "b1")])),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("rolebindings", "org-acme")),
            kc_binding("org-acme"),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await;
    assert_eq!(report.unwrap().sync.applied, 1);
}
