//! Constants in `names.rs` that something outside Rust must agree with: the image's `USER` in the
//! Dockerfile and the condition types the CRD's printer columns read. kube-derive's `printcolumn` takes
//! string literals only, so these tests are what keeps the two from drifting.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::path::PathBuf;

use muster_exchange_api::crd::crd;
use muster_exchange_api::names::{CONDITION_DEX_CONNECTED, CONDITION_TOKEN_EXCHANGE_READY, SIDECAR_UID};

/// The `USER` lines of the workspace Dockerfile (the final stage's is the last one).
fn dockerfile_users() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("USER "))
        .map(|user| user.trim().to_string())
        .collect()
}

#[test]
fn the_image_runs_as_the_sidecar_uid() {
    // The webhook sets runAsUser/runAsGroup to SIDECAR_UID; an image with another USER would still start
    // but own its files differently than the pod spec says.
    assert_eq!(
        dockerfile_users(),
        [format!("{SIDECAR_UID}:{SIDECAR_UID}")],
        "the Dockerfile's USER must be names::SIDECAR_UID for user and group; change both together"
    );
}

#[test]
fn the_crd_printer_columns_read_the_controllers_condition_types() {
    let crd = crd();
    let columns = crd.spec.versions[0].additional_printer_columns.as_ref().unwrap();
    let path_of = |name: &str| {
        columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.json_path.clone())
            .unwrap_or_else(|| panic!("no printer column {name}"))
    };
    assert_eq!(
        path_of("Exchange"),
        format!(".status.conditions[?(@.type==\"{CONDITION_TOKEN_EXCHANGE_READY}\")].status")
    );
    assert_eq!(
        path_of("Dex"),
        format!(".status.conditions[?(@.type==\"{CONDITION_DEX_CONNECTED}\")].reason")
    );
}
