//! The engine's attempt path on PostgreSQL: attempts per second of a real [`Engine`] (the
//! sandbox platform with no latency and no refusals, limits effectively off, 8 accounts, one
//! invite task with a backlog of 10 000 and 40 000 pending targets) — next to `pgbench`
//! running the minimal SQL for the same effects on the same database, and their ratio.
//!
//! ```sh
//! cargo bench -p invite-store --bench attempts
//! ATTEMPTS_BENCH_PENDING=10000,100000 ATTEMPTS_BENCH_SECONDS=20 cargo bench -p invite-store --bench attempts
//! ```
//!
//! Uses the server at `DATABASE_TEST_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! one scratch database `invite_bench_attempts_<pid>_<n>` per backlog, dropped at the end;
//! `pgbench` from `PATH` or PostgreSQL's `bin` directory. An unreachable server skips the
//! benchmark, unless `INVITE_REQUIRE_SERVICES=1`.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

// Only the administration connection is shared with the other benchmarks.
#[allow(dead_code)]
mod common;

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use invite_core::clock::{Clock, SystemClock};
use invite_core::domain::{
    AccountId, Action, GroupRef, NewTarget, NewTask, Platform, Priority, TargetIdentifier,
    TaskEvent, TaskId, TaskSettings, UserId, Username,
};
use invite_core::engine::{Engine, EngineConfig, EngineParts};
use invite_core::limits::{ActionLimits, LimitPolicy, LocalAccountManager};
use invite_core::memory::StaticDirectory;
use invite_core::sandbox::{SandboxConfig, SandboxStrategy};
use invite_store::test_util::with_database;
use invite_store::{PoolConfig, Stores};
use tokio_util::sync::CancellationToken;

const ACCOUNTS: usize = 8;
const USER: UserId = UserId::new(1);

/// The minimal SQL of one successful invite attempt, in two transactions, for `pgbench`.
///
/// Derived from what the engine's attempt leaves in the database and what its decisions must
/// read, keeping one statement per effect and nothing else:
/// - the limit check locks the account's ledger row, reads its window (a count is all a
///   decision with these limits needs), records a reservation with its event and lifetime
///   count (`LimitLedger::reserve`);
/// - the account's lease is renewed (`AccountLeases::acquire`);
/// - the lowest pending target of the task is claimed for the account and the worker
///   (`TaskStore::claim_target`), and its person is checked against the do-not-contact list;
/// - after the platform call: the target's outcome, its log row, the reservation's event moved
///   to the time of the write (`performed`), and the lane's last use and counters.
///
/// `:client_id` picks one of 8 accounts `pgbench-<n>` (one per client, as the engine drives
/// each account from one step at a time); `:task` is the task. No row is read back but the
/// ids the next statements need.
const PGBENCH_SCRIPT: &str = r"
BEGIN;
SELECT state FROM invite_ledger_accounts WHERE account_id = 'pgbench-' || :client_id FOR UPDATE;
SELECT count(*) AS used FROM invite_ledger_events WHERE account_id = 'pgbench-' || :client_id AND at > now() - interval '1 second';
INSERT INTO invite_ledger_reservations (account_id, created_at) VALUES ('pgbench-' || :client_id, now()) RETURNING id AS reservation \gset
INSERT INTO invite_ledger_events (reservation_id, account_id, kind, channel, at, not_before_next) VALUES (:reservation, 'pgbench-' || :client_id, 'invite', '@pgbench', now(), now());
INSERT INTO invite_ledger_lifetime (account_id, channel, kind, count) VALUES ('pgbench-' || :client_id, '@pgbench', 'invite', 1) ON CONFLICT (account_id, channel, kind) DO UPDATE SET count = invite_ledger_lifetime.count + 1;
UPDATE invite_account_leases SET expires_at = now() + interval '1 minute' WHERE account_id = 'pgbench-' || :client_id AND holder = 'pgbench';
UPDATE invite_targets SET status = 'in_progress', account_id = 'pgbench-' || :client_id, holder = 'pgbench', claimed_at = now(), attempts = attempts + 1 WHERE id = (SELECT id FROM invite_targets WHERE task_id = :task AND status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id AS target, identifier_key AS person \gset
SELECT EXISTS (SELECT 1 FROM invite_suppressions WHERE user_id = 1 AND platform = 'sandbox' AND identifier_key = ':person') AS suppressed;
COMMIT;
BEGIN;
UPDATE invite_targets SET status = 'success', outcome = 'invited', holder = NULL, processed_at = now(), updated_at = now() WHERE id = :target AND status = 'in_progress';
INSERT INTO invite_execution_logs (task_id, target_id, account_id, action, status, outcome, latency_ms, created_at) VALUES (:task, :target, 'pgbench-' || :client_id, 'invite', 'SUCCESS', 'invited', 0, now());
UPDATE invite_ledger_events SET at = now() WHERE reservation_id = :reservation;
UPDATE invite_task_accounts SET last_used_at = now(), stats = jsonb_set(stats, '{attempts}', to_jsonb(coalesce((stats->>'attempts')::bigint, 0) + 1)) WHERE task_id = :task AND account_id = 'pgbench-' || :client_id;
COMMIT;
";

/// Limits that never bind: no caps, no pauses, no spreading, a one-second window (so the
/// window a reservation reads stays small whatever the rate).
fn limits_off() -> LimitPolicy {
    let open = ActionLimits {
        per_account: u32::MAX,
        per_channel: None,
        per_channel_lifetime: None,
        pause_min: TimeDelta::zero(),
        pause_max: TimeDelta::zero(),
        spread: false,
    };
    LimitPolicy {
        window: TimeDelta::seconds(1),
        invite: open,
        message: open,
        contact: open,
        writes_per_account: None,
        ..LimitPolicy::telegram()
    }
}

/// The sandbox answering at once, inviting everyone.
fn instant_sandbox() -> SandboxConfig {
    SandboxConfig {
        privacy_restricted: 0.0,
        already_member: 0.0,
        not_found: 0.0,
        flood_wait: 0.0,
        peer_flood: 0.0,
        latency_ms: (0, 0),
        real_latency: false,
        limits: limits_off(),
        ..SandboxConfig::default()
    }
}

fn task(name: &str) -> NewTask {
    NewTask {
        user_id: USER,
        name: name.into(),
        platform: Platform::Sandbox,
        priority: Priority::Medium,
        settings: TaskSettings {
            action: Action::Invite {
                group: GroupRef::parse(&format!("@{name}")).expect("group"),
            },
            accounts: None,
            add_to_contacts: false,
            dedupe_days: None,
        },
        scheduled_at: None,
    }
}

fn people(prefix: &str, n: usize) -> Vec<NewTarget> {
    (0..n)
        .map(|i| {
            let name = Username::parse(&format!("{prefix}_{i:07}"), Platform::Sandbox)
                .expect("generated usernames are valid");
            NewTarget::new(TargetIdentifier::Username(name))
        })
        .collect()
}

/// A running task of `pending` targets.
async fn running_task(stores: &Stores, name: &str, pending: usize) -> anyhow::Result<TaskId> {
    let now = Utc::now();
    let id = stores
        .tasks
        .create_task(task(name), people(name, pending), None, now)
        .await?
        .task
        .id;
    stores
        .tasks
        .transition(
            USER,
            id,
            TaskEvent::Start {
                scheduled_later: false,
            },
            None,
            now,
        )
        .await?;
    Ok(id)
}

async fn done(pool: &sqlx::PgPool, task: TaskId) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM invite_targets WHERE task_id = $1 AND status = 'success'",
    )
    .bind(task.get())
    .fetch_one(pool)
    .await?)
}

/// Attempts per second of the engine on a task of `pending` targets, over `seconds` after a
/// warm-up.
async fn engine_rate(
    stores: &Stores,
    pool: &sqlx::PgPool,
    pending: usize,
    seconds: u64,
) -> anyhow::Result<(f64, i64)> {
    let id = running_task(stores, "engine_bench", pending).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let manager = LocalAccountManager::new(stores.ledger.clone(), clock.clone(), 1)
        .with_policy(Platform::Sandbox, limits_off());
    let engine = Arc::new(Engine::new(
        EngineParts {
            store: stores.tasks.clone(),
            suppression: stores.suppression.clone(),
            leases: stores.leases.clone(),
            accounts: Arc::new(manager),
            directory: Arc::new(StaticDirectory::new().with_sandbox_accounts(USER, ACCOUNTS)),
            clock,
        },
        [Arc::new(SandboxStrategy::new(instant_sandbox())) as Arc<_>],
        EngineConfig {
            worker_id: "attempts-bench".into(),
            ..EngineConfig::default()
        },
    ));
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (engine, cancel) = (engine.clone(), cancel.clone());
        async move { engine.run(cancel).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (before, started) = (done(pool, id).await?, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (after, elapsed) = (done(pool, id).await?, started.elapsed());
    cancel.cancel();
    running.await?;
    let health = engine.health();
    anyhow::ensure!(
        health.unrecorded == 0 && health.panics == 0,
        "engine health: {health:?}"
    );
    Ok(((after - before) as f64 / elapsed.as_secs_f64(), after))
}

/// `pgbench` from `PATH`, else from PostgreSQL's newest `bin` directory.
fn pgbench() -> String {
    if Command::new("pgbench").arg("--version").output().is_ok() {
        return "pgbench".to_owned();
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .map_or_else(|| "pgbench".to_owned(), |p| p.display().to_string())
}

/// Transactions (script runs: attempts) per second of [`PGBENCH_SCRIPT`] on a task of
/// `pending` targets, with one client per account.
async fn pgbench_rate(
    stores: &Stores,
    pool: &sqlx::PgPool,
    url: &str,
    pending: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let id = running_task(stores, "pgbench", pending).await?;
    let accounts: Vec<AccountId> = (0..ACCOUNTS)
        .map(|n| AccountId::parse(format!("pgbench-{n}")).expect("account id"))
        .collect();
    stores.tasks.ensure_lanes(id, &accounts).await?;
    for a in &accounts {
        sqlx::query("INSERT INTO invite_ledger_accounts (account_id) VALUES ($1)")
            .bind(a.as_str())
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO invite_account_leases (account_id, holder, expires_at) \
             VALUES ($1, 'pgbench', now())",
        )
        .bind(a.as_str())
        .execute(pool)
        .await?;
    }
    let script = std::env::temp_dir().join(format!("invite_attempts_{}.sql", std::process::id()));
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    let out = Command::new(pgbench())
        .args([
            "-n",
            "-c",
            &ACCOUNTS.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-D",
            &format!("task={}", id.get()),
            "-f",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .context("run pgbench")?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .with_context(|| format!("no tps in pgbench output: {stdout}"))?;
    let finished = done(pool, id).await?;
    anyhow::ensure!(finished > 0, "pgbench finished no target");
    Ok(tps)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Some((admin_url, mut admin)) = common::admin_connection("attempts").await? else {
        return Ok(());
    };
    let sizes: Vec<usize> = std::env::var("ATTEMPTS_BENCH_PENDING")
        .unwrap_or_else(|_| "10000,40000".to_owned())
        .split(',')
        .map(|s| s.trim().parse().context("ATTEMPTS_BENCH_PENDING: numbers"))
        .collect::<anyhow::Result<_>>()?;
    let seconds: u64 = std::env::var("ATTEMPTS_BENCH_SECONDS")
        .map_or(Ok(10), |s| s.parse())
        .context("ATTEMPTS_BENCH_SECONDS")?;
    println!(
        "engine attempts on PostgreSQL: {ACCOUNTS} accounts, sandbox without latency, limits \
         off; {seconds} s measured after 2 s of warm-up; pgbench -c {ACCOUNTS} -j 2 -T {seconds} \
         of the minimal SQL (see PGBENCH_SCRIPT in invite-store/benches/attempts.rs)\n"
    );
    let mut outcome = Ok(());
    for (n, pending) in sizes.into_iter().enumerate() {
        let name = format!("invite_bench_attempts_{}_{n}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let url = with_database(&admin_url, &name);
        let run = async {
            let stores = invite_store::connect(&url, PoolConfig::default()).await?;
            stores.migrate().await?;
            let invite_store::DbPool::Postgres(pool) = stores.pool().clone() else {
                anyhow::bail!("not PostgreSQL");
            };
            let (engine, finished) = engine_rate(&stores, &pool, pending, seconds).await?;
            let baseline = pgbench_rate(&stores, &pool, &url, pending, seconds).await?;
            println!(
                "pending {pending:>7}: engine {engine:>7.1} attempts/s ({finished} done), \
                 pgbench {baseline:>7.1} attempts/s, ratio: {:.2}",
                engine / baseline
            );
            stores.close().await;
            Ok(())
        }
        .await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        if run.is_err() {
            outcome = run;
            break;
        }
    }
    outcome
}
