//! `AccountRegistry`: the messenger accounts a user gave this service (embedded mode), with
//! their health and their secrets sealed at rest.
//!
//! The registry stores what the API shows (label, the platform's user id and username, a
//! masked phone, status) and one opaque sealed blob per account (session and api credentials,
//! encrypted by the caller: the registry never sees a secret in the clear). The engine moves
//! an account between statuses through its error handling
//! ([`RegistryTracking`](crate::registry::RegistryTracking)); the embedded
//! [`AccountDirectory`](super::AccountDirectory) reads it
//! ([`RegistryDirectory`](crate::registry::RegistryDirectory)).
//!
//! Implementations: `crate::memory::MemoryRegistry` (in process) and `invite-store` (SQLite,
//! PostgreSQL; table `invite_accounts`).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::domain::{AccountId, Platform, UserId};

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryStatus {
    /// Stored without connecting (`?verify=false`); verified at its first use.
    Unverified,
    /// Usable.
    Active,
    /// Waiting out a flood wait until `status_until`.
    CoolingDown,
    /// Restricted by the platform's anti-spam (PEER_FLOOD) until `status_until`.
    SpamLimited,
    /// Frozen by the platform (FROZEN_METHOD_INVALID): unusable until an operator acts.
    Frozen,
    /// The session is gone (AUTH_KEY_UNREGISTERED, SESSION_REVOKED, USER_DEACTIVATED…).
    Dead,
    /// Switched off by its owner.
    Disabled,
}

impl RegistryStatus {
    /// Every status.
    pub const ALL: [RegistryStatus; 7] = [
        RegistryStatus::Unverified,
        RegistryStatus::Active,
        RegistryStatus::CoolingDown,
        RegistryStatus::SpamLimited,
        RegistryStatus::Frozen,
        RegistryStatus::Dead,
        RegistryStatus::Disabled,
    ];

    /// Name in storage and in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            RegistryStatus::Unverified => "unverified",
            RegistryStatus::Active => "active",
            RegistryStatus::CoolingDown => "cooling_down",
            RegistryStatus::SpamLimited => "spam_limited",
            RegistryStatus::Frozen => "frozen",
            RegistryStatus::Dead => "dead",
            RegistryStatus::Disabled => "disabled",
        }
    }

    /// Whether tasks may use the account (timed statuses are waited out by the account
    /// manager, not here).
    pub const fn is_usable(self) -> bool {
        matches!(
            self,
            RegistryStatus::Unverified
                | RegistryStatus::Active
                | RegistryStatus::CoolingDown
                | RegistryStatus::SpamLimited
        )
    }
}

impl fmt::Display for RegistryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegistryStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown account status {s:?}"))
    }
}

/// An account to register.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Its id (chosen by the caller, unique).
    pub id: AccountId,
    /// Owner.
    pub user_id: UserId,
    /// Messenger.
    pub platform: Platform,
    /// The owner's name for it.
    pub label: Option<String>,
    /// The platform's id of the account's user (from `get_me`, or the session).
    pub platform_user_id: Option<i64>,
    /// The account's username, when it has one.
    pub username: Option<String>,
    /// The phone number with all but its last digits hidden.
    pub phone_masked: Option<String>,
    /// A public identifier of the session's key (never the key): two registrations of one
    /// key are refused.
    pub key_id: String,
    /// Session and credentials, sealed by the caller.
    pub sealed: Vec<u8>,
    /// [`RegistryStatus::Active`] (verified) or [`RegistryStatus::Unverified`].
    pub status: RegistryStatus,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("platform", &self.platform)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A registered account as shown to its owner (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAccount {
    /// Id.
    pub id: AccountId,
    /// Owner.
    pub user_id: UserId,
    /// Messenger.
    pub platform: Platform,
    /// The owner's name for it.
    pub label: Option<String>,
    /// The platform's id of the account's user.
    pub platform_user_id: Option<i64>,
    /// Username.
    pub username: Option<String>,
    /// Masked phone.
    pub phone_masked: Option<String>,
    /// Status.
    pub status: RegistryStatus,
    /// End of a timed status (cooling down, spam-limited).
    pub status_until: Option<DateTime<Utc>>,
    /// Why it is in that status (the platform's code).
    pub status_reason: Option<String>,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last used by a task.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Stored.
    Added(RegisteredAccount),
    /// The same platform user or session key is registered already, as this account.
    Duplicate(AccountId),
}

/// A change asked by the owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPatch {
    /// New label (`Some(None)` clears it).
    pub label: Option<Option<String>>,
    /// `false` disables the account; `true` makes a disabled, dead or frozen one active again.
    pub enabled: Option<bool>,
}

/// A status set by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// New status (never [`RegistryStatus::Disabled`]: only the owner disables).
    pub status: RegistryStatus,
    /// End of a timed status.
    pub until: Option<DateTime<Utc>>,
    /// The platform's code.
    pub reason: Option<String>,
}

/// What one account resolved: a person or group and the access hash valid for that account
/// only. Kept so that a restart does not resolve (and spend budget on) everything again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// What was resolved, as the adapter spells it (`@name`, a phone, an id).
    pub key: String,
    /// The platform's id of what it resolved to.
    pub peer_id: i64,
    /// The access hash for this account.
    pub access_hash: i64,
    /// When.
    pub resolved_at: DateTime<Utc>,
}

/// The account registry.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait AccountRegistry: Send + Sync + fmt::Debug {
    /// Registers an account, unless its platform user or key is registered already.
    async fn register(&self, account: NewAccount) -> StoreResult<Registration>;

    /// The owner's accounts (of one platform, or all), oldest first (then by id).
    async fn registered(
        &self,
        user: UserId,
        platform: Option<Platform>,
    ) -> StoreResult<Vec<RegisteredAccount>>;

    /// One account of the owner (`NotFound` for another user's).
    async fn registered_account(
        &self,
        user: UserId,
        id: &AccountId,
    ) -> StoreResult<RegisteredAccount>;

    /// The sealed secrets of an account, for the process that connects it.
    async fn sealed(&self, id: &AccountId) -> StoreResult<Vec<u8>>;

    /// Applies the owner's change.
    async fn update(
        &self,
        user: UserId,
        id: &AccountId,
        patch: &AccountPatch,
    ) -> StoreResult<RegisteredAccount>;

    /// Sets the status the engine observed; an account its owner disabled stays disabled, and
    /// an unknown id is no error (the account was removed meanwhile).
    async fn set_status(&self, id: &AccountId, change: &StatusChange) -> StoreResult<()>;

    /// Records a use by a task: a write that reached the platform, so an `unverified` account
    /// becomes `active` (an unknown id is no error).
    async fn touch(&self, id: &AccountId, at: DateTime<Utc>) -> StoreResult<()>;

    /// Removes the owner's account (`NotFound` for another user's), with its resolutions and
    /// budget uses.
    async fn remove(&self, user: UserId, id: &AccountId) -> StoreResult<()>;

    /// Remembers a resolution of `account`, replacing one of the same key.
    async fn save_resolution(
        &self,
        account: &AccountId,
        resolution: &Resolution,
    ) -> StoreResult<()>;

    /// The resolutions of `account`, in no particular order.
    async fn resolutions(&self, account: &AccountId) -> StoreResult<Vec<Resolution>>;

    /// Records one use of the account's rolling daily `budget` (`resolve`, `import`) at `at`;
    /// uses older than two days are forgotten.
    async fn record_spend(
        &self,
        account: &AccountId,
        budget: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The uses of `budget` by `account` at or after `since`, oldest first.
    async fn spends_since(
        &self,
        account: &AccountId,
        budget: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>>;
}
