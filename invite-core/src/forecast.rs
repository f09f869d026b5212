//! The earliest finish of a campaign under the limits, computed from the rules alone.
//!
//! [`forecast`] places the remaining targets one by one in the earliest slot any account may
//! use under the [`LimitPolicy`] — rolling caps, lifetime caps, the minimum pause and the
//! spread rule — starting from each account's history and cooldown. It does not run the
//! engine's scheduler; it is what the limits allow. It serves the ETA of a running task and
//! the quickstart's theoretical minimum, and it says how many targets the accounts' lifetime
//! capacity cannot cover at all.
//!
//! Times come from callers (a task's `scheduled_at`, an account's cooldown), so every step is
//! checked: a slot beyond the representable future is no slot, and its targets are counted as
//! uncovered instead of overflowing.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::domain::{AccountId, ActionKind};
use crate::limits::LimitPolicy;
use crate::ports::{AccountState, LedgerEvent};

/// One account as the forecast sees it.
#[derive(Debug, Clone)]
pub struct ForecastAccount {
    /// Id.
    pub id: AccountId,
    /// Health (cooldowns delay it, death removes it).
    pub state: AccountState,
    /// Its recent actions (within the window), oldest first.
    pub recent: Vec<LedgerEvent>,
    /// Lifetime actions per channel.
    pub lifetime: HashMap<String, u32>,
}

impl ForecastAccount {
    /// A fresh account.
    pub fn fresh(id: AccountId) -> Self {
        Self {
            id,
            state: AccountState::Active,
            recent: Vec::new(),
            lifetime: HashMap::new(),
        }
    }
}

/// What the forecast found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forecast {
    /// Time of the last action, if every target can be placed.
    pub finish_at: Option<DateTime<Utc>>,
    /// Targets placed.
    pub placed: u64,
    /// Targets no account can ever take (lifetime caps, dead accounts).
    pub uncovered: u64,
}

/// Recent actions, last action and lifetime count of an account in one channel.
type ChannelSim = (VecDeque<DateTime<Utc>>, Option<DateTime<Utc>>, u32);

struct Sim {
    state_until: Option<DateTime<Utc>>,
    recent: VecDeque<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    channels: HashMap<String, ChannelSim>,
}

/// `t + d`, or `None` beyond the representable future.
fn later(t: DateTime<Utc>, d: TimeDelta) -> Option<DateTime<Utc>> {
    t.checked_add_signed(d)
}

/// `t - d`, or the representable past's first instant.
fn earlier(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The earliest time after `from` when `events` (sorted) allow one more under `cap` per window.
fn window_slot(
    policy: &LimitPolicy,
    events: &VecDeque<DateTime<Utc>>,
    cap: u32,
    from: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if cap == 0 {
        return None;
    }
    // Sorted: the window holds `cap` events or more exactly when the `cap`-th from the end is
    // in it, and the next slot opens when that one leaves the window.
    let cap = cap as usize;
    match events.len().checked_sub(cap).map(|i| events[i]) {
        Some(oldest) if oldest > earlier(from, policy.window) => later(oldest, policy.window),
        _ => Some(from),
    }
}

/// Places `demand` (remaining targets per channel) on `accounts` from `now` on.
pub fn forecast(
    policy: &LimitPolicy,
    kind: ActionKind,
    now: DateTime<Utc>,
    demand: &BTreeMap<String, u64>,
    accounts: &[ForecastAccount],
) -> Forecast {
    let limits = *policy.limits(kind);
    let min_account = policy.min_interval_account(kind);
    let min_channel = policy.min_interval_channel(kind);
    let mut left: BTreeMap<String, u64> = demand
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c.clone(), *n))
        .collect();
    let mut sims: Vec<Sim> = Vec::new();
    for a in accounts {
        let until = match &a.state {
            AccountState::Dead { .. } => continue,
            AccountState::CoolingDown { until, .. } => Some(*until),
            AccountState::Active => None,
        };
        let mut sim = Sim {
            state_until: until,
            recent: VecDeque::new(),
            last: None,
            channels: HashMap::new(),
        };
        // Oldest first (the window arithmetic reads them sorted).
        let mut recent: Vec<&LedgerEvent> = a.recent.iter().filter(|e| e.kind == kind).collect();
        recent.sort_by_key(|e| e.at);
        for e in recent {
            sim.recent.push_back(e.at);
            sim.last = Some(sim.last.map_or(e.not_before_next, |l: DateTime<Utc>| {
                l.max(later(e.at, limits.pause_min).unwrap_or(DateTime::<Utc>::MAX_UTC))
            }));
            let ch = sim.channels.entry(e.channel.clone()).or_default();
            ch.0.push_back(e.at);
            ch.1 = Some(e.at);
        }
        for (channel, n) in &a.lifetime {
            sim.channels.entry(channel.clone()).or_default().2 = *n;
        }
        sims.push(sim);
    }
    // Earliest (time, channel) for an account.
    let best = |sim: &Sim, left: &BTreeMap<String, u64>| -> Option<(DateTime<Utc>, String)> {
        let mut t = now.max(sim.state_until.unwrap_or(now));
        if let Some(last) = sim.recent.back() {
            t = t.max(later(*last, min_account)?);
        }
        if let Some(l) = sim.last {
            t = t.max(l);
        }
        t = window_slot(policy, &sim.recent, limits.per_account, t)?;
        let mut choice: Option<(DateTime<Utc>, Reverse<u64>, String)> = None;
        for (channel, n) in left {
            let (events, last, lifetime) = sim
                .channels
                .get(channel)
                .map_or((None, None, 0), |(e, l, n)| (Some(e), *l, *n));
            if limits
                .per_channel_lifetime
                .is_some_and(|cap| lifetime >= cap)
            {
                continue;
            }
            let mut tc = t;
            if let Some(l) = last {
                match later(l, min_channel) {
                    Some(next) => tc = tc.max(next),
                    None => continue,
                }
            }
            if let (Some(cap), Some(ev)) = (limits.per_channel, events) {
                match window_slot(policy, ev, cap, tc) {
                    Some(s) => tc = s,
                    None => continue,
                }
            }
            let candidate = (tc, Reverse(*n), channel.clone());
            if choice.as_ref().is_none_or(|c| candidate < *c) {
                choice = Some(candidate);
            }
        }
        choice.map(|(t, _, c)| (t, c))
    };
    let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = BinaryHeap::new();
    for (i, sim) in sims.iter().enumerate() {
        if let Some((t, _)) = best(sim, &left) {
            heap.push(Reverse((t, i)));
        }
    }
    let mut placed = 0;
    let mut finish: Option<DateTime<Utc>> = None;
    while !left.is_empty() {
        let Some(Reverse((_, i))) = heap.pop() else {
            break;
        };
        // Recompute: demand may have moved since this entry was pushed.
        let Some((t, channel)) = best(&sims[i], &left) else {
            continue;
        };
        if heap.peek().is_some_and(|Reverse((other, _))| *other < t) {
            heap.push(Reverse((t, i)));
            continue;
        }
        let sim = &mut sims[i];
        sim.recent.push_back(t);
        let window_start = earlier(t, policy.window);
        while sim.recent.front().is_some_and(|at| *at <= window_start) {
            sim.recent.pop_front();
        }
        // At the end of time the account can do no more: its next `best` finds no slot.
        sim.last = Some(later(t, limits.pause_min).unwrap_or(DateTime::<Utc>::MAX_UTC));
        let ch = sim.channels.entry(channel.clone()).or_default();
        ch.0.push_back(t);
        while ch.0.front().is_some_and(|at| *at <= window_start) {
            ch.0.pop_front();
        }
        ch.1 = Some(t);
        ch.2 += 1;
        placed += 1;
        finish = Some(finish.map_or(t, |f| f.max(t)));
        if let Some(n) = left.get_mut(&channel) {
            *n -= 1;
            if *n == 0 {
                left.remove(&channel);
            }
        }
        if let Some((t2, _)) = best(&sims[i], &left) {
            heap.push(Reverse((t2, i)));
        }
    }
    let uncovered: u64 = left.values().sum();
    Forecast {
        finish_at: if uncovered == 0 {
            finish.or(Some(now))
        } else {
            None
        },
        placed,
        uncovered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn accounts(n: usize) -> Vec<ForecastAccount> {
        (0..n)
            .map(|i| ForecastAccount::fresh(AccountId::parse(format!("a{i}")).unwrap()))
            .collect()
    }

    #[test]
    fn one_account_one_channel_is_paced_by_the_channel_spread() {
        let p = LimitPolicy::telegram();
        let demand = BTreeMap::from([("@g".to_owned(), 15)]);
        let f = forecast(&p, ActionKind::Invite, t0(), &demand, &accounts(1));
        // 15 invites 96 minutes apart: the last at 14 × 96 min.
        assert_eq!(f.finish_at, Some(t0() + TimeDelta::minutes(14 * 96)));
        assert_eq!(f.placed, 15);
    }

    #[test]
    fn two_channels_share_the_account_cap() {
        let p = LimitPolicy::telegram();
        let demand = BTreeMap::from([("@a".to_owned(), 30), ("@b".to_owned(), 30)]);
        let f = forecast(&p, ActionKind::Invite, t0(), &demand, &accounts(1));
        // 30 per day per account, 48 min apart: 60 invites end on the second day.
        assert_eq!(f.finish_at, Some(t0() + TimeDelta::minutes(59 * 48)));
    }

    #[test]
    fn lifetime_caps_leave_targets_uncovered() {
        let p = LimitPolicy::telegram();
        let demand = BTreeMap::from([("@a".to_owned(), 450)]);
        let f = forecast(&p, ActionKind::Invite, t0(), &demand, &accounts(2));
        assert_eq!(f.uncovered, 50);
        assert_eq!(f.placed, 400);
        assert_eq!(f.finish_at, None);
    }

    #[test]
    fn a_start_at_the_end_of_time_leaves_targets_uncovered_without_panicking() {
        let p = LimitPolicy::telegram();
        let end: DateTime<Utc> = "+262142-12-31T23:59:59Z".parse().unwrap();
        let demand = BTreeMap::from([("@a".to_owned(), 5), ("@b".to_owned(), 5)]);
        for kind in [ActionKind::Invite, ActionKind::Message] {
            let f = forecast(&p, kind, end, &demand, &accounts(3));
            assert_eq!(f.placed + f.uncovered, 10);
            assert!(f.uncovered > 0);
            assert_eq!(f.finish_at, None);
        }
        let mut accs = accounts(1);
        accs[0].state = AccountState::CoolingDown {
            until: DateTime::<Utc>::MAX_UTC,
            reason: "FLOOD_WAIT".into(),
        };
        let f = forecast(&p, ActionKind::Invite, t0(), &demand, &accs);
        assert_eq!(f.placed + f.uncovered, 10);
    }

    #[test]
    fn cooldowns_and_dead_accounts_count() {
        let p = LimitPolicy::telegram();
        let demand = BTreeMap::from([("@a".to_owned(), 1)]);
        let mut accs = accounts(2);
        accs[0].state = AccountState::Dead { reason: "x".into() };
        accs[1].state = AccountState::CoolingDown {
            until: t0() + TimeDelta::hours(2),
            reason: "FLOOD_WAIT".into(),
        };
        let f = forecast(&p, ActionKind::Invite, t0(), &demand, &accs);
        assert_eq!(f.finish_at, Some(t0() + TimeDelta::hours(2)));
    }
}
