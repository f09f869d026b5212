#![doc = include_str!("../README.md")]

mod error;
#[macro_use]
mod forward;
mod model;
pub mod postgres;
mod registry;
mod sandbox_world;
pub mod seal;
pub mod sqlite;
#[cfg(feature = "test-util")]
pub mod test_util;

use std::sync::Arc;
use std::time::Duration;

use invite_core::ports::{AccountLeases, AccountRegistry, LimitLedger, SuppressionList, TaskStore};
use invite_core::sandbox::SandboxWorld;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

pub use error::{Error, Result};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use sqlx;

/// Connection pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most connections open at once (a SQLite memory database always uses one).
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a caller waits for a connection before the store reports itself unavailable;
    /// also SQLite's busy timeout.
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Which database a [`Stores`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// A database pool of either backend, to run the migrations on.
#[derive(Debug, Clone)]
pub enum DbPool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

impl DbPool {
    /// The backend.
    pub fn backend(&self) -> Backend {
        match self {
            DbPool::Postgres(_) => Backend::Postgres,
            DbPool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Closes every connection (waits for connections in use to come back).
    pub async fn close(&self) {
        match self {
            DbPool::Postgres(pool) => pool.close().await,
            DbPool::Sqlite(pool) => pool.close().await,
        }
    }
}

impl From<&PgPool> for DbPool {
    fn from(pool: &PgPool) -> Self {
        DbPool::Postgres(pool.clone())
    }
}

impl From<&SqlitePool> for DbPool {
    fn from(pool: &SqlitePool) -> Self {
        DbPool::Sqlite(pool.clone())
    }
}

impl From<&Stores> for DbPool {
    fn from(stores: &Stores) -> Self {
        stores.pool.clone()
    }
}

/// Applies the backend's embedded migrations (`migrations/postgres` or `migrations/sqlite`).
///
/// Idempotent, and safe when several processes start at once. The embedder decides when to run
/// it; the binaries run it at start-up:
///
/// ```no_run
/// # async fn run() -> invite_store::Result<()> {
/// let stores = invite_store::connect("sqlite://invite.db", Default::default()).await?;
/// invite_store::migrate(&stores).await?;
/// # Ok(()) }
/// ```
pub async fn migrate(pool: impl Into<DbPool>) -> Result<()> {
    match pool.into() {
        DbPool::Postgres(pool) => postgres::migrate(&pool).await,
        DbPool::Sqlite(pool) => sqlite::migrate(&pool).await,
    }
}

/// The persistence ports, backed by one database.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Tasks, targets, lanes and logs.
    pub tasks: Arc<dyn TaskStore>,
    /// The local account manager's ledger.
    pub ledger: Arc<dyn LimitLedger>,
    /// The do-not-contact list.
    pub suppression: Arc<dyn SuppressionList>,
    /// Account leases.
    pub leases: Arc<dyn AccountLeases>,
    /// Registered accounts (embedded mode), their status and sealed secrets.
    pub registry: Arc<dyn AccountRegistry>,
    /// The sandbox platform's world: group memberships and delivered messages.
    pub sandbox: Arc<dyn SandboxWorld>,
    pool: DbPool,
}

impl Stores {
    fn from_store<S>(store: S, pool: DbPool) -> Self
    where
        S: TaskStore
            + LimitLedger
            + SuppressionList
            + AccountLeases
            + AccountRegistry
            + SandboxWorld
            + 'static,
    {
        let store = Arc::new(store);
        Self {
            tasks: store.clone(),
            ledger: store.clone(),
            suppression: store.clone(),
            leases: store.clone(),
            registry: store.clone(),
            sandbox: store,
            pool,
        }
    }

    /// The pool behind the stores.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Applies the migrations (see [`migrate`]).
    pub async fn migrate(&self) -> Result<()> {
        migrate(self).await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl From<PgStore> for Stores {
    fn from(store: PgStore) -> Self {
        let pool = DbPool::from(store.pool());
        Self::from_store(store, pool)
    }
}

impl From<SqliteStore> for Stores {
    fn from(store: SqliteStore) -> Self {
        let pool = DbPool::from(store.pool());
        Self::from_store(store, pool)
    }
}

/// Opens the database named by `database_url` (the value of `DATABASE_URL`): `postgres://…` or
/// `postgresql://…` for PostgreSQL, `sqlite:…` (`sqlite://invite.db`, `sqlite::memory:`) for
/// SQLite. This is the one place that picks a backend. It does not migrate: call
/// [`migrate`] (or [`Stores::migrate`]) when the embedder wants to.
///
/// Errors name `DATABASE_URL` (with any password masked) when the URL is malformed, of an
/// unknown scheme, or the database cannot be reached.
pub async fn connect(database_url: &str, pool: PoolConfig) -> Result<Stores> {
    let url = database_url.trim();
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let stores = match scheme.as_str() {
        "postgres" | "postgresql" if url.contains("://") => {
            Stores::from(PgStore::connect(url, &pool).await?)
        }
        "sqlite" => Stores::from(SqliteStore::connect(url, &pool).await?),
        _ => {
            return Err(Error::UnsupportedUrl {
                url: error::redact_url(url),
            });
        }
    };
    tracing::debug!(backend = ?stores.backend(), "database connected");
    Ok(stores)
}
