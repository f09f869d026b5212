//! Databases for tests of this and other crates (feature `test-util`): a fresh PostgreSQL
//! database per test on the server named by `DATABASE_TEST_URL`, dropped afterwards.
//!
//! When the server is unreachable a test is skipped with a printed line — unless
//! `INVITE_REQUIRE_SERVICES=1` (set by CI), where it fails.

use std::time::Duration;

use sqlx::Connection;

/// The server tests use (`DATABASE_TEST_URL`, default the local one).
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether a missing service fails the run (CI) instead of skipping.
pub fn services_required() -> bool {
    std::env::var("INVITE_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A name part no other test (or test process) uses.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// An admin connection to the test server; `None` (after a skip line) when it is unreachable
/// and services are not required.
///
/// # Panics
/// When the server is unreachable and `INVITE_REQUIRE_SERVICES=1`.
pub async fn postgres_admin() -> Option<sqlx::PgConnection> {
    let url = postgres_admin_url();
    let attempt =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await;
    match attempt {
        Ok(Ok(conn)) => Some(conn),
        failure => {
            let why = match failure {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            assert!(
                !services_required(),
                "PostgreSQL at DATABASE_TEST_URL ({url}) is unreachable and \
                 INVITE_REQUIRE_SERVICES=1: {why}"
            );
            println!("SKIP postgres: {url} is unreachable ({why})");
            None
        }
    }
}

/// A fresh PostgreSQL database, dropped by [`PostgresDatabase::drop_database`].
#[derive(Debug)]
pub struct PostgresDatabase {
    /// Name of the database.
    pub name: String,
    /// URL of the database.
    pub url: String,
    admin: sqlx::PgConnection,
}

impl PostgresDatabase {
    /// Creates `invite_test_<random>`; `None` when the server is unreachable and services are
    /// not required.
    ///
    /// # Panics
    /// When the server is unreachable and `INVITE_REQUIRE_SERVICES=1`, or refuses to create it.
    pub async fn create() -> Option<Self> {
        let mut admin = postgres_admin().await?;
        let name = format!("invite_test_{}", random_suffix());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = with_database(&postgres_admin_url(), &name);
        Some(Self { name, url, admin })
    }

    /// Drops the database (closing other connections to it).
    pub async fn drop_database(mut self) {
        let dropped = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut self.admin)
        .await;
        if let Err(e) = dropped {
            println!("could not drop {}: {e}", self.name);
        }
    }
}
