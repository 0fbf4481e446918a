//! The two supported topologies through the real binary: `validate` and `inject` accept topology F (the
//! sidecar exchanges) as they accept M (Muster exchanges), and refuse an MCPServer in neither, naming both
//! ways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_muster-exchange"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const BOTH_WAYS: [&str; 2] = [
    "tokenExchange.enabled: true (Muster exchanges, topology M)",
    "forwardToken: true (the sidecar exchanges, topology F)",
];

/// A pod of mcp-kubernetes in namespace muster serving `mcpserver`.
fn pod(mcpserver: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: mcp-kubernetes\n  namespace: muster\n  annotations:\n    \
         exchange.muster.giantswarm.io/mcpservers: {mcpserver}\nspec:\n  containers:\n  - name: mcp-kubernetes\n    \
         image: mcp-kubernetes:1\n"
    )
}

#[test]
fn validate_accepts_topology_f_without_warnings_and_names_it() {
    let out = run(&["validate", "-f", &example("mcpserver-cluster-f.yaml")], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "mcpserver/cluster-f: valid; topology F: the sidecar exchanges (forwardToken: true, tokenExchange.enabled: false)\n"
    );
    assert!(!text(&out.stderr).contains("Warning"), "{}", text(&out.stderr));
}

#[test]
fn validate_refuses_neither_topology_naming_both_ways() {
    let out = run(
        &["validate", "-f", &example("mcpserver-invalid-neither.yaml")],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "mcpserver/cluster-n: invalid (1 problem)\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .starts_with("mcpserver/cluster-n: spec.auth.tokenExchange.enabled: Invalid value: \"false\": "),
        "{stderr}"
    );
    for way in BOTH_WAYS {
        assert!(stderr.contains(way), "{way} missing in {stderr}");
    }
}

#[test]
fn inject_accepts_topology_f() {
    let out = run(
        &[
            "inject",
            "-f",
            "-",
            "--mcpservers",
            &example("mcpserver-cluster-f.yaml"),
        ],
        &pod("cluster-f"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let injected = text(&out.stdout);
    assert!(injected.contains("name: token-exchange"), "{injected}");
    assert!(
        injected.contains("https://dex.cluster-f.example.com/token"),
        "{injected}"
    );
    assert!(
        injected.contains("secretName: cluster-f-token-exchange-credentials"),
        "{injected}"
    );
}

#[test]
fn inject_refuses_neither_topology_naming_both_ways() {
    let plain = "apiVersion: muster.giantswarm.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: cluster-p\n  \
                 namespace: muster\nspec:\n  type: streamable-http\n  url: https://mcp.cluster-p.example.com/mcp\n  \
                 auth:\n    type: oauth\n    forwardToken: true\n";
    let dir = tempfile::tempdir().unwrap();
    let plain_file = dir.path().join("plain.yaml");
    std::fs::write(&plain_file, plain).unwrap();
    for (mcpservers, name, why) in [
        (
            example("mcpserver-invalid-neither.yaml"),
            "cluster-n",
            "tokenExchange.enabled is false and spec.auth.forwardToken is false",
        ),
        (
            plain_file.to_string_lossy().into_owned(),
            "cluster-p",
            "spec.auth.tokenExchange is not set",
        ),
    ] {
        let out = run(&["inject", "-f", "-", "--mcpservers", &mcpservers], &pod(name));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "MCPServer muster/{name} cannot be used for token exchange: "
            )),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
        for way in BOTH_WAYS {
            assert!(stderr.contains(way), "{way} missing in {stderr}");
        }
    }
}
