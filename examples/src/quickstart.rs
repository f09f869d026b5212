//! A sandbox campaign on the virtual clock: two tasks of different priorities into two groups,
//! run by ten accounts under Telegram's default limits, then a report with the simulated
//! duration, the theoretical minimum under the limits and an independent limit audit.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use invite_core::clock::{Clock, VirtualClock};
use invite_core::domain::{
    Action, ActionKind, GroupRef, NewTarget, NewTask, Outcome, Platform, Priority,
    TargetIdentifier, TargetSource, TaskEvent, TaskId, TaskSettings, TaskStatus, UserId, Username,
};
use invite_core::engine::{Engine, EngineConfig, EngineParts};
use invite_core::forecast::{ForecastAccount, forecast};
use invite_core::limits::audit::{audit, events_from_logs};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::{MemoryLedger, MemoryStore, StaticDirectory};
use invite_core::ports::{
    AccountDirectory, AccountLeases, LimitLedger, LogFilter, SuppressionList, TaskStore,
};
use invite_core::sandbox::{SandboxConfig, SandboxStrategy};
use invite_store::PoolConfig;

/// Shape of the campaign.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Accounts of the user.
    pub accounts: usize,
    /// (name, priority, group, targets) of each task.
    pub tasks: Vec<(String, Priority, String, usize)>,
    /// Behaviour of the simulated messenger.
    pub sandbox: SandboxConfig,
    /// Seed of the engine and the account manager.
    pub seed: u64,
    /// Database to keep the campaign in (`sqlite://…`, `postgres://…`); in memory when `None`.
    pub database_url: Option<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            accounts: 10,
            tasks: vec![
                (
                    "Product launch".into(),
                    Priority::High,
                    "@launch_group".into(),
                    600,
                ),
                (
                    "Community".into(),
                    Priority::Low,
                    "@community_hub".into(),
                    400,
                ),
            ],
            sandbox: SandboxConfig::default(),
            seed: 7,
            database_url: None,
        }
    }
}

/// What the campaign did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Targets per outcome, all tasks together.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Final status of each task.
    pub statuses: Vec<TaskStatus>,
    /// Start to last action.
    pub duration: TimeDelta,
    /// The earliest finish the limits allow for the same accounts and groups.
    pub theoretical: TimeDelta,
    /// Rules broken, per the independent audit of the execution log.
    pub violations: usize,
    /// Platform actions attempted.
    pub attempts: usize,
}

impl Report {
    /// Theoretical minimum ÷ actual duration.
    pub fn efficiency(&self) -> f64 {
        let actual = self.duration.num_seconds().max(1) as f64;
        self.theoretical.num_seconds() as f64 / actual
    }
}

fn human(d: TimeDelta) -> String {
    let m = d.num_minutes();
    format!("{}d {:02}h {:02}m", m / 1440, (m / 60) % 24, m % 60)
}

/// Runs the scenario, writing progress and the report to `out`.
pub async fn run(scenario: &Scenario, out: &mut impl Write) -> anyhow::Result<Report> {
    let start: DateTime<Utc> = "2026-01-05T09:00:00Z".parse()?;
    let clock = Arc::new(VirtualClock::auto(start));
    let user = UserId::new(1);
    let (store, ledger, suppression, leases, stores) = match &scenario.database_url {
        None => {
            let memory = Arc::new(MemoryStore::new());
            let ledger: Arc<dyn LimitLedger> = Arc::new(MemoryLedger::new());
            (
                memory.clone() as Arc<dyn TaskStore>,
                ledger,
                memory.clone() as Arc<dyn SuppressionList>,
                memory as Arc<dyn AccountLeases>,
                None,
            )
        }
        Some(url) => {
            let stores = invite_store::connect(url, PoolConfig::default())
                .await
                .context("open the database")?;
            stores.migrate().await.context("migrate the database")?;
            (
                stores.tasks.clone(),
                stores.ledger.clone(),
                stores.suppression.clone(),
                stores.leases.clone(),
                Some(stores),
            )
        }
    };
    let policy: LimitPolicy = scenario.sandbox.limits;
    let manager = LocalAccountManager::new(ledger, clock.clone(), scenario.seed)
        .with_policy(Platform::Sandbox, policy);
    let directory = StaticDirectory::new().with_sandbox_accounts(user, scenario.accounts);
    let sandbox = Arc::new(SandboxStrategy::new(scenario.sandbox.clone()));
    let engine = Engine::new(
        EngineParts {
            store: store.clone(),
            suppression,
            leases,
            accounts: Arc::new(manager),
            directory: Arc::new(directory.clone()),
            clock: clock.clone(),
        },
        [sandbox.clone() as Arc<_>],
        EngineConfig {
            seed: scenario.seed,
            ..EngineConfig::default()
        },
    );

    writeln!(
        out,
        "Invite Service quickstart: sandbox platform, virtual clock"
    )?;
    writeln!(
        out,
        "accounts: {}; limits per account: {} invites per group and {} in all per rolling 24 h, {} per group for life, {}-{} min pauses, spread evenly",
        scenario.accounts,
        policy.invite.per_channel.unwrap_or(0),
        policy.invite.per_account,
        policy.invite.per_channel_lifetime.unwrap_or(0),
        policy.invite.pause_min.num_minutes(),
        policy.invite.pause_max.num_minutes(),
    )?;
    let mut ids: Vec<(TaskId, String, usize)> = Vec::new();
    let mut demand: BTreeMap<String, u64> = BTreeMap::new();
    let mut serial = 0;
    for (name, priority, group, count) in &scenario.tasks {
        let group = GroupRef::parse(group).context("group")?;
        let targets: Vec<NewTarget> = (0..*count)
            .map(|_| {
                serial += 1;
                let username = Username::parse(&format!("person_{serial:05}"), Platform::Sandbox)
                    .expect("generated usernames are valid");
                NewTarget {
                    first_name: Some(format!("Person {serial}")),
                    source: TargetSource::Manual,
                    ..NewTarget::new(TargetIdentifier::Username(username))
                }
            })
            .collect();
        *demand.entry(group.channel_key()).or_default() += *count as u64;
        let created = store
            .create_task(
                NewTask {
                    user_id: user,
                    name: name.clone(),
                    platform: Platform::Sandbox,
                    priority: *priority,
                    settings: TaskSettings {
                        action: Action::Invite {
                            group: group.clone(),
                        },
                        accounts: None,
                        add_to_contacts: false,
                        dedupe_days: None,
                    },
                    scheduled_at: None,
                },
                targets,
                None,
                start,
            )
            .await?;
        let id = created.task.id;
        store
            .transition(
                user,
                id,
                TaskEvent::Start {
                    scheduled_later: false,
                },
                None,
                start,
            )
            .await?;
        writeln!(
            out,
            "task {id} \"{name}\" {priority}: {count} targets -> {group}"
        )?;
        ids.push((id, name.clone(), *count));
    }

    // Run, printing a line per simulated day.
    let mut day = 0;
    let mut printed = None;
    loop {
        let report = engine.tick().await?;
        let now = clock.now();
        let elapsed_days = (now - start).num_days();
        let done = report.next.is_none();
        if (elapsed_days > day || done) && printed != Some(now) {
            day = elapsed_days;
            printed = Some(now);
            let mut line = format!("day {:>2} {}:", day, now.format("%H:%M"));
            let mut total = 0;
            for (id, name, count) in &ids {
                let p = store.progress(user, *id).await?;
                total += p.finished();
                line.push_str(&format!(" {name} {}/{count};", p.finished()));
            }
            let all: usize = ids.iter().map(|(_, _, c)| c).sum();
            writeln!(out, "{line} processed {total}/{all}")?;
        }
        match report.next {
            Some(next) => clock.sleep_until(next).await,
            None => break,
        }
    }

    // Report.
    let mut outcomes: BTreeMap<Outcome, u64> = BTreeMap::new();
    let mut statuses = Vec::new();
    let mut logs = Vec::new();
    let mut channel_of: BTreeMap<TaskId, String> = BTreeMap::new();
    for (id, _, _) in &ids {
        let task = store.get_task(user, *id).await?;
        statuses.push(task.status);
        channel_of.insert(*id, task.settings.action.channel_key());
        for (o, n) in store.progress(user, *id).await?.by_outcome {
            *outcomes.entry(o).or_default() += n;
        }
        logs.extend(store.logs(user, *id, &LogFilter::default()).await?);
    }
    let events = events_from_logs(&logs, |l| channel_of[&l.entry.task_id].clone());
    let last = events.iter().map(|e| e.at).max().unwrap_or(start);
    let violations = audit(&policy, &events);
    let accounts: Vec<ForecastAccount> = directory
        .accounts(user, Platform::Sandbox)
        .await?
        .into_iter()
        .map(|a| ForecastAccount::fresh(a.id))
        .collect();
    let ideal = forecast(&policy, ActionKind::Invite, start, &demand, &accounts);
    let theoretical = ideal.finish_at.map_or(TimeDelta::zero(), |f| f - start);
    let report = Report {
        outcomes,
        statuses,
        duration: last - start,
        theoretical,
        violations: violations.len(),
        attempts: events.len(),
    };

    writeln!(out)?;
    writeln!(out, "targets by outcome:")?;
    for (o, n) in &report.outcomes {
        writeln!(out, "  {:<22} {n:>5}", o.as_str())?;
    }
    for ((id, name, _), status) in ids.iter().zip(&report.statuses) {
        writeln!(out, "task {id} \"{name}\": {status}")?;
    }
    let counters = sandbox.counters();
    writeln!(
        out,
        "platform actions attempted: {} (people added: {})",
        report.attempts, counters.invites
    )?;
    writeln!(out, "simulated duration: {}", human(report.duration))?;
    writeln!(
        out,
        "theoretical minimum: {} (from the rules alone: caps, lifetime caps, minimum pause, spread)",
        human(report.theoretical)
    )?;
    for v in violations.iter().take(10) {
        writeln!(out, "  violation: {} {} at {}", v.account, v.rule, v.at)?;
    }
    writeln!(out, "efficiency: {:.2}", report.efficiency())?;
    writeln!(out, "limit violations: {}", report.violations)?;
    if let Some(stores) = stores {
        stores.close().await;
    }
    Ok(report)
}
