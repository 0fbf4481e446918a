//! Leader election on a coordination.k8s.io Lease (kube-runtime 5 has no elector). Only the leader writes
//! grants and status; followers keep their caches warm and take over when the Lease expires.
//! Updates use the Lease's resourceVersion, so two replicas can never both win the same round.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;

/// What to do with the Lease this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseAction {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Someone else held it and it expired (or nobody holds it): take it.
    Acquire,
    /// Someone else holds a live Lease.
    Follow(String),
}

/// What this replica last saw of another holder's Lease, and when (on its own monotonic clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observation {
    /// `holderIdentity`.
    pub(crate) holder: String,
    /// `renewTime` as written by the holder (compared for change only, never with our clock).
    pub(crate) renew_time: Option<MicroTime>,
    /// When this replica first saw this `(holder, renewTime)`.
    pub(crate) seen_at: Instant,
}

/// Decides the round from the Lease read at `now`. Another holder's Lease counts as expired only when
/// its `(holderIdentity, renewTime)` has not changed for a whole lease duration *as this replica
/// observed it* (client-go's rule): comparing its `renewTime` with our wall clock would let clock skew
/// between nodes elect two leaders. `observed` is updated with what was seen.
pub(crate) fn decide(
    lease: Option<&Lease>,
    identity: &str,
    observed: &mut Option<Observation>,
    now: Instant,
) -> LeaseAction {
    let Some(spec) = lease.map(|l| l.spec.clone().unwrap_or_default()) else {
        *observed = None;
        return LeaseAction::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        *observed = None;
        return LeaseAction::Renew;
    }
    if holder.is_empty() {
        *observed = None;
        return LeaseAction::Acquire;
    }
    let unchanged = observed
        .as_ref()
        .is_some_and(|o| o.holder == holder && o.renew_time == spec.renew_time);
    if !unchanged {
        *observed = Some(Observation {
            holder: holder.clone(),
            renew_time: spec.renew_time.clone(),
            seen_at: now,
        });
        return LeaseAction::Follow(holder);
    }
    let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    match observed {
        Some(o) if now.saturating_duration_since(o.seen_at) > duration => LeaseAction::Acquire,
        _ => LeaseAction::Follow(holder),
    }
}

/// Settings of the elector.
#[derive(Debug, Clone)]
pub(crate) struct ElectionConfig {
    /// Lease name.
    pub(crate) lease_name: String,
    /// Lease namespace.
    pub(crate) namespace: String,
    /// This replica's identity (pod name).
    pub(crate) identity: String,
    /// How long a Lease stays valid without renewal.
    pub(crate) lease_duration: Duration,
    /// How often the holder renews (and followers retry).
    pub(crate) renew_period: Duration,
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

/// One election round: `Ok(true)` when we hold the Lease afterwards. `observed` carries what this
/// replica saw of another holder between rounds.
pub(crate) async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &ElectionConfig,
    observed: &mut Option<Observation>,
) -> Result<bool, kube::Error> {
    let current = api.get_opt(&config.lease_name).await?;
    let now = Timestamp::now();
    let result = match decide(current.as_ref(), &config.identity, observed, Instant::now()) {
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

/// Gives the Lease up on shutdown so the next leader does not wait for it to expire (only when this
/// identity holds it).
pub(crate) async fn release(api: &Api<Lease>, config: &ElectionConfig) {
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
        let (now, mut seen) = (Instant::now(), None);
        assert_eq!(decide(None, "me", &mut seen, now), LeaseAction::Create);
        assert_eq!(
            decide(Some(&lease(Some("me"), 990, 15)), "me", &mut seen, now),
            LeaseAction::Renew
        );
        assert_eq!(
            decide(Some(&lease(Some("other"), 990, 15)), "me", &mut seen, now),
            LeaseAction::Follow("other".into())
        );
        assert_eq!(
            decide(Some(&lease(None, 999, 15)), "me", &mut None, now),
            LeaseAction::Acquire
        );
    }

    /// Another holder's Lease expires only by our own observation of it not changing, never by comparing
    /// its renewTime with our wall clock (a follower whose clock runs ahead must not take over).
    #[test]
    fn another_holders_expiry_is_judged_by_when_we_saw_its_lease_change() {
        let start = Instant::now();
        let mut seen = None;
        // A renewTime years in the past (skewed clocks) is not expired when first seen.
        let old = lease(Some("other"), 0, 15);
        assert_eq!(
            decide(Some(&old), "me", &mut seen, start),
            LeaseAction::Follow("other".into())
        );
        let later = start + Duration::from_secs(15);
        assert_eq!(
            decide(Some(&old), "me", &mut seen, later),
            LeaseAction::Follow("other".into()),
            "exactly one lease duration unchanged: still live"
        );
        // The holder renewed (whatever its clock says): the lease duration counts again from now.
        let renewed = lease(Some("other"), 1, 15);
        let much_later = start + Duration::from_secs(16);
        assert_eq!(
            decide(Some(&renewed), "me", &mut seen, much_later),
            LeaseAction::Follow("other".into())
        );
        assert_eq!(
            decide(
                Some(&renewed),
                "me",
                &mut seen,
                much_later + Duration::from_secs(16)
            ),
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
        use crate::runtime::fixtures::{Expect, run_scenario};
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
            try_acquire_or_renew(&Api::namespaced(client, "mx"), &config(), &mut None).await
        })
        .await;
        assert!(leading.unwrap());
    }

    #[tokio::test]
    async fn a_live_lease_held_by_another_replica_is_followed_and_a_lost_race_is_not_an_error() {
        use crate::runtime::fixtures::{Expect, run_scenario};
        let now = Timestamp::now().as_second();
        let mut other = serde_json::to_value(lease(Some("pod-b"), now, 15)).unwrap();
        other["metadata"] = serde_json::json!({"name": "muster-exchange-controller", "namespace": "mx", "resourceVersion": "5"});
        let leading = run_scenario(vec![Expect::get(LEASE, other.clone())], |client| async move {
            try_acquire_or_renew(&Api::namespaced(client, "mx"), &config(), &mut None).await
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
        // This replica saw that very Lease, unchanged, more than a lease duration ago.
        let mut seen = Some(Observation {
            holder: "pod-b".into(),
            renew_time: serde_json::from_value(serde_json::json!("2020-01-01T00:00:00.000000Z")).unwrap(),
            seen_at: Instant::now().checked_sub(Duration::from_secs(16)).unwrap(),
        });
        let leading = run_scenario(expected, |client| async move {
            try_acquire_or_renew(&Api::namespaced(client, "mx"), &config(), &mut seen).await
        })
        .await;
        assert!(!leading.unwrap());
    }
}
