//! XLSX workbooks, read with calamine. The archive is in memory (a ZIP needs random access;
//! the byte limit bounds it) but the sheet is streamed cell by cell, so a sheet of many rows
//! stops at the row limit instead of being loaded whole.

use std::io::Cursor;

use calamine::{DataRef, Reader, SheetType, Xlsx, XlsxError};

use super::columns::{HeaderHint, LabelStyle};
use super::error::{ImportError, Result};
use super::report::{ImportContext, ImportReport};
use super::table::{RawRow, number_text};
use super::validate::Pipeline;
use super::{FileFormat, ImportOptions};

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
        let text = cell_text(cell.get_value());
        if text.is_empty() {
            continue;
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
