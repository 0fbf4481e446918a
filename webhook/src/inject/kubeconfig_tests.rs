//! The kubeconfig Secret of `auth-headers` mode is mounted from the pod's namespace: a conventional
//! `<name>-kubeconfig` next to an MCPServer in another namespace is refused, not left to hang the pod.

use serde_json::json;

use super::tests::{catalog, patched, pod, settings};
use super::*;

/// `foreign-secret` lives in `apps` and keeps its credentials in `muster`; the pod runs in `muster`.
fn pod_in_muster(header_mode: Option<&str>) -> serde_json::Value {
    let mut annotations = json!({
        "exchange.muster.giantswarm.io/mcpservers": "foreign-secret",
        "exchange.muster.giantswarm.io/mcpserver-namespace": "apps",
    });
    if let Some(mode) = header_mode {
        annotations["exchange.muster.giantswarm.io/header-mode"] = json!(mode);
    }
    pod(annotations)
}

#[test]
fn a_conventional_kubeconfig_secret_in_another_namespace_is_refused() {
    let refusal = inject_pod(&pod_in_muster(None), "muster", &settings(), &catalog()).unwrap_err();
    assert_eq!(refusal.reason(), "kubeconfig-in-other-namespace");
    assert_eq!(
        refusal.to_string(),
        "MCPServer foreign-secret lives in namespace apps, where its kubeconfig Secret foreign-secret-kubeconfig \
         is expected, but the pod runs in namespace muster and a Secret volume can only mount from the pod's own \
         namespace; copy the kubeconfig Secret to muster and set the MCPServer annotation \
         exchange.muster.giantswarm.io/kubeconfig-secret to its name, use header mode bearer, or run the pod in apps"
    );
}

#[test]
fn bearer_mode_or_a_named_secret_needs_no_refusal() {
    let bearer = inject_pod(&pod_in_muster(Some("bearer")), "muster", &settings(), &catalog());
    assert!(matches!(bearer, Ok(Outcome::Inject(_))), "{bearer:?}");

    // cluster-b names its Secret by annotation: mounted from the pod's namespace, as documented.
    let named = patched(&pod(
        json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-b"}),
    ));
    assert_eq!(
        named["spec"]["volumes"][1]["secret"],
        json!({"secretName": "b-admin-kubeconfig", "defaultMode": 292})
    );
}
