//! Where the webhook looks MCPServers up. Lookups never touch the API server, so the admission hot path
//! costs a hash lookup:
//! - `watch`: in the cluster, a cache fed by a watch on MCPServers in all namespaces;
//! - `store`: a YAML/JSON file (`--mcpservers FILE`) for offline use and tests, and the lookup trait
//!   both implement.

mod store;
mod watch;

pub use store::{LoadError, McpServerLookup, StaticMcpServers};
pub use watch::{McpServerCache, watch_mcpservers};
