//! The committed manifests match the code: the controller's RBAC is exactly what it calls (and holds no
//! `bind`/`escalate`), and the Deployment's flags parse.

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

#[test]
fn cluster_role_is_exactly_what_the_code_calls() {
    assert_eq!(
        rules_of("ClusterRole"),
        json!([
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
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

#[test]
fn no_rule_allows_escalation() {
    let text = std::fs::read_to_string(format!(
        "{}/../manifests/controller/rbac.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let rules: Vec<Value> = [rules_of("ClusterRole"), rules_of("Role")]
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .collect();
    for rule in rules {
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                !["bind", "escalate", "impersonate", "*"].contains(&verb.as_str().unwrap()),
                "{rule}"
            );
        }
        for resource in rule["resources"].as_array().unwrap() {
            assert!(
                !["clusterroles", "clusterrolebindings", "*"].contains(&resource.as_str().unwrap()),
                "{rule}"
            );
        }
    }
    assert!(text.contains("no `bind` and no `escalate`"));
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
