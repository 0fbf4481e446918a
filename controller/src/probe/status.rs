//! Writing our conditions on one MCPServer without touching anything another writer owns.
//!
//! Muster owns `status` (its `state`, its `Ready` condition, any field a newer Muster adds) and its CRD
//! declares `status.conditions` an atomic list, so a server-side apply of our entries would replace the
//! whole list there. Instead every write is: read the object, change only entries of our condition
//! types in the conditions list as read (every other entry is kept as raw JSON, byte for byte), and send
//! a JSON merge patch of `status.conditions` alone carrying the `resourceVersion` read. If anyone wrote
//! in between, the API server answers 409 Conflict and the write starts over from a fresh read, at most
//! [`MAX_WRITE_ATTEMPTS`] times. This works the same on Muster's CRD (atomic list) and on ours (map list).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::is_our_condition_type;
use serde_json::{Value, json};

use crate::probe::conditions::build::conditions_for;
use crate::probe::conditions::merge::{merge, transitions, unchanged};
use crate::probe::outcome::ProbeOutcome;
use crate::runtime::error::Error;

/// Field manager of our status writes (separate from Muster's and from the grants').
pub(crate) const CONDITIONS_FIELD_MANAGER: &str = "muster-exchange-controller-conditions";

/// Reads and writes of one status change at most, when other writers keep winning the race.
pub(crate) const MAX_WRITE_ATTEMPTS: usize = 5;

/// `(condition, previous status)` for each of our conditions whose status flipped (`None`: it is new).
pub(crate) type Flips = Vec<(Condition, Option<String>)>;

/// A status write to make, and the transitions it carries as seen from the cache (the writer recomputes
/// them from what it reads).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusPlan {
    /// Our conditions, wanted.
    pub(crate) conditions: Vec<Condition>,
    /// `(condition, previous status)` for each flip (`None`: first time).
    pub(crate) transitions: Flips,
}

/// What to do to our entries of `status.conditions`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConditionChange<'a> {
    /// Make our entries these (every other entry stays).
    Set(&'a [Condition]),
    /// Remove our entries (every other entry stays).
    Clear,
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WriteOutcome {
    /// Written; the flips relative to what was read just before (for Events).
    Written(Flips),
    /// The object already said it; nothing was sent.
    Unchanged,
    /// The object is gone.
    Gone,
}

/// `None` when the cached conditions already say what `outcome` says (no read, no write).
pub(crate) fn plan_status(server: &MCPServer, outcome: &ProbeOutcome, now: &Time) -> Option<StatusPlan> {
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

/// The new `status.conditions` for `change` applied to `current` (the raw list as read), and the flips of
/// our types; `None` when nothing would change. Entries of other types keep their place and bytes; ours
/// keep their place too, a new one is appended, and a `lastTransitionTime` is kept when the status did not
/// flip. An empty result is `null` (the field is removed, as it was before we wrote).
pub(crate) fn merged_conditions(
    current: Option<&Value>,
    change: ConditionChange<'_>,
) -> Option<(Value, Flips)> {
    let entries: &[Value] = current.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let type_of = |entry: &Value| entry.get("type").and_then(Value::as_str).map(str::to_string);
    let wanted: &[Condition] = match change {
        ConditionChange::Set(conditions) => conditions,
        ConditionChange::Clear => &[],
    };
    let mut flips = Vec::new();
    let mut rendered: Vec<(String, Value)> = Vec::with_capacity(wanted.len());
    for condition in wanted {
        let old = entries
            .iter()
            .find(|e| type_of(e).as_deref() == Some(condition.type_.as_str()));
        let old_status = old.and_then(|e| e.get("status")).and_then(Value::as_str);
        let mut value = serde_json::to_value(condition).ok()?;
        if old_status == Some(condition.status.as_str())
            && let Some(at) = old.and_then(|e| e.get("lastTransitionTime"))
        {
            value["lastTransitionTime"] = at.clone();
        } else {
            flips.push((condition.clone(), old_status.map(str::to_string)));
        }
        rendered.push((condition.type_.clone(), value));
    }
    let mut out: Vec<Value> = Vec::with_capacity(entries.len() + rendered.len());
    for entry in entries {
        match type_of(entry) {
            Some(t) if is_our_condition_type(&t) => {
                // Ours: replaced in place by the wanted entry (once), dropped when not wanted.
                if let Some(index) = rendered.iter().position(|(wanted_type, _)| *wanted_type == t) {
                    out.push(rendered.remove(index).1);
                }
            }
            _ => out.push(entry.clone()),
        }
    }
    out.extend(rendered.into_iter().map(|(_, value)| value));
    if out.as_slice() == entries {
        return None;
    }
    let list = if out.is_empty() {
        Value::Null
    } else {
        Value::Array(out)
    };
    Some((list, flips))
}

/// The merge patch: our conditions list, guarded by the `resourceVersion` it was computed from.
pub(crate) fn status_patch(resource_version: &str, conditions: &Value) -> Value {
    json!({
        "metadata": {"resourceVersion": resource_version},
        "status": {"conditions": conditions},
    })
}

/// Applies `change` to `namespace/name`: read, merge, patch with the version read; on a conflict read and
/// merge again, at most [`MAX_WRITE_ATTEMPTS`] times. `on_conflict` runs once per conflict (metrics).
pub(crate) async fn write_conditions(
    client: &Client,
    namespace: &str,
    name: &str,
    change: ConditionChange<'_>,
    mut on_conflict: impl FnMut(),
) -> Result<WriteOutcome, Error> {
    let resource = ApiResource::erase::<MCPServer>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let what = || format!("{namespace}/{name}");
    let params = PatchParams {
        field_manager: Some(CONDITIONS_FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(object) = api
            .get_opt(name)
            .await
            .map_err(|cause| Error::Status { what: what(), cause })?
        else {
            return Ok(WriteOutcome::Gone);
        };
        let current = object.data.pointer("/status/conditions");
        let Some((conditions, flips)) = merged_conditions(current, change) else {
            return Ok(WriteOutcome::Unchanged);
        };
        let version = object.metadata.resource_version.unwrap_or_default();
        let patch = Patch::Merge(status_patch(&version, &conditions));
        match api.patch_status(name, &params, &patch).await {
            Ok(_) => return Ok(WriteOutcome::Written(flips)),
            Err(kube::Error::Api(status)) if status.code == 409 => on_conflict(),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(WriteOutcome::Gone),
            Err(cause) => return Err(Error::Status { what: what(), cause }),
        }
    }
    Err(Error::StatusConflict {
        what: what(),
        attempts: MAX_WRITE_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests;
