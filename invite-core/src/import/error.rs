//! Why a whole file was refused. Problems with single rows are not errors of this kind: they
//! are [`RowError`](super::RowError)s inside the report.

/// Result of an import.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;

/// A file that cannot be imported at all. Every message is meant for the person who uploaded
/// the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file is larger than the caller's byte limit; reading stopped there.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A row holds more columns (CSV fields, worksheet columns, JSON object keys) than the
    /// importer reads.
    #[error("row {row} has more than {limit} columns; keep only the columns to import")]
    TooManyColumns {
        /// The row (CSV line, worksheet row, JSON element) where the limit was passed.
        row: u64,
        /// The limit ([`MAX_COLUMNS`](super::MAX_COLUMNS)).
        limit: usize,
    },
    /// A cell (CSV field, worksheet cell) longer than the importer reads.
    #[error("row {row} has a cell longer than {limit} bytes")]
    CellTooLong {
        /// The row (CSV line, worksheet row) of the cell.
        row: u64,
        /// The limit, in bytes ([`MAX_CELL_BYTES`](super::MAX_CELL_BYTES)).
        limit: usize,
    },
    /// An XLSX archive whose parts inflate past what the importer unpacks (a ZIP bomb, or
    /// a workbook far larger than any list of people).
    #[error("the XLSX workbook unpacks to more than {limit} bytes ({part})")]
    InflatedTooLarge {
        /// The part (or `the whole archive`) that passed the limit.
        part: String,
        /// The limit, in inflated bytes.
        limit: u64,
    },
    /// Reading the file took longer than the time the service gives one import.
    #[error("the file took longer than {seconds} s to read; split it or try again later")]
    TimedOut {
        /// The budget, in seconds.
        seconds: u64,
    },
    /// The file holds more data rows than the caller allows.
    #[error("the file has more than {limit} rows")]
    TooManyRows {
        /// The limit, in data rows.
        limit: u64,
    },
    /// The file has no data rows (it is empty, blank or holds only a header).
    #[error("the file has no data rows")]
    Empty,
    /// A text file (CSV, JSON) that is not UTF-8 (nor, for CSV, another encoding recognised or
    /// named).
    #[error(
        "the file is not valid UTF-8 text (row {row}); save it as UTF-8, or name its encoding \
         (windows-1251, utf-16le, utf-16be)"
    )]
    InvalidUtf8 {
        /// The row (CSV) or line (JSON) where the first invalid byte is.
        row: u64,
    },
    /// Broken JSON.
    #[error("the file is not valid JSON (line {line}, column {column}): {message}")]
    InvalidJson {
        /// Line of the error, from 1.
        line: u64,
        /// Column of the error, from 1.
        column: u64,
        /// What the JSON parser found.
        message: String,
    },
    /// Valid JSON of a shape that holds no list of people.
    #[error(
        "the JSON must be an array of objects or of strings, or an object holding one such array"
    )]
    JsonNotATable,
    /// A JSON object holding several non-empty arrays, none of them the obvious one.
    #[error("the JSON object holds several arrays ({}); keep only the list of people", keys.join(", "))]
    JsonAmbiguous {
        /// The keys of the arrays.
        keys: Vec<String>,
    },
    /// A ZIP archive that is not an XLSX workbook.
    #[error("the file is a ZIP archive but not an XLSX workbook")]
    NotXlsx,
    /// An XLSX workbook that cannot be read.
    #[error("the XLSX workbook cannot be read: {0}")]
    InvalidXlsx(String),
    /// An old binary Excel file (`.xls`) or an encrypted workbook.
    #[error(
        "the file is an Excel 97-2003 (.xls) or password-protected workbook; \
         save it as .xlsx without a password, or as CSV"
    )]
    UnsupportedSpreadsheet,
    /// The workbook has no worksheet of that name.
    #[error("the workbook has no sheet named {name:?} (sheets: {})", available.join(", "))]
    SheetNotFound {
        /// The requested name.
        name: String,
        /// The sheets the workbook has.
        available: Vec<String>,
    },
    /// The workbook has no worksheet at all.
    #[error("the workbook has no worksheet")]
    NoSheet,
    /// No column holds usernames, user ids or phone numbers.
    #[error(
        "no username, user id or phone column found (columns: {}); name the column in the \
         header or give a column mapping",
        column_list(columns)
    )]
    NoIdentifierColumn {
        /// The columns the file has, as labelled in the report.
        columns: Vec<String>,
    },
    /// The column mapping names a column the file does not have.
    #[error("the column mapping refers to {column:?}, which the file does not have")]
    ColumnNotFound {
        /// The column, as given in the mapping.
        column: String,
    },
    /// The column mapping maps no identifier column.
    #[error("the column mapping must name a username, user id, phone or identifier column")]
    MappingWithoutIdentifier,
    /// Reading the input failed (not a problem of the file's content).
    #[error("reading the file failed: {0}")]
    Read(String),
}

impl ImportError {
    /// Whether the file's content is at fault (an answer for its sender), as opposed to a
    /// failure to read it.
    pub const fn is_client_error(&self) -> bool {
        !matches!(self, Self::Read(_))
    }
}

/// Most column names an error lists; the others are counted.
pub const LISTED_COLUMNS: usize = 10;

/// `a, b, c and 253 more`: the first [`LISTED_COLUMNS`] names, each cut to
/// [`ECHO_CHARS`](crate::domain::ECHO_CHARS) characters, so that the message stays short
/// however wide the file.
fn column_list(columns: &[String]) -> String {
    let mut list: Vec<String> = columns
        .iter()
        .take(LISTED_COLUMNS)
        .map(|c| crate::domain::echo(c))
        .collect();
    if columns.len() > LISTED_COLUMNS {
        let rest = columns.len() - LISTED_COLUMNS;
        let last = list.pop().unwrap_or_default();
        list.push(format!("{last} and {rest} more"));
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_identifier_column_lists_a_few_names_and_counts_the_rest() {
        let few = ImportError::NoIdentifierColumn {
            columns: vec!["Имя".into(), "Комментарий".into()],
        };
        assert!(
            few.to_string().contains("(columns: Имя, Комментарий);"),
            "{few}"
        );
        let wide = ImportError::NoIdentifierColumn {
            columns: (1..=256)
                .map(|i| format!("col{i}-{}", "c".repeat(500)))
                .collect(),
        };
        let text = wide.to_string();
        assert!(text.contains("and 246 more);"), "{text}");
        assert!(text.contains("col10-"), "{text}");
        assert!(!text.contains("col11-"), "the 11th name is not listed");
        assert!(
            text.chars().count() < 1300,
            "{} characters",
            text.chars().count()
        );
    }
}
