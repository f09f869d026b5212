#![doc = include_str!("../README.md")]

mod auth;
pub mod directory;
mod error;
mod http;
pub mod parsing;

pub use auth::{DEFAULT_TOKEN_TTL, SERVICE_NAME, ServiceAuth, ServiceToken};
pub use directory::{IntegrationClient, IntegrationConfig};
pub use error::{Error, Result};
pub use http::{HttpOptions, RetryPolicy};
pub use parsing::{ParsingClient, ParsingConfig};
