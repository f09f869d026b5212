//! Retention (SPEC §7): execution logs older than the retention age, and tasks that finished
//! (completed, failed, cancelled) longer ago than that, are removed by a periodic job through
//! [`TaskStore::cleanup`].
//!
//! [`Retention::run`] is the schedule: one cleanup at start, then one every
//! [`RetentionPolicy::interval`] on the injected [`Clock`], until cancelled. Both deployments run
//! it: the embedded `invite-http` in its process, every `invite-worker` in the platform
//! deployment (the deletes are idempotent, so two workers cleaning at once only repeat an empty
//! delete), and a `cleanup` job from the queue runs [`Retention::once`] at once.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::ports::{CleanupReport, StoreResult, TaskStore};

/// Default age after which logs and finished tasks are removed (`INVITE_LOG_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// What is kept, and how often the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Execution logs older than this are removed.
    pub logs: TimeDelta,
    /// Tasks that finished longer ago than this are removed (with their targets and logs).
    pub finished_tasks: TimeDelta,
    /// Time between two runs.
    pub interval: TimeDelta,
}

impl RetentionPolicy {
    /// Logs and finished tasks kept `days` days; the job runs every hour.
    pub fn days(days: u32) -> Self {
        let age = TimeDelta::days(i64::from(days));
        Self {
            logs: age,
            finished_tasks: age,
            interval: TimeDelta::hours(1),
        }
    }

    /// The cut-offs at `now`: logs before the first, tasks finished before the second go.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let before = |age: TimeDelta| {
            now.checked_sub_signed(age)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        };
        (before(self.logs), before(self.finished_tasks))
    }
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self::days(DEFAULT_RETENTION_DAYS)
    }
}

/// The cleanup job over one store.
#[derive(Debug, Clone)]
pub struct Retention {
    store: Arc<dyn TaskStore>,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
}

impl Retention {
    /// The job over `store` under `policy`, timed by `clock`.
    pub fn new(store: Arc<dyn TaskStore>, clock: Arc<dyn Clock>, policy: RetentionPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RetentionPolicy {
        &self.policy
    }

    /// Removes what is past retention now.
    pub async fn once(&self) -> StoreResult<CleanupReport> {
        let (logs_before, tasks_before) = self.policy.cutoffs(self.clock.now());
        let report = self.store.cleanup(logs_before, tasks_before).await?;
        if report.logs > 0 || report.tasks > 0 {
            info!(
                logs = report.logs,
                tasks = report.tasks,
                "retention: removed {} execution logs and {} finished tasks",
                report.logs,
                report.tasks
            );
        }
        Ok(report)
    }

    /// Cleans at once, then every interval, until `cancel` fires. A failed run is logged and
    /// tried again at the next interval.
    pub async fn run(&self, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.once().await {
                warn!(error = %e, "retention cleanup failed; tried again at the next interval");
            }
            let next = self.clock.now() + self.policy.interval.max(TimeDelta::seconds(1));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.clock.sleep_until(next) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use crate::domain::UserId;
    use crate::limits::LocalAccountManager;
    use crate::memory::{InProcessQueue, MemoryLedger, MemoryStore, StaticDirectory};
    use crate::service::{
        ActionType, CampaignParts, Campaigns, ServiceLimits, TargetDraft, TaskDraft,
    };

    fn t0() -> DateTime<Utc> {
        "2026-01-05T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn cutoffs_are_the_retention_age_back() {
        let p = RetentionPolicy::days(30);
        let (logs, tasks) = p.cutoffs(t0());
        assert_eq!(logs, t0() - TimeDelta::days(30));
        assert_eq!(tasks, t0() - TimeDelta::days(30));
        assert_eq!(RetentionPolicy::default(), p);
        let (min, _) = p.cutoffs(DateTime::<Utc>::MIN_UTC);
        assert_eq!(min, DateTime::<Utc>::UNIX_EPOCH);
    }

    #[tokio::test]
    async fn the_schedule_removes_a_finished_task_once_it_is_past_retention() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let store = Arc::new(MemoryStore::new());
        let ledger = Arc::new(MemoryLedger::new());
        let user = UserId::new(1);
        let campaigns = Campaigns::new(
            CampaignParts {
                store: store.clone(),
                queue: Arc::new(InProcessQueue::new()),
                accounts: Arc::new(LocalAccountManager::new(ledger.clone(), clock.clone(), 1)),
                directory: Arc::new(StaticDirectory::new().with_sandbox_accounts(user, 1)),
                ledger: Some(ledger),
                clock: clock.clone(),
                suppression: store.clone(),
                audience: None,
            },
            ServiceLimits::default(),
        );
        let draft = |name: &str| TaskDraft {
            name: name.into(),
            platform: "sandbox".into(),
            action: ActionType::Invite,
            group: Some("@launch_group".into()),
            template: None,
            priority: None,
            scheduled_at: None,
            targets: vec![TargetDraft::new("@person_0001")],
            accounts: None,
            add_to_contacts: false,
            dedupe_days: None,
        };
        let done = campaigns.create(user, draft("old"), None).await.unwrap();
        let done = done.task.id;
        campaigns.cancel(user, done).await.unwrap();
        let kept = campaigns
            .create(user, draft("pending"), None)
            .await
            .unwrap();
        let kept = kept.task.id;

        let retention = Retention::new(store.clone(), clock.clone(), RetentionPolicy::days(30));
        let cancel = CancellationToken::new();
        let job = tokio::spawn({
            let (retention, cancel) = (retention.clone(), cancel.clone());
            async move { retention.run(cancel).await }
        });
        let settle = || async {
            // Let the job run what is due and go back to sleep on the clock.
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
        };
        settle().await;
        assert!(
            campaigns.get(user, done).await.is_ok(),
            "not yet past 30 days"
        );
        // 29 days and 23 hours: the hourly runs keep it.
        for _ in 0..(29 * 24 + 23) {
            clock.advance(TimeDelta::hours(1));
            settle().await;
        }
        assert!(
            campaigns.get(user, done).await.is_ok(),
            "still within 30 days"
        );
        for _ in 0..2 {
            clock.advance(TimeDelta::hours(1));
            settle().await;
        }
        let gone = campaigns.get(user, done).await;
        assert!(
            matches!(gone, Err(crate::service::ServiceError::NotFound)),
            "removed past 30 days: {gone:?}"
        );
        assert!(campaigns.get(user, kept).await.is_ok(), "a live task stays");
        cancel.cancel();
        job.await.unwrap();
    }
}
