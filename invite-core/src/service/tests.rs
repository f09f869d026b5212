use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::clock::VirtualClock;
use crate::limits::LocalAccountManager;
use crate::memory::{InProcessQueue, MemoryLedger, MemoryStore, StaticDirectory};
use crate::ports::TaskEventKind;

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
    let suppression = store.clone();
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
            suppression,
            audience: None,
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
async fn transitions_made_here_are_announced() {
    let events = Arc::new(crate::memory::RecordedEvents::new());
    let mut f = fixture(ServiceLimits::default());
    f.campaigns = f.campaigns.with_events(events.clone());
    let a = f.campaigns.create(U1, draft(2), None).await.unwrap().task;
    // A refused transition and a start for later announce nothing.
    assert!(f.campaigns.pause(U1, a.id).await.is_err());
    let mut later = draft(1);
    later.scheduled_at = Some(t0() + TimeDelta::hours(1));
    let later = f.campaigns.create(U1, later, None).await.unwrap().task;
    f.campaigns.start(U1, later.id).await.unwrap();
    assert!(events.events().is_empty());

    f.campaigns.start(U1, a.id).await.unwrap();
    f.campaigns.pause(U1, a.id).await.unwrap();
    f.campaigns.resume(U1, a.id).await.unwrap();
    f.campaigns.cancel(U1, a.id).await.unwrap();
    let seen: Vec<(TaskEventKind, TaskId, UserId, TaskStatus)> = events
        .events()
        .iter()
        .map(|e| (e.event, e.task_id, e.user_id, e.status))
        .collect();
    assert_eq!(
        seen,
        [
            (TaskEventKind::Started, a.id, U1, TaskStatus::InProgress),
            (TaskEventKind::Paused, a.id, U1, TaskStatus::Paused),
            (TaskEventKind::Resumed, a.id, U1, TaskStatus::InProgress),
            (TaskEventKind::Cancelled, a.id, U1, TaskStatus::Cancelled),
        ]
    );
    assert!(events.events().iter().all(|e| e.at == t0()));
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

#[tokio::test]
async fn absurd_windows_and_schedules_are_refused_at_create_and_update() {
    let f = fixture(ServiceLimits::default());
    let far: DateTime<Utc> = "+262142-12-31T23:59:59Z".parse().unwrap();
    for (days, at) in [
        (Some(u32::MAX), None),
        (Some(3651), None),
        (None, Some(far)),
        (None, Some(t0() + TimeDelta::days(400))),
        (None, "1970-01-01T00:00:00Z".parse().ok()),
    ] {
        let mut d = draft(1);
        d.dedupe_days = days;
        d.scheduled_at = at;
        let Err(ServiceError::Validation(errors)) = f.campaigns.create(U1, d, None).await else {
            panic!("{days:?} {at:?} should be refused");
        };
        let field = if days.is_some() {
            "dedupe_days"
        } else {
            "scheduled_at"
        };
        assert_eq!(errors[0].field, field);
    }
    let mut d = draft(1);
    d.dedupe_days = Some(3650);
    d.scheduled_at = Some(t0() + TimeDelta::days(MAX_SCHEDULE_AHEAD_DAYS));
    let id = f.campaigns.create(U1, d, None).await.unwrap().task.id;
    for patch in [
        TaskPatch {
            dedupe_days: Some(Some(u32::MAX)),
            ..TaskPatch::default()
        },
        TaskPatch {
            scheduled_at: Some(Some(far)),
            ..TaskPatch::default()
        },
    ] {
        assert!(matches!(
            f.campaigns.update(U1, id, patch).await,
            Err(ServiceError::Validation(_))
        ));
    }
    // Clearing the schedule is always allowed.
    let patch = TaskPatch {
        scheduled_at: Some(None),
        ..TaskPatch::default()
    };
    assert!(f.campaigns.update(U1, id, patch).await.is_ok());
}

#[tokio::test]
async fn a_task_stored_at_the_end_of_time_still_has_a_status() {
    // Written past the use cases (an older release, another embedder): the status is
    // computed with checked arithmetic, and what cannot be placed is uncovered.
    let f = fixture(ServiceLimits::default());
    let far: DateTime<Utc> = "+262142-12-31T23:59:59Z".parse().unwrap();
    let d = draft(5);
    let task = crate::domain::NewTask {
        user_id: U1,
        name: d.name,
        platform: Platform::Sandbox,
        priority: Priority::default(),
        settings: TaskSettings {
            action: Action::Invite {
                group: crate::domain::GroupRef::parse("@launch_group").unwrap(),
            },
            accounts: None,
            add_to_contacts: false,
            dedupe_days: Some(u32::MAX),
        },
        scheduled_at: Some(far),
    };
    let targets = (0..5)
        .map(|i| crate::domain::NewTarget {
            identifier: crate::domain::TargetIdentifier::parse(
                &format!("@person_{i:04}"),
                Platform::Sandbox,
                &crate::domain::NormalizeOptions::default(),
            )
            .unwrap(),
            first_name: None,
            last_name: None,
            full_name: None,
            email: None,
            source: crate::domain::TargetSource::Manual,
        })
        .collect();
    let created = f
        .campaigns
        .parts()
        .store
        .create_task(task, targets, None, t0())
        .await
        .unwrap();
    let status = f.campaigns.status(U1, created.task.id).await.unwrap();
    let eta = status.eta.unwrap();
    // Three accounts take one each at the last representable second; nothing fits after it.
    assert_eq!(eta.remaining, 5);
    assert_eq!(eta.finish_at, None);
    assert_eq!(eta.uncovered, 2);
    // Its stored window does not overflow an import's look-back either.
    let s = f
        .campaigns
        .validate_file(
            U1,
            Some(created.task.id),
            Platform::Sandbox,
            b"@someone_new\n",
            &ImportRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(s.dedupe_days, Some(u32::MAX));
}

mod import {
    use serde_json::json;

    use super::*;
    use crate::domain::{TargetIdentifier, TaskStatus};
    use crate::ports::StaticAudience;
    use crate::service::{ImportRequest, ReadOptions};

    const FILE: &[u8] = b"username\n@person_0000\n@new_one\n@NEW_ONE\n@blocked_one\n1bad\n";

    async fn task(f: &Fixture, n: usize) -> TaskId {
        f.campaigns
            .create(U1, draft(n), None)
            .await
            .unwrap()
            .task
            .id
    }

    #[tokio::test]
    async fn a_file_is_counted_and_appended() {
        let f = fixture(ServiceLimits::default());
        let id = task(&f, 1).await;
        let added = f
            .campaigns
            .suppress(U1, Platform::Sandbox, &["@blocked_one".into()], "")
            .await
            .unwrap();
        assert_eq!(added, 1);
        let req = ImportRequest::default();
        let dry = f
            .campaigns
            .validate_file(U1, Some(id), Platform::Telegram, FILE, &req)
            .await
            .unwrap();
        assert_eq!(dry.inserted, 0);
        let s = f.campaigns.import_file(U1, id, FILE, &req).await.unwrap();
        let r = &s.report;
        assert!(r.is_consistent());
        assert_eq!((r.rows, r.valid, r.invalid), (5, 1, 1));
        assert_eq!((r.duplicate_existing, r.duplicate_in_file), (1, 1));
        assert_eq!((r.suppressed, s.inserted), (1, 1));
        let counts = |r: &crate::import::ImportReport| {
            (r.rows, r.valid, r.invalid, r.duplicate, r.suppressed)
        };
        assert_eq!(counts(r), counts(&dry.report));
        let progress = f.campaigns.parts().store.progress(U1, id).await.unwrap();
        assert_eq!(progress.total(), 2);
        // The same file again: everything is already there.
        let again = f.campaigns.import_file(U1, id, FILE, &req).await.unwrap();
        assert_eq!((again.inserted, again.report.duplicate_existing), (0, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_gets_no_turn_within_the_budget_times_out() {
        let f = fixture(ServiceLimits::default());
        let limits = f.campaigns.import_limits;
        // Every reader busy: the request waits, the (paused) clock runs out the budget.
        let busy = Arc::clone(&f.campaigns.readers)
            .acquire_many_owned(limits.max_concurrent_reads as u32)
            .await
            .unwrap();
        let req = ImportRequest::default();
        let err = f
            .campaigns
            .validate_file(U1, None, Platform::Telegram, FILE, &req)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ServiceError::File(crate::import::ImportError::TimedOut {
                seconds: limits.max_read_time.as_secs()
            })
        );
        drop(busy);
        let ok = f
            .campaigns
            .validate_file(U1, None, Platform::Telegram, FILE, &req)
            .await
            .unwrap();
        assert_eq!(ok.report.valid, 3);
    }

    #[tokio::test]
    async fn an_absurd_dedupe_window_is_refused_not_computed() {
        let f = fixture(ServiceLimits::default());
        let id = task(&f, 1).await;
        let req = ImportRequest {
            dedupe_days: Some(u32::MAX),
            ..ImportRequest::default()
        };
        for task in [Some(id), None] {
            let err = f
                .campaigns
                .validate_file(U1, task, Platform::Sandbox, FILE, &req)
                .await
                .unwrap_err();
            assert!(matches!(&err, ServiceError::Validation(e) if e[0].field == "dedupe_days"));
        }
        let err = f
            .campaigns
            .import_file(U1, id, FILE, &req)
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::Validation(_)));
        let ok = ImportRequest {
            dedupe_days: Some(3650),
            ..ImportRequest::default()
        };
        let s = f.campaigns.import_file(U1, id, FILE, &ok).await.unwrap();
        assert_eq!(s.dedupe_days, Some(3650));
    }

    #[tokio::test]
    async fn too_many_identifiers_to_suppress_speak_of_the_request() {
        let f = fixture(ServiceLimits {
            max_targets_per_task: 2,
            ..ServiceLimits::default()
        });
        let many: Vec<String> = (0..3).map(|i| format!("@person_{i:04}")).collect();
        let Err(ServiceError::Validation(e)) =
            f.campaigns.suppress(U1, Platform::Sandbox, &many, "").await
        else {
            panic!("expected a validation error");
        };
        assert_eq!(e[0].field, "identifiers");
        assert!(!e[0].message.contains("task's"), "{}", e[0].message);
        assert!(e[0].message.contains("holds 3 identifiers"));
    }

    #[tokio::test]
    async fn refusals_store_nothing() {
        let f = fixture(ServiceLimits {
            max_targets_per_task: 2,
            ..ServiceLimits::default()
        });
        let id = task(&f, 1).await;
        let req = ImportRequest::default();
        let err = f
            .campaigns
            .import_file(U1, id, b"@aaaa_one\n@aaaa_two\n", &req)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ServiceError::LimitExceeded {
                limit: Limit::MaxTargetsPerTask,
                max: 2,
                actual: 3
            }
        );
        assert!(matches!(
            f.campaigns
                .import_file(U1, id, b"{\"users\": [", &req)
                .await
                .unwrap_err(),
            ServiceError::File(crate::import::ImportError::InvalidJson { .. })
        ));
        assert_eq!(
            f.campaigns
                .import_file(U2, id, FILE, &req)
                .await
                .unwrap_err(),
            ServiceError::NotFound
        );
        f.campaigns.cancel(U1, id).await.unwrap();
        assert_eq!(
            f.campaigns
                .import_file(U1, id, FILE, &req)
                .await
                .unwrap_err(),
            ServiceError::Conflict {
                action: "import into",
                current: TaskStatus::Cancelled
            }
        );
        let progress = f.campaigns.parts().store.progress(U1, id).await.unwrap();
        assert_eq!(progress.total(), 1);
        let bad = ImportRequest {
            dedupe_days: Some(0),
            read: ReadOptions::default(),
        };
        assert!(matches!(
            f.campaigns
                .validate_file(U1, None, Platform::Sandbox, FILE, &bad)
                .await
                .unwrap_err(),
            ServiceError::Validation(_)
        ));
    }

    #[tokio::test]
    async fn parsing_results_import_when_a_source_is_configured() {
        let f = fixture(ServiceLimits::default());
        let id = task(&f, 0).await;
        assert_eq!(
            f.campaigns
                .import_parsing(U1, id, "p-1", None)
                .await
                .unwrap_err(),
            ServiceError::NotConfigured("the Parsing Service")
        );
        let mut parts = f.campaigns.parts().clone();
        parts.audience = Some(Arc::new(StaticAudience::new().with(
            U1,
            "p-1",
            vec![
                json!({"username": "from_parsing"}),
                json!({"user_id": 123456789}),
            ],
        )));
        let campaigns = Campaigns::new(parts, ServiceLimits::default());
        let s = campaigns.import_parsing(U1, id, "p-1", None).await.unwrap();
        assert_eq!((s.report.valid, s.inserted), (2, 2));
        assert!(matches!(
            campaigns.import_parsing(U1, id, "p-2", None).await,
            Err(ServiceError::Source(_))
        ));
    }

    #[tokio::test]
    async fn the_suppression_list_is_kept_per_user_and_platform() {
        let f = fixture(ServiceLimits::default());
        let c = &f.campaigns;
        let file = b"phone\n+79990001122\nnot a phone\n";
        let s = c
            .suppress_file(
                U1,
                Platform::Telegram,
                file,
                &ReadOptions::default(),
                "opt-out",
            )
            .await
            .unwrap();
        assert_eq!((s.report.valid, s.report.invalid, s.added), (1, 1, 1));
        assert_eq!(
            c.suppress(
                U1,
                Platform::Telegram,
                &["@someone_x".into(), "@".into()],
                ""
            )
            .await
            .unwrap_err(),
            ServiceError::Validation(vec![FieldError {
                field: "identifiers[1]".into(),
                message: match TargetIdentifier::parse("@", Platform::Telegram, &Default::default())
                {
                    Err(e) => e.to_string(),
                    Ok(_) => unreachable!(),
                },
            }])
        );
        let list = c.suppressions(U1, Platform::Telegram, 10, 0).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason, "opt-out");
        assert!(
            c.suppressions(U2, Platform::Telegram, 10, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            c.suppressions(U1, Platform::Sandbox, 10, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            c.unsuppress(U1, Platform::Telegram, "+7 999 000-11-22")
                .await
                .unwrap()
        );
        assert!(
            !c.unsuppress(U1, Platform::Telegram, "+79990001122")
                .await
                .unwrap()
        );
    }
}
