//! Turns an [`Injection`] into a JSON Patch against the pod, idempotently.
//!
//! "Ours" is decided by content, not by the status annotation alone: the `token-exchange` init container
//! is ours when it carries the sidecar configuration env var, and our volumes are the `mx-*` volumes it
//! mounts. A first injection is a handful of `add` operations (robust against other webhooks appending
//! to the same lists). An injected pod is up to date when every field we render is present with an equal
//! value (the API server adds defaults to what we inject, see [`super::merge`]); otherwise a re-injection
//! merges our fields into our items in place and removes stale ones, so reinvocation never duplicates
//! anything and an unchanged pod yields no patch at all.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use muster_exchange_api::names::{ANNOTATION_STATUS, SIDECAR_CONFIG_ENV, SIDECAR_CONTAINER_NAME};
use serde_json::{Value, json};

use super::merge::{is_rendered_in, merge_rendered};
use super::refusal::Refusal;
use super::render::Injection;
use crate::inject::layout::is_injected_volume_name;

/// The patch that makes `pod` carry `injection`; `None` when it already does.
pub fn plan(pod: &Value, injection: &Injection) -> Result<Option<Patch>, Refusal> {
    let (existing, our_volumes) = checked(pod, injection)?;
    let patch = match existing {
        None => first_injection(pod, injection),
        Some((_, sidecar)) if up_to_date(pod, injection, sidecar, &our_volumes) => return Ok(None),
        Some((index, sidecar)) => {
            let desired = reinjected(pod, injection, (index, sidecar), &our_volumes);
            json_patch::diff(pod, &desired)
        }
    };
    Ok((!patch.0.is_empty()).then_some(patch))
}

/// [`plan`], already in the base64 form of an admission response. A first injection depends on the
/// pod only through its shape (whether annotations, init containers and volumes exist), so its
/// encoding is computed once per render and shape and shared.
pub fn plan_encoded(pod: &Value, injection: &Injection) -> Result<Option<Arc<str>>, Refusal> {
    let (existing, _) = checked(pod, injection)?;
    if existing.is_some() {
        return match plan(pod, injection)? {
            Some(patch) => encode(&patch).map(Some),
            None => Ok(None),
        };
    }
    let shape = usize::from(pod.pointer("/metadata/annotations").is_some_and(Value::is_object))
        | usize::from(pod.pointer("/spec/initContainers").is_some_and(Value::is_array)) << 1
        | usize::from(pod.pointer("/spec/volumes").is_some_and(Value::is_array)) << 2;
    let slot = &injection.first_patches[shape];
    if let Some(encoded) = slot.get() {
        return Ok(Some(encoded.clone()));
    }
    let encoded = encode(&first_injection(pod, injection))?;
    Ok(Some(slot.get_or_init(|| encoded).clone()))
}

/// A JSON Patch as the API server wants it: base64 of its JSON (the JSON form of a Go `[]byte`).
pub fn encode_patch(patch: &Patch) -> Result<String, serde_json::Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(patch)?))
}

fn encode(patch: &Patch) -> Result<Arc<str>, Refusal> {
    encode_patch(patch)
        .map(Arc::from)
        .map_err(|e| Refusal::RenderFailed(format!("cannot serialise the patch: {e}")))
}

type Existing<'a> = Option<(usize, &'a Value)>;

/// Our sidecar if the pod has one, and the volumes it mounts; a refusal when a name we need is taken.
fn checked<'a>(pod: &'a Value, injection: &Injection) -> Result<(Existing<'a>, BTreeSet<String>), Refusal> {
    let existing = find_our_sidecar(pod)?;
    let our_volumes: BTreeSet<String> = existing
        .map(|(_, sidecar)| mounted_injected_volumes(sidecar))
        .unwrap_or_default();
    for volume in &injection.volumes {
        let name = volume_name(volume);
        if list(pod, "/spec/volumes").iter().any(|v| volume_name(v) == name) && !our_volumes.contains(name) {
            return Err(Refusal::NameCollision {
                what: "volume",
                name: name.to_string(),
            });
        }
    }
    Ok((existing, our_volumes))
}

/// Index and value of our sidecar in `initContainers`; a refusal if the name is taken by someone else.
fn find_our_sidecar(pod: &Value) -> Result<Option<(usize, &Value)>, Refusal> {
    let collision = || Refusal::NameCollision {
        what: "container",
        name: SIDECAR_CONTAINER_NAME.to_string(),
    };
    if list(pod, "/spec/containers")
        .iter()
        .any(|c| c["name"] == SIDECAR_CONTAINER_NAME)
    {
        return Err(collision());
    }
    let Some((index, sidecar)) = list(pod, "/spec/initContainers")
        .iter()
        .enumerate()
        .find(|(_, c)| c["name"] == SIDECAR_CONTAINER_NAME)
    else {
        return Ok(None);
    };
    let carries_config = sidecar["env"]
        .as_array()
        .is_some_and(|env| env.iter().any(|e| e["name"] == SIDECAR_CONFIG_ENV));
    if carries_config {
        Ok(Some((index, sidecar)))
    } else {
        Err(collision())
    }
}

fn mounted_injected_volumes(sidecar: &Value) -> BTreeSet<String> {
    sidecar["volumeMounts"]
        .as_array()
        .map(|mounts| {
            mounts
                .iter()
                .filter_map(|m| m["name"].as_str())
                .filter(|name| is_injected_volume_name(name))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn first_injection(pod: &Value, injection: &Injection) -> Patch {
    let mut ops = Vec::new();
    let mut add = |tokens: &[&str], value: Value| {
        ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(tokens.iter().copied()),
            value,
        }));
    };
    if pod.pointer("/metadata/annotations").is_some_and(Value::is_object) {
        add(
            &["metadata", "annotations", ANNOTATION_STATUS],
            json!(injection.status),
        );
    } else {
        add(
            &["metadata", "annotations"],
            json!({ ANNOTATION_STATUS: injection.status }),
        );
    }
    // First among the init containers, so init containers that follow can already use the sidecar.
    if pod.pointer("/spec/initContainers").is_some_and(Value::is_array) {
        add(&["spec", "initContainers", "0"], injection.sidecar.clone());
    } else {
        add(&["spec", "initContainers"], json!([injection.sidecar]));
    }
    if pod.pointer("/spec/volumes").is_some_and(Value::is_array) {
        for volume in &injection.volumes {
            add(&["spec", "volumes", "-"], volume.clone());
        }
    } else if !injection.volumes.is_empty() {
        add(&["spec", "volumes"], json!(injection.volumes));
    }
    Patch(ops)
}

/// Status annotation equal, every rendered field in the sidecar and our volumes, no stale volume of ours.
fn up_to_date(pod: &Value, injection: &Injection, sidecar: &Value, our_volumes: &BTreeSet<String>) -> bool {
    let status = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_STATUS))
        .and_then(Value::as_str);
    let volumes = list(pod, "/spec/volumes");
    status == Some(injection.status.as_str())
        && is_rendered_in(&injection.sidecar, sidecar)
        && our_volumes
            .iter()
            .all(|ours| injection.volumes.iter().any(|v| volume_name(v) == ours))
        && injection.volumes.iter().all(|wanted| {
            volumes
                .iter()
                .any(|v| volume_name(v) == volume_name(wanted) && is_rendered_in(wanted, v))
        })
}

fn reinjected(
    pod: &Value,
    injection: &Injection,
    (sidecar_index, sidecar): (usize, &Value),
    our_volumes: &BTreeSet<String>,
) -> Value {
    let mut desired = pod.clone();
    desired["spec"]["initContainers"][sidecar_index] = merge_rendered(sidecar, &injection.sidecar);
    let wanted: BTreeSet<&str> = injection.volumes.iter().map(volume_name).collect();
    let mut volumes: Vec<Value> = list(pod, "/spec/volumes")
        .iter()
        .filter(|v| !our_volumes.contains(volume_name(v)) || wanted.contains(volume_name(v)))
        .cloned()
        .collect();
    for volume in &injection.volumes {
        match volumes.iter_mut().find(|v| volume_name(v) == volume_name(volume)) {
            Some(slot) => *slot = merge_rendered(slot, volume),
            None => volumes.push(volume.clone()),
        }
    }
    desired["spec"]["volumes"] = Value::Array(volumes);
    if !desired["metadata"]["annotations"].is_object() {
        desired["metadata"]["annotations"] = json!({});
    }
    desired["metadata"]["annotations"][ANNOTATION_STATUS] = json!(injection.status);
    desired
}

fn list<'a>(pod: &'a Value, pointer: &str) -> &'a [Value] {
    pod.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn volume_name(volume: &Value) -> &str {
    volume["name"].as_str().unwrap_or_default()
}
