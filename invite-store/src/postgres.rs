//! The PostgreSQL store: production. Claims use `FOR UPDATE SKIP LOCKED`, targets are written
//! with `COPY … FROM STDIN`, the ledger locks the account's state row,
//! and migrations take PostgreSQL's advisory lock so several processes may run them at once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use invite_core::async_trait;
use invite_core::domain::{
    AccountId, ExecutionLog, Lane, LaneStats, NewExecutionLog, NewTarget, NewTask, Platform,
    Target, TargetId, TargetIdentifier, Task, TaskEvent, TaskId, TaskStatus, TaskUpdate, UserId,
};
use invite_core::limits::LimitPolicy;
use invite_core::ports::{
    AccountHistory, AccountLeases, AccountState, AddedTargets, AttemptEnd, Claim, CleanupReport,
    CreatedTask, DatabaseId, Followups, LimitLedger, LogFilter, OutcomeRecord, Progress,
    RateDecision, Reservation, ReserveRequest, Settlement, StoreResult, SuppressionEntry,
    SuppressionList, TaskFilter, TaskStats, TaskStore, abandonment,
};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::PoolConfig;
use crate::error::{Error, Result, redact_url};
use crate::model::{
    AccountEventRow, AccountStateOfRow, AccountStateRow, CLAIM_STAGE_SQL, CONTACT_PART_SQL,
    COUNT_RUNNING, EventRow, Expect, FOLLOWUPS_SQL, LaneRow, LogRow, RELEASE_SQL, TO_UNCERTAIN,
    TargetRow, TaskCountsRow, TaskRow, TransitionPlan, UNPIN_SQL, account_state_columns,
    claim_error, conflict, dedupe_targets, editable, found, histories_in_order, latency,
    lifetime_from, pending_from, progress_from, sql_limit, stage_number, states_in_order,
    stats_from, within_running_cap,
};

/// The PostgreSQL migrations (`invite-store/migrations/postgres`).
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

const TASK_COLS: &str = "id, user_id, name, platform, status::text AS status, status_reason, \
     priority::text AS priority, settings, scheduled_at, start_requested, created_at, \
     updated_at, started_at, finished_at, group_key";

const TARGET_COLS: &str = "id, task_id, identifier_key, first_name, last_name, full_name, \
     email, source::text AS source, status, outcome, account_id, random_id, sender_account, \
     invite_outcome, contact_added, attempts, error_message, result, claimed_at, processed_at";

const LOG_COLS: &str = "id, task_id, target_id, account_id, action, status::text AS status, \
     outcome, error_kind, error_code, latency_ms, created_at";

const LANE_COLS: &str = "task_id, account_id, status, reason, cooldown_until, last_used_at, stats";

/// Tasks, targets, lanes, logs, ledger, suppression list and leases in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Shared by the clones of this store: its task store and ledger fuse their writes.
    database: DatabaseId,
}

impl PgStore {
    /// A store over an existing pool.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            database: DatabaseId::fresh(),
        }
    }

    /// Opens a pool to `url` (a `postgres://` URL from `DATABASE_URL`).
    pub async fn connect(url: &str, config: &PoolConfig) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|source| Error::InvalidUrl {
            url: redact_url(url),
            source,
        })?;
        // No ping before every acquire: a broken connection fails its statement and is
        // dropped, and `/health` probes the database on its own.
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_connections(config.max_connections.max(1))
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect {
                url: redact_url(url),
                source,
            })?;
        Ok(Self::new(pool))
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations (idempotent; serialised across processes by an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        migrate(&self.pool).await
    }
}

/// Applies the PostgreSQL migrations to `pool`.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

// ---- helpers ----

async fn fetch_task(conn: &mut PgConnection, user: UserId, id: TaskId) -> Result<Task> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM invite_tasks WHERE id = $1 AND user_id = $2"
    ))
    .bind(id.get())
    .bind(user.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.ok_or(Error::NotFound)?.try_into()
}

/// The task's status for its owner (locking the row when `lock`), or `NotFound`.
async fn task_status(
    conn: &mut PgConnection,
    user: UserId,
    id: TaskId,
    lock: bool,
) -> Result<String> {
    let sql = if lock {
        "SELECT status::text FROM invite_tasks WHERE id = $1 AND user_id = $2 FOR UPDATE"
    } else {
        "SELECT status::text FROM invite_tasks WHERE id = $1 AND user_id = $2"
    };
    sqlx::query_scalar(sql)
        .bind(id.get())
        .bind(user.get())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)
}

async fn ensure_owned(pool: &PgPool, user: UserId, id: TaskId) -> Result<()> {
    let mut conn = pool.acquire().await?;
    task_status(&mut conn, user, id, false).await.map(drop)
}

/// Bytes of `COPY` data sent per message.
const COPY_CHUNK: usize = 256 * 1024;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// `COPY`'s binary format: the signature, no flags, no header extension.
const COPY_BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Appends one field of `COPY`'s binary format: its length and its bytes (-1 for NULL). Text,
/// VARCHAR and enum values are their UTF-8 bytes; nothing is escaped or parsed.
fn copy_field(out: &mut Vec<u8>, value: Option<&[u8]>) -> Result<()> {
    match value {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(bytes) => {
            let len = i32::try_from(bytes.len())
                .map_err(|_| Error::Invalid(format!("a field of {} bytes", bytes.len())))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

/// Writes targets with one `COPY … FROM STDIN` straight into `invite_targets`, in order, as
/// `pending` rows, and adds them to the task's counts: this is the only writer of new targets
/// (the table has no insert trigger; see migration `20261205100000`). Identifiers repeated in
/// the batch are dropped first, then those already in the task (read
/// once, and only when the task has targets): the caller holds the task — created in its
/// transaction, or locked `FOR UPDATE` — so no other writer adds targets to it meanwhile.
async fn insert_targets(
    conn: &mut PgConnection,
    task: TaskId,
    targets: Vec<NewTarget>,
    now: DateTime<Utc>,
) -> Result<AddedTargets> {
    let (mut rows, mut duplicates) = dedupe_targets(targets);
    let has_targets: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM invite_targets WHERE task_id = $1)")
            .bind(task.get())
            .fetch_one(&mut *conn)
            .await?;
    if has_targets && !rows.is_empty() {
        let existing: HashSet<String> =
            sqlx::query_scalar("SELECT identifier_key FROM invite_targets WHERE task_id = $1")
                .bind(task.get())
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
        let before = rows.len();
        rows.retain(|r| !existing.contains(&r.key));
        duplicates += (before - rows.len()) as u64;
    }
    if rows.is_empty() {
        return Ok(AddedTargets {
            inserted: 0,
            duplicates,
        });
    }
    // Binary rows: the timestamps go as integers (parsing them as text cost a sixth of a
    // bulk COPY), the strings as they are.
    let mut prefix = Vec::with_capacity(14);
    prefix.extend_from_slice(&11i16.to_be_bytes());
    prefix.extend_from_slice(&8i32.to_be_bytes());
    prefix.extend_from_slice(&task.get().to_be_bytes());
    let micros = (now.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes();
    let mut copy = conn
        .copy_in_raw(
            "COPY invite_targets (task_id, identifier_kind, identifier, identifier_key, \
                 first_name, last_name, full_name, email, source, created_at, updated_at) \
             FROM STDIN WITH (FORMAT binary)",
        )
        .await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
    buf.extend_from_slice(COPY_BINARY_HEADER);
    for r in &rows {
        buf.extend_from_slice(&prefix);
        for field in [
            Some(r.kind),
            Some(r.value()),
            Some(r.key.as_str()),
            r.first_name.as_deref(),
            r.last_name.as_deref(),
            r.full_name.as_deref(),
            r.email.as_deref(),
            Some(r.source),
        ] {
            copy_field(&mut buf, field.map(str::as_bytes))?;
        }
        for _ in 0..2 {
            copy_field(&mut buf, Some(&micros))?;
        }
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    // The trailer: a row of -1 fields.
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf.as_slice()).await?;
    let inserted = copy.finish().await?;
    // The task's counts (its triggers count updates and deletes; inserts are counted here, in
    // this transaction, into this connection's slot as the triggers do).
    sqlx::query(
        "INSERT INTO invite_target_counts AS c (task_id, status, outcome, slot, n) \
         VALUES ($1, 'pending', '', pg_backend_pid() % 16, $2) \
         ON CONFLICT (task_id, status, outcome, slot) DO UPDATE SET n = c.n + EXCLUDED.n",
    )
    .bind(task.get())
    .bind(i64::try_from(inserted).map_err(|_| Error::Invalid(format!("{inserted} targets")))?)
    .execute(&mut *conn)
    .await?;
    Ok(AddedTargets {
        inserted,
        duplicates,
    })
}

async fn insert_log(conn: &mut PgConnection, log: &NewExecutionLog) -> Result<()> {
    sqlx::query(
        "INSERT INTO invite_execution_logs (task_id, target_id, account_id, action, status, \
             outcome, error_kind, error_code, latency_ms, created_at) \
         VALUES ($1, $2, $3, $4, $5::executionstatus, $6, $7, $8, $9, $10)",
    )
    .bind(log.task_id.get())
    .bind(log.target_id.map(TargetId::get))
    .bind(log.account_id.as_str())
    .bind(&log.action)
    .bind(log.status.as_str())
    .bind(log.outcome.map(|o| o.as_str()))
    .bind(&log.error_kind)
    .bind(&log.error_code)
    .bind(latency(log))
    .bind(log.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn tasks_of(rows: Vec<TaskRow>) -> Result<Vec<Task>> {
    rows.into_iter().map(Task::try_from).collect()
}

fn targets_of(rows: Vec<TargetRow>) -> Result<Vec<Target>> {
    rows.into_iter().map(Target::try_from).collect()
}

fn lanes_of_rows(rows: Vec<LaneRow>) -> Result<Vec<Lane>> {
    rows.into_iter().map(Lane::try_from).collect()
}

/// Replays an idempotent creation, or refuses a different request under the same key.
async fn replay(
    conn: &mut PgConnection,
    user: UserId,
    key: &str,
    hash: &str,
) -> Result<Option<CreatedTask>> {
    let found: Option<(String, i64)> = sqlx::query_as(
        "SELECT request_hash, task_id FROM invite_idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user.get())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((stored_hash, task_id)) = found else {
        return Ok(None);
    };
    if stored_hash != hash {
        return Err(Error::IdempotencyMismatch);
    }
    let task = fetch_task(conn, user, TaskId::new(task_id)).await?;
    Ok(Some(CreatedTask {
        task,
        inserted: 0,
        duplicates: 0,
        replayed: true,
    }))
}

async fn create_task(
    pool: &PgPool,
    task: NewTask,
    targets: Vec<NewTarget>,
    idempotency: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<CreatedTask> {
    let user = task.user_id;
    let mut tx = pool.begin().await?;
    if let Some((key, hash)) = idempotency
        && let Some(done) = replay(&mut tx, user, key, hash).await?
    {
        return Ok(done);
    }
    let row: TaskRow = sqlx::query_as(&format!(
        "INSERT INTO invite_tasks (user_id, name, platform, status, priority, settings, \
             channel_key, scheduled_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'PENDING', $4::taskpriority, $5, $6, $7, $8, $8) \
         RETURNING {TASK_COLS}"
    ))
    .bind(user.get())
    .bind(&task.name)
    .bind(task.platform.as_str())
    .bind(task.priority.as_str())
    .bind(Json(&task.settings))
    .bind(task.settings.action.channel_key())
    .bind(task.scheduled_at)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created: Task = row.try_into()?;
    if let Some((key, hash)) = idempotency {
        // A concurrent request with the same key waits here until the first one commits.
        let claimed = sqlx::query(
            "INSERT INTO invite_idempotency_keys (user_id, key, request_hash, task_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user.get())
        .bind(key)
        .bind(hash)
        .bind(created.id.get())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            let mut conn = pool.acquire().await?;
            return replay(&mut conn, user, key, hash)
                .await?
                .ok_or(Error::NotFound);
        }
    }
    let added = insert_targets(&mut tx, created.id, targets, now).await?;
    tx.commit().await?;
    Ok(CreatedTask {
        task: created,
        inserted: added.inserted,
        duplicates: added.duplicates,
        replayed: false,
    })
}

async fn transition(
    pool: &PgPool,
    user: UserId,
    id: TaskId,
    event: TaskEvent,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut conn = pool.acquire().await?;
    let task = fetch_task(&mut conn, user, id).await?;
    let plan = TransitionPlan::new(&task, event, reason, now)?;
    write_transition(&mut conn, user, id, &plan, now).await
}

/// A transition into `IN_PROGRESS` under the owner's cap. Every capped transition of one
/// owner takes the same transaction-scoped advisory lock first, so the count it reads cannot
/// change before its write commits.
async fn transition_capped(
    pool: &PgPool,
    user: UserId,
    id: TaskId,
    event: TaskEvent,
    max_running: u64,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut tx = pool.begin().await?;
    let task = fetch_task(&mut tx, user, id).await?;
    let plan = TransitionPlan::new(&task, event, None, now)?;
    if plan.status == TaskStatus::InProgress {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('invite_running_tasks', $1))")
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
        let running: i64 = sqlx::query_scalar(COUNT_RUNNING)
            .bind(user.get())
            .fetch_one(&mut *tx)
            .await?;
        within_running_cap(running, max_running)?;
    }
    let task = write_transition(&mut tx, user, id, &plan, now).await?;
    tx.commit().await?;
    Ok(task)
}

/// Writes a planned transition as a compare-and-swap on the status it was planned from.
async fn write_transition(
    conn: &mut PgConnection,
    user: UserId,
    id: TaskId,
    plan: &TransitionPlan,
    now: DateTime<Utc>,
) -> Result<Task> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "UPDATE invite_tasks SET status = $3::taskstatus, status_reason = $4, \
             start_requested = $5, started_at = $6, finished_at = $7, updated_at = $8 \
         WHERE id = $1 AND user_id = $2 AND status = $9::taskstatus \
         RETURNING {TASK_COLS}"
    ))
    .bind(id.get())
    .bind(user.get())
    .bind(plan.status.as_str())
    .bind(&plan.status_reason)
    .bind(plan.start_requested)
    .bind(plan.started_at)
    .bind(plan.finished_at)
    .bind(now)
    .bind(plan.expected.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(conflict(&task_status(conn, user, id, false).await?)),
    }
}

async fn update_task(
    pool: &PgPool,
    user: UserId,
    id: TaskId,
    update: TaskUpdate,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut conn = pool.acquire().await?;
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "UPDATE invite_tasks SET name = COALESCE($3, name), \
             priority = COALESCE($4::taskpriority, priority), \
             settings = COALESCE($5, settings), channel_key = COALESCE($6, channel_key), \
             group_key = CASE WHEN $6 IS NULL OR $6 = channel_key THEN group_key END, \
             scheduled_at = CASE WHEN $7 THEN $8 ELSE scheduled_at END, updated_at = $9 \
         WHERE id = $1 AND user_id = $2 AND status IN ('PENDING', 'PAUSED') \
         RETURNING {TASK_COLS}"
    ))
    .bind(id.get())
    .bind(user.get())
    .bind(update.name.as_deref())
    .bind(update.priority.map(|p| p.as_str()))
    .bind(update.settings.as_ref().map(Json))
    .bind(update.settings.as_ref().map(|s| s.action.channel_key()))
    .bind(update.scheduled_at.is_some())
    .bind(update.scheduled_at.flatten())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(conflict(&task_status(&mut conn, user, id, false).await?)),
    }
}

async fn delete_task(pool: &PgPool, user: UserId, id: TaskId) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let done = sqlx::query(
        "DELETE FROM invite_tasks WHERE id = $1 AND user_id = $2 AND status <> 'IN_PROGRESS'",
    )
    .bind(id.get())
    .bind(user.get())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(conflict(&task_status(&mut conn, user, id, false).await?));
    }
    Ok(())
}

async fn add_targets(
    pool: &PgPool,
    user: UserId,
    id: TaskId,
    targets: Vec<NewTarget>,
) -> Result<AddedTargets> {
    let mut tx = pool.begin().await?;
    // The row lock keeps the task from starting while its targets are being written.
    let status = task_status(&mut tx, user, id, true).await?;
    if !status.parse().is_ok_and(editable) {
        return Err(conflict(&status));
    }
    let added = insert_targets(&mut tx, id, targets, Utc::now()).await?;
    tx.commit().await?;
    Ok(added)
}

async fn list_tasks(pool: &PgPool, user: UserId, filter: &TaskFilter) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM invite_tasks \
         WHERE user_id = $1 AND ($2::taskstatus IS NULL OR status = $2::taskstatus) \
             AND ($3::text IS NULL OR platform = $3) \
         ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(user.get())
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.platform.map(Platform::as_str))
    .bind(sql_limit(filter.limit))
    .bind(i64::from(filter.offset))
    .fetch_all(pool)
    .await?;
    tasks_of(rows)
}

/// From the task's counters (`invite_target_counts`, kept by triggers with every change of a
/// target): a few rows whatever the number of targets. Ownership is checked in the same
/// statement; only a task without targets costs a second one (to tell it from another user's
/// task).
/// A task's counts by status and outcome (`NULL` for none), summed over the connections'
/// slots of `invite_target_counts`: the rows of the task whose id is the SQL expression
/// `task`.
fn task_counts(task: &str) -> String {
    format!(
        "SELECT status, NULLIF(outcome, '') AS outcome, sum(n)::bigint AS n \
         FROM invite_target_counts WHERE task_id = {task} \
         GROUP BY status, outcome HAVING sum(n) <> 0"
    )
}

async fn progress(pool: &PgPool, user: UserId, id: TaskId) -> Result<Progress> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(&format!(
        "SELECT status, outcome, n FROM ({counts}) g \
             WHERE EXISTS (SELECT 1 FROM invite_tasks WHERE id = $1 AND user_id = $2)",
        counts = task_counts("$1")
    ))
    .bind(id.get())
    .bind(user.get())
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        ensure_owned(pool, user, id).await?;
    }
    progress_from(rows)
}

/// The task and its counts in one statement: the task's row for its owner (no row:
/// `NotFound`) with its counters (`invite_target_counts`) aggregated into three parallel
/// arrays, read from one snapshot.
async fn task_progress(pool: &PgPool, user: UserId, id: TaskId) -> Result<(Task, Progress)> {
    let row: Option<TaskCountsRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS}, c.count_statuses, c.count_outcomes, c.counts \
         FROM invite_tasks t, LATERAL ( \
             SELECT array_agg(status) AS count_statuses, \
                 array_agg(outcome) AS count_outcomes, array_agg(n) AS counts \
             FROM ({}) g \
         ) c \
         WHERE t.id = $1 AND t.user_id = $2",
        task_counts("t.id")
    ))
    .bind(id.get())
    .bind(user.get())
    .fetch_optional(pool)
    .await?;
    row.ok_or(Error::NotFound)?.try_into()
}

async fn targets(
    pool: &PgPool,
    user: UserId,
    id: TaskId,
    limit: u32,
    offset: u32,
) -> Result<Vec<Target>> {
    ensure_owned(pool, user, id).await?;
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "SELECT {TARGET_COLS} FROM invite_targets WHERE task_id = $1 \
         ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind(id.get())
    .bind(sql_limit(limit))
    .bind(i64::from(offset))
    .fetch_all(pool)
    .await?;
    targets_of(rows)
}

async fn logs(
    pool: &PgPool,
    user: UserId,
    id: TaskId,
    filter: &LogFilter,
) -> Result<Vec<ExecutionLog>> {
    ensure_owned(pool, user, id).await?;
    let rows: Vec<LogRow> = sqlx::query_as(&format!(
        "SELECT {LOG_COLS} FROM invite_execution_logs \
         WHERE task_id = $1 \
             AND ($2::executionstatus IS NULL OR status = $2::executionstatus) \
             AND ($3::text IS NULL OR account_id = $3) \
             AND ($4::timestamptz IS NULL OR created_at >= $4) \
             AND ($5::timestamptz IS NULL OR created_at < $5) \
         ORDER BY id LIMIT $6 OFFSET $7"
    ))
    .bind(id.get())
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.account_id.as_ref().map(AccountId::as_str))
    .bind(filter.since)
    .bind(filter.until)
    .bind(sql_limit(filter.limit))
    .bind(i64::from(filter.offset))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ExecutionLog::try_from).collect()
}

async fn stats(pool: &PgPool, user: UserId, id: TaskId) -> Result<TaskStats> {
    ensure_owned(pool, user, id).await?;
    let per_account = sqlx::query_as(
        "SELECT account_id, count(*), \
             SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) \
         FROM invite_execution_logs WHERE task_id = $1 GROUP BY account_id",
    )
    .bind(id.get())
    .fetch_all(pool)
    .await?;
    let per_error = sqlx::query_as(
        "SELECT error_kind, count(*) FROM invite_execution_logs \
         WHERE task_id = $1 AND error_kind IS NOT NULL GROUP BY error_kind",
    )
    .bind(id.get())
    .fetch_all(pool)
    .await?;
    let per_hour = sqlx::query_as(
        "SELECT date_trunc('hour', created_at, 'UTC') AS hour, count(*) \
         FROM invite_execution_logs WHERE task_id = $1 GROUP BY hour",
    )
    .bind(id.get())
    .fetch_all(pool)
    .await?;
    stats_from(per_account, per_error, per_hour)
}

/// Ownership is checked like [`progress`] does.
async fn lanes(pool: &PgPool, user: UserId, id: TaskId) -> Result<Vec<Lane>> {
    let rows: Vec<LaneRow> = sqlx::query_as(&format!(
        "SELECT {LANE_COLS} FROM invite_task_accounts WHERE task_id = $1 \
             AND EXISTS (SELECT 1 FROM invite_tasks WHERE id = $1 AND user_id = $2) \
         ORDER BY account_id"
    ))
    .bind(id.get())
    .bind(user.get())
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        ensure_owned(pool, user, id).await?;
    }
    lanes_of_rows(rows)
}

async fn reached_since(
    pool: &PgPool,
    user: UserId,
    platform: Platform,
    identifier_keys: &[String],
    channel: &str,
    since: DateTime<Utc>,
) -> Result<std::collections::BTreeSet<String>> {
    if identifier_keys.is_empty() {
        return Ok(std::collections::BTreeSet::new());
    }
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT t.identifier_key FROM invite_targets t \
             JOIN invite_tasks k ON k.id = t.task_id \
         WHERE k.user_id = $1 AND k.platform = $2 AND (k.channel_key = $3 OR k.group_key = $3) \
             AND t.identifier_key = ANY($4) AND t.status = 'success' AND t.processed_at >= $5",
    )
    .bind(user.get())
    .bind(platform.as_str())
    .bind(channel)
    .bind(identifier_keys)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(keys.into_iter().collect())
}

async fn set_group_key(pool: &PgPool, id: TaskId, key: &str) -> Result<()> {
    let done = sqlx::query("UPDATE invite_tasks SET group_key = $2 WHERE id = $1")
        .bind(id.get())
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected();
    if done == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

async fn engine_tasks(pool: &PgPool) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM invite_tasks \
         WHERE status = 'IN_PROGRESS' \
             OR (status = 'PENDING' AND start_requested) \
         ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    tasks_of(rows)
}

async fn ensure_lanes(pool: &PgPool, id: TaskId, accounts: &[AccountId]) -> Result<()> {
    let mut tx = pool.begin().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM invite_tasks WHERE id = $1")
        .bind(id.get())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(Error::NotFound);
    }
    let names: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
    sqlx::query(
        "INSERT INTO invite_task_accounts (task_id, account_id, status, stats) \
         SELECT $1, a, 'active', $3 FROM UNNEST($2::text[]) AS a \
         ON CONFLICT (task_id, account_id) DO NOTHING",
    )
    .bind(id.get())
    .bind(names)
    .bind(Json(LaneStats::default()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn lanes_of(pool: &PgPool, ids: &[TaskId]) -> Result<Vec<Lane>> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let rows: Vec<LaneRow> = sqlx::query_as(&format!(
        "SELECT {LANE_COLS} FROM invite_task_accounts WHERE task_id = ANY($1) \
         ORDER BY task_id, account_id"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    lanes_of_rows(rows)
}

async fn save_lane(pool: &PgPool, lane: &Lane) -> Result<()> {
    let mut conn = pool.acquire().await?;
    found(write_lane(&mut conn, lane).await?)
}

/// Saves a lane; rows changed.
async fn write_lane(conn: &mut PgConnection, lane: &Lane) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE invite_task_accounts SET status = $3, reason = $4, cooldown_until = $5, \
             last_used_at = $6, stats = $7 \
         WHERE task_id = $1 AND account_id = $2",
    )
    .bind(lane.task_id.get())
    .bind(lane.account_id.as_str())
    .bind(lane.status.as_str())
    .bind(&lane.reason)
    .bind(lane.cooldown_until)
    .bind(lane.last_used_at)
    .bind(Json(&lane.stats))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// This store's database: its ledger shares it.
fn ledger_database(store: &PgStore) -> Option<DatabaseId> {
    Some(store.database)
}

/// From the tasks' counters: no count of the backlog.
async fn pending_counts(pool: &PgPool, ids: &[TaskId]) -> Result<BTreeMap<TaskId, u64>> {
    let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let rows = sqlx::query_as(
        "SELECT task_id, sum(n)::bigint FROM invite_target_counts \
         WHERE task_id = ANY($1) AND status = 'pending' GROUP BY task_id",
    )
    .bind(raw)
    .fetch_all(pool)
    .await?;
    Ok(pending_from(ids, rows))
}

/// From the tasks' counters: neither a count of the backlog nor an index walk over the dead
/// entries that claimed targets leave behind.
async fn with_pending(pool: &PgPool, ids: &[TaskId]) -> Result<BTreeSet<TaskId>> {
    let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    let found: Vec<i64> = sqlx::query_scalar(
        "SELECT task_id FROM invite_target_counts \
         WHERE task_id = ANY($1) AND status = 'pending' GROUP BY task_id HAVING sum(n) > 0",
    )
    .bind(raw)
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().map(TaskId::new).collect())
}

/// The `random_id` a claim gives a target with none, as
/// [`invite_core::ports::message_random_id`] computes it: the low 31 bits of the bigint `high`
/// (0 counts as 1) above the low 32 bits of `id`; NULL when `high` is NULL. Every operator is parenthesised: PostgreSQL gives `&`, `|` and `<<`
/// one precedence.
fn random_id_sql(high: &str, id: &str) -> String {
    format!(
        "(CASE WHEN {high} IS NOT NULL THEN \
             ((GREATEST(({high} & 2147483647), 1) << 32) | ({id} & 4294967295)) END)"
    )
}

async fn claim_target(pool: &PgPool, claim: &Claim) -> Result<Option<Target>> {
    let mut conn = pool.acquire().await?;
    claim_in(&mut conn, claim).await
}

/// Takes the next target of `claim` (see [`TaskStore::claim_target`]).
async fn claim_in(conn: &mut PgConnection, claim: &Claim) -> Result<Option<Target>> {
    let row: Option<TargetRow> = sqlx::query_as(&format!(
        "UPDATE invite_targets SET status = 'in_progress', account_id = $2, holder = $3, \
             claimed_at = $4, updated_at = $4, attempts = attempts + 1, \
             random_id = COALESCE(random_id, {random_id}) \
         WHERE id = (SELECT id FROM invite_targets \
                     WHERE task_id = $1 AND status = 'pending' \
                         AND EXISTS (SELECT 1 FROM invite_tasks \
                                     WHERE id = $1 AND status = 'IN_PROGRESS') \
                         AND (sender_account IS NULL OR sender_account = $2) \
                         AND {stage} \
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING {TARGET_COLS}",
        random_id = random_id_sql("$5::bigint", "id"),
        stage = CLAIM_STAGE_SQL,
    ))
    .bind(claim.task.get())
    .bind(claim.account.as_str())
    .bind(&claim.holder)
    .bind(claim.now)
    .bind(claim.random_high.map(i64::from))
    .bind(stage_number(claim.stage))
    .fetch_optional(&mut *conn)
    .await
    .map_err(claim_error)?;
    row.map(Target::try_from).transpose()
}

async fn followups(pool: &PgPool, id: TaskId, account: &AccountId) -> Result<Followups> {
    let (after_contact, after_invite): (bool, bool) = sqlx::query_as(FOLLOWUPS_SQL)
        .bind(id.get())
        .bind(account.as_str())
        .fetch_one(pool)
        .await?;
    Ok(Followups {
        after_contact,
        after_invite,
    })
}

/// A claimed target into the account's contacts, pinned to it; rows changed.
async fn write_contact_part(
    conn: &mut PgConnection,
    target: TargetId,
    account: &AccountId,
    at: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(CONTACT_PART_SQL)
        .bind(target.get())
        .bind(account.as_str())
        .bind(at)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// A pending target only in the contacts of an account that can no longer act, unpinned;
/// rows changed.
async fn write_unpin(conn: &mut PgConnection, target: TargetId) -> Result<u64> {
    Ok(sqlx::query(UNPIN_SQL)
        .bind(target.get())
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    Ok(pool.begin().await?)
}

/// Writes `record`'s outcome onto its target if it is as `expect` says; rows changed.
async fn write_outcome(
    conn: &mut PgConnection,
    record: &OutcomeRecord,
    expect: Expect<'_>,
) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET status = $3, outcome = $4, error_message = $5, result = $6, \
             processed_at = $7, updated_at = $7, account_id = $8, holder = NULL \
         WHERE id = $1 AND ($2::text IS NULL OR account_id = $2) AND {}",
        expect.condition()
    ))
    .bind(record.target_id.get())
    .bind(expect.account())
    .bind(record.outcome.target_status().as_str())
    .bind(record.outcome.as_str())
    .bind(&record.error_message)
    .bind(Json(&record.result))
    .bind(record.at)
    .bind(record.account_id.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Sends the target of `record` back to `pending` with its confirmed invite, pinned to the
/// record's account, if it is as `expect` says; rows changed.
async fn write_invite_part(
    conn: &mut PgConnection,
    record: &OutcomeRecord,
    expect: Expect<'_>,
) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET status = 'pending', invite_outcome = $3, \
             sender_account = $4, account_id = NULL, holder = NULL, updated_at = $5 \
         WHERE id = $1 AND ($2::text IS NULL OR account_id = $2) AND {}",
        expect.condition()
    ))
    .bind(record.target_id.get())
    .bind(expect.account())
    .bind(record.outcome.as_str())
    .bind(record.account_id.as_str())
    .bind(record.at)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// `in_progress` under `account` → `pending`, pin and `random_id` kept; rows changed.
async fn write_release(
    conn: &mut PgConnection,
    target: TargetId,
    account: &AccountId,
) -> Result<u64> {
    Ok(sqlx::query(RELEASE_SQL)
        .bind(target.get())
        .bind(account.as_str())
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// `in_progress` under `account` → `uncertain` (see [`TO_UNCERTAIN`]); rows changed.
async fn write_uncertain(
    conn: &mut PgConnection,
    target: TargetId,
    account: &AccountId,
) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET {TO_UNCERTAIN}, updated_at = $3 \
         WHERE id = $1 AND status = 'in_progress' AND account_id = $2"
    ))
    .bind(target.get())
    .bind(account.as_str())
    .bind(Utc::now())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// An unsettled `uncertain` target → `pending`, pin and `random_id` kept; rows changed.
async fn write_retry(conn: &mut PgConnection, target: TargetId) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET status = 'pending', account_id = NULL, updated_at = $2 \
         WHERE id = $1 AND {}",
        Expect::Unsettled.condition()
    ))
    .bind(target.get())
    .bind(Utc::now())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// The task's pending targets pinned to one of `gone` or last claimed before `pinned_before`
/// (or never), in id order, their rows locked until the transaction ends.
async fn pinned_to_abandon(
    conn: &mut PgConnection,
    id: TaskId,
    gone: &[AccountId],
    pinned_before: DateTime<Utc>,
) -> Result<Vec<TargetRow>> {
    let gone: Vec<&str> = gone.iter().map(AccountId::as_str).collect();
    Ok(sqlx::query_as(&format!(
        "SELECT {TARGET_COLS} FROM invite_targets \
         WHERE task_id = $1 AND status = 'pending' AND sender_account IS NOT NULL \
             AND (sender_account = ANY($2) OR claimed_at < $3 OR claimed_at IS NULL) \
         ORDER BY id FOR UPDATE"
    ))
    .bind(id.get())
    .bind(gone)
    .bind(pinned_before)
    .fetch_all(&mut *conn)
    .await?)
}

async fn heartbeat(pool: &PgPool, holder: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO invite_workers (holder, seen_at) VALUES ($1, $2) \
         ON CONFLICT (holder) \
         DO UPDATE SET seen_at = GREATEST(invite_workers.seen_at, EXCLUDED.seen_at)",
    )
    .bind(holder)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

async fn retire_holder(pool: &PgPool, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM invite_workers WHERE holder = $1")
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// `in_progress` targets whose holder has no heartbeat since `silent_since` become
/// `uncertain` (see [`TO_UNCERTAIN`]).
async fn recover_stale(pool: &PgPool, silent_since: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets t SET {TO_UNCERTAIN}, updated_at = $2 \
         WHERE status = 'in_progress' \
             AND NOT EXISTS (SELECT 1 FROM invite_workers w \
                             WHERE w.holder = t.holder AND w.seen_at >= $1)"
    ))
    .bind(silent_since)
    .bind(Utc::now())
    .execute(pool)
    .await?
    .rows_affected())
}

async fn uncertain_targets(pool: &PgPool, id: TaskId) -> Result<Vec<Target>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "SELECT {TARGET_COLS} FROM invite_targets WHERE task_id = $1 AND {} ORDER BY id",
        Expect::Unsettled.condition()
    ))
    .bind(id.get())
    .fetch_all(pool)
    .await?;
    targets_of(rows)
}

async fn cleanup(
    pool: &PgPool,
    logs_before: DateTime<Utc>,
    tasks_finished_before: DateTime<Utc>,
) -> Result<CleanupReport> {
    let logs = sqlx::query("DELETE FROM invite_execution_logs WHERE created_at < $1")
        .bind(logs_before)
        .execute(pool)
        .await?
        .rows_affected();
    let tasks = sqlx::query(
        "DELETE FROM invite_tasks \
         WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at < $1",
    )
    .bind(tasks_finished_before)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(CleanupReport { logs, tasks })
}

forward_task_store!(PgStore, PgPool, PgConnection);

// ---- ledger ----

async fn load_history(
    conn: &mut PgConnection,
    account: &AccountId,
    channel: &str,
    since: DateTime<Utc>,
    lock: bool,
) -> Result<AccountHistory> {
    let state_sql = if lock {
        "SELECT state, until, reason FROM invite_ledger_accounts WHERE account_id = $1 FOR UPDATE"
    } else {
        "SELECT state, until, reason FROM invite_ledger_accounts WHERE account_id = $1"
    };
    let mut state: Option<AccountStateRow> = sqlx::query_as(state_sql)
        .bind(account.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if lock && state.is_none() {
        // An account's first reservation: create its row, then lock it like any other (a
        // racer that created it first makes the insert a no-op; the lock then queues).
        sqlx::query(
            "INSERT INTO invite_ledger_accounts (account_id) VALUES ($1) \
             ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account.as_str())
        .execute(&mut *conn)
        .await?;
        state = sqlx::query_as(state_sql)
            .bind(account.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    }
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT at, kind, channel, not_before_next FROM invite_ledger_events \
         WHERE account_id = $1 AND at > $2 ORDER BY at, id",
    )
    .bind(account.as_str())
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    let lifetime: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count FROM invite_ledger_lifetime \
         WHERE account_id = $1 AND channel = $2 ORDER BY kind",
    )
    .bind(account.as_str())
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?;
    Ok(AccountHistory {
        state: state.map_or(Ok(AccountState::Active), AccountState::try_from)?,
        recent: events
            .into_iter()
            .map(TryFrom::try_from)
            .collect::<Result<_>>()?,
        lifetime: lifetime_from(lifetime)?,
    })
}

async fn states(pool: &PgPool, accounts: &[AccountId]) -> Result<Vec<AccountState>> {
    let names: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
    let rows: Vec<AccountStateOfRow> = sqlx::query_as(
        "SELECT account_id, state, until, reason FROM invite_ledger_accounts \
         WHERE account_id = ANY($1)",
    )
    .bind(&names)
    .fetch_all(pool)
    .await?;
    states_in_order(accounts, rows)
}

/// The histories of many accounts from one statement per ledger table.
async fn histories(
    pool: &PgPool,
    accounts: &[AccountId],
    channel: &str,
    since: DateTime<Utc>,
) -> Result<Vec<AccountHistory>> {
    let names: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
    let mut conn = pool.acquire().await?;
    let states: Vec<AccountStateOfRow> = sqlx::query_as(
        "SELECT account_id, state, until, reason FROM invite_ledger_accounts \
         WHERE account_id = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let events: Vec<AccountEventRow> = sqlx::query_as(
        "SELECT account_id, at, kind, channel, not_before_next FROM invite_ledger_events \
         WHERE account_id = ANY($1) AND at > $2 ORDER BY account_id, at, id",
    )
    .bind(&names)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    let lifetime: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT account_id, kind, count FROM invite_ledger_lifetime \
         WHERE account_id = ANY($1) AND channel = $2 ORDER BY account_id, kind",
    )
    .bind(&names)
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?;
    histories_in_order(accounts, states, events, lifetime)
}

async fn reserve(
    pool: &PgPool,
    request: &ReserveRequest,
    policy: &LimitPolicy,
) -> Result<RateDecision> {
    let mut tx = pool.begin().await?;
    let decision = decide(&mut tx, request, policy).await?;
    let RateDecision::Allowed { .. } = decision else {
        tx.rollback().await?;
        return Ok(decision);
    };
    let reservation = insert_reservation(&mut tx, request).await?;
    tx.commit().await?;
    Ok(RateDecision::Allowed {
        reservation: Some(reservation),
    })
}

/// A reservation and the claim of a target in one transaction: the claim only when the
/// reservation is allowed, the reservation only when something was claimed.
async fn reserve_and_claim(
    pool: &PgPool,
    request: &ReserveRequest,
    policy: &LimitPolicy,
    claim: &Claim,
) -> Result<(RateDecision, Option<Target>)> {
    let mut tx = pool.begin().await?;
    let decision = decide(&mut tx, request, policy).await?;
    let RateDecision::Allowed { .. } = decision else {
        tx.rollback().await?;
        return Ok((decision, None));
    };
    let Some(target) = claim_in(&mut tx, claim).await? else {
        tx.rollback().await?;
        return Ok((RateDecision::Allowed { reservation: None }, None));
    };
    let reservation = insert_reservation(&mut tx, request).await?;
    tx.commit().await?;
    Ok((
        RateDecision::Allowed {
            reservation: Some(reservation),
        },
        Some(target),
    ))
}

/// The policy's decision on `request`, with the account's row locked (created on its first
/// reservation) until `tx` ends: every reservation of this account queues here until the
/// previous one commits.
async fn decide(
    tx: &mut PgConnection,
    request: &ReserveRequest,
    policy: &LimitPolicy,
) -> Result<RateDecision> {
    let history = load_history(
        tx,
        &request.account_id,
        &request.channel,
        request.now - policy.window,
        true,
    )
    .await?;
    Ok(policy.decide(&history, request))
}

/// Records an allowed reservation: the reservation, its events and the lifetime counts in one
/// statement.
async fn insert_reservation(
    tx: &mut PgConnection,
    request: &ReserveRequest,
) -> Result<Reservation> {
    let account = request.account_id.as_str();
    let kinds: Vec<&str> = request.kinds.iter().map(|k| k.as_str()).collect();
    let reservation: i64 = sqlx::query_scalar(
        "WITH r AS (\
             INSERT INTO invite_ledger_reservations (account_id, created_at) VALUES ($1, $2) \
             RETURNING id), \
         e AS (\
             INSERT INTO invite_ledger_events \
                 (reservation_id, account_id, kind, channel, at, not_before_next) \
             SELECT r.id, $1, k, $3, $2, $4 FROM r, UNNEST($5::text[]) AS k), \
         l AS (\
             INSERT INTO invite_ledger_lifetime (account_id, channel, kind, count) \
             SELECT $1, $3, k, 1 FROM UNNEST($5::text[]) AS k \
             ON CONFLICT (account_id, channel, kind) \
             DO UPDATE SET count = invite_ledger_lifetime.count + 1) \
         SELECT id FROM r",
    )
    .bind(account)
    .bind(request.now)
    .bind(&request.channel)
    .bind(request.now + request.pause_after)
    .bind(&kinds)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Reservation(reservation))
}

/// Moves the accounts' events and lifetime counts from channel `from` to `into`, under each
/// account's lock (the one a reservation takes), all in one transaction.
async fn merge_channel(
    pool: &PgPool,
    accounts: &[AccountId],
    from: &str,
    into: &str,
) -> Result<u64> {
    if from == into || accounts.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
    let mut tx = pool.begin().await?;
    // The rows of accounts that never reserved do not exist: they have nothing to move.
    sqlx::query(
        "SELECT account_id FROM invite_ledger_accounts WHERE account_id = ANY($1) \
         ORDER BY account_id FOR UPDATE",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    let moved = sqlx::query(
        "UPDATE invite_ledger_events SET channel = $3 WHERE account_id = ANY($1) AND channel = $2",
    )
    .bind(&ids)
    .bind(from)
    .bind(into)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "WITH old AS (\
             DELETE FROM invite_ledger_lifetime WHERE account_id = ANY($1) AND channel = $2 \
             RETURNING account_id, kind, count) \
         INSERT INTO invite_ledger_lifetime (account_id, channel, kind, count) \
         SELECT account_id, $3, kind, count FROM old \
         ON CONFLICT (account_id, channel, kind) \
         DO UPDATE SET count = invite_ledger_lifetime.count + EXCLUDED.count",
    )
    .bind(&ids)
    .bind(from)
    .bind(into)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(moved)
}

async fn refund(pool: &PgPool, account: &AccountId, reservation: Reservation) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE invite_ledger_lifetime l SET count = GREATEST(l.count - e.n, 0) \
         FROM (SELECT channel, kind, count(*) AS n FROM invite_ledger_events \
               WHERE reservation_id = $1 AND account_id = $2 GROUP BY channel, kind) e \
         WHERE l.account_id = $2 AND l.channel = e.channel AND l.kind = e.kind",
    )
    .bind(reservation.0)
    .bind(account.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM invite_ledger_reservations WHERE id = $1 AND account_id = $2")
        .bind(reservation.0)
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The reservation's events move to `at`, and the pause after them moves with them (in one
/// statement: `SET` reads the old `at`).
async fn performed(
    pool: &PgPool,
    account: &AccountId,
    reservation: Reservation,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut conn = pool.acquire().await?;
    write_performed(&mut conn, account, reservation, at).await
}

/// [`performed`] on `conn` (in the transaction of an attempt's outcome).
async fn write_performed(
    conn: &mut PgConnection,
    account: &AccountId,
    reservation: Reservation,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE invite_ledger_events SET at = $3, not_before_next = not_before_next + ($3 - at) \
         WHERE reservation_id = $1 AND account_id = $2",
    )
    .bind(reservation.0)
    .bind(account.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn set_state(pool: &PgPool, account: &AccountId, state: &AccountState) -> Result<()> {
    let (name, until, reason) = account_state_columns(state);
    sqlx::query(
        "INSERT INTO invite_ledger_accounts (account_id, state, until, reason) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id) DO UPDATE \
         SET state = EXCLUDED.state, until = EXCLUDED.until, reason = EXCLUDED.reason",
    )
    .bind(account.as_str())
    .bind(name)
    .bind(until)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

#[async_trait]
impl LimitLedger for PgStore {
    async fn reserve(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
    ) -> StoreResult<RateDecision> {
        Ok(reserve(&self.pool, request, policy).await?)
    }

    async fn refund(&self, account: &AccountId, reservation: Reservation) -> StoreResult<()> {
        Ok(refund(&self.pool, account, reservation).await?)
    }

    async fn merge_channel(
        &self,
        accounts: &[AccountId],
        from: &str,
        into: &str,
    ) -> StoreResult<u64> {
        Ok(merge_channel(&self.pool, accounts, from, into).await?)
    }

    async fn performed(
        &self,
        account: &AccountId,
        reservation: Reservation,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        Ok(performed(&self.pool, account, reservation, at).await?)
    }

    fn database(&self) -> Option<DatabaseId> {
        Some(self.database)
    }

    async fn reserve_and_claim(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
        claim: &Claim,
    ) -> StoreResult<(RateDecision, Option<Target>)> {
        Ok(reserve_and_claim(&self.pool, request, policy, claim).await?)
    }

    async fn history(
        &self,
        account: &AccountId,
        channel: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<AccountHistory> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(load_history(&mut conn, account, channel, since, false).await?)
    }

    async fn histories(
        &self,
        accounts: &[AccountId],
        channel: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<AccountHistory>> {
        Ok(histories(&self.pool, accounts, channel, since).await?)
    }

    async fn states(&self, accounts: &[AccountId]) -> StoreResult<Vec<AccountState>> {
        Ok(states(&self.pool, accounts).await?)
    }

    async fn set_state(&self, account: &AccountId, state: &AccountState) -> StoreResult<()> {
        Ok(set_state(&self.pool, account, state).await?)
    }
}

// ---- suppression list ----

async fn suppress_people(
    pool: &PgPool,
    user: UserId,
    platform: Platform,
    people: &[TargetIdentifier],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let keys: Vec<String> = people.iter().map(TargetIdentifier::dedupe_key).collect();
    let added = sqlx::query(
        "INSERT INTO invite_suppressions (user_id, platform, identifier_key, reason, created_at) \
         SELECT $1, $2, t.key, $3, $4 FROM UNNEST($5::text[]) WITH ORDINALITY AS t(key, ord) \
         ORDER BY t.ord \
         ON CONFLICT (user_id, platform, identifier_key) DO NOTHING",
    )
    .bind(user.get())
    .bind(platform.as_str())
    .bind(reason)
    .bind(now)
    .bind(keys)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(added)
}

forward_suppression_list!(PgStore);

// ---- leases ----

#[async_trait]
impl AccountLeases for PgStore {
    async fn acquire(
        &self,
        account: &AccountId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO invite_account_leases (account_id, holder, expires_at) \
             VALUES ($1, $2, $4) \
             ON CONFLICT (account_id) DO UPDATE \
             SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE invite_account_leases.holder = EXCLUDED.holder \
                 OR invite_account_leases.expires_at < $3 \
             RETURNING holder",
        )
        .bind(account.as_str())
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::from)?;
        Ok(taken.is_some())
    }

    async fn release(&self, account: &AccountId, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM invite_account_leases WHERE account_id = $1 AND holder = $2")
            .bind(account.as_str())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(Error::from)?;
        Ok(())
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;
    use crate::sqlite::tests::RANDOM_ID_CASES;

    #[tokio::test]
    async fn the_sql_random_id_is_message_random_id() {
        let Some(mut conn) = crate::test_util::postgres_admin().await else {
            return;
        };
        for (high, id) in RANDOM_ID_CASES {
            let sql = format!("SELECT {}", random_id_sql("$1::bigint", "$2::bigint"));
            let got: Option<i64> = sqlx::query_scalar(&sql)
                .bind(i64::from(high))
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let want = invite_core::ports::message_random_id(high, TargetId::new(id));
            assert_eq!(got, Some(want), "high {high:#x}, id {id:#x}");
        }
        let sql = format!("SELECT {}", random_id_sql("$1::bigint", "7::bigint"));
        let none: Option<i64> = sqlx::query_scalar(&sql)
            .bind(None::<i64>)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(none, None, "no random high bits, no random_id");
    }
}
