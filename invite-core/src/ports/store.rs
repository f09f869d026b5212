//! `TaskStore`: tasks, targets, lanes and execution logs. Implementations:
//! `crate::memory::MemoryStore` (in core, the test double and the no-database mode) and the
//! PostgreSQL / SQLite stores of `invite-store`.
//!
//! Every read or write of user data takes the owner's [`UserId`]: isolation is enforced here,
//! not only in HTTP handlers. Engine-side calls (claims, outcomes, lanes) act on a task id the
//! engine obtained from [`TaskStore::engine_tasks`].

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Reservation;
use crate::domain::{
    AccountId, ExecutionLog, ExecutionStatus, Lane, NewExecutionLog, NewTarget, NewTask, Outcome,
    Platform, Target, TargetId, TargetStatus, Task, TaskEvent, TaskId, TaskStatus, TaskUpdate,
    UserId,
};

/// Errors of the persistence ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such row for this owner.
    #[error("not found")]
    NotFound,
    /// An illegal transition, or a write that found another status than expected.
    #[error("conflict: task is {current}")]
    Conflict {
        /// The status the task is in.
        current: TaskStatus,
    },
    /// The idempotency key was used before with another request body.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// The owner already runs as many tasks as [`TaskStore::transition_capped`] allows.
    #[error("the owner already runs {running} tasks")]
    RunningLimit {
        /// Tasks of the owner `IN_PROGRESS`.
        running: u64,
    },
    /// Data that breaks a rule of the store.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The database is unreachable or busy; trying again may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other failure of the backend.
    #[error("store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether trying again later may help.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The result of creating a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTask {
    /// The task.
    pub task: Task,
    /// Targets stored.
    pub inserted: u64,
    /// Targets merged into an earlier one with the same identifier.
    pub duplicates: u64,
    /// True when the idempotency key matched an earlier request (nothing new written).
    pub replayed: bool,
}

/// The result of adding targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AddedTargets {
    /// Targets stored.
    pub inserted: u64,
    /// Targets already in the task (or repeated in the batch).
    pub duplicates: u64,
}

/// Filters of a task list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Only this platform.
    pub platform: Option<Platform>,
    /// Page size.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

/// Filters of the execution log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this status.
    pub status: Option<ExecutionStatus>,
    /// Only this account.
    pub account_id: Option<AccountId>,
    /// Not before.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Page size.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

/// A target's end, recorded with its log row in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    /// The target.
    pub target_id: TargetId,
    /// The account that holds the claim.
    pub account_id: AccountId,
    /// Outcome (decides the target status).
    pub outcome: Outcome,
    /// Error code or explanation.
    pub error_message: Option<String>,
    /// Platform details.
    pub result: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
    /// The log row.
    pub log: NewExecutionLog,
}

/// Which part of a target's work a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimStage {
    /// Targets whose work has not started: the contact of a task that adds contacts, else
    /// the invite or the message (the invite of an `invite_and_message` task).
    First,
    /// Targets added to the claiming account's contacts, whose invite or message follows.
    AfterContact,
    /// `invite_and_message` targets whose invite is confirmed and whose message waits for the
    /// claiming account.
    Followup,
}

/// Which follow-up parts wait for an account in a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Followups {
    /// Targets in the account's contacts, waiting for their invite or message.
    pub after_contact: bool,
    /// Targets with a confirmed invite, waiting for their message.
    pub after_invite: bool,
}

/// A claim of the next target of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The task.
    pub task: TaskId,
    /// The acting account.
    pub account: AccountId,
    /// The worker process that holds the claim (its heartbeat keeps the claim alive).
    pub holder: String,
    /// Time of the claim.
    pub now: DateTime<Utc>,
    /// For a message: random high bits of the target's `random_id`, used when the target has
    /// none yet — see [`message_random_id`]. `None` for an invite.
    pub random_high: Option<u32>,
    /// Which part of the work.
    pub stage: ClaimStage,
}

/// The `random_id` a claim gives a message target that has none: 31 random bits above the
/// low 32 bits of the target's id (`high` is taken modulo 2³¹, and 0 counts as 1). Unique per
/// database by construction while target ids stay below 2³², whatever the random source —
/// so two processes, or a restart with the same seed, never give two messages one id — and
/// random across databases. Stores compute the same value in SQL.
pub fn message_random_id(high: u32, target: TargetId) -> i64 {
    let high = i64::from((high & 0x7FFF_FFFF).max(1));
    (high << 32) | (target.get() & 0xFFFF_FFFF)
}

/// Error code of a target ended because the account it is pinned to can no longer act.
pub const SENDER_UNAVAILABLE: &str = "SENDER_UNAVAILABLE";

/// The end of a `pending` target pinned to `sender` that can no longer act (see
/// [`TaskStore::abandon_pinned`]): a message that may have been sent is `uncertain`; an
/// `invite_and_message` target keeps its confirmed invite, its message reported as `uncertain`
/// if a send may have happened and `not_sent` otherwise. One definition for every store.
///
/// `None` for a target only added to the sender's contacts: nothing reached the person, so it
/// is unpinned and starts afresh with another account.
pub fn abandonment(
    target: &Target,
    sender: &AccountId,
    now: DateTime<Utc>,
) -> Option<OutcomeRecord> {
    if target.invite_outcome.is_none() && target.random_id.is_none() {
        return None;
    }
    let message = if target.random_id.is_some() {
        "uncertain"
    } else {
        "not_sent"
    };
    let outcome = target.invite_outcome.unwrap_or(Outcome::Uncertain);
    Some(OutcomeRecord {
        target_id: target.id,
        account_id: sender.clone(),
        outcome,
        error_message: Some(SENDER_UNAVAILABLE.to_owned()),
        result: serde_json::json!({
            "message": message,
            "settled_by": "sender_unavailable",
        }),
        at: now,
        log: NewExecutionLog {
            task_id: target.task_id,
            target_id: Some(target.id),
            account_id: sender.clone(),
            action: "abandon".to_owned(),
            status: ExecutionStatus::from_outcome(outcome),
            outcome: Some(outcome),
            error_kind: None,
            error_code: Some(SENDER_UNAVAILABLE.to_owned()),
            latency_ms: None,
            created_at: now,
        },
    })
}

/// How an `uncertain` target is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Not done: back to `pending` (a pin stays, so a message is retried through its sender
    /// with its `random_id`).
    Retry,
    /// The invite of an `invite_and_message` target is confirmed: back to `pending` for its
    /// message with the invite's outcome, pinned to the record's account, with its log row.
    InviteConfirmed(OutcomeRecord),
    /// The target's final outcome, with its log row.
    Final(OutcomeRecord),
}

/// The identity of one database handle, shared by the ports a store implements over it (see
/// [`TaskStore::ledger_database`]). Two handles of one database opened apart have different
/// identities: only ports that share one handle fuse their writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatabaseId(pub u64);

impl DatabaseId {
    /// A new identity, distinct from every other one of this process.
    pub fn fresh() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// The end of an attempt, written in one transaction by [`TaskStore::record_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEnd {
    /// The target's outcome and its log row, as [`TaskStore::record_outcome`] writes it — or,
    /// with `invite_part`, its confirmed invite as [`TaskStore::record_invite_part`] does.
    pub record: OutcomeRecord,
    /// The record is the confirmed invite of an `invite_and_message` target.
    pub invite_part: bool,
    /// The lane, as [`TaskStore::save_lane`] saves it.
    pub lane: Lane,
    /// The reservation whose write was issued at this time, moved as
    /// [`LimitLedger::performed`](super::LimitLedger::performed) does — only for a store whose
    /// [`TaskStore::ledger_database`] keeps the ledger.
    pub performed: Option<(Reservation, DateTime<Utc>)>,
}

/// Counts of a task's targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Targets per status.
    pub by_status: BTreeMap<TargetStatus, u64>,
    /// Finished targets per outcome.
    pub by_outcome: BTreeMap<Outcome, u64>,
}

impl Progress {
    /// All targets.
    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// Targets with the status.
    pub fn count(&self, status: TargetStatus) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Targets with no work left (success, failed, skipped).
    pub fn finished(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(s, _)| s.is_finished())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Per-account statistics of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStats {
    /// Log rows (attempts) by this account.
    pub attempts: u64,
    /// Successful rows.
    pub successes: u64,
    /// Failed rows.
    pub failures: u64,
}

/// Statistics of a task's execution log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    /// Per account.
    pub per_account: BTreeMap<AccountId, AccountStats>,
    /// Failed rows per error kind.
    pub per_error: BTreeMap<String, u64>,
    /// Log rows per hour (start of the hour, UTC).
    pub per_hour: BTreeMap<DateTime<Utc>, u64>,
}

/// What a cleanup removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Log rows removed.
    pub logs: u64,
    /// Finished tasks removed.
    pub tasks: u64,
}

/// Persistence of tasks and everything that hangs off them.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait TaskStore: Send + Sync + std::fmt::Debug {
    // ---- user side ----

    /// Creates a task with its targets in one transaction. With an idempotency key, a repeat
    /// of the same request returns the first task (`replayed`), another request with the same
    /// key is [`StoreError::IdempotencyMismatch`]. `request_hash` identifies the request body.
    async fn create_task<'a, 'b>(
        &self,
        task: NewTask,
        targets: Vec<NewTarget>,
        idempotency: Option<(&'a str, &'b str)>,
        now: DateTime<Utc>,
    ) -> StoreResult<CreatedTask>;

    /// One task of the owner.
    async fn get_task(&self, user: UserId, id: TaskId) -> StoreResult<Task>;

    /// The owner's tasks, newest first.
    async fn list_tasks(&self, user: UserId, filter: &TaskFilter) -> StoreResult<Vec<Task>>;

    /// Changes a task while it is `PENDING` or `PAUSED` (else `Conflict`).
    async fn update_task(
        &self,
        user: UserId,
        id: TaskId,
        update: TaskUpdate,
        now: DateTime<Utc>,
    ) -> StoreResult<Task>;

    /// Deletes a task that is not `IN_PROGRESS` (else `Conflict`), with its targets and logs.
    async fn delete_task(&self, user: UserId, id: TaskId) -> StoreResult<()>;

    /// Applies a state-machine event as a compare-and-swap on the current status.
    async fn transition(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<Task>;

    /// [`transition`](Self::transition) for an event that may set the task running (a start
    /// or a resume): when the task would become `IN_PROGRESS`, it is taken only while the
    /// owner has fewer than `max_running` tasks `IN_PROGRESS` (else `RunningLimit`), checked
    /// and written atomically with respect to every other caller, in any process.
    async fn transition_capped(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        max_running: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<Task>;

    /// Appends targets (all or nothing), merging duplicates; only while `PENDING` or `PAUSED`.
    async fn add_targets(
        &self,
        user: UserId,
        id: TaskId,
        targets: Vec<NewTarget>,
    ) -> StoreResult<AddedTargets>;

    /// Target counts.
    async fn progress(&self, user: UserId, id: TaskId) -> StoreResult<Progress>;

    /// The task and its target counts, read together for its owner (`NotFound` otherwise):
    /// what [`get_task`](Self::get_task) and [`progress`](Self::progress) give, from one
    /// statement where the backend allows it (a status request's hot path). The counts are
    /// those of the task as returned, never older than the call.
    async fn task_progress(&self, user: UserId, id: TaskId) -> StoreResult<(Task, Progress)>;

    /// The task's targets in id order (the report).
    async fn targets(
        &self,
        user: UserId,
        id: TaskId,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<Target>>;

    /// The task's execution log, oldest first.
    async fn logs(
        &self,
        user: UserId,
        id: TaskId,
        filter: &LogFilter,
    ) -> StoreResult<Vec<ExecutionLog>>;

    /// Statistics of the task's execution log.
    async fn stats(&self, user: UserId, id: TaskId) -> StoreResult<TaskStats>;

    /// The task's lanes.
    async fn lanes(&self, user: UserId, id: TaskId) -> StoreResult<Vec<Lane>>;

    /// Which of these people (identifier keys) this user already reached successfully in the
    /// same channel since `since`, in any task. One query for the whole list. A task is in
    /// `channel` when its channel as written
    /// ([`Action::channel_key`](crate::domain::Action::channel_key)) or its group's recorded
    /// stable key ([`Task::group_key`], see [`TaskStore::set_group_key`]) is `channel`.
    async fn reached_since(
        &self,
        user: UserId,
        platform: Platform,
        identifier_keys: &[String],
        channel: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<BTreeSet<String>>;

    // ---- engine side ----

    /// Records the stable key of the task's group ([`Task::group_key`]), resolved by the engine.
    async fn set_group_key(&self, id: TaskId, key: &str) -> StoreResult<()>;

    /// Tasks the engine should look at: `IN_PROGRESS`, and `PENDING` tasks whose start was
    /// requested (`start_requested`) — the engine starts those when `scheduled_at` comes.
    async fn engine_tasks(&self, now: DateTime<Utc>) -> StoreResult<Vec<Task>>;

    /// Creates the missing lanes of a task.
    async fn ensure_lanes(&self, id: TaskId, accounts: &[AccountId]) -> StoreResult<()>;

    /// Lanes of all given tasks.
    async fn lanes_of(&self, ids: &[TaskId]) -> StoreResult<Vec<Lane>>;

    /// Saves a lane's status, cooldown, last use and counters.
    async fn save_lane(&self, lane: &Lane) -> StoreResult<()>;

    /// Number of pending targets per task.
    async fn pending_counts(&self, ids: &[TaskId]) -> StoreResult<BTreeMap<TaskId, u64>>;

    /// The tasks among `ids` that have a pending target (the engine asks on every pass, so
    /// the SQL stores answer from an index probe per task instead of counting the backlog).
    /// The default derives it from [`TaskStore::pending_counts`].
    async fn with_pending(&self, ids: &[TaskId]) -> StoreResult<BTreeSet<TaskId>> {
        Ok(self
            .pending_counts(ids)
            .await?
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(id, _)| id)
            .collect())
    }

    /// Atomically takes the next pending target of the task for `claim.account`:
    /// `pending → in_progress`, with the account, the holder, the claim's own time and (for a
    /// message) a `random_id` (see [`Claim::random_high`]). Only while the task is
    /// `IN_PROGRESS`, checked in the same statement: a pause or cancel stops new claims at
    /// once. Targets pinned to another account ([`Target::sender`]) are never taken, and
    /// [`ClaimStage`] picks which part of the work is taken.
    async fn claim_target(&self, claim: &Claim) -> StoreResult<Option<Target>>;

    /// Which follow-up parts of the task's `pending` targets wait for `account`.
    async fn followups(&self, id: TaskId, account: &AccountId) -> StoreResult<Followups>;

    /// Records a claimed target's outcome and its log row in one transaction. The target must
    /// be held by this account: `in_progress`, or `uncertain` and not yet settled (a late
    /// result of a claim that was presumed dead wins over the presumption). Fails with
    /// `NotFound` otherwise.
    async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()>;

    /// Records the confirmed invite of an `invite_and_message` target with its log row: the
    /// target goes back to `pending` with [`Target::invite_outcome`] set, pinned to the account
    /// for its message. Fails with `NotFound` like [`TaskStore::record_outcome`].
    async fn record_invite_part(&self, record: &OutcomeRecord) -> StoreResult<()>;

    /// Records that a claimed target was added to the account's contacts, with its log row:
    /// the target goes back to `pending` pinned to the account, which does its invite or
    /// message next (after its own limit check). Fails with `NotFound` unless the account holds
    /// it `in_progress`.
    async fn record_contact_part(
        &self,
        target: TargetId,
        account: &AccountId,
        log: NewExecutionLog,
    ) -> StoreResult<()>;

    /// Puts a claimed target back to `pending`, untouched (with an optional log row). A pin
    /// stays.
    async fn release_target(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()>;

    /// Turns a claimed target whose write may have reached the platform into `uncertain`
    /// (to be settled), with an optional log row. A target with a `random_id` is pinned to the
    /// account ([`Target::sender`]): its message is only ever retried through it.
    async fn mark_uncertain(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()>;

    /// Tells that the worker `holder` is alive at `now` (claims of live holders are never
    /// recovered).
    async fn heartbeat(&self, holder: &str, now: DateTime<Utc>) -> StoreResult<()>;

    /// Forgets a holder that stops (its claims, if any, become recoverable at once).
    async fn retire_holder(&self, holder: &str) -> StoreResult<()>;

    /// Turns `in_progress` targets whose holder has not renewed its heartbeat since
    /// `silent_since` (or never did) into `uncertain`, pinning those with a `random_id` to
    /// their account like [`TaskStore::mark_uncertain`]; returns how many.
    async fn recover_stale(&self, silent_since: DateTime<Utc>) -> StoreResult<u64>;

    /// The task's `uncertain` targets still to be settled (those with no outcome yet).
    async fn uncertain_targets(&self, id: TaskId) -> StoreResult<Vec<Target>>;

    /// Settles an `uncertain` target that has no outcome yet.
    async fn settle_uncertain(&self, target: TargetId, settlement: Settlement) -> StoreResult<()>;

    /// Ends the task's `pending` targets pinned to an account that can no longer act: pinned
    /// to one of `gone`, or pinned and last claimed before `pinned_before` (the horizon). A
    /// message that may have been sent ends `uncertain` (outcome `uncertain`); an
    /// `invite_and_message` target whose invite is confirmed keeps the invite's outcome, its
    /// message reported as not confirmed. Each gets a log row at `now`. A target that only
    /// went into that account's contacts is unpinned and starts afresh (see [`abandonment`]).
    /// Returns how many ended.
    async fn abandon_pinned(
        &self,
        id: TaskId,
        gone: &[AccountId],
        pinned_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Appends a log row that finishes no target.
    async fn append_log(&self, log: NewExecutionLog) -> StoreResult<()>;

    /// The database this store keeps, when it keeps a [`LimitLedger`](super::LimitLedger)
    /// there too that answers the same [`LimitLedger::database`](super::LimitLedger::database).
    /// `None` (the default): the store keeps no ledger, and every write stands alone.
    fn ledger_database(&self) -> Option<DatabaseId> {
        None
    }

    /// Writes the end of an attempt in one transaction: the record (as
    /// [`record_outcome`](Self::record_outcome) or
    /// [`record_invite_part`](Self::record_invite_part), failing alike with `NotFound` and
    /// then writing nothing), the lane (as [`save_lane`](Self::save_lane)) and, with
    /// [`AttemptEnd::performed`], the ledger's `performed` of the reservation — which only a
    /// store whose [`ledger_database`](Self::ledger_database) is `Some` can do. The default
    /// writes the record, then the lane, and refuses `performed`.
    async fn record_attempt(&self, end: &AttemptEnd) -> StoreResult<()> {
        if end.performed.is_some() {
            return Err(StoreError::Invalid(
                "this store keeps no ledger: performed goes to the account manager".to_owned(),
            ));
        }
        if end.invite_part {
            self.record_invite_part(&end.record).await?;
        } else {
            self.record_outcome(&end.record).await?;
        }
        self.save_lane(&end.lane).await
    }

    /// Removes logs older than `logs_before` and terminal tasks finished before
    /// `tasks_finished_before`.
    async fn cleanup(
        &self,
        logs_before: DateTime<Utc>,
        tasks_finished_before: DateTime<Utc>,
    ) -> StoreResult<CleanupReport>;
}
