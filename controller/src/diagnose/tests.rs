//! `diagnose` against in-test Dex servers: every reason, exit decisions, and black holes costing one
//! probe timeout in total.

use std::io::Write as _;
use std::time::{Duration, Instant};

use muster_exchange_dex::test_double::{
    BlackHole, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DoubleClient, FailureMode, refused_addr,
};

use super::command::{DiagnoseArgs, DiagnoseError, diagnose};
use crate::probe::tests::{dex, install_crypto};

fn server(name: &str, endpoint: &str, connector: &str, secret: &str, extra: &str) -> String {
    format!(
        "apiVersion: muster.giantswarm.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: {name}\n  namespace: muster\n\
         spec:\n  type: streamable-http\n  url: https://mcp.example/mcp\n  auth:\n    type: oauth\n    tokenExchange:\n\
         \x20     enabled: true\n      dexTokenEndpoint: {endpoint}\n      connectorId: {connector}\n{extra}\
         \x20     clientCredentialsSecretRef:\n        name: {secret}\n---\n"
    )
}

fn secret(name: &str, id: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: muster\n  labels:\n    exchange.muster.giantswarm.io/credentials: \"true\"\ntype: Opaque\nstringData:\n  client-id: {id}\n  client-secret: \"{value}\"\n---\n"
    )
}

fn write_manifest(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn args(files: &[&tempfile::NamedTempFile], ca: &tempfile::NamedTempFile, timeout: Duration) -> DiagnoseArgs {
    DiagnoseArgs {
        files: files.iter().map(|f| f.path().display().to_string()).collect(),
        namespace: None,
        ca_file: Some(ca.path().to_path_buf()),
        probe_timeout: timeout,
        probe_exchange: true,
        controller_namespace: "muster-exchange".into(),
        allow_cross_namespace_credentials: false,
    }
}

fn line_of<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{text}"))
}

/// Credential Secrets plus one MCPServer per reason diagnose must report.
fn one_server_per_reason(ep: &str, strict: &str, failing: &str) -> String {
    let refused = format!("https://127.0.0.1:{}/dex/token", refused_addr().unwrap().port());
    let issuer = "      expectedIssuer: https://dex.other.example\n";
    let mut text = secret("good", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
    text += &secret("wrong", DEFAULT_CLIENT_ID, "nope");
    text += &secret("half", DEFAULT_CLIENT_ID, "");
    let servers = [
        ("ok", ep, "central", "good", ""),
        ("creds-rejected", ep, "central", "wrong", ""),
        ("connector-unknown", ep, "missing", "good", ""),
        ("connector-not-allowed", strict, "central", "good", ""),
        ("secret-not-found", ep, "central", "absent", ""),
        ("key-missing", ep, "central", "half", ""),
        ("refused", &refused, "central", "good", ""),
        ("five-hundred", failing, "central", "good", ""),
        ("wrong-issuer", ep, "central", "good", issuer),
    ];
    for (name, endpoint, connector, secret_name, extra) in servers {
        text += &server(name, endpoint, connector, secret_name, extra);
    }
    text
}

#[tokio::test]
async fn diagnose_reports_each_reason() {
    install_crypto();
    let healthy = dex().await;
    let strict = dex().await;
    let allowed_elsewhere = DoubleClient {
        secret: DEFAULT_CLIENT_SECRET.into(),
        allowed_connectors: vec!["other".into()],
    };
    strict.update(|b| {
        b.clients.insert(DEFAULT_CLIENT_ID.into(), allowed_elsewhere);
    });
    let failing = dex().await;
    failing.update(|b| b.failure = Some(FailureMode::ServerError));
    let ep = healthy.token_endpoint();
    let text = one_server_per_reason(&ep, &strict.token_endpoint(), &failing.token_endpoint());
    let manifest = write_manifest(&text);
    // All three doubles share no CA: give diagnose one bundle holding all of them.
    let ca = write_manifest(&format!(
        "{}{}{}",
        healthy.ca_pem(),
        strict.ca_pem(),
        failing.ca_pem()
    ));
    let report = diagnose(&args(&[&manifest], &ca, Duration::from_secs(2)))
        .await
        .unwrap();
    let t = &report.text;
    assert!(!report.all_ready);
    assert_eq!(
        line_of(t, "mcpserver muster/ok:"),
        format!("mcpserver muster/ok: TokenExchangeReady ({ep})")
    );
    let expect = [
        (
            "creds-rejected",
            "TokenExchangeVerified",
            "[FAIL] TokenExchangeVerified    False   CredentialsRejected: Dex rejected",
        ),
        (
            "connector-unknown",
            "TokenExchangeVerified",
            "[FAIL] TokenExchangeVerified    False   ConnectorUnknown: ",
        ),
        (
            "connector-not-allowed",
            "TokenExchangeVerified",
            "[FAIL] TokenExchangeVerified    False   ConnectorNotAllowed: ",
        ),
        (
            "secret-not-found",
            "ExchangeCredentialsReady",
            "[FAIL] ExchangeCredentialsReady False   SecretNotFound: Secret muster/absent not found",
        ),
        (
            "key-missing",
            "ExchangeCredentialsReady",
            "[FAIL] ExchangeCredentialsReady False   KeyMissing: ",
        ),
        (
            "refused",
            "DexConnected",
            "[FAIL] DexConnected             False   Disconnected: cannot reach Dex at ",
        ),
        (
            "five-hundred",
            "DexConnected",
            "[FAIL] DexConnected             False   Disconnected: Dex at ",
        ),
        (
            "wrong-issuer",
            "DexConnected",
            "[FAIL] DexConnected             False   IssuerMismatch: discovery at ",
        ),
    ];
    for (name, condition, start) in expect {
        let block: String = t
            .split("\n\n")
            .find(|b| b.starts_with(&format!("mcpserver muster/{name}:")))
            .unwrap()
            .into();
        assert!(
            block.starts_with(&format!("mcpserver muster/{name}: NOT READY")),
            "{block}"
        );
        let line = line_of(
            &block
                .lines()
                .skip(1)
                .map(|l| l.trim_start().to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            &format!("[FAIL] {condition}"),
        )
        .to_string();
        assert!(line.starts_with(start), "{name}: {line}");
    }
    assert!(
        t.ends_with("1 of 9 MCPServers with token exchange are ready\n"),
        "{t}"
    );
}

#[tokio::test]
async fn ten_black_holes_next_to_five_healthy_take_one_timeout() {
    install_crypto();
    let healthy = dex().await;
    let hole = BlackHole::start().await.unwrap();
    let mut text = secret("good", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
    for i in 0..10 {
        text += &server(
            &format!("hole-{i}"),
            &hole.token_endpoint(),
            "central",
            "good",
            "",
        );
    }
    for i in 0..5 {
        text += &server(
            &format!("ok-{i}"),
            &healthy.token_endpoint(),
            "central",
            "good",
            "",
        );
    }
    let manifest = write_manifest(&text);
    let ca = write_manifest(healthy.ca_pem());
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let report = diagnose(&args(&[&manifest], &ca, timeout)).await.unwrap();
    let took = started.elapsed();
    assert!(took >= timeout, "took {took:?}");
    assert!(!report.all_ready);
    assert!(
        report
            .text
            .ends_with("5 of 15 MCPServers with token exchange are ready\n"),
        "{}",
        report.text
    );
    assert_eq!(report.text.matches(": NOT READY (").count(), 10);
}

#[tokio::test]
async fn unreadable_or_malformed_input_is_an_error_not_a_report() {
    install_crypto();
    let ca = write_manifest(dex().await.ca_pem());
    let mut a = args(&[], &ca, Duration::from_secs(1));
    a.files = vec!["/nonexistent/mcps.yaml".into()];
    let err = diagnose(&a).await.unwrap_err();
    assert!(matches!(err, DiagnoseError::Input(_)));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/mcps.yaml: cannot read:"),
        "{err}"
    );
    let bad = write_manifest(
        "apiVersion: muster.giantswarm.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: x\nspec:\n  type: [carrier-pigeon]\n",
    );
    let err = diagnose(&args(&[&bad], &ca, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mcpserver/x ("), "{err}");
}

#[tokio::test]
async fn cluster_mode_reads_mcpservers_and_their_secrets_and_reports_malformed_ones() {
    use serde_json::json;

    use crate::diagnose::checks::input_from_cluster;
    use crate::runtime::fixtures::{Expect, list, metadata_list, run_scenario};

    let enabled = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "a", "namespace": "muster"},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": "https://dex.a.example/token", "connectorId": "c",
                "clientCredentialsSecretRef": {"name": "creds", "namespace": "secrets"}}}}});
    let disabled = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "b", "namespace": "muster"}, "spec": {"type": "streamable-http", "url": "https://b.example/mcp"}});
    let malformed = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "c", "namespace": "muster"}, "spec": {"type": ["carrier-pigeon"]}});
    let expected = vec![
        Expect::get(
            "/apis/muster.giantswarm.io/v1alpha1/mcpservers?",
            list(
                "MCPServerList",
                "muster.giantswarm.io/v1alpha1",
                vec![enabled, disabled, malformed],
            ),
        ),
        Expect::get(
            "/api/v1/namespaces/secrets/secrets?&fieldSelector=metadata.name%3Dcreds%2Ctype%3DOpaque&labelSelector=exchange.muster.giantswarm.io%2Fcredentials%3Dtrue",
            list("SecretList", "v1", vec![]),
        ),
        Expect::get(
            "/api/v1/namespaces/secrets/secrets?&fieldSelector=metadata.name%3Dcreds",
            metadata_list("secrets", &[]),
        ),
    ];
    let input = run_scenario(expected, |client| async move {
        input_from_cluster(&client, None, &policy(true)).await
    })
    .await
    .unwrap();
    assert_eq!(input.targets.len(), 1);
    assert_eq!(input.targets[0].credentials_check.reason, "SecretNotFound");
    assert_eq!(
        input.targets[0].credentials_check.message,
        "Secret secrets/creds not found; create it with keys client-id and client-secret (clientCredentialsSecretRef)"
    );
    assert_eq!(input.skipped, ["muster/b"]);
    assert_eq!(input.malformed.len(), 1);
    assert!(
        input.malformed[0].starts_with("muster/c: not a valid MCPServer:"),
        "{}",
        input.malformed[0]
    );
}

fn policy(allow_cross_namespace: bool) -> muster_exchange_api::credentials_policy::CredentialsPolicy {
    muster_exchange_api::credentials_policy::CredentialsPolicy::for_controller("mx", allow_cross_namespace)
}

/// diagnose never requests a Secret the controller's rule refuses.
#[tokio::test]
async fn cluster_mode_never_reads_a_refused_secret() {
    use serde_json::json;

    use crate::diagnose::checks::input_from_cluster;
    use crate::runtime::fixtures::{Expect, list, run_scenario};

    let server = |name: &str, secret_ns: &str| {
        json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "org-a"},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": "https://dex.a.example/token", "connectorId": "c",
                "clientCredentialsSecretRef": {"name": "creds", "namespace": secret_ns}}}}})
    };
    let servers = vec![
        server("cross", "org-b"),
        server("own", "mx"),
        server("sys", "kube-system"),
    ];
    let expected = vec![Expect::get(
        "/apis/muster.giantswarm.io/v1alpha1/mcpservers?",
        list("MCPServerList", "muster.giantswarm.io/v1alpha1", servers),
    )];
    let input = run_scenario(expected, |client| async move {
        input_from_cluster(&client, None, &policy(false)).await
    })
    .await
    .unwrap();
    let checks: Vec<_> = input
        .targets
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.credentials_check.reason,
                t.credentials.is_some(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("cross", "SecretNamespaceRefused", false),
            ("own", "SecretNamespaceRefused", false),
            ("sys", "SecretNamespaceRefused", false)
        ]
    );
    assert_eq!(
        input.targets[0].credentials_check.message,
        "Secret org-b/creds is not in the MCPServer's namespace; create the Secret in the MCPServer's namespace \
         \"org-a\" and point clientCredentialsSecretRef at it (or, if every MCPServer author may use Secrets in \
         \"org-b\", start the controller with --allow-cross-namespace-credentials=true)"
    );
}
