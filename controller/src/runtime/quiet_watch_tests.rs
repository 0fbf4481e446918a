//! The whole controller, built as the binary builds it (`run_controller_with`: the watch client
//! without a read timeout), against the mock API server on loopback, on paused time: with nothing
//! changing, every watch stays open for more than 5 minutes, neither cut by the client nor reopened.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;

use crate::cli::{ControllerArgs, run_controller_with};
use crate::runtime::kube_client::WATCH_TIMEOUT_SECS;
use crate::runtime::mock_apiserver::{ListType, MockApiServer};

/// Nine watches feed the grant controller, one the probe controller.
const WATCHES: usize = 10;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ControllerArgs,
}

#[tokio::test(start_paused = true)]
async fn quiet_watches_stay_open_for_more_than_5_minutes_without_a_reconnect() {
    crate::probe::tests::install_crypto();
    let mock = MockApiServer::new(ListType::Map);
    let url = mock.serve_loopback().await.unwrap();
    let args = Cli::try_parse_from([
        "controller",
        "--leader-election=false",
        "--metrics-addr=127.0.0.1:0",
        "--grant-subject=serviceaccount:muster/mcp-kubernetes",
    ])
    .unwrap()
    .args;
    tokio::spawn(run_controller_with(args, kube::Config::new(url.parse().unwrap())));
    // Small steps while the lists and watches go over loopback, so virtual time barely moves.
    let opened = tokio::time::Instant::now();
    while mock.watches().len() < WATCHES {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let quiet_from = tokio::time::Instant::now();
    assert!(
        quiet_from - opened < Duration::from_secs(5),
        "{:?}",
        quiet_from - opened
    );

    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    let watches = mock.watches();
    assert_eq!(watches.len(), WATCHES, "a watch was reopened: {watches:#?}");
    for watch in &watches {
        assert_eq!(watch.ended, None, "{watch:#?}");
        assert_eq!(
            watch.query.get("timeoutSeconds"),
            Some(&WATCH_TIMEOUT_SECS.to_string()),
            "{watch:#?}"
        );
    }
    let mut per_resource: BTreeMap<String, usize> = BTreeMap::new();
    for request in mock.requests().iter().filter(|r| r.verb == "watch") {
        *per_resource.entry(request.path.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("/api/v1/namespaces", 2),
        ("/api/v1/secrets", 2),
        ("/apis/rbac.authorization.k8s.io/v1/roles", 2),
        ("/apis/rbac.authorization.k8s.io/v1/rolebindings", 2),
        ("/apis/muster.giantswarm.io/v1alpha1/mcpservers", 2),
    ]
    .into_iter()
    .map(|(path, n)| (path.to_string(), n))
    .collect();
    // Two watches of each path: all and by label (namespaces, Secrets), one per grant kind (Roles,
    // RoleBindings), one per controller (MCPServers).
    assert_eq!(per_resource, expected);
}
