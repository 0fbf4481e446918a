//! The heart of the webhook, pure and synchronous: a pod (as JSON) plus the MCPServers it names give
//! either nothing to do, a JSON Patch that injects the token-exchange sidecar, or a refusal.
//!
//! The same function serves `POST /mutate-pods` and the offline `muster-exchange inject`.

pub(crate) mod layout;
mod merge;
mod options;
mod patch;
mod quantity;
mod refusal;
mod render;
mod render_cache;
mod resolve;

use std::sync::Arc;

use json_patch::Patch;
use muster_exchange_api::names::{
    ANNOTATION_MCPSERVERS, INJECTION_DISABLED, INJECTION_LABEL, is_system_namespace,
};
use serde_json::Value;

pub use options::{
    Annotations, DEFAULT_CPU_REQUEST, DEFAULT_MEMORY_LIMIT, DEFAULT_MEMORY_REQUEST, InjectOptions,
};
pub use patch::encode_patch;
pub use refusal::Refusal;
pub use render::{INJECTOR_VERSION, InjectorSettings};
pub use render_cache::RenderCache;

use render::Injection;

use crate::mcpservers::McpServerLookup;

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
    let injection = match prepare(pod, namespace, settings, catalog, cache)? {
        Prepared::Done(outcome) => return Ok(outcome),
        Prepared::Render(injection) => injection,
    };
    Ok(match patch::plan(pod, &injection)? {
        Some(patch) => Outcome::Inject(patch),
        None => Outcome::UpToDate,
    })
}

/// What the webhook answers for a pod that is not refused: the patch already base64-encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum EncodedOutcome {
    /// Nothing to do; the label says why (see [`Outcome::label`]).
    Unchanged(&'static str),
    /// Base64 of the JSON Patch, as `AdmissionResponse.patch` carries it.
    Inject(Arc<str>),
}

/// [`inject_pod_cached`] for the admission hot path: a first injection's encoded patch comes from the
/// render cache, so a hit clones no sidecar and serialises nothing.
pub fn inject_pod_encoded(
    pod: &Value,
    namespace: &str,
    settings: &InjectorSettings,
    catalog: &dyn McpServerLookup,
    cache: &RenderCache,
) -> Result<EncodedOutcome, Refusal> {
    let injection = match prepare(pod, namespace, settings, catalog, Some(cache))? {
        Prepared::Done(outcome) => return Ok(EncodedOutcome::Unchanged(outcome.label())),
        Prepared::Render(injection) => injection,
    };
    Ok(match patch::plan_encoded(pod, &injection)? {
        Some(encoded) => EncodedOutcome::Inject(encoded),
        None => EncodedOutcome::Unchanged(Outcome::UpToDate.label()),
    })
}

enum Prepared {
    Done(Outcome),
    Render(Arc<Injection>),
}

/// Everything up to the patch: opt-out, options, namespace rules, lookups and the (cached) render.
fn prepare(
    pod: &Value,
    namespace: &str,
    settings: &InjectorSettings,
    catalog: &dyn McpServerLookup,
    cache: Option<&RenderCache>,
) -> Result<Prepared, Refusal> {
    if !pod.is_object() || !pod.get("spec").is_some_and(Value::is_object) {
        return Err(Refusal::NotAPod("it has no spec object".into()));
    }
    let opted_out = pod
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(INJECTION_LABEL))
        .and_then(Value::as_str)
        == Some(INJECTION_DISABLED);
    if opted_out {
        return Ok(Prepared::Done(Outcome::OptedOut));
    }
    let no_annotations = serde_json::Map::new();
    let annotations = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .unwrap_or(&no_annotations);
    let Some(options) = options::parse(annotations)? else {
        return Ok(Prepared::Done(Outcome::NotRequested));
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
        None => Arc::new(render()?),
    };
    Ok(Prepared::Render(injection))
}

#[cfg(test)]
mod kubeconfig_tests;
#[cfg(test)]
mod reinjection_tests;
#[cfg(test)]
mod tests;
