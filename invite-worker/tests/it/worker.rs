//! A task started through the API in platform mode is run by a worker woken by its job, and
//! its events reach the topic exchange; a stopped worker leaves nothing claimed.

use std::sync::Arc;

use invite_core::clock::SystemClock;
use invite_core::domain::{TargetStatus, TaskStatus, UserId};
use invite_core::ports::TaskEventKind;
use invite_core::service::{ActionType, TargetDraft, TaskDraft};
use invite_worker::{Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

use crate::helpers::Platform;

fn draft(targets: usize) -> TaskDraft {
    TaskDraft {
        name: "Platform run".into(),
        platform: "sandbox".into(),
        action: ActionType::Invite,
        group: Some("@launch_group".into()),
        template: None,
        priority: Some("high".into()),
        scheduled_at: None,
        targets: (0..targets)
            .map(|i| TargetDraft::new(format!("@person_{i:04}")))
            .collect(),
        accounts: None,
        add_to_contacts: false,
        dedupe_days: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_task_is_run_by_a_worker_and_announced() {
    let Some((mut platform, api)) = Platform::start(&[]).await else {
        return;
    };
    assert!(api.platform_mode());
    let worker = Worker::build(&platform.config, WorkerOptions::new(Arc::new(SystemClock)))
        .await
        .expect("worker");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(admin, stop.clone().cancelled_owned()));

    let user = UserId::new(7);
    let campaigns = api.state.campaigns();
    let id = campaigns
        .create(user, draft(6), None)
        .await
        .expect("created")
        .task
        .id;
    campaigns.start(user, id).await.expect("started");

    // The API announces the start; the worker (woken by the job, not by its hour-long poll)
    // runs the task and announces its completion.
    let mut seen = Vec::new();
    while !seen.contains(&TaskEventKind::Completed) {
        let event = platform.next_event().await;
        assert_eq!(event.task_id, id);
        seen.push(event.event);
    }
    assert_eq!(seen.first(), Some(&TaskEventKind::Started), "{seen:?}");
    let task = campaigns.get(user, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
    let status = campaigns.status(user, id).await.unwrap();
    assert_eq!(status.progress.count(TargetStatus::Pending), 0);
    assert_eq!(status.progress.count(TargetStatus::InProgress), 0);
    assert_eq!(status.progress.total(), 6);

    // The admin port tells the worker's health.
    let health: serde_json::Value = reqwest::get(format!("http://{admin_addr}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let names: Vec<&str> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"queue") && names.contains(&"engine"),
        "{names:?}"
    );
    assert!(!names.contains(&"jwt_secret"), "{names:?}");

    // SIGTERM's path: the worker stops, its admin port closes.
    stop.cancel();
    running.await.unwrap().unwrap();
    assert!(
        reqwest::get(format!("http://{admin_addr}/health"))
            .await
            .is_err()
    );
    api.close().await;
    platform.finish().await;
}

/// The adversarial case: a worker died holding a claim (its heartbeat long silent). A live
/// worker turns the claim `uncertain`, settles it by a membership check and finishes the task;
/// the target is never left `in_progress`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_claim_is_rescued_by_a_live_worker() {
    use chrono::{TimeDelta, Utc};
    use invite_core::domain::AccountId;
    use invite_core::ports::{Claim, ClaimStage};

    let Some((mut platform, api)) = Platform::start(&[]).await else {
        return;
    };
    let user = UserId::new(8);
    let campaigns = api.state.campaigns();
    let id = campaigns
        .create(user, draft(3), None)
        .await
        .expect("created")
        .task
        .id;
    campaigns.start(user, id).await.expect("started");
    assert_eq!(platform.next_event().await.event, TaskEventKind::Started);

    // What a killed worker leaves: a claimed target and a heartbeat that stopped long ago.
    let stores = invite_store::connect(&platform.db.url, Default::default())
        .await
        .unwrap();
    let account = AccountId::parse("sandbox-8-01").unwrap();
    let long_ago = Utc::now() - TimeDelta::minutes(10);
    stores
        .tasks
        .ensure_lanes(id, std::slice::from_ref(&account))
        .await
        .unwrap();
    stores
        .tasks
        .heartbeat("dead-worker", long_ago)
        .await
        .unwrap();
    let claimed = stores
        .tasks
        .claim_target(&Claim {
            task: id,
            account,
            holder: "dead-worker".to_owned(),
            now: long_ago,
            random_high: None,
            stage: ClaimStage::First,
        })
        .await
        .unwrap()
        .expect("a target to claim");
    assert_eq!(claimed.status, TargetStatus::InProgress);

    let worker = Worker::build(&platform.config, WorkerOptions::new(Arc::new(SystemClock)))
        .await
        .expect("worker");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(admin, stop.clone().cancelled_owned()));
    loop {
        let event = platform.next_event().await;
        if event.event == TaskEventKind::Completed {
            break;
        }
    }
    let targets = stores.tasks.targets(user, id, 0, 0).await.unwrap();
    let rescued = targets.iter().find(|t| t.id == claimed.id).unwrap();
    assert!(
        !matches!(
            rescued.status,
            TargetStatus::InProgress | TargetStatus::Pending | TargetStatus::Uncertain
        ),
        "settled: {rescued:?}"
    );
    assert!(
        rescued.outcome.is_some(),
        "the rescued target has an outcome: {rescued:?}"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
    stores.close().await;
    api.close().await;
    platform.finish().await;
}
