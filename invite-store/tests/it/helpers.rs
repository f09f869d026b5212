//! The backends the conformance suites of `invite_core::testing` run on: a [`Backend`] opens a
//! fresh, migrated database; [`open`] hands one of its ports to a suite as the subject of one
//! case, with a way to open another handle (its own pool, as a second process) and a teardown
//! that closes every pool and removes the database.
//!
//! Adding a backend is a type implementing [`Backend`] and one `contract_suites!` line in
//! `main.rs`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use invite_core::domain::{
    AccountId, Action, GroupRef, NewTask, Platform, Priority, TaskSettings, UserId,
};
use invite_core::testing::{Opened, Subject};
use invite_store::test_util::{PostgresDatabase, random_suffix};
use invite_store::{PoolConfig, Stores};

/// Opens another handle on the same database.
type Another = Arc<dyn Fn() -> BoxFuture<'static, Stores> + Send + Sync>;

/// An opened test database.
pub struct Harness {
    stores: Stores,
    another: Another,
    teardown: BoxFuture<'static, ()>,
}

/// A backend the suites run against.
pub trait Backend {
    /// A fresh, migrated database, or `None` when the backend is unavailable and may be skipped.
    fn open() -> impl Future<Output = Option<Harness>>;
}

/// One case's subject: the port `project` picks from a fresh database of `B`.
pub async fn open<B, T>(project: fn(&Stores) -> Arc<T>) -> Option<Opened<T>>
where
    B: Backend,
    T: ?Sized + Send + Sync + 'static,
{
    let Harness {
        stores,
        another,
        teardown,
    } = B::open().await?;
    let subject = Subject::new(project(&stores), move || {
        let another = another.clone();
        async move { project(&another().await) }.boxed()
    });
    Some(Opened::new(subject).with_teardown(teardown))
}

fn pool_config() -> PoolConfig {
    PoolConfig {
        max_connections: 4,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(30),
    }
}

/// SQLite in memory: one connection, one database per case.
pub struct SqliteMemory;

impl Backend for SqliteMemory {
    async fn open() -> Option<Harness> {
        let stores = invite_store::connect("sqlite::memory:", pool_config())
            .await
            .expect("open SQLite in memory");
        stores.migrate().await.expect("migrate");
        // A memory database lives in its pool: another handle is the same one.
        let same = stores.clone();
        let another: Another = Arc::new(move || {
            let stores = same.clone();
            async move { stores }.boxed()
        });
        let closing = stores.clone();
        let teardown = async move { closing.close().await }.boxed();
        Some(Harness {
            stores,
            another,
            teardown,
        })
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
        let teardown = async move {
            close_all(&opened).await;
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
        .boxed();
        Some(Harness {
            stores,
            another,
            teardown,
        })
    }
}

/// PostgreSQL: a new database `invite_test_<random>` per case on the server at
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
        let teardown = async move {
            close_all(&opened).await;
            db.drop_database().await;
        }
        .boxed();
        Some(Harness {
            stores,
            another,
            teardown,
        })
    }
}

fn handle_opener(url: String, opened: Arc<Mutex<Vec<Stores>>>) -> Another {
    Arc::new(move || {
        let url = url.clone();
        let opened = opened.clone();
        async move {
            let stores = invite_store::connect(&url, pool_config())
                .await
                .expect("open another handle");
            opened.lock().unwrap().push(stores.clone());
            stores
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

pub const ALICE: UserId = UserId::new(1001);

pub fn acc(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

pub fn new_task(user: UserId, name: &str) -> NewTask {
    NewTask {
        user_id: user,
        name: name.to_owned(),
        platform: Platform::Telegram,
        priority: Priority::Medium,
        settings: TaskSettings {
            action: Action::Invite {
                group: GroupRef::parse("@test_group").unwrap(),
            },
            accounts: None,
            add_to_contacts: false,
            dedupe_days: None,
        },
        scheduled_at: None,
    }
}
