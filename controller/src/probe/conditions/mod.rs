//! Per-cluster conditions: building them from a probe outcome and merging them into the observed ones.
//! The condition type names live in `muster_exchange_api::names` (`CONDITION_*`): the CRD's printer
//! columns read them too.

pub(crate) mod build;
pub(crate) mod merge;
