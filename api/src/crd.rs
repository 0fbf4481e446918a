//! The CRD rendered from the Rust types, as committed in `manifests/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::mcpserver::MCPServer;

/// Path of the committed CRD, relative to the workspace root.
pub const CRD_MANIFEST_PATH: &str = "manifests/crds/muster.giantswarm.io_mcpservers.yaml";

/// Why the CRD could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the MCPServer CRD as YAML: {0}")]
pub struct RenderError(String);

/// The MCPServer CRD as installed: what the types derive, plus the `listKind` Muster's CRD spells out
/// (kube-derive leaves it to the API server's default).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = MCPServer::crd();
    crd.spec.names.list_kind = Some("MCPServerList".to_string());
    crd
}

/// The MCPServer CRD as YAML, with a header saying where it comes from.
pub fn crd_yaml() -> Result<String, RenderError> {
    let crd = crd();
    let body = serde_saphyr::to_string(&crd).map_err(|e| RenderError(e.to_string()))?;
    Ok(format!(
        "# Generated from api/src/mcpserver.rs by `muster-exchange crd`; do not edit by hand.\n\
         # Regenerate with hack/generate-crd.sh. Compatible with Muster's own MCPServer CRD.\n---\n{body}"
    ))
}
