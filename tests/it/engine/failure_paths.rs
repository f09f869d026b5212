//! The engine's promises on failure paths, each a regression test of a reproduced break: a
//! person is never contacted twice, a limit is never exceeded, a result is never lost — when a
//! call times out after delivery, the platform refuses a write, a worker is slow or dies, a
//! task is paused mid-pass, or one task's work panics.

use std::sync::Arc;

use chrono::TimeDelta;
use invite_core::clock::Clock;
use invite_core::domain::{
    Action, ExecutionStatus, GroupRef, LaneStatus, Outcome, Priority, TargetStatus, TaskEvent,
    TaskId, TaskStatus, Template,
};
use invite_core::limits::audit::{audit, events_from_logs};
use invite_core::ports::{LogFilter, PlatformError, TaskStore};

use super::harness::{
    Harness, Ports, Script, USER, account, invite, message, people, refs, simple_policy,
};

fn timeout() -> PlatformError {
    PlatformError::Ambiguous {
        code: "CALL_TIMEOUT".into(),
    }
}

fn invite_and_message(group: &str, text: &str) -> Action {
    Action::InviteAndMessage {
        group: GroupRef::parse(group).unwrap(),
        template: Template::parse(text).unwrap(),
    }
}

async fn target(h: &Harness, id: TaskId, n: usize) -> invite_core::domain::Target {
    h.store.targets(USER, id, 0, 0).await.unwrap()[n].clone()
}

/// Issue item 1: the timed-out message was delivered; a second account must not send it again,
/// even when the first is busy with a more urgent task and the second is free.
pub async fn an_uncertain_message_is_never_resent_by_another_account(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    h.strategy
        .script("@p_0000", Script::AfterDelivery(timeout()));
    let id = h
        .task(
            Priority::Medium,
            message("Hi {first_name|there}"),
            &refs(&people("p", 3)),
        )
        .await;
    h.start(id).await;
    h.engine.tick().await.unwrap();
    assert_eq!(h.strategy.calls_of("@p_0000")[0].account, account(1));
    // From now on account 1 has more urgent work of its own.
    let urgent = h
        .task_on(
            Priority::High,
            invite("@group_a"),
            &refs(&people("u", 4)),
            Some(vec![account(1)]),
        )
        .await;
    h.start(urgent).await;
    h.run().await;
    let calls = h.strategy.calls_of("@p_0000");
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(
        calls.iter().all(|c| c.account == calls[0].account),
        "the retry went through another account: {calls:?}"
    );
    // Three people, three deliveries: the retry was de-duplicated by its random_id.
    assert_eq!(h.strategy.sandbox.counters().messages, 3);
    let t = target(&h, id, 0).await;
    assert_eq!(t.outcome, Some(Outcome::Sent));
    assert_eq!(t.sender.as_ref(), Some(&calls[0].account));
    assert_eq!(
        h.store.get_task(USER, id).await.unwrap().status,
        TaskStatus::Completed
    );
}

/// Issue item 1, the other half: the sender died; the message ends uncertain, never resent.
pub async fn an_uncertain_message_whose_sender_died_ends_uncertain(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    h.strategy
        .script("@p_0000", Script::AfterDelivery(timeout()));
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::AccountDead {
            code: "SESSION_REVOKED".into(),
        }),
    );
    let id = h
        .task(
            Priority::Medium,
            message("Hi {first_name|there}"),
            &refs(&people("p", 3)),
        )
        .await;
    h.start(id).await;
    h.run().await;
    let calls = h.strategy.calls_of("@p_0000");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].account, calls[1].account);
    let t = target(&h, id, 0).await;
    assert_eq!(t.status, TargetStatus::Uncertain);
    assert_eq!(t.outcome, Some(Outcome::Uncertain));
    assert_eq!(t.error_message.as_deref(), Some("SENDER_UNAVAILABLE"));
    // Only the delivery of the first call reached p_0000; the others were sent by the living
    // account.
    assert_eq!(h.strategy.sandbox.counters().messages, 3);
    let task = h.store.get_task(USER, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
}

/// Issue item 2: a refused write is charged (the pause holds after it) and retried a bounded
/// number of times.
pub async fn refused_writes_are_charged_and_bounded(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    for _ in 0..10 {
        h.strategy.script(
            "@p_0000",
            Script::Fail(PlatformError::Refused {
                code: "CHAT_MEMBER_ADD_FAILED".into(),
            }),
        );
    }
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    h.start(id).await;
    h.run().await;
    let calls = h.strategy.calls_of("@p_0000");
    assert_eq!(calls.len(), 3, "bounded: {calls:?}");
    let t = target(&h, id, 0).await;
    assert_eq!(t.status, TargetStatus::Failed);
    assert_eq!(t.error_message.as_deref(), Some("CHAT_MEMBER_ADD_FAILED"));
    // Every call of the account, refused or not, kept the pause: each was charged.
    let mut all = h.strategy.log.lock().unwrap().clone();
    all.sort_by_key(|c| c.at);
    for w in all.windows(2) {
        assert!(w[1].at - w[0].at >= h.policy.invite.pause_min, "{all:?}");
    }
    // The audit sees every charged attempt.
    let logs = h.store.logs(USER, id, &LogFilter::default()).await.unwrap();
    let events = events_from_logs(&logs, |_| "@group_a".to_owned());
    assert_eq!(events.len(), 4);
    assert!(audit(&h.policy, &events).is_empty());
}

/// Issue item 3: the invite landed, the message was refused: the confirmed invite stays.
pub async fn invite_and_message_keeps_a_confirmed_invite_when_the_message_fails(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    // The first call of p_0000 is the invite: it goes through; the message is refused.
    h.strategy.script("@p_0000", Script::Pass);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Target {
            outcome: Outcome::PremiumRequired,
            code: "PRIVACY_PREMIUM_REQUIRED".into(),
        }),
    );
    let id = h
        .task(
            Priority::Medium,
            invite_and_message("@group_a", "Welcome!"),
            &refs(&people("p", 1)),
        )
        .await;
    h.start(id).await;
    h.run().await;
    let t = target(&h, id, 0).await;
    assert_eq!(t.status, TargetStatus::Success);
    assert_eq!(t.outcome, Some(Outcome::Invited));
    assert_eq!(t.result["message"], serde_json::json!("premium_required"));
    let logs = h.store.logs(USER, id, &LogFilter::default()).await.unwrap();
    let parts: Vec<(&str, ExecutionStatus)> = logs
        .iter()
        .map(|l| (l.entry.action.as_str(), l.entry.status))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("invite", ExecutionStatus::Success),
            ("message", ExecutionStatus::Failed)
        ]
    );
    assert_eq!(h.strategy.sandbox.counters().invites, 1);
}

/// Issue item 3: a message that hit a passing error is retried alone, through the same
/// account, after the pause; the invite is not redone.
pub async fn invite_and_message_retries_only_the_message(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    h.strategy.script("@p_0000", Script::Pass);
    h.strategy.script(
        "@p_0000",
        Script::Fail(PlatformError::Transient {
            code: "IO_CONNECTION_REFUSED".into(),
        }),
    );
    let id = h
        .task(
            Priority::Medium,
            invite_and_message("@group_a", "Welcome!"),
            &refs(&people("p", 2)),
        )
        .await;
    h.start(id).await;
    h.run().await;
    let calls = h.strategy.calls_of("@p_0000");
    let kinds: Vec<&str> = calls.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec!["invite", "message", "message"]);
    assert!(
        calls.iter().all(|c| c.account == calls[0].account),
        "{calls:?}"
    );
    // The message came a pause after the invite: two writes of one account.
    assert!(calls[1].at - calls[0].at >= h.policy.invite.pause_min);
    let t = target(&h, id, 0).await;
    assert_eq!(t.outcome, Some(Outcome::Invited));
    assert_eq!(t.result["message"], serde_json::json!("sent"));
    let counters = h.strategy.sandbox.counters();
    assert_eq!((counters.invites, counters.messages), (2, 2));
}

/// Issue item 4: a slow call is not a dead worker. While the worker's heartbeat lives, another
/// worker leaves its claim alone, and the slow result is recorded.
pub async fn a_live_slow_claim_is_not_recovered_by_another_worker(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 1)))
        .await;
    h.start(id).await;
    let (slow, release) = h.pass_held_at("@p_0000").await;
    // Half an hour in the call; the worker's heartbeat (its run loop's) goes on meanwhile.
    h.clock.advance(TimeDelta::minutes(30));
    h.store
        .heartbeat(&h.engine.config().worker_id, h.clock.now())
        .await
        .unwrap();
    let other = h.restart();
    other.engine.tick().await.unwrap();
    assert_eq!(target(&h, id, 0).await.status, TargetStatus::InProgress);
    release.notify_one();
    slow.await.unwrap().unwrap();
    let t = target(&h, id, 0).await;
    assert_eq!(t.outcome, Some(Outcome::Invited));
    assert_eq!(h.strategy.calls_of("@p_0000").len(), 1);
}

/// Issue item 5: a pause during a pass stops the claims of the steps after it.
pub async fn a_pause_stops_claims_within_the_pass(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    h.start(id).await;
    let (pass, release) = h.pass_held_at("@p_0000").await;
    h.store
        .transition(USER, id, TaskEvent::Pause, None, h.clock.now())
        .await
        .unwrap();
    release.notify_one();
    pass.await.unwrap().unwrap();
    // The call in flight finished and was recorded; nothing else was claimed.
    assert_eq!(target(&h, id, 0).await.outcome, Some(Outcome::Invited));
    assert_eq!(target(&h, id, 1).await.status, TargetStatus::Pending);
    assert!(h.strategy.calls_of("@p_0001").is_empty());
}

/// Issue item 6: an invite task and a message task on one account keep the pause between
/// any two of its writes.
pub async fn writes_of_every_kind_keep_the_pause(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let a = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("a", 3)))
        .await;
    let b = h
        .task(Priority::Medium, message("Hello"), &refs(&people("b", 3)))
        .await;
    h.start(a).await;
    h.start(b).await;
    h.run().await;
    let mut all = h.strategy.log.lock().unwrap().clone();
    assert_eq!(all.len(), 6);
    all.sort_by_key(|c| c.at);
    for w in all.windows(2) {
        assert!(w[1].at - w[0].at >= h.policy.invite.pause_min, "{all:?}");
    }
}

/// Issue item 7: a flood wait in the start-up rights check is a timer, not the end of the
/// account.
pub async fn a_flood_wait_in_the_rights_check_cools_the_account_down(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script_rights(PlatformError::FloodWait {
        seconds: 600,
        code: "FLOOD_WAIT".into(),
    });
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    h.start(id).await;
    let started = h.clock.now();
    h.run().await;
    assert_eq!(
        h.store.get_task(USER, id).await.unwrap().status,
        TaskStatus::Completed
    );
    let lanes = h.store.lanes(USER, id).await.unwrap();
    assert_eq!(lanes[0].status, LaneStatus::Active);
    let first = h.strategy.log.lock().unwrap()[0].at;
    assert!(
        first - started >= TimeDelta::seconds(600),
        "{first} {started}"
    );
}

/// Issue item 8: a task whose settings overflow date arithmetic runs (its look-back reaches
/// all the past) and does not stop the others.
pub async fn an_enormous_dedupe_window_is_all_the_past(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    h.update_settings(id, |s| s.dedupe_days = Some(u32::MAX))
        .await;
    let other = h
        .task(Priority::Medium, invite("@group_b"), &refs(&people("q", 2)))
        .await;
    h.start(id).await;
    h.start(other).await;
    h.run().await;
    for t in [id, other] {
        assert_eq!(
            h.store.get_task(USER, t).await.unwrap().status,
            TaskStatus::Completed
        );
    }
}

/// Issue item 8: a panic in one task's work pauses that task; the engine and the other tasks
/// go on, and the health tells.
pub async fn a_panic_in_one_task_pauses_only_that_task(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    h.strategy.script("@p_0000", Script::Panic);
    let bad = h
        .task(Priority::High, invite("@group_a"), &refs(&people("p", 2)))
        .await;
    let good = h
        .task(Priority::Low, invite("@group_b"), &refs(&people("q", 2)))
        .await;
    h.start(bad).await;
    h.start(good).await;
    h.run().await;
    let bad = h.store.get_task(USER, bad).await.unwrap();
    assert_eq!(bad.status, TaskStatus::Paused);
    assert!(bad.status_reason.unwrap().starts_with("internal error"));
    assert_eq!(
        h.store.get_task(USER, good).await.unwrap().status,
        TaskStatus::Completed
    );
    // The target in flight is not lost: it may have been acted on, so it is uncertain.
    assert_eq!(target(&h, bad.id, 0).await.status, TargetStatus::Uncertain);
    assert_eq!(h.engine.health().panics, 1);
}

/// Issue item 10: message random_ids never repeat, across restarts of workers with the same
/// seed.
pub async fn random_ids_never_repeat_across_restarts(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 1);
    let first = h
        .task(Priority::Medium, message("Hi"), &refs(&people("a", 3)))
        .await;
    h.start(first).await;
    h.run().await;
    let h2 = h.restart();
    let second = h2
        .task(Priority::Medium, message("Hi"), &refs(&people("b", 3)))
        .await;
    h2.start(second).await;
    h2.run().await;
    let mut ids = Vec::new();
    for task in [first, second] {
        for t in h2.store.targets(USER, task, 0, 0).await.unwrap() {
            assert_eq!(t.outcome, Some(Outcome::Sent));
            ids.push(t.random_id.unwrap());
        }
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    // Six people, six deliveries: no later message was swallowed as a duplicate.
    assert_eq!(h2.strategy.sandbox.counters().messages, 6);
}

/// A crash after delivery of a message, restarted: the retry goes through the same account
/// with the same random_id, and the two-account case cannot send it twice.
pub async fn a_crash_after_delivery_is_settled_through_the_sender(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    h.strategy.script("@p_0000", Script::CrashAfter);
    let id = h
        .task(Priority::Medium, message("Hi"), &refs(&people("p", 4)))
        .await;
    h.start(id).await;
    let h2 = h.crash_and_restart().await;
    h2.run().await;
    let calls = h2.strategy.calls_of("@p_0000");
    assert!(
        calls.iter().all(|c| c.account == calls[0].account),
        "{calls:?}"
    );
    assert_eq!(h2.strategy.sandbox.counters().messages, 4);
    assert_eq!(target(&h2, id, 0).await.outcome, Some(Outcome::Sent));
    let store: &Arc<dyn TaskStore> = &h2.store;
    assert_eq!(
        store.get_task(USER, id).await.unwrap().status,
        TaskStatus::Completed
    );
}

/// Adding a contact is a write of its own: the pause holds between it and the invite, the
/// invite goes through the account whose contacts hold the person, and the ledger counts it.
pub async fn a_contact_and_its_invite_keep_the_pause(ports: Ports) {
    let h = Harness::new(ports, simple_policy(), 2);
    let id = h
        .task(Priority::Medium, invite("@group_a"), &refs(&people("p", 3)))
        .await;
    h.update_settings(id, |s| s.add_to_contacts = true).await;
    h.start(id).await;
    h.run().await;
    let mut all = h.strategy.log.lock().unwrap().clone();
    all.sort_by_key(|c| c.at);
    for n in 1..=2 {
        let of: Vec<_> = all.iter().filter(|c| c.account == account(n)).collect();
        for w in of.windows(2) {
            assert!(w[1].at - w[0].at >= h.policy.invite.pause_min, "{all:?}");
        }
    }
    for p in ["@p_0000", "@p_0001", "@p_0002"] {
        let calls = h.strategy.calls_of(p);
        let kinds: Vec<&str> = calls.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec!["contact", "invite"], "{p}: {calls:?}");
        assert_eq!(calls[0].account, calls[1].account, "{p}: {calls:?}");
    }
    for t in h.store.targets(USER, id, 0, 0).await.unwrap() {
        assert_eq!(t.outcome, Some(Outcome::Invited));
        assert!(t.contact_added);
    }
    let logs = h.store.logs(USER, id, &LogFilter::default()).await.unwrap();
    let events = events_from_logs(&logs, |_| "@group_a".to_owned());
    assert_eq!(events.len(), 6);
    assert!(audit(&h.policy, &events).is_empty());
}
