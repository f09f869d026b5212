//! Limits: the rules of SPEC §6 ([`LimitPolicy`]) and the embedded account manager that
//! enforces them ([`LocalAccountManager`]).

pub mod audit;
mod local;
mod policy;

pub use local::LocalAccountManager;
pub use policy::{ActionLimits, LimitPolicy};
