//! The heart of the webhook, pure and synchronous: a pod (as JSON) plus the MCPServers it names give
//! either nothing to do, a JSON Patch that injects the token-exchange sidecar, or a refusal.
//!
//! The same function serves `POST /mutate-pods` and the offline `muster-exchange inject`.

mod merge;
mod options;
mod patch;
mod quantity;
mod refusal;
mod render;
mod render_cache;
mod resolve;

use std::collections::BTreeMap;

use json_patch::Patch;
use muster_exchange_api::names::{
    ANNOTATION_MCPSERVERS, INJECTION_DISABLED, INJECTION_LABEL, is_system_namespace,
};
use serde_json::Value;

pub use options::{DEFAULT_CPU_REQUEST, DEFAULT_MEMORY_LIMIT, DEFAULT_MEMORY_REQUEST, InjectOptions};
pub use refusal::Refusal;
pub use render::{INJECTOR_VERSION, InjectorSettings, SIDECAR_UID};
pub use render_cache::RenderCache;

use crate::mcpserver_store::McpServerLookup;

/// What admission does with a pod that is not refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No `mcpservers` annotation: admitted untouched.
    NotRequested,
    /// Labelled `exchange.muster.giantswarm.io/injection: disabled`: admitted untouched.
    OptedOut,
    /// Already carries exactly this injection.
    UpToDate,
    /// Apply this patch.
    Inject(Patch),
}

impl Outcome {
    /// Low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotRequested => "not-requested",
            Self::OptedOut => "opted-out",
            Self::UpToDate => "up-to-date",
            Self::Inject(_) => "injected",
        }
    }
}

/// Decides the injection for `pod`, which runs (or will run) in `namespace`.
pub fn inject_pod(
    pod: &Value,
    namespace: &str,
    settings: &InjectorSettings,
    catalog: &dyn McpServerLookup,
) -> Result<Outcome, Refusal> {
    inject_pod_cached(pod, namespace, settings, catalog, None)
}

/// [`inject_pod`], reusing renders from `cache` (which must only ever see these `settings`).
pub fn inject_pod_cached(
    pod: &Value,
    namespace: &str,
    settings: &InjectorSettings,
    catalog: &dyn McpServerLookup,
    cache: Option<&RenderCache>,
) -> Result<Outcome, Refusal> {
    if !pod.is_object() || !pod.get("spec").is_some_and(Value::is_object) {
        return Err(Refusal::NotAPod("it has no spec object".into()));
    }
    if string_map(pod, "/metadata/labels")
        .get(INJECTION_LABEL)
        .map(String::as_str)
        == Some(INJECTION_DISABLED)
    {
        return Ok(Outcome::OptedOut);
    }
    let Some(options) = options::parse(&string_map(pod, "/metadata/annotations"))? else {
        return Ok(Outcome::NotRequested);
    };
    if is_system_namespace(namespace) {
        return Err(Refusal::SystemNamespace {
            namespace: namespace.to_string(),
            annotation: ANNOTATION_MCPSERVERS,
        });
    }
    let lookup_namespace = resolve::mcpserver_namespace(
        &options,
        settings.default_mcpserver_namespace.as_deref(),
        namespace,
    );
    let mcpservers = resolve::lookup_mcpservers(&options, lookup_namespace, catalog)?;
    let render = || {
        let clusters = resolve::resolve_clusters(&options, &mcpservers, lookup_namespace, namespace)?;
        render::render(&options, &clusters, settings).map_err(Refusal::RenderFailed)
    };
    let injection = match cache {
        Some(cache) => cache.get_or_render(namespace, lookup_namespace, &options, &mcpservers, render)?,
        None => std::sync::Arc::new(render()?),
    };
    Ok(match patch::plan(pod, &injection)? {
        Some(patch) => Outcome::Inject(patch),
        None => Outcome::UpToDate,
    })
}

/// A `map[string]string` field (labels, annotations); non-string values are ignored.
fn string_map(pod: &Value, pointer: &str) -> BTreeMap<String, String> {
    pod.pointer(pointer)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod kubeconfig_tests;
#[cfg(test)]
mod reinjection_tests;
#[cfg(test)]
mod tests;
