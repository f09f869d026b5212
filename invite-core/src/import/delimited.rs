//! CSV and other delimited text, read as a stream: the delimiter is chosen from the first
//! 64 KiB, then records are parsed one by one and never held all at once.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read};

use csv::{ByteRecord, ReaderBuilder};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::columns::{HeaderHint, LabelStyle};
use super::error::{ImportError, Result};
use super::input::{LimitedReader, PREFIX_LEN, TextEncoding, fill, map_io};
use super::report::{ImportContext, ImportReport};
use super::validate::Pipeline;
use super::{FileFormat, ImportOptions};

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

    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(64 * 1024)
        .from_reader(LineTracker::new(Cursor::new(prefix).chain(rest)));
    let mut record = ByteRecord::new();
    let mut cells: Vec<String> = Vec::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(match e.kind() {
                    csv::ErrorKind::Io(io) => map_io(io, limit),
                    _ => ImportError::Read(e.to_string()),
                });
            }
        }
        let end = reader.position().byte();
        let end_line = reader.get_mut().line_at(end);
        let inner_breaks: u64 = record.iter().map(breaks_in).sum();
        let line = end_line.saturating_sub(inner_breaks).max(1);
        // The cell buffers are reused from record to record.
        cells.truncate(record.len());
        cells.resize_with(record.len(), String::new);
        for (cell, field) in cells.iter_mut().zip(&record) {
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
        let mut reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(LineTracker::new(data));
        let mut record = ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let end = reader.position().byte();
            let inner: u64 = record.iter().map(breaks_in).sum();
            out.push(reader.get_mut().line_at(end) - inner);
        }
        out
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
