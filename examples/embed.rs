//! `cargo run --example embed`: a service embedding the engine with parts of its own — an
//! account directory, a strategy for a made-up messenger that delivers messages by posting to
//! a webhook (served here on a local port), the SQLite store and the local account manager —
//! creates a task through `Campaigns`, runs it on the virtual clock and prints its report.
use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use invite_core::async_trait;
use invite_core::clock::VirtualClock;
use invite_core::domain::{AccountId, GroupRef, Outcome, Platform, Target, UserId};
use invite_core::engine::{Engine, EngineConfig, EngineParts};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::InProcessQueue;
use invite_core::ports::{
    AccountDirectory, AccountInfo, ActionResult, DirectoryError, InviteStrategy, PlatformError,
};
use invite_core::service::{
    ActionType, CampaignParts, Campaigns, ServiceLimits, TargetDraft, TaskDraft,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Our accounts: two senders for every user.
#[derive(Debug)]
struct Team;

#[async_trait]
impl AccountDirectory for Team {
    async fn accounts(
        &self,
        _user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError> {
        Ok(["desk-1", "desk-2"]
            .map(|id| AccountInfo {
                id: AccountId::parse(id).expect("valid id"),
                platform,
                display_name: None,
                active: true,
            })
            .to_vec())
    }
}

/// The made-up messenger: a message is a POST of JSON to its webhook. It takes the WhatsApp
/// slot (phone numbers), for which the service ships no adapter.
#[derive(Debug)]
struct Webhook {
    url: String,
    http: reqwest::Client,
}

#[async_trait]
impl InviteStrategy for Webhook {
    fn platform(&self) -> Platform {
        Platform::Whatsapp
    }
    fn rate_limits(&self) -> LimitPolicy {
        policy()
    }
    async fn initialize(&self, _account: &AccountId) -> Result<(), PlatformError> {
        Ok(())
    }
    async fn check_invite_rights(&self, _: &AccountId, _: &GroupRef) -> Result<(), PlatformError> {
        Err(PlatformError::Group {
            code: "NO_GROUPS".into(),
            account_only: false,
        })
    }
    async fn invite(
        &self,
        _: &AccountId,
        _: &Target,
        _: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        Err(PlatformError::Group {
            code: "NO_GROUPS".into(),
            account_only: false,
        })
    }
    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        let body = serde_json::json!({"from": account.as_str(), "to": target.person.identifier.to_string(), "text": text, "random_id": random_id});
        match self.http.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => Ok(ActionResult::new(Outcome::Sent)),
            Ok(r) if r.status() == 404 => Err(PlatformError::Target {
                outcome: Outcome::NotFound,
                code: "NO_SUCH_NUMBER".into(),
            }),
            Ok(r) => Err(PlatformError::Unknown {
                code: r.status().as_str().into(),
                message: "unexpected status".into(),
            }),
            // Refused before anything was written: certainly not sent.
            Err(e) if e.is_connect() => Err(PlatformError::Transient {
                code: "CONNECT".into(),
            }),
            // Written, then no answer: maybe sent.
            Err(_) => Err(PlatformError::Ambiguous {
                code: "NO_ANSWER".into(),
            }),
        }
    }
    async fn add_contact(&self, _: &AccountId, _: &Target) -> Result<(), PlatformError> {
        Ok(())
    }
    async fn is_member(
        &self,
        _: &AccountId,
        _: &Target,
        _: &GroupRef,
    ) -> Result<bool, PlatformError> {
        Ok(false)
    }
    async fn disconnect(&self, _account: &AccountId) {}
}

/// 50 messages per account a day, 1 to 3 minutes apart.
fn policy() -> LimitPolicy {
    let mut p = LimitPolicy::telegram();
    (
        p.message.per_account,
        p.message.pause_min,
        p.message.pause_max,
    ) = (50, TimeDelta::minutes(1), TimeDelta::minutes(3));
    p
}

/// The messenger's side: answers every POST, 404 for numbers ending in 0, and keeps the bodies.
async fn serve(listener: tokio::net::TcpListener, received: Arc<Mutex<Vec<String>>>) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let (mut request, mut buf) = (Vec::new(), [0u8; 4096]);
        let body = loop {
            let Ok(n @ 1..) = socket.read(&mut buf).await else {
                break None;
            };
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break Some(body.to_owned());
                }
            }
        };
        let Some(body) = body else { continue };
        let to: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let status = if to["to"].as_str().is_some_and(|n| n.ends_with('0')) {
            "404 Not Found"
        } else {
            received.lock().unwrap().push(body);
            "200 OK"
        };
        let _ = socket
            .write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/messages", listener.local_addr()?);
    let received = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(serve(listener, received.clone()));

    let stores =
        invite_store::connect("sqlite::memory:", invite_store::PoolConfig::default()).await?;
    stores.migrate().await?;
    let clock = Arc::new(VirtualClock::auto("2026-01-05T09:00:00Z".parse()?));
    let manager = Arc::new(
        LocalAccountManager::new(stores.ledger.clone(), clock.clone(), 1)
            .with_policy(Platform::Whatsapp, policy()),
    );
    let (directory, strategy) = (
        Arc::new(Team),
        Arc::new(Webhook {
            url,
            http: reqwest::Client::new(),
        }),
    );
    let engine = Engine::new(
        EngineParts {
            store: stores.tasks.clone(),
            suppression: stores.suppression.clone(),
            leases: stores.leases.clone(),
            accounts: manager.clone(),
            directory: directory.clone(),
            clock: clock.clone(),
        },
        [strategy as Arc<dyn InviteStrategy>],
        EngineConfig::default(),
    );
    let parts = CampaignParts {
        store: stores.tasks.clone(),
        queue: Arc::new(InProcessQueue::new()),
        accounts: manager,
        directory,
        ledger: Some(stores.ledger.clone()),
        clock,
        suppression: stores.suppression.clone(),
        audience: None,
    };
    let campaigns =
        Campaigns::new(parts, ServiceLimits::default()).with_policy(Platform::Whatsapp, policy());

    let user = UserId::new(7);
    let targets = (1..=12)
        .map(|i| TargetDraft {
            first_name: Some(format!("Guest {i}")),
            ..TargetDraft::new(format!("+1555010{i:04}"))
        })
        .collect();
    let draft = TaskDraft {
        name: "Webinar reminder".into(),
        platform: "whatsapp".into(),
        action: ActionType::Message,
        group: None,
        template: Some("Hello {first_name}, the webinar starts at 18:00.".into()),
        priority: None,
        scheduled_at: None,
        targets,
        accounts: None,
        add_to_contacts: false,
        dedupe_days: None,
    };
    let task = campaigns.create(user, draft, None).await?.task;
    campaigns.start(user, task.id).await?;
    engine.run_until_idle(|_| {}).await?;

    let task = campaigns.get(user, task.id).await?;
    let progress = stores.tasks.progress(user, task.id).await?;
    println!("task {} \"{}\": {}", task.id, task.name, task.status);
    for (outcome, n) in &progress.by_outcome {
        println!("{outcome}: {n}");
    }
    println!("webhook deliveries: {}", received.lock().unwrap().len());
    Ok(())
}
