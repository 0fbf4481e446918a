//! Leader election on a coordination.k8s.io Lease (kube-runtime 5 has no elector). Only the leader writes
//! grants and status; followers keep their caches warm and take over when the Lease expires.
//! Updates use the Lease's resourceVersion, so two replicas can never both win the same round.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What to do with the Lease this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Someone else held it and it expired (or nobody holds it): take it.
    Acquire,
    /// Someone else holds a live Lease.
    Follow(String),
}

/// Decides the round from the observed Lease.
pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseAction {
    let Some(spec) = lease.map(|l| l.spec.clone().unwrap_or_default()) else {
        return LeaseAction::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return LeaseAction::Renew;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0 + duration < now);
    if holder.is_empty() || expired {
        LeaseAction::Acquire
    } else {
        LeaseAction::Follow(holder)
    }
}

/// Settings of the elector.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews (and followers retry).
    pub renew_period: Duration,
}

fn held_lease(config: &ElectionConfig, previous: Option<&Lease>, now: Timestamp, acquiring: bool) -> Lease {
    let old = previous.and_then(|l| l.spec.clone()).unwrap_or_default();
    let transitions = old.lease_transitions.unwrap_or(0) + i32::from(acquiring && previous.is_some());
    Lease {
        metadata: ObjectMeta {
            name: Some(config.lease_name.clone()),
            namespace: Some(config.namespace.clone()),
            resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: if acquiring {
                Some(MicroTime(now))
            } else {
                old.acquire_time
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// One election round: `Ok(true)` when we hold the Lease afterwards.
pub async fn try_acquire_or_renew(api: &Api<Lease>, config: &ElectionConfig) -> Result<bool, kube::Error> {
    let current = api.get_opt(&config.lease_name).await?;
    let now = Timestamp::now();
    let result = match decide(current.as_ref(), &config.identity, now) {
        LeaseAction::Follow(_) => return Ok(false),
        LeaseAction::Create => {
            api.create(&PostParams::default(), &held_lease(config, None, now, true))
                .await
        }
        LeaseAction::Renew => {
            api.replace(
                &config.lease_name,
                &PostParams::default(),
                &held_lease(config, current.as_ref(), now, false),
            )
            .await
        }
        LeaseAction::Acquire => {
            api.replace(
                &config.lease_name,
                &PostParams::default(),
                &held_lease(config, current.as_ref(), now, true),
            )
            .await
        }
    };
    match result {
        Ok(_) => Ok(true),
        // Someone else wrote the Lease between our read and write: they won this round.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs rounds until `shutdown`, publishing leadership on `leader`. A holder that cannot renew for a
/// whole Lease duration steps down before anyone else can take over.
pub async fn run_elector(
    client: Client,
    config: ElectionConfig,
    leader: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        match try_acquire_or_renew(&api, &config).await {
            Ok(true) => last_renewed = Some(tokio::time::Instant::now()),
            Ok(false) => last_renewed = None,
            Err(e) => {
                tracing::warn!(error = %e, lease = %config.lease_name, "leader election round failed; retrying")
            }
        }
        // Step down a little before the Lease could be taken over, never after.
        let margin = config.lease_duration.saturating_sub(config.renew_period);
        let leading = last_renewed.is_some_and(|at| at.elapsed() < margin.max(config.renew_period));
        leader.send_if_modified(|was| std::mem::replace(was, leading) != leading);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.renew_period) => {}
        }
    }
    if *leader.borrow() {
        release(&api, &config).await;
    }
    leader.send_replace(false);
}

/// Gives the Lease up on shutdown so the next leader does not wait for it to expire.
async fn release(api: &Api<Lease>, config: &ElectionConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.lease_name).await else {
        return;
    };
    if let Some(spec) = lease.spec.as_mut() {
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
    }
    if let Err(e) = api
        .replace(&config.lease_name, &PostParams::default(), &lease)
        .await
    {
        tracing::warn!(error = %e, "cannot release the leader Lease; it expires on its own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_at: i64, duration: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed_at).unwrap())),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn decides_create_renew_acquire_and_follow() {
        let now = Timestamp::from_second(1000).unwrap();
        assert_eq!(decide(None, "me", now), LeaseAction::Create);
        assert_eq!(
            decide(Some(&lease(Some("me"), 990, 15)), "me", now),
            LeaseAction::Renew
        );
        assert_eq!(
            decide(Some(&lease(Some("other"), 990, 15)), "me", now),
            LeaseAction::Follow("other".into())
        );
        assert_eq!(
            decide(Some(&lease(Some("other"), 980, 15)), "me", now),
            LeaseAction::Acquire
        );
        assert_eq!(
            decide(Some(&lease(None, 999, 15)), "me", now),
            LeaseAction::Acquire
        );
    }

    #[test]
    fn acquiring_counts_a_transition_and_keeps_the_resource_version() {
        let config = ElectionConfig {
            lease_name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
        };
        let mut previous = lease(Some("other"), 0, 15);
        previous.metadata.resource_version = Some("42".into());
        let now = Timestamp::from_second(1000).unwrap();
        let taken = held_lease(&config, Some(&previous), now, true);
        let spec = taken.spec.unwrap();
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            (
                spec.holder_identity.as_deref(),
                spec.lease_transitions,
                spec.lease_duration_seconds
            ),
            (Some("me"), Some(1), Some(15))
        );
    }

    fn config() -> ElectionConfig {
        ElectionConfig {
            lease_name: "muster-exchange-controller".into(),
            namespace: "mx".into(),
            identity: "pod-a".into(),
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
        }
    }

    const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/mx/leases/muster-exchange-controller";

    fn not_found() -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "reason": "NotFound", "code": 404})
    }

    #[tokio::test]
    async fn creates_the_missing_lease_and_leads() {
        use crate::fixtures::{Expect, run_scenario};
        let created = serde_json::to_value(held_lease(&config(), None, Timestamp::now(), true)).unwrap();
        let expected = vec![
            Expect::get(LEASE, not_found())
                .failing(404)
                .responding(not_found()),
            Expect::any_body(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/mx/leases?",
                created,
            ),
        ];
        let leading = run_scenario(expected, |client| async move {
            try_acquire_or_renew(&Api::namespaced(client, "mx"), &config()).await
        })
        .await;
        assert!(leading.unwrap());
    }

    #[tokio::test]
    async fn a_live_lease_held_by_another_replica_is_followed_and_a_lost_race_is_not_an_error() {
        use crate::fixtures::{Expect, run_scenario};
        let now = Timestamp::now().as_second();
        let mut other = serde_json::to_value(lease(Some("pod-b"), now, 15)).unwrap();
        other["metadata"] = serde_json::json!({"name": "muster-exchange-controller", "namespace": "mx", "resourceVersion": "5"});
        let leading = run_scenario(vec![Expect::get(LEASE, other.clone())], |client| async move {
            try_acquire_or_renew(&Api::namespaced(client, "mx"), &config()).await
        })
        .await;
        assert!(!leading.unwrap());
        let mut expired = other.clone();
        expired["spec"]["renewTime"] = serde_json::json!("2020-01-01T00:00:00.000000Z");
        let conflict = serde_json::json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "reason": "Conflict", "code": 409});
        let expected = vec![
            Expect::get(LEASE, expired),
            Expect::any_body("PUT", format!("{LEASE}?"), conflict.clone())
                .failing(409)
                .responding(conflict),
        ];
        let leading = run_scenario(expected, |client| async move {
            try_acquire_or_renew(&Api::namespaced(client, "mx"), &config()).await
        })
        .await;
        assert!(!leading.unwrap());
    }
}
