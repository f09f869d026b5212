//! The execution engine (SPEC §5).
//!
//! The store holds all durable state; the engine is a loop that, at each pass ("tick"), looks
//! at the runnable tasks, their lanes (task × account) and the accounts' next eligible times,
//! runs one step for every account that is due (concurrently across accounts, never two
//! actions of one account at once), and sleeps on the injected [`Clock`] until the next
//! account is due or it is woken ([`Engine::wake`]).
//!
//! One step of an account: `allocate_account` → pick the highest-priority runnable task among
//! its lanes (least recently used first among equals, so equal priorities take turns and a
//! HIGH task started later takes the account at its next step) → `check_rate_limit` → claim
//! one target (`pending → in_progress`, committed before the platform call, with a stored
//! `random_id` for messages) → suppression and de-duplication checks → the platform call →
//! the outcome and its log row in one transaction → `release_account`, and `handle_error` on
//! any platform error. Each of these logs one `Account Manager: <step>` line with the task,
//! account and target ids.
//!
//! At most once: a target left `in_progress` by a crash becomes `uncertain` after
//! [`EngineConfig::claim_timeout`] and is reconciled, never re-sent blindly — a message goes
//! back to `pending` keeping its `random_id` (the platform refuses a second delivery), an
//! invite is settled by a membership check.

mod step;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::domain::{
    AccountId, Action, ExecutionStatus, Lane, LaneStatus, NewExecutionLog, Outcome, Platform, Task,
    TaskEvent, TaskId, TaskStatus,
};
use crate::memory::NoEvents;
use crate::ports::{
    AccountDirectory, AccountLeases, AccountManager, AccountState, InviteStrategy, OutcomeRecord,
    StoreError, SuppressionList, TaskEventMessage, TaskEvents, TaskStore,
};

/// Tunables of the engine. Limits are not here: they belong to the account manager.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Name of this worker in account leases.
    pub worker_id: String,
    /// How long an account lease lasts without renewal.
    pub lease_ttl: TimeDelta,
    /// A target `in_progress` for longer than this belonged to a dead worker.
    pub claim_timeout: TimeDelta,
    /// Consecutive account-level errors in one task that pause it.
    pub breaker_threshold: u32,
    /// Claims of one target after which transient errors give up on it.
    pub max_target_attempts: u32,
    /// First backoff after a transient error (doubles, with jitter, up to `backoff_max`).
    pub backoff_base: TimeDelta,
    /// Longest backoff.
    pub backoff_max: TimeDelta,
    /// Pass interval when nothing is scheduled (a wake-up comes sooner when work arrives).
    pub idle_poll: TimeDelta,
    /// Accounts stepped at once.
    pub max_parallel_steps: usize,
    /// Seed of message `random_id`s and jitter.
    pub seed: u64,
    /// A scheduled task starts only while its owner runs fewer tasks than this (it waits for
    /// a free slot otherwise); `None` starts it regardless. The API's limit of running tasks
    /// per user belongs here too.
    pub max_running_tasks: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker_id: "invite-worker".to_owned(),
            lease_ttl: TimeDelta::minutes(5),
            claim_timeout: TimeDelta::minutes(10),
            breaker_threshold: 5,
            max_target_attempts: 5,
            backoff_base: TimeDelta::seconds(2),
            backoff_max: TimeDelta::minutes(5),
            idle_poll: TimeDelta::seconds(30),
            max_parallel_steps: 16,
            seed: 0x1_0b17_e5e5,
            max_running_tasks: None,
        }
    }
}

/// Publishes the notice of `event`, just applied to `task`, through `events`; a failure is
/// logged as a warning and otherwise ignored. Shared by the engine and the use cases.
pub async fn announce(events: &dyn TaskEvents, event: TaskEvent, task: &Task) {
    let Some(notice) = TaskEventMessage::after(event, task) else {
        return;
    };
    if let Err(e) = events.publish_event(&notice).await {
        warn!(
            task.id = %task.id,
            user.id = %task.user_id,
            event = notice.event.as_str(),
            error = %e,
            "task {} event {} not published", task.id, notice.event.as_str()
        );
    }
}

/// Errors that stop the engine's pass (the loop logs them and tries again later).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account manager failed.
    #[error(transparent)]
    AccountManager(#[from] crate::ports::AccountManagerError),
    /// The account directory failed.
    #[error(transparent)]
    Directory(#[from] crate::ports::DirectoryError),
}

/// What the engine needs from outside.
#[derive(Debug, Clone)]
pub struct EngineParts {
    /// Tasks, targets, lanes, logs.
    pub store: Arc<dyn TaskStore>,
    /// Do-not-contact list.
    pub suppression: Arc<dyn SuppressionList>,
    /// Account leases between worker processes.
    pub leases: Arc<dyn AccountLeases>,
    /// Limits and account health.
    pub accounts: Arc<dyn AccountManager>,
    /// Users' accounts.
    pub directory: Arc<dyn AccountDirectory>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct EngineState {
    /// Accounts not to be stepped before this time.
    account_next: HashMap<AccountId, DateTime<Utc>>,
    /// Tasks whose lanes, rights and uncertain targets were prepared by this engine.
    prepared: HashSet<TaskId>,
    /// Accounts connected through their strategy.
    initialized: HashSet<AccountId>,
    /// Account-level errors in a row per task.
    breaker: HashMap<TaskId, (u32, String)>,
    /// Transient errors in a row per account.
    transient: HashMap<AccountId, u32>,
    /// Tasks this engine paused or ended during a pass: steps already chosen skip them.
    halted: HashSet<TaskId>,
    /// Last recovery of stale claims.
    last_recovery: Option<DateTime<Utc>>,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    parts: EngineParts,
    strategies: HashMap<Platform, Arc<dyn InviteStrategy>>,
    config: EngineConfig,
    state: Mutex<EngineState>,
    rng: Mutex<StdRng>,
    wake: Notify,
    events: Arc<dyn TaskEvents>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Account steps run.
    pub steps: usize,
    /// Time of the next pass, if anything is scheduled.
    pub next: Option<DateTime<Utc>>,
}

impl Engine {
    /// An engine over `parts` driving the given strategies.
    pub fn new(
        parts: EngineParts,
        strategies: impl IntoIterator<Item = Arc<dyn InviteStrategy>>,
        config: EngineConfig,
    ) -> Self {
        let strategies = strategies.into_iter().map(|s| (s.platform(), s)).collect();
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            parts,
            strategies,
            config,
            state: Mutex::new(EngineState::default()),
            wake: Notify::new(),
            events: Arc::new(NoEvents),
        }
    }

    /// Tells `events` of every transition the engine makes (a scheduled start, completion,
    /// failure, a pause by the circuit breaker). Without it, nothing is published.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn TaskEvents>) -> Self {
        self.events = events;
        self
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Asks the loop to pass now (a task was started, resumed or got targets).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, EngineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random_i64(&self) -> i64 {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let v: i64 = rng.random();
            if v != 0 {
                return v;
            }
        }
    }

    fn jitter(&self, d: TimeDelta) -> TimeDelta {
        let ms = d.num_milliseconds().max(1);
        let extra = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(0..=ms / 2);
        d + TimeDelta::milliseconds(extra)
    }

    /// Runs until `cancel` fires: passes, then sleeps until the next due account or a wake-up.
    /// A failed pass is logged and retried after `idle_poll`.
    pub async fn run(&self, cancel: CancellationToken) {
        info!(worker = %self.config.worker_id, "engine started");
        while !cancel.is_cancelled() {
            let next = match self.tick().await {
                Ok(report) => report.next,
                Err(e) => {
                    warn!(error = %e, "engine pass failed; retrying");
                    None
                }
            };
            let next = next.unwrap_or_else(|| self.parts.clock.now() + self.config.idle_poll);
            let notified = self.wake.notified();
            tokio::select! {
                () = cancel.cancelled() => break,
                () = notified => {}
                () = self.parts.clock.sleep_until(next) => {}
            }
        }
        self.release_leases().await;
        info!(worker = %self.config.worker_id, "engine stopped");
    }

    /// Runs passes until no task is runnable (every task finished, paused or failed), sleeping
    /// on the clock in between. With a [`VirtualClock`](crate::clock::VirtualClock) in auto mode
    /// this runs days of campaign time in moments. `on_pass` sees the time after each pass.
    pub async fn run_until_idle(
        &self,
        mut on_pass: impl FnMut(DateTime<Utc>),
    ) -> Result<(), EngineError> {
        loop {
            let report = self.tick().await?;
            on_pass(self.parts.clock.now());
            match report.next {
                Some(next) => self.parts.clock.sleep_until(next).await,
                None => return Ok(()),
            }
        }
    }

    async fn release_leases(&self) {
        let accounts: Vec<AccountId> = self.state().account_next.keys().cloned().collect();
        for account in &accounts {
            for strategy in self.strategies.values() {
                strategy.disconnect(account).await;
            }
            if let Err(e) = self
                .parts
                .leases
                .release(account, &self.config.worker_id)
                .await
            {
                warn!(account.id = %account, error = %e, "account lease not released; it expires");
            }
        }
    }

    /// One pass: starts due scheduled tasks, prepares new tasks, completes or fails finished
    /// ones, and steps every due account once.
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let now = self.parts.clock.now();
        self.recover_if_due(now).await?;
        let tasks = self.parts.store.engine_tasks(now).await?;
        let mut running: Vec<Task> = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        for task in tasks {
            if task.status == TaskStatus::Pending {
                if let Some(at) = task.scheduled_at.filter(|at| *at > now) {
                    next = earliest(next, Some(at));
                    continue;
                }
                match self.start_scheduled(&task, now).await {
                    Ok(t) => running.push(t),
                    Err(e @ StoreError::RunningLimit { .. }) => {
                        debug!(task.id = %task.id, error = %e, "scheduled start waits for a free slot");
                        next = earliest(next, Some(now + self.config.idle_poll));
                    }
                    Err(e) => debug!(task.id = %task.id, error = %e, "scheduled start skipped"),
                }
            } else if task.is_runnable(now) {
                running.push(task);
            } else if let Some(at) = task.scheduled_at {
                next = earliest(next, Some(at));
            }
        }
        for task in &running {
            let prepared = self.state().prepared.contains(&task.id);
            if !prepared {
                self.prepare(task).await?;
            }
        }
        let ids: Vec<TaskId> = running.iter().map(|t| t.id).collect();
        let pending = self.parts.store.pending_counts(&ids).await?;
        let lanes = self.parts.store.lanes_of(&ids).await?;
        let mut live: Vec<&Task> = Vec::new();
        for task in &running {
            let left = pending.get(&task.id).copied().unwrap_or(0);
            let task_lanes: Vec<&Lane> = lanes.iter().filter(|l| l.task_id == task.id).collect();
            if left == 0 {
                self.finish_if_done(task).await?;
            } else if task_lanes.iter().all(|l| l.status == LaneStatus::Closed) {
                let reason = closed_reason(&task_lanes);
                self.fail(task, &reason).await?;
            } else {
                live.push(task);
            }
        }
        // Group due lanes by account.
        let by_id: HashMap<TaskId, &Task> = live.iter().map(|t| (t.id, *t)).collect();
        let mut per_account: BTreeMap<AccountId, Vec<(Task, Lane)>> = BTreeMap::new();
        for lane in lanes {
            if lane.status != LaneStatus::Active {
                continue;
            }
            if let Some(task) = by_id.get(&lane.task_id) {
                per_account
                    .entry(lane.account_id.clone())
                    .or_default()
                    .push(((*task).clone(), lane));
            }
        }
        let mut due = Vec::new();
        {
            let st = self.state();
            for (account, lanes) in per_account {
                let account_at = st.account_next.get(&account).copied();
                let lane_at = lanes
                    .iter()
                    .map(|(_, l)| l.cooldown_until.unwrap_or(now))
                    .min()
                    .unwrap_or(now);
                let at = account_at.map_or(lane_at, |a| a.max(lane_at));
                if at <= now {
                    due.push((account, lanes));
                } else {
                    next = earliest(next, Some(at));
                }
            }
        }
        let steps = due.len();
        let results: Vec<Option<DateTime<Utc>>> = futures::stream::iter(due)
            .map(|(account, lanes)| self.step_account(account, lanes, now))
            .buffer_unordered(self.config.max_parallel_steps.max(1))
            .collect()
            .await;
        for at in results {
            next = earliest(next, at);
        }
        if steps > 0 {
            // Something changed: look again at once (finished tasks, freed accounts).
            next = earliest(next, Some(now));
        }
        Ok(TickReport { steps, next })
    }

    async fn recover_if_due(&self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let due = self
            .state()
            .last_recovery
            .is_none_or(|at| now - at >= self.config.claim_timeout / 2);
        if !due {
            return Ok(());
        }
        let n = self
            .parts
            .store
            .recover_stale(now - self.config.claim_timeout)
            .await?;
        let mut st = self.state();
        st.last_recovery = Some(now);
        if n > 0 {
            warn!(count = n, "claims of a stopped worker turned uncertain");
            // Their tasks must reconcile again.
            st.prepared.clear();
        }
        Ok(())
    }

    /// Creates lanes from the owner's accounts, checks invite rights, reconciles uncertain
    /// targets.
    async fn prepare(&self, task: &Task) -> Result<(), EngineError> {
        let Some(strategy) = self.strategies.get(&task.platform).cloned() else {
            self.fail(task, &format!("no adapter for platform {}", task.platform))
                .await?;
            return Ok(());
        };
        let mut accounts: Vec<AccountId> = self
            .parts
            .directory
            .accounts(task.user_id, task.platform)
            .await?
            .into_iter()
            .filter(|a| a.active)
            .map(|a| a.id)
            .collect();
        if let Some(wanted) = &task.settings.accounts {
            accounts.retain(|a| wanted.contains(a));
        }
        if accounts.is_empty() {
            self.fail(task, "no usable account of the owner on this platform")
                .await?;
            return Ok(());
        }
        self.parts.store.ensure_lanes(task.id, &accounts).await?;
        if let Some(group) = task.settings.action.group() {
            let lanes = self.parts.store.lanes_of(&[task.id]).await?;
            for mut lane in lanes.into_iter().filter(|l| l.status == LaneStatus::Active) {
                if let Err(e) = strategy.check_invite_rights(&lane.account_id, group).await {
                    match e {
                        crate::ports::PlatformError::Group {
                            account_only: false,
                            ..
                        } => {
                            self.fail(task, &format!("group unusable: {}", e.code()))
                                .await?;
                            return Ok(());
                        }
                        crate::ports::PlatformError::Transient { .. } => {}
                        other => {
                            lane.status = LaneStatus::Closed;
                            lane.reason = Some(format!("invite rights check: {}", other.code()));
                            info!(task.id = %task.id, account.id = %lane.account_id, reason = ?lane.reason, "lane closed");
                            self.parts.store.save_lane(&lane).await?;
                        }
                    }
                }
            }
        }
        self.reconcile(task, strategy.as_ref()).await?;
        let mut st = self.state();
        st.prepared.insert(task.id);
        st.halted.remove(&task.id);
        Ok(())
    }

    /// Settles uncertain targets: messages go back to `pending` with their `random_id`;
    /// invites are checked for membership.
    async fn reconcile(
        &self,
        task: &Task,
        strategy: &dyn InviteStrategy,
    ) -> Result<(), EngineError> {
        let uncertain = self.parts.store.uncertain_targets(task.id).await?;
        if uncertain.is_empty() {
            return Ok(());
        }
        let now = self.parts.clock.now();
        for target in uncertain {
            let Some(account) = target.account_id.clone() else {
                self.parts.store.settle_uncertain(target.id, None).await?;
                continue;
            };
            let group = match &task.settings.action {
                Action::Message { .. } => {
                    info!(task.id = %task.id, target.id = %target.id, "uncertain message goes back to pending with its random_id");
                    self.parts.store.settle_uncertain(target.id, None).await?;
                    continue;
                }
                Action::Invite { group } | Action::InviteAndMessage { group, .. } => group,
            };
            match strategy.is_member(&account, &target, group).await {
                Ok(true) => {
                    let record = OutcomeRecord {
                        target_id: target.id,
                        account_id: account.clone(),
                        outcome: Outcome::Invited,
                        error_message: None,
                        result: serde_json::json!({"settled_by": "membership_check"}),
                        at: now,
                        log: NewExecutionLog {
                            task_id: task.id,
                            target_id: Some(target.id),
                            account_id: account,
                            action: "reconcile".to_owned(),
                            status: ExecutionStatus::Success,
                            outcome: Some(Outcome::Invited),
                            error_kind: None,
                            error_code: None,
                            latency_ms: None,
                            created_at: now,
                        },
                    };
                    self.parts
                        .store
                        .settle_uncertain(target.id, Some(record))
                        .await?;
                }
                Ok(false) => {
                    info!(task.id = %task.id, target.id = %target.id, "uncertain invite not done; back to pending");
                    self.parts.store.settle_uncertain(target.id, None).await?;
                }
                Err(e) => {
                    warn!(task.id = %task.id, target.id = %target.id, error = %e, "uncertain target could not be settled; left uncertain");
                }
            }
        }
        Ok(())
    }

    async fn finish_if_done(&self, task: &Task) -> Result<(), EngineError> {
        let progress = self.parts.store.progress(task.user_id, task.id).await?;
        if progress.count(crate::domain::TargetStatus::InProgress) > 0 {
            return Ok(());
        }
        info!(task.id = %task.id, user.id = %task.user_id, "task completed");
        self.transition(task, TaskEvent::Complete, None).await?;
        Ok(())
    }

    async fn fail(&self, task: &Task, reason: &str) -> Result<(), EngineError> {
        warn!(task.id = %task.id, user.id = %task.user_id, reason, "task failed");
        match self
            .transition(task, TaskEvent::Fail, Some(reason.to_owned()))
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a scheduled task that is due, within the owner's running-task limit.
    async fn start_scheduled(&self, task: &Task, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let event = TaskEvent::Start {
            scheduled_later: false,
        };
        match self.config.max_running_tasks {
            Some(max) => {
                let started = self
                    .parts
                    .store
                    .transition_capped(task.user_id, task.id, event, max, now)
                    .await?;
                announce(self.events.as_ref(), event, &started).await;
                Ok(started)
            }
            None => self.transition(task, event, None).await,
        }
    }

    async fn transition(
        &self,
        task: &Task,
        event: TaskEvent,
        reason: Option<String>,
    ) -> Result<Task, StoreError> {
        let now = self.parts.clock.now();
        let t = self
            .parts
            .store
            .transition(task.user_id, task.id, event, reason, now)
            .await?;
        announce(self.events.as_ref(), event, &t).await;
        if t.status.is_terminal() || t.status == TaskStatus::Paused {
            let mut st = self.state();
            st.prepared.remove(&task.id);
            st.breaker.remove(&task.id);
            st.halted.insert(task.id);
        }
        Ok(t)
    }

    fn set_account_next(&self, account: &AccountId, at: DateTime<Utc>) {
        self.state().account_next.insert(account.clone(), at);
    }

    async fn account_state(&self, account: &AccountId) -> Option<AccountState> {
        self.parts.accounts.account_state(account).await.ok()
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn closed_reason(lanes: &[&Lane]) -> String {
    let reasons: Vec<&str> = lanes.iter().filter_map(|l| l.reason.as_deref()).collect();
    if reasons.is_empty() {
        "no usable account left".to_owned()
    } else {
        format!("no usable account left ({})", reasons.join("; "))
    }
}
