//! [`FaultyPlatform`]: a simulated messenger that breaks the way real ones do — flood waits,
//! restrictions, a dead session, lost rights, refused writes, timeouts before and after the
//! write took effect, connection failures, unknown errors and process crashes in the middle
//! of a call — and writes every call into its own [`Journal`].
//!
//! Its world follows Telegram: a message whose `random_id` the sending account already used
//! delivers nothing and answers success (`RANDOM_ID_DUPLICATE`, which the Telegram adapter
//! reads as "sent"); another account with the same `random_id` delivers a second message. An
//! invite of a person already in the group answers `already_member` and adds nothing. Some
//! people (by a seeded hash of their key) are members before the campaign, some refuse
//! invites by privacy, some do not exist.
//!
//! Every decision comes from the [`FaultPlan`]'s seed: one random generator behind one lock,
//! so a run that calls the platform in the same order meets the same faults.
//!
//! A crash journals the call (after applying it, for a crash after delivery), trips the shared
//! [`CrashSwitch`] and never returns: whoever drives the engine drops it mid-await, as a killed
//! process would stop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

use super::journal::{CallKind, Journal, NewEntry, Reach};
use crate::clock::Clock;
use crate::domain::{AccountId, GroupRef, Outcome, Platform, Target};
use crate::limits::LimitPolicy;
use crate::ports::{ActionResult, InviteStrategy, PlatformError};

/// Shares of people and chances of each fault. Chances apply per call; the write faults
/// (`flood_wait` … `crash_after`) are exclusive alternatives of one draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// Seed of every decision.
    pub seed: u64,
    /// Share of (group, person) pairs where the person is a member before the campaign.
    pub pre_member: f64,
    /// Share of people whose privacy settings refuse invites.
    pub privacy_restricted: f64,
    /// Share of people that do not exist.
    pub not_found: f64,
    /// `FLOOD_WAIT_X` on a write; the account is refused until X seconds passed.
    pub flood_wait: f64,
    /// Range of X, in seconds.
    pub flood_wait_seconds: (u64, u64),
    /// `PEER_FLOOD` on a write.
    pub peer_flood: f64,
    /// `AUTH_KEY_UNREGISTERED` on a write: the account is dead from then on (one per run).
    pub account_dead: f64,
    /// `CHAT_ADMIN_REQUIRED` for this account only, on an invite; the account keeps lacking
    /// rights in that group.
    pub no_rights: f64,
    /// `CHAT_MEMBER_ADD_FAILED` on an invite: reached, nothing done.
    pub refused: f64,
    /// `TIMEOUT` before the write took effect.
    pub timeout_before: f64,
    /// `TIMEOUT` after the write took effect.
    pub timeout_after: f64,
    /// A connection failure before the request left.
    pub transient: f64,
    /// An error this service does not know: reached, nothing done.
    pub unknown: f64,
    /// A crash before the request left.
    pub crash_before: f64,
    /// A crash after the write took effect.
    pub crash_after: f64,
    /// A connection failure on a membership lookup.
    pub is_member_transient: f64,
    /// A flood wait on an invite-rights check.
    pub rights_flood_wait: f64,
    /// A crash before one of the engine's store or ledger writes (the write never happens);
    /// see [`CrashingStore`](super::CrashingStore).
    pub store_crash_before: f64,
    /// A crash after one of the engine's store or ledger writes committed (the engine never
    /// learns it).
    pub store_crash_after: f64,
}

impl FaultPlan {
    /// No faults at all (people still vary): a control run.
    pub fn calm(seed: u64) -> Self {
        Self {
            seed,
            pre_member: 0.08,
            privacy_restricted: 0.08,
            not_found: 0.04,
            flood_wait: 0.0,
            flood_wait_seconds: (30, 600),
            peer_flood: 0.0,
            account_dead: 0.0,
            no_rights: 0.0,
            refused: 0.0,
            timeout_before: 0.0,
            timeout_after: 0.0,
            transient: 0.0,
            unknown: 0.0,
            crash_before: 0.0,
            crash_after: 0.0,
            is_member_transient: 0.0,
            rights_flood_wait: 0.0,
            store_crash_before: 0.0,
            store_crash_after: 0.0,
        }
    }

    /// A mix of every fault, each chance drawn from the seed: the common ones 3–8 %, the
    /// rarer ones (restrictions, lost rights, unknown errors, crashes) 0.5–3 %, a dead
    /// account below 1 % of writes (and once per run at most); a crash before, and one after,
    /// 1–2 % of the engine's store and ledger writes each.
    pub fn for_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xFA17_9EA5);
        let mut rate = |lo: f64, hi: f64| rng.random_range(lo..=hi);
        Self {
            flood_wait: rate(0.03, 0.08),
            peer_flood: rate(0.005, 0.015),
            account_dead: rate(0.0, 0.008),
            no_rights: rate(0.005, 0.015),
            refused: rate(0.03, 0.08),
            timeout_before: rate(0.03, 0.06),
            timeout_after: rate(0.03, 0.06),
            transient: rate(0.03, 0.08),
            unknown: rate(0.01, 0.03),
            crash_before: rate(0.01, 0.03),
            crash_after: rate(0.01, 0.03),
            is_member_transient: rate(0.03, 0.08),
            rights_flood_wait: rate(0.03, 0.08),
            store_crash_before: rate(0.01, 0.02),
            store_crash_after: rate(0.01, 0.02),
            ..Self::calm(seed)
        }
    }
}

/// A fault the platform injected (or kept up: an account still waiting, still dead, still
/// without rights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// A flood wait on a write.
    FloodWait,
    /// A write during a flood wait, refused again.
    FloodWaitRepeat,
    /// `PEER_FLOOD`.
    PeerFlood,
    /// The account's session died.
    AccountDead,
    /// A write of the dead account.
    AccountDeadRepeat,
    /// The account lost its rights in a group.
    NoRights,
    /// An invite into a group where the account has no rights.
    NoRightsRepeat,
    /// `CHAT_MEMBER_ADD_FAILED`.
    Refused,
    /// `TIMEOUT` before the write took effect.
    TimeoutBefore,
    /// `TIMEOUT` after the write took effect.
    TimeoutAfter,
    /// A connection failure before the request left.
    Transient,
    /// An unknown error.
    Unknown,
    /// A crash before the request left.
    CrashBefore,
    /// A crash after the write took effect.
    CrashAfter,
    /// A connection failure on a membership lookup.
    IsMemberTransient,
    /// A flood wait on an invite-rights check.
    RightsFloodWait,
    /// A crash before a store or ledger write.
    StoreCrashBefore,
    /// A crash after a store or ledger write committed.
    StoreCrashAfter,
}

impl FaultKind {
    /// Name in summaries.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::FloodWait => "flood_wait",
            FaultKind::FloodWaitRepeat => "flood_wait_repeat",
            FaultKind::PeerFlood => "peer_flood",
            FaultKind::AccountDead => "account_dead",
            FaultKind::AccountDeadRepeat => "account_dead_repeat",
            FaultKind::NoRights => "no_rights",
            FaultKind::NoRightsRepeat => "no_rights_repeat",
            FaultKind::Refused => "refused",
            FaultKind::TimeoutBefore => "timeout_before",
            FaultKind::TimeoutAfter => "timeout_after",
            FaultKind::Transient => "transient",
            FaultKind::Unknown => "unknown",
            FaultKind::CrashBefore => "crash_before",
            FaultKind::CrashAfter => "crash_after",
            FaultKind::IsMemberTransient => "is_member_transient",
            FaultKind::RightsFloodWait => "rights_flood_wait",
            FaultKind::StoreCrashBefore => "store_crash_before",
            FaultKind::StoreCrashAfter => "store_crash_after",
        }
    }
}

/// Faults injected, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts(BTreeMap<FaultKind, u64>);

impl FaultCounts {
    /// Counts one more.
    pub fn add(&mut self, kind: FaultKind) {
        *self.0.entry(kind).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &FaultCounts) {
        for (kind, n) in &other.0 {
            *self.0.entry(*kind).or_default() += n;
        }
    }

    /// Count of a kind.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// All faults.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Counts per kind, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (FaultKind, u64)> + '_ {
        self.0.iter().map(|(k, n)| (*k, *n))
    }
}

impl fmt::Display for FaultCounts {
    /// `flood_wait=3, refused=1, …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={n}", kind.as_str())?;
        }
        Ok(())
    }
}

/// Tripped by a crashing call; the runner waits on it beside the engine. A trip is kept (not
/// only notified), so a runner that starts waiting after the trip still sees it.
#[derive(Debug, Default)]
pub struct CrashSwitch {
    tripped: AtomicBool,
    trips: AtomicU64,
    notify: Notify,
}

impl CrashSwitch {
    /// An untripped switch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trips the switch and wakes every waiter.
    pub fn trip(&self) {
        self.trips.fetch_add(1, Ordering::SeqCst);
        self.tripped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether it is tripped.
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Untrips it (after a restart).
    pub fn reset(&self) {
        self.tripped.store(false, Ordering::SeqCst);
    }

    /// Trips so far, resets notwithstanding.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::SeqCst)
    }

    /// Completes once the switch is tripped (at once if it already is).
    pub async fn tripped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read: a trip in between still wakes us.
            notified.as_mut().enable();
            if self.is_tripped() {
                return;
            }
            notified.await;
        }
    }
}

/// What a write call asks the platform to do.
#[derive(Debug, Clone, Copy)]
enum Write<'a> {
    Invite(&'a GroupRef),
    Message(i64),
    AddContact,
}

impl Write<'_> {
    const fn call(self) -> CallKind {
        match self {
            Write::Invite(_) => CallKind::Invite,
            Write::Message(_) => CallKind::Message,
            Write::AddContact => CallKind::AddContact,
        }
    }
}

/// The injected alternative of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    FloodWait,
    PeerFlood,
    AccountDead,
    NoRights,
    Refused,
    TimeoutBefore,
    TimeoutAfter,
    Transient,
    Unknown,
    CrashBefore,
    CrashAfter,
}

#[derive(Debug)]
struct World {
    rng: StdRng,
    /// (group, person) added during the run.
    members: HashSet<(String, String)>,
    /// (account, random_id) of delivered messages.
    random_ids: HashSet<(AccountId, i64)>,
    /// (account, person) contacts added.
    contacts: HashSet<(AccountId, String)>,
    flood_until: HashMap<AccountId, DateTime<Utc>>,
    dead: Option<AccountId>,
    no_rights: HashSet<(AccountId, String)>,
    counts: FaultCounts,
}

/// What the world did with a write that was carried out.
struct Applied {
    reach: Reach,
    answer: String,
    result: Result<ActionResult, PlatformError>,
}

/// One journalled answer, and whether the call then crashes.
struct Answer {
    reach: Reach,
    text: String,
    result: Result<ActionResult, PlatformError>,
    crash: bool,
}

impl Answer {
    fn err(reach: Reach, error: PlatformError) -> Self {
        Self {
            reach,
            text: error.code().to_owned(),
            result: Err(error),
            crash: false,
        }
    }
}

/// SplitMix64 over a seed and some byte strings.
fn mix(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for part in parts {
        for &b in *part {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        h ^= 0xFF;
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The fault-injecting simulated messenger (`Platform::Sandbox`).
#[derive(Debug)]
pub struct FaultyPlatform {
    plan: FaultPlan,
    clock: Arc<dyn Clock>,
    journal: Arc<Journal>,
    switch: Arc<CrashSwitch>,
    world: Mutex<World>,
}

impl FaultyPlatform {
    /// A platform with the plan's faults, journalling into `journal` at `clock`'s time and
    /// tripping `switch` on a crash.
    pub fn new(
        plan: FaultPlan,
        clock: Arc<dyn Clock>,
        journal: Arc<Journal>,
        switch: Arc<CrashSwitch>,
    ) -> Self {
        Self {
            world: Mutex::new(World {
                rng: StdRng::seed_from_u64(plan.seed),
                members: HashSet::new(),
                random_ids: HashSet::new(),
                contacts: HashSet::new(),
                flood_until: HashMap::new(),
                dead: None,
                no_rights: HashSet::new(),
                counts: FaultCounts::default(),
            }),
            plan,
            clock,
            journal,
            switch,
        }
    }

    /// The plan in force.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// The journal it writes.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The switch its crashes trip.
    pub fn switch(&self) -> &Arc<CrashSwitch> {
        &self.switch
    }

    /// Faults injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.world().counts.clone()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn trait_of(&self, person: &str) -> f64 {
        unit(mix(self.plan.seed, &[b"person", person.as_bytes()]))
    }

    fn is_not_found(&self, person: &str) -> bool {
        self.trait_of(person) < self.plan.not_found
    }

    fn is_privacy_restricted(&self, person: &str) -> bool {
        let p = self.trait_of(person);
        p >= self.plan.not_found && p < self.plan.not_found + self.plan.privacy_restricted
    }

    fn member_before(&self, channel: &str, person: &str) -> bool {
        unit(mix(
            self.plan.seed,
            &[b"member", channel.as_bytes(), person.as_bytes()],
        )) < self.plan.pre_member
    }

    fn is_member_now(&self, world: &World, channel: &str, person: &str) -> bool {
        self.member_before(channel, person)
            || world
                .members
                .contains(&(channel.to_owned(), person.to_owned()))
    }

    fn not_found() -> PlatformError {
        PlatformError::Target {
            outcome: Outcome::NotFound,
            code: "USERNAME_NOT_OCCUPIED".to_owned(),
        }
    }

    /// Draws the write's fault, if any.
    fn draw(&self, world: &mut World, write: Write<'_>) -> Option<Fault> {
        let p = &self.plan;
        let invite = matches!(write, Write::Invite(_));
        let options = [
            (Fault::FloodWait, p.flood_wait),
            (Fault::PeerFlood, p.peer_flood),
            (
                Fault::AccountDead,
                if world.dead.is_none() {
                    p.account_dead
                } else {
                    0.0
                },
            ),
            (Fault::NoRights, if invite { p.no_rights } else { 0.0 }),
            (Fault::Refused, if invite { p.refused } else { 0.0 }),
            (Fault::TimeoutBefore, p.timeout_before),
            (Fault::TimeoutAfter, p.timeout_after),
            (Fault::Transient, p.transient),
            (Fault::Unknown, p.unknown),
            (Fault::CrashBefore, p.crash_before),
            (Fault::CrashAfter, p.crash_after),
        ];
        let mut x: f64 = world.rng.random();
        for (fault, chance) in options {
            if x < chance {
                return Some(fault);
            }
            x -= chance;
        }
        None
    }

    fn flood_seconds(&self, world: &mut World) -> u64 {
        let (lo, hi) = self.plan.flood_wait_seconds;
        world.rng.random_range(lo..=hi.max(lo))
    }

    /// Carries the write out in the world.
    fn apply(
        &self,
        world: &mut World,
        account: &AccountId,
        person: &str,
        write: Write<'_>,
    ) -> Applied {
        if self.is_not_found(person) {
            return Applied {
                reach: Reach::ReachedNotDelivered,
                answer: "USERNAME_NOT_OCCUPIED".to_owned(),
                result: Err(Self::not_found()),
            };
        }
        match write {
            Write::Invite(group) => {
                let channel = group.channel_key();
                if self.is_member_now(world, &channel, person) {
                    return Applied {
                        reach: Reach::Deduplicated,
                        answer: "already_member".to_owned(),
                        result: Ok(ActionResult::new(Outcome::AlreadyMember)),
                    };
                }
                if self.is_privacy_restricted(person) {
                    return Applied {
                        reach: Reach::ReachedNotDelivered,
                        answer: "ok, listed in missing_invitees".to_owned(),
                        result: Ok(ActionResult {
                            outcome: Outcome::PrivacyRestricted,
                            details: serde_json::json!({ "missing_invitee": true }),
                        }),
                    };
                }
                world.members.insert((channel, person.to_owned()));
                Applied {
                    reach: Reach::Delivered,
                    answer: "ok".to_owned(),
                    result: Ok(ActionResult::new(Outcome::Invited)),
                }
            }
            Write::Message(random_id) => {
                if !world.random_ids.insert((account.clone(), random_id)) {
                    return Applied {
                        reach: Reach::Deduplicated,
                        answer: "RANDOM_ID_DUPLICATE, read as sent".to_owned(),
                        result: Ok(ActionResult {
                            outcome: Outcome::Sent,
                            details: serde_json::json!({ "deduplicated": true }),
                        }),
                    };
                }
                Applied {
                    reach: Reach::Delivered,
                    answer: "ok".to_owned(),
                    result: Ok(ActionResult::new(Outcome::Sent)),
                }
            }
            Write::AddContact => {
                let added = world.contacts.insert((account.clone(), person.to_owned()));
                Applied {
                    reach: if added {
                        Reach::Delivered
                    } else {
                        Reach::Deduplicated
                    },
                    answer: "ok".to_owned(),
                    result: Ok(ActionResult::new(Outcome::Invited)),
                }
            }
        }
    }

    /// Decides the answer of a write, under the world's lock.
    fn answer_write(
        &self,
        world: &mut World,
        now: DateTime<Utc>,
        account: &AccountId,
        person: &str,
        write: Write<'_>,
    ) -> Answer {
        if world.dead.as_ref() == Some(account) {
            world.counts.add(FaultKind::AccountDeadRepeat);
            return Answer::err(Reach::ReachedNotDelivered, dead());
        }
        if let Some(until) = world.flood_until.get(account).copied()
            && until > now
        {
            world.counts.add(FaultKind::FloodWaitRepeat);
            let seconds = (until - now).num_seconds().max(1).unsigned_abs();
            return Answer::err(Reach::ReachedNotDelivered, flood(seconds));
        }
        if let Write::Invite(group) = write
            && world
                .no_rights
                .contains(&(account.clone(), group.channel_key()))
        {
            world.counts.add(FaultKind::NoRightsRepeat);
            return Answer::err(Reach::ReachedNotDelivered, no_rights());
        }
        let Some(fault) = self.draw(world, write) else {
            let applied = self.apply(world, account, person, write);
            return Answer {
                reach: applied.reach,
                text: applied.answer,
                result: applied.result,
                crash: false,
            };
        };
        let reached = Reach::ReachedNotDelivered;
        match fault {
            Fault::FloodWait => {
                world.counts.add(FaultKind::FloodWait);
                let seconds = self.flood_seconds(world);
                let secs = i64::try_from(seconds).unwrap_or(i64::MAX);
                world
                    .flood_until
                    .insert(account.clone(), now + TimeDelta::seconds(secs));
                Answer::err(reached, flood(seconds))
            }
            Fault::PeerFlood => {
                world.counts.add(FaultKind::PeerFlood);
                Answer::err(
                    reached,
                    PlatformError::AccountRestricted {
                        code: "PEER_FLOOD".to_owned(),
                    },
                )
            }
            Fault::AccountDead => {
                world.counts.add(FaultKind::AccountDead);
                world.dead = Some(account.clone());
                Answer::err(reached, dead())
            }
            Fault::NoRights => {
                world.counts.add(FaultKind::NoRights);
                if let Write::Invite(group) = write {
                    world
                        .no_rights
                        .insert((account.clone(), group.channel_key()));
                }
                Answer::err(reached, no_rights())
            }
            Fault::Refused => {
                world.counts.add(FaultKind::Refused);
                Answer::err(
                    reached,
                    PlatformError::Refused {
                        code: "CHAT_MEMBER_ADD_FAILED".to_owned(),
                    },
                )
            }
            Fault::TimeoutBefore => {
                world.counts.add(FaultKind::TimeoutBefore);
                let mut a = Answer::err(reached, timeout());
                a.text = "TIMEOUT before delivery".to_owned();
                a
            }
            Fault::TimeoutAfter => {
                world.counts.add(FaultKind::TimeoutAfter);
                let applied = self.apply(world, account, person, write);
                Answer {
                    reach: applied.reach,
                    text: after("TIMEOUT", &applied),
                    result: Err(timeout()),
                    crash: false,
                }
            }
            Fault::Transient => {
                world.counts.add(FaultKind::Transient);
                Answer::err(
                    Reach::NotReached,
                    PlatformError::Transient {
                        code: "CONNECTION_REFUSED".to_owned(),
                    },
                )
            }
            Fault::Unknown => {
                world.counts.add(FaultKind::Unknown);
                Answer::err(
                    reached,
                    PlatformError::Unknown {
                        code: "UNEXPECTED_ANSWER".to_owned(),
                        message: "the server answered something unexpected".to_owned(),
                    },
                )
            }
            Fault::CrashBefore => {
                world.counts.add(FaultKind::CrashBefore);
                Answer {
                    reach: Reach::NotReached,
                    text: "crash before".to_owned(),
                    result: Err(timeout()),
                    crash: true,
                }
            }
            Fault::CrashAfter => {
                world.counts.add(FaultKind::CrashAfter);
                let applied = self.apply(world, account, person, write);
                Answer {
                    reach: applied.reach,
                    text: after("crash", &applied),
                    result: applied.result,
                    crash: true,
                }
            }
        }
    }

    /// One write: decide, journal, then answer or crash.
    async fn write(
        &self,
        account: &AccountId,
        target: &Target,
        write: Write<'_>,
    ) -> Result<ActionResult, PlatformError> {
        let now = self.clock.now();
        let person = target.person.identifier.dedupe_key();
        let answer = self.answer_write(&mut self.world(), now, account, &person, write);
        let (channel, random_id) = match write {
            Write::Invite(group) => (Some(group.channel_key()), None),
            Write::Message(id) => (None, Some(id)),
            Write::AddContact => (None, None),
        };
        self.journal.append(NewEntry {
            at: now,
            account: account.clone(),
            call: write.call(),
            task: Some(target.task_id),
            channel,
            person: Some(person),
            random_id,
            reach: answer.reach,
            answer: answer.text,
        });
        if answer.crash {
            self.switch.trip();
            // The process is gone: nothing after this point runs.
            return std::future::pending().await;
        }
        answer.result
    }
}

fn after(what: &str, applied: &Applied) -> String {
    match applied.reach {
        Reach::Delivered => format!("{what} after delivery"),
        _ => format!("{what} after the call ({})", applied.answer),
    }
}

fn flood(seconds: u64) -> PlatformError {
    PlatformError::FloodWait {
        seconds,
        code: "FLOOD_WAIT".to_owned(),
    }
}

fn dead() -> PlatformError {
    PlatformError::AccountDead {
        code: "AUTH_KEY_UNREGISTERED".to_owned(),
    }
}

fn no_rights() -> PlatformError {
    PlatformError::Group {
        code: "CHAT_ADMIN_REQUIRED".to_owned(),
        account_only: true,
    }
}

fn timeout() -> PlatformError {
    PlatformError::Ambiguous {
        code: "TIMEOUT".to_owned(),
    }
}

#[async_trait]
impl InviteStrategy for FaultyPlatform {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }

    fn rate_limits(&self) -> LimitPolicy {
        LimitPolicy::telegram()
    }

    async fn initialize(&self, _account: &AccountId) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn check_invite_rights(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<(), PlatformError> {
        let now = self.clock.now();
        let channel = group.channel_key();
        let result = {
            let mut world = self.world();
            if world.dead.as_ref() == Some(account) {
                Err(dead())
            } else if world
                .no_rights
                .contains(&(account.clone(), channel.clone()))
            {
                Err(no_rights())
            } else if world.rng.random::<f64>() < self.plan.rights_flood_wait {
                world.counts.add(FaultKind::RightsFloodWait);
                let seconds = self.flood_seconds(&mut world);
                Err(flood(seconds))
            } else {
                Ok(())
            }
        };
        self.journal.append(NewEntry {
            at: now,
            account: account.clone(),
            call: CallKind::CheckRights,
            task: None,
            channel: Some(channel),
            person: None,
            random_id: None,
            reach: Reach::ReachedNotDelivered,
            answer: result
                .as_ref()
                .map_or_else(|e| e.code().to_owned(), |()| "ok".to_owned()),
        });
        result
    }

    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        self.write(account, target, Write::Invite(group)).await
    }

    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        _text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        self.write(account, target, Write::Message(random_id)).await
    }

    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError> {
        self.write(account, target, Write::AddContact)
            .await
            .map(|_| ())
    }

    async fn is_member(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        let now = self.clock.now();
        let channel = group.channel_key();
        let person = target.person.identifier.dedupe_key();
        let (reach, result) = {
            let mut world = self.world();
            if world.rng.random::<f64>() < self.plan.is_member_transient {
                world.counts.add(FaultKind::IsMemberTransient);
                (
                    Reach::NotReached,
                    Err(PlatformError::Transient {
                        code: "CONNECTION_REFUSED".to_owned(),
                    }),
                )
            } else {
                (
                    Reach::ReachedNotDelivered,
                    Ok(self.is_member_now(&world, &channel, &person)),
                )
            }
        };
        self.journal.append(NewEntry {
            at: now,
            account: account.clone(),
            call: CallKind::IsMember,
            task: Some(target.task_id),
            channel: Some(channel),
            person: Some(person),
            random_id: None,
            reach,
            answer: match &result {
                Ok(m) => format!("member: {m}"),
                Err(e) => e.code().to_owned(),
            },
        });
        result
    }

    async fn disconnect(&self, _account: &AccountId) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{ReportedTarget, TaskKind, check};
    use crate::clock::VirtualClock;
    use crate::domain::{
        NewTarget, TargetId, TargetIdentifier, TargetStatus, TaskId, TaskStatus, Username,
    };

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_442_000, 0).unwrap()
    }

    fn platform(plan: FaultPlan) -> FaultyPlatform {
        FaultyPlatform::new(
            plan,
            Arc::new(VirtualClock::auto(t0())),
            Arc::new(Journal::new()),
            Arc::new(CrashSwitch::new()),
        )
    }

    fn target(name: &str) -> Target {
        Target {
            id: TargetId::new(1),
            task_id: TaskId::new(1),
            person: NewTarget::new(TargetIdentifier::Username(
                Username::parse(name, Platform::Sandbox).unwrap(),
            )),
            status: TargetStatus::InProgress,
            outcome: None,
            account_id: None,
            random_id: None,
            sender: None,
            invite_outcome: None,
            contact_added: false,
            attempts: 1,
            error_message: None,
            result: serde_json::Value::Null,
            claimed_at: None,
            processed_at: None,
        }
    }

    /// People the platform knows, who take invites and are in no group yet.
    fn plain_people(p: &FaultyPlatform, group: &GroupRef, n: usize) -> Vec<Target> {
        (0..1000)
            .map(|i| target(&format!("person_{i:03}")))
            .filter(|t| {
                let key = t.person.identifier.dedupe_key();
                !p.is_not_found(&key)
                    && !p.is_privacy_restricted(&key)
                    && !p.member_before(&group.channel_key(), &key)
            })
            .take(n)
            .collect()
    }

    fn account(n: u8) -> AccountId {
        AccountId::parse(format!("acc-{n}")).unwrap()
    }

    #[tokio::test]
    async fn a_deduplicated_message_is_not_a_delivery() {
        let p = platform(FaultPlan::calm(1));
        let group = GroupRef::parse("@chaos_alpha").unwrap();
        let people = plain_people(&p, &group, 2);
        let (a, b) = (&people[0], &people[1]);
        // Account 1 uses random_id 42 for a, then (a repeated id) for b: b gets nothing, and
        // the answer is still "sent".
        let first = p.send_message(&account(1), a, "hi", 42).await.unwrap();
        let second = p.send_message(&account(1), b, "hi", 42).await.unwrap();
        assert_eq!(first.outcome, Outcome::Sent);
        assert_eq!(second.outcome, Outcome::Sent);
        assert_eq!(second.details["deduplicated"], true);
        // Another account with the same id delivers.
        p.send_message(&account(2), b, "hi", 42).await.unwrap();
        let journal = p.journal().entries();
        let reaches: Vec<Reach> = journal.iter().map(|e| e.reach).collect();
        assert_eq!(
            reaches,
            [Reach::Delivered, Reach::Deduplicated, Reach::Delivered]
        );

        // Reported sent on the de-duplicated answer alone: the checker says nothing arrived.
        let reported = ReportedTarget {
            task: TaskId::new(1),
            action: TaskKind::Message,
            channel: None,
            person: b.person.identifier.dedupe_key(),
            status: TargetStatus::Success,
            outcome: Some(Outcome::Sent),
            result: serde_json::Value::Null,
            task_status: TaskStatus::Completed,
            task_reason: None,
        };
        let report = check(&journal[..2], &[reported], &LimitPolicy::telegram());
        assert_eq!(report.counts().mismatched, 1, "{report:#?}");
        assert_eq!(report.counts().duplicates, 0);
    }

    #[tokio::test]
    async fn an_invite_of_a_member_adds_nobody() {
        let p = platform(FaultPlan::calm(2));
        let group = GroupRef::parse("@chaos_alpha").unwrap();
        let t = &plain_people(&p, &group, 1)[0];
        let first = p.invite(&account(1), t, &group).await.unwrap();
        let again = p.invite(&account(2), t, &group).await.unwrap();
        assert_eq!(first.outcome, Outcome::Invited);
        assert_eq!(again.outcome, Outcome::AlreadyMember);
        assert!(p.is_member(&account(2), t, &group).await.unwrap());
        let reaches: Vec<Reach> = p.journal().entries().iter().map(|e| e.reach).collect();
        assert_eq!(
            reaches,
            [
                Reach::Delivered,
                Reach::Deduplicated,
                Reach::ReachedNotDelivered
            ]
        );
    }

    #[tokio::test]
    async fn a_crash_after_delivery_trips_the_switch_and_never_returns() {
        let p = platform(FaultPlan {
            crash_after: 1.0,
            ..FaultPlan::calm(3)
        });
        let group = GroupRef::parse("@chaos_alpha").unwrap();
        let t = &plain_people(&p, &group, 1)[0];
        let a = account(1);
        tokio::select! {
            biased;
            _ = p.invite(&a, t, &group) => panic!("a crashed call returned"),
            () = p.switch().tripped() => {}
        }
        // Seen by a waiter that comes after the trip, too.
        p.switch().tripped().await;
        assert_eq!(p.switch().trips(), 1);
        let journal = p.journal().entries();
        assert_eq!(journal[0].reach, Reach::Delivered);
        assert_eq!(journal[0].answer, "crash after delivery");
        assert_eq!(p.fault_counts().get(FaultKind::CrashAfter), 1);
        p.switch().reset();
        assert!(!p.switch().is_tripped());
    }

    #[tokio::test]
    async fn a_crash_before_sends_nothing_and_a_timeout_after_delivers() {
        let p = platform(FaultPlan {
            crash_before: 1.0,
            ..FaultPlan::calm(4)
        });
        let t = &target("person_001");
        let a = account(1);
        tokio::select! {
            biased;
            _ = p.send_message(&a, t, "hi", 9) => panic!("a crashed call returned"),
            () = p.switch().tripped() => {}
        }
        assert_eq!(p.journal().entries()[0].reach, Reach::NotReached);

        let p = platform(FaultPlan {
            timeout_after: 1.0,
            ..FaultPlan::calm(4)
        });
        let group = GroupRef::parse("@chaos_alpha").unwrap();
        let t = &plain_people(&p, &group, 1)[0];
        let err = p.invite(&account(1), t, &group).await.unwrap_err();
        assert_eq!(err.class(), crate::ports::ErrorClass::Ambiguous);
        assert_eq!(p.journal().entries()[0].reach, Reach::Delivered);
        assert!(p.is_member(&account(1), t, &group).await.unwrap());
    }

    #[tokio::test]
    async fn a_flood_wait_holds_until_it_ends() {
        let clock = Arc::new(VirtualClock::auto(t0()));
        let p = FaultyPlatform::new(
            FaultPlan {
                flood_wait: 1.0,
                ..FaultPlan::calm(5)
            },
            clock.clone(),
            Arc::new(Journal::new()),
            Arc::new(CrashSwitch::new()),
        );
        let t = &target("person_001");
        let Err(PlatformError::FloodWait { seconds, .. }) =
            p.send_message(&account(1), t, "hi", 1).await
        else {
            panic!("expected a flood wait");
        };
        assert!((30..=600).contains(&seconds));
        clock.advance(TimeDelta::seconds(10));
        assert!(matches!(
            p.send_message(&account(1), t, "hi", 1).await,
            Err(PlatformError::FloodWait { .. })
        ));
        assert_eq!(p.fault_counts().get(FaultKind::FloodWaitRepeat), 1);
        assert_eq!(p.fault_counts().total(), 2);
    }
}
