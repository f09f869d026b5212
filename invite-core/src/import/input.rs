//! Reading the raw bytes: the byte limit, the first bytes used to recognise the format, and
//! format recognition itself.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use super::error::{ImportError, Result};

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many bytes are read before the format and the CSV delimiter are chosen.
pub(crate) const PREFIX_LEN: usize = 64 * 1024;

/// The format of an uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Delimited text: `,`, `;`, tab or `|`.
    Csv,
    /// An Excel workbook (Office Open XML).
    Xlsx,
    /// JSON.
    Json,
}

impl FileFormat {
    /// The format a file name's extension suggests (`.csv`, `.tsv`, `.txt`, `.xlsx`, `.xlsm`,
    /// `.json`), if any.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Some(Self::Csv),
            "xlsx" | "xlsm" => Some(Self::Xlsx),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Recognises a format from the first bytes of a file: a ZIP archive is XLSX, text that
    /// starts with `[` or `{` is JSON, anything else is CSV. An OLE container (`.xls`, or an
    /// encrypted workbook) is refused.
    pub fn sniff(prefix: &[u8]) -> Result<Self> {
        if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
            return Ok(Self::Xlsx);
        }
        if prefix.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
            return Err(ImportError::UnsupportedSpreadsheet);
        }
        let text = prefix.strip_prefix(BOM).unwrap_or(prefix);
        match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[' | b'{') => Ok(Self::Json),
            _ => Ok(Self::Csv),
        }
    }

    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Json => "json",
        }
    }
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Marker carried inside the `io::Error` a [`LimitedReader`] returns past its limit.
#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("input exceeds the byte limit")
    }
}

impl std::error::Error for LimitExceeded {}

/// A reader that yields at most `limit` bytes and fails, rather than truncating, when the
/// input has more. It never reads more than one byte past the limit.
#[derive(Debug)]
pub(crate) struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> LimitedReader<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
        }
    }

    /// The limit, in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(LimitExceeded)),
            };
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Maps an I/O error from a [`LimitedReader`] to [`ImportError::TooLarge`] or
/// [`ImportError::Read`].
pub(crate) fn map_io(err: &io::Error, limit: u64) -> ImportError {
    let exceeded = err
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<LimitExceeded>().is_some());
    if exceeded {
        ImportError::TooLarge { limit }
    } else {
        ImportError::Read(err.to_string())
    }
}

/// Reads until `buf` holds `want` bytes or the input ends.
pub(crate) fn fill<R: Read>(
    reader: &mut LimitedReader<R>,
    buf: &mut Vec<u8>,
    want: usize,
) -> Result<()> {
    let limit = reader.limit();
    let mut chunk = [0u8; 8192];
    while buf.len() < want {
        let room = (want - buf.len()).min(chunk.len());
        match reader.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(map_io(&e, limit)),
        }
    }
    Ok(())
}

/// Reads the rest of the input into `buf`, within the reader's limit.
pub(crate) fn read_rest<R: Read>(reader: &mut LimitedReader<R>, buf: &mut Vec<u8>) -> Result<()> {
    let limit = reader.limit();
    reader
        .read_to_end(buf)
        .map(|_| ())
        .map_err(|e| map_io(&e, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_reader_allows_exactly_the_limit() {
        let data = [b'x'; 100];
        let mut r = LimitedReader::new(&data[..], 100);
        let mut buf = Vec::new();
        read_rest(&mut r, &mut buf).unwrap();
        assert_eq!(buf.len(), 100);

        let mut r = LimitedReader::new(&data[..], 99);
        let mut buf = Vec::new();
        assert_eq!(
            read_rest(&mut r, &mut buf),
            Err(ImportError::TooLarge { limit: 99 })
        );
        assert_eq!(buf.len(), 99, "never buffers past the limit");
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(
            FileFormat::sniff(b"PK\x03\x04rest").unwrap(),
            FileFormat::Xlsx
        );
        assert_eq!(
            FileFormat::sniff(b"\xEF\xBB\xBF  [1]").unwrap(),
            FileFormat::Json
        );
        assert_eq!(FileFormat::sniff(b"\n{\"a\":1}").unwrap(), FileFormat::Json);
        assert_eq!(FileFormat::sniff(b"username\n@a").unwrap(), FileFormat::Csv);
        assert_eq!(FileFormat::sniff(b"").unwrap(), FileFormat::Csv);
        assert_eq!(
            FileFormat::sniff(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1...."),
            Err(ImportError::UnsupportedSpreadsheet)
        );
        assert_eq!(FileFormat::from_file_name("a.XLSX"), Some(FileFormat::Xlsx));
        assert_eq!(
            FileFormat::from_file_name("people.tsv"),
            Some(FileFormat::Csv)
        );
        assert_eq!(FileFormat::from_file_name("noext"), None);
    }
}
