//! The limit ledger: reservations under a policy, refunds, history, account state, and one
//! winner when many race for the last slot.

use crate::domain::{AccountId, ActionKind};
use crate::limits::LimitPolicy;
use crate::ports::{
    AccountState, LimitReason, LimitScope, RateDecision, Reservation, ReserveRequest,
};
use chrono::TimeDelta;

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn LimitLedger>;
use crate::ports::LimitLedger;

/// Three invites per account per window, no pauses, spread or per-channel caps: only the
/// window decides.
fn small_policy() -> LimitPolicy {
    let mut p = LimitPolicy::telegram();
    p.invite.per_account = 3;
    p.invite.per_channel = None;
    p.invite.per_channel_lifetime = Some(5);
    p.invite.spread = false;
    p.invite.pause_min = TimeDelta::zero();
    p.invite.pause_max = TimeDelta::zero();
    p
}

fn request(
    account: &AccountId,
    channel: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> ReserveRequest {
    ReserveRequest {
        account_id: account.clone(),
        kinds: vec![ActionKind::Invite],
        channel: channel.to_owned(),
        now: at,
        pause_after: TimeDelta::zero(),
    }
}

fn reservation(decision: RateDecision) -> Reservation {
    match decision {
        RateDecision::Allowed {
            reservation: Some(r),
        } => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

pub(crate) async fn reserve_records_events_and_lifetime(s: Ctx) {
    let a = acc("acc-1");
    let p = small_policy();
    let mut req = request(&a, "@g1", t0());
    req.kinds = vec![ActionKind::Invite, ActionKind::Message];
    req.pause_after = TimeDelta::minutes(12);
    let r1 = reservation(s.reserve(&req, &p).await.unwrap());
    let h = s.history(&a, "@g1", t0() - mins(1)).await.unwrap();
    assert_eq!(h.state, AccountState::Active);
    assert_eq!(h.recent.len(), 2);
    assert!(
        h.recent
            .iter()
            .all(|e| e.at == t0() && e.channel == "@g1" && e.not_before_next == t0() + mins(12))
    );
    let mut kinds: Vec<_> = h.recent.iter().map(|e| e.kind).collect();
    kinds.sort();
    assert_eq!(kinds, [ActionKind::Invite, ActionKind::Message]);
    assert_eq!(
        (
            h.lifetime_of(ActionKind::Invite),
            h.lifetime_of(ActionKind::Message)
        ),
        (1, 1)
    );

    // The pause stored with the first reservation holds the next one back.
    let early = s
        .reserve(&request(&a, "@g2", t0() + mins(5)), &p)
        .await
        .unwrap();
    assert_eq!(
        early,
        RateDecision::Wait {
            until: t0() + mins(12),
            reason: LimitReason::Pause,
            scope: LimitScope::Account
        }
    );
    let r2 = reservation(
        s.reserve(&request(&a, "@g2", t0() + mins(12)), &p)
            .await
            .unwrap(),
    );
    assert_ne!(r1, r2);
    let h = s.history(&a, "@g2", t0() - mins(1)).await.unwrap();
    assert_eq!(h.recent.len(), 3, "recent events span every channel");
    assert!(
        h.recent.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
    assert_eq!(
        (
            h.lifetime_of(ActionKind::Invite),
            h.lifetime_of(ActionKind::Message)
        ),
        (1, 0),
        "lifetime is per channel"
    );
    let since = s.history(&a, "@g1", t0() + mins(1)).await.unwrap();
    assert_eq!(since.recent.len(), 1);
    let fresh = s.history(&acc("acc-new"), "@g1", t0()).await.unwrap();
    assert_eq!(
        (fresh.state, fresh.recent.len(), fresh.lifetime.len()),
        (AccountState::Active, 0, 0)
    );
}

pub(crate) async fn the_window_and_lifetime_caps_hold(s: Ctx) {
    let a = acc("acc-1");
    let p = small_policy();
    for i in 0..3 {
        reservation(
            s.reserve(&request(&a, "@g1", t0() + mins(i)), &p)
                .await
                .unwrap(),
        );
    }
    let full = s
        .reserve(&request(&a, "@g1", t0() + mins(10)), &p)
        .await
        .unwrap();
    assert_eq!(
        full,
        RateDecision::Wait {
            until: t0() + p.window,
            reason: LimitReason::AccountWindow,
            scope: LimitScope::Account
        }
    );
    // A day later the window is free again; the lifetime cap (5) then closes the channel.
    let day = t0() + p.window + mins(1);
    for i in 0..2 {
        reservation(
            s.reserve(&request(&a, "@g1", day + mins(i)), &p)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        s.reserve(&request(&a, "@g1", day + mins(5)), &p)
            .await
            .unwrap(),
        RateDecision::Denied {
            reason: LimitReason::ChannelLifetime,
            permanent: true,
            scope: LimitScope::Channel
        }
    );
    reservation(
        s.reserve(&request(&a, "@g2", day + mins(5)), &p)
            .await
            .unwrap(),
    );
}

pub(crate) async fn refunds_return_the_slot(s: Ctx) {
    let a = acc("acc-1");
    let p = small_policy();
    let mut taken = Vec::new();
    for i in 0..3 {
        taken.push(reservation(
            s.reserve(&request(&a, "@g1", t0() + mins(i)), &p)
                .await
                .unwrap(),
        ));
    }
    assert!(matches!(
        s.reserve(&request(&a, "@g1", t0() + mins(5)), &p)
            .await
            .unwrap(),
        RateDecision::Wait { .. }
    ));
    // Another account's refund of the id changes nothing.
    s.refund(&acc("acc-2"), taken[1]).await.unwrap();
    assert_eq!(
        s.history(&a, "@g1", t0() - mins(1))
            .await
            .unwrap()
            .recent
            .len(),
        3
    );
    s.refund(&a, taken[1]).await.unwrap();
    let h = s.history(&a, "@g1", t0() - mins(1)).await.unwrap();
    assert_eq!((h.recent.len(), h.lifetime_of(ActionKind::Invite)), (2, 2));
    // Refunding twice is harmless.
    s.refund(&a, taken[1]).await.unwrap();
    assert_eq!(
        s.history(&a, "@g1", t0() - mins(1))
            .await
            .unwrap()
            .lifetime_of(ActionKind::Invite),
        2
    );
    reservation(
        s.reserve(&request(&a, "@g1", t0() + mins(6)), &p)
            .await
            .unwrap(),
    );
}

pub(crate) async fn account_state_is_kept_and_decides(s: Ctx) {
    let a = acc("acc-1");
    let p = small_policy();
    let cooling = AccountState::CoolingDown {
        until: t0() + mins(30),
        reason: "FLOOD_WAIT_1800".into(),
    };
    s.set_state(&a, &cooling).await.unwrap();
    assert_eq!(s.history(&a, "@g1", t0()).await.unwrap().state, cooling);
    assert_eq!(
        s.reserve(&request(&a, "@g1", t0()), &p).await.unwrap(),
        RateDecision::Wait {
            until: t0() + mins(30),
            reason: LimitReason::Cooldown,
            scope: LimitScope::Account
        }
    );
    reservation(
        s.reserve(&request(&a, "@g1", t0() + mins(30)), &p)
            .await
            .unwrap(),
    );
    let dead = AccountState::Dead {
        reason: "SESSION_REVOKED".into(),
    };
    s.set_state(&a, &dead).await.unwrap();
    assert_eq!(s.history(&a, "@g1", t0()).await.unwrap().state, dead);
    assert!(matches!(
        s.reserve(&request(&a, "@g1", t0() + mins(60)), &p)
            .await
            .unwrap(),
        RateDecision::Denied {
            reason: LimitReason::AccountDead,
            permanent: true,
            ..
        }
    ));
    s.set_state(&a, &AccountState::Active).await.unwrap();
    assert_eq!(
        s.history(&a, "@g1", t0()).await.unwrap().state,
        AccountState::Active
    );
}

pub(crate) async fn racers_for_the_last_slot_have_one_winner(s: Ctx) {
    let a = acc("acc-race");
    let p = small_policy();
    for i in 0..2 {
        reservation(
            s.reserve(&request(&a, "@g1", t0() - mins(60 - i)), &p)
                .await
                .unwrap(),
        );
    }
    let mut racers = Vec::new();
    for i in 0..8 {
        let handle = s.another().await;
        let (a, p) = (a.clone(), p);
        racers.push(tokio::spawn(async move {
            handle
                .reserve(&request(&a, &format!("@g{i}"), t0()), &p)
                .await
                .unwrap()
        }));
    }
    let mut allowed = 0;
    for r in racers {
        match r.await.unwrap() {
            RateDecision::Allowed { reservation } => {
                assert!(reservation.is_some());
                allowed += 1;
            }
            RateDecision::Wait { reason, .. } => assert_eq!(reason, LimitReason::AccountWindow),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(allowed, 1, "exactly one racer takes the last slot");
    let h = s.history(&a, "@g0", t0() - p.window).await.unwrap();
    assert_eq!(h.recent.len(), 3);
}

pub(crate) async fn performed_moves_the_events_of_a_reservation(s: Ctx) {
    let (a, b) = (acc("acc-1"), acc("acc-2"));
    let p = small_policy();
    let mut req = request(&a, "@g1", t0());
    req.kinds = vec![ActionKind::Invite, ActionKind::Message];
    req.pause_after = TimeDelta::minutes(12);
    let r = reservation(s.reserve(&req, &p).await.unwrap());
    let other = reservation(s.reserve(&request(&b, "@g1", t0()), &p).await.unwrap());
    // Another account's id, and an unknown one, change nothing.
    s.performed(&b, r, t0() + mins(30)).await.unwrap();
    s.performed(&a, Reservation(i64::MAX), t0() + mins(30))
        .await
        .unwrap();
    let h = s.history(&a, "@g1", t0() - mins(1)).await.unwrap();
    assert!(h.recent.iter().all(|e| e.at == t0()));

    // Issued five minutes after the reservation: the events and the pause after them move.
    s.performed(&a, r, t0() + mins(5)).await.unwrap();
    let h = s.history(&a, "@g1", t0() - mins(1)).await.unwrap();
    assert_eq!(h.recent.len(), 2);
    assert!(
        h.recent
            .iter()
            .all(|e| e.at == t0() + mins(5) && e.not_before_next == t0() + mins(17)),
        "{:?}",
        h.recent
    );
    assert_eq!(h.lifetime_of(ActionKind::Invite), 1, "still one action");
    assert_eq!(
        s.reserve(&request(&a, "@g2", t0() + mins(16)), &p)
            .await
            .unwrap(),
        RateDecision::Wait {
            until: t0() + mins(17),
            reason: LimitReason::Pause,
            scope: LimitScope::Account
        },
        "the pause counts from the write"
    );
    let hb = s.history(&b, "@g1", t0() - mins(1)).await.unwrap();
    assert_eq!(hb.recent.len(), 1);
    assert_eq!(hb.recent[0].at, t0(), "other reservations stay");
    // A refund after the move still finds the reservation.
    s.refund(&b, other).await.unwrap();
    s.refund(&a, r).await.unwrap();
    assert!(
        s.history(&a, "@g1", t0() - mins(1))
            .await
            .unwrap()
            .recent
            .is_empty()
    );
}

/// The batched reads give, account by account and in the order asked, what the one-account
/// read gives: states, every event of the window, lifetime counts of the channel.
pub(crate) async fn histories_and_states_read_many_accounts_at_once(s: Ctx) {
    let (a, b, c, fresh) = (acc("acc-1"), acc("acc-2"), acc("acc-3"), acc("acc-new"));
    let p = small_policy();
    for (i, (account, channel)) in [(&a, "@g1"), (&a, "@g2"), (&b, "@g1"), (&a, "@g1")]
        .into_iter()
        .enumerate()
    {
        let at = t0() + mins(i as i64);
        reservation(s.reserve(&request(account, channel, at), &p).await.unwrap());
    }
    let cooling = AccountState::CoolingDown {
        until: t0() + mins(30),
        reason: "FLOOD_WAIT_1800".into(),
    };
    s.set_state(&b, &cooling).await.unwrap();
    let dead = AccountState::Dead {
        reason: "SESSION_REVOKED".into(),
    };
    s.set_state(&c, &dead).await.unwrap();

    let asked = [c.clone(), fresh.clone(), a.clone(), b.clone(), a.clone()];
    let since = t0() + TimeDelta::seconds(30);
    let many = s.histories(&asked, "@g1", since).await.unwrap();
    let mut one_by_one = Vec::new();
    for account in &asked {
        one_by_one.push(s.history(account, "@g1", since).await.unwrap());
    }
    assert_eq!(many, one_by_one);
    assert_eq!(many[2].recent.len(), 2, "acc-1's events after the first");
    assert_eq!(many[2].lifetime_of(ActionKind::Invite), 2);
    assert_eq!(many[3].state, cooling);

    let states = s.states(&asked).await.unwrap();
    assert_eq!(
        states,
        [
            dead,
            AccountState::Active,
            AccountState::Active,
            cooling,
            AccountState::Active
        ]
    );
    assert!(s.histories(&[], "@g1", since).await.unwrap().is_empty());
}

/// A group keyed as written, then resolved: `merge_channel` moves the accounts' events and
/// lifetime counts to the resolved key (added to what is there), so the group's per-channel
/// cap counts both; other accounts and other channels are untouched, and a refund afterwards
/// still returns its slot.
pub(crate) async fn merge_channel_counts_the_written_key_under_the_resolved_one(s: Ctx) {
    let (a, b) = (acc("acc-1"), acc("acc-2"));
    let mut p = small_policy();
    p.invite.per_account = 30;
    p.invite.per_channel = Some(3);
    let r1 = reservation(s.reserve(&request(&a, "@chan", t0()), &p).await.unwrap());
    reservation(
        s.reserve(&request(&a, "@chan", t0() + mins(1)), &p)
            .await
            .unwrap(),
    );
    reservation(
        s.reserve(&request(&a, "tg:1777", t0() + mins(2)), &p)
            .await
            .unwrap(),
    );
    reservation(
        s.reserve(&request(&a, "@other", t0() + mins(2)), &p)
            .await
            .unwrap(),
    );
    reservation(s.reserve(&request(&b, "@chan", t0()), &p).await.unwrap());
    // Before: the resolved key sees one of the group's three.
    let before = s.history(&a, "tg:1777", t0()).await.unwrap();
    assert_eq!(before.lifetime_of(ActionKind::Invite), 1);

    let moved = s
        .merge_channel(std::slice::from_ref(&a), "@chan", "tg:1777")
        .await
        .unwrap();
    assert_eq!(moved, 2);
    let h = s.history(&a, "tg:1777", t0() - mins(1)).await.unwrap();
    assert_eq!(h.lifetime_of(ActionKind::Invite), 3);
    let channels: Vec<&str> = h.recent.iter().map(|e| e.channel.as_str()).collect();
    assert_eq!(channels, ["tg:1777", "tg:1777", "tg:1777", "@other"]);
    let old = s.history(&a, "@chan", t0() - mins(1)).await.unwrap();
    assert_eq!(old.lifetime_of(ActionKind::Invite), 0);
    let other = s.history(&a, "@other", t0() - mins(1)).await.unwrap();
    assert_eq!(other.lifetime_of(ActionKind::Invite), 1);
    let untouched = s.history(&b, "@chan", t0() - mins(1)).await.unwrap();
    assert_eq!(untouched.lifetime_of(ActionKind::Invite), 1);
    assert_eq!(untouched.recent[0].channel, "@chan");

    // The group's cap of 3 is reached under its resolved key.
    let full = s
        .reserve(&request(&a, "tg:1777", t0() + mins(3)), &p)
        .await
        .unwrap();
    assert!(
        !matches!(full, RateDecision::Allowed { .. }),
        "{full:?}: the written key's events count"
    );
    // A merged reservation refunded returns its slot under the resolved key.
    s.refund(&a, r1).await.unwrap();
    let h = s.history(&a, "tg:1777", t0() - mins(1)).await.unwrap();
    assert_eq!(h.lifetime_of(ActionKind::Invite), 2);
    reservation(
        s.reserve(&request(&a, "tg:1777", t0() + mins(3)), &p)
            .await
            .unwrap(),
    );
    // Nothing to move, or into itself: nothing changes.
    assert_eq!(
        s.merge_channel(std::slice::from_ref(&a), "@chan", "tg:1777")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.merge_channel(std::slice::from_ref(&a), "tg:1777", "tg:1777")
            .await
            .unwrap(),
        0
    );
    let h = s.history(&a, "tg:1777", t0() - mins(1)).await.unwrap();
    assert_eq!(h.lifetime_of(ActionKind::Invite), 3);
}
