//! Watches of the mock API server: newline-delimited watch events from a resourceVersion on, open until
//! the client goes away or its `timeoutSeconds` runs out.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::selector::Selector;
use super::{Change, MockApiServer, Target, WatchEnd, WatchRecord, as_metadata, lock};

/// The server's own limit when the client asks for none (an API server picks 30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watch selects and how it answers.
struct Filter {
    collection: String,
    namespace: String,
    labels: Selector,
    fields: Selector,
    metadata_only: bool,
}

impl Filter {
    fn selects(&self, object: &Value) -> bool {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        (self.namespace.is_empty() || namespace == self.namespace)
            && self.labels.matches_labels(object)
            && self.fields.matches_fields(object)
    }

    fn event(&self, kind: &str, object: &Value) -> Vec<u8> {
        let object = if self.metadata_only {
            as_metadata(object)
        } else {
            object.clone()
        };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// The event a change makes on this watch: an object entering the selection is `ADDED`, one
    /// leaving it `DELETED`.
    fn event_of(&self, change: &Change) -> Option<Vec<u8>> {
        if change.collection != self.collection {
            return None;
        }
        let before = change.before.as_ref().is_some_and(|b| self.selects(b));
        let after = !change.deleted && self.selects(&change.after);
        match (before, after) {
            (false, true) => Some(self.event("ADDED", &change.after)),
            (true, true) => Some(self.event("MODIFIED", &change.after)),
            (true, false) => Some(self.event("DELETED", &change.after)),
            (false, false) => None,
        }
    }
}

/// Records how its watch ended when dropped: by the server if it said so first, else by the client.
struct EndGuard {
    server: MockApiServer,
    index: usize,
    by_server: bool,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let end = if self.by_server {
            WatchEnd::Server
        } else {
            WatchEnd::Client
        };
        if let Some(record) = lock(&self.server.state).watches.get_mut(self.index) {
            record.ended = Some((end, Instant::now()));
        }
    }
}

struct Watching {
    server: MockApiServer,
    filter: Filter,
    /// Changes up to this version were sent.
    cursor: u64,
    /// Sent before any change: the initial objects, or `410 Gone`.
    first: Option<Vec<u8>>,
    /// The server ends the watch now.
    deadline: Instant,
    bookmarks: bool,
    changed: tokio::sync::watch::Receiver<u64>,
    guard: EndGuard,
    ended: bool,
}

/// Opens a watch of `target` as `query` asks; the body streams until the watch ends.
pub(super) fn open(
    server: MockApiServer,
    target: Target,
    query: &BTreeMap<String, String>,
    metadata_only: bool,
) -> Body {
    let filter = Filter {
        collection: target.collection,
        namespace: target.namespace,
        labels: Selector::parse(query.get("labelSelector").map_or("", String::as_str)),
        fields: Selector::parse(query.get("fieldSelector").map_or("", String::as_str)),
        metadata_only,
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let from: Option<u64> = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let (index, cursor, first) = {
        let mut state = lock(&server.state);
        state.watches.push(WatchRecord {
            path: format!("{}{}", filter.collection, namespace_suffix(&filter.namespace)),
            query: query.clone(),
            opened: Instant::now(),
            ended: None,
        });
        let index = state.watches.len() - 1;
        match from {
            Some(from) if from < state.compacted => {
                let gone = json!({"type": "ERROR", "object": {"apiVersion": "v1", "kind": "Status",
                    "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
                    "message": format!("too old resource version: {from} ({})", state.compacted)}});
                let mut line = serde_json::to_vec(&gone).unwrap_or_default();
                line.push(b'\n');
                (index, state.version, Some((line, true)))
            }
            Some(from) => (index, from, None),
            None => {
                // No version: every object selected now, as ADDED, then what changes after.
                let lines: Vec<u8> = state
                    .objects
                    .iter()
                    .filter(|((c, _, _), o)| *c == filter.collection && filter.selects(o))
                    .flat_map(|(_, o)| filter.event("ADDED", o))
                    .collect();
                (index, state.version, Some((lines, false)))
            }
        }
    };
    let gone = first.as_ref().is_some_and(|(_, gone)| *gone);
    let watching = Watching {
        changed: server.changed.subscribe(),
        guard: EndGuard {
            server: server.clone(),
            index,
            by_server: gone,
        },
        server,
        filter,
        cursor,
        first: first.map(|(lines, _)| lines).filter(|l| !l.is_empty()),
        deadline: Instant::now() + timeout,
        bookmarks: query.get("allowWatchBookmarks").is_some_and(|b| b == "true"),
        ended: gone,
    };
    Body::from_stream(futures::stream::unfold(watching, next))
}

fn namespace_suffix(namespace: &str) -> String {
    if namespace.is_empty() {
        String::new()
    } else {
        format!(" in {namespace}")
    }
}

async fn next(mut w: Watching) -> Option<(Result<Bytes, std::io::Error>, Watching)> {
    if let Some(first) = w.first.take() {
        return Some((Ok(Bytes::from(first)), w));
    }
    if w.ended {
        return None;
    }
    loop {
        // Marked seen before reading, so a change made after the read wakes the wait below.
        w.changed.borrow_and_update();
        let lines: Vec<u8> = {
            let state = lock(&w.server.state);
            if state.compacted > w.cursor {
                // Changes this watch has not sent are gone: it ends, and resuming from its version
                // gets 410 Gone.
                w.guard.by_server = true;
                return None;
            }
            let pending = state.changes.iter().filter(|c| c.version > w.cursor);
            let lines = pending.filter_map(|c| w.filter.event_of(c)).flatten().collect();
            w.cursor = state.version;
            lines
        };
        if !lines.is_empty() {
            return Some((Ok(Bytes::from(lines)), w));
        }
        tokio::select! {
            changed = w.changed.changed() => if changed.is_err() { return None },
            () = tokio::time::sleep_until(w.deadline) => {
                w.guard.by_server = true;
                w.ended = true;
                if !w.bookmarks {
                    return None;
                }
                let bookmark = json!({"type": "BOOKMARK", "object": {"apiVersion": "v1", "kind": "Bookmark",
                    "metadata": {"resourceVersion": w.cursor.to_string()}}});
                let mut line = serde_json::to_vec(&bookmark).unwrap_or_default();
                line.push(b'\n');
                return Some((Ok(Bytes::from(line)), w));
            }
        }
    }
}
