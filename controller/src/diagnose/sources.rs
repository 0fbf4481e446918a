//! Where MCPServers and their credential Secrets come from: the API server (tolerating malformed
//! objects) or manifest files (`diagnose -f`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use muster_exchange_api::MCPServer;
use muster_exchange_api::documents::{DocumentError, read_documents};

use crate::runtime::error::Error;

/// MCPServers that parsed, and a message for each that did not (it is reported, never silently dropped).
#[derive(Debug, Default)]
pub(crate) struct ServerList {
    /// Parsed MCPServers.
    pub(crate) servers: Vec<MCPServer>,
    /// `namespace/name: why` for objects that are not valid MCPServers.
    pub(crate) malformed: Vec<String>,
}

/// Lists MCPServers in `namespace` (all when `None`); each object is parsed on its own so one malformed
/// object does not hide the others.
pub(crate) async fn list_mcpservers(client: &Client, namespace: Option<&str>) -> Result<ServerList, Error> {
    let resource = ApiResource::erase::<MCPServer>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let objects = api
        .list(&ListParams::default())
        .await
        .map_err(|cause| Error::List {
            what: "mcpservers.muster.giantswarm.io".into(),
            cause,
        })?;
    let mut list = ServerList::default();
    for object in objects.items {
        let key = format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any());
        match object.try_parse::<MCPServer>() {
            Ok(server) => list.servers.push(server),
            Err(e) => list
                .malformed
                .push(format!("{key}: not a valid MCPServer: {e}; fix the object")),
        }
    }
    Ok(list)
}

/// What manifest files held.
#[derive(Debug, Default)]
pub(crate) struct FileInputs {
    /// MCPServers.
    pub(crate) servers: ServerList,
    /// Secrets by `(namespace, name)`.
    pub(crate) secrets: BTreeMap<(String, String), Secret>,
    /// Objects of other kinds, named with file and line (reported, not used).
    pub(crate) ignored: Vec<String>,
}

/// Why manifest files could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// A Secret in a file is not a valid Secret.
    #[error("{source_name}:{line}: {what} is not a valid Secret: {message}")]
    BadSecret {
        /// File.
        source_name: String,
        /// Line.
        line: usize,
        /// `secret/name`.
        what: String,
        /// Why.
        message: String,
    },
}

/// Reads MCPServers and Secrets from files. Objects without a namespace are in `default_namespace`.
pub(crate) fn read_inputs(paths: &[String], default_namespace: &str) -> Result<FileInputs, InputError> {
    let mut inputs = FileInputs::default();
    for path in paths {
        for doc in read_documents(path)? {
            let place = format!("{} ({}:{})", doc.display_name(), doc.source, doc.line);
            let mut value = doc.value.clone();
            if value.pointer("/metadata/namespace").is_none()
                && let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut())
            {
                meta.insert("namespace".into(), default_namespace.into());
            }
            match doc.kind() {
                "MCPServer" => match serde_json::from_value::<MCPServer>(value) {
                    Ok(server) => inputs.servers.servers.push(server),
                    Err(e) => inputs
                        .servers
                        .malformed
                        .push(format!("{place}: not a valid MCPServer: {e}")),
                },
                "Secret" => {
                    let secret: Secret =
                        serde_json::from_value(value).map_err(|e| InputError::BadSecret {
                            source_name: doc.source.clone(),
                            line: doc.line,
                            what: doc.display_name(),
                            message: e.to_string(),
                        })?;
                    let key = (secret.namespace().unwrap_or_default(), secret.name_any());
                    inputs.secrets.insert(key, secret);
                }
                _ => inputs.ignored.push(place),
            }
        }
    }
    Ok(inputs)
}
