//! `InviteStrategy`: one implementation per messenger (the seed's Strategy pattern).
//!
//! Implementations: the sandbox (`crate::sandbox::SandboxStrategy`, in core) and Telegram
//! (`invite-telegram`). A strategy translates; it never sleeps on flood waits nor retries:
//! waits belong to the account manager and retries to the engine.

use async_trait::async_trait;

use crate::domain::{AccountId, GroupRef, Outcome, Platform, Target};
use crate::limits::LimitPolicy;

/// Whose fault an error is, which decides what the engine does (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The target cannot be reached; the account goes on.
    Target,
    /// The account must wait N seconds (FloodWait); the target goes back untouched.
    AccountTemporary,
    /// The account is restricted (PeerFlood, spam block): long cooldown, counts for the breaker.
    AccountRestricted,
    /// The account is unusable until an operator acts; its lanes end.
    AccountDead,
    /// The group is unusable (for every account, or only this one).
    Group,
    /// The request may have reached the platform; the target becomes uncertain.
    Ambiguous,
    /// The platform answered a write with a refusal that names no cause
    /// (`CHAT_MEMBER_ADD_FAILED`): charged, retried a bounded number of times (each charged).
    Refused,
    /// The request certainly did not reach the platform; retried with backoff, not charged.
    Transient,
    /// An error this service does not know; counted on its own, never success.
    Unknown,
}

impl ErrorClass {
    /// Every class.
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::Target,
        ErrorClass::AccountTemporary,
        ErrorClass::AccountRestricted,
        ErrorClass::AccountDead,
        ErrorClass::Group,
        ErrorClass::Ambiguous,
        ErrorClass::Refused,
        ErrorClass::Transient,
        ErrorClass::Unknown,
    ];

    /// Name used in logs, statistics and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Target => "target",
            ErrorClass::AccountTemporary => "account_temporary",
            ErrorClass::AccountRestricted => "account_restricted",
            ErrorClass::AccountDead => "account_dead",
            ErrorClass::Group => "group",
            ErrorClass::Ambiguous => "ambiguous",
            ErrorClass::Refused => "refused",
            ErrorClass::Transient => "transient",
            ErrorClass::Unknown => "unknown",
        }
    }

    /// Whether the request may have reached the platform, so that it is charged to the
    /// account's limits: every class but [`ErrorClass::Transient`], whose contract is that
    /// the request certainly never left.
    pub const fn is_charged(self) -> bool {
        !matches!(self, ErrorClass::Transient)
    }

    /// Whether the error is the account's (counts towards the circuit breaker).
    pub const fn is_account_level(self) -> bool {
        matches!(
            self,
            ErrorClass::AccountTemporary | ErrorClass::AccountRestricted | ErrorClass::AccountDead
        )
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of a platform call, classified. `code` is the platform's own name for it
/// (`PEER_FLOOD`); messages never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The target cannot be reached for the given reason.
    #[error("target refused ({code}): {outcome}")]
    Target {
        /// What it means for the target.
        outcome: Outcome,
        /// Platform code.
        code: String,
    },
    /// The account must wait.
    #[error("flood wait of {seconds} s ({code})")]
    FloodWait {
        /// Seconds to wait, as the platform said.
        seconds: u64,
        /// Platform code.
        code: String,
    },
    /// The account is restricted.
    #[error("account restricted ({code})")]
    AccountRestricted {
        /// Platform code.
        code: String,
    },
    /// The account is unusable.
    #[error("account unusable ({code})")]
    AccountDead {
        /// Platform code.
        code: String,
    },
    /// The group cannot be used.
    #[error("group unusable ({code}){}", if *account_only { " for this account" } else { "" })]
    Group {
        /// Platform code.
        code: String,
        /// Only this account lacks rights; other accounts may go on.
        account_only: bool,
    },
    /// The request may have been carried out.
    #[error("outcome unknown ({code})")]
    Ambiguous {
        /// Platform code or I/O error kind.
        code: String,
    },
    /// The platform refused a write without naming a cause; nothing was done, but the request
    /// reached it and counts.
    #[error("write refused ({code})")]
    Refused {
        /// Platform code.
        code: String,
    },
    /// The request certainly did not reach the platform (connection refused, resolution
    /// failed, a local budget refused it). Only this class is refunded: an error raised once a
    /// write may have left must be [`PlatformError::Ambiguous`] or a platform answer.
    #[error("transient error ({code})")]
    Transient {
        /// Platform code or I/O error kind.
        code: String,
    },
    /// Not known to this service.
    #[error("unknown platform error {code}: {message}")]
    Unknown {
        /// Platform code.
        code: String,
        /// Platform message.
        message: String,
    },
}

impl PlatformError {
    /// The class of the error.
    pub const fn class(&self) -> ErrorClass {
        match self {
            PlatformError::Target { .. } => ErrorClass::Target,
            PlatformError::FloodWait { .. } => ErrorClass::AccountTemporary,
            PlatformError::AccountRestricted { .. } => ErrorClass::AccountRestricted,
            PlatformError::AccountDead { .. } => ErrorClass::AccountDead,
            PlatformError::Group { .. } => ErrorClass::Group,
            PlatformError::Ambiguous { .. } => ErrorClass::Ambiguous,
            PlatformError::Refused { .. } => ErrorClass::Refused,
            PlatformError::Transient { .. } => ErrorClass::Transient,
            PlatformError::Unknown { .. } => ErrorClass::Unknown,
        }
    }

    /// The platform's code.
    pub fn code(&self) -> &str {
        match self {
            PlatformError::Target { code, .. }
            | PlatformError::FloodWait { code, .. }
            | PlatformError::AccountRestricted { code }
            | PlatformError::AccountDead { code }
            | PlatformError::Group { code, .. }
            | PlatformError::Ambiguous { code }
            | PlatformError::Refused { code }
            | PlatformError::Transient { code }
            | PlatformError::Unknown { code, .. } => code,
        }
    }

    /// Whether the same call may simply be made again (after a backoff).
    pub const fn is_retryable(&self) -> bool {
        matches!(self, PlatformError::Transient { .. })
    }
}

/// What a successful platform action achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionResult {
    /// The outcome (an invite that listed the user as missing is `PrivacyRestricted`).
    pub outcome: Outcome,
    /// Platform details kept with the target (premium flags, message id).
    pub details: serde_json::Value,
}

impl ActionResult {
    /// A result without details.
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            details: serde_json::Value::Null,
        }
    }
}

/// A messenger adapter.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait InviteStrategy: Send + Sync + std::fmt::Debug {
    /// The messenger it drives.
    fn platform(&self) -> Platform;

    /// The messenger's default limits, used by the local account manager.
    fn rate_limits(&self) -> LimitPolicy;

    /// Connects the account (idempotent).
    async fn initialize(&self, account: &AccountId) -> Result<(), PlatformError>;

    /// Fails with a [`PlatformError::Group`] when the account cannot invite into the group.
    async fn check_invite_rights(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<(), PlatformError>;

    /// Adds the target to the group.
    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError>;

    /// Sends a direct message with a client `random_id` (the same on every retry).
    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError>;

    /// Adds the target to the account's contacts.
    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError>;

    /// Whether the target is a member of the group (settles uncertain invites).
    async fn is_member(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError>;

    /// The group's stable identity on the platform, resolved through `account`: the engine
    /// keys the limits of a task's group on it, so every spelling of one group (`@chan`,
    /// `t.me/chan`, `-100…`, an invite link) shares one budget. `None` (the default) when the
    /// platform's references are stable as given.
    async fn group_key(
        &self,
        _account: &AccountId,
        _group: &GroupRef,
    ) -> Result<Option<String>, PlatformError> {
        Ok(None)
    }

    /// Disconnects the account, if connected.
    async fn disconnect(&self, account: &AccountId);
}
