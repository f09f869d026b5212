//! `cargo run --release --example chaos [-- --seeds N] [--first-seed N] [--database URL]`:
//! runs seeded campaigns against a fault-injecting platform (`invite_core::chaos`) — flood
//! waits, refusals, timeouts before and after delivery, crashes mid-call, crashes before and
//! after the engine's store and ledger writes, and restarts — and
//! checks the engine's promises from the platform's own journal: no second delivery, no limit
//! broken, no target lost, no outcome the platform contradicts.
//!
//! In memory by default; `--database sqlite://…` runs each seed on a fresh SQLite file in the
//! temporary directory (removed after), `--database postgres://…` runs every seed in that
//! database (each seed has its own user, so runs do not meet). Exits non-zero when anything
//! was found. `--journal` prints each seed's platform journal, its crashes (where each struck,
//! placed after the journal entry it followed) and final targets (for one seed at a time); `--show N` prints the first N findings of each kind (8 by default).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use invite_core::chaos::{ChaosPorts, CheckCounts, FaultCounts, Finding, SeedOutcome, run_seed};
use invite_store::{PoolConfig, Stores};

struct Args {
    seeds: u64,
    first_seed: u64,
    database: Option<String>,
    journal: bool,
    show: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        seeds: 200,
        first_seed: 0,
        database: None,
        journal: false,
        show: 8,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seeds" => parsed.seeds = value()?.parse().context("--seeds")?,
            "--first-seed" => parsed.first_seed = value()?.parse().context("--first-seed")?,
            "--database" => parsed.database = Some(value()?),
            "--journal" => parsed.journal = true,
            "--show" => parsed.show = value()?.parse().context("--show")?,
            other => bail!(
                "unknown argument {other:?}; usage: chaos [--seeds N] [--first-seed N] [--database URL] [--journal] [--show N]"
            ),
        }
    }
    Ok(parsed)
}

async fn open(url: &str) -> anyhow::Result<Stores> {
    let stores = invite_store::connect(url, PoolConfig::default())
        .await
        .context("open the database")?;
    stores.migrate().await.context("migrate the database")?;
    Ok(stores)
}

fn ports_of(stores: &Stores) -> ChaosPorts {
    ChaosPorts {
        store: stores.tasks.clone(),
        ledger: stores.ledger.clone(),
        suppression: stores.suppression.clone(),
        leases: stores.leases.clone(),
    }
}

async fn run_one(
    seed: u64,
    database: Option<&str>,
    shared: Option<&Stores>,
) -> anyhow::Result<SeedOutcome> {
    if let Some(stores) = shared {
        return Ok(run_seed(seed, ports_of(stores)).await?);
    }
    let Some(url) = database else {
        return Ok(run_seed(seed, ChaosPorts::memory()).await?);
    };
    debug_assert!(url.starts_with("sqlite:"));
    let path = std::env::temp_dir().join(format!("invite-chaos-{}-{seed}.db", std::process::id()));
    let stores = open(&format!("sqlite://{}", path.display())).await?;
    let outcome = run_seed(seed, ports_of(&stores)).await;
    stores.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(outcome?)
}

fn show(kind: &str, seed: u64, findings: &[Finding], shown: &mut usize, limit: usize) {
    for f in findings {
        if *shown >= limit {
            return;
        }
        *shown += 1;
        println!("{kind} (seed {seed}): {f}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let args = parse_args()?;
    let shared = match args.database.as_deref() {
        Some(url) if url.starts_with("postgres") => Some(open(url).await?),
        Some(url) if !url.starts_with("sqlite:") => {
            bail!("--database takes sqlite://… or postgres://…")
        }
        _ => None,
    };
    let mut counts = CheckCounts::default();
    let mut faults = FaultCounts::default();
    let mut rules: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut shown = [0usize; 4];
    let (mut restarts, mut bounded) = (0u64, 0u64);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, seed) in (args.first_seed..args.first_seed + args.seeds).enumerate() {
        let outcome = run_one(seed, args.database.as_deref(), shared.as_ref())
            .await
            .with_context(|| format!("seed {seed}"))?;
        let r = &outcome.report;
        if args.journal {
            for e in &outcome.journal {
                println!("seed {seed} {e}");
            }
            for c in &outcome.crashes {
                println!("seed {seed} crash {c}");
            }
            for t in &outcome.targets {
                println!("seed {seed} target {t:?}");
            }
        }
        show("duplicate", seed, &r.duplicates, &mut shown[0], args.show);
        show(
            "cap violation",
            seed,
            &r.cap_violations,
            &mut shown[1],
            args.show,
        );
        show("lost", seed, &r.lost, &mut shown[2], args.show);
        show("mismatched", seed, &r.mismatched, &mut shown[3], args.show);
        if let Some(bound) = &outcome.bound_hit {
            bounded += 1;
            println!("bound hit (seed {seed}): {bound}");
        }
        counts.add(r.counts());
        faults.merge(&outcome.faults);
        for (rule, n) in r.by_rule() {
            *rules.entry(rule).or_default() += n;
        }
        restarts += u64::from(outcome.restarts);
        for t in &outcome.targets {
            let name = t.outcome.map_or("none", |o| o.as_str());
            *outcomes
                .entry(format!("{}/{name}", t.status.as_str()))
                .or_default() += 1;
        }
        if (i + 1).is_multiple_of(100) {
            eprintln!("{} seeds done (last {seed})", i + 1);
        }
    }
    if let Some(stores) = shared {
        stores.close().await;
    }
    println!("findings per rule:");
    for (rule, n) in &rules {
        println!("  {rule}: {n}");
    }
    let total: usize = outcomes.values().sum();
    println!("targets by status/outcome ({total}):");
    for (name, n) in &outcomes {
        println!("  {name}: {n}");
    }
    println!("restarts after crashes: {restarts}; runs stopped by a bound: {bounded}");
    println!("seeds: {}", args.seeds);
    println!("faults injected: {} ({faults})", faults.total());
    println!("duplicates: {}", counts.duplicates);
    println!("cap violations: {}", counts.cap_violations);
    println!("lost: {}", counts.lost);
    println!("mismatched outcomes: {}", counts.mismatched);
    Ok(if counts.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
