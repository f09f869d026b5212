//! Integration tests of invite-core: limits, scheduling, error effects, recovery.

mod engine;
mod helpers;
mod limits;
