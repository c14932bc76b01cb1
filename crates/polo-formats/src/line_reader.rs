//! Line-by-line reading with a cap on the line length, for the line formats
//! (NMEA logs, IGC, PLT, headerless numeric text).
//!
//! `BufRead::read_line` grows its buffer until it meets a newline, so one
//! corrupt or hostile file without line breaks would be buffered whole.
//! [`LineReader`] keeps at most [`MAX_LINE`] bytes of a line: a longer line
//! is consumed to its end without being buffered and reported as
//! [`Line::TooLong`] with its number and byte offset, so the importer can
//! reject it and carry on with the next line. Memory is therefore bounded
//! by [`MAX_LINE`] whatever the input.

use std::io::{self, BufRead};

/// Longest line kept, in bytes (without its line break).
pub(crate) const MAX_LINE: usize = 1024 * 1024;

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A line, its `\r\n` or `\n` removed, invalid UTF-8 replaced.
    Text {
        /// 1-based line number.
        number: u64,
        /// Byte offset of the line's first byte.
        offset: u64,
        /// The text.
        text: &'a str,
    },
    /// A line longer than the cap; its bytes were skipped.
    TooLong {
        /// 1-based line number.
        number: u64,
        /// Byte offset of the line's first byte.
        offset: u64,
        /// Its length in bytes.
        length: u64,
    },
}

impl Line<'_> {
    /// The line number.
    pub(crate) fn number(&self) -> u64 {
        match self {
            Self::Text { number, .. } | Self::TooLong { number, .. } => *number,
        }
    }

    /// The reject reason for a [`Line::TooLong`].
    pub(crate) fn too_long_reason(length: u64) -> String {
        format!("line of {length} bytes is longer than the {MAX_LINE}-byte limit; skipped")
    }
}

/// Reads lines of at most `max` bytes from a `BufRead`.
pub(crate) struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    text: String,
    number: u64,
    offset: u64,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    /// Lines of at most [`MAX_LINE`] bytes.
    pub(crate) fn new(reader: R) -> Self {
        Self::with_max(reader, MAX_LINE)
    }

    /// Lines of at most `max` bytes (tests use a small cap).
    pub(crate) fn with_max(reader: R, max: usize) -> Self {
        Self { reader, buf: Vec::new(), text: String::new(), number: 0, offset: 0, max }
    }

    /// The next line, or `None` at the end of the input.
    ///
    /// # Errors
    /// Read errors.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let start = self.offset;
        let mut length = 0u64;
        let mut overflow = false;
        let mut saw_newline = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let (chunk, ends) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            length += chunk.len() as u64;
            if !overflow {
                if self.buf.len() + chunk.len() > self.max {
                    overflow = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let used = chunk.len() + usize::from(ends);
            self.reader.consume(used);
            self.offset += used as u64;
            if ends {
                saw_newline = true;
                break;
            }
        }
        if length == 0 && !saw_newline {
            return Ok(None);
        }
        self.number += 1;
        if overflow {
            return Ok(Some(Line::TooLong { number: self.number, offset: start, length }));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        self.text.clear();
        self.text.push_str(&String::from_utf8_lossy(&self.buf));
        Ok(Some(Line::Text { number: self.number, offset: start, text: &self.text }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        // A tiny BufReader capacity makes lines span several fills.
        let mut reader = LineReader::with_max(io::BufReader::with_capacity(3, input), max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(match line {
                Line::Text { number, offset, text } => format!("{number}@{offset}:{text}"),
                Line::TooLong { number, offset, length } => format!("{number}@{offset}:too long {length}"),
            });
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_line_breaks() {
        assert_eq!(lines(b"ab\r\ncd\n\nef", 10), ["1@0:ab", "2@4:cd", "3@7:", "4@8:ef"]);
        assert!(lines(b"", 10).is_empty());
        assert_eq!(lines(b"x\n", 10), ["1@0:x"]);
    }

    #[test]
    fn a_line_over_the_cap_is_reported_and_skipped_without_losing_the_next() {
        let input = b"short\n0123456789ABCDEF\nnext\n";
        assert_eq!(lines(input, 8), ["1@0:short", "2@6:too long 16", "3@23:next"]);
        // Exactly at the cap is fine.
        assert_eq!(lines(b"12345678\n", 8), ["1@0:12345678"]);
    }
}
