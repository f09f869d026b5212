//! [`CrashingStore`] and [`CrashingLedger`]: the engine's [`TaskStore`] and [`LimitLedger`]
//! with a process crash at their await points.
//!
//! Each decorator forwards every call to the port it wraps. A write the engine makes may
//! instead, with the [`FaultPlan`]'s `store_crash_before` / `store_crash_after` chance, crash:
//! before it is forwarded (the write never happens) or after the inner port committed it (the
//! write happened, the engine never learns it). The writes that may crash are the store's
//! `claim_target`, `record_outcome`, `record_invite_part`, `record_contact_part`,
//! `release_target`, `mark_uncertain`, `settle_uncertain`, `abandon_pinned`, `save_lane`,
//! `heartbeat`, `recover_stale`, `ensure_lanes`, `transition`, `transition_capped` and
//! `record_attempt`, and the ledger's `reserve`, `reserve_and_claim`, `refund`, `performed` and
//! `set_state`; reads and the calls the engine never makes are forwarded unchanged.
//!
//! A crash trips the shared [`CrashSwitch`] and never returns, exactly like a crash inside
//! [`FaultyPlatform`](super::FaultyPlatform): whoever drives the engine drops it mid-await.
//! A crash after `claim_target` leaves a claim held by a dead worker (recovered once its
//! heartbeat is older than the timeout); a crash after `reserve` leaves a reservation nobody
//! refunds (charged, as a killed process would leave it).
//!
//! Both decorators draw from one [`CrashPoints`]: one seeded generator behind one lock, so a
//! run that calls the ports in the same order crashes at the same points. The runner keeps
//! the raw ports for its own setup and reads, so only the engine's calls can crash.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::platform::{CrashSwitch, FaultCounts, FaultKind, FaultPlan};
use crate::domain::{
    AccountId, ExecutionLog, Lane, NewExecutionLog, NewTarget, NewTask, Platform, Target, TargetId,
    Task, TaskEvent, TaskId, TaskUpdate, UserId,
};
use crate::limits::LimitPolicy;
use crate::ports::{
    AccountHistory, AccountState, AddedTargets, AttemptEnd, Claim, CleanupReport, CreatedTask,
    DatabaseId, Followups, LimitLedger, LogFilter, OutcomeRecord, Progress, RateDecision,
    Reservation, ReserveRequest, Settlement, StoreError, StoreResult, TaskFilter, TaskStats,
    TaskStore,
};

/// Where a crash struck a port's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashWhen {
    /// Before the call was forwarded: the write never happened.
    Before,
    /// After the inner port committed the write: the caller never learned it.
    After,
}

impl CrashWhen {
    /// Name in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            CrashWhen::Before => "before",
            CrashWhen::After => "after",
        }
    }
}

/// One crash injected into a store or ledger call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCrash {
    /// The port method (`claim_target`, `reserve`, …).
    pub call: &'static str,
    /// Before or after the write.
    pub when: CrashWhen,
    /// The call's arguments that matter (and, after it, its result).
    pub detail: String,
}

impl fmt::Display for StoreCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = match self.when {
            CrashWhen::Before => "before it was written",
            CrashWhen::After => "after it committed",
        };
        write!(f, "crash in {} {when}: {}", self.call, self.detail)
    }
}

#[derive(Debug)]
struct Points {
    rng: StdRng,
    counts: FaultCounts,
    crashes: Vec<StoreCrash>,
}

/// The crash decisions shared by a run's [`CrashingStore`] and [`CrashingLedger`]: the plan's
/// chances, one seeded generator, the [`CrashSwitch`] a crash trips, and what was injected.
#[derive(Debug)]
pub struct CrashPoints {
    before: f64,
    after: f64,
    switch: Arc<CrashSwitch>,
    points: Mutex<Points>,
}

impl CrashPoints {
    /// Crashes with `plan`'s chances (`store_crash_before`, `store_crash_after`), drawn from a
    /// generator seeded by `plan.seed`, tripping `switch`.
    pub fn new(plan: &FaultPlan, switch: Arc<CrashSwitch>) -> Self {
        Self {
            before: plan.store_crash_before,
            after: plan.store_crash_after,
            switch,
            points: Mutex::new(Points {
                rng: StdRng::seed_from_u64(plan.seed ^ 0x5702_EC4A_5E5D_0001),
                counts: FaultCounts::default(),
                crashes: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Points> {
        self.points.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The switch a crash trips.
    pub fn switch(&self) -> &Arc<CrashSwitch> {
        &self.switch
    }

    /// Crashes injected so far (`store_crash_before`, `store_crash_after`).
    pub fn fault_counts(&self) -> FaultCounts {
        self.lock().counts.clone()
    }

    /// Every crash injected so far, in order.
    pub fn crashes(&self) -> Vec<StoreCrash> {
        self.lock().crashes.clone()
    }

    /// The last crash injected, if any.
    pub fn last(&self) -> Option<StoreCrash> {
        self.lock().crashes.last().cloned()
    }

    /// Number of crashes injected so far.
    pub fn len(&self) -> usize {
        self.lock().crashes.len()
    }

    /// Whether no crash was injected.
    pub fn is_empty(&self) -> bool {
        self.lock().crashes.is_empty()
    }

    /// Whether (and where) the next crashable call crashes.
    fn draw(&self) -> Option<CrashWhen> {
        let r: f64 = self.lock().rng.random();
        if r < self.before {
            Some(CrashWhen::Before)
        } else if r < self.before + self.after {
            Some(CrashWhen::After)
        } else {
            None
        }
    }

    /// Records the crash, trips the switch and never returns.
    async fn crash<T>(&self, call: &'static str, when: CrashWhen, detail: String) -> T {
        {
            let mut points = self.lock();
            points.counts.add(match when {
                CrashWhen::Before => FaultKind::StoreCrashBefore,
                CrashWhen::After => FaultKind::StoreCrashAfter,
            });
            points.crashes.push(StoreCrash { call, when, detail });
        }
        self.switch.trip();
        // The process is gone: nothing after this point runs.
        std::future::pending().await
    }

    /// Runs `write` unless the draw says the process dies before it, or after it.
    async fn write<T, F>(&self, call: &'static str, detail: impl FnOnce() -> String, write: F) -> T
    where
        F: Future<Output = T>,
        T: fmt::Debug,
    {
        match self.draw() {
            None => write.await,
            Some(CrashWhen::Before) => self.crash(call, CrashWhen::Before, detail()).await,
            Some(CrashWhen::After) => {
                let done = write.await;
                let detail = format!("{} → {done:?}", detail());
                self.crash(call, CrashWhen::After, detail).await
            }
        }
    }
}

/// A [`TaskStore`] whose engine-side writes may crash the process (see the module docs).
#[derive(Debug, Clone)]
pub struct CrashingStore {
    inner: Arc<dyn TaskStore>,
    points: Arc<CrashPoints>,
}

impl CrashingStore {
    /// Wraps `inner`, crashing where `points` decides.
    pub fn new(inner: Arc<dyn TaskStore>, points: Arc<CrashPoints>) -> Self {
        Self { inner, points }
    }
}

fn log_of(log: Option<&NewExecutionLog>) -> String {
    log.map_or_else(String::new, |l| {
        format!(
            ", log {} {}{}",
            l.action,
            l.status.as_str(),
            l.error_code
                .as_deref()
                .map_or_else(String::new, |c| format!(" {c}"))
        )
    })
}

fn record_of(r: &OutcomeRecord) -> String {
    format!(
        "target {} by {}: {}{}",
        r.target_id,
        r.account_id,
        r.outcome.as_str(),
        log_of(Some(&r.log))
    )
}

#[async_trait]
impl TaskStore for CrashingStore {
    async fn create_task<'a, 'b>(
        &self,
        task: NewTask,
        targets: Vec<NewTarget>,
        idempotency: Option<(&'a str, &'b str)>,
        now: DateTime<Utc>,
    ) -> StoreResult<CreatedTask> {
        self.inner
            .create_task(task, targets, idempotency, now)
            .await
    }

    async fn get_task(&self, user: UserId, id: TaskId) -> StoreResult<Task> {
        self.inner.get_task(user, id).await
    }

    async fn list_tasks(&self, user: UserId, filter: &TaskFilter) -> StoreResult<Vec<Task>> {
        self.inner.list_tasks(user, filter).await
    }

    async fn update_task(
        &self,
        user: UserId,
        id: TaskId,
        update: TaskUpdate,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.inner.update_task(user, id, update, now).await
    }

    async fn delete_task(&self, user: UserId, id: TaskId) -> StoreResult<()> {
        self.inner.delete_task(user, id).await
    }

    async fn transition(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let detail = format!("task {id} {event:?} ({})", reason.as_deref().unwrap_or("-"));
        self.points
            .write(
                "transition",
                || detail,
                self.inner.transition(user, id, event, reason, now),
            )
            .await
    }

    async fn transition_capped(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        max_running: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.points
            .write(
                "transition_capped",
                || format!("task {id} {event:?} (at most {max_running} running)"),
                self.inner
                    .transition_capped(user, id, event, max_running, now),
            )
            .await
    }

    async fn add_targets(
        &self,
        user: UserId,
        id: TaskId,
        targets: Vec<NewTarget>,
    ) -> StoreResult<AddedTargets> {
        self.inner.add_targets(user, id, targets).await
    }

    async fn progress(&self, user: UserId, id: TaskId) -> StoreResult<Progress> {
        self.inner.progress(user, id).await
    }

    async fn task_progress(&self, user: UserId, id: TaskId) -> StoreResult<(Task, Progress)> {
        self.inner.task_progress(user, id).await
    }

    async fn targets(
        &self,
        user: UserId,
        id: TaskId,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<Target>> {
        self.inner.targets(user, id, limit, offset).await
    }

    async fn logs(
        &self,
        user: UserId,
        id: TaskId,
        filter: &LogFilter,
    ) -> StoreResult<Vec<ExecutionLog>> {
        self.inner.logs(user, id, filter).await
    }

    async fn stats(&self, user: UserId, id: TaskId) -> StoreResult<TaskStats> {
        self.inner.stats(user, id).await
    }

    async fn lanes(&self, user: UserId, id: TaskId) -> StoreResult<Vec<Lane>> {
        self.inner.lanes(user, id).await
    }

    async fn reached_since(
        &self,
        user: UserId,
        platform: Platform,
        identifier_keys: &[String],
        channel: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<BTreeSet<String>> {
        self.inner
            .reached_since(user, platform, identifier_keys, channel, since)
            .await
    }

    async fn set_group_key(&self, id: TaskId, key: &str) -> StoreResult<()> {
        self.inner.set_group_key(id, key).await
    }

    async fn engine_tasks(&self, now: DateTime<Utc>) -> StoreResult<Vec<Task>> {
        self.inner.engine_tasks(now).await
    }

    async fn ensure_lanes(&self, id: TaskId, accounts: &[AccountId]) -> StoreResult<()> {
        self.points
            .write(
                "ensure_lanes",
                || format!("task {id}, {} accounts", accounts.len()),
                self.inner.ensure_lanes(id, accounts),
            )
            .await
    }

    async fn lanes_of(&self, ids: &[TaskId]) -> StoreResult<Vec<Lane>> {
        self.inner.lanes_of(ids).await
    }

    async fn save_lane(&self, lane: &Lane) -> StoreResult<()> {
        self.points
            .write(
                "save_lane",
                || {
                    format!(
                        "task {} {} {}{}",
                        lane.task_id,
                        lane.account_id,
                        lane.status.as_str(),
                        lane.cooldown_until
                            .map_or_else(String::new, |c| format!(", cooldown until {c}"))
                    )
                },
                self.inner.save_lane(lane),
            )
            .await
    }

    async fn pending_counts(&self, ids: &[TaskId]) -> StoreResult<BTreeMap<TaskId, u64>> {
        self.inner.pending_counts(ids).await
    }

    async fn with_pending(&self, ids: &[TaskId]) -> StoreResult<BTreeSet<TaskId>> {
        self.inner.with_pending(ids).await
    }

    async fn claim_target(&self, claim: &Claim) -> StoreResult<Option<Target>> {
        let done = self
            .points
            .write(
                "claim_target",
                || {
                    format!(
                        "task {} by {} ({:?}, holder {})",
                        claim.task, claim.account, claim.stage, claim.holder
                    )
                },
                async {
                    // Only the claimed target's id is worth a report line.
                    self.inner
                        .claim_target(claim)
                        .await
                        .map(|t| t.map(ClaimedTarget))
                },
            )
            .await;
        done.map(|t| t.map(|ClaimedTarget(t)| t))
    }

    async fn followups(&self, id: TaskId, account: &AccountId) -> StoreResult<Followups> {
        self.inner.followups(id, account).await
    }

    async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()> {
        self.points
            .write(
                "record_outcome",
                || record_of(record),
                self.inner.record_outcome(record),
            )
            .await
    }

    async fn record_invite_part(&self, record: &OutcomeRecord) -> StoreResult<()> {
        self.points
            .write(
                "record_invite_part",
                || record_of(record),
                self.inner.record_invite_part(record),
            )
            .await
    }

    fn ledger_database(&self) -> Option<DatabaseId> {
        self.inner.ledger_database()
    }

    async fn record_attempt(&self, end: &AttemptEnd) -> StoreResult<()> {
        self.points
            .write(
                "record_attempt",
                || {
                    let part = if end.invite_part {
                        " (invite part)"
                    } else {
                        ""
                    };
                    let performed = end
                        .performed
                        .map_or_else(String::new, |(r, at)| format!(", {r:?} performed at {at}"));
                    format!("{}{part}{performed}", record_of(&end.record))
                },
                self.inner.record_attempt(end),
            )
            .await
    }

    async fn record_contact_part(
        &self,
        target: TargetId,
        account: &AccountId,
        log: NewExecutionLog,
    ) -> StoreResult<()> {
        let detail = format!("target {target} by {account}{}", log_of(Some(&log)));
        self.points
            .write(
                "record_contact_part",
                || detail,
                self.inner.record_contact_part(target, account, log),
            )
            .await
    }

    async fn release_target(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()> {
        let detail = format!("target {target} by {account}{}", log_of(log.as_ref()));
        self.points
            .write(
                "release_target",
                || detail,
                self.inner.release_target(target, account, log),
            )
            .await
    }

    async fn mark_uncertain(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()> {
        let detail = format!("target {target} by {account}{}", log_of(log.as_ref()));
        self.points
            .write(
                "mark_uncertain",
                || detail,
                self.inner.mark_uncertain(target, account, log),
            )
            .await
    }

    async fn heartbeat(&self, holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.points
            .write(
                "heartbeat",
                || format!("{holder} at {now}"),
                self.inner.heartbeat(holder, now),
            )
            .await
    }

    async fn retire_holder(&self, holder: &str) -> StoreResult<()> {
        self.inner.retire_holder(holder).await
    }

    async fn recover_stale(&self, silent_since: DateTime<Utc>) -> StoreResult<u64> {
        self.points
            .write(
                "recover_stale",
                || format!("holders silent since {silent_since}"),
                self.inner.recover_stale(silent_since),
            )
            .await
    }

    async fn uncertain_targets(&self, id: TaskId) -> StoreResult<Vec<Target>> {
        self.inner.uncertain_targets(id).await
    }

    async fn settle_uncertain(&self, target: TargetId, settlement: Settlement) -> StoreResult<()> {
        let detail = match &settlement {
            Settlement::Retry => format!("target {target} back to pending"),
            Settlement::InviteConfirmed(r) => format!("invite confirmed: {}", record_of(r)),
            Settlement::Final(r) => format!("final: {}", record_of(r)),
        };
        self.points
            .write(
                "settle_uncertain",
                || detail,
                self.inner.settle_uncertain(target, settlement),
            )
            .await
    }

    async fn abandon_pinned(
        &self,
        id: TaskId,
        gone: &[AccountId],
        pinned_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.points
            .write(
                "abandon_pinned",
                || {
                    let gone: Vec<String> = gone.iter().map(ToString::to_string).collect();
                    format!(
                        "task {id}, gone [{}], pinned before {pinned_before}",
                        gone.join(", ")
                    )
                },
                self.inner.abandon_pinned(id, gone, pinned_before, now),
            )
            .await
    }

    async fn append_log(&self, log: NewExecutionLog) -> StoreResult<()> {
        self.inner.append_log(log).await
    }

    async fn cleanup(
        &self,
        logs_before: DateTime<Utc>,
        tasks_finished_before: DateTime<Utc>,
    ) -> StoreResult<CleanupReport> {
        self.inner.cleanup(logs_before, tasks_finished_before).await
    }
}

/// A claimed target as a crash report shows it: its id and attempt, not the whole row.
struct ClaimedTarget(Target);

impl fmt::Debug for ClaimedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target {} (attempt {})", self.0.id, self.0.attempts)
    }
}

/// A [`LimitLedger`] whose reservations, refunds and performed marks (and account states) may
/// crash the process (see the module docs). A crash after `reserve` leaves a reservation
/// nobody refunds: charged, as a killed process would leave it.
#[derive(Debug, Clone)]
pub struct CrashingLedger {
    inner: Arc<dyn LimitLedger>,
    points: Arc<CrashPoints>,
}

impl CrashingLedger {
    /// Wraps `inner`, crashing where `points` decides.
    pub fn new(inner: Arc<dyn LimitLedger>, points: Arc<CrashPoints>) -> Self {
        Self { inner, points }
    }
}

#[async_trait]
impl LimitLedger for CrashingLedger {
    async fn reserve(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
    ) -> Result<RateDecision, StoreError> {
        self.points
            .write(
                "reserve",
                || {
                    let kinds: Vec<&str> = request.kinds.iter().map(|k| k.as_str()).collect();
                    format!(
                        "{} {} {}",
                        request.account_id,
                        kinds.join("+"),
                        request.channel
                    )
                },
                self.inner.reserve(request, policy),
            )
            .await
    }

    async fn merge_channel(
        &self,
        accounts: &[AccountId],
        from: &str,
        into: &str,
    ) -> Result<u64, StoreError> {
        self.points
            .write(
                "merge_channel",
                || format!("{} accounts {from} -> {into}", accounts.len()),
                self.inner.merge_channel(accounts, from, into),
            )
            .await
    }

    fn database(&self) -> Option<DatabaseId> {
        self.inner.database()
    }

    async fn reserve_and_claim(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
        claim: &Claim,
    ) -> Result<(RateDecision, Option<Target>), StoreError> {
        self.points
            .write(
                "reserve_and_claim",
                || {
                    let kinds: Vec<&str> = request.kinds.iter().map(|k| k.as_str()).collect();
                    format!(
                        "{} {} {}, claim in task {} by {}",
                        request.account_id,
                        kinds.join("+"),
                        request.channel,
                        claim.task,
                        claim.account
                    )
                },
                self.inner.reserve_and_claim(request, policy, claim),
            )
            .await
    }

    async fn refund(
        &self,
        account: &AccountId,
        reservation: Reservation,
    ) -> Result<(), StoreError> {
        self.points
            .write(
                "refund",
                || format!("{account} {reservation:?}"),
                self.inner.refund(account, reservation),
            )
            .await
    }

    async fn performed(
        &self,
        account: &AccountId,
        reservation: Reservation,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.points
            .write(
                "performed",
                || format!("{account} {reservation:?} at {at}"),
                self.inner.performed(account, reservation, at),
            )
            .await
    }

    async fn history(
        &self,
        account: &AccountId,
        channel: &str,
        since: DateTime<Utc>,
    ) -> Result<AccountHistory, StoreError> {
        self.inner.history(account, channel, since).await
    }

    async fn histories(
        &self,
        accounts: &[AccountId],
        channel: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<AccountHistory>, StoreError> {
        self.inner.histories(accounts, channel, since).await
    }

    async fn states(&self, accounts: &[AccountId]) -> Result<Vec<AccountState>, StoreError> {
        self.inner.states(accounts).await
    }

    async fn set_state(&self, account: &AccountId, state: &AccountState) -> Result<(), StoreError> {
        self.points
            .write(
                "set_state",
                || format!("{account} {state:?}"),
                self.inner.set_state(account, state),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::{
        Action, ActionKind, GroupRef, Priority, TargetIdentifier, TargetStatus, TaskSettings,
        Username,
    };
    use crate::memory::{MemoryLedger, MemoryStore};
    use crate::ports::ClaimStage;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_442_000, 0).unwrap()
    }

    const USER: UserId = UserId::new(1);

    fn account() -> AccountId {
        AccountId::parse("acc-1").unwrap()
    }

    fn points(before: f64, after: f64) -> Arc<CrashPoints> {
        let plan = FaultPlan {
            store_crash_before: before,
            store_crash_after: after,
            ..FaultPlan::calm(7)
        };
        Arc::new(CrashPoints::new(&plan, Arc::new(CrashSwitch::new())))
    }

    /// A started invite task with one pending target, in a raw store.
    async fn one_target() -> (Arc<MemoryStore>, TaskId) {
        let store = Arc::new(MemoryStore::new());
        let person = Username::parse("person_001", Platform::Sandbox).unwrap();
        let created = store
            .create_task(
                NewTask {
                    user_id: USER,
                    name: "crash".to_owned(),
                    platform: Platform::Sandbox,
                    priority: Priority::Medium,
                    settings: TaskSettings {
                        action: Action::Invite {
                            group: GroupRef::parse("@chaos_alpha").unwrap(),
                        },
                        accounts: None,
                        add_to_contacts: false,
                        dedupe_days: None,
                    },
                    scheduled_at: None,
                },
                vec![NewTarget::new(TargetIdentifier::Username(person))],
                None,
                t0(),
            )
            .await
            .unwrap();
        let id = created.task.id;
        let start = TaskEvent::Start {
            scheduled_later: false,
        };
        store.transition(USER, id, start, None, t0()).await.unwrap();
        (store, id)
    }

    fn claim(task: TaskId) -> Claim {
        Claim {
            task,
            account: account(),
            holder: "worker-1".to_owned(),
            now: t0(),
            random_high: None,
            stage: ClaimStage::First,
        }
    }

    /// Runs `call` as the chaos runner does: beside the switch, which must trip first.
    async fn crashes<T: fmt::Debug>(points: &CrashPoints, call: impl Future<Output = T>) {
        tokio::select! {
            biased;
            () = points.switch().tripped() => {}
            done = call => panic!("a crashed call returned {done:?}"),
        }
    }

    async fn status(store: &MemoryStore, task: TaskId) -> TargetStatus {
        store.targets(USER, task, 0, 0).await.unwrap()[0].status
    }

    #[tokio::test]
    async fn a_crash_before_a_claim_leaves_the_target_pending() {
        let (raw, task) = one_target().await;
        let points = points(1.0, 0.0);
        let store = CrashingStore::new(raw.clone(), points.clone());
        crashes(&points, store.claim_target(&claim(task))).await;
        assert!(points.switch().is_tripped());
        assert_eq!(status(&raw, task).await, TargetStatus::Pending);
        assert_eq!(points.fault_counts().get(FaultKind::StoreCrashBefore), 1);
        let crash = &points.crashes()[0];
        assert_eq!(
            (crash.call, crash.when),
            ("claim_target", CrashWhen::Before)
        );
        // The raw store still hands the target out.
        assert!(raw.claim_target(&claim(task)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_crash_after_a_claim_leaves_it_in_progress_and_trips_the_switch() {
        let (raw, task) = one_target().await;
        let points = points(0.0, 1.0);
        let store = CrashingStore::new(raw.clone(), points.clone());
        crashes(&points, store.claim_target(&claim(task))).await;
        assert!(points.switch().is_tripped());
        assert_eq!(points.switch().trips(), 1);
        assert_eq!(status(&raw, task).await, TargetStatus::InProgress);
        assert_eq!(points.fault_counts().get(FaultKind::StoreCrashAfter), 1);
        let crash = &points.crashes()[0];
        assert_eq!(crash.when, CrashWhen::After);
        assert!(crash.detail.contains("attempt 1"), "{crash}");
        // Held by a dead worker: recovered once its heartbeat is older than the timeout.
        assert_eq!(raw.recover_stale(t0()).await.unwrap(), 1);
        assert_eq!(status(&raw, task).await, TargetStatus::Uncertain);
    }

    #[tokio::test]
    async fn reads_never_crash() {
        let (raw, task) = one_target().await;
        let points = points(0.5, 0.5);
        let store = CrashingStore::new(raw, points.clone());
        for _ in 0..20 {
            store.get_task(USER, task).await.unwrap();
            store.engine_tasks(t0()).await.unwrap();
            store.uncertain_targets(task).await.unwrap();
            store.followups(task, &account()).await.unwrap();
        }
        assert!(points.is_empty());
        assert!(!points.switch().is_tripped());
    }

    fn request() -> ReserveRequest {
        ReserveRequest {
            account_id: account(),
            kinds: vec![ActionKind::Invite],
            channel: "@chaos_alpha".to_owned(),
            now: t0(),
            pause_after: TimeDelta::minutes(10),
        }
    }

    #[tokio::test]
    async fn a_crash_after_a_reservation_leaves_it_charged() {
        let raw = Arc::new(MemoryLedger::new());
        let points = points(0.0, 1.0);
        let ledger = CrashingLedger::new(raw.clone(), points.clone());
        let policy = LimitPolicy::telegram();
        crashes(&points, ledger.reserve(&request(), &policy)).await;
        let history = raw
            .history(&account(), "@chaos_alpha", t0() - policy.window)
            .await
            .unwrap();
        assert_eq!(history.recent.len(), 1);
        assert_eq!(history.lifetime_of(ActionKind::Invite), 1);
        assert_eq!(points.crashes()[0].call, "reserve");
    }

    #[tokio::test]
    async fn a_crash_before_a_refund_keeps_the_reservation() {
        let raw = Arc::new(MemoryLedger::new());
        let policy = LimitPolicy::telegram();
        let RateDecision::Allowed {
            reservation: Some(reservation),
        } = raw.reserve(&request(), &policy).await.unwrap()
        else {
            panic!("a fresh account may invite");
        };
        let points = points(1.0, 0.0);
        let ledger = CrashingLedger::new(raw.clone(), points.clone());
        crashes(&points, ledger.refund(&account(), reservation)).await;
        let history = raw
            .history(&account(), "@chaos_alpha", t0() - policy.window)
            .await
            .unwrap();
        assert_eq!(history.recent.len(), 1, "still charged");
    }

    #[tokio::test]
    async fn the_same_seed_crashes_at_the_same_calls() {
        let run = || async {
            let raw = Arc::new(MemoryStore::new());
            let points = points(0.1, 0.1);
            let store = CrashingStore::new(raw, points.clone());
            let mut outcomes = Vec::new();
            for i in 0..200 {
                let at = t0() + TimeDelta::seconds(i);
                let crashed = tokio::select! {
                    biased;
                    () = points.switch().tripped() => true,
                    _ = store.heartbeat("worker-1", at) => false,
                };
                points.switch().reset();
                outcomes.push(crashed);
            }
            (outcomes, points.fault_counts())
        };
        let (first, counts) = run().await;
        assert_eq!(run().await.0, first);
        assert!(counts.total() > 10 && counts.total() < 80, "{counts}");
    }
}
