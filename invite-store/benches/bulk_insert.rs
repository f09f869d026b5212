//! Bulk insert of 100 000 targets into PostgreSQL through the store (`add_targets` and
//! `create_task`), next to `psql \copy` of the same rows on the same server.
//!
//! ```sh
//! cargo bench -p invite-store --bench bulk_insert
//! ```
//!
//! Uses the server at `DATABASE_TEST_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! in a scratch database `invite_bench_<pid>` that is dropped at the end.

use std::io::Write as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use invite_core::domain::{NewTarget, Platform, TargetIdentifier, UserId};
use invite_store::test_util::with_database;
use invite_store::{PoolConfig, Stores};

mod common;
use common::{bench_task, psql};

const ROWS: usize = 100_000;
const RUNS: usize = 3;

fn targets() -> Vec<NewTarget> {
    (0..ROWS)
        .map(|i| {
            let id = TargetIdentifier::parse(
                &format!("member_{i:06}"),
                Platform::Telegram,
                &Default::default(),
            )
            .expect("valid username");
            let mut t = NewTarget::new(id);
            t.first_name = Some(format!("Name{i}"));
            t
        })
        .collect()
}

fn rate(d: Duration) -> f64 {
    ROWS as f64 / d.as_secs_f64()
}

fn report(label: &str, runs: &mut [Duration]) {
    runs.sort();
    let best = runs[0];
    let median = runs[runs.len() / 2];
    println!(
        "{label:<44} best {:>8.1} ms = {:>9.0} rows/s   median {:>8.1} ms = {:>9.0} rows/s",
        best.as_secs_f64() * 1e3,
        rate(best),
        median.as_secs_f64() * 1e3,
        rate(median)
    );
}

async fn through_store(stores: &Stores) -> anyhow::Result<()> {
    let mut add = Vec::new();
    let mut create = Vec::new();
    for run in 0..RUNS {
        let user = UserId::new(run as i64 + 1);
        let people = targets();
        let id = stores
            .tasks
            .create_task(bench_task(user, "bulk"), vec![], None, Utc::now())
            .await?
            .task
            .id;
        let started = Instant::now();
        let added = stores.tasks.add_targets(user, id, people).await?;
        add.push(started.elapsed());
        anyhow::ensure!(added.inserted == ROWS as u64, "inserted {}", added.inserted);

        let people = targets();
        let started = Instant::now();
        let created = stores
            .tasks
            .create_task(bench_task(user, "bulk"), people, None, Utc::now())
            .await?;
        create.push(started.elapsed());
        anyhow::ensure!(
            created.inserted == ROWS as u64,
            "inserted {}",
            created.inserted
        );
    }
    report("store add_targets (UNNEST, 5 000 rows/stmt)", &mut add);
    report("store create_task with targets", &mut create);
    Ok(())
}

fn psql_copy(url: &str, task_id: i64) -> anyhow::Result<()> {
    let csv = std::env::temp_dir().join(format!("invite_bench_{}.csv", std::process::id()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    for i in 0..ROWS {
        writeln!(
            file,
            "{task_id},username,member_{i:06},u:member_{i:06},Name{i},MANUAL"
        )?;
    }
    file.into_inner()?.sync_all()?;
    let psql = |sql: &str| psql(url, sql);
    psql(
        "CREATE TABLE bench_copy_plain (task_id bigint, identifier_kind text, identifier text, \
         identifier_key text, first_name text, source text); \
         CREATE TABLE bench_copy_indexed (LIKE invite_targets INCLUDING ALL)",
    )?;
    let columns = "(task_id, identifier_kind, identifier, identifier_key, first_name, source)";
    let mut plain = Vec::new();
    let mut indexed = Vec::new();
    for _ in 0..RUNS {
        psql("TRUNCATE bench_copy_plain, bench_copy_indexed")?;
        plain.push(psql(&format!(
            "\\copy bench_copy_plain {columns} FROM '{}' WITH (FORMAT csv)",
            csv.display()
        ))?);
        indexed.push(psql(&format!(
            "\\copy bench_copy_indexed {columns} FROM '{}' WITH (FORMAT csv)",
            csv.display()
        ))?);
    }
    report("psql \\copy into a plain scratch table", &mut plain);
    report(
        "psql \\copy into LIKE invite_targets (indexes)",
        &mut indexed,
    );
    println!(
        "\ncommands (psql timed from process start to exit):\n  \
         psql {url} -X -q -c \"\\copy bench_copy_plain {columns} FROM '{csv}' WITH (FORMAT csv)\"\n  \
         psql {url} -X -q -c \"\\copy bench_copy_indexed {columns} FROM '{csv}' WITH (FORMAT csv)\"",
        csv = csv.display()
    );
    let _ = std::fs::remove_file(csv);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Some((admin_url, mut admin)) = common::admin_connection("bulk_insert").await? else {
        return Ok(());
    };
    let name = format!("invite_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let url = with_database(&admin_url, &name);
    let result = async {
        let stores = invite_store::connect(&url, PoolConfig::default()).await?;
        stores.migrate().await?;
        println!("{ROWS} targets per run, {RUNS} runs, database {name}\n");
        through_store(&stores).await?;
        let task_id = stores
            .tasks
            .create_task(
                bench_task(UserId::new(99), "bulk"),
                vec![],
                None,
                Utc::now(),
            )
            .await?
            .task
            .id
            .get();
        stores.close().await;
        psql_copy(&url, task_id)
    }
    .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}
