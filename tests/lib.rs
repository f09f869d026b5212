//! Workspace-level end-to-end tests of Invite Service; they live in `it/` (`cargo test -p
//! invite-tests`): the engine's scenarios on the sandbox and the stores, the HTTP API over a
//! real listener, the workers over RabbitMQ. The library itself is empty.
//!
//! ```
//! // The tests drive the crates as an embedder would, e.g. the platforms they accept:
//! assert_eq!("sandbox".parse::<invite_core::domain::Platform>().unwrap().as_str(), "sandbox");
//! ```
