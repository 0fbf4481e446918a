//! `muster-exchange inject`: the webhook's pod mutation applied offline to manifests, like
//! `istioctl kube-inject`. Pods and the pod templates of Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ReplicationController, Job and CronJob are injected; every other kind passes through unchanged.

use muster_exchange_api::documents::Document;
use serde_json::Value;

use crate::inject::{InjectorSettings, Outcome, Refusal, inject_pod};
use crate::mcpservers::McpServerLookup;

/// Why a manifest could not be injected; names the object and where it was read.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {object}: {refusal}")]
pub(crate) struct InjectError {
    /// File the object came from.
    pub(crate) source_name: String,
    /// Line its document starts at.
    pub(crate) line: usize,
    /// `kind/name`.
    pub(crate) object: String,
    /// Why it was refused (boxed: refusals carry several strings).
    pub(crate) refusal: Box<Refusal>,
}

/// JSON pointer to the pod (template) of a kind, `None` for kinds that carry no pod.
pub(crate) fn pod_template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            Some("/spec/template")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Injects every document; objects without a pod come back unchanged. Stops at the first refusal.
pub(crate) fn inject_documents(
    documents: Vec<Document>,
    default_namespace: &str,
    settings: &InjectorSettings,
    catalog: &dyn McpServerLookup,
) -> Result<Vec<Value>, InjectError> {
    documents
        .into_iter()
        .map(|document| inject_document(document, default_namespace, settings, catalog))
        .collect()
}

fn inject_document(
    document: Document,
    default_namespace: &str,
    settings: &InjectorSettings,
    catalog: &dyn McpServerLookup,
) -> Result<Value, InjectError> {
    let Some(pointer) = pod_template_pointer(document.kind()) else {
        return Ok(document.value);
    };
    let error = |refusal| InjectError {
        source_name: document.source.clone(),
        line: document.line,
        object: document.display_name(),
        refusal: Box::new(refusal),
    };
    let namespace = document
        .value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or(default_namespace)
        .to_string();
    let mut object = document.value.clone();
    let Some(pod) = object.pointer_mut(pointer) else {
        return Err(error(Refusal::NotAPod(format!(
            "it has no pod template at {pointer}"
        ))));
    };
    match inject_pod(pod, &namespace, settings, catalog).map_err(error)? {
        Outcome::Inject(patch) => {
            json_patch::patch(pod, &patch)
                .map_err(|e| error(Refusal::NotAPod(format!("cannot apply the injection: {e}"))))?;
            Ok(object)
        }
        Outcome::NotRequested | Outcome::OptedOut | Outcome::UpToDate => Ok(object),
    }
}

/// Multi-document YAML, one document per object.
pub(crate) fn to_yaml(objects: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(object).map_err(|e| format!("cannot write YAML: {e}"))?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
