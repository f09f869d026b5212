//! The sandbox across a restart of the embedded SQLite file (the contract of `SandboxWorld`
//! is `invite_core::testing::sandbox_world_contract`, run in `main.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use invite_core::domain::{
    GroupRef, NewTarget, Outcome, Platform, Target, TargetId, TargetIdentifier, TargetStatus,
    TaskId,
};
use invite_core::ports::InviteStrategy;
use invite_core::sandbox::{SandboxConfig, SandboxStrategy};
use invite_store::test_util::random_suffix;
use invite_store::{PoolConfig, Stores};

use crate::helpers::acc;

/// Every person exists and every call goes through.
fn calm() -> SandboxConfig {
    SandboxConfig {
        privacy_restricted: 0.0,
        already_member: 0.0,
        not_found: 0.0,
        flood_wait: 0.0,
        peer_flood: 0.0,
        latency_ms: (0, 0),
        ..SandboxConfig::default()
    }
}

fn person(name: &str) -> Target {
    let identifier = TargetIdentifier::parse(name, Platform::Sandbox, &Default::default()).unwrap();
    Target {
        id: TargetId::new(1),
        task_id: TaskId::new(1),
        person: NewTarget::new(identifier),
        status: TargetStatus::InProgress,
        outcome: None,
        account_id: None,
        random_id: Some(7),
        sender: None,
        invite_outcome: None,
        contact_added: false,
        attempts: 1,
        error_message: None,
        result: serde_json::Value::Null,
        claimed_at: None,
        processed_at: None,
    }
}

/// Removes the database file and its WAL companions, even when the test fails.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.0.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

async fn open(url: &str) -> Stores {
    let stores = invite_store::connect(url, PoolConfig::default())
        .await
        .expect("open SQLite file");
    stores.migrate().await.expect("migrate");
    stores
}

#[tokio::test]
async fn sandbox_world_survives_an_embedded_restart() {
    let db = TempDb(std::env::temp_dir().join(format!("invite-sandbox-{}.db", random_suffix())));
    let url = format!("sqlite://{}", db.0.display());
    let (sender, alice) = (acc("sandbox-1-01"), person("@alice"));
    let group = GroupRef::parse("@group_a").unwrap();

    let stores = open(&url).await;
    let before = SandboxStrategy::with_world(calm(), stores.sandbox.clone());
    let invited = before.invite(&sender, &alice, &group).await.unwrap();
    assert_eq!(invited.outcome, Outcome::Invited);
    let sent = before.send_message(&sender, &alice, "Hi", 7).await.unwrap();
    assert_eq!(sent.outcome, Outcome::Sent);
    assert_eq!(
        (before.counters().invites, before.counters().messages),
        (1, 1)
    );
    stores.close().await;
    drop(before);

    // The process restarts: a new connection, a new sandbox, nothing in memory.
    let stores = open(&url).await;
    let after = SandboxStrategy::with_world(calm(), Arc::clone(&stores.sandbox));
    // The engine settles an uncertain invite with a membership check: already done.
    assert!(after.is_member(&sender, &alice, &group).await.unwrap());
    let again = after.invite(&sender, &alice, &group).await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyMember);
    // A resend with the stored random_id delivers nothing.
    let resent = after.send_message(&sender, &alice, "Hi", 7).await.unwrap();
    assert_eq!(resent.outcome, Outcome::Sent);
    assert_eq!(resent.details["deduplicated"], serde_json::json!(true));
    assert_eq!(
        (after.counters().invites, after.counters().messages),
        (0, 0)
    );
    // Someone never invited is still not a member.
    assert!(
        !after
            .is_member(&sender, &person("@bobby"), &group)
            .await
            .unwrap()
    );
    stores.close().await;
}
