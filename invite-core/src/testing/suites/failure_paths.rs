//! The engine's failure paths as the store keeps them: claims only while the task runs, targets
//! pinned to their sender, the two stages of `invite_and_message`, claims kept alive by their
//! holder's heartbeat, late results, settlements, abandoned pins and `random_id`s.

use std::collections::BTreeSet;

use crate::domain::{AccountId, Outcome, Target, TargetStatus, TaskEvent, TaskId};
use crate::ports::{
    Claim, ClaimStage, LogFilter, SENDER_UNAVAILABLE, Settlement, StoreError, abandonment,
    message_random_id,
};

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn TaskStore>;
use crate::ports::TaskStore;

/// A claim of the follow-up stage (the message after a confirmed invite).
fn followup(task: TaskId, account: &AccountId, now: chrono::DateTime<chrono::Utc>) -> Claim {
    let mut c = claim(task, account, now, Some(77));
    c.stage = ClaimStage::Followup;
    c
}

/// The stored row of `target`.
async fn stored(s: &Ctx, target: &Target) -> Target {
    s.targets(ALICE, target.task_id, 0, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == target.id)
        .expect("the target is stored")
}

/// The stored status, pin and account of `target`.
async fn status(s: &Ctx, target: &Target) -> (TargetStatus, Option<AccountId>, Option<AccountId>) {
    let t = stored(s, target).await;
    (t.status, t.sender, t.account_id)
}

/// Claims a message target as `account`, marks it uncertain and settles it as not sent: it is
/// back to `pending`, pinned to `account`.
async fn pin_to(
    s: &Ctx,
    task: TaskId,
    account: &AccountId,
    at: chrono::DateTime<chrono::Utc>,
) -> Target {
    let t = take(s, &claim(task, account, at, Some(5))).await;
    s.mark_uncertain(t.id, account, None).await.unwrap();
    s.settle_uncertain(t.id, Settlement::Retry).await.unwrap();
    t
}

pub(crate) async fn a_claim_never_takes_a_target_pinned_to_another_account(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..2)).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    let pinned = pin_to(&s, id, &a, t0()).await;
    assert_eq!(stored(&s, &pinned).await.sender, Some(a.clone()));
    // `b` passes over the pinned target to the next one, then finds nothing.
    let other = take(&s, &claim(id, &b, t0() + mins(1), Some(6))).await;
    assert_ne!(other.id, pinned.id);
    assert_eq!(
        s.claim_target(&claim(id, &b, t0() + mins(1), Some(6)))
            .await
            .unwrap(),
        None,
        "a target pinned to another account is never taken"
    );
    let again = take(&s, &claim(id, &a, t0() + mins(2), Some(9))).await;
    assert_eq!(
        (
            again.id,
            again.random_id,
            again.sender.clone(),
            again.attempts
        ),
        (pinned.id, pinned.random_id, Some(a), 2)
    );
}

pub(crate) async fn a_claim_takes_nothing_from_a_task_that_is_not_running(s: Ctx) {
    let a = acc("acc-a");
    let never_started = seed(&s, ALICE, members(0..3)).await;
    assert_eq!(
        s.claim_target(&claim(never_started, &a, t0(), None))
            .await
            .unwrap(),
        None,
        "a PENDING task gives nothing"
    );
    let id = seed_running(&s, ALICE, members(0..3)).await;
    take(&s, &claim(id, &a, t0(), None)).await;
    s.transition(ALICE, id, TaskEvent::Pause, None, t0())
        .await
        .unwrap();
    assert_eq!(
        s.claim_target(&claim(id, &a, t0(), None)).await.unwrap(),
        None,
        "a PAUSED task gives nothing"
    );
    s.transition(ALICE, id, TaskEvent::Resume, None, t0())
        .await
        .unwrap();
    take(&s, &claim(id, &a, t0(), None)).await;
    s.transition(ALICE, id, TaskEvent::Cancel, None, t0())
        .await
        .unwrap();
    assert_eq!(
        s.claim_target(&claim(id, &a, t0(), None)).await.unwrap(),
        None,
        "a CANCELLED task gives nothing"
    );
    let p = s.progress(ALICE, id).await.unwrap();
    assert_eq!(
        (
            p.count(TargetStatus::InProgress),
            p.count(TargetStatus::Pending)
        ),
        (2, 1)
    );
}

pub(crate) async fn followup_claims_take_the_message_after_a_confirmed_invite(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..3)).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    assert_eq!(
        s.claim_target(&followup(id, &a, t0())).await.unwrap(),
        None,
        "nothing to follow up before an invite"
    );
    let invited = take(&s, &claim(id, &a, t0(), None)).await;
    let rec = record(&invited, &a, Outcome::Invited, t0() + mins(1));
    let mut wrong = rec.clone();
    wrong.account_id = b.clone();
    assert_eq!(
        s.record_invite_part(&wrong).await.unwrap_err(),
        StoreError::NotFound
    );
    s.record_invite_part(&rec).await.unwrap();
    let waiting = stored(&s, &invited).await;
    assert_eq!(
        (
            waiting.status,
            waiting.invite_outcome,
            waiting.sender.clone(),
            waiting.account_id.clone(),
            waiting.outcome
        ),
        (
            TargetStatus::Pending,
            Some(Outcome::Invited),
            Some(a.clone()),
            None,
            None
        )
    );
    assert!(s.followups(id, &a).await.unwrap().after_invite);
    assert!(!s.followups(id, &b).await.unwrap().after_invite);

    // First-stage claims, of any account, pass over the target whose invite is done.
    let first_b = take(&s, &claim(id, &b, t0() + mins(2), None)).await;
    let first_a = take(&s, &claim(id, &a, t0() + mins(2), None)).await;
    assert!(![first_a.id, first_b.id].contains(&invited.id));
    assert_eq!(
        s.claim_target(&claim(id, &a, t0() + mins(2), None))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.claim_target(&followup(id, &b, t0() + mins(2)))
            .await
            .unwrap(),
        None,
        "the message waits for the account of the invite"
    );
    let message = take(&s, &followup(id, &a, t0() + mins(3))).await;
    assert_eq!(
        (message.id, message.invite_outcome, message.attempts),
        (invited.id, Some(Outcome::Invited), 2)
    );
    assert_eq!(message.random_id, Some(message_random_id(77, invited.id)));
    assert!(!s.followups(id, &a).await.unwrap().after_invite);
    s.record_outcome(&record(&message, &a, Outcome::Sent, t0() + mins(4)))
        .await
        .unwrap();
    let done = stored(&s, &invited).await;
    assert_eq!(
        (done.status, done.outcome, done.invite_outcome),
        (
            TargetStatus::Success,
            Some(Outcome::Sent),
            Some(Outcome::Invited)
        )
    );
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(
        logs.len(),
        2,
        "the invite part and the message each have their row"
    );
    assert_eq!(logs[0].entry, rec.log);
}

pub(crate) async fn a_late_result_of_a_recovered_claim_wins_for_its_account(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..1)).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    // Held by a worker that never beat: recovery takes it.
    let t = take(&s, &claim(id, &a, t0(), Some(3))).await;
    assert_eq!(s.recover_stale(t0() + mins(1)).await.unwrap(), 1);
    assert_eq!(stored(&s, &t).await.status, TargetStatus::Uncertain);
    assert_eq!(
        s.record_outcome(&record(&t, &b, Outcome::Sent, t0() + mins(2)))
            .await
            .unwrap_err(),
        StoreError::NotFound,
        "another account has no result to report"
    );
    let rec = record(&t, &a, Outcome::Sent, t0() + mins(2));
    s.record_outcome(&rec).await.unwrap();
    let done = stored(&s, &t).await;
    assert_eq!(
        (done.status, done.outcome, done.account_id.clone()),
        (TargetStatus::Success, Some(Outcome::Sent), Some(a.clone()))
    );
    assert!(s.uncertain_targets(id).await.unwrap().is_empty());
    assert_eq!(
        s.settle_uncertain(t.id, Settlement::Retry)
            .await
            .unwrap_err(),
        StoreError::NotFound,
        "a target with its result needs no settling"
    );
    assert_eq!(
        s.record_outcome(&rec).await.unwrap_err(),
        StoreError::NotFound,
        "one result only"
    );
}

pub(crate) async fn recovery_takes_the_claims_of_silent_holders_only(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..5)).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    let held_by = |holder: &str, account: &AccountId, high| {
        let mut c = claim(id, account, t0(), high);
        c.holder = holder.to_owned();
        c
    };
    s.heartbeat("live", t0() + mins(10)).await.unwrap();
    // An older beat does not move the last one back.
    s.heartbeat("live", t0() + mins(1)).await.unwrap();
    s.heartbeat("silent", t0()).await.unwrap();
    s.heartbeat("retired", t0() + mins(10)).await.unwrap();
    let live = take(&s, &held_by("live", &a, Some(1))).await;
    let message = take(&s, &held_by("silent", &a, Some(2))).await;
    let invite = take(&s, &held_by("silent", &b, None)).await;
    let retired = take(&s, &held_by("retired", &b, None)).await;
    let unknown = take(&s, &held_by("never-beat", &b, None)).await;
    s.retire_holder("retired").await.unwrap();

    assert_eq!(s.recover_stale(t0() + mins(5)).await.unwrap(), 4);
    assert_eq!(
        status(&s, &live).await,
        (TargetStatus::InProgress, None, Some(a.clone())),
        "a live holder keeps its claim"
    );
    assert_eq!(
        status(&s, &message).await,
        (TargetStatus::Uncertain, Some(a.clone()), Some(a.clone())),
        "a message that may have left is pinned to its account"
    );
    for t in [invite, retired, unknown] {
        assert_eq!(
            status(&s, &t).await,
            (TargetStatus::Uncertain, None, Some(b.clone())),
            "a target without random_id is not pinned"
        );
    }
    assert_eq!(s.recover_stale(t0() + mins(10)).await.unwrap(), 0);
    assert_eq!(s.recover_stale(t0() + mins(11)).await.unwrap(), 1);
}

pub(crate) async fn a_retry_settlement_keeps_the_pin(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..2)).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    let message = take(&s, &claim(id, &a, t0(), Some(11))).await;
    let invite = take(&s, &claim(id, &a, t0(), None)).await;
    assert_eq!(
        s.mark_uncertain(message.id, &b, None).await.unwrap_err(),
        StoreError::NotFound,
        "only the claim's account marks it"
    );
    let entry = log(id, Some(&message), &a);
    s.mark_uncertain(message.id, &a, Some(entry.clone()))
        .await
        .unwrap();
    s.mark_uncertain(invite.id, &a, None).await.unwrap();
    let unsettled: Vec<_> = s
        .uncertain_targets(id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.sender))
        .collect();
    assert_eq!(
        unsettled,
        [(message.id, Some(a.clone())), (invite.id, None)],
        "a message is pinned, an invite is not"
    );
    for t in [&message, &invite] {
        s.settle_uncertain(t.id, Settlement::Retry).await.unwrap();
    }
    let back = stored(&s, &message).await;
    assert_eq!(
        (
            back.status,
            back.account_id.clone(),
            back.sender.clone(),
            back.random_id
        ),
        (
            TargetStatus::Pending,
            None,
            Some(a.clone()),
            message.random_id
        )
    );
    // `b` only gets the invite; the message waits for `a`.
    assert_eq!(take(&s, &claim(id, &b, t0(), Some(12))).await.id, invite.id);
    assert_eq!(
        s.claim_target(&claim(id, &b, t0(), Some(12)))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        take(&s, &claim(id, &a, t0(), Some(13))).await.id,
        message.id
    );
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].entry, entry);
}

pub(crate) async fn abandon_pinned_ends_the_targets_whose_sender_cannot_act(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..5)).await;
    let (gone, alive) = (acc("acc-gone"), acc("acc-alive"));
    let recent = t0() + mins(40);
    // A message of an account that is gone.
    let lost = pin_to(&s, id, &gone, recent).await;
    // An invite confirmed long ago whose message never came.
    let old_invite = take(&s, &claim(id, &alive, t0(), None)).await;
    s.record_invite_part(&record(&old_invite, &alive, Outcome::Invited, t0()))
        .await
        .unwrap();
    // A recent pin of a live account, and a target nobody holds.
    let kept = pin_to(&s, id, &alive, recent).await;
    let free = take(&s, &claim(id, &alive, recent, None)).await;
    s.release_target(free.id, &alive, None).await.unwrap();
    let before = [stored(&s, &lost).await, stored(&s, &old_invite).await];

    let now = t0() + mins(60);
    let ended = s
        .abandon_pinned(id, std::slice::from_ref(&gone), t0() + mins(30), now)
        .await
        .unwrap();
    assert_eq!(ended, 2);
    for (target, sender) in before.iter().zip([&gone, &alive]) {
        let want = abandonment(target, sender, now).expect("a message or a confirmed invite ends");
        let got = stored(&s, target).await;
        assert_eq!(
            (
                got.status,
                got.outcome,
                got.account_id.clone(),
                got.error_message.as_deref(),
                got.result.clone(),
                got.processed_at
            ),
            (
                want.outcome.target_status(),
                Some(want.outcome),
                Some(sender.clone()),
                Some(SENDER_UNAVAILABLE),
                want.result,
                Some(now)
            )
        );
    }
    assert_eq!(
        stored(&s, &lost).await.outcome,
        Some(Outcome::Uncertain),
        "a message that may have been sent ends uncertain"
    );
    assert_eq!(
        stored(&s, &old_invite).await.outcome,
        Some(Outcome::Invited),
        "a confirmed invite keeps its outcome"
    );
    assert!(
        s.uncertain_targets(id).await.unwrap().is_empty(),
        "an abandoned target is settled"
    );
    assert_eq!(stored(&s, &kept).await.status, TargetStatus::Pending);
    assert_eq!(stored(&s, &free).await.status, TargetStatus::Pending);
    let logs = s.logs(ALICE, id, &LogFilter::default()).await.unwrap();
    let abandoned: Vec<_> = logs
        .iter()
        .filter(|l| l.entry.action == "abandon")
        .map(|l| l.entry.clone())
        .collect();
    assert_eq!(
        abandoned,
        before
            .iter()
            .zip([&gone, &alive])
            .map(|(t, a)| abandonment(t, a, now).expect("ends").log)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        s.abandon_pinned(id, std::slice::from_ref(&gone), t0() + mins(30), now)
            .await
            .unwrap(),
        0
    );
}

pub(crate) async fn random_ids_are_unique_per_target_and_survive_a_new_claim(s: Ctx) {
    let id = seed_running(&s, ALICE, members(0..3)).await;
    let (a, b) = (acc("acc-a"), acc("acc-b"));
    // Two processes that drew the same random bits still give two targets two ids.
    let one = take(&s, &claim(id, &a, t0(), Some(0xDEAD))).await;
    let two = take(&s, &claim(id, &b, t0(), Some(0xDEAD))).await;
    assert_ne!(one.random_id, two.random_id);
    assert_eq!(one.random_id, Some(message_random_id(0xDEAD, one.id)));
    assert_eq!(two.random_id, Some(message_random_id(0xDEAD, two.id)));
    // High bits 0 count as 1, and only 31 of them are used.
    let three = take(&s, &claim(id, &a, t0(), Some(0))).await;
    assert_eq!(three.random_id, Some((1 << 32) | three.id.get()));
    s.release_target(one.id, &a, None).await.unwrap();
    let again = take(&s, &claim(id, &b, t0() + mins(1), Some(0xBEEF))).await;
    assert_eq!((again.id, again.random_id), (one.id, one.random_id));
}

pub(crate) async fn concurrent_claims_of_many_accounts_never_take_one_target_twice(s: Ctx) {
    const WORKERS: usize = 8;
    const PER_TASK: usize = 120;
    let tasks = [
        seed_running(&s, ALICE, members(0..PER_TASK)).await,
        seed_running(&s, BOB, members(0..PER_TASK)).await,
    ];
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let handle = s.another().await;
        workers.push(tokio::spawn(async move {
            let account = acc(&format!("acc-{w}"));
            let mut taken = Vec::new();
            let mut open = tasks.to_vec();
            let mut turn = w;
            while !open.is_empty() {
                let task = open[turn % open.len()];
                turn += 1;
                let mut c = claim(task, &account, t0(), Some(0x5EED));
                c.holder = format!("worker-{w}");
                match handle.claim_target(&c).await.unwrap() {
                    Some(t) => {
                        assert_eq!(t.account_id.as_ref(), Some(&account));
                        taken.push((t.id, t.random_id));
                    }
                    None => open.retain(|t| *t != task),
                }
            }
            taken
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let ids: BTreeSet<_> = all.iter().map(|(id, _)| *id).collect();
    let random_ids: BTreeSet<_> = all.iter().map(|(_, r)| *r).collect();
    assert_eq!(all.len(), 2 * PER_TASK, "every target claimed once");
    assert_eq!(ids.len(), 2 * PER_TASK, "no target claimed twice");
    assert_eq!(random_ids.len(), 2 * PER_TASK, "no random_id given twice");
}
