//! `AccountManager`: who may act, and when (SPEC §4, §6).
//!
//! Implementations: `crate::limits::LocalAccountManager` (embedded, over a
//! [`LimitLedger`](super::LimitLedger)) and the platform's Account Manager over HTTP
//! (`invite-platform`).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::ErrorClass;
use crate::domain::{AccountId, ActionKind, Outcome, Platform, TargetId, TaskId, UserId};

/// Purpose of an allocation, as the platform's Account Manager expects it.
pub const PURPOSE_INVITE_CAMPAIGN: &str = "invite_campaign";

/// The caller's name for one allocation of an account, unique per allocation (the engine draws
/// one per step). The manager keeps it with the hold it grants, and a release naming it frees
/// that hold only: a release that comes late — retried after the manager was away, or after the
/// hold's TTL let the account go to another caller — never frees a newer holder's hold. On the
/// wire, 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldId(String);

impl HoldId {
    /// Longest name accepted on the wire.
    pub const MAX_CHARS: usize = 128;

    /// The name `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name can travel on the wire: 1 to [`Self::MAX_CHARS`] visible ASCII
    /// characters.
    pub fn is_valid(&self) -> bool {
        !self.0.is_empty()
            && self.0.len() <= Self::MAX_CHARS
            && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl std::fmt::Display for HoldId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRequest {
    /// Owner of the accounts.
    pub user_id: UserId,
    /// Messenger.
    pub platform: Platform,
    /// Why (`invite_campaign`).
    pub purpose: String,
    /// Accounts the engine can use now, in its order of preference.
    pub candidates: Vec<AccountId>,
    /// The name of the hold a grant takes (`None`: an unnamed hold, which any release of the
    /// account frees).
    pub hold: Option<HoldId>,
}

/// The answer to an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// This account is now held by the caller until released.
    Granted(AccountId),
    /// None can be used; maybe one can at `retry_at`.
    Unavailable {
        /// Earliest time one may become usable.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// A rate-limit check before an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitCheck {
    /// The acting account.
    pub account_id: AccountId,
    /// Messenger.
    pub platform: Platform,
    /// Kinds of action about to be taken (all or nothing).
    pub kinds: Vec<ActionKind>,
    /// Group key (or `dm`).
    pub channel: String,
}

/// Which limit spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitReason {
    /// Pause between two actions of the account.
    Pause,
    /// Even spread of the day's quota.
    Spread,
    /// Actions per account in the rolling window.
    AccountWindow,
    /// Actions per account per channel in the rolling window.
    ChannelWindow,
    /// Lifetime actions per account per channel.
    ChannelLifetime,
    /// The account is cooling down after a platform error.
    Cooldown,
    /// The account is unusable.
    AccountDead,
    /// Another holder uses the account.
    Busy,
}

impl LimitReason {
    /// Name for logs and API.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitReason::Pause => "pause",
            LimitReason::Spread => "spread",
            LimitReason::AccountWindow => "account_window",
            LimitReason::ChannelWindow => "channel_window",
            LimitReason::ChannelLifetime => "channel_lifetime",
            LimitReason::Cooldown => "cooldown",
            LimitReason::AccountDead => "account_dead",
            LimitReason::Busy => "busy",
        }
    }
}

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// The whole account.
    Account,
    /// Only the account's work in this channel.
    Channel,
}

/// A reservation of budget taken by an allowed check; released unused, it is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reservation(pub i64);

/// The answer to a rate-limit check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead; the slot is taken.
    Allowed {
        /// The slot, when the manager keeps reservations.
        reservation: Option<Reservation>,
    },
    /// Not before `until`.
    Wait {
        /// Earliest time the same check can pass.
        until: DateTime<Utc>,
        /// Which limit.
        reason: LimitReason,
        /// What it applies to.
        scope: LimitScope,
    },
    /// Not now; if `permanent`, never again for this scope.
    Denied {
        /// Which limit.
        reason: LimitReason,
        /// Whether it is final.
        permanent: bool,
        /// What it applies to.
        scope: LimitScope,
    },
}

/// What happened while an account was held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageStats {
    /// The hold released: the name given at allocation. A release naming another hold than
    /// the account's current one frees nothing (its reservation is still settled); `None`
    /// frees whatever hold the account has.
    pub hold: Option<HoldId>,
    /// The slot taken by the check, if any.
    pub reservation: Option<Reservation>,
    /// Whether a platform write may have reached the platform (false refunds the
    /// reservation; only a request that certainly never left is refunded).
    pub performed: bool,
    /// When the write was issued (the reservation's events move to this time).
    pub performed_at: Option<DateTime<Utc>>,
    /// The target's outcome, if it finished.
    pub outcome: Option<Outcome>,
    /// Latency of the platform call.
    pub latency_ms: Option<u64>,
}

/// A platform error reported to the account manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// Messenger of the account.
    pub platform: Platform,
    /// Class of the error.
    pub class: ErrorClass,
    /// Platform code (`FLOOD_WAIT`).
    pub code: String,
    /// Human message (no secrets).
    pub message: String,
    /// Wait the platform asked for.
    pub retry_after: Option<TimeDelta>,
    /// Task in which it happened.
    pub task_id: Option<TaskId>,
    /// Target concerned.
    pub target_id: Option<TargetId>,
}

/// Health of an account as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AccountState {
    /// Usable.
    Active,
    /// Usable again at `until`.
    CoolingDown {
        /// End of the cooldown.
        until: DateTime<Utc>,
        /// Platform code that caused it.
        reason: String,
    },
    /// Unusable until an operator acts.
    Dead {
        /// Platform code that caused it.
        reason: String,
    },
}

impl AccountState {
    /// Whether the account can act at `now`.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        match self {
            AccountState::Active => true,
            AccountState::CoolingDown { until, .. } => *until <= now,
            AccountState::Dead { .. } => false,
        }
    }
}

/// Errors of an account manager.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountManagerError {
    /// The manager could not be reached or answered badly; the step is retried later.
    #[error("account manager unavailable: {0}")]
    Unavailable(String),
    /// The manager refused the request.
    #[error("account manager refused the request: {0}")]
    Rejected(String),
}

impl AccountManagerError {
    /// Whether trying again later may help.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, AccountManagerError::Unavailable(_))
    }
}

/// The four calls of the seed's Account Manager.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait AccountManager: Send + Sync + std::fmt::Debug {
    /// Picks and holds one of the candidate accounts.
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError>;

    /// Checks (and on success takes) a slot for the action.
    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError>;

    /// Lets the account go, with what was done: frees the hold `usage.hold` names (see
    /// [`HoldId`]) and settles the reservation. Releasing twice is harmless.
    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError>;

    /// Reports a platform error; returns the account's resulting state.
    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError>;

    /// The account's state (for status pages and forecasts).
    async fn account_state(&self, account: &AccountId)
    -> Result<AccountState, AccountManagerError>;

    /// The states of several accounts, in the order asked (a status page asks for every
    /// account of a task at once). The default asks one account at a time.
    async fn account_states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        let mut out = Vec::with_capacity(accounts.len());
        for account in accounts {
            out.push(self.account_state(account).await?);
        }
        Ok(out)
    }

    /// The database of the ledger this manager keeps its limits in, when it has one that
    /// keeps tasks too ([`LimitLedger::database`](super::LimitLedger::database)): when it is
    /// the engine's store's ([`TaskStore::ledger_database`](super::TaskStore::ledger_database)),
    /// the engine checks and claims with [`check_and_claim`](Self::check_and_claim). `None`
    /// (the default) for a manager of its own (the platform's, over HTTP).
    fn ledger_database(&self) -> Option<super::DatabaseId> {
        None
    }

    /// [`check_rate_limit`](Self::check_rate_limit) and, when it is allowed, the claim of
    /// `claim` in the same transaction of the ledger's database (see
    /// [`LimitLedger::reserve_and_claim`](super::LimitLedger::reserve_and_claim)): an allowed
    /// check with nothing to claim reserves nothing. Only for a manager whose
    /// [`ledger_database`](Self::ledger_database) is `Some`; the default refuses.
    async fn check_and_claim(
        &self,
        check: &RateLimitCheck,
        claim: &super::Claim,
    ) -> Result<(RateDecision, Option<crate::domain::Target>), AccountManagerError> {
        let _ = (check, claim);
        Err(AccountManagerError::Rejected(
            "this account manager checks and claims apart".to_owned(),
        ))
    }
}
