//! The engine on the virtual clock: scheduling between tasks, error effects, the circuit
//! breaker, crash recovery and at-most-once delivery.

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::clock::Clock;
use invite_core::domain::{
    ExecutionStatus, LaneStatus, Outcome, Platform, Priority, TargetIdentifier, TargetStatus,
    TaskId, TaskStatus, Username,
};
use invite_core::limits::LimitPolicy;
use invite_core::ports::{AccountManager, AccountState, LogFilter, PlatformError, TaskEventKind};

use super::harness::{
    Harness, Ports, Script, USER, account, invite, message, people, refs, simple_policy, t0,
};

async fn order_of_tasks(
    h: &Harness,
    ids: &[TaskId],
) -> Vec<(chrono::DateTime<chrono::Utc>, TaskId)> {
    let mut rows = Vec::new();
    for id in ids {
        for l in h
            .store
            .logs(USER, *id, &LogFilter::default())
            .await
            .unwrap()
        {
            rows.push((l.entry.created_at, *id));
        }
    }
    rows.sort();
    rows
}

async fn status(h: &Harness, id: TaskId) -> TaskStatus {
    h.store.get_task(USER, id).await.unwrap().status
}

/// A low and a high priority invite task of `n` people each (`low_…`, `high_…`), not started.
async fn low_and_high(h: &Harness, n: usize) -> (TaskId, TaskId) {
    let low = h
        .task(Priority::Low, invite("@lowgroup"), &refs(&people("low", n)))
        .await;
    let high = h
        .task(
            Priority::High,
            invite("@highgroup"),
            &refs(&people("high", n)),
        )
        .await;
    (low, high)
}

pub async fn higher_priority_goes_first(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let (low, high) = low_and_high(&h, 3).await;
    h.start(low).await;
    h.start(high).await;
    h.run().await;
    let order: Vec<TaskId> = order_of_tasks(&h, &[low, high])
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(order, [high, high, high, low, low, low]);
    assert_eq!(status(&h, low).await, TaskStatus::Completed);
    assert_eq!(status(&h, high).await, TaskStatus::Completed);
}

pub async fn equal_priorities_take_turns(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let a = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("a", 3)))
        .await;
    let b = h
        .task(Priority::Medium, invite("@group_b"), &refs(&people("b", 3)))
        .await;
    h.start(a).await;
    h.start(b).await;
    h.run().await;
    let order: Vec<TaskId> = order_of_tasks(&h, &[a, b])
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(order, [a, b, a, b, a, b]);
}

pub async fn a_later_high_task_takes_the_account_at_its_next_step(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let low = h
        .task(Priority::Low, invite("@lowgroup"), &refs(&people("low", 6)))
        .await;
    h.start(low).await;
    // Ten minutes between invites: after 25 minutes three invites of the LOW task are done.
    h.run_for(TimeDelta::minutes(25)).await;
    let high = h
        .task(
            Priority::High,
            invite("@highgroup"),
            &refs(&people("high", 2)),
        )
        .await;
    h.start(high).await;
    h.run().await;
    let order: Vec<TaskId> = order_of_tasks(&h, &[low, high])
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(order, [low, low, low, high, high, low, low, low]);
}

/// Sets the task to start at `at` and asks for that start.
async fn schedule(h: &Harness, id: TaskId, at: DateTime<Utc>) {
    h.store
        .update_task(
            USER,
            id,
            invite_core::domain::TaskUpdate {
                scheduled_at: Some(Some(at)),
                ..Default::default()
            },
            t0(),
        )
        .await
        .unwrap();
    h.store
        .transition(
            USER,
            id,
            invite_core::domain::TaskEvent::Start {
                scheduled_later: true,
            },
            None,
            t0(),
        )
        .await
        .unwrap();
}

pub async fn scheduled_task_waits_for_its_time(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &["someone"])
        .await;
    schedule(&h, id, t0() + TimeDelta::hours(5)).await;
    h.run_for(TimeDelta::hours(4)).await;
    assert_eq!(status(&h, id).await, TaskStatus::Pending);
    h.run().await;
    let logs = h.store.logs(USER, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert!(logs[0].entry.created_at >= t0() + TimeDelta::hours(5));
    assert_eq!(status(&h, id).await, TaskStatus::Completed);
    // The engine announced the start it made and the completion.
    let events = h.events.events();
    let kinds: Vec<TaskEventKind> = events.iter().map(|e| e.event).collect();
    assert_eq!(kinds, [TaskEventKind::Started, TaskEventKind::Completed]);
    assert!(events[0].at >= t0() + TimeDelta::hours(5));
    assert!(events.iter().all(|e| e.task_id == id && e.user_id == USER));
}

pub async fn a_scheduled_task_waits_for_a_running_slot(ports: Ports) {
    let h = Harness::with_running_cap(ports, simple_policy(), 1, Some(1));
    let first = h
        .task(
            Priority::Medium,
            invite("@group_a"),
            &["person_a1", "person_a2", "person_a3"],
        )
        .await;
    let second = h
        .task(Priority::High, invite("@group_b"), &["person_b1"])
        .await;
    schedule(&h, second, t0() + TimeDelta::minutes(1)).await;
    h.start(first).await;
    h.run().await;
    let a = h.store.get_task(USER, first).await.unwrap();
    let b = h.store.get_task(USER, second).await.unwrap();
    assert_eq!(a.status, TaskStatus::Completed);
    assert_eq!(b.status, TaskStatus::Completed);
    // Due after a minute, it started only once the user's one running slot was free.
    let (a_done, b_started) = (a.finished_at.unwrap(), b.started_at.unwrap());
    assert!(a_done > t0() + TimeDelta::minutes(1), "{a_done}");
    assert!(b_started >= a_done, "{b_started} < {a_done}");
}

pub async fn a_campaign_on_real_limits_breaks_no_rule(ports: Ports) {
    let h = Harness::new(ports, LimitPolicy::telegram(), 3);
    let a = h
        .task(Priority::High, invite("@group_a"), &refs(&people("a", 60)))
        .await;
    let b = h
        .task(Priority::Low, invite("@group_b"), &refs(&people("b", 40)))
        .await;
    h.start(a).await;
    h.start(b).await;
    h.run().await;
    let mut logs = h.store.logs(USER, a, &LogFilter::default()).await.unwrap();
    logs.extend(h.store.logs(USER, b, &LogFilter::default()).await.unwrap());
    let events = invite_core::limits::audit::events_from_logs(&logs, |l| {
        if l.entry.task_id == a {
            "@group_a".into()
        } else {
            "@group_b".into()
        }
    });
    assert_eq!(events.len(), 100);
    assert!(invite_core::limits::audit::audit(&h.policy, &events).is_empty());
    assert_eq!(status(&h, a).await, TaskStatus::Completed);
}

// ---- error classes (SPEC §6) ----

pub async fn target_errors_fail_the_target_and_the_account_goes_on(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Target {
            outcome: Outcome::PrivacyRestricted,
            code: "USER_PRIVACY_RESTRICTED".into(),
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    h.start(id).await;
    h.run().await;
    let targets = h.store.targets(USER, id, 0, 0).await.unwrap();
    assert_eq!(targets[0].status, TargetStatus::Failed);
    assert_eq!(targets[0].outcome, Some(Outcome::PrivacyRestricted));
    assert_eq!(
        targets[0].error_message.as_deref(),
        Some("USER_PRIVACY_RESTRICTED")
    );
    assert_eq!(targets[1].outcome, Some(Outcome::Invited));
    assert_eq!(status(&h, id).await, TaskStatus::Completed);
}

pub async fn flood_wait_cools_the_account_and_returns_the_target_untouched(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::FloodWait {
            seconds: 3600,
            code: "FLOOD_WAIT".into(),
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 1)))
        .await;
    h.start(id).await;
    h.engine.tick().await.unwrap();
    let t = &h.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.status, TargetStatus::Pending);
    assert!(matches!(
        h.manager.account_state(&account(1)).await.unwrap(),
        AccountState::CoolingDown { until, .. } if until == t0() + TimeDelta::seconds(3630)
    ));
    h.run().await;
    let logs = h.store.logs(USER, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].entry.error_code.as_deref(), Some("FLOOD_WAIT"));
    assert!(logs[1].entry.created_at >= t0() + TimeDelta::seconds(3630));
    assert_eq!(logs[1].entry.outcome, Some(Outcome::Invited));
}

pub async fn dead_account_ends_its_lanes_and_a_task_without_accounts_fails(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::AccountDead {
            code: "AUTH_KEY_UNREGISTERED".into(),
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 3)))
        .await;
    h.start(id).await;
    h.run().await;
    let task = h.store.get_task(USER, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Failed);
    assert!(
        task.status_reason
            .unwrap()
            .contains("AUTH_KEY_UNREGISTERED")
    );
    let lanes = h.store.lanes(USER, id).await.unwrap();
    assert_eq!(lanes[0].status, LaneStatus::Closed);
    assert!(matches!(
        h.manager.account_state(&account(1)).await.unwrap(),
        AccountState::Dead { .. }
    ));
}

pub async fn account_without_rights_loses_its_lane_others_go_on(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Group {
            code: "CHAT_ADMIN_REQUIRED".into(),
            account_only: true,
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 4)))
        .await;
    h.start(id).await;
    h.run().await;
    assert_eq!(status(&h, id).await, TaskStatus::Completed);
    let lanes = h.store.lanes(USER, id).await.unwrap();
    assert_eq!(
        lanes
            .iter()
            .filter(|l| l.status == LaneStatus::Closed)
            .count(),
        1
    );
    let p = h.store.progress(USER, id).await.unwrap();
    assert_eq!(p.by_outcome.get(&Outcome::Invited), Some(&4));
}

pub async fn unusable_group_fails_the_task_with_the_reason(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Group {
            code: "CHANNEL_PRIVATE".into(),
            account_only: false,
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 4)))
        .await;
    h.start(id).await;
    h.run().await;
    let task = h.store.get_task(USER, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(
        task.status_reason.as_deref(),
        Some("group unusable: CHANNEL_PRIVATE")
    );
}

pub async fn transient_errors_are_retried_with_backoff(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    for _ in 0..2 {
        h.strategy.script(
            "@p_0000",
            Script::Fail(PlatformError::Transient { code: "IO".into() }),
        );
    }
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 1)))
        .await;
    h.start(id).await;
    h.run().await;
    let t = &h.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.outcome, Some(Outcome::Invited));
    assert_eq!(t.attempts, 3);
    let logs = h.store.logs(USER, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 3);
    // Backoff grows: 2 s, then about 4 s (with jitter up to half).
    let gap1 = logs[1].entry.created_at - logs[0].entry.created_at;
    let gap2 = logs[2].entry.created_at - logs[1].entry.created_at;
    assert!(
        gap1 >= TimeDelta::seconds(2) && gap1 <= TimeDelta::seconds(3),
        "{gap1}"
    );
    assert!(
        gap2 >= TimeDelta::seconds(4) && gap2 <= TimeDelta::seconds(6),
        "{gap2}"
    );
}

pub async fn unknown_errors_are_counted_never_success(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Unknown {
            code: "WEIRD_NEW_ERROR".into(),
            message: "?".into(),
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 1)))
        .await;
    h.start(id).await;
    h.run().await;
    let t = &h.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.status, TargetStatus::Failed);
    assert_eq!(t.outcome, Some(Outcome::UnknownError));
    let stats = h.store.stats(USER, id).await.unwrap();
    assert_eq!(stats.per_error.get("unknown"), Some(&1));
}

pub async fn ambiguous_invite_is_settled_by_a_membership_check(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Ambiguous {
            code: "TIMEOUT".into(),
        }),
    );
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    h.start(id).await;
    h.engine.tick().await.unwrap();
    assert_eq!(h.store.uncertain_targets(id).await.unwrap().len(), 1);
    h.run().await;
    // The timed-out invite never happened in the sandbox: the check sends it back, once.
    let t = &h.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.outcome, Some(Outcome::Invited));
    assert_eq!(h.strategy.sandbox.counters().invites, 2);
    assert_eq!(status(&h, id).await, TaskStatus::Completed);
}

pub async fn circuit_breaker_pauses_the_task(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 6);
    // PeerFlood is the account's, so the person goes back and the next account tries.
    for _ in 0..6 {
        h.strategy.script(
            "@p_0000",
            Script::Fail(PlatformError::AccountRestricted {
                code: "PEER_FLOOD".into(),
            }),
        );
    }
    let id = h
        .task(
            Priority::Medium,
            invite("@group_a"),
            &refs(&people("p", 10)),
        )
        .await;
    h.start(id).await;
    h.run_for(TimeDelta::hours(1)).await;
    let task = h.store.get_task(USER, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Paused);
    assert!(
        task.status_reason
            .unwrap()
            .starts_with("circuit breaker: 5")
    );
    // The sixth account was never burnt.
    let cooling = cooling_accounts(&h).await;
    assert_eq!(cooling, 5);
    // The pause was announced with its reason.
    let events = h.events.events();
    let last = events.last().unwrap();
    assert_eq!(
        (last.event, last.status),
        (TaskEventKind::Paused, TaskStatus::Paused)
    );
    assert!(
        last.reason
            .as_deref()
            .unwrap()
            .starts_with("circuit breaker: 5")
    );
}

async fn cooling_accounts(h: &Harness) -> usize {
    let mut n = 0;
    for i in 1..=h.accounts {
        if matches!(
            h.manager.account_state(&account(i)).await.unwrap(),
            AccountState::CoolingDown { .. }
        ) {
            n += 1;
        }
    }
    n
}

// ---- suppression and de-duplication at send time ----

pub async fn suppressed_people_are_skipped_at_send_time(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    let who = TargetIdentifier::Username(Username::parse("p_0001", Platform::Sandbox).unwrap());
    h.suppression
        .suppress(USER, Platform::Sandbox, &[who], "manual", t0())
        .await
        .unwrap();
    h.start(id).await;
    h.run().await;
    let targets = h.store.targets(USER, id, 0, 0).await.unwrap();
    assert_eq!(targets[1].outcome, Some(Outcome::Suppressed));
    assert_eq!(targets[1].status, TargetStatus::Skipped);
    assert_eq!(h.strategy.calls.lock().unwrap().len(), 1);
}

// ---- crashes ----

pub async fn crash_after_claim_leaves_uncertain_and_no_second_message(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script("@p_0000", Script::CrashAfter);
    let id = h
        .task(
            Priority::Medium,
            message("Hi {first_name|there}"),
            &refs(&people("p", 1)),
        )
        .await;
    h.start(id).await;
    let h2 = h.crash_and_restart().await;
    assert_eq!(h.strategy.sandbox.counters().messages, 1);
    let t = &h.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.status, TargetStatus::InProgress);
    let random_id = t.random_id.expect("stored with the claim");

    assert_eq!(
        h2.store
            .recover_stale(h2.clock.now() - TimeDelta::minutes(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(h2.store.uncertain_targets(id).await.unwrap().len(), 1);
    h2.run().await;
    let t = &h2.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.outcome, Some(Outcome::Sent));
    assert_eq!(t.random_id, Some(random_id));
    // The retry reused the random_id: the platform delivered nothing twice.
    assert_eq!(h2.strategy.sandbox.counters().messages, 1);
    assert_eq!(t.result["deduplicated"], serde_json::json!(true));
}

pub async fn crash_before_the_invite_is_settled_and_invited_once(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script("@p_0000", Script::CrashBefore);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 1)))
        .await;
    h.start(id).await;
    let h2 = h.crash_and_restart().await;
    h2.run().await;
    let t = &h2.store.targets(USER, id, 0, 0).await.unwrap()[0];
    assert_eq!(t.outcome, Some(Outcome::Invited));
    assert_eq!(h2.strategy.sandbox.counters().invites, 1);
}

pub async fn crash_after_the_invite_is_settled_without_a_second_invite(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script("@p_0000", Script::CrashAfter);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 1)))
        .await;
    h.start(id).await;
    let h2 = h.crash_and_restart().await;
    h2.run().await;
    let t = &h2.store.targets(USER, id, 0, 0).await.unwrap()[0];
    // A member, but whether by this invite cannot be told: not counted as invited.
    assert_eq!(t.outcome, Some(Outcome::AlreadyMember));
    assert_eq!(
        t.result["settled_by"],
        serde_json::json!("membership_check")
    );
    assert_eq!(t.result["invite"], serde_json::json!("uncertain"));
    assert_eq!(h2.strategy.sandbox.counters().invites, 1);
    // One invite call only: the membership check settled it.
    assert_eq!(h2.strategy.calls.lock().unwrap().len(), 1);
    let logs = h2
        .store
        .logs(USER, id, &LogFilter::default())
        .await
        .unwrap();
    assert_eq!(logs.last().unwrap().entry.status, ExecutionStatus::Success);
}

/// A task's group that could not be resolved at first runs keyed on the group as written;
/// resolved after a restart, its stable key's cap counts the invites done before: the group's
/// 4 a day (here) are not spent twice across the change.
pub async fn a_groups_cap_counts_the_invites_done_before_it_was_resolved(ports: Ports) {
    let mut policy = simple_policy();
    policy.invite.per_channel = Some(4);
    let h = Harness::new(ports, policy, 1);
    h.strategy.answer_group_keys(Err(PlatformError::Transient {
        code: "TIMEOUT".to_owned(),
    }));
    let id = h
        .task(Priority::High, invite("@club"), &refs(&people("p", 10)))
        .await;
    h.start(id).await;
    // One invite per 10 minutes: three before the restart.
    h.run_for(TimeDelta::minutes(25)).await;
    let invites = |h: &Harness, until| {
        h.strategy
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.kind == "invite" && c.at < until)
            .count()
    };
    assert_eq!(invites(&h, t0() + TimeDelta::days(1)), 3);
    assert_eq!(h.store.get_task(USER, id).await.unwrap().group_key, None);

    h.strategy
        .answer_group_keys(Ok(Some("sandbox:group:1".to_owned())));
    let h2 = h.restart();
    h2.run_for(TimeDelta::hours(20)).await;
    assert_eq!(
        h2.store
            .get_task(USER, id)
            .await
            .unwrap()
            .group_key
            .as_deref(),
        Some("sandbox:group:1")
    );
    assert_eq!(
        invites(&h2, t0() + TimeDelta::days(1)),
        4,
        "the group's cap counts the three invites keyed on it as written"
    );
    h2.run().await;
    let task = h2.store.get_task(USER, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(invites(&h2, t0() + TimeDelta::days(60)), 10);
}

/// People reached by a task whose group was never resolved (it ran while the group could not
/// be) are not reached again under another spelling of the group: when a later task with the
/// group written the same way resolves it, the earlier task takes the key, and a task naming
/// the group by id with `dedupe_days` skips them.
pub async fn people_reached_before_a_group_was_resolved_are_not_reached_again(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.answer_group_keys(Err(PlatformError::Transient {
        code: "TIMEOUT".to_owned(),
    }));
    let invites_of = |prefix: &str| {
        h.strategy
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.kind == "invite" && c.person.contains(prefix))
            .count()
    };
    let first = h
        .task(Priority::High, invite("@club"), &refs(&people("p", 3)))
        .await;
    h.start(first).await;
    h.run().await;
    let done = h.store.get_task(USER, first).await.unwrap();
    assert_eq!((done.status, done.group_key), (TaskStatus::Completed, None));
    assert_eq!(invites_of("p_"), 3);

    h.strategy
        .answer_group_keys(Ok(Some("sandbox:group:1".to_owned())));
    let second = h
        .task(Priority::High, invite("@club"), &refs(&people("q", 2)))
        .await;
    h.start(second).await;
    h.run().await;
    assert_eq!(
        h.store
            .get_task(USER, first)
            .await
            .unwrap()
            .group_key
            .as_deref(),
        Some("sandbox:group:1"),
        "the earlier task took the key its spelling resolved to"
    );

    let by_id = h
        .task(
            Priority::High,
            invite("-1001777000123"),
            &refs(&people("p", 3)),
        )
        .await;
    h.update_settings(by_id, |s| s.dedupe_days = Some(30)).await;
    h.start(by_id).await;
    h.run().await;
    assert_eq!(
        h.store.get_task(USER, by_id).await.unwrap().status,
        TaskStatus::Completed
    );
    assert_eq!(invites_of("p_"), 3, "nobody reached twice");
    let progress = h.store.progress(USER, by_id).await.unwrap();
    assert_eq!(progress.count(TargetStatus::Skipped), 3, "{progress:?}");
}

/// Limits that never bind (no caps, no pauses, no spreading): an account may act again at once,
/// so its step goes on with its next attempt.
fn limits_off() -> LimitPolicy {
    let open = invite_core::limits::ActionLimits {
        per_account: u32::MAX,
        per_channel: None,
        per_channel_lifetime: None,
        pause_min: TimeDelta::zero(),
        pause_max: TimeDelta::zero(),
        spread: false,
    };
    LimitPolicy {
        window: TimeDelta::seconds(1),
        invite: open,
        message: open,
        contact: open,
        writes_per_account: None,
        ..LimitPolicy::telegram()
    }
}

/// The people the platform was called for, in the order of the calls.
fn called(h: &Harness) -> Vec<String> {
    h.strategy
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.person.clone())
        .collect()
}

/// A step that goes on (the account may act again at once) still takes turns between tasks of
/// equal priority, attempt by attempt, on a clock that does not move between them.
pub async fn equal_priorities_take_turns_within_a_step(ports: Ports) {
    let h = Harness::new(ports, limits_off(), 1);
    let a = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("a", 3)))
        .await;
    let b = h
        .task(Priority::Medium, invite("@group_b"), &refs(&people("b", 3)))
        .await;
    h.start(a).await;
    h.start(b).await;
    let report = h.engine.tick().await.unwrap();
    assert_eq!(report.steps, 1, "one account, one step");
    assert_eq!(
        called(&h),
        [
            "@a_0000", "@b_0000", "@a_0001", "@b_0001", "@a_0002", "@b_0002"
        ],
        "the one step went on, task by task in turn"
    );
}

/// A step that goes on still puts a higher priority first.
pub async fn higher_priority_goes_first_within_a_step(ports: Ports) {
    let h = Harness::new(ports, limits_off(), 1);
    let (low, high) = low_and_high(&h, 2).await;
    h.start(low).await;
    h.start(high).await;
    h.run().await;
    assert_eq!(
        called(&h),
        ["@high_0000", "@high_0001", "@low_0000", "@low_0001"]
    );
    assert_eq!(status(&h, low).await, TaskStatus::Completed);
    assert_eq!(status(&h, high).await, TaskStatus::Completed);
}

/// A task paused while a step that goes on is in a platform call: the call in flight is
/// recorded, and the step claims nothing more of the task.
pub async fn a_pause_stops_a_step_that_goes_on(ports: Ports) {
    let h = Harness::new(ports, limits_off(), 1);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 4)))
        .await;
    h.start(id).await;
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    h.strategy.script("@p_0001", Script::Hold(release.clone()));
    let pass = {
        let engine = h.engine.clone();
        tokio::spawn(async move { engine.tick().await })
    };
    // The pass reaches the second person: the step went on after its first attempt.
    while h.strategy.calls_of("@p_0001").is_empty() {
        assert!(
            !pass.is_finished(),
            "the step ended after its first attempt: {:?}",
            called(&h)
        );
        tokio::task::yield_now().await;
    }
    h.store
        .transition(
            USER,
            id,
            invite_core::domain::TaskEvent::Pause,
            None,
            h.clock.now(),
        )
        .await
        .unwrap();
    release.notify_one();
    let report = pass.await.unwrap().unwrap();
    assert_eq!(report.steps, 1);
    let targets = h.store.targets(USER, id, 0, 0).await.unwrap();
    let outcomes: Vec<_> = targets.iter().map(|t| (t.status, t.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (TargetStatus::Success, Some(Outcome::Invited)),
            (TargetStatus::Success, Some(Outcome::Invited)),
            (TargetStatus::Pending, None),
            (TargetStatus::Pending, None),
        ]
    );
    assert_eq!(called(&h), ["@p_0000", "@p_0001"]);
    assert_eq!(status(&h, id).await, TaskStatus::Paused);
}
