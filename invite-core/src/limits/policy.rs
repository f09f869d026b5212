//! The limit rules of SPEC §6 as data ([`LimitPolicy`]) and one pure decision function
//! ([`LimitPolicy::decide`]) that every ledger runs inside its own transaction.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ActionKind;
use crate::ports::{
    AccountHistory, AccountState, LimitReason, LimitScope, RateDecision, ReserveRequest,
};

/// Limits of one action kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    /// Actions per account in any rolling window.
    pub per_account: u32,
    /// Actions per account per channel in any rolling window.
    pub per_channel: Option<u32>,
    /// Actions per account per channel, ever; then that pair is closed for good.
    pub per_channel_lifetime: Option<u32>,
    /// Shortest pause between two actions of one account.
    #[serde(with = "secs")]
    pub pause_min: TimeDelta,
    /// Longest pause between two actions of one account.
    #[serde(with = "secs")]
    pub pause_max: TimeDelta,
    /// Spread the window's quota evenly: one action per `window / cap` at most, per account
    /// and per account-channel.
    pub spread: bool,
}

/// All limits of one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitPolicy {
    /// Length of the rolling window.
    #[serde(with = "secs")]
    pub window: TimeDelta,
    /// Invites.
    pub invite: ActionLimits,
    /// Direct messages.
    pub message: ActionLimits,
    /// Contacts added before acting (a write of its own: paced like the others).
    #[serde(default = "telegram_contacts")]
    pub contact: ActionLimits,
    /// Writes of any kind (invites and messages together) per account in any rolling window;
    /// `None` leaves only the per-kind caps.
    #[serde(default)]
    pub writes_per_account: Option<u32>,
    /// Added to every flood wait the platform asks for.
    #[serde(with = "secs")]
    pub flood_buffer: TimeDelta,
    /// Cooldown after a restriction (PeerFlood).
    #[serde(with = "secs")]
    pub restricted_cooldown: TimeDelta,
}

mod secs {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
        let secs = i64::deserialize(d)?;
        TimeDelta::try_seconds(secs).ok_or_else(|| serde::de::Error::custom("duration too large"))
    }
}

/// Telegram's contact additions: 40 per account per rolling window, no per-channel cap, the
/// same 10–15 min pauses as every write.
fn telegram_contacts() -> ActionLimits {
    ActionLimits {
        per_account: 40,
        per_channel: None,
        per_channel_lifetime: None,
        pause_min: TimeDelta::minutes(10),
        pause_max: TimeDelta::minutes(15),
        spread: false,
    }
}

impl LimitPolicy {
    /// Telegram's defaults (SPEC §6): 15 invites per account per channel and 30 per account in
    /// any 24 h, 200 per account per channel ever, 10–15 min pauses between any two writes of an
    /// account, an even spread, 40 direct messages per 24 h, and 40 writes of any kind per
    /// account per 24 h.
    pub fn telegram() -> Self {
        let pause_min = TimeDelta::minutes(10);
        let pause_max = TimeDelta::minutes(15);
        Self {
            window: TimeDelta::hours(24),
            invite: ActionLimits {
                per_account: 30,
                per_channel: Some(15),
                per_channel_lifetime: Some(200),
                pause_min,
                pause_max,
                spread: true,
            },
            message: ActionLimits {
                per_account: 40,
                per_channel: None,
                per_channel_lifetime: None,
                pause_min,
                pause_max,
                spread: true,
            },
            contact: telegram_contacts(),
            writes_per_account: Some(40),
            flood_buffer: TimeDelta::seconds(30),
            restricted_cooldown: TimeDelta::hours(24),
        }
    }

    /// The same rules with every duration divided by `factor` (caps unchanged): a sandbox
    /// campaign paced for a demo. `factor` below 1 is treated as 1.
    pub fn time_scaled(&self, factor: u32) -> Self {
        let f = i32::try_from(factor.max(1)).unwrap_or(i32::MAX);
        let scale = |d: TimeDelta| d / f;
        let scale_action = |a: ActionLimits| ActionLimits {
            pause_min: scale(a.pause_min),
            pause_max: scale(a.pause_max),
            ..a
        };
        Self {
            window: scale(self.window),
            invite: scale_action(self.invite),
            message: scale_action(self.message),
            contact: scale_action(self.contact),
            writes_per_account: self.writes_per_account,
            flood_buffer: scale(self.flood_buffer),
            restricted_cooldown: scale(self.restricted_cooldown),
        }
    }

    /// Limits of a kind.
    pub fn limits(&self, kind: ActionKind) -> &ActionLimits {
        match kind {
            ActionKind::Invite => &self.invite,
            ActionKind::Message => &self.message,
            ActionKind::Contact => &self.contact,
        }
    }

    /// Shortest interval between two actions of a kind for one account, from the pause and the
    /// spread rule.
    pub fn min_interval_account(&self, kind: ActionKind) -> TimeDelta {
        let l = self.limits(kind);
        let spread = if l.spread && l.per_account > 0 {
            self.window / i32::try_from(l.per_account).unwrap_or(i32::MAX)
        } else {
            TimeDelta::zero()
        };
        spread.max(l.pause_min)
    }

    /// Shortest interval between two actions of a kind of one account in one channel.
    pub fn min_interval_channel(&self, kind: ActionKind) -> TimeDelta {
        let l = self.limits(kind);
        match l.per_channel {
            Some(cap) if l.spread && cap > 0 => {
                let spread = self.window / i32::try_from(cap).unwrap_or(i32::MAX);
                spread.max(self.min_interval_account(kind))
            }
            _ => self.min_interval_account(kind),
        }
    }

    /// Decides a reservation from the account's history. Pure: the ledger runs it inside the
    /// transaction that records the result.
    ///
    /// Order: a dead account is denied; a cooling account waits; a channel whose lifetime cap
    /// is reached is denied for good; otherwise every window, pause and spread rule gives an
    /// earliest time, and the latest of them is the answer. A channel-scoped wait is returned
    /// only when it is later than every account-scoped one (the account may work elsewhere
    /// meanwhile).
    pub fn decide(&self, history: &AccountHistory, req: &ReserveRequest) -> RateDecision {
        let now = req.now;
        match &history.state {
            AccountState::Dead { .. } => {
                return RateDecision::Denied {
                    reason: LimitReason::AccountDead,
                    permanent: true,
                    scope: LimitScope::Account,
                };
            }
            AccountState::CoolingDown { until, .. } if *until > now => {
                return RateDecision::Wait {
                    until: *until,
                    reason: LimitReason::Cooldown,
                    scope: LimitScope::Account,
                };
            }
            _ => {}
        }
        let mut account_wait: Option<(DateTime<Utc>, LimitReason)> = None;
        let mut channel_wait: Option<(DateTime<Utc>, LimitReason)> = None;
        let later = |slot: &mut Option<(DateTime<Utc>, LimitReason)>, at, reason| {
            if at > now && slot.is_none_or(|(t, _)| at > t) {
                *slot = Some((at, reason));
            }
        };
        let window_start = now - self.window;
        let in_window: Vec<_> = history
            .recent
            .iter()
            .filter(|e| e.at > window_start)
            .collect();
        // The pause holds between any two writes of the account, whatever their kinds.
        if let Some(pause_end) = in_window.iter().map(|e| e.not_before_next).max() {
            later(&mut account_wait, pause_end, LimitReason::Pause);
        }
        if let Some(cap) = self.writes_per_account {
            if cap == 0 {
                return RateDecision::Denied {
                    reason: LimitReason::AccountWindow,
                    permanent: true,
                    scope: LimitScope::Account,
                };
            }
            let cap = cap as usize;
            // Each reserved kind is one more write.
            let after = in_window.len() + req.kinds.len();
            if after > cap {
                // The slot frees when enough of the oldest writes leave the window.
                let oldest = in_window[(after - cap - 1).min(in_window.len() - 1)];
                later(
                    &mut account_wait,
                    oldest.at + self.window,
                    LimitReason::AccountWindow,
                );
            }
        }
        for &kind in &req.kinds {
            let l = self.limits(kind);
            if l.per_account == 0 {
                return RateDecision::Denied {
                    reason: LimitReason::AccountWindow,
                    permanent: true,
                    scope: LimitScope::Account,
                };
            }
            if l.per_channel_lifetime
                .is_some_and(|cap| history.lifetime_of(kind) >= cap)
            {
                return RateDecision::Denied {
                    reason: LimitReason::ChannelLifetime,
                    permanent: true,
                    scope: LimitScope::Channel,
                };
            }
            let of_kind: Vec<_> = in_window
                .iter()
                .filter(|e| e.kind == kind)
                .copied()
                .collect();
            let in_channel: Vec<_> = of_kind
                .iter()
                .filter(|e| e.channel == req.channel)
                .copied()
                .collect();
            // Rolling windows: the slot frees when the oldest counted action leaves the window.
            if of_kind.len() >= l.per_account as usize {
                let oldest = of_kind[of_kind.len() - l.per_account as usize];
                later(
                    &mut account_wait,
                    oldest.at + self.window,
                    LimitReason::AccountWindow,
                );
            }
            if let Some(cap) = l.per_channel
                && in_channel.len() >= cap as usize
            {
                if cap == 0 {
                    return RateDecision::Denied {
                        reason: LimitReason::ChannelWindow,
                        permanent: true,
                        scope: LimitScope::Channel,
                    };
                }
                let oldest = in_channel[in_channel.len() - cap as usize];
                later(
                    &mut channel_wait,
                    oldest.at + self.window,
                    LimitReason::ChannelWindow,
                );
            }
            if l.spread
                && let Some(last) = of_kind.last()
            {
                later(
                    &mut account_wait,
                    last.at + self.min_interval_account(kind),
                    LimitReason::Spread,
                );
            }
            if l.spread
                && let Some(last) = in_channel.last()
            {
                later(
                    &mut channel_wait,
                    last.at + self.min_interval_channel(kind),
                    LimitReason::Spread,
                );
            }
        }
        match (account_wait, channel_wait) {
            (None, None) => RateDecision::Allowed { reservation: None },
            (Some((until, reason)), None) => RateDecision::Wait {
                until,
                reason,
                scope: LimitScope::Account,
            },
            (Some((a, reason)), Some((c, _))) if a >= c => RateDecision::Wait {
                until: a,
                reason,
                scope: LimitScope::Account,
            },
            (_, Some((until, reason))) => RateDecision::Wait {
                until,
                reason,
                scope: LimitScope::Channel,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountId;
    use crate::ports::LedgerEvent;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn req(channel: &str, now: DateTime<Utc>) -> ReserveRequest {
        ReserveRequest {
            account_id: AccountId::parse("acc").unwrap(),
            kinds: vec![ActionKind::Invite],
            channel: channel.into(),
            now,
            pause_after: TimeDelta::minutes(10),
        }
    }

    fn event(at: DateTime<Utc>, channel: &str) -> LedgerEvent {
        LedgerEvent {
            at,
            kind: ActionKind::Invite,
            channel: channel.into(),
            not_before_next: at + TimeDelta::minutes(12),
        }
    }

    #[test]
    fn intervals_follow_the_spread_rule() {
        let p = LimitPolicy::telegram();
        assert_eq!(
            p.min_interval_account(ActionKind::Invite),
            TimeDelta::minutes(48)
        );
        assert_eq!(
            p.min_interval_channel(ActionKind::Invite),
            TimeDelta::minutes(96)
        );
        assert_eq!(
            p.min_interval_account(ActionKind::Message),
            TimeDelta::minutes(36)
        );
        let mut no_spread = p;
        no_spread.invite.spread = false;
        assert_eq!(
            no_spread.min_interval_channel(ActionKind::Invite),
            TimeDelta::minutes(10)
        );
    }

    #[test]
    fn fresh_account_is_allowed() {
        let p = LimitPolicy::telegram();
        assert_eq!(
            p.decide(&AccountHistory::empty(), &req("@a", t0())),
            RateDecision::Allowed { reservation: None }
        );
    }

    #[test]
    fn pause_and_spread_give_the_latest_time() {
        let p = LimitPolicy::telegram();
        let mut h = AccountHistory::empty();
        h.recent.push(event(t0(), "@a"));
        // Another channel: the account's spread (48 min) is the binding rule.
        assert_eq!(
            p.decide(&h, &req("@b", t0() + TimeDelta::minutes(1))),
            RateDecision::Wait {
                until: t0() + TimeDelta::minutes(48),
                reason: LimitReason::Spread,
                scope: LimitScope::Account
            }
        );
        // Same channel: the channel spread (96 min) is later, so it is channel-scoped.
        assert_eq!(
            p.decide(&h, &req("@a", t0() + TimeDelta::minutes(1))),
            RateDecision::Wait {
                until: t0() + TimeDelta::minutes(96),
                reason: LimitReason::Spread,
                scope: LimitScope::Channel
            }
        );
        let mut no_spread = p;
        no_spread.invite.spread = false;
        assert_eq!(
            no_spread.decide(&h, &req("@a", t0() + TimeDelta::minutes(1))),
            RateDecision::Wait {
                until: t0() + TimeDelta::minutes(12),
                reason: LimitReason::Pause,
                scope: LimitScope::Account
            }
        );
    }

    #[test]
    fn lifetime_cap_is_permanent_for_the_channel_only() {
        let p = LimitPolicy::telegram();
        let mut h = AccountHistory::empty();
        h.lifetime = vec![(ActionKind::Invite, 200)];
        assert_eq!(
            p.decide(&h, &req("@a", t0())),
            RateDecision::Denied {
                reason: LimitReason::ChannelLifetime,
                permanent: true,
                scope: LimitScope::Channel
            }
        );
        h.lifetime = vec![(ActionKind::Invite, 199)];
        assert!(matches!(
            p.decide(&h, &req("@a", t0())),
            RateDecision::Allowed { .. }
        ));
    }

    #[test]
    fn cooldown_and_death() {
        let p = LimitPolicy::telegram();
        let mut h = AccountHistory::empty();
        h.state = AccountState::CoolingDown {
            until: t0() + TimeDelta::hours(1),
            reason: "FLOOD_WAIT".into(),
        };
        assert!(matches!(
            p.decide(&h, &req("@a", t0())),
            RateDecision::Wait {
                reason: LimitReason::Cooldown,
                ..
            }
        ));
        assert!(matches!(
            p.decide(&h, &req("@a", t0() + TimeDelta::hours(1))),
            RateDecision::Allowed { .. }
        ));
        h.state = AccountState::Dead {
            reason: "SESSION_REVOKED".into(),
        };
        assert!(matches!(
            p.decide(&h, &req("@a", t0())),
            RateDecision::Denied {
                permanent: true,
                scope: LimitScope::Account,
                ..
            }
        ));
    }

    #[test]
    fn the_pause_holds_across_kinds() {
        let p = LimitPolicy::telegram();
        let mut h = AccountHistory::empty();
        h.recent.push(event(t0(), "@a"));
        let mut dm = req("dm", t0() + TimeDelta::minutes(1));
        dm.kinds = vec![ActionKind::Message];
        assert_eq!(
            p.decide(&h, &dm),
            RateDecision::Wait {
                until: t0() + TimeDelta::minutes(12),
                reason: LimitReason::Pause,
                scope: LimitScope::Account
            }
        );
    }

    #[test]
    fn writes_of_every_kind_share_the_account_cap() {
        let mut p = LimitPolicy::telegram();
        p.invite.spread = false;
        p.message.spread = false;
        p.writes_per_account = Some(3);
        let mut h = AccountHistory::empty();
        for i in 0..3 {
            let mut e = event(t0() + TimeDelta::minutes(20 * i), "@a");
            if i == 1 {
                e.kind = ActionKind::Message;
                e.channel = "dm".into();
            }
            h.recent.push(e);
        }
        let mut dm = req("dm", t0() + TimeDelta::hours(2));
        dm.kinds = vec![ActionKind::Message];
        assert_eq!(
            p.decide(&h, &dm),
            RateDecision::Wait {
                until: t0() + TimeDelta::hours(24),
                reason: LimitReason::AccountWindow,
                scope: LimitScope::Account
            }
        );
    }

    #[test]
    fn zero_caps_are_denied_not_a_panic() {
        let mut p = LimitPolicy::telegram();
        p.invite.per_account = 0;
        assert!(matches!(
            p.decide(&AccountHistory::empty(), &req("@a", t0())),
            RateDecision::Denied {
                reason: LimitReason::AccountWindow,
                permanent: true,
                ..
            }
        ));
        let mut p = LimitPolicy::telegram();
        p.writes_per_account = Some(0);
        assert!(matches!(
            p.decide(&AccountHistory::empty(), &req("@a", t0())),
            RateDecision::Denied { .. }
        ));
    }

    #[test]
    fn time_scaling_keeps_caps() {
        let p = LimitPolicy::telegram().time_scaled(1440);
        assert_eq!(p.window, TimeDelta::minutes(1));
        assert_eq!(p.invite.per_account, 30);
        assert!(p.invite.pause_min > TimeDelta::milliseconds(416));
        assert!(p.invite.pause_min < TimeDelta::milliseconds(417));
    }
}
