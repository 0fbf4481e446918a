//! The credentials Secret opt-in: the controller reads a Secret's values, sends them to a Dex, and grants
//! Muster read on it only when the Secret carries `exchange.muster.giantswarm.io/credentials: "true"` and
//! is of type `Opaque`. Naming a Secret in an MCPServer is not enough: anyone who may write an MCPServer
//! could otherwise have the controller send any Secret of the namespace (a TLS key, a token) as HTTP Basic
//! to a host of their choosing.
//!
//! In the cluster the API server does the filtering: the Secret is listed with a label selector and a
//! `type=Opaque` field selector, so the data of a Secret that has not opted in never leaves the API
//! server. Only when nothing matched is the Secret's metadata listed, to tell the author what to change.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta};
use kube::{Client, ResourceExt};
use muster_exchange_api::names::{
    CREDENTIALS_OPT_IN_LABEL, CREDENTIALS_OPT_IN_VALUE, CREDENTIALS_SECRET_TYPE,
};

use super::outcome::Check;
use crate::runtime::error::Error;

/// What reading a credentials Secret found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SecretLookup {
    /// The Secret exists and has opted in.
    OptedIn(Box<Secret>),
    /// No Secret of that name.
    NotFound,
    /// The Secret exists but may not be used; its values were not read.
    Refused(OptInRefusal),
}

impl SecretLookup {
    /// The Secret when it may be used.
    pub(crate) fn opted_in(&self) -> Option<&Secret> {
        match self {
            SecretLookup::OptedIn(secret) => Some(secret),
            SecretLookup::NotFound | SecretLookup::Refused(_) => None,
        }
    }
}

/// Why a Secret that exists is not used as client credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OptInRefusal {
    /// The opt-in label is missing or has another value.
    NotLabelled,
    /// Labelled, but not of type `Opaque` (`None`: the type is not known, e.g. only metadata was seen).
    NotOpaque(Option<String>),
}

impl OptInRefusal {
    /// Stable reason, used as the condition reason.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            OptInRefusal::NotLabelled => "SecretNotOptedIn",
            OptInRefusal::NotOpaque(_) => "SecretNotOpaque",
        }
    }

    /// What was found and exactly what to do about it.
    pub(crate) fn message(&self, namespace: &str, name: &str) -> String {
        match self {
            OptInRefusal::NotLabelled => format!(
                "Secret {namespace}/{name} does not carry the label {CREDENTIALS_OPT_IN_LABEL}={CREDENTIALS_OPT_IN_VALUE}, \
                 so muster-exchange neither reads it nor grants Muster access to it; if it holds this MCPServer's \
                 Dex client credentials, label it: kubectl label secret -n {namespace} {name} \
                 {CREDENTIALS_OPT_IN_LABEL}={CREDENTIALS_OPT_IN_VALUE}"
            ),
            OptInRefusal::NotOpaque(found) => {
                let found = found
                    .as_deref()
                    .map(|t| format!(" (it is of type {t:?})"))
                    .unwrap_or_default();
                format!(
                    "Secret {namespace}/{name} is labelled {CREDENTIALS_OPT_IN_LABEL}={CREDENTIALS_OPT_IN_VALUE} but is not \
                     of type {CREDENTIALS_SECRET_TYPE}{found}, so muster-exchange neither reads it nor grants Muster \
                     access to it; put the client id and secret in a Secret of type {CREDENTIALS_SECRET_TYPE} \
                     (kubectl create secret generic) with that label"
                )
            }
        }
    }

    /// The `ExchangeCredentialsReady=False` check for this refusal.
    pub(crate) fn check(&self, namespace: &str, name: &str) -> Check {
        Check::fail(self.reason(), self.message(namespace, name))
    }
}

/// True when `meta` carries the opt-in label with the opt-in value.
pub(crate) fn has_opt_in_label(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(CREDENTIALS_OPT_IN_LABEL))
        .is_some_and(|v| v == CREDENTIALS_OPT_IN_VALUE)
}

/// Judges a Secret already at hand (manifest files, or a second look at what the API server returned).
/// A Secret without a type is `Opaque`, as the API server defaults it.
pub(crate) fn judge(secret: &Secret) -> Result<(), OptInRefusal> {
    if !has_opt_in_label(&secret.metadata) {
        return Err(OptInRefusal::NotLabelled);
    }
    match secret.type_.as_deref() {
        None | Some(CREDENTIALS_SECRET_TYPE) => Ok(()),
        Some(other) => Err(OptInRefusal::NotOpaque(Some(other.to_string()))),
    }
}

/// [`judge`] as a lookup result.
pub(crate) fn judge_found(secret: Secret) -> SecretLookup {
    match judge(&secret) {
        Ok(()) => SecretLookup::OptedIn(Box::new(secret)),
        Err(refusal) => SecretLookup::Refused(refusal),
    }
}

/// The label selector every credentials Secret read carries.
pub(crate) fn opt_in_label_selector() -> String {
    format!("{CREDENTIALS_OPT_IN_LABEL}={CREDENTIALS_OPT_IN_VALUE}")
}

/// List parameters that match Secret `name` only when it has opted in.
pub(crate) fn opted_in_params(name: &str) -> ListParams {
    ListParams::default()
        .labels(&opt_in_label_selector())
        .fields(&format!("metadata.name={name},type={CREDENTIALS_SECRET_TYPE}"))
}

/// Reads credentials Secret `namespace/name` as described in the module documentation.
pub(crate) async fn read_credentials_secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<SecretLookup, Error> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let list_error = |cause| Error::List {
        what: format!("secret {namespace}/{name}"),
        cause,
    };
    let matched = api.list(&opted_in_params(name)).await.map_err(list_error)?;
    // Judged again: what the API server returned must match the name, label and type asked for.
    if let Some(secret) = matched.items.into_iter().find(|s| s.name_any() == name) {
        return Ok(judge_found(secret));
    }
    let meta = api
        .list_metadata(&ListParams::default().fields(&format!("metadata.name={name}")))
        .await
        .map_err(list_error)?;
    Ok(match meta.items.iter().find(|m| m.name_any() == name) {
        None => SecretLookup::NotFound,
        Some(m) if has_opt_in_label(&m.metadata) => SecretLookup::Refused(OptInRefusal::NotOpaque(None)),
        Some(_) => SecretLookup::Refused(OptInRefusal::NotLabelled),
    })
}

#[cfg(test)]
mod tests;
