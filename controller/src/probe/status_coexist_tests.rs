//! Our condition writes next to a Muster-like writer on the same MCPServer, on Muster's CRD (atomic
//! conditions list) and on ours (map list): after any interleaving Muster's `Ready` condition and `state`
//! are intact and ours are present; clearing ours leaves Muster's.
//!
//! The Muster-like writer does what controller-runtime's `Status().Update()` does: GET the object, change
//! its own fields in what it read, PUT the status with the `resourceVersion` read, and start over on 409.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::{OUR_CONDITION_TYPES, is_our_condition_type};
use serde_json::{Value, json};

use crate::probe::conditions::build::conditions_for;
use crate::probe::outcome::{Check, ProbeOutcome};
use crate::probe::status::{ConditionChange, MAX_WRITE_ATTEMPTS, WriteOutcome, write_conditions};
use crate::runtime::error::Error;
use crate::runtime::mock_apiserver::{ListType, MockApiServer};

const NS: &str = "muster";
const NAME: &str = "cluster-a";
const BOTH: [ListType; 2] = [ListType::Atomic, ListType::Map];

fn api(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &ApiResource::erase::<MCPServer>(&()))
}

fn initial() -> Value {
    json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": NAME, "namespace": NS, "generation": 3},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp"},
        "status": {"state": "Connecting", "lastError": "", "futureField": {"by": "a newer Muster"},
            "conditions": [{"type": "Ready", "status": "False", "reason": "Connecting", "message": "dialing",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}

/// What Muster writes in its `n`-th write: a state and its own `Ready` condition.
fn musters_values(n: usize) -> (String, String) {
    let states = ["Connected", "Awaiting Session", "Auth Required", "Disconnected"];
    let state = states[n % states.len()].to_string();
    let ready = if n.is_multiple_of(2) { "True" } else { "False" };
    (state, ready.to_string())
}

/// One `Status().Update()` of Muster, retried on conflict like a requeued reconcile.
async fn muster_writes(client: &Client, n: usize) {
    let (state, ready) = musters_values(n);
    for _ in 0..100 {
        let mut object = api(client).get(NAME).await.unwrap();
        let status = &mut object.data["status"];
        status["state"] = json!(state);
        let conditions = status["conditions"].as_array_mut();
        let mine = json!({"type": "Ready", "status": ready, "reason": format!("Write{n}"),
            "message": format!("muster write {n}"), "lastTransitionTime": "2026-01-02T00:00:00Z"});
        match conditions {
            Some(list) => match list.iter_mut().find(|c| c["type"] == "Ready") {
                Some(entry) => *entry = mine,
                None => list.push(mine),
            },
            None => status["conditions"] = json!([mine]),
        }
        match api(client)
            .replace_status(NAME, &PostParams::default(), &object)
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => panic!("muster's write failed: {e}"),
        }
    }
    panic!("muster's write kept conflicting");
}

fn outcome(n: usize) -> ProbeOutcome {
    let connected = if n.is_multiple_of(2) {
        Check::ok("IssuerMatches", "ok")
    } else {
        Check::fail("Disconnected", "no answer")
    };
    ProbeOutcome {
        credentials: Check::ok("SecretFound", "s"),
        connected,
        token_exchange: Check::ok("ExchangeAccepted", "e"),
    }
}

fn ours(n: usize) -> Vec<Condition> {
    conditions_for(
        &outcome(n),
        Some(3),
        &Time(Timestamp::from_second(1_700_000_000).unwrap()),
    )
}

async fn our_write(
    client: &Client,
    change: ConditionChange<'_>,
    conflicts: &AtomicUsize,
) -> Result<WriteOutcome, Error> {
    write_conditions(client, NS, NAME, change, || {
        conflicts.fetch_add(1, Ordering::SeqCst);
    })
    .await
}

/// Muster's fields of an object: `state`, its `Ready` entry, and a field this build does not know.
fn musters_part(object: &Value) -> Value {
    let status = &object["status"];
    let ready: Vec<&Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| !is_our_condition_type(c["type"].as_str().unwrap_or_default()))
        .collect();
    json!({"state": status["state"], "lastError": status["lastError"], "futureField": status["futureField"],
        "others": ready})
}

fn our_types(object: &Value) -> Vec<String> {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .filter(|t| is_our_condition_type(t))
        .map(str::to_string)
        .collect()
}

/// Walks every write the mock stored: each of ours left Muster's part exactly as Muster's latest write
/// (or the initial object) had it.
fn assert_no_write_of_ours_touched_musters(mock: &MockApiServer) {
    let mut musters = musters_part(&initial());
    for (index, (client, object)) in mock.writes().iter().enumerate() {
        if client == "muster" {
            musters = musters_part(object);
        } else {
            assert_eq!(
                musters_part(object),
                musters,
                "write {index} (ours) changed Muster's fields"
            );
        }
    }
}

fn assert_musters_last_write_is_intact(mock: &MockApiServer, muster_writes: usize) {
    let object = mock.object(NS, NAME);
    let expected = match muster_writes {
        0 => musters_part(&initial()),
        n => {
            let (state, ready) = musters_values(n - 1);
            assert_eq!(object["status"]["state"], json!(state));
            let entry = object["status"]["conditions"]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or(Value::Null);
            assert_eq!(entry["status"], json!(ready), "{object}");
            assert_eq!(entry["reason"], json!(format!("Write{}", n - 1)));
            return;
        }
    };
    assert_eq!(musters_part(&object), expected);
}

/// Muster writes right after each of our requests whose index is in `mask` (bit i: after request i).
fn muster_inside_ours(mock: &MockApiServer, mask: u32) -> Arc<AtomicUsize> {
    let (seen, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (muster, done_hook) = (mock.client("muster"), done.clone());
    mock.after_each_request_of("exchange", move |_request| {
        let (muster, seen, done) = (muster.clone(), seen.clone(), done_hook.clone());
        async move {
            let index = seen.fetch_add(1, Ordering::SeqCst);
            if index < 32 && mask & (1 << index) != 0 {
                let n = done.fetch_add(1, Ordering::SeqCst);
                muster_writes(&muster, n).await;
            }
        }
    });
    done
}

#[tokio::test]
async fn muster_writing_between_any_of_our_requests_loses_nothing_on_either_crd() {
    // Every placement over our first 8 requests, plus Muster winning after every one of our reads (our
    // write gives up after MAX_WRITE_ATTEMPTS) and after every request.
    let every_read = (0..MAX_WRITE_ATTEMPTS).fold(0u32, |m, i| m | 1 << (2 * i));
    let masks: Vec<u32> = (0..256).chain([every_read, u32::MAX]).collect();
    for list_type in BOTH {
        for &mask in &masks {
            for clear in [false, true] {
                let mock = MockApiServer::new(list_type);
                let mut start = initial();
                if clear {
                    // Ours are there to be cleared, between Muster's entries.
                    let mut list = start["status"]["conditions"].as_array().cloned().unwrap();
                    list.insert(0, serde_json::to_value(&ours(1)[0]).unwrap());
                    list.extend(ours(1)[1..].iter().map(|c| serde_json::to_value(c).unwrap()));
                    start["status"]["conditions"] = Value::Array(list);
                }
                mock.insert(start);
                let muster_count = muster_inside_ours(&mock, mask);
                let conflicts = AtomicUsize::new(0);
                let wanted = ours(0);
                let change = if clear {
                    ConditionChange::Clear
                } else {
                    ConditionChange::Set(&wanted)
                };
                let result = our_write(&mock.client("exchange"), change, &conflicts).await;
                let object = mock.object(NS, NAME);
                let context = format!("{list_type:?} mask {mask:#b} clear {clear}: {object}");
                assert_no_write_of_ours_touched_musters(&mock);
                assert_musters_last_write_is_intact(&mock, muster_count.load(Ordering::SeqCst));
                match result {
                    Ok(WriteOutcome::Written(_)) if clear => {
                        assert!(our_types(&object).is_empty(), "{context}")
                    }
                    Ok(WriteOutcome::Written(_)) => {
                        assert_eq!(our_types(&object), OUR_CONDITION_TYPES, "{context}")
                    }
                    Err(Error::StatusConflict { attempts, .. }) => {
                        assert_eq!(attempts, MAX_WRITE_ATTEMPTS);
                        assert_eq!(conflicts.load(Ordering::SeqCst), MAX_WRITE_ATTEMPTS, "{context}");
                    }
                    other => panic!("{context}: unexpected {other:?}"),
                }
            }
        }
    }
}

#[tokio::test]
async fn our_whole_write_between_musters_read_and_update_makes_muster_retry_and_keeps_both() {
    for list_type in BOTH {
        let mock = MockApiServer::new(list_type);
        mock.insert(initial());
        let exchange = mock.client("exchange");
        let ran = Arc::new(AtomicUsize::new(0));
        let ran_hook = ran.clone();
        mock.after_each_request_of("muster", move |request| {
            let (exchange, ran) = (exchange.clone(), ran_hook.clone());
            async move {
                if request.starts_with("GET") && ran.fetch_add(1, Ordering::SeqCst) == 0 {
                    let wanted = ours(0);
                    let conflicts = AtomicUsize::new(0);
                    let written = our_write(&exchange, ConditionChange::Set(&wanted), &conflicts).await;
                    assert!(matches!(written, Ok(WriteOutcome::Written(_))), "{written:?}");
                }
            }
        });
        muster_writes(&mock.client("muster"), 0).await;
        let log = mock.log();
        let muster_puts = log.iter().filter(|l| l.starts_with("muster PUT")).count();
        assert_eq!(
            muster_puts, 2,
            "Muster's first update was stale and retried: {log:?}"
        );
        let object = mock.object(NS, NAME);
        assert_eq!(our_types(&object), OUR_CONDITION_TYPES, "{list_type:?}");
        assert_musters_last_write_is_intact(&mock, 1);
        assert_no_write_of_ours_touched_musters(&mock);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_in_any_order_keep_musters_fields_and_ours() {
    const ROUNDS: usize = 40;
    for list_type in BOTH {
        let mock = MockApiServer::new(list_type);
        mock.insert(initial());
        let muster = mock.client("muster");
        let musters = tokio::spawn(async move {
            for n in 0..ROUNDS {
                muster_writes(&muster, n).await;
            }
        });
        let exchange = mock.client("exchange");
        let conflicts = AtomicUsize::new(0);
        let mut last = None;
        for n in 0..ROUNDS {
            let wanted = ours(n);
            let change = if n % 5 == 4 {
                ConditionChange::Clear
            } else {
                ConditionChange::Set(&wanted)
            };
            match our_write(&exchange, change, &conflicts).await {
                Ok(_) => last = Some(n % 5 == 4),
                Err(Error::StatusConflict { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        // A last write of ours after Muster is done, so the final state has a known owner of each part.
        musters.await.unwrap();
        let wanted = ours(0);
        our_write(&exchange, ConditionChange::Set(&wanted), &conflicts)
            .await
            .unwrap();
        assert!(last.is_some(), "at least one of our writes went through");
        let object = mock.object(NS, NAME);
        assert_eq!(our_types(&object), OUR_CONDITION_TYPES, "{list_type:?}");
        assert_musters_last_write_is_intact(&mock, ROUNDS);
        assert_no_write_of_ours_touched_musters(&mock);
        let writers: Vec<String> = mock.writes().into_iter().map(|(c, _)| c).collect();
        assert!(writers.iter().any(|w| w == "exchange") && writers.iter().any(|w| w == "muster"));
        // Clearing ours afterwards leaves exactly Muster's.
        our_write(&exchange, ConditionChange::Clear, &conflicts)
            .await
            .unwrap();
        let cleared = mock.object(NS, NAME);
        assert!(our_types(&cleared).is_empty());
        assert_musters_last_write_is_intact(&mock, ROUNDS);
    }
}

/// The mock's list types matter: a server-side apply with force of our conditions (what a naive writer
/// does) wipes Muster's `Ready` on Muster's CRD, and so does applying an empty list to clear ours. This
/// is why our writer does not apply.
#[tokio::test]
async fn a_forced_apply_of_our_conditions_loses_musters_ready_on_an_atomic_list_only() {
    for (list_type, keeps_musters) in [(ListType::Atomic, false), (ListType::Map, true)] {
        let mock = MockApiServer::new(list_type);
        mock.insert(initial());
        let client = mock.client("exchange");
        let params = PatchParams::apply("naive").force();
        let body = |conditions: Vec<Condition>| {
            json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
                "status": {"conditions": conditions}})
        };
        api(&client)
            .patch_status(NAME, &params, &Patch::Apply(body(ours(0))))
            .await
            .unwrap();
        let has_ready = |o: &Value| o["status"]["conditions"].to_string().contains("\"Ready\"");
        assert_eq!(has_ready(&mock.object(NS, NAME)), keeps_musters, "{list_type:?}");
        muster_writes(&mock.client("muster"), 0).await;
        api(&client)
            .patch_status(NAME, &params, &Patch::Apply(body(Vec::new())))
            .await
            .unwrap();
        let object = mock.object(NS, NAME);
        assert_eq!(has_ready(&object), keeps_musters, "{list_type:?}: {object}");
        assert_eq!(
            object["status"]["state"], "Connected",
            "apply leaves fields it does not send"
        );
    }
}
