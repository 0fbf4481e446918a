//! `muster-exchange validate` and `crd` as a user runs them: exit codes and the exact lines printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_muster-exchange"))
}

fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn validate(files: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.arg("validate");
    for f in files {
        cmd.args(["-f", f]);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_operator_guide_example_is_valid_and_other_kinds_are_noted() {
    let out = validate(&[&example("mcpserver-cluster-a.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "mcpserver/cluster-a: valid; topology M: Muster exchanges (tokenExchange.enabled: true)\n"
    );
    assert!(
        text(&out.stderr).contains("skipping secret/cluster-a-token-exchange-credentials: not an MCPServer")
    );
}

#[test]
fn an_incomplete_exchange_config_exits_1_with_one_line_per_problem() {
    let out = validate(&[&example("mcpserver-invalid-incomplete.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mcpserver/cluster-b: "))
        .collect();
    assert_eq!(problems.len(), 3, "{stderr}");
    assert!(
        problems[0]
            .starts_with("mcpserver/cluster-b: spec.auth.tokenExchange.dexTokenEndpoint: Required value: ")
    );
    assert!(
        problems[1].starts_with("mcpserver/cluster-b: spec.auth.tokenExchange.connectorId: Required value: ")
    );
    assert!(problems[2].starts_with(
        "mcpserver/cluster-b: spec.auth.tokenExchange.clientCredentialsSecretRef: Required value: "
    ));
}

#[test]
fn invalid_values_name_each_field() {
    let out = validate(&[&example("mcpserver-invalid-values.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for path in [
        "spec.auth.requiredAudiences[0]: Invalid value: \"dex k8s authenticator\"",
        "spec.auth.tokenExchange.dexTokenEndpoint: Invalid value: ",
        "spec.auth.tokenExchange.connectorId: Invalid value: \"central.dex\"",
        "spec.auth.tokenExchange.scopes: Invalid value: \"profile email groups\"",
        "spec.auth.tokenExchange.clientCredentialsSecretRef.name: Invalid value: \"Cluster_C_Credentials\"",
    ] {
        assert!(
            stderr.contains(&format!("mcpserver/cluster-c: {path}")),
            "missing {path} in:\n{stderr}"
        );
    }
}

#[test]
fn warnings_are_printed_but_exit_0() {
    let out = validate(&[&example("mcpserver-warnings.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    let warnings: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("Warning: "))
        .map(String::from)
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].starts_with("Warning: mcpserver/cluster-d: spec.auth.tokenExchange.expectedIssuer: ")
    );
}

#[test]
fn any_invalid_file_makes_the_run_exit_1_and_unreadable_input_exit_2() {
    let out = validate(&[
        &example("mcpserver-cluster-a.yaml"),
        &example("mcpserver-invalid-values.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = validate(&[&example("mcpserver-invalid-values.yaml"), "does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error: does-not-exist.yaml: cannot read: "));
}

#[test]
fn stdin_parse_errors_name_the_line() {
    let mut child = bin()
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: v1\nkind: ConfigMap\n---\nkind: [\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: -:4: cannot parse: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn crd_prints_the_committed_manifest() {
    let out = bin().arg("crd").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(format!(
        "{}/../manifests/components/mcpserver-crd/muster.giantswarm.io_mcpservers.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(text(&out.stdout), committed);
}

fn validate_stdin(input: &str) -> Output {
    let mut child = bin()
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// What `kubectl get mcps -A -o yaml` returns where a newer Muster runs: a state and a type this build
/// does not know. Status is never judged; the unknown type is a warning naming the field, not an error.
#[test]
fn values_a_newer_muster_writes_are_read_status_unjudged_unknown_spec_values_warned() {
    let awaiting = "apiVersion: muster.giantswarm.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: awaiting\n\
                    spec:\n  type: streamable-http\n  url: https://mcp.example/mcp\n  futureField: 1\n\
                    status:\n  state: Awaiting Session\n  restartCount: many\n";
    let out = validate_stdin(awaiting);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "mcpserver/awaiting: valid\n");
    assert!(!text(&out.stderr).contains("Warning"), "{}", text(&out.stderr));

    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: muster.giantswarm.io/v1alpha1\n  kind: MCPServer\n  \
                metadata:\n    name: future\n  spec:\n    type: websocket\n    url: https://mcp.example/mcp\n";
    let out = validate_stdin(list);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "mcpserver/future: valid\n");
    assert!(
        stderr.contains(
            "Warning: mcpserver/future: spec.type: \"websocket\" is not known to this version of muster-exchange"
        ),
        "{stderr}"
    );
}

#[test]
fn json_documents_separated_by_dashes_are_read() {
    let doc = |name: &str| {
        format!(
            "{{\n  \"apiVersion\": \"muster.giantswarm.io/v1alpha1\",\n  \"kind\": \"MCPServer\",\n  \
             \"metadata\": {{\"name\": \"{name}\"}},\n  \"spec\": {{\"type\": \"stdio\", \"command\": \"x\"}}\n}}\n"
        )
    };
    let out = validate_stdin(&format!("{}---\n{}", doc("a"), doc("b")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "mcpserver/a: valid\nmcpserver/b: valid\n");
}
