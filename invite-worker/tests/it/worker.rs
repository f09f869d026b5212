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
    platform.db.drop_database().await;
}
