//! Rows to targets: the sample that decides the columns, then each row validated with the
//! core identifier rules, de-duplicated and checked against the suppression list.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::columns::{self, ColumnRole, HeaderHint, LabelStyle, Layout, ResolveOptions};
use super::error::{ImportError, Result};
use super::report::{
    ImportContext, ImportReport, RowError, SkipReason, SkippedRow, truncate_value,
};
use super::table::RawRow;
use super::{FileFormat, ImportOptions, TextEncoding};
use crate::domain::{NewTarget, Phone, PlatformUserId, TargetIdentifier, Username};

/// Data rows looked at, after the first row, to decide the header and the columns.
const SAMPLE_ROWS: usize = 100;

/// Most bytes of text (and cell overhead) the sample may hold; past it the layout is decided
/// on fewer rows. Without it a worksheet whose cells all point to one long shared string
/// would multiply that string by the sample's size.
const SAMPLE_BYTES: usize = 4 * 1024 * 1024;

/// Longest name or e-mail kept, in characters.
const MAX_TEXT_CHARS: usize = 256;

/// A row, borrowed.
#[derive(Clone, Copy)]
struct RowRef<'r> {
    number: u64,
    cells: &'r [String],
    malformed: Option<&'r str>,
}

impl<'r> RowRef<'r> {
    fn of(row: &'r RawRow) -> Self {
        Self {
            number: row.number,
            cells: &row.cells,
            malformed: row.malformed.as_deref(),
        }
    }
}

enum State {
    /// The rows so far, and their size in bytes.
    Sampling(Vec<RawRow>, usize),
    Ready(Layout),
}

/// What a row costs in memory, near enough.
fn row_bytes(cells: &[String]) -> usize {
    cells
        .iter()
        .map(|c| c.len() + std::mem::size_of::<String>())
        .sum()
}

/// Takes rows one by one from a parser and builds the report.
pub(crate) struct Pipeline<'a> {
    opts: &'a ImportOptions,
    ctx: ImportContext<'a>,
    hint: HeaderHint,
    style: LabelStyle,
    state: State,
    report: ImportReport,
    /// Dedupe key → first row it was seen on.
    seen: HashMap<String, u64>,
    /// Keys of suppressed rows: another identifier of a suppressed person is suppressed too.
    suppressed_here: HashSet<String>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn new(
        format: FileFormat,
        hint: HeaderHint,
        style: LabelStyle,
        opts: &'a ImportOptions,
        ctx: ImportContext<'a>,
    ) -> Self {
        Self {
            opts,
            ctx,
            hint,
            style,
            state: State::Sampling(Vec::new(), 0),
            report: ImportReport {
                format,
                delimiter: None,
                encoding: None,
                sheet: None,
                header: false,
                detection: columns::Detection::Header,
                columns: Vec::new(),
                rows: 0,
                valid: 0,
                invalid: 0,
                duplicate: 0,
                duplicate_in_file: 0,
                duplicate_existing: 0,
                duplicate_reached: 0,
                suppressed: 0,
                targets: Vec::new(),
                errors: Vec::new(),
                error_total: 0,
                skipped: Vec::new(),
            },
            seen: HashMap::new(),
            suppressed_here: HashSet::new(),
        }
    }

    pub(crate) fn set_delimiter(&mut self, delimiter: u8) {
        self.report.delimiter = Some(char::from(delimiter));
    }

    pub(crate) fn set_encoding(&mut self, encoding: TextEncoding) {
        self.report.encoding = Some(encoding);
    }

    pub(crate) fn set_sheet(&mut self, sheet: String) {
        self.report.sheet = Some(sheet);
    }

    /// Adds the next row of the file. Blank rows are dropped here, uncounted.
    pub(crate) fn push(&mut self, row: RawRow) -> Result<()> {
        if row.is_blank() {
            return Ok(());
        }
        match &mut self.state {
            State::Ready(_) => self.process(RowRef::of(&row)),
            State::Sampling(buf, bytes) => {
                *bytes += row_bytes(&row.cells);
                buf.push(row);
                self.settle_if_sampled()
            }
        }
    }

    /// Like [`push`](Self::push), for a parser that reuses its cell buffer.
    pub(crate) fn push_cells(&mut self, number: u64, cells: &[String]) -> Result<()> {
        if cells.iter().all(|c| c.trim().is_empty()) {
            return Ok(());
        }
        match &mut self.state {
            State::Ready(_) => self.process(RowRef {
                number,
                cells,
                malformed: None,
            }),
            State::Sampling(buf, bytes) => {
                *bytes += row_bytes(cells);
                buf.push(RawRow::new(number, cells.to_vec()));
                self.settle_if_sampled()
            }
        }
    }

    fn settle_if_sampled(&mut self) -> Result<()> {
        match &self.state {
            State::Sampling(buf, bytes) if buf.len() > SAMPLE_ROWS || *bytes > SAMPLE_BYTES => {
                self.settle()
            }
            _ => Ok(()),
        }
    }

    /// Decides the layout from the buffered rows and processes them.
    fn settle(&mut self) -> Result<()> {
        let State::Sampling(buf, _) =
            std::mem::replace(&mut self.state, State::Sampling(Vec::new(), 0))
        else {
            return Ok(());
        };
        if buf.is_empty() {
            return Err(ImportError::Empty);
        }
        let layout = columns::resolve(
            &buf,
            &self.hint,
            ResolveOptions {
                platform: self.opts.platform,
                has_header: self.opts.has_header,
                mapping: self.opts.mapping.as_ref(),
                style: self.style,
            },
        )?;
        self.report.header = layout.header_row || matches!(self.hint, HeaderHint::Given(_));
        self.report.detection = layout.detection;
        self.report.columns = layout.uses();
        let skip = usize::from(layout.header_row);
        self.state = State::Ready(layout);
        for row in buf.iter().skip(skip) {
            self.process(RowRef::of(row))?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<ImportReport> {
        if matches!(self.state, State::Sampling(..)) {
            self.settle()?;
        }
        if self.report.rows == 0 {
            return Err(ImportError::Empty);
        }
        debug_assert!(self.report.is_consistent());
        tracing::debug!(
            format = %self.report.format,
            rows = self.report.rows,
            valid = self.report.valid,
            invalid = self.report.invalid,
            duplicate = self.report.duplicate,
            suppressed = self.report.suppressed,
            "import file read: {} rows, {} valid",
            self.report.rows,
            self.report.valid
        );
        Ok(self.report)
    }

    fn process(&mut self, row: RowRef<'_>) -> Result<()> {
        let State::Ready(layout) = &self.state else {
            return Ok(());
        };
        self.report.rows += 1;
        if self.report.rows > self.opts.limits.max_rows {
            return Err(ImportError::TooManyRows {
                limit: self.opts.limits.max_rows,
            });
        }
        if let Some(reason) = row.malformed {
            let value = row.cells.first().map_or("", String::as_str);
            let error = RowError {
                row: row.number,
                column: String::new(),
                value: truncate_value(value),
                reason: reason.to_owned(),
            };
            self.invalid(error);
            return Ok(());
        }
        match read_row(row, layout, self.opts) {
            Err(error) => self.invalid(error),
            Ok((target, keys)) => self.accept(row.number, target, keys),
        }
        Ok(())
    }

    fn invalid(&mut self, error: RowError) {
        self.report.invalid += 1;
        self.report.error_total += 1;
        if self.report.errors.len() < self.opts.limits.max_errors {
            self.report.errors.push(error);
        }
    }

    fn skip(&mut self, row: u64, target: &NewTarget, reason: SkipReason) {
        if self.report.skipped.len() < self.opts.limits.max_errors {
            self.report.skipped.push(SkippedRow {
                row,
                identifier: target.identifier.to_string(),
                reason,
            });
        }
    }

    fn accept(&mut self, row: u64, target: NewTarget, keys: Vec<String>) {
        let suppressed = keys.iter().any(|k| {
            self.ctx.suppressed.contains_key(k)
                || (!self.suppressed_here.is_empty() && self.suppressed_here.contains(k))
        });
        if suppressed {
            self.report.suppressed += 1;
            self.suppressed_here.extend(keys);
            self.skip(row, &target, SkipReason::Suppressed);
            return;
        }
        let existing = keys.iter().any(|k| self.ctx.existing.contains_key(k));
        let reached = !existing && keys.iter().any(|k| self.ctx.reached.contains_key(k));
        let mut first_row: Option<u64> = None;
        for key in keys {
            match self.seen.entry(key) {
                Entry::Occupied(e) => {
                    first_row = Some(first_row.map_or(*e.get(), |f| f.min(*e.get())));
                }
                Entry::Vacant(e) => {
                    e.insert(row);
                }
            }
        }
        if existing {
            self.report.duplicate += 1;
            self.report.duplicate_existing += 1;
            self.skip(row, &target, SkipReason::AlreadyInTask);
        } else if reached {
            self.report.duplicate += 1;
            self.report.duplicate_reached += 1;
            self.skip(row, &target, SkipReason::ReachedRecently);
        } else if let Some(first_row) = first_row {
            self.report.duplicate += 1;
            self.report.duplicate_in_file += 1;
            self.skip(row, &target, SkipReason::DuplicateInFile { first_row });
        } else {
            self.report.valid += 1;
            self.report.targets.push(target);
        }
    }
}

/// Parses one identifier cell as its column's role says.
fn parse_identifier(
    role: ColumnRole,
    value: &str,
    opts: &ImportOptions,
) -> std::result::Result<TargetIdentifier, crate::domain::IdentifierError> {
    let platform = opts.platform;
    let id = match role {
        ColumnRole::Username => TargetIdentifier::Username(Username::parse(value, platform)?),
        ColumnRole::UserId => TargetIdentifier::UserId(PlatformUserId::parse(value)?),
        ColumnRole::Phone => {
            TargetIdentifier::Phone(Phone::parse(value, opts.normalize.default_country)?)
        }
        _ => return TargetIdentifier::parse(value, platform, &opts.normalize),
    };
    id.check_platform(platform)
}

/// Preference among a row's identifiers: username, then user id, then phone.
fn kind_rank(id: &TargetIdentifier) -> u8 {
    match id {
        TargetIdentifier::Username(_) => 0,
        TargetIdentifier::UserId(_) => 1,
        TargetIdentifier::Phone(_) => 2,
    }
}

fn text_cell(row: RowRef<'_>, layout: &Layout, role: ColumnRole) -> Option<String> {
    let cell = row.cells.get(layout.column(role)?)?.trim();
    if cell.is_empty() {
        return None;
    }
    Some(match cell.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => cell[..cut].to_owned(),
        None => cell.to_owned(),
    })
}

/// A row's target and the dedupe keys of every valid identifier it holds, or why it has none.
fn read_row(
    row: RowRef<'_>,
    layout: &Layout,
    opts: &ImportOptions,
) -> std::result::Result<(NewTarget, Vec<String>), RowError> {
    let mut found: Vec<TargetIdentifier> = Vec::new();
    let mut first_error: Option<RowError> = None;
    for role in ColumnRole::IDENTIFIERS {
        let Some(col) = layout.column(role) else {
            continue;
        };
        let value = row.cells.get(col).map_or("", |c| c.trim());
        if value.is_empty() {
            continue;
        }
        // A column whose kind was guessed from its values, not declared by a header or a
        // mapping, is read per cell: a bare number among usernames is a user id.
        let parsed = parse_identifier(role, value, opts).or_else(|e| {
            if layout.detection == columns::Detection::Values && role != ColumnRole::Identifier {
                parse_identifier(ColumnRole::Identifier, value, opts).map_err(|_| e)
            } else {
                Err(e)
            }
        });
        match parsed {
            Ok(id) => found.push(id),
            Err(e) if first_error.is_none() => {
                first_error = Some(RowError {
                    row: row.number,
                    column: layout.label(col).to_owned(),
                    value: truncate_value(value),
                    reason: e.to_string(),
                });
            }
            Err(_) => {}
        }
    }
    let Some(best) = found.iter().min_by_key(|id| kind_rank(id)).cloned() else {
        return Err(first_error.unwrap_or_else(|| RowError {
            row: row.number,
            column: ColumnRole::IDENTIFIERS
                .iter()
                .filter_map(|r| layout.column(*r))
                .map(|c| layout.label(c).to_owned())
                .collect::<Vec<_>>()
                .join(", "),
            value: String::new(),
            reason: "no username, user id or phone in this row".to_owned(),
        }));
    };
    let mut keys: Vec<String> = found.iter().map(TargetIdentifier::dedupe_key).collect();
    keys.sort();
    keys.dedup();
    let target = NewTarget {
        identifier: best,
        first_name: text_cell(row, layout, ColumnRole::FirstName),
        last_name: text_cell(row, layout, ColumnRole::LastName),
        full_name: text_cell(row, layout, ColumnRole::FullName),
        email: text_cell(row, layout, ColumnRole::Email),
        source: opts.source,
    };
    Ok((target, keys))
}
