//! The seed's four acceptance checks and the other limit rules, on the local account manager
//! over the in-memory ledger, with a virtual clock.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::clock::{Clock, VirtualClock};
use invite_core::domain::{ActionKind, Platform};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::MemoryLedger;
use invite_core::ports::{
    AccountManager, AccountState, ErrorClass, ErrorReport, LimitReason, LimitScope, RateDecision,
    RateLimitCheck, UsageStats,
};

fn t0() -> DateTime<Utc> {
    "2026-03-02T12:00:00Z".parse().unwrap()
}

fn account(n: usize) -> invite_core::domain::AccountId {
    invite_core::domain::AccountId::parse(format!("sandbox-1-{n:02}")).unwrap()
}

struct Am {
    clock: Arc<VirtualClock>,
    am: LocalAccountManager,
}

impl Am {
    fn new(policy: LimitPolicy) -> Self {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let am = LocalAccountManager::new(Arc::new(MemoryLedger::new()), clock.clone(), 11)
            .with_policy(Platform::Telegram, policy);
        Self { clock, am }
    }

    async fn check(&self, channel: &str) -> RateDecision {
        self.am
            .check_rate_limit(&RateLimitCheck {
                account_id: account(1),
                platform: Platform::Telegram,
                kinds: vec![ActionKind::Invite],
                channel: channel.into(),
            })
            .await
            .unwrap()
    }

    /// Waits as told until the next invite into `channel` is allowed; returns its time.
    async fn invite_when_allowed(&self, channel: &str) -> Result<DateTime<Utc>, RateDecision> {
        loop {
            match self.check(channel).await {
                RateDecision::Allowed { .. } => return Ok(self.clock.now()),
                RateDecision::Wait { until, .. } => self.clock.set(until),
                denied => return Err(denied),
            }
        }
    }
}

fn no_spread() -> LimitPolicy {
    let mut p = LimitPolicy::telegram();
    p.invite.spread = false;
    p
}

#[tokio::test]
async fn pause_between_invites_is_within_10_to_15_minutes() {
    let am = Am::new(no_spread());
    let mut times = Vec::new();
    for i in 0..30 {
        let channel = if i % 2 == 0 { "@a" } else { "@b" };
        times.push(am.invite_when_allowed(channel).await.unwrap());
    }
    let gaps: Vec<TimeDelta> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .all(|g| *g >= TimeDelta::minutes(10) && *g <= TimeDelta::minutes(15)),
        "{gaps:?}"
    );
    // The pauses are drawn, not constant.
    assert!(gaps.iter().any(|g| *g != gaps[0]));
}

#[tokio::test]
async fn sixteenth_invite_into_one_channel_within_24h_is_refused() {
    let am = Am::new(no_spread());
    let first = am.invite_when_allowed("@a").await.unwrap();
    for _ in 1..15 {
        am.invite_when_allowed("@a").await.unwrap();
    }
    am.clock.advance(TimeDelta::minutes(20));
    match am.check("@a").await {
        RateDecision::Wait {
            until,
            reason: LimitReason::ChannelWindow,
            scope: LimitScope::Channel,
        } => assert_eq!(until, first + TimeDelta::hours(24)),
        other => panic!("16th invite: {other:?}"),
    }
    // Another channel is still open to the account.
    assert!(matches!(am.check("@b").await, RateDecision::Allowed { .. }));
}

#[tokio::test]
async fn thirty_first_invite_of_an_account_within_24h_is_refused() {
    let am = Am::new(no_spread());
    let first = am.invite_when_allowed("@a").await.unwrap();
    for i in 1..30 {
        am.invite_when_allowed(if i < 15 { "@a" } else { "@b" })
            .await
            .unwrap();
    }
    am.clock.advance(TimeDelta::minutes(20));
    match am.check("@c").await {
        RateDecision::Wait {
            until,
            reason: LimitReason::AccountWindow,
            scope: LimitScope::Account,
        } => assert_eq!(until, first + TimeDelta::hours(24)),
        other => panic!("31st invite: {other:?}"),
    }
}

#[tokio::test]
async fn two_hundred_and_first_lifetime_invite_is_refused_for_good() {
    let am = Am::new(LimitPolicy::telegram());
    for _ in 0..200 {
        am.invite_when_allowed("@a").await.unwrap();
    }
    // 200 invites at 15 a day took two weeks.
    assert!(am.clock.now() - t0() > TimeDelta::days(13));
    am.clock.advance(TimeDelta::days(30));
    assert_eq!(
        am.check("@a").await,
        RateDecision::Denied {
            reason: LimitReason::ChannelLifetime,
            permanent: true,
            scope: LimitScope::Channel
        }
    );
    assert!(matches!(am.check("@b").await, RateDecision::Allowed { .. }));
    am.clock.advance(TimeDelta::days(365));
    assert!(matches!(
        am.check("@a").await,
        RateDecision::Denied {
            permanent: true,
            ..
        }
    ));
}

#[tokio::test]
async fn rolling_window_allows_no_burst_across_midnight() {
    let am = Am::new(no_spread());
    am.clock.set("2026-03-02T14:00:00Z".parse().unwrap());
    let first = am.invite_when_allowed("@a").await.unwrap();
    for i in 1..30 {
        am.invite_when_allowed(if i < 15 { "@a" } else { "@b" })
            .await
            .unwrap();
    }
    assert!(am.clock.now() < "2026-03-03T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    // Just after midnight a calendar-day counter would reset; the rolling window does not.
    am.clock.set("2026-03-03T00:05:00Z".parse().unwrap());
    assert!(matches!(
        am.check("@c").await,
        RateDecision::Wait {
            reason: LimitReason::AccountWindow,
            ..
        }
    ));
    am.clock.set(first + TimeDelta::hours(24));
    assert!(matches!(am.check("@c").await, RateDecision::Allowed { .. }));
}

#[tokio::test]
async fn spread_rule_paces_the_day_evenly() {
    let am = Am::new(LimitPolicy::telegram());
    let mut times = Vec::new();
    for i in 0..30 {
        times.push(
            am.invite_when_allowed(if i % 2 == 0 { "@a" } else { "@b" })
                .await
                .unwrap(),
        );
    }
    for w in times.windows(2) {
        assert_eq!(w[1] - w[0], TimeDelta::minutes(48));
    }
}

#[tokio::test]
async fn flood_wait_and_peer_flood_cool_the_account_down() {
    let am = Am::new(LimitPolicy::telegram());
    let report = |class, code: &str, secs: Option<i64>| ErrorReport {
        platform: Platform::Telegram,
        class,
        code: code.into(),
        message: String::new(),
        retry_after: secs.map(TimeDelta::seconds),
        task_id: None,
        target_id: None,
    };
    let state = am
        .am
        .handle_error(
            &account(1),
            &report(ErrorClass::AccountTemporary, "FLOOD_WAIT", Some(300)),
        )
        .await
        .unwrap();
    let until = t0() + TimeDelta::seconds(330);
    assert_eq!(
        state,
        AccountState::CoolingDown {
            until,
            reason: "FLOOD_WAIT".into()
        }
    );
    assert_eq!(
        am.check("@a").await,
        RateDecision::Wait {
            until,
            reason: LimitReason::Cooldown,
            scope: LimitScope::Account
        }
    );
    am.clock.set(until);
    assert!(matches!(am.check("@a").await, RateDecision::Allowed { .. }));

    let state = am
        .am
        .handle_error(
            &account(1),
            &report(ErrorClass::AccountRestricted, "PEER_FLOOD", None),
        )
        .await
        .unwrap();
    assert_eq!(
        state,
        AccountState::CoolingDown {
            until: until + TimeDelta::hours(24),
            reason: "PEER_FLOOD".into()
        }
    );
    let state = am
        .am
        .handle_error(
            &account(1),
            &report(ErrorClass::AccountDead, "SESSION_REVOKED", None),
        )
        .await
        .unwrap();
    assert!(matches!(state, AccountState::Dead { .. }));
    am.clock.advance(TimeDelta::days(400));
    assert!(matches!(
        am.check("@a").await,
        RateDecision::Denied {
            reason: LimitReason::AccountDead,
            permanent: true,
            ..
        }
    ));
}

#[tokio::test]
async fn an_unused_reservation_is_refunded() {
    let am = Am::new(no_spread());
    let RateDecision::Allowed { reservation } = am.check("@a").await else {
        panic!("first check must pass");
    };
    am.am
        .release_account(
            &account(1),
            &UsageStats {
                reservation,
                performed: false,
                ..UsageStats::default()
            },
        )
        .await
        .unwrap();
    // No pause is owed for an action that never happened.
    assert!(matches!(am.check("@a").await, RateDecision::Allowed { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_never_share_the_last_slot() {
    let mut policy = no_spread();
    policy.invite.per_account = 3;
    let am = Arc::new(Am::new(policy));
    for _ in 0..2 {
        am.invite_when_allowed("@a").await.unwrap();
    }
    am.clock.advance(TimeDelta::hours(1));
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let am = am.clone();
            tokio::spawn(async move { am.check("@z").await })
        })
        .collect();
    let mut allowed = 0;
    for r in racers {
        if matches!(r.await.unwrap(), RateDecision::Allowed { .. }) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 1);
}
