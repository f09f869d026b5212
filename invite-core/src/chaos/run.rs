//! The seed-driven runner: one user, three tasks (an invite, a message and an
//! invite-and-message campaign, sharing some people), three or four accounts, Telegram's
//! default limits, a [`FaultyPlatform`] and a virtual clock — run to the end through crashes
//! and restarts, then [`check`]ed.
//!
//! A crash inside a platform call, or inside one of the engine's store or ledger writes
//! ([`CrashingStore`], [`CrashingLedger`]: before the write or after it committed), trips the
//! [`CrashSwitch`]; the runner then drops the engine where it stands (as a killed process
//! stops), lets a minute pass and builds a new engine and a new account manager (its accounts
//! held and its pauses drawn afresh, as in a new process) on the same ports and clock, under a
//! new worker id. The engine's store and ledger are the crashing decorators; the runner's own
//! setup and reads use the raw ports, so they never crash.
//!
//! When the engine goes idle with a task still running (claims of a dead worker waiting for
//! their timeout), time is moved on past the claim timeout; a task paused by the circuit
//! breaker is resumed a day later, as its owner would, a few times at most. Everything is
//! bounded: 90 simulated days, 1000 restarts.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::check::{CheckReport, ReportedTarget, check};
use super::crashing::{CrashPoints, CrashingLedger, CrashingStore};
use super::journal::{Journal, JournalEntry};
use super::platform::{CrashSwitch, FaultCounts, FaultPlan, FaultyPlatform};
use crate::clock::{Clock, VirtualClock};
use crate::domain::{
    Action, GroupRef, NewTarget, NewTask, Platform, Priority, TargetIdentifier, TaskEvent, TaskId,
    TaskSettings, TaskStatus, Template, UserId, Username,
};
use crate::engine::{Engine, EngineConfig, EngineParts};
use crate::limits::{LimitPolicy, LocalAccountManager};
use crate::memory::{MemoryLedger, MemoryStore, StaticDirectory};
use crate::ports::{
    AccountLeases, InviteStrategy, LimitLedger, StoreError, SuppressionList, TaskStore,
};

/// Simulated time a run may take.
pub const MAX_DAYS: i64 = 90;
/// Crashes a run may survive. With crashes at the store's and the ledger's await points a run
/// takes about 100 (up to ~300 in 1000 seeds): every pass's heartbeat, lane and reservation
/// is a point where the process may die.
pub const MAX_RESTARTS: u32 = 1000;
/// Engine passes a run may take (a guard against a loop that does not move time).
pub const MAX_PASSES: u64 = 200_000;
/// Failed engine passes a run tolerates.
const MAX_ENGINE_ERRORS: usize = 50;
/// Times in a row the engine may go idle with unfinished tasks and nothing new on the platform.
const MAX_IDLE_NUDGES: u32 = 10;
/// Times one task paused by the circuit breaker is resumed.
const MAX_RESUMES: u32 = 3;

/// The ports a run keeps across restarts (a store and its ledger, suppression list, leases).
#[derive(Debug, Clone)]
pub struct ChaosPorts {
    /// Tasks, targets, lanes, logs.
    pub store: Arc<dyn TaskStore>,
    /// The local account manager's ledger.
    pub ledger: Arc<dyn LimitLedger>,
    /// Do-not-contact list.
    pub suppression: Arc<dyn SuppressionList>,
    /// Account leases.
    pub leases: Arc<dyn AccountLeases>,
}

impl ChaosPorts {
    /// Fresh in-memory ports.
    pub fn memory() -> Self {
        let store = Arc::new(MemoryStore::new());
        Self {
            store: store.clone(),
            ledger: Arc::new(MemoryLedger::new()),
            suppression: store.clone(),
            leases: store,
        }
    }
}

/// One crash of the engine's process during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// Simulated time of the crash.
    pub at: DateTime<Utc>,
    /// Entries the platform had journalled when it happened (a crash inside a platform call
    /// is the last of them).
    pub journal_len: usize,
    /// Where it struck: a platform call, or a store or ledger call before or after its write.
    pub what: String,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} after journal #{}: {}",
            self.at.format("%Y-%m-%d %H:%M:%S"),
            self.journal_len.saturating_sub(1),
            self.what
        )
    }
}

/// What one seed's run did and what the checker found.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// The checker's findings.
    pub report: CheckReport,
    /// Faults the platform injected, and crashes in store and ledger calls.
    pub faults: FaultCounts,
    /// Engines built after a crash.
    pub restarts: u32,
    /// Every crash, in order.
    pub crashes: Vec<Crash>,
    /// Paused tasks resumed.
    pub resumes: u32,
    /// Simulated time from the start to the end of the run.
    pub simulated: TimeDelta,
    /// Every target as reported at the end.
    pub targets: Vec<ReportedTarget>,
    /// The platform's journal.
    pub journal: Vec<JournalEntry>,
    /// The bound that stopped the run, if one did.
    pub bound_hit: Option<String>,
    /// Failed engine passes (store or account manager errors).
    pub engine_errors: Vec<String>,
}

/// Start time of every run.
pub fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_442_000, 0).unwrap_or_default()
}

/// The user of a seed's run (distinct per seed, so runs can share a database).
pub fn user_of(seed: u64) -> UserId {
    UserId::new(i64::try_from(seed % 1_000_000_000).unwrap_or(0) + 1)
}

enum Ran {
    Crashed,
    OutOfBounds,
    Idle(Result<(), crate::engine::EngineError>),
}

enum Left {
    Nothing,
    Running,
    Paused(Vec<TaskId>),
}

/// Runs one seed on `ports` and checks it. Fails only when the store fails outside the
/// engine (creating, starting or reading the tasks).
pub async fn run_seed(seed: u64, ports: ChaosPorts) -> Result<SeedOutcome, StoreError> {
    let start = start_time();
    let clock = Arc::new(VirtualClock::auto(start));
    let journal = Arc::new(Journal::new());
    let switch = Arc::new(CrashSwitch::new());
    let plan = FaultPlan::for_seed(seed);
    let platform = Arc::new(FaultyPlatform::new(
        plan,
        clock.clone(),
        journal.clone(),
        switch.clone(),
    ));
    // The engine's store and ledger crash at their await points; the runner's do not.
    let points = Arc::new(CrashPoints::new(&plan, switch.clone()));
    let store: Arc<dyn TaskStore> =
        Arc::new(CrashingStore::new(ports.store.clone(), points.clone()));
    let ledger: Arc<dyn LimitLedger> =
        Arc::new(CrashingLedger::new(ports.ledger.clone(), points.clone()));
    let policy = LimitPolicy::telegram();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5CE2_A210);
    let user = user_of(seed);
    let accounts = if rng.random_bool(0.5) { 3 } else { 4 };
    let directory = Arc::new(StaticDirectory::new().with_sandbox_accounts(user, accounts));
    let ids = create_tasks(&ports, user, &mut rng, start).await?;

    let deadline = start + TimeDelta::days(MAX_DAYS);
    let defaults = EngineConfig::default();
    let mut restarts = 0u32;
    let mut crashes: Vec<Crash> = Vec::new();
    let mut store_crashes = 0usize;
    let mut resumes: Vec<(TaskId, u32)> = Vec::new();
    let mut passes = 0u64;
    let mut nudges = 0u32;
    let mut engine_errors = Vec::new();
    let bound_hit: Option<String> = 'run: loop {
        // A new process: a new account manager (nothing held) and a new worker id.
        let manager =
            LocalAccountManager::new(ledger.clone(), clock.clone(), seed ^ u64::from(restarts))
                .with_policy(Platform::Sandbox, policy);
        let engine = Engine::new(
            EngineParts {
                store: store.clone(),
                suppression: ports.suppression.clone(),
                leases: ports.leases.clone(),
                accounts: Arc::new(manager),
                directory: directory.clone(),
                clock: clock.clone(),
            },
            [platform.clone() as Arc<dyn InviteStrategy>],
            EngineConfig {
                max_parallel_steps: 1,
                worker_id: format!("chaos-{seed}-{restarts}"),
                seed: seed ^ u64::from(restarts),
                // Deterministic per seed and restart; unique per database by construction.
                random_id_seed: Some(seed.rotate_left(17) ^ u64::from(restarts)),
                ..EngineConfig::default()
            },
        );
        loop {
            let bounds = CrashSwitch::new();
            let ran = {
                let on_pass = |now: DateTime<Utc>| {
                    passes += 1;
                    if now > deadline || passes > MAX_PASSES {
                        bounds.trip();
                    }
                };
                tokio::select! {
                    biased;
                    () = switch.tripped() => Ran::Crashed,
                    () = bounds.tripped() => Ran::OutOfBounds,
                    r = engine.run_until_idle(on_pass) => Ran::Idle(r),
                }
            };
            match ran {
                Ran::Crashed => {
                    let seen = points.len();
                    let what = match points.last() {
                        Some(c) if seen > store_crashes => c.to_string(),
                        _ => "crash in a platform call".to_owned(),
                    };
                    store_crashes = seen;
                    crashes.push(Crash {
                        at: clock.now(),
                        journal_len: journal.len(),
                        what,
                    });
                    switch.reset();
                    restarts += 1;
                    if restarts > MAX_RESTARTS {
                        break 'run Some(format!("{MAX_RESTARTS} restarts"));
                    }
                    clock.advance(TimeDelta::minutes(1));
                    continue 'run;
                }
                Ran::OutOfBounds if passes > MAX_PASSES => {
                    break 'run Some(format!("{MAX_PASSES} engine passes"));
                }
                Ran::OutOfBounds => break 'run Some(format!("{MAX_DAYS} simulated days")),
                Ran::Idle(Err(e)) => {
                    engine_errors.push(e.to_string());
                    if engine_errors.len() > MAX_ENGINE_ERRORS {
                        break 'run Some(format!("{MAX_ENGINE_ERRORS} failed engine passes"));
                    }
                    clock.advance(defaults.idle_poll);
                }
                Ran::Idle(Ok(())) => {
                    let seen = journal.len();
                    match leftover(ports.store.as_ref(), user, &ids).await? {
                        Left::Nothing => break 'run None,
                        Left::Running => {
                            // Claims of a crashed worker wait for their timeout.
                            nudges += 1;
                            if nudges > MAX_IDLE_NUDGES {
                                break 'run Some(
                                    "the engine stayed idle with unfinished tasks".to_owned(),
                                );
                            }
                            clock.advance(defaults.holder_timeout + TimeDelta::minutes(1));
                        }
                        Left::Paused(paused) => {
                            clock.advance(policy.restricted_cooldown);
                            let mut resumed = false;
                            for id in paused {
                                let n = match resumes.iter_mut().find(|(t, _)| *t == id) {
                                    Some((_, n)) => n,
                                    None => {
                                        resumes.push((id, 0));
                                        &mut resumes.last_mut().expect("just pushed").1
                                    }
                                };
                                if *n < MAX_RESUMES {
                                    *n += 1;
                                    ports
                                        .store
                                        .transition(user, id, TaskEvent::Resume, None, clock.now())
                                        .await?;
                                    resumed = true;
                                }
                            }
                            if !resumed {
                                break 'run None;
                            }
                            engine.wake();
                        }
                    }
                    if journal.len() > seen {
                        nudges = 0;
                    }
                    if clock.now() > deadline {
                        break 'run Some(format!("{MAX_DAYS} simulated days"));
                    }
                }
            }
        }
    };

    let mut targets = Vec::new();
    let mut unfinished = Vec::new();
    for id in &ids {
        let task = ports.store.get_task(user, *id).await?;
        if !task.status.is_terminal() {
            unfinished.push(*id);
        }
        for t in ports.store.targets(user, *id, 0, 0).await? {
            targets.push(ReportedTarget::new(&task, &t));
        }
    }
    // Nothing of this run may run on in a database shared with the next one.
    for id in unfinished {
        ports
            .store
            .transition(
                user,
                id,
                TaskEvent::Cancel,
                Some("chaos run over".to_owned()),
                clock.now(),
            )
            .await?;
    }
    let entries = journal.entries();
    let mut faults = platform.fault_counts();
    faults.merge(&points.fault_counts());
    Ok(SeedOutcome {
        seed,
        report: check(&entries, &targets, &policy),
        faults,
        restarts,
        crashes,
        resumes: resumes.iter().map(|(_, n)| n).sum(),
        simulated: clock.now() - start,
        targets,
        journal: entries,
        bound_hit,
        engine_errors,
    })
}

async fn leftover(store: &dyn TaskStore, user: UserId, ids: &[TaskId]) -> Result<Left, StoreError> {
    let mut paused = Vec::new();
    let mut running = false;
    for id in ids {
        match store.get_task(user, *id).await?.status {
            TaskStatus::Paused => paused.push(*id),
            TaskStatus::InProgress | TaskStatus::Pending => running = true,
            _ => {}
        }
    }
    Ok(if running {
        Left::Running
    } else if paused.is_empty() {
        Left::Nothing
    } else {
        Left::Paused(paused)
    })
}

const PEOPLE: usize = 40;

fn person(i: usize) -> NewTarget {
    let name = format!("person_{i:03}");
    let username = Username::parse(&name, Platform::Sandbox).expect("generated names are valid");
    NewTarget {
        first_name: i.is_multiple_of(2).then(|| format!("Person {i}")),
        ..NewTarget::new(TargetIdentifier::Username(username))
    }
}

/// Creates and starts the three tasks of a run; people are drawn from one pool, so some are
/// in more than one task.
async fn create_tasks(
    ports: &ChaosPorts,
    user: UserId,
    rng: &mut StdRng,
    now: DateTime<Utc>,
) -> Result<Vec<TaskId>, StoreError> {
    let template = Template::parse("Hi {first_name|friend}, come and see what we do!")
        .expect("the template is valid");
    let alpha = GroupRef::parse("@chaos_alpha").expect("the group is valid");
    let beta = GroupRef::parse("@chaos_beta").expect("the group is valid");
    let priorities = [Priority::Low, Priority::Medium, Priority::High];
    let actions = [
        ("invite", Action::Invite { group: alpha }),
        (
            "message",
            Action::Message {
                template: template.clone(),
            },
        ),
        (
            "invite and message",
            Action::InviteAndMessage {
                group: beta,
                template,
            },
        ),
    ];
    let mut ids = Vec::new();
    for (name, action) in actions {
        let mut pool: Vec<usize> = (0..PEOPLE).collect();
        pool.shuffle(rng);
        let count = rng.random_range(10..=25);
        let targets = pool.into_iter().take(count).map(person).collect();
        let add_to_contacts = matches!(action, Action::Invite { .. }) && rng.random_bool(0.5);
        let priority = priorities[rng.random_range(0..priorities.len())];
        let created = ports
            .store
            .create_task(
                NewTask {
                    user_id: user,
                    name: format!("chaos {name}"),
                    platform: Platform::Sandbox,
                    priority,
                    settings: TaskSettings {
                        action,
                        accounts: None,
                        add_to_contacts,
                        dedupe_days: None,
                    },
                    scheduled_at: None,
                },
                targets,
                None,
                now,
            )
            .await?;
        let id = created.task.id;
        ports
            .store
            .transition(
                user,
                id,
                TaskEvent::Start {
                    scheduled_later: false,
                },
                None,
                now,
            )
            .await?;
        ids.push(id);
    }
    Ok(ids)
}
