//! Wire types of the API and their conversion to and from the domain, in one place. Domain
//! types carry no HTTP or OpenAPI derives.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use invite_core::domain::{
    Action, ExecutionLog, GroupRef, Target, TargetIdentifier, TargetStatus, Task,
};
use invite_core::ports::{AccountState, CreatedTask, TaskStats};
use invite_core::service::{
    AccountOverview, ActionType, TargetDraft, TaskDraft, TaskPatch, TaskStatusReport, UpdatedTask,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// What a task does to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionWire {
    /// Add to a group or channel.
    Invite,
    /// Send a direct message.
    Message,
    /// Invite, then message.
    InviteAndMessage,
}

impl From<ActionWire> for ActionType {
    fn from(a: ActionWire) -> Self {
        match a {
            ActionWire::Invite => ActionType::Invite,
            ActionWire::Message => ActionType::Message,
            ActionWire::InviteAndMessage => ActionType::InviteAndMessage,
        }
    }
}

/// A target with optional names for templates.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// `@username`, `t.me/username`, numeric user id or `+phone` (E.164).
    #[schema(example = "@alice_example")]
    pub identifier: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// E-mail (kept for the report).
    pub email: Option<String>,
}

/// A target: an identifier alone, or an object with names.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TargetInput {
    /// Only the identifier.
    Identifier(String),
    /// Identifier and names.
    Detailed(TargetBody),
}

impl From<TargetInput> for TargetDraft {
    fn from(t: TargetInput) -> Self {
        match t {
            TargetInput::Identifier(identifier) => TargetDraft::new(identifier),
            TargetInput::Detailed(b) => TargetDraft {
                identifier: b.identifier,
                first_name: b.first_name,
                last_name: b.last_name,
                full_name: b.full_name,
                email: b.email,
            },
        }
    }
}

/// A task to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskBody {
    /// Name (at most `max_name_length` characters).
    #[schema(example = "Launch week")]
    pub name: String,
    /// `telegram`, `instagram`, `whatsapp` or `sandbox`.
    #[schema(example = "sandbox")]
    pub platform: String,
    /// What to do to each target.
    pub action: ActionWire,
    /// Group for invites: `@name`, numeric id or invite link.
    #[schema(example = "@launch_group")]
    pub group: Option<String>,
    /// Message template: `{username}`, `{first_name}`, `{last_name}`, `{full_name}`, with a
    /// fallback as in `{first_name|friend}`.
    pub template: Option<String>,
    /// `low`, `medium` (or `normal`), `high`; any case.
    pub priority: Option<String>,
    /// Not before this time: from 2000-01-01T00:00:00Z to 366 days after now.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// People to reach (at most `max_targets_per_task`).
    #[serde(default)]
    pub targets: Vec<TargetInput>,
    /// Accounts to use; every usable account when absent.
    pub accounts: Option<Vec<String>>,
    /// Add each person to contacts first.
    #[serde(default)]
    pub add_to_contacts: bool,
    /// Skip people reached in the same group within this many days (1 to 3650).
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "optional_whole")]
    pub dedupe_days: Option<u32>,
}

impl From<CreateTaskBody> for TaskDraft {
    fn from(b: CreateTaskBody) -> Self {
        TaskDraft {
            name: b.name,
            platform: b.platform,
            action: b.action.into(),
            group: b.group,
            template: b.template,
            priority: b.priority,
            scheduled_at: b.scheduled_at,
            targets: b.targets.into_iter().map(Into::into).collect(),
            accounts: b.accounts,
            add_to_contacts: b.add_to_contacts,
            dedupe_days: b.dedupe_days,
        }
    }
}

/// An integer of JSON: a number without a fraction, `3.0` included (JSON Schema's `integer`),
/// within the range of `T`.
fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let int = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Some(i),
        // Within ±2^53 a float's integer value is exact.
        (None, Some(f)) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Some(f as i64),
        _ => None,
    };
    int.and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| D::Error::custom(format!("{n} is not an integer in the accepted range")))
}

/// [`whole`], or `null`.
pub(crate) fn optional_whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<i64>>(#[serde(deserialize_with = "whole")] T);
    Ok(Option::<Whole<T>>::deserialize(d)?.map(|w| w.0))
}

/// [`optional_whole`] where `null` → `Some(None)` and absent → `None`.
fn double_optional_whole<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    optional_whole(d).map(Some)
}

/// `null` → `Some(None)`, absent → `None` (with `#[serde(default)]`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Changes to a task (only while PENDING or PAUSED). Absent fields are kept; `null` clears
/// `scheduled_at`, `accounts` and `dedupe_days`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskBody {
    /// New name.
    pub name: Option<String>,
    /// New priority.
    pub priority: Option<String>,
    /// New start time (2000-01-01T00:00:00Z to 366 days after now); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
    /// New action.
    pub action: Option<ActionWire>,
    /// New group.
    pub group: Option<String>,
    /// New template.
    pub template: Option<String>,
    /// New account selection; `null` means every usable account.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub accounts: Option<Option<Vec<String>>>,
    /// New contacts option.
    pub add_to_contacts: Option<bool>,
    /// New de-duplication window (1 to 3650 days); `null` turns it off.
    #[serde(default, deserialize_with = "double_optional_whole")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    pub dedupe_days: Option<Option<u32>>,
    /// Targets to append.
    pub targets: Option<Vec<TargetInput>>,
}

impl From<UpdateTaskBody> for TaskPatch {
    fn from(b: UpdateTaskBody) -> Self {
        TaskPatch {
            name: b.name,
            priority: b.priority,
            scheduled_at: b.scheduled_at,
            action: b.action.map(Into::into),
            group: b.group,
            template: b.template,
            accounts: b.accounts,
            add_to_contacts: b.add_to_contacts,
            dedupe_days: b.dedupe_days,
            targets: b.targets.map(|t| t.into_iter().map(Into::into).collect()),
        }
    }
}

/// A group as the API writes it (readable back by the API).
pub fn group_text(g: &GroupRef) -> String {
    match g {
        GroupRef::Username(n) => format!("@{n}"),
        GroupRef::Id(id) => id.to_string(),
        GroupRef::InviteLink(h) => format!("https://t.me/+{h}"),
    }
}

/// A task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Messenger.
    pub platform: String,
    /// `PENDING`, `IN_PROGRESS`, `PAUSED`, `COMPLETED`, `FAILED`, `CANCELLED`.
    pub status: String,
    /// Why the engine paused or failed it.
    pub status_reason: Option<String>,
    /// `LOW`, `MEDIUM`, `HIGH`.
    pub priority: String,
    /// What it does.
    pub action: ActionWire,
    /// Group of invites.
    pub group: Option<String>,
    /// Message template.
    pub template: Option<String>,
    /// Accounts chosen (all usable when absent).
    pub accounts: Option<Vec<String>>,
    /// Contacts option.
    pub add_to_contacts: bool,
    /// De-duplication window in days.
    pub dedupe_days: Option<u32>,
    /// Not before this time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// A start waits for `scheduled_at`.
    pub start_requested: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// First started.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Task> for TaskView {
    fn from(t: &Task) -> Self {
        let action = match &t.settings.action {
            Action::Invite { .. } => ActionWire::Invite,
            Action::Message { .. } => ActionWire::Message,
            Action::InviteAndMessage { .. } => ActionWire::InviteAndMessage,
        };
        TaskView {
            id: t.id.get(),
            name: t.name.clone(),
            platform: t.platform.to_string(),
            status: t.status.to_string(),
            status_reason: t.status_reason.clone(),
            priority: t.priority.to_string(),
            action,
            group: t.settings.action.group().map(group_text),
            template: t
                .settings
                .action
                .template()
                .map(|tpl| tpl.source().to_owned()),
            accounts: t
                .settings
                .accounts
                .as_ref()
                .map(|a| a.iter().map(ToString::to_string).collect()),
            add_to_contacts: t.settings.add_to_contacts,
            dedupe_days: t.settings.dedupe_days,
            scheduled_at: t.scheduled_at,
            start_requested: t.start_requested,
            created_at: t.created_at,
            updated_at: t.updated_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
        }
    }
}

/// A created task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedTaskView {
    /// The task.
    pub task: TaskView,
    /// Targets stored.
    pub inserted: u64,
    /// Targets merged into an earlier one with the same identifier.
    pub duplicates: u64,
    /// True when an earlier request with the same `Idempotency-Key` created it.
    pub replayed: bool,
}

impl From<&CreatedTask> for CreatedTaskView {
    fn from(c: &CreatedTask) -> Self {
        CreatedTaskView {
            task: (&c.task).into(),
            inserted: c.inserted,
            duplicates: c.duplicates,
            replayed: c.replayed,
        }
    }
}

/// Targets appended by an update.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddedView {
    /// Stored.
    pub inserted: u64,
    /// Already in the task.
    pub duplicates: u64,
}

/// An updated task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdatedTaskView {
    /// The task.
    pub task: TaskView,
    /// Targets appended, if the update had some.
    pub added: Option<AddedView>,
}

impl From<&UpdatedTask> for UpdatedTaskView {
    fn from(u: &UpdatedTask) -> Self {
        UpdatedTaskView {
            task: (&u.task).into(),
            added: u.added.map(|a| AddedView {
                inserted: a.inserted,
                duplicates: a.duplicates,
            }),
        }
    }
}

/// A page of tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskPage {
    /// Tasks, newest first.
    pub items: Vec<TaskView>,
    /// Page size.
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
}

/// Filters of the task list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskListQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this platform.
    pub platform: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Rows to skip (at most 10 000 000).
    #[param(minimum = 0, maximum = 10_000_000)]
    pub offset: Option<u32>,
}

/// Filters of the execution log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// `PENDING`, `SUCCESS`, `FAILED` or `SKIPPED`.
    pub status: Option<String>,
    /// Only this account.
    pub account_id: Option<String>,
    /// Not before (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Rows to skip (at most 10 000 000).
    #[param(minimum = 0, maximum = 10_000_000)]
    pub offset: Option<u32>,
}

/// People to check without a file (`GET /import/validate`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// Identifiers separated by commas or line breaks: `@name`, `t.me/name`, numeric ids,
    /// phones (`+7 916 123-45-67`). Row numbers in the answer are positions in this list.
    pub identifiers: Option<String>,
    /// A task of the caller: its targets count as duplicates, its platform and
    /// `dedupe_days` apply.
    #[param(value_type = Option<i64>)]
    pub task_id: Option<String>,
    /// The platform when there is no task (default `telegram`).
    pub platform: Option<String>,
    /// ISO country of national phone numbers (`RU`: `8 916 …` → `+7916…`).
    pub default_country: Option<String>,
    /// Cross-task de-duplication window in days (1 to 3650).
    #[param(minimum = 1, maximum = 3650)]
    pub dedupe_days: Option<u32>,
}

/// Report format.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default) or `csv` (one row per target).
    pub format: Option<String>,
}

/// Account filter.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Only this platform.
    pub platform: Option<String>,
}

/// Targets per status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusCounts {
    /// Not yet attempted.
    pub pending: u64,
    /// Being processed.
    pub in_progress: u64,
    /// Reached.
    pub success: u64,
    /// Refused for a target-level reason.
    pub failed: u64,
    /// Not attempted on purpose.
    pub skipped: u64,
    /// May or may not have happened.
    pub uncertain: u64,
}

/// When the remaining targets can be done under the limits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EtaView {
    /// Time of the last action, if every remaining target can be placed.
    pub finish_at: Option<DateTime<Utc>>,
    /// Seconds from now until `finish_at`.
    pub seconds_left: Option<i64>,
    /// Targets still to do.
    pub remaining: u64,
    /// Targets no account can ever take (lifetime caps, dead accounts).
    pub uncovered: u64,
    /// Accounts the forecast placed work on.
    pub accounts: u64,
    /// How it was computed.
    pub basis: String,
}

/// Progress of a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// Task id.
    pub task_id: i64,
    /// Task status.
    pub status: String,
    /// Why the engine paused or failed it.
    pub status_reason: Option<String>,
    /// All targets.
    pub total: u64,
    /// Targets with no work left.
    pub processed: u64,
    /// `processed / total`, in percent.
    pub percent: f64,
    /// Targets per status.
    pub counts: StatusCounts,
    /// Finished targets per outcome (`invited`, `privacy_restricted`, …).
    pub outcomes: BTreeMap<String, u64>,
    /// Accounts that can act for this task now.
    pub active_accounts: u64,
    /// Accounts assigned to the task.
    pub accounts: u64,
    /// ETA (absent once the task is finished).
    pub eta: Option<EtaView>,
    /// Why a running task does nothing until its owner acts: every account of the task is
    /// disabled or removed (it goes on when one is enabled again). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

impl StatusView {
    /// From the use case's report, at `now`.
    pub fn new(r: &TaskStatusReport, now: DateTime<Utc>) -> Self {
        let c = |s| r.progress.count(s);
        StatusView {
            task_id: r.task.id.get(),
            status: r.task.status.to_string(),
            status_reason: r.task.status_reason.clone(),
            total: r.total,
            processed: r.finished,
            percent: r.percent,
            counts: StatusCounts {
                pending: c(TargetStatus::Pending),
                in_progress: c(TargetStatus::InProgress),
                success: c(TargetStatus::Success),
                failed: c(TargetStatus::Failed),
                skipped: c(TargetStatus::Skipped),
                uncertain: c(TargetStatus::Uncertain),
            },
            outcomes: r
                .progress
                .by_outcome
                .iter()
                .map(|(o, n)| (o.to_string(), *n))
                .collect(),
            active_accounts: r.active_accounts,
            accounts: r.accounts,
            waiting_reason: r.waiting.clone(),
            eta: r.eta.as_ref().map(|e| EtaView {
                finish_at: e.finish_at,
                seconds_left: e.finish_at.map(|f| (f - now).num_seconds().max(0)),
                remaining: e.remaining,
                uncovered: e.uncovered,
                accounts: e.accounts as u64,
                basis: "earliest finish the accounts' remaining capacity allows under the limits"
                    .to_owned(),
            }),
        }
    }
}

/// Attempts of one account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountStatsView {
    /// Account.
    pub account_id: String,
    /// Log rows.
    pub attempts: u64,
    /// Successful rows.
    pub successes: u64,
    /// Failed rows.
    pub failures: u64,
}

/// Log rows in one hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HourView {
    /// Start of the hour (UTC).
    pub hour: DateTime<Utc>,
    /// Log rows.
    pub actions: u64,
}

/// Statistics of a task's execution log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsView {
    /// Task id.
    pub task_id: i64,
    /// Per account.
    pub per_account: Vec<AccountStatsView>,
    /// Failed rows per error kind.
    pub per_error: BTreeMap<String, u64>,
    /// Log rows per hour.
    pub timeline: Vec<HourView>,
}

impl StatsView {
    /// From the store's statistics.
    pub fn new(task_id: i64, s: &TaskStats) -> Self {
        StatsView {
            task_id,
            per_account: s
                .per_account
                .iter()
                .map(|(a, st)| AccountStatsView {
                    account_id: a.to_string(),
                    attempts: st.attempts,
                    successes: st.successes,
                    failures: st.failures,
                })
                .collect(),
            per_error: s.per_error.clone(),
            timeline: s
                .per_hour
                .iter()
                .map(|(h, n)| HourView {
                    hour: *h,
                    actions: *n,
                })
                .collect(),
        }
    }
}

/// One target in the report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportRow {
    /// Target id.
    pub target_id: i64,
    /// Normalised identifier (`@name`, id or `+phone`).
    pub identifier: String,
    /// `username`, `user_id` or `phone`.
    pub identifier_kind: String,
    /// Target status.
    pub status: String,
    /// Outcome, once finished.
    pub outcome: Option<String>,
    /// The account that acted.
    pub account_id: Option<String>,
    /// Claims so far.
    pub attempts: u32,
    /// When it finished.
    pub processed_at: Option<DateTime<Utc>>,
    /// Platform error code or explanation.
    pub error: Option<String>,
}

impl From<&Target> for ReportRow {
    fn from(t: &Target) -> Self {
        let id: &TargetIdentifier = &t.person.identifier;
        ReportRow {
            target_id: t.id.get(),
            identifier: id.to_string(),
            identifier_kind: id.kind().to_owned(),
            status: t.status.to_string(),
            outcome: t.outcome.map(|o| o.to_string()),
            account_id: t.account_id.as_ref().map(ToString::to_string),
            attempts: t.attempts,
            processed_at: t.processed_at,
            error: t.error_message.clone(),
        }
    }
}

/// The report of a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    /// The task.
    pub task: TaskView,
    /// Targets per status.
    pub counts: StatusCounts,
    /// Targets per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// One row per target.
    pub rows: Vec<ReportRow>,
}

/// One execution log row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogView {
    /// Id.
    pub id: i64,
    /// Time of the attempt.
    pub created_at: DateTime<Utc>,
    /// Target.
    pub target_id: Option<i64>,
    /// Acting account.
    pub account_id: String,
    /// `invite`, `message`, `add_contact`, `check_rights`, `reconcile`, …
    pub action: String,
    /// `PENDING`, `SUCCESS`, `FAILED`, `SKIPPED`.
    pub status: String,
    /// Outcome, when the row finished a target.
    pub outcome: Option<String>,
    /// Error class.
    pub error_kind: Option<String>,
    /// Platform error code.
    pub error_code: Option<String>,
    /// Latency of the platform call.
    pub latency_ms: Option<u64>,
}

impl From<&ExecutionLog> for LogView {
    fn from(l: &ExecutionLog) -> Self {
        let e = &l.entry;
        LogView {
            id: l.id,
            created_at: e.created_at,
            target_id: e.target_id.map(|t| t.get()),
            account_id: e.account_id.to_string(),
            action: e.action.clone(),
            status: e.status.to_string(),
            outcome: e.outcome.map(|o| o.to_string()),
            error_kind: e.error_kind.clone(),
            error_code: e.error_code.clone(),
            latency_ms: e.latency_ms,
        }
    }
}

/// A page of log rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogPage {
    /// Rows, oldest first.
    pub items: Vec<LogView>,
    /// Page size.
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
    /// Offset of the next page, when this one is full.
    pub next_offset: Option<u32>,
}

/// Use of one action kind in the rolling window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageView {
    /// `invite` or `message`.
    pub kind: String,
    /// Actions in the window.
    pub used: u64,
    /// Cap of the window.
    pub limit: u64,
    /// Next action not before (pause and spread).
    pub next_allowed_at: Option<DateTime<Utc>>,
}

/// One of the caller's accounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    /// Id.
    pub id: String,
    /// Messenger.
    pub platform: String,
    /// Name to show.
    pub display_name: Option<String>,
    /// Whether the platform considers it active.
    pub active: bool,
    /// `active`, `cooling_down` or `dead`.
    pub state: String,
    /// End of a cooldown.
    pub until: Option<DateTime<Utc>>,
    /// Platform code behind a cooldown or death.
    pub reason: Option<String>,
    /// Use per action kind.
    pub usage: Vec<UsageView>,
    /// A registered Telegram account's resolutions and its daily budgets of the calls
    /// Telegram limits most (absent for other accounts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramBudgetView>,
}

/// What a Telegram account resolved and how much of its daily budgets it used (rolling 24 h).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TelegramBudgetView {
    /// People this account resolved and keeps (their access hashes are valid for it only).
    pub resolved: usize,
    /// `contacts.resolveUsername` calls in the last 24 h (people and group names).
    pub resolutions_24h: usize,
    /// The most allowed in 24 h.
    pub resolve_budget_per_day: u32,
    /// Phone imports (`contacts.importContacts`) in the last 24 h.
    pub imports_24h: usize,
    /// The most allowed in 24 h.
    pub import_budget_per_day: u32,
}

impl From<&AccountOverview> for AccountView {
    fn from(a: &AccountOverview) -> Self {
        let (state, until, reason) = match &a.state {
            AccountState::Active => ("active", None, None),
            AccountState::CoolingDown { until, reason } => {
                ("cooling_down", Some(*until), Some(reason.clone()))
            }
            AccountState::Dead { reason } => ("dead", None, Some(reason.clone())),
        };
        AccountView {
            id: a.info.id.to_string(),
            platform: a.info.platform.to_string(),
            display_name: a.info.display_name.clone(),
            active: a.info.active,
            state: state.to_owned(),
            until,
            reason,
            usage: a
                .usage
                .iter()
                .map(|u| UsageView {
                    kind: u.kind.to_string(),
                    used: u.used,
                    limit: u.limit,
                    next_allowed_at: u.next_allowed_at,
                })
                .collect(),
            telegram: None,
        }
    }
}

/// The caller's accounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountList {
    /// Accounts.
    pub items: Vec<AccountView>,
}

/// One dependency's health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckView {
    /// Dependency (`store`, `queue`, `engine`, …).
    pub name: String,
    /// `ok` or `down`.
    pub status: String,
    /// Backend and detail.
    pub detail: String,
}

/// Liveness and readiness.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthView {
    /// `ok` when every dependency is, else `degraded`.
    pub status: String,
    /// Version of the service.
    pub version: String,
    /// Each dependency.
    pub checks: Vec<CheckView>,
}

// ---- import and suppression list ----

/// A row that could not become a target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowErrorView {
    /// Row number as the uploader sees it (CSV line, worksheet row, JSON element), from 1.
    pub row: u64,
    /// The column's label; empty when the row as a whole is wrong.
    pub column: String,
    /// The offending value (cut to 100 characters).
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// A valid row that was not taken.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkippedRowView {
    /// Row number.
    pub row: u64,
    /// The person, normalised.
    pub identifier: String,
    /// `duplicate_in_file`, `already_in_task`, `reached_recently` or `suppressed`.
    pub reason: String,
    /// For `duplicate_in_file`: the earlier row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_row: Option<u64>,
}

/// What an import (or a validation) found: `rows = valid + invalid + duplicate + suppressed`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportView {
    /// The task, when there is one.
    pub task_id: Option<i64>,
    /// `csv`, `xlsx` or `json`.
    pub format: String,
    /// The CSV delimiter used.
    pub delimiter: Option<String>,
    /// The character encoding a CSV file was read in: `utf-8`, `utf-16le`, `utf-16be` or
    /// `windows-1251`.
    pub encoding: Option<String>,
    /// The worksheet read.
    pub sheet: Option<String>,
    /// Whether column names came from a header row (or JSON keys).
    pub header: bool,
    /// Non-empty data rows.
    pub rows: u64,
    /// Rows that are targets (stored by `/import/file` and `/import/parsing`).
    pub valid: u64,
    /// Rows refused (see `errors`).
    pub invalid: u64,
    /// Valid rows naming someone already seen.
    pub duplicate: u64,
    /// Of `duplicate`: on an earlier row of the file.
    pub duplicate_in_file: u64,
    /// Of `duplicate`: already a target of the task.
    pub duplicate_existing: u64,
    /// Of `duplicate`: reached successfully in the same channel within `dedupe_days`.
    pub duplicate_reached: u64,
    /// Valid rows naming someone on the suppression list.
    pub suppressed: u64,
    /// Targets stored (0 for a validation).
    pub inserted: u64,
    /// The cross-task de-duplication window applied, in days.
    pub dedupe_days: Option<u32>,
    /// The first row errors, in file order.
    pub errors: Vec<RowErrorView>,
    /// Every row error (equal to `invalid`).
    pub error_total: u64,
    /// The first duplicate and suppressed rows, in file order.
    pub skipped: Vec<SkippedRowView>,
}

impl From<&invite_core::service::ImportSummary> for ImportView {
    fn from(s: &invite_core::service::ImportSummary) -> Self {
        Self::new(
            s.task_id.map(invite_core::domain::TaskId::get),
            &s.report,
            s.inserted,
            s.dedupe_days,
        )
    }
}

impl ImportView {
    /// The view of an analysis.
    pub fn new(
        task_id: Option<i64>,
        report: &invite_core::import::ImportReport,
        inserted: u64,
        dedupe_days: Option<u32>,
    ) -> Self {
        use invite_core::import::SkipReason;
        Self {
            task_id,
            format: serde_json::to_value(report.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            delimiter: report.delimiter.map(|d| d.to_string()),
            encoding: report.encoding.map(|e| e.as_str().to_owned()),
            sheet: report.sheet.clone(),
            header: report.header,
            rows: report.rows,
            valid: report.valid,
            invalid: report.invalid,
            duplicate: report.duplicate,
            duplicate_in_file: report.duplicate_in_file,
            duplicate_existing: report.duplicate_existing,
            duplicate_reached: report.duplicate_reached,
            suppressed: report.suppressed,
            inserted,
            dedupe_days,
            errors: report
                .errors
                .iter()
                .map(|e| RowErrorView {
                    row: e.row,
                    column: e.column.clone(),
                    value: e.value.clone(),
                    reason: e.reason.clone(),
                })
                .collect(),
            error_total: report.error_total,
            skipped: report
                .skipped
                .iter()
                .map(|s| {
                    let (reason, first_row) = match s.reason {
                        SkipReason::DuplicateInFile { first_row } => {
                            ("duplicate_in_file", Some(first_row))
                        }
                        SkipReason::AlreadyInTask => ("already_in_task", None),
                        SkipReason::ReachedRecently => ("reached_recently", None),
                        SkipReason::Suppressed => ("suppressed", None),
                    };
                    SkippedRowView {
                        row: s.row,
                        identifier: s.identifier.clone(),
                        reason: reason.to_owned(),
                        first_row,
                    }
                })
                .collect(),
        }
    }
}

/// `POST /import/parsing`: a Parsing Service result into a task.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParsingImportBody {
    /// The task to fill (PENDING or PAUSED).
    #[serde(deserialize_with = "whole")]
    pub task_id: i64,
    /// The Parsing Service's task id.
    #[schema(example = "1234")]
    pub parsing_task_id: StringOrNumber,
    /// Skip people reached successfully in the same channel within this many days, 1 to 3650
    /// (default: the task's `dedupe_days`).
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "optional_whole")]
    pub dedupe_days: Option<u32>,
}

/// A string, or a number read as its decimal text.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StringOrNumber {
    /// Text.
    String(String),
    /// A number.
    Number(#[serde(deserialize_with = "whole")] i64),
}

impl std::fmt::Display for StringOrNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StringOrNumber::String(s) => f.write_str(s),
            StringOrNumber::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The multipart form of `/import/file`, `/import/validate` and `/suppressions/file`
/// (documentation only: the handlers read the parts as a stream).
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct ImportForm {
    /// The file: CSV (any of `,` `;` tab `|`), XLSX or JSON, at most 10 MB by default.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The task (required by `/import/file`; optional for `/import/validate`, where it adds the
    /// task's targets and de-duplication window).
    pub task_id: Option<i64>,
    /// The platform when there is no task (default `telegram`).
    pub platform: Option<String>,
    /// `csv`, `xlsx` or `json` (default: from the file name, else the content).
    pub format: Option<String>,
    /// The XLSX worksheet (default: the first).
    pub sheet: Option<String>,
    /// The CSV delimiter: one character, or `tab` (default: detected).
    pub delimiter: Option<String>,
    /// The CSV file's encoding: `utf-8`, `utf-16le`, `utf-16be` or `windows-1251` (`cp1251`)
    /// (default: detected from a byte order mark, else UTF-8 when the text is valid UTF-8,
    /// else Windows-1251 when it reads as Cyrillic).
    pub encoding: Option<String>,
    /// Whether the first row is a header (default: detected).
    pub has_header: Option<bool>,
    /// Column of usernames: a header name, or a position from 1.
    pub username_column: Option<String>,
    /// Column of user ids.
    pub user_id_column: Option<String>,
    /// Column of phone numbers.
    pub phone_column: Option<String>,
    /// Column of mixed identifiers.
    pub identifier_column: Option<String>,
    /// Column of first names.
    pub first_name_column: Option<String>,
    /// Column of last names.
    pub last_name_column: Option<String>,
    /// Column of full names.
    pub full_name_column: Option<String>,
    /// Column of e-mail addresses.
    pub email_column: Option<String>,
    /// Skip people reached successfully in the same channel within this many days, 1 to 3650
    /// (needs a task; default: the task's `dedupe_days`).
    #[schema(minimum = 1, maximum = 3650)]
    pub dedupe_days: Option<u32>,
    /// Why (suppression list only; default `manual`).
    pub reason: Option<String>,
}

/// `POST /suppressions`: people never to contact.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressBody {
    /// `telegram` (default) or `sandbox`.
    pub platform: Option<String>,
    /// One person.
    #[schema(example = "@someone_example")]
    pub identifier: Option<String>,
    /// Several people.
    pub identifiers: Option<Vec<String>>,
    /// Why (default `manual`).
    pub reason: Option<String>,
}

/// How many people were new to the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuppressView {
    /// People added (already listed ones are kept as they were).
    pub added: u64,
}

/// A bulk suppression from a file: the file's analysis and how many were new.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuppressFileView {
    /// People added.
    pub added: u64,
    /// The analysis of the file.
    pub report: ImportView,
}

/// Whether a person was removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnsuppressView {
    /// False when the person was not on the list.
    pub removed: bool,
}

/// Query of the suppression list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// `telegram` (default) or `sandbox`.
    pub platform: Option<String>,
    /// Page size (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Entries to skip.
    #[param(minimum = 0, maximum = 10_000_000)]
    pub offset: Option<u32>,
}

/// Query of `DELETE /suppressions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsuppressQuery {
    /// `telegram` (default) or `sandbox`.
    pub platform: Option<String>,
    /// The person.
    pub identifier: String,
}

/// One suppressed person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuppressionView {
    /// The person, normalised (`@name`, id or `+phone`).
    pub identifier: String,
    /// `username`, `user_id` or `phone`.
    pub identifier_kind: String,
    /// Why.
    pub reason: String,
    /// When added.
    pub created_at: DateTime<Utc>,
}

impl From<&invite_core::ports::SuppressionEntry> for SuppressionView {
    fn from(e: &invite_core::ports::SuppressionEntry) -> Self {
        Self {
            identifier: e.identifier.to_string(),
            identifier_kind: e.identifier.kind().to_owned(),
            reason: e.reason.clone(),
            created_at: e.created_at,
        }
    }
}

/// A page of the suppression list, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuppressionPage {
    /// Entries.
    pub items: Vec<SuppressionView>,
    /// Page size.
    pub limit: u32,
    /// Entries skipped.
    pub offset: u32,
    /// Offset of the next page, when this one is full.
    pub next_offset: Option<u32>,
}
