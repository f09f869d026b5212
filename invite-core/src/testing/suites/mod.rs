//! The cases of the store-side suites, one module per port area.

pub(crate) mod engine;
pub(crate) mod failure_paths;
pub(crate) mod leases;
pub(crate) mod ledger;
pub(crate) mod registry;
pub(crate) mod sandbox_world;
pub(crate) mod suppression;
pub(crate) mod targets;
pub(crate) mod tasks;
