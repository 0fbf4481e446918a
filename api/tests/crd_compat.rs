//! Compatibility with Muster's own MCPServer CRD: every property path in Muster's schema exists in ours
//! with the same type, default, enum and pattern; names, scope, printer columns and CEL rules carry over.
//! Ours may add validation and columns; it never drops or renames anything.
//!
//! Muster's CRD is read from `../shared/reference/` beside the project (present in CI), or from the file
//! named by `MUSTER_CRD`. It is not copied into the project. Where it is absent, the test says why and passes.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

fn muster_crd() -> Option<Value> {
    let path = std::env::var_os("MUSTER_CRD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/reference/muster.giantswarm.io_mcpservers.yaml")
        });
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let docs =
                muster_exchange_api::documents::parse_documents(&text, &path.display().to_string()).unwrap();
            Some(docs.into_iter().next().unwrap().value)
        }
        Err(e) => {
            eprintln!(
                "skipping: Muster's CRD not found at {} ({e}); set MUSTER_CRD to check compatibility",
                path.display()
            );
            None
        }
    }
}

fn ours() -> Value {
    serde_json::to_value(muster_exchange_api::crd::crd()).unwrap()
}

/// Flattens a schema into `path -> node`, descending into `properties`, `items` and
/// `additionalProperties`.
fn walk(schema: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    out.insert(path.clone(), schema.clone());
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, format!("{path}[]"), out);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        walk(extra, format!("{path}{{}}"), out);
    }
}

fn schema_of(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Problems found comparing `ours` against `theirs`; empty when compatible.
fn compatibility_problems(theirs: &Value, ours: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let (mut their_paths, mut our_paths) = (BTreeMap::new(), BTreeMap::new());
    walk(schema_of(theirs), String::new(), &mut their_paths);
    walk(schema_of(ours), String::new(), &mut our_paths);
    for (path, their_node) in &their_paths {
        // apiVersion, kind and metadata are served by the API server for every CRD; kube-derive omits them.
        if [".apiVersion", ".kind", ".metadata"].contains(&path.as_str()) {
            continue;
        }
        let Some(our_node) = our_paths.get(path) else {
            problems.push(format!("{path}: missing from our CRD"));
            continue;
        };
        for key in ["type", "default", "enum", "pattern"] {
            if their_node.get(key) != our_node.get(key) {
                problems.push(format!(
                    "{path}: {key} differs: Muster {:?}, ours {:?}",
                    their_node.get(key),
                    our_node.get(key)
                ));
            }
        }
        for rule in their_node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ours_rules = our_node.get("x-kubernetes-validations").and_then(Value::as_array);
            if !ours_rules.is_some_and(|r| r.contains(rule)) {
                problems.push(format!("{path}: CEL rule {rule} missing"));
            }
        }
    }
    for key in ["group", "scope"] {
        if theirs["spec"][key] != ours["spec"][key] {
            problems.push(format!("spec.{key} differs"));
        }
    }
    for key in ["kind", "listKind", "plural", "singular", "shortNames"] {
        if theirs["spec"]["names"][key] != ours["spec"]["names"][key] {
            problems.push(format!("spec.names.{key} differs"));
        }
    }
    let (tv, ov) = (&theirs["spec"]["versions"][0], &ours["spec"]["versions"][0]);
    for key in ["name", "served", "storage", "subresources"] {
        if tv[key] != ov[key] {
            problems.push(format!("version {key} differs"));
        }
    }
    let our_columns = ov["additionalPrinterColumns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for column in tv["additionalPrinterColumns"].as_array().into_iter().flatten() {
        let same = our_columns.iter().any(|c| {
            c["name"] == column["name"] && c["jsonPath"] == column["jsonPath"] && c["type"] == column["type"]
        });
        if !same {
            problems.push(format!("printer column {} missing or changed", column["name"]));
        }
    }
    problems
}

#[test]
fn every_muster_field_exists_in_ours_unchanged() {
    let Some(theirs) = muster_crd() else { return };
    let problems = compatibility_problems(&theirs, &ours());
    assert!(
        problems.is_empty(),
        "our CRD is not compatible with Muster's:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_notices_a_dropped_or_changed_field() {
    let Some(theirs) = muster_crd() else { return };
    let mut dropped = ours();
    let te = &mut dropped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["auth"]["properties"]["tokenExchange"]["properties"];
    te.as_object_mut().unwrap().remove("connectorId");
    te["scopes"]["default"] = Value::from("openid");
    let problems = compatibility_problems(&theirs, &dropped);
    assert_eq!(problems, vec![
        ".spec.auth.tokenExchange.connectorId: missing from our CRD".to_string(),
        ".spec.auth.tokenExchange.scopes: default differs: Muster Some(String(\"openid profile email groups\")), ours Some(String(\"openid\"))".to_string(),
    ]);
}
