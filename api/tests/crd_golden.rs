//! The committed CRD in `manifests/components/mcpserver-crd/` must be exactly what the Rust types generate.
//! Run `hack/generate-crd.sh` (or this test with `UPDATE_CRD=1`) after changing `api/src/mcpserver.rs`.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::path::PathBuf;

use muster_exchange_api::crd::{CRD_MANIFEST_PATH, crd_yaml};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_MANIFEST_PATH)
}

#[test]
fn committed_crd_matches_the_rust_types() {
    let generated = crd_yaml().unwrap();
    let path = committed_path();
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run hack/generate-crd.sh", path.display()));
    assert!(
        committed == generated,
        "{} is out of date with api/src/mcpserver.rs; run hack/generate-crd.sh and commit the result",
        path.display()
    );
}

#[test]
fn committed_crd_parses_back_into_a_crd() {
    let text = std::fs::read_to_string(committed_path()).unwrap();
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_saphyr::from_str(text.split_once("\n---\n").unwrap().1).unwrap();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("mcpservers.muster.giantswarm.io")
    );
}
