//! A worker runs `telegram` tasks: the same Telegram strategy as the embedded binary, over the
//! accounts the API registered (their secrets sealed under the shared `INVITE_SECRET_KEY`),
//! on a fake Telegram behind the seam.

use std::net::Ipv4Addr;
use std::sync::Arc;

use invite_core::clock::{Clock as _, SystemClock, VirtualClock};
use invite_core::domain::{TargetStatus, TaskStatus, UserId};
use invite_core::service::{ActionType, TargetDraft, TaskDraft};
use invite_http::accounts::AddAccount;
use invite_telegram::fake::FakeTelegram;
use invite_worker::{Worker, WorkerOptions};

use crate::helpers::Platform;

const API_HASH: &str = "0123456789abcdef0123456789abcdef";

fn session(seed: u8) -> String {
    let key: Vec<u8> = (0..256_u32)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) ^ 0x3c)
        .collect();
    invite_telegram::session::telethon_string(2, Ipv4Addr::new(149, 154, 167, 51).into(), 443, &key)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_a_telegram_task_over_registered_accounts() {
    let fake = FakeTelegram::new();
    let key = invite_store::seal::SecretKey::generate()
        .unwrap()
        .to_base64();
    let vars = [
        ("INVITE_SECRET_KEY", key.as_str()),
        ("TELEGRAM_API_ID", "12345"),
        ("TELEGRAM_API_HASH", API_HASH),
    ];
    let Some((platform, api)) = Platform::start_with_telegram(&vars, Arc::new(fake.clone())).await
    else {
        return;
    };
    let user = UserId::new(7);
    for (seed, telegram_id) in [(1_u8, 5001_i64), (2, 5002)] {
        fake.add_account(&session(seed), telegram_id, None);
        api.state
            .accounts()
            .expect("accounts enabled")
            .add(
                user,
                AddAccount {
                    platform: "telegram".to_owned(),
                    session: session(seed),
                    ..AddAccount::default()
                },
                true,
            )
            .await
            .expect("account added");
    }
    let campaigns = api.state.campaigns();
    let id = campaigns
        .create(
            user,
            TaskDraft {
                name: "Telegram on a worker".into(),
                platform: "telegram".into(),
                action: ActionType::Invite,
                group: Some("@launch_group".into()),
                template: None,
                priority: Some("high".into()),
                scheduled_at: None,
                targets: (0..4)
                    .map(|i| TargetDraft::new(format!("@reader_{i:03}")))
                    .collect(),
                accounts: None,
                add_to_contacts: false,
                dedupe_days: None,
            },
            None,
        )
        .await
        .expect("created")
        .task
        .id;
    campaigns.start(user, id).await.expect("started");

    // The worker's engine on campaign time: its pauses between invites pass in milliseconds.
    let clock = Arc::new(VirtualClock::auto(SystemClock.now()));
    let worker = Worker::build(
        &platform.config,
        WorkerOptions {
            telegram: Some(Arc::new(fake.clone())),
            ..WorkerOptions::new(clock)
        },
    )
    .await
    .expect("worker");
    worker
        .engine()
        .run_until_idle(|_| {})
        .await
        .expect("the worker's engine ran");

    let task = campaigns.get(user, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
    let status = campaigns.status(user, id).await.unwrap();
    assert_eq!(
        status.progress.count(TargetStatus::Success),
        4,
        "{status:?}"
    );
    assert_eq!(fake.invited().len(), 4, "each target invited once");
    assert_eq!(fake.most_open_at_once(), 1);
    worker.close().await;
    api.close().await;
    platform.finish().await;
}
