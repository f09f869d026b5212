//! The harness of the contract suite: a [`Backend`] opens a fresh, migrated database and hands
//! the ports to a test as a [`Ctx`]; [`run`] tears the database down even when the test fails.
//!
//! Adding a backend is a type implementing [`Backend`] and one `contract_suite!` line in
//! `main.rs`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use invite_core::domain::{
    AccountId, Action, ExecutionStatus, GroupRef, NewExecutionLog, NewTarget, NewTask, Outcome,
    Platform, Priority, Target, TargetIdentifier, TaskEvent, TaskId, TaskSettings, UserId,
};
use invite_core::ports::{
    AccountLeases, AccountRegistry, Claim, ClaimStage, LimitLedger, OutcomeRecord, SuppressionList,
    TaskStore,
};
use invite_core::sandbox::{MemoryWorld, SandboxWorld};
use invite_store::test_util::{PostgresDatabase, random_suffix};
use invite_store::{PoolConfig, Stores};

/// The ports under test, plus a way to open another handle on the same database.
#[derive(Clone)]
pub struct Ctx {
    pub tasks: Arc<dyn TaskStore>,
    pub ledger: Arc<dyn LimitLedger>,
    pub suppression: Arc<dyn SuppressionList>,
    pub leases: Arc<dyn AccountLeases>,
    pub registry: Arc<dyn AccountRegistry>,
    pub sandbox: Arc<dyn SandboxWorld>,
    another: Arc<dyn Fn() -> BoxFuture<'static, Ctx> + Send + Sync>,
}

impl Ctx {
    fn of(
        stores: &Stores,
        another: Arc<dyn Fn() -> BoxFuture<'static, Ctx> + Send + Sync>,
    ) -> Self {
        Self {
            tasks: stores.tasks.clone(),
            ledger: stores.ledger.clone(),
            suppression: stores.suppression.clone(),
            leases: stores.leases.clone(),
            registry: stores.registry.clone(),
            sandbox: stores.sandbox.clone(),
            another,
        }
    }

    /// Another handle on the same database, with its own connections where the backend has
    /// them (as a second worker process would).
    pub async fn another(&self) -> Ctx {
        (self.another)().await
    }
}

/// An opened test database.
pub struct Harness {
    pub ctx: Ctx,
    pub teardown: BoxFuture<'static, ()>,
}

/// A backend the contract suite runs against.
pub trait Backend {
    /// A fresh, migrated database, or `None` when the backend is unavailable and may be skipped.
    fn open() -> impl Future<Output = Option<Harness>>;
}

/// Runs one contract test on a fresh database of `B`.
pub async fn run<B, F, Fut>(test: F)
where
    B: Backend,
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(Harness { ctx, teardown }) = B::open().await else {
        return;
    };
    let outcome = AssertUnwindSafe(test(ctx)).catch_unwind().await;
    teardown.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn pool_config() -> PoolConfig {
    PoolConfig {
        max_connections: 4,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(30),
    }
}

/// The in-memory store of `invite-core`: the reference the SQL stores must agree with.
pub struct Memory;

impl Backend for Memory {
    async fn open() -> Option<Harness> {
        let store = Arc::new(invite_core::memory::MemoryStore::new());
        let ledger = Arc::new(invite_core::memory::MemoryLedger::new());
        let world = Arc::new(MemoryWorld::new());
        let registry = Arc::new(invite_core::memory::MemoryRegistry::new());
        let handle = move |another| Ctx {
            tasks: store.clone(),
            ledger: ledger.clone(),
            suppression: store.clone(),
            leases: store.clone(),
            registry: registry.clone(),
            sandbox: world.clone(),
            another,
        };
        let inner = handle(Arc::new(|| unreachable!("nested handle")));
        // One process holds the data: another handle is the same one.
        let another: Arc<dyn Fn() -> BoxFuture<'static, Ctx> + Send + Sync> = Arc::new(move || {
            let ctx = inner.clone();
            async move { ctx }.boxed()
        });
        let ctx = handle(another);
        Some(Harness {
            ctx,
            teardown: async {}.boxed(),
        })
    }
}

/// SQLite in memory: one connection, one database per test.
pub struct SqliteMemory;

impl Backend for SqliteMemory {
    async fn open() -> Option<Harness> {
        let stores = invite_store::connect("sqlite::memory:", pool_config())
            .await
            .expect("open SQLite in memory");
        stores.migrate().await.expect("migrate");
        // A memory database lives in its pool: another handle is the same one.
        let same = stores.clone();
        let another: Arc<dyn Fn() -> BoxFuture<'static, Ctx> + Send + Sync> = Arc::new(move || {
            let stores = same.clone();
            async move { Ctx::of(&stores, Arc::new(|| unreachable!("nested handle"))) }.boxed()
        });
        let ctx = Ctx::of(&stores, another);
        let teardown = async move { stores.close().await }.boxed();
        Some(Harness { ctx, teardown })
    }
}

/// SQLite on a temporary file (WAL): handles are separate pools, as separate processes.
pub struct SqliteFile;

impl Backend for SqliteFile {
    async fn open() -> Option<Harness> {
        let path: PathBuf =
            std::env::temp_dir().join(format!("invite-store-test-{}.db", random_suffix()));
        let url = format!("sqlite://{}", path.display());
        let opened = Arc::new(Mutex::new(Vec::<Stores>::new()));
        let stores = invite_store::connect(&url, pool_config())
            .await
            .expect("open SQLite file");
        stores.migrate().await.expect("migrate");
        opened.lock().unwrap().push(stores.clone());
        let another = handle_opener(url, opened.clone());
        let ctx = Ctx::of(&stores, another);
        let teardown = async move {
            close_all(&opened).await;
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
        .boxed();
        Some(Harness { ctx, teardown })
    }
}

/// PostgreSQL: a new database `invite_test_<random>` per test on the server at
/// `DATABASE_TEST_URL`, dropped afterwards.
pub struct Postgres;

impl Backend for Postgres {
    async fn open() -> Option<Harness> {
        let db = PostgresDatabase::create().await?;
        let url = db.url.clone();
        let opened = Arc::new(Mutex::new(Vec::<Stores>::new()));
        let stores = invite_store::connect(&url, pool_config())
            .await
            .expect("connect to test database");
        stores.migrate().await.expect("migrate");
        opened.lock().unwrap().push(stores.clone());
        let another = handle_opener(url, opened.clone());
        let ctx = Ctx::of(&stores, another);
        let teardown = async move {
            close_all(&opened).await;
            db.drop_database().await;
        }
        .boxed();
        Some(Harness { ctx, teardown })
    }
}

fn handle_opener(
    url: String,
    opened: Arc<Mutex<Vec<Stores>>>,
) -> Arc<dyn Fn() -> BoxFuture<'static, Ctx> + Send + Sync> {
    Arc::new(move || {
        let url = url.clone();
        let opened = opened.clone();
        async move {
            let stores = invite_store::connect(&url, pool_config())
                .await
                .expect("open another handle");
            opened.lock().unwrap().push(stores.clone());
            Ctx::of(&stores, Arc::new(|| unreachable!("nested handle")))
        }
        .boxed()
    })
}

async fn close_all(opened: &Mutex<Vec<Stores>>) {
    let all: Vec<Stores> = std::mem::take(&mut *opened.lock().unwrap());
    for stores in all {
        stores.close().await;
    }
}

// ---- fixtures ----

/// A fixed instant: tests never read the clock.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub const ALICE: UserId = UserId::new(1001);
pub const BOB: UserId = UserId::new(2002);

pub fn acc(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

pub fn ident(input: &str) -> TargetIdentifier {
    TargetIdentifier::parse(input, Platform::Telegram, &Default::default()).unwrap()
}

pub fn target(input: &str) -> NewTarget {
    NewTarget::new(ident(input))
}

/// `n` distinct username targets: `member_00000`, `member_00001`, …
pub fn members(range: std::ops::Range<usize>) -> Vec<NewTarget> {
    range.map(|i| target(&format!("member_{i:05}"))).collect()
}

pub fn invite_settings(group: &str) -> TaskSettings {
    TaskSettings {
        action: Action::Invite {
            group: GroupRef::parse(group).unwrap(),
        },
        accounts: None,
        add_to_contacts: false,
        dedupe_days: None,
    }
}

pub fn new_task(user: UserId, name: &str) -> NewTask {
    NewTask {
        user_id: user,
        name: name.to_owned(),
        platform: Platform::Telegram,
        priority: Priority::Medium,
        settings: invite_settings("@test_group"),
        scheduled_at: None,
    }
}

/// Creates a task of `user` with `targets`; returns its id.
pub async fn seed(ctx: &Ctx, user: UserId, targets: Vec<NewTarget>) -> TaskId {
    ctx.tasks
        .create_task(new_task(user, "campaign"), targets, None, t0())
        .await
        .unwrap()
        .task
        .id
}

/// Creates a task of `user` with `targets` and starts it (only a running task's targets are
/// claimed); returns its id.
pub async fn seed_running(ctx: &Ctx, user: UserId, targets: Vec<NewTarget>) -> TaskId {
    let id = seed(ctx, user, targets).await;
    let start = TaskEvent::Start {
        scheduled_later: false,
    };
    ctx.tasks
        .transition(user, id, start, None, t0())
        .await
        .unwrap();
    id
}

/// The worker that holds the claims of a test unless it says otherwise.
pub const HOLDER: &str = "worker-test";

/// A first-stage claim of `task`'s next target by `account` at `now` (held by [`HOLDER`]);
/// `random_high` for a message.
pub fn claim(
    task: TaskId,
    account: &AccountId,
    now: DateTime<Utc>,
    random_high: Option<u32>,
) -> Claim {
    Claim {
        task,
        account: account.clone(),
        holder: HOLDER.to_owned(),
        now,
        random_high,
        stage: ClaimStage::First,
    }
}

/// Claims `claim`'s target; panics when there is none.
pub async fn take(ctx: &Ctx, claim: &Claim) -> Target {
    ctx.tasks
        .claim_target(claim)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("nothing to claim for {claim:?}"))
}

pub fn log(task: TaskId, target: Option<&Target>, account: &AccountId) -> NewExecutionLog {
    NewExecutionLog {
        task_id: task,
        target_id: target.map(|t| t.id),
        account_id: account.clone(),
        action: "invite".into(),
        status: ExecutionStatus::Pending,
        outcome: None,
        error_kind: None,
        error_code: None,
        latency_ms: None,
        created_at: t0(),
    }
}

/// The record of a claimed target's end.
pub fn record(
    claimed: &Target,
    account: &AccountId,
    outcome: Outcome,
    at: DateTime<Utc>,
) -> OutcomeRecord {
    let mut entry = log(claimed.task_id, Some(claimed), account);
    entry.status = ExecutionStatus::from_outcome(outcome);
    entry.outcome = Some(outcome);
    entry.created_at = at;
    entry.latency_ms = Some(120);
    OutcomeRecord {
        target_id: claimed.id,
        account_id: account.clone(),
        outcome,
        error_message: None,
        result: serde_json::json!({"ok": true}),
        at,
        log: entry,
    }
}
