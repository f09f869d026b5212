//! An independent check of the limits over what actually happened (the execution log).
//!
//! It shares nothing with the ledgers or [`LimitPolicy::decide`]: it replays every attempt
//! and reports each rolling window, lifetime cap, pause or spread interval that was broken.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::LimitPolicy;
use crate::domain::{AccountId, ActionKind, ExecutionLog, ExecutionStatus};

/// One platform action that reached the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Acting account.
    pub account: AccountId,
    /// Kind.
    pub kind: ActionKind,
    /// Group key (or `dm`).
    pub channel: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Account.
    pub account: AccountId,
    /// Rule name.
    pub rule: &'static str,
    /// When it was broken.
    pub at: DateTime<Utc>,
}

/// Attempts recorded in execution logs: budgeted kinds, not skipped, and not transient errors
/// (those never left for the platform) — every charged attempt, whatever its outcome.
/// `channel_of` names the group of each row's task.
pub fn events_from_logs<'a>(
    logs: impl IntoIterator<Item = &'a ExecutionLog>,
    channel_of: impl Fn(&ExecutionLog) -> String,
) -> Vec<AuditEvent> {
    logs.into_iter()
        .filter(|l| l.entry.status != ExecutionStatus::Skipped)
        .filter(|l| l.entry.error_kind.as_deref() != Some("transient"))
        .filter_map(|l| {
            Some(AuditEvent {
                account: l.entry.account_id.clone(),
                kind: l.entry.action_kind()?,
                channel: channel_of(l),
                at: l.entry.created_at,
            })
        })
        .collect()
}

fn over_window(times: &[DateTime<Utc>], cap: u32, policy: &LimitPolicy) -> Option<DateTime<Utc>> {
    let mut start = 0;
    for (i, t) in times.iter().enumerate() {
        while times[start] <= *t - policy.window {
            start += 1;
        }
        if i + 1 - start > cap as usize {
            return Some(*t);
        }
    }
    None
}

fn min_gap(times: &[DateTime<Utc>], gap: chrono::TimeDelta) -> Option<DateTime<Utc>> {
    times.windows(2).find(|w| w[1] - w[0] < gap).map(|w| w[1])
}

/// Every violation of `policy` in `events`.
pub fn audit(policy: &LimitPolicy, events: &[AuditEvent]) -> Vec<Violation> {
    let mut writes: BTreeMap<&AccountId, Vec<(DateTime<Utc>, ActionKind)>> = BTreeMap::new();
    let mut per_account: BTreeMap<(&AccountId, ActionKind), Vec<DateTime<Utc>>> = BTreeMap::new();
    let mut per_channel: BTreeMap<(&AccountId, ActionKind, &str), Vec<DateTime<Utc>>> =
        BTreeMap::new();
    for e in events {
        writes.entry(&e.account).or_default().push((e.at, e.kind));
        per_account
            .entry((&e.account, e.kind))
            .or_default()
            .push(e.at);
        per_channel
            .entry((&e.account, e.kind, e.channel.as_str()))
            .or_default()
            .push(e.at);
    }
    let mut found = Vec::new();
    let mut flag = |account: &AccountId, rule, at| {
        found.push(Violation {
            account: account.clone(),
            rule,
            at,
        });
    };
    for (account, all) in &mut writes {
        all.sort_unstable();
        let times: Vec<DateTime<Utc>> = all.iter().map(|(at, _)| *at).collect();
        if let Some(cap) = policy.writes_per_account
            && let Some(at) = over_window(&times, cap, policy)
        {
            flag(account, "writes per account rolling window", at);
        }
        // The pause holds between any two writes, whatever their kinds: the pause of the
        // earlier one applies.
        if let Some(w) = all
            .windows(2)
            .find(|w| w[1].0 - w[0].0 < policy.limits(w[0].1).pause_min)
        {
            flag(account, "pause between actions", w[1].0);
        }
    }
    for ((account, kind), times) in &mut per_account {
        times.sort_unstable();
        let l = policy.limits(*kind);
        if let Some(at) = over_window(times, l.per_account, policy) {
            flag(account, "per-account rolling window", at);
        }
        if l.spread
            && let Some(at) = min_gap(times, policy.min_interval_account(*kind))
        {
            flag(account, "even spread per account", at);
        }
    }
    for ((account, kind, _), times) in &mut per_channel {
        times.sort_unstable();
        let l = policy.limits(*kind);
        if let Some(cap) = l.per_channel
            && let Some(at) = over_window(times, cap, policy)
        {
            flag(account, "per-channel rolling window", at);
        }
        if let Some(cap) = l.per_channel_lifetime
            && times.len() > cap as usize
        {
            flag(account, "per-channel lifetime", times[cap as usize]);
        }
        if l.spread
            && l.per_channel.is_some()
            && let Some(at) = min_gap(times, policy.min_interval_channel(*kind))
        {
            flag(account, "even spread per channel", at);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn ev(min: i64, channel: &str) -> AuditEvent {
        AuditEvent {
            account: AccountId::parse("a").unwrap(),
            kind: ActionKind::Invite,
            channel: channel.into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap() + TimeDelta::minutes(min),
        }
    }

    #[test]
    fn detects_each_rule() {
        let mut p = LimitPolicy::telegram();
        p.invite.spread = false;
        // 16 invites into one channel 11 minutes apart: the 16th breaks the channel window.
        let events: Vec<_> = (0..16).map(|i| ev(i * 11, "@g")).collect();
        let v = audit(&p, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, "per-channel rolling window");
        // A 5 minute gap breaks the pause.
        let v = audit(&p, &[ev(0, "@g"), ev(5, "@h")]);
        assert_eq!(v[0].rule, "pause between actions");
        // Spread on: 11 minutes is too close.
        let v = audit(&LimitPolicy::telegram(), &[ev(0, "@g"), ev(11, "@h")]);
        assert_eq!(v[0].rule, "even spread per account");
        // An invite and a message 1 minute apart break the pause too.
        let mut dm = ev(1, "dm");
        dm.kind = ActionKind::Message;
        let v = audit(&p, &[ev(0, "@g"), dm]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, "pause between actions");
        // Well-paced invites are clean, across midnight too.
        let clean: Vec<_> = (0..60)
            .map(|i| ev(i * 100, if i % 2 == 0 { "@g" } else { "@h" }))
            .collect();
        assert!(audit(&LimitPolicy::telegram(), &clean).is_empty());
    }
}
