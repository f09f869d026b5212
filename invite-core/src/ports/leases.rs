//! `AccountLeases`: one worker process drives an account at a time, because a Telegram
//! session used from two connections is invalidated. Implementations:
//! `crate::memory::MemoryStore` (one process) and `invite-store` (a lease row with holder and
//! expiry).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::AccountId;

/// Exclusive, expiring leases on accounts.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait AccountLeases: Send + Sync + std::fmt::Debug {
    /// Takes or renews the lease for `holder` until `until`. Succeeds if the account is free,
    /// already held by `holder`, or its lease expired before `now`.
    async fn acquire(
        &self,
        account: &AccountId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Gives the lease up (no-op if another holder has it).
    async fn release(&self, account: &AccountId, holder: &str) -> StoreResult<()>;
}
