//! One valid and one invalid case per rule, asserting the exact field path.

use serde_json::{Value, json};

use super::*;

/// A valid, token-exchanging MCPServer as in the operator guide.
pub(super) fn valid() -> Value {
    json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1",
        "kind": "MCPServer",
        "metadata": {"name": "cluster-a", "namespace": "muster"},
        "spec": {
            "type": "streamable-http",
            "url": "https://mcp-kubernetes.cluster-a.example.com/mcp",
            "auth": {
                "type": "oauth",
                "tokenExchange": {
                    "enabled": true,
                    "dexTokenEndpoint": "https://dex.cluster-a.example.com/token",
                    "connectorId": "central-dex",
                    "scopes": "openid profile email groups audience:server:client_id:dex-k8s-authenticator",
                    "clientCredentialsSecretRef": {"name": "cluster-a-token-exchange-credentials"}
                }
            }
        }
    })
}

pub(super) fn with(pointer: &str, value: Value) -> Value {
    let mut obj = valid();
    set(&mut obj, pointer, value);
    obj
}

pub(super) fn set(obj: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = obj.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    if value.is_null() {
        parent.remove(key);
    } else {
        parent.insert(key.to_string(), value);
    }
}

fn error_paths(obj: &Value) -> Vec<String> {
    validate_value(obj)
        .errors
        .iter()
        .map(|e| e.path.clone())
        .collect()
}

fn warning_paths(obj: &Value) -> Vec<String> {
    validate_value(obj)
        .warnings
        .iter()
        .map(|w| w.path.clone())
        .collect()
}

const TE: &str = "/spec/auth/tokenExchange";

#[test]
fn the_operator_guide_example_is_valid_without_warnings() {
    let report = validate_value(&valid());
    assert_eq!(report.errors, vec![]);
    assert_eq!(report.warnings, vec![]);
}

#[test]
fn enabled_requires_endpoint_and_connector() {
    assert_eq!(
        error_paths(&with(&format!("{TE}/dexTokenEndpoint"), Value::Null)),
        ["spec.auth.tokenExchange.dexTokenEndpoint"]
    );
    assert_eq!(
        error_paths(&with(&format!("{TE}/connectorId"), Value::Null)),
        ["spec.auth.tokenExchange.connectorId"]
    );
    let err = &validate_value(&with(&format!("{TE}/connectorId"), json!(""))).errors[0];
    assert_eq!(err.kind, ErrorKind::Required);
    assert!(
        err.to_string()
            .starts_with("spec.auth.tokenExchange.connectorId: Required value: ")
    );
}

#[test]
fn topology_f_is_valid_without_warnings_and_needs_the_whole_block() {
    let mut f = with(&format!("{TE}/enabled"), json!(false));
    set(&mut f, "/spec/auth/forwardToken", json!(true));
    let report = validate_value(&f);
    assert_eq!(report.errors, vec![]);
    assert_eq!(report.warnings, vec![]);
    for (field, path) in [
        ("dexTokenEndpoint", "spec.auth.tokenExchange.dexTokenEndpoint"),
        ("connectorId", "spec.auth.tokenExchange.connectorId"),
        (
            "clientCredentialsSecretRef",
            "spec.auth.tokenExchange.clientCredentialsSecretRef",
        ),
    ] {
        let mut incomplete = f.clone();
        set(&mut incomplete, &format!("{TE}/{field}"), Value::Null);
        let errors = validate_value(&incomplete).errors;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, path);
        assert_eq!(errors[0].kind, ErrorKind::Required);
        if field != "clientCredentialsSecretRef" {
            assert!(errors[0].detail.contains("topology F"), "{}", errors[0].detail);
        }
    }
}

#[test]
fn a_disabled_block_without_forward_token_is_refused_naming_both_topologies() {
    let mut neither = with(&format!("{TE}/enabled"), json!(false));
    set(&mut neither, &format!("{TE}/connectorId"), Value::Null);
    let report = validate_value(&neither);
    assert_eq!(error_paths(&neither), ["spec.auth.tokenExchange.enabled"]);
    let message = report.errors[0].to_string();
    assert!(
        message.contains("set tokenExchange.enabled: true (Muster exchanges, topology M)"),
        "{message}"
    );
    assert!(
        message.contains("spec.auth.forwardToken: true (the sidecar exchanges, topology F)"),
        "{message}"
    );
    // Without the block it is not a token-exchange server at all: nothing to refuse here (the webhook
    // refuses to inject for it).
    let mut plain = valid();
    set(&mut plain, TE, Value::Null);
    assert_eq!(error_paths(&plain), Vec::<String>::new());
}

#[test]
fn endpoint_must_be_absolute_https_without_userinfo_fragment_or_query() {
    let path = "spec.auth.tokenExchange.dexTokenEndpoint";
    for bad in [
        "http://dex.a/token",
        "https:///token",
        "https://user:pw@dex.a/token",
        "https://dex.a/token#frag",
        "https://dex.a/token?x=1",
        "/token",
        "https://dex a/token",
    ] {
        assert_eq!(
            error_paths(&with(&format!("{TE}/dexTokenEndpoint"), json!(bad))),
            [path],
            "{bad}"
        );
    }
    assert_eq!(
        error_paths(&with(
            &format!("{TE}/dexTokenEndpoint"),
            json!("https://dex.a:8443/dex/token")
        )),
        Vec::<String>::new()
    );
}

#[test]
fn expected_issuer_must_be_https_without_userinfo_or_fragment_but_may_have_query() {
    let path = "spec.auth.tokenExchange.expectedIssuer";
    assert_eq!(
        error_paths(&with(&format!("{TE}/expectedIssuer"), json!("http://dex.a"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(&format!("{TE}/expectedIssuer"), json!("https://u@dex.a"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(&format!("{TE}/expectedIssuer"), json!("https://dex.a#x"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(
            &format!("{TE}/expectedIssuer"),
            json!("https://dex.a/?tenant=x")
        )),
        Vec::<String>::new()
    );
}

#[test]
fn connector_id_pattern_and_length() {
    let path = "spec.auth.tokenExchange.connectorId";
    assert_eq!(
        error_paths(&with(&format!("{TE}/connectorId"), json!("1central"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(&format!("{TE}/connectorId"), json!("central.dex"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(
            &format!("{TE}/connectorId"),
            json!(format!("a{}", "b".repeat(64)))
        )),
        [path]
    );
    assert_eq!(
        error_paths(&with(
            &format!("{TE}/connectorId"),
            json!(format!("a{}", "b".repeat(63)))
        )),
        Vec::<String>::new()
    );
}

#[test]
fn scopes_syntax_duplicates_and_openid() {
    let path = "spec.auth.tokenExchange.scopes";
    assert_eq!(
        error_paths(&with(&format!("{TE}/scopes"), json!("profile email"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(&format!("{TE}/scopes"), json!("openid openid"))),
        [path]
    );
    assert_eq!(
        error_paths(&with(&format!("{TE}/scopes"), json!("openid gr\"oups"))),
        [path]
    );
    let dup = &validate_value(&with(&format!("{TE}/scopes"), json!("openid email email"))).errors[0];
    assert_eq!(dup.kind, ErrorKind::Duplicate);
    assert_eq!(
        error_paths(&with(
            &format!("{TE}/scopes"),
            json!("openid audience:server:client_id:k8s")
        )),
        Vec::<String>::new()
    );
}

#[test]
fn missing_audience_scope_is_a_warning_unless_required_audiences_are_set() {
    let obj = with(&format!("{TE}/scopes"), json!("openid profile email groups"));
    assert_eq!(error_paths(&obj), Vec::<String>::new());
    assert_eq!(warning_paths(&obj), ["spec.auth.tokenExchange.scopes"]);
    let mut with_audiences = obj.clone();
    set(
        &mut with_audiences,
        "/spec/auth/requiredAudiences",
        json!(["dex-k8s-authenticator"]),
    );
    assert_eq!(warning_paths(&with_audiences), Vec::<String>::new());
}

#[test]
fn required_audiences_entries() {
    assert_eq!(
        error_paths(&with("/spec/auth/requiredAudiences", json!(["ok_1", "bad aud"]))),
        ["spec.auth.requiredAudiences[1]"]
    );
    assert_eq!(
        error_paths(&with("/spec/auth/requiredAudiences", json!(["", "x"]))),
        ["spec.auth.requiredAudiences[0]"]
    );
    assert_eq!(
        error_paths(&with("/spec/auth/requiredAudiences", json!(["a".repeat(257)]))),
        ["spec.auth.requiredAudiences[0]"]
    );
    assert_eq!(
        error_paths(&with("/spec/auth/requiredAudiences", json!(["a", "a"]))),
        ["spec.auth.requiredAudiences[1]"]
    );
    assert_eq!(
        error_paths(&with(
            "/spec/auth/requiredAudiences",
            json!(["dex-k8s-authenticator"])
        )),
        Vec::<String>::new()
    );
}

#[test]
fn secret_ref_is_required_when_enabled() {
    let obj = with(&format!("{TE}/clientCredentialsSecretRef"), Value::Null);
    assert_eq!(
        error_paths(&obj),
        ["spec.auth.tokenExchange.clientCredentialsSecretRef"]
    );
    assert!(validate_value(&obj).errors[0].detail.contains("invalid_client"));
}

#[test]
fn secret_ref_name_namespace_and_keys() {
    let secret = format!("{TE}/clientCredentialsSecretRef");
    let base = "spec.auth.tokenExchange.clientCredentialsSecretRef";
    assert_eq!(
        error_paths(&with(&format!("{secret}/name"), json!("Bad_Name"))),
        [format!("{base}.name")]
    );
    assert_eq!(
        error_paths(&with(&format!("{secret}/namespace"), json!("org.acme"))),
        [format!("{base}.namespace")]
    );
    assert_eq!(
        error_paths(&with(&format!("{secret}/clientIdKey"), json!("id/key"))),
        [format!("{base}.clientIdKey")]
    );
    assert_eq!(
        error_paths(&with(&format!("{secret}/clientSecretKey"), json!(".."))),
        [format!("{base}.clientSecretKey")]
    );
    assert_eq!(
        error_paths(&with(&format!("{secret}/clientSecretKey"), json!("client-id"))),
        [format!("{base}.clientSecretKey")]
    );
    assert_eq!(
        error_paths(&with(&format!("{secret}/clientIdKey"), json!("id.txt"))),
        Vec::<String>::new()
    );
    // A missing name is a decode error at its exact path.
    let err = &validate_value(&with(&format!("{secret}/name"), Value::Null)).errors[0];
    assert_eq!(err.path, "spec.auth.tokenExchange.clientCredentialsSecretRef");
    assert!(err.detail.contains("missing field `name`"), "{}", err.detail);
}

#[test]
fn secret_in_another_namespace_is_a_warning() {
    let obj = with(
        &format!("{TE}/clientCredentialsSecretRef/namespace"),
        json!("org-acme"),
    );
    assert_eq!(error_paths(&obj), Vec::<String>::new());
    assert_eq!(
        warning_paths(&obj),
        ["spec.auth.tokenExchange.clientCredentialsSecretRef.namespace"]
    );
    let same = with(
        &format!("{TE}/clientCredentialsSecretRef/namespace"),
        json!("muster"),
    );
    assert_eq!(warning_paths(&same), Vec::<String>::new());
}

#[test]
fn issuer_cannot_be_derived_from_an_endpoint_not_ending_in_token() {
    let obj = with(
        &format!("{TE}/dexTokenEndpoint"),
        json!("https://proxy.example.com/dex-a/exchange"),
    );
    let report = validate_value(&obj);
    assert_eq!(warning_paths(&obj), ["spec.auth.tokenExchange.expectedIssuer"]);
    assert!(
        report.warnings[0]
            .message
            .contains("\"https://proxy.example.com/dex-a/exchange\"")
    );
    let mut fixed = obj.clone();
    set(
        &mut fixed,
        &format!("{TE}/expectedIssuer"),
        json!("https://dex.a.example.com"),
    );
    assert_eq!(warning_paths(&fixed), Vec::<String>::new());
}

#[test]
fn exclusivity_rules_of_musters_cel() {
    let issuer = json!({"issuer": "https://as.example.com"});
    // authorizationServer with type none.
    let mut obj = with("/spec/auth/authorizationServer", issuer.clone());
    set(&mut obj, "/spec/auth/type", json!("none"));
    set(&mut obj, TE, Value::Null);
    assert_eq!(error_paths(&obj), ["spec.auth.authorizationServer"]);
    // authorizationServer with forwardToken.
    let mut obj = with("/spec/auth/authorizationServer", issuer.clone());
    set(&mut obj, "/spec/auth/forwardToken", json!(true));
    set(&mut obj, &format!("{TE}/enabled"), json!(false));
    assert_eq!(error_paths(&obj), ["spec.auth.forwardToken"]);
    // authorizationServer with token exchange enabled.
    assert_eq!(
        error_paths(&with("/spec/auth/authorizationServer", issuer.clone())),
        ["spec.auth.tokenExchange.enabled"]
    );
    // authorizationServer alone with oauth is fine; its issuer follows RFC 8414.
    let mut ok = with("/spec/auth/authorizationServer", issuer);
    set(&mut ok, "/spec/auth/tokenExchange", Value::Null);
    assert_eq!(error_paths(&ok), Vec::<String>::new());
    set(
        &mut ok,
        "/spec/auth/authorizationServer/issuer",
        json!("https://as.example.com/"),
    );
    assert_eq!(error_paths(&ok), ["spec.auth.authorizationServer.issuer"]);
}

#[test]
fn forward_token_next_to_exchange_is_a_warning() {
    assert_eq!(
        warning_paths(&with("/spec/auth/forwardToken", json!(true))),
        ["spec.auth.forwardToken"]
    );
}

#[test]
fn musters_spec_level_rules() {
    assert_eq!(error_paths(&with("/spec/url", Value::Null)), ["spec.url"]);
    assert_eq!(error_paths(&with("/spec/args", json!(["-v"]))), ["spec.args"]);
    assert_eq!(error_paths(&with("/spec/url", json!("ftp://x"))), ["spec.url"]);
    assert_eq!(error_paths(&with("/spec/timeout", json!(301))), ["spec.timeout"]);
    assert_eq!(
        error_paths(&with("/spec/toolPrefix", json!("9x"))),
        ["spec.toolPrefix"]
    );
    assert_eq!(
        error_paths(&with(
            "/spec/family",
            json!({"name": "k8s", "instanceArg": "management-cluster"})
        )),
        ["spec.family.instanceArg"]
    );
    assert_eq!(
        error_paths(&with("/spec/description", json!("x".repeat(501)))),
        ["spec.description"]
    );
    let stdio = json!({"kind": "MCPServer", "metadata": {"name": "s"}, "spec": {"type": "stdio", "headers": {"a": "b"}}});
    assert_eq!(error_paths(&stdio), ["spec.command", "spec.headers"]);
    let stdio_ok = json!({"kind": "MCPServer", "metadata": {"name": "s"}, "spec": {"type": "stdio", "command": "x", "args": ["-v"]}});
    assert_eq!(error_paths(&stdio_ok), Vec::<String>::new());
}

#[test]
fn undecodable_values_are_reported_at_their_path() {
    let err = &validate_value(&with("/spec/type", json!(["grpc"]))).errors[0];
    assert_eq!(err.path, "spec.type");
    let err = &validate_value(&with(&format!("{TE}/enabled"), json!("yes"))).errors[0];
    assert_eq!(err.path, "spec.auth.tokenExchange.enabled");
}

#[test]
fn an_unknown_spec_enum_value_is_a_warning_naming_the_field_and_skips_the_rules_on_it() {
    let report = validate_value(&with("/spec/type", json!("grpc")));
    assert!(report.is_valid(), "{:?}", report.errors);
    let warning = report.warnings.iter().find(|w| w.path == "spec.type").unwrap();
    assert!(
        warning
            .message
            .starts_with("\"grpc\" is not known to this version of muster-exchange"),
        "{}",
        warning.message
    );
    let report = validate_value(&with("/spec/auth/type", json!("mtls")));
    let paths: Vec<_> = report.warnings.iter().map(|w| w.path.as_str()).collect();
    assert!(paths.contains(&"spec.auth.type"), "{paths:?}");
    assert!(report.is_valid(), "{:?}", report.errors);
}

#[test]
fn status_is_never_judged_and_never_fails_decoding() {
    let mut value = valid();
    value["status"] = json!({"state": "Awaiting Session", "restartCount": "many"});
    value["status"]["conditions"] = json!([{"type": "Ready"}, {"type": "Ready", "status": "True",
        "reason": "Up", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    value["status"]["somethingNew"] = json!({"a": 1});
    let report = validate_value(&value);
    assert_eq!(report, validate_value(&valid()));
    let decoded = crate::validation::decode(&value).unwrap();
    let status = decoded.status.unwrap();
    assert_eq!(status.state, Some(crate::ServerState::AwaitingSession));
    assert_eq!(status.restart_count, None);
    assert_eq!(
        status.conditions.unwrap().len(),
        1,
        "the unreadable entry costs only itself"
    );
    let not_an_object = with("/status", json!("broken"));
    assert!(
        crate::validation::decode(&not_an_object)
            .unwrap()
            .status
            .is_some()
    );
}

#[test]
fn messages_are_kubectl_shaped() {
    let obj = with(&format!("{TE}/connectorId"), json!("1x"));
    assert_eq!(
        validate_value(&obj).errors[0].to_string(),
        "spec.auth.tokenExchange.connectorId: Invalid value: \"1x\": must start with a letter and contain only letters, digits, '_' and '-'"
    );
}
