//! `muster-exchange diagnose`: the controller's checks run once, against the cluster or manifest files,
//! printed as a table.

pub(crate) mod checks;
pub(crate) mod command;
pub(crate) mod sources;

#[cfg(test)]
mod tests;
