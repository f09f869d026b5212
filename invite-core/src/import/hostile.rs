//! Hostile files: every one is refused with a typed error or read within bounds, and none
//! panics or allocates by what a cell reference or an archive's declared size says.

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;

use super::*;

/// Writes a part's content.
pub(crate) type Part<'a> = (&'a str, &'a dyn Fn(&mut dyn Write));

/// A workbook written by rust_xlsxwriter (a header and one username) with some parts
/// replaced or added, deflated at the fastest level.
pub(crate) fn workbook_with(parts: &[Part<'_>]) -> Vec<u8> {
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
    let mut names = Vec::new();
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.start_file(name.as_str(), options).unwrap();
        match parts.iter().find(|(n, _)| *n == name) {
            Some((_, write)) => write(&mut out),
            None => out.write_all(&data).unwrap(),
        }
        names.push(name);
    }
    for (name, write) in parts.iter().filter(|(n, _)| !names.iter().any(|m| m == n)) {
        out.start_file(*name, options).unwrap();
        write(&mut out);
    }
    out.finish().unwrap().into_inner()
}

/// A worksheet part holding `rows` (`<row>` elements).
pub(crate) fn sheet_xml(rows: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
    )
}

/// An inline-string cell.
pub(crate) fn cell(reference: &str, text: &str) -> String {
    format!(r#"<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

pub(crate) const SHEET: &str = "xl/worksheets/sheet1.xml";
pub(crate) const SHARED: &str = "xl/sharedStrings.xml";

/// A workbook whose second row also has a cell at `reference` (of row 2).
fn with_cell_at(reference: &str, text: &str) -> Vec<u8> {
    let xml = sheet_xml(&format!(
        r#"<row r="1">{}</row><row r="2">{}{}</row>"#,
        cell("A1", "username"),
        cell("A2", "@alice"),
        cell(reference, text)
    ));
    workbook_with(&[(SHEET, &|w: &mut dyn Write| {
        w.write_all(xml.as_bytes()).unwrap();
    })])
}

fn opts() -> ImportOptions {
    ImportOptions::new(crate::domain::Platform::Telegram)
}

fn read(bytes: &[u8]) -> Result<ImportReport> {
    import_bytes(bytes, &opts(), ImportContext::EMPTY)
}

#[test]
fn a_workbook_as_written_reads() {
    let bytes = with_cell_at("B2", "x");
    let report = read(&bytes).unwrap();
    assert_eq!(report.valid, 1);
}

#[test]
fn cell_references_past_the_sheet_or_the_column_cap_are_refused() {
    // Wraps calamine's u32 column in a release build, overflows it in a debug one.
    for reference in ["FXSHRXW2", "ZZZZZZZZZZ2", "A99999999999"] {
        let err = read(&with_cell_at(reference, "x")).unwrap_err();
        assert!(
            matches!(err, ImportError::InvalidXlsx(_)),
            "{reference}: {err:?}"
        );
    }
    // Past XFD, or past row 1 048 576, without overflow.
    for reference in ["ZZZZ2", "XFE2"] {
        let err = read(&with_cell_at(reference, "x")).unwrap_err();
        assert!(
            matches!(err, ImportError::InvalidXlsx(ref m) if m.contains("bounds")),
            "{err:?}"
        );
    }
    let xml = sheet_xml(&format!(
        r#"<row r="1">{}</row><row r="1048577">{}</row>"#,
        cell("A1", "username"),
        cell("A1048577", "@alice")
    ));
    let bytes = workbook_with(&[(SHEET, &|w: &mut dyn Write| {
        w.write_all(xml.as_bytes()).unwrap();
    })]);
    assert!(matches!(read(&bytes), Err(ImportError::InvalidXlsx(_))));
    // Within the sheet but past the importer's columns: column 257 is `IW`.
    assert_eq!(
        read(&with_cell_at("IW2", "x")).unwrap_err(),
        ImportError::TooManyColumns {
            row: 2,
            limit: MAX_COLUMNS
        }
    );
    assert_eq!(read(&with_cell_at("IV2", "x")).unwrap().valid, 1);
    // An empty cell far out is no data: skipped, wherever it is.
    assert_eq!(read(&with_cell_at("XFD2", "")).unwrap().valid, 1);
}

#[test]
fn many_far_cells_are_refused_at_the_first() {
    // The review's 2.3 KB file: cells at column ZZZZ on 50 rows (585 MiB before).
    let rows: String = (1..=50)
        .map(|r| format!(r#"<row r="{r}">{}</row>"#, cell(&format!("ZZZZ{r}"), "x")))
        .collect();
    let xml = sheet_xml(&rows);
    let bytes = workbook_with(&[(SHEET, &|w: &mut dyn Write| {
        w.write_all(xml.as_bytes()).unwrap();
    })]);
    assert!(matches!(read(&bytes), Err(ImportError::InvalidXlsx(_))));
}

/// Writes `head`, then `unit` `count` times, then `tail`.
pub(crate) fn repeat(w: &mut dyn Write, head: &str, unit: &str, count: usize, tail: &str) {
    w.write_all(head.as_bytes()).unwrap();
    let chunk = unit.repeat((64 * 1024 / unit.len()).max(1));
    let per_chunk = chunk.len() / unit.len();
    let mut left = count;
    while left >= per_chunk {
        w.write_all(chunk.as_bytes()).unwrap();
        left -= per_chunk;
    }
    w.write_all(unit.repeat(left).as_bytes()).unwrap();
    w.write_all(tail.as_bytes()).unwrap();
}

/// One inline cell of `len` bytes.
pub(crate) fn inline_bomb(len: usize) -> Vec<u8> {
    workbook_with(&[(SHEET, &|w: &mut dyn Write| {
        repeat(
            w,
            &sheet_xml(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>"#)
                .replace("</row></sheetData></worksheet>", ""),
            "a",
            len,
            "</t></is></c></row></sheetData></worksheet>",
        );
    })])
}

/// Shared strings of `count` entries of `unit`.
pub(crate) fn shared_strings_bomb(unit: &str, count: usize) -> Vec<u8> {
    let head = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#;
    let unit = format!("<si><t>{unit}</t></si>");
    workbook_with(&[(SHARED, &|w: &mut dyn Write| {
        repeat(w, head, &unit, count, "</sst>");
    })])
}

#[test]
fn an_inline_string_bomb_is_refused_at_the_token_cap() {
    let bytes = inline_bomb(2 * 1024 * 1024);
    assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
    assert_eq!(
        read(&bytes).unwrap_err(),
        ImportError::InflatedTooLarge {
            part: format!("one cell or tag of {SHEET}"),
            limit: MAX_XML_TOKEN_BYTES
        }
    );
}

#[test]
fn a_shared_strings_bomb_is_refused_at_the_part_cap() {
    // Strings short enough to pass the token cap, many enough to pass the part cap.
    let bytes = shared_strings_bomb(&"s".repeat(1000), (MAX_PART_BYTES / 1000) as usize);
    assert_eq!(
        read(&bytes).unwrap_err(),
        ImportError::InflatedTooLarge {
            part: SHARED.to_owned(),
            limit: MAX_PART_BYTES
        }
    );
}

#[test]
fn markup_that_escapes_the_token_measure_is_refused() {
    let xml = sheet_xml(&format!(
        r#"<row r="1">{}</row><row r="2"><c r="A2" t="inlineStr"><is><t><![CDATA[@alice]]></t></is></c></row>"#,
        cell("A1", "username")
    ));
    let bytes = workbook_with(&[(SHEET, &|w: &mut dyn Write| {
        w.write_all(xml.as_bytes()).unwrap();
    })]);
    assert!(matches!(
        read(&bytes),
        Err(ImportError::InflatedTooLarge { part, .. }) if part.contains("<!")
    ));
}

#[test]
fn the_archive_total_counts_every_part() {
    let mut meter = xlsx::Meter::for_test(MAX_INFLATED_BYTES - 10);
    assert!(meter.write_all(&[b'a'; 10]).is_ok());
    assert!(meter.write_all(b"a").is_err());
    assert_eq!(
        meter.refusal(),
        Some(ImportError::InflatedTooLarge {
            part: "the whole archive".to_owned(),
            limit: MAX_INFLATED_BYTES
        })
    );
}

#[test]
fn a_long_cell_is_refused_and_a_shared_string_is_not_multiplied() {
    let long = "y".repeat(MAX_CELL_BYTES + 1);
    assert!(matches!(
        read(&with_cell_at("B2", &long)),
        Err(ImportError::CellTooLong { row: 2, .. })
    ));
    // Every cell of 200 rows × 200 columns points at one 100 KiB shared string: 4 GB of
    // text if the sample held it; it holds at most SAMPLE_BYTES.
    let head = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>"#;
    let strings = |w: &mut dyn Write| repeat(w, head, "z", 100 * 1024, "</t></si></sst>");
    let rows: String = (1..=200)
        .map(|r| {
            let cells: String = (0..200)
                .map(|c| {
                    let col = columns::column_letter(c);
                    format!(r#"<c r="{col}{r}" t="s"><v>0</v></c>"#)
                })
                .collect();
            format!(r#"<row r="{r}">{cells}</row>"#)
        })
        .collect();
    let xml = sheet_xml(&rows);
    let bytes = workbook_with(&[
        (SHARED, &strings),
        (SHEET, &|w: &mut dyn Write| {
            w.write_all(xml.as_bytes()).unwrap()
        }),
    ]);
    assert!(matches!(
        read(&bytes),
        Err(ImportError::NoIdentifierColumn { .. })
    ));
}

#[test]
fn ten_mib_of_commas_is_refused_as_too_wide() {
    let commas = vec![b','; DEFAULT_MAX_BYTES as usize - 1];
    assert_eq!(
        read(&commas).unwrap_err(),
        ImportError::TooManyColumns {
            row: 1,
            limit: MAX_COLUMNS
        }
    );
}

/// `count` objects, each with one key of its own.
pub(crate) fn distinct_keys_json(count: usize) -> Vec<u8> {
    let items: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"key{i}":"@user{i}"}}"#))
        .collect();
    format!("[{}]", items.join(",")).into_bytes()
}

#[test]
fn json_with_twenty_thousand_keys_is_refused() {
    assert_eq!(
        read(&distinct_keys_json(20_000)).unwrap_err(),
        ImportError::TooManyColumns {
            row: MAX_COLUMNS as u64 + 1,
            limit: MAX_COLUMNS
        }
    );
    let keys: Vec<String> = (0..20_000).map(|i| format!(r#""k{i}":1"#)).collect();
    let one = format!(r#"[{{"username":"@a",{}}}]"#, keys.join(","));
    assert_eq!(
        read(one.as_bytes()).unwrap_err(),
        ImportError::TooManyColumns {
            row: 1,
            limit: MAX_COLUMNS
        }
    );
    // At the cap, it reads.
    let mut keys: Vec<String> = (1..MAX_COLUMNS).map(|i| format!(r#""k{i}":1"#)).collect();
    keys.push(r#""username":"@alice""#.to_owned());
    let wide = format!("[{{{}}}]", keys.join(","));
    let report = read(wide.as_bytes()).unwrap();
    assert_eq!(report.valid, 1, "{report:?}");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever a cell reference says (letters past XFD, rows past the sheet, numbers
        /// that overflow u32), the workbook is read or refused with a typed error.
        #[test]
        fn any_cell_reference_is_read_or_refused(
            col in "[A-Za-z]{1,9}",
            row in "[0-9]{1,12}",
            text in "[a-z@]{0,3}",
        ) {
            let result = read(&with_cell_at(&format!("{col}{row}"), &text));
            if let Err(e) = result {
                prop_assert!(e.is_client_error(), "{e:?}");
            }
        }

        /// CSV rows of any width and field length: read, or refused naming a cap.
        #[test]
        fn any_csv_shape_is_read_or_refused(
            width in 1usize..400,
            field in 1usize..200_000,
            rows in 1usize..4,
        ) {
            let line = format!("@someone_{},{}\n", "x".repeat(field.min(8)), vec!["y"; width].join(","));
            let long = format!("\"{}\"\n", "z".repeat(field));
            let file = format!("username,other\n{}{long}", line.repeat(rows));
            match read(file.as_bytes()) {
                Ok(report) => prop_assert!(report.is_consistent()),
                Err(ImportError::TooManyColumns { limit, .. }) => {
                    prop_assert_eq!(limit, MAX_COLUMNS);
                    prop_assert!(width + 1 > MAX_COLUMNS);
                }
                Err(ImportError::CellTooLong { limit, .. }) => {
                    prop_assert_eq!(limit, MAX_CELL_BYTES);
                    prop_assert!(field > MAX_CELL_BYTES);
                }
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }
    }
}
