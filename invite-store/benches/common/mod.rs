//! What the PostgreSQL benchmarks share: the task the targets go into, and running `psql`
//! for the `\copy` figures they print beside their own.

use std::process::Command;
use std::time::{Duration, Instant};

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
