//! The Account Manager goes away in the middle of a step and comes back: the engine takes the
//! task up again within moments of its return, on the virtual clock. The manager here is the
//! local one behind a switch that fails every call while it is "away" (as the HTTP client does
//! while the manager cannot be reached); it goes away right after answering a check, so the
//! step's release (and, in the second case, its error report) cannot reach it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::async_trait;
use invite_core::clock::{Clock, VirtualClock};
use invite_core::domain::{
    AccountId, Action, GroupRef, NewTarget, NewTask, Platform, Priority, Target, TargetIdentifier,
    TaskEvent, TaskId, TaskSettings, TaskStatus, UserId, Username,
};
use invite_core::engine::{Engine, EngineConfig, EngineParts};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::{MemoryLedger, MemoryStore, StaticDirectory};
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, ActionResult, Allocation, AllocationRequest,
    ErrorReport, InviteStrategy, PlatformError, RateDecision, RateLimitCheck, TaskStore,
    UsageStats,
};
use invite_core::sandbox::{SandboxConfig, SandboxStrategy};

const USER: UserId = UserId::new(1);

fn t0() -> DateTime<Utc> {
    "2026-03-02T12:00:00Z".parse().unwrap()
}

/// One action per 10 min, no spread, no per-channel cap.
fn policy() -> LimitPolicy {
    let mut p = LimitPolicy::telegram();
    p.invite.spread = false;
    p.invite.per_channel = None;
    p.invite.pause_max = p.invite.pause_min;
    p
}

/// What the manager was asked, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Granted,
    Released,
    Reported(String),
}

/// The local manager behind a switch: after `allowed_before_away` allowed checks it answers
/// that check, then fails every call for `away`.
#[derive(Debug)]
struct Away {
    inner: LocalAccountManager,
    clock: Arc<VirtualClock>,
    allowed_before_away: Mutex<usize>,
    away: TimeDelta,
    /// When the manager went away and came back.
    outage: Mutex<Option<(DateTime<Utc>, DateTime<Utc>)>>,
    journal: Mutex<Vec<(DateTime<Utc>, Asked)>>,
}

impl Away {
    fn new(clock: Arc<VirtualClock>, allowed_before_away: usize, away: TimeDelta) -> Self {
        Self {
            inner: LocalAccountManager::new(Arc::new(MemoryLedger::new()), clock.clone(), 3)
                .with_policy(Platform::Sandbox, policy()),
            clock,
            allowed_before_away: Mutex::new(allowed_before_away),
            away,
            outage: Mutex::new(None),
            journal: Mutex::new(Vec::new()),
        }
    }

    fn up(&self) -> Result<(), AccountManagerError> {
        let now = self.clock.now();
        match *self.outage.lock().unwrap() {
            Some((from, to)) if from <= now && now < to => Err(AccountManagerError::Unavailable(
                "the manager is away".to_owned(),
            )),
            _ => Ok(()),
        }
    }

    fn note(&self, asked: Asked) {
        self.journal.lock().unwrap().push((self.clock.now(), asked));
    }

    fn outage(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        self.outage.lock().unwrap().expect("the manager went away")
    }

    /// The first time something was asked after `after`.
    fn first_after(&self, after: DateTime<Utc>, what: &Asked) -> Option<DateTime<Utc>> {
        self.journal
            .lock()
            .unwrap()
            .iter()
            .find(|(at, asked)| *at >= after && asked == what)
            .map(|(at, _)| *at)
    }
}

#[async_trait]
impl AccountManager for Away {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        self.up()?;
        let answer = self.inner.allocate_account(request).await?;
        if matches!(answer, Allocation::Granted(_)) {
            self.note(Asked::Granted);
        }
        Ok(answer)
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        self.up()?;
        let answer = self.inner.check_rate_limit(check).await?;
        if matches!(answer, RateDecision::Allowed { .. }) {
            let mut left = self.allowed_before_away.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                if *left == 0 {
                    let now = self.clock.now();
                    *self.outage.lock().unwrap() = Some((now, now + self.away));
                }
            }
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
        self.note(Asked::Released);
        Ok(())
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        self.up()?;
        self.note(Asked::Reported(report.code.clone()));
        self.inner.handle_error(account, report).await
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        self.up()?;
        self.inner.account_state(account).await
    }
}

/// The sandbox, with one scripted error per person and the time of every invite.
#[derive(Debug)]
struct Platform1 {
    sandbox: SandboxStrategy,
    clock: Arc<VirtualClock>,
    errors: Mutex<HashMap<String, PlatformError>>,
    invites: Mutex<Vec<(DateTime<Utc>, String)>>,
}

impl Platform1 {
    fn new(clock: Arc<VirtualClock>) -> Self {
        Self {
            sandbox: SandboxStrategy::new(SandboxConfig {
                privacy_restricted: 0.0,
                already_member: 0.0,
                not_found: 0.0,
                flood_wait: 0.0,
                peer_flood: 0.0,
                latency_ms: (0, 0),
                limits: policy(),
                ..SandboxConfig::default()
            }),
            clock,
            errors: Mutex::new(HashMap::new()),
            invites: Mutex::new(Vec::new()),
        }
    }

    fn invites(&self) -> Vec<(DateTime<Utc>, String)> {
        self.invites.lock().unwrap().clone()
    }
}

#[async_trait]
impl InviteStrategy for Platform1 {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }
    fn rate_limits(&self) -> LimitPolicy {
        policy()
    }
    async fn initialize(&self, account: &AccountId) -> Result<(), PlatformError> {
        self.sandbox.initialize(account).await
    }
    async fn check_invite_rights(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<(), PlatformError> {
        self.sandbox.check_invite_rights(account, group).await
    }
    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        let who = target.person.identifier.to_string();
        self.invites
            .lock()
            .unwrap()
            .push((self.clock.now(), who.clone()));
        if let Some(error) = self.errors.lock().unwrap().remove(&who) {
            return Err(error);
        }
        self.sandbox.invite(account, target, group).await
    }
    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        self.sandbox
            .send_message(account, target, text, random_id)
            .await
    }
    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError> {
        self.sandbox.add_contact(account, target).await
    }
    async fn is_member(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        self.sandbox.is_member(account, target, group).await
    }
    async fn disconnect(&self, account: &AccountId) {
        self.sandbox.disconnect(account).await;
    }
}

struct World {
    clock: Arc<VirtualClock>,
    store: Arc<MemoryStore>,
    manager: Arc<Away>,
    platform: Arc<Platform1>,
    engine: Engine,
}

fn world(allowed_before_away: usize, away: TimeDelta) -> World {
    let clock = Arc::new(VirtualClock::auto(t0()));
    let store = Arc::new(MemoryStore::new());
    let manager = Arc::new(Away::new(clock.clone(), allowed_before_away, away));
    let platform = Arc::new(Platform1::new(clock.clone()));
    let engine = Engine::new(
        EngineParts {
            store: store.clone(),
            suppression: store.clone(),
            leases: store.clone(),
            accounts: manager.clone(),
            directory: Arc::new(StaticDirectory::new().with_sandbox_accounts(USER, 1)),
            clock: clock.clone(),
        },
        [platform.clone() as Arc<dyn InviteStrategy>],
        EngineConfig {
            max_parallel_steps: 1,
            ..EngineConfig::default()
        },
    );
    World {
        clock,
        store,
        manager,
        platform,
        engine,
    }
}

impl World {
    async fn started_task(&self, people: &[String]) -> TaskId {
        let targets = people
            .iter()
            .map(|p| {
                NewTarget::new(TargetIdentifier::Username(
                    Username::parse(p, Platform::Sandbox).unwrap(),
                ))
            })
            .collect();
        let task = self
            .store
            .create_task(
                NewTask {
                    user_id: USER,
                    name: "while the manager is away".to_owned(),
                    platform: Platform::Sandbox,
                    priority: Priority::Medium,
                    settings: TaskSettings {
                        action: Action::Invite {
                            group: GroupRef::parse("@outage_group").unwrap(),
                        },
                        accounts: None,
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
            .unwrap()
            .task
            .id;
        self.store
            .transition(
                USER,
                task,
                TaskEvent::Start {
                    scheduled_later: false,
                },
                None,
                self.clock.now(),
            )
            .await
            .unwrap();
        task
    }

    /// Passes until nothing is runnable, at most two days of campaign time.
    async fn run(&self) {
        let stop = self.clock.now() + TimeDelta::days(2);
        loop {
            let report = self.engine.tick().await.unwrap();
            match report.next {
                Some(next) if next <= stop => self.clock.sleep_until(next).await,
                _ => return,
            }
        }
    }

    async fn status(&self, task: TaskId) -> TaskStatus {
        self.store.get_task(USER, task).await.unwrap().status
    }
}

fn people(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("outage_reader_{i}")).collect()
}

/// Regression: a release that could not reach the manager left the account held by it, so the
/// account was never granted again after the manager returned (the task stood still with its
/// targets pending). Now the release is owed and made as soon as the manager is back, and the
/// next invite follows within the engine's short manager retry.
#[tokio::test]
async fn a_release_lost_while_the_manager_is_away_is_made_when_it_returns() {
    let w = world(2, TimeDelta::hours(1));
    let targets = people(5);
    let task = w.started_task(&targets).await;
    w.run().await;

    let (away, back) = w.manager.outage();
    let invites = w.platform.invites();
    assert!(
        invites.iter().all(|(at, _)| *at <= away || *at >= back),
        "no invite while the manager is away: {invites:?}"
    );
    let released = w
        .manager
        .first_after(back, &Asked::Released)
        .expect("the lost release is made once the manager is back");
    let granted = w
        .manager
        .first_after(back, &Asked::Granted)
        .expect("the account is granted again");
    assert!(released <= granted, "released before it is allocated again");
    let resumed = invites
        .iter()
        .map(|(at, _)| *at)
        .find(|at| *at >= back)
        .expect("the task resumed");
    let retry = EngineConfig::default().manager_retry;
    assert!(
        resumed <= back + retry,
        "resumed {} after the manager returned (at most {retry} expected)",
        resumed - back
    );
    assert_eq!(w.status(task).await, TaskStatus::Completed);
    let invited: HashSet<&String> = invites.iter().map(|(_, who)| who).collect();
    assert_eq!(invited.len(), targets.len(), "{invites:?}");
    assert_eq!(
        invites.len(),
        targets.len(),
        "each invited once: {invites:?}"
    );
}

/// Regression: a platform error whose report could not reach the manager stopped the step
/// before the target was put back, so it stayed `in_progress` under this live worker for good
/// and the task never finished; the flood wait was never told to the manager either. Now the
/// target is put back at once, the report is made when the manager returns (the wait counted
/// from the error), and the account keeps the platform's wait.
#[tokio::test]
async fn an_error_report_lost_while_the_manager_is_away_is_made_when_it_returns() {
    let w = world(2, TimeDelta::minutes(10));
    let targets = people(4);
    let flooded = format!("@{}", targets[1]);
    w.platform.errors.lock().unwrap().insert(
        flooded.clone(),
        PlatformError::FloodWait {
            seconds: 3600,
            code: "FLOOD_WAIT".to_owned(),
        },
    );
    let task = w.started_task(&targets).await;
    w.run().await;

    let (away, back) = w.manager.outage();
    let reported = w
        .manager
        .first_after(back, &Asked::Reported("FLOOD_WAIT".to_owned()))
        .expect("the flood wait is reported once the manager is back");
    let retry = EngineConfig::default().manager_retry;
    assert!(
        reported <= back + retry,
        "reported {} after the manager returned",
        reported - back
    );
    let invites = w.platform.invites();
    let after_error: Vec<DateTime<Utc>> = invites
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at > away)
        .collect();
    let first = *after_error.first().expect("the task resumed");
    assert!(
        first >= away + TimeDelta::hours(1),
        "the account kept the platform's wait: next invite {} after the error",
        first - away
    );
    assert!(
        first <= away + TimeDelta::hours(1) + TimeDelta::minutes(2),
        "the wait ran from the error, not from the late report: next invite {} after it",
        first - away
    );
    assert_eq!(w.status(task).await, TaskStatus::Completed);
    let tries = invites.iter().filter(|(_, who)| *who == flooded).count();
    assert_eq!(
        tries, 2,
        "the flooded target is tried again once: {invites:?}"
    );
}
