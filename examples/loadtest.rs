//! `cargo run --release --example loadtest [-- ACCOUNTS TARGETS_PER_TASK]`: the quickstart's
//! engine at scale — ten tasks (every third HIGH, the rest LOW) into ten groups, on the virtual
//! clock and the in-memory store — printing wall time, simulated time, efficiency against the
//! rules-only minimum and the independent limit audit.

use anyhow::{Context, bail};
use invite_core::domain::Priority;
use invite_examples::quickstart::{Scenario, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut number = |default: usize| -> anyhow::Result<usize> {
        args.next().map_or(Ok(default), |a| {
            a.parse().context("arguments: ACCOUNTS TARGETS_PER_TASK")
        })
    };
    let accounts = number(100)?;
    let per_task = number(2000)?;
    let tasks = (0..10)
        .map(|i| {
            let priority = if i % 3 == 0 {
                Priority::High
            } else {
                Priority::Low
            };
            (
                format!("task {i}"),
                priority,
                format!("@group_{i:02}x"),
                per_task,
            )
        })
        .collect();
    let scenario = Scenario {
        accounts,
        tasks,
        ..Scenario::default()
    };
    let started = std::time::Instant::now();
    let report = run(&scenario, &mut std::io::sink()).await?;
    let wall = started.elapsed();
    let simulated = report.duration;
    println!(
        "accounts: {accounts}, targets: {}, actions attempted: {}",
        per_task * 10,
        report.attempts
    );
    println!(
        "simulated: {}d {:02}h {:02}m in {:.2} s of wall time",
        simulated.num_days(),
        simulated.num_hours() % 24,
        simulated.num_minutes() % 60,
        wall.as_secs_f64()
    );
    println!("efficiency: {:.2}", report.efficiency());
    println!("limit violations: {}", report.violations);
    if report.violations > 0 {
        bail!("the campaign broke {} limit rules", report.violations);
    }
    Ok(())
}
