//! The engine's side: claims, outcomes, release, crash recovery, lanes, logs, statistics,
//! cross-task de-duplication and retention.

use std::collections::BTreeSet;

use crate::domain::{
    ExecutionStatus, LaneStats, LaneStatus, Outcome, TargetStatus, TaskEvent, TaskId, TaskStatus,
    TaskUpdate,
};
use crate::ports::{LogFilter, Settlement, StoreError, message_random_id};
use chrono::{DateTime, Utc};

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn TaskStore>;
use crate::ports::TaskStore;

const START: TaskEvent = TaskEvent::Start {
    scheduled_later: false,
};

pub(crate) async fn claims_take_the_lowest_pending_target(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..2)).await;
    let a = acc("acc-1");
    let at = t0() + mins(1);
    let first = take(&s, &claim(id, &a, at, Some(42))).await;
    assert_eq!(first.person.identifier, ident("member_00000"));
    assert_eq!(first.status, TargetStatus::InProgress);
    assert_eq!(
        (first.account_id.as_ref(), first.claimed_at),
        (Some(&a), Some(at))
    );
    assert_eq!(
        (first.attempts, first.random_id),
        (1, Some(message_random_id(42, first.id)))
    );
    assert_eq!((first.sender.clone(), first.invite_outcome), (None, None));
    let second = take(&s, &claim(id, &a, at, None)).await;
    assert_eq!(second.person.identifier, ident("member_00001"));
    assert_eq!(second.random_id, None, "an invite has no random_id");
    assert_eq!(
        s.claim_target(&claim(id, &a, at, None)).await.unwrap(),
        None
    );
    assert_eq!(
        s.claim_target(&claim(TaskId::new(999_999), &a, at, None))
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn a_released_target_keeps_its_random_id(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..1)).await;
    let (a, b) = (acc("acc-1"), acc("acc-2"));
    let t = take(&s, &claim(id, &a, t0(), Some(7))).await;
    let random_id = Some(message_random_id(7, t.id));
    assert_eq!(t.random_id, random_id);
    assert_eq!(
        s.release_target(t.id, &b, None).await.unwrap_err(),
        StoreError::NotFound,
        "only the holder releases"
    );
    let mut entry = log(id, Some(&t), &a);
    entry.error_kind = Some("account_temporary".into());
    entry.error_code = Some("FLOOD_WAIT".into());
    entry.status = ExecutionStatus::Failed;
    s.release_target(t.id, &a, Some(entry.clone()))
        .await
        .unwrap();
    let back = &s.targets(ALICE, id, 0, 0).await.unwrap()[0];
    assert_eq!(
        (back.status, back.account_id.clone(), back.random_id),
        (TargetStatus::Pending, None, random_id)
    );
    assert_eq!(back.sender, None, "a release pins nothing");
    let again = take(&s, &claim(id, &b, t0() + mins(1), Some(99))).await;
    assert_eq!(
        (again.id, again.random_id, again.attempts),
        (t.id, random_id, 2)
    );
    assert_eq!(again.account_id, Some(b));
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].entry, entry);
    assert_eq!(
        s.release_target(t.id, &a, None).await.unwrap_err(),
        StoreError::NotFound,
        "the claim moved on"
    );
}

pub(crate) async fn outcomes_are_recorded_with_their_log_row(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..2)).await;
    let (a, b) = (acc("acc-1"), acc("acc-2"));
    let t = take(&s, &claim(id, &a, t0(), None)).await;
    let at = t0() + mins(1);
    let mut rec = record(&t, &a, Outcome::PrivacyRestricted, at);
    rec.error_message = Some("USER_PRIVACY_RESTRICTED".into());
    rec.result = serde_json::json!({"premium_would_allow_invite": true});
    rec.log.error_kind = Some("target".into());
    rec.log.error_code = Some("USER_PRIVACY_RESTRICTED".into());

    let mut wrong = rec.clone();
    wrong.account_id = b.clone();
    assert_eq!(
        s.record_outcome(&wrong).await.unwrap_err(),
        StoreError::NotFound
    );
    s.record_outcome(&rec).await.unwrap();
    assert_eq!(
        s.record_outcome(&rec).await.unwrap_err(),
        StoreError::NotFound,
        "a finished target takes no second outcome"
    );

    let stored = &s.targets(ALICE, id, 1, 0).await.unwrap()[0];
    assert_eq!(stored.status, TargetStatus::Failed);
    assert_eq!(stored.outcome, Some(Outcome::PrivacyRestricted));
    assert_eq!(
        stored.error_message.as_deref(),
        Some("USER_PRIVACY_RESTRICTED")
    );
    assert_eq!(stored.result, rec.result);
    assert_eq!(
        (stored.processed_at, stored.account_id.clone()),
        (Some(at), Some(a.clone()))
    );
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].entry, rec.log);

    // A pending target cannot take an outcome either.
    let pending = &s.targets(ALICE, id, 1, 1).await.unwrap()[0];
    let mut rec2 = record(pending, &a, Outcome::Invited, at);
    rec2.target_id = pending.id;
    assert_eq!(
        s.record_outcome(&rec2).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.logs(ALICE, id, &LogFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn stale_claims_become_uncertain_and_are_settled(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..4)).await;
    let (a, b) = (acc("acc-1"), acc("acc-2"));
    // `gone` stopped beating at t0; `alive` beat at t0 + 10.
    s.heartbeat("gone", t0()).await.unwrap();
    s.heartbeat("alive", t0() + mins(10)).await.unwrap();
    let held_by = |holder: &str, at, high| {
        let mut c = claim(id, &a, at, high);
        c.holder = holder.to_owned();
        c
    };
    let old1 = take(&s, &held_by("gone", t0(), Some(1))).await;
    let old2 = take(&s, &held_by("gone", t0() + mins(1), None)).await;
    let fresh = take(&s, &held_by("alive", t0() + mins(1), None)).await;
    assert_eq!(s.recover_stale(t0() + mins(5)).await.unwrap(), 2);
    assert_eq!(s.recover_stale(t0() + mins(5)).await.unwrap(), 0);
    let uncertain = s.uncertain_targets(id).await.unwrap();
    let ids: Vec<_> = uncertain.iter().map(|t| t.id).collect();
    assert_eq!(ids, [old1.id, old2.id]);
    assert!(
        uncertain
            .iter()
            .all(|t| t.status == TargetStatus::Uncertain && t.outcome.is_none())
    );
    assert_eq!(
        s.record_outcome(&record(&old1, &b, Outcome::Invited, t0()))
            .await
            .unwrap_err(),
        StoreError::NotFound,
        "only the account of the claim may still report on an uncertain target"
    );

    // Not sent after all: back to pending, random id kept.
    s.settle_uncertain(old1.id, Settlement::Retry)
        .await
        .unwrap();
    // Reconciled as a member: settled with its outcome and a log row.
    let at = t0() + mins(20);
    let mut rec = record(&old2, &a, Outcome::AlreadyMember, at);
    rec.log.action = "reconcile".into();
    let mut other = rec.clone();
    other.target_id = old1.id;
    assert!(matches!(
        s.settle_uncertain(old2.id, Settlement::Final(other))
            .await
            .unwrap_err(),
        StoreError::Invalid(_)
    ));
    s.settle_uncertain(old2.id, Settlement::Final(rec.clone()))
        .await
        .unwrap();
    assert_eq!(
        s.settle_uncertain(old2.id, Settlement::Retry)
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.settle_uncertain(fresh.id, Settlement::Retry)
            .await
            .unwrap_err(),
        StoreError::NotFound,
        "only uncertain targets are settled"
    );
    assert!(s.uncertain_targets(id).await.unwrap().is_empty());

    let all = s.targets(ALICE, id, 0, 0).await.unwrap();
    assert_eq!(
        (all[0].status, all[0].random_id, all[0].account_id.clone()),
        (
            TargetStatus::Pending,
            Some(message_random_id(1, old1.id)),
            None
        )
    );
    assert_eq!(
        (all[1].status, all[1].outcome, all[1].processed_at),
        (
            TargetStatus::Success,
            Some(Outcome::AlreadyMember),
            Some(at)
        )
    );
    assert_eq!(all[2].status, TargetStatus::InProgress);
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].entry, rec.log);
    let again = take(&s, &claim(id, &a, at, Some(5))).await;
    assert_eq!(
        (again.id, again.random_id),
        (old1.id, Some(message_random_id(1, old1.id)))
    );
}

pub(crate) async fn engine_tasks_are_running_or_armed(s: Ctx) {
    let running = seed(&s, ALICE, vec![]).await;
    s.transition(ALICE, running, START, None, t0())
        .await
        .unwrap();
    let idle = seed(&s, ALICE, vec![]).await;
    let mut due = new_task(BOB, "due");
    due.scheduled_at = Some(t0() + mins(30));
    let due = s
        .create_task(due, vec![], None, t0())
        .await
        .unwrap()
        .task
        .id;
    let later = TaskEvent::Start {
        scheduled_later: true,
    };
    s.transition(BOB, due, later, None, t0()).await.unwrap();
    let unscheduled = seed(&s, BOB, vec![]).await;
    s.transition(BOB, unscheduled, later, None, t0())
        .await
        .unwrap();
    // A start requested for later, whose time was then removed, is due at once.
    s.update_task(
        BOB,
        unscheduled,
        TaskUpdate {
            scheduled_at: Some(None),
            ..Default::default()
        },
        t0(),
    )
    .await
    .unwrap();
    let paused = seed(&s, ALICE, vec![]).await;
    s.transition(ALICE, paused, START, None, t0())
        .await
        .unwrap();
    s.transition(ALICE, paused, TaskEvent::Pause, None, t0())
        .await
        .unwrap();

    let ids = |tasks: Vec<crate::domain::Task>| tasks.into_iter().map(|t| t.id).collect::<Vec<_>>();
    // Armed tasks are listed before their time: the engine wakes up for them.
    assert_eq!(
        ids(s.engine_tasks(t0() + mins(29)).await.unwrap()),
        [running, due, unscheduled]
    );
    assert_eq!(
        ids(s.engine_tasks(t0() + mins(30)).await.unwrap()),
        [running, due, unscheduled]
    );
    assert!(!ids(s.engine_tasks(t0() + mins(30)).await.unwrap()).contains(&idle));
}

pub(crate) async fn lanes_are_created_once_and_saved(s: Ctx) {
    let id = seed(&s, ALICE, vec![]).await;
    let other = seed(&s, ALICE, vec![]).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    s.ensure_lanes(id, &[b.clone(), a.clone()]).await.unwrap();
    s.ensure_lanes(other, std::slice::from_ref(&a))
        .await
        .unwrap();
    let mut lanes = s.lanes(ALICE, id).await.unwrap();
    assert_eq!(lanes.len(), 2);
    assert_eq!(
        (lanes[0].account_id.clone(), lanes[1].account_id.clone()),
        (a.clone(), b.clone())
    );
    assert!(
        lanes
            .iter()
            .all(|l| l.status == LaneStatus::Active && l.stats == LaneStats::default())
    );
    assert!(
        lanes
            .iter()
            .all(|l| l.cooldown_until.is_none() && l.last_used_at.is_none() && l.reason.is_none())
    );

    let mut lane = lanes.remove(1);
    lane.status = LaneStatus::Closed;
    lane.reason = Some("channel_lifetime".into());
    lane.cooldown_until = Some(t0() + mins(90));
    lane.last_used_at = Some(t0());
    lane.stats = LaneStats {
        attempts: 5,
        successes: 3,
        failures: 1,
        consecutive_account_errors: 2,
    };
    s.save_lane(&lane).await.unwrap();
    // Ensuring again keeps what is there.
    s.ensure_lanes(id, &[a.clone(), b.clone()]).await.unwrap();
    let stored = s.lanes(ALICE, id).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1], lane);

    let all = s.lanes_of(&[id, other]).await.unwrap();
    let pairs: Vec<_> = all
        .iter()
        .map(|l| (l.task_id, l.account_id.as_str().to_owned()))
        .collect();
    assert_eq!(
        pairs,
        [
            (id, "acc-a".into()),
            (id, "acc-b".into()),
            (other, "acc-a".into())
        ]
    );
    assert!(s.lanes_of(&[]).await.unwrap().is_empty());

    let mut missing = lane.clone();
    missing.account_id = acc("acc-zzz");
    assert_eq!(
        s.save_lane(&missing).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.ensure_lanes(TaskId::new(999_999), &[a])
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
}

pub(crate) async fn pending_counts_cover_every_asked_task(s: Ctx) {
    let one = seed_running(&s, ALICE, members(0..3)).await;
    let two = seed(&s, BOB, members(0..1)).await;
    let none = seed(&s, ALICE, vec![]).await;
    let a = acc("acc-1");
    take(&s, &claim(one, &a, t0(), None)).await;
    let counts = s.pending_counts(&[one, two, none]).await.unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [(one, 2), (two, 1), (none, 0)]
    );
    assert!(s.pending_counts(&[]).await.unwrap().is_empty());
    let with_pending = s.with_pending(&[one, two, none]).await.unwrap();
    assert_eq!(with_pending.into_iter().collect::<Vec<_>>(), [one, two]);
    assert!(s.with_pending(&[]).await.unwrap().is_empty());
}

pub(crate) async fn logs_filter_and_page_in_id_order(s: Ctx) {
    let id = seed(&s, ALICE, vec![]).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    let statuses = [
        ExecutionStatus::Success,
        ExecutionStatus::Failed,
        ExecutionStatus::Success,
        ExecutionStatus::Skipped,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        let mut entry = log(id, None, if i % 2 == 0 { &a } else { &b });
        entry.status = status;
        entry.created_at = t0() + mins(10 * i as i64);
        s.append_log(entry).await.unwrap();
    }
    let all = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let at = |logs: &[crate::domain::ExecutionLog]| -> Vec<DateTime<Utc>> {
        logs.iter().map(|l| l.entry.created_at).collect()
    };
    let ok = LogFilter {
        status: Some(ExecutionStatus::Success),
        ..Default::default()
    };
    assert_eq!(
        at(&s.logs(ALICE, id, &ok).await.unwrap()),
        [t0(), t0() + mins(20)]
    );
    let by_b = LogFilter {
        account_id: Some(b.clone()),
        ..Default::default()
    };
    assert_eq!(
        at(&s.logs(ALICE, id, &by_b).await.unwrap()),
        [t0() + mins(10), t0() + mins(30)]
    );
    let window = LogFilter {
        since: Some(t0() + mins(10)),
        until: Some(t0() + mins(30)),
        ..Default::default()
    };
    assert_eq!(
        at(&s.logs(ALICE, id, &window).await.unwrap()),
        [t0() + mins(10), t0() + mins(20)]
    );
    let page = LogFilter {
        limit: 2,
        offset: 1,
        ..Default::default()
    };
    assert_eq!(s.logs(ALICE, id, &page).await.unwrap(), all[1..3]);
}

pub(crate) async fn stats_group_by_account_error_and_hour(s: Ctx) {
    let id = seed(&s, ALICE, vec![]).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    let rows = [
        (&a, ExecutionStatus::Success, None, 0),
        (&a, ExecutionStatus::Failed, Some("target"), 15),
        (&a, ExecutionStatus::Failed, Some("account_restricted"), 59),
        (&b, ExecutionStatus::Success, None, 60),
        (&b, ExecutionStatus::Skipped, None, 61),
        (&b, ExecutionStatus::Failed, Some("target"), 185),
    ];
    for (account, status, kind, minute) in rows {
        let mut entry = log(id, None, account);
        entry.status = status;
        entry.error_kind = kind.map(str::to_owned);
        entry.created_at = t0() + mins(minute);
        s.append_log(entry).await.unwrap();
    }
    let stats = s.stats(ALICE, id).await.unwrap();
    let sa = &stats.per_account[&a];
    assert_eq!((sa.attempts, sa.successes, sa.failures), (3, 1, 2));
    let sb = &stats.per_account[&b];
    assert_eq!((sb.attempts, sb.successes, sb.failures), (3, 1, 1));
    assert_eq!(stats.per_error.len(), 2);
    assert_eq!(
        (
            stats.per_error["target"],
            stats.per_error["account_restricted"]
        ),
        (2, 1)
    );
    let hours: Vec<_> = stats.per_hour.into_iter().collect();
    assert_eq!(
        hours,
        [(t0(), 3), (t0() + mins(60), 2), (t0() + mins(180), 1)]
    );
    let empty = seed(&s, ALICE, vec![]).await;
    let none = s.stats(ALICE, empty).await.unwrap();
    assert!(none.per_account.is_empty() && none.per_error.is_empty() && none.per_hour.is_empty());
}

pub(crate) async fn reached_since_looks_across_tasks_of_the_user(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..2)).await;
    let a = acc("acc-1");
    let at = t0() + mins(10);
    let t = take(&s, &claim(id, &a, at, None)).await;
    s.record_outcome(&record(&t, &a, Outcome::Invited, at))
        .await
        .unwrap();
    let t = take(&s, &claim(id, &a, at, None)).await;
    s.record_outcome(&record(&t, &a, Outcome::PrivacyRestricted, at))
        .await
        .unwrap();
    let tg = crate::domain::Platform::Telegram;
    let reached = |user, key: &'static str, channel: &'static str, since| {
        let s = s.clone();
        async move {
            s.reached_since(user, tg, &[key.to_owned()], channel, since)
                .await
                .unwrap()
                .contains(key)
        }
    };
    assert!(reached(ALICE, "u:member_00000", "@test_group", t0()).await);
    assert!(reached(ALICE, "u:member_00000", "@test_group", at).await);
    assert!(
        !reached(ALICE, "u:member_00000", "@test_group", at + mins(1)).await,
        "too old"
    );
    assert!(
        !reached(ALICE, "u:member_00000", "@other_group", t0()).await,
        "other channel"
    );
    assert!(
        !reached(ALICE, "u:member_00001", "@test_group", t0()).await,
        "not a success"
    );
    assert!(
        !reached(BOB, "u:member_00000", "@test_group", t0()).await,
        "other user"
    );
    assert!(
        s.reached_since(
            ALICE,
            crate::domain::Platform::Sandbox,
            &["u:member_00000".to_owned()],
            "@test_group",
            t0()
        )
        .await
        .unwrap()
        .is_empty(),
        "other platform"
    );
    // Many people in one call: only those reached come back.
    let asked: Vec<String> = (0..3).map(|i| format!("u:member_{i:05}")).collect();
    let hits = s
        .reached_since(ALICE, tg, &asked, "@test_group", t0())
        .await
        .unwrap();
    assert_eq!(hits.into_iter().collect::<Vec<_>>(), ["u:member_00000"]);
    assert!(
        s.reached_since(ALICE, tg, &[], "@test_group", t0())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two spellings of one group are one channel for the de-duplication once the engine recorded
/// the group's stable key with each task; a task whose group is edited loses its key.
pub(crate) async fn a_recorded_group_key_joins_the_spellings_of_one_group(s: Ctx) {
    const KEY: &str = "telegram:channel:1777000123";
    let id = seed_running(&s, ALICE, members(0..1)).await;
    let a = acc("acc-1");
    let at = t0() + mins(10);
    let t = take(&s, &claim(id, &a, at, None)).await;
    s.record_outcome(&record(&t, &a, Outcome::Invited, at))
        .await
        .unwrap();
    let tg = crate::domain::Platform::Telegram;
    let asked = ["u:member_00000".to_owned()];
    let reached = |channel: &'static str| {
        let s = s.clone();
        let asked = asked.clone();
        async move {
            !s.reached_since(ALICE, tg, &asked, channel, t0())
                .await
                .unwrap()
                .is_empty()
        }
    };
    assert!(!reached(KEY).await, "no key recorded yet");
    assert_eq!(s.get_task(ALICE, id).await.unwrap().group_key, None);
    s.set_group_key(id, KEY).await.unwrap();
    assert_eq!(
        s.get_task(ALICE, id).await.unwrap().group_key.as_deref(),
        Some(KEY)
    );
    assert!(reached(KEY).await, "the group's stable key");
    assert!(reached("@test_group").await, "the group as written still");
    assert!(!reached("telegram:channel:1").await, "another group");
    assert_eq!(
        s.set_group_key(TaskId::new(i64::MAX), KEY).await,
        Err(StoreError::NotFound)
    );

    // An edit that keeps the group keeps its key; one that changes it drops the key.
    let pending = seed(&s, ALICE, members(0..1)).await;
    s.set_group_key(pending, KEY).await.unwrap();
    let edit = |group: &str| TaskUpdate {
        settings: Some(invite_settings(group)),
        ..Default::default()
    };
    let kept = s
        .update_task(ALICE, pending, edit("@test_group"), at)
        .await
        .unwrap();
    assert_eq!(kept.group_key.as_deref(), Some(KEY));
    let moved = s
        .update_task(ALICE, pending, edit("@other_group"), at)
        .await
        .unwrap();
    assert_eq!(moved.group_key, None);
    assert_eq!(s.get_task(ALICE, pending).await.unwrap().group_key, None);
}

pub(crate) async fn cleanup_removes_old_logs_and_finished_tasks(s: Ctx) {
    let day = |d: i64| t0() + chrono::TimeDelta::days(d);
    let a = acc("acc-1");
    let old_done = seed(&s, ALICE, members(0..2)).await;
    s.transition(ALICE, old_done, TaskEvent::Cancel, None, day(1))
        .await
        .unwrap();
    let new_done = seed(&s, ALICE, members(0..2)).await;
    s.transition(ALICE, new_done, TaskEvent::Cancel, None, day(20))
        .await
        .unwrap();
    let running = seed(&s, BOB, members(0..2)).await;
    s.transition(BOB, running, START, None, day(1))
        .await
        .unwrap();
    let paused_long_ago = seed(&s, BOB, vec![]).await;
    s.transition(BOB, paused_long_ago, START, None, day(0))
        .await
        .unwrap();
    s.transition(BOB, paused_long_ago, TaskEvent::Pause, None, day(0))
        .await
        .unwrap();
    for (task, d) in [(running, 0), (running, 29), (running, 31), (new_done, 2)] {
        let mut entry = log(task, None, &a);
        entry.created_at = day(d);
        s.append_log(entry).await.unwrap();
    }
    let report = s.cleanup(day(30), day(10)).await.unwrap();
    assert_eq!((report.logs, report.tasks), (3, 1));
    assert_eq!(
        s.get_task(ALICE, old_done).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.get_task(ALICE, new_done).await.unwrap().status,
        TaskStatus::Cancelled
    );
    assert_eq!(
        s.get_task(BOB, paused_long_ago).await.unwrap().status,
        TaskStatus::Paused
    );
    let left = s.logs(BOB, running, &LogFilter::default()).await.unwrap();
    let days: Vec<_> = left.iter().map(|l| l.entry.created_at).collect();
    assert_eq!(days, [day(31)]);
    assert!(
        s.logs(ALICE, new_done, &LogFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn two_claimers_never_take_the_same_target(s: Ctx) {
    const TARGETS: usize = 300;
    let id = seed_running(&s, ALICE, members(0..TARGETS)).await;
    let mut workers = Vec::new();
    for w in 0..2 {
        let handle = s.another().await;
        workers.push(tokio::spawn(async move {
            let account = acc(&format!("worker-{w}"));
            let mut taken = Vec::new();
            while let Some(t) = handle
                .claim_target(&claim(id, &account, t0(), None))
                .await
                .unwrap()
            {
                assert_eq!(t.account_id.as_ref(), Some(&account));
                taken.push(t.id);
            }
            taken
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), TARGETS, "every target claimed once");
    assert_eq!(unique.len(), TARGETS, "no target claimed twice");
    let p = s.progress(ALICE, id).await.unwrap();
    assert_eq!(p.count(TargetStatus::InProgress), TARGETS as u64);
    assert!(
        s.targets(ALICE, id, 0, 0)
            .await
            .unwrap()
            .iter()
            .all(|t| t.attempts == 1)
    );
}
