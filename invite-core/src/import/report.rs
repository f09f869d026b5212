//! What an import found: the targets, the counts, and the rows it did not take.

use std::collections::{BTreeSet, HashSet};
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

use super::columns::{ColumnUse, Detection};
use super::input::{FileFormat, TextEncoding};
use crate::domain::NewTarget;

/// Longest value, in characters, repeated in a [`RowError`]; longer ones end with `…`.
pub const MAX_ERROR_VALUE_CHARS: usize = 100;

/// A row that could not become a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Row number as the user sees it (see the module docs).
    pub row: u64,
    /// The column's label (header name, `column N` or a spreadsheet letter); empty when the
    /// row as a whole is wrong.
    pub column: String,
    /// The offending value, cut to [`MAX_ERROR_VALUE_CHARS`].
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// Why a valid row was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// The same person appears on an earlier row of the file.
    DuplicateInFile {
        /// That earlier row.
        first_row: u64,
    },
    /// The person is already a target of the task.
    AlreadyInTask,
    /// The user already reached the person successfully in the same channel recently (the
    /// cross-task de-duplication window).
    ReachedRecently,
    /// The person is on the suppression list.
    Suppressed,
}

/// A valid row that was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// Row number as the user sees it.
    pub row: u64,
    /// The person, normalised (`@name`, id or `+phone`).
    pub identifier: String,
    /// Why.
    pub reason: SkipReason,
}

/// The outcome of reading one file. Counting rule, always true:
/// `rows == valid + invalid + duplicate + suppressed`, with
/// `duplicate == duplicate_in_file + duplicate_existing + duplicate_reached` and `valid == targets.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The format read.
    pub format: FileFormat,
    /// The CSV delimiter used.
    pub delimiter: Option<char>,
    /// The character encoding a CSV file was read in.
    #[serde(default)]
    pub encoding: Option<TextEncoding>,
    /// The worksheet read.
    pub sheet: Option<String>,
    /// Whether column names came from a header: the first row, or JSON object keys.
    pub header: bool,
    /// How the identifier columns were found.
    pub detection: Detection,
    /// The columns read, and as what.
    pub columns: Vec<ColumnUse>,
    /// Non-empty data rows (the header and blank rows are not counted).
    pub rows: u64,
    /// Rows that became targets.
    pub valid: u64,
    /// Rows refused (see `errors`).
    pub invalid: u64,
    /// Valid rows naming someone already seen, in the file or in the task.
    pub duplicate: u64,
    /// Of `duplicate`: seen on an earlier row of the file.
    pub duplicate_in_file: u64,
    /// Of `duplicate`: already a target of the task.
    pub duplicate_existing: u64,
    /// Of `duplicate`: reached successfully in the same channel within the de-duplication
    /// window ([`ImportContext::reached`]).
    #[serde(default)]
    pub duplicate_reached: u64,
    /// Valid rows naming someone on the suppression list.
    pub suppressed: u64,
    /// The targets, in file order.
    pub targets: Vec<NewTarget>,
    /// The first row errors, in file order (at most the configured number).
    pub errors: Vec<RowError>,
    /// Every row error (equal to `invalid`).
    pub error_total: u64,
    /// The first duplicate and suppressed rows, in file order (at most the configured number).
    pub skipped: Vec<SkippedRow>,
}

impl ImportReport {
    /// Whether the counting rule holds (it always should).
    pub fn is_consistent(&self) -> bool {
        self.rows == self.valid + self.invalid + self.duplicate + self.suppressed
            && self.duplicate
                == self.duplicate_in_file + self.duplicate_existing + self.duplicate_reached
            && self.valid == self.targets.len() as u64
            && self.error_total == self.invalid
    }
}

/// A set of [`dedupe_key`](crate::domain::TargetIdentifier::dedupe_key)s the caller
/// already has: the task's targets, or the suppression list.
pub trait KeySet {
    /// Whether `key` is in the set.
    fn contains_key(&self, key: &str) -> bool;
}

impl<S: BuildHasher> KeySet for HashSet<String, S> {
    fn contains_key(&self, key: &str) -> bool {
        self.contains(key)
    }
}

impl KeySet for BTreeSet<String> {
    fn contains_key(&self, key: &str) -> bool {
        self.contains(key)
    }
}

/// The empty set.
impl KeySet for () {
    fn contains_key(&self, _key: &str) -> bool {
        false
    }
}

/// What the caller already knows about the people in the file.
#[derive(Clone, Copy)]
pub struct ImportContext<'a> {
    /// Dedupe keys of the task's existing targets.
    pub existing: &'a dyn KeySet,
    /// Dedupe keys of the suppression list (for the task's owner and platform).
    pub suppressed: &'a dyn KeySet,
    /// Dedupe keys of people the user already reached successfully in the task's channel
    /// within the de-duplication window; they count as duplicates.
    pub reached: &'a dyn KeySet,
}

impl ImportContext<'_> {
    /// No existing targets, nobody suppressed.
    pub const EMPTY: ImportContext<'static> = ImportContext {
        existing: &(),
        suppressed: &(),
        reached: &(),
    };
}

impl Default for ImportContext<'_> {
    fn default() -> Self {
        ImportContext::EMPTY
    }
}

impl std::fmt::Debug for ImportContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportContext").finish_non_exhaustive()
    }
}

/// `value` cut to [`MAX_ERROR_VALUE_CHARS`] characters, with `…` when cut.
pub(crate) fn truncate_value(value: &str) -> String {
    match value.char_indices().nth(MAX_ERROR_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_on_char_boundaries() {
        assert_eq!(truncate_value("short"), "short");
        let long = "я".repeat(150);
        let cut = truncate_value(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_VALUE_CHARS + 1);
        assert!(cut.ends_with('…'));
        let exact = "x".repeat(MAX_ERROR_VALUE_CHARS);
        assert_eq!(truncate_value(&exact), exact);
    }
}
