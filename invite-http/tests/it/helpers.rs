//! A real server on `127.0.0.1:0` over the same wiring as the binary, and a real HTTP client.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::clock::{Clock, SystemClock, VirtualClock};
use invite_core::domain::UserId;
use invite_core::ports::Secret;
use invite_http::auth::issue_token;
use invite_http::config::{Config, SandboxSettings, Storage};
use invite_http::observe::install_recorder;
use invite_http::runtime::{Runtime, RuntimeOptions};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";

/// How the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Not in the background: the test drives it on a virtual clock (real Telegram pacing,
    /// simulated hours pass in moments).
    Virtual,
    /// In the background on the system clock, with the sandbox's pacing scaled down.
    Background,
}

/// The store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// The in-memory ports.
    Memory,
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh database on the PostgreSQL server at `DATABASE_TEST_URL`.
    Postgres,
}

/// A database made for one test, removed when the test's server goes.
#[derive(Debug)]
enum Scratch {
    None,
    File(std::path::PathBuf),
    Postgres(String),
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match self {
            Scratch::None => {}
            Scratch::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Scratch::Postgres(name) => {
                let name = name.clone();
                // Drop runs inside the test's runtime: use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        use invite_store::sqlx::{Connection, PgConnection};
                        if let Ok(mut admin) =
                            PgConnection::connect(&invite_store::test_util::postgres_admin_url())
                                .await
                        {
                            let _ = invite_store::sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut admin)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

fn suffix() -> String {
    invite_store::test_util::random_suffix()
}

/// Storage for one test; `None` (after a skip line) when PostgreSQL is unreachable and
/// `INVITE_REQUIRE_SERVICES` is not `1`.
async fn scratch(db: Db) -> Option<(Storage, Scratch)> {
    match db {
        Db::Memory => Some((Storage::Memory, Scratch::None)),
        Db::Sqlite => {
            let path = std::env::temp_dir().join(format!("invite-http-test-{}.db", suffix()));
            let url = format!("sqlite://{}", path.display());
            Some((Storage::Database(Secret::new(url)), Scratch::File(path)))
        }
        Db::Postgres => {
            // The helper's admin connection belongs to this runtime; the drop opens its own.
            let db = invite_store::test_util::PostgresDatabase::create().await?;
            let (name, url) = (db.name.clone(), db.url.clone());
            drop(db);
            Some((Storage::Database(Secret::new(url)), Scratch::Postgres(name)))
        }
    }
}

/// Runs each listed test body (`async fn name(db: Db)`) on the in-memory store, SQLite and
/// PostgreSQL: `name::memory`, `name::sqlite`, `name::postgres`.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::helpers::Db;

                #[tokio::test]
                async fn memory() {
                    super::$name(Db::Memory).await;
                }

                #[tokio::test]
                async fn sqlite() {
                    super::$name(Db::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(Db::Postgres).await;
                }
            }
        )*
    };
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub runtime: Runtime,
    pub clock: Option<Arc<VirtualClock>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _scratch: Scratch,
}

pub fn t0() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

pub fn config() -> Config {
    Config {
        storage: Storage::Memory,
        sandbox: SandboxSettings {
            time_scale: 1,
            accounts: 4,
            seed: 42,
        },
        ..Config::default()
    }
}

/// A server on `db` with a virtual engine; `None` when the database is not available.
pub async fn server(db: Db) -> Option<TestServer> {
    server_with(db, config(), Engine::Virtual).await
}

pub async fn server_with(db: Db, config: Config, engine: Engine) -> Option<TestServer> {
    let telegram = Arc::new(invite_telegram::fake::FakeTelegram::new());
    server_with_telegram(db, config, engine, telegram).await
}

/// [`server_with`] whose Telegram is the given connector (a fake Telegram).
pub async fn server_with_telegram(
    db: Db,
    mut config: Config,
    engine: Engine,
    telegram: Arc<dyn invite_telegram::Connector>,
) -> Option<TestServer> {
    let (storage, scratch) = scratch(db).await?;
    config.storage = storage;
    let (clock, virtual_clock): (Arc<dyn Clock>, _) = match engine {
        Engine::Virtual => {
            let c = Arc::new(VirtualClock::auto(t0()));
            (c.clone(), Some(c))
        }
        Engine::Background => {
            config.sandbox.time_scale = 86_400;
            (Arc::new(SystemClock), None)
        }
    };
    // The test secret, unless the configuration names Vault.
    let secrets = match &config.vault {
        Some(_) => {
            invite_http::runtime::secret_source(&config, clock.clone())
                .unwrap()
                .store
        }
        None => invite_http::runtime::embedded_secrets(&Secret::new(SECRET)),
    };
    if config.telegram.secret_key.is_none() {
        // A key per test, so no key file is left behind.
        config.telegram.secret_key = Some(Secret::new(
            invite_store::seal::SecretKey::generate()
                .unwrap()
                .to_base64(),
        ));
    }
    let runtime = Runtime::build_with_telegram(
        &config,
        RuntimeOptions {
            clock,
            secrets,
            secret_generated: false,
            metrics: Some(install_recorder()),
        },
        telegram,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    if engine == Engine::Background {
        runtime.spawn(&tracker, cancel.clone());
    }
    let state = runtime.state.clone();
    let stop = cancel.clone();
    tracker.spawn(async move {
        invite_http::serve(listener, state, async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    Some(TestServer {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        runtime,
        clock: virtual_clock,
        cancel,
        tracker,
        _scratch: scratch,
    })
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.tracker.close();
    }
}

/// A valid token of `user`, signed with the test secret.
pub fn token(user: i64) -> String {
    issue_token(
        &Secret::new(SECRET),
        UserId::new(user),
        Utc::now(),
        TimeDelta::hours(1),
        None,
        None,
    )
}

/// A task body with `n` distinct sandbox targets.
pub fn task_body(name: &str, n: usize) -> Value {
    let targets: Vec<String> = (0..n).map(|i| format!("@person_{i:05}")).collect();
    json!({
        "name": name,
        "platform": "sandbox",
        "action": "invite",
        "group": "@launch_group",
        "targets": targets,
    })
}

impl TestServer {
    /// The SQLite file of the test, if it runs on one.
    pub fn database_file(&self) -> Option<std::path::PathBuf> {
        match &self._scratch {
            Scratch::File(path) => Some(path.clone()),
            _ => None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn api(&self, path: &str) -> String {
        self.url(&format!("/api/v1/invite{path}"))
    }

    /// A request to an API path as `user` (no token when `None`).
    pub fn req(&self, method: Method, path: &str, user: Option<i64>) -> RequestBuilder {
        let r = self.client.request(method, self.api(path));
        match user {
            Some(u) => r.bearer_auth(token(u)),
            None => r,
        }
    }

    pub async fn get(&self, path: &str, user: i64) -> Response {
        self.req(Method::GET, path, Some(user))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, user: i64, body: Option<Value>) -> Response {
        let r = self.req(Method::POST, path, Some(user));
        let r = match body {
            Some(b) => r.json(&b),
            None => r,
        };
        r.send().await.unwrap()
    }

    /// Creates a task and returns its id.
    pub async fn create(&self, user: i64, body: Value) -> i64 {
        let r = self.post("/tasks", user, Some(body)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["task"]["id"]
            .as_i64()
            .unwrap()
    }

    /// The JSON of a `GET` that must answer 200.
    pub async fn get_ok(&self, path: &str, user: i64) -> Value {
        let r = self.get(path, user).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn status_of(&self, user: i64, id: i64) -> Value {
        self.get_ok(&format!("/tasks/{id}/status"), user).await
    }

    /// Runs the engine on the virtual clock until no task is runnable.
    pub async fn drive(&self) {
        assert!(self.clock.is_some(), "only a virtual engine is driven");
        self.runtime.engine.run_until_idle(|_| {}).await.unwrap();
    }

    /// Waits, bounded, for the background engine to bring the task to `status`: wakes on
    /// every status change or finished target, never on a timer.
    pub async fn wait_for(&self, user: i64, id: i64, status: &str) -> Value {
        let mut changes = self.runtime.changes();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status_of(user, id).await;
            if s["status"] == status {
                return s;
            }
            let wait = tokio::time::timeout_at(deadline, changes.changed()).await;
            assert!(
                matches!(wait, Ok(Ok(()))),
                "task {id} did not reach {status}: {s}"
            );
        }
    }
}

/// Asserts a problem document and returns it.
pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status, "unexpected status");
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}
