//! What both backends share: row types read with `FromRow`, their conversion into the domain
//! model (the one place where storage names become domain enums), and the pure parts of the
//! operations (target de-duplication, transition plans, statistics assembly).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use invite_core::domain::{
    AccountId, ActionKind, ExecutionLog, Lane, LaneStats, LaneStatus, NewExecutionLog, NewTarget,
    Outcome, Target, TargetId, TargetIdentifier, TargetStatus, Task, TaskEvent, TaskId,
    TaskSettings, TaskStatus, UserId,
};
use invite_core::ports::{
    AccountHistory, AccountState, AccountStats, LedgerEvent, Progress, SuppressionEntry, TaskStats,
};
use sqlx::types::Json;

use invite_core::ports::ClaimStage;

use crate::error::{Error, Result};

/// Which part of the work a claim may take (the same SQL on both backends): `$2` is the
/// claiming account, `$6` the [`stage_number`] of the claim's stage.
pub(crate) const CLAIM_STAGE_SQL: &str = "(CASE $6 \
     WHEN 0 THEN NOT contact_added AND invite_outcome IS NULL \
     WHEN 1 THEN contact_added AND invite_outcome IS NULL AND sender_account = $2 \
     ELSE invite_outcome IS NOT NULL AND sender_account = $2 END)";

/// The number [`CLAIM_STAGE_SQL`] reads for a stage.
pub(crate) fn stage_number(stage: ClaimStage) -> i32 {
    match stage {
        ClaimStage::First => 0,
        ClaimStage::AfterContact => 1,
        ClaimStage::Followup => 2,
    }
}

/// Which follow-ups wait for an account (`$2`) in a task (`$1`): after a contact, after an
/// invite.
pub(crate) const FOLLOWUPS_SQL: &str = "SELECT \
     EXISTS (SELECT 1 FROM invite_targets WHERE task_id = $1 AND status = 'pending' \
             AND sender_account = $2 AND contact_added AND invite_outcome IS NULL), \
     EXISTS (SELECT 1 FROM invite_targets WHERE task_id = $1 AND status = 'pending' \
             AND sender_account = $2 AND invite_outcome IS NOT NULL)";

/// A claimed target added to the claiming account's contacts (`$1` target, `$2` account,
/// `$3` time): back to `pending`, pinned to the account for its next part.
pub(crate) const CONTACT_PART_SQL: &str = "UPDATE invite_targets \
     SET status = 'pending', contact_added = TRUE, sender_account = $2, account_id = NULL, \
         holder = NULL, updated_at = $3 \
     WHERE id = $1 AND status = 'in_progress' AND account_id = $2";

/// What a claim that may have reached the platform becomes: `uncertain` with no outcome, and a
/// target with a `random_id` pinned to the account of its claim.
pub(crate) const TO_UNCERTAIN: &str = "status = 'uncertain', outcome = NULL, holder = NULL, \
     sender_account = COALESCE(sender_account, \
         CASE WHEN random_id IS NOT NULL THEN account_id END)";

/// `in_progress` under `$2` (`$1` the target, `$3` the time) → `pending`, pin and
/// `random_id` kept.
pub(crate) const RELEASE_SQL: &str = "UPDATE invite_targets SET status = 'pending', account_id = NULL, holder = NULL, \
             updated_at = $3 \
         WHERE id = $1 AND status = 'in_progress' AND account_id = $2";

/// A pending target only added to the contacts of an account that can no longer act (`$1`):
/// unpinned, to start afresh.
pub(crate) const UNPIN_SQL: &str = "UPDATE invite_targets \
     SET sender_account = NULL, contact_added = FALSE \
     WHERE id = $1 AND status = 'pending'";

/// A page size as SQL `LIMIT`: 0 means no limit.
pub(crate) fn sql_limit(limit: u32) -> i64 {
    if limit == 0 {
        i64::MAX
    } else {
        i64::from(limit)
    }
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| Error::Corrupt(format!("unknown {what} {value:?}")))
}

fn parse_opt<T: FromStr>(what: &str, value: Option<&str>) -> Result<Option<T>> {
    value.map(|v| parse(what, v)).transpose()
}

fn account(value: String) -> Result<AccountId> {
    AccountId::parse(value).map_err(|e| Error::Corrupt(e.to_string()))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn lane_status_from(value: &str) -> Result<LaneStatus> {
    match value {
        "active" => Ok(LaneStatus::Active),
        "closed" => Ok(LaneStatus::Closed),
        other => Err(Error::Corrupt(format!("unknown lane status {other:?}"))),
    }
}

pub(crate) fn json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| Error::Encode { what, source })
}

/// A stored task with its counters as three parallel arrays (status, outcome or none, count;
/// none at all for a task without targets): PostgreSQL's one-statement status read.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TaskCountsRow {
    #[sqlx(flatten)]
    task: TaskRow,
    count_statuses: Option<Vec<String>>,
    count_outcomes: Option<Vec<Option<String>>>,
    counts: Option<Vec<i64>>,
}

impl TryFrom<TaskCountsRow> for (Task, Progress) {
    type Error = Error;

    fn try_from(r: TaskCountsRow) -> Result<Self> {
        let statuses = r.count_statuses.unwrap_or_default();
        let outcomes = r.count_outcomes.unwrap_or_default();
        let counts = r.counts.unwrap_or_default();
        if statuses.len() != outcomes.len() || statuses.len() != counts.len() {
            return Err(Error::Corrupt(format!(
                "task {}: counters of unequal lengths ({}, {}, {})",
                r.task.id,
                statuses.len(),
                outcomes.len(),
                counts.len()
            )));
        }
        let rows = statuses
            .into_iter()
            .zip(outcomes)
            .zip(counts)
            .map(|((s, o), n)| (s, o, n))
            .collect();
        Ok((r.task.try_into()?, progress_from(rows)?))
    }
}

/// A stored task.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TaskRow {
    id: i64,
    user_id: i64,
    name: String,
    platform: String,
    status: String,
    status_reason: Option<String>,
    priority: String,
    settings: Json<TaskSettings>,
    scheduled_at: Option<DateTime<Utc>>,
    start_requested: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    group_key: Option<String>,
}

impl TryFrom<TaskRow> for Task {
    type Error = Error;

    fn try_from(r: TaskRow) -> Result<Self> {
        Ok(Task {
            id: TaskId::new(r.id),
            user_id: UserId::new(r.user_id),
            name: r.name,
            platform: parse("platform", &r.platform)?,
            status: parse("task status", &r.status)?,
            status_reason: r.status_reason,
            priority: parse("priority", &r.priority)?,
            settings: r.settings.0,
            scheduled_at: r.scheduled_at,
            start_requested: r.start_requested,
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            group_key: r.group_key,
        })
    }
}

/// A stored target.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TargetRow {
    id: i64,
    task_id: i64,
    identifier_key: String,
    first_name: Option<String>,
    last_name: Option<String>,
    full_name: Option<String>,
    email: Option<String>,
    source: String,
    status: String,
    outcome: Option<String>,
    account_id: Option<String>,
    random_id: Option<i64>,
    sender_account: Option<String>,
    invite_outcome: Option<String>,
    contact_added: bool,
    attempts: i32,
    error_message: Option<String>,
    result: Json<serde_json::Value>,
    claimed_at: Option<DateTime<Utc>>,
    processed_at: Option<DateTime<Utc>>,
}

impl TryFrom<TargetRow> for Target {
    type Error = Error;

    fn try_from(r: TargetRow) -> Result<Self> {
        let identifier = TargetIdentifier::from_dedupe_key(&r.identifier_key)
            .ok_or_else(|| Error::Corrupt(format!("bad identifier key {:?}", r.identifier_key)))?;
        Ok(Target {
            id: TargetId::new(r.id),
            task_id: TaskId::new(r.task_id),
            person: NewTarget {
                identifier,
                first_name: r.first_name,
                last_name: r.last_name,
                full_name: r.full_name,
                email: r.email,
                source: parse("target source", &r.source)?,
            },
            status: parse("target status", &r.status)?,
            outcome: parse_opt("outcome", r.outcome.as_deref())?,
            account_id: r.account_id.map(account).transpose()?,
            random_id: r.random_id,
            sender: r.sender_account.map(account).transpose()?,
            invite_outcome: parse_opt("outcome", r.invite_outcome.as_deref())?,
            contact_added: r.contact_added,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            error_message: r.error_message,
            result: r.result.0,
            claimed_at: r.claimed_at,
            processed_at: r.processed_at,
        })
    }
}

/// Which target rows a write on one target may change: the condition on `invite_targets`
/// (the same SQL text on both backends) and the account the row must carry, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect<'a> {
    /// Held by the account: `in_progress` under it, or `uncertain`, unsettled and last claimed
    /// by it (a late result wins over the presumption of a dead claim).
    HeldBy(&'a AccountId),
    /// `uncertain` and not settled yet (no outcome).
    Unsettled,
    /// `pending` (a pinned target ended by `abandon_pinned`).
    Pending,
}

impl<'a> Expect<'a> {
    /// The status condition, to be joined with `AND`.
    pub(crate) fn condition(self) -> &'static str {
        match self {
            Expect::HeldBy(_) => {
                "(status = 'in_progress' OR (status = 'uncertain' AND outcome IS NULL))"
            }
            Expect::Unsettled => "(status = 'uncertain' AND outcome IS NULL)",
            Expect::Pending => "status = 'pending'",
        }
    }

    /// The account the row must carry (`account_id`), if any.
    pub(crate) fn account(self) -> Option<&'a str> {
        match self {
            Expect::HeldBy(account) => Some(account.as_str()),
            Expect::Unsettled | Expect::Pending => None,
        }
    }
}

/// `NotFound` when a write on one target changed no row.
pub(crate) fn found(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// A claim's driver error: a `random_id` another target already has is the caller's
/// (`Invalid`, as the memory store says), anything else the driver's.
pub(crate) fn claim_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Invalid(format!("random_id is taken: {db}"))
        }
        _ => Error::Database(e),
    }
}

/// A stored execution log row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LogRow {
    id: i64,
    task_id: i64,
    target_id: Option<i64>,
    account_id: String,
    action: String,
    status: String,
    outcome: Option<String>,
    error_kind: Option<String>,
    error_code: Option<String>,
    latency_ms: Option<i64>,
    created_at: DateTime<Utc>,
}

impl TryFrom<LogRow> for ExecutionLog {
    type Error = Error;

    fn try_from(r: LogRow) -> Result<Self> {
        Ok(ExecutionLog {
            id: r.id,
            entry: NewExecutionLog {
                task_id: TaskId::new(r.task_id),
                target_id: r.target_id.map(TargetId::new),
                account_id: account(r.account_id)?,
                action: r.action,
                status: parse("execution status", &r.status)?,
                outcome: parse_opt("outcome", r.outcome.as_deref())?,
                error_kind: r.error_kind,
                error_code: r.error_code,
                latency_ms: r.latency_ms.and_then(|v| u64::try_from(v).ok()),
                created_at: r.created_at,
            },
        })
    }
}

/// A stored lane.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LaneRow {
    task_id: i64,
    account_id: String,
    status: String,
    reason: Option<String>,
    cooldown_until: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    stats: Json<LaneStats>,
}

impl TryFrom<LaneRow> for Lane {
    type Error = Error;

    fn try_from(r: LaneRow) -> Result<Self> {
        Ok(Lane {
            task_id: TaskId::new(r.task_id),
            account_id: account(r.account_id)?,
            status: lane_status_from(&r.status)?,
            reason: r.reason,
            cooldown_until: r.cooldown_until,
            last_used_at: r.last_used_at,
            stats: r.stats.0,
        })
    }
}

/// One ledger event.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    at: DateTime<Utc>,
    kind: String,
    channel: String,
    not_before_next: DateTime<Utc>,
}

impl TryFrom<EventRow> for LedgerEvent {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Self> {
        Ok(LedgerEvent {
            at: r.at,
            kind: parse("action kind", &r.kind)?,
            channel: r.channel,
            not_before_next: r.not_before_next,
        })
    }
}

/// One ledger event with its account (a read of several accounts at once).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountEventRow {
    account_id: String,
    #[sqlx(flatten)]
    event: EventRow,
}

/// An account's health row with its account (a read of several accounts at once).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountStateOfRow {
    account_id: String,
    #[sqlx(flatten)]
    state: AccountStateRow,
}

/// The states of `accounts` in their order from their rows (an account without a row is
/// active).
pub(crate) fn states_in_order(
    accounts: &[AccountId],
    rows: Vec<AccountStateOfRow>,
) -> Result<Vec<AccountState>> {
    let mut by_account = HashMap::with_capacity(rows.len());
    for r in rows {
        by_account.insert(r.account_id, AccountState::try_from(r.state)?);
    }
    Ok(accounts
        .iter()
        .map(|a| {
            by_account
                .get(a.as_str())
                .cloned()
                .unwrap_or(AccountState::Active)
        })
        .collect())
}

/// The histories of `accounts` in their order from the rows of the three ledger tables read
/// for all of them at once: states, events (in time order per account) and lifetime counts
/// `(account, kind, count)` of the channel.
pub(crate) fn histories_in_order(
    accounts: &[AccountId],
    states: Vec<AccountStateOfRow>,
    events: Vec<AccountEventRow>,
    lifetime: Vec<(String, String, i64)>,
) -> Result<Vec<AccountHistory>> {
    let states = states_in_order(accounts, states)?;
    let mut recent: HashMap<String, Vec<LedgerEvent>> = HashMap::new();
    for r in events {
        recent
            .entry(r.account_id)
            .or_default()
            .push(LedgerEvent::try_from(r.event)?);
    }
    let mut counts: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for (account, kind, n) in lifetime {
        counts.entry(account).or_default().push((kind, n));
    }
    accounts
        .iter()
        .zip(states)
        .map(|(a, state)| {
            Ok(AccountHistory {
                state,
                recent: recent.get(a.as_str()).cloned().unwrap_or_default(),
                lifetime: lifetime_from(counts.get(a.as_str()).cloned().unwrap_or_default())?,
            })
        })
        .collect()
}

/// An account's health row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountStateRow {
    state: String,
    until: Option<DateTime<Utc>>,
    reason: Option<String>,
}

impl TryFrom<AccountStateRow> for AccountState {
    type Error = Error;

    fn try_from(r: AccountStateRow) -> Result<Self> {
        match (r.state.as_str(), r.until) {
            ("active", _) => Ok(AccountState::Active),
            ("cooling", Some(until)) => Ok(AccountState::CoolingDown {
                until,
                reason: r.reason.unwrap_or_default(),
            }),
            ("dead", _) => Ok(AccountState::Dead {
                reason: r.reason.unwrap_or_default(),
            }),
            (other, _) => Err(Error::Corrupt(format!("bad account state {other:?}"))),
        }
    }
}

/// The columns an [`AccountState`] is stored in: state, until, reason.
pub(crate) fn account_state_columns(
    state: &AccountState,
) -> (&'static str, Option<DateTime<Utc>>, Option<&str>) {
    match state {
        AccountState::Active => ("active", None, None),
        AccountState::CoolingDown { until, reason } => ("cooling", Some(*until), Some(reason)),
        AccountState::Dead { reason } => ("dead", None, Some(reason)),
    }
}

/// Lifetime totals as the ledger reads them.
pub(crate) fn lifetime_from(rows: Vec<(String, i64)>) -> Result<Vec<(ActionKind, u32)>> {
    rows.into_iter()
        .map(|(kind, n)| {
            Ok((
                parse("action kind", &kind)?,
                u32::try_from(n).unwrap_or(u32::MAX),
            ))
        })
        .collect()
}

/// A target ready to be written: its de-duplication key and storage names.
#[derive(Debug)]
pub(crate) struct TargetInsert {
    pub kind: &'static str,
    pub key: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub source: &'static str,
}

impl TargetInsert {
    /// The normalised identifier: the key without its kind prefix (`u:`, `i:`, `p:`), as
    /// [`TargetIdentifier::dedupe_key`] writes it.
    pub fn value(&self) -> &str {
        self.key.split_once(':').map_or("", |(_, value)| value)
    }
}

/// Drops repeated identifiers (the first one wins); returns the rows to write and how many
/// were dropped. One allocation per target (its key), which the check of repeats borrows.
pub(crate) fn dedupe_targets(targets: Vec<NewTarget>) -> (Vec<TargetInsert>, u64) {
    let total = targets.len();
    let keys: Vec<String> = targets.iter().map(|t| t.identifier.dedupe_key()).collect();
    let first: Vec<bool> = {
        let mut seen: HashSet<&str> = HashSet::with_capacity(total);
        keys.iter().map(|k| seen.insert(k.as_str())).collect()
    };
    let rows: Vec<_> = targets
        .into_iter()
        .zip(keys)
        .zip(first)
        .filter(|(_, first)| *first)
        .map(|((t, key), _)| TargetInsert {
            kind: t.identifier.kind(),
            key,
            first_name: t.first_name,
            last_name: t.last_name,
            full_name: t.full_name,
            email: t.email,
            source: t.source.as_str(),
        })
        .collect();
    let dropped = (total - rows.len()) as u64;
    (rows, dropped)
}

/// Tasks of one owner (`$1`) running now: what a capped transition counts.
pub(crate) const COUNT_RUNNING: &str =
    "SELECT count(*) FROM invite_tasks WHERE user_id = $1 AND status = 'IN_PROGRESS'";

/// Refuses a start when the owner already runs `max_running` tasks (`running`, as counted by
/// [`COUNT_RUNNING`]).
pub(crate) fn within_running_cap(running: i64, max_running: u64) -> Result<()> {
    let running = u64::try_from(running).unwrap_or(0);
    if running >= max_running {
        return Err(Error::RunningLimit { running });
    }
    Ok(())
}

/// The columns a transition writes, decided from the task as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransitionPlan {
    /// The status the compare-and-swap expects.
    pub expected: TaskStatus,
    pub status: TaskStatus,
    pub status_reason: Option<String>,
    pub start_requested: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl TransitionPlan {
    /// Applies the state machine; an illegal event is a conflict with the current status.
    ///
    /// `Start { scheduled_later: true }` keeps `PENDING` and records the start request; a real
    /// start sets `started_at` once; `Start` and `Resume` clear the reason, every other event
    /// stores the given one; entering a terminal status sets `finished_at`.
    pub fn new(
        task: &Task,
        event: TaskEvent,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let status = task
            .status
            .apply(event)
            .map_err(|e| Error::Conflict { current: e.from })?;
        let status_reason = match event {
            TaskEvent::Start { .. } | TaskEvent::Resume => None,
            _ => reason,
        };
        let start_requested = matches!(
            event,
            TaskEvent::Start {
                scheduled_later: true
            }
        );
        let started_at = if status == TaskStatus::InProgress {
            task.started_at.or(Some(now))
        } else {
            task.started_at
        };
        let finished_at = if status.is_terminal() {
            Some(now)
        } else {
            task.finished_at
        };
        Ok(Self {
            expected: task.status,
            status,
            status_reason,
            start_requested,
            started_at,
            finished_at,
        })
    }
}

/// Whether targets may be added to or a task changed in this status.
pub(crate) fn editable(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Pending | TaskStatus::Paused)
}

/// Conflict with a stored status name.
pub(crate) fn conflict(status: &str) -> Error {
    match status.parse() {
        Ok(current) => Error::Conflict { current },
        Err(_) => Error::Corrupt(format!("unknown task status {status:?}")),
    }
}

/// Progress from `(status, outcome, count)` groups.
pub(crate) fn progress_from(rows: Vec<(String, Option<String>, i64)>) -> Result<Progress> {
    let mut p = Progress::default();
    for (status, outcome, n) in rows {
        let status: TargetStatus = parse("target status", &status)?;
        *p.by_status.entry(status).or_default() += count(n);
        if let Some(outcome) = outcome {
            let outcome: Outcome = parse("outcome", &outcome)?;
            *p.by_outcome.entry(outcome).or_default() += count(n);
        }
    }
    Ok(p)
}

/// Statistics from the three grouped queries.
pub(crate) fn stats_from(
    per_account: Vec<(String, i64, i64, i64)>,
    per_error: Vec<(String, i64)>,
    per_hour: Vec<(DateTime<Utc>, i64)>,
) -> Result<TaskStats> {
    let mut stats = TaskStats::default();
    for (acc, attempts, successes, failures) in per_account {
        stats.per_account.insert(
            account(acc)?,
            AccountStats {
                attempts: count(attempts),
                successes: count(successes),
                failures: count(failures),
            },
        );
    }
    stats.per_error = per_error.into_iter().map(|(k, n)| (k, count(n))).collect();
    stats.per_hour = per_hour.into_iter().map(|(h, n)| (h, count(n))).collect();
    Ok(stats)
}

/// Pending counts for every requested task (0 when it has none).
pub(crate) fn pending_from(ids: &[TaskId], rows: Vec<(i64, i64)>) -> BTreeMap<TaskId, u64> {
    let mut map: BTreeMap<TaskId, u64> = ids.iter().map(|id| (*id, 0)).collect();
    for (id, n) in rows {
        map.insert(TaskId::new(id), count(n));
    }
    map
}

/// Suppression entries from `(identifier_key, reason, created_at)` rows.
pub(crate) fn suppression_entries(
    rows: Vec<(String, String, DateTime<Utc>)>,
) -> Result<Vec<SuppressionEntry>> {
    rows.into_iter()
        .map(|(key, reason, created_at)| {
            let identifier = TargetIdentifier::from_dedupe_key(&key)
                .ok_or_else(|| Error::Corrupt(format!("bad identifier key {key:?}")))?;
            Ok(SuppressionEntry {
                identifier,
                reason,
                created_at,
            })
        })
        .collect()
}

/// A log row's latency as the `BIGINT` the stores bind.
pub(crate) fn latency(log: &NewExecutionLog) -> Option<i64> {
    log.latency_ms.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use invite_core::domain::{Action, GroupRef, Platform, Priority};

    fn task(status: TaskStatus) -> Task {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Task {
            id: TaskId::new(1),
            user_id: UserId::new(1),
            name: "t".into(),
            platform: Platform::Sandbox,
            status,
            status_reason: Some("old".into()),
            priority: Priority::Medium,
            settings: TaskSettings {
                action: Action::Invite {
                    group: GroupRef::Username("group".into()),
                },
                accounts: None,
                add_to_contacts: false,
                dedupe_days: None,
            },
            scheduled_at: None,
            start_requested: false,
            created_at: t0,
            updated_at: t0,
            started_at: None,
            finished_at: None,
            group_key: None,
        }
    }

    #[test]
    fn plans_follow_the_state_machine() {
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        let later = TaskEvent::Start {
            scheduled_later: true,
        };
        let p = TransitionPlan::new(&task(TaskStatus::Pending), later, None, now).unwrap();
        assert_eq!(
            (p.status, p.start_requested, p.started_at),
            (TaskStatus::Pending, true, None)
        );
        let start = TaskEvent::Start {
            scheduled_later: false,
        };
        let p = TransitionPlan::new(&task(TaskStatus::Pending), start, None, now).unwrap();
        assert_eq!(p.started_at, Some(now));
        assert_eq!(p.status_reason, None);
        let p =
            TransitionPlan::new(&task(TaskStatus::Paused), TaskEvent::Cancel, None, now).unwrap();
        assert_eq!(p.finished_at, Some(now));
        let err = TransitionPlan::new(&task(TaskStatus::Completed), TaskEvent::Pause, None, now);
        assert!(matches!(
            err,
            Err(Error::Conflict {
                current: TaskStatus::Completed
            })
        ));
    }

    #[test]
    fn first_identifier_wins() {
        let parse =
            |s: &str| TargetIdentifier::parse(s, Platform::Telegram, &Default::default()).unwrap();
        let mut first = NewTarget::new(parse("@Someone"));
        first.first_name = Some("First".into());
        let mut second = NewTarget::new(parse("someone"));
        second.first_name = Some("Second".into());
        let (rows, dropped) = dedupe_targets(vec![first, second, NewTarget::new(parse("42"))]);
        assert_eq!(dropped, 1);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].first_name.as_deref(), Some("First"));
        assert_eq!((rows[0].kind, rows[0].value()), ("username", "someone"));
        assert_eq!((rows[1].kind, rows[1].value()), ("user_id", "42"));
        let (phones, _) = dedupe_targets(vec![NewTarget::new(parse("+79161234567"))]);
        assert_eq!(
            (phones[0].kind, phones[0].value()),
            ("phone", "+79161234567")
        );
    }
}
