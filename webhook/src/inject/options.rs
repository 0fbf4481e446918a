//! The pod annotations that steer injection, parsed and checked in one place.

use std::collections::BTreeMap;

use muster_exchange_api::names::{
    ANNOTATION_CPU_LIMIT, ANNOTATION_CPU_REQUEST, ANNOTATION_HEADER_MODE, ANNOTATION_MCPSERVER_NAMESPACE,
    ANNOTATION_MCPSERVERS, ANNOTATION_MEMORY_LIMIT, ANNOTATION_MEMORY_REQUEST, ANNOTATION_PORT,
    ANNOTATION_UPSTREAM_PORT,
};
use muster_exchange_api::sidecar_config::{DEFAULT_SIDECAR_PORT, DEFAULT_UPSTREAM_PORT, HeaderMode};
use muster_exchange_api::validation::syntax::{is_dns1123_label, is_dns1123_subdomain};

use super::quantity::{is_quantity, quantity_value};
use super::refusal::Refusal;

/// Sidecar resources when no annotation overrides them: small, with a memory limit so a leak in the
/// sidecar cannot starve the app, and no CPU limit (throttling would add latency to every request).
pub const DEFAULT_CPU_REQUEST: &str = "10m";
/// Default memory request of the sidecar.
pub const DEFAULT_MEMORY_REQUEST: &str = "32Mi";
/// Default memory limit of the sidecar.
pub const DEFAULT_MEMORY_LIMIT: &str = "128Mi";

/// Read access to a pod's annotations, so the hot path reads them in place instead of copying them.
pub trait Annotations {
    /// The value of `key`, if present and a string.
    fn annotation(&self, key: &str) -> Option<&str>;
}

impl Annotations for BTreeMap<String, String> {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Annotations for serde_json::Map<String, serde_json::Value> {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }
}

/// Everything the annotations of one pod ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectOptions {
    /// The MCPServers, in annotation order, without duplicates.
    pub mcpservers: Vec<String>,
    /// Namespace named by the annotation, if any.
    pub mcpserver_namespace: Option<String>,
    /// The app's port.
    pub upstream_port: u16,
    /// The sidecar's port.
    pub port: u16,
    /// How the token is handed on.
    pub header_mode: HeaderMode,
    /// `requests`/`limits` entries: (`requests`|`limits`, `cpu`|`memory`) → quantity.
    pub resources: BTreeMap<(&'static str, &'static str), String>,
}

/// Reads the options from a pod's annotations; `Ok(None)` when the pod does not ask for injection.
pub fn parse(annotations: &(impl Annotations + ?Sized)) -> Result<Option<InjectOptions>, Refusal> {
    let Some(list) = annotations.annotation(ANNOTATION_MCPSERVERS) else {
        return Ok(None);
    };
    let mcpservers = parse_mcpservers(list)?;
    let mcpserver_namespace = match annotations.annotation(ANNOTATION_MCPSERVER_NAMESPACE) {
        Some(ns) if !is_dns1123_label(ns) => {
            return Err(malformed(
                ANNOTATION_MCPSERVER_NAMESPACE,
                ns,
                "use a namespace name like \"muster\"",
            ));
        }
        other => other.map(str::to_string),
    };
    let upstream_port = parse_port(annotations, ANNOTATION_UPSTREAM_PORT, DEFAULT_UPSTREAM_PORT)?;
    let port = parse_port(annotations, ANNOTATION_PORT, DEFAULT_SIDECAR_PORT)?;
    if port == upstream_port {
        let value = port.to_string();
        let problem =
            format!("the sidecar port equals {ANNOTATION_UPSTREAM_PORT}; give them different ports");
        return Err(malformed(ANNOTATION_PORT, &value, &problem));
    }
    let header_mode = match annotations.annotation(ANNOTATION_HEADER_MODE) {
        None => HeaderMode::default(),
        Some(value) => value
            .parse()
            .map_err(|problem: String| malformed(ANNOTATION_HEADER_MODE, value, &problem))?,
    };
    let resources = parse_resources(annotations)?;
    Ok(Some(InjectOptions {
        mcpservers,
        mcpserver_namespace,
        upstream_port,
        port,
        header_mode,
        resources,
    }))
}

impl std::hash::Hash for InjectOptions {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.mcpservers.hash(state);
        self.mcpserver_namespace.hash(state);
        self.upstream_port.hash(state);
        self.port.hash(state);
        self.header_mode.as_str().hash(state);
        self.resources.hash(state);
    }
}

fn parse_mcpservers(list: &str) -> Result<Vec<String>, Refusal> {
    let mut names: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if !is_dns1123_subdomain(name) {
            let problem = format!(
                "{name:?} is not an MCPServer name; list names separated by commas, e.g. \"cluster-a,cluster-b\""
            );
            return Err(malformed(ANNOTATION_MCPSERVERS, list, &problem));
        }
        if names.iter().any(|n| n == name) {
            let problem = format!("{name:?} is listed twice; list each MCPServer once");
            return Err(malformed(ANNOTATION_MCPSERVERS, list, &problem));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

fn parse_port(
    annotations: &(impl Annotations + ?Sized),
    key: &'static str,
    default: u16,
) -> Result<u16, Refusal> {
    match annotations.annotation(key) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(malformed(key, value, "use a port number between 1 and 65535")),
        },
    }
}

fn parse_resources(
    annotations: &(impl Annotations + ?Sized),
) -> Result<BTreeMap<(&'static str, &'static str), String>, Refusal> {
    let mut resources = BTreeMap::from([
        (("requests", "cpu"), DEFAULT_CPU_REQUEST.to_string()),
        (("requests", "memory"), DEFAULT_MEMORY_REQUEST.to_string()),
        (("limits", "memory"), DEFAULT_MEMORY_LIMIT.to_string()),
    ]);
    let keys = [
        (ANNOTATION_CPU_REQUEST, ("requests", "cpu")),
        (ANNOTATION_MEMORY_REQUEST, ("requests", "memory")),
        (ANNOTATION_CPU_LIMIT, ("limits", "cpu")),
        (ANNOTATION_MEMORY_LIMIT, ("limits", "memory")),
    ];
    for (annotation, slot) in keys {
        if let Some(value) = annotations.annotation(annotation) {
            if !is_quantity(value.trim()) {
                return Err(malformed(
                    annotation,
                    value,
                    "use a Kubernetes quantity such as \"100m\" or \"64Mi\"",
                ));
            }
            resources.insert(slot, value.trim().to_string());
        }
    }
    for (resource, request_annotation, limit_annotation) in [
        ("cpu", ANNOTATION_CPU_REQUEST, ANNOTATION_CPU_LIMIT),
        ("memory", ANNOTATION_MEMORY_REQUEST, ANNOTATION_MEMORY_LIMIT),
    ] {
        let user_request = annotations.annotation(request_annotation).is_some();
        cap_request_at_limit(
            &mut resources,
            resource,
            user_request,
            limit_annotation,
            request_annotation,
        )?;
    }
    Ok(resources)
}

/// The API server rejects a request above its limit with a message about the pod, not the annotations:
/// a default request above the user's limit is lowered to it, a user's request above it is refused.
fn cap_request_at_limit(
    resources: &mut BTreeMap<(&'static str, &'static str), String>,
    resource: &'static str,
    user_request: bool,
    limit_annotation: &'static str,
    request_annotation: &'static str,
) -> Result<(), Refusal> {
    let (Some(request), Some(limit)) = (
        resources.get(&("requests", resource)),
        resources.get(&("limits", resource)),
    ) else {
        return Ok(());
    };
    if quantity_value(request) <= quantity_value(limit) {
        return Ok(());
    }
    if user_request {
        let problem = format!(
            "the request {request} is above the limit {limit} of {limit_annotation}; the request must not \
             exceed the limit: lower {request_annotation} or raise {limit_annotation}"
        );
        return Err(malformed(request_annotation, request, &problem));
    }
    let limit = limit.clone();
    resources.insert(("requests", resource), limit);
    Ok(())
}

fn malformed(annotation: &'static str, value: &str, problem: &str) -> Refusal {
    Refusal::MalformedAnnotation {
        annotation,
        value: value.to_string(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn without_the_mcpservers_annotation_nothing_is_asked() {
        assert_eq!(parse(&annotations(&[(ANNOTATION_PORT, "1")])), Ok(None));
    }

    #[test]
    fn parses_every_annotation() {
        let options = parse(&annotations(&[
            (ANNOTATION_MCPSERVERS, " cluster-a, cluster-b "),
            (ANNOTATION_MCPSERVER_NAMESPACE, "muster"),
            (ANNOTATION_UPSTREAM_PORT, "9000"),
            (ANNOTATION_PORT, "9001"),
            (ANNOTATION_HEADER_MODE, "bearer"),
            (ANNOTATION_CPU_LIMIT, "500m"),
            (ANNOTATION_MEMORY_LIMIT, "256Mi"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(options.mcpservers, ["cluster-a", "cluster-b"]);
        assert_eq!(options.mcpserver_namespace.as_deref(), Some("muster"));
        assert_eq!((options.upstream_port, options.port), (9000, 9001));
        assert_eq!(options.header_mode, HeaderMode::Bearer);
        assert_eq!(options.resources[&("limits", "cpu")], "500m");
        assert_eq!(options.resources[&("limits", "memory")], "256Mi");
        assert_eq!(options.resources[&("requests", "cpu")], "10m");
    }

    #[test]
    fn a_limit_below_the_default_request_lowers_the_request() {
        let options = parse(&annotations(&[
            (ANNOTATION_MCPSERVERS, "a"),
            (ANNOTATION_MEMORY_LIMIT, "16Mi"),
            (ANNOTATION_CPU_LIMIT, "5m"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(options.resources[&("requests", "memory")], "16Mi");
        assert_eq!(options.resources[&("limits", "memory")], "16Mi");
        assert_eq!(options.resources[&("requests", "cpu")], "5m");
    }

    #[test]
    fn a_request_above_its_limit_is_refused_naming_both_annotations() {
        let err = parse(&annotations(&[
            (ANNOTATION_MCPSERVERS, "a"),
            (ANNOTATION_MEMORY_REQUEST, "0.5Gi"),
            (ANNOTATION_MEMORY_LIMIT, "256Mi"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "pod annotation {ANNOTATION_MEMORY_REQUEST}=\"0.5Gi\" is invalid: the request 0.5Gi is above the \
                 limit 256Mi of {ANNOTATION_MEMORY_LIMIT}; the request must not exceed the limit: lower \
                 {ANNOTATION_MEMORY_REQUEST} or raise {ANNOTATION_MEMORY_LIMIT}"
            )
        );
        let equal = parse(&annotations(&[
            (ANNOTATION_MCPSERVERS, "a"),
            (ANNOTATION_CPU_REQUEST, "0.5"),
            (ANNOTATION_CPU_LIMIT, "500m"),
        ]));
        assert!(equal.is_ok(), "equal quantities in different spellings are fine");
    }

    #[test]
    fn refuses_malformed_values_naming_the_annotation() {
        let cases = [
            vec![(ANNOTATION_MCPSERVERS, "")],
            vec![(ANNOTATION_MCPSERVERS, "a,,b")],
            vec![(ANNOTATION_MCPSERVERS, "a,a")],
            vec![(ANNOTATION_MCPSERVERS, "Cluster_A")],
            vec![(ANNOTATION_MCPSERVERS, "a"), (ANNOTATION_PORT, "0")],
            vec![(ANNOTATION_MCPSERVERS, "a"), (ANNOTATION_UPSTREAM_PORT, "70000")],
            vec![(ANNOTATION_MCPSERVERS, "a"), (ANNOTATION_PORT, "8080")],
            vec![(ANNOTATION_MCPSERVERS, "a"), (ANNOTATION_HEADER_MODE, "cookie")],
            vec![(ANNOTATION_MCPSERVERS, "a"), (ANNOTATION_MEMORY_REQUEST, "64MB")],
            vec![
                (ANNOTATION_MCPSERVERS, "a"),
                (ANNOTATION_MCPSERVER_NAMESPACE, "Not A Namespace"),
            ],
        ];
        for case in cases {
            let err = parse(&annotations(&case)).unwrap_err();
            assert_eq!(err.reason(), "malformed-annotation", "{case:?}");
            let key = case.last().map(|(k, _)| *k).unwrap();
            assert!(err.to_string().contains(key), "{err} should name {key}");
        }
    }
}
