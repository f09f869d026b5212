//! `SecretStore`: session strings, api credentials and signing keys. Implementations: the
//! environment / files for embedded use (`crate::memory::StaticSecrets`), Vault KV v2
//! (`invite-platform`). Values never reach logs or errors.

use std::fmt;

use async_trait::async_trait;

/// A secret value with a redacting `Debug`; `expose` is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Errors of a secret store. They name the path and key, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No such secret.
    #[error("secret {path}#{key} not found")]
    NotFound {
        /// Path.
        path: String,
        /// Key.
        key: String,
    },
    /// The store cannot be reached or refused access.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

/// Reads secrets by path and key (`secret/invite-service/jwt_secret`, `secret_key`).
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// One secret value.
    async fn get(&self, path: &str, key: &str) -> Result<Secret, SecretError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("1BvX-session-string");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "1BvX-session-string");
    }
}
