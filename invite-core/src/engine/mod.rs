//! The execution engine (SPEC §5).
//!
//! The store holds all durable state; the engine is a loop that, at each pass ("tick"), looks
//! at the runnable tasks, their lanes (task × account) and the accounts' next eligible times,
//! runs one step for every account that is due (concurrently across accounts, never two
//! actions of one account at once), and sleeps on the injected [`Clock`] until the next
//! account is due or it is woken ([`Engine::wake`]).
//!
//! One attempt of an account: `allocate_account` → pick the highest-priority runnable task
//! among its lanes (least recently used first among equals, so equal priorities take turns and
//! a HIGH task started later takes the account at its next step) → `check_rate_limit` → claim
//! one target (`pending → in_progress`, committed before the platform call, with a stored
//! `random_id` for messages) → suppression and de-duplication checks → the platform call →
//! the outcome and its log row in one transaction → `release_account`, and `handle_error` on
//! any platform error. Each of these logs one `Account Manager: <step>` line with the task,
//! account and target ids.
//!
//! A step is one attempt, or several: while the account may act again at once (its limits let
//! it, one of its lanes still has work, nothing is owed to the manager), the step goes on with
//! its next attempt — lanes sorted afresh, limits checked and a target claimed afresh — up to
//! [`EngineConfig::max_step_attempts`] attempts or [`EngineConfig::step_budget`], so an
//! account that may act does not wait for the pass's slowest account. A task paused or
//! stopped meanwhile gives no further claim (the claim takes targets of running tasks only).
//! When the ledger shares the store's database, the account stays allocated under one hold
//! across the step's attempts (release has nothing else to record). When the account manager keeps its ledger in the store's database
//! (the local manager over one `invite-store` database), the limit check and the claim are one
//! transaction (`AccountManager::check_and_claim`), and so are the outcome, its log row, the
//! lane and the ledger's `performed` (`TaskStore::record_attempt`): an attempt commits twice.
//!
//! At most once: every claim records its holder (this engine's [`EngineConfig::worker_id`],
//! kept alive by a heartbeat); a target left `in_progress` by a holder that stopped renewing
//! for [`EngineConfig::holder_timeout`] becomes `uncertain` and is reconciled, never re-sent
//! blindly — a message goes back to `pending` pinned to the account that may have sent it,
//! with its `random_id` (the platform de-duplicates a `random_id` per sending account only), an
//! invite is settled by a membership check. A message whose account can no longer act, or
//! has not within [`EngineConfig::uncertain_horizon`], ends `uncertain`: never sent by another.
//!
//! Charging: everything that may have reached the platform is charged to the account's limits
//! (see the `step` module); only a request that certainly never left is refunded.
//!
//! Containment: an error in one task's preparation skips that task for the pass; a panic in
//! one task's step or preparation pauses that task with the reason; the engine goes on with
//! the others. A result the store could not take is kept and written first at the next pass,
//! and the engine claims nothing while any is pending ([`EngineHealth`] tells it).

mod owed;
mod step;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use futures::{FutureExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::domain::{
    AccountId, Action, ExecutionStatus, Lane, LaneStatus, NewExecutionLog, Outcome, Platform,
    TargetId, Task, TaskEvent, TaskId, TaskStatus,
};
use crate::memory::NoEvents;
use crate::ports::{
    AccountDirectory, AccountLeases, AccountManager, AccountState, ErrorReport, HoldId,
    InviteStrategy, LimitLedger, OutcomeRecord, PlatformError, Settlement, StoreError,
    SuppressionList, TaskEventMessage, TaskEvents, TaskFilter, TaskStore, UsageStats, abandonment,
};

/// Tunables of the engine. Limits are not here: they belong to the account manager.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Name of this worker process in account leases and claims; unique per process (the
    /// default draws one from the operating system's randomness). Two live processes must
    /// never share one.
    pub worker_id: String,
    /// How long an account lease lasts without renewal.
    pub lease_ttl: TimeDelta,
    /// How often this worker renews its heartbeat (and looks for claims of stopped workers).
    pub heartbeat_interval: TimeDelta,
    /// A worker whose heartbeat is older than this is stopped: its claims are recovered.
    pub holder_timeout: TimeDelta,
    /// How long a target pinned to its account (a message that may have been sent) waits for
    /// that account before it ends `uncertain`.
    pub uncertain_horizon: TimeDelta,
    /// Consecutive account-level errors in one task that pause it.
    pub breaker_threshold: u32,
    /// Claims of one target after which transient errors give up on it.
    pub max_target_attempts: u32,
    /// Claims of one target after which a write the platform refused without a cause
    /// (each attempt charged) fails the target.
    pub max_write_attempts: u32,
    /// First backoff after a transient error (doubles, with jitter, up to `backoff_max`).
    pub backoff_base: TimeDelta,
    /// Longest backoff.
    pub backoff_max: TimeDelta,
    /// Pass interval when nothing is scheduled (a wake-up comes sooner when work arrives).
    pub idle_poll: TimeDelta,
    /// When an account is stepped again after the account manager could not be reached (or a
    /// release or error report to it is owed): a fixed wait, not a backoff — the manager's
    /// absence is no fault of the account, whose state and backoff it leaves alone. (The HTTP
    /// client's circuit breaker answers at once while open, so the retries cost no requests.)
    pub manager_retry: TimeDelta,
    /// Accounts stepped at once.
    pub max_parallel_steps: usize,
    /// Attempts one step of an account makes at most: while the account may act again at once
    /// (its limits let it, a lane still has work), its step goes on with the next attempt
    /// rather than waiting for the next pass. 1 makes one attempt per step.
    pub max_step_attempts: u32,
    /// Time on the engine's clock after which a step starts no further attempt (the pass, a
    /// task started meanwhile and the other accounts' next steps wait at most this much plus
    /// one attempt for it).
    pub step_budget: TimeDelta,
    /// Seed of the backoff jitter.
    pub seed: u64,
    /// Seed of the random part of message `random_id`s; `None` (the default) draws from the
    /// operating system. Whatever the source, ids are unique per database (see
    /// [`message_random_id`](crate::ports::message_random_id)).
    pub random_id_seed: Option<u64>,
    /// A scheduled task starts only while its owner runs fewer tasks than this (it waits for
    /// a free slot otherwise); `None` starts it regardless. The API's limit of running tasks
    /// per user belongs here too.
    pub max_running_tasks: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker_id: unique_worker_id("invite-worker"),
            lease_ttl: TimeDelta::minutes(5),
            heartbeat_interval: TimeDelta::seconds(15),
            holder_timeout: TimeDelta::seconds(90),
            uncertain_horizon: TimeDelta::days(3),
            breaker_threshold: 5,
            max_target_attempts: 5,
            max_write_attempts: 3,
            backoff_base: TimeDelta::seconds(2),
            backoff_max: TimeDelta::minutes(5),
            idle_poll: TimeDelta::seconds(30),
            manager_retry: TimeDelta::seconds(5),
            max_parallel_steps: 16,
            max_step_attempts: 16,
            step_budget: TimeDelta::milliseconds(250),
            seed: 0x1_0b17_e5e5,
            random_id_seed: None,
            max_running_tasks: None,
        }
    }
}

/// `prefix` and 64 bits from the operating system's randomness: a worker id no other process
/// shares.
pub fn unique_worker_id(prefix: &str) -> String {
    let mut bytes = [0_u8; 8];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes).unwrap_or_else(|_| {
        // No entropy source: the address of a local is still distinct per process.
        let here = &bytes as *const _ as usize as u64;
        bytes = here.to_le_bytes();
    });
    format!("{prefix}-{:016x}", u64::from_le_bytes(bytes))
}

/// A write to the store that finishes a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unrecorded {
    /// A target's outcome.
    Outcome(OutcomeRecord),
    /// The confirmed invite of an `invite_and_message` target.
    InvitePart(OutcomeRecord),
    /// A target added to the account's contacts, its action to follow.
    ContactPart {
        target: TargetId,
        account: AccountId,
        log: NewExecutionLog,
    },
    /// A target back to `pending`, untouched.
    Release {
        target: TargetId,
        account: AccountId,
        log: Option<NewExecutionLog>,
    },
    /// A target whose write may have reached the platform.
    Uncertain {
        target: TargetId,
        account: AccountId,
        log: Option<NewExecutionLog>,
    },
}

impl Unrecorded {
    fn target(&self) -> TargetId {
        match self {
            Unrecorded::Outcome(r) | Unrecorded::InvitePart(r) => r.target_id,
            Unrecorded::Release { target, .. }
            | Unrecorded::Uncertain { target, .. }
            | Unrecorded::ContactPart { target, .. } => *target,
        }
    }
}

/// What the engine tells about itself (for `/health`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineHealth {
    /// The store took the engine's last writes; while false, nothing is claimed.
    pub store_ok: bool,
    /// Results kept in memory because the store could not take them.
    pub unrecorded: usize,
    /// Passes run.
    pub passes: u64,
    /// Passes that failed (store unreachable, results not writable).
    pub failed_passes: u64,
    /// Panics caught (each paused its task, or restarted the pass).
    pub panics: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Time of the last pass that completed.
    pub last_pass_at: Option<DateTime<Utc>>,
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
    /// Results of platform actions wait to be written: nothing new is done until they are.
    #[error("results wait to be recorded; the engine does not act until the store takes them")]
    Unrecorded,
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
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
    /// The stable key of each prepared task's group, as its strategy resolved it, with the
    /// group as written it was resolved from (a task's group may be edited while paused).
    group_keys: HashMap<TaskId, (String, String)>,
    /// Until when this worker holds each account's lease, as last taken or renewed.
    leased_until: HashMap<AccountId, DateTime<Utc>>,
    /// Account-level errors in a row per task.
    breaker: HashMap<TaskId, (u32, String)>,
    /// Transient errors in a row per account.
    transient: HashMap<AccountId, u32>,
    /// Tasks this engine paused or ended during a pass: steps already chosen skip them.
    halted: HashSet<TaskId>,
    /// Last heartbeat written (and recovery of stopped workers' claims).
    last_heartbeat: Option<DateTime<Utc>>,
    /// The target each account is acting on (to settle it if the step panics).
    in_flight: HashMap<AccountId, (TaskId, TargetId)>,
    /// Results the store could not take yet.
    unrecorded: Vec<Unrecorded>,
    /// The hold each account is allocated under, from its grant to its release.
    holding: HashMap<AccountId, HoldId>,
    /// Holds drawn so far (the counter of their names).
    holds_drawn: u64,
    /// Calls the account manager could not take, made before the account's next allocation.
    owed: HashMap<AccountId, owed::Owed>,
    /// What `/health` shows.
    health: EngineHealth,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    parts: EngineParts,
    strategies: HashMap<Platform, Arc<dyn InviteStrategy>>,
    config: EngineConfig,
    state: Mutex<EngineState>,
    rng: Mutex<StdRng>,
    random_ids: Mutex<StdRng>,
    wake: Notify,
    events: Arc<dyn TaskEvents>,
    /// The random part of this engine's hold names.
    hold_prefix: String,
    /// The local limits' ledger, when the engine's account manager keeps its limits there.
    ledger: Option<Arc<dyn LimitLedger>>,
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
        let random_ids = match config.random_id_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => {
                StdRng::try_from_os_rng().unwrap_or_else(|_| StdRng::seed_from_u64(config.seed))
            }
        };
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            random_ids: Mutex::new(random_ids),
            parts,
            strategies,
            config,
            state: Mutex::new(EngineState::default()),
            wake: Notify::new(),
            events: Arc::new(NoEvents),
            hold_prefix: unique_worker_id("hold"),
            ledger: None,
        }
    }

    /// Tells `events` of every transition the engine makes (a scheduled start, completion,
    /// failure, a pause by the circuit breaker). Without it, nothing is published.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn TaskEvents>) -> Self {
        self.events = events;
        self
    }

    /// The ledger of the local account manager (the one [`EngineParts::accounts`] keeps its
    /// limits in): when a task's group is resolved to its stable key, what the task's accounts
    /// did under the group as written moves to that key, so the group's limits count it.
    /// Without it (an account manager elsewhere keeps the limits), the history under the group
    /// as written stays there.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Arc<dyn LimitLedger>) -> Self {
        self.ledger = Some(ledger);
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

    /// Random high bits of a message's `random_id`.
    fn random_high(&self) -> u32 {
        self.random_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random()
    }

    /// What the engine tells about itself.
    pub fn health(&self) -> EngineHealth {
        let st = self.state();
        EngineHealth {
            unrecorded: st.unrecorded.len(),
            ..st.health.clone()
        }
    }

    fn note_error(&self, error: &str) {
        self.state().health.last_error = Some(error.to_owned());
    }

    /// Pinned targets last claimed before this have waited past the horizon.
    fn horizon_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_sub_signed(self.config.uncertain_horizon)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
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

    /// Runs until `cancel` fires: passes, then sleeps until the next due account or a wake-up,
    /// while a heartbeat keeps this worker's claims alive however long a pass takes. A failed
    /// pass is logged and retried after `idle_poll`; a panic in a pass is caught, counted in
    /// [`Engine::health`], and the loop goes on.
    pub async fn run(&self, cancel: CancellationToken) {
        info!(worker = %self.config.worker_id, "engine started");
        let passes = async {
            while !cancel.is_cancelled() {
                let pass = std::panic::AssertUnwindSafe(self.tick())
                    .catch_unwind()
                    .await;
                let next = match pass {
                    Ok(Ok(report)) => report.next,
                    Ok(Err(e)) => {
                        warn!(error = %e, "engine pass failed; retrying");
                        None
                    }
                    Err(panic) => {
                        let what = panic_message(panic.as_ref());
                        warn!(error = %what, "engine pass panicked; going on");
                        let mut st = self.state();
                        st.health.panics += 1;
                        st.health.last_error = Some(format!("panic: {what}"));
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
        };
        let heartbeat = async {
            while !cancel.is_cancelled() {
                let now = self.parts.clock.now();
                if let Err(e) = self.beat(now).await {
                    warn!(error = %e, "heartbeat not written");
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = self.parts.clock.sleep_until(now + self.config.heartbeat_interval) => {}
                }
            }
        };
        tokio::join!(passes, heartbeat);
        self.release_leases().await;
        if let Err(e) = self.parts.store.retire_holder(&self.config.worker_id).await {
            warn!(error = %e, "worker not retired; its heartbeat expires");
        }
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

    /// Writes this worker's heartbeat.
    async fn beat(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.parts
            .store
            .heartbeat(&self.config.worker_id, now)
            .await?;
        self.state().last_heartbeat = Some(now);
        Ok(())
    }

    async fn release_leases(&self) {
        // Calls the manager missed are made once more on the way out (a hold left behind ends
        // at the manager's TTL).
        let owed: Vec<AccountId> = self.state().owed.keys().cloned().collect();
        for account in &owed {
            if !self.settle_owed(account).await {
                warn!(account.id = %account, "calls owed to the account manager not made; its hold ends at the manager's TTL");
            }
        }
        let accounts: Vec<AccountId> = {
            let mut st = self.state();
            st.leased_until.clear();
            st.account_next.keys().cloned().collect()
        };
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
        let result = self.pass().await;
        let mut st = self.state();
        st.health.passes += 1;
        match &result {
            Ok(_) => {
                st.health.store_ok = st.unrecorded.is_empty();
                st.health.last_pass_at = Some(self.parts.clock.now());
            }
            Err(e) => {
                st.health.failed_passes += 1;
                st.health.last_error = Some(e.to_string());
                if matches!(e, EngineError::Store(_)) {
                    st.health.store_ok = false;
                }
            }
        }
        result
    }

    async fn pass(&self) -> Result<TickReport, EngineError> {
        // Results the store could not take come first: nothing new is claimed before they
        // are written.
        self.flush_unrecorded().await?;
        let now = self.parts.clock.now();
        let recovered = self.recover_if_due(now).await?;
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
        let mut unprepared = HashSet::new();
        for task in &running {
            let prepared = self.state().prepared.contains(&task.id);
            if prepared {
                continue;
            }
            let outcome = std::panic::AssertUnwindSafe(self.prepare(task))
                .catch_unwind()
                .await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e @ EngineError::Store(_))) => return Err(e),
                Ok(Err(e)) => {
                    // One task's trouble (its owner's directory, its account manager) stops
                    // only that task for this pass.
                    warn!(task.id = %task.id, user.id = %task.user_id, error = %e, "task not prepared; tried again next pass");
                    self.note_error(&e.to_string());
                    unprepared.insert(task.id);
                }
                Err(panic) => {
                    self.contain_panic(task, None, panic).await;
                    unprepared.insert(task.id);
                }
            }
        }
        running.retain(|t| !unprepared.contains(&t.id));
        let ids: Vec<TaskId> = running.iter().map(|t| t.id).collect();
        let pending = self.parts.store.with_pending(&ids).await?;
        let lanes = self.parts.store.lanes_of(&ids).await?;
        let mut live: Vec<&Task> = Vec::new();
        for task in &running {
            let task_lanes: Vec<&Lane> = lanes.iter().filter(|l| l.task_id == task.id).collect();
            if !pending.contains(&task.id) {
                let again = self.finish_if_done(task, &task_lanes).await?;
                next = earliest(next, again);
            } else if task_lanes.iter().all(|l| l.status == LaneStatus::Closed) {
                let reason = closed_reason(&task_lanes);
                self.fail(task, &reason).await?;
            } else {
                if recovered {
                    // Now and then: targets pinned to an account past the horizon end.
                    self.abandon_pinned(task, &task_lanes, now).await?;
                }
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
            .map(|(account, lanes)| self.contained_step(account, lanes, now))
            .buffer_unordered(self.config.max_parallel_steps.max(1))
            .collect()
            .await;
        if !self.state().unrecorded.is_empty() {
            return Err(EngineError::Unrecorded);
        }
        for at in results {
            next = earliest(next, at);
        }
        if steps > 0 {
            // Something changed: look again at once (finished tasks, freed accounts).
            next = earliest(next, Some(now));
        }
        Ok(TickReport { steps, next })
    }

    /// Renews the heartbeat and recovers the claims of stopped workers, every
    /// `heartbeat_interval`; tells whether it did.
    async fn recover_if_due(&self, now: DateTime<Utc>) -> Result<bool, EngineError> {
        let due = self
            .state()
            .last_heartbeat
            .is_none_or(|at| now - at >= self.config.heartbeat_interval);
        if !due {
            return Ok(false);
        }
        self.beat(now).await?;
        let silent_since = now
            .checked_sub_signed(self.config.holder_timeout)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let n = self.parts.store.recover_stale(silent_since).await?;
        if n > 0 {
            warn!(count = n, "claims of a stopped worker turned uncertain");
            // Their tasks must reconcile again.
            self.state().prepared.clear();
        }
        Ok(true)
    }

    /// Writes the results the store could not take before, oldest first.
    async fn flush_unrecorded(&self) -> Result<(), EngineError> {
        loop {
            let Some(write) = self.state().unrecorded.first().cloned() else {
                return Ok(());
            };
            match self.apply(&write).await {
                Ok(()) | Err(StoreError::NotFound) => {
                    info!(target.id = %write.target(), "kept result recorded");
                }
                Err(e) => return Err(e.into()),
            }
            self.state().unrecorded.remove(0);
        }
    }

    /// Steps an account; a panic in the step pauses the task it was acting for (its claimed
    /// target becomes uncertain) instead of stopping the engine.
    async fn contained_step(
        &self,
        account: AccountId,
        lanes: Vec<(Task, Lane)>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let tasks: Vec<Task> = lanes.iter().map(|(t, _)| t.clone()).collect();
        let step = std::panic::AssertUnwindSafe(self.step_account(account.clone(), lanes, now))
            .catch_unwind()
            .await;
        match step {
            Ok(next) => next,
            Err(panic) => {
                let in_flight = self.state().in_flight.remove(&account);
                let task = in_flight
                    .and_then(|(task, _)| tasks.iter().find(|t| t.id == task))
                    .or(tasks.first());
                if let Some(task) = task {
                    self.contain_panic(task, in_flight.map(|(_, t)| (account.clone(), t)), panic)
                        .await;
                }
                // The account is let go; its reservation, if any, stays charged.
                let hold = self.state().holding.get(&account).cloned();
                if let Some(hold) = hold {
                    let usage = UsageStats {
                        hold: Some(hold),
                        ..UsageStats::default()
                    };
                    self.release(&account, usage).await;
                }
                let at = now + self.config.idle_poll;
                self.set_account_next(&account, at);
                Some(at)
            }
        }
    }

    /// Pauses `task` after a panic in its work; a target it held becomes uncertain.
    async fn contain_panic(
        &self,
        task: &Task,
        claimed: Option<(AccountId, TargetId)>,
        panic: Box<dyn std::any::Any + Send>,
    ) {
        let what = panic_message(panic.as_ref());
        warn!(task.id = %task.id, user.id = %task.user_id, error = %what, "panic in a task's work; task paused");
        {
            let mut st = self.state();
            st.health.panics += 1;
            st.health.last_error = Some(format!("panic in task {}: {what}", task.id));
        }
        if let Some((account, target)) = claimed {
            let write = Unrecorded::Uncertain {
                target,
                account,
                log: None,
            };
            if let Err(e) = self.write(write).await {
                warn!(task.id = %task.id, error = %e, "claim of a panicked step not settled");
            }
        }
        let reason = format!("internal error: {what}");
        if let Err(e) = self.transition(task, TaskEvent::Pause, Some(reason)).await {
            debug!(task.id = %task.id, error = %e, "task not paused after a panic");
        }
    }

    /// Ends the task's targets pinned to accounts whose lanes are closed, or pinned past the
    /// horizon.
    async fn abandon_pinned(
        &self,
        task: &Task,
        lanes: &[&Lane],
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let gone: Vec<AccountId> = lanes
            .iter()
            .filter(|l| l.status == LaneStatus::Closed)
            .map(|l| l.account_id.clone())
            .collect();
        let ended = self
            .parts
            .store
            .abandon_pinned(task.id, &gone, self.horizon_start(now), now)
            .await?;
        if ended > 0 {
            warn!(task.id = %task.id, count = ended, "targets whose account can no longer act ended unconfirmed");
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
        let mut lanes = self.parts.store.lanes_of(&[task.id]).await?;
        // Only the accounts usable now are connected (an account its owner disabled or removed
        // keeps its lanes, idle).
        let usable = |l: &Lane| l.status == LaneStatus::Active && accounts.contains(&l.account_id);
        if let Some(group) = task.settings.action.group() {
            for lane in lanes.iter_mut().filter(|l| usable(l)) {
                let Err(e) = strategy.check_invite_rights(&lane.account_id, group).await else {
                    continue;
                };
                match e {
                    PlatformError::Group {
                        account_only: false,
                        ..
                    } => {
                        self.fail(task, &format!("group unusable: {}", e.code()))
                            .await?;
                        return Ok(());
                    }
                    // Timers and passing trouble: the account cools down or the check is
                    // simply made again later; the lane stays.
                    PlatformError::FloodWait { .. } | PlatformError::AccountRestricted { .. } => {
                        self.report_prepare_error(task, &lane.account_id, strategy.as_ref(), &e)
                            .await?;
                    }
                    PlatformError::Transient { .. }
                    | PlatformError::Ambiguous { .. }
                    | PlatformError::Refused { .. } => {
                        debug!(task.id = %task.id, account.id = %lane.account_id, error = %e, "invite rights not checked now");
                    }
                    PlatformError::AccountDead { .. } => {
                        self.report_prepare_error(task, &lane.account_id, strategy.as_ref(), &e)
                            .await?;
                        self.close_lane(task, lane, format!("account unusable: {}", e.code()))
                            .await?;
                    }
                    other => {
                        self.close_lane(
                            task,
                            lane,
                            format!("invite rights check: {}", other.code()),
                        )
                        .await?;
                    }
                }
            }
        }
        let resolvers: Vec<&Lane> = lanes.iter().filter(|l| usable(l)).collect();
        let lane_accounts: Vec<AccountId> = lanes.iter().map(|l| l.account_id.clone()).collect();
        self.resolve_group_key(task, strategy.as_ref(), &resolvers, &lane_accounts)
            .await?;
        self.reconcile(task, strategy.as_ref(), &lanes).await?;
        let lane_refs: Vec<&Lane> = lanes.iter().collect();
        self.abandon_pinned(task, &lane_refs, self.parts.clock.now())
            .await?;
        let mut st = self.state();
        st.prepared.insert(task.id);
        st.halted.remove(&task.id);
        Ok(())
    }

    /// Resolves the task's group once to its stable key (through the first account that can)
    /// and records it with the task, for the de-duplication across tasks; until then the
    /// group's limits key on the reference as given. Once resolved, what `accounts` did under
    /// the reference as given moves to the key in the ledger (see [`Engine::with_ledger`]).
    async fn resolve_group_key(
        &self,
        task: &Task,
        strategy: &dyn InviteStrategy,
        lanes: &[&Lane],
        accounts: &[AccountId],
    ) -> Result<(), EngineError> {
        let Some(group) = task.settings.action.group() else {
            return Ok(());
        };
        let written = task.settings.action.channel_key();
        if let Some(key) = &task.group_key {
            self.state()
                .group_keys
                .insert(task.id, (written, key.clone()));
            return Ok(());
        }
        if self
            .state()
            .group_keys
            .get(&task.id)
            .is_some_and(|(w, _)| *w == written)
        {
            return Ok(());
        }
        for lane in lanes.iter().filter(|l| l.status == LaneStatus::Active) {
            match strategy.group_key(&lane.account_id, group).await {
                Ok(Some(key)) => {
                    debug!(task.id = %task.id, group.key = %key, "group of task {} resolved", task.id);
                    if let Some(ledger) = &self.ledger {
                        // Before the key is used: no reservation under it can miss these.
                        let moved = ledger.merge_channel(accounts, &written, &key).await?;
                        if moved > 0 {
                            info!(task.id = %task.id, group.key = %key, moved, "limits of task {}'s group now count {moved} earlier actions recorded under the group as written", task.id);
                        }
                    }
                    self.parts.store.set_group_key(task.id, &key).await?;
                    self.adopt_group_key(task, &written, &key).await?;
                    self.state().group_keys.insert(task.id, (written, key));
                    return Ok(());
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    debug!(task.id = %task.id, account.id = %lane.account_id, error = %e, "group not resolved through this account");
                }
            }
        }
        warn!(task.id = %task.id, "group of task {} not resolved yet; its limits key on the reference as given", task.id);
        Ok(())
    }

    /// The owner's other tasks on the platform with the group written the same way and no key
    /// recorded (finished before any resolution, or never resolved) take `key` too, and what
    /// their accounts did under the group as written moves to it in the ledger: the
    /// de-duplication (`dedupe_days`) of any spelling of the group then sees the people they
    /// reached, and their limits count with the group's.
    async fn adopt_group_key(
        &self,
        task: &Task,
        written: &str,
        key: &str,
    ) -> Result<(), EngineError> {
        const PAGE: u32 = 500;
        let mut adopted = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .parts
                .store
                .list_tasks(
                    task.user_id,
                    &TaskFilter {
                        platform: Some(task.platform),
                        limit: PAGE,
                        offset,
                        ..TaskFilter::default()
                    },
                )
                .await?;
            adopted.extend(
                page.iter()
                    .filter(|t| {
                        t.id != task.id
                            && t.group_key.is_none()
                            && t.settings.action.group().is_some()
                            && t.settings.action.channel_key() == written
                    })
                    .map(|t| t.id),
            );
            if page.len() < PAGE as usize {
                break;
            }
            offset += PAGE;
        }
        if adopted.is_empty() {
            return Ok(());
        }
        if let Some(ledger) = &self.ledger {
            let mut accounts: Vec<AccountId> = self
                .parts
                .store
                .lanes_of(&adopted)
                .await?
                .into_iter()
                .map(|l| l.account_id)
                .collect();
            accounts.sort();
            accounts.dedup();
            ledger.merge_channel(&accounts, written, key).await?;
        }
        for id in &adopted {
            match self.parts.store.set_group_key(*id, key).await {
                // Deleted meanwhile: nothing to key.
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        info!(task.id = %task.id, group.key = %key, count = adopted.len(), "{} earlier tasks with the group of task {} written the same way now key on it", adopted.len(), task.id);
        Ok(())
    }

    /// The key of the task's channel in the limits and the send-time de-duplication: its
    /// group's stable key once resolved ([`Task::channel`]).
    pub(crate) fn limit_channel(&self, task: &Task) -> String {
        if task.settings.action.group().is_some()
            && let Some((written, key)) = self.state().group_keys.get(&task.id)
            && *written == task.settings.action.channel_key()
        {
            return key.clone();
        }
        task.channel()
    }

    async fn report_prepare_error(
        &self,
        task: &Task,
        account: &AccountId,
        strategy: &dyn InviteStrategy,
        error: &PlatformError,
    ) -> Result<(), EngineError> {
        info!(task.id = %task.id, account.id = %account, "Account Manager: handle_error {account} {}", error.class().as_str());
        let state = self
            .parts
            .accounts
            .handle_error(
                account,
                &ErrorReport {
                    platform: strategy.platform(),
                    class: error.class(),
                    code: error.code().to_owned(),
                    message: error.to_string(),
                    retry_after: match error {
                        PlatformError::FloodWait { seconds, .. } => Some(
                            TimeDelta::try_seconds(i64::try_from(*seconds).unwrap_or(i64::MAX))
                                .unwrap_or(TimeDelta::MAX),
                        ),
                        _ => None,
                    },
                    task_id: Some(task.id),
                    target_id: None,
                },
            )
            .await?;
        if let AccountState::CoolingDown { until, .. } = state {
            self.set_account_next(account, until);
        }
        Ok(())
    }

    /// Settles uncertain targets (and tells whether there were any). A message (or the message of a confirmed invite) goes back
    /// to `pending` pinned to the account that may have sent it, or ends `uncertain` when that
    /// account's lane is closed; an invite is checked for membership.
    async fn reconcile(
        &self,
        task: &Task,
        strategy: &dyn InviteStrategy,
        lanes: &[Lane],
    ) -> Result<bool, EngineError> {
        let uncertain = self.parts.store.uncertain_targets(task.id).await?;
        if uncertain.is_empty() {
            return Ok(false);
        }
        let now = self.parts.clock.now();
        let store = &self.parts.store;
        for target in uncertain {
            let Some(account) = target.account_id.clone() else {
                store.settle_uncertain(target.id, Settlement::Retry).await?;
                continue;
            };
            let message_part = matches!(task.settings.action, Action::Message { .. })
                || target.invite_outcome.is_some();
            if message_part {
                let sender = target.sender.clone().unwrap_or_else(|| account.clone());
                let usable = lanes
                    .iter()
                    .any(|l| l.account_id == sender && l.status == LaneStatus::Active);
                if usable {
                    info!(task.id = %task.id, target.id = %target.id, account.id = %sender, "uncertain message goes back to pending for its sender, with its random_id");
                    store.settle_uncertain(target.id, Settlement::Retry).await?;
                } else {
                    warn!(task.id = %task.id, target.id = %target.id, account.id = %sender, "uncertain message's sender can no longer act; ends uncertain");
                    let settlement = match abandonment(&target, &sender, now) {
                        Some(record) => Settlement::Final(record),
                        // Nothing but a contact may have been added: start afresh.
                        None => Settlement::Retry,
                    };
                    store.settle_uncertain(target.id, settlement).await?;
                }
                continue;
            }
            let Some(group) = task.settings.action.group() else {
                continue;
            };
            match strategy.is_member(&account, &target, group).await {
                Ok(true) => {
                    // A member now — but whether by this invite or from before cannot be
                    // told, and "invited" counts only confirmed adds.
                    let record = OutcomeRecord {
                        target_id: target.id,
                        account_id: account.clone(),
                        outcome: Outcome::AlreadyMember,
                        error_message: None,
                        result: serde_json::json!({
                            "settled_by": "membership_check",
                            "invite": "uncertain",
                        }),
                        at: now,
                        log: NewExecutionLog {
                            task_id: task.id,
                            target_id: Some(target.id),
                            account_id: account,
                            action: "reconcile".to_owned(),
                            status: ExecutionStatus::Success,
                            outcome: Some(Outcome::AlreadyMember),
                            error_kind: None,
                            error_code: None,
                            latency_ms: None,
                            created_at: now,
                        },
                    };
                    let settlement =
                        if matches!(task.settings.action, Action::InviteAndMessage { .. }) {
                            // The invite is done; its message follows through the same account.
                            Settlement::InviteConfirmed(record)
                        } else {
                            Settlement::Final(record)
                        };
                    store.settle_uncertain(target.id, settlement).await?;
                }
                Ok(false) => {
                    info!(task.id = %task.id, target.id = %target.id, "uncertain invite not done; back to pending");
                    store.settle_uncertain(target.id, Settlement::Retry).await?;
                }
                Err(e) => {
                    warn!(task.id = %task.id, target.id = %target.id, error = %e, "uncertain target could not be settled; left uncertain");
                }
            }
        }
        Ok(true)
    }

    /// Completes a task with no pending target once nothing is in flight and every uncertain
    /// target is settled (or has waited past the horizon, and ends `uncertain`); until then,
    /// tells when to look again.
    async fn finish_if_done(
        &self,
        task: &Task,
        lanes: &[&Lane],
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let now = self.parts.clock.now();
        let progress = self.parts.store.progress(task.user_id, task.id).await?;
        if progress.count(crate::domain::TargetStatus::InProgress) > 0 {
            // Held by a worker — or by a stopped one, recovered once its heartbeat times out.
            return Ok(Some(now + self.config.heartbeat_interval));
        }
        // Settle what can be settled now; tells whether there was anything to settle.
        let unsettled = match self.strategies.get(&task.platform).cloned() {
            Some(strategy) => {
                let owned: Vec<Lane> = lanes.iter().map(|l| (*l).clone()).collect();
                self.reconcile(task, strategy.as_ref(), &owned).await?
            }
            None => !self
                .parts
                .store
                .uncertain_targets(task.id)
                .await?
                .is_empty(),
        };
        if unsettled {
            let horizon = self.horizon_start(now);
            let mut waiting = false;
            for target in self.parts.store.uncertain_targets(task.id).await? {
                let account = target.account_id.clone().or_else(|| target.sender.clone());
                let (Some(account), true) =
                    (account, target.claimed_at.is_none_or(|at| at < horizon))
                else {
                    waiting = true;
                    continue;
                };
                warn!(task.id = %task.id, target.id = %target.id, "uncertain target not settled within the horizon; ends uncertain");
                let record = OutcomeRecord {
                    target_id: target.id,
                    account_id: account.clone(),
                    outcome: Outcome::Uncertain,
                    error_message: Some("UNSETTLED".to_owned()),
                    result: serde_json::json!({"settled_by": "horizon"}),
                    at: now,
                    log: NewExecutionLog {
                        task_id: task.id,
                        target_id: Some(target.id),
                        account_id: account,
                        action: "reconcile".to_owned(),
                        status: ExecutionStatus::Pending,
                        outcome: Some(Outcome::Uncertain),
                        error_kind: None,
                        error_code: Some("UNSETTLED".to_owned()),
                        latency_ms: None,
                        created_at: now,
                    },
                };
                self.parts
                    .store
                    .settle_uncertain(target.id, Settlement::Final(record))
                    .await?;
            }
            // Settled targets may be pending again; unsettled ones are tried again later.
            return Ok(Some(if waiting {
                now + self.config.idle_poll
            } else {
                now
            }));
        }
        match self.transition(task, TaskEvent::Complete, None).await {
            Ok(_) => info!(task.id = %task.id, user.id = %task.user_id, "task completed"),
            // Another worker process completed it first (or a user ended it meanwhile): the
            // pass goes on.
            Err(StoreError::Conflict { .. }) => {
                debug!(task.id = %task.id, "task already ended by another worker or a user");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(None)
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
