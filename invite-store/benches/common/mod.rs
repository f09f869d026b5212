//! What the PostgreSQL benchmarks share: the administration connection, the task the targets
//! go into, and running `psql` for the `\copy` figures they print beside their own.

use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::Connection;

use invite_core::domain::{Action, GroupRef, NewTask, Platform, Priority, TaskSettings, UserId};

/// An invite task into `@bench_group`.
pub fn bench_task(user: UserId, name: &str) -> NewTask {
    NewTask {
        user_id: user,
        name: name.into(),
        platform: Platform::Telegram,
        priority: Priority::Medium,
        settings: TaskSettings {
            action: Action::Invite {
                group: GroupRef::parse("@bench_group").expect("group"),
            },
            accounts: None,
            add_to_contacts: false,
            dedupe_days: None,
        },
        scheduled_at: None,
    }
}

/// Runs one `psql` command against `url`; its wall time from process start to exit.
pub fn psql(url: &str, sql: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(elapsed)
}

/// The URL of the PostgreSQL server the benchmarks use (`DATABASE_TEST_URL`, else the local
/// server) and a connection to it that creates their databases. `None`, after a `SKIP` line
/// naming `bench`, when it cannot be reached — an error instead with
/// `INVITE_REQUIRE_SERVICES=1`.
pub async fn admin_connection(bench: &str) -> anyhow::Result<Option<(String, sqlx::PgConnection)>> {
    let url = std::env::var("DATABASE_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    match sqlx::PgConnection::connect(&url).await {
        Ok(conn) => Ok(Some((url, conn))),
        Err(e) => {
            anyhow::ensure!(
                std::env::var("INVITE_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "PostgreSQL at {url} is unreachable and INVITE_REQUIRE_SERVICES=1: {e}"
            );
            println!("SKIP {bench}: PostgreSQL at {url} is unreachable ({e})");
            Ok(None)
        }
    }
}
