//! Tasks (campaigns), their targets, lanes and execution log rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    AccountId, Action, ActionKind, ExecutionStatus, Outcome, Platform, Priority, TargetId,
    TargetIdentifier, TargetStatus, TaskId, TaskStatus, UserId,
};

/// Options of a task beyond its action. No limit or delay lives here: limits belong to the
/// account manager alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSettings {
    /// What to do to each target.
    pub action: Action,
    /// Accounts to use; `None` means every usable account of the owner on the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountId>>,
    /// Add each target to the acting account's contacts before acting.
    #[serde(default)]
    pub add_to_contacts: bool,
    /// Skip people this user already reached successfully in the same group (or messaged)
    /// within this many days, in any task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_days: Option<u32>,
}

/// A task (campaign).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Id.
    pub id: TaskId,
    /// Owner.
    pub user_id: UserId,
    /// Name given by the user.
    pub name: String,
    /// Messenger.
    pub platform: Platform,
    /// Status.
    pub status: TaskStatus,
    /// Why the task is paused or failed, when the engine did it.
    pub status_reason: Option<String>,
    /// Priority.
    pub priority: Priority,
    /// Settings.
    pub settings: TaskSettings,
    /// Not runnable before this time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// A start was requested while `scheduled_at` lay in the future: the engine starts the
    /// task when that time comes.
    pub start_requested: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First start.
    pub started_at: Option<DateTime<Utc>>,
    /// Time it became terminal.
    pub finished_at: Option<DateTime<Utc>>,
    /// The stable key of the task's group on its platform
    /// ([`InviteStrategy::group_key`](crate::ports::InviteStrategy::group_key)), once the engine
    /// resolved it: every spelling of one group has the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
}

impl Task {
    /// The key of the task's channel in the limits and in the send-time de-duplication: its
    /// group's stable key once resolved, otherwise the channel as written
    /// ([`Action::channel_key`]).
    pub fn channel(&self) -> String {
        match (&self.group_key, self.settings.action.group()) {
            (Some(key), Some(_)) => key.clone(),
            _ => self.settings.action.channel_key(),
        }
    }

    /// Whether lanes may take targets now.
    pub fn is_runnable(&self, now: DateTime<Utc>) -> bool {
        self.status == TaskStatus::InProgress && self.scheduled_at.is_none_or(|at| at <= now)
    }
}

/// A task to be created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// Owner.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Messenger.
    pub platform: Platform,
    /// Priority.
    pub priority: Priority,
    /// Settings.
    pub settings: TaskSettings,
    /// Optional start time.
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// Changes to a task while it is `PENDING` or `PAUSED`; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUpdate {
    /// New name.
    pub name: Option<String>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New settings.
    pub settings: Option<TaskSettings>,
    /// New start time (`Some(None)` clears it).
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
}

/// Where a target came from (PostgreSQL enum `targetsource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetSource {
    /// Given in the API request.
    #[default]
    Manual,
    /// Imported from a file.
    FileUpload,
    /// Imported from a Parsing Service result.
    ParsingImport,
}

impl TargetSource {
    /// Every source.
    pub const ALL: [TargetSource; 3] = [
        TargetSource::Manual,
        TargetSource::FileUpload,
        TargetSource::ParsingImport,
    ];

    /// Storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetSource::Manual => "MANUAL",
            TargetSource::FileUpload => "FILE_UPLOAD",
            TargetSource::ParsingImport => "PARSING_IMPORT",
        }
    }
}

impl std::str::FromStr for TargetSource {
    type Err = super::status::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        TargetSource::ALL
            .into_iter()
            .find(|t| t.as_str() == up)
            .ok_or_else(|| super::status::UnknownName {
                kind: "target source",
                value: super::echo(s),
                expected: "MANUAL, FILE_UPLOAD, PARSING_IMPORT",
            })
    }
}

/// A person to add to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTarget {
    /// How the person is identified (normalised).
    pub identifier: TargetIdentifier,
    /// First name, for templates.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// E-mail, kept for the report.
    pub email: Option<String>,
    /// Origin.
    pub source: TargetSource,
}

impl NewTarget {
    /// A target with only an identifier.
    pub fn new(identifier: TargetIdentifier) -> Self {
        Self {
            identifier,
            first_name: None,
            last_name: None,
            full_name: None,
            email: None,
            source: TargetSource::Manual,
        }
    }
}

/// A stored target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Id.
    pub id: TargetId,
    /// Task.
    pub task_id: TaskId,
    /// Person (with names and origin).
    pub person: NewTarget,
    /// Status.
    pub status: TargetStatus,
    /// Why it finished.
    pub outcome: Option<Outcome>,
    /// The account that acted (or is acting).
    pub account_id: Option<AccountId>,
    /// Client message id, stored with the claim and reused on any retry.
    pub random_id: Option<i64>,
    /// The account this target is pinned to: its message may have been sent through it (or
    /// its invite is done and the message follows), so only this account ever acts on it
    /// again — the platform de-duplicates `random_id` per sending account only.
    pub sender: Option<AccountId>,
    /// The confirmed invite of an `invite_and_message` target whose message is still to come.
    pub invite_outcome: Option<Outcome>,
    /// The person was added to the contacts of [`Target::sender`], which acts next.
    pub contact_added: bool,
    /// Number of claims so far.
    pub attempts: u32,
    /// Platform error code or other explanation.
    pub error_message: Option<String>,
    /// Platform details of the result (e.g. premium flags).
    pub result: serde_json::Value,
    /// When it was last claimed.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub processed_at: Option<DateTime<Utc>>,
}

/// Whether a lane may still take targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneStatus {
    /// Takes targets when eligible.
    Active,
    /// Ended for good (account dead, lifetime cap for the group, no invite rights).
    Closed,
}

impl LaneStatus {
    /// Storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LaneStatus::Active => "active",
            LaneStatus::Closed => "closed",
        }
    }
}

/// Counters of one lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneStats {
    /// Platform actions attempted.
    pub attempts: u32,
    /// Targets reached.
    pub successes: u32,
    /// Targets refused for a target-level reason.
    pub failures: u32,
    /// Account-level errors in a row (reset by a success).
    pub consecutive_account_errors: u32,
}

/// One (task, account) pair: the seed's `invite_task_accounts` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    /// Task.
    pub task_id: TaskId,
    /// Account.
    pub account_id: AccountId,
    /// Status.
    pub status: LaneStatus,
    /// Why it closed.
    pub reason: Option<String>,
    /// Not eligible before this time.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// Last step.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Counters.
    pub stats: LaneStats,
}

/// One platform action attempt (the seed's `invite_execution_logs` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewExecutionLog {
    /// Task.
    pub task_id: TaskId,
    /// Target, if the action concerned one.
    pub target_id: Option<TargetId>,
    /// Acting account.
    pub account_id: AccountId,
    /// `invite`, `message`, `add_contact`, `check_rights`, `reconcile`, …
    pub action: String,
    /// Result.
    pub status: ExecutionStatus,
    /// Outcome, when the action finished a target.
    pub outcome: Option<Outcome>,
    /// Error class and code, when it failed.
    pub error_kind: Option<String>,
    /// Platform error code.
    pub error_code: Option<String>,
    /// Latency of the platform call.
    pub latency_ms: Option<u64>,
    /// Time of the attempt.
    pub created_at: DateTime<Utc>,
}

/// A stored execution log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionLog {
    /// Id.
    pub id: i64,
    /// The row.
    #[serde(flatten)]
    pub entry: NewExecutionLog,
}

impl NewExecutionLog {
    /// The action kind, when the row is a budgeted platform action.
    pub fn action_kind(&self) -> Option<ActionKind> {
        self.action.parse().ok()
    }
}
