//! What the PostgreSQL benchmarks share: the task the targets go into.

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
