//! The grant controller at scale against the counting mock API server: 1,000 organization namespaces,
//! each with kubeconfig Secrets, an opted-in credentials Secret and the grants the controller itself
//! would write, every tenth with an MCPServer using its credentials. Reaching steady state and
//! reconciling every namespace again must write nothing and list nothing per namespace: every input
//! comes from the cluster-wide watches.

use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use muster_exchange_api::names::CREDENTIALS_OPT_IN_LABEL;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::controller::{GrantContext, run};
use super::credential_grants::desired_credential_grants;
use super::fixtures::mcpserver;
use super::kubeconfig_grants::desired_kubeconfig_grant;
use super::rbac_objects::{DesiredGrant, desired_role, desired_role_binding};
use super::subjects::parse_service_account;
use super::watches::GrantWatches;
use crate::probe::mcpserver::parse_lenient;
use crate::runtime::context::Context;
use crate::runtime::fixtures::test_context;
use crate::runtime::leader_gained;
use crate::runtime::metrics::LoopLabels;
use crate::runtime::mock_apiserver::{ListType, MockApiServer, Recorded};

const NAMESPACES: usize = 1_000;
/// The resources a reconcile would re-list if it did not read the watch caches.
const NAMESPACED_INPUTS: [&str; 3] = ["secrets", "roles", "rolebindings"];

fn namespace(i: usize) -> String {
    format!("org-{i:04}")
}

fn secret(ns: &str, name: &str, opted_in: bool) -> Value {
    let labels = if opted_in {
        json!({CREDENTIALS_OPT_IN_LABEL: "true"})
    } else {
        json!({})
    };
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"x": "eA=="}})
}

fn insert_grant(mock: &MockApiServer, grant: &DesiredGrant) {
    for object in [
        serde_json::to_value(desired_role(grant)),
        serde_json::to_value(desired_role_binding(grant)),
    ] {
        mock.insert(object.unwrap());
    }
}

/// Seeds the mock with the cluster described above, its grants computed by the controller's own rules.
fn seed(mock: &MockApiServer, ctx: &Context) {
    let mut servers = Vec::new();
    for i in 0..NAMESPACES {
        let ns = namespace(i);
        mock.insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"giantswarm.io/organization": ns}}}));
        let names = [
            "alpha-kubeconfig",
            "beta-kubeconfig",
            "default-token",
            "dex-credentials",
        ];
        for name in names {
            mock.insert(secret(&ns, name, name == "dex-credentials"));
        }
        let grant = desired_kubeconfig_grant(&ns, true, names.map(String::from), &ctx.kubeconfig)
            .unwrap()
            .unwrap();
        insert_grant(mock, &grant);
        if i % 10 == 0 {
            let server = mcpserver(
                &ns,
                "mcp",
                true,
                json!({"name": "dex-credentials", "namespace": ns}),
            );
            mock.insert(server.clone());
            let object: DynamicObject = serde_json::from_value(server).unwrap();
            servers.push(parse_lenient(&object).unwrap());
        }
    }
    let (grants, refused) = desired_credential_grants(&servers, &ctx.credentials);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(grants.len(), NAMESPACES / 10);
    for grant in grants.values() {
        insert_grant(mock, grant);
    }
}

fn reconciles(ctx: &Context) -> u64 {
    let labels = LoopLabels {
        r#loop: "kubeconfig_grants",
    };
    ctx.metrics.reconciles.get_or_create(&labels).get()
}

/// Waits until at least `at_least` namespaces were reconciled and 5 s of quiet (paused time, so only
/// once every task is idle; longer than the reconcile debounce) bring no further reconcile.
async fn settle(ctx: &Context, at_least: u64) -> u64 {
    let started = tokio::time::Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {at_least} reconciles",
            reconciles(ctx)
        );
        let before = reconciles(ctx);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = reconciles(ctx);
        if after >= at_least && after == before {
            return after;
        }
    }
}

fn is_write(r: &Recorded) -> bool {
    matches!(
        r.verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

fn per_namespace_lists(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| r.verb == "list" && r.namespace().is_some())
        .filter(|r| {
            r.resource()
                .is_some_and(|res| NAMESPACED_INPUTS.contains(&res.as_str()))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_resync_of_unchanged_state_for_1000_namespaces_writes_nothing_and_lists_nothing_per_namespace() {
    crate::probe::tests::install_crypto();
    let mock = MockApiServer::new(ListType::Map);
    let client = mock.client("controller");
    let (_leader_tx, leader) = watch::channel(true);
    let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
    let probe = crate::probe::controller_tests::probe_config(Duration::from_secs(60));
    let mut ctx = test_context(client.clone(), exchange, leader, probe);
    ctx.credentials.reader = Some(parse_service_account("serviceaccount:muster/muster").unwrap());
    // No timed resync during the test: the full resync below is triggered.
    ctx.grants_resync = Duration::from_secs(7 * 24 * 3600);
    ctx.grants_concurrency = 8;
    seed(&mock, &ctx);
    let ctx = Arc::new(ctx);
    let watches = GrantWatches::new(&client, &ctx, None);
    let grants = Arc::new(GrantContext::new(ctx.clone(), watches.stores.clone()));
    let (resync_tx, resync_rx) = watch::channel(false);
    tokio::spawn(run(
        grants,
        watches,
        leader_gained(resync_rx),
        futures::future::pending::<()>(),
    ));

    let first = settle(&ctx, NAMESPACES as u64).await;
    let initial = mock.requests();
    let lists = |requests: &[Recorded]| requests.iter().filter(|r| r.verb == "list").count();
    let watches_opened = initial.iter().filter(|r| r.verb == "watch").count();
    let initial_writes: Vec<_> = initial.iter().filter(|r| is_write(r)).collect();
    assert!(initial_writes.is_empty(), "{initial_writes:?}");
    assert!(
        per_namespace_lists(&initial).is_empty(),
        "{:?}",
        per_namespace_lists(&initial)
    );

    // Every namespace reconciled again, as after a change of leader.
    resync_tx.send_replace(true);
    let second = settle(&ctx, first + NAMESPACES as u64).await;
    let resync = mock.requests().split_off(initial.len());
    let writes: Vec<_> = resync.iter().filter(|r| is_write(r)).collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(
        per_namespace_lists(&resync).is_empty(),
        "{:?}",
        per_namespace_lists(&resync)
    );
    assert_eq!(
        lists(&resync),
        0,
        "the caches are not re-listed either: {resync:?}"
    );
    println!(
        "initial sync: {first} reconciles, {} requests ({} cluster-wide lists, {watches_opened} watches); \
         resync: {} reconciles, {} requests",
        initial.len(),
        lists(&initial),
        second - first,
        resync.len()
    );
}
