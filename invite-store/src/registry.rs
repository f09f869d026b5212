//! The account registry ([`AccountRegistry`]) in the database: table `invite_accounts`
//! (migration `20261202300000_accounts`).
//!
//! The statements are the same on both backends (times are stored as microseconds since the
//! epoch for that reason); only the pool type differs. Registering is one
//! `INSERT … ON CONFLICT DO NOTHING`: when it inserts nothing, the account that holds the same
//! key or platform user is looked up and named.

use chrono::{DateTime, Utc};
use invite_core::async_trait;
use invite_core::domain::{AccountId, Platform, UserId};
use invite_core::ports::{
    AccountPatch, AccountRegistry, NewAccount, RegisteredAccount, Registration, RegistryStatus,
    Resolution, StatusChange, StoreError, StoreResult,
};

use crate::error::Error;
use crate::{PgStore, SqliteStore};

const COLUMNS: &str = "id, user_id, platform, label, platform_user_id, username, phone_masked, \
     status, status_until, status_reason, created_at, last_used_at";

const INSERT: &str = "INSERT INTO invite_accounts (id, user_id, platform, label, \
     platform_user_id, username, phone_masked, key_id, sealed, status, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING";

const HOLDER: &str = "SELECT id FROM invite_accounts WHERE id = $1 \
     OR (platform = $2 AND (key_id = $3 OR platform_user_id = $4)) ORDER BY id LIMIT 1";

const SET_LABEL: &str = "UPDATE invite_accounts SET label = $3 WHERE id = $1 AND user_id = $2";

const DISABLE: &str = "UPDATE invite_accounts SET status = 'disabled', status_until = NULL, \
     status_reason = NULL WHERE id = $1 AND user_id = $2";

const ENABLE: &str = "UPDATE invite_accounts SET status = 'active' \
     WHERE id = $1 AND user_id = $2 AND status = 'disabled'";

const SET_STATUS: &str = "UPDATE invite_accounts SET status = $2, status_until = $3, \
     status_reason = $4 WHERE id = $1 AND status <> 'disabled'";

const TOUCH: &str = "UPDATE invite_accounts SET last_used_at = $2, \
     status = CASE WHEN status = 'unverified' THEN 'active' ELSE status END WHERE id = $1";

const SEALED: &str = "SELECT sealed FROM invite_accounts WHERE id = $1";

const DELETE: &str = "DELETE FROM invite_accounts WHERE id = $1 AND user_id = $2";

const DELETE_RESOLUTIONS: &str = "DELETE FROM invite_account_resolutions WHERE account_id = $1";

const DELETE_SPENDS: &str = "DELETE FROM invite_account_spends WHERE account_id = $1";

const SAVE_RESOLUTION: &str = "INSERT INTO invite_account_resolutions \
     (account_id, subject, peer_id, access_hash, resolved_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (account_id, subject) DO UPDATE SET peer_id = excluded.peer_id, \
     access_hash = excluded.access_hash, resolved_at = excluded.resolved_at";

const RESOLUTIONS: &str = "SELECT subject, peer_id, access_hash, resolved_at \
     FROM invite_account_resolutions WHERE account_id = $1";

const FORGET_SPENDS: &str =
    "DELETE FROM invite_account_spends WHERE account_id = $1 AND budget = $2 AND at < $3";

const RECORD_SPEND: &str =
    "INSERT INTO invite_account_spends (account_id, budget, at) VALUES ($1, $2, $3)";

const SPENDS: &str = "SELECT at FROM invite_account_spends \
     WHERE account_id = $1 AND budget = $2 AND at >= $3 ORDER BY at";

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(what: &str, v: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| Error::Corrupt(format!("{what}: {v}")))
}

/// A row of `invite_accounts` without its secrets.
#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    user_id: i64,
    platform: String,
    label: Option<String>,
    platform_user_id: Option<i64>,
    username: Option<String>,
    phone_masked: Option<String>,
    status: String,
    status_until: Option<i64>,
    status_reason: Option<String>,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<AccountRow> for RegisteredAccount {
    type Error = Error;

    fn try_from(r: AccountRow) -> Result<Self, Error> {
        let corrupt = |e: String| Error::Corrupt(e);
        Ok(RegisteredAccount {
            id: AccountId::parse(r.id).map_err(|e| corrupt(e.to_string()))?,
            user_id: UserId::new(r.user_id),
            platform: r
                .platform
                .parse::<Platform>()
                .map_err(|e| corrupt(e.to_string()))?,
            label: r.label,
            platform_user_id: r.platform_user_id,
            username: r.username,
            phone_masked: r.phone_masked,
            status: r.status.parse::<RegistryStatus>().map_err(corrupt)?,
            status_until: r
                .status_until
                .map(|v| from_micros("status_until", v))
                .transpose()?,
            status_reason: r.status_reason,
            created_at: from_micros("created_at", r.created_at)?,
            last_used_at: r
                .last_used_at
                .map(|v| from_micros("last_used_at", v))
                .transpose()?,
        })
    }
}

fn rows_into(rows: Vec<AccountRow>) -> StoreResult<Vec<RegisteredAccount>> {
    rows.into_iter()
        .map(|r| RegisteredAccount::try_from(r).map_err(StoreError::from))
        .collect()
}

/// Implements `AccountRegistry` for `$store` (a type with `pool()`) with the shared statements.
macro_rules! account_registry {
    ($store:ty) => {
        #[async_trait]
        impl AccountRegistry for $store {
            async fn register(&self, a: NewAccount) -> StoreResult<Registration> {
                let done = sqlx::query(INSERT)
                    .bind(a.id.as_str())
                    .bind(a.user_id.get())
                    .bind(a.platform.as_str())
                    .bind(a.label.as_deref())
                    .bind(a.platform_user_id)
                    .bind(a.username.as_deref())
                    .bind(a.phone_masked.as_deref())
                    .bind(a.key_id.as_str())
                    .bind(a.sealed.as_slice())
                    .bind(a.status.as_str())
                    .bind(micros(a.created_at))
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                if done.rows_affected() == 1 {
                    return self
                        .registered_account(a.user_id, &a.id)
                        .await
                        .map(Registration::Added);
                }
                let holder: String = sqlx::query_scalar(HOLDER)
                    .bind(a.id.as_str())
                    .bind(a.platform.as_str())
                    .bind(a.key_id.as_str())
                    .bind(a.platform_user_id)
                    .fetch_one(self.pool())
                    .await
                    .map_err(Error::from)?;
                let id = AccountId::parse(holder)
                    .map_err(|e| StoreError::from(Error::Corrupt(e.to_string())))?;
                Ok(Registration::Duplicate(id))
            }

            async fn registered(
                &self,
                user: UserId,
                platform: Option<Platform>,
            ) -> StoreResult<Vec<RegisteredAccount>> {
                let sql = format!(
                    "SELECT {COLUMNS} FROM invite_accounts WHERE user_id = $1 \
                     AND ($2 IS NULL OR platform = $2) ORDER BY created_at, id"
                );
                let rows: Vec<AccountRow> = sqlx::query_as(&sql)
                    .bind(user.get())
                    .bind(platform.map(Platform::as_str))
                    .fetch_all(self.pool())
                    .await
                    .map_err(Error::from)?;
                rows_into(rows)
            }

            async fn registered_account(
                &self,
                user: UserId,
                id: &AccountId,
            ) -> StoreResult<RegisteredAccount> {
                let sql =
                    format!("SELECT {COLUMNS} FROM invite_accounts WHERE id = $1 AND user_id = $2");
                let row: Option<AccountRow> = sqlx::query_as(&sql)
                    .bind(id.as_str())
                    .bind(user.get())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(Error::from)?;
                let row = row.ok_or(StoreError::NotFound)?;
                Ok(RegisteredAccount::try_from(row)?)
            }

            async fn sealed(&self, id: &AccountId) -> StoreResult<Vec<u8>> {
                let sealed: Option<Vec<u8>> = sqlx::query_scalar(SEALED)
                    .bind(id.as_str())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(Error::from)?;
                sealed.ok_or(StoreError::NotFound)
            }

            async fn update(
                &self,
                user: UserId,
                id: &AccountId,
                patch: &AccountPatch,
            ) -> StoreResult<RegisteredAccount> {
                if let Some(label) = &patch.label {
                    sqlx::query(SET_LABEL)
                        .bind(id.as_str())
                        .bind(user.get())
                        .bind(label.as_deref())
                        .execute(self.pool())
                        .await
                        .map_err(Error::from)?;
                }
                if let Some(enabled) = patch.enabled {
                    sqlx::query(if enabled { ENABLE } else { DISABLE })
                        .bind(id.as_str())
                        .bind(user.get())
                        .execute(self.pool())
                        .await
                        .map_err(Error::from)?;
                }
                self.registered_account(user, id).await
            }

            async fn set_status(&self, id: &AccountId, change: &StatusChange) -> StoreResult<()> {
                sqlx::query(SET_STATUS)
                    .bind(id.as_str())
                    .bind(change.status.as_str())
                    .bind(change.until.map(micros))
                    .bind(change.reason.as_deref())
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(())
            }

            async fn touch(&self, id: &AccountId, at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(TOUCH)
                    .bind(id.as_str())
                    .bind(micros(at))
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(())
            }

            async fn remove(&self, user: UserId, id: &AccountId) -> StoreResult<()> {
                let done = sqlx::query(DELETE)
                    .bind(id.as_str())
                    .bind(user.get())
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                for sql in [DELETE_RESOLUTIONS, DELETE_SPENDS] {
                    sqlx::query(sql)
                        .bind(id.as_str())
                        .execute(self.pool())
                        .await
                        .map_err(Error::from)?;
                }
                Ok(())
            }

            async fn save_resolution(
                &self,
                account: &AccountId,
                resolution: &Resolution,
            ) -> StoreResult<()> {
                sqlx::query(SAVE_RESOLUTION)
                    .bind(account.as_str())
                    .bind(resolution.key.as_str())
                    .bind(resolution.peer_id)
                    .bind(resolution.access_hash)
                    .bind(micros(resolution.resolved_at))
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(())
            }

            async fn resolutions(&self, account: &AccountId) -> StoreResult<Vec<Resolution>> {
                let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(RESOLUTIONS)
                    .bind(account.as_str())
                    .fetch_all(self.pool())
                    .await
                    .map_err(Error::from)?;
                rows.into_iter()
                    .map(|(key, peer_id, access_hash, at)| {
                        Ok(Resolution {
                            key,
                            peer_id,
                            access_hash,
                            resolved_at: from_micros("resolved_at", at)?,
                        })
                    })
                    .collect()
            }

            async fn record_spend(
                &self,
                account: &AccountId,
                budget: &str,
                at: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(FORGET_SPENDS)
                    .bind(account.as_str())
                    .bind(budget)
                    .bind(micros(at - chrono::TimeDelta::days(2)))
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                sqlx::query(RECORD_SPEND)
                    .bind(account.as_str())
                    .bind(budget)
                    .bind(micros(at))
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(())
            }

            async fn spends_since(
                &self,
                account: &AccountId,
                budget: &str,
                since: DateTime<Utc>,
            ) -> StoreResult<Vec<DateTime<Utc>>> {
                let rows: Vec<i64> = sqlx::query_scalar(SPENDS)
                    .bind(account.as_str())
                    .bind(budget)
                    .bind(micros(since))
                    .fetch_all(self.pool())
                    .await
                    .map_err(Error::from)?;
                rows.into_iter()
                    .map(|at| Ok(from_micros("at", at)?))
                    .collect()
            }
        }
    };
}

account_registry!(PgStore);
account_registry!(SqliteStore);
