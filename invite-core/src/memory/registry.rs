//! [`MemoryRegistry`]: the account registry in this process's memory (the reference the SQL
//! registries of `invite-store` are tested against).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{AccountId, Platform, UserId};
use crate::ports::{
    AccountPatch, AccountRegistry, NewAccount, RegisteredAccount, Registration, RegistryStatus,
    Resolution, StatusChange, StoreError, StoreResult,
};

#[derive(Debug, Clone)]
struct Row {
    account: RegisteredAccount,
    key_id: String,
    sealed: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    rows: BTreeMap<AccountId, Row>,
    resolutions: BTreeMap<(AccountId, String), Resolution>,
    spends: BTreeMap<(AccountId, String), Vec<DateTime<Utc>>>,
}

/// The account registry in memory.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    inner: Mutex<Inner>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `new` names the same platform user or session key as `row` (what registering
/// twice means on every backend).
fn same_account(
    row_platform: Platform,
    row_user: Option<i64>,
    row_key: &str,
    new: &NewAccount,
) -> bool {
    row_platform == new.platform
        && (row_key == new.key_id || (row_user.is_some() && row_user == new.platform_user_id))
}

#[async_trait]
impl AccountRegistry for MemoryRegistry {
    async fn register(&self, account: NewAccount) -> StoreResult<Registration> {
        let mut inner = self.lock();
        if let Some(row) = inner.rows.values().find(|r| {
            same_account(
                r.account.platform,
                r.account.platform_user_id,
                &r.key_id,
                &account,
            )
        }) {
            return Ok(Registration::Duplicate(row.account.id.clone()));
        }
        if inner.rows.contains_key(&account.id) {
            return Ok(Registration::Duplicate(account.id));
        }
        let registered = RegisteredAccount {
            id: account.id.clone(),
            user_id: account.user_id,
            platform: account.platform,
            label: account.label,
            platform_user_id: account.platform_user_id,
            username: account.username,
            phone_masked: account.phone_masked,
            status: account.status,
            status_until: None,
            status_reason: None,
            created_at: account.created_at,
            last_used_at: None,
        };
        inner.rows.insert(
            account.id,
            Row {
                account: registered.clone(),
                key_id: account.key_id,
                sealed: account.sealed,
            },
        );
        Ok(Registration::Added(registered))
    }

    async fn registered(
        &self,
        user: UserId,
        platform: Option<Platform>,
    ) -> StoreResult<Vec<RegisteredAccount>> {
        let inner = self.lock();
        let mut rows: Vec<&Row> = inner
            .rows
            .values()
            .filter(|r| r.account.user_id == user)
            .filter(|r| platform.is_none_or(|p| r.account.platform == p))
            .collect();
        rows.sort_by(|a, b| {
            (a.account.created_at, &a.account.id).cmp(&(b.account.created_at, &b.account.id))
        });
        Ok(rows.into_iter().map(|r| r.account.clone()).collect())
    }

    async fn registered_account(
        &self,
        user: UserId,
        id: &AccountId,
    ) -> StoreResult<RegisteredAccount> {
        self.lock()
            .rows
            .get(id)
            .filter(|r| r.account.user_id == user)
            .map(|r| r.account.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn sealed(&self, id: &AccountId) -> StoreResult<Vec<u8>> {
        self.lock()
            .rows
            .get(id)
            .map(|r| r.sealed.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn update(
        &self,
        user: UserId,
        id: &AccountId,
        patch: &AccountPatch,
    ) -> StoreResult<RegisteredAccount> {
        let mut inner = self.lock();
        let row = inner
            .rows
            .get_mut(id)
            .filter(|r| r.account.user_id == user)
            .ok_or(StoreError::NotFound)?;
        let a = &mut row.account;
        if let Some(label) = &patch.label {
            a.label.clone_from(label);
        }
        match patch.enabled {
            Some(false) => {
                a.status = RegistryStatus::Disabled;
                a.status_until = None;
                a.status_reason = None;
            }
            Some(true) if a.status == RegistryStatus::Disabled => {
                a.status = RegistryStatus::Active;
            }
            _ => {}
        }
        Ok(a.clone())
    }

    async fn set_status(&self, id: &AccountId, change: &StatusChange) -> StoreResult<()> {
        let mut inner = self.lock();
        let Some(row) = inner.rows.get_mut(id) else {
            return Ok(());
        };
        let a = &mut row.account;
        if a.status != RegistryStatus::Disabled {
            a.status = change.status;
            a.status_until = change.until;
            a.status_reason.clone_from(&change.reason);
        }
        Ok(())
    }

    async fn touch(&self, id: &AccountId, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some(row) = self.lock().rows.get_mut(id) {
            row.account.last_used_at = Some(at);
            if row.account.status == RegistryStatus::Unverified {
                row.account.status = RegistryStatus::Active;
            }
        }
        Ok(())
    }

    async fn remove(&self, user: UserId, id: &AccountId) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.rows.get(id) {
            Some(r) if r.account.user_id == user => {
                inner.rows.remove(id);
                inner.resolutions.retain(|(a, _), _| a != id);
                inner.spends.retain(|(a, _), _| a != id);
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn save_resolution(
        &self,
        account: &AccountId,
        resolution: &Resolution,
    ) -> StoreResult<()> {
        self.lock().resolutions.insert(
            (account.clone(), resolution.key.clone()),
            resolution.clone(),
        );
        Ok(())
    }

    async fn resolutions(&self, account: &AccountId) -> StoreResult<Vec<Resolution>> {
        Ok(self
            .lock()
            .resolutions
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn record_spend(
        &self,
        account: &AccountId,
        budget: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let uses = inner
            .spends
            .entry((account.clone(), budget.to_owned()))
            .or_default();
        uses.retain(|t| *t >= at - chrono::TimeDelta::days(2));
        uses.push(at);
        uses.sort_unstable();
        Ok(())
    }

    async fn spends_since(
        &self,
        account: &AccountId,
        budget: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>> {
        Ok(self
            .lock()
            .spends
            .get(&(account.clone(), budget.to_owned()))
            .map(|uses| uses.iter().copied().filter(|t| *t >= since).collect())
            .unwrap_or_default())
    }
}
