//! A fixed [`AccountDirectory`] and a fixed [`SecretStore`] for embedded use and tests.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::{AccountId, Platform, UserId};
use crate::ports::{
    AccountDirectory, AccountInfo, DirectoryError, Secret, SecretError, SecretStore,
};

/// Accounts given up front, per user and platform.
#[derive(Debug, Default, Clone)]
pub struct StaticDirectory {
    accounts: HashMap<(UserId, Platform), Vec<AccountInfo>>,
}

impl StaticDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds accounts of a user.
    pub fn with_accounts(
        mut self,
        user: UserId,
        platform: Platform,
        ids: impl IntoIterator<Item = AccountId>,
    ) -> Self {
        self.accounts
            .entry((user, platform))
            .or_default()
            .extend(ids.into_iter().map(|id| AccountInfo {
                display_name: Some(id.to_string()),
                id,
                platform,
                active: true,
            }));
        self
    }

    /// `count` generated sandbox accounts for the user, named `sandbox-<user>-<n>`.
    pub fn with_sandbox_accounts(self, user: UserId, count: usize) -> Self {
        let ids = (1..=count).map(|n| {
            AccountId::parse(format!("sandbox-{user}-{n:02}")).expect("generated ids are valid")
        });
        self.with_accounts(user, Platform::Sandbox, ids)
    }
}

#[async_trait]
impl AccountDirectory for StaticDirectory {
    async fn accounts(
        &self,
        user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError> {
        Ok(self
            .accounts
            .get(&(user, platform))
            .cloned()
            .unwrap_or_default())
    }
}

/// Secrets given up front (from the environment or files by the binary).
#[derive(Debug, Default, Clone)]
pub struct StaticSecrets {
    values: HashMap<(String, String), Secret>,
}

impl StaticSecrets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret.
    pub fn with(mut self, path: &str, key: &str, value: Secret) -> Self {
        self.values.insert((path.to_owned(), key.to_owned()), value);
        self
    }
}

#[async_trait]
impl SecretStore for StaticSecrets {
    async fn get(&self, path: &str, key: &str) -> Result<Secret, SecretError> {
        self.values
            .get(&(path.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| SecretError::NotFound {
                path: path.to_owned(),
                key: key.to_owned(),
            })
    }
}
