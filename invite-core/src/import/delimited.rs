//! CSV and other delimited text, read as a stream: the delimiter is chosen from the first
//! 64 KiB, then records are parsed one by one and never held all at once.

use std::collections::VecDeque;
use std::io::{self, BufRead, Cursor, Read};

use csv::{ByteRecord, ReaderBuilder};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::columns::{HeaderHint, LabelStyle};
use super::error::{ImportError, Result};
use super::input::{LimitedReader, PREFIX_LEN, TextEncoding, fill, map_io};
use super::report::{ImportContext, ImportReport};
use super::validate::Pipeline;
use super::{FileFormat, ImportOptions, MAX_CELL_BYTES, MAX_COLUMNS};

/// Delimiters tried, in order of preference when they score the same.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Records of the sample looked at to choose the delimiter.
const SAMPLE_RECORDS: usize = 50;

/// Chooses the delimiter that splits the sample's records into the same number (two or more)
/// of fields most consistently; on a tie, the one giving more fields. Rows of empty cells
/// (`;;;`) count: they are the delimiter's work too. A file whose lines never split is one
/// column, read with `,`.
pub(crate) fn detect_delimiter(sample: &[u8]) -> u8 {
    let mut best: Option<(u8, f64, usize)> = None;
    for delimiter in DELIMITERS {
        let mut reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(sample);
        let mut record = ByteRecord::new();
        let mut counts: Vec<usize> = Vec::new();
        while counts.len() < SAMPLE_RECORDS {
            match reader.read_byte_record(&mut record) {
                Ok(true) => counts.push(record.len()),
                Ok(false) | Err(_) => break,
            }
        }
        if counts.is_empty() {
            continue;
        }
        let mut mode = (0usize, 0usize); // (fields, records with that many)
        for &c in &counts {
            let n = counts.iter().filter(|&&x| x == c).count();
            if n > mode.1 || (n == mode.1 && c > mode.0) {
                mode = (c, n);
            }
        }
        if mode.0 < 2 {
            continue;
        }
        let consistency = mode.1 as f64 / counts.len() as f64;
        let better = best.is_none_or(|(_, bc, bf)| {
            consistency > bc + 1e-9 || ((consistency - bc).abs() <= 1e-9 && mode.0 > bf)
        });
        if better {
            best = Some((delimiter, consistency, mode.0));
        }
    }
    best.map_or(b',', |(d, _, _)| d)
}

/// A reader that notes where lines break, so a record's line can be told from the byte
/// offset at which the CSV parser finished it. A break is `\n`, or `\r` not followed by `\n`.
#[derive(Debug)]
struct LineTracker<R> {
    inner: R,
    offset: u64,
    breaks: VecDeque<u64>,
    pending_cr: Option<u64>,
    breaks_passed: u64,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            breaks: VecDeque::new(),
            pending_cr: None,
            breaks_passed: 0,
        }
    }

    /// The line (from 1) of the byte before `end`: the last byte of a record, whose own
    /// terminator does not count.
    fn line_at(&mut self, end: u64) -> u64 {
        let last = end.saturating_sub(1);
        while self.breaks.front().is_some_and(|b| *b < last) {
            self.breaks.pop_front();
            self.breaks_passed += 1;
        }
        1 + self.breaks_passed
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if let Some(cr) = self.pending_cr.take() {
                self.breaks.push_back(cr);
            }
            return Ok(0);
        }
        let chunk = &buf[..n];
        if let Some(cr) = self.pending_cr.take()
            && chunk[0] != b'\n'
        {
            self.breaks.push_back(cr);
        }
        for (i, &b) in chunk.iter().enumerate() {
            let pos = self.offset + i as u64;
            match b {
                b'\n' => self.breaks.push_back(pos),
                b'\r' => match chunk.get(i + 1) {
                    Some(b'\n') => {}
                    Some(_) => self.breaks.push_back(pos),
                    None => self.pending_cr = Some(pos),
                },
                _ => {}
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Line breaks inside a field (only quoted fields have them).
fn breaks_in(field: &[u8]) -> u64 {
    let mut n = 0;
    for (i, &b) in field.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && field.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
    }
    n
}

/// Records parsed with `csv-core` into buffers that never grow past the caps: at most
/// [`MAX_COLUMNS`] fields (the field ends live in a fixed array), none longer than
/// [`MAX_CELL_BYTES`]; the text buffer grows only as a field needs it, so it is bounded by
/// the longest record of the file. (`csv::Reader` grows both without limit: 10 MiB of
/// commas is ten million fields.)
struct Records<R> {
    core: csv_core::Reader,
    input: io::BufReader<LineTracker<R>>,
    /// Bytes handed to the parser so far.
    offset: u64,
    /// The byte limit of the input, for [`ImportError::TooLarge`].
    limit: u64,
    out: Vec<u8>,
    ends: Box<[usize; MAX_COLUMNS]>,
    /// Fields of the current record.
    len: usize,
}

impl<R: Read> Records<R> {
    fn new(input: LineTracker<R>, delimiter: u8, limit: u64) -> Self {
        Self {
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input: io::BufReader::with_capacity(64 * 1024, input),
            offset: 0,
            limit,
            out: vec![0; 4096],
            ends: Box::new([0; MAX_COLUMNS]),
            len: 0,
        }
    }

    /// The line (from 1) of the last byte parsed.
    fn line(&mut self) -> u64 {
        self.input.get_mut().line_at(self.offset)
    }

    fn too_long(&mut self) -> ImportError {
        ImportError::CellTooLong {
            row: self.line(),
            limit: MAX_CELL_BYTES,
        }
    }

    /// Parses the next record; `false` at the end of the input.
    fn advance(&mut self) -> Result<bool> {
        use csv_core::ReadRecordResult as R;
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            let input = self.input.fill_buf().map_err(|e| map_io(&e, self.limit))?;
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            self.input.consume(nin);
            self.offset += nin as u64;
            outlen += nout;
            endlen += nend;
            match res {
                R::InputEmpty => {}
                R::OutputFull => {
                    let start = endlen.checked_sub(1).map_or(0, |i| self.ends[i]);
                    if outlen - start > MAX_CELL_BYTES {
                        return Err(self.too_long());
                    }
                    let grown = self.out.len() * 2;
                    self.out.resize(grown, 0);
                }
                R::OutputEndsFull => {
                    return Err(ImportError::TooManyColumns {
                        row: self.line(),
                        limit: MAX_COLUMNS,
                    });
                }
                R::Record => {
                    self.len = endlen;
                    let mut start = 0;
                    for &end in &self.ends[..endlen] {
                        if end - start > MAX_CELL_BYTES {
                            return Err(self.too_long());
                        }
                        start = end;
                    }
                    return Ok(true);
                }
                R::End => return Ok(false),
            }
        }
    }

    /// Fields of the current record.
    fn len(&self) -> usize {
        self.len
    }

    /// The fields of the current record, as bytes.
    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        let (ends, out) = (&self.ends[..self.len], &self.out);
        ends.iter().scan(0, move |start, &end| {
            let field = &out[*start..end];
            *start = end;
            Some(field)
        })
    }
}

/// Reads delimited text. `prefix` holds the first bytes already taken from `input`.
pub(crate) fn read<R: Read>(
    input: LimitedReader<R>,
    mut prefix: Vec<u8>,
    opts: &ImportOptions,
    ctx: ImportContext<'_>,
) -> Result<ImportReport> {
    let limit = input.limit();
    let encoding = opts
        .encoding
        .unwrap_or_else(|| TextEncoding::detect(&prefix, prefix.len() < PREFIX_LEN));
    if prefix.starts_with(encoding.bom()) {
        prefix.drain(..encoding.bom().len());
    }
    // From here on the text is UTF-8: other encodings are transcoded as they stream in, and
    // the sample for the delimiter is taken again from the transcoded text.
    let (prefix, rest): (Vec<u8>, Box<dyn Read + '_>) = if encoding == TextEncoding::Utf8 {
        (prefix, Box::new(input))
    } else {
        let mut decoder = DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding.encoding()))
            .build(Cursor::new(prefix).chain(input));
        let mut text = Vec::with_capacity(PREFIX_LEN);
        fill(&mut decoder, &mut text, PREFIX_LEN, limit)?;
        (text, Box::new(decoder))
    };
    let complete = prefix.len() < PREFIX_LEN;
    let delimiter = opts.delimiter.unwrap_or_else(|| {
        let sample = if complete {
            &prefix[..]
        } else {
            let end = prefix
                .iter()
                .rposition(|b| *b == b'\n')
                .unwrap_or(prefix.len());
            &prefix[..end]
        };
        detect_delimiter(sample)
    });
    let mut pipeline = Pipeline::new(
        FileFormat::Csv,
        HeaderHint::FirstRow,
        LabelStyle::Numbered,
        opts,
        ctx,
    );
    pipeline.set_delimiter(delimiter);
    pipeline.set_encoding(encoding);

    let mut records = Records::new(
        LineTracker::new(Cursor::new(prefix).chain(rest)),
        delimiter,
        limit,
    );
    let mut cells: Vec<String> = Vec::new();
    while records.advance()? {
        let end_line = records.line();
        let inner_breaks: u64 = records.fields().map(breaks_in).sum();
        let line = end_line.saturating_sub(inner_breaks).max(1);
        // The cell buffers are reused from record to record.
        let width = records.len();
        cells.truncate(width);
        cells.resize_with(width, String::new);
        for (cell, field) in cells.iter_mut().zip(records.fields()) {
            let text =
                std::str::from_utf8(field).map_err(|_| ImportError::InvalidUtf8 { row: line })?;
            cell.clear();
            cell.push_str(text);
        }
        pipeline.push_cells(line, &cells)?;
    }
    pipeline.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(detect_delimiter(b"a;b\n\"x, y\";2\n"), b';');
        assert_eq!(
            detect_delimiter(b"name;phone\nIvanov, Ivan;+7916\nPetrov;+7917\n"),
            b';'
        );
        assert_eq!(detect_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(detect_delimiter(b"a|b|c\n1|2|3\n"), b'|');
        assert_eq!(detect_delimiter(b"\"a,b\"|c\n\"1,2\"|3\n"), b'|');
        assert_eq!(detect_delimiter(b"@one\n@two\n"), b',');
        assert_eq!(detect_delimiter(b""), b',');
    }

    fn lines_of(data: &[u8]) -> Vec<u64> {
        let mut records = Records::new(LineTracker::new(data), b',', u64::MAX);
        let mut out = Vec::new();
        while records.advance().unwrap() {
            let inner: u64 = records.fields().map(breaks_in).sum();
            out.push(records.line() - inner);
        }
        out
    }

    fn first_error(data: &[u8]) -> ImportError {
        let mut records = Records::new(LineTracker::new(data), b',', u64::MAX);
        loop {
            match records.advance() {
                Ok(true) => {}
                Ok(false) => panic!("no error"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn columns_and_fields_are_capped() {
        let row = |n: usize| format!("{}\n", vec!["x"; n].join(","));
        let ok = format!("a,b\n{}", row(MAX_COLUMNS));
        assert_eq!(lines_of(ok.as_bytes()), vec![1, 2]);
        let wide = format!("a,b\n{}", row(MAX_COLUMNS + 1));
        assert_eq!(
            first_error(wide.as_bytes()),
            ImportError::TooManyColumns {
                row: 2,
                limit: MAX_COLUMNS
            }
        );
        // Ten thousand commas on one line: refused without a field per comma.
        let commas = vec![b','; 10_000];
        assert!(matches!(
            first_error(&commas),
            ImportError::TooManyColumns { row: 1, .. }
        ));
        let fits = format!("a,{}\n", "y".repeat(MAX_CELL_BYTES));
        assert_eq!(lines_of(fits.as_bytes()), vec![1]);
        for long in [
            format!("a,{}\n", "y".repeat(MAX_CELL_BYTES + 1)),
            format!("a\nb,\"{}\"", "y\n".repeat(MAX_CELL_BYTES)),
        ] {
            assert!(matches!(
                first_error(long.as_bytes()),
                ImportError::CellTooLong {
                    limit: MAX_CELL_BYTES,
                    ..
                }
            ));
        }
    }

    #[test]
    fn record_lines_as_an_editor_shows_them() {
        assert_eq!(lines_of(b"a\nb\n\n\nc\n"), vec![1, 2, 5]);
        assert_eq!(lines_of(b"a\r\nb\r\n\r\nc"), vec![1, 2, 4]);
        assert_eq!(lines_of(b"a\rb\r\rc\r"), vec![1, 2, 4]);
        assert_eq!(
            lines_of(b"\"x\ny\",1\nz,2\n\"p\r\nq\r\nr\",3\r\nlast"),
            vec![1, 3, 4, 7]
        );
        assert_eq!(lines_of(b"\n\na"), vec![3]);
    }
}
