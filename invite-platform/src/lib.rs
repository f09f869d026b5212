#![doc = include_str!("../README.md")]

pub mod account_manager;
mod auth;
mod breaker;
pub mod directory;
mod error;
mod http;
pub mod parsing;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod vault;

pub use account_manager::{AccountManagerConfig, HttpAccountManager};
pub use auth::{DEFAULT_TOKEN_TTL, SERVICE_NAME, ServiceAuth, ServiceToken};
pub use breaker::BreakerPolicy;
pub use directory::{IntegrationClient, IntegrationConfig};
pub use error::{Error, Result};
pub use http::{HttpOptions, RetryPolicy};
pub use parsing::{ParsingClient, ParsingConfig};
pub use vault::{VaultConfig, VaultSecretStore, VaultStats};
