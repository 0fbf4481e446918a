//! Secret-read grants: kubeconfig grants per organization namespace and credential grants per MCPServer,
//! reconciled per namespace by the grant controller from watch caches.

pub(crate) mod controller;
pub(crate) mod credential_grants;
pub(crate) mod credential_optin;
pub(crate) mod grant_sync;
pub(crate) mod kubeconfig_grants;
pub(crate) mod namespace_sync;
pub mod rbac_objects;
pub(crate) mod stores;
pub mod subjects;
pub(crate) mod watches;

#[cfg(test)]
mod conflict_tests;
#[cfg(test)]
mod credential_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod resync_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod topology_tests;
