//! The platform's services end to end: the reference Account Manager (a real server on
//! 127.0.0.1:0 over the embedded limits), a stand-in Integration Service (wiremock: another
//! team's service), a Vault-compatible server holding the accounts' sessions and the api
//! credentials written here, and `invite-http` configured for all three. A Telegram task (a
//! fake Telegram behind the seam) runs to completion with every action checked by the
//! Account Manager, whose journal shows allocate → check → release per action; a denied check
//! stops its action.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::async_trait;
use invite_core::clock::Clock;
use invite_core::domain::{AccountId, UserId};
use invite_core::limits::LocalAccountManager;
use invite_core::memory::MemoryLedger;
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, Allocation, AllocationRequest, ErrorReport,
    LimitReason, LimitScope, RateDecision, RateLimitCheck, Secret, UsageStats,
};
use invite_http::auth::issue_token;
use invite_http::config::PlatformServices;
use invite_platform::test_util::{VaultAdmin, random_suffix};
use invite_telegram::fake::FakeTelegram;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Engine, config, server_with_telegram, t0};

const JWT_PATH: &str = "invite-service/jwt_secret";
const SERVICE_SECRET: &str = "service-token-secret-shared-by-the-platform";
const API_HASH: &str = "0123456789abcdef0123456789abcdef";

/// The test server's clock, known only once the server is built: the Account Manager reads
/// it from then on, so both sides see the same (virtual) time.
#[derive(Debug, Default)]
struct LateClock(OnceLock<Arc<dyn Clock>>);

#[async_trait]
impl Clock for LateClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.get().map_or_else(t0, |c| c.now())
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        if let Some(c) = self.0.get() {
            c.sleep_until(deadline).await;
        }
    }
}

/// One call the Account Manager answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Allocate(AccountId),
    Unavailable,
    Allowed(AccountId),
    Waited(AccountId),
    Denied(AccountId),
    Release(AccountId),
    Error(AccountId),
}

/// The local manager behind the reference server, journaling what it answers; it denies the
/// first `deny` checks itself.
#[derive(Debug)]
struct Journaled {
    inner: LocalAccountManager,
    calls: Mutex<Vec<Call>>,
    deny: AtomicUsize,
    /// Answers every call 503, as a load balancer does in front of a dead manager.
    down: AtomicBool,
    /// Goes down right after answering the next allowed check: that action's release cannot
    /// reach it.
    down_after_allowed: AtomicBool,
}

impl Journaled {
    fn new(inner: LocalAccountManager, deny: usize) -> Self {
        Self {
            inner,
            calls: Mutex::new(Vec::new()),
            deny: AtomicUsize::new(deny),
            down: AtomicBool::new(false),
            down_after_allowed: AtomicBool::new(false),
        }
    }

    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn up(&self) -> Result<(), AccountManagerError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AccountManagerError::Unavailable(
                "the manager is down".to_owned(),
            ));
        }
        Ok(())
    }

    fn allowed(&self) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| matches!(c, Call::Allowed(_)))
            .count()
    }
}

/// The reference server over `manager` on 127.0.0.1:0, its holds lasting the default TTL
/// (600 s: a release lost while the manager is away is made again by the engine, not left to
/// the TTL); its URL.
async fn serve(manager: Arc<Journaled>, clock: Arc<dyn Clock>) -> String {
    let router = invite_platform::account_manager::server::router(
        manager,
        Secret::new(SERVICE_SECRET),
        clock,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[async_trait]
impl AccountManager for Journaled {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        self.up()?;
        let answer = self.inner.allocate_account(request).await?;
        self.push(match &answer {
            Allocation::Granted(id) => Call::Allocate(id.clone()),
            Allocation::Unavailable { .. } => Call::Unavailable,
        });
        Ok(answer)
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        self.up()?;
        let account = check.account_id.clone();
        if self
            .deny
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.push(Call::Denied(account));
            return Ok(RateDecision::Denied {
                reason: LimitReason::AccountWindow,
                permanent: false,
                scope: LimitScope::Account,
            });
        }
        let answer = self.inner.check_rate_limit(check).await?;
        self.push(match answer {
            RateDecision::Allowed { .. } => Call::Allowed(account),
            RateDecision::Wait { .. } => Call::Waited(account),
            RateDecision::Denied { .. } => Call::Denied(account),
        });
        if matches!(answer, RateDecision::Allowed { .. })
            && self.down_after_allowed.swap(false, Ordering::SeqCst)
        {
            self.down.store(true, Ordering::SeqCst);
        }
        Ok(answer)
    }

    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError> {
        self.up()?;
        self.inner.release_account(account, usage).await?;
        self.push(Call::Release(account.clone()));
        Ok(())
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        self.up()?;
        self.push(Call::Error(account.clone()));
        self.inner.handle_error(account, report).await
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        self.up()?;
        self.inner.account_state(account).await
    }

    async fn account_states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        self.up()?;
        self.inner.account_states(accounts).await
    }
}

fn session(seed: u8) -> String {
    let key: Vec<u8> = (0..256_u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ 0x3c)
        .collect();
    invite_telegram::session::telethon_string(
        2,
        std::net::Ipv4Addr::new(149, 154, 167, 51).into(),
        443,
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn a_telegram_task_runs_on_the_platforms_services() {
    let Some(admin) = VaultAdmin::connect().await else {
        return;
    };
    // Vault: the API's JWT secret, two accounts' sessions and the api credentials.
    let base = format!("invite-e2e-{}", random_suffix());
    let role = admin
        .role_for(&[JWT_PATH, &format!("{base}/*")], json!({}))
        .await;
    let jwt_secret = format!("jwt-secret-of-the-e2e-test-{}", random_suffix());
    admin
        .put(JWT_PATH, json!({ "secret_key": jwt_secret }))
        .await;
    let accounts = [
        "3f2b8c1e-5a4d-4c3b-9e8f-0a1b2c3d4e5f",
        "7c6d5e4f-3a2b-4c1d-8e9f-a0b1c2d3e4f5",
    ];
    let fake = FakeTelegram::new();
    for (i, id) in accounts.iter().enumerate() {
        let s = session(40 + i as u8);
        fake.add_account(&s, 7100 + i as i64, None);
        admin
            .put(
                &format!("{base}/sessions/{id}"),
                json!({ "session_string": s }),
            )
            .await;
    }
    admin
        .put(
            &format!("{base}/api_credentials"),
            json!({ "api_id": "12345", "api_hash": API_HASH }),
        )
        .await;

    // The Integration Service: the user's two accounts.
    let integration = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts"))
        .and(query_param("user_id", "1"))
        .and(query_param("platform", "telegram"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accounts": accounts.iter().map(|id| json!({
                "id": id, "platform": "telegram", "status": "active", "name": "sender"
            })).collect::<Vec<_>>()
        })))
        .mount(&integration)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"accounts": []})))
        .mount(&integration)
        .await;

    // The reference Account Manager, denying the first check it is asked.
    let clock = Arc::new(LateClock::default());
    let journal = Arc::new(Journaled::new(
        LocalAccountManager::new(Arc::new(MemoryLedger::new()), clock.clone(), 3),
        1,
    ));
    let am_url = serve(journal.clone(), clock.clone()).await;

    let mut c = config();
    c.vault = Some(role.config(&admin.addr));
    c.platform = PlatformServices {
        account_manager_url: Some(am_url.clone()),
        integration_url: Some(integration.uri()),
        service: Some(("invite-service".to_owned(), Secret::new(SERVICE_SECRET))),
        sessions_path: format!("secret/{base}/sessions"),
        api_credentials_path: format!("secret/{base}/api_credentials"),
    };
    let s = server_with_telegram(
        crate::helpers::Db::Memory,
        c,
        Engine::Virtual,
        Arc::new(fake.clone()),
    )
    .await
    .unwrap();
    clock.0.set(s.clock.clone().unwrap()).expect("set once");
    let token = issue_token(
        &Secret::new(jwt_secret.clone()),
        UserId::new(1),
        Utc::now(),
        TimeDelta::hours(1),
        None,
        None,
    );

    let health: Value = s
        .client
        .get(s.api("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let line = |name: &str| {
        health["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {health}"))
    };
    let manager = line("account_manager");
    assert_eq!(manager["status"], "ok", "{health}");
    assert!(manager["detail"].as_str().unwrap().contains(&am_url));
    assert_eq!(line("integration_service")["status"], "ok", "{health}");

    let targets: Vec<String> = (0..4).map(|i| format!("@platform_reader_{i}")).collect();
    let created = s
        .client
        .post(s.api("/tasks"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "platform launch", "platform": "telegram", "action": "invite",
            "group": "@platform_group", "targets": targets,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let task = created.json::<Value>().await.unwrap()["task"]["id"]
        .as_i64()
        .unwrap();
    let started = s
        .client
        .post(s.api(&format!("/tasks/{task}/start")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    s.drive().await;
    let status: Value = s
        .client
        .get(s.api(&format!("/tasks/{task}/status")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(fake.invited().len(), 4, "each target invited once");

    // The Account Manager's journal: every account is allocated before it is checked, and
    // released before it is allocated again; no write went without an allowed check.
    let calls = journal.calls.lock().unwrap().clone();
    let mut held: std::collections::HashSet<AccountId> = Default::default();
    for call in &calls {
        match call {
            Call::Allocate(a) => assert!(held.insert(a.clone()), "{a} allocated twice: {calls:?}"),
            Call::Allowed(a) | Call::Waited(a) | Call::Denied(a) => {
                assert!(held.contains(a), "{a} checked while not held: {calls:?}");
            }
            Call::Release(a) => assert!(held.remove(a), "{a} released while not held"),
            Call::Unavailable | Call::Error(_) => {}
        }
    }
    assert!(
        held.is_empty(),
        "every account released at the end: {calls:?}"
    );
    let allowed = calls
        .iter()
        .filter(|c| matches!(c, Call::Allowed(_)))
        .count();
    let denied = calls
        .iter()
        .filter(|c| matches!(c, Call::Denied(_)))
        .count();
    assert_eq!(denied, 1, "{calls:?}");
    assert!(
        fake.writes() <= allowed,
        "{} writes, {allowed} allowed checks",
        fake.writes()
    );
    // The denied check's action was not taken: the account was let go right after it.
    let at = calls
        .iter()
        .position(|c| matches!(c, Call::Denied(_)))
        .unwrap();
    let Call::Denied(account) = &calls[at] else {
        unreachable!()
    };
    let next = calls[at + 1..]
        .iter()
        .find(|c| match c {
            Call::Allowed(a) | Call::Release(a) | Call::Waited(a) => a == account,
            _ => false,
        })
        .unwrap();
    assert_eq!(next, &Call::Release(account.clone()), "{calls:?}");
    // Every account the task used is one of the Integration Service's.
    for call in &calls {
        if let Call::Allocate(a) = call {
            assert!(accounts.contains(&a.as_str()), "{a}");
        }
    }
}

fn done(report: &Value) -> u64 {
    let c = &report["counts"];
    ["success", "failed", "skipped", "uncertain"]
        .iter()
        .map(|k| c[k].as_u64().unwrap_or(0))
        .sum()
}

/// The task's report (its counts come from the store alone: the status page also asks the
/// Account Manager for the accounts' states, and answers 503 while it is away).
async fn report(s: &crate::helpers::TestServer, task: i64) -> Value {
    s.get_ok(&format!("/tasks/{task}/report"), 1).await
}

/// invite-http with `c` on the Account Manager at `url`, and a sandbox task of `targets`
/// targets named `name` started on it, once five of them are done.
async fn running_on_manager(
    mut c: invite_http::config::Config,
    url: String,
    name: &str,
    targets: usize,
) -> (crate::helpers::TestServer, i64) {
    c.platform.account_manager_url = Some(url);
    c.platform.service = Some(("invite-service".to_owned(), Secret::new(SERVICE_SECRET)));
    let s = crate::helpers::server_with(crate::helpers::Db::Memory, c, Engine::Background)
        .await
        .unwrap();
    let task = s.create(1, crate::helpers::task_body(name, targets)).await;
    let r = s.post(&format!("/tasks/{task}/start"), 1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while done(&report(&s, task).await) < 5 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (s, task)
}

/// The Account Manager goes away mid-task, right after allowing an action of the task's one
/// account (so that action's release cannot reach it): sending stops (no action without a
/// check, `/health` says so) and resumes when it is back.
///
/// Regression: a release that failed while the manager was away left the account held by it —
/// and the reference server forgot a hold whose release the manager behind failed, so not even
/// its TTL let it go — and the task never resumed (one CI run of three, when the outage happened
/// to catch a release: 8 of 40 done, none after the manager returned). The engine now makes
/// such calls again as soon as the manager answers, and retries every few seconds meanwhile.
#[tokio::test]
async fn sending_pauses_while_the_account_manager_is_away() {
    let mut c = config();
    c.sandbox.time_scale = 86_400;
    // One account: its lost release would stop the whole task (with more, the others finish it).
    c.sandbox.accounts = 1;
    let policy = invite_http::runtime::sandbox_policy(&c.sandbox);
    let clock: Arc<dyn Clock> = Arc::new(invite_core::clock::SystemClock);
    let journal = Arc::new(Journaled::new(
        LocalAccountManager::new(Arc::new(MemoryLedger::new()), clock.clone(), 3)
            .with_policy(invite_core::domain::Platform::Sandbox, policy),
        0,
    ));
    let am_url = serve(journal.clone(), clock).await;
    let (s, task) = running_on_manager(c, am_url, "while away", 40).await;

    journal.down_after_allowed.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !journal.down.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "no check allowed");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (before, allowed) = (done(&report(&s, task).await), journal.allowed());
    assert!(
        before < 40,
        "the task finished before the manager went away"
    );
    // Longer than the client's retries of the release (0.25 + 0.5 + 1 s): it is lost.
    tokio::time::sleep(std::time::Duration::from_millis(2700)).await;
    let now = report(&s, task).await;
    assert_eq!(done(&now), before, "no target done while away: {now}");
    assert_eq!(journal.allowed(), allowed);
    let health: Value = s
        .client
        .get(s.api("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let manager = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "account_manager")
        .unwrap()
        .clone();
    assert_eq!(manager["status"], "down", "{health}");

    // Back: the engine, stepping the account every 5 s meanwhile, makes the release it owes and
    // takes the task up again (if the client's breaker opened, after its 30 s cool-off). The
    // rest takes a few seconds at this time scale; the deadline leaves room for a loaded
    // machine (three times the cool-off), and a task whose account stays held (the defect)
    // never completes.
    journal.down.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let now = report(&s, task).await;
        if now["task"]["status"] == "COMPLETED" {
            assert_eq!(done(&now), 40, "{now}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not resume within 90 s: {} {}",
            now["task"]["status"],
            now["counts"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(journal.allowed() > allowed);
}

/// A child process killed when dropped (a failed test leaves none behind).
struct Process(std::process::Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `invite-http account-manager` as its own process, logging JSON lines to `log`.
fn spawn_account_manager(port: u16, db: &std::path::Path, log: &std::path::Path) -> Process {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_invite-http"))
        .args(["account-manager", "--bind", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("INVITE_SERVICE_JWT_SECRET", SERVICE_SECRET)
        .env("INVITE_SANDBOX_TIME_SCALE", "86400")
        .env("LOG_FORMAT", "json")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .map(Process)
        .expect("invite-http starts")
}

async fn listening(port: u16) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the manager did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The `account manager call` lines of the manager's log: (call, account, answer); each
/// start of the process as `("start", "", "")`.
fn manager_log(log: &std::path::Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| {
            let field = |k: &str| line[k].as_str().unwrap_or_default().to_owned();
            let message = field("message");
            if message.starts_with("reference Account Manager listening") {
                return Some(("start".to_owned(), String::new(), String::new()));
            }
            (message == "account manager call")
                .then(|| (field("call"), field("account"), field("answer")))
        })
        .collect()
}

/// The reference Account Manager as a process (`invite-http account-manager` on SQLite):
/// its own log shows allocate → check → release for every action; killed mid-task, sending
/// stops, and started again on the same database, the task completes.
#[tokio::test]
async fn the_account_manager_process_logs_every_action_and_survives_a_kill() {
    let dir = std::env::temp_dir().join(format!("invite-am-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let (db, log) = (dir.join("am.db"), dir.join("am.log"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = spawn_account_manager(port, &db, &log);
    listening(port).await;

    let (s, task) = running_on_manager(
        config(),
        format!("http://127.0.0.1:{port}"),
        "a process away",
        30,
    )
    .await;

    child.kill();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = done(&report(&s, task).await);
    assert!(
        before < 30,
        "the task finished before the manager was killed"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let now = report(&s, task).await;
    assert_eq!(done(&now), before, "no target done while it is dead: {now}");

    let mut child = spawn_account_manager(port, &db, &log);
    listening(port).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(420);
    loop {
        let now = report(&s, task).await;
        if now["task"]["status"] == "COMPLETED" {
            assert_eq!(done(&now), 30, "{now}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not resume: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill();

    // The manager's log: every check comes while its account is allocated to the caller, and
    // every allocation is released before the account is allocated again. A killed process's
    // holds die with it, so the log is judged per process life.
    let calls = manager_log(&log);
    let starts = calls.iter().filter(|(call, ..)| call == "start").count();
    assert_eq!(starts, 2, "{calls:?}");
    let allowed = calls
        .iter()
        .filter(|(call, _, answer)| call == "check" && answer == "allowed")
        .count();
    assert!(
        allowed >= 30,
        "{allowed} allowed checks for 30 targets: {calls:?}"
    );
    let mut held = std::collections::HashSet::new();
    // Holds of the killed process: a release of one may reach the new process.
    let mut forgotten = std::collections::HashSet::new();
    for (call, account, answer) in &calls {
        match call.as_str() {
            "start" => forgotten.extend(held.drain()),
            "allocate" if answer == "granted" => {
                assert!(held.insert(account.clone()), "{account} allocated twice");
            }
            "check" => assert!(held.contains(account), "{account} checked while not held"),
            "release" => assert!(
                held.remove(account) || forgotten.remove(account),
                "{account} released while not held"
            ),
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
