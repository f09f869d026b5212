//! `AccountDirectory`: the user's connected accounts. Implementations: a static list and
//! generated sandbox accounts (`crate::memory::StaticDirectory`), the Integration Service
//! client (`invite-platform`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, Platform, UserId};

/// A connected account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Id.
    pub id: AccountId,
    /// Messenger.
    pub platform: Platform,
    /// A name to show (never a phone number).
    pub display_name: Option<String>,
    /// Whether the platform considers it active.
    pub active: bool,
}

/// Errors of a directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The source cannot be reached.
    #[error("account directory unavailable: {0}")]
    Unavailable(String),
}

/// Lists a user's accounts.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait AccountDirectory: Send + Sync + std::fmt::Debug {
    /// The user's active accounts on the platform.
    async fn accounts(
        &self,
        user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError>;
}
