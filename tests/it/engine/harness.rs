//! A harness around the engine: virtual clock, the ports of one store (in memory, SQLite or
//! PostgreSQL), a scriptable sandbox.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::async_trait;
use invite_core::clock::{Clock, VirtualClock};
use invite_core::domain::{
    AccountId, Action, GroupRef, NewTarget, NewTask, Platform, Priority, Target, TargetIdentifier,
    TaskEvent, TaskId, TaskSettings, Template, UserId, Username,
};
use invite_core::engine::{Engine, EngineConfig, EngineParts};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::{MemoryLedger, MemoryStore, RecordedEvents, StaticDirectory};
use invite_core::ports::{
    AccountLeases, AccountManager, ActionResult, InviteStrategy, LimitLedger, PlatformError,
    SuppressionList, TaskStore,
};
use invite_core::sandbox::{SandboxConfig, SandboxStrategy};

pub const USER: UserId = UserId::new(1);

pub fn t0() -> DateTime<Utc> {
    "2026-03-02T12:00:00Z".parse().unwrap()
}

pub fn account(n: usize) -> AccountId {
    AccountId::parse(format!("sandbox-1-{n:02}")).unwrap()
}

/// A policy without spread and without per-channel caps: one action per 10 min, 30 a day.
pub fn simple_policy() -> LimitPolicy {
    let mut p = LimitPolicy::telegram();
    p.invite.spread = false;
    p.invite.per_channel = None;
    p.invite.pause_max = p.invite.pause_min;
    p.message.spread = false;
    p.message.pause_max = p.message.pause_min;
    p
}

/// What a scripted call does instead of the sandbox's answer.
#[derive(Debug, Clone)]
pub enum Script {
    /// The sandbox answers (for scripting a later call).
    Pass,
    /// Fail with this error; nothing is delivered.
    Fail(PlatformError),
    /// Let the sandbox deliver, then fail with this error (a timeout after delivery).
    AfterDelivery(PlatformError),
    /// The process dies before the platform call (after the claim): the call never returns and
    /// [`Scripted::crashed`] fires.
    CrashBefore,
    /// The process dies after the sandbox delivered: the call never returns and
    /// [`Scripted::crashed`] fires.
    CrashAfter,
    /// A bug: the call panics.
    Panic,
    /// The call waits for the notification, then the sandbox answers.
    Hold(Arc<tokio::sync::Notify>),
}

/// One platform call, as the platform saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub account: AccountId,
    pub person: String,
    pub kind: &'static str,
    pub at: DateTime<Utc>,
}

/// The sandbox with per-person scripted answers.
#[derive(Debug)]
pub struct Scripted {
    pub sandbox: SandboxStrategy,
    scripts: Mutex<HashMap<String, VecDeque<Script>>>,
    rights: Mutex<VecDeque<PlatformError>>,
    /// What `group_key` answers (the sandbox's `None` when unset).
    group_key: Mutex<Option<Result<Option<String>, PlatformError>>>,
    pub calls: Mutex<Vec<(AccountId, String)>>,
    pub log: Mutex<Vec<Call>>,
    /// Fires when a scripted crash happens.
    pub crashed: tokio::sync::Notify,
    clock: Arc<dyn Clock>,
}

impl Scripted {
    pub fn new(policy: LimitPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            sandbox: SandboxStrategy::new(SandboxConfig {
                privacy_restricted: 0.0,
                already_member: 0.0,
                not_found: 0.0,
                flood_wait: 0.0,
                peer_flood: 0.0,
                latency_ms: (0, 0),
                limits: policy,
                ..SandboxConfig::default()
            }),
            scripts: Mutex::new(HashMap::new()),
            rights: Mutex::new(VecDeque::new()),
            group_key: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            crashed: tokio::sync::Notify::new(),
            clock,
        }
    }

    /// From now on, resolving a group's stable key answers `answer`.
    pub fn answer_group_keys(&self, answer: Result<Option<String>, PlatformError>) {
        *self.group_key.lock().unwrap() = Some(answer);
    }

    /// The next invite-rights check fails with `error`.
    pub fn script_rights(&self, error: PlatformError) {
        self.rights.lock().unwrap().push_back(error);
    }

    /// The calls made for one person.
    pub fn calls_of(&self, person: &str) -> Vec<Call> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.person == person)
            .cloned()
            .collect()
    }

    async fn crash(&self) -> ! {
        self.crashed.notify_one();
        std::future::pending::<()>().await;
        unreachable!("a crashed call never returns")
    }

    /// Runs `act` (the sandbox's answer) under `person`'s next script.
    async fn scripted<F, Fut>(
        &self,
        account: &AccountId,
        target: &Target,
        kind: &'static str,
        act: F,
    ) -> Result<ActionResult, PlatformError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<ActionResult, PlatformError>>,
    {
        let script = self.next_script(account, target);
        self.log.lock().unwrap().push(Call {
            account: account.clone(),
            person: target.person.identifier.to_string(),
            kind,
            at: self.clock.now(),
        });
        match script {
            None | Some(Script::Pass) => act().await,
            Some(Script::Fail(e)) => Err(e),
            Some(Script::AfterDelivery(e)) => {
                let _ = act().await;
                Err(e)
            }
            Some(Script::CrashBefore) => self.crash().await,
            Some(Script::CrashAfter) => {
                let _ = act().await;
                self.crash().await
            }
            Some(Script::Panic) => panic!("simulated bug in the strategy"),
            Some(Script::Hold(release)) => {
                release.notified().await;
                act().await
            }
        }
    }

    pub fn script(&self, person: &str, script: Script) {
        self.scripts
            .lock()
            .unwrap()
            .entry(person.to_owned())
            .or_default()
            .push_back(script);
    }

    fn next_script(&self, account: &AccountId, target: &Target) -> Option<Script> {
        let who = target.person.identifier.to_string();
        self.calls
            .lock()
            .unwrap()
            .push((account.clone(), who.clone()));
        self.scripts
            .lock()
            .unwrap()
            .get_mut(&who)
            .and_then(VecDeque::pop_front)
    }
}

#[async_trait]
impl InviteStrategy for Scripted {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }
    fn rate_limits(&self) -> LimitPolicy {
        self.sandbox.rate_limits()
    }
    async fn initialize(&self, account: &AccountId) -> Result<(), PlatformError> {
        self.sandbox.initialize(account).await
    }
    async fn check_invite_rights(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<(), PlatformError> {
        let scripted = self.rights.lock().unwrap().pop_front();
        match scripted {
            Some(e) => Err(e),
            None => self.sandbox.check_invite_rights(account, group).await,
        }
    }
    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        self.scripted(account, target, "invite", || {
            self.sandbox.invite(account, target, group)
        })
        .await
    }
    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        self.scripted(account, target, "message", || {
            self.sandbox.send_message(account, target, text, random_id)
        })
        .await
    }
    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError> {
        self.scripted(account, target, "contact", || async {
            self.sandbox
                .add_contact(account, target)
                .await
                .map(|()| ActionResult::new(invite_core::domain::Outcome::Sent))
        })
        .await
        .map(|_| ())
    }
    async fn is_member(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        self.sandbox.is_member(account, target, group).await
    }
    async fn group_key(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<Option<String>, PlatformError> {
        let answer = self.group_key.lock().unwrap().clone();
        match answer {
            Some(answer) => answer,
            None => self.sandbox.group_key(account, group).await,
        }
    }
    async fn disconnect(&self, account: &AccountId) {
        self.sandbox.disconnect(account).await;
    }
}

/// The ports a store provides.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn TaskStore>,
    pub ledger: Arc<dyn LimitLedger>,
    pub suppression: Arc<dyn SuppressionList>,
    pub leases: Arc<dyn AccountLeases>,
}

impl Ports {
    pub fn memory() -> Self {
        let store = Arc::new(MemoryStore::new());
        Self {
            store: store.clone(),
            ledger: Arc::new(MemoryLedger::new()),
            suppression: store.clone(),
            leases: store,
        }
    }

    pub fn of(stores: &invite_store::Stores) -> Self {
        Self {
            store: stores.tasks.clone(),
            ledger: stores.ledger.clone(),
            suppression: stores.suppression.clone(),
            leases: stores.leases.clone(),
        }
    }
}

/// Engine, ports and clock of one test.
pub struct Harness {
    pub clock: Arc<VirtualClock>,
    pub store: Arc<dyn TaskStore>,
    pub suppression: Arc<dyn SuppressionList>,
    pub manager: Arc<LocalAccountManager>,
    pub strategy: Arc<Scripted>,
    pub engine: Arc<Engine>,
    pub policy: LimitPolicy,
    pub accounts: usize,
    /// What the engine announced.
    pub events: Arc<RecordedEvents>,
    cap: Option<u64>,
    ports: Ports,
    /// What the engine's account manager is made of the local one (itself by default).
    wrap: Wrap,
}

/// Makes the engine's account manager of the harness's local one (a decorator that fails some
/// calls, say).
pub type Wrap = Arc<dyn Fn(Arc<LocalAccountManager>) -> Arc<dyn AccountManager> + Send + Sync>;

fn unwrapped() -> Wrap {
    Arc::new(|manager| manager as Arc<dyn AccountManager>)
}

impl Harness {
    pub fn new(ports: Ports, policy: LimitPolicy, accounts: usize) -> Self {
        Self::with_running_cap(ports, policy, accounts, None)
    }

    /// An engine that starts scheduled tasks only while the user runs fewer than `cap`.
    pub fn with_running_cap(
        ports: Ports,
        policy: LimitPolicy,
        accounts: usize,
        cap: Option<u64>,
    ) -> Self {
        let clock = Arc::new(VirtualClock::auto(t0()));
        let strategy = Arc::new(Scripted::new(policy, clock.clone()));
        Self::assemble(clock, ports, strategy, policy, accounts, cap, unwrapped())
    }

    /// The same harness whose engine (now and after restarts) talks to `wrap` of the local
    /// account manager instead of the manager itself.
    pub fn with_manager(self, wrap: Wrap) -> Self {
        Self::assemble(
            self.clock,
            self.ports,
            self.strategy,
            self.policy,
            self.accounts,
            self.cap,
            wrap,
        )
    }

    fn assemble(
        clock: Arc<VirtualClock>,
        ports: Ports,
        strategy: Arc<Scripted>,
        policy: LimitPolicy,
        accounts: usize,
        cap: Option<u64>,
        wrap: Wrap,
    ) -> Self {
        let manager = Arc::new(
            LocalAccountManager::new(ports.ledger.clone(), clock.clone(), 3)
                .with_policy(Platform::Sandbox, policy),
        );
        let directory = StaticDirectory::new().with_sandbox_accounts(USER, accounts);
        let events = Arc::new(RecordedEvents::new());
        let engine = Arc::new(
            Engine::new(
                EngineParts {
                    store: ports.store.clone(),
                    suppression: ports.suppression.clone(),
                    leases: ports.leases.clone(),
                    accounts: wrap(manager.clone()),
                    directory: Arc::new(directory),
                    clock: clock.clone(),
                },
                [strategy.clone() as Arc<dyn InviteStrategy>],
                // One step at a time: the same order of events on every store.
                EngineConfig {
                    max_parallel_steps: 1,
                    max_running_tasks: cap,
                    ..EngineConfig::default()
                },
            )
            .with_events(events.clone())
            .with_ledger(ports.ledger.clone()),
        );
        Self {
            clock,
            store: ports.store.clone(),
            suppression: ports.suppression.clone(),
            manager,
            strategy,
            engine,
            policy,
            accounts,
            cap,
            events,
            ports,
            wrap,
        }
    }

    /// The same store, ledger, clock and platform with a new engine and account manager: a
    /// restarted worker process.
    pub fn restart(&self) -> Self {
        Self::assemble(
            self.clock.clone(),
            self.ports.clone(),
            self.strategy.clone(),
            self.policy,
            self.accounts,
            self.cap,
            self.wrap.clone(),
        )
    }

    /// Runs passes until a scripted crash kills this worker mid-call (its engine is dropped at
    /// that await point), then returns a new worker over the same store, ledger and platform,
    /// 11 minutes later — past the dead worker's heartbeat timeout.
    pub async fn crash_and_restart(&self) -> Harness {
        let crashed = self.strategy.crashed.notified();
        tokio::pin!(crashed);
        loop {
            tokio::select! {
                () = &mut crashed => break,
                report = self.engine.tick() => {
                    let next = report.unwrap().next.expect("the worker crashes before it idles");
                    self.clock.sleep_until(next).await;
                }
            }
        }
        let h2 = self.restart();
        h2.clock.advance(TimeDelta::minutes(11));
        h2
    }

    pub async fn task(&self, priority: Priority, action: Action, people: &[&str]) -> TaskId {
        self.task_on(priority, action, people, None).await
    }

    /// A task that may use only `accounts` (all of the user's when `None`).
    pub async fn task_on(
        &self,
        priority: Priority,
        action: Action,
        people: &[&str],
        accounts: Option<Vec<AccountId>>,
    ) -> TaskId {
        let targets = people
            .iter()
            .map(|p| {
                NewTarget::new(TargetIdentifier::Username(
                    Username::parse(p, Platform::Sandbox).unwrap(),
                ))
            })
            .collect();
        let created = self
            .store
            .create_task(
                NewTask {
                    user_id: USER,
                    name: format!("task {}", people.first().unwrap_or(&"")),
                    platform: Platform::Sandbox,
                    priority,
                    settings: TaskSettings {
                        action,
                        accounts,
                        add_to_contacts: false,
                        dedupe_days: None,
                    },
                    scheduled_at: None,
                },
                targets,
                None,
                self.clock.now(),
            )
            .await
            .unwrap();
        created.task.id
    }

    /// Changes a task's settings (while it is pending).
    pub async fn update_settings(&self, id: TaskId, change: impl FnOnce(&mut TaskSettings)) {
        let mut settings = self.store.get_task(USER, id).await.unwrap().settings;
        change(&mut settings);
        self.store
            .update_task(
                USER,
                id,
                invite_core::domain::TaskUpdate {
                    settings: Some(settings),
                    ..Default::default()
                },
                self.clock.now(),
            )
            .await
            .unwrap();
    }

    /// Starts a pass in the background whose call for `person` waits in the platform; returns
    /// the pass and what releases the call, once the call is made.
    pub async fn pass_held_at(
        &self,
        person: &str,
    ) -> (
        tokio::task::JoinHandle<
            Result<invite_core::engine::TickReport, invite_core::engine::EngineError>,
        >,
        Arc<tokio::sync::Notify>,
    ) {
        let release = Arc::new(tokio::sync::Notify::new());
        self.strategy.script(person, Script::Hold(release.clone()));
        let pass = {
            let engine = self.engine.clone();
            tokio::spawn(async move { engine.tick().await })
        };
        while self.strategy.calls_of(person).is_empty() {
            tokio::task::yield_now().await;
        }
        (pass, release)
    }

    pub async fn start(&self, id: TaskId) {
        self.store
            .transition(
                USER,
                id,
                TaskEvent::Start {
                    scheduled_later: false,
                },
                None,
                self.clock.now(),
            )
            .await
            .unwrap();
    }

    /// Runs the engine until nothing is runnable, at most `limit` of campaign time.
    pub async fn run_for(&self, limit: TimeDelta) {
        let stop = self.clock.now() + limit;
        loop {
            let report = self.engine.tick().await.unwrap();
            match report.next {
                Some(next) if next <= stop => self.clock.sleep_until(next).await,
                Some(_) => {
                    self.clock.sleep_until(stop).await;
                    return;
                }
                None => return,
            }
        }
    }

    pub async fn run(&self) {
        self.run_for(TimeDelta::days(60)).await;
    }
}

pub fn invite(group: &str) -> Action {
    Action::Invite {
        group: GroupRef::parse(group).unwrap(),
    }
}

pub fn message(text: &str) -> Action {
    Action::Message {
        template: Template::parse(text).unwrap(),
    }
}

pub fn people(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}_{i:04}")).collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
