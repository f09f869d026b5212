//! In-memory [`TaskStore`], [`SuppressionList`] and [`AccountLeases`]: the engine's store when
//! there is no database, and the reference the SQL stores are tested against.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::domain::{
    AccountId, ExecutionLog, ExecutionStatus, Lane, LaneStats, LaneStatus, NewExecutionLog,
    NewTarget, NewTask, Outcome, Platform, Target, TargetId, TargetIdentifier, TargetStatus, Task,
    TaskEvent, TaskId, TaskStatus, TaskUpdate, UserId,
};
use crate::ports::{
    AccountLeases, AddedTargets, Claim, ClaimStage, CleanupReport, CreatedTask, Followups,
    LogFilter, OutcomeRecord, Progress, Settlement, StoreError, StoreResult, SuppressionEntry,
    SuppressionList, TaskFilter, TaskStats, TaskStore, abandonment, message_random_id,
};

#[derive(Debug, Default)]
struct TaskRows {
    targets: BTreeMap<TargetId, Target>,
    keys: HashSet<String>,
    pending: BTreeSet<TargetId>,
    /// Targets per (status, outcome), moved with every change of a target: the progress.
    counts: Counts,
}

/// Targets per (status, outcome) of one task.
#[derive(Debug, Default)]
struct Counts(BTreeMap<(TargetStatus, Option<Outcome>), u64>);

impl Counts {
    fn key(t: &Target) -> (TargetStatus, Option<Outcome>) {
        (t.status, t.outcome)
    }

    fn add(&mut self, key: (TargetStatus, Option<Outcome>)) {
        *self.0.entry(key).or_default() += 1;
    }

    /// One target went from `from` to `to`.
    fn moved(
        &mut self,
        from: (TargetStatus, Option<Outcome>),
        to: (TargetStatus, Option<Outcome>),
    ) {
        if from == to {
            return;
        }
        if let Some(n) = self.0.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(&from);
            }
        }
        self.add(to);
    }

    fn progress(&self) -> Progress {
        let mut progress = Progress::default();
        for (&(status, outcome), &n) in &self.0 {
            *progress.by_status.entry(status).or_default() += n;
            if let Some(o) = outcome {
                *progress.by_outcome.entry(o).or_default() += n;
            }
        }
        progress
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_task: i64,
    next_target: i64,
    next_log: i64,
    tasks: BTreeMap<TaskId, Task>,
    rows: HashMap<TaskId, TaskRows>,
    target_task: HashMap<TargetId, TaskId>,
    logs: Vec<ExecutionLog>,
    lanes: BTreeMap<(TaskId, AccountId), Lane>,
    idempotency: HashMap<(UserId, String), (String, TaskId)>,
    next_suppression: u64,
    suppressed: BTreeMap<(UserId, Platform, String), (u64, SuppressionEntry)>,
    leases: HashMap<AccountId, (String, DateTime<Utc>)>,
    /// Holder of each claimed target.
    holders: HashMap<TargetId, String>,
    /// Last heartbeat of each worker.
    heartbeats: HashMap<String, DateTime<Utc>>,
    /// Every `random_id` given out (they are unique).
    random_ids: HashSet<i64>,
}

impl Inner {
    /// A state-machine event as a compare-and-swap; with a cap, a task that would run is
    /// refused while the owner already runs `max_running` tasks.
    fn transition(
        &mut self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        reason: Option<String>,
        now: DateTime<Utc>,
        max_running: Option<u64>,
    ) -> StoreResult<Task> {
        let current = self.owned_task(user, id)?.status;
        let next = current
            .apply(event)
            .map_err(|_| StoreError::Conflict { current })?;
        if let Some(max) = max_running
            && next == TaskStatus::InProgress
        {
            let running = self
                .tasks
                .values()
                .filter(|t| t.user_id == user && t.status == TaskStatus::InProgress)
                .count() as u64;
            if running >= max {
                return Err(StoreError::RunningLimit { running });
            }
        }
        let task = self.tasks.get_mut(&id).ok_or(StoreError::NotFound)?;
        task.status = next;
        task.updated_at = now;
        match event {
            TaskEvent::Start {
                scheduled_later: true,
            } => task.start_requested = true,
            TaskEvent::Start {
                scheduled_later: false,
            } => {
                task.start_requested = false;
                task.started_at.get_or_insert(now);
                task.status_reason = None;
            }
            TaskEvent::Resume => task.status_reason = None,
            TaskEvent::Pause | TaskEvent::Fail | TaskEvent::Cancel | TaskEvent::Complete => {
                task.status_reason = reason;
            }
        }
        if next.is_terminal() {
            task.finished_at = Some(now);
        }
        Ok(task.clone())
    }

    fn owned_task(&self, user: UserId, id: TaskId) -> StoreResult<&Task> {
        self.tasks
            .get(&id)
            .filter(|t| t.user_id == user)
            .ok_or(StoreError::NotFound)
    }

    fn insert_targets(&mut self, id: TaskId, targets: Vec<NewTarget>) -> AddedTargets {
        let mut added = AddedTargets::default();
        for person in targets {
            let rows = self.rows.entry(id).or_default();
            if !rows.keys.insert(person.identifier.dedupe_key()) {
                added.duplicates += 1;
                continue;
            }
            self.next_target += 1;
            let tid = TargetId::new(self.next_target);
            rows.pending.insert(tid);
            rows.counts.add((TargetStatus::Pending, None));
            rows.targets.insert(
                tid,
                Target {
                    id: tid,
                    task_id: id,
                    person,
                    status: TargetStatus::Pending,
                    outcome: None,
                    account_id: None,
                    random_id: None,
                    sender: None,
                    invite_outcome: None,
                    contact_added: false,
                    attempts: 0,
                    error_message: None,
                    result: serde_json::json!({}),
                    claimed_at: None,
                    processed_at: None,
                },
            );
            self.target_task.insert(tid, id);
            added.inserted += 1;
        }
        added
    }

    fn target_mut(&mut self, id: TargetId) -> StoreResult<&mut Target> {
        let task = self.target_task.get(&id).ok_or(StoreError::NotFound)?;
        self.rows
            .get_mut(task)
            .and_then(|r| r.targets.get_mut(&id))
            .ok_or(StoreError::NotFound)
    }

    /// Applies `f` to the target, moving the task's counts with its status and outcome.
    fn change<R>(
        &mut self,
        id: TargetId,
        f: impl FnOnce(&mut Target) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let task = self.target_task.get(&id).ok_or(StoreError::NotFound)?;
        let rows = self.rows.get_mut(task).ok_or(StoreError::NotFound)?;
        let target = rows.targets.get_mut(&id).ok_or(StoreError::NotFound)?;
        let before = Counts::key(target);
        let result = f(target);
        rows.counts.moved(before, Counts::key(target));
        result
    }

    fn push_log(&mut self, entry: NewExecutionLog) {
        self.next_log += 1;
        self.logs.push(ExecutionLog {
            id: self.next_log,
            entry,
        });
    }

    /// The target of `record` if `record.account_id` holds it: `in_progress` under that
    /// account, or `uncertain`, unsettled, and last claimed by it (a late result wins).
    fn held(&mut self, record: &OutcomeRecord) -> StoreResult<&mut Target> {
        let target = self.target_mut(record.target_id)?;
        let held = target.account_id.as_ref() == Some(&record.account_id)
            && (target.status == TargetStatus::InProgress
                || (target.status == TargetStatus::Uncertain && target.outcome.is_none()));
        if !held {
            return Err(StoreError::NotFound);
        }
        Ok(target)
    }

    /// Writes `record`'s outcome onto `target` with its log row.
    fn finish(&mut self, record: &OutcomeRecord, from_uncertain_only: bool) -> StoreResult<()> {
        let target = self.target_mut(record.target_id)?;
        if from_uncertain_only
            && (target.status != TargetStatus::Uncertain || target.outcome.is_some())
        {
            return Err(StoreError::NotFound);
        }
        if !from_uncertain_only {
            self.held(record)?;
        }
        let tid = self.change(record.target_id, |target| {
            target.status = record.outcome.target_status();
            target.outcome = Some(record.outcome);
            target.account_id = Some(record.account_id.clone());
            target.error_message.clone_from(&record.error_message);
            target.result = record.result.clone();
            target.processed_at = Some(record.at);
            Ok(target.id)
        })?;
        self.holders.remove(&tid);
        self.push_log(record.log.clone());
        Ok(())
    }

    /// Back to `pending` for the message of an `invite_and_message` target.
    fn await_message(&mut self, record: &OutcomeRecord) -> StoreResult<()> {
        let (task, tid) = self.change(record.target_id, |target| {
            target.status = TargetStatus::Pending;
            target.invite_outcome = Some(record.outcome);
            target.sender = Some(record.account_id.clone());
            target.account_id = None;
            Ok((target.task_id, target.id))
        })?;
        self.back_to_pending(task, tid);
        self.push_log(record.log.clone());
        Ok(())
    }

    fn back_to_pending(&mut self, task: TaskId, target: TargetId) {
        self.holders.remove(&target);
        if let Some(rows) = self.rows.get_mut(&task) {
            rows.pending.insert(target);
        }
    }

    /// `in_progress → uncertain`, pinning a target with a `random_id` to its account.
    fn to_uncertain(target: &mut Target) {
        target.status = TargetStatus::Uncertain;
        target.outcome = None;
        if target.random_id.is_some() && target.sender.is_none() {
            target.sender.clone_from(&target.account_id);
        }
    }
}

/// Tasks, targets, lanes, logs, suppressions and leases kept in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn page<T: Clone>(items: impl Iterator<Item = T>, limit: u32, offset: u32) -> Vec<T> {
    let limit = if limit == 0 {
        usize::MAX
    } else {
        limit as usize
    };
    items.skip(offset as usize).take(limit).collect()
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create_task<'a, 'b>(
        &self,
        new: NewTask,
        targets: Vec<NewTarget>,
        idempotency: Option<(&'a str, &'b str)>,
        now: DateTime<Utc>,
    ) -> StoreResult<CreatedTask> {
        let mut inner = self.lock();
        if let Some((key, hash)) = idempotency
            && let Some((seen_hash, id)) = inner.idempotency.get(&(new.user_id, key.to_owned()))
        {
            if seen_hash != hash {
                return Err(StoreError::IdempotencyMismatch);
            }
            let task = inner.owned_task(new.user_id, *id)?.clone();
            return Ok(CreatedTask {
                task,
                inserted: 0,
                duplicates: 0,
                replayed: true,
            });
        }
        inner.next_task += 1;
        let id = TaskId::new(inner.next_task);
        let task = Task {
            id,
            user_id: new.user_id,
            name: new.name,
            platform: new.platform,
            status: TaskStatus::Pending,
            status_reason: None,
            priority: new.priority,
            settings: new.settings,
            scheduled_at: new.scheduled_at,
            start_requested: false,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            group_key: None,
        };
        inner.tasks.insert(id, task.clone());
        inner.rows.insert(id, TaskRows::default());
        let added = inner.insert_targets(id, targets);
        if let Some((key, hash)) = idempotency {
            inner
                .idempotency
                .insert((task.user_id, key.to_owned()), (hash.to_owned(), id));
        }
        Ok(CreatedTask {
            task,
            inserted: added.inserted,
            duplicates: added.duplicates,
            replayed: false,
        })
    }

    async fn get_task(&self, user: UserId, id: TaskId) -> StoreResult<Task> {
        self.lock().owned_task(user, id).cloned()
    }

    async fn list_tasks(&self, user: UserId, filter: &TaskFilter) -> StoreResult<Vec<Task>> {
        let inner = self.lock();
        let matching = inner.tasks.values().rev().filter(|t| {
            t.user_id == user
                && filter.status.is_none_or(|s| s == t.status)
                && filter.platform.is_none_or(|p| p == t.platform)
        });
        Ok(page(matching.cloned(), filter.limit, filter.offset))
    }

    async fn update_task(
        &self,
        user: UserId,
        id: TaskId,
        update: TaskUpdate,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let mut inner = self.lock();
        let current = inner.owned_task(user, id)?.status;
        if !matches!(current, TaskStatus::Pending | TaskStatus::Paused) {
            return Err(StoreError::Conflict { current });
        }
        let task = inner.tasks.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(name) = update.name {
            task.name = name;
        }
        if let Some(p) = update.priority {
            task.priority = p;
        }
        if let Some(s) = update.settings {
            if s.action.channel_key() != task.settings.action.channel_key() {
                task.group_key = None;
            }
            task.settings = s;
        }
        if let Some(at) = update.scheduled_at {
            task.scheduled_at = at;
        }
        task.updated_at = now;
        Ok(task.clone())
    }

    async fn delete_task(&self, user: UserId, id: TaskId) -> StoreResult<()> {
        let mut inner = self.lock();
        let current = inner.owned_task(user, id)?.status;
        if current == TaskStatus::InProgress {
            return Err(StoreError::Conflict { current });
        }
        inner.tasks.remove(&id);
        if let Some(rows) = inner.rows.remove(&id) {
            for tid in rows.targets.keys() {
                inner.target_task.remove(tid);
            }
        }
        inner.logs.retain(|l| l.entry.task_id != id);
        inner.lanes.retain(|(t, _), _| *t != id);
        Ok(())
    }

    async fn transition(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.lock().transition(user, id, event, reason, now, None)
    }

    async fn transition_capped(
        &self,
        user: UserId,
        id: TaskId,
        event: TaskEvent,
        max_running: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.lock()
            .transition(user, id, event, None, now, Some(max_running))
    }

    async fn add_targets(
        &self,
        user: UserId,
        id: TaskId,
        targets: Vec<NewTarget>,
    ) -> StoreResult<AddedTargets> {
        let mut inner = self.lock();
        let current = inner.owned_task(user, id)?.status;
        if !matches!(current, TaskStatus::Pending | TaskStatus::Paused) {
            return Err(StoreError::Conflict { current });
        }
        Ok(inner.insert_targets(id, targets))
    }

    async fn progress(&self, user: UserId, id: TaskId) -> StoreResult<Progress> {
        let inner = self.lock();
        inner.owned_task(user, id)?;
        Ok(inner
            .rows
            .get(&id)
            .map(|r| r.counts.progress())
            .unwrap_or_default())
    }

    async fn task_progress(&self, user: UserId, id: TaskId) -> StoreResult<(Task, Progress)> {
        let inner = self.lock();
        let task = inner.owned_task(user, id)?.clone();
        let progress = inner
            .rows
            .get(&id)
            .map(|r| r.counts.progress())
            .unwrap_or_default();
        Ok((task, progress))
    }

    async fn targets(
        &self,
        user: UserId,
        id: TaskId,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<Target>> {
        let inner = self.lock();
        inner.owned_task(user, id)?;
        let all = inner
            .rows
            .get(&id)
            .into_iter()
            .flat_map(|r| r.targets.values());
        Ok(page(all.cloned(), limit, offset))
    }

    async fn logs(
        &self,
        user: UserId,
        id: TaskId,
        filter: &LogFilter,
    ) -> StoreResult<Vec<ExecutionLog>> {
        let inner = self.lock();
        inner.owned_task(user, id)?;
        let rows = inner.logs.iter().filter(|l| {
            let e = &l.entry;
            e.task_id == id
                && filter.status.is_none_or(|s| s == e.status)
                && filter
                    .account_id
                    .as_ref()
                    .is_none_or(|a| *a == e.account_id)
                && filter.since.is_none_or(|s| e.created_at >= s)
                && filter.until.is_none_or(|u| e.created_at < u)
        });
        Ok(page(rows.cloned(), filter.limit, filter.offset))
    }

    async fn stats(&self, user: UserId, id: TaskId) -> StoreResult<TaskStats> {
        let inner = self.lock();
        inner.owned_task(user, id)?;
        let mut stats = TaskStats::default();
        for l in inner.logs.iter().filter(|l| l.entry.task_id == id) {
            let e = &l.entry;
            let acc = stats.per_account.entry(e.account_id.clone()).or_default();
            acc.attempts += 1;
            match e.status {
                ExecutionStatus::Success => acc.successes += 1,
                ExecutionStatus::Failed => acc.failures += 1,
                _ => {}
            }
            if let Some(kind) = &e.error_kind {
                *stats.per_error.entry(kind.clone()).or_default() += 1;
            }
            let hour = e
                .created_at
                .duration_trunc(TimeDelta::hours(1))
                .unwrap_or(e.created_at);
            *stats.per_hour.entry(hour).or_default() += 1;
        }
        Ok(stats)
    }

    async fn lanes(&self, user: UserId, id: TaskId) -> StoreResult<Vec<Lane>> {
        let inner = self.lock();
        inner.owned_task(user, id)?;
        Ok(inner
            .lanes
            .values()
            .filter(|l| l.task_id == id)
            .cloned()
            .collect())
    }

    async fn reached_since(
        &self,
        user: UserId,
        platform: Platform,
        identifier_keys: &[String],
        channel: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<BTreeSet<String>> {
        let wanted: HashSet<&str> = identifier_keys.iter().map(String::as_str).collect();
        let inner = self.lock();
        Ok(inner
            .tasks
            .values()
            .filter(|t| {
                t.user_id == user
                    && t.platform == platform
                    && (t.settings.action.channel_key() == channel
                        || t.group_key.as_deref() == Some(channel))
            })
            .filter_map(|t| inner.rows.get(&t.id))
            .flat_map(|r| r.targets.values())
            .filter(|t| {
                t.status == TargetStatus::Success && t.processed_at.is_some_and(|at| at >= since)
            })
            .map(|t| t.person.identifier.dedupe_key())
            .filter(|key| wanted.contains(key.as_str()))
            .collect())
    }

    async fn set_group_key(&self, id: TaskId, key: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        let task = inner.tasks.get_mut(&id).ok_or(StoreError::NotFound)?;
        task.group_key = Some(key.to_owned());
        Ok(())
    }

    async fn engine_tasks(&self, _now: DateTime<Utc>) -> StoreResult<Vec<Task>> {
        let inner = self.lock();
        Ok(inner
            .tasks
            .values()
            .filter(|t| {
                t.status == TaskStatus::InProgress
                    || (t.status == TaskStatus::Pending && t.start_requested)
            })
            .cloned()
            .collect())
    }

    async fn ensure_lanes(&self, id: TaskId, accounts: &[AccountId]) -> StoreResult<()> {
        let mut inner = self.lock();
        if !inner.tasks.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        for a in accounts {
            inner.lanes.entry((id, a.clone())).or_insert_with(|| Lane {
                task_id: id,
                account_id: a.clone(),
                status: LaneStatus::Active,
                reason: None,
                cooldown_until: None,
                last_used_at: None,
                stats: LaneStats::default(),
            });
        }
        Ok(())
    }

    async fn lanes_of(&self, ids: &[TaskId]) -> StoreResult<Vec<Lane>> {
        let inner = self.lock();
        Ok(inner
            .lanes
            .values()
            .filter(|l| ids.contains(&l.task_id))
            .cloned()
            .collect())
    }

    async fn save_lane(&self, lane: &Lane) -> StoreResult<()> {
        let mut inner = self.lock();
        let slot = inner
            .lanes
            .get_mut(&(lane.task_id, lane.account_id.clone()))
            .ok_or(StoreError::NotFound)?;
        *slot = lane.clone();
        Ok(())
    }

    async fn pending_counts(&self, ids: &[TaskId]) -> StoreResult<BTreeMap<TaskId, u64>> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .map(|id| {
                let n = inner.rows.get(id).map_or(0, |r| r.pending.len() as u64);
                (*id, n)
            })
            .collect())
    }

    async fn claim_target(&self, claim: &Claim) -> StoreResult<Option<Target>> {
        let mut inner = self.lock();
        let running = inner
            .tasks
            .get(&claim.task)
            .is_some_and(|t| t.status == TaskStatus::InProgress);
        if !running {
            return Ok(None);
        }
        let Some(rows) = inner.rows.get(&claim.task) else {
            return Ok(None);
        };
        let eligible = |t: &Target| {
            t.sender.as_ref().is_none_or(|s| *s == claim.account)
                && match claim.stage {
                    ClaimStage::First => t.invite_outcome.is_none() && !t.contact_added,
                    ClaimStage::AfterContact => {
                        t.contact_added
                            && t.invite_outcome.is_none()
                            && t.sender.as_ref() == Some(&claim.account)
                    }
                    ClaimStage::Followup => {
                        t.invite_outcome.is_some() && t.sender.as_ref() == Some(&claim.account)
                    }
                }
        };
        let Some(tid) = rows
            .pending
            .iter()
            .copied()
            .find(|id| rows.targets.get(id).is_some_and(eligible))
        else {
            return Ok(None);
        };
        let random_id = claim.random_high.map(|h| message_random_id(h, tid));
        if let Some(r) = random_id {
            let stored = rows.targets.get(&tid).and_then(|t| t.random_id);
            if stored.is_none() && inner.random_ids.contains(&r) {
                return Err(StoreError::Invalid(format!("random_id {r} is taken")));
            }
        }
        let inner = &mut *inner;
        let rows = inner
            .rows
            .get_mut(&claim.task)
            .ok_or(StoreError::NotFound)?;
        rows.pending.remove(&tid);
        let t = rows.targets.get_mut(&tid).ok_or(StoreError::NotFound)?;
        rows.counts
            .moved(Counts::key(t), (TargetStatus::InProgress, t.outcome));
        t.status = TargetStatus::InProgress;
        t.account_id = Some(claim.account.clone());
        t.claimed_at = Some(claim.now);
        t.attempts += 1;
        if t.random_id.is_none()
            && let Some(r) = random_id
        {
            t.random_id = Some(r);
            inner.random_ids.insert(r);
        }
        let claimed = t.clone();
        inner.holders.insert(tid, claim.holder.clone());
        Ok(Some(claimed))
    }

    async fn followups(&self, id: TaskId, account: &AccountId) -> StoreResult<Followups> {
        let inner = self.lock();
        let mut found = Followups::default();
        let Some(rows) = inner.rows.get(&id) else {
            return Ok(found);
        };
        for t in rows.pending.iter().filter_map(|tid| rows.targets.get(tid)) {
            if t.sender.as_ref() != Some(account) {
                continue;
            }
            if t.invite_outcome.is_some() {
                found.after_invite = true;
            } else if t.contact_added {
                found.after_contact = true;
            }
        }
        Ok(found)
    }

    async fn record_contact_part(
        &self,
        target: TargetId,
        account: &AccountId,
        log: NewExecutionLog,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let task = inner.change(target, |t| {
            if t.status != TargetStatus::InProgress || t.account_id.as_ref() != Some(account) {
                return Err(StoreError::NotFound);
            }
            t.status = TargetStatus::Pending;
            t.contact_added = true;
            t.sender = Some(account.clone());
            t.account_id = None;
            Ok(t.task_id)
        })?;
        inner.back_to_pending(task, target);
        inner.push_log(log);
        Ok(())
    }

    async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()> {
        self.lock().finish(record, false)
    }

    async fn record_invite_part(&self, record: &OutcomeRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.held(record)?;
        inner.await_message(record)
    }

    async fn release_target(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let task = inner.change(target, |t| {
            if t.status != TargetStatus::InProgress || t.account_id.as_ref() != Some(account) {
                return Err(StoreError::NotFound);
            }
            t.status = TargetStatus::Pending;
            t.account_id = None;
            Ok(t.task_id)
        })?;
        inner.back_to_pending(task, target);
        if let Some(log) = log {
            inner.push_log(log);
        }
        Ok(())
    }

    async fn mark_uncertain(
        &self,
        target: TargetId,
        account: &AccountId,
        log: Option<NewExecutionLog>,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.change(target, |t| {
            if t.status != TargetStatus::InProgress || t.account_id.as_ref() != Some(account) {
                return Err(StoreError::NotFound);
            }
            Inner::to_uncertain(t);
            Ok(())
        })?;
        inner.holders.remove(&target);
        if let Some(log) = log {
            inner.push_log(log);
        }
        Ok(())
    }

    async fn heartbeat(&self, holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut inner = self.lock();
        let seen = inner.heartbeats.entry(holder.to_owned()).or_insert(now);
        *seen = (*seen).max(now);
        Ok(())
    }

    async fn retire_holder(&self, holder: &str) -> StoreResult<()> {
        self.lock().heartbeats.remove(holder);
        Ok(())
    }

    async fn recover_stale(&self, silent_since: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut n = 0;
        for rows in inner.rows.values_mut() {
            for t in rows.targets.values_mut() {
                if t.status != TargetStatus::InProgress {
                    continue;
                }
                let alive = inner
                    .holders
                    .get(&t.id)
                    .and_then(|h| inner.heartbeats.get(h))
                    .is_some_and(|seen| *seen >= silent_since);
                if !alive {
                    let before = Counts::key(t);
                    Inner::to_uncertain(t);
                    rows.counts.moved(before, Counts::key(t));
                    inner.holders.remove(&t.id);
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    async fn uncertain_targets(&self, id: TaskId) -> StoreResult<Vec<Target>> {
        let inner = self.lock();
        Ok(inner
            .rows
            .get(&id)
            .into_iter()
            .flat_map(|r| r.targets.values())
            .filter(|t| t.status == TargetStatus::Uncertain && t.outcome.is_none())
            .cloned()
            .collect())
    }

    async fn settle_uncertain(&self, target: TargetId, settlement: Settlement) -> StoreResult<()> {
        let mut inner = self.lock();
        let t = inner.target_mut(target)?;
        if t.status != TargetStatus::Uncertain || t.outcome.is_some() {
            return Err(StoreError::NotFound);
        }
        match settlement {
            Settlement::Retry => {
                let task = inner.change(target, |t| {
                    t.status = TargetStatus::Pending;
                    t.account_id = None;
                    Ok(t.task_id)
                })?;
                inner.back_to_pending(task, target);
                Ok(())
            }
            Settlement::InviteConfirmed(record) | Settlement::Final(record)
                if record.target_id != target =>
            {
                Err(StoreError::Invalid(format!(
                    "settlement of target {target} carries target {}",
                    record.target_id
                )))
            }
            Settlement::InviteConfirmed(record) => inner.await_message(&record),
            Settlement::Final(record) => inner.finish(&record, true),
        }
    }

    async fn abandon_pinned(
        &self,
        id: TaskId,
        gone: &[AccountId],
        pinned_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(rows) = inner.rows.get_mut(&id) else {
            return Ok(0);
        };
        let mut logs = Vec::new();
        let pending: Vec<TargetId> = rows.pending.iter().copied().collect();
        for tid in pending {
            let Some(t) = rows.targets.get_mut(&tid) else {
                continue;
            };
            let Some(sender) = t.sender.clone() else {
                continue;
            };
            let expired = t.claimed_at.is_none_or(|at| at < pinned_before);
            if !gone.contains(&sender) && !expired {
                continue;
            }
            let Some(record) = abandonment(t, &sender, now) else {
                // Only in the sender's contacts: another account starts afresh.
                t.sender = None;
                t.contact_added = false;
                continue;
            };
            rows.pending.remove(&tid);
            let before = Counts::key(t);
            t.status = record.outcome.target_status();
            t.outcome = Some(record.outcome);
            rows.counts.moved(before, Counts::key(t));
            t.error_message.clone_from(&record.error_message);
            t.result = record.result.clone();
            t.processed_at = Some(now);
            t.account_id = Some(sender);
            logs.push(record.log);
        }
        let n = logs.len() as u64;
        for log in logs {
            inner.push_log(log);
        }
        Ok(n)
    }

    async fn append_log(&self, log: NewExecutionLog) -> StoreResult<()> {
        self.lock().push_log(log);
        Ok(())
    }

    async fn cleanup(
        &self,
        logs_before: DateTime<Utc>,
        tasks_finished_before: DateTime<Utc>,
    ) -> StoreResult<CleanupReport> {
        let mut inner = self.lock();
        let before = inner.logs.len();
        inner.logs.retain(|l| l.entry.created_at >= logs_before);
        let logs = (before - inner.logs.len()) as u64;
        let old: Vec<TaskId> = inner
            .tasks
            .values()
            .filter(|t| {
                t.status.is_terminal() && t.finished_at.is_some_and(|f| f < tasks_finished_before)
            })
            .map(|t| t.id)
            .collect();
        for id in &old {
            inner.tasks.remove(id);
            if let Some(rows) = inner.rows.remove(id) {
                for tid in rows.targets.keys() {
                    inner.target_task.remove(tid);
                }
            }
            inner.lanes.retain(|(t, _), _| t != id);
        }
        inner.logs.retain(|l| !old.contains(&l.entry.task_id));
        Ok(CleanupReport {
            logs,
            tasks: old.len() as u64,
        })
    }
}

#[async_trait]
impl SuppressionList for MemoryStore {
    async fn suppress(
        &self,
        user: UserId,
        platform: Platform,
        people: &[TargetIdentifier],
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let mut added = 0;
        for p in people {
            let key = (user, platform, p.dedupe_key());
            if !inner.suppressed.contains_key(&key) {
                inner.next_suppression += 1;
                let seq = inner.next_suppression;
                let entry = SuppressionEntry {
                    identifier: p.clone(),
                    reason: reason.to_owned(),
                    created_at: now,
                };
                inner.suppressed.insert(key, (seq, entry));
                added += 1;
            }
        }
        Ok(added)
    }

    async fn unsuppress(
        &self,
        user: UserId,
        platform: Platform,
        person: &TargetIdentifier,
    ) -> StoreResult<bool> {
        Ok(self
            .lock()
            .suppressed
            .remove(&(user, platform, person.dedupe_key()))
            .is_some())
    }

    async fn is_suppressed(
        &self,
        user: UserId,
        platform: Platform,
        person: &TargetIdentifier,
    ) -> StoreResult<bool> {
        Ok(self
            .lock()
            .suppressed
            .contains_key(&(user, platform, person.dedupe_key())))
    }

    async fn suppressed(
        &self,
        user: UserId,
        platform: Platform,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<SuppressionEntry>> {
        let inner = self.lock();
        let mut entries: Vec<_> = inner
            .suppressed
            .iter()
            .filter(|((u, p, _), _)| *u == user && *p == platform)
            .map(|(_, (seq, e))| (e.created_at, *seq, e.clone()))
            .collect();
        entries.sort_by_key(|(at, seq, _)| (*at, *seq));
        Ok(page(entries.into_iter().map(|(_, _, e)| e), limit, offset))
    }
}

#[async_trait]
impl AccountLeases for MemoryStore {
    async fn acquire(
        &self,
        account: &AccountId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let free = inner
            .leases
            .get(account)
            .is_none_or(|(h, exp)| h == holder || *exp < now);
        if free {
            inner
                .leases
                .insert(account.clone(), (holder.to_owned(), until));
        }
        Ok(free)
    }

    async fn release(&self, account: &AccountId, holder: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.leases.get(account).is_some_and(|(h, _)| h == holder) {
            inner.leases.remove(account);
        }
        Ok(())
    }
}
