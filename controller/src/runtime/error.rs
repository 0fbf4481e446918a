//! The controller's error type: one variant per failure source, each saying what to check.

/// What went wrong talking to the API server or reading input.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A list call failed.
    #[error(
        "cannot list {what}: {cause}; check the controller's RBAC (manifests/controller/rbac.yaml) and that the API server is reachable"
    )]
    List {
        /// What was listed, e.g. `secrets in org-acme`.
        what: String,
        /// The API error.
        cause: kube::Error,
    },
    /// A server-side apply failed.
    #[error("cannot apply {what}: {cause}; the next sync retries it")]
    Apply {
        /// What was applied, e.g. `Role org-acme/muster-exchange-kubeconfig-reader`.
        what: String,
        /// The API error.
        cause: kube::Error,
    },
    /// A delete failed.
    #[error("cannot delete {what}: {cause}; the next sync retries it")]
    Delete {
        /// What was deleted.
        what: String,
        /// The API error.
        cause: kube::Error,
    },
    /// A status write failed.
    #[error("cannot write status of {what}: {cause}; the next probe retries it")]
    Status {
        /// The MCPServer, `namespace/name`.
        what: String,
        /// The API error.
        cause: kube::Error,
    },
    /// Another writer (e.g. Muster) changed the object between each of our reads and writes.
    #[error(
        "cannot write status of {what}: another writer changed it between our read and our write {attempts} \
         times in a row; nothing was overwritten, the next probe retries it"
    )]
    StatusConflict {
        /// The MCPServer, `namespace/name`.
        what: String,
        /// Read-merge-write attempts made.
        attempts: usize,
    },
}

impl Error {
    /// Bounded-cardinality name for metrics and logs.
    pub(crate) fn category(&self) -> &'static str {
        match self {
            Error::List { .. } => "list",
            Error::Apply { .. } => "apply",
            Error::Delete { .. } => "delete",
            Error::Status { .. } => "status",
            Error::StatusConflict { .. } => "status_conflict",
        }
    }
}
