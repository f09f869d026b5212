//! Peak heap of hostile uploads, measured by a counting global allocator (so this file is a
//! test binary of its own, with one test that runs the cases one after another).
//!
//! Each case builds its file, then measures the heap above what was live before the import:
//! the result is bounded by the caps, whatever the file claims. `--nocapture` prints the
//! figures.
//!
//! `cargo test -p invite-core --test hostile_peak -- --nocapture`

use std::io::{Cursor, Read, Write};

use invite_core::domain::Platform;
use invite_core::import::{
    DEFAULT_MAX_BYTES, ImportContext, ImportError, ImportOptions, MAX_COLUMNS, MAX_PART_BYTES,
    import_bytes,
};
use peak_alloc::PeakAlloc;
use zip::write::SimpleFileOptions;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const MIB: usize = 1024 * 1024;
const SHEET: &str = "xl/worksheets/sheet1.xml";
const SHARED: &str = "xl/sharedStrings.xml";

/// A rust_xlsxwriter workbook with one part replaced by what `write` writes.
fn workbook(part: &str, write: &dyn Fn(&mut dyn Write)) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "username").unwrap();
    sheet.write_string(1, 0, "@alice").unwrap();
    let base = book.save_to_buffer().unwrap();
    let mut src = zip::ZipArchive::new(Cursor::new(base)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.start_file(name.as_str(), options).unwrap();
        if name == part {
            write(&mut out);
        } else {
            out.write_all(&data).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

/// Writes `head`, `unit` `count` times, `tail`.
fn repeat(w: &mut dyn Write, head: &str, unit: &str, count: usize, tail: &str) {
    w.write_all(head.as_bytes()).unwrap();
    let per_chunk = (64 * 1024 / unit.len()).max(1);
    let chunk = unit.repeat(per_chunk);
    let mut left = count;
    while left >= per_chunk {
        w.write_all(chunk.as_bytes()).unwrap();
        left -= per_chunk;
    }
    w.write_all(unit.repeat(left).as_bytes()).unwrap();
    w.write_all(tail.as_bytes()).unwrap();
}

const SHEET_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_TAIL: &str = "</sheetData></worksheet>";
const SST_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#;

/// Imports `file` and returns the result and the peak heap above what was live before.
fn measure(file: &[u8]) -> (Result<u64, ImportError>, usize) {
    let opts = ImportOptions::new(Platform::Telegram);
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let result = import_bytes(file, &opts, ImportContext::EMPTY).map(|r| r.rows);
    let peak = HEAP.peak_usage().saturating_sub(before);
    (result, peak)
}

struct Case {
    name: &'static str,
    file: Vec<u8>,
    /// The most heap the import may take, in bytes.
    bound: usize,
    /// Whether the result is the expected one.
    refused: fn(&Result<u64, ImportError>) -> bool,
}

fn cases() -> Vec<Box<dyn Fn() -> Case>> {
    vec![
        Box::new(|| Case {
            name: "xlsx: values at column ZZZZ on 50 rows",
            file: workbook(SHEET, &|w| {
                let rows: String = (1..=50)
                    .map(|r| {
                        format!(
                            r#"<row r="{r}"><c r="ZZZZ{r}" t="inlineStr"><is><t>x</t></is></c></row>"#
                        )
                    })
                    .collect();
                w.write_all(format!("{SHEET_HEAD}{rows}{SHEET_TAIL}").as_bytes())
                    .unwrap();
            }),
            bound: 4 * MIB,
            refused: |r| matches!(r, Err(ImportError::InvalidXlsx(_))),
        }),
        Box::new(|| Case {
            name: "xlsx: one inline cell of 64 MiB",
            file: workbook(SHEET, &|w| {
                repeat(
                    w,
                    &format!(r#"{SHEET_HEAD}<row r="1"><c r="A1" t="inlineStr"><is><t>"#),
                    "a",
                    64 * MIB,
                    &format!("</t></is></c></row>{SHEET_TAIL}"),
                );
            }),
            bound: 8 * MIB,
            refused: |r| matches!(r, Err(ImportError::InflatedTooLarge { .. })),
        }),
        Box::new(|| Case {
            name: "xlsx: shared strings of 64 MiB (past the part cap)",
            file: workbook(SHARED, &|w| {
                repeat(w, SST_HEAD, "<si><t>a</t></si>", 64 * MIB / 17, "</sst>");
            }),
            bound: 8 * MIB,
            refused: |r| matches!(r, Err(ImportError::InflatedTooLarge { .. })),
        }),
        Box::new(|| Case {
            name: "xlsx: shared strings just under the part cap, tiny strings",
            file: workbook(SHARED, &|w| {
                let count = (MAX_PART_BYTES as usize - 4096) / 17;
                repeat(w, SST_HEAD, "<si><t>a</t></si>", count, "</sst>");
            }),
            // What calamine holds: a String per entry. Bounded by the cap, not by the file.
            bound: 3 * MAX_PART_BYTES as usize,
            refused: |_| true,
        }),
        Box::new(|| Case {
            name: "csv: 10 MiB of commas",
            file: vec![b','; DEFAULT_MAX_BYTES as usize - 1],
            bound: 2 * DEFAULT_MAX_BYTES as usize,
            refused: |r| matches!(r, Err(ImportError::TooManyColumns { .. })),
        }),
        Box::new(|| Case {
            name: "csv: 10 MiB of rows at the column cap",
            file: {
                let row = format!("{}\n", vec!["x"; MAX_COLUMNS].join(","));
                row.repeat(DEFAULT_MAX_BYTES as usize / row.len())
                    .into_bytes()
            },
            bound: 3 * DEFAULT_MAX_BYTES as usize,
            refused: |r| matches!(r, Err(ImportError::NoIdentifierColumn { .. })),
        }),
        Box::new(|| Case {
            name: "json: 20 000 objects of distinct keys",
            file: {
                let items: Vec<String> = (0..20_000)
                    .map(|i| format!(r#"{{"key{i}":"@user{i}"}}"#))
                    .collect();
                format!("[{}]", items.join(",")).into_bytes()
            },
            bound: 4 * MIB,
            refused: |r| matches!(r, Err(ImportError::TooManyColumns { .. })),
        }),
        Box::new(|| Case {
            name: "json: one object of 10 MiB of keys",
            file: {
                let mut s = String::from(r#"[{"username":"@alice_one""#);
                let mut i = 0;
                while s.len() < DEFAULT_MAX_BYTES as usize - 64 {
                    s.push_str(&format!(r#","k{i}":1"#));
                    i += 1;
                }
                s.push_str("}]");
                s.into_bytes()
            },
            bound: 2 * DEFAULT_MAX_BYTES as usize,
            refused: |r| matches!(r, Err(ImportError::TooManyColumns { row: 1, .. })),
        }),
    ]
}

#[test]
fn hostile_files_stay_within_their_heap_bounds() {
    let mut failures = Vec::new();
    for case in cases() {
        let case = case();
        let (result, peak) = measure(&case.file);
        eprintln!(
            "{:<60} {:>9} B in, peak {:>6.1} MiB, {:?}",
            case.name,
            case.file.len(),
            peak as f64 / MIB as f64,
            result.as_ref().map_err(|e| e.to_string())
        );
        if !(case.refused)(&result) {
            failures.push(format!("{}: unexpected result {result:?}", case.name));
        }
        if peak > case.bound {
            failures.push(format!(
                "{}: peak {peak} B over {} B",
                case.name, case.bound
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
