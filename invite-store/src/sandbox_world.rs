//! The sandbox platform's world ([`SandboxWorld`]) in the database, so that an embedded restart
//! settles uncertain invites and resent messages against what the sandbox really delivered.
//!
//! Tables `invite_sandbox_members` and `invite_sandbox_messages` (migration
//! `20261202000002_sandbox_world`). Each write is one `INSERT … ON CONFLICT DO NOTHING`, and
//! whether it inserted a row says whether the membership or delivery is new. The statements are
//! the same on both backends; only the pool type differs.

use invite_core::async_trait;
use invite_core::domain::AccountId;
use invite_core::ports::StoreResult;
use invite_core::sandbox::SandboxWorld;

use crate::error::Error;
use crate::{PgStore, SqliteStore};

const ADD_MEMBER: &str = "INSERT INTO invite_sandbox_members (channel, person) VALUES ($1, $2) \
     ON CONFLICT (channel, person) DO NOTHING";

const IS_MEMBER: &str = "SELECT 1 FROM invite_sandbox_members WHERE channel = $1 AND person = $2";

const RECORD_DELIVERY: &str = "INSERT INTO invite_sandbox_messages (account_id, random_id) \
     VALUES ($1, $2) ON CONFLICT (account_id, random_id) DO NOTHING";

/// Implements `SandboxWorld` for `$store` (a type with `pool()`) with the shared statements.
macro_rules! sandbox_world {
    ($store:ty) => {
        #[async_trait]
        impl SandboxWorld for $store {
            async fn add_member(&self, channel: &str, person: &str) -> StoreResult<bool> {
                let done = sqlx::query(ADD_MEMBER)
                    .bind(channel)
                    .bind(person)
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(done.rows_affected() == 1)
            }

            async fn is_member(&self, channel: &str, person: &str) -> StoreResult<bool> {
                let row = sqlx::query(IS_MEMBER)
                    .bind(channel)
                    .bind(person)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(row.is_some())
            }

            async fn record_delivery(
                &self,
                account: &AccountId,
                random_id: i64,
            ) -> StoreResult<bool> {
                let done = sqlx::query(RECORD_DELIVERY)
                    .bind(account.as_str())
                    .bind(random_id)
                    .execute(self.pool())
                    .await
                    .map_err(Error::from)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

sandbox_world!(PgStore);
sandbox_world!(SqliteStore);
