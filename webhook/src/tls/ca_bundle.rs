//! Publishing the self-signed CA into the webhook configurations' `caBundle` by server-side apply.
//!
//! Only `webhooks[*].clientConfig.caBundle` is applied, under its own field manager, so the installer
//! (kubectl, Helm, Flux) keeps owning everything else. RBAC needs `get` and `patch` on exactly the two
//! named configurations.
//!
//! Several replicas publish into the same configurations, so every apply carries the
//! `metadata.resourceVersion` of the read it merged: a stale write is rejected (409 Conflict) instead of
//! silently dropping the CAs another replica added in between.

use base64::Engine;
use futures::future::BoxFuture;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::apiserver::{CALL_TIMEOUT, within};

/// Field manager of the `caBundle` apply.
pub const FIELD_MANAGER: &str = "muster-exchange-webhook";

/// Why the CA bundle could not be read or published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The API server refused or could not be reached.
    #[error(
        "cannot publish the CA bundle to {kind} {name}: {source}; check that it exists and that the \
         webhook's ServiceAccount may get and patch it"
    )]
    Api {
        /// `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The configuration changed since it was read (409 Conflict on the `resourceVersion` precondition).
    #[error(
        "{kind} {name} changed since it was read at resourceVersion {resource_version:?}: another replica \
         of the webhook wrote first; re-reading and merging its CAs before publishing again"
    )]
    Conflict {
        /// `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The `resourceVersion` the write was based on.
        resource_version: String,
    },
}

impl PublishError {
    /// True when another writer came first: re-read, merge and retry rather than give up.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// One webhook configuration as read: the precondition of the next write and every webhook's bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadConfiguration {
    /// `metadata.resourceVersion`; the write based on this read is rejected if it changed meanwhile.
    pub resource_version: String,
    /// `(webhook name, caBundle PEM or "")` of every webhook, in order.
    pub webhooks: Vec<(String, String)>,
}

/// Every configuration of a sink as read, in the sink's order; handed back to [`CaBundleSink::publish`]
/// so the write carries the read's preconditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedBundles {
    /// One entry per configuration.
    pub configurations: Vec<ReadConfiguration>,
}

impl PublishedBundles {
    /// The `caBundle` (PEM, empty when unset) of every webhook of every configuration.
    pub fn bundles(&self) -> Vec<String> {
        self.configurations
            .iter()
            .flat_map(|configuration| configuration.webhooks.iter().map(|(_, bundle)| bundle.clone()))
            .collect()
    }
}

/// Somewhere the CA bundle goes; the cluster in production, an in-memory double in tests.
///
/// Several webhook replicas share one sink, so writes are optimistic: [`Self::publish`] must fail with
/// [`PublishError::Conflict`] when a configuration changed since `read` was taken, never overwrite it.
pub trait CaBundleSink: Send + Sync {
    /// Publishes `bundle_pem` (one or more concatenated PEM certificates) to every webhook of `read`,
    /// on condition that nothing changed since `read`.
    fn publish<'a>(
        &'a self,
        bundle_pem: &'a str,
        read: &'a PublishedBundles,
    ) -> BoxFuture<'a, Result<(), PublishError>>;

    /// Every configuration as published now, with its `resourceVersion`.
    fn current(&self) -> BoxFuture<'_, Result<PublishedBundles, PublishError>>;
}

/// Applies the bundle to one MutatingWebhookConfiguration and one ValidatingWebhookConfiguration.
#[derive(Clone)]
pub struct WebhookConfigurationPatcher {
    client: kube::Client,
    mutating: String,
    validating: String,
}

impl WebhookConfigurationPatcher {
    /// Patches the configurations named `mutating` and `validating`.
    pub fn new(client: kube::Client, mutating: String, validating: String) -> Self {
        Self {
            client,
            mutating,
            validating,
        }
    }

    /// Applies `bundle_pem` to the webhooks of `read`, each apply conditional on the `resourceVersion`
    /// read; a read that does not cover both configurations counts as stale.
    async fn publish_both(&self, bundle_pem: &str, read: &PublishedBundles) -> Result<(), PublishError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for (index, (resource, kind, name)) in self.targets().into_iter().enumerate() {
            let Some(configuration) = read.configurations.get(index) else {
                return Err(PublishError::Conflict {
                    kind,
                    name: name.to_string(),
                    resource_version: String::new(),
                });
            };
            let names: Vec<String> = configuration.webhooks.iter().map(|(n, _)| n.clone()).collect();
            let version = configuration.resource_version.as_str();
            let body = apply_body(kind, name, version, &names, bundle_pem);
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
            let body = Patch::Apply(body);
            let patch = api.patch(name, &params, &body);
            within(CALL_TIMEOUT, || format!("patch {kind} {name}"), patch)
                .await
                .map_err(|source| match source {
                    kube::Error::Api(status) if status.is_conflict() => PublishError::Conflict {
                        kind,
                        name: name.to_string(),
                        resource_version: version.to_string(),
                    },
                    source => error(kind, name)(source),
                })?;
        }
        Ok(())
    }
}

impl WebhookConfigurationPatcher {
    /// The two configurations, mutating first, with what the dynamic API needs to address them.
    fn targets(&self) -> [(ApiResource, &'static str, &str); 2] {
        [
            (
                ApiResource::erase::<MutatingWebhookConfiguration>(&()),
                "MutatingWebhookConfiguration",
                self.mutating.as_str(),
            ),
            (
                ApiResource::erase::<ValidatingWebhookConfiguration>(&()),
                "ValidatingWebhookConfiguration",
                self.validating.as_str(),
            ),
        ]
    }

    /// One configuration's `resourceVersion` and webhooks.
    async fn read_one(
        &self,
        resource: &ApiResource,
        kind: &'static str,
        name: &str,
    ) -> Result<ReadConfiguration, PublishError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource);
        let object = within(CALL_TIMEOUT, || format!("get {kind} {name}"), api.get(name))
            .await
            .map_err(error(kind, name))?;
        let webhooks = object
            .data
            .get("webhooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let webhooks = webhooks
            .iter()
            .map(|w| {
                let webhook = w
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let bundle = w
                    .pointer("/clientConfig/caBundle")
                    .and_then(Value::as_str)
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                (webhook, bundle)
            })
            .collect();
        Ok(ReadConfiguration {
            resource_version: object.metadata.resource_version.unwrap_or_default(),
            webhooks,
        })
    }

    async fn read_both(&self) -> Result<PublishedBundles, PublishError> {
        let mut configurations = Vec::new();
        for (resource, kind, name) in self.targets() {
            configurations.push(self.read_one(&resource, kind, name).await?);
        }
        Ok(PublishedBundles { configurations })
    }
}

fn error(kind: &'static str, name: &str) -> impl FnOnce(kube::Error) -> PublishError {
    let name = name.to_string();
    move |source| PublishError::Api { kind, name, source }
}

impl CaBundleSink for WebhookConfigurationPatcher {
    fn publish<'a>(
        &'a self,
        bundle_pem: &'a str,
        read: &'a PublishedBundles,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(self.publish_both(bundle_pem, read))
    }

    fn current(&self) -> BoxFuture<'_, Result<PublishedBundles, PublishError>> {
        Box::pin(self.read_both())
    }
}

/// The apply configuration: for every webhook of the configuration, only its `caBundle`, conditional on
/// `resource_version` (the API server answers 409 Conflict when the object changed since it was read,
/// so a replica never overwrites CAs another replica added meanwhile).
pub fn apply_body(
    kind: &str,
    name: &str,
    resource_version: &str,
    webhook_names: &[String],
    bundle_pem: &str,
) -> Value {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
    let webhooks: Vec<Value> = webhook_names
        .iter()
        .map(|webhook| json!({"name": webhook, "clientConfig": {"caBundle": ca_bundle}}))
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "resourceVersion": resource_version},
        "webhooks": webhooks,
    })
}
