//! The Account Manager goes away in the middle of a step and comes back: the engine takes the
//! task up again within moments of its return, on the virtual clock. The manager is the
//! harness's local one behind a switch that fails every call while it is "away" (as the HTTP
//! client does while the manager cannot be reached); it goes away right after answering a
//! check, so the step's release (and, in the second case, its error report) cannot reach it.
//! On SQLite and PostgreSQL the check is the one that also claims the target
//! (`check_and_claim`, the ledger sharing the store's database).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::async_trait;
use invite_core::clock::{Clock, VirtualClock};
use invite_core::domain::{AccountId, Priority, Target, TaskId, TaskStatus};
use invite_core::engine::EngineConfig;
use invite_core::limits::LocalAccountManager;
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, Allocation, AllocationRequest, Claim,
    DatabaseId, ErrorReport, PlatformError, RateDecision, RateLimitCheck, UsageStats,
};

use super::harness::{Harness, Ports, Script, USER, invite, people, refs, simple_policy};

/// What the manager was asked, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Granted,
    Released,
    Reported(String),
}

/// The local manager behind a switch: after `allowed_before_away` allowed checks it answers
/// that check, then fails every call for `away`.
struct Away {
    inner: Arc<LocalAccountManager>,
    clock: Arc<VirtualClock>,
    allowed_before_away: Mutex<usize>,
    away: TimeDelta,
    /// When the manager went away and came back.
    outage: Mutex<Option<(DateTime<Utc>, DateTime<Utc>)>>,
    journal: Mutex<Vec<(DateTime<Utc>, Asked)>>,
}

impl std::fmt::Debug for Away {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Away").field("away", &self.away).finish()
    }
}

impl Away {
    fn up(&self) -> Result<(), AccountManagerError> {
        let now = self.clock.now();
        match *self.outage.lock().unwrap() {
            Some((from, to)) if from <= now && now < to => Err(AccountManagerError::Unavailable(
                "the manager is away".to_owned(),
            )),
            _ => Ok(()),
        }
    }

    /// Counts an allowed check; the last one before the outage starts it.
    fn allowed(&self, decision: &RateDecision) {
        if !matches!(decision, RateDecision::Allowed { .. }) {
            return;
        }
        let mut left = self.allowed_before_away.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            if *left == 0 {
                let now = self.clock.now();
                *self.outage.lock().unwrap() = Some((now, now + self.away));
            }
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
        self.allowed(&answer);
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

    fn ledger_database(&self) -> Option<DatabaseId> {
        self.inner.ledger_database()
    }

    async fn check_and_claim(
        &self,
        check: &RateLimitCheck,
        claim: &Claim,
    ) -> Result<(RateDecision, Option<Target>), AccountManagerError> {
        self.up()?;
        let answer = self.inner.check_and_claim(check, claim).await?;
        self.allowed(&answer.0);
        Ok(answer)
    }
}

/// A harness of one account whose engine talks to the manager through an [`Away`] switch.
fn away_harness(ports: Ports, allowed_before_away: usize, away: TimeDelta) -> (Harness, Arc<Away>) {
    let h = Harness::new(ports, simple_policy(), 1);
    let clock = h.clock.clone();
    let made: Arc<Mutex<Option<Arc<Away>>>> = Arc::new(Mutex::new(None));
    let keep = made.clone();
    let h = h.with_manager(Arc::new(move |inner| {
        let manager = Arc::new(Away {
            inner,
            clock: clock.clone(),
            allowed_before_away: Mutex::new(allowed_before_away),
            away,
            outage: Mutex::new(None),
            journal: Mutex::new(Vec::new()),
        });
        *keep.lock().unwrap() = Some(manager.clone());
        manager as Arc<dyn AccountManager>
    }));
    let manager = made.lock().unwrap().clone().expect("the engine's manager");
    (h, manager)
}

/// Invites as the platform saw them: time and person.
fn invites(h: &Harness) -> Vec<(DateTime<Utc>, String)> {
    h.strategy
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.kind == "invite")
        .map(|c| (c.at, c.person.clone()))
        .collect()
}

/// Starts an invite task of `people` and runs the engine until nothing is runnable, at most two
/// days of campaign time.
async fn run_task(h: &Harness, people: &[String]) -> TaskId {
    let task = h
        .task(Priority::Medium, invite("@outage_group"), &refs(people))
        .await;
    h.start(task).await;
    h.run_for(TimeDelta::days(2)).await;
    task
}

async fn status(h: &Harness, task: TaskId) -> TaskStatus {
    h.store.get_task(USER, task).await.unwrap().status
}

/// Regression: a release that could not reach the manager left the account held by it, so the
/// account was never granted again after the manager returned (the task stood still with its
/// targets pending). Now the release is owed and made as soon as the manager is back, and the
/// next invite follows within the engine's short manager retry.
pub async fn a_release_lost_while_the_manager_is_away_is_made_when_it_returns(ports: Ports) {
    let (h, manager) = away_harness(ports, 2, TimeDelta::hours(1));
    let targets = people("outage_reader", 5);
    let task = run_task(&h, &targets).await;

    let (away, back) = manager.outage();
    let invites = invites(&h);
    assert!(
        invites.iter().all(|(at, _)| *at <= away || *at >= back),
        "no invite while the manager is away: {invites:?}"
    );
    let released = manager
        .first_after(back, &Asked::Released)
        .expect("the lost release is made once the manager is back");
    let granted = manager
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
    assert_eq!(status(&h, task).await, TaskStatus::Completed);
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
pub async fn an_error_report_lost_while_the_manager_is_away_is_made_when_it_returns(ports: Ports) {
    let (h, manager) = away_harness(ports, 2, TimeDelta::minutes(10));
    let targets = people("outage_flooded", 4);
    let flooded = format!("@{}", targets[1]);
    h.strategy.script(
        &flooded,
        Script::Fail(PlatformError::FloodWait {
            seconds: 3600,
            code: "FLOOD_WAIT".to_owned(),
        }),
    );
    let task = run_task(&h, &targets).await;

    let (away, back) = manager.outage();
    let reported = manager
        .first_after(back, &Asked::Reported("FLOOD_WAIT".to_owned()))
        .expect("the flood wait is reported once the manager is back");
    let retry = EngineConfig::default().manager_retry;
    assert!(
        reported <= back + retry,
        "reported {} after the manager returned",
        reported - back
    );
    let invites = invites(&h);
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
    assert_eq!(status(&h, task).await, TaskStatus::Completed);
    let tries = invites.iter().filter(|(_, who)| *who == flooded).count();
    assert_eq!(
        tries, 2,
        "the flooded target is tried again once: {invites:?}"
    );
}
