//! Fixed values and builders the suites share.

use chrono::{DateTime, TimeDelta, Utc};

use super::harness::Subject;
use crate::domain::{
    AccountId, Action, ExecutionStatus, GroupRef, NewExecutionLog, NewTarget, NewTask, Outcome,
    Platform, Priority, Target, TargetIdentifier, TaskEvent, TaskId, TaskSettings, UserId,
};
use crate::ports::{Claim, ClaimStage, OutcomeRecord, TaskStore};

/// A fixed instant: tests never read the clock.
pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub(crate) const ALICE: UserId = UserId::new(1001);
pub(crate) const BOB: UserId = UserId::new(2002);

pub(crate) fn acc(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

pub(crate) fn ident(input: &str) -> TargetIdentifier {
    TargetIdentifier::parse(input, Platform::Telegram, &Default::default()).unwrap()
}

pub(crate) fn target(input: &str) -> NewTarget {
    NewTarget::new(ident(input))
}

/// `n` distinct username targets: `member_00000`, `member_00001`, …
pub(crate) fn members(range: std::ops::Range<usize>) -> Vec<NewTarget> {
    range.map(|i| target(&format!("member_{i:05}"))).collect()
}

pub(crate) fn invite_settings(group: &str) -> TaskSettings {
    TaskSettings {
        action: Action::Invite {
            group: GroupRef::parse(group).unwrap(),
        },
        accounts: None,
        add_to_contacts: false,
        dedupe_days: None,
    }
}

pub(crate) fn new_task(user: UserId, name: &str) -> NewTask {
    NewTask {
        user_id: user,
        name: name.to_owned(),
        platform: Platform::Telegram,
        priority: Priority::Medium,
        settings: invite_settings("@test_group"),
        scheduled_at: None,
    }
}

/// Creates a task of `user` with `targets`; returns its id.
pub(crate) async fn seed(
    ctx: &Subject<dyn TaskStore>,
    user: UserId,
    targets: Vec<NewTarget>,
) -> TaskId {
    ctx.create_task(new_task(user, "campaign"), targets, None, t0())
        .await
        .unwrap()
        .task
        .id
}

/// Creates a task of `user` with `targets` and starts it (only a running task's targets are
/// claimed); returns its id.
pub(crate) async fn seed_running(
    ctx: &Subject<dyn TaskStore>,
    user: UserId,
    targets: Vec<NewTarget>,
) -> TaskId {
    let id = seed(ctx, user, targets).await;
    let start = TaskEvent::Start {
        scheduled_later: false,
    };
    ctx.transition(user, id, start, None, t0()).await.unwrap();
    id
}

/// The worker that holds the claims of a test unless it says otherwise.
pub(crate) const HOLDER: &str = "worker-test";

/// A first-stage claim of `task`'s next target by `account` at `now` (held by [`HOLDER`]);
/// `random_high` for a message.
pub(crate) fn claim(
    task: TaskId,
    account: &AccountId,
    now: DateTime<Utc>,
    random_high: Option<u32>,
) -> Claim {
    Claim {
        task,
        account: account.clone(),
        holder: HOLDER.to_owned(),
        now,
        random_high,
        stage: ClaimStage::First,
    }
}

/// Claims `claim`'s target; panics when there is none.
pub(crate) async fn take(ctx: &Subject<dyn TaskStore>, claim: &Claim) -> Target {
    ctx.claim_target(claim)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("nothing to claim for {claim:?}"))
}

pub(crate) fn log(task: TaskId, target: Option<&Target>, account: &AccountId) -> NewExecutionLog {
    NewExecutionLog {
        task_id: task,
        target_id: target.map(|t| t.id),
        account_id: account.clone(),
        action: "invite".into(),
        status: ExecutionStatus::Pending,
        outcome: None,
        error_kind: None,
        error_code: None,
        latency_ms: None,
        created_at: t0(),
    }
}

/// The record of a claimed target's end.
pub(crate) fn record(
    claimed: &Target,
    account: &AccountId,
    outcome: Outcome,
    at: DateTime<Utc>,
) -> OutcomeRecord {
    let mut entry = log(claimed.task_id, Some(claimed), account);
    entry.status = ExecutionStatus::from_outcome(outcome);
    entry.outcome = Some(outcome);
    entry.created_at = at;
    entry.latency_ms = Some(120);
    OutcomeRecord {
        target_id: claimed.id,
        account_id: account.clone(),
        outcome,
        error_message: None,
        result: serde_json::json!({"ok": true}),
        at,
        log: entry,
    }
}
