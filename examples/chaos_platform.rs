//! The platform deployment under SIGKILL: one `invite-http` process in platform mode and N
//! worker processes on PostgreSQL + RabbitMQ run three sandbox tasks (invite HIGH, message
//! MEDIUM, invite-and-message LOW, one user, shared accounts) while this driver kills random
//! workers with SIGKILL and starts them again; with `--restart-rabbitmq` it also restarts
//! the broker once mid-run. The platform keeps its own journal in its own schema
//! (`journal_platform`), committed before it answers; at the end the journal alone is
//! judged by `invite_core::chaos::check` against the targets the API reports.
//!
//! ```sh
//! cargo run --release --example chaos_platform -- --workers 3 --kills 100
//! ```
//!
//! Options: `--workers N` (3), `--kills N` (100), `--targets N` per task (200), `--seed N`,
//! `--time-scale N` (1440), `--timeout SECONDS` (1200), `--restart-rabbitmq`, `--keep`
//! (keep the database). PostgreSQL from `DATABASE_TEST_URL`, RabbitMQ from `AMQP_TEST_URL`
//! (the local ones by default). The last lines are `kills: N`, `duplicates: N`, `lost: N`,
//! `cap violations: N`; the exit code is non-zero unless the last three are 0.
//!
//! The same binary is each process of the deployment: `--role api` and `--role worker` (with
//! the environment the driver sets) are what the driver starts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{TimeDelta, Utc};
use invite_core::chaos::{ReportedTarget, check};
use invite_core::clock::SystemClock;
use invite_core::domain::{TargetStatus, TaskId, UserId};
use invite_core::limits::LimitPolicy;
use invite_core::ports::Secret;
use invite_examples::journal_platform::{self, JournalPlatform, PlatformFaults};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};

const USER: i64 = 1;
const JWT_SECRET: &str = "chaos-platform-secret-chaos-platform-secret";

#[derive(Debug, Clone)]
struct Options {
    workers: usize,
    kills: u32,
    targets: usize,
    seed: u64,
    time_scale: u32,
    timeout: Duration,
    restart_rabbitmq: bool,
    keep: bool,
    tolerance: TimeDelta,
}

fn options() -> Result<Options> {
    let mut o = Options {
        workers: 3,
        kills: 100,
        targets: 200,
        seed: 7,
        time_scale: 1440,
        timeout: Duration::from_secs(1200),
        restart_rabbitmq: false,
        keep: false,
        tolerance: TimeDelta::milliseconds(500),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--workers" => o.workers = value()?.parse()?,
            "--kills" => o.kills = value()?.parse()?,
            "--targets" => o.targets = value()?.parse()?,
            "--seed" => o.seed = value()?.parse()?,
            "--time-scale" => o.time_scale = value()?.parse()?,
            "--timeout" => o.timeout = Duration::from_secs(value()?.parse()?),
            "--tolerance-ms" => o.tolerance = TimeDelta::milliseconds(value()?.parse()?),
            "--restart-rabbitmq" => o.restart_rabbitmq = true,
            "--keep" => o.keep = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    if o.workers == 0 {
        bail!("--workers must be at least 1");
    }
    Ok(o)
}

fn main() -> Result<()> {
    let role = std::env::args()
        .skip_while(|a| a != "--role")
        .nth(1)
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match role.as_str() {
        "api" => runtime.block_on(run_api()),
        "worker" => runtime.block_on(run_worker()),
        _ => runtime.block_on(drive(options()?)),
    }
}

/// `--role api`: `invite-http` in platform mode, configured by the environment.
async fn run_api() -> Result<()> {
    let config = invite_http::config::Config::from_env()?;
    invite_http::init_tracing(config.log_format);
    let runtime = invite_http::runtime::Runtime::build(
        &config,
        invite_http::runtime::RuntimeOptions {
            clock: Arc::new(SystemClock),
            secrets: invite_http::runtime::embedded_secrets(&Secret::new(JWT_SECRET)),
            secret_generated: false,
            metrics: None,
        },
    )
    .await?;
    anyhow::ensure!(runtime.platform_mode(), "the API must run in platform mode");
    let listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    runtime
        .run(
            listener,
            invite_http::shutdown_signal(),
            Duration::from_secs(10),
        )
        .await?;
    Ok(())
}

/// `--role worker`: `invite-worker` driving the journalled platform.
async fn run_worker() -> Result<()> {
    let config = invite_worker::WorkerConfig::from_env()?;
    invite_http::init_tracing(config.shared.log_format);
    let url = std::env::var("DATABASE_URL")?;
    let pool = sqlx::PgPool::connect(&url).await?;
    let seed: u64 = std::env::var("CHAOS_SEED")?.parse()?;
    let policy = invite_http::runtime::sandbox_policy(&config.shared.sandbox);
    let platform = JournalPlatform::new(
        pool.clone(),
        seed,
        u64::from(std::process::id()),
        PlatformFaults::default(),
        policy,
    );
    let options = invite_worker::WorkerOptions {
        strategies: Some(vec![Arc::new(platform)]),
        worker_name: "chaos-worker".to_owned(),
        ..invite_worker::WorkerOptions::new(Arc::new(SystemClock))
    };
    let worker = invite_worker::Worker::build(&config, options).await?;
    let admin = tokio::net::TcpListener::bind(config.admin_addr).await?;
    worker.run(admin, invite_http::shutdown_signal()).await?;
    pool.close().await;
    Ok(())
}

/// The processes of the deployment.
struct Deployment {
    exe: std::path::PathBuf,
    env: Vec<(String, String)>,
    logs: std::path::PathBuf,
    api: Child,
    workers: Vec<Child>,
    started: usize,
}

impl Deployment {
    fn command(&self, role: &str, log: &str) -> Result<Command> {
        let mut c = Command::new(&self.exe);
        c.arg("--role").arg(role);
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Logs go to stdout (JSON lines); errors at start to stderr: both into one file.
        let file = std::fs::File::create(self.logs.join(log))?;
        c.stdout(file.try_clone()?).stderr(file).kill_on_drop(true);
        Ok(c)
    }

    fn spawn_worker(&mut self) -> Result<Child> {
        self.started += 1;
        let log = format!("worker-{}.log", self.started);
        let mut c = self.command("worker", &log)?;
        c.env("WORKER_ADMIN_ADDR", "127.0.0.1:0");
        Ok(c.spawn()?)
    }
}

/// Sends SIGTERM to `child` and waits for it (at most `within`), then SIGKILL.
async fn terminate(child: &mut Child, within: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(within, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    async fn get(&self, path: &str) -> Result<serde_json::Value> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn drive(o: Options) -> Result<()> {
    let started_at = Instant::now();
    let mut rng = StdRng::seed_from_u64(o.seed);
    let db = invite_store::test_util::PostgresDatabase::create()
        .await
        .context("PostgreSQL at DATABASE_TEST_URL is needed")?;
    let amqp_url = std::env::var("AMQP_TEST_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let prefix = format!("chaos-{}-", invite_store::test_util::random_suffix());
    // The engine's schema first (the workers migrate too; once is enough), then the
    // platform's own.
    let stores = invite_store::connect(&db.url, invite_store::PoolConfig::default()).await?;
    stores.migrate().await?;
    let pool = sqlx::PgPool::connect(&db.url).await?;
    journal_platform::prepare(&pool).await?;

    let port = free_port()?;
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.url.clone()),
        ("AMQP_URL", amqp_url.clone()),
        ("AMQP_QUEUE_PREFIX", prefix.clone()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("INVITE_JWT_SECRET", JWT_SECRET.to_owned()),
        ("INVITE_SANDBOX_TIME_SCALE", o.time_scale.to_string()),
        ("INVITE_SANDBOX_ACCOUNTS", "10".to_owned()),
        ("INVITE_HEARTBEAT_SECONDS", "1".to_owned()),
        ("INVITE_HOLDER_TIMEOUT_SECONDS", "5".to_owned()),
        ("INVITE_LEASE_TTL_SECONDS", "4".to_owned()),
        ("INVITE_IDLE_POLL_SECONDS", "2".to_owned()),
        ("INVITE_WORKER_DRAIN_SECONDS", "10".to_owned()),
        ("CHAOS_SEED", o.seed.to_string()),
        ("LOG_FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let logs = std::env::temp_dir().join(format!("{prefix}logs"));
    std::fs::create_dir_all(&logs)?;
    let exe = std::env::current_exe()?;
    let api_command = {
        let mut c = Command::new(&exe);
        c.arg("--role").arg("api");
        c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let file = std::fs::File::create(logs.join("api.log"))?;
        c.stdout(file.try_clone()?).stderr(file).kill_on_drop(true);
        c
    };
    let mut api_command = api_command;
    let mut deployment = Deployment {
        exe,
        env,
        logs: logs.clone(),
        api: api_command.spawn()?,
        workers: Vec::new(),
        started: 0,
    };
    for _ in 0..o.workers {
        let w = deployment.spawn_worker()?;
        deployment.workers.push(w);
    }
    let api = Api {
        base: format!("http://127.0.0.1:{port}/api/v1/invite"),
        client: reqwest::Client::new(),
        token: invite_http::auth::issue_token(
            &Secret::new(JWT_SECRET),
            UserId::new(USER),
            Utc::now(),
            TimeDelta::hours(6),
            None,
            None,
        ),
    };
    // The API answers once it connected to both services.
    let ready = Instant::now();
    loop {
        match api.client.get(format!("{}/health", api.base)).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if ready.elapsed() > Duration::from_secs(60) => {
                bail!("the API did not become healthy; see {}", logs.display())
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    println!(
        "deployment: 1 API (platform mode) + {} workers, PostgreSQL {}, RabbitMQ prefix {prefix}, logs in {}",
        o.workers,
        db.name,
        logs.display()
    );

    let people = |tag: &str| -> Vec<String> {
        (0..o.targets)
            .map(|i| format!("@{tag}_person_{i:05}"))
            .collect()
    };
    let specs = [
        serde_json::json!({"name": "invite HIGH", "platform": "sandbox", "action": "invite",
            "group": "@chaos_group_a", "priority": "high", "targets": people("inv")}),
        serde_json::json!({"name": "message MEDIUM", "platform": "sandbox", "action": "message",
            "template": "Hello {first_name|friend}", "priority": "medium", "targets": people("msg")}),
        serde_json::json!({"name": "invite+message LOW", "platform": "sandbox",
            "action": "invite_and_message", "group": "@chaos_group_b",
            "template": "Welcome {username}", "priority": "low", "targets": people("both")}),
    ];
    let mut tasks = Vec::new();
    for spec in specs {
        let created = api.post("/tasks", spec).await?;
        let id = created["task"]["id"]
            .as_i64()
            .with_context(|| format!("no task id in {created}"))?;
        api.post(&format!("/tasks/{id}/start"), serde_json::json!({}))
            .await?;
        tasks.push(TaskId::new(id));
    }
    println!(
        "tasks {:?} started, {} targets each",
        tasks.iter().map(|t| t.get()).collect::<Vec<_>>(),
        o.targets
    );

    // Kill random workers until the quota is reached, while the tasks run.
    let run_started = Instant::now();
    let mut kills = 0_u32;
    let mut exited = 0_u32;
    let mut rabbit_restarted = false;
    let done = |statuses: &BTreeMap<TaskId, String>| {
        statuses.len() == tasks.len()
            && statuses
                .values()
                .all(|s| matches!(s.as_str(), "COMPLETED" | "FAILED" | "CANCELLED"))
    };
    let mut statuses: BTreeMap<TaskId, String> = BTreeMap::new();
    let mut last_report = Instant::now();
    loop {
        statuses.clear();
        for id in &tasks {
            if let Ok(t) = api.get(&format!("/tasks/{id}")).await {
                let status = t["status"].as_str().unwrap_or("?").to_owned();
                statuses.insert(*id, status);
            }
        }
        if done(&statuses) {
            break;
        }
        if run_started.elapsed() > o.timeout {
            println!("timeout after {:?}; tasks: {statuses:?}", o.timeout);
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            println!(
                "  {:>4} s: kills {kills}, tasks {:?}",
                run_started.elapsed().as_secs(),
                statuses.values().collect::<Vec<_>>()
            );
            last_report = Instant::now();
        }
        if kills < o.kills {
            // A kill every 0.5–2.5 s: steps are cut anywhere (before, during, after a
            // platform call or a store write).
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
            // A worker that stopped by itself (it could not reach RabbitMQ while the broker
            // restarted) is started again.
            for i in 0..deployment.workers.len() {
                if deployment.workers[i].try_wait()?.is_some() {
                    exited += 1;
                    let fresh = deployment.spawn_worker()?;
                    deployment.workers[i] = fresh;
                }
            }
            let i = rng.random_range(0..deployment.workers.len());
            let victim = &mut deployment.workers[i];
            // SIGKILL (an error only if it exited on its own meanwhile).
            if victim.kill().await.is_ok() {
                kills += 1;
            }
            let fresh = deployment.spawn_worker()?;
            deployment.workers[i] = fresh;
            if o.restart_rabbitmq && !rabbit_restarted && kills >= o.kills / 2 {
                rabbit_restarted = true;
                restart_rabbitmq().await?;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let wall = run_started.elapsed();
    for w in &mut deployment.workers {
        terminate(w, Duration::from_secs(15)).await;
    }
    terminate(&mut deployment.api, Duration::from_secs(15)).await;

    // Judge from the platform's journal and the API's report.
    let journal = journal_platform::read_journal(&pool).await?;
    let user = UserId::new(USER);
    let mut reported = Vec::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for id in &tasks {
        let task = stores.tasks.get_task(user, *id).await?;
        for target in stores.tasks.targets(user, *id, 0, 0).await? {
            *by_status.entry(format!("{:?}", target.status)).or_default() += 1;
            reported.push(ReportedTarget::new(&task, &target));
        }
        println!(
            "task {} {:<20} {:?}{}",
            task.id,
            task.name,
            task.status,
            task.status_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    let strict = invite_http::runtime::sandbox_policy(&invite_http::config::SandboxSettings {
        time_scale: o.time_scale,
        ..invite_http::config::SandboxSettings::default()
    });
    let tolerant = with_tolerance(strict, o.tolerance);
    let report = check(&journal, &reported, &tolerant);
    let strict_caps = check(&journal, &reported, &strict).cap_violations.len();
    let writes = journal
        .iter()
        .filter(|e| e.call.is_write() && e.reach != invite_core::chaos::Reach::NotReached)
        .count();
    let delivered = journal
        .iter()
        .filter(|e| e.reach == invite_core::chaos::Reach::Delivered)
        .count();
    let stuck = reported
        .iter()
        .filter(|r| matches!(r.status, TargetStatus::Pending | TargetStatus::InProgress))
        .count();
    for f in report
        .duplicates
        .iter()
        .chain(&report.lost)
        .chain(&report.cap_violations)
        .chain(&report.mismatched)
        .take(20)
    {
        println!("  finding: {} — {}", f.rule, f.detail);
    }
    println!("targets by status: {by_status:?}");
    println!(
        "rescued: {} claims of killed workers turned uncertain and reconciled by the others",
        rescued_claims(&logs)
    );
    println!(
        "journal: {} calls, {writes} charged writes, {delivered} delivered; {:.1} delivered per minute over {:.0} s",
        journal.len(),
        delivered as f64 * 60.0 / wall.as_secs_f64().max(1.0),
        wall.as_secs_f64()
    );
    println!(
        "rabbitmq restarted: {}; workers started: {} ({exited} after exiting by themselves); total wall time {:.0} s",
        if rabbit_restarted { "yes" } else { "no" },
        deployment.started,
        started_at.elapsed().as_secs_f64()
    );
    println!(
        "mismatched outcomes: {}; stuck targets: {stuck}; cap violations with no clock tolerance: {strict_caps} (tolerance {} ms between the ledger's and the platform's clock reads)",
        report.mismatched.len(),
        o.tolerance.num_milliseconds()
    );
    pool.close().await;
    stores.close().await;
    if let Err(e) = delete_queues(&amqp_url, &prefix).await {
        println!("queues {prefix}* not deleted: {e}");
    }
    if o.keep {
        println!("database kept: {}", db.url);
    } else {
        db.drop_database().await;
    }
    println!("kills: {kills}");
    println!("duplicates: {}", report.duplicates.len());
    println!("lost: {}", report.lost.len());
    println!("cap violations: {}", report.cap_violations.len());
    if !report.duplicates.is_empty() || !report.lost.is_empty() || !report.cap_violations.is_empty()
    {
        std::process::exit(1);
    }
    Ok(())
}

/// `policy` with the minimum pause shortened, and the rolling window narrowed, by
/// `tolerance`: the ledger reads the clock when it grants a slot, the platform when the call
/// arrives, some milliseconds later in another process.
/// The tolerance is at most half of each pause and a tenth of the window, so a high time
/// scale is still judged (if strictly, by timing noise).
fn with_tolerance(policy: LimitPolicy, tolerance: TimeDelta) -> LimitPolicy {
    let mut p = policy;
    p.invite.pause_min = p.invite.pause_min - tolerance.min(p.invite.pause_min / 2);
    p.message.pause_min = p.message.pause_min - tolerance.min(p.message.pause_min / 2);
    p.window = p.window - (tolerance * 2).min(p.window / 10);
    p
}

/// Restarts the local RabbitMQ (the broker's application, not its node: queues are durable,
/// messages persistent).
async fn restart_rabbitmq() -> Result<()> {
    println!("restarting RabbitMQ");
    for args in [["stop_app"], ["start_app"]] {
        let status = Command::new("rabbitmqctl").args(args).status().await?;
        anyhow::ensure!(status.success(), "rabbitmqctl {args:?} failed");
    }
    Ok(())
}

/// Claims the workers rescued, from their logs (`claims of a stopped worker turned
/// uncertain`, with a count).
fn rescued_claims(logs: &std::path::Path) -> u64 {
    let Ok(dir) = std::fs::read_dir(logs) else {
        return 0;
    };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.contains("claims of a stopped worker turned uncertain"))
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["count"].as_u64())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Deletes the run's queues and exchange from the broker (it is shared).
async fn delete_queues(url: &str, prefix: &str) -> Result<()> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let connection =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    for queue in ["invite-high-priority", "invite-normal", "invite-low"] {
        channel
            .queue_delete(
                format!("{prefix}{queue}").as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await?;
    }
    channel
        .exchange_delete(
            format!("{prefix}invite.events").as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await?;
    connection.close(200, "done".into()).await?;
    Ok(())
}
