//! Targets: bulk inserts with de-duplication, editing rules, the report and progress counts.

use crate::domain::{Outcome, TargetSource, TargetStatus, TaskEvent, TaskStatus};
use crate::ports::{AddedTargets, StoreError};

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn TaskStore>;
use crate::ports::TaskStore;

pub(crate) async fn add_targets_counts_duplicates_of_the_task_and_the_batch(s: Ctx) {
    let id = seed(&s, ALICE, members(0..3)).await;
    let mut batch = members(2..6);
    batch.push(target("@MEMBER_00004"));
    let mut imported = target("777");
    imported.source = TargetSource::ParsingImport;
    imported.full_name = Some("Ivan Petrov".into());
    batch.push(imported);
    let added = s.add_targets(ALICE, id, batch).await.unwrap();
    assert_eq!(
        added,
        AddedTargets {
            inserted: 4,
            duplicates: 2
        }
    );
    let stored = s.targets(ALICE, id, 0, 0).await.unwrap();
    assert_eq!(stored.len(), 7);
    let last = stored.last().unwrap();
    assert_eq!(last.person.identifier, ident("777"));
    assert_eq!(last.person.source, TargetSource::ParsingImport);
    assert_eq!(last.person.full_name.as_deref(), Some("Ivan Petrov"));
    let empty = s.add_targets(ALICE, id, vec![]).await.unwrap();
    assert_eq!(empty, AddedTargets::default());
}

pub(crate) async fn add_targets_in_bulk_spans_several_statements(s: Ctx) {
    // More rows than one statement carries on either backend, with repeats across chunks.
    let id = seed(&s, ALICE, members(0..100)).await;
    let mut batch = members(50..12_050);
    batch.extend(members(11_990..12_010));
    let added = s.add_targets(ALICE, id, batch).await.unwrap();
    assert_eq!(
        added,
        AddedTargets {
            inserted: 11_950,
            duplicates: 50 + 20
        }
    );
    assert_eq!(s.progress(ALICE, id).await.unwrap().total(), 12_050);
    let page = s.targets(ALICE, id, 3, 12_000).await.unwrap();
    let names: Vec<_> = page
        .iter()
        .map(|t| t.person.identifier.to_string())
        .collect();
    assert_eq!(
        names,
        ["@member_12000", "@member_12001", "@member_12002"],
        "input order is kept"
    );
}

pub(crate) async fn bulk_targets_keep_every_character_of_their_names(s: Ctx) {
    // A batch large enough for the bulk path of every backend, with names a line-based
    // transfer format must escape.
    let id = seed(&s, ALICE, vec![]).await;
    let odd = [
        Some("tab\there"),
        Some("line\nbreak"),
        Some("back\\slash"),
        Some("\\N"),
        Some("carriage\rreturn"),
        Some("Имя «кавычки» 👋"),
        None,
    ];
    let mut batch = members(0..6_000);
    for (t, name) in batch.iter_mut().zip(odd.iter().cycle()) {
        t.first_name = name.map(str::to_owned);
    }
    let added = s.add_targets(ALICE, id, batch.clone()).await.unwrap();
    assert_eq!(added.inserted, 6_000);
    let stored = s.targets(ALICE, id, 0, 0).await.unwrap();
    let names: Vec<Option<String>> = stored.into_iter().map(|t| t.person.first_name).collect();
    let wanted: Vec<Option<String>> = batch.into_iter().map(|t| t.first_name).collect();
    assert_eq!(names, wanted);
}

pub(crate) async fn add_targets_only_while_pending_or_paused(s: Ctx) {
    let id = seed(&s, ALICE, members(0..1)).await;
    let start = TaskEvent::Start {
        scheduled_later: false,
    };
    s.transition(ALICE, id, start, None, t0()).await.unwrap();
    assert_eq!(
        s.add_targets(ALICE, id, members(1..3)).await.unwrap_err(),
        StoreError::Conflict {
            current: TaskStatus::InProgress
        }
    );
    s.transition(ALICE, id, TaskEvent::Pause, None, t0())
        .await
        .unwrap();
    assert_eq!(
        s.add_targets(ALICE, id, members(1..3))
            .await
            .unwrap()
            .inserted,
        2
    );
    s.transition(ALICE, id, TaskEvent::Cancel, None, t0())
        .await
        .unwrap();
    assert_eq!(
        s.add_targets(ALICE, id, members(3..5)).await.unwrap_err(),
        StoreError::Conflict {
            current: TaskStatus::Cancelled
        }
    );
    assert_eq!(
        s.progress(ALICE, id).await.unwrap().total(),
        3,
        "nothing half-written"
    );
    assert_eq!(
        s.add_targets(ALICE, crate::domain::TaskId::new(999_999), members(0..1))
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
}

pub(crate) async fn the_report_pages_targets_in_id_order(s: Ctx) {
    let id = seed(&s, ALICE, members(0..10)).await;
    let all = s.targets(ALICE, id, 0, 0).await.unwrap();
    assert_eq!(all.len(), 10, "a limit of 0 means no limit");
    let page = s.targets(ALICE, id, 4, 4).await.unwrap();
    assert_eq!(page, all[4..8]);
    assert!(s.targets(ALICE, id, 4, 10).await.unwrap().is_empty());
}

pub(crate) async fn progress_counts_statuses_and_outcomes(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..6)).await;
    let a = acc("acc-1");
    let outcomes = [
        Outcome::Invited,
        Outcome::AlreadyMember,
        Outcome::PrivacyRestricted,
        Outcome::Suppressed,
    ];
    for outcome in outcomes {
        let t = take(&s, &claim(id, &a, t0(), None)).await;
        s.record_outcome(&record(&t, &a, outcome, t0()))
            .await
            .unwrap();
    }
    take(&s, &claim(id, &a, t0(), None)).await;
    let p = s.progress(ALICE, id).await.unwrap();
    assert_eq!(p.total(), 6);
    assert_eq!(p.count(TargetStatus::Success), 2);
    assert_eq!(p.count(TargetStatus::Failed), 1);
    assert_eq!(p.count(TargetStatus::Skipped), 1);
    assert_eq!(p.count(TargetStatus::InProgress), 1);
    assert_eq!(p.count(TargetStatus::Pending), 1);
    assert_eq!(p.finished(), 4);
    for outcome in outcomes {
        assert_eq!(p.by_outcome.get(&outcome), Some(&1), "{outcome}");
    }
    assert_eq!(p.by_outcome.values().sum::<u64>(), 4);
}

/// `task_progress` is `get_task` and `progress` read together: for its owner only (another
/// user's task, a deleted one and one that never was are `NotFound`), with no counts for a task
/// without targets, and the task's state as it is after every change (a pause, a resume,
/// outcomes).
pub(crate) async fn task_progress_is_the_task_and_its_counts(s: Ctx) {
    let empty = seed(&s, ALICE, Vec::new()).await;
    let (task, p) = s.task_progress(ALICE, empty).await.unwrap();
    assert_eq!(task, s.get_task(ALICE, empty).await.unwrap());
    assert_eq!(p, crate::ports::Progress::default());
    assert_eq!(p.total(), 0);

    let id = seed_running(&s, ALICE, members(0..5)).await;
    let nf = StoreError::NotFound;
    assert_eq!(s.task_progress(BOB, id).await.unwrap_err(), nf);
    assert_eq!(s.task_progress(BOB, empty).await.unwrap_err(), nf);
    let never = crate::domain::TaskId::new(id.get() + 1_000);
    assert_eq!(s.task_progress(ALICE, never).await.unwrap_err(), nf);

    let a = acc("acc-1");
    let t = take(&s, &claim(id, &a, t0(), None)).await;
    s.record_outcome(&record(&t, &a, Outcome::Invited, t0()))
        .await
        .unwrap();
    take(&s, &claim(id, &a, t0(), None)).await;
    let (task, p) = s.task_progress(ALICE, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::InProgress);
    assert_eq!(p, s.progress(ALICE, id).await.unwrap());
    assert_eq!(p.total(), 5);
    assert_eq!(p.count(TargetStatus::Success), 1);
    assert_eq!(p.count(TargetStatus::InProgress), 1);
    assert_eq!(p.count(TargetStatus::Pending), 3);
    assert_eq!(p.by_outcome.get(&Outcome::Invited), Some(&1));

    let paused = s
        .transition(ALICE, id, TaskEvent::Pause, None, t0())
        .await
        .unwrap();
    let (task, _) = s.task_progress(ALICE, id).await.unwrap();
    assert_eq!(task, paused, "a pause shows at once");
    assert_eq!(task.status, TaskStatus::Paused);
    let resumed = s
        .transition(ALICE, id, TaskEvent::Resume, None, t0())
        .await
        .unwrap();
    assert_eq!(s.task_progress(ALICE, id).await.unwrap().0, resumed);

    s.transition(ALICE, empty, TaskEvent::Cancel, None, t0())
        .await
        .unwrap();
    s.delete_task(ALICE, empty).await.unwrap();
    assert_eq!(s.task_progress(ALICE, empty).await.unwrap_err(), nf);
}

/// The progress a fresh count of the task's targets gives.
async fn counted(s: &Ctx, id: crate::domain::TaskId) -> crate::ports::Progress {
    let mut p = crate::ports::Progress::default();
    for t in s.targets(ALICE, id, 0, 0).await.unwrap() {
        *p.by_status.entry(t.status).or_default() += 1;
        if let Some(o) = t.outcome {
            *p.by_outcome.entry(o).or_default() += 1;
        }
    }
    p
}

/// A store may keep a task's counts instead of counting its targets on every read: after each
/// of a seeded series of writes of every kind the engine makes — claims of every stage,
/// outcomes, confirmed invites, contacts, releases, uncertain claims, recovery of a silent
/// holder, settlements of every kind, abandoned pins, added targets, writes refused for a
/// target not held, another task deleted — its progress equals a fresh count of its targets.
pub(crate) async fn progress_equals_a_fresh_count_after_every_kind_of_write(s: Ctx) {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::ports::{ClaimStage, Settlement};

    let id = seed_running(&s, ALICE, members(0..30)).await;
    let other = seed_running(&s, ALICE, members(0..5)).await;
    let accounts = [acc("acc-1"), acc("acc-2"), acc("acc-3")];
    let outcomes = [
        Outcome::Invited,
        Outcome::AlreadyMember,
        Outcome::PrivacyRestricted,
        Outcome::Suppressed,
        Outcome::Uncertain,
        Outcome::UnknownError,
    ];
    let mut rng = StdRng::seed_from_u64(15);
    let mut held: Vec<(crate::domain::Target, crate::domain::AccountId)> = Vec::new();
    let mut added = 0;
    for step in 0..400 {
        let now = t0() + mins(step);
        let a = &accounts[rng.random_range(0..accounts.len())];
        let what = rng.random_range(0..14);
        let mut described = format!("step {step}: {what}");
        match what {
            0..=3 => {
                let mut c = claim(id, a, now, rng.random_bool(0.5).then_some(step as u32));
                c.stage = [
                    ClaimStage::First,
                    ClaimStage::AfterContact,
                    ClaimStage::Followup,
                ][rng.random_range(0..3)];
                if let Some(t) = s.claim_target(&c).await.unwrap() {
                    held.push((t, a.clone()));
                }
            }
            4 | 5 if !held.is_empty() => {
                let (t, a) = held.swap_remove(rng.random_range(0..held.len()));
                let outcome = outcomes[rng.random_range(0..outcomes.len())];
                // Not found when the claim was recovered meanwhile: nothing may move.
                let _ = s.record_outcome(&record(&t, &a, outcome, now)).await;
            }
            6 if !held.is_empty() => {
                let (t, a) = held.swap_remove(rng.random_range(0..held.len()));
                let _ = s
                    .record_invite_part(&record(&t, &a, Outcome::Invited, now))
                    .await;
            }
            7 if !held.is_empty() => {
                let (t, a) = held.swap_remove(rng.random_range(0..held.len()));
                let _ = s.record_contact_part(t.id, &a, log(id, Some(&t), &a)).await;
            }
            8 if !held.is_empty() => {
                let (t, a) = held.swap_remove(rng.random_range(0..held.len()));
                let _ = s.release_target(t.id, &a, None).await;
            }
            9 if !held.is_empty() => {
                let (t, a) = held.swap_remove(rng.random_range(0..held.len()));
                let _ = s
                    .mark_uncertain(t.id, &a, Some(log(id, Some(&t), &a)))
                    .await;
            }
            10 => {
                // The holder stops renewing: its claims become uncertain.
                let n = s.recover_stale(now + mins(1)).await.unwrap();
                described.push_str(&format!(" (recovered {n})"));
                held.clear();
            }
            11 => {
                for t in s.uncertain_targets(id).await.unwrap() {
                    let account = t.account_id.clone().unwrap_or_else(|| a.clone());
                    let settlement = match rng.random_range(0..3) {
                        0 => Settlement::Retry,
                        1 => Settlement::InviteConfirmed(record(
                            &t,
                            &account,
                            Outcome::AlreadyMember,
                            now,
                        )),
                        _ => Settlement::Final(record(&t, &account, Outcome::Uncertain, now)),
                    };
                    s.settle_uncertain(t.id, settlement).await.unwrap();
                }
            }
            12 => {
                let gone = std::slice::from_ref(a);
                let n = s
                    .abandon_pinned(id, gone, now - mins(30), now)
                    .await
                    .unwrap();
                described.push_str(&format!(" (abandoned {n})"));
            }
            13 if added < 3 => {
                added += 1;
                let pause = s.transition(ALICE, id, TaskEvent::Pause, None, now).await;
                pause.unwrap();
                let more = members(25 + added * 5..35 + added * 5);
                s.add_targets(ALICE, id, more).await.unwrap();
                s.transition(ALICE, id, TaskEvent::Resume, None, now)
                    .await
                    .unwrap();
            }
            _ => {}
        }
        let fresh = counted(&s, id).await;
        assert_eq!(s.progress(ALICE, id).await.unwrap(), fresh, "{described}");
        assert_eq!(
            s.task_progress(ALICE, id).await.unwrap(),
            (s.get_task(ALICE, id).await.unwrap(), fresh),
            "task_progress after {described}"
        );
    }
    let p = s.progress(ALICE, id).await.unwrap();
    assert!(
        p.finished() > 0 && p.total() == 50,
        "the series did work: {p:?}"
    );
    s.transition(ALICE, other, TaskEvent::Cancel, None, t0())
        .await
        .unwrap();
    s.delete_task(ALICE, other).await.unwrap();
    assert_eq!(s.progress(ALICE, id).await.unwrap(), counted(&s, id).await);
    assert_eq!(
        s.progress(ALICE, other).await.unwrap_err(),
        StoreError::NotFound
    );
}
