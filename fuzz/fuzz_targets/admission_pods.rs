//! `POST /mutate-pods` on arbitrary bytes, with the MCPServers of the webhook's router tests.
//!
//! Asserts, for every input: the handler answers 200 with a well-formed AdmissionReview (uid echoed,
//! `patchType: JSONPatch` and a base64 JSON Patch when patched) or 400, never anything else; a patch
//! applies to the object reviewed; the same body reviewed again (render cache warm) gets the same answer.
//! When `request.object` is a valid `Pod` (as the API server always sends), the review is repeated with
//! the pod as the API server serialises it, and then: the patched pod deserialises as a `Pod`; its app
//! containers, other init containers, other volumes, labels and annotations are unchanged; unique
//! container and volume names and resolvable volume mounts stay so; a second review of the patched pod
//! (fresh state and warm state) is allowed without a patch (idempotence).
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use libfuzzer_sys::fuzz_target;
use muster_exchange_webhook::fuzzing::{AppState, PodReviews, mutate_pods};
use serde_json::Value;

const SIDECAR_IMAGE: &str = "ghcr.io/giantswarm/muster-exchange:0.1.0";
const SIDECAR_NAME: &str = "token-exchange";
const STATUS_ANNOTATION: &str = "exchange.muster.giantswarm.io/status";

static REVIEWS: LazyLock<PodReviews> = LazyLock::new(|| {
    PodReviews::new(
        include_str!("../../webhook/tests/fixtures/mcpservers.yaml"),
        SIDECAR_IMAGE,
    )
    .unwrap_or_else(|e| panic!("the fuzz catalog must load: {e}"))
});

fuzz_target!(|data: &[u8]| {
    let state = REVIEWS.state();
    let Reviewed::Answered(patch) = review(&state, data, None) else {
        return;
    };
    let Ok(sent) = serde_json::from_slice::<Value>(data) else {
        panic!("a body that is not JSON got an answer");
    };
    if let Some(patch) = &patch {
        let mut object = sent["request"]["object"].clone();
        json_patch::patch(&mut object, patch).unwrap_or_else(|e| {
            panic!("the patch does not apply to the object reviewed: {e}\npatch: {patch:?}")
        });
    }
    let Ok(pod) = serde_json::from_value::<Pod>(sent["request"]["object"].clone()) else {
        return;
    };
    if !sent["request"].is_object() {
        return;
    }
    // The object as the API server sends it: a typed Pod, serialised.
    let Ok(normalized) = serde_json::to_value(&pod) else {
        return;
    };
    let mut typed_review = sent.clone();
    typed_review["request"]["object"] = normalized.clone();
    let Ok(typed_body) = serde_json::to_vec(&typed_review) else {
        return;
    };
    let state = REVIEWS.state();
    let Reviewed::Answered(Some(patch)) = review(&state, &typed_body, Some(&typed_review)) else {
        return;
    };
    let mut patched = normalized.clone();
    json_patch::patch(&mut patched, &patch)
        .unwrap_or_else(|e| panic!("the patch does not apply to the pod: {e}\npatch: {patch:?}"));
    let patched_pod: Pod = serde_json::from_value(patched.clone())
        .unwrap_or_else(|e| panic!("the patched pod is not a valid Pod: {e}\npod: {patched}"));
    check_preserved(&pod, &patched_pod);
    if consistent(&pod) {
        assert!(
            consistent(&patched_pod),
            "the patch broke name uniqueness or volume mounts: {patched}"
        );
    }
    let Ok(reserialized) = serde_json::to_value(&patched_pod) else {
        return;
    };
    let mut again = typed_review.clone();
    again["request"]["object"] = reserialized;
    let Ok(again_body) = serde_json::to_vec(&again) else {
        return;
    };
    for (which, state) in [("warm", &state), ("fresh", &REVIEWS.state())] {
        let (allowed, second) = answer_of(state, &again_body, &again);
        assert!(
            allowed,
            "a second review ({which} state) of the patched pod was denied"
        );
        assert!(
            second.is_none(),
            "a second review ({which} state) of the patched pod patched again: {second:?}\npod: {patched}"
        );
    }
});

enum Reviewed {
    /// 400: not a usable AdmissionReview.
    Malformed,
    /// 200, with the patch if any.
    Answered(Option<json_patch::Patch>),
}

/// Reviews `body` twice on `state` (the second answer must be byte-identical) and returns its patch.
/// `sent` is the review as JSON when the caller built it from a review already answered.
fn review(state: &Arc<AppState>, body: &[u8], sent: Option<&Value>) -> Reviewed {
    let first = mutate_pods(state, body).unwrap_or_else(|e| panic!("the answer body is unreadable: {e}"));
    let second = mutate_pods(state, body).unwrap_or_else(|e| panic!("the answer body is unreadable: {e}"));
    assert_eq!(first.status, second.status, "the same review got another status");
    assert_eq!(first.body, second.body, "the same review got another answer");
    match first.status {
        400 => {
            assert!(
                sent.is_none(),
                "a review re-serialised from an answered one was refused as malformed"
            );
            return Reviewed::Malformed;
        }
        200 => {}
        other => panic!("status {other}: {}", String::from_utf8_lossy(&first.body)),
    }
    let parsed_sent;
    let sent = match sent {
        Some(sent) => sent,
        None => {
            parsed_sent = serde_json::from_slice::<Value>(body)
                .unwrap_or_else(|e| panic!("a 200 for a body that is not JSON: {e}"));
            &parsed_sent
        }
    };
    let (_, patch) = parse_answer(&first.body, sent);
    Reviewed::Answered(patch)
}

fn answer_of(state: &Arc<AppState>, body: &[u8], sent: &Value) -> (bool, Option<json_patch::Patch>) {
    let answer = mutate_pods(state, body).unwrap_or_else(|e| panic!("the answer body is unreadable: {e}"));
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    parse_answer(&answer.body, sent)
}

/// Checks the AdmissionReview answer's shape; returns `allowed` and the decoded patch.
fn parse_answer(body: &[u8], sent: &Value) -> (bool, Option<json_patch::Patch>) {
    let answer: Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("the answer is not JSON: {e}"));
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"], sent["request"]["uid"], "the uid is not echoed");
    let allowed = response["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("allowed is not a boolean: {answer}"));
    if !allowed {
        assert_eq!(response["status"]["code"], 403, "a denial without 403: {answer}");
        assert!(
            response["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "a denial without a message: {answer}"
        );
    }
    let Some(encoded) = response.get("patch") else {
        assert!(response.get("patchType").is_none(), "patchType without a patch");
        return (allowed, None);
    };
    assert!(allowed, "a denial carries a patch");
    assert_eq!(response["patchType"], "JSONPatch");
    let encoded = encoded
        .as_str()
        .unwrap_or_else(|| panic!("the patch is not a base64 string: {encoded}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("the patch is not base64: {e}"));
    let patch: json_patch::Patch =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("the patch is not a JSON Patch: {e}"));
    assert!(!patch.0.is_empty(), "an empty patch was sent");
    (allowed, Some(patch))
}

fn is_injected_volume(name: &str) -> bool {
    name.starts_with("mx-cred-") || name.starts_with("mx-kcfg-")
}

/// What the injection must leave alone: app containers, other init containers, other volumes, labels,
/// and every annotation but the status annotation.
fn check_preserved(before: &Pod, after: &Pod) {
    let (Some(spec_before), Some(spec_after)) = (&before.spec, &after.spec) else {
        panic!("the patch removed the pod spec");
    };
    assert_eq!(
        spec_before.containers, spec_after.containers,
        "the patch changed app containers"
    );
    let others = |list: &Option<Vec<Container>>| -> Vec<Container> {
        list.iter()
            .flatten()
            .filter(|c| c.name != SIDECAR_NAME)
            .cloned()
            .collect()
    };
    assert_eq!(
        others(&spec_before.init_containers),
        others(&spec_after.init_containers),
        "the patch changed other init containers"
    );
    let foreign = |list: &Option<Vec<Volume>>| -> Vec<Volume> {
        list.iter()
            .flatten()
            .filter(|v| !is_injected_volume(&v.name))
            .cloned()
            .collect()
    };
    assert_eq!(
        foreign(&spec_before.volumes),
        foreign(&spec_after.volumes),
        "the patch changed volumes that are not ours"
    );
    assert_eq!(
        before.metadata.labels, after.metadata.labels,
        "the patch changed labels"
    );
    let annotations = |pod: &Pod| {
        let mut all = pod.metadata.annotations.clone().unwrap_or_default();
        all.remove(STATUS_ANNOTATION);
        all
    };
    assert_eq!(
        annotations(before),
        annotations(after),
        "the patch changed annotations"
    );
    let mut meta_before = before.metadata.clone();
    let mut meta_after = after.metadata.clone();
    meta_before.annotations = None;
    meta_after.annotations = None;
    assert_eq!(meta_before, meta_after, "the patch changed metadata");
}

/// Unique container names (across containers and init containers), unique volume names, and every
/// volume mount naming a volume: what the API server's validation would refuse otherwise.
fn consistent(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else {
        return true;
    };
    let containers: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut names = BTreeSet::new();
    if !containers.iter().all(|c| names.insert(c.name.as_str())) {
        return false;
    }
    let mut volumes = BTreeSet::new();
    if !spec
        .volumes
        .iter()
        .flatten()
        .all(|v| volumes.insert(v.name.as_str()))
    {
        return false;
    }
    containers
        .iter()
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .all(|m| volumes.contains(m.name.as_str()))
}
