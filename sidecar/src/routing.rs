//! Which cluster a request is for. One cluster: every path. Several: `/clusters/<name>/...`, with the
//! prefix stripped before forwarding.

/// The routing prefix used when several clusters are configured.
pub const CLUSTERS_PREFIX: &str = "/clusters/";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    /// Index into the configured clusters.
    pub cluster: usize,
    /// Path and query to send upstream.
    pub upstream_path_and_query: std::borrow::Cow<'a, str>,
}

/// Why no cluster was selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path does not start with `/clusters/<name>`.
    #[error("several clusters are configured; use /clusters/<name>/... (known: {known})")]
    NoClusterInPath {
        /// Comma-separated names.
        known: String,
    },
    /// `<name>` is not configured.
    #[error("unknown cluster {name:?} (known: {known})")]
    UnknownCluster {
        /// The requested name.
        name: String,
        /// Comma-separated names.
        known: String,
    },
}

/// Picks the cluster for `path_and_query` among `names` (in configuration order).
pub fn route<'a>(names: &[impl AsRef<str>], path_and_query: &'a str) -> Result<Route<'a>, RouteError> {
    if names.len() == 1 {
        return Ok(Route {
            cluster: 0,
            upstream_path_and_query: path_and_query.into(),
        });
    }
    let known = || names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    let rest = path_and_query
        .strip_prefix(CLUSTERS_PREFIX)
        .ok_or_else(|| RouteError::NoClusterInPath { known: known() })?;
    let name_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (name, remainder) = rest.split_at(name_end);
    let cluster =
        names
            .iter()
            .position(|n| n.as_ref() == name)
            .ok_or_else(|| RouteError::UnknownCluster {
                name: name.to_string(),
                known: known(),
            })?;
    let upstream = if remainder.starts_with('/') {
        remainder.into()
    } else {
        format!("/{remainder}").into()
    };
    Ok(Route {
        cluster,
        upstream_path_and_query: upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cluster_takes_every_path_unchanged() {
        let r = route(&["a"], "/clusters/b/mcp?x=1").unwrap();
        assert_eq!(
            (r.cluster, r.upstream_path_and_query.as_ref()),
            (0, "/clusters/b/mcp?x=1")
        );
    }

    #[test]
    fn several_clusters_select_by_prefix_and_strip_it() {
        let names = ["a", "b"];
        let r = route(&names, "/clusters/b/mcp?x=1").unwrap();
        assert_eq!((r.cluster, r.upstream_path_and_query.as_ref()), (1, "/mcp?x=1"));
        assert_eq!(route(&names, "/clusters/a").unwrap().upstream_path_and_query, "/");
        assert_eq!(
            route(&names, "/clusters/a?q").unwrap().upstream_path_and_query,
            "/?q"
        );
    }

    #[test]
    fn unknown_or_missing_cluster_is_explained() {
        let names = ["a", "b"];
        assert_eq!(
            route(&names, "/clusters/ab/mcp").unwrap_err().to_string(),
            "unknown cluster \"ab\" (known: a, b)"
        );
        assert_eq!(
            route(&names, "/mcp").unwrap_err(),
            RouteError::NoClusterInPath { known: "a, b".into() }
        );
    }
}
