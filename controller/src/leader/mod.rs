//! Leader election on a coordination Lease (kube-runtime has none): `lease` decides and writes one
//! round, `elector` runs the rounds and publishes leadership; only the leader writes.

pub(crate) mod elector;
pub(crate) mod lease;

#[cfg(test)]
mod elector_tests;
