//! XLSX workbooks, read with calamine. The archive is in memory (a ZIP needs random access;
//! the byte limit bounds it) but the sheet is streamed cell by cell, so a sheet of many rows
//! stops at the row limit instead of being loaded whole.
//!
//! # Hostile workbooks
//!
//! A ZIP's parts inflate far beyond the upload's size, and calamine holds some of them whole
//! (the shared strings) or one XML event at a time (a cell's text, however long). So before
//! calamine sees the archive, every part is inflated once through a counting sink
//! ([`scan`]): the parts together may not pass [`MAX_INFLATED_BYTES`], a part other than a
//! worksheet (shared strings, styles, the workbook) may not pass [`MAX_PART_BYTES`], and in
//! an XML part no run of bytes without a `<` (one text node or one tag) may pass
//! [`MAX_XML_TOKEN_BYTES`]; `<!` markup (DTDs, CDATA, comments), which Excel never writes
//! and which would escape that measure, is refused. Any of these is
//! [`ImportError::InflatedTooLarge`].
//!
//! Cell references are never used to size anything: a cell whose column is past
//! [`MAX_COLUMNS`] (or past `XFD`, or whose row is past 1 048 576) refuses the file with
//! [`ImportError::TooManyColumns`] or [`ImportError::InvalidXlsx`]; empty cells are skipped
//! wherever they are. A reference long enough to overflow calamine's arithmetic wraps in a
//! release build (then the bounds apply) and panics in a debug build; the panic is caught
//! and reported as [`ImportError::InvalidXlsx`].

use std::io::{self, Cursor};
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{DataRef, Reader, SheetType, Xlsx, XlsxError};

use super::columns::{HeaderHint, LabelStyle};
use super::error::{ImportError, Result};
use super::report::{ImportContext, ImportReport};
use super::table::{RawRow, number_text};
use super::validate::Pipeline;
use super::{FileFormat, ImportOptions, MAX_CELL_BYTES, MAX_COLUMNS};

/// Most bytes all parts of a workbook may inflate to together: 256 MiB.
pub const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;

/// Most bytes one part other than a worksheet (the shared strings, styles, the workbook) may
/// inflate to: 32 MiB. calamine holds these whole: tiny shared strings just under the cap
/// take about 75 MiB of heap.
pub const MAX_PART_BYTES: u64 = 32 * 1024 * 1024;

/// Longest run of an XML part without a `<` (one cell's text, one tag): 1 MiB. Excel caps a
/// cell at 32 767 characters.
pub const MAX_XML_TOKEN_BYTES: u64 = 1024 * 1024;

/// Most entries in the archive.
const MAX_ENTRIES: usize = 10_000;

/// Last column of a worksheet (`XFD`), from 1.
const SHEET_COLUMNS: u32 = 16_384;

/// Last row of a worksheet, from 1.
const SHEET_ROWS: u32 = 1_048_576;

/// Counts what is written to it and watches the XML's token lengths, failing past the caps.
pub(crate) struct Meter<'a> {
    part: &'a str,
    xml: bool,
    /// Bytes of this part.
    bytes: u64,
    /// The part's own cap.
    part_limit: u64,
    /// Bytes of the parts before this one.
    before: u64,
    /// Bytes since the last `<`.
    run: u64,
    /// The previous byte was `<`.
    after_lt: bool,
    refusal: Option<ImportError>,
}

impl Meter<'_> {
    /// A meter of a worksheet after `before` bytes of other parts.
    #[cfg(test)]
    pub(crate) fn for_test(before: u64) -> Self {
        Meter {
            part: "xl/worksheets/sheet1.xml",
            xml: true,
            bytes: 0,
            part_limit: u64::MAX,
            before,
            run: 0,
            after_lt: false,
            refusal: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn refusal(&self) -> Option<ImportError> {
        self.refusal.clone()
    }

    fn refuse(&mut self, part: String, limit: u64) -> io::Error {
        self.refusal = Some(ImportError::InflatedTooLarge { part, limit });
        io::Error::other("inflation cap")
    }
}

impl io::Write for Meter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        if self.before + self.bytes > MAX_INFLATED_BYTES {
            return Err(self.refuse("the whole archive".to_owned(), MAX_INFLATED_BYTES));
        }
        if self.bytes > self.part_limit {
            let part = self.part.to_owned();
            return Err(self.refuse(part, self.part_limit));
        }
        if self.xml {
            for &b in buf {
                if self.after_lt && b == b'!' {
                    let part = format!("{}: <! markup is not read", self.part);
                    return Err(self.refuse(part, MAX_XML_TOKEN_BYTES));
                }
                self.after_lt = b == b'<';
                if b == b'<' {
                    self.run = 0;
                } else {
                    self.run += 1;
                    if self.run > MAX_XML_TOKEN_BYTES {
                        let part = format!("one cell or tag of {}", self.part);
                        return Err(self.refuse(part, MAX_XML_TOKEN_BYTES));
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn zip_error(e: impl std::fmt::Display) -> ImportError {
    ImportError::InvalidXlsx(format!("damaged ZIP archive ({e})"))
}

/// Inflates every part of the archive once, into nothing, and refuses it past the caps (see
/// the module docs). Memory stays at the inflater's window whatever the parts hold.
pub(crate) fn scan(bytes: &[u8]) -> Result<()> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    if archive.len() > MAX_ENTRIES {
        return Err(ImportError::InflatedTooLarge {
            part: format!("more than {MAX_ENTRIES} entries"),
            limit: MAX_INFLATED_BYTES,
        });
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        if entry.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let lower = name.to_ascii_lowercase();
        let sheet = lower.starts_with("xl/worksheets/");
        let mut meter = Meter {
            part: &name,
            xml: lower.ends_with(".xml") || lower.ends_with(".rels"),
            bytes: 0,
            part_limit: if sheet { u64::MAX } else { MAX_PART_BYTES },
            before: total,
            run: 0,
            after_lt: false,
            refusal: None,
        };
        // The declared size is only a hint; the count is of what actually comes out.
        if entry.size() > MAX_INFLATED_BYTES.saturating_sub(total) {
            return Err(ImportError::InflatedTooLarge {
                part: "the whole archive".to_owned(),
                limit: MAX_INFLATED_BYTES,
            });
        }
        if let Err(e) = io::copy(&mut entry, &mut meter) {
            return Err(meter.refusal.take().unwrap_or_else(|| zip_error(e)));
        }
        total += meter.bytes;
    }
    Ok(())
}

/// A cell as text. Numbers that are integers come out as integer text, so ids and phones
/// typed as numbers read as the user typed them.
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(d) => number_text(d.as_f64()),
        DataRef::Error(e) => e.to_string(),
    }
}

/// Whether `bytes` (a ZIP archive) names the part every XLSX workbook has.
fn has_workbook_part(bytes: &[u8]) -> bool {
    const PART: &[u8] = b"xl/workbook.xml";
    bytes
        .windows(PART.len())
        .any(|w| w.eq_ignore_ascii_case(PART))
}

fn open_error(err: XlsxError, bytes: &[u8]) -> ImportError {
    match err {
        XlsxError::Password => ImportError::UnsupportedSpreadsheet,
        XlsxError::Zip(e) => ImportError::InvalidXlsx(format!("damaged ZIP archive ({e})")),
        _ if !has_workbook_part(bytes) => ImportError::NotXlsx,
        other => ImportError::InvalidXlsx(other.to_string()),
    }
}

/// Reads one worksheet: `opts.sheet` (exact name, else ignoring case and surrounding spaces),
/// or the first worksheet.
pub(crate) fn read(
    bytes: &[u8],
    opts: &ImportOptions,
    ctx: ImportContext<'_>,
) -> Result<ImportReport> {
    scan(bytes)?;
    catch_unwind(AssertUnwindSafe(|| read_scanned(bytes, opts, ctx))).unwrap_or_else(|_| {
        tracing::warn!("calamine panicked on an uploaded workbook");
        Err(ImportError::InvalidXlsx(
            "a cell reference is out of the sheet's bounds".to_owned(),
        ))
    })
}

fn read_scanned(
    bytes: &[u8],
    opts: &ImportOptions,
    ctx: ImportContext<'_>,
) -> Result<ImportReport> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| open_error(e, bytes))?;
    let worksheets: Vec<String> = workbook
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let name = match &opts.sheet {
        Some(want) => worksheets
            .iter()
            .find(|n| *n == want)
            .or_else(|| {
                worksheets
                    .iter()
                    .find(|n| n.trim().to_lowercase() == want.trim().to_lowercase())
            })
            .cloned()
            .ok_or_else(|| ImportError::SheetNotFound {
                name: want.clone(),
                available: worksheets.clone(),
            })?,
        None => worksheets.first().cloned().ok_or(ImportError::NoSheet)?,
    };

    let mut pipeline = Pipeline::new(
        FileFormat::Xlsx,
        HeaderHint::FirstRow,
        LabelStyle::Letters,
        opts,
        ctx,
    );
    pipeline.set_sheet(name.clone());
    let mut cells = workbook
        .worksheet_cells_reader(&name)
        .map_err(|e| ImportError::InvalidXlsx(e.to_string()))?;
    let mut current: Option<(u32, Vec<String>)> = None;
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| ImportError::InvalidXlsx(e.to_string()))?
    {
        let (row, col) = cell.get_position();
        if row >= SHEET_ROWS || col >= SHEET_COLUMNS {
            return Err(ImportError::InvalidXlsx(
                "a cell reference is out of the sheet's bounds (XFD1048576)".to_owned(),
            ));
        }
        let text = cell_text(cell.get_value());
        if text.is_empty() {
            continue;
        }
        if text.len() > MAX_CELL_BYTES {
            return Err(ImportError::CellTooLong {
                row: u64::from(row) + 1,
                limit: MAX_CELL_BYTES,
            });
        }
        if col as usize >= MAX_COLUMNS {
            return Err(ImportError::TooManyColumns {
                row: u64::from(row) + 1,
                limit: MAX_COLUMNS,
            });
        }
        if current.as_ref().is_some_and(|(r, _)| *r != row)
            && let Some((r, values)) = current.take()
        {
            pipeline.push(RawRow::new(u64::from(r) + 1, values))?;
        }
        let (_, values) = current.get_or_insert_with(|| (row, Vec::new()));
        let col = col as usize;
        if values.len() <= col {
            values.resize(col + 1, String::new());
        }
        values[col] = text;
    }
    if let Some((r, values)) = current {
        pipeline.push(RawRow::new(u64::from(r) + 1, values))?;
    }
    pipeline.finish()
}
