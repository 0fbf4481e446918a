//! The committed manifests match the code: the controller's RBAC is exactly what it calls (and holds no
//! `bind`/`escalate` beyond its two grant Role names), and the Deployment's flags parse.

use clap::Parser;
use muster_exchange_api::documents::read_documents;
use serde_json::{Value, json};

use crate::cli::ControllerArgs;

fn manifest(name: &str) -> Vec<Value> {
    let path = format!("{}/../manifests/controller/{name}", env!("CARGO_MANIFEST_DIR"));
    read_documents(&path)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect()
}

fn rules_of(kind: &str) -> Value {
    let rbac = manifest("rbac.yaml");
    rbac.iter().find(|d| d["kind"] == kind).unwrap()["rules"].clone()
}

/// The only Role and RoleBinding names the controller writes (see `GrantKind::object_name`).
const GRANT_NAMES: [&str; 2] = [
    "muster-exchange-kubeconfig-reader",
    "muster-exchange-credentials-reader",
];

#[test]
fn grant_names_are_the_code_s() {
    use crate::grants::rbac_objects::GrantKind;
    assert_eq!(
        GRANT_NAMES,
        [
            GrantKind::Kubeconfig.object_name(),
            GrantKind::Credentials.object_name()
        ]
    );
}

#[test]
fn cluster_role_is_exactly_what_the_code_calls() {
    assert_eq!(
        rules_of("ClusterRole"),
        json!([
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                "verbs": ["create"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                "resourceNames": GRANT_NAMES, "verbs": ["list", "watch", "patch", "delete"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                "resourceNames": GRANT_NAMES, "verbs": ["escalate", "bind"]},
            {"apiGroups": ["muster.giantswarm.io"], "resources": ["mcpservers"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["muster.giantswarm.io"], "resources": ["mcpservers/status"], "verbs": ["patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    assert_eq!(
        rules_of("Role"),
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "resourceNames": ["muster-exchange-controller"], "verbs": ["get", "update"]},
        ])
    );
}

/// `bind` and `escalate` only on the two grant Role names (the admission policy bounds their content);
/// no impersonation, no wildcard, no cluster-wide RBAC objects.
#[test]
fn escalation_verbs_are_bounded_by_name() {
    let rules: Vec<Value> = [rules_of("ClusterRole"), rules_of("Role")]
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .collect();
    for rule in rules {
        for verb in rule["verbs"].as_array().unwrap() {
            let verb = verb.as_str().unwrap();
            assert!(!["impersonate", "*"].contains(&verb), "{rule}");
            if ["bind", "escalate"].contains(&verb) {
                assert_eq!(rule["resources"], json!(["roles"]), "{rule}");
                assert_eq!(rule["resourceNames"], json!(GRANT_NAMES), "{rule}");
            }
        }
        for resource in rule["resources"].as_array().unwrap() {
            assert!(
                !["clusterroles", "clusterrolebindings", "*"].contains(&resource.as_str().unwrap()),
                "{rule}"
            );
        }
    }
}

#[test]
fn deployment_flags_parse() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }
    let deployment = manifest("deployment.yaml");
    let args: Vec<String> = deployment[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        // `controller` is the subcommand; --log-format is the binary's global flag.
        .filter(|a| a != "controller" && !a.starts_with("--log-format"))
        .collect();
    let cli = Cli::try_parse_from(std::iter::once("controller".to_string()).chain(args)).unwrap();
    assert_eq!(cli.args.grant_subjects[0].name, "mcp-kubernetes");
    assert_eq!(
        cli.args.leader_election_namespace.as_deref(),
        Some("muster-exchange")
    );
}

/// The controller's NetworkPolicy selects its pods, admits only the metrics port, and keeps link-local
/// addresses (cloud metadata) out of every TCP egress rule; the injected-pod example admits only the
/// sidecar's port.
#[test]
fn network_policies_fit_the_deployment_and_exclude_link_local() {
    let deployment = &manifest("deployment.yaml")[0];
    let policy = &manifest("networkpolicy.yaml")[0];
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let metrics = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0];
    assert_eq!(metrics["name"], "metrics");
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"ports": [{"protocol": "TCP", "port": metrics["containerPort"]}]}])
    );
    let example = read_documents(&format!(
        "{}/../examples/networkpolicy-injected-pod.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()[0]
        .value
        .clone();
    assert_eq!(
        example["spec"]["ingress"][0]["ports"],
        json!([{"protocol": "TCP", "port": muster_exchange_api::sidecar_config::DEFAULT_SIDECAR_PORT}])
    );
    for policy in [policy, &example] {
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        for rule in policy["spec"]["egress"].as_array().unwrap() {
            let tcp_beyond_dns = rule["ports"].as_array().unwrap().iter().any(|p| p["port"] != 53);
            if tcp_beyond_dns {
                let excluded: Vec<&Value> = rule["to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|to| to["ipBlock"]["except"].as_array().unwrap())
                    .collect();
                assert_eq!(
                    excluded,
                    [
                        &json!("169.254.0.0/16"),
                        &json!("fe80::/10"),
                        &json!("fd00:ec2::254/128")
                    ],
                    "{rule}"
                );
            }
        }
    }
}
