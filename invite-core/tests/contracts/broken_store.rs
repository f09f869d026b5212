//! A store that forgets who holds a claim: it claims every target for nobody in particular,
//! so a worker's heartbeat no longer vouches for its claims.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use invite_core::async_trait;
use invite_core::domain::{
    AccountId, ExecutionLog, Lane, NewExecutionLog, NewTarget, NewTask, Platform, Target, TargetId,
    Task, TaskEvent, TaskId, TaskUpdate, UserId,
};
use invite_core::memory::MemoryStore;
use invite_core::ports::{
    AddedTargets, Claim, CleanupReport, CreatedTask, Followups, LogFilter, OutcomeRecord, Progress,
    Settlement, StoreResult, TaskFilter, TaskStats, TaskStore,
};

#[derive(Debug, Default)]
pub struct ForgetfulStore {
    inner: MemoryStore,
}

#[async_trait]
impl TaskStore for ForgetfulStore {
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
        self.inner.transition(user, id, event, reason, now).await
    }

    async fn transition_capped(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        max_running: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.inner
            .transition_capped(user, id, event, max_running, now)
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

    async fn claim_target(&self, claim: &Claim) -> StoreResult<Option<Target>> {
        let anonymous = Claim {
            holder: String::new(),
            ..claim.clone()
        };
        self.inner.claim_target(&anonymous).await
    }

    async fn followups(&self, id: TaskId, account: &AccountId) -> StoreResult<Followups> {
        self.inner.followups(id, account).await
    }

    async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()> {
        self.inner.record_outcome(record).await
    }

    async fn record_invite_part(&self, record: &OutcomeRecord) -> StoreResult<()> {
        self.inner.record_invite_part(record).await
    }

    async fn record_contact_part(
        &self,
        target: TargetId,
        account: &AccountId,
        log: NewExecutionLog,
    ) -> StoreResult<()> {
        self.inner.record_contact_part(target, account, log).await
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
        self.inner.settle_uncertain(target, settlement).await
    }

    async fn abandon_pinned(
        &self,
        id: TaskId,
        gone: &[AccountId],
        pinned_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.inner
            .abandon_pinned(id, gone, pinned_before, now)
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
