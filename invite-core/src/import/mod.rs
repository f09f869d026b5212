//! Audience import: reading an uploaded file of people into targets, with a precise account of
//! every row it did not take.
//!
//! Pure and synchronous: [`import`] takes any [`Read`], the caller's [`ImportOptions`] and
//! what the caller already knows ([`ImportContext`]: the task's targets and the suppression
//! list, as sets of [`dedupe_key`](crate::domain::TargetIdentifier::dedupe_key)s), and
//! returns an [`ImportReport`] or an [`ImportError`] that refuses the whole file.
//!
//! # Formats
//!
//! The format is [`ImportOptions::format`], or recognised from the first bytes
//! ([`FileFormat::sniff`]): a ZIP archive is XLSX, text starting with `[` or `{` is JSON,
//! anything else is CSV.
//!
//! - **CSV**, streamed record by record. The delimiter (`,` `;` tab `|`) is chosen from the
//!   first 64 KiB: the one that splits lines into the same number (two or more) of fields most
//!   often. Quoted fields (with delimiters, quotes and line breaks inside), LF, CRLF or CR
//!   line ends and blank lines are all read. The encoding is [`ImportOptions::encoding`], or
//!   recognised ([`TextEncoding::detect`]): UTF-8 with or without BOM, UTF-16 with BOM (Excel's
//!   "Unicode text"), or Windows-1251 (Excel's CSV on a Russian-language Windows). Other text
//!   that is not UTF-8 refuses the file ([`ImportError::InvalidUtf8`]).
//! - **XLSX**, with calamine: the first worksheet, or the one named in
//!   [`ImportOptions::sheet`]; cells are streamed. Numbers that are integers read as integer
//!   text (`79161234567`, never `7.9161234567E+10` or `79161234567.0`). A ZIP that is not a
//!   workbook is [`ImportError::NotXlsx`]; `.xls` and encrypted workbooks are
//!   [`ImportError::UnsupportedSpreadsheet`].
//! - **JSON**: an array of objects (their keys are the columns), an array of strings or
//!   numbers (one column, no header), or an object holding such an array under any key
//!   (`{"users": [...]}`; when several keys hold non-empty arrays, the one named `users`,
//!   `items`, `data`, `results`, `members`, … is taken, else the file is ambiguous). Numbers
//!   read as integer text like XLSX cells; nested values as compact JSON; `null` as empty.
//!
//! # Limits
//!
//! [`ImportLimits::max_bytes`] is enforced while reading: past it, reading stops with
//! [`ImportError::TooLarge`] and nothing beyond the limit is buffered. More non-empty data
//! rows than [`ImportLimits::max_rows`] is [`ImportError::TooManyRows`].
//!
//! Whatever a file says, the memory it takes is bounded by caps that refuse it whole:
//!
//! - a row of more than [`MAX_COLUMNS`] columns (CSV fields, worksheet columns holding a
//!   value, distinct keys of a JSON array's objects) is [`ImportError::TooManyColumns`];
//!   a CSV field or worksheet cell longer than [`MAX_CELL_BYTES`] is
//!   [`ImportError::CellTooLong`]. A CSV record is parsed into buffers that never grow past
//!   these, and no cell reference sizes an allocation;
//! - an XLSX archive is inflated once, into nothing, before it is read: more than
//!   [`MAX_INFLATED_BYTES`] in all, more than [`MAX_PART_BYTES`] in a part other than a
//!   worksheet, or an XML token (one cell's text, one tag) longer than
//!   [`MAX_XML_TOKEN_BYTES`] is [`ImportError::InflatedTooLarge`];
//! - the sample that decides the columns holds at most 101 rows and 4 MiB of text.
//!
//! Every format is read in time linear in its size. [`import`] is synchronous and CPU-bound:
//! callers on an async runtime run it on a blocking thread
//! (the service does, with a time budget).
//!
//! # Columns
//!
//! An explicit [`ColumnMapping`] wins: only its columns are read. Otherwise, on the first row
//! and the 100 after it:
//!
//! - **Header**: the first row is a header when one of its cells is a known column name, or
//!   when the rows below show identifier columns and none of its cells fits them.
//!   [`ImportOptions::has_header`] forces the answer. Names are matched ignoring case and
//!   anything but letters and digits (spaces, underscores, hyphens, a BOM…), in English and
//!   Russian: username / login / nick /
//!   ник / логин / никнейм; user_id / id / telegram_id / tg_id / айди; phone / phone_number /
//!   телефон / номер; first_name / имя; last_name / фамилия; full_name / name / фио; email /
//!   почта; and contact / user / контакт / пользователь for a column mixing all three kinds.
//!   When a role has several candidate columns the more specific name wins (`user_id` over
//!   `id`), then the leftmost.
//! - **Values**, when no header names an identifier column: a column whose values are mostly
//!   (80 %) `@names` or profile links is usernames; phone-like (`+…`, formatted, or 11–15
//!   digits) is phones; 5–10 digits is user ids; a mix of those is free-form identifiers; a
//!   lone column of bare words that are valid usernames is usernames.
//!
//! # Rows
//!
//! Each row is checked with the core identifier rules for [`ImportOptions::platform`]:
//! `Username::parse`, `PlatformUserId::parse`, `Phone::parse` with
//! [`NormalizeOptions::default_country`], or `TargetIdentifier::parse` for a free-form column.
//! A row with several identifiers is a target by its username, else its user id, else its
//! phone (the first kind that is valid); an invalid identifier is only an error when the row
//! has no valid one. Names and e-mail are kept trimmed, cut to 256 characters.
//!
//! Row numbers are those the user sees: CSV lines from 1, header included, blank lines
//! counted (a record spanning lines has the number of its first line); worksheet rows from 1;
//! JSON elements by position in their array, from 1.
//!
//! # Counting
//!
//! - A row whose cells are all blank (and a `null` JSON element) is skipped and not counted.
//!   The header is not counted.
//! - Every other row is exactly one of: **valid** (a target), **invalid** (a [`RowError`]),
//!   **duplicate** (its person was on an earlier row — `duplicate_in_file` — or is already a
//!   target of the task — `duplicate_existing` — or was reached successfully in the same
//!   channel within the de-duplication window — `duplicate_reached`, from
//!   [`ImportContext::reached`]), or **suppressed** (on the suppression list).
//!   So `rows == valid + invalid + duplicate + suppressed`, always.
//! - A row is checked against every valid identifier it holds: a row naming both a suppressed
//!   phone and a username is suppressed, and later rows with that username are too.
//! - `errors` keeps the first [`ImportLimits::max_errors`] row errors, `error_total` counts
//!   them all; `skipped` keeps as many duplicate and suppressed rows. Values in errors are cut
//!   to [`MAX_ERROR_VALUE_CHARS`] characters.

use std::io::Read;
use std::time::Duration;

use crate::domain::{NormalizeOptions, Platform, TargetSource};

mod columns;
mod delimited;
mod error;
mod input;
mod json;
mod report;
mod table;
mod validate;
mod xlsx;

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use columns::{ColumnMapping, ColumnRef, ColumnRole, ColumnUse, Detection};
pub use delimited::DELIMITERS;
pub use error::{ImportError, Result};
pub use input::{FileFormat, TextEncoding};
pub use report::{
    ImportContext, ImportReport, KeySet, MAX_ERROR_VALUE_CHARS, RowError, SkipReason, SkippedRow,
};
pub use xlsx::{MAX_INFLATED_BYTES, MAX_PART_BYTES, MAX_XML_TOKEN_BYTES};

/// Most columns read from a row: CSV fields, worksheet columns holding a value, distinct
/// keys of a JSON array's objects. More refuses the file ([`ImportError::TooManyColumns`]).
pub const MAX_COLUMNS: usize = 256;

/// Longest cell (CSV field, worksheet cell): 128 KiB, Excel's own limit of 32 767 characters
/// at four bytes each. Longer refuses the file ([`ImportError::CellTooLong`]).
pub const MAX_CELL_BYTES: usize = 128 * 1024;

/// Largest file accepted by default: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Size limits of one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Largest input, in bytes.
    pub max_bytes: u64,
    /// Most non-empty data rows.
    pub max_rows: u64,
    /// Most row errors (and skipped rows) listed in the report; all are counted.
    pub max_errors: usize,
    /// The time the use cases give one file's reading, waiting for a reader included; past
    /// it the request gets [`ImportError::TimedOut`]. (The read itself, bounded by the caps,
    /// runs to its end on its blocking thread.) [`import`] itself does not watch the time.
    pub max_read_time: Duration,
    /// Files the use cases read at once; more wait (within `max_read_time`).
    pub max_concurrent_reads: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_rows: 1_000_000,
            max_errors: 100,
            max_read_time: Duration::from_secs(20),
            max_concurrent_reads: 4,
        }
    }
}

/// How to read a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The platform whose identifier rules apply.
    pub platform: Platform,
    /// Phone normalisation (the country of national numbers).
    pub normalize: NormalizeOptions,
    /// Recorded on every target.
    pub source: TargetSource,
    /// The format; `None` recognises it from the content.
    pub format: Option<FileFormat>,
    /// The CSV delimiter; `None` detects it.
    pub delimiter: Option<u8>,
    /// The character encoding of a CSV file; `None` detects it ([`TextEncoding::detect`]).
    pub encoding: Option<TextEncoding>,
    /// The worksheet of an XLSX file; `None` takes the first.
    pub sheet: Option<String>,
    /// Whether the first row of a CSV file or worksheet is a header; `None` detects it. (JSON
    /// objects always name their columns; an array of strings never has a header.)
    pub has_header: Option<bool>,
    /// Explicit columns; `None` detects them.
    pub mapping: Option<ColumnMapping>,
    /// Size limits.
    pub limits: ImportLimits,
}

impl ImportOptions {
    /// Options for a file uploaded for `platform`: everything detected, default limits, no
    /// default country.
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            normalize: NormalizeOptions::default(),
            source: TargetSource::FileUpload,
            format: None,
            delimiter: None,
            encoding: None,
            sheet: None,
            has_header: None,
            mapping: None,
            limits: ImportLimits::default(),
        }
    }
}

/// Reads a whole file into a report. See the module docs for the rules.
#[tracing::instrument(skip_all, fields(platform = %opts.platform))]
pub fn import<R: Read>(
    reader: R,
    opts: &ImportOptions,
    ctx: ImportContext<'_>,
) -> Result<ImportReport> {
    let mut input = input::LimitedReader::new(reader, opts.limits.max_bytes);
    let mut head = Vec::with_capacity(input::PREFIX_LEN);
    let limit = input.limit();
    input::fill(&mut input, &mut head, input::PREFIX_LEN, limit)?;
    let format = match opts.format {
        Some(f) => f,
        None => FileFormat::sniff(&head)?,
    };
    match format {
        FileFormat::Csv => delimited::read(input, head, opts, ctx),
        FileFormat::Xlsx => {
            input::read_rest(&mut input, &mut head)?;
            xlsx::read(&head, opts, ctx)
        }
        FileFormat::Json => {
            input::read_rest(&mut input, &mut head)?;
            json::read(&head, opts, ctx)
        }
    }
}

/// [`import`] over bytes already in memory. A workbook or JSON document within the byte
/// limit is read where it is, not copied into a buffer first.
pub fn import_bytes(
    bytes: &[u8],
    opts: &ImportOptions,
    ctx: ImportContext<'_>,
) -> Result<ImportReport> {
    let fits = bytes.len() as u64 <= opts.limits.max_bytes;
    let format = match opts.format {
        Some(f) => Ok(f),
        None => FileFormat::sniff(&bytes[..bytes.len().min(input::PREFIX_LEN)]),
    };
    match format {
        Ok(FileFormat::Xlsx) if fits => xlsx::read(bytes, opts, ctx),
        Ok(FileFormat::Json) if fits => json::read(bytes, opts, ctx),
        // CSV streams anyway; errors and oversized files are told as `import` tells them.
        _ => import(bytes, opts, ctx),
    }
}
