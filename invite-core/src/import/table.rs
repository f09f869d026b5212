//! The row every parser produces, whatever the format.

/// One row of a file, as text cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRow {
    /// The row number the user sees (see the module docs).
    pub number: u64,
    /// The cells, in column order.
    pub cells: Vec<String>,
    /// Why the row cannot be read as a row of the table (a JSON element of the wrong shape).
    pub malformed: Option<String>,
}

impl RawRow {
    pub(crate) fn new(number: u64, cells: Vec<String>) -> Self {
        Self {
            number,
            cells,
            malformed: None,
        }
    }

    /// A row that is there but cannot be read; it counts as an invalid row.
    pub(crate) fn malformed(number: u64, value: String, reason: String) -> Self {
        Self {
            number,
            cells: vec![value],
            malformed: Some(reason),
        }
    }

    /// Every cell is blank (only whitespace). Such rows are skipped and not counted.
    pub(crate) fn is_blank(&self) -> bool {
        self.malformed.is_none() && self.cells.iter().all(|c| c.trim().is_empty())
    }
}

/// Formats a spreadsheet or JSON number as people write it: integral values as integer text
/// (`79161234567`, never `7.9161234567E10` or `79161234567.0`), others as the shortest
/// decimal that reads back the same.
pub(crate) fn number_text(f: f64) -> String {
    // Integers up to 2^53 are exact in an f64; beyond that the digits are not the user's.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_people_write_them() {
        assert_eq!(number_text(79_161_234_567.0), "79161234567");
        assert_eq!(number_text(1.2345e10), "12345000000");
        assert_eq!(number_text(123.0), "123");
        assert_eq!(number_text(-5.0), "-5");
        assert_eq!(number_text(0.5), "0.5");
        assert_eq!(number_text(1e300), f64::to_string(&1e300));
        assert_eq!(number_text(f64::NAN), "NaN");
    }
}
