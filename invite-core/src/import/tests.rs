//! Import tests over the fixture files in `tests/fixtures/import/`.

use std::collections::HashSet;
use std::path::PathBuf;

use super::*;
use crate::domain::{Country, TargetIdentifier};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Telegram, Russian national numbers understood.
fn opts() -> ImportOptions {
    let mut o = ImportOptions::new(Platform::Telegram);
    o.normalize.default_country = Country::from_iso("RU");
    o
}

fn run(name: &str, opts: &ImportOptions) -> ImportReport {
    let report = import_bytes(&fixture(name), opts, ImportContext::EMPTY)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.is_consistent(), "{name}: {report:?}");
    report
}

fn run_err(name: &str, opts: &ImportOptions) -> ImportError {
    import_bytes(&fixture(name), opts, ImportContext::EMPTY).unwrap_err()
}

fn ids(report: &ImportReport) -> Vec<String> {
    report
        .targets
        .iter()
        .map(|t| t.identifier.to_string())
        .collect()
}

/// `(rows, valid, invalid, duplicate, suppressed)`.
fn counts(r: &ImportReport) -> (u64, u64, u64, u64, u64) {
    (r.rows, r.valid, r.invalid, r.duplicate, r.suppressed)
}

fn role_label(r: &ImportReport, role: ColumnRole) -> Option<&str> {
    r.columns
        .iter()
        .find(|c| c.role == role)
        .map(|c| c.label.as_str())
}

fn keys(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn semicolon_csv_with_bom_and_russian_headers() {
    let r = run("semicolon_bom_ru.csv", &opts());
    assert_eq!(r.format, FileFormat::Csv);
    assert_eq!(r.delimiter, Some(';'));
    assert!(r.header);
    assert_eq!(r.detection, Detection::Header);
    assert_eq!(role_label(&r, ColumnRole::Username), Some("Ник"));
    assert_eq!(role_label(&r, ColumnRole::Phone), Some("Номер телефона"));
    assert_eq!(role_label(&r, ColumnRole::FirstName), Some("Имя"));
    assert_eq!(role_label(&r, ColumnRole::LastName), Some("Фамилия"));
    assert_eq!(role_label(&r, ColumnRole::Email), Some("Почта"));
    assert_eq!(counts(&r), (4, 3, 1, 0, 0));
    assert_eq!(ids(&r), ["@ivan_petrov", "@anna_smirnova", "+79031112233"]);
    let ivan = &r.targets[0];
    assert_eq!(ivan.first_name.as_deref(), Some("Иван"));
    assert_eq!(ivan.last_name.as_deref(), Some("Петров"));
    assert_eq!(ivan.email.as_deref(), Some("ivan@example.com"));
    assert_eq!(ivan.source, TargetSource::FileUpload);
    assert_eq!(r.targets[1].email, None);
    assert_eq!(
        r.errors,
        [RowError {
            row: 5,
            column: "Ник".into(),
            value: "@bad".into(),
            reason: "invalid username: must be 5 to 32 characters".into(),
        }]
    );
}

#[test]
fn headerless_csv_by_values() {
    let r = run("headerless.csv", &opts());
    assert!(!r.header);
    assert_eq!(r.detection, Detection::Values);
    assert_eq!(role_label(&r, ColumnRole::Username), Some("column 1"));
    assert_eq!(role_label(&r, ColumnRole::Phone), Some("column 3"));
    assert_eq!(counts(&r), (3, 3, 0, 0, 0));
    assert_eq!(ids(&r), ["@ivan_petrov", "@anna_smirnova", "@oleg_sidorov"]);

    let r = run("headerless_single.csv", &opts());
    assert!(!r.header);
    assert_eq!(role_label(&r, ColumnRole::Identifier), Some("column 1"));
    assert_eq!(counts(&r), (4, 4, 0, 0, 0));
    assert_eq!(
        ids(&r),
        ["@first_user", "123456789", "+79161234567", "@second_user"]
    );
}

#[test]
fn an_undeclared_column_is_read_per_cell() {
    // Mostly usernames, so the column is taken for usernames; the rest are read by their form.
    let mut data: String = (0..9).map(|i| format!("@reader_{i:03}\n")).collect();
    data.push_str("123456789\n+79161234567\n");
    let r = import_bytes(data.as_bytes(), &opts(), ImportContext::EMPTY).unwrap();
    assert_eq!(r.detection, Detection::Values);
    assert_eq!(role_label(&r, ColumnRole::Username), Some("column 1"));
    assert_eq!(counts(&r), (11, 11, 0, 0, 0), "{r:?}");
    let kinds: Vec<&str> = r
        .targets
        .iter()
        .map(|t| match t.identifier {
            TargetIdentifier::Username(_) => "username",
            TargetIdentifier::UserId(_) => "user_id",
            TargetIdentifier::Phone(_) => "phone",
        })
        .collect();
    assert_eq!(kinds[..9], ["username"; 9]);
    assert_eq!(kinds[9..], ["user_id", "phone"]);
    // A declared column keeps its rule: a number under a `username` header is refused.
    let declared = "username\n@first_user\n123456789\n";
    let r = import_bytes(declared.as_bytes(), &opts(), ImportContext::EMPTY).unwrap();
    assert_eq!(counts(&r), (2, 1, 1, 0, 0), "{r:?}");
}

#[test]
fn quoted_commas_multiline_fields_and_blank_lines() {
    let r = run("quoted_blank.csv", &opts());
    assert_eq!(r.delimiter, Some(','));
    assert_eq!(counts(&r), (4, 3, 1, 0, 0));
    assert_eq!(
        r.targets
            .iter()
            .map(|t| t.full_name.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["Петров, Иван", "Смирнова, Анна", "Сидоров, Олег"]
    );
    // Line 9 in an editor: the record on lines 4–5 and the blank lines are counted as lines.
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].row, 9);
    assert_eq!(r.errors[0].column, "username");
}

#[test]
fn tab_and_pipe_delimiters() {
    let r = run("tab.tsv", &opts());
    assert_eq!(r.delimiter, Some('\t'));
    assert_eq!(counts(&r), (2, 2, 0, 0, 0));
    assert_eq!(ids(&r), ["123456789", "987654321"]);
    assert_eq!(r.targets[1].last_name.as_deref(), Some("Smirnova"));

    let r = run("pipe.csv", &opts());
    assert_eq!(r.delimiter, Some('|'));
    assert_eq!(counts(&r), (2, 2, 0, 0, 0));
    assert_eq!(ids(&r), ["+79161234567", "+79167654321"]);
    assert_eq!(r.targets[0].full_name.as_deref(), Some("Ivan | Petrov"));
}

#[test]
fn explicit_delimiter_and_header_flag() {
    let mut o = opts();
    o.delimiter = Some(b';');
    o.has_header = Some(false);
    // With the header declared absent, the header line is a row: `username` is a valid one.
    let r = run("mixed_counts.csv", &o);
    assert!(!r.header);
    assert_eq!(r.rows, 17);
    assert_eq!(ids(&r)[0], "@username");
}

#[test]
fn mixed_valid_invalid_duplicate_and_suppressed_csv() {
    let existing = keys(&["u:existing_user"]);
    let suppressed = keys(&["p:+79990001122"]);
    let ctx = ImportContext {
        existing: &existing,
        suppressed: &suppressed,
        reached: &(),
    };
    let r = import_bytes(&fixture("mixed_counts.csv"), &opts(), ctx).unwrap();
    assert!(r.is_consistent());
    assert_eq!(counts(&r), (16, 5, 4, 4, 3));
    assert_eq!((r.duplicate_in_file, r.duplicate_existing), (3, 1));
    assert_eq!(
        ids(&r),
        ["@alice_one", "@bob_two", "111111", "@dave_four", "333333"]
    );
    assert_eq!(r.error_total, 4);
    let rows: Vec<(u64, &str, &str)> = r
        .errors
        .iter()
        .map(|e| (e.row, e.column.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            (11, "username", "@bad"),
            (12, "user_id", "abc"),
            (13, "phone", "12345"),
            (14, "username, user_id, phone", ""),
        ]
    );
    assert_eq!(
        r.errors[3].reason,
        "no username, user id or phone in this row"
    );
    let skipped: Vec<(u64, SkipReason)> = r.skipped.iter().map(|s| (s.row, s.reason)).collect();
    assert_eq!(
        skipped,
        [
            (4, SkipReason::DuplicateInFile { first_row: 2 }),
            (6, SkipReason::DuplicateInFile { first_row: 5 }),
            (7, SkipReason::AlreadyInTask),
            (8, SkipReason::Suppressed),
            (9, SkipReason::Suppressed),
            (10, SkipReason::Suppressed),
            (18, SkipReason::DuplicateInFile { first_row: 17 }),
        ]
    );
    assert_eq!(r.skipped[0].identifier, "@alice_one");
}

#[test]
fn mixed_counts_json() {
    let existing = keys(&["u:existing_user"]);
    let suppressed = keys(&["p:+79990001122"]);
    let ctx = ImportContext {
        existing: &existing,
        suppressed: &suppressed,
        reached: &(),
    };
    let r = import_bytes(&fixture("mixed_counts.json"), &opts(), ctx).unwrap();
    assert!(r.is_consistent());
    assert_eq!(counts(&r), (8, 2, 2, 3, 1));
    assert_eq!((r.duplicate_in_file, r.duplicate_existing), (2, 1));
    assert_eq!(ids(&r), ["@alice_one", "@eve_five"]);
    assert_eq!(r.targets[0].full_name.as_deref(), Some("Alice"));
    assert_eq!(r.errors[0].row, 7);
    assert_eq!(r.errors[0].value, "stray string");
    assert_eq!(r.errors[1].row, 8);
    assert_eq!(r.errors[1].column, "username");
}

#[test]
fn json_array_of_objects() {
    let r = run("objects.json", &opts());
    assert_eq!(r.format, FileFormat::Json);
    assert!(r.header);
    assert_eq!(counts(&r), (3, 3, 0, 0, 0));
    // Numbers stay integers: never `1.2345E+10`, `12345000000.0` or `7.9161234567e10`.
    assert_eq!(ids(&r), ["@ivan_petrov", "987654321", "12345000000"]);
    assert_eq!(r.targets[1].first_name.as_deref(), Some("Anna"));

    let mut phones = opts();
    phones.mapping = Some(ColumnMapping {
        phone: Some(ColumnRef::Name("phone".into())),
        ..ColumnMapping::default()
    });
    let r = run("objects.json", &phones);
    assert_eq!(counts(&r), (3, 1, 2, 0, 0));
    assert_eq!(ids(&r), ["+79161234567"]);
}

#[test]
fn json_array_of_strings() {
    let r = run("strings.json", &opts());
    assert!(!r.header);
    assert_eq!(role_label(&r, ColumnRole::Identifier), Some("column 1"));
    assert_eq!(counts(&r), (5, 4, 1, 0, 0));
    assert_eq!(
        ids(&r),
        [
            "@ivan_petrov",
            "@anna_smirnova",
            "123456789",
            "+79161234567"
        ]
    );
    assert_eq!(r.errors[0].row, 7);
    assert_eq!(
        r.errors[0].reason,
        "an invite or group link is not a person"
    );
}

#[test]
fn json_object_wrapping_the_array() {
    let r = run("wrapped.json", &opts());
    assert_eq!(counts(&r), (2, 2, 0, 0, 0));
    assert_eq!(ids(&r), ["@first_user", "@second_user"]);
}

#[test]
fn json_errors() {
    match run_err("broken.json", &opts()) {
        ImportError::InvalidJson { line, message, .. } => {
            assert_eq!(line, 3);
            assert_eq!(message, "expected `,` or `]`");
        }
        other => panic!("{other:?}"),
    }
    let o = opts();
    let err = |s: &str| import_bytes(s.as_bytes(), &o, ImportContext::EMPTY).unwrap_err();
    assert_eq!(err("[]"), ImportError::Empty);
    assert_eq!(err("[null, {}]"), ImportError::Empty);
    assert_eq!(err("{\"users\": []}"), ImportError::Empty);
    assert_eq!(err("{\"a\": 1}"), ImportError::JsonNotATable);
    assert_eq!(err("[[\"@someone\"]]"), ImportError::JsonNotATable);
    assert!(matches!(err("[1, 2"), ImportError::InvalidJson { .. }));
    let mut bad = b"[\"@someone\", \"".to_vec();
    bad.extend_from_slice(b"\xff\"]");
    assert_eq!(
        import_bytes(&bad, &o, ImportContext::EMPTY).unwrap_err(),
        ImportError::InvalidUtf8 { row: 1 }
    );
}

#[test]
fn windows_1251_csv_from_excel_is_recognised() {
    let r = run("cp1251_ru.csv", &opts());
    assert_eq!(r.encoding, Some(TextEncoding::Windows1251));
    assert_eq!(r.delimiter, Some(';'));
    assert!(r.header);
    assert_eq!(role_label(&r, ColumnRole::Username), Some("Ник"));
    assert_eq!(role_label(&r, ColumnRole::Phone), Some("Телефон"));
    assert_eq!(counts(&r), (4, 3, 1, 0, 0));
    assert_eq!(ids(&r), ["@ivan_petrov", "@anna_smirnova", "+79031112233"]);
    assert_eq!(r.targets[0].first_name.as_deref(), Some("Иван"));
    assert_eq!(r.targets[1].last_name.as_deref(), Some("Смирнова"));
    assert_eq!(
        r.errors,
        [RowError {
            row: 4,
            column: "Ник".into(),
            value: "@ёж".into(),
            reason: "invalid username: must be 5 to 32 characters".into(),
        }]
    );
    // Named explicitly, the same.
    let mut o = opts();
    o.encoding = Some(TextEncoding::Windows1251);
    assert_eq!(ids(&run("cp1251_ru.csv", &o)), ids(&r));
    // Named as UTF-8, refused at the first non-UTF-8 row.
    o.encoding = Some(TextEncoding::Utf8);
    assert_eq!(
        run_err("cp1251_ru.csv", &o),
        ImportError::InvalidUtf8 { row: 1 }
    );
}

#[test]
fn utf16_with_bom_is_transcoded() {
    // Excel's "Unicode text": UTF-16LE with BOM, tab-delimited, CRLF.
    let r = run("unicode_text_utf16le.txt", &opts());
    assert_eq!(r.encoding, Some(TextEncoding::Utf16Le));
    assert_eq!(r.delimiter, Some('\t'));
    assert_eq!(role_label(&r, ColumnRole::Username), Some("Логин"));
    assert_eq!(counts(&r), (3, 3, 0, 0, 0));
    assert_eq!(ids(&r), ["@ivan_petrov", "@anna_smirnova", "+79031112233"]);
    assert_eq!(r.targets[2].first_name.as_deref(), Some("Олег"));

    let r = run("utf16be.csv", &opts());
    assert_eq!(r.encoding, Some(TextEncoding::Utf16Be));
    assert_eq!(r.delimiter, Some(','));
    assert_eq!(counts(&r), (2, 2, 0, 0, 0));
    assert_eq!(r.targets[1].full_name.as_deref(), Some("Анна"));
}

#[test]
fn other_non_utf8_csv_is_refused_unless_named() {
    // Latin-1 is not guessed: its accented letters sit inside Latin words.
    let e = run_err("latin1.csv", &opts());
    assert_eq!(e, ImportError::InvalidUtf8 { row: 2 });
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    assert!(e.to_string().contains("windows-1251"), "{e}");
    // The caller may still name an encoding; the identifiers are ASCII and survive it.
    let mut o = opts();
    o.encoding = Some(TextEncoding::Windows1251);
    let r = run("latin1.csv", &o);
    assert_eq!(ids(&r), ["@jose_maria", "@hans_mueller"]);
}

#[test]
fn xlsx_with_numbers_for_ids_and_phones() {
    let r = run("mixed.xlsx", &opts());
    assert_eq!(r.format, FileFormat::Xlsx);
    assert_eq!(r.sheet.as_deref(), Some("Users"));
    assert!(r.header);
    assert_eq!(counts(&r), (6, 4, 1, 1, 0));
    assert_eq!(
        ids(&r),
        ["@ivan_petrov", "12345000000", "+79031112233", "777000"]
    );
    assert_eq!(r.targets[0].first_name.as_deref(), Some("Иван"));
    assert_eq!(r.errors[0].row, 6);
    assert_eq!(r.errors[0].column, "username");
    assert_eq!(r.errors[0].value, "TRUE");
    assert_eq!(
        r.skipped[0].reason,
        SkipReason::DuplicateInFile { first_row: 2 }
    );

    // The phone typed as a number reads as digits, not as `7.9161234567E+10`.
    let mut phones = opts();
    phones.mapping = Some(ColumnMapping {
        phone: Some(ColumnRef::Index(2)),
        ..ColumnMapping::default()
    });
    let r = run("mixed.xlsx", &phones);
    assert_eq!(ids(&r)[0], "+79161234567");
}

#[test]
fn xlsx_named_sheet() {
    let mut o = opts();
    o.sheet = Some(" резерв ".into());
    let r = run("mixed.xlsx", &o);
    assert_eq!(r.sheet.as_deref(), Some("Резерв"));
    assert_eq!(role_label(&r, ColumnRole::Phone), Some("Телефон"));
    assert_eq!(ids(&r), ["+79161234567", "+79167654321"]);

    o.sheet = Some("Nope".into());
    assert_eq!(
        run_err("mixed.xlsx", &o),
        ImportError::SheetNotFound {
            name: "Nope".into(),
            available: vec!["Users".into(), "Резерв".into()],
        }
    );
}

#[test]
fn headerless_xlsx_uses_letters() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 1, "@ivan_petrov").unwrap();
    sheet.write_number(0, 2, 123_456_789.0).unwrap();
    sheet.write_string(1, 1, "@anna_smirnova").unwrap();
    sheet.write_number(1, 2, 987_654_321.0).unwrap();
    sheet.write_string(2, 1, "@b").unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let r = import_bytes(&bytes, &opts(), ImportContext::EMPTY).unwrap();
    assert!(!r.header);
    assert_eq!(role_label(&r, ColumnRole::Username), Some("B"));
    assert_eq!(role_label(&r, ColumnRole::UserId), Some("C"));
    assert_eq!(counts(&r), (3, 2, 1, 0, 0));
    assert_eq!(r.errors[0].row, 3);
    assert_eq!(r.errors[0].column, "B");
}

#[test]
fn archives_that_are_not_workbooks() {
    assert_eq!(run_err("not_xlsx.zip", &opts()), ImportError::NotXlsx);
    let mut ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    ole.resize(512, 0);
    assert_eq!(
        import_bytes(&ole, &opts(), ImportContext::EMPTY).unwrap_err(),
        ImportError::UnsupportedSpreadsheet
    );
    let mut damaged = fixture("mixed.xlsx");
    damaged.truncate(damaged.len() / 2);
    assert!(matches!(
        import_bytes(&damaged, &opts(), ImportContext::EMPTY).unwrap_err(),
        ImportError::InvalidXlsx(_)
    ));
    let mut forced = opts();
    forced.format = Some(FileFormat::Xlsx);
    assert!(matches!(
        run_err("tab.tsv", &forced),
        ImportError::InvalidXlsx(_)
    ));
}

#[test]
fn byte_limit_stops_reading() {
    for name in [
        "quoted_blank.csv",
        "objects.json",
        "mixed.xlsx",
        "cp1251_ru.csv",
        "unicode_text_utf16le.txt",
    ] {
        let bytes = fixture(name);
        let mut o = opts();
        o.limits.max_bytes = bytes.len() as u64 - 1;
        assert_eq!(
            import_bytes(&bytes, &o, ImportContext::EMPTY).unwrap_err(),
            ImportError::TooLarge {
                limit: bytes.len() as u64 - 1
            },
            "{name}"
        );
        o.limits.max_bytes = bytes.len() as u64;
        assert!(
            import_bytes(&bytes, &o, ImportContext::EMPTY).is_ok(),
            "{name}"
        );
    }
    // A CSV larger than the first block read: the limit applies while streaming.
    let mut big = b"username\n".to_vec();
    for i in 0..20_000 {
        big.extend_from_slice(format!("@user_{i:06}\n").as_bytes());
    }
    let mut o = opts();
    o.limits.max_bytes = 100_000;
    assert_eq!(
        import_bytes(&big, &o, ImportContext::EMPTY).unwrap_err(),
        ImportError::TooLarge { limit: 100_000 }
    );
}

#[test]
fn row_limit() {
    let mut o = opts();
    o.limits.max_rows = 3;
    assert_eq!(
        run_err("semicolon_bom_ru.csv", &o),
        ImportError::TooManyRows { limit: 3 }
    );
    o.limits.max_rows = 4;
    assert_eq!(run("semicolon_bom_ru.csv", &o).rows, 4);
}

#[test]
fn errors_listed_up_to_the_limit_and_values_cut() {
    let mut csv = String::from("username\n");
    for _ in 0..10 {
        csv.push_str(&format!("{}\n", "x".repeat(500)));
    }
    let mut o = opts();
    o.limits.max_errors = 3;
    let r = import_bytes(csv.as_bytes(), &o, ImportContext::EMPTY).unwrap();
    assert_eq!(r.invalid, 10);
    assert_eq!(r.error_total, 10);
    assert_eq!(r.errors.len(), 3);
    assert_eq!(r.errors[0].value.chars().count(), MAX_ERROR_VALUE_CHARS + 1);
    assert!(r.errors[0].value.ends_with('…'));
}

#[test]
fn empty_files() {
    let o = opts();
    for input in ["", "\u{feff}", "\n\n\r\n", "username;phone\n", ";;\n;;\n"] {
        assert_eq!(
            import_bytes(input.as_bytes(), &o, ImportContext::EMPTY).unwrap_err(),
            ImportError::Empty,
            "{input:?}"
        );
    }
}

#[test]
fn no_identifier_column() {
    let e = import_bytes(
        "Имя;Комментарий\nИван;друг\n".as_bytes(),
        &opts(),
        ImportContext::EMPTY,
    )
    .unwrap_err();
    assert_eq!(
        e,
        ImportError::NoIdentifierColumn {
            columns: vec!["Имя".into(), "Комментарий".into()]
        }
    );
}

#[test]
fn platform_rules_apply() {
    let mut o = ImportOptions::new(Platform::Whatsapp);
    o.source = TargetSource::ParsingImport;
    let r = run("semicolon_bom_ru.csv", &o);
    // WhatsApp has no usernames, and without a country the national numbers are refused.
    assert_eq!(counts(&r), (4, 1, 3, 0, 0));
    assert_eq!(ids(&r), ["+79161234567"]);
    assert_eq!(r.targets[0].source, TargetSource::ParsingImport);
}

#[test]
fn existing_keys_come_from_dedupe_key() {
    let id =
        TargetIdentifier::parse("@Ivan_Petrov", Platform::Telegram, &opts().normalize).unwrap();
    let existing: HashSet<String> = [id.dedupe_key()].into();
    let ctx = ImportContext {
        existing: &existing,
        suppressed: &(),
        reached: &(),
    };
    let r = import_bytes(&fixture("semicolon_bom_ru.csv"), &opts(), ctx).unwrap();
    assert_eq!(counts(&r), (4, 2, 1, 1, 0));
    assert_eq!(r.duplicate_existing, 1);
}

/// The workbook checked in as `mixed.xlsx`: numbers for ids and phones, a bool, a blank row,
/// and a second sheet.
fn mixed_workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let users = book.add_worksheet();
    users.set_name("Users").unwrap();
    for (col, name) in ["username", "user_id", "phone", "first_name"]
        .iter()
        .enumerate()
    {
        users.write_string(0, col as u16, *name).unwrap();
    }
    users.write_string(1, 0, "@ivan_petrov").unwrap();
    users.write_number(1, 1, 123_456_789.0).unwrap();
    users.write_number(1, 2, 79_161_234_567.0).unwrap();
    users.write_string(1, 3, "Иван").unwrap();
    // Row 3 is blank.
    users.write_number(3, 1, 1.2345e10).unwrap();
    users.write_string(3, 2, "+7 916 765-43-21").unwrap();
    users.write_string(3, 3, "Анна").unwrap();
    users.write_string(4, 0, "anna_bad!").unwrap();
    users.write_number(4, 2, 89_031_112_233.0).unwrap();
    users.write_string(4, 3, "Олег").unwrap();
    users.write_boolean(5, 0, true).unwrap();
    users.write_number(5, 1, 0.0).unwrap();
    users.write_string(6, 0, "@Ivan_Petrov").unwrap();
    users.write_number(7, 1, 777_000.0).unwrap();
    users.write_string(7, 3, "Service").unwrap();
    let spare = book.add_worksheet();
    spare.set_name("Резерв").unwrap();
    spare.write_string(0, 0, "Телефон").unwrap();
    spare.write_number(1, 0, 79_161_234_567.0).unwrap();
    spare.write_number(2, 0, 89_167_654_321.0).unwrap();
    book.save_to_buffer().unwrap()
}

/// Rewrites `mixed.xlsx`; run by hand after changing [`mixed_workbook`].
#[test]
#[ignore = "writes a fixture file"]
fn write_xlsx_fixture() {
    std::fs::write(fixture_path("mixed.xlsx"), mixed_workbook()).unwrap();
}

#[test]
fn generated_workbook_reads_like_the_fixture() {
    let fresh = import_bytes(&mixed_workbook(), &opts(), ImportContext::EMPTY).unwrap();
    let stored = run("mixed.xlsx", &opts());
    assert_eq!(fresh, stored);
}
