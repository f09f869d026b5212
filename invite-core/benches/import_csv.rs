//! Parses and validates a ~10 MB CSV of about 200 000 rows, generated in memory, and prints
//! the time and the rate; then the same rows saved as Windows-1251.
//!
//! `cargo bench -p invite-core --bench import_csv`

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use invite_core::domain::{Country, Platform};
use invite_core::import::{DEFAULT_MAX_BYTES, ImportContext, ImportOptions, import_bytes};

/// Just under the default 10 MiB upload limit.
const TARGET_BYTES: usize = 10_000_000;
const RUNS: usize = 5;

/// A semicolon CSV with a BOM and Russian headers, the way spreadsheets export it: mostly
/// valid rows, with a few invalid ones, duplicates, quoted names and national phone forms.
fn generate() -> (Vec<u8>, u64) {
    let mut out = String::with_capacity(TARGET_BYTES + 100);
    out.push('\u{feff}');
    out.push_str("Ник;Телефон;Имя;Фамилия\r\n");
    let mut rows = 0u64;
    while out.len() < TARGET_BYTES - 100 {
        let i = rows;
        match i % 100 {
            // An invalid username and no phone.
            0 => write!(out, "@{i}u;;Иван;Петров\r\n"),
            // A duplicate of an earlier row.
            1 if i > 1 => write!(out, "@user_{:06};;Анна;Смирнова\r\n", i - 1),
            // A national phone form and a quoted name.
            2 => write!(
                out,
                ";8 (916) {:03}-{:02}-{:02};\"Олег, мл.\";Сидоров\r\n",
                i % 1000,
                (i / 1000) % 100,
                (i / 100_000) % 100
            ),
            _ => write!(out, "@user_{i:06};+7916{i:07};Иван;Петров\r\n"),
        }
        .expect("writing to a String");
        rows += 1;
    }
    (out.into_bytes(), rows)
}

fn main() {
    let (csv, rows) = generate();
    let mut opts = ImportOptions::new(Platform::Telegram);
    opts.normalize.default_country = Country::from_iso("RU");
    opts.limits.max_bytes = DEFAULT_MAX_BYTES;
    let suppressed: HashSet<String> = (0..10_000)
        .map(|i| format!("u:user_{:06}", i * 7))
        .collect();
    let existing: HashSet<String> = (0..10_000)
        .map(|i| format!("u:user_{:06}", i * 11))
        .collect();
    let ctx = ImportContext {
        existing: &existing,
        suppressed: &suppressed,
        reached: &(),
    };

    measure("utf-8", &csv, rows, &opts, ctx);
    // The same file as Excel saves it on a Russian-language Windows: Windows-1251, no BOM,
    // recognised and transcoded while streaming.
    let text = std::str::from_utf8(&csv).expect("generated as UTF-8");
    let (cp1251, _, lossy) = encoding_rs::WINDOWS_1251.encode(text.trim_start_matches('\u{feff}'));
    assert!(!lossy, "every character has a Windows-1251 byte");
    measure("windows-1251", &cp1251, rows, &opts, ctx);
}

fn measure(encoding: &str, csv: &[u8], rows: u64, opts: &ImportOptions, ctx: ImportContext<'_>) {
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let report = import_bytes(csv, opts, ctx).expect("the generated CSV imports");
        times.push(start.elapsed());
        last = Some(report);
    }
    let report = last.expect("at least one run");
    assert_eq!(report.rows, rows);
    assert!(report.is_consistent());
    assert_eq!(
        report.encoding.map(|e| e.as_str()),
        Some(encoding),
        "encoding recognised"
    );
    times.sort();
    let median = times[RUNS / 2];
    let best = times[0];
    let mb = csv.len() as f64 / 1_000_000.0;
    println!(
        "import_csv ({encoding}): {:.2} MB, {} rows ({} valid, {} invalid, {} duplicate, {} suppressed)",
        mb, report.rows, report.valid, report.invalid, report.duplicate, report.suppressed
    );
    println!(
        "parse+validate: median {:.0} ms, best {:.0} ms over {RUNS} runs; {:.0} rows/s, {:.1} MB/s (median)",
        median.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        report.rows as f64 / median.as_secs_f64(),
        mb / median.as_secs_f64(),
    );
}
