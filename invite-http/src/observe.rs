//! Metrics of SPEC §13. The engine reports through its ports, so they are measured by
//! decorators around the ports ([`MeteredStore`], [`MeteredAccounts`]) with the `metrics`
//! facade; HTTP requests by a middleware. The Prometheus recorder is installed once per
//! process by [`install_recorder`]. Labels are platforms, statuses and outcomes, never user or
//! chat ids.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use invite_core::async_trait;
use invite_core::domain::{
    AccountId, ExecutionLog, Lane, NewExecutionLog, NewTarget, NewTask, Platform, Target, TargetId,
    Task, TaskEvent, TaskId, TaskStatus, TaskUpdate, UserId,
};
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, AddedTargets, Allocation, AllocationRequest,
    Claim, CleanupReport, CreatedTask, ErrorClass, ErrorReport, Followups, LogFilter,
    OutcomeRecord, Progress, RateDecision, RateLimitCheck, Settlement, StoreResult, TaskFilter,
    TaskStats, TaskStore, UsageStats,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
pub fn install_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
                        3600.0, 86_400.0,
                    ],
                )
                .expect("bucket list is not empty")
                .install_recorder()
                .expect("the Prometheus recorder is installed once per process");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!("invite_tasks_total", "Tasks entering each status");
    metrics::describe_counter!("invite_targets_processed", "Targets finished, per outcome");
    metrics::describe_counter!(
        "invite_accounts_blocked",
        "Accounts restricted or excluded by a platform error"
    );
    metrics::describe_counter!("invite_floodwait_events", "Flood waits met");
    metrics::describe_histogram!(
        "invite_task_duration_seconds",
        "From first start to the end of a task"
    );
    metrics::describe_gauge!("invite_active_tasks", "Tasks IN_PROGRESS");
    metrics::describe_counter!("http_requests_total", "HTTP requests");
    metrics::describe_histogram!("http_request_duration_seconds", "HTTP request latency");
}

/// The `method` label: one of the standard verbs, or `other` (a client may send any token as
/// a method; each must not become a series).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: request count and latency per method, route template and status, all from
/// closed sets: the method by [`method_label`], the path only from the matched route (else
/// `unmatched`), the status a number the server chose.
pub async fn track_http(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    response
}

/// A [`TaskStore`] that counts what passes through it and announces every status change.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn TaskStore>,
    platforms: Mutex<HashMap<TaskId, Platform>>,
    changes: watch::Sender<u64>,
}

impl MeteredStore {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn TaskStore>) -> Self {
        Self {
            inner,
            platforms: Mutex::new(HashMap::new()),
            changes: watch::Sender::new(0),
        }
    }

    /// A receiver that changes whenever a task changes status (for waiters and tests).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn remember(&self, task: &Task) {
        self.platforms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.id, task.platform);
    }

    fn platform_of(&self, id: TaskId) -> &'static str {
        self.platforms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map_or("unknown", |p| p.as_str())
    }

    fn entered(&self, task: &Task) {
        self.remember(task);
        metrics::counter!("invite_tasks_total", "platform" => task.platform.as_str(), "status" => task.status.as_str())
            .increment(1);
        if task.status.is_terminal()
            && let (Some(start), Some(end)) = (task.started_at, task.finished_at)
        {
            metrics::histogram!("invite_task_duration_seconds", "platform" => task.platform.as_str())
                .record((end - start).num_milliseconds().max(0) as f64 / 1000.0);
        }
        self.changes.send_modify(|n| *n += 1);
    }

    fn processed(&self, record: &OutcomeRecord) {
        metrics::counter!(
            "invite_targets_processed",
            "platform" => self.platform_of(record.log.task_id),
            "result" => record.outcome.as_str()
        )
        .increment(1);
        self.changes.send_modify(|n| *n += 1);
    }
}

#[async_trait]
impl TaskStore for MeteredStore {
    async fn create_task<'a, 'b>(
        &self,
        task: NewTask,
        targets: Vec<NewTarget>,
        idempotency: Option<(&'a str, &'b str)>,
        now: DateTime<Utc>,
    ) -> StoreResult<CreatedTask> {
        let created = self
            .inner
            .create_task(task, targets, idempotency, now)
            .await?;
        if !created.replayed {
            self.entered(&created.task);
        }
        Ok(created)
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
        let task = self.inner.transition(user, id, event, reason, now).await?;
        self.entered(&task);
        Ok(task)
    }

    async fn transition_capped(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        max_running: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let task = self
            .inner
            .transition_capped(user, id, event, max_running, now)
            .await?;
        self.entered(&task);
        Ok(task)
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
    ) -> StoreResult<std::collections::BTreeSet<String>> {
        self.inner
            .reached_since(user, platform, identifier_keys, channel, since)
            .await
    }

    async fn set_group_key(&self, id: TaskId, key: &str) -> StoreResult<()> {
        self.inner.set_group_key(id, key).await
    }

    async fn engine_tasks(&self, now: DateTime<Utc>) -> StoreResult<Vec<Task>> {
        let tasks = self.inner.engine_tasks(now).await?;
        let mut active: BTreeMap<Platform, u32> =
            Platform::ALL.into_iter().map(|p| (p, 0)).collect();
        for t in &tasks {
            self.remember(t);
            if t.status == TaskStatus::InProgress {
                *active.entry(t.platform).or_default() += 1;
            }
        }
        for (p, n) in active {
            metrics::gauge!("invite_active_tasks", "platform" => p.as_str()).set(f64::from(n));
        }
        Ok(tasks)
    }

    async fn ensure_lanes(&self, id: TaskId, accounts: &[AccountId]) -> StoreResult<()> {
        self.inner.ensure_lanes(id, accounts).await
    }

    async fn lanes_of(&self, ids: &[TaskId]) -> StoreResult<Vec<Lane>> {
        self.inner.lanes_of(ids).await
    }

    async fn save_lane(&self, lane: &Lane) -> StoreResult<()> {
        self.inner.save_lane(lane).await
    }

    async fn pending_counts(&self, ids: &[TaskId]) -> StoreResult<BTreeMap<TaskId, u64>> {
        self.inner.pending_counts(ids).await
    }

    async fn with_pending(
        &self,
        ids: &[TaskId],
    ) -> StoreResult<std::collections::BTreeSet<TaskId>> {
        self.inner.with_pending(ids).await
    }

    async fn claim_target(&self, claim: &Claim) -> StoreResult<Option<Target>> {
        self.inner.claim_target(claim).await
    }

    async fn followups(&self, id: TaskId, account: &AccountId) -> StoreResult<Followups> {
        self.inner.followups(id, account).await
    }

    async fn record_contact_part(
        &self,
        target: TargetId,
        account: &AccountId,
        log: NewExecutionLog,
    ) -> StoreResult<()> {
        // Not a finished target: its invite or message is still to come.
        self.inner.record_contact_part(target, account, log).await
    }

    async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()> {
        self.inner.record_outcome(record).await?;
        self.processed(record);
        Ok(())
    }

    async fn record_invite_part(&self, record: &OutcomeRecord) -> StoreResult<()> {
        // Not a finished target: its message is still to come.
        self.inner.record_invite_part(record).await
    }

    async fn release_target(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()> {
        self.inner.release_target(target, account, log).await
    }

    async fn mark_uncertain(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()> {
        self.inner.mark_uncertain(target, account, log).await
    }

    async fn heartbeat(&self, holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.inner.heartbeat(holder, now).await
    }

    async fn retire_holder(&self, holder: &str) -> StoreResult<()> {
        self.inner.retire_holder(holder).await
    }

    async fn recover_stale(&self, silent_since: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.recover_stale(silent_since).await
    }

    async fn uncertain_targets(&self, id: TaskId) -> StoreResult<Vec<Target>> {
        self.inner.uncertain_targets(id).await
    }

    async fn settle_uncertain(&self, target: TargetId, settlement: Settlement) -> StoreResult<()> {
        let finished = match &settlement {
            Settlement::Final(record) => Some(record.clone()),
            Settlement::Retry | Settlement::InviteConfirmed(_) => None,
        };
        self.inner.settle_uncertain(target, settlement).await?;
        if let Some(record) = &finished {
            self.processed(record);
        }
        Ok(())
    }

    async fn abandon_pinned(
        &self,
        id: TaskId,
        gone: &[AccountId],
        pinned_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let ended = self
            .inner
            .abandon_pinned(id, gone, pinned_before, now)
            .await?;
        if ended > 0 {
            // The store reports how many ended, not with which outcome: they are not in
            // `invite_targets_processed`, but waiters learn of the change.
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(ended)
    }

    async fn append_log(&self, log: NewExecutionLog) -> StoreResult<()> {
        self.inner.append_log(log).await
    }

    fn ledger_database(&self) -> Option<invite_core::ports::DatabaseId> {
        self.inner.ledger_database()
    }

    async fn record_attempt(&self, end: &invite_core::ports::AttemptEnd) -> StoreResult<()> {
        self.inner.record_attempt(end).await?;
        // A confirmed invite is not a finished target: its message is still to come.
        if !end.invite_part {
            self.processed(&end.record);
        }
        Ok(())
    }

    async fn cleanup(
        &self,
        logs_before: DateTime<Utc>,
        tasks_finished_before: DateTime<Utc>,
    ) -> StoreResult<CleanupReport> {
        self.inner.cleanup(logs_before, tasks_finished_before).await
    }
}

/// An [`AccountManager`] that counts flood waits and blocked accounts.
#[derive(Debug)]
pub struct MeteredAccounts {
    inner: Arc<dyn AccountManager>,
}

impl MeteredAccounts {
    /// Wraps a manager.
    pub fn new(inner: Arc<dyn AccountManager>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl AccountManager for MeteredAccounts {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        self.inner.allocate_account(request).await
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        self.inner.check_rate_limit(check).await
    }

    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError> {
        self.inner.release_account(account, usage).await
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        let platform = report.platform.as_str();
        match report.class {
            ErrorClass::AccountTemporary => {
                metrics::counter!("invite_floodwait_events", "platform" => platform).increment(1);
            }
            ErrorClass::AccountRestricted | ErrorClass::AccountDead => {
                metrics::counter!("invite_accounts_blocked", "platform" => platform).increment(1);
            }
            _ => {}
        }
        self.inner.handle_error(account, report).await
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        self.inner.account_state(account).await
    }

    async fn account_states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        self.inner.account_states(accounts).await
    }

    fn ledger_database(&self) -> Option<invite_core::ports::DatabaseId> {
        self.inner.ledger_database()
    }

    async fn check_and_claim(
        &self,
        check: &RateLimitCheck,
        claim: &invite_core::ports::Claim,
    ) -> Result<(RateDecision, Option<invite_core::domain::Target>), AccountManagerError> {
        self.inner.check_and_claim(check, claim).await
    }
}
