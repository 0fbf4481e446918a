//! MCPServers read from a YAML/JSON file (`--mcpservers FILE`), and the lookup the admission hot path
//! uses (implemented by this file store and by the watch-backed cache).

use std::collections::HashMap;
use std::sync::Arc;

use muster_exchange_api::MCPServer;
use muster_exchange_api::documents::{Document, DocumentError, read_documents};

/// Finds an MCPServer by namespace and name.
pub trait McpServerLookup: Send + Sync {
    /// The MCPServer `namespace/name`, if known.
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<MCPServer>>;
}

/// MCPServers read from manifests. An entry without `metadata.namespace` matches that name in any
/// namespace, so an offline `inject` works with manifests written without namespaces.
#[derive(Debug, Default, Clone)]
pub struct StaticMcpServers {
    namespaced: HashMap<(String, String), Arc<MCPServer>>,
    anywhere: HashMap<String, Arc<MCPServer>>,
}

/// Why `--mcpservers FILE` could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    Read(#[from] DocumentError),
    /// A document is an MCPServer that does not decode.
    #[error(
        "{source_name}:{line}: {object} is not a valid MCPServer: {detail}; fix it (try `muster-exchange validate`)"
    )]
    Invalid {
        /// File name.
        source_name: String,
        /// Line of the document.
        line: usize,
        /// `mcpserver/<name>`.
        object: String,
        /// The decoding error.
        detail: String,
    },
}

impl StaticMcpServers {
    /// Reads every `kind: MCPServer` document of `path` (`-` for stdin); other kinds are ignored.
    pub fn load(path: &str) -> Result<Self, LoadError> {
        Self::from_documents(read_documents(path)?)
    }

    /// Builds the catalog from already-read documents.
    pub fn from_documents(documents: Vec<Document>) -> Result<Self, LoadError> {
        let mut catalog = Self::default();
        for document in documents.into_iter().filter(|d| d.kind() == "MCPServer") {
            let mcpserver = muster_exchange_api::validation::decode(&document.value).map_err(|error| {
                LoadError::Invalid {
                    source_name: document.source.clone(),
                    line: document.line,
                    object: document.display_name(),
                    detail: error.to_string(),
                }
            })?;
            catalog.insert(mcpserver);
        }
        Ok(catalog)
    }

    /// Adds or replaces one MCPServer.
    pub fn insert(&mut self, mcpserver: MCPServer) {
        let name = mcpserver.metadata.name.clone().unwrap_or_default();
        match mcpserver.metadata.namespace.clone() {
            Some(namespace) => self.namespaced.insert((namespace, name), Arc::new(mcpserver)),
            None => self.anywhere.insert(name, Arc::new(mcpserver)),
        };
    }

    /// Number of MCPServers known.
    pub fn len(&self) -> usize {
        self.namespaced.len() + self.anywhere.len()
    }

    /// True when no MCPServer is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl McpServerLookup for StaticMcpServers {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<MCPServer>> {
        self.namespaced
            .get(&(namespace.to_string(), name.to_string()))
            .or_else(|| self.anywhere.get(name))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_exchange_api::documents::parse_documents;

    #[test]
    fn namespaced_entries_win_and_unnamespaced_ones_match_anywhere() {
        let yaml = "apiVersion: muster.giantswarm.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\n  \
                    namespace: muster\nspec:\n  type: stdio\n  command: x\n---\nkind: MCPServer\n\
                    apiVersion: muster.giantswarm.io/v1alpha1\nmetadata:\n  name: b\nspec:\n  type: stdio\n  \
                    command: y\n---\nkind: ConfigMap\nmetadata:\n  name: ignored\n";
        let catalog = StaticMcpServers::from_documents(parse_documents(yaml, "m.yaml").unwrap()).unwrap();
        assert_eq!(catalog.len(), 2);
        assert!(catalog.get("muster", "a").is_some());
        assert!(catalog.get("other", "a").is_none());
        assert!(catalog.get("anything", "b").is_some());
    }

    #[test]
    fn an_undecodable_mcpserver_is_named_with_its_line() {
        let yaml = "kind: ConfigMap\n---\nkind: MCPServer\napiVersion: muster.giantswarm.io/v1alpha1\n\
                    metadata:\n  name: bad\nspec:\n  type: [carrier-pigeon]\n";
        let err = StaticMcpServers::from_documents(parse_documents(yaml, "m.yaml").unwrap()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("m.yaml:3: mcpserver/bad is not a valid MCPServer"),
            "{message}"
        );
    }
}
