//! Secret-read grants: kubeconfig grants per organization namespace and credential grants per MCPServer.

pub mod credential_grants;
pub mod credential_optin;
pub mod grant_sync;
pub mod kubeconfig_grants;
pub mod rbac_objects;
pub mod subjects;

#[cfg(test)]
mod conflict_tests;
#[cfg(test)]
mod credential_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod topology_tests;
