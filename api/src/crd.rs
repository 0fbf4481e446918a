//! The CRD rendered from the Rust types, as committed in `manifests/components/mcpserver-crd/`.
//!
//! Muster owns the MCPServer CRD and its charts install and upgrade it; the default install of
//! muster-exchange leaves it alone. This generated copy is an optional component for clusters without
//! Muster (the e2e, a laptop) and is a superset of Muster's (`tests/crd_compat.rs` holds it to that).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;

use crate::mcpserver::MCPServer;

/// Path of the committed CRD, relative to the workspace root.
pub const CRD_MANIFEST_PATH: &str = "manifests/components/mcpserver-crd/muster.giantswarm.io_mcpservers.yaml";

/// Why the CRD could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the MCPServer CRD as YAML: {0}")]
pub struct RenderError(String);

/// The MCPServer CRD as installed: what the types derive, plus what Muster's CRD spells out and
/// kube-derive leaves to the API server's defaults: the `listKind` and the root `apiVersion`, `kind` and
/// `metadata` properties.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = MCPServer::crd();
    crd.spec.names.list_kind = Some("MCPServerList".to_string());
    for version in &mut crd.spec.versions {
        let root = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut());
        if let Some(root) = root {
            let properties = root.properties.get_or_insert_with(Default::default);
            for (name, property) in root_properties() {
                properties.entry(name.to_string()).or_insert(property);
            }
        }
    }
    crd
}

/// The properties every Kubernetes object has, as Muster's CRD (controller-gen) declares them.
fn root_properties() -> [(&'static str, JSONSchemaProps); 3] {
    let string = |description: &str| JSONSchemaProps {
        description: Some(description.to_string()),
        type_: Some("string".to_string()),
        ..JSONSchemaProps::default()
    };
    [
        (
            "apiVersion",
            string(
                "APIVersion defines the versioned schema of this representation of an object. Servers should \
                 convert recognized schemas to the latest internal value, and may reject unrecognized values. \
                 More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
            ),
        ),
        (
            "kind",
            string(
                "Kind is a string value representing the REST resource this object represents. Servers may \
                 infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. \
                 More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            ),
        ),
        (
            "metadata",
            JSONSchemaProps {
                type_: Some("object".to_string()),
                ..JSONSchemaProps::default()
            },
        ),
    ]
}

/// The MCPServer CRD as YAML, with a header saying where it comes from.
pub fn crd_yaml() -> Result<String, RenderError> {
    let crd = crd();
    let body = serde_saphyr::to_string(&crd).map_err(|e| RenderError(e.to_string()))?;
    Ok(format!(
        "# Generated from api/src/mcpserver.rs by `muster-exchange crd`; do not edit by hand.\n\
         # Regenerate with hack/generate-crd.sh. A superset of Muster's own MCPServer CRD, for clusters\n\
         # without Muster only: where Muster runs, its chart owns this CRD (docs/running-next-to-muster.md).\n---\n{body}"
    ))
}
