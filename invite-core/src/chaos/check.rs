//! The checker: the engine's promises, judged from the platform's [`Journal`](super::Journal)
//! and the outcomes the engine reported — nothing else. It shares no code with the engine, the
//! ledgers or [`LimitPolicy::decide`]; limits are read from the policy it is given.
//!
//! Rules:
//! - **duplicates**: no person gets two delivered messages of one task, nor two delivered
//!   invites into one group;
//! - **caps**, per account, over every write (invite, message, add-contact) that reached the
//!   platform, whatever its answer: invites per group and per account in any rolling window,
//!   invites per group ever, messages per account in any rolling window, and the minimum
//!   pause between any two writes of an account, whatever their kinds;
//! - **lost**: every target ends `success`, `failed`, `skipped` or `uncertain`;
//! - **mismatched**: a reported outcome the journal contradicts — `sent` without a delivered
//!   message (a de-duplicated `random_id` delivers nothing), `invited` without a delivered
//!   invite, `already_member` without the platform ever saying so or adding the person, or a
//!   target reported failed or skipped although its write was delivered. `uncertain` is
//!   always allowed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use super::journal::{CallKind, JournalEntry, Reach};
use crate::domain::{AccountId, Action, Outcome, Target, TargetStatus, Task, TaskId, TaskStatus};
use crate::limits::LimitPolicy;

/// What a task does, as the checker needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Invites into a group.
    Invite,
    /// Direct messages.
    Message,
    /// An invite, then a message; the target's outcome is the invite's.
    InviteAndMessage,
}

impl TaskKind {
    /// The kind of a task's action.
    pub const fn of(action: &Action) -> Self {
        match action {
            Action::Invite { .. } => TaskKind::Invite,
            Action::Message { .. } => TaskKind::Message,
            Action::InviteAndMessage { .. } => TaskKind::InviteAndMessage,
        }
    }

    /// Name in findings.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskKind::Invite => "invite",
            TaskKind::Message => "message",
            TaskKind::InviteAndMessage => "invite_and_message",
        }
    }
}

/// One target as the engine reported it at the end (the store's `targets` report).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedTarget {
    /// Task.
    pub task: TaskId,
    /// What the task does.
    pub action: TaskKind,
    /// The task's group key, for invite tasks.
    pub channel: Option<String>,
    /// The person's de-duplication key.
    pub person: String,
    /// Final status.
    pub status: TargetStatus,
    /// Final outcome.
    pub outcome: Option<Outcome>,
    /// Platform details the engine kept.
    pub result: serde_json::Value,
    /// The task's final status (context for findings).
    pub task_status: TaskStatus,
    /// Why the engine paused or failed the task, if it did.
    pub task_reason: Option<String>,
}

impl ReportedTarget {
    /// The report row of `target`, a target of `task`.
    pub fn new(task: &Task, target: &Target) -> Self {
        Self {
            task: task.id,
            action: TaskKind::of(&task.settings.action),
            channel: task
                .settings
                .action
                .group()
                .map(crate::domain::GroupRef::channel_key),
            person: target.person.identifier.dedupe_key(),
            status: target.status,
            outcome: target.outcome,
            result: target.result.clone(),
            task_status: task.status,
            task_reason: task.status_reason.clone(),
        }
    }
}

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Short name of the rule (`message delivered twice`, `pause (add_contact)`).
    pub rule: &'static str,
    /// When it happened, if the journal says.
    pub at: Option<DateTime<Utc>>,
    /// Account concerned.
    pub account: Option<AccountId>,
    /// Person concerned.
    pub person: Option<String>,
    /// What exactly.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.rule)?;
        if let Some(at) = self.at {
            write!(f, " {}", at.format("%Y-%m-%d %H:%M:%S"))?;
        }
        if let Some(account) = &self.account {
            write!(f, " {account}")?;
        }
        if let Some(person) = &self.person {
            write!(f, " {person}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Counts of findings per group of rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Second deliveries.
    pub duplicates: usize,
    /// Limits broken.
    pub cap_violations: usize,
    /// Targets left unfinished.
    pub lost: usize,
    /// Outcomes the journal contradicts.
    pub mismatched: usize,
}

impl CheckCounts {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: CheckCounts) {
        self.duplicates += other.duplicates;
        self.cap_violations += other.cap_violations;
        self.lost += other.lost;
        self.mismatched += other.mismatched;
    }

    /// Whether every count is zero.
    pub const fn is_clean(&self) -> bool {
        self.duplicates == 0 && self.cap_violations == 0 && self.lost == 0 && self.mismatched == 0
    }
}

/// Everything the checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Second deliveries.
    pub duplicates: Vec<Finding>,
    /// Limits broken.
    pub cap_violations: Vec<Finding>,
    /// Targets left `pending` or `in_progress`.
    pub lost: Vec<Finding>,
    /// Outcomes the journal contradicts.
    pub mismatched: Vec<Finding>,
}

impl CheckReport {
    /// Counts per group.
    pub fn counts(&self) -> CheckCounts {
        CheckCounts {
            duplicates: self.duplicates.len(),
            cap_violations: self.cap_violations.len(),
            lost: self.lost.len(),
            mismatched: self.mismatched.len(),
        }
    }

    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.counts().is_clean()
    }

    /// Findings per rule.
    pub fn by_rule(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for f in self
            .duplicates
            .iter()
            .chain(&self.cap_violations)
            .chain(&self.lost)
            .chain(&self.mismatched)
        {
            *out.entry(f.rule).or_default() += 1;
        }
        out
    }
}

/// Checks the engine's promises over `journal` and the `reported` targets under `policy`.
pub fn check(
    journal: &[JournalEntry],
    reported: &[ReportedTarget],
    policy: &LimitPolicy,
) -> CheckReport {
    let mut report = CheckReport::default();
    duplicates(journal, &mut report.duplicates);
    caps(journal, policy, &mut report.cap_violations);
    outcomes(journal, reported, &mut report);
    report
}

fn finding(rule: &'static str, e: &JournalEntry, detail: String) -> Finding {
    Finding {
        rule,
        at: Some(e.at),
        account: Some(e.account.clone()),
        person: e.person.clone(),
        detail,
    }
}

fn task_name(task: Option<TaskId>) -> String {
    task.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

fn duplicates(journal: &[JournalEntry], out: &mut Vec<Finding>) {
    let mut messages: HashMap<(Option<TaskId>, &str), &JournalEntry> = HashMap::new();
    let mut invites: HashMap<(&str, &str), &JournalEntry> = HashMap::new();
    for e in journal.iter().filter(|e| e.reach == Reach::Delivered) {
        let Some(person) = e.person.as_deref() else {
            continue;
        };
        match e.call {
            CallKind::Message => {
                if let Some(first) = messages.get(&(e.task, person)) {
                    out.push(finding(
                        "message delivered twice",
                        e,
                        format!(
                            "task {}: random_id {} delivered again (#{}) after {} delivered random_id {} (#{}) at {}",
                            task_name(e.task),
                            e.random_id.unwrap_or_default(),
                            e.seq,
                            first.account,
                            first.random_id.unwrap_or_default(),
                            first.seq,
                            first.at.format("%Y-%m-%d %H:%M:%S"),
                        ),
                    ));
                } else {
                    messages.insert((e.task, person), e);
                }
            }
            CallKind::Invite => {
                let Some(channel) = e.channel.as_deref() else {
                    continue;
                };
                if let Some(first) = invites.get(&(channel, person)) {
                    out.push(finding(
                        "invite delivered twice",
                        e,
                        format!(
                            "{channel}: added again (#{}, task {}) after {} added them (#{}) at {}",
                            e.seq,
                            task_name(e.task),
                            first.account,
                            first.seq,
                            first.at.format("%Y-%m-%d %H:%M:%S"),
                        ),
                    ));
                } else {
                    invites.insert((channel, person), e);
                }
            }
            _ => {}
        }
    }
}

/// Indexes (in `times`) of the entries that exceed `cap` within any rolling `window`, with the
/// count in the window ending at each.
fn over_window(times: &[DateTime<Utc>], cap: u32, window: TimeDelta) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut start = 0;
    for (i, t) in times.iter().enumerate() {
        // `start <= i`: a window of no length holds no write (and never reads past the end).
        while start <= i && times[start] <= *t - window {
            start += 1;
        }
        let n = i + 1 - start;
        if n > cap as usize {
            found.push((i, n));
        }
    }
    found
}

fn minutes(d: TimeDelta) -> String {
    let (m, s) = (d.num_seconds() / 60, d.num_seconds() % 60);
    match (m, s) {
        (m, 0) => format!("{m} min"),
        (0, s) => format!("{s} s"),
        (m, s) => format!("{m} min {s} s"),
    }
}

fn caps(journal: &[JournalEntry], policy: &LimitPolicy, out: &mut Vec<Finding>) {
    let mut per_account: BTreeMap<&AccountId, Vec<&JournalEntry>> = BTreeMap::new();
    for e in journal
        .iter()
        .filter(|e| e.call.is_write() && e.reach != Reach::NotReached)
    {
        per_account.entry(&e.account).or_default().push(e);
    }
    let window = policy.window;
    let hours = window.num_hours();
    for writes in per_account.values_mut() {
        writes.sort_by_key(|e| (e.at, e.seq));
        // The pause between any two writes.
        for pair in writes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let gap = b.at - a.at;
            if gap >= policy.invite.pause_min {
                continue;
            }
            let rule = if a.call == CallKind::AddContact || b.call == CallKind::AddContact {
                "pause (add_contact)"
            } else if a.task == b.task && a.person == b.person && a.call != b.call {
                "pause (invite_and_message)"
            } else {
                "pause"
            };
            out.push(finding(
                rule,
                b,
                format!(
                    "{} #{} {} after {} #{} ({}); the pause is at least {}",
                    b.call,
                    b.seq,
                    minutes(gap),
                    a.call,
                    a.seq,
                    a.person.as_deref().unwrap_or("-"),
                    minutes(policy.invite.pause_min),
                ),
            ));
        }
        // Invites per account, per group, per group ever; messages per account.
        let invites: Vec<&JournalEntry> = writes
            .iter()
            .copied()
            .filter(|e| e.call == CallKind::Invite)
            .collect();
        let messages: Vec<&JournalEntry> = writes
            .iter()
            .copied()
            .filter(|e| e.call == CallKind::Message)
            .collect();
        let times = |v: &[&JournalEntry]| v.iter().map(|e| e.at).collect::<Vec<_>>();
        for (i, n) in over_window(&times(&invites), policy.invite.per_account, window) {
            let e = invites[i];
            out.push(finding(
                "invites per account",
                e,
                format!(
                    "invite #{} makes {n} in {hours} h (cap {})",
                    e.seq, policy.invite.per_account
                ),
            ));
        }
        for (i, n) in over_window(&times(&messages), policy.message.per_account, window) {
            let e = messages[i];
            out.push(finding(
                "messages per account",
                e,
                format!(
                    "message #{} makes {n} in {hours} h (cap {})",
                    e.seq, policy.message.per_account
                ),
            ));
        }
        let mut by_channel: BTreeMap<&str, Vec<&JournalEntry>> = BTreeMap::new();
        for e in &invites {
            by_channel
                .entry(e.channel.as_deref().unwrap_or(""))
                .or_default()
                .push(e);
        }
        for (channel, list) in by_channel {
            if let Some(cap) = policy.invite.per_channel {
                for (i, n) in over_window(&times(&list), cap, window) {
                    let e = list[i];
                    out.push(finding(
                        "invites per group",
                        e,
                        format!(
                            "invite #{} makes {n} into {channel} in {hours} h (cap {cap})",
                            e.seq
                        ),
                    ));
                }
            }
            if let Some(cap) = policy.invite.per_channel_lifetime {
                for (i, e) in list.iter().enumerate().skip(cap as usize) {
                    out.push(finding(
                        "invites per group ever",
                        e,
                        format!(
                            "invite #{} makes {} into {channel} ever (cap {cap})",
                            e.seq,
                            i + 1
                        ),
                    ));
                }
            }
        }
    }
}

/// What the journal says about deliveries, indexed for the outcome rules.
#[derive(Default)]
struct Deliveries<'a> {
    /// Delivered messages per (task, person).
    messages: HashMap<(TaskId, &'a str), Vec<&'a JournalEntry>>,
    /// De-duplicated messages per (task, person).
    dedup_messages: HashMap<(TaskId, &'a str), Vec<&'a JournalEntry>>,
    /// Delivered invites per (group, person).
    invites: HashMap<(&'a str, &'a str), Vec<&'a JournalEntry>>,
    /// (group, person) the platform answered "already a member" for.
    members: HashSet<(&'a str, &'a str)>,
}

impl<'a> Deliveries<'a> {
    fn of(journal: &'a [JournalEntry]) -> Self {
        let mut d = Self::default();
        for e in journal {
            let Some(person) = e.person.as_deref() else {
                continue;
            };
            match (e.call, e.reach, e.task, e.channel.as_deref()) {
                (CallKind::Message, Reach::Delivered, Some(task), _) => {
                    d.messages.entry((task, person)).or_default().push(e);
                }
                (CallKind::Message, Reach::Deduplicated, Some(task), _) => {
                    d.dedup_messages.entry((task, person)).or_default().push(e);
                }
                (CallKind::Invite, Reach::Delivered, _, Some(channel)) => {
                    d.invites.entry((channel, person)).or_default().push(e);
                }
                (CallKind::Invite, Reach::Deduplicated, _, Some(channel)) => {
                    d.members.insert((channel, person));
                }
                // The platform's answer to a membership check is its word too.
                (CallKind::IsMember, _, _, Some(channel)) if e.answer == "member: true" => {
                    d.members.insert((channel, person));
                }
                _ => {}
            }
        }
        d
    }

    fn message_of(&self, task: TaskId, person: &str) -> Option<&'a JournalEntry> {
        self.messages
            .get(&(task, person))
            .and_then(|v| v.first().copied())
    }

    /// ` (random_id R de-duplicated for A #n at T; …)`, or nothing.
    fn deduplicated(&self, task: TaskId, person: &str) -> String {
        let Some(list) = self.dedup_messages.get(&(task, person)) else {
            return String::new();
        };
        let list: Vec<String> = list
            .iter()
            .map(|e| {
                format!(
                    "random_id {} de-duplicated for {}",
                    e.random_id.unwrap_or_default(),
                    seen(e)
                )
            })
            .collect();
        format!(" ({})", list.join("; "))
    }

    fn invite_into(&self, channel: &str, person: &str) -> Option<&'a JournalEntry> {
        self.invites
            .get(&(channel, person))
            .and_then(|v| v.first().copied())
    }
}

fn target_finding(rule: &'static str, r: &ReportedTarget, detail: String) -> Finding {
    Finding {
        rule,
        at: None,
        account: None,
        person: Some(r.person.clone()),
        detail,
    }
}

fn described(r: &ReportedTarget) -> String {
    let outcome = r.outcome.map_or("none", Outcome::as_str);
    let channel = r
        .channel
        .as_ref()
        .map_or_else(String::new, |c| format!(" {c}"));
    let reason = r
        .task_reason
        .as_ref()
        .map_or_else(String::new, |why| format!(": {why}"));
    format!(
        "task {} ({}{channel}, task {}{reason}) reported {} / {outcome}",
        r.task,
        r.action.as_str(),
        r.task_status,
        r.status
    )
}

fn seen(e: &JournalEntry) -> String {
    format!(
        "{} #{} at {}",
        e.account,
        e.seq,
        e.at.format("%Y-%m-%d %H:%M:%S")
    )
}

fn outcomes(journal: &[JournalEntry], reported: &[ReportedTarget], report: &mut CheckReport) {
    let d = Deliveries::of(journal);
    for r in reported {
        let person = r.person.as_str();
        if matches!(r.status, TargetStatus::Pending | TargetStatus::InProgress) {
            // A task that failed or was cancelled leaves its untouched targets pending, and
            // says why: nothing is lost as long as nothing reached them.
            let delivered = match r.action {
                TaskKind::Message => d.message_of(r.task, person).is_some(),
                TaskKind::Invite | TaskKind::InviteAndMessage => {
                    d.invite_into(r.channel.as_deref().unwrap_or(""), person)
                        .is_some()
                        || d.message_of(r.task, person).is_some()
                }
            };
            let ended = matches!(r.task_status, TaskStatus::Failed | TaskStatus::Cancelled);
            if r.status == TargetStatus::InProgress || !ended || delivered {
                let rule = match r.task_status {
                    TaskStatus::Failed => "left unfinished (task failed)",
                    TaskStatus::Paused => "left unfinished (task paused)",
                    TaskStatus::Cancelled => "left unfinished (task cancelled)",
                    _ => "left unfinished",
                };
                report.lost.push(target_finding(
                    rule,
                    r,
                    format!("{}: never finished", described(r)),
                ));
            }
        }
        let refused = matches!(r.status, TargetStatus::Failed | TargetStatus::Skipped);
        match r.action {
            TaskKind::Message => {
                let delivered = d.message_of(r.task, person);
                if r.outcome == Some(Outcome::Sent) && delivered.is_none() {
                    let dedup = d.deduplicated(r.task, person);
                    report.mismatched.push(target_finding(
                        "sent without delivery",
                        r,
                        format!("{}, but no message was delivered{dedup}", described(r)),
                    ));
                }
                if let (true, Some(e)) = (refused, delivered) {
                    report.mismatched.push(target_finding(
                        "delivered but reported failed",
                        r,
                        format!(
                            "{}, but a message was delivered by {}",
                            described(r),
                            seen(e)
                        ),
                    ));
                }
            }
            TaskKind::Invite | TaskKind::InviteAndMessage => {
                let channel = r.channel.as_deref().unwrap_or("");
                let delivered = d.invite_into(channel, person);
                match r.outcome {
                    Some(Outcome::Invited) if delivered.is_none() => {
                        report.mismatched.push(target_finding(
                            "invited without delivery",
                            r,
                            format!("{}, but nobody added them to {channel}", described(r)),
                        ));
                    }
                    Some(Outcome::AlreadyMember)
                        if delivered.is_none() && !d.members.contains(&(channel, person)) =>
                    {
                        report.mismatched.push(target_finding(
                            "already_member without membership",
                            r,
                            format!(
                                "{}, but the platform never said they were a member of {channel}",
                                described(r)
                            ),
                        ));
                    }
                    _ => {}
                }
                let delivered_here = d
                    .invites
                    .get(&(channel, person))
                    .and_then(|v| v.iter().find(|e| e.task == Some(r.task)));
                if let (true, Some(e)) = (refused, delivered_here) {
                    report.mismatched.push(target_finding(
                        "delivered but reported failed",
                        r,
                        format!(
                            "{}, but they were added to {channel} by {}",
                            described(r),
                            seen(e)
                        ),
                    ));
                }
                let message_sent = r.result.get("message").and_then(serde_json::Value::as_str)
                    == Some(Outcome::Sent.as_str());
                if r.action == TaskKind::InviteAndMessage
                    && message_sent
                    && d.message_of(r.task, person).is_none()
                {
                    report.mismatched.push(target_finding(
                        "sent without delivery",
                        r,
                        format!(
                            "{} with its message sent, but no message was delivered{}",
                            described(r),
                            d.deduplicated(r.task, person)
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_442_000, 0).unwrap()
    }

    fn acc(n: u8) -> AccountId {
        AccountId::parse(format!("acc-{n}")).unwrap()
    }

    const T1: TaskId = TaskId::new(1);
    const T2: TaskId = TaskId::new(2);

    #[test]
    fn a_window_of_no_length_holds_no_write() {
        let times = [t0(), t0(), t0() + TimeDelta::minutes(1)];
        assert_eq!(over_window(&times, 0, TimeDelta::zero()), Vec::new());
        assert_eq!(
            over_window(&times, 1, TimeDelta::minutes(2)),
            vec![(1, 2), (2, 3)]
        );
    }

    /// Builds journals entry by entry, numbering them.
    #[derive(Default)]
    struct J(Vec<JournalEntry>);

    impl J {
        #[allow(clippy::too_many_arguments)]
        fn push(
            &mut self,
            minute: i64,
            account: u8,
            call: CallKind,
            task: TaskId,
            channel: Option<&str>,
            person: &str,
            random_id: Option<i64>,
            reach: Reach,
        ) -> &mut Self {
            self.0.push(JournalEntry {
                seq: self.0.len() as u64,
                at: t0() + TimeDelta::minutes(minute),
                account: acc(account),
                call,
                task: Some(task),
                channel: channel.map(str::to_owned),
                person: Some(person.to_owned()),
                random_id,
                reach,
                answer: "ok".to_owned(),
            });
            self
        }

        fn invite(&mut self, minute: i64, account: u8, person: &str, reach: Reach) -> &mut Self {
            self.push(
                minute,
                account,
                CallKind::Invite,
                T1,
                Some("@g"),
                person,
                None,
                reach,
            )
        }

        fn message(
            &mut self,
            minute: i64,
            account: u8,
            person: &str,
            random_id: i64,
            reach: Reach,
        ) -> &mut Self {
            self.push(
                minute,
                account,
                CallKind::Message,
                T2,
                None,
                person,
                Some(random_id),
                reach,
            )
        }
    }

    fn target(task: TaskId, person: &str, outcome: Outcome) -> ReportedTarget {
        let (action, channel) = if task == T1 {
            (TaskKind::Invite, Some("@g".to_owned()))
        } else {
            (TaskKind::Message, None)
        };
        ReportedTarget {
            task,
            action,
            channel,
            person: person.to_owned(),
            status: outcome.target_status(),
            outcome: Some(outcome),
            result: serde_json::Value::Null,
            task_status: TaskStatus::Completed,
            task_reason: None,
        }
    }

    fn rules(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.rule).collect()
    }

    /// Invites and messages 15 minutes apart per account, every outcome backed by the journal.
    fn clean() -> (J, Vec<ReportedTarget>) {
        let mut j = J::default();
        j.invite(0, 1, "u:a", Reach::Delivered)
            .invite(0, 2, "u:b", Reach::Deduplicated)
            .message(15, 1, "u:a", 11, Reach::Delivered)
            .message(15, 2, "u:c", 12, Reach::ReachedNotDelivered)
            // Never left: neither a write for the limits nor a delivery.
            .message(16, 2, "u:c", 12, Reach::NotReached)
            .message(30, 2, "u:c", 12, Reach::Delivered)
            .invite(30, 1, "u:d", Reach::ReachedNotDelivered)
            // The same random_id again, same account: delivered before, nothing new.
            .message(45, 2, "u:c", 12, Reach::Deduplicated);
        let reported = vec![
            target(T1, "u:a", Outcome::Invited),
            target(T1, "u:b", Outcome::AlreadyMember),
            target(T1, "u:d", Outcome::PrivacyRestricted),
            target(T1, "u:e", Outcome::Uncertain),
            target(T2, "u:a", Outcome::Sent),
            target(T2, "u:c", Outcome::Sent),
        ];
        (j, reported)
    }

    #[test]
    fn a_clean_run_has_no_findings() {
        let (j, reported) = clean();
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert!(report.is_clean(), "{report:#?}");
    }

    #[test]
    fn a_second_delivered_message_of_a_task_is_a_duplicate() {
        let (mut j, reported) = clean();
        // Another account re-sends the same random_id: the platform delivers it again.
        j.message(60, 3, "u:a", 11, Reach::Delivered);
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert_eq!(rules(&report.duplicates), ["message delivered twice"]);
        assert_eq!(report.duplicates[0].account, Some(acc(3)));
        assert_eq!(report.counts().duplicates, 1);
    }

    #[test]
    fn a_second_delivered_invite_into_a_group_is_a_duplicate() {
        let (mut j, reported) = clean();
        j.invite(60, 2, "u:a", Reach::Delivered);
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert_eq!(rules(&report.duplicates), ["invite delivered twice"]);
    }

    #[test]
    fn sent_with_only_a_deduplicated_message_is_mismatched() {
        let (mut j, mut reported) = clean();
        // A random_id account 1 used for u:a, reused for u:f: nothing reaches u:f.
        j.message(60, 1, "u:f", 11, Reach::Deduplicated);
        reported.push(target(T2, "u:f", Outcome::Sent));
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert_eq!(rules(&report.mismatched), ["sent without delivery"]);
        assert!(report.mismatched[0].detail.contains("random_id 11"));
        assert!(report.duplicates.is_empty());
    }

    #[test]
    fn writes_closer_than_the_pause_break_it_whatever_their_kinds() {
        let (mut j, reported) = clean();
        j.invite(100, 1, "u:g", Reach::ReachedNotDelivered)
            // A message 5 minutes after an invite of another task.
            .message(105, 1, "u:h", 13, Reach::Delivered)
            // Not reached: no write, no pause broken.
            .message(130, 1, "u:i", 14, Reach::NotReached)
            // An add-contact right before an invite: labelled apart.
            .push(
                140,
                1,
                CallKind::AddContact,
                T1,
                None,
                "u:j",
                None,
                Reach::Delivered,
            )
            .invite(140, 1, "u:j", Reach::ReachedNotDelivered);
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert_eq!(
            rules(&report.cap_violations),
            ["pause", "pause (add_contact)"]
        );
        assert_eq!(
            report.cap_violations[0].at,
            Some(t0() + TimeDelta::minutes(105))
        );
    }

    fn small_policy() -> LimitPolicy {
        let mut p = LimitPolicy::telegram();
        p.invite.per_channel = Some(2);
        p.invite.per_account = 3;
        p.invite.per_channel_lifetime = Some(4);
        p.message.per_account = 2;
        p
    }

    #[test]
    fn invite_caps_come_from_the_policy() {
        let mut j = J::default();
        // Three invites into @g within a day: the third breaks the cap per group (2).
        j.invite(0, 1, "u:a", Reach::Delivered)
            .invite(20, 1, "u:b", Reach::ReachedNotDelivered)
            .invite(40, 1, "u:c", Reach::ReachedNotDelivered);
        let report = check(&j.0, &[], &small_policy());
        assert_eq!(rules(&report.cap_violations), ["invites per group"]);
        // The same under Telegram's defaults is clean.
        assert!(check(&j.0, &[], &LimitPolicy::telegram()).is_clean());

        // Four invites into four groups within a day: the fourth breaks the cap per account.
        let mut j = J::default();
        for (i, g) in ["@g1", "@g2", "@g3", "@g4"].iter().enumerate() {
            j.push(
                20 * i as i64,
                1,
                CallKind::Invite,
                T1,
                Some(g),
                "u:a",
                None,
                Reach::ReachedNotDelivered,
            );
        }
        let report = check(&j.0, &[], &small_policy());
        assert_eq!(rules(&report.cap_violations), ["invites per account"]);

        // Five invites into @g a day apart: within every window, but the fifth breaks the
        // lifetime cap (4).
        let mut j = J::default();
        for day in 0..5 {
            j.invite(day * 1500, 1, "u:a", Reach::ReachedNotDelivered);
        }
        let report = check(&j.0, &[], &small_policy());
        assert_eq!(rules(&report.cap_violations), ["invites per group ever"]);
    }

    #[test]
    fn messages_over_the_window_break_the_cap() {
        let mut j = J::default();
        j.message(0, 1, "u:a", 1, Reach::Delivered)
            .message(20, 1, "u:b", 2, Reach::Delivered)
            .message(40, 1, "u:c", 3, Reach::NotReached)
            .message(60, 1, "u:d", 4, Reach::ReachedNotDelivered)
            // A day after the second: the window has rolled past the first two.
            .message(1461, 1, "u:e", 5, Reach::Delivered);
        let report = check(&j.0, &[], &small_policy());
        assert_eq!(rules(&report.cap_violations), ["messages per account"]);
        assert_eq!(
            report.cap_violations[0].at,
            Some(t0() + TimeDelta::minutes(60))
        );
    }

    #[test]
    fn unfinished_targets_are_lost() {
        let (j, mut reported) = clean();
        let mut pending = target(T1, "u:x", Outcome::Invited);
        pending.status = TargetStatus::Pending;
        pending.outcome = None;
        let mut claimed = target(T2, "u:y", Outcome::Sent);
        claimed.status = TargetStatus::InProgress;
        claimed.outcome = None;
        reported.extend([pending, claimed]);
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert_eq!(report.counts().lost, 2);
        assert!(report.mismatched.is_empty());
    }

    #[test]
    fn outcomes_the_journal_contradicts_are_mismatched() {
        let (mut j, mut reported) = clean();
        j.invite(100, 1, "u:k", Reach::Delivered)
            .message(120, 1, "u:l", 21, Reach::Delivered);
        reported.extend([
            // Nobody added u:m.
            target(T1, "u:m", Outcome::Invited),
            // The platform never said u:n was a member.
            target(T1, "u:n", Outcome::AlreadyMember),
            // Added, yet reported failed.
            target(T1, "u:k", Outcome::UnknownError),
            // Delivered, yet reported failed.
            target(T2, "u:l", Outcome::NotFound),
        ]);
        let report = check(&j.0, &reported, &LimitPolicy::telegram());
        assert_eq!(
            rules(&report.mismatched),
            [
                "invited without delivery",
                "already_member without membership",
                "delivered but reported failed",
                "delivered but reported failed",
            ]
        );
    }

    #[test]
    fn invite_and_message_reports_its_message_too() {
        let mut j = J::default();
        j.push(
            0,
            1,
            CallKind::Invite,
            T1,
            Some("@g"),
            "u:a",
            None,
            Reach::Delivered,
        )
        .push(
            0,
            1,
            CallKind::Message,
            T1,
            None,
            "u:a",
            Some(7),
            Reach::Deduplicated,
        );
        let mut r = target(T1, "u:a", Outcome::Invited);
        r.action = TaskKind::InviteAndMessage;
        r.result = serde_json::json!({ "invite": "invited", "message": "sent" });
        let report = check(&j.0, &[r], &LimitPolicy::telegram());
        assert_eq!(rules(&report.mismatched), ["sent without delivery"]);
        assert_eq!(
            rules(&report.cap_violations),
            ["pause (invite_and_message)"]
        );
    }
}
