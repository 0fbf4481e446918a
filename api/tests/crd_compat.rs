//! Compatibility with Muster's own MCPServer CRD: every property path in Muster's schema exists in ours
//! with the same type, format, default and pattern, and every enum value Muster's accepts is accepted by
//! ours; names, scope, printer columns and CEL rules carry over. Ours may add validation and columns; it
//! never drops or renames anything.
//!
//! Muster's CRD is test data in this repository (`tests/data/muster-crd-5.28.yaml`, its header names the
//! public source), so the test never depends on files outside it and fails, never skips, when the file is
//! missing. `MUSTER_CRD=path` checks against another copy (for example a newer Muster release).

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::collections::BTreeMap;
use std::path::PathBuf;

use muster_exchange_api::names::OUR_CONDITION_TYPES;
use serde_json::Value;

fn muster_crd() -> Value {
    let path = std::env::var_os("MUSTER_CRD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/muster-crd-5.28.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "Muster's CRD is missing at {} ({e}); restore api/tests/data/muster-crd-5.28.yaml from git",
            path.display()
        )
    });
    let docs = muster_exchange_api::documents::parse_documents(&text, &path.display().to_string()).unwrap();
    docs.into_iter().next().unwrap().value
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
        let Some(our_node) = our_paths.get(path) else {
            problems.push(format!("{path}: missing from our CRD"));
            continue;
        };
        for key in ["type", "format", "default", "pattern"] {
            if their_node.get(key) != our_node.get(key) {
                problems.push(format!(
                    "{path}: {key} differs: Muster {:?}, ours {:?}",
                    their_node.get(key),
                    our_node.get(key)
                ));
            }
        }
        // Every value Muster's schema admits must be admitted by ours (Muster writes them).
        let our_values = our_node.get("enum").and_then(Value::as_array);
        for value in their_node
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !our_values.is_some_and(|ours| ours.contains(value)) {
                problems.push(format!("{path}: enum value {value} missing from ours"));
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
    let theirs = muster_crd();
    let problems = compatibility_problems(&theirs, &ours());
    assert!(
        problems.is_empty(),
        "our CRD is not compatible with Muster's:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_notices_a_dropped_or_changed_field() {
    let theirs = muster_crd();
    let mut dropped = ours();
    let te = &mut dropped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["auth"]["properties"]["tokenExchange"]["properties"];
    te.as_object_mut().unwrap().remove("connectorId");
    te["scopes"]["default"] = Value::from("openid");
    let status = &mut dropped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    status["restartCount"]["format"] = Value::from("int32");
    status["state"]["enum"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v != "Awaiting Session");
    dropped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("metadata");
    let problems = compatibility_problems(&theirs, &dropped);
    assert_eq!(problems, vec![
        ".metadata: missing from our CRD".to_string(),
        ".spec.auth.tokenExchange.connectorId: missing from our CRD".to_string(),
        ".spec.auth.tokenExchange.scopes: default differs: Muster Some(String(\"openid profile email groups\")), ours Some(String(\"openid\"))".to_string(),
        ".status.restartCount: format differs: Muster None, ours Some(String(\"int32\"))".to_string(),
        ".status.state: enum value \"Awaiting Session\" missing from ours".to_string(),
    ]);
}

/// The condition types Muster's CRD documents in the description of `status.conditions` (lines such as
/// `- Ready: True if infrastructure is reachable`).
fn documented_condition_types(crd: &Value) -> Vec<String> {
    let description = schema_of(crd)["properties"]["status"]["properties"]["conditions"]["description"]
        .as_str()
        .unwrap_or_default();
    description
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|entry| entry.split_once(':'))
        .map(|(type_, _)| type_.trim().to_string())
        .collect()
}

#[test]
fn no_condition_type_we_write_is_one_muster_documents() {
    let theirs = muster_crd();
    let documented = documented_condition_types(&theirs);
    assert!(
        documented.contains(&"Ready".to_string()),
        "the description format changed; read it again: {documented:?}"
    );
    for ours in OUR_CONDITION_TYPES {
        assert!(
            !documented.iter().any(|t| t == ours),
            "{ours} is a condition type Muster's CRD documents; pick another name"
        );
    }
    // Condition types Muster's printer columns read are Muster's too.
    let columns = theirs["spec"]["versions"][0]["additionalPrinterColumns"].to_string();
    for ours in OUR_CONDITION_TYPES {
        assert!(!columns.contains(&format!("type==\"{ours}\"")), "{ours}");
    }
}
