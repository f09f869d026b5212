//! The SQLite store: the embedded default (a file, or memory for tests and demos).
//!
//! SQLite has one writer at a time, so every read-then-write transaction starts with
//! `BEGIN IMMEDIATE` (it takes the write lock up front, waiting up to the busy timeout), and a
//! claim is one `UPDATE … WHERE id = (SELECT …) RETURNING …` statement. Timestamps are stored
//! as fixed-width UTC text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) so comparisons in SQL are chronological. Lists travel as
//! one JSON parameter read with `json_each`; targets are written with multi-row `VALUES` in
//! chunks under SQLite's bind-parameter limit.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
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
use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::types::Json;

use crate::PoolConfig;
use crate::error::{Error, Result, is_sqlite_busy, redact_url};
use crate::model::{
    AccountEventRow, AccountStateOfRow, AccountStateRow, CLAIM_STAGE_SQL, CONTACT_PART_SQL,
    COUNT_RUNNING, EventRow, Expect, FOLLOWUPS_SQL, LaneRow, LogRow, RELEASE_SQL, TO_UNCERTAIN,
    TargetInsert, TargetRow, TaskRow, TransitionPlan, UNPIN_SQL, account_state_columns,
    claim_error, conflict, dedupe_targets, editable, found, histories_in_order, json, latency,
    lifetime_from, pending_from, progress_from, sql_limit, stage_number, states_in_order,
    stats_from, within_running_cap,
};

/// The SQLite migrations (`invite-store/migrations/sqlite`).
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite's default maximum number of bind parameters.
const MAX_PARAMS: usize = 32_766;
/// Bind parameters per target row in a multi-row insert (the task id and time are shared).
const PARAMS_PER_TARGET: usize = 8;
/// Target rows per statement.
const TARGET_CHUNK: usize = (MAX_PARAMS - 2) / PARAMS_PER_TARGET;
const _: () = assert!(2 + TARGET_CHUNK * PARAMS_PER_TARGET <= MAX_PARAMS);

const TASK_COLS: &str = "id, user_id, name, platform, status, status_reason, priority, settings, \
     scheduled_at, start_requested, created_at, updated_at, started_at, finished_at, group_key";

const TARGET_COLS: &str = "id, task_id, identifier_key, first_name, last_name, full_name, \
     email, source, status, outcome, account_id, random_id, sender_account, invite_outcome, \
     contact_added, attempts, error_message, result, claimed_at, processed_at";

const LOG_COLS: &str = "id, task_id, target_id, account_id, action, status, outcome, \
     error_kind, error_code, latency_ms, created_at";

const LANE_COLS: &str = "task_id, account_id, status, reason, cooldown_until, last_used_at, stats";

const IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// A timestamp as stored: `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fixed width, so text order is time
/// order).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

/// A JSON array parameter for `json_each`.
fn json_list<T: serde::Serialize>(items: &[T]) -> Result<String> {
    json("list", &items)
}

/// Tasks, targets, lanes, logs, ledger, suppression list and leases in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Shared by the clones of this store: its task store and ledger fuse their writes.
    database: DatabaseId,
}

impl SqliteStore {
    /// A store over an existing pool (which should have foreign keys on and a busy timeout).
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            database: DatabaseId::fresh(),
        }
    }

    /// Opens `url` (`sqlite::memory:`, `sqlite://invite.db`, `sqlite:path?mode=rwc`), creating
    /// the file if needed. A file uses WAL; memory is one connection that lives as long as the
    /// pool. The acquire timeout doubles as SQLite's busy timeout.
    pub async fn connect(url: &str, config: &PoolConfig) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| Error::InvalidUrl {
                url: redact_url(url),
                source,
            })?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(config.acquire_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // Each connection to a private memory database would see its own database: keep
            // exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
                .max_connections(config.max_connections.max(1))
                .min_connections(config.min_connections)
                .after_release(|conn, _| Box::pin(reusable(conn)))
        };
        let options = if in_memory {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        let pool = pool.acquire_timeout(config.acquire_timeout);
        // Switching a new file to WAL needs an exclusive lock, and SQLite answers `BUSY` to a
        // second process doing the same at the same moment without waiting for the busy
        // timeout: retry within the acquire timeout.
        let deadline = std::time::Instant::now() + config.acquire_timeout;
        let mut pause = std::time::Duration::from_millis(5);
        let pool = loop {
            match pool.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(source)
                    if is_sqlite_busy(&source) && std::time::Instant::now() + pause < deadline =>
                {
                    tracing::debug!(error = %source, "database file busy while opening; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                Err(source) => {
                    return Err(Error::Connect {
                        url: redact_url(url),
                        source,
                    });
                }
            }
        };
        Ok(Self::new(pool))
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the migrations (idempotent; safe when several processes start together).
    pub async fn migrate(&self) -> Result<()> {
        migrate(&self.pool).await
    }
}

/// Whether a connection coming back to the pool may serve again: not when sqlx still counts a
/// transaction open on it.
///
/// sqlx counts the transactions it opened on a connection and only lowers the count when its
/// `COMMIT` or `ROLLBACK` succeeds. When SQLite ends a transaction by itself (a `COMMIT` or a
/// statement failing with `SQLITE_FULL` or an I/O error may roll the whole transaction back),
/// the `ROLLBACK` of the dropped `Transaction` then fails ("no transaction is active"), the
/// count stays at 1, and every later `begin_with` on that connection fails with "attempted to
/// call begin_with at non-zero transaction depth". Such a connection is closed (and replaced)
/// instead. The ping first lets the connection's worker run the rollback that a dropped
/// transaction queued, so the count is read after it.
///
/// A memory database is not checked: it lives in its one connection, and closing that would
/// drop the database.
async fn reusable(conn: &mut SqliteConnection) -> std::result::Result<bool, sqlx::Error> {
    conn.ping().await?;
    let reusable = !conn.is_in_transaction();
    if !reusable {
        tracing::warn!("a SQLite connection came back inside a transaction; closing it");
    }
    Ok(reusable)
}

/// Applies the SQLite migrations to `pool`.
///
/// SQLite has no advisory lock: when several processes migrate one file at once, a loser's
/// attempt fails on a migration another one applied first (its bookkeeping row, or the change
/// itself: "duplicate column name"). It then runs again from what is applied by then (the busy
/// timeout makes it wait for the winner's transaction). Every failed attempt is caused by a
/// migration someone else applied, so at most one attempt per migration fails.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    let attempts = MIGRATOR.migrations.len() + 1;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < attempts => {
                tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

// ---- helpers ----

async fn fetch_task(conn: &mut SqliteConnection, user: UserId, id: TaskId) -> Result<Task> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM invite_tasks WHERE id = $1 AND user_id = $2"
    ))
    .bind(id.get())
    .bind(user.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.ok_or(Error::NotFound)?.try_into()
}

async fn task_status(conn: &mut SqliteConnection, user: UserId, id: TaskId) -> Result<String> {
    sqlx::query_scalar("SELECT status FROM invite_tasks WHERE id = $1 AND user_id = $2")
        .bind(id.get())
        .bind(user.get())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)
}

async fn ensure_owned(pool: &SqlitePool, user: UserId, id: TaskId) -> Result<()> {
    let mut conn = pool.acquire().await?;
    task_status(&mut conn, user, id).await.map(drop)
}

/// Writes targets with multi-row `VALUES`, [`TARGET_CHUNK`] rows per statement; identifiers
/// already in the task (or repeated in the batch) are counted, not written.
async fn insert_targets(
    conn: &mut SqliteConnection,
    task: TaskId,
    targets: Vec<NewTarget>,
    now: DateTime<Utc>,
) -> Result<AddedTargets> {
    let (rows, mut duplicates) = dedupe_targets(targets);
    let now = ts(now);
    let mut inserted = 0;
    for chunk in rows.chunks(TARGET_CHUNK) {
        let sql = insert_targets_sql(chunk.len());
        let mut query = sqlx::query(&sql).bind(task.get()).bind(&now);
        for t in chunk {
            let TargetInsert {
                kind,
                key,
                first_name,
                last_name,
                full_name,
                email,
                source,
            } = t;
            query = query
                .bind(*kind)
                .bind(t.value())
                .bind(key)
                .bind(first_name)
                .bind(last_name)
                .bind(full_name)
                .bind(email)
                .bind(*source);
        }
        let done = query.execute(&mut *conn).await?.rows_affected();
        inserted += done;
        duplicates += chunk.len() as u64 - done;
    }
    Ok(AddedTargets {
        inserted,
        duplicates,
    })
}

fn insert_targets_sql(rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(100 + rows * 64);
    sql.push_str(
        "INSERT INTO invite_targets (task_id, created_at, updated_at, identifier_kind, \
         identifier, identifier_key, first_name, last_name, full_name, email, source) VALUES ",
    );
    for row in 0..rows {
        let p = 3 + row * PARAMS_PER_TARGET;
        if row > 0 {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "($1,$2,$2,${},${},${},${},${},${},${},${})",
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7
        );
    }
    sql.push_str(" ON CONFLICT (task_id, identifier_key) DO NOTHING");
    sql
}

async fn insert_log(conn: &mut SqliteConnection, log: &NewExecutionLog) -> Result<()> {
    sqlx::query(
        "INSERT INTO invite_execution_logs (task_id, target_id, account_id, action, status, \
             outcome, error_kind, error_code, latency_ms, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
    .bind(ts(log.created_at))
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

async fn replay(
    conn: &mut SqliteConnection,
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
    pool: &SqlitePool,
    task: NewTask,
    targets: Vec<NewTarget>,
    idempotency: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<CreatedTask> {
    let user = task.user_id;
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    if let Some((key, hash)) = idempotency
        && let Some(done) = replay(&mut tx, user, key, hash).await?
    {
        return Ok(done);
    }
    let row: TaskRow = sqlx::query_as(&format!(
        "INSERT INTO invite_tasks (user_id, name, platform, status, priority, settings, \
             channel_key, scheduled_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8, $8) \
         RETURNING {TASK_COLS}"
    ))
    .bind(user.get())
    .bind(&task.name)
    .bind(task.platform.as_str())
    .bind(task.priority.as_str())
    .bind(Json(&task.settings))
    .bind(task.settings.action.channel_key())
    .bind(ts_opt(task.scheduled_at))
    .bind(ts(now))
    .fetch_one(&mut *tx)
    .await?;
    let created: Task = row.try_into()?;
    if let Some((key, hash)) = idempotency {
        sqlx::query(
            "INSERT INTO invite_idempotency_keys (user_id, key, request_hash, task_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.get())
        .bind(key)
        .bind(hash)
        .bind(created.id.get())
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
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
    pool: &SqlitePool,
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

/// A transition into `IN_PROGRESS` under the owner's cap: the count and the write share one
/// `BEGIN IMMEDIATE` transaction, which no other writer can interleave with.
async fn transition_capped(
    pool: &SqlitePool,
    user: UserId,
    id: TaskId,
    event: TaskEvent,
    max_running: u64,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    let task = fetch_task(&mut tx, user, id).await?;
    let plan = TransitionPlan::new(&task, event, None, now)?;
    if plan.status == TaskStatus::InProgress {
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
    conn: &mut SqliteConnection,
    user: UserId,
    id: TaskId,
    plan: &TransitionPlan,
    now: DateTime<Utc>,
) -> Result<Task> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "UPDATE invite_tasks SET status = $3, status_reason = $4, start_requested = $5, \
             started_at = $6, finished_at = $7, updated_at = $8 \
         WHERE id = $1 AND user_id = $2 AND status = $9 \
         RETURNING {TASK_COLS}"
    ))
    .bind(id.get())
    .bind(user.get())
    .bind(plan.status.as_str())
    .bind(&plan.status_reason)
    .bind(plan.start_requested)
    .bind(ts_opt(plan.started_at))
    .bind(ts_opt(plan.finished_at))
    .bind(ts(now))
    .bind(plan.expected.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(conflict(&task_status(conn, user, id).await?)),
    }
}

async fn update_task(
    pool: &SqlitePool,
    user: UserId,
    id: TaskId,
    update: TaskUpdate,
    now: DateTime<Utc>,
) -> Result<Task> {
    let mut conn = pool.acquire().await?;
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "UPDATE invite_tasks SET name = COALESCE($3, name), priority = COALESCE($4, priority), \
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
    .bind(ts_opt(update.scheduled_at.flatten()))
    .bind(ts(now))
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(conflict(&task_status(&mut conn, user, id).await?)),
    }
}

async fn delete_task(pool: &SqlitePool, user: UserId, id: TaskId) -> Result<()> {
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
        return Err(conflict(&task_status(&mut conn, user, id).await?));
    }
    Ok(())
}

async fn add_targets(
    pool: &SqlitePool,
    user: UserId,
    id: TaskId,
    targets: Vec<NewTarget>,
) -> Result<AddedTargets> {
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    let status = task_status(&mut tx, user, id).await?;
    if !status.parse().is_ok_and(editable) {
        return Err(conflict(&status));
    }
    let added = insert_targets(&mut tx, id, targets, Utc::now()).await?;
    tx.commit().await?;
    Ok(added)
}

async fn list_tasks(pool: &SqlitePool, user: UserId, filter: &TaskFilter) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM invite_tasks \
         WHERE user_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR platform = $3) \
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
async fn progress(pool: &SqlitePool, user: UserId, id: TaskId) -> Result<Progress> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, NULLIF(outcome, ''), sum(n) FROM invite_target_counts \
         WHERE task_id = $1 \
             AND EXISTS (SELECT 1 FROM invite_tasks WHERE id = $1 AND user_id = $2) \
         GROUP BY status, outcome HAVING sum(n) <> 0",
    )
    .bind(id.get())
    .bind(user.get())
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        ensure_owned(pool, user, id).await?;
    }
    progress_from(rows)
}

/// The task and its counts from one connection, in one read transaction (SQLite has no
/// round trip to save, only a consistent view to keep).
async fn task_progress(pool: &SqlitePool, user: UserId, id: TaskId) -> Result<(Task, Progress)> {
    let mut tx = pool.begin().await?;
    let task = fetch_task(&mut tx, user, id).await?;
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, NULLIF(outcome, ''), sum(n) FROM invite_target_counts \
         WHERE task_id = $1 GROUP BY status, outcome HAVING sum(n) <> 0",
    )
    .bind(id.get())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((task, progress_from(rows)?))
}

async fn targets(
    pool: &SqlitePool,
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
    pool: &SqlitePool,
    user: UserId,
    id: TaskId,
    filter: &LogFilter,
) -> Result<Vec<ExecutionLog>> {
    ensure_owned(pool, user, id).await?;
    let rows: Vec<LogRow> = sqlx::query_as(&format!(
        "SELECT {LOG_COLS} FROM invite_execution_logs \
         WHERE task_id = $1 AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR account_id = $3) \
             AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) \
         ORDER BY id LIMIT $6 OFFSET $7"
    ))
    .bind(id.get())
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.account_id.as_ref().map(AccountId::as_str))
    .bind(ts_opt(filter.since))
    .bind(ts_opt(filter.until))
    .bind(sql_limit(filter.limit))
    .bind(i64::from(filter.offset))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ExecutionLog::try_from).collect()
}

async fn stats(pool: &SqlitePool, user: UserId, id: TaskId) -> Result<TaskStats> {
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
    // Stored times are `YYYY-MM-DDTHH:…`: the first 13 characters name the hour.
    let per_hour = sqlx::query_as(
        "SELECT substr(created_at, 1, 13) || ':00:00.000000Z' AS hour, count(*) \
         FROM invite_execution_logs WHERE task_id = $1 GROUP BY hour",
    )
    .bind(id.get())
    .fetch_all(pool)
    .await?;
    stats_from(per_account, per_error, per_hour)
}

/// Ownership is checked like [`progress`] does.
async fn lanes(pool: &SqlitePool, user: UserId, id: TaskId) -> Result<Vec<Lane>> {
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
    pool: &SqlitePool,
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
             AND t.identifier_key IN (SELECT value FROM json_each($4)) AND t.status = 'success' AND t.processed_at >= $5",
    )
    .bind(user.get())
    .bind(platform.as_str())
    .bind(channel)
    .bind(json_list(identifier_keys)?)
    .bind(ts(since))
    .fetch_all(pool)
    .await?;
    Ok(keys.into_iter().collect())
}

async fn set_group_key(pool: &SqlitePool, id: TaskId, key: &str) -> Result<()> {
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

async fn engine_tasks(pool: &SqlitePool) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM invite_tasks \
         WHERE status = 'IN_PROGRESS' \
             OR (status = 'PENDING' AND start_requested = 1) \
         ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    tasks_of(rows)
}

async fn ensure_lanes(pool: &SqlitePool, id: TaskId, accounts: &[AccountId]) -> Result<()> {
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM invite_tasks WHERE id = $1")
        .bind(id.get())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(Error::NotFound);
    }
    sqlx::query(
        "INSERT INTO invite_task_accounts (task_id, account_id, status, stats) \
         SELECT $1, value, 'active', $3 FROM json_each($2) WHERE true \
         ON CONFLICT (task_id, account_id) DO NOTHING",
    )
    .bind(id.get())
    .bind(json_list(accounts)?)
    .bind(Json(LaneStats::default()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn lanes_of(pool: &SqlitePool, ids: &[TaskId]) -> Result<Vec<Lane>> {
    let rows: Vec<LaneRow> = sqlx::query_as(&format!(
        "SELECT {LANE_COLS} FROM invite_task_accounts \
         WHERE task_id IN (SELECT value FROM json_each($1)) ORDER BY task_id, account_id"
    ))
    .bind(json_list(ids)?)
    .fetch_all(pool)
    .await?;
    lanes_of_rows(rows)
}

async fn save_lane(pool: &SqlitePool, lane: &Lane) -> Result<()> {
    let mut conn = pool.acquire().await?;
    found(write_lane(&mut conn, lane).await?)
}

/// Saves a lane; rows changed.
async fn write_lane(conn: &mut SqliteConnection, lane: &Lane) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE invite_task_accounts SET status = $3, reason = $4, cooldown_until = $5, \
             last_used_at = $6, stats = $7 \
         WHERE task_id = $1 AND account_id = $2",
    )
    .bind(lane.task_id.get())
    .bind(lane.account_id.as_str())
    .bind(lane.status.as_str())
    .bind(&lane.reason)
    .bind(ts_opt(lane.cooldown_until))
    .bind(ts_opt(lane.last_used_at))
    .bind(Json(&lane.stats))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// This store's database: its ledger shares it.
fn ledger_database(store: &SqliteStore) -> Option<DatabaseId> {
    Some(store.database)
}

/// From the tasks' counters: no count of the backlog.
async fn pending_counts(pool: &SqlitePool, ids: &[TaskId]) -> Result<BTreeMap<TaskId, u64>> {
    let rows = sqlx::query_as(
        "SELECT task_id, sum(n) FROM invite_target_counts \
         WHERE task_id IN (SELECT value FROM json_each($1)) AND status = 'pending' \
         GROUP BY task_id",
    )
    .bind(json_list(ids)?)
    .fetch_all(pool)
    .await?;
    Ok(pending_from(ids, rows))
}

/// From the tasks' counters: no count of the backlog.
async fn with_pending(pool: &SqlitePool, ids: &[TaskId]) -> Result<BTreeSet<TaskId>> {
    let found: Vec<i64> = sqlx::query_scalar(
        "SELECT task_id FROM invite_target_counts \
         WHERE task_id IN (SELECT value FROM json_each($1)) AND status = 'pending' \
             AND n > 0",
    )
    .bind(json_list(ids)?)
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().map(TaskId::new).collect())
}

/// The `random_id` a claim gives a target with none, as
/// [`invite_core::ports::message_random_id`] computes it: the low 31 bits of the integer `high`
/// (0 counts as 1) above the low 32 bits of `id`; NULL when `high` is NULL. Every operator is parenthesised: SQLite gives `&`, `|` and `<<` one
/// precedence.
fn random_id_sql(high: &str, id: &str) -> String {
    format!(
        "(CASE WHEN {high} IS NOT NULL THEN \
             ((max(({high} & 2147483647), 1) << 32) | ({id} & 4294967295)) END)"
    )
}

async fn claim_target(pool: &SqlitePool, claim: &Claim) -> Result<Option<Target>> {
    let mut conn = pool.acquire().await?;
    claim_in(&mut conn, claim).await
}

/// Takes the next target of `claim` (see [`TaskStore::claim_target`]).
async fn claim_in(conn: &mut SqliteConnection, claim: &Claim) -> Result<Option<Target>> {
    // One statement: SQLite runs it under the database's write lock, so two claimers can never
    // take the same row, and the task's status is read under the same lock.
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
                     ORDER BY id LIMIT 1) \
             AND status = 'pending' \
         RETURNING {TARGET_COLS}",
        random_id = random_id_sql("$5", "id"),
        stage = CLAIM_STAGE_SQL,
    ))
    .bind(claim.task.get())
    .bind(claim.account.as_str())
    .bind(&claim.holder)
    .bind(ts(claim.now))
    .bind(claim.random_high.map(i64::from))
    .bind(stage_number(claim.stage))
    .fetch_optional(&mut *conn)
    .await
    .map_err(claim_error)?;
    row.map(Target::try_from).transpose()
}

async fn followups(pool: &SqlitePool, id: TaskId, account: &AccountId) -> Result<Followups> {
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
    conn: &mut SqliteConnection,
    target: TargetId,
    account: &AccountId,
    at: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(CONTACT_PART_SQL)
        .bind(target.get())
        .bind(account.as_str())
        .bind(ts(at))
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// A pending target only in the contacts of an account that can no longer act, unpinned;
/// rows changed.
async fn write_unpin(conn: &mut SqliteConnection, target: TargetId) -> Result<u64> {
    Ok(sqlx::query(UNPIN_SQL)
        .bind(target.get())
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    Ok(pool.begin_with(IMMEDIATE).await?)
}

/// Writes `record`'s outcome onto its target if it is as `expect` says; rows changed.
async fn write_outcome(
    conn: &mut SqliteConnection,
    record: &OutcomeRecord,
    expect: Expect<'_>,
) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET status = $3, outcome = $4, error_message = $5, result = $6, \
             processed_at = $7, updated_at = $7, account_id = $8, holder = NULL \
         WHERE id = $1 AND ($2 IS NULL OR account_id = $2) AND {}",
        expect.condition()
    ))
    .bind(record.target_id.get())
    .bind(expect.account())
    .bind(record.outcome.target_status().as_str())
    .bind(record.outcome.as_str())
    .bind(&record.error_message)
    .bind(Json(&record.result))
    .bind(ts(record.at))
    .bind(record.account_id.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Sends the target of `record` back to `pending` with its confirmed invite, pinned to the
/// record's account, if it is as `expect` says; rows changed.
async fn write_invite_part(
    conn: &mut SqliteConnection,
    record: &OutcomeRecord,
    expect: Expect<'_>,
) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET status = 'pending', invite_outcome = $3, \
             sender_account = $4, account_id = NULL, holder = NULL, updated_at = $5 \
         WHERE id = $1 AND ($2 IS NULL OR account_id = $2) AND {}",
        expect.condition()
    ))
    .bind(record.target_id.get())
    .bind(expect.account())
    .bind(record.outcome.as_str())
    .bind(record.account_id.as_str())
    .bind(ts(record.at))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// `in_progress` under `account` → `pending`, pin and `random_id` kept; rows changed.
async fn write_release(
    conn: &mut SqliteConnection,
    target: TargetId,
    account: &AccountId,
) -> Result<u64> {
    Ok(sqlx::query(RELEASE_SQL)
        .bind(target.get())
        .bind(account.as_str())
        .bind(ts(Utc::now()))
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// `in_progress` under `account` → `uncertain` (see [`TO_UNCERTAIN`]); rows changed.
async fn write_uncertain(
    conn: &mut SqliteConnection,
    target: TargetId,
    account: &AccountId,
) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET {TO_UNCERTAIN}, updated_at = $3 \
         WHERE id = $1 AND status = 'in_progress' AND account_id = $2"
    ))
    .bind(target.get())
    .bind(account.as_str())
    .bind(ts(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// An unsettled `uncertain` target → `pending`, pin and `random_id` kept; rows changed.
async fn write_retry(conn: &mut SqliteConnection, target: TargetId) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET status = 'pending', account_id = NULL, updated_at = $2 \
         WHERE id = $1 AND {}",
        Expect::Unsettled.condition()
    ))
    .bind(target.get())
    .bind(ts(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// The task's pending targets pinned to one of `gone` or last claimed before `pinned_before`
/// (or never), in id order (the immediate transaction holds the write lock).
async fn pinned_to_abandon(
    conn: &mut SqliteConnection,
    id: TaskId,
    gone: &[AccountId],
    pinned_before: DateTime<Utc>,
) -> Result<Vec<TargetRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TARGET_COLS} FROM invite_targets \
         WHERE task_id = $1 AND status = 'pending' AND sender_account IS NOT NULL \
             AND (sender_account IN (SELECT value FROM json_each($2)) \
                  OR claimed_at < $3 OR claimed_at IS NULL) \
         ORDER BY id"
    ))
    .bind(id.get())
    .bind(json_list(gone)?)
    .bind(ts(pinned_before))
    .fetch_all(&mut *conn)
    .await?)
}

async fn heartbeat(pool: &SqlitePool, holder: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO invite_workers (holder, seen_at) VALUES ($1, $2) \
         ON CONFLICT (holder) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)",
    )
    .bind(holder)
    .bind(ts(now))
    .execute(pool)
    .await?;
    Ok(())
}

async fn retire_holder(pool: &SqlitePool, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM invite_workers WHERE holder = $1")
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// `in_progress` targets whose holder has no heartbeat since `silent_since` become
/// `uncertain` (see [`TO_UNCERTAIN`]).
async fn recover_stale(pool: &SqlitePool, silent_since: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "UPDATE invite_targets SET {TO_UNCERTAIN}, updated_at = $2 \
         WHERE status = 'in_progress' \
             AND NOT EXISTS (SELECT 1 FROM invite_workers w \
                             WHERE w.holder = invite_targets.holder AND w.seen_at >= $1)"
    ))
    .bind(ts(silent_since))
    .bind(ts(Utc::now()))
    .execute(pool)
    .await?
    .rows_affected())
}

async fn uncertain_targets(pool: &SqlitePool, id: TaskId) -> Result<Vec<Target>> {
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
    pool: &SqlitePool,
    logs_before: DateTime<Utc>,
    tasks_finished_before: DateTime<Utc>,
) -> Result<CleanupReport> {
    let logs = sqlx::query("DELETE FROM invite_execution_logs WHERE created_at < $1")
        .bind(ts(logs_before))
        .execute(pool)
        .await?
        .rows_affected();
    let tasks = sqlx::query(
        "DELETE FROM invite_tasks \
         WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at < $1",
    )
    .bind(ts(tasks_finished_before))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(CleanupReport { logs, tasks })
}

forward_task_store!(SqliteStore, SqlitePool, SqliteConnection);

// ---- ledger ----

async fn load_history(
    conn: &mut SqliteConnection,
    account: &AccountId,
    channel: &str,
    since: DateTime<Utc>,
) -> Result<AccountHistory> {
    let state: Option<AccountStateRow> = sqlx::query_as(
        "SELECT state, until, reason FROM invite_ledger_accounts WHERE account_id = $1",
    )
    .bind(account.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT at, kind, channel, not_before_next FROM invite_ledger_events \
         WHERE account_id = $1 AND at > $2 ORDER BY at, id",
    )
    .bind(account.as_str())
    .bind(ts(since))
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

async fn states(pool: &SqlitePool, accounts: &[AccountId]) -> Result<Vec<AccountState>> {
    let rows: Vec<AccountStateOfRow> = sqlx::query_as(
        "SELECT account_id, state, until, reason FROM invite_ledger_accounts \
         WHERE account_id IN (SELECT value FROM json_each($1))",
    )
    .bind(json_list(accounts)?)
    .fetch_all(pool)
    .await?;
    states_in_order(accounts, rows)
}

/// The histories of many accounts from one statement per ledger table.
async fn histories(
    pool: &SqlitePool,
    accounts: &[AccountId],
    channel: &str,
    since: DateTime<Utc>,
) -> Result<Vec<AccountHistory>> {
    let names = json_list(accounts)?;
    let mut conn = pool.acquire().await?;
    let states: Vec<AccountStateOfRow> = sqlx::query_as(
        "SELECT account_id, state, until, reason FROM invite_ledger_accounts \
         WHERE account_id IN (SELECT value FROM json_each($1))",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let events: Vec<AccountEventRow> = sqlx::query_as(
        "SELECT account_id, at, kind, channel, not_before_next FROM invite_ledger_events \
         WHERE account_id IN (SELECT value FROM json_each($1)) AND at > $2 \
         ORDER BY account_id, at, id",
    )
    .bind(&names)
    .bind(ts(since))
    .fetch_all(&mut *conn)
    .await?;
    let lifetime: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT account_id, kind, count FROM invite_ledger_lifetime \
         WHERE account_id IN (SELECT value FROM json_each($1)) AND channel = $2 \
         ORDER BY account_id, kind",
    )
    .bind(&names)
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?;
    histories_in_order(accounts, states, events, lifetime)
}

async fn reserve(
    pool: &SqlitePool,
    request: &ReserveRequest,
    policy: &LimitPolicy,
) -> Result<RateDecision> {
    // The immediate transaction holds SQLite's write lock from the first read to the commit:
    // reservations (of any account) run one at a time.
    let mut tx = pool.begin_with(IMMEDIATE).await?;
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
    pool: &SqlitePool,
    request: &ReserveRequest,
    policy: &LimitPolicy,
    claim: &Claim,
) -> Result<(RateDecision, Option<Target>)> {
    let mut tx = pool.begin_with(IMMEDIATE).await?;
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

/// The policy's decision on `request`, read under the write lock `tx` holds.
async fn decide(
    tx: &mut SqliteConnection,
    request: &ReserveRequest,
    policy: &LimitPolicy,
) -> Result<RateDecision> {
    let history = load_history(
        tx,
        &request.account_id,
        &request.channel,
        request.now - policy.window,
    )
    .await?;
    Ok(policy.decide(&history, request))
}

/// Records an allowed reservation: the reservation, its events and the lifetime counts.
async fn insert_reservation(
    tx: &mut SqliteConnection,
    request: &ReserveRequest,
) -> Result<Reservation> {
    let account = request.account_id.as_str();
    let now = ts(request.now);
    let reservation: i64 = sqlx::query_scalar(
        "INSERT INTO invite_ledger_reservations (account_id, created_at) VALUES ($1, $2) \
         RETURNING id",
    )
    .bind(account)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?;
    let kinds = json_list(&request.kinds)?;
    sqlx::query(
        "INSERT INTO invite_ledger_events \
             (reservation_id, account_id, kind, channel, at, not_before_next) \
         SELECT $1, $2, value, $3, $4, $5 FROM json_each($6)",
    )
    .bind(reservation)
    .bind(account)
    .bind(&request.channel)
    .bind(&now)
    .bind(ts(request.now + request.pause_after))
    .bind(&kinds)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO invite_ledger_lifetime (account_id, channel, kind, count) \
         SELECT $1, $2, value, 1 FROM json_each($3) WHERE true \
         ON CONFLICT (account_id, channel, kind) DO UPDATE SET count = count + 1",
    )
    .bind(account)
    .bind(&request.channel)
    .bind(&kinds)
    .execute(&mut *tx)
    .await?;
    Ok(Reservation(reservation))
}

/// Moves the accounts' events and lifetime counts from channel `from` to `into`, in one
/// immediate transaction (SQLite's write lock, the one reservations take).
async fn merge_channel(
    pool: &SqlitePool,
    accounts: &[AccountId],
    from: &str,
    into: &str,
) -> Result<u64> {
    if from == into || accounts.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    let mut moved = 0;
    for account in accounts {
        moved += sqlx::query(
            "UPDATE invite_ledger_events SET channel = $3 WHERE account_id = $1 AND channel = $2",
        )
        .bind(account.as_str())
        .bind(from)
        .bind(into)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO invite_ledger_lifetime (account_id, channel, kind, count) \
             SELECT account_id, $3, kind, count FROM invite_ledger_lifetime \
             WHERE account_id = $1 AND channel = $2 AND true \
             ON CONFLICT (account_id, channel, kind) \
             DO UPDATE SET count = invite_ledger_lifetime.count + excluded.count",
        )
        .bind(account.as_str())
        .bind(from)
        .bind(into)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM invite_ledger_lifetime WHERE account_id = $1 AND channel = $2")
            .bind(account.as_str())
            .bind(from)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(moved)
}

async fn refund(pool: &SqlitePool, account: &AccountId, reservation: Reservation) -> Result<()> {
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    sqlx::query(
        "UPDATE invite_ledger_lifetime SET count = max(count - e.n, 0) \
         FROM (SELECT channel, kind, count(*) AS n FROM invite_ledger_events \
               WHERE reservation_id = $1 AND account_id = $2 GROUP BY channel, kind) AS e \
         WHERE invite_ledger_lifetime.account_id = $2 \
             AND invite_ledger_lifetime.channel = e.channel \
             AND invite_ledger_lifetime.kind = e.kind",
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

/// The reservation's events move to `at`, and the pause after them moves with them. SQLite has
/// no exact arithmetic on the stored timestamps, so the shift is computed here, under the write
/// lock.
async fn performed(
    pool: &SqlitePool,
    account: &AccountId,
    reservation: Reservation,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut tx = pool.begin_with(IMMEDIATE).await?;
    write_performed(&mut tx, account, reservation, at).await?;
    tx.commit().await?;
    Ok(())
}

/// [`performed`] in `tx` (which holds the write lock: the one of an attempt's outcome).
async fn write_performed(
    tx: &mut SqliteConnection,
    account: &AccountId,
    reservation: Reservation,
    at: DateTime<Utc>,
) -> Result<()> {
    let events: Vec<(i64, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, at, not_before_next FROM invite_ledger_events \
         WHERE reservation_id = $1 AND account_id = $2",
    )
    .bind(reservation.0)
    .bind(account.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for (id, reserved_at, not_before_next) in events {
        sqlx::query("UPDATE invite_ledger_events SET at = $2, not_before_next = $3 WHERE id = $1")
            .bind(id)
            .bind(ts(at))
            .bind(ts(not_before_next + (at - reserved_at)))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn set_state(pool: &SqlitePool, account: &AccountId, state: &AccountState) -> Result<()> {
    let (name, until, reason) = account_state_columns(state);
    sqlx::query(
        "INSERT INTO invite_ledger_accounts (account_id, state, until, reason) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id) DO UPDATE \
         SET state = excluded.state, until = excluded.until, reason = excluded.reason",
    )
    .bind(account.as_str())
    .bind(name)
    .bind(ts_opt(until))
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

#[async_trait]
impl LimitLedger for SqliteStore {
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
        Ok(load_history(&mut conn, account, channel, since).await?)
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
    pool: &SqlitePool,
    user: UserId,
    platform: Platform,
    people: &[TargetIdentifier],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let keys: Vec<String> = people.iter().map(TargetIdentifier::dedupe_key).collect();
    let added = sqlx::query(
        "INSERT INTO invite_suppressions (user_id, platform, identifier_key, reason, created_at) \
         SELECT $1, $2, value, $3, $4 FROM json_each($5) WHERE true \
         ON CONFLICT (user_id, platform, identifier_key) DO NOTHING",
    )
    .bind(user.get())
    .bind(platform.as_str())
    .bind(reason)
    .bind(ts(now))
    .bind(json_list(&keys)?)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(added)
}

forward_suppression_list!(SqliteStore);

// ---- leases ----

#[async_trait]
impl AccountLeases for SqliteStore {
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
             SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE invite_account_leases.holder = excluded.holder \
                 OR invite_account_leases.expires_at < $3 \
             RETURNING holder",
        )
        .bind(account.as_str())
        .bind(holder)
        .bind(ts(now))
        .bind(ts(until))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn timestamps_have_one_width() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(ts(t), "2023-11-14T22:13:20.000000Z");
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(ts(t), "2023-11-14T22:13:20.123456Z");
    }

    /// Random high bits and target ids at the edges of what [`random_id_sql`] masks.
    pub(crate) const RANDOM_ID_CASES: [(u32, i64); 8] = [
        (0, 1),
        (1, 42),
        (0x7FFF_FFFF, 0xFFFF_FFFF),
        (0x8000_0000, 7),
        (0xFFFF_FFFF, 0x1_0000_0005),
        (0x1234_5678, 0x7FFF_FFFF_FFFF),
        (0x8000_0001, 0),
        (99, 0x1234_5678_9ABC),
    ];

    #[tokio::test]
    async fn the_sql_random_id_is_message_random_id() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        for (high, id) in RANDOM_ID_CASES {
            let sql = format!("SELECT {}", random_id_sql("$1", "$2"));
            let got: Option<i64> = sqlx::query_scalar(&sql)
                .bind(i64::from(high))
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let want = invite_core::ports::message_random_id(high, TargetId::new(id));
            assert_eq!(got, Some(want), "high {high:#x}, id {id:#x}");
        }
        let none: Option<i64> = sqlx::query_scalar(&format!("SELECT {}", random_id_sql("$1", "7")))
            .bind(None::<i64>)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(none, None, "no random high bits, no random_id");
    }

    #[test]
    fn target_chunks_stay_under_the_parameter_limit() {
        let sql = insert_targets_sql(2);
        assert!(sql.contains("($1,$2,$2,$3,$4,$5,$6,$7,$8,$9,$10),($1,$2,$2,$11,"));
    }
}
