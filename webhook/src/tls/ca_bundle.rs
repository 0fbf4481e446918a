//! Publishing the self-signed CA into the webhook configurations' `caBundle` by server-side apply.
//!
//! Only `webhooks[*].clientConfig.caBundle` is applied, under its own field manager, so the installer
//! (kubectl, Helm, Flux) keeps owning everything else. RBAC needs `get` and `patch` on exactly the two
//! named configurations.

use base64::Engine;
use futures::future::BoxFuture;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

/// Field manager of the `caBundle` apply.
pub const FIELD_MANAGER: &str = "muster-exchange-webhook";

/// Why the CA bundle could not be published.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot publish the CA bundle to {kind} {name}: {source}; check that it exists and that the webhook's \
     ServiceAccount may get and patch it"
)]
pub struct PublishError {
    /// `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Somewhere the CA bundle goes; the cluster in production, a recorder in tests.
pub trait CaBundleSink: Send + Sync {
    /// Publishes `bundle_pem` (one or more concatenated PEM certificates).
    fn publish<'a>(&'a self, bundle_pem: &'a str) -> BoxFuture<'a, Result<(), PublishError>>;

    /// The `caBundle` (PEM, empty when unset) of every webhook of every configuration, as published now.
    fn current(&self) -> BoxFuture<'_, Result<Vec<String>, PublishError>>;
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

    async fn publish_both(&self, bundle_pem: &str) -> Result<(), PublishError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for (resource, kind, name) in self.targets() {
            let names: Vec<String> = self
                .webhooks(&resource, kind, name)
                .await?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let body = apply_body(kind, name, &names, bundle_pem);
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
            api.patch(name, &params, &Patch::Apply(body))
                .await
                .map_err(error(kind, name))?;
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

    /// One configuration's webhooks as `(webhook name, caBundle PEM or "")`.
    async fn webhooks(
        &self,
        resource: &ApiResource,
        kind: &'static str,
        name: &str,
    ) -> Result<Vec<(String, String)>, PublishError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource);
        let object = api.get(name).await.map_err(error(kind, name))?;
        let webhooks = object
            .data
            .get("webhooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(webhooks
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
            .collect())
    }

    async fn read_both(&self) -> Result<Vec<String>, PublishError> {
        let mut bundles = Vec::new();
        for (resource, kind, name) in self.targets() {
            bundles.extend(
                self.webhooks(&resource, kind, name)
                    .await?
                    .into_iter()
                    .map(|(_, b)| b),
            );
        }
        Ok(bundles)
    }
}

fn error(kind: &'static str, name: &str) -> impl FnOnce(kube::Error) -> PublishError {
    let name = name.to_string();
    move |source| PublishError { kind, name, source }
}

impl CaBundleSink for WebhookConfigurationPatcher {
    fn publish<'a>(&'a self, bundle_pem: &'a str) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(self.publish_both(bundle_pem))
    }

    fn current(&self) -> BoxFuture<'_, Result<Vec<String>, PublishError>> {
        Box::pin(self.read_both())
    }
}

/// The apply configuration: for every webhook of the configuration, only its `caBundle`.
pub fn apply_body(kind: &str, name: &str, webhook_names: &[String], bundle_pem: &str) -> Value {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
    let webhooks: Vec<Value> = webhook_names
        .iter()
        .map(|webhook| json!({"name": webhook, "clientConfig": {"caBundle": ca_bundle}}))
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": webhooks,
    })
}
