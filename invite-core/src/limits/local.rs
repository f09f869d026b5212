//! [`LocalAccountManager`]: the embedded account manager. It enforces [`LimitPolicy`] per
//! platform over a [`LimitLedger`], holds each account for one action at a time (under the
//! caller's [`HoldId`]: a release frees only the hold it names), and turns platform errors into
//! cooldowns or exclusions (SPEC §6).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::LimitPolicy;
use crate::clock::Clock;
use crate::domain::{AccountId, Platform, Target};
use crate::ports::{
    AccountManager, AccountManagerError, AccountState, Allocation, AllocationRequest, Claim,
    DatabaseId, ErrorClass, ErrorReport, HoldId, LimitLedger, RateDecision, RateLimitCheck,
    ReserveRequest, StoreError, UsageStats,
};

/// The embedded account manager.
#[derive(Debug)]
pub struct LocalAccountManager {
    ledger: Arc<dyn LimitLedger>,
    clock: Arc<dyn Clock>,
    policies: HashMap<Platform, LimitPolicy>,
    rng: Mutex<StdRng>,
    /// The accounts held, each with the name of its hold.
    held: Mutex<HashMap<AccountId, Option<HoldId>>>,
}

fn unavailable(e: StoreError) -> AccountManagerError {
    AccountManagerError::Unavailable(e.to_string())
}

impl LocalAccountManager {
    /// A manager with Telegram's default limits for every platform; `seed` makes the random
    /// pauses reproducible.
    pub fn new(ledger: Arc<dyn LimitLedger>, clock: Arc<dyn Clock>, seed: u64) -> Self {
        Self {
            ledger,
            clock,
            policies: HashMap::new(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the limits of one platform.
    pub fn with_policy(mut self, platform: Platform, policy: LimitPolicy) -> Self {
        self.policies.insert(platform, policy);
        self
    }

    /// The limits in force for a platform.
    pub fn policy(&self, platform: Platform) -> LimitPolicy {
        self.policies
            .get(&platform)
            .copied()
            .unwrap_or_else(LimitPolicy::telegram)
    }

    fn draw_pause(&self, policy: &LimitPolicy, check: &RateLimitCheck) -> TimeDelta {
        let (lo, hi) = check
            .kinds
            .iter()
            .map(|&k| {
                let l = policy.limits(k);
                (l.pause_min, l.pause_max)
            })
            .fold((TimeDelta::zero(), TimeDelta::zero()), |(a, b), (c, d)| {
                (a.max(c), b.max(d))
            });
        let (lo, hi) = (
            lo.num_milliseconds(),
            hi.num_milliseconds().max(lo.num_milliseconds()),
        );
        let ms = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(lo..=hi);
        TimeDelta::milliseconds(ms)
    }

    /// The accounts' health as of now (a cooldown that ended is active), from the ledger's
    /// state rows only.
    async fn states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        let now = self.clock.now();
        let states = self.ledger.states(accounts).await.map_err(unavailable)?;
        Ok(states
            .into_iter()
            .map(|state| match state {
                AccountState::CoolingDown { until, .. } if until <= now => AccountState::Active,
                other => other,
            })
            .collect())
    }

    /// The ledger's request for `check` now, with a pause drawn, and the policy it is decided by.
    fn request(&self, check: &RateLimitCheck) -> (ReserveRequest, LimitPolicy) {
        let policy = self.policy(check.platform);
        let request = ReserveRequest {
            account_id: check.account_id.clone(),
            kinds: check.kinds.clone(),
            channel: check.channel.clone(),
            now: self.clock.now(),
            pause_after: self.draw_pause(&policy, check),
        };
        (request, policy)
    }

    async fn state(&self, account: &AccountId) -> Result<AccountState, AccountManagerError> {
        let mut states = self.states(std::slice::from_ref(account)).await?;
        states
            .pop()
            .ok_or_else(|| AccountManagerError::Unavailable("no state read".to_owned()))
    }
}

#[async_trait]
impl AccountManager for LocalAccountManager {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        let mut retry_at = None;
        for account in &request.candidates {
            if self
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(account)
            {
                continue;
            }
            match self.state(account).await? {
                AccountState::Active => {
                    let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                    if let std::collections::hash_map::Entry::Vacant(free) =
                        held.entry(account.clone())
                    {
                        free.insert(request.hold.clone());
                        return Ok(Allocation::Granted(account.clone()));
                    }
                }
                AccountState::CoolingDown { until, .. } => {
                    retry_at = Some(retry_at.map_or(until, |r: chrono::DateTime<_>| r.min(until)));
                }
                AccountState::Dead { .. } => {}
            }
        }
        Ok(Allocation::Unavailable { retry_at })
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        let (request, policy) = self.request(check);
        self.ledger
            .reserve(&request, &policy)
            .await
            .map_err(unavailable)
    }

    fn ledger_database(&self) -> Option<DatabaseId> {
        self.ledger.database()
    }

    async fn check_and_claim(
        &self,
        check: &RateLimitCheck,
        claim: &Claim,
    ) -> Result<(RateDecision, Option<Target>), AccountManagerError> {
        let (request, policy) = self.request(check);
        self.ledger
            .reserve_and_claim(&request, &policy, claim)
            .await
            .map_err(unavailable)
    }

    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError> {
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let another = matches!(
                (held.get(account), &usage.hold),
                (Some(Some(current)), Some(named)) if current != named
            );
            // A late release of an earlier hold leaves the current holder's hold alone.
            if !another {
                held.remove(account);
            }
        }
        match (usage.reservation, usage.performed, usage.performed_at) {
            (Some(reservation), false, _) => self
                .ledger
                .refund(account, reservation)
                .await
                .map_err(unavailable)?,
            (Some(reservation), true, Some(at)) => self
                .ledger
                .performed(account, reservation, at)
                .await
                .map_err(unavailable)?,
            _ => {}
        }
        Ok(())
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        let policy = self.policy(report.platform);
        let now = self.clock.now();
        let state = match report.class {
            // The wait is the platform's word (a FLOOD_WAIT of any size): beyond the
            // representable future the account cools down until the end of time.
            ErrorClass::AccountTemporary => AccountState::CoolingDown {
                until: now
                    .checked_add_signed(report.retry_after.unwrap_or_default())
                    .and_then(|t| t.checked_add_signed(policy.flood_buffer))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
                reason: report.code.clone(),
            },
            ErrorClass::AccountRestricted => AccountState::CoolingDown {
                until: now + policy.restricted_cooldown,
                reason: report.code.clone(),
            },
            ErrorClass::AccountDead => AccountState::Dead {
                reason: report.code.clone(),
            },
            _ => return self.state(account).await,
        };
        self.ledger
            .set_state(account, &state)
            .await
            .map_err(unavailable)?;
        Ok(state)
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        self.state(account).await
    }

    async fn account_states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        self.states(accounts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use crate::memory::MemoryLedger;

    #[tokio::test]
    async fn a_flood_wait_of_any_size_cools_down_without_overflowing() {
        let now: DateTime<Utc> = "2026-01-05T09:00:00Z".parse().unwrap();
        let manager = LocalAccountManager::new(
            Arc::new(MemoryLedger::new()),
            Arc::new(VirtualClock::manual(now)),
            1,
        );
        let account = AccountId::parse("a1").unwrap();
        let report = ErrorReport {
            platform: Platform::Telegram,
            class: ErrorClass::AccountTemporary,
            code: "FLOOD_WAIT".to_owned(),
            message: String::new(),
            retry_after: Some(TimeDelta::MAX),
            task_id: None,
            target_id: None,
        };
        let state = manager.handle_error(&account, &report).await.unwrap();
        assert!(matches!(
            state,
            AccountState::CoolingDown { until, .. } if until == DateTime::<Utc>::MAX_UTC
        ));
    }

    /// Regression: a release arriving after its hold was let go (retried once the manager was
    /// back, or after the reference server's TTL released it) freed whatever hold the account
    /// had then — another caller's — so a third caller was granted the account while the
    /// second still acted on it.
    #[tokio::test]
    async fn a_late_release_frees_only_the_hold_it_names() {
        let now: DateTime<Utc> = "2026-01-05T09:00:00Z".parse().unwrap();
        let manager = LocalAccountManager::new(
            Arc::new(MemoryLedger::new()),
            Arc::new(VirtualClock::manual(now)),
            1,
        );
        let account = AccountId::parse("a1").unwrap();
        let ask = |hold: &str| AllocationRequest {
            user_id: crate::domain::UserId::new(1),
            platform: Platform::Telegram,
            purpose: crate::ports::PURPOSE_INVITE_CAMPAIGN.to_owned(),
            candidates: vec![account.clone()],
            hold: Some(HoldId::new(hold)),
        };
        let release = |hold: &str| UsageStats {
            hold: Some(HoldId::new(hold)),
            ..UsageStats::default()
        };
        let granted = Allocation::Granted(account.clone());
        assert_eq!(
            manager.allocate_account(&ask("first")).await,
            Ok(granted.clone())
        );
        manager
            .release_account(&account, &release("first"))
            .await
            .unwrap();
        assert_eq!(
            manager.allocate_account(&ask("second")).await,
            Ok(granted.clone())
        );
        // The first hold's release again, late: the second hold stays.
        manager
            .release_account(&account, &release("first"))
            .await
            .unwrap();
        assert_eq!(
            manager.allocate_account(&ask("third")).await,
            Ok(Allocation::Unavailable { retry_at: None }),
            "the account is still held by the second caller"
        );
        manager
            .release_account(&account, &release("second"))
            .await
            .unwrap();
        assert_eq!(manager.allocate_account(&ask("third")).await, Ok(granted));
    }
}
