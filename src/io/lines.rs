//! Reading text line by line with a bound on the length of one line.
//!
//! Every line-based reader of the crate (`.csv`/`.tsv`, `.mtx`, rating files, edge lists, GML,
//! terms files, the `.txt` files of a corpus) reads through [`LineReader`] or
//! [`read_text_bounded`]: a line longer than the bound is refused with
//! [`NmfError::LineTooLong`] (the file and the 1-based line) after at most that many bytes
//! have been buffered. A binary file read as text, or a link to a device such as `/dev/zero`,
//! thus fails quickly instead of filling the memory.

use std::io::{BufRead, ErrorKind, Read};
use std::path::Path;

use super::{format_error, read_error};
use crate::error::{NmfError, Result};

/// The default bound on one line of a text file: 16 MiB (the bytes before its `\n`). Far
/// above any line of a real table, edge list or document (a `.csv` row of one million
/// numbers is about 10 MB); raise it with
/// [`ReadOptions::max_line_bytes`](super::ReadOptions::max_line_bytes) (or the same setting
/// of the other readers' options) where lines are longer.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// The error for a line of `path` longer than `limit` bytes.
pub(crate) fn line_too_long(path: &Path, line: usize, limit: usize) -> NmfError {
    NmfError::LineTooLong {
        path: path.to_path_buf(),
        line,
        limit,
    }
}

/// Lines of a text source, numbered from 1, each at most `max_line` bytes long (not counting
/// its `\n`). A UTF-8 byte-order mark at the start of the first line is dropped; line ends
/// (`\n`, `\r\n`) are not part of a line.
pub(crate) struct LineReader<'p, R> {
    reader: R,
    path: &'p Path,
    buf: Vec<u8>,
    line_no: usize,
    max_line: usize,
}

impl<'p, R: BufRead> LineReader<'p, R> {
    /// Lines of `reader`; `path` names the source in errors.
    pub(crate) fn new(reader: R, path: &'p Path, max_line: usize) -> Self {
        LineReader {
            reader,
            path,
            buf: Vec::new(),
            line_no: 0,
            max_line,
        }
    }

    /// The next line as bytes with its 1-based number, or `None` at the end of the source.
    ///
    /// Errors: [`NmfError::LineTooLong`] when the line exceeds the bound, [`NmfError::Io`]
    /// when reading fails.
    pub(crate) fn next_bytes(&mut self) -> Result<Option<(usize, &[u8])>> {
        self.buf.clear();
        let mut read_any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(self.path, e)),
            };
            if chunk.is_empty() {
                break;
            }
            read_any = true;
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            let content = self.buf.len() + take - usize::from(end);
            if content > self.max_line {
                return Err(line_too_long(self.path, self.line_no + 1, self.max_line));
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if end {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.line_no += 1;
        let mut line: &[u8] = &self.buf;
        if self.line_no == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        Ok(Some((self.line_no, line)))
    }

    /// The next line as UTF-8 text; a line that is not UTF-8 is a format error with
    /// `not_utf8` as its message.
    pub(crate) fn next_str(&mut self, not_utf8: &str) -> Result<Option<(usize, &str)>> {
        let path = self.path;
        match self.next_bytes()? {
            None => Ok(None),
            Some((no, bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(Some((no, text))),
                Err(_) => Err(format_error(path, Some(no), None, not_utf8)),
            },
        }
    }
}

/// The whole contents of `reader`, failing with [`NmfError::LineTooLong`] as soon as a run of
/// more than `max_line` bytes without a `\n` is met. The bytes are returned as they are (line
/// ends and any byte-order mark kept).
pub(crate) fn read_bounded(mut reader: impl Read, path: &Path, max_line: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let (mut line, mut run) = (1usize, 0usize);
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(path, e)),
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                line += 1;
                run = 0;
            } else {
                run += 1;
                if run > max_line {
                    return Err(line_too_long(path, line, max_line));
                }
            }
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

/// The line (from 1) of `bytes` where the UTF-8 error `e` is.
pub(crate) fn utf8_error_line(bytes: &[u8], e: &std::str::Utf8Error) -> usize {
    1 + bytes[..e.valid_up_to()]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// [`read_bounded`] of the file at `path`; `action` words a failure to open it.
pub(crate) fn read_text_bounded(
    path: &Path,
    action: &'static str,
    max_line: usize,
) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|source| NmfError::Io {
        path: path.to_path_buf(),
        action,
        source,
    })?;
    read_bounded(file, path, max_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_numbered_and_bounded() {
        let text = b"\xEF\xBB\xBFab\r\ncd\n\nlonger line\nlast";
        let path = Path::new("t.txt");
        let mut lines = LineReader::new(&text[..], path, 100);
        let mut got = Vec::new();
        while let Some((no, line)) = lines.next_bytes().unwrap() {
            got.push((no, line.to_vec()));
        }
        let want: Vec<(usize, Vec<u8>)> = vec![
            (1, b"ab".to_vec()),
            (2, b"cd".to_vec()),
            (3, b"".to_vec()),
            (4, b"longer line".to_vec()),
            (5, b"last".to_vec()),
        ];
        assert_eq!(got, want);

        // A bound of 6 (line 1 with its byte-order mark and `\r` is 6 bytes) refuses line 4
        // (11 bytes), naming it.
        let mut lines = LineReader::new(std::io::BufReader::with_capacity(3, &text[..]), path, 6);
        let mut last = 0;
        let err = loop {
            match lines.next_bytes() {
                Ok(Some((no, _))) => last = no,
                Ok(None) => panic!("the long line was accepted"),
                Err(e) => break e,
            }
        };
        assert_eq!(last, 3);
        match err {
            NmfError::LineTooLong { line, limit, .. } => assert_eq!((line, limit), (4, 6)),
            other => panic!("expected LineTooLong, got {other:?}"),
        }
    }

    #[test]
    fn whole_reads_keep_the_bytes_and_bound_runs() {
        let text = b"ab\r\ncdef\n";
        assert_eq!(
            read_bounded(&text[..], Path::new("t"), 5).unwrap(),
            text.to_vec()
        );
        match read_bounded(&text[..], Path::new("t"), 3) {
            Err(NmfError::LineTooLong { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected LineTooLong, got {other:?}"),
        }
    }
}
