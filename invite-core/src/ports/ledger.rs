//! `LimitLedger`: the local account manager's memory — what each account did, when, and its
//! health. Implementations: `crate::memory::MemoryLedger` (in core) and the SQL ledgers of
//! `invite-store`.
//!
//! The rules themselves live in [`LimitPolicy::decide`](crate::limits::LimitPolicy::decide), a
//! pure function; a ledger's job is to run it atomically: lock the account, load its
//! [`AccountHistory`], decide, and record the reservation in the same transaction, so any
//! number of processes racing for the last slot give exactly one winner.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::{AccountState, Claim, DatabaseId, RateDecision, Reservation, StoreError};
use crate::domain::{AccountId, ActionKind, Target};
use crate::limits::LimitPolicy;

/// A request for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The acting account.
    pub account_id: AccountId,
    /// Kinds reserved together (all or nothing).
    pub kinds: Vec<ActionKind>,
    /// Group key (or `dm`).
    pub channel: String,
    /// Current time.
    pub now: DateTime<Utc>,
    /// Pause the account must keep after this action (drawn by the manager).
    pub pause_after: TimeDelta,
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEvent {
    /// When it was reserved, then when it was performed.
    pub at: DateTime<Utc>,
    /// Kind.
    pub kind: ActionKind,
    /// Group key.
    pub channel: String,
    /// The account's next action of this kind is not allowed before this time.
    pub not_before_next: DateTime<Utc>,
}

/// What the rules need to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHistory {
    /// Health.
    pub state: AccountState,
    /// Actions of the account (any channel) since the start of the window, oldest first.
    pub recent: Vec<LedgerEvent>,
    /// Lifetime actions of the account in the requested channel, per kind.
    pub lifetime: Vec<(ActionKind, u32)>,
}

impl AccountHistory {
    /// A fresh account.
    pub fn empty() -> Self {
        Self {
            state: AccountState::Active,
            recent: Vec::new(),
            lifetime: Vec::new(),
        }
    }

    /// Lifetime count of `kind` in the requested channel.
    pub fn lifetime_of(&self, kind: ActionKind) -> u32 {
        self.lifetime
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// Persistent, atomic limit counters.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait LimitLedger: Send + Sync + std::fmt::Debug {
    /// Atomically: load the account's history, apply `policy`, record the reservation if
    /// allowed. The returned `Allowed` carries the reservation id.
    async fn reserve(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
    ) -> Result<RateDecision, StoreError>;

    /// Removes an unused reservation (the action was never sent).
    async fn refund(&self, account: &AccountId, reservation: Reservation)
    -> Result<(), StoreError>;

    /// The reserved action was performed at `at` (the moment the write was issued, which may
    /// be well after the reservation): its events take that time, and the pause after it
    /// counts from it. No-op for an unknown reservation.
    async fn performed(
        &self,
        account: &AccountId,
        reservation: Reservation,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The account's history as of `now` for `channel` (for forecasts and status pages).
    async fn history(
        &self,
        account: &AccountId,
        channel: &str,
        since: DateTime<Utc>,
    ) -> Result<AccountHistory, StoreError>;

    /// Sets the account's health.
    async fn set_state(&self, account: &AccountId, state: &AccountState) -> Result<(), StoreError>;

    /// Moves what `accounts` did in channel `from` (their events and lifetime counts) to
    /// channel `into`, atomically for each account: the engine calls it when a task's group,
    /// keyed as written until then, is resolved to its stable key, so that the limits of the
    /// group count what was done before (a group's 15 a day are not spent twice across the
    /// change). Returns the number of events moved.
    async fn merge_channel(
        &self,
        accounts: &[AccountId],
        from: &str,
        into: &str,
    ) -> Result<u64, StoreError>;

    /// The database this ledger is kept in, when a [`TaskStore`](super::TaskStore) of the same
    /// database answers the same [`TaskStore::ledger_database`](super::TaskStore::ledger_database):
    /// the engine then takes a reservation and its claim in one transaction
    /// ([`reserve_and_claim`](Self::reserve_and_claim)), and records `performed` with the
    /// attempt's outcome ([`TaskStore::record_attempt`](super::TaskStore::record_attempt)).
    /// `None` (the default): the ledger is kept on its own.
    fn database(&self) -> Option<DatabaseId> {
        None
    }

    /// [`reserve`](Self::reserve) and, when it is allowed, the claim of `claim` (as
    /// [`TaskStore::claim_target`](super::TaskStore::claim_target) takes it) in one
    /// transaction, for a ledger whose [`database`](Self::database) keeps the tasks too. When
    /// nothing may be claimed, nothing is reserved either: the answer is `Allowed` with no
    /// reservation and no target. The default refuses (it keeps no tasks).
    async fn reserve_and_claim(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
        claim: &Claim,
    ) -> Result<(RateDecision, Option<Target>), StoreError> {
        let _ = (request, policy, claim);
        Err(StoreError::Invalid(
            "this ledger keeps no tasks: reserve, then claim".to_owned(),
        ))
    }

    /// [`history`](Self::history) of several accounts at once, in the order asked: a status
    /// page reads every account of a task in one go. The default asks one account at a time;
    /// the SQL ledgers answer from one query per table whatever the number of accounts.
    async fn histories(
        &self,
        accounts: &[AccountId],
        channel: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<AccountHistory>, StoreError> {
        let mut out = Vec::with_capacity(accounts.len());
        for account in accounts {
            out.push(self.history(account, channel, since).await?);
        }
        Ok(out)
    }

    /// The health of several accounts, in the order asked, without their history (an account
    /// never seen is active). The default reads each account's history of no time at all.
    async fn states(&self, accounts: &[AccountId]) -> Result<Vec<AccountState>, StoreError> {
        let mut out = Vec::with_capacity(accounts.len());
        for account in accounts {
            out.push(
                self.history(account, "", DateTime::<Utc>::MAX_UTC)
                    .await?
                    .state,
            );
        }
        Ok(out)
    }
}
