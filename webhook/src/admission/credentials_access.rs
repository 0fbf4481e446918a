//! The MCPServer author must be able to read the credentials Secret they name.
//!
//! Muster, the controller and the injected sidecar all read the Secret an MCPServer's
//! `clientCredentialsSecretRef` names, with their own privileges. Without this check anyone who may write
//! an MCPServer could have those components use a Secret the author cannot read themselves. A
//! SubjectAccessReview asks the API server whether the requesting user (the AdmissionReview's `userInfo`:
//! user, groups, uid, extra) may `get` that Secret; the reference is resolved as Muster resolves it (its
//! namespace, else the MCPServer's).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};
use kube::core::admission::Operation;
use serde_json::Value;

use super::{AdmissionAnswer, AdmissionRequest};

/// Longest wait for the API server's answer; below the webhook configuration's `timeoutSeconds` (5), so
/// the author reads this webhook's message rather than a timeout.
pub const SAR_TIMEOUT: Duration = Duration::from_secs(3);

/// The credentials Secret a review asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretRef {
    /// Namespace: the reference's, else the MCPServer's.
    pub(crate) namespace: String,
    /// Name.
    pub(crate) name: String,
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

fn secret_ref_of(object: &Value, request_namespace: &str) -> Option<SecretRef> {
    let reference = object.pointer("/spec/auth/tokenExchange/clientCredentialsSecretRef")?;
    let name = reference.get("name")?.as_str().filter(|n| !n.is_empty())?;
    let namespace = reference
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
        })
        .unwrap_or(request_namespace);
    Some(SecretRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// The Secret to check: on CREATE the one named, on UPDATE only when the reference changed (an author
/// may edit an MCPServer whose Secret someone else chose). `None` for anything else, and for an object
/// being deleted (its finalizers must stay removable).
pub(crate) fn secret_to_check(request: &AdmissionRequest) -> Option<SecretRef> {
    let object = match request.operation {
        Operation::Create | Operation::Update => request.object.as_ref()?,
        Operation::Delete | Operation::Connect => return None,
    };
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return None;
    }
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let wanted = secret_ref_of(object, namespace)?;
    let before = match request.operation {
        Operation::Update => request
            .old_object
            .as_ref()
            .and_then(|old| secret_ref_of(old, namespace)),
        _ => None,
    };
    (before.as_ref() != Some(&wanted)).then_some(wanted)
}

/// The review the API server answers: may this user, with these groups, uid and extra, `get` the Secret?
pub(crate) fn access_review(user: &UserInfo, secret: &SecretRef) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups.clone(),
            uid: user.uid.clone(),
            extra: user
                .extra
                .clone()
                .map(|e| e.into_iter().collect::<BTreeMap<_, _>>()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(secret.namespace.clone()),
                verb: Some("get".into()),
                group: Some(String::new()),
                resource: Some("secrets".into()),
                name: Some(secret.name.clone()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

fn who(user: &UserInfo) -> String {
    match user.username.as_deref() {
        Some(name) if !name.is_empty() => format!("user {name:?}"),
        _ => "the requesting user".to_string(),
    }
}

/// The answer for the API server's verdict.
pub(crate) fn answer_for(
    request: &AdmissionRequest,
    user: &UserInfo,
    secret: &SecretRef,
    status: Option<&SubjectAccessReviewStatus>,
) -> (AdmissionAnswer, &'static str) {
    let answer = AdmissionAnswer::allow(request);
    if status.is_some_and(|s| s.allowed && s.denied != Some(true)) {
        return (answer, "allowed");
    }
    let why = status
        .and_then(|s| s.reason.as_deref().or(s.evaluation_error.as_deref()))
        .filter(|r| !r.is_empty())
        .map(|r| format!(" (the API server says: {r})"))
        .unwrap_or_default();
    let message = format!(
        "{} may not get Secret {secret}{why}, which spec.auth.tokenExchange.clientCredentialsSecretRef names; \
         muster-exchange only lets an MCPServer name a credentials Secret its author can read: point the \
         reference at a Secret you may read, or ask someone who may read {secret} to make this change",
        who(user)
    );
    (answer.deny(message), "denied")
}

/// The answer when the review could not be asked: deny, and say what to check.
pub(crate) fn answer_for_failure(
    request: &AdmissionRequest,
    secret: &SecretRef,
    error: &str,
) -> (AdmissionAnswer, &'static str) {
    let message = format!(
        "cannot check that the author may get Secret {secret} (named by \
         spec.auth.tokenExchange.clientCredentialsSecretRef): {error}; retry, and if this persists check that \
         the muster-exchange webhook can reach the API server and that its ServiceAccount may create \
         subjectaccessreviews.authorization.k8s.io (manifests/webhook/rbac.yaml)"
    );
    (AdmissionAnswer::allow(request).deny(message), "error")
}

/// Decides one review: allowed when nothing needs checking or the API server says the author may `get`
/// the Secret; denied otherwise, including when the API server cannot be asked (`client` `None`: this
/// webhook runs without a Kubernetes client).
pub(crate) async fn decide_secret_access(
    client: Option<&kube::Client>,
    request: &AdmissionRequest,
) -> (AdmissionAnswer, &'static str) {
    let Some(secret) = secret_to_check(request) else {
        return (AdmissionAnswer::allow(request), "allowed");
    };
    let Some(user) = request.user_info.as_ref() else {
        return answer_for_failure(request, &secret, "the AdmissionReview carries no userInfo");
    };
    let Some(client) = client else {
        return answer_for_failure(request, &secret, "this webhook runs without a Kubernetes client");
    };
    let api = Api::<SubjectAccessReview>::all(client.clone());
    let review = access_review(user, &secret);
    match tokio::time::timeout(SAR_TIMEOUT, api.create(&PostParams::default(), &review)).await {
        Ok(Ok(answered)) => answer_for(request, user, &secret, answered.status.as_ref()),
        Ok(Err(error)) => answer_for_failure(request, &secret, &error.to_string()),
        Err(_) => answer_for_failure(
            request,
            &secret,
            &format!("the API server did not answer the SubjectAccessReview within {SAR_TIMEOUT:?}"),
        ),
    }
}

#[cfg(test)]
mod tests;
