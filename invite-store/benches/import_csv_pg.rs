//! Audience import end to end: a ~10 MB CSV of about 200 000 people, parsed and validated by
//! `invite_core::import`, its valid targets inserted into PostgreSQL through the store
//! (`add_targets` on a fresh database, one `COPY … FROM STDIN`) — next to `psql \copy` of the
//! same rows into scratch tables of the same database, in the same run (alternately before and
//! after). The last line, `ratio:`, is the median `add_targets` time over the median `\copy`
//! into `LIKE invite_targets INCLUDING ALL` (the same indexes).
//!
//! ```sh
//! cargo bench -p invite-store --bench import_csv_pg
//! ```
//!
//! Uses the server at `DATABASE_TEST_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! in scratch databases `invite_bench_import_<pid>_<run>`, dropped at the end. An unreachable
//! server skips the benchmark, unless `INVITE_REQUIRE_SERVICES=1`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use invite_core::domain::{Country, NewTarget, Platform, TargetIdentifier, UserId};
use invite_core::import::{
    DEFAULT_MAX_BYTES, FileFormat, ImportContext, ImportOptions, ImportReport, import_bytes,
};
use invite_store::test_util::with_database;
use invite_store::{PoolConfig, Stores};

mod common;
use common::{bench_task, psql};

/// Just under the default 10 MiB upload limit.
const TARGET_BYTES: usize = 10_000_000;
const RUNS: usize = 5;

const FIRST: [&str; 8] = [
    "Иван",
    "Анна",
    "Olga",
    "Сергей",
    "Maria",
    "Дмитрий",
    "Alex",
    "Екатерина",
];
const LAST: [&str; 8] = [
    "Петров",
    "Smith",
    "Иванова",
    "Kuznetsov",
    "Соколова",
    "Novak",
    "Попов",
    "Lee",
];

/// A comma CSV with a header, as a spreadsheet exports it: mostly rows with a username and a
/// phone, with 1 % invalid rows, 1 % repeats of an earlier person, and 1 % phone-only rows in
/// the national form with a quoted name.
fn generate() -> (Vec<u8>, u64) {
    let mut out = String::with_capacity(TARGET_BYTES + 100);
    out.push_str("username,phone,first_name,last_name\n");
    let mut rows = 0u64;
    while out.len() < TARGET_BYTES - 100 {
        let i = rows;
        let first = FIRST[(i % 8) as usize];
        let last = LAST[(i / 8 % 8) as usize];
        match i % 100 {
            0 => writeln!(out, "@{i}x,,{first},{last}"),
            1 if i > 100 => writeln!(out, "@user_{:06},,{first},{last}", i - 2),
            2 => writeln!(
                out,
                ",8 (916) {:03}-{:02}-{:02},\"{first}, мл.\",{last}",
                i % 1000,
                (i / 1000) % 100,
                (i / 100_000) % 100
            ),
            _ => writeln!(out, "@user_{i:06},+7916{i:07},{first},{last}"),
        }
        .expect("writing to a String");
        rows += 1;
    }
    (out.into_bytes(), rows)
}

fn options() -> ImportOptions {
    let mut opts = ImportOptions::new(Platform::Telegram);
    opts.format = Some(FileFormat::Csv);
    opts.normalize.default_country = Country::from_iso("RU");
    opts.limits.max_bytes = DEFAULT_MAX_BYTES;
    opts
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Best and median of `runs`, with the rate for `rows`.
fn summary(label: &str, runs: &[Duration], rows: u64) {
    let (best, median) = (runs.iter().copied().min().unwrap_or_default(), median(runs));
    println!(
        "{label:<46} best {:>7.0} ms   median {:>7.0} ms = {:>8.0} rows/s",
        ms(best),
        ms(median),
        rows as f64 / median.as_secs_f64()
    );
}

/// One run on a fresh database: parse and validate, `add_targets`, and the `\copy` baselines
/// into scratch tables of the same database — product and baseline side by side, in an order
/// that alternates from run to run, so a change of the machine's load hits both.
struct Run {
    parse: Duration,
    insert: Duration,
    copies: Copies,
    report: ImportReport,
}

/// The files the `\copy` baselines read.
struct Files {
    raw: PathBuf,
    normalised: PathBuf,
}

async fn one_run(
    admin: &mut sqlx::PgConnection,
    admin_url: &str,
    csv: &[u8],
    files: &Files,
    run: usize,
) -> anyhow::Result<(Run, String)> {
    let opts = options();
    let started = Instant::now();
    let report = import_bytes(csv, &opts, ImportContext::EMPTY)?;
    let parse = started.elapsed();
    anyhow::ensure!(report.is_consistent(), "inconsistent report");

    let name = format!("invite_bench_import_{}_{run}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut *admin)
        .await?;
    let url = with_database(admin_url, &name);
    let stores = invite_store::connect(&url, PoolConfig::default()).await?;
    stores.migrate().await?;
    let user = UserId::new(1);
    let task_id = stores
        .tasks
        .create_task(
            bench_task(user, "import benchmark"),
            vec![],
            None,
            Utc::now(),
        )
        .await?
        .task
        .id;
    psql(
        &url,
        "CREATE TABLE bench_raw (username text, phone text, first_name text, last_name text); \
         CREATE TABLE bench_plain (task_id bigint, identifier_kind text, identifier text, \
             identifier_key text, first_name text, last_name text, source text); \
         CREATE TABLE bench_indexed (LIKE invite_targets INCLUDING ALL); CHECKPOINT",
    )?;
    let baseline_first = run % 2 == 1;
    let mut copies = None;
    if baseline_first {
        copies = Some(psql_copy(&url, files, report.rows, report.valid)?);
    }

    let targets = report.targets.clone();
    let started = Instant::now();
    let added = stores.tasks.add_targets(user, task_id, targets).await?;
    let insert = started.elapsed();
    anyhow::ensure!(
        added.inserted == report.valid,
        "inserted {} of {}",
        added.inserted,
        report.valid
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM invite_targets WHERE task_id = $1")
        .bind(task_id.get())
        .fetch_one(stores_pool(&stores)?)
        .await?;
    anyhow::ensure!(stored as u64 == report.valid, "{stored} rows stored");
    stores.close().await;
    let copies = match copies {
        Some(c) => c,
        None => psql_copy(&url, files, report.rows, report.valid)?,
    };
    println!(
        "run {}: parse+validate {:>6.0} ms, add_targets {:>6.0} ms, \\copy into LIKE \
         invite_targets {:>6.0} ms ({}), ratio {:.2}",
        run + 1,
        ms(parse),
        ms(insert),
        ms(copies.indexed),
        if baseline_first { "before" } else { "after" },
        insert.as_secs_f64() / copies.indexed.as_secs_f64()
    );
    Ok((
        Run {
            parse,
            insert,
            copies,
            report,
        },
        name,
    ))
}

fn stores_pool(stores: &Stores) -> anyhow::Result<&sqlx::PgPool> {
    match stores.pool() {
        invite_store::DbPool::Postgres(pool) => Ok(pool),
        _ => anyhow::bail!("not PostgreSQL"),
    }
}

/// A CSV field: quoted when it must be; `None` is an unquoted empty field (NULL).
fn field(out: &mut String, value: Option<&str>) {
    match value {
        None => {}
        Some(v) if v.contains([',', '"', '\n', '\r']) || v.is_empty() => {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        }
        Some(v) => out.push_str(v),
    }
}

/// The valid targets as the rows the store writes (kind, normalised value, dedupe key, names,
/// source), for `\copy`.
fn targets_csv(targets: &[NewTarget], task_id: i64) -> String {
    let mut out = String::with_capacity(targets.len() * 80);
    for t in targets {
        let value = match &t.identifier {
            TargetIdentifier::Username(u) => u.as_str().to_owned(),
            TargetIdentifier::UserId(id) => id.get().to_string(),
            TargetIdentifier::Phone(p) => p.as_str().to_owned(),
        };
        write!(out, "{task_id},{},", t.identifier.kind()).expect("String");
        field(&mut out, Some(&value));
        out.push(',');
        field(&mut out, Some(&t.identifier.dedupe_key()));
        out.push(',');
        field(&mut out, t.first_name.as_deref());
        out.push(',');
        field(&mut out, t.last_name.as_deref());
        out.push(',');
        out.push_str(t.source.as_str());
        out.push('\n');
    }
    out
}

/// The median of `runs`.
fn median(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// The `\copy` baselines of one run.
struct Copies {
    raw: Duration,
    plain: Duration,
    indexed: Duration,
}

/// The `\copy` commands of the baselines, into the tables [`one_run`] creates.
fn copy_commands(files: &Files) -> [String; 3] {
    let columns =
        "(task_id, identifier_kind, identifier, identifier_key, first_name, last_name, source)";
    [
        format!(
            "\\copy bench_raw FROM '{}' WITH (FORMAT csv, HEADER true)",
            files.raw.display()
        ),
        format!(
            "\\copy bench_plain {columns} FROM '{}' WITH (FORMAT csv)",
            files.normalised.display()
        ),
        format!(
            "\\copy bench_indexed {columns} FROM '{}' WITH (FORMAT csv)",
            files.normalised.display()
        ),
    ]
}

/// Runs the `\copy` baselines once into the scratch tables of `url` and checks what they
/// copied.
fn psql_copy(url: &str, files: &Files, rows: u64, valid: u64) -> anyhow::Result<Copies> {
    let [raw_copy, plain_copy, indexed_copy] = copy_commands(files);
    let copies = Copies {
        raw: psql(url, &raw_copy)?,
        plain: psql(url, &plain_copy)?,
        indexed: psql(url, &indexed_copy)?,
    };
    let counted = Command::new("psql")
        .args([
            url,
            "-X",
            "-tA",
            "-c",
            "SELECT (SELECT count(*) FROM bench_raw) || ' ' || (SELECT count(*) FROM bench_indexed)",
        ])
        .output()?;
    let counted = String::from_utf8_lossy(&counted.stdout).trim().to_owned();
    anyhow::ensure!(counted == format!("{rows} {valid}"), "copied {counted}");
    Ok(copies)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Some((admin_url, mut admin)) = common::admin_connection("import_csv_pg").await? else {
        return Ok(());
    };

    let (csv, rows) = generate();
    println!(
        "input: {:.2} MB CSV, {rows} data rows; {RUNS} runs, each on a fresh database\n",
        csv.len() as f64 / 1e6
    );
    // The baselines' files: the CSV itself, and the valid targets as the rows the store
    // writes (the report is the same on every run).
    let report = import_bytes(&csv, &options(), ImportContext::EMPTY)?;
    let dir = std::env::temp_dir();
    let files = Files {
        raw: dir.join(format!("invite_bench_import_{}.csv", std::process::id())),
        normalised: dir.join(format!("invite_bench_targets_{}.csv", std::process::id())),
    };
    let mut file = std::fs::File::create(&files.raw)?;
    file.write_all(&csv)?;
    file.sync_all()?;
    let mut file = std::fs::File::create(&files.normalised)?;
    file.write_all(targets_csv(&report.targets, 1).as_bytes())?;
    file.sync_all()?;
    drop(report);

    let mut runs = Vec::new();
    let mut databases = Vec::new();
    let mut outcome: anyhow::Result<()> = Ok(());
    for run in 0..RUNS {
        match one_run(&mut admin, &admin_url, &csv, &files, run).await {
            Ok((r, name)) => {
                databases.push(name);
                runs.push(r);
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if outcome.is_ok() {
        let report = &runs[0].report;
        println!(
            "\nreport: {} rows = {} valid + {} invalid + {} duplicate + {} suppressed\n",
            report.rows, report.valid, report.invalid, report.duplicate, report.suppressed
        );
        let of = |f: fn(&Run) -> Duration| runs.iter().map(f).collect::<Vec<_>>();
        let insert = of(|r| r.insert);
        let indexed = of(|r| r.copies.indexed);
        summary(
            "parse + validate (invite_core::import)",
            &of(|r| r.parse),
            report.rows,
        );
        summary(
            "insert (store add_targets, fresh database)",
            &insert,
            report.valid,
        );
        summary(
            "total (parse + validate + insert)",
            &of(|r| r.parse + r.insert),
            report.rows,
        );
        println!();
        summary(
            "psql \\copy raw CSV -> 4 text columns",
            &of(|r| r.copies.raw),
            report.rows,
        );
        summary(
            "psql \\copy targets -> plain scratch table",
            &of(|r| r.copies.plain),
            report.valid,
        );
        summary(
            "psql \\copy targets -> LIKE invite_targets",
            &indexed,
            report.valid,
        );
        let [raw_copy, plain_copy, indexed_copy] = copy_commands(&files);
        println!(
            "\npsql commands (timed from process start to exit, in each run's database):\n  \
             psql <url> -X -q -c \"{raw_copy}\"\n  \
             psql <url> -X -q -c \"{plain_copy}\"\n  \
             psql <url> -X -q -c \"{indexed_copy}\""
        );
        let (product, baseline) = (median(&insert), median(&indexed));
        println!(
            "\nratio: {:.2} (add_targets median {:.0} ms / psql \\copy into LIKE invite_targets \
             median {:.0} ms, each pair in the same run; target <= 1.30)",
            product.as_secs_f64() / baseline.as_secs_f64(),
            ms(product),
            ms(baseline)
        );
    }
    let _ = std::fs::remove_file(&files.raw);
    let _ = std::fs::remove_file(&files.normalised);
    for name in &databases {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    outcome
}
