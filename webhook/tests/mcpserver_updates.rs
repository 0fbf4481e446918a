//! UPDATEs of MCPServers that are already invalid: a metadata-only change or a finalizer removal is
//! admitted (errors become warnings), a spec change is still denied, a deleting object always passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use common::{fixture_json, review, state};
use muster_exchange_webhook::server::router;
use serde_json::{Value, json};

/// The invalid MCPServer of the CREATE fixture as an UPDATE from `old` to `new`.
fn update(edit_old: impl FnOnce(&mut Value), edit_new: impl FnOnce(&mut Value)) -> Value {
    let mut input = fixture_json("mcpserver-create-invalid.json");
    input["request"]["operation"] = json!("UPDATE");
    let mut old = input["request"]["object"].clone();
    let mut new = old.clone();
    edit_old(&mut old);
    edit_new(&mut new);
    input["request"]["oldObject"] = old;
    input["request"]["object"] = new;
    input
}

#[tokio::test]
async fn a_label_can_be_added_to_an_invalid_mcpserver() {
    let router = router(state());
    let input = update(|_| {}, |new| new["metadata"]["labels"] = json!({"team": "a"}));
    let response = review(&router, "/validate-mcpservers", &input).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());

    // The errors the CREATE is denied with, now as warnings after the object's own warning.
    let admitted = "MCPServer apps/cluster-c is invalid (the spec is unchanged, so this update is admitted)";
    let expected = [
        "spec.auth.tokenExchange.scopes: no audience:server:client_id: scope and no requiredAudiences: the \
         exchanged token's audience is the exchange client alone and a Kubernetes API server will reject it; \
         add e.g. audience:server:client_id:dex-k8s-authenticator"
            .to_string(),
        format!(
            "{admitted}: spec.auth.tokenExchange.dexTokenEndpoint: Invalid value: \
             \"http://dex.cluster-c.example.com/token\": must use https:// (got http://); Dex exchanges carry \
             tokens and secrets"
        ),
        format!(
            "{admitted}: spec.auth.tokenExchange.connectorId: Required value: required when enabled is true \
             (Muster silently never exchanges otherwise); set the ID of the remote Dex connector that trusts \
             the central Dex"
        ),
    ];
    assert_eq!(response["warnings"], json!(expected));
}

#[tokio::test]
async fn a_finalizer_can_be_removed_from_a_deleting_invalid_mcpserver() {
    let router = router(state());
    let input = update(
        |old| {
            old["metadata"]["finalizers"] = json!(["muster.giantswarm.io/cleanup"]);
            old["metadata"]["deletionTimestamp"] = json!("2026-11-22T04:00:00Z");
        },
        |new| {
            new["metadata"]["deletionTimestamp"] = json!("2026-11-22T04:00:00Z");
            new["spec"]["url"] = json!("not even a url");
        },
    );
    let response = review(&router, "/validate-mcpservers", &input).await;
    assert_eq!(
        response,
        json!({"uid": "9a0c2a62-4a34-4d4e-9b0e-0c8b1b1f5a07", "allowed": true, "status": {}})
    );
    let defaults = review(&router, "/mutate-mcpservers", &input).await;
    assert_eq!(defaults["allowed"], true);
    assert!(
        defaults.get("patch").is_none(),
        "a deleting object is not defaulted"
    );
}

#[tokio::test]
async fn a_spec_change_of_an_invalid_mcpserver_is_still_denied() {
    let router = router(state());
    let input = update(
        |_| {},
        |new| new["spec"]["url"] = json!("https://mcp2.cluster-c.example.com/mcp"),
    );
    let response = review(&router, "/validate-mcpservers", &input).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("MCPServer apps/cluster-c is invalid: "),
        "{response}"
    );
}
