//! The sandbox platform: a simulated messenger for demos, dry runs and load tests.
//!
//! It is a real adapter, not a test mock: it keeps group memberships and delivered messages,
//! refuses a second delivery of the same `random_id`, and answers like a messenger would —
//! with configurable shares of privacy-restricted people, existing members, unknown usernames,
//! flood waits, peer floods and latency. Everything is decided by a seeded hash of the person
//! (or of the account and call number), so a run with the same seed behaves the same.
//!
//! `SandboxWorld` is the port where the sandbox keeps its world — who is in which group, and
//! which `random_id` each account has delivered — so that a restarted process settles an
//! uncertain invite or a resent message against what really happened. Implementations:
//! [`MemoryWorld`] (here; lost with the process) and `invite-store` (`PgStore`, `SqliteStore`:
//! tables `invite_sandbox_members` and `invite_sandbox_messages`). The counters of
//! [`SandboxCounters`] stay in memory: they describe one process's run.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, GroupRef, Outcome, Platform, Target};
use crate::limits::LimitPolicy;
use crate::ports::{ActionResult, InviteStrategy, PlatformError, StoreError, StoreResult};

/// The sandbox's persistent world: group memberships and delivered messages.
///
/// A membership is keyed by the group's [`GroupRef::channel_key`] and the person's
/// [`TargetIdentifier::dedupe_key`](crate::domain::TargetIdentifier::dedupe_key); a delivery by
/// the sending account and the message's `random_id` (Telegram de-duplicates `random_id` per
/// sending account only). Each write is one atomic "insert if absent", and that write *is* the
/// simulated delivery: when it fails, nothing was delivered.
#[async_trait]
pub trait SandboxWorld: Send + Sync + std::fmt::Debug {
    /// Adds `person` to `channel`; true when newly added, false when already a member.
    async fn add_member(&self, channel: &str, person: &str) -> StoreResult<bool>;

    /// Whether `person` is a member of `channel`.
    async fn is_member(&self, channel: &str, person: &str) -> StoreResult<bool>;

    /// Records the delivery of the message `random_id` sent by `account`; true when new, false
    /// when that account used that `random_id` before.
    async fn record_delivery(&self, account: &AccountId, random_id: i64) -> StoreResult<bool>;
}

/// A [`SandboxWorld`] in memory: the world of one process, lost when it ends.
#[derive(Debug, Default)]
pub struct MemoryWorld {
    inner: Mutex<MemoryWorldInner>,
}

#[derive(Debug, Default)]
struct MemoryWorldInner {
    members: HashSet<(String, String)>,
    deliveries: HashSet<(String, i64)>,
}

impl MemoryWorld {
    /// An empty world.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, MemoryWorldInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SandboxWorld for MemoryWorld {
    async fn add_member(&self, channel: &str, person: &str) -> StoreResult<bool> {
        Ok(self
            .inner()
            .members
            .insert((channel.to_owned(), person.to_owned())))
    }

    async fn is_member(&self, channel: &str, person: &str) -> StoreResult<bool> {
        Ok(self
            .inner()
            .members
            .contains(&(channel.to_owned(), person.to_owned())))
    }

    async fn record_delivery(&self, account: &AccountId, random_id: i64) -> StoreResult<bool> {
        Ok(self
            .inner()
            .deliveries
            .insert((account.as_str().to_owned(), random_id)))
    }
}

/// Behaviour of the simulated messenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Seed of every simulated decision.
    pub seed: u64,
    /// Share of people whose privacy settings refuse invites (and need Premium for messages).
    pub privacy_restricted: f64,
    /// Share of people already in the group.
    pub already_member: f64,
    /// Share of identifiers that do not exist.
    pub not_found: f64,
    /// Chance that a call meets a flood wait.
    pub flood_wait: f64,
    /// Range of flood waits, in seconds.
    pub flood_wait_seconds: (u64, u64),
    /// Chance that a call meets a peer flood (the account is restricted).
    pub peer_flood: f64,
    /// Range of simulated latency, in milliseconds (reported in results).
    pub latency_ms: (u64, u64),
    /// Whether calls really take their simulated latency (for live demos).
    pub real_latency: bool,
    /// Accounts that have no invite rights in any group.
    pub accounts_without_rights: Vec<AccountId>,
    /// Groups that do not exist (every account is refused).
    pub missing_groups: Vec<GroupRef>,
    /// Limits the sandbox declares.
    pub limits: LimitPolicy,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            privacy_restricted: 0.08,
            already_member: 0.03,
            not_found: 0.04,
            flood_wait: 0.005,
            flood_wait_seconds: (30, 300),
            peer_flood: 0.0,
            latency_ms: (80, 400),
            real_latency: false,
            accounts_without_rights: Vec::new(),
            missing_groups: Vec::new(),
            limits: LimitPolicy::telegram(),
        }
    }
}

/// Counters of what the sandbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxCounters {
    /// Platform calls answered.
    pub calls: u64,
    /// People actually added to groups.
    pub invites: u64,
    /// Messages actually delivered (a repeated `random_id` delivers nothing).
    pub messages: u64,
    /// Contacts added.
    pub contacts: u64,
}

/// The simulated messenger.
#[derive(Debug)]
pub struct SandboxStrategy {
    config: SandboxConfig,
    world: Arc<dyn SandboxWorld>,
    counters: Mutex<SandboxCounters>,
}

/// SplitMix64 over a seed and some bytes: a stable, well-mixed hash.
fn mix(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for part in parts {
        for &b in *part {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        h ^= 0xFF;
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

fn unit(h: u64) -> f64 {
    // 53 random bits into [0, 1).
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A failure of the world's store: the membership or delivery was not written, so nothing was
/// delivered and the call is transient.
fn undelivered(error: StoreError) -> PlatformError {
    tracing::warn!(error = %error, "sandbox world unavailable: {error}");
    PlatformError::Transient {
        code: "SANDBOX_WORLD_UNAVAILABLE".to_owned(),
    }
}

impl SandboxStrategy {
    /// A sandbox with the given behaviour, keeping its world in memory ([`MemoryWorld`]).
    pub fn new(config: SandboxConfig) -> Self {
        Self::with_world(config, Arc::new(MemoryWorld::new()))
    }

    /// A sandbox with the given behaviour, keeping its world in `world` (a database's, so
    /// that memberships and delivered messages outlive the process).
    pub fn with_world(config: SandboxConfig, world: Arc<dyn SandboxWorld>) -> Self {
        Self {
            config,
            world,
            counters: Mutex::new(SandboxCounters::default()),
        }
    }

    /// What this sandbox did so far (since it was built; not kept in the world).
    pub fn counters(&self) -> SandboxCounters {
        *self.count()
    }

    fn count(&self) -> std::sync::MutexGuard<'_, SandboxCounters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The person's fixed trait: a number in [0, 1).
    fn person(&self, target: &Target) -> f64 {
        unit(mix(
            self.config.seed,
            &[target.person.identifier.dedupe_key().as_bytes()],
        ))
    }

    /// Account-level weather of one call.
    async fn call(&self, account: &AccountId) -> Result<u64, PlatformError> {
        let n = {
            let mut count = self.count();
            count.calls += 1;
            count.calls
        };
        let h = mix(
            self.config.seed,
            &[account.as_str().as_bytes(), &n.to_le_bytes()],
        );
        let (lo, hi) = self.config.latency_ms;
        let latency = lo + h % (hi.saturating_sub(lo) + 1);
        if self.config.real_latency && latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let weather = unit(mix(h, &[b"weather"]));
        if weather < self.config.peer_flood {
            return Err(PlatformError::AccountRestricted {
                code: "PEER_FLOOD".to_owned(),
            });
        }
        if weather < self.config.peer_flood + self.config.flood_wait {
            let (lo, hi) = self.config.flood_wait_seconds;
            return Err(PlatformError::FloodWait {
                seconds: lo + (h >> 7) % (hi.saturating_sub(lo) + 1),
                code: "FLOOD_WAIT".to_owned(),
            });
        }
        Ok(latency)
    }

    fn check_group(&self, account: &AccountId, group: &GroupRef) -> Result<(), PlatformError> {
        if self.config.missing_groups.contains(group) {
            return Err(PlatformError::Group {
                code: "CHANNEL_PRIVATE".to_owned(),
                account_only: false,
            });
        }
        if self.config.accounts_without_rights.contains(account) {
            return Err(PlatformError::Group {
                code: "CHAT_ADMIN_REQUIRED".to_owned(),
                account_only: true,
            });
        }
        Ok(())
    }

    fn target_error(outcome: Outcome, code: &str) -> PlatformError {
        PlatformError::Target {
            outcome,
            code: code.to_owned(),
        }
    }
}

#[async_trait]
impl InviteStrategy for SandboxStrategy {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }

    fn rate_limits(&self) -> LimitPolicy {
        self.config.limits
    }

    async fn initialize(&self, _account: &AccountId) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn check_invite_rights(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<(), PlatformError> {
        self.check_group(account, group)
    }

    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        self.check_group(account, group)?;
        let latency = self.call(account).await?;
        let p = self.person(target);
        let c = &self.config;
        if p < c.not_found {
            return Err(Self::target_error(
                Outcome::NotFound,
                "USERNAME_NOT_OCCUPIED",
            ));
        }
        let channel = group.channel_key();
        let person = target.person.identifier.dedupe_key();
        if p < c.not_found + c.already_member {
            self.world
                .add_member(&channel, &person)
                .await
                .map_err(undelivered)?;
            return Ok(ActionResult::new(Outcome::AlreadyMember));
        }
        if p < c.not_found + c.already_member + c.privacy_restricted {
            // Added by an earlier run with another configuration of the same world.
            if self
                .world
                .is_member(&channel, &person)
                .await
                .map_err(undelivered)?
            {
                return Ok(ActionResult::new(Outcome::AlreadyMember));
            }
            // Like Telegram: the call "succeeds" but lists the person as missing.
            return Ok(ActionResult {
                outcome: Outcome::PrivacyRestricted,
                details: serde_json::json!({
                    "missing_invitee": true,
                    "premium_would_allow_invite": p < c.not_found + c.already_member + c.privacy_restricted / 2.0,
                    "latency_ms": latency,
                }),
            });
        }
        // The insert is the invite: a failed write added nobody.
        let added = self
            .world
            .add_member(&channel, &person)
            .await
            .map_err(undelivered)?;
        if !added {
            return Ok(ActionResult::new(Outcome::AlreadyMember));
        }
        self.count().invites += 1;
        Ok(ActionResult {
            outcome: Outcome::Invited,
            details: serde_json::json!({ "latency_ms": latency }),
        })
    }

    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        let latency = self.call(account).await?;
        let p = self.person(target);
        let c = &self.config;
        if p < c.not_found {
            return Err(Self::target_error(
                Outcome::NotFound,
                "USERNAME_NOT_OCCUPIED",
            ));
        }
        if text.trim().is_empty() {
            return Err(PlatformError::Unknown {
                code: "MESSAGE_EMPTY".to_owned(),
                message: "the message is empty".to_owned(),
            });
        }
        if (c.not_found + c.already_member..c.not_found + c.already_member + c.privacy_restricted)
            .contains(&p)
        {
            return Err(Self::target_error(
                Outcome::PremiumRequired,
                "PRIVACY_PREMIUM_REQUIRED",
            ));
        }
        // The insert is the delivery: a failed write delivered nothing.
        let new = self
            .world
            .record_delivery(account, random_id)
            .await
            .map_err(undelivered)?;
        if !new {
            // RANDOM_ID_DUPLICATE: delivered before, nothing sent now.
            return Ok(ActionResult {
                outcome: Outcome::Sent,
                details: serde_json::json!({ "deduplicated": true }),
            });
        }
        self.count().messages += 1;
        Ok(ActionResult {
            outcome: Outcome::Sent,
            details: serde_json::json!({ "latency_ms": latency }),
        })
    }

    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError> {
        self.call(account).await?;
        if self.person(target) < self.config.not_found {
            return Err(Self::target_error(
                Outcome::NotFound,
                "USERNAME_NOT_OCCUPIED",
            ));
        }
        self.count().contacts += 1;
        Ok(())
    }

    async fn is_member(
        &self,
        _account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        self.world
            .is_member(&group.channel_key(), &target.person.identifier.dedupe_key())
            .await
            .map_err(undelivered)
    }

    async fn disconnect(&self, _account: &AccountId) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewTarget, TargetId, TargetIdentifier, TargetStatus, TaskId};

    /// A sandbox where every person exists and every call goes through.
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

    fn account(name: &str) -> AccountId {
        AccountId::parse(name).unwrap()
    }

    fn person(name: &str) -> Target {
        let identifier =
            TargetIdentifier::parse(name, Platform::Sandbox, &Default::default()).unwrap();
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

    fn group() -> GroupRef {
        GroupRef::parse("@sandbox_group").unwrap()
    }

    /// A world whose store is down.
    #[derive(Debug)]
    struct Unreachable;

    #[async_trait]
    impl SandboxWorld for Unreachable {
        async fn add_member(&self, _: &str, _: &str) -> StoreResult<bool> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn is_member(&self, _: &str, _: &str) -> StoreResult<bool> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn record_delivery(&self, _: &AccountId, _: i64) -> StoreResult<bool> {
            Err(StoreError::Backend("disk full".into()))
        }
    }

    #[tokio::test]
    async fn memory_world_adds_once_and_deduplicates_per_account() {
        let world = MemoryWorld::new();
        assert!(!world.is_member("@g", "u:alice").await.unwrap());
        assert!(world.add_member("@g", "u:alice").await.unwrap());
        assert!(!world.add_member("@g", "u:alice").await.unwrap());
        assert!(world.is_member("@g", "u:alice").await.unwrap());
        assert!(!world.is_member("@other", "u:alice").await.unwrap());
        let (a, b) = (account("sandbox-1-01"), account("sandbox-1-02"));
        assert!(world.record_delivery(&a, 42).await.unwrap());
        assert!(!world.record_delivery(&a, 42).await.unwrap());
        assert!(world.record_delivery(&b, 42).await.unwrap());
    }

    #[tokio::test]
    async fn a_new_sandbox_over_the_same_world_remembers_what_was_delivered() {
        let world: Arc<dyn SandboxWorld> = Arc::new(MemoryWorld::new());
        let (sender, alice) = (account("sandbox-1-01"), person("@alice"));
        let first = SandboxStrategy::with_world(calm(), world.clone());
        let invited = first.invite(&sender, &alice, &group()).await.unwrap();
        assert_eq!(invited.outcome, Outcome::Invited);
        let sent = first.send_message(&sender, &alice, "hi", 7).await.unwrap();
        assert_eq!(sent.outcome, Outcome::Sent);
        assert_eq!(
            (first.counters().invites, first.counters().messages),
            (1, 1)
        );

        // A restart: new counters, same world.
        let second = SandboxStrategy::with_world(calm(), world);
        assert!(second.is_member(&sender, &alice, &group()).await.unwrap());
        let again = second.invite(&sender, &alice, &group()).await.unwrap();
        assert_eq!(again.outcome, Outcome::AlreadyMember);
        let resent = second.send_message(&sender, &alice, "hi", 7).await.unwrap();
        assert_eq!(resent.outcome, Outcome::Sent);
        assert_eq!(resent.details["deduplicated"], serde_json::json!(true));
        // Another account's message with the same random_id is its own.
        let other = second
            .send_message(&account("sandbox-1-02"), &alice, "hi", 7)
            .await
            .unwrap();
        assert!(other.details.get("deduplicated").is_none());
        assert_eq!(
            (second.counters().invites, second.counters().messages),
            (0, 1)
        );
    }

    #[tokio::test]
    async fn a_failed_world_write_delivers_nothing_and_is_transient() {
        let sandbox = SandboxStrategy::with_world(calm(), Arc::new(Unreachable));
        let (sender, alice) = (account("sandbox-1-01"), person("@alice"));
        let transient = |e: PlatformError| {
            assert_eq!(e.class(), crate::ports::ErrorClass::Transient, "{e}");
        };
        transient(sandbox.invite(&sender, &alice, &group()).await.unwrap_err());
        transient(
            sandbox
                .send_message(&sender, &alice, "hi", 7)
                .await
                .unwrap_err(),
        );
        transient(
            sandbox
                .is_member(&sender, &alice, &group())
                .await
                .unwrap_err(),
        );
        let counters = sandbox.counters();
        assert_eq!((counters.invites, counters.messages), (0, 0));
        assert_eq!(counters.calls, 2);
    }

    #[test]
    fn hash_is_stable_and_spread() {
        assert_eq!(mix(1, &[b"abc"]), mix(1, &[b"abc"]));
        assert_ne!(mix(1, &[b"abc"]), mix(2, &[b"abc"]));
        let below: usize = (0..10_000u32)
            .filter(|i| unit(mix(7, &[&i.to_le_bytes()])) < 0.1)
            .count();
        assert!((800..1200).contains(&below), "{below}");
    }
}
