//! CSV rows of bounded length, with their line numbers.
//!
//! The csv crate holds a whole row in memory, and an unclosed quote makes
//! the rest of the file one row: a 2 GiB line would be a 2 GiB allocation.
//! [`LineCounter`] sits under the csv reader, cuts every row at the limit
//! (the rest is consumed without being kept) and remembers where rows were
//! cut, so the importer rejects such a row with its line number and goes on.
//! It also turns the byte offsets the csv crate reports into line numbers,
//! which the csv crate cannot do for blank lines. Both CSV importers (the
//! generic one in `csv.rs` and Strava's `activities.csv`) read through it.

use std::io::BufRead;

/// Passes bytes through, remembering where lines end, so that a record's
/// byte offset can be turned into a line number. Only the line ends of
/// bytes read ahead but not yet asked about are kept.
///
/// It also keeps rows under `max` bytes: the csv crate holds a whole row
/// (and an unclosed quote makes the rest of the file one row). When a row
/// reaches `max`, the rest of it, up to the next line end outside quotes,
/// is consumed without being passed on (a `"` is passed in its place when
/// the cut fell inside quotes, so the row still ends at that line end), and
/// the cut's offset is queued for [`LineCounter::take_cut_in`] to reject the row.
pub(crate) struct LineCounter<R> {
    inner: R,
    /// Bytes passed on.
    offset: u64,
    /// `(where the terminator starts, where the next line starts, lines it ends)`.
    line_ends: std::collections::VecDeque<(u64, u64, u64)>,
    line: u64,
    last_was_cr: bool,
    max: usize,
    /// Inside quotes, as far as the bytes passed on go.
    quoted: bool,
    /// Bytes of the row being passed on.
    row: usize,
    /// The rest of an over-long row must be skipped before passing more.
    skipping: bool,
    /// A `"` to pass on before anything else.
    close_quote: bool,
    /// Offsets (in bytes passed on) where rows were cut.
    cuts: std::collections::VecDeque<u64>,
}

impl<R> LineCounter<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            offset: 0,
            line_ends: std::collections::VecDeque::new(),
            line: 1,
            last_was_cr: false,
            max,
            quoted: false,
            row: 0,
            skipping: false,
            close_quote: false,
            cuts: std::collections::VecDeque::new(),
        }
    }

    /// The 1-based line where a record starting at byte `offset` has its
    /// first data (offsets must not decrease). The csv crate reports the
    /// offset before any blank lines it skipped, so those are stepped over.
    pub(crate) fn line_at(&mut self, mut offset: u64) -> u64 {
        while let Some(&(end, next, lines)) = self.line_ends.front() {
            if end < offset {
                self.line_ends.pop_front();
                self.line += lines;
                // After `\r`, the csv crate counts the `\n` as the next record's start.
                offset = offset.max(next);
            } else if end == offset && lines == 1 {
                // A blank line at the record's start.
                self.line_ends.pop_front();
                self.line += 1;
                offset = next;
            } else {
                break;
            }
        }
        self.line
    }

    /// True (once) when a row spanning bytes `start..end` was cut.
    pub(crate) fn take_cut_in(&mut self, start: u64, end: u64) -> bool {
        while self.cuts.front().is_some_and(|&cut| cut < start) {
            self.cuts.pop_front();
        }
        if self.cuts.front().is_some_and(|&cut| cut <= end) {
            self.cuts.pop_front();
            return true;
        }
        false
    }

    /// Records the line ends in `bytes`, which are being passed on.
    fn passed(&mut self, bytes: &[u8]) {
        for i in memchr::memchr_iter(b'\n', bytes) {
            let at = self.offset + i as u64;
            let cr = if i > 0 { bytes[i - 1] == b'\r' } else { self.last_was_cr };
            self.line_ends.push_back((if cr { at - 1 } else { at }, at + 1, 1));
        }
        if let Some(&last) = bytes.last() {
            self.last_was_cr = last == b'\r';
        }
        self.offset += bytes.len() as u64;
    }
}

impl<R: BufRead> LineCounter<R> {
    /// Consumes the rest of a cut row, up to its line end outside quotes.
    fn skip_rest_of_row(&mut self) -> std::io::Result<()> {
        let mut quoted = self.quoted;
        let mut lines = 0u64;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let mut end = None;
            for p in memchr::memchr2_iter(b'"', b'\n', chunk) {
                if chunk[p] == b'"' {
                    quoted = !quoted;
                } else if quoted {
                    lines += 1;
                } else {
                    end = Some(p);
                    break;
                }
            }
            let n = end.unwrap_or(chunk.len());
            self.inner.consume(n);
            if end.is_some() {
                break;
            }
        }
        if lines > 0 {
            self.line_ends.push_back((self.offset, self.offset, lines));
        }
        self.close_quote = self.quoted;
        self.quoted = false;
        self.skipping = false;
        Ok(())
    }
}

impl<R: BufRead> std::io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.close_quote {
                self.close_quote = false;
                buf[0] = b'"';
                self.passed(b"\"");
                return Ok(1);
            }
            if self.skipping {
                self.skip_rest_of_row()?;
                continue;
            }
            let chunk = self.inner.fill_buf()?;
            let limit = chunk.len().min(buf.len());
            let (mut n, mut quoted, mut row) = (0, self.quoted, self.row);
            let mut cut = false;
            while n < limit {
                let end = limit.min(n + (self.max + 1).saturating_sub(row));
                match memchr::memchr2(b'"', b'\n', &chunk[n..end]) {
                    Some(p) => {
                        let c = chunk[n + p];
                        n += p + 1;
                        row += p + 1;
                        if c == b'"' {
                            quoted = !quoted;
                        } else if !quoted {
                            row = 0;
                        }
                    }
                    None => {
                        row += end - n;
                        n = end;
                        if row > self.max {
                            cut = true;
                            break;
                        }
                    }
                }
            }
            buf[..n].copy_from_slice(&chunk[..n]);
            self.inner.consume(n);
            self.quoted = quoted;
            self.row = row;
            self.passed(&buf[..n]);
            if cut {
                self.skipping = true;
                self.row = 0;
                self.cuts.push_back(self.offset);
            }
            if n > 0 || limit == 0 {
                return Ok(n);
            }
        }
    }
}
