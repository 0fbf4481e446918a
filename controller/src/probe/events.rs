//! Kubernetes Events on condition transitions (Warning when a condition turns False), so
//! `kubectl describe mcps` tells the story of a cluster going `Disconnected` and coming back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use muster_exchange_api::MCPServer;

/// Events carry at most this many message bytes (the API limit is 1 kB).
const MAX_NOTE: usize = 1000;

/// The Event for one transition.
pub(crate) fn transition_event(condition: &Condition, previous: Option<&str>) -> Event {
    let type_ = if condition.status == "False" {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let mut note = format!(
        "{} is {} ({}) after {}: {}",
        condition.type_,
        condition.status,
        condition.reason,
        previous.unwrap_or("no status"),
        condition.message
    );
    if note.len() > MAX_NOTE {
        let cut = (0..=MAX_NOTE)
            .rev()
            .find(|i| note.is_char_boundary(*i))
            .unwrap_or(0);
        note.truncate(cut);
    }
    Event {
        type_,
        reason: condition.reason.clone(),
        note: Some(note),
        action: "Probe".into(),
        secondary: None,
    }
}

/// True when a transition deserves an Event: every flip, and a first status only when it is a failure
/// (a fleet starting up healthy would otherwise emit four Normal Events per cluster).
pub(crate) fn worth_an_event(condition: &Condition, previous: Option<&str>) -> bool {
    previous.is_some() || condition.status == "False"
}

/// Publishes one Event per transition worth one; failures are logged, never fatal (Events are best effort).
pub(crate) async fn publish_transitions(
    recorder: &Recorder,
    server: &MCPServer,
    transitions: &[(Condition, Option<String>)],
) {
    let reference = server.object_ref(&());
    let worth = transitions
        .iter()
        .filter(|(c, p)| worth_an_event(c, p.as_deref()));
    for (condition, previous) in worth {
        let event = transition_event(condition, previous.as_deref());
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, mcpserver = ?reference.name, "cannot publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn false_is_a_warning_and_notes_are_bounded() {
        let c = Condition {
            type_: "DexConnected".into(),
            status: "False".into(),
            reason: "Disconnected".into(),
            message: "x".repeat(2000),
            observed_generation: None,
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        };
        let e = transition_event(&c, Some("True"));
        assert_eq!(
            (e.type_, e.reason.as_str(), e.action.as_str()),
            (EventType::Warning, "Disconnected", "Probe")
        );
        let note = e.note.unwrap();
        assert!(note.starts_with("DexConnected is False (Disconnected) after True: xxx"));
        assert_eq!(note.len(), 1000);
        assert!(worth_an_event(&c, None));
        let healthy = Condition {
            status: "True".into(),
            ..c
        };
        assert!(!worth_an_event(&healthy, None));
        assert!(worth_an_event(&healthy, Some("False")));
    }
}
