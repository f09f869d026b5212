//! Use cases over the ports: what a user can do with campaigns, with the same rules for every
//! front end (the REST API of `invite-http`, or a Rust service embedding the core).
//!
//! [`Campaigns`] validates drafts into domain values (all field errors at once), creates tasks
//! idempotently, updates and deletes them when their status allows it, drives the state
//! machine through [`TaskStore::transition`] (so every change is a compare-and-swap), enforces
//! the per-task and per-user limits, nudges the workers through the [`JobQueue`] and reports
//! status with an ETA computed by [`forecast`](crate::forecast::forecast) from the accounts'
//! remaining capacity under the limits. It reads no environment and no system clock.

mod draft;
mod import;
mod status;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::warn;

pub use draft::{
    ActionType, DEDUPE_DAYS, EARLIEST_SCHEDULE_TS, MAX_SCHEDULE_AHEAD_DAYS, TargetDraft, TaskDraft,
    TaskPatch, schedule_range,
};
pub use import::{ImportRequest, ImportSummary, ReadOptions, SuppressSummary};
pub use status::{
    AccountOverview, EVERY_ACCOUNT_DISABLED, Eta, KindUsage, STATUS_MEMO_TTL, TaskReport,
    TaskStatusReport,
};

use crate::clock::Clock;
use crate::domain::{
    Action, ExecutionLog, Platform, Priority, Task, TaskEvent, TaskId, TaskSettings, TaskStatus,
    TaskUpdate, UserId,
};
use crate::engine::Engine;
use crate::import::{ImportError, ImportLimits};
use crate::limits::LimitPolicy;
use crate::ports::{
    AccountDirectory, AccountManager, AddedTargets, AudienceError, AudienceSource, CreatedTask,
    Job, JobQueue, LimitLedger, LogFilter, StoreError, SuppressionList, TaskEvents, TaskFilter,
    TaskStats, TaskStore,
};

use draft::{Checker, fingerprint};

/// Limits of the use cases (SPEC §9), all configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLimits {
    /// Targets per task.
    pub max_targets_per_task: usize,
    /// Tasks `IN_PROGRESS` at once per user.
    pub max_running_tasks: usize,
    /// Characters of a task name.
    pub max_name_length: usize,
    /// Characters of a message template.
    pub max_template_length: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            max_targets_per_task: 1000,
            max_running_tasks: 10,
            max_name_length: 255,
            max_template_length: 4096,
        }
    }
}

/// A limit that a request breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// [`ServiceLimits::max_targets_per_task`].
    MaxTargetsPerTask,
    /// [`ServiceLimits::max_running_tasks`].
    MaxRunningTasks,
}

impl Limit {
    /// The limit's name, as in configuration and error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::MaxTargetsPerTask => "max_targets_per_task",
            Limit::MaxRunningTasks => "max_running_tasks",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field of a request (`targets[3]`, `template`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Errors of the use cases.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The request is invalid; every problem is listed.
    #[error("invalid request: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// No such task for this user (another user's task is not found either).
    #[error("task not found")]
    NotFound,
    /// The task's status does not allow the action.
    #[error("cannot {action} a task that is {current}")]
    Conflict {
        /// What was asked (`start`, `update`, `delete`, …).
        action: &'static str,
        /// The task's status.
        current: TaskStatus,
    },
    /// A configured limit would be exceeded; nothing was written.
    #[error("limit {limit} exceeded: {actual} requested, at most {max} allowed")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: u64,
        /// What the request would reach.
        actual: u64,
    },
    /// The idempotency key was used before with another request body.
    #[error("idempotency key reused with a different request body")]
    IdempotencyMismatch,
    /// An uploaded file that cannot be imported at all (unreadable, too large, no identifier
    /// column…); the message is for the uploader.
    #[error("{0}")]
    File(ImportError),
    /// The audience source (the Parsing Service) gave no audience.
    #[error("{0}")]
    Source(AudienceError),
    /// Starting the task needs an account the owner does not have (none on the platform, none
    /// usable, or none of those the task names).
    #[error("no usable {platform} account: add one (POST /api/v1/invite/accounts) or enable one")]
    NoUsableAccount {
        /// The task's platform.
        platform: Platform,
    },
    /// A dependency this deployment has not configured.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// A dependency is unavailable; trying again later may work.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything else (logged where it is handled).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// Whether trying again later may help.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, ServiceError::Unavailable(_))
    }

    fn from_store(e: StoreError, action: &'static str) -> Self {
        match e {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict { current } => ServiceError::Conflict { action, current },
            StoreError::IdempotencyMismatch => ServiceError::IdempotencyMismatch,
            // Mapped with the configured maximum where the capped transition is made.
            StoreError::RunningLimit { running } => ServiceError::LimitExceeded {
                limit: Limit::MaxRunningTasks,
                max: running,
                actual: running + 1,
            },
            StoreError::Invalid(m) => ServiceError::Validation(vec![FieldError {
                field: "body".to_owned(),
                message: m,
            }]),
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::Backend(m) => ServiceError::Internal(m),
        }
    }
}

/// Shorthand for service results.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Something that runs tasks and can be told that work arrived (the in-process engine).
pub trait Waker: Send + Sync + fmt::Debug {
    /// Asks for a pass now.
    fn wake(&self);
}

impl Waker for Engine {
    fn wake(&self) {
        Engine::wake(self);
    }
}

/// The ports the use cases need.
#[derive(Debug, Clone)]
pub struct CampaignParts {
    /// Tasks, targets, logs.
    pub store: Arc<dyn TaskStore>,
    /// Where start and resume nudges go.
    pub queue: Arc<dyn JobQueue>,
    /// Account health.
    pub accounts: Arc<dyn AccountManager>,
    /// Users' accounts.
    pub directory: Arc<dyn AccountDirectory>,
    /// The local account manager's ledger, when there is one (better ETAs, usage per account).
    pub ledger: Option<Arc<dyn LimitLedger>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The users' do-not-contact lists.
    pub suppression: Arc<dyn SuppressionList>,
    /// Parsing Service results, when the deployment has a source.
    pub audience: Option<Arc<dyn AudienceSource>>,
}

/// A task after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedTask {
    /// The task.
    pub task: Task,
    /// Targets appended, when the update had some.
    pub added: Option<AddedTargets>,
}

/// The campaign use cases.
#[derive(Debug)]
pub struct Campaigns {
    parts: CampaignParts,
    limits: ServiceLimits,
    import_limits: ImportLimits,
    /// Permits to read a file (at most `import_limits.max_concurrent_reads` at once).
    readers: Arc<tokio::sync::Semaphore>,
    policies: HashMap<Platform, LimitPolicy>,
    waker: Option<Arc<dyn Waker>>,
    events: Arc<dyn TaskEvents>,
    /// The account figures and ETA of recent status reads, per task.
    status_memo: status::StatusMemo,
}

impl Campaigns {
    /// Use cases over `parts` with `limits`; Telegram's default limit policy for the ETA of
    /// every platform until [`with_policy`](Self::with_policy) says otherwise.
    pub fn new(parts: CampaignParts, limits: ServiceLimits) -> Self {
        Self {
            parts,
            limits,
            import_limits: ImportLimits::default(),
            readers: Arc::new(tokio::sync::Semaphore::new(
                ImportLimits::default().max_concurrent_reads,
            )),
            policies: HashMap::new(),
            waker: None,
            events: Arc::new(crate::memory::NoEvents),
            status_memo: status::StatusMemo::default(),
        }
    }

    /// The limit policy of a platform (the same the account manager enforces).
    pub fn with_policy(mut self, platform: Platform, policy: LimitPolicy) -> Self {
        self.policies.insert(platform, policy);
        self
    }

    /// The size limits of one import (default: [`ImportLimits::default`], 10 MiB).
    pub fn with_import_limits(mut self, limits: ImportLimits) -> Self {
        self.import_limits = limits;
        self.readers = Arc::new(tokio::sync::Semaphore::new(
            limits.max_concurrent_reads.max(1),
        ));
        self
    }

    /// An in-process engine to wake after a start or resume.
    pub fn with_waker(mut self, waker: Arc<dyn Waker>) -> Self {
        self.waker = Some(waker);
        self
    }

    /// Tells `events` of every start, pause, resume and cancel made through these use cases.
    /// Without it, nothing is published.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn TaskEvents>) -> Self {
        self.events = events;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &ServiceLimits {
        &self.limits
    }

    /// The ports.
    pub fn parts(&self) -> &CampaignParts {
        &self.parts
    }

    fn policy(&self, platform: Platform) -> LimitPolicy {
        self.policies
            .get(&platform)
            .copied()
            .unwrap_or_else(LimitPolicy::telegram)
    }

    fn check_target_count(&self, count: usize) -> Result<()> {
        if count > self.limits.max_targets_per_task {
            return Err(ServiceError::LimitExceeded {
                limit: Limit::MaxTargetsPerTask,
                max: self.limits.max_targets_per_task as u64,
                actual: count as u64,
            });
        }
        Ok(())
    }

    /// Creates a task. With an idempotency key, the same key and the same (normalised) request
    /// return the first task; the same key with another request is
    /// [`ServiceError::IdempotencyMismatch`].
    pub async fn create(
        &self,
        user: UserId,
        draft: TaskDraft,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedTask> {
        self.check_target_count(draft.targets.len())?;
        let mut c = Checker::default();
        if let Some(key) = idempotency_key {
            let ok = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                c.push(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                );
            }
        }
        let name = c.name(&draft.name, &self.limits);
        let platform = c.platform(&draft.platform);
        let priority = c.priority(draft.priority.as_deref());
        let action = c.action(
            draft.action,
            draft.group.as_deref(),
            draft.template.as_deref(),
            &self.limits,
        );
        let accounts = c.accounts(draft.accounts.as_deref());
        let dedupe_days = c.dedupe_days(draft.dedupe_days);
        let now = self.parts.clock.now();
        c.scheduled_at(draft.scheduled_at, now);
        let targets = platform.map(|p| c.targets(&draft.targets, p));
        c.finish().map_err(ServiceError::Validation)?;
        let (Some(platform), Some(action), Some(targets)) = (platform, action, targets) else {
            return Err(ServiceError::Internal("validation lost a field".to_owned()));
        };
        let task = crate::domain::NewTask {
            user_id: user,
            name,
            platform,
            priority,
            settings: TaskSettings {
                action,
                accounts,
                add_to_contacts: draft.add_to_contacts,
                dedupe_days,
            },
            scheduled_at: draft.scheduled_at,
        };
        let hash = serde_json::to_vec(&(&task, &targets))
            .map(|body| fingerprint(&body))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.parts
            .store
            .create_task(
                task,
                targets,
                idempotency_key.map(|k| (k, hash.as_str())),
                now,
            )
            .await
            .map_err(|e| ServiceError::from_store(e, "create"))
    }

    /// One task of the user.
    pub async fn get(&self, user: UserId, id: TaskId) -> Result<Task> {
        self.parts
            .store
            .get_task(user, id)
            .await
            .map_err(|e| ServiceError::from_store(e, "read"))
    }

    /// The user's tasks, newest first.
    pub async fn list(&self, user: UserId, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.parts
            .store
            .list_tasks(user, filter)
            .await
            .map_err(|e| ServiceError::from_store(e, "list"))
    }

    /// Changes a task while it is `PENDING` or `PAUSED`, appending targets if the patch has
    /// some. Everything is validated before anything is written.
    pub async fn update(&self, user: UserId, id: TaskId, patch: TaskPatch) -> Result<UpdatedTask> {
        let task = self.get(user, id).await?;
        if !matches!(task.status, TaskStatus::Pending | TaskStatus::Paused) {
            return Err(ServiceError::Conflict {
                action: "update",
                current: task.status,
            });
        }
        if let Some(targets) = &patch.targets {
            let total = self
                .parts
                .store
                .progress(user, id)
                .await
                .map_err(|e| ServiceError::from_store(e, "update"))?
                .total();
            self.check_target_count(total as usize + targets.len())?;
        }
        let mut c = Checker::default();
        let name = patch.name.as_deref().map(|n| c.name(n, &self.limits));
        let priority: Option<Priority> = patch.priority.as_deref().map(|p| c.priority(Some(p)));
        let action = self.patched_action(&mut c, &task.settings.action, &patch);
        let accounts = patch.accounts.as_ref().map(|a| c.accounts(a.as_deref()));
        let dedupe_days = patch.dedupe_days.map(|d| c.dedupe_days(d));
        let now = self.parts.clock.now();
        c.scheduled_at(patch.scheduled_at.flatten(), now);
        let targets = patch.targets.as_ref().map(|t| c.targets(t, task.platform));
        c.finish().map_err(ServiceError::Validation)?;
        let settings_changed = action.is_some()
            || accounts.is_some()
            || dedupe_days.is_some()
            || patch.add_to_contacts.is_some();
        let settings = settings_changed.then(|| TaskSettings {
            action: action.unwrap_or_else(|| task.settings.action.clone()),
            accounts: accounts.unwrap_or_else(|| task.settings.accounts.clone()),
            add_to_contacts: patch
                .add_to_contacts
                .unwrap_or(task.settings.add_to_contacts),
            dedupe_days: dedupe_days.unwrap_or(task.settings.dedupe_days),
        });
        let update = TaskUpdate {
            name,
            priority,
            settings,
            scheduled_at: patch.scheduled_at,
        };
        let task = self
            .parts
            .store
            .update_task(user, id, update, now)
            .await
            .map_err(|e| ServiceError::from_store(e, "update"))?;
        let added = match targets {
            Some(t) => Some(
                self.parts
                    .store
                    .add_targets(user, id, t)
                    .await
                    .map_err(|e| ServiceError::from_store(e, "update"))?,
            ),
            None => None,
        };
        Ok(UpdatedTask { task, added })
    }

    fn patched_action(
        &self,
        c: &mut Checker,
        current: &Action,
        patch: &TaskPatch,
    ) -> Option<Action> {
        if patch.action.is_none() && patch.group.is_none() && patch.template.is_none() {
            return None;
        }
        let kind = patch.action.unwrap_or(match current {
            Action::Invite { .. } => ActionType::Invite,
            Action::Message { .. } => ActionType::Message,
            Action::InviteAndMessage { .. } => ActionType::InviteAndMessage,
        });
        // Parse what the patch gives; keep the current group and template otherwise.
        let group = match patch.group.as_deref() {
            Some(g) => match crate::domain::GroupRef::parse(g) {
                Ok(g) => Some(g),
                Err(e) => {
                    c.push("group", e.to_string());
                    return None;
                }
            },
            None => current.group().cloned(),
        };
        let template = match patch.template.as_deref() {
            Some(t) => {
                let len = t.chars().count();
                if len > self.limits.max_template_length {
                    c.push(
                        "template",
                        format!(
                            "is {len} characters long; the limit max_template_length is {}",
                            self.limits.max_template_length
                        ),
                    );
                    return None;
                }
                match crate::domain::Template::parse(t) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        c.push("template", e.to_string());
                        return None;
                    }
                }
            }
            None => current.template().cloned(),
        };
        if group.is_none() && kind != ActionType::Message {
            c.push("group", "is required for this action");
        }
        if template.is_none() && kind != ActionType::Invite {
            c.push("template", "is required for this action");
        }
        match kind {
            ActionType::Invite => group.map(|group| Action::Invite { group }),
            ActionType::Message => template.map(|template| Action::Message { template }),
            ActionType::InviteAndMessage => Some(Action::InviteAndMessage {
                group: group?,
                template: template?,
            }),
        }
    }

    /// Deletes a task that is not `IN_PROGRESS`, with its targets and logs.
    pub async fn delete(&self, user: UserId, id: TaskId) -> Result<()> {
        self.parts
            .store
            .delete_task(user, id)
            .await
            .map_err(|e| ServiceError::from_store(e, "delete"))
    }

    /// Starts a task: `IN_PROGRESS` now, or stays `PENDING` until a future `scheduled_at`.
    pub async fn start(&self, user: UserId, id: TaskId) -> Result<Task> {
        let task = self.get(user, id).await?;
        if task.status == TaskStatus::Pending {
            self.ensure_usable_account(&task).await?;
        }
        let now = self.parts.clock.now();
        let scheduled_later = task.scheduled_at.is_some_and(|at| at > now);
        self.run_event(user, task, TaskEvent::Start { scheduled_later })
            .await
    }

    /// Refuses a task none of whose accounts is usable (the engine would fail it at once).
    async fn ensure_usable_account(&self, task: &Task) -> Result<()> {
        let accounts = self
            .parts
            .directory
            .accounts(task.user_id, task.platform)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let usable = accounts.iter().any(|a| {
            a.active
                && task
                    .settings
                    .accounts
                    .as_ref()
                    .is_none_or(|wanted| wanted.contains(&a.id))
        });
        if usable {
            Ok(())
        } else {
            Err(ServiceError::NoUsableAccount {
                platform: task.platform,
            })
        }
    }

    /// Pauses a running task (the step in flight finishes).
    pub async fn pause(&self, user: UserId, id: TaskId) -> Result<Task> {
        let task = self.get(user, id).await?;
        self.run_event(user, task, TaskEvent::Pause).await
    }

    /// Resumes a paused task.
    pub async fn resume(&self, user: UserId, id: TaskId) -> Result<Task> {
        let task = self.get(user, id).await?;
        self.run_event(user, task, TaskEvent::Resume).await
    }

    /// Cancels a task that is not finished.
    pub async fn cancel(&self, user: UserId, id: TaskId) -> Result<Task> {
        let task = self.get(user, id).await?;
        self.run_event(user, task, TaskEvent::Cancel).await
    }

    async fn run_event(&self, user: UserId, task: Task, event: TaskEvent) -> Result<Task> {
        let next = task
            .status
            .apply(event)
            .map_err(|e| ServiceError::Conflict {
                action: event.as_str(),
                current: e.from,
            })?;
        let runs_now = next == TaskStatus::InProgress;
        let now = self.parts.clock.now();
        let max = self.limits.max_running_tasks as u64;
        let written = if runs_now {
            // The store counts and writes at once, so that starts racing in any number of
            // processes cannot together pass the user's limit.
            self.parts
                .store
                .transition_capped(user, task.id, event, max, now)
                .await
        } else {
            self.parts
                .store
                .transition(user, task.id, event, None, now)
                .await
        };
        let task = written.map_err(|e| match e {
            StoreError::RunningLimit { running } => ServiceError::LimitExceeded {
                limit: Limit::MaxRunningTasks,
                max,
                actual: running + 1,
            },
            e => ServiceError::from_store(e, event.as_str()),
        })?;
        crate::engine::announce(self.events.as_ref(), event, &task).await;
        if runs_now || task.start_requested {
            self.nudge(&task).await;
        }
        Ok(task)
    }

    /// Tells the workers to look at the task. The store already holds the state, so a lost
    /// nudge only delays the work until the engine's next pass.
    async fn nudge(&self, task: &Task) {
        let job = Job::ExecuteTask { task_id: task.id };
        if let Err(e) = self.parts.queue.publish(&job, task.priority).await {
            warn!(task.id = %task.id, error = %e, "job not published; the engine's next pass picks the task up");
        }
        if let Some(w) = &self.waker {
            w.wake();
        }
    }

    /// Statistics of the task's execution log.
    pub async fn stats(&self, user: UserId, id: TaskId) -> Result<TaskStats> {
        self.parts
            .store
            .stats(user, id)
            .await
            .map_err(|e| ServiceError::from_store(e, "read"))
    }

    /// The task's execution log, oldest first.
    pub async fn logs(
        &self,
        user: UserId,
        id: TaskId,
        filter: &LogFilter,
    ) -> Result<Vec<ExecutionLog>> {
        self.parts
            .store
            .logs(user, id, filter)
            .await
            .map_err(|e| ServiceError::from_store(e, "read"))
    }
}

#[cfg(test)]
mod tests;
