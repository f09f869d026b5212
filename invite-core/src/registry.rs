//! The account registry at work in embedded mode: [`RegistryDirectory`] lists a user's
//! registered accounts as the engine's [`AccountDirectory`], and [`RegistryTracking`] wraps
//! the [`AccountManager`] so that what the engine learns from the platform (flood waits,
//! PEER_FLOOD, a dead session) shows in the registry's status, and each use in `last_used_at`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use tracing::warn;

use crate::clock::Clock;
use crate::domain::{AccountId, Platform, UserId};
use crate::ports::{
    AccountDirectory, AccountInfo, AccountManager, AccountManagerError, AccountRegistry,
    AccountState, Allocation, AllocationRequest, DirectoryError, ErrorClass, ErrorReport,
    RateDecision, RateLimitCheck, RegistryStatus, StatusChange, UsageStats,
};

/// The registry's accounts for `platform`; every other platform is asked of `others`.
#[derive(Debug, Clone)]
pub struct RegistryDirectory {
    registry: Arc<dyn AccountRegistry>,
    platform: Platform,
    others: Arc<dyn AccountDirectory>,
}

impl RegistryDirectory {
    /// Registered accounts for `platform`, `others` for the rest.
    pub fn new(
        registry: Arc<dyn AccountRegistry>,
        platform: Platform,
        others: Arc<dyn AccountDirectory>,
    ) -> Self {
        Self {
            registry,
            platform,
            others,
        }
    }
}

#[async_trait]
impl AccountDirectory for RegistryDirectory {
    async fn accounts(
        &self,
        user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError> {
        if platform != self.platform {
            return self.others.accounts(user, platform).await;
        }
        let accounts = self
            .registry
            .registered(user, Some(platform))
            .await
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
        Ok(accounts
            .into_iter()
            .map(|a| AccountInfo {
                display_name: a
                    .label
                    .clone()
                    .or_else(|| a.username.as_ref().map(|u| format!("@{u}"))),
                active: a.status.is_usable(),
                id: a.id,
                platform,
            })
            .collect())
    }
}

/// The registry status an error report leads to, if it changes one.
pub fn status_after(report: &ErrorReport, state: &AccountState) -> Option<StatusChange> {
    let reason = Some(report.code.clone());
    match (report.class, state) {
        (ErrorClass::AccountDead, _) => Some(StatusChange {
            status: if report.code == "FROZEN_METHOD_INVALID" {
                RegistryStatus::Frozen
            } else {
                RegistryStatus::Dead
            },
            until: None,
            reason,
        }),
        (ErrorClass::AccountRestricted, AccountState::CoolingDown { until, .. }) => {
            Some(StatusChange {
                status: RegistryStatus::SpamLimited,
                until: Some(*until),
                reason,
            })
        }
        (ErrorClass::AccountTemporary, AccountState::CoolingDown { until, .. }) => {
            Some(StatusChange {
                status: RegistryStatus::CoolingDown,
                until: Some(*until),
                reason,
            })
        }
        _ => None,
    }
}

/// An [`AccountManager`] that also keeps the registry's status and last use of the accounts
/// of `platform`.
#[derive(Debug, Clone)]
pub struct RegistryTracking {
    inner: Arc<dyn AccountManager>,
    registry: Arc<dyn AccountRegistry>,
    platform: Platform,
    clock: Arc<dyn Clock>,
}

impl RegistryTracking {
    /// Wraps `inner`.
    pub fn new(
        inner: Arc<dyn AccountManager>,
        registry: Arc<dyn AccountRegistry>,
        platform: Platform,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            registry,
            platform,
            clock,
        }
    }
}

#[async_trait]
impl AccountManager for RegistryTracking {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        if request.platform == self.platform {
            // An account its owner disabled or removed (or one found dead, frozen) takes no
            // work, whatever lanes it already has; it is asked again later (it may be enabled,
            // or added again: an account's id follows from its session key).
            for account in &request.candidates {
                let usable = match self
                    .registry
                    .registered_account(request.user_id, account)
                    .await
                {
                    Ok(a) => a.status.is_usable(),
                    Err(crate::ports::StoreError::NotFound) => false,
                    Err(e) => return Err(AccountManagerError::Unavailable(e.to_string())),
                };
                if !usable {
                    return Ok(Allocation::Unavailable {
                        retry_at: Some(self.clock.now() + chrono::TimeDelta::minutes(1)),
                    });
                }
            }
        }
        self.inner.allocate_account(request).await
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        self.inner.check_rate_limit(check).await
    }

    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError> {
        self.inner.release_account(account, usage).await?;
        if usage.performed {
            let at = usage.performed_at.unwrap_or_else(|| self.clock.now());
            match self.registry.touch(account, at).await {
                Ok(()) | Err(crate::ports::StoreError::NotFound) => {}
                Err(e) => {
                    warn!(account.id = %account, error = %e, "last use of account {account} not recorded")
                }
            }
        }
        Ok(())
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        let state = self.inner.handle_error(account, report).await?;
        if report.platform == self.platform
            && let Some(change) = status_after(report, &state)
        {
            match self.registry.set_status(account, &change).await {
                Ok(()) | Err(crate::ports::StoreError::NotFound) => {}
                Err(e) => {
                    warn!(account.id = %account, error = %e, "status of account {account} not recorded")
                }
            }
        }
        Ok(state)
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        self.inner.account_state(account).await
    }

    async fn account_states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        self.inner.account_states(accounts).await
    }

    fn ledger_database(&self) -> Option<crate::ports::DatabaseId> {
        self.inner.ledger_database()
    }

    async fn check_and_claim(
        &self,
        check: &RateLimitCheck,
        claim: &crate::ports::Claim,
    ) -> Result<(RateDecision, Option<crate::domain::Target>), AccountManagerError> {
        self.inner.check_and_claim(check, claim).await
    }
}

/// Whether a timed status is over at `now` (the API shows such an account as active).
pub fn effective_status(
    status: RegistryStatus,
    until: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> RegistryStatus {
    match (status, until) {
        (RegistryStatus::CoolingDown | RegistryStatus::SpamLimited, Some(u)) if u <= now => {
            RegistryStatus::Active
        }
        (s, _) => s,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::clock::VirtualClock;
    use crate::domain::TaskId;
    use crate::limits::LocalAccountManager;
    use crate::memory::{MemoryLedger, MemoryRegistry, StaticDirectory};
    use crate::ports::{NewAccount, Registration};

    fn report(class: ErrorClass, code: &str, retry: Option<i64>) -> ErrorReport {
        ErrorReport {
            platform: Platform::Telegram,
            class,
            code: code.to_owned(),
            message: code.to_owned(),
            retry_after: retry.map(TimeDelta::seconds),
            task_id: Some(TaskId::new(1)),
            target_id: None,
        }
    }

    async fn registered(registry: &MemoryRegistry, id: &str, at: chrono::DateTime<Utc>) {
        let added = registry
            .register(NewAccount {
                id: AccountId::parse(id).unwrap(),
                user_id: UserId::new(7),
                platform: Platform::Telegram,
                label: None,
                platform_user_id: None,
                username: Some("alice_acc".to_owned()),
                phone_masked: None,
                key_id: format!("key-{id}"),
                sealed: vec![1, 2, 3],
                status: RegistryStatus::Active,
                created_at: at,
            })
            .await
            .unwrap();
        assert!(matches!(added, Registration::Added(_)));
    }

    #[tokio::test]
    async fn engine_errors_move_registry_statuses() {
        let clock = Arc::new(VirtualClock::manual(
            "2026-03-02T09:00:00Z".parse().unwrap(),
        ));
        let now = clock.now();
        let registry = Arc::new(MemoryRegistry::new());
        for id in ["tg-a", "tg-b", "tg-c", "tg-d"] {
            registered(&registry, id, now).await;
        }
        let manager = LocalAccountManager::new(Arc::new(MemoryLedger::new()), clock.clone(), 1);
        let tracking = RegistryTracking::new(
            Arc::new(manager),
            registry.clone(),
            Platform::Telegram,
            clock.clone(),
        );
        let id = |s: &str| AccountId::parse(s).unwrap();
        tracking
            .handle_error(
                &id("tg-a"),
                &report(ErrorClass::AccountTemporary, "FLOOD_WAIT_X", Some(600)),
            )
            .await
            .unwrap();
        tracking
            .handle_error(
                &id("tg-b"),
                &report(ErrorClass::AccountRestricted, "PEER_FLOOD", None),
            )
            .await
            .unwrap();
        tracking
            .handle_error(
                &id("tg-c"),
                &report(ErrorClass::AccountDead, "AUTH_KEY_UNREGISTERED", None),
            )
            .await
            .unwrap();
        tracking
            .handle_error(
                &id("tg-d"),
                &report(ErrorClass::AccountDead, "FROZEN_METHOD_INVALID", None),
            )
            .await
            .unwrap();
        let user = UserId::new(7);
        let get = |s: &'static str| {
            let registry = registry.clone();
            async move { registry.registered_account(user, &id(s)).await.unwrap() }
        };
        let a = get("tg-a").await;
        assert_eq!(a.status, RegistryStatus::CoolingDown);
        assert!(a.status_until.unwrap() >= now + TimeDelta::seconds(600));
        let b = get("tg-b").await;
        assert_eq!(b.status, RegistryStatus::SpamLimited);
        assert!(b.status_until.unwrap() >= now + TimeDelta::hours(23));
        assert_eq!(b.status_reason.as_deref(), Some("PEER_FLOOD"));
        let c = get("tg-c").await;
        assert_eq!(c.status, RegistryStatus::Dead);
        assert_eq!(c.status_reason.as_deref(), Some("AUTH_KEY_UNREGISTERED"));
        assert_eq!(get("tg-d").await.status, RegistryStatus::Frozen);

        // The directory: dead and frozen accounts are not offered to tasks.
        let directory = RegistryDirectory::new(
            registry.clone(),
            Platform::Telegram,
            Arc::new(StaticDirectory::new()),
        );
        let listed = directory.accounts(user, Platform::Telegram).await.unwrap();
        let active: Vec<&str> = listed
            .iter()
            .filter(|a| a.active)
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(active, ["tg-a", "tg-b"]);
        assert_eq!(listed[0].display_name.as_deref(), Some("@alice_acc"));
        assert!(
            directory
                .accounts(user, Platform::Sandbox)
                .await
                .unwrap()
                .is_empty()
        );
        // A disabled account is not allocated (its lanes stay, and it is asked again later).
        registry
            .update(
                user,
                &id("tg-a"),
                &crate::ports::AccountPatch {
                    label: None,
                    enabled: Some(false),
                },
            )
            .await
            .unwrap();
        let ask = |s: &str| AllocationRequest {
            user_id: user,
            platform: Platform::Telegram,
            purpose: "invite_campaign".to_owned(),
            candidates: vec![id(s)],
            hold: None,
        };
        assert!(matches!(
            tracking.allocate_account(&ask("tg-a")).await.unwrap(),
            Allocation::Unavailable { retry_at: Some(_) }
        ));
        registered(&registry, "tg-e", now).await;
        assert!(matches!(
            tracking.allocate_account(&ask("tg-e")).await.unwrap(),
            Allocation::Granted(_)
        ));
        // Nor is one its owner removed (its lanes stay too).
        registered(&registry, "tg-f", now).await;
        registry.remove(user, &id("tg-f")).await.unwrap();
        assert!(matches!(
            tracking.allocate_account(&ask("tg-f")).await.unwrap(),
            Allocation::Unavailable { retry_at: Some(_) }
        ));
        // A timed status is over once its time passed.
        assert_eq!(
            effective_status(a.status, a.status_until, now + TimeDelta::hours(1)),
            RegistryStatus::Active
        );
    }
}
