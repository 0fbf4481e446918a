use super::*;

fn strict(controller_namespace: &str) -> CredentialsPolicy {
    CredentialsPolicy::for_controller(controller_namespace, false)
}

#[test]
fn protected_namespaces_are_the_system_ones_and_the_controllers_own() {
    assert_eq!(
        protected_namespace("kube-system", Some("mx")),
        Some(NamespaceRefusal::SystemNamespace)
    );
    assert_eq!(
        protected_namespace("kube-public", Some("mx")),
        Some(NamespaceRefusal::SystemNamespace)
    );
    assert_eq!(
        protected_namespace("kube-node-lease", None),
        Some(NamespaceRefusal::SystemNamespace)
    );
    assert_eq!(
        protected_namespace("mx", Some("mx")),
        Some(NamespaceRefusal::ControllerNamespace)
    );
    assert_eq!(protected_namespace("mx", None), None);
    assert_eq!(protected_namespace("org-acme", Some("mx")), None);
    assert_eq!(protected_namespace("", Some("mx")), None);
}

#[test]
fn a_secret_next_to_its_mcpserver_is_accepted() {
    assert_eq!(strict("mx").check("org-a", "creds", "org-a"), Ok(()));
    assert_eq!(
        CredentialsPolicy::offline().check("org-a", "creds", "org-a"),
        Ok(())
    );
}

#[test]
fn cross_namespace_needs_the_opt_in_which_never_opens_protected_namespaces() {
    assert_eq!(
        strict("mx").refusal("org-b", "org-a"),
        Some(NamespaceRefusal::CrossNamespace)
    );
    assert_eq!(
        strict("mx").refusal("kube-system", "kube-system"),
        Some(NamespaceRefusal::SystemNamespace)
    );
    assert_eq!(
        strict("mx").refusal("mx", "mx"),
        Some(NamespaceRefusal::ControllerNamespace)
    );
    let lax = CredentialsPolicy::for_controller("mx", true);
    assert_eq!(lax.refusal("org-b", "org-a"), None);
    assert_eq!(
        lax.refusal("kube-system", "org-a"),
        Some(NamespaceRefusal::SystemNamespace)
    );
    assert_eq!(
        lax.refusal("mx", "org-a"),
        Some(NamespaceRefusal::ControllerNamespace)
    );
}

#[test]
fn refusals_say_where_to_put_the_secret() {
    let message = |ns: &str, server_ns: &str| {
        let error = strict("mx").check(ns, "creds", server_ns).unwrap_err();
        (error.why.reason(), error.to_string())
    };
    assert_eq!(
        message("kube-system", "org-a"),
        (
            "SystemNamespace",
            "Secret kube-system/creds is in a system namespace; muster-exchange never reads or grants access \
             to credentials there: create the Secret in the MCPServer's namespace \"org-a\" and point \
             clientCredentialsSecretRef at it"
                .to_string()
        )
    );
    assert_eq!(
        message("mx", "org-a"),
        (
            "ControllerNamespace",
            "Secret mx/creds is in the muster-exchange controller's own namespace; it never reads or grants \
             access to credentials there: create the Secret in the MCPServer's namespace \"org-a\" and point \
             clientCredentialsSecretRef at it"
                .to_string()
        )
    );
    assert_eq!(
        message("org-b", "org-a"),
        (
            "CrossNamespace",
            "Secret org-b/creds is not in the MCPServer's namespace; create the Secret in the MCPServer's \
             namespace \"org-a\" and point clientCredentialsSecretRef at it (or, if every MCPServer author may \
             use Secrets in \"org-b\", start the controller with --allow-cross-namespace-credentials=true)"
                .to_string()
        )
    );
}

#[test]
fn an_unknown_mcpserver_namespace_is_not_quoted_as_empty() {
    let error = CredentialsPolicy::offline()
        .check("kube-system", "creds", "")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Secret kube-system/creds is in a system namespace; muster-exchange never reads or grants access to \
         credentials there: create the Secret in the MCPServer's namespace and point clientCredentialsSecretRef \
         at it"
    );
}

#[test]
fn an_mcpserver_in_a_protected_namespace_is_told_to_move_not_to_put_the_secret_next_to_it() {
    let message = |ns: &str| strict("mx").check(ns, "creds", ns).unwrap_err().to_string();
    assert_eq!(
        message("kube-public"),
        "Secret kube-public/creds is in a system namespace; muster-exchange never reads or grants access to \
         credentials there: move the MCPServer out of \"kube-public\" into an application namespace and create \
         the Secret next to it"
    );
    assert_eq!(
        message("mx"),
        "Secret mx/creds is in the muster-exchange controller's own namespace; it never reads or grants access \
         to credentials there: move the MCPServer out of \"mx\" into an application namespace and create the \
         Secret next to it"
    );
}
