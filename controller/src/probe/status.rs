//! Writing the conditions of one MCPServer: server-side apply on the status subresource with our own
//! field manager, only `status.conditions` (never `status.state`, Muster owns it), only when something
//! changed, `lastTransitionTime` kept when a status did not flip.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use muster_exchange_api::MCPServer;
use serde_json::json;

use crate::probe::conditions::build::conditions_for;
use crate::probe::conditions::merge::{merge, transitions, unchanged};
use crate::probe::outcome::ProbeOutcome;
use crate::runtime::error::Error;

/// Field manager of the conditions (separate from Muster's and from the grants').
pub const CONDITIONS_FIELD_MANAGER: &str = "muster-exchange-controller-conditions";

/// A status write to make, and the transitions it carries (for Events).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPlan {
    /// The conditions to apply.
    pub conditions: Vec<Condition>,
    /// `(condition, previous status)` for each flip (`None`: first time).
    pub transitions: Vec<(Condition, Option<String>)>,
}

/// `None` when the observed conditions already say what `outcome` says.
pub fn plan_status(server: &MCPServer, outcome: &ProbeOutcome, now: &Time) -> Option<StatusPlan> {
    let observed = server
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let merged = merge(
        &observed,
        conditions_for(outcome, server.metadata.generation, now),
    );
    if unchanged(&observed, &merged) {
        return None;
    }
    let flips = transitions(&observed, &merged)
        .into_iter()
        .map(|(c, old)| (c.clone(), old.map(str::to_string)))
        .collect();
    Some(StatusPlan {
        conditions: merged,
        transitions: flips,
    })
}

/// The apply body: apiVersion, kind and our conditions only.
pub fn status_body(conditions: &[Condition]) -> serde_json::Value {
    json!({
        "apiVersion": MCPServer::api_version(&()),
        "kind": MCPServer::kind(&()),
        "status": {"conditions": conditions},
    })
}

/// Applies the conditions to `namespace/name`'s status subresource.
pub async fn write_conditions(
    client: &Client,
    namespace: &str,
    name: &str,
    conditions: &[Condition],
) -> Result<(), Error> {
    let params = PatchParams::apply(CONDITIONS_FIELD_MANAGER).force();
    Api::<MCPServer>::namespaced(client.clone(), namespace)
        .patch_status(name, &params, &Patch::Apply(status_body(conditions)))
        .await
        .map(|_| ())
        .map_err(|cause| Error::Status {
            what: format!("{namespace}/{name}"),
            cause,
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use serde_json::Value;

    use super::*;
    use crate::probe::outcome::Check;
    use crate::runtime::fixtures::{Expect, run_scenario};

    const URI: &str = "/apis/muster.giantswarm.io/v1alpha1/namespaces/muster/mcpservers/cluster-a/status?&force=true&fieldManager=muster-exchange-controller-conditions";

    fn server(conditions: Value) -> MCPServer {
        serde_json::from_value(json!({
            "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "cluster-a", "namespace": "muster", "generation": 4},
            "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp"},
            "status": {"state": "Connected", "conditions": conditions}
        }))
        .unwrap()
    }

    fn disconnected() -> ProbeOutcome {
        ProbeOutcome {
            credentials: Check::ok("SecretFound", "s"),
            connected: Check::fail("Disconnected", "d"),
            token_exchange: Check::unknown("NotProbed", "n"),
        }
    }

    fn cond(type_: &str, status: &str, reason: &str, message: &str, at: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": 4,
            "lastTransitionTime": at})
    }

    #[tokio::test]
    async fn writes_only_our_conditions_keeping_unflipped_transition_times() {
        let observed = json!([
            cond(
                "CredentialsReady",
                "True",
                "SecretFound",
                "s",
                "2023-01-01T00:00:00Z"
            ),
            cond("Connected", "True", "DexAnswered", "ok", "2023-01-01T00:00:00Z")
        ]);
        let now = Time(Timestamp::from_second(1_700_000_000).unwrap());
        let plan = plan_status(&server(observed), &disconnected(), &now).unwrap();
        let flipped: Vec<_> = plan
            .transitions
            .iter()
            .map(|(c, old)| (c.type_.as_str(), old.as_deref()))
            .collect();
        assert_eq!(
            flipped,
            [
                ("Connected", Some("True")),
                ("TokenExchangeReady", None),
                ("Ready", None)
            ]
        );
        let new_at = "2023-11-14T22:13:20Z";
        let body = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer", "status": {"conditions": [
            cond("CredentialsReady", "True", "SecretFound", "s", "2023-01-01T00:00:00Z"),
            cond("Connected", "False", "Disconnected", "d", new_at),
            cond("TokenExchangeReady", "Unknown", "NotProbed", "n", new_at),
            cond("Ready", "False", "ChecksFailing", "not ready: Connected, TokenExchangeReady", new_at),
        ]}});
        let conditions = plan.conditions.clone();
        let stored = serde_json::to_value(server(body["status"]["conditions"].clone())).unwrap();
        run_scenario(
            vec![Expect::apply(URI, body).responding(stored)],
            |client| async move { write_conditions(&client, "muster", "cluster-a", &conditions).await },
        )
        .await
        .unwrap();
        // The same outcome again, against what we just wrote: nothing to write.
        let written = serde_json::to_value(&plan.conditions).unwrap();
        let later = Time(Timestamp::from_second(1_700_000_600).unwrap());
        assert_eq!(plan_status(&server(written), &disconnected(), &later), None);
    }
}
