//! Limits: the rules of SPEC §6 and the local account manager that enforces them.

mod policy;

pub use policy::{ActionLimits, LimitPolicy};
