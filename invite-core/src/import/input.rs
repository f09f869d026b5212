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

/// The character encoding of a delimited text file.
///
/// Spreadsheet programs save CSV in more than UTF-8: Excel on a Russian-language Windows
/// writes "CSV (comma delimited)" in Windows-1251, and "Unicode text" in UTF-16 with a byte
/// order mark. These are read as they are; anything else must be UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-16, little-endian.
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// UTF-16, big-endian.
    #[serde(rename = "utf-16be")]
    Utf16Be,
    /// Windows-1251 (Cyrillic).
    #[serde(rename = "windows-1251")]
    Windows1251,
}

impl TextEncoding {
    /// The name used on the wire (`utf-8`, `utf-16le`, `utf-16be`, `windows-1251`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf16Le => "utf-16le",
            Self::Utf16Be => "utf-16be",
            Self::Windows1251 => "windows-1251",
        }
    }

    /// Parses a name, ignoring case: `utf-8` / `utf8`, `utf-16le`, `utf-16be`, `utf-16`
    /// (little-endian, as Windows writes it), `windows-1251` / `cp1251`.
    pub fn from_label(label: &str) -> Option<Self> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Self::Utf8),
            "utf-16le" | "utf16le" | "utf-16" | "utf16" => Some(Self::Utf16Le),
            "utf-16be" | "utf16be" => Some(Self::Utf16Be),
            "windows-1251" | "cp1251" | "cp-1251" | "win-1251" => Some(Self::Windows1251),
            _ => None,
        }
    }

    /// Recognises the encoding from the first bytes of a file (`complete` when they are the
    /// whole file): a byte order mark names it; otherwise valid UTF-8 is UTF-8; otherwise text
    /// that is mostly not UTF-8 and whose non-ASCII bytes form whole words of Windows-1251
    /// Cyrillic letters is Windows-1251. Anything else (broken UTF-8 among good UTF-8, Latin-1)
    /// is taken as UTF-8, which the reader then refuses at the first bad row.
    pub fn detect(prefix: &[u8], complete: bool) -> Self {
        if prefix.starts_with(BOM) {
            return Self::Utf8;
        }
        if prefix.starts_with(b"\xFF\xFE") {
            return Self::Utf16Le;
        }
        if prefix.starts_with(b"\xFE\xFF") {
            return Self::Utf16Be;
        }
        let (multibyte, invalid) = utf8_tally(prefix, complete);
        // Broken UTF-8 (a stray byte among many good characters) stays UTF-8, to be refused
        // rather than misread: Windows-1251 text is nearly all invalid sequences.
        if invalid == 0 || multibyte >= invalid || !looks_like_windows_1251(prefix) {
            Self::Utf8
        } else {
            Self::Windows1251
        }
    }

    /// The byte order mark of this encoding.
    pub(crate) fn bom(self) -> &'static [u8] {
        match self {
            Self::Utf8 => BOM,
            Self::Utf16Le => b"\xFF\xFE",
            Self::Utf16Be => b"\xFE\xFF",
            Self::Windows1251 => b"",
        }
    }

    pub(crate) fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Self::Utf8 => encoding_rs::UTF_8,
            Self::Utf16Le => encoding_rs::UTF_16LE,
            Self::Utf16Be => encoding_rs::UTF_16BE,
            Self::Windows1251 => encoding_rs::WINDOWS_1251,
        }
    }
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts the valid multi-byte UTF-8 characters and the invalid sequences in `bytes`. A
/// character cut in two at the end counts as neither unless the text is `complete`.
fn utf8_tally(mut bytes: &[u8], complete: bool) -> (usize, usize) {
    let (mut multibyte, mut invalid) = (0, 0);
    loop {
        let (valid, rest) = match std::str::from_utf8(bytes) {
            Ok(text) => (text, None),
            Err(e) => {
                let (head, tail) = bytes.split_at(e.valid_up_to());
                // `valid_up_to` marks the end of valid UTF-8.
                let head = std::str::from_utf8(head).unwrap_or_default();
                (head, Some((tail, e.error_len())))
            }
        };
        multibyte += valid.chars().filter(|c| !c.is_ascii()).count();
        match rest {
            None => return (multibyte, invalid),
            Some((_, None)) => return (multibyte, invalid + usize::from(complete)),
            Some((tail, Some(len))) => {
                invalid += 1;
                bytes = &tail[len..];
            }
        }
    }
}

/// Whether non-ASCII bytes make Russian (or other Cyrillic) words in Windows-1251: in such a
/// file a word holding a byte above 0x7F is made of such bytes almost entirely (`Иван` is four
/// of them), and they are letters (0xC0–0xFF, `Ё` 0xA8, `ё` 0xB8, Ukrainian and Belarusian
/// letters), with quotes, dashes and `№` between words. Latin-1 text fails: its accented
/// letters sit among ASCII ones (`José`, `Müller`).
fn looks_like_windows_1251(text: &[u8]) -> bool {
    let is_letter = |b: u8| {
        b >= 0xC0
            || matches!(
                b,
                0xA1 | 0xA2 | 0xA8 | 0xAA | 0xAF | 0xB2 | 0xB3 | 0xB8 | 0xBA | 0xBF
            )
    };
    let (mut cyrillic_words, mut other_words) = (0u32, 0u32);
    // Other bytes above 0x7F («, », —, №…) separate words like spaces.
    for word in text.split(|b| !(b.is_ascii_alphabetic() || is_letter(*b))) {
        if word.iter().all(u8::is_ascii) {
            continue;
        }
        if word.iter().all(|b| is_letter(*b)) {
            cyrillic_words += 1;
        } else {
            other_words += 1;
        }
    }
    cyrillic_words > 0 && other_words * 10 <= cyrillic_words
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

/// Reads until `buf` holds `want` bytes or the input ends. `limit` is the byte limit of the
/// [`LimitedReader`] underneath, for the error past it.
pub(crate) fn fill(
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    want: usize,
    limit: u64,
) -> Result<()> {
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

    #[test]
    fn detects_encodings() {
        use TextEncoding::*;
        let cp1251 = |s: &str| encoding_rs::WINDOWS_1251.encode(s).0.into_owned();
        assert_eq!(TextEncoding::detect(b"", true), Utf8);
        assert_eq!(TextEncoding::detect(b"username\n@a", true), Utf8);
        assert_eq!(TextEncoding::detect("Имя;Ник".as_bytes(), true), Utf8);
        assert_eq!(TextEncoding::detect(b"\xEF\xBB\xBFa", true), Utf8);
        assert_eq!(TextEncoding::detect(b"\xFF\xFEa\x00", true), Utf16Le);
        assert_eq!(TextEncoding::detect(b"\xFE\xFF\x00a", true), Utf16Be);
        assert_eq!(
            TextEncoding::detect(&cp1251("Имя;Ник\n"), true),
            Windows1251
        );
        assert_eq!(
            TextEncoding::detect(&cp1251("name;note\n@a;«Ёлка» — №1, Ґ Є Ї І ў"), true),
            Windows1251
        );
        // A UTF-8 character cut at the end of a sample is still UTF-8; at the end of the
        // file it is not.
        let cut = &"ab Имя".as_bytes()[..6];
        assert_eq!(TextEncoding::detect(cut, false), Utf8);
        assert_eq!(TextEncoding::detect(cut, true), Utf8);
        // UTF-8 with a stray byte stays UTF-8 (and is refused where the byte is).
        let mut stray = "Ник;Имя\n@ivan_petrov;Иван\n".as_bytes().to_vec();
        stray.push(0xFF);
        assert_eq!(TextEncoding::detect(&stray, true), Utf8);
        // Latin-1: accented letters inside Latin words.
        assert_eq!(TextEncoding::detect(b"Jos\xE9;M\xFCller", true), Utf8);
        // Mostly Latin-1 words beside one that would be Cyrillic.
        assert_eq!(
            TextEncoding::detect(b"\xE0 Jos\xE9 M\xFCller Ren\xE9e", true),
            Utf8
        );
        // Random high bytes that are not letters.
        assert_eq!(TextEncoding::detect(b"\x80\x81\x82", true), Utf8);
    }

    #[test]
    fn encoding_labels() {
        for e in [
            TextEncoding::Utf8,
            TextEncoding::Utf16Le,
            TextEncoding::Utf16Be,
            TextEncoding::Windows1251,
        ] {
            assert_eq!(TextEncoding::from_label(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::Value::String(e.as_str().into())
            );
        }
        assert_eq!(
            TextEncoding::from_label(" CP1251 "),
            Some(TextEncoding::Windows1251)
        );
        assert_eq!(TextEncoding::from_label("UTF8"), Some(TextEncoding::Utf8));
        assert_eq!(
            TextEncoding::from_label("utf-16"),
            Some(TextEncoding::Utf16Le)
        );
        assert_eq!(TextEncoding::from_label("koi8-r"), None);
    }
}
