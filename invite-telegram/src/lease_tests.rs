//! Two engines (two worker processes) on one store and one account: the account's connection
//! is only ever open in one of them, counted on the fake Telegram.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use invite_core::domain::{
    AccountId, Action, GroupRef, NewTarget, NewTask, Platform, Priority, TargetIdentifier,
    TaskEvent, TaskSettings, TaskStatus, UserId,
};
use invite_core::engine::{Engine, EngineConfig, EngineParts, unique_worker_id};
use invite_core::limits::LocalAccountManager;
use invite_core::memory::{MemoryLedger, MemoryStore, StaticDirectory, StaticSecrets};
use invite_core::ports::{InviteStrategy, Secret, TaskStore};
use invite_core::{Clock, VirtualClock};

use super::ConnectionLease;
use crate::fake::FakeTelegram;
use crate::strategy::{TelegramConfig, TelegramStrategy};

fn session() -> String {
    let key: Vec<u8> = (0..256_u32).map(|i| (i * 31 + 7) as u8).collect();
    crate::session::telethon_string(2, "149.154.167.51".parse().unwrap(), 443, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_never_hold_one_accounts_connection_at_once() {
    let clock = Arc::new(VirtualClock::manual(
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
    ));
    let store = Arc::new(MemoryStore::new());
    let ledger = Arc::new(MemoryLedger::new());
    let user = UserId::new(1);
    let account = AccountId::parse("tg-1").unwrap();
    let directory =
        Arc::new(StaticDirectory::new().with_accounts(user, Platform::Telegram, [account.clone()]));
    let fake = FakeTelegram::new();
    fake.add_account(&session(), 5001, Some("sender_one"));
    let secrets = Arc::new(
        StaticSecrets::new()
            .with(
                "secret/telegram/sessions/tg-1",
                "session_string",
                Secret::new(session()),
            )
            .with(
                "secret/telegram/sessions/tg-1",
                "api_id",
                Secret::new("12345"),
            ),
    );
    let engine = |seed: u64| {
        let (clock, store, ledger, directory, secrets, fake) = (
            clock.clone(),
            store.clone(),
            ledger.clone(),
            directory.clone(),
            secrets.clone(),
            fake.clone(),
        );
        async move {
            let holder = unique_worker_id("worker");
            let strategy = TelegramStrategy::with_account_credentials(
                TelegramConfig::default(),
                secrets,
                Arc::new(fake),
                clock.clone(),
            )
            .await
            .unwrap()
            .with_connection_lease(
                ConnectionLease::new(store.clone(), holder.clone(), clock.clone())
                    .with_timing(TimeDelta::minutes(3), Duration::from_millis(5)),
            );
            let strategy = Arc::new(strategy);
            let engine = Engine::new(
                EngineParts {
                    store: store.clone(),
                    suppression: store.clone(),
                    leases: store.clone(),
                    accounts: Arc::new(LocalAccountManager::new(ledger, clock.clone(), seed)),
                    directory,
                    clock,
                },
                [strategy.clone() as Arc<dyn InviteStrategy>],
                EngineConfig {
                    worker_id: holder,
                    ..EngineConfig::default()
                },
            );
            (engine, strategy)
        }
    };
    let (a, strategy_a) = engine(1).await;
    let (b, _strategy_b) = engine(2).await;
    let targets: Vec<NewTarget> = (0..4)
        .map(|i| {
            NewTarget::new(
                TargetIdentifier::parse(
                    &format!("@person_{i:03}"),
                    Platform::Telegram,
                    &Default::default(),
                )
                .unwrap(),
            )
        })
        .collect();
    let task = store
        .create_task(
            NewTask {
                user_id: user,
                name: "two workers".to_owned(),
                platform: Platform::Telegram,
                priority: Priority::Medium,
                settings: TaskSettings {
                    action: Action::Invite {
                        group: GroupRef::parse("@launch_group").unwrap(),
                    },
                    accounts: None,
                    add_to_contacts: false,
                    dedupe_days: None,
                },
                scheduled_at: None,
            },
            targets,
            None,
            clock.now(),
        )
        .await
        .unwrap()
        .task
        .id;
    store
        .transition(
            user,
            task,
            TaskEvent::Start {
                scheduled_later: false,
            },
            None,
            clock.now(),
        )
        .await
        .unwrap();

    let mut a_running = true;
    for round in 0..600 {
        if a_running {
            a.tick().await.unwrap();
        }
        b.tick().await.unwrap();
        // Worker A stops after two invites: it closes its connection and gives the lease up.
        if a_running && fake.invited().len() >= 2 {
            strategy_a.disconnect(&account).await;
            a_running = false;
        }
        let status = store.get_task(user, task).await.unwrap().status;
        if status == TaskStatus::Completed {
            break;
        }
        assert!(round < 599, "task did not complete: {status}");
        clock.advance(TimeDelta::minutes(1));
        // Let heartbeats renew.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(fake.invited().len(), 4, "each target invited once");
    assert_eq!(
        fake.most_open_at_once(),
        1,
        "never two connections of one session"
    );
    assert!(fake.connects() >= 2, "worker B took over once A let go");
}

/// Regression: a second `keep_alive` on one lease (a reconnection) replaced the heartbeat
/// without stopping the first, which went on renewing the lease after it was released — so
/// another process could not take the account until this one ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_keep_alive_stops_the_first_heartbeat() {
    use crate::api::Connector as _;

    let clock = Arc::new(VirtualClock::manual(
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
    ));
    let store = Arc::new(MemoryStore::new());
    let account = AccountId::parse("tg-1").unwrap();
    let fake = FakeTelegram::new();
    fake.add_account(&session(), 5001, Some("sender_one"));
    let session = crate::session::SessionString::parse(&session()).unwrap();
    let lease = ConnectionLease::new(store.clone(), "worker-a", clock.clone())
        .with_timing(TimeDelta::minutes(3), Duration::from_millis(5));
    let mut held = lease.take(&account).await.unwrap();
    held.keep_alive(fake.connect(&session, 12345).await.unwrap());
    held.keep_alive(fake.connect(&session, 12345).await.unwrap());
    held.release().await;
    // Well past a renewal: no heartbeat may have taken the lease back.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let now = clock.now();
    let other = invite_core::ports::AccountLeases::acquire(
        store.as_ref(),
        &account,
        "worker-b",
        now,
        now + TimeDelta::minutes(3),
    )
    .await
    .unwrap();
    assert!(other, "the released lease is free for another process");
}
