//! The bodies of the Account Manager's HTTP contract (`docs/account-manager.md`), built from
//! the port's types of `invite_core::ports` and turned back into them. The client and the
//! reference server both use these, so what one sends the other reads.

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::domain::{AccountId, ActionKind, Outcome, Platform, TargetId, TaskId, UserId};
use invite_core::ports::{
    AccountState, Allocation, AllocationRequest, ErrorClass, ErrorReport, HoldId, LimitReason,
    LimitScope, RateDecision, RateLimitCheck, Reservation, UsageStats,
};
use serde::{Deserialize, Serialize};

/// `POST /v1/accounts/allocate`: the path of each call, relative to the base URL.
pub const ALLOCATE_PATH: [&str; 3] = ["v1", "accounts", "allocate"];
/// `POST /v1/accounts/check-rate-limit`.
pub const CHECK_PATH: [&str; 3] = ["v1", "accounts", "check-rate-limit"];
/// `POST /v1/accounts/release`.
pub const RELEASE_PATH: [&str; 3] = ["v1", "accounts", "release"];
/// `POST /v1/accounts/handle-error`.
pub const HANDLE_ERROR_PATH: [&str; 3] = ["v1", "accounts", "handle-error"];
/// `POST /v1/accounts/states`.
pub const STATES_PATH: [&str; 3] = ["v1", "accounts", "states"];

/// The header carrying the idempotency key of `release` and `handle-error`.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// Most accounts in one allocation or one states read.
pub const MAX_ACCOUNTS_PER_CALL: usize = 1000;

/// Body of `allocate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateBody {
    /// Owner of the accounts.
    pub user_id: UserId,
    /// Messenger.
    pub platform: Platform,
    /// Why (`invite_campaign`).
    pub purpose: String,
    /// Accounts the caller can use now, in its order of preference.
    pub candidates: Vec<AccountId>,
    /// The caller's name for the hold a grant takes (`null`: unnamed); a release naming it
    /// frees that hold only.
    #[serde(default)]
    pub hold_id: Option<HoldId>,
}

impl From<&AllocationRequest> for AllocateBody {
    fn from(r: &AllocationRequest) -> Self {
        Self {
            user_id: r.user_id,
            platform: r.platform,
            purpose: r.purpose.clone(),
            candidates: r.candidates.clone(),
            hold_id: r.hold.clone(),
        }
    }
}

impl From<AllocateBody> for AllocationRequest {
    fn from(b: AllocateBody) -> Self {
        Self {
            user_id: b.user_id,
            platform: b.platform,
            purpose: b.purpose,
            candidates: b.candidates,
            hold: b.hold_id,
        }
    }
}

/// Answer of `allocate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AllocateAnswer {
    /// The account is held by the caller until released.
    Granted {
        /// The account.
        account_id: AccountId,
    },
    /// No candidate can be used now.
    Unavailable {
        /// Earliest time one may become usable (`null`: unknown).
        #[serde(default)]
        retry_at: Option<DateTime<Utc>>,
    },
}

impl From<&Allocation> for AllocateAnswer {
    fn from(a: &Allocation) -> Self {
        match a {
            Allocation::Granted(id) => Self::Granted {
                account_id: id.clone(),
            },
            Allocation::Unavailable { retry_at } => Self::Unavailable {
                retry_at: *retry_at,
            },
        }
    }
}

impl From<AllocateAnswer> for Allocation {
    fn from(a: AllocateAnswer) -> Self {
        match a {
            AllocateAnswer::Granted { account_id } => Self::Granted(account_id),
            AllocateAnswer::Unavailable { retry_at } => Self::Unavailable { retry_at },
        }
    }
}

/// Body of `check-rate-limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckBody {
    /// The acting account.
    pub account_id: AccountId,
    /// Messenger.
    pub platform: Platform,
    /// Kinds of action about to be taken, all or nothing (at least one).
    pub kinds: Vec<ActionKind>,
    /// Group key, or `dm`.
    pub channel: String,
}

impl From<&RateLimitCheck> for CheckBody {
    fn from(c: &RateLimitCheck) -> Self {
        Self {
            account_id: c.account_id.clone(),
            platform: c.platform,
            kinds: c.kinds.clone(),
            channel: c.channel.clone(),
        }
    }
}

impl From<CheckBody> for RateLimitCheck {
    fn from(b: CheckBody) -> Self {
        Self {
            account_id: b.account_id,
            platform: b.platform,
            kinds: b.kinds,
            channel: b.channel,
        }
    }
}

/// Answer of `check-rate-limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CheckAnswer {
    /// Go ahead: the slot is taken.
    Allowed {
        /// The slot, to be given back in `release` (`null` when the manager keeps none).
        #[serde(default)]
        reservation: Option<i64>,
    },
    /// Not before `until`.
    Wait {
        /// Earliest time the same check can pass.
        until: DateTime<Utc>,
        /// `until` as whole seconds from the answer (rounded up), for readers without a clock.
        retry_after_seconds: i64,
        /// Which limit spoke.
        reason: LimitReason,
        /// What it applies to.
        scope: LimitScope,
    },
    /// Not now; never again for this scope if `permanent`.
    Denied {
        /// Which limit spoke.
        reason: LimitReason,
        /// Whether it is final.
        permanent: bool,
        /// What it applies to.
        scope: LimitScope,
    },
}

impl CheckAnswer {
    /// The answer for `decision`, given at `now`.
    pub fn new(decision: &RateDecision, now: DateTime<Utc>) -> Self {
        match *decision {
            RateDecision::Allowed { reservation } => Self::Allowed {
                reservation: reservation.map(|r| r.0),
            },
            RateDecision::Wait {
                until,
                reason,
                scope,
            } => {
                let ms = (until - now).num_milliseconds().max(0);
                Self::Wait {
                    until,
                    retry_after_seconds: ms / 1000 + i64::from(ms % 1000 != 0),
                    reason,
                    scope,
                }
            }
            RateDecision::Denied {
                reason,
                permanent,
                scope,
            } => Self::Denied {
                reason,
                permanent,
                scope,
            },
        }
    }
}

impl From<CheckAnswer> for RateDecision {
    fn from(a: CheckAnswer) -> Self {
        match a {
            CheckAnswer::Allowed { reservation } => Self::Allowed {
                reservation: reservation.map(Reservation),
            },
            CheckAnswer::Wait {
                until,
                reason,
                scope,
                ..
            } => Self::Wait {
                until,
                reason,
                scope,
            },
            CheckAnswer::Denied {
                reason,
                permanent,
                scope,
            } => Self::Denied {
                reason,
                permanent,
                scope,
            },
        }
    }
}

/// Body of `release` (answered `204 No Content`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseBody {
    /// The account let go.
    pub account_id: AccountId,
    /// The hold let go, as named at allocation (`null`: whatever hold the account has).
    #[serde(default)]
    pub hold_id: Option<HoldId>,
    /// The slot taken by the check, if any.
    #[serde(default)]
    pub reservation: Option<i64>,
    /// Whether a platform write may have reached the platform (`false` refunds the slot).
    pub performed: bool,
    /// When the write was issued.
    #[serde(default)]
    pub performed_at: Option<DateTime<Utc>>,
    /// The target's outcome, if it finished.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Latency of the platform call.
    #[serde(default)]
    pub latency_ms: Option<u64>,
}

impl ReleaseBody {
    /// The body releasing `account` with `usage`.
    pub fn new(account: &AccountId, usage: &UsageStats) -> Self {
        Self {
            account_id: account.clone(),
            hold_id: usage.hold.clone(),
            reservation: usage.reservation.map(|r| r.0),
            performed: usage.performed,
            performed_at: usage.performed_at,
            outcome: usage.outcome,
            latency_ms: usage.latency_ms,
        }
    }

    /// The account and the usage stats.
    pub fn into_parts(self) -> (AccountId, UsageStats) {
        (
            self.account_id,
            UsageStats {
                hold: self.hold_id,
                reservation: self.reservation.map(Reservation),
                performed: self.performed,
                performed_at: self.performed_at,
                outcome: self.outcome,
                latency_ms: self.latency_ms,
            },
        )
    }
}

/// Body of `handle-error`; answered with the account's resulting [`AccountState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The account the error happened on.
    pub account_id: AccountId,
    /// Messenger of the account.
    pub platform: Platform,
    /// Class of the error (`account_temporary`, `account_restricted`, `account_dead`,
    /// `target`, `group`, `ambiguous`, `refused`, `transient`, `unknown`).
    #[serde(with = "error_class")]
    pub class: ErrorClass,
    /// Platform code (`FLOOD_WAIT`).
    pub code: String,
    /// Human message (no secrets).
    #[serde(default)]
    pub message: String,
    /// Wait the platform asked for, in whole seconds (at least 0).
    #[serde(default)]
    pub retry_after_seconds: Option<i64>,
    /// Task in which it happened.
    #[serde(default)]
    pub task_id: Option<TaskId>,
    /// Target concerned.
    #[serde(default)]
    pub target_id: Option<TargetId>,
}

impl ErrorBody {
    /// The body reporting `report` about `account`. A wait is sent in whole seconds, rounded
    /// up.
    pub fn new(account: &AccountId, report: &ErrorReport) -> Self {
        Self {
            account_id: account.clone(),
            platform: report.platform,
            class: report.class,
            code: report.code.clone(),
            message: report.message.clone(),
            retry_after_seconds: report.retry_after.map(|d| {
                let s = d.num_seconds();
                if d > TimeDelta::seconds(s) { s + 1 } else { s }.max(0)
            }),
            task_id: report.task_id,
            target_id: report.target_id,
        }
    }

    /// The account and the report; a wait beyond what time can hold is the longest one.
    pub fn into_parts(self) -> (AccountId, ErrorReport) {
        (
            self.account_id,
            ErrorReport {
                platform: self.platform,
                class: self.class,
                code: self.code,
                message: self.message,
                retry_after: self
                    .retry_after_seconds
                    .map(|s| TimeDelta::try_seconds(s.max(0)).unwrap_or(TimeDelta::MAX)),
                task_id: self.task_id,
                target_id: self.target_id,
            },
        )
    }
}

/// Body of `states`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatesBody {
    /// The accounts, at least one.
    pub account_ids: Vec<AccountId>,
}

/// Answer of `states`: one state per account asked, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatesAnswer {
    /// The states.
    pub states: Vec<AccountState>,
}

/// An error answer: `{"error": {"code": "…", "message": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `invalid_request`, `unauthorized`, `not_found`, `unavailable` or `internal`.
    pub code: String,
    /// For a person.
    pub message: String,
}

/// [`ErrorClass`] as its snake_case name.
mod error_class {
    use invite_core::ports::ErrorClass;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(class: &ErrorClass, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(class.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorClass, D::Error> {
        let name = String::deserialize(d)?;
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
                serde::de::Error::custom(format!(
                    "unknown error class {name:?} (one of {})",
                    known.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-01-05T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_wait_is_sent_with_its_seconds_rounded_up() {
        let decision = RateDecision::Wait {
            until: t0() + TimeDelta::milliseconds(1500),
            reason: LimitReason::Pause,
            scope: LimitScope::Account,
        };
        let answer = CheckAnswer::new(&decision, t0());
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            serde_json::json!({
                "decision": "wait", "until": "2026-01-05T09:00:01.500Z",
                "retry_after_seconds": 2, "reason": "pause", "scope": "account"
            })
        );
        assert_eq!(RateDecision::from(answer), decision);
    }

    #[test]
    fn an_error_report_goes_and_comes_back() {
        let account = AccountId::parse("a1").unwrap();
        let report = ErrorReport {
            platform: Platform::Telegram,
            class: ErrorClass::AccountTemporary,
            code: "FLOOD_WAIT".to_owned(),
            message: "wait".to_owned(),
            retry_after: Some(TimeDelta::seconds(30)),
            task_id: Some(TaskId::new(4)),
            target_id: None,
        };
        let json = serde_json::to_string(&ErrorBody::new(&account, &report)).unwrap();
        assert!(json.contains(r#""class":"account_temporary""#), "{json}");
        let back: ErrorBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_parts(), (account, report));
        let unknown = json.replace("account_temporary", "meteor");
        let err = serde_json::from_str::<ErrorBody>(&unknown).unwrap_err();
        assert!(err.to_string().contains("unknown error class"), "{err}");
    }

    #[test]
    fn the_longest_wait_survives_the_trip() {
        let account = AccountId::parse("a1").unwrap();
        let report = ErrorReport {
            platform: Platform::Telegram,
            class: ErrorClass::AccountTemporary,
            code: "FLOOD_WAIT".to_owned(),
            message: String::new(),
            retry_after: Some(TimeDelta::MAX),
            task_id: None,
            target_id: None,
        };
        let (_, back) = ErrorBody::new(&account, &report).into_parts();
        assert!(back.retry_after.unwrap() >= TimeDelta::seconds(i64::MAX / 1000 - 1));
    }
}
