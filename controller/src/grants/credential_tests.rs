//! ApiServerVerifier scenarios for credential grants: from the MCPServers in the cache, the exact
//! requests the reconciles of every namespace send.

use serde_json::json;

use super::fixtures::{CREDENTIALS, credential_config, list_opted_in, mcpserver, stored, sync_credentials};
use muster_exchange_api::credentials_policy::NamespaceRefusal;

/// An MCPServer author cannot have Muster granted `get` on a Secret elsewhere: only Secrets next to
/// their MCPServer are granted; an old cross-namespace grant is removed.
#[tokio::test]
async fn secrets_outside_the_mcpservers_namespace_are_never_granted_by_default() {
    let servers = vec![
        mcpserver(
            "org-a",
            "steal",
            true,
            json!({"name": "db-password", "namespace": "org-b"}),
        ),
        mcpserver("org-a", "own", true, json!({"name": "token", "namespace": "mx"})),
        mcpserver(
            "org-a",
            "sys",
            true,
            json!({"name": "token", "namespace": "kube-system"}),
        ),
    ];
    let expected = vec![
        CREDENTIALS.list_roles(vec![stored(CREDENTIALS.role("org-b", &["db-password"]), "r1")]),
        CREDENTIALS.list_bindings(vec![stored(CREDENTIALS.binding("org-b"), "b1")]),
        CREDENTIALS.delete_role("org-b", "r1"),
        CREDENTIALS.delete_binding("org-b", "b1"),
    ];
    let config = credential_config(Some("serviceaccount:muster/muster"), "mx", false);
    let report = sync_credentials(expected, servers, config).await;
    assert_eq!((report.sync.applied, report.sync.deleted), (0, 2));
    assert_eq!(
        report.refused,
        [
            ("kube-system/token".to_string(), NamespaceRefusal::SystemNamespace),
            ("mx/token".to_string(), NamespaceRefusal::ControllerNamespace),
            ("org-b/db-password".to_string(), NamespaceRefusal::CrossNamespace),
        ]
    );
}

#[tokio::test]
async fn credential_grants_follow_mcpservers_and_drop_unneeded_ones() {
    let servers = vec![
        mcpserver("muster", "a", true, json!({"name": "dex-a"})),
        mcpserver(
            "muster",
            "b",
            true,
            json!({"name": "dex-b", "namespace": "creds"}),
        ),
        mcpserver("muster", "c", false, json!({"name": "dex-c"})),
        mcpserver(
            "muster",
            "d",
            true,
            json!({"name": "dex-d", "namespace": "kube-system"}),
        ),
    ];
    let expected = vec![
        list_opted_in(&[("creds", "dex-b"), ("muster", "dex-a")]),
        CREDENTIALS.list_roles(vec![stored(CREDENTIALS.role("old", &["dex-z"]), "r9")]),
        CREDENTIALS.list_bindings(vec![stored(CREDENTIALS.binding("creds"), "b1")]),
        CREDENTIALS.apply_role("creds", &["dex-b"]),
        CREDENTIALS.apply_role("muster", &["dex-a"]),
        CREDENTIALS.apply_binding("muster"),
        CREDENTIALS.delete_role("old", "r9"),
    ];
    let config = credential_config(Some("serviceaccount:muster/muster"), "muster-exchange", true);
    let report = sync_credentials(expected, servers, config).await;
    assert_eq!((report.sync.applied, report.sync.deleted), (3, 1));
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, "kube-system/dex-d");
}

#[tokio::test]
async fn without_a_credentials_reader_every_managed_credential_grant_goes() {
    let expected = vec![
        CREDENTIALS.list_roles(vec![stored(CREDENTIALS.role("muster", &["dex-a"]), "r1")]),
        CREDENTIALS.list_bindings(vec![stored(CREDENTIALS.binding("muster"), "b1")]),
        CREDENTIALS.delete_role("muster", "r1"),
        CREDENTIALS.delete_binding("muster", "b1"),
    ];
    let servers = vec![mcpserver("muster", "a", true, json!({"name": "dex-a"}))];
    let config = credential_config(None, "mx", false);
    let report = sync_credentials(expected, servers, config).await;
    assert_eq!(report.sync.deleted, 2);
}

/// Naming a Secret in an MCPServer is not enough to have Muster granted read on it: a Secret that has not
/// opted in (label and type Opaque, which the API server filters on) is not granted, and a grant it held
/// goes; the opted-in Secret next to it keeps its grant.
#[tokio::test]
async fn a_secret_that_has_not_opted_in_is_never_granted() {
    let servers = vec![
        mcpserver("muster", "a", true, json!({"name": "dex-a"})),
        mcpserver("muster", "tls", true, json!({"name": "ingress-tls"})),
        mcpserver("org-b", "b", true, json!({"name": "db-password"})),
    ];
    let expected = vec![
        list_opted_in(&[("muster", "dex-a")]),
        CREDENTIALS.list_roles(vec![
            stored(CREDENTIALS.role("muster", &["dex-a", "ingress-tls"]), "r1"),
            stored(CREDENTIALS.role("org-b", &["db-password"]), "r2"),
        ]),
        CREDENTIALS.list_bindings(vec![
            stored(CREDENTIALS.binding("muster"), "b1"),
            stored(CREDENTIALS.binding("org-b"), "b2"),
        ]),
        CREDENTIALS.apply_role("muster", &["dex-a"]),
        CREDENTIALS.delete_role("org-b", "r2"),
        CREDENTIALS.delete_binding("org-b", "b2"),
    ];
    let config = credential_config(Some("serviceaccount:muster/muster"), "mx", false);
    let report = sync_credentials(expected, servers, config).await;
    assert_eq!((report.sync.applied, report.sync.deleted), (1, 2));
    assert_eq!(report.not_opted_in, ["muster/ingress-tls", "org-b/db-password"]);
}
