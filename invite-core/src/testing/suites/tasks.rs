//! Tasks: creation, idempotency, queries, updates, deletion, the state machine and isolation
//! between users.

use crate::domain::{
    ExecutionStatus, Platform, Priority, TargetStatus, TaskEvent, TaskStatus, TaskUpdate,
};
use crate::ports::{LogFilter, StoreError, TaskFilter};

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn TaskStore>;
use crate::ports::TaskStore;

const START: TaskEvent = TaskEvent::Start {
    scheduled_later: false,
};
const START_LATER: TaskEvent = TaskEvent::Start {
    scheduled_later: true,
};

pub(crate) async fn create_task_merges_duplicate_identifiers(s: Ctx) {
    let mut first = target("@Alice_One");
    first.first_name = Some("Alice".into());
    first.email = Some("alice@example.com".into());
    let mut again = target("https://t.me/alice_one");
    again.first_name = Some("Other".into());
    let people = vec![
        first,
        target("+7 916 123-45-67"),
        again,
        target("123456"),
        target("123456"),
    ];
    let created = s
        .create_task(new_task(ALICE, "launch"), people, None, t0())
        .await
        .unwrap();
    assert_eq!(
        (created.inserted, created.duplicates, created.replayed),
        (3, 2, false)
    );
    let task = &created.task;
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.user_id, ALICE);
    assert_eq!(task.name, "launch");
    assert_eq!(task.platform, Platform::Telegram);
    assert_eq!(task.priority, Priority::Medium);
    assert_eq!(task.settings, invite_settings("@test_group"));
    assert_eq!((task.created_at, task.updated_at), (t0(), t0()));
    assert_eq!(
        (
            task.started_at,
            task.finished_at,
            task.status_reason.clone()
        ),
        (None, None, None)
    );
    assert!(!task.start_requested);
    assert_eq!(s.get_task(ALICE, task.id).await.unwrap(), *task);

    let stored = s.targets(ALICE, task.id, 0, 0).await.unwrap();
    let keys: Vec<_> = stored
        .iter()
        .map(|t| t.person.identifier.dedupe_key())
        .collect();
    assert_eq!(keys, ["u:alice_one", "p:+79161234567", "i:123456"]);
    let alice = &stored[0];
    assert_eq!(
        alice.person.first_name.as_deref(),
        Some("Alice"),
        "the first one wins"
    );
    assert_eq!(alice.person.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.status, TargetStatus::Pending);
    assert_eq!(
        (alice.attempts, alice.random_id, alice.outcome),
        (0, None, None)
    );
    assert_eq!(alice.result, serde_json::json!({}));
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
}

pub(crate) async fn idempotency_keys_replay_or_refuse(s: Ctx) {
    let first = s
        .create_task(
            new_task(ALICE, "a"),
            members(0..3),
            Some(("key-1", "h1")),
            t0(),
        )
        .await
        .unwrap();
    assert!(!first.replayed);
    let again = s
        .create_task(
            new_task(ALICE, "a"),
            members(0..3),
            Some(("key-1", "h1")),
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!((again.inserted, again.duplicates), (0, 0));
    assert_eq!(again.task, first.task);
    let other = s
        .create_task(
            new_task(ALICE, "b"),
            members(0..1),
            Some(("key-1", "h2")),
            t0(),
        )
        .await;
    assert_eq!(other.unwrap_err(), StoreError::IdempotencyMismatch);
    // Keys are per user: Bob's "key-1" is his own.
    let bob = s
        .create_task(
            new_task(BOB, "b"),
            members(0..1),
            Some(("key-1", "h2")),
            t0(),
        )
        .await
        .unwrap();
    assert!(!bob.replayed);
    assert_ne!(bob.task.id, first.task.id);
    let all = s.list_tasks(ALICE, &TaskFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1, "a replay writes nothing");
    assert_eq!(s.progress(ALICE, first.task.id).await.unwrap().total(), 3);
}

pub(crate) async fn list_tasks_filters_and_pages_newest_first(s: Ctx) {
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut t = new_task(ALICE, &format!("t{i}"));
        if i == 3 {
            t.platform = Platform::Sandbox;
        }
        let created = s
            .create_task(t, vec![], None, t0() + mins(i))
            .await
            .unwrap();
        ids.push(created.task.id);
    }
    seed(&s, BOB, vec![]).await;
    s.transition(ALICE, ids[1], START, None, t0())
        .await
        .unwrap();

    let all = s.list_tasks(ALICE, &TaskFilter::default()).await.unwrap();
    let got: Vec<_> = all.iter().map(|t| t.id).collect();
    assert_eq!(got, [ids[3], ids[2], ids[1], ids[0]]);
    let page = TaskFilter {
        limit: 2,
        offset: 1,
        ..Default::default()
    };
    let got: Vec<_> = s
        .list_tasks(ALICE, &page)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, [ids[2], ids[1]]);
    let running = TaskFilter {
        status: Some(TaskStatus::InProgress),
        ..Default::default()
    };
    let got: Vec<_> = s
        .list_tasks(ALICE, &running)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, [ids[1]]);
    let sandbox = TaskFilter {
        platform: Some(Platform::Sandbox),
        ..Default::default()
    };
    let got: Vec<_> = s
        .list_tasks(ALICE, &sandbox)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, [ids[3]]);
}

pub(crate) async fn update_task_only_while_pending_or_paused(s: Ctx) {
    let id = seed(&s, ALICE, members(0..2)).await;
    let at = t0() + mins(5);
    let update = TaskUpdate {
        name: Some("renamed".into()),
        priority: Some(Priority::High),
        settings: Some(invite_settings("@other_group")),
        scheduled_at: Some(Some(t0() + mins(60))),
    };
    let task = s.update_task(ALICE, id, update, at).await.unwrap();
    assert_eq!(task.name, "renamed");
    assert_eq!(task.priority, Priority::High);
    assert_eq!(task.settings, invite_settings("@other_group"));
    assert_eq!(task.scheduled_at, Some(t0() + mins(60)));
    assert_eq!(task.updated_at, at);
    // `None` keeps a field; `Some(None)` clears the start time.
    let task = s
        .update_task(
            ALICE,
            id,
            TaskUpdate {
                scheduled_at: Some(None),
                ..Default::default()
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!((task.name.as_str(), task.scheduled_at), ("renamed", None));
    assert_eq!(s.get_task(ALICE, id).await.unwrap(), task);

    s.transition(ALICE, id, START, None, at).await.unwrap();
    let refused = s.update_task(ALICE, id, TaskUpdate::default(), at).await;
    assert_eq!(
        refused.unwrap_err(),
        StoreError::Conflict {
            current: TaskStatus::InProgress
        }
    );
    s.transition(ALICE, id, TaskEvent::Pause, None, at)
        .await
        .unwrap();
    let task = s
        .update_task(
            ALICE,
            id,
            TaskUpdate {
                name: Some("while paused".into()),
                ..Default::default()
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(task.name, "while paused");
    assert_eq!(task.status, TaskStatus::Paused);
}

pub(crate) async fn delete_task_cascades_but_not_while_running(s: Ctx) {
    let id = seed(&s, ALICE, members(0..3)).await;
    let a = acc("acc-1");
    s.ensure_lanes(id, std::slice::from_ref(&a)).await.unwrap();
    s.transition(ALICE, id, START, None, t0()).await.unwrap();
    let claimed = take(&s, &claim(id, &a, t0(), None)).await;
    s.record_outcome(&record(&claimed, &a, crate::domain::Outcome::Invited, t0()))
        .await
        .unwrap();
    assert_eq!(
        s.delete_task(ALICE, id).await.unwrap_err(),
        StoreError::Conflict {
            current: TaskStatus::InProgress
        }
    );
    s.transition(ALICE, id, TaskEvent::Cancel, None, t0())
        .await
        .unwrap();
    s.delete_task(ALICE, id).await.unwrap();
    assert_eq!(
        s.get_task(ALICE, id).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.targets(ALICE, id, 0, 0).await.unwrap_err(),
        StoreError::NotFound
    );
    assert!(s.lanes_of(&[id]).await.unwrap().is_empty());
    assert_eq!(s.pending_counts(&[id]).await.unwrap()[&id], 0);
    assert_eq!(
        s.delete_task(ALICE, id).await.unwrap_err(),
        StoreError::NotFound
    );
}

pub(crate) async fn transitions_follow_the_state_machine(s: Ctx) {
    let id = seed(&s, ALICE, members(0..1)).await;
    let later = t0() + mins(1);
    let task = s
        .transition(ALICE, id, START_LATER, None, later)
        .await
        .unwrap();
    assert_eq!(
        (task.status, task.start_requested, task.started_at),
        (TaskStatus::Pending, true, None)
    );
    assert_eq!(task.updated_at, later);

    let started = t0() + mins(2);
    let task = s.transition(ALICE, id, START, None, started).await.unwrap();
    assert_eq!(task.status, TaskStatus::InProgress);
    assert_eq!(
        (task.start_requested, task.started_at),
        (false, Some(started))
    );

    let paused = t0() + mins(3);
    let task = s
        .transition(
            ALICE,
            id,
            TaskEvent::Pause,
            Some("PEER_FLOOD x3".into()),
            paused,
        )
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Paused);
    assert_eq!(task.status_reason.as_deref(), Some("PEER_FLOOD x3"));

    let task = s
        .transition(ALICE, id, TaskEvent::Resume, None, t0() + mins(4))
        .await
        .unwrap();
    assert_eq!(
        (task.status, task.status_reason.as_deref()),
        (TaskStatus::InProgress, None)
    );
    assert_eq!(
        task.started_at,
        Some(started),
        "a resume keeps the first start"
    );

    let done = t0() + mins(5);
    let task = s
        .transition(ALICE, id, TaskEvent::Complete, None, done)
        .await
        .unwrap();
    assert_eq!(
        (task.status, task.finished_at, task.updated_at),
        (TaskStatus::Completed, Some(done), done)
    );
    assert_eq!(s.get_task(ALICE, id).await.unwrap(), task);

    for event in [
        START,
        TaskEvent::Pause,
        TaskEvent::Resume,
        TaskEvent::Cancel,
        TaskEvent::Fail,
    ] {
        assert_eq!(
            s.transition(ALICE, id, event, None, done)
                .await
                .unwrap_err(),
            StoreError::Conflict {
                current: TaskStatus::Completed
            },
            "{event:?}"
        );
    }

    let other = seed(&s, ALICE, vec![]).await;
    assert_eq!(
        s.transition(ALICE, other, TaskEvent::Resume, None, done)
            .await
            .unwrap_err(),
        StoreError::Conflict {
            current: TaskStatus::Pending
        }
    );
    let failed = s
        .transition(
            ALICE,
            other,
            TaskEvent::Fail,
            Some("CHANNEL_PRIVATE".into()),
            done,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.status_reason.as_deref(), Some("CHANNEL_PRIVATE"));
    assert_eq!(failed.finished_at, Some(done));
}

pub(crate) async fn concurrent_transitions_have_one_winner(s: Ctx) {
    let id = seed(&s, ALICE, vec![]).await;
    let mut racers = Vec::new();
    for i in 0..4 {
        let handle = s.another().await;
        racers.push(tokio::spawn(async move {
            handle
                .transition(ALICE, id, START, None, t0() + mins(i))
                .await
        }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(task) => {
                assert_eq!(task.status, TaskStatus::InProgress);
                won += 1;
            }
            Err(e) => assert_eq!(
                e,
                StoreError::Conflict {
                    current: TaskStatus::InProgress
                }
            ),
        }
    }
    assert_eq!(won, 1);
}

pub(crate) async fn running_cap_holds_for_racers_in_every_process(s: Ctx) {
    const CAP: u64 = 3;
    let first = seed(&s, ALICE, vec![]).await;
    let mut racing = Vec::new();
    for _ in 0..6 {
        racing.push(seed(&s, ALICE, vec![]).await);
    }
    // Bob's running tasks are his own.
    for _ in 0..4 {
        let bob = seed(&s, BOB, vec![]).await;
        s.transition(BOB, bob, START, None, t0()).await.unwrap();
    }
    let started = s
        .transition_capped(ALICE, first, START, CAP, t0())
        .await
        .unwrap();
    assert_eq!(started.status, TaskStatus::InProgress);

    // Six starts race from separate connections (as from separate processes) for two slots.
    let mut racers = Vec::new();
    for (i, id) in racing.iter().copied().enumerate() {
        let handle = s.another().await;
        racers.push(tokio::spawn(async move {
            handle
                .transition_capped(ALICE, id, START, CAP, t0() + mins(i as i64))
                .await
        }));
    }
    let mut won = Vec::new();
    for (id, r) in racing.iter().zip(racers) {
        match r.await.unwrap() {
            Ok(task) => {
                assert_eq!(task.status, TaskStatus::InProgress);
                won.push(*id);
            }
            Err(e) => assert_eq!(e, StoreError::RunningLimit { running: CAP }),
        }
    }
    assert_eq!(won.len(), 2, "{won:?}");
    let running = s
        .list_tasks(
            ALICE,
            &TaskFilter {
                status: Some(TaskStatus::InProgress),
                ..TaskFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(running.len() as u64, CAP);

    // A refused start left its task as it was.
    let loser = *racing.iter().find(|id| !won.contains(id)).unwrap();
    assert_eq!(
        s.get_task(ALICE, loser).await.unwrap().status,
        TaskStatus::Pending
    );
    // A start for later is not running: no slot needed.
    let later = s
        .transition_capped(ALICE, loser, START_LATER, CAP, t0())
        .await
        .unwrap();
    assert_eq!(later.status, TaskStatus::Pending);
    assert!(later.start_requested);
    // Pausing frees a slot; a resume takes one like a start.
    s.transition(ALICE, first, TaskEvent::Pause, None, t0())
        .await
        .unwrap();
    s.transition_capped(ALICE, loser, START, CAP, t0())
        .await
        .unwrap();
    assert_eq!(
        s.transition_capped(ALICE, first, TaskEvent::Resume, CAP, t0())
            .await
            .unwrap_err(),
        StoreError::RunningLimit { running: CAP }
    );
    // An illegal event is still a conflict, checked before the cap.
    assert_eq!(
        s.transition_capped(ALICE, won[0], START, CAP, t0())
            .await
            .unwrap_err(),
        StoreError::Conflict {
            current: TaskStatus::InProgress
        }
    );
}

pub(crate) async fn another_users_task_is_not_found(s: Ctx) {
    let id = seed(&s, ALICE, members(0..2)).await;
    let a = acc("acc-1");
    s.ensure_lanes(id, std::slice::from_ref(&a)).await.unwrap();
    s.append_log(log(id, None, &a)).await.unwrap();
    let nf = StoreError::NotFound;
    assert_eq!(s.get_task(BOB, id).await.unwrap_err(), nf);
    assert!(
        s.list_tasks(BOB, &TaskFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.targets(BOB, id, 0, 0).await.unwrap_err(), nf);
    assert_eq!(s.progress(BOB, id).await.unwrap_err(), nf);
    assert_eq!(
        s.logs(BOB, id, &LogFilter::default()).await.unwrap_err(),
        nf
    );
    assert_eq!(s.stats(BOB, id).await.unwrap_err(), nf);
    assert_eq!(s.lanes(BOB, id).await.unwrap_err(), nf);
    assert_eq!(
        s.transition(BOB, id, START, None, t0()).await.unwrap_err(),
        nf
    );
    assert_eq!(
        s.update_task(BOB, id, TaskUpdate::default(), t0())
            .await
            .unwrap_err(),
        nf
    );
    assert_eq!(s.add_targets(BOB, id, members(5..6)).await.unwrap_err(), nf);
    assert_eq!(s.delete_task(BOB, id).await.unwrap_err(), nf);
    // Nothing of Alice's changed.
    let task = s.get_task(ALICE, id).await.unwrap();
    assert_eq!(
        (task.status, task.name.as_str()),
        (TaskStatus::Pending, "campaign")
    );
    assert_eq!(s.progress(ALICE, id).await.unwrap().total(), 2);
    assert_eq!(s.lanes(ALICE, id).await.unwrap().len(), 1);
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].entry.status, ExecutionStatus::Pending);
}
