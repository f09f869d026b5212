//! The sandbox platform: a simulated messenger for demos, dry runs and load tests.
//!
//! It is a real adapter, not a test mock: it keeps group memberships and delivered messages,
//! refuses a second delivery of the same `random_id`, and answers like a messenger would —
//! with configurable shares of privacy-restricted people, existing members, unknown usernames,
//! flood waits, peer floods and latency. Everything is decided by a seeded hash of the person
//! (or of the account and call number), so a run with the same seed behaves the same.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, GroupRef, Outcome, Platform, Target};
use crate::limits::LimitPolicy;
use crate::ports::{ActionResult, InviteStrategy, PlatformError};

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

#[derive(Debug, Default)]
struct World {
    members: HashSet<(String, String)>,
    random_ids: HashSet<(String, i64)>,
    calls: u64,
    invites: u64,
    messages: u64,
    contacts: u64,
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
    world: Mutex<World>,
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

impl SandboxStrategy {
    /// A sandbox with the given behaviour.
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            config,
            world: Mutex::new(World::default()),
        }
    }

    /// What the sandbox did so far.
    pub fn counters(&self) -> SandboxCounters {
        let w = self.world();
        SandboxCounters {
            calls: w.calls,
            invites: w.invites,
            messages: w.messages,
            contacts: w.contacts,
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
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
            let mut w = self.world();
            w.calls += 1;
            w.calls
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
        let key = (group.channel_key(), target.person.identifier.dedupe_key());
        let mut w = self.world();
        if p < c.not_found + c.already_member || w.members.contains(&key) {
            w.members.insert(key);
            return Ok(ActionResult::new(Outcome::AlreadyMember));
        }
        if p < c.not_found + c.already_member + c.privacy_restricted {
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
        w.members.insert(key);
        w.invites += 1;
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
        let mut w = self.world();
        if !w.random_ids.insert((account.to_string(), random_id)) {
            // RANDOM_ID_DUPLICATE: delivered before, nothing sent now.
            return Ok(ActionResult {
                outcome: Outcome::Sent,
                details: serde_json::json!({ "deduplicated": true }),
            });
        }
        w.messages += 1;
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
        self.world().contacts += 1;
        Ok(())
    }

    async fn is_member(
        &self,
        _account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        let key = (group.channel_key(), target.person.identifier.dedupe_key());
        Ok(self.world().members.contains(&key))
    }

    async fn disconnect(&self, _account: &AccountId) {}
}

#[cfg(test)]
mod tests {
    use super::*;

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
