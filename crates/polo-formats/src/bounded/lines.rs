//! Lines of bounded length from a `BufRead`.
//!
//! `read_until(b'\n')` holds a whole line, however long. [`LineReader`]
//! keeps at most `max` bytes of a line: the rest of a longer line is
//! consumed with `memchr` and dropped, and the line is handed out as
//! [`Line::too_long`] with its first `max` bytes, so the importer can reject
//! it (with the line number) and go on with the next.

use std::io::{BufRead, ErrorKind};

/// One line, without its `\n` (a `\r` before it is kept).
#[derive(Debug)]
pub(crate) struct Line<'a> {
    /// The line's text; for a too long line, its first `max` bytes.
    pub(crate) text: &'a [u8],
    /// 1-based line number.
    pub(crate) number: u64,
    /// The line was longer than `max` bytes (its full length in bytes).
    pub(crate) too_long: Option<u64>,
}

impl Line<'_> {
    /// The line as text: a `\r` before the `\n` removed, invalid UTF-8
    /// replaced (for the formats that read characters: NMEA, IGC, PLT,
    /// headerless text).
    pub(crate) fn to_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.text.strip_suffix(b"\r").unwrap_or(self.text))
    }
}

/// The reject reason for a line over the limit.
pub(crate) fn too_long_line() -> String {
    super::too_long("a line")
}

/// Reads lines of at most `max` bytes.
pub(crate) struct LineReader<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    number: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Lines of at most `max` bytes (use [`super::MAX_TOKEN`]).
    pub(crate) fn new(reader: R, max: usize) -> Self {
        Self { reader, max, buf: Vec::new(), number: 0 }
    }

    /// The next line, or `None` at the end of the input.
    ///
    /// # Errors
    /// Read errors.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut len = 0u64;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(p) => (p, true),
                None => (chunk.len(), false),
            };
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            len += take as u64;
            let consumed = if done { take + 1 } else { take };
            self.reader.consume(consumed);
            if done {
                break;
            }
        }
        self.number += 1;
        let too_long = (len > self.max as u64).then_some(len);
        Ok(Some(Line { text: &self.buf, number: self.number, too_long }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_flagged_and_the_next_line_is_whole() {
        let text = b"short\r\n0123456789abc\n\nlast";
        let mut r = LineReader::new(std::io::BufReader::with_capacity(3, &text[..]), 8);
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.text, l.number, l.too_long), (&b"short\r"[..], 1, None));
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.text, l.number, l.too_long), (&b"01234567"[..], 2, Some(13)));
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.text, l.number, l.too_long), (&b""[..], 3, None));
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.text, l.number), (&b"last"[..], 4));
        assert!(r.next_line().unwrap().is_none());
    }
}
