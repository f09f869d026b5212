//! The seed-driven runner: one user, three tasks (an invite, a message and an
//! invite-and-message campaign, sharing some people), three or four accounts, Telegram's
//! default limits, a [`FaultyPlatform`] and a virtual clock — run to the end through crashes
//! and restarts, then [`check`]ed.
//!
//! A crash inside a platform call trips the [`CrashSwitch`]; the runner then drops the
//! engine where it stands (as a killed process stops), lets a minute pass and builds a new
//! engine and account manager on the same ports and clock, under a new worker id. When the
//! engine goes idle with a task still running (claims of a dead worker waiting for their
//! timeout), time is moved on past the claim timeout; a task paused by the circuit breaker is
//! resumed a day later, as its owner would, a few times at most. Everything is bounded: 90
//! simulated days, 200 restarts.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::check::{CheckReport, ReportedTarget, check};
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
/// Crashes a run may survive.
pub const MAX_RESTARTS: u32 = 200;
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

/// What one seed's run did and what the checker found.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// The checker's findings.
    pub report: CheckReport,
    /// Faults the platform injected.
    pub faults: FaultCounts,
    /// Engines built after a crash.
    pub restarts: u32,
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
    let platform = Arc::new(FaultyPlatform::new(
        FaultPlan::for_seed(seed),
        clock.clone(),
        journal.clone(),
        switch.clone(),
    ));
    let policy = LimitPolicy::telegram();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5CE2_A210);
    let user = user_of(seed);
    let accounts = if rng.random_bool(0.5) { 3 } else { 4 };
    let directory = Arc::new(StaticDirectory::new().with_sandbox_accounts(user, accounts));
    let ids = create_tasks(&ports, user, &mut rng, start).await?;

    let deadline = start + TimeDelta::days(MAX_DAYS);
    let defaults = EngineConfig::default();
    let mut restarts = 0u32;
    let mut resumes: Vec<(TaskId, u32)> = Vec::new();
    let mut passes = 0u64;
    let mut nudges = 0u32;
    let mut engine_errors = Vec::new();
    let bound_hit: Option<String> = 'run: loop {
        let manager = LocalAccountManager::new(ports.ledger.clone(), clock.clone(), seed)
            .with_policy(Platform::Sandbox, policy);
        let engine = Engine::new(
            EngineParts {
                store: ports.store.clone(),
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
                seed,
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
    Ok(SeedOutcome {
        seed,
        report: check(&entries, &targets, &policy),
        faults: platform.fault_counts(),
        restarts,
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
