use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::clock::VirtualClock;
use crate::limits::LocalAccountManager;
use crate::memory::{InProcessQueue, MemoryLedger, MemoryStore, StaticDirectory};

fn t0() -> DateTime<Utc> {
    "2026-01-05T09:00:00Z".parse().unwrap()
}

struct Fixture {
    campaigns: Campaigns,
    queue: Arc<InProcessQueue>,
    clock: Arc<VirtualClock>,
}

fn fixture(limits: ServiceLimits) -> Fixture {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let store = Arc::new(MemoryStore::new());
    let ledger = Arc::new(MemoryLedger::new());
    let queue = Arc::new(InProcessQueue::new());
    let manager = LocalAccountManager::new(ledger.clone(), clock.clone(), 1);
    let directory = StaticDirectory::new().with_sandbox_accounts(UserId::new(1), 3);
    let campaigns = Campaigns::new(
        CampaignParts {
            store,
            queue: queue.clone(),
            accounts: Arc::new(manager),
            directory: Arc::new(directory),
            ledger: Some(ledger),
            clock: clock.clone(),
        },
        limits,
    );
    Fixture {
        campaigns,
        queue,
        clock,
    }
}

fn draft(n: usize) -> TaskDraft {
    TaskDraft {
        name: "Launch".into(),
        platform: "sandbox".into(),
        action: ActionType::Invite,
        group: Some("@launch_group".into()),
        template: None,
        priority: Some("normal".into()),
        scheduled_at: None,
        targets: (0..n)
            .map(|i| TargetDraft::new(format!("@person_{i:04}")))
            .collect(),
        accounts: None,
        add_to_contacts: false,
        dedupe_days: None,
    }
}

const U1: UserId = UserId::new(1);
const U2: UserId = UserId::new(2);

#[tokio::test]
async fn every_field_error_comes_at_once() {
    let f = fixture(ServiceLimits::default());
    let mut d = draft(2);
    d.name = " ".into();
    d.platform = "icq".into();
    d.priority = Some("urgent".into());
    d.group = None;
    d.template = Some("Hi {nope}".into());
    let Err(ServiceError::Validation(errors)) = f.campaigns.create(U1, d, None).await else {
        panic!("expected a validation error");
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["name", "platform", "priority", "template", "group"]
    );

    let mut d = draft(3);
    d.targets[1] = TargetDraft::new("@no");
    d.action = ActionType::Message;
    d.group = None;
    d.template = Some("x".repeat(5000));
    let Err(ServiceError::Validation(errors)) = f.campaigns.create(U1, d, None).await else {
        panic!("expected a validation error");
    };
    assert!(
        errors[0].message.contains("max_template_length"),
        "{errors:?}"
    );
    assert_eq!(errors[1].field, "targets[1]");
    assert!(errors[1].message.starts_with("invalid username"));
}

#[tokio::test]
async fn target_limit_and_idempotency() {
    let f = fixture(ServiceLimits {
        max_targets_per_task: 5,
        ..ServiceLimits::default()
    });
    let err = f.campaigns.create(U1, draft(6), None).await.unwrap_err();
    assert!(matches!(
        err,
        ServiceError::LimitExceeded {
            limit: Limit::MaxTargetsPerTask,
            max: 5,
            actual: 6
        }
    ));
    let a = f.campaigns.create(U1, draft(2), Some("k1")).await.unwrap();
    // Same body after normalisation (`@Person` and `person` are one username).
    let mut same = draft(2);
    same.targets[0] = TargetDraft::new("t.me/Person_0000");
    let b = f.campaigns.create(U1, same, Some("k1")).await.unwrap();
    assert_eq!(a.task.id, b.task.id);
    assert!(b.replayed);
    let err = f
        .campaigns
        .create(U1, draft(3), Some("k1"))
        .await
        .unwrap_err();
    assert_eq!(err, ServiceError::IdempotencyMismatch);
    // Keys belong to their user.
    let c = f.campaigns.create(U2, draft(2), Some("k1")).await.unwrap();
    assert_ne!(c.task.id, a.task.id);
}

#[tokio::test]
async fn lifecycle_rules_and_running_limit() {
    let f = fixture(ServiceLimits {
        max_running_tasks: 1,
        ..ServiceLimits::default()
    });
    let a = f.campaigns.create(U1, draft(2), None).await.unwrap().task;
    let b = f.campaigns.create(U1, draft(2), None).await.unwrap().task;
    assert_eq!(
        f.campaigns.pause(U1, a.id).await.unwrap_err(),
        ServiceError::Conflict {
            action: "pause",
            current: TaskStatus::Pending
        }
    );
    let started = f.campaigns.start(U1, a.id).await.unwrap();
    assert_eq!(started.status, TaskStatus::InProgress);
    assert_eq!(f.queue.len(), 1);
    let err = f.campaigns.start(U1, b.id).await.unwrap_err();
    assert!(matches!(
        err,
        ServiceError::LimitExceeded {
            limit: Limit::MaxRunningTasks,
            ..
        }
    ));
    assert!(matches!(
        f.campaigns.update(U1, a.id, TaskPatch::default()).await,
        Err(ServiceError::Conflict { .. })
    ));
    assert!(matches!(
        f.campaigns.delete(U1, a.id).await,
        Err(ServiceError::Conflict { .. })
    ));
    f.campaigns.pause(U1, a.id).await.unwrap();
    let patch = TaskPatch {
        name: Some("Renamed".into()),
        template: Some("Hello {first_name|friend}".into()),
        action: Some(ActionType::InviteAndMessage),
        targets: Some(vec![TargetDraft::new("@extra_person")]),
        ..TaskPatch::default()
    };
    let updated = f.campaigns.update(U1, a.id, patch).await.unwrap();
    assert_eq!(updated.task.name, "Renamed");
    assert_eq!(updated.added.unwrap().inserted, 1);
    assert!(matches!(
        updated.task.settings.action,
        Action::InviteAndMessage { .. }
    ));
    f.campaigns.start(U1, b.id).await.unwrap();
    assert!(matches!(
        f.campaigns.resume(U1, a.id).await,
        Err(ServiceError::LimitExceeded { .. })
    ));
    // Another user sees nothing.
    assert_eq!(
        f.campaigns.get(U2, a.id).await.unwrap_err(),
        ServiceError::NotFound
    );
    assert_eq!(
        f.campaigns.cancel(U2, a.id).await.unwrap_err(),
        ServiceError::NotFound
    );
    f.campaigns.cancel(U1, a.id).await.unwrap();
    f.campaigns.delete(U1, a.id).await.unwrap();
}

#[tokio::test]
async fn scheduled_start_stays_pending_and_status_has_an_eta() {
    let f = fixture(ServiceLimits::default());
    let mut d = draft(40);
    d.scheduled_at = Some(t0() + TimeDelta::hours(2));
    let task = f.campaigns.create(U1, d, None).await.unwrap().task;
    let started = f.campaigns.start(U1, task.id).await.unwrap();
    assert_eq!(started.status, TaskStatus::Pending);
    assert!(started.start_requested);
    let status = f.campaigns.status(U1, task.id).await.unwrap();
    assert_eq!(status.total, 40);
    assert_eq!(status.percent, 0.0);
    assert_eq!(status.active_accounts, 3);
    let eta = status.eta.unwrap();
    assert_eq!(eta.remaining, 40);
    // 3 accounts, each one invite per 96 min into one group (15 a day, spread): the 14th
    // round of 3 ends 13 × 96 min after the scheduled start.
    let finish = eta.finish_at.unwrap();
    assert_eq!(
        finish,
        t0() + TimeDelta::hours(2) + TimeDelta::minutes(13 * 96)
    );
    let _ = &f.clock;
}
