//! `SuppressionList`: people a user must never contact, per platform. Checked at import and
//! again right before a send. Implementations: `crate::memory::MemoryStore` and
//! `invite-store`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::domain::{Platform, TargetIdentifier, UserId};

/// One suppressed person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionEntry {
    /// The person.
    pub identifier: TargetIdentifier,
    /// Why (`manual`, `blocked_us`, …).
    pub reason: String,
    /// When added.
    pub created_at: DateTime<Utc>,
}

/// The per-user, per-platform do-not-contact list.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait SuppressionList: Send + Sync + std::fmt::Debug {
    /// Adds people (existing entries are kept); returns how many were new.
    async fn suppress(
        &self,
        user: UserId,
        platform: Platform,
        people: &[TargetIdentifier],
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Removes one person; returns whether it was there.
    async fn unsuppress(
        &self,
        user: UserId,
        platform: Platform,
        person: &TargetIdentifier,
    ) -> StoreResult<bool>;

    /// Whether the person is suppressed.
    async fn is_suppressed(
        &self,
        user: UserId,
        platform: Platform,
        person: &TargetIdentifier,
    ) -> StoreResult<bool>;

    /// A page of the list, oldest first.
    async fn suppressed(
        &self,
        user: UserId,
        platform: Platform,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<SuppressionEntry>>;
}
