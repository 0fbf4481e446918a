//! The ValidatingAdmissionPolicies in manifests/policies/, evaluated offline with a CEL interpreter the way
//! the API server evaluates them: `matchConstraints` (operation, group, resource), then the
//! `matchConditions`, then every validation, with `object`, `oldObject` and `request` bound as the API
//! server binds them. An expression that fails to evaluate denies (`failurePolicy: Fail`).
//!
//! The objects the controller writes (built by its own code) and caBundle-only updates are admitted;
//! everything an attacker could try (other names, other rules, other subjects, system namespaces,
//! widening a webhook) is denied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::collections::BTreeSet;

use muster_exchange_api::documents::read_documents;
use muster_exchange_controller::testing::{
    DesiredGrant, GrantKind, desired_role, desired_role_binding, parse_service_account,
};
use serde_json::{Value, json};

const CONTROLLER_SA: &str = "system:serviceaccount:muster-exchange:muster-exchange-controller";
const WEBHOOK_SA: &str = "system:serviceaccount:muster-exchange:muster-exchange-webhook";

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn documents(path: &str) -> Vec<Value> {
    read_documents(&repo(path))
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect()
}

/// Every document of every file the policies' kustomization lists.
fn policy_documents() -> Vec<Value> {
    let kustomization = &documents("manifests/policies/kustomization.yaml")[0];
    kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|file| documents(&format!("manifests/policies/{}", file.as_str().unwrap())))
        .collect()
}

fn policy(name: &str) -> Value {
    policy_documents()
        .into_iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no policy {name}"))
}

/// One admission request, as the API server presents it to CEL.
struct Request {
    operation: &'static str,
    username: &'static str,
    group: &'static str,
    resource: &'static str,
    object: Value,
    old_object: Value,
}

impl Request {
    fn as_cel(&self) -> Value {
        let meta = if self.object.is_null() {
            &self.old_object["metadata"]
        } else {
            &self.object["metadata"]
        };
        json!({"operation": self.operation,
            "userInfo": {"username": self.username, "groups": ["system:serviceaccounts", "system:authenticated"]},
            "resource": {"group": self.group, "version": "v1", "resource": self.resource},
            "kind": {"group": self.group, "version": "v1", "kind": meta["kind"]},
            "name": meta["name"], "namespace": meta.get("namespace").cloned().unwrap_or(Value::Null)})
    }
}

fn eval(expression: &str, request: &Request) -> Result<bool, String> {
    let program = cel::Program::compile(expression).map_err(|e| format!("does not compile: {e}"))?;
    let mut context = cel::Context::default();
    context.add_variable("object", &request.object).unwrap();
    context.add_variable("oldObject", &request.old_object).unwrap();
    context.add_variable("request", request.as_cel()).unwrap();
    match program.execute(&context) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("{expression} evaluated to {other:?}, not a bool")),
        Err(e) => Err(format!("{expression} failed: {e}")),
    }
}

fn listed(rule: &Value, field: &str, value: &str) -> bool {
    rule[field]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == value || v == "*")
}

/// `Ok` when admitted; `Err(message)` when denied.
fn admit(policy: &Value, request: &Request) -> Result<(), String> {
    let spec = &policy["spec"];
    assert_eq!(spec["failurePolicy"], "Fail");
    let matched = spec["matchConstraints"]["resourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| {
            listed(rule, "operations", request.operation)
                && listed(rule, "apiGroups", request.group)
                && listed(rule, "resources", request.resource)
        });
    if !matched {
        return Ok(());
    }
    for condition in spec["matchConditions"].as_array().into_iter().flatten() {
        if !eval(condition["expression"].as_str().unwrap(), request)? {
            return Ok(());
        }
    }
    for validation in spec["validations"].as_array().unwrap() {
        if !eval(validation["expression"].as_str().unwrap(), request)? {
            return Err(validation["message"].as_str().unwrap().to_string());
        }
    }
    Ok(())
}

/// One edit of an object, making it one that must be denied.
type Change = Box<dyn Fn(&mut Value)>;

// ---- the controller's grants ----

fn grant(kind: GrantKind, namespace: &str, subjects: &[&str]) -> DesiredGrant {
    DesiredGrant {
        namespace: namespace.into(),
        kind,
        secret_names: ["cluster-a-kubeconfig".to_string(), "dex-creds".to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>(),
        subjects: subjects
            .iter()
            .map(|s| parse_service_account(s).unwrap())
            .collect(),
    }
}

fn kubeconfig_grant() -> DesiredGrant {
    grant(
        GrantKind::Kubeconfig,
        "org-acme",
        &["serviceaccount:muster/mcp-kubernetes"],
    )
}

fn credentials_grant() -> DesiredGrant {
    grant(
        GrantKind::Credentials,
        "org-acme",
        &["serviceaccount:muster/muster"],
    )
}

/// The Role as the API server shows it to admission (the code's object, with apiVersion and kind).
fn role(grant: &DesiredGrant) -> Value {
    let mut role = serde_json::to_value(desired_role(grant)).unwrap();
    role["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    role["kind"] = json!("Role");
    role
}

/// The RoleBinding as admission sees it: defaulting has filled each subject's apiGroup.
fn binding(grant: &DesiredGrant) -> Value {
    let mut binding = serde_json::to_value(desired_role_binding(grant)).unwrap();
    binding["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    binding["kind"] = json!("RoleBinding");
    for subject in binding["subjects"].as_array_mut().unwrap() {
        subject["apiGroup"] = json!("");
    }
    binding
}

fn write(resource: &'static str, username: &'static str, object: Value) -> Request {
    Request {
        operation: "CREATE",
        username,
        group: "rbac.authorization.k8s.io",
        resource,
        object,
        old_object: Value::Null,
    }
}

fn grants_policy() -> Value {
    policy("muster-exchange-controller-grants")
}

#[test]
fn the_grants_the_controller_writes_are_admitted_on_create_and_update() {
    let policy = grants_policy();
    for grant in [kubeconfig_grant(), credentials_grant()] {
        admit(&policy, &write("roles", CONTROLLER_SA, role(&grant))).unwrap();
        admit(&policy, &write("rolebindings", CONTROLLER_SA, binding(&grant))).unwrap();
        let mut update = write("roles", CONTROLLER_SA, role(&grant));
        update.operation = "UPDATE";
        update.old_object = role(&grant);
        admit(&policy, &update).unwrap();
    }
}

fn denied_role(change: impl FnOnce(&mut Value)) -> String {
    let mut object = role(&credentials_grant());
    change(&mut object);
    admit(&grants_policy(), &write("roles", CONTROLLER_SA, object)).unwrap_err()
}

fn denied_binding(grant: DesiredGrant, change: impl FnOnce(&mut Value)) -> String {
    let mut object = binding(&grant);
    change(&mut object);
    admit(&grants_policy(), &write("rolebindings", CONTROLLER_SA, object)).unwrap_err()
}

#[test]
fn the_controller_may_not_grant_in_system_namespaces_or_its_own() {
    for namespace in ["kube-system", "kube-public", "kube-node-lease", "muster-exchange"] {
        let message = denied_role(|r| r["metadata"]["namespace"] = json!(namespace));
        assert!(message.contains("never grants in system namespaces"), "{message}");
        let message = denied_binding(kubeconfig_grant(), |b| {
            b["metadata"]["namespace"] = json!(namespace)
        });
        assert!(message.contains("never grants in system namespaces"), "{message}");
    }
}

#[test]
fn the_controller_may_write_only_its_names_with_its_labels() {
    let message = denied_role(|r| r["metadata"]["name"] = json!("admin"));
    assert!(
        message.contains("writes only the Roles and RoleBindings"),
        "{message}"
    );
    for change in [
        |r: &mut Value| r["metadata"]["labels"] = Value::Null,
        |r: &mut Value| {
            r["metadata"].as_object_mut().unwrap().remove("labels");
        },
        |r: &mut Value| r["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("helm"),
        |r: &mut Value| r["metadata"]["labels"]["exchange.muster.giantswarm.io/grant"] = json!("kubeconfig"),
    ] {
        let message = denied_role(change);
        assert!(
            message.contains("carry app.kubernetes.io/managed-by=muster-exchange")
                || message.contains("failed"),
            "{message}"
        );
    }
}

#[test]
fn a_grant_role_holds_exactly_get_on_named_secrets() {
    let cases: Vec<Change> = vec![
        Box::new(|r| r["rules"][0]["verbs"] = json!(["get", "list"])),
        Box::new(|r| r["rules"][0]["verbs"] = json!(["*"])),
        Box::new(|r| r["rules"][0]["resources"] = json!(["secrets", "configmaps"])),
        Box::new(|r| r["rules"][0]["resources"] = json!(["*"])),
        Box::new(|r| r["rules"][0]["apiGroups"] = json!(["*"])),
        Box::new(|r| {
            r["rules"][0].as_object_mut().unwrap().remove("resourceNames");
        }),
        Box::new(|r| r["rules"][0]["resourceNames"] = json!([])),
        Box::new(|r| {
            let extra = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]});
            r["rules"].as_array_mut().unwrap().push(extra);
        }),
        Box::new(|r| r["rules"] = json!([])),
    ];
    for change in cases {
        let message = denied_role(change);
        assert!(
            message.contains("exactly one rule, get on secrets by resourceNames")
                || message.contains("failed"),
            "{message}"
        );
    }
}

#[test]
fn a_grant_binding_binds_its_own_role_to_the_configured_service_accounts_only() {
    let cases: Vec<(DesiredGrant, Change)> = vec![
        (
            credentials_grant(),
            Box::new(
                |b| b["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}),
            ),
        ),
        (
            credentials_grant(),
            Box::new(|b| b["roleRef"]["name"] = json!("muster-exchange-kubeconfig-reader")),
        ),
        (
            credentials_grant(),
            Box::new(
                |b| b["subjects"] = json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]),
            ),
        ),
        (
            credentials_grant(),
            Box::new(|b| {
                b["subjects"] =
                    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory"}])
            }),
        ),
        (
            credentials_grant(),
            Box::new(|b| {
                let extra = json!({"kind": "ServiceAccount", "apiGroup": "", "name": "default", "namespace": "org-acme"});
                b["subjects"].as_array_mut().unwrap().push(extra);
            }),
        ),
        // The kubeconfig reader bound as credentials reader, and the other way round.
        (
            credentials_grant(),
            Box::new(|b| b["subjects"][0]["name"] = json!("mcp-kubernetes")),
        ),
        (
            kubeconfig_grant(),
            Box::new(|b| b["subjects"][0]["name"] = json!("muster")),
        ),
        (credentials_grant(), Box::new(|b| b["subjects"] = json!([]))),
    ];
    for (grant, change) in cases {
        let message = denied_binding(grant, change);
        assert!(
            message.contains("binds the Role of its own name to the configured ServiceAccounts only")
                || message.contains("failed"),
            "{message}"
        );
    }
}

#[test]
fn others_are_not_bounded_by_the_controller_policy() {
    let mut object = role(&credentials_grant());
    object["metadata"]["namespace"] = json!("kube-system");
    object["rules"][0]["verbs"] = json!(["*"]);
    admit(&grants_policy(), &write("roles", "kubernetes-admin", object)).unwrap();
}

/// The subjects the policy allows are the ones the controller is started with.
#[test]
fn the_allowed_subjects_are_the_deployment_flags() {
    let deployment = &documents("manifests/controller/deployment.yaml")[0];
    let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let flag = |name: &str| -> Vec<String> {
        args.iter()
            .filter_map(|a| a.strip_prefix(&format!("--{name}=serviceaccount:")))
            .map(|s| format!("'{s}'"))
            .collect()
    };
    let validations = grants_policy()["spec"]["validations"].to_string();
    let text = validations
        .replace("\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let expected = format!(
        "? [{}] : [{}]",
        flag("grant-subject").join(", "),
        flag("credentials-reader").join(", ")
    );
    assert!(text.contains(&expected), "{expected} not in the policy");
}

// ---- the webhook's configurations ----

fn configurations() -> Vec<(&'static str, Value)> {
    vec![
        (
            "mutatingwebhookconfigurations",
            documents("manifests/webhook/mutatingwebhookconfiguration.yaml")[0].clone(),
        ),
        (
            "validatingwebhookconfigurations",
            documents("manifests/webhook/validatingwebhookconfiguration.yaml")[0].clone(),
        ),
    ]
}

fn update(resource: &'static str, username: &'static str, old: &Value, new: Value) -> Request {
    Request {
        operation: "UPDATE",
        username,
        group: "admissionregistration.k8s.io",
        resource,
        object: new,
        old_object: old.clone(),
    }
}

fn cabundle_policy() -> Value {
    policy("muster-exchange-webhook-cabundle-only")
}

#[test]
fn the_webhook_may_set_and_rotate_ca_bundles() {
    let policy = cabundle_policy();
    for (resource, old) in configurations() {
        let mut new = old.clone();
        for hook in new["webhooks"].as_array_mut().unwrap() {
            hook["clientConfig"]["caBundle"] = json!("Y2EtMQ==");
        }
        admit(&policy, &update(resource, WEBHOOK_SA, &old, new.clone())).unwrap();
        let mut rotated = new.clone();
        rotated["webhooks"][0]["clientConfig"]["caBundle"] = json!("Y2EtMg==");
        admit(&policy, &update(resource, WEBHOOK_SA, &new, rotated)).unwrap();
    }
}

#[test]
fn the_webhook_may_change_nothing_else() {
    let policy = cabundle_policy();
    let cases: Vec<(&str, Change)> = vec![
        (
            "rules",
            Box::new(|c| c["webhooks"][0]["rules"][0]["resources"] = json!(["*"])),
        ),
        (
            "failurePolicy",
            Box::new(|c| {
                let flipped = if c["webhooks"][0]["failurePolicy"] == "Ignore" {
                    "Fail"
                } else {
                    "Ignore"
                };
                c["webhooks"][0]["failurePolicy"] = json!(flipped);
            }),
        ),
        (
            "namespaceSelector",
            Box::new(|c| c["webhooks"][0]["namespaceSelector"] = json!({})),
        ),
        (
            "objectSelector",
            Box::new(|c| c["webhooks"][0]["objectSelector"] = json!({"matchLabels": {"a": "b"}})),
        ),
        (
            "service",
            Box::new(|c| c["webhooks"][0]["clientConfig"]["service"]["name"] = json!("evil")),
        ),
        (
            "url",
            Box::new(|c| c["webhooks"][0]["clientConfig"]["url"] = json!("https://evil.example/")),
        ),
        (
            "timeout",
            Box::new(|c| c["webhooks"][0]["timeoutSeconds"] = json!(30)),
        ),
        (
            "sideEffects",
            Box::new(|c| c["webhooks"][0]["sideEffects"] = json!("Some")),
        ),
        (
            "matchConditions",
            Box::new(|c| c["webhooks"][0]["matchConditions"] = json!([{"name": "x", "expression": "true"}])),
        ),
        (
            "renamed",
            Box::new(|c| c["webhooks"][0]["name"] = json!("other.example.com")),
        ),
        (
            "added",
            Box::new(|c| {
                let copy = c["webhooks"][0].clone();
                c["webhooks"].as_array_mut().unwrap().push(copy);
            }),
        ),
        (
            "removed",
            Box::new(|c| {
                c["webhooks"].as_array_mut().unwrap().pop();
            }),
        ),
    ];
    for (resource, old) in configurations() {
        for (what, change) in &cases {
            let mut new = old.clone();
            change(&mut new);
            let result = admit(&policy, &update(resource, WEBHOOK_SA, &old, new.clone()));
            assert!(result.is_err(), "{resource}: {what} was admitted");
            // Anyone else (the installer) may change the configuration.
            admit(&policy, &update(resource, "kubernetes-admin", &old, new)).unwrap();
        }
    }
}

#[test]
fn the_webhook_may_not_create_or_delete_configurations() {
    let policy = cabundle_policy();
    for (resource, config) in configurations() {
        let mut create = update(resource, WEBHOOK_SA, &Value::Null, config.clone());
        create.operation = "CREATE";
        assert!(
            admit(&policy, &create)
                .unwrap_err()
                .contains("never creates or deletes")
        );
        let mut delete = update(resource, WEBHOOK_SA, &config, Value::Null);
        delete.operation = "DELETE";
        assert!(admit(&policy, &delete).is_err());
    }
}

// ---- the policies as a set ----

#[test]
fn every_policy_has_a_binding_and_every_binding_names_a_policy() {
    let docs = policy_documents();
    let names = |kind: &str, field: &str| -> BTreeSet<String> {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .map(|d| d.pointer(field).unwrap().as_str().unwrap().to_string())
            .collect()
    };
    let policies = names("ValidatingAdmissionPolicy", "/metadata/name");
    let bound = names("ValidatingAdmissionPolicyBinding", "/spec/policyName");
    assert_eq!(policies, bound);
    assert_eq!(policies.len(), 2);
    for doc in &docs {
        assert_eq!(doc["apiVersion"], "admissionregistration.k8s.io/v1", "{doc}");
        if doc["kind"] == "ValidatingAdmissionPolicyBinding" {
            assert_eq!(doc["spec"]["validationActions"], json!(["Deny"]));
        }
    }
    // Every file in the folder is listed by the kustomization.
    let listed: BTreeSet<String> = documents("manifests/policies/kustomization.yaml")[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(repo("manifests/policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files);
}

/// The credentials webhook's matchConditions: MCPServers naming a credentials Secret, nothing else.
#[test]
fn the_credentials_webhook_matches_only_mcpservers_naming_a_secret() {
    let config = &documents("manifests/webhook/validatingwebhookconfiguration.yaml")[0];
    let hook = config["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["clientConfig"]["service"]["path"] == "/validate-mcpserver-credentials")
        .unwrap();
    let expression = hook["matchConditions"][0]["expression"].as_str().unwrap();
    let server = |spec: Value| Request {
        operation: "CREATE",
        username: "alice",
        group: "muster.giantswarm.io",
        resource: "mcpservers",
        object: json!({"metadata": {"name": "a", "namespace": "muster"}, "spec": spec}),
        old_object: Value::Null,
    };
    let named =
        json!({"auth": {"type": "oauth", "tokenExchange": {"clientCredentialsSecretRef": {"name": "c"}}}});
    assert_eq!(eval(expression, &server(named)), Ok(true));
    for spec in [
        json!({"type": "stdio"}),
        json!({"auth": {"type": "oauth"}}),
        json!({"auth": {"type": "oauth", "tokenExchange": {"enabled": true}}}),
    ] {
        assert_eq!(eval(expression, &server(spec.clone())), Ok(false), "{spec}");
    }
}
