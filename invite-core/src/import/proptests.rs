//! Properties of the parsers and the identifier normaliser: no input makes them panic, and
//! every non-blank input row is accounted for (`rows == valid + invalid + duplicate +
//! suppressed`).

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;
use crate::domain::{Country, Phone, TargetIdentifier, Username};

/// A cell: identifiers of every kind, near misses, delimiters, quotes, line breaks, Cyrillic,
/// whitespace and arbitrary text.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{4,12}",
        "@[a-zA-Z][a-zA-Z0-9_]{0,34}",
        "[0-9]{1,16}",
        "\\+?[0-9 ()-]{0,18}",
        "(https://)?t\\.me/[+a-z0-9_/]{0,12}",
        "[ \t\u{a0}]{0,3}",
        "[;,|\t\"\r\n a-zа-я@+0-9]{0,15}",
        ".{0,20}",
        Just(String::new()),
    ]
}

fn opts() -> ImportOptions {
    let mut o = ImportOptions::new(Platform::Telegram);
    o.normalize.default_country = Country::from_iso("RU");
    o
}

/// Known dedupe keys that the generated cells sometimes hit.
fn context_sets() -> (HashSet<String>, HashSet<String>) {
    let existing = ["u:abcde", "i:12345", "p:+79161234567"]
        .map(String::from)
        .into();
    let suppressed = ["u:zzzzz", "i:1234567", "p:+79031112233"]
        .map(String::from)
        .into();
    (existing, suppressed)
}

fn is_blank_row(cells: &[String]) -> bool {
    cells.iter().all(|c| c.trim().is_empty())
}

fn write_csv(
    header: Option<&[String]>,
    rows: &[Vec<String>],
    delimiter: u8,
    crlf: bool,
) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .flexible(true)
        .from_writer(Vec::new());
    if let Some(h) = header {
        w.write_record(h).unwrap();
    }
    for row in rows {
        w.write_record(row).unwrap();
    }
    w.into_inner().unwrap()
}

/// A table: 1–4 columns, up to 40 rows.
fn table() -> impl Strategy<Value = Vec<Vec<String>>> {
    (1usize..=4)
        .prop_flat_map(|cols| prop::collection::vec(prop::collection::vec(cell(), cols), 0..40))
}

fn check(
    result: Result<ImportReport>,
    expected_rows: u64,
) -> std::result::Result<(), TestCaseError> {
    match result {
        Ok(r) => {
            prop_assert!(r.is_consistent(), "{:?}", r);
            prop_assert_eq!(r.rows, expected_rows);
            prop_assert!(r.errors.len() <= opts().limits.max_errors);
            prop_assert!(
                r.errors
                    .iter()
                    .all(|e| e.value.chars().count() <= MAX_ERROR_VALUE_CHARS + 1)
            );
        }
        Err(ImportError::Empty) => prop_assert_eq!(expected_rows, 0),
        Err(e) => prop_assert!(false, "unexpected error {e:?}"),
    }
    Ok(())
}

// 256 cases each by default; `PROPTEST_CASES=N` runs more.
proptest! {
    /// With the delimiter, header and columns given, the row count is exact.
    #[test]
    fn csv_every_row_accounted_for(
        rows in table(),
        delimiter in prop::sample::select(DELIMITERS.to_vec()),
        header in any::<bool>(),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        utf16 in any::<bool>(),
    ) {
        let cols = rows.first().map_or(1, Vec::len);
        let names: Vec<String> = (0..cols).map(|i| format!("h{i}")).collect();
        let written = write_csv(header.then_some(&names[..]), &rows, delimiter, crlf);
        // A file whose first cell starts with U+FEFF starts with a byte-order mark, and is read
        // as one: that cell loses the character (and its row may become blank).
        let mut rows = rows;
        if !bom && written.starts_with(input::BOM) {
            let first = &mut rows[0][0];
            *first = first.strip_prefix('\u{feff}').unwrap_or(first).to_owned();
        }
        let mut bytes = if bom { input::BOM.to_vec() } else { Vec::new() };
        bytes.extend(written);
        if utf16 {
            // The same text as UTF-16LE with its BOM, recognised and transcoded.
            let text = String::from_utf8(bytes).expect("written as UTF-8");
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            bytes = vec![0xFF, 0xFE];
            bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        }
        let mut o = opts();
        o.format = Some(FileFormat::Csv);
        o.delimiter = Some(delimiter);
        o.has_header = Some(header);
        o.mapping = Some(ColumnMapping {
            identifier: Some(ColumnRef::Index(0)),
            phone: (cols > 1).then_some(ColumnRef::Index(cols - 1)),
            ..ColumnMapping::default()
        });
        let (existing, suppressed) = context_sets();
        let ctx = ImportContext { existing: &existing, suppressed: &suppressed, reached: &() };
        let expected = rows.iter().filter(|r| !is_blank_row(r)).count() as u64;
        check(import_bytes(&bytes, &o, ctx), expected)?;
    }

    /// With everything detected, the parser never panics and its counts add up.
    #[test]
    fn csv_detection_never_panics(
        rows in table(),
        delimiter in prop::sample::select(DELIMITERS.to_vec()),
        crlf in any::<bool>(),
    ) {
        let bytes = write_csv(None, &rows, delimiter, crlf);
        let (existing, suppressed) = context_sets();
        let ctx = ImportContext { existing: &existing, suppressed: &suppressed, reached: &() };
        // A first cell starting with `[` or `{` would be sniffed as JSON; the caller says CSV.
        let mut o = opts();
        o.format = Some(FileFormat::Csv);
        match import_bytes(&bytes, &o, ctx) {
            Ok(r) => prop_assert!(r.is_consistent(), "{:?}", r),
            Err(ImportError::Empty | ImportError::NoIdentifierColumn { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    /// Arbitrary bytes, in any format, never panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        head in prop::sample::select(vec![&b""[..], b"[", b"{", b"PK\x03\x04", b"\xEF\xBB\xBF", b"\xD0\xCF\x11\xE0", b"\xFF\xFE", b"\xFE\xFF", b"\xC8\xEC\xFF;"]),
        body in prop::collection::vec(any::<u8>(), 0..600),
        limit in 1u64..2_000,
        encoding in prop::option::of(prop::sample::select(vec![
            TextEncoding::Utf8, TextEncoding::Utf16Le, TextEncoding::Utf16Be, TextEncoding::Windows1251,
        ])),
    ) {
        let mut bytes = head.to_vec();
        bytes.extend(body);
        let mut o = opts();
        o.encoding = encoding;
        o.limits.max_bytes = limit;
        o.limits.max_rows = 50;
        if let Ok(r) = import_bytes(&bytes, &o, ImportContext::EMPTY) {
            prop_assert!(r.is_consistent(), "{:?}", r);
        }
    }

    /// JSON arrays of objects (with `null`s and stray scalars) or of strings, bare or wrapped.
    #[test]
    fn json_every_element_accounted_for(
        elements in prop::collection::vec(json_element(), 0..40),
        strings in any::<bool>(),
        wrapped in any::<bool>(),
    ) {
        let mut expected = 0u64;
        let mut array = Vec::new();
        let mut o = opts();
        if strings {
            o.mapping = Some(ColumnMapping { identifier: Some(ColumnRef::Index(0)), ..ColumnMapping::default() });
            for e in &elements {
                match e {
                    JsonElement::Object(m) => {
                        let s = m.get("contact").and_then(Value::as_str).unwrap_or("").to_owned();
                        expected += u64::from(!s.trim().is_empty());
                        array.push(Value::String(s));
                    }
                    JsonElement::Null => array.push(Value::Null),
                    JsonElement::Scalar(_) => {}
                }
            }
        } else {
            o.mapping = Some(ColumnMapping {
                identifier: Some(ColumnRef::Name("contact".into())),
                phone: Some(ColumnRef::Name("phone".into())),
                ..ColumnMapping::default()
            });
            // The first element is an object, so the array is one of objects.
            let mut first = Map::new();
            first.insert("contact".into(), Value::String("@first_person".into()));
            first.insert("phone".into(), Value::Null);
            array.push(Value::Object(first));
            expected += 1;
            for e in &elements {
                match e {
                    JsonElement::Object(m) => {
                        expected += u64::from(m.values().any(|v| !json_text_blank(v)));
                        array.push(Value::Object(m.clone()));
                    }
                    JsonElement::Null => array.push(Value::Null),
                    JsonElement::Scalar(v) => {
                        expected += 1;
                        array.push(v.clone());
                    }
                }
            }
        }
        let doc = if wrapped {
            serde_json::json!({"total": array.len(), "errors": [], "users": array})
        } else {
            Value::Array(array)
        };
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        let (existing, suppressed) = context_sets();
        let ctx = ImportContext { existing: &existing, suppressed: &suppressed, reached: &() };
        check(import_bytes(&bytes, &o, ctx), expected)?;
    }

    /// The identifier normaliser never panics, and what it accepts reads back as itself.
    #[test]
    fn identifiers_round_trip(
        input in prop_oneof![cell(), "\\+?[0-9]{6,16}", "(8|7|\\+7)[ (]?9[0-9]{2}[) ]?[0-9]{3}-?[0-9]{2}-?[0-9]{2}"],
        platform in prop::sample::select(Platform::ALL.to_vec()),
        country in prop::sample::select(vec![None, Some("RU"), Some("UA"), Some("BY"), Some("US"), Some("DE"), Some("UZ")]),
    ) {
        let default_country = country.and_then(Country::from_iso);
        let normalize = NormalizeOptions { default_country };
        let _ = Username::parse(&input, platform);
        if let Ok(p) = Phone::parse(&input, default_country) {
            let s = p.as_str();
            prop_assert!(s.starts_with('+') && s[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert!((9..=16).contains(&s.len()));
        }
        if let Ok(id) = TargetIdentifier::parse(&input, platform, &normalize) {
            let again = TargetIdentifier::parse(&id.to_string(), platform, &normalize);
            prop_assert_eq!(again.as_ref(), Ok(&id));
            prop_assert_eq!(TargetIdentifier::from_dedupe_key(&id.dedupe_key()), Some(id.clone()));
            let _ = id.redacted();
        }
    }
}

#[derive(Debug, Clone)]
enum JsonElement {
    Object(Map<String, Value>),
    Null,
    Scalar(Value),
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        cell().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(|n| Value::from(f64::from(n) * 1000.0)),
        (-1e20f64..1e20).prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn json_element() -> impl Strategy<Value = JsonElement> {
    let key = prop::sample::select(vec![
        "contact",
        "phone",
        "username",
        "first_name",
        "x",
        "имя",
    ]);
    prop_oneof![
        6 => prop::collection::btree_map(key, json_value(), 0..5).prop_map(|m| {
            let mut map: Map<String, Value> =
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            map.entry("contact").or_insert(Value::Null);
            JsonElement::Object(map)
        }),
        1 => Just(JsonElement::Null),
        1 => json_value()
            .prop_filter("not null", |v| !v.is_null())
            .prop_map(JsonElement::Scalar),
    ]
}

/// Whether a JSON value reads as a blank cell.
fn json_text_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}
