//! A streaming JSON *element splitter*: walks the top level of a JSON
//! document and hands out the complete text of one array element at a time.
//!
//! Why not a full pull parser: every JSON location format is "one big array
//! of small records" (`{"locations":[…]}`, `{"timelineObjects":[…]}`, a bare
//! `[…]`). Splitting only needs to find where each element ends, which is a
//! byte scan for brackets and string quotes — far cheaper than tokenising
//! every number. Each element is then deserialised by `serde_json` from the
//! slice into borrowed structs, so the file is read once, front to back, and
//! memory is bounded by the largest single element (one reusable buffer).
//! Values of uninteresting top-level keys are skipped by the same scan
//! without being buffered.
//!
//! Limits: an element over [`MAX_ELEMENT`], or holding a string (or bare
//! scalar) over [`MAX_TOKEN`], is not kept: the splitter stops copying it,
//! scans on to its end without holding it, and hands it out as
//! [`Element::TooLarge`] with its beginning, so the importer rejects that
//! record and goes on with the next.
//!
//! The splitter checks structure (balanced and matching brackets, commas
//! between elements, string termination); the grammar *inside* an element is
//! left to `serde_json`, so a broken record becomes a reject, not the end of
//! the file.
//!
//! Speed (one core, Takeout-style pretty-printed Records.json): about
//! 1.1 GB/s splitting verbatim, 750 MB/s when compacting
//! ([`JsonStream::set_compact`]). What remains is mostly one mispredicted
//! branch per structural byte; `split_throughput` (an ignored test) measures it.

use std::io::{BufRead, ErrorKind};

use memchr::memchr2;

use crate::bounded::MAX_TOKEN;
use crate::{ImportError, Position};

/// One element of a streamed array.
#[derive(Debug)]
pub(crate) enum Element<'a> {
    /// The element's complete text.
    Whole(&'a [u8]),
    /// The element broke a size limit and was skipped.
    TooLarge {
        /// Its first bytes (at most [`crate::Reject::MAX_RAW`]), for the reject.
        head: &'a [u8],
        /// Which limit, and where.
        why: String,
    },
}

/// Largest element the splitter buffers: a single record bigger than this is
/// not a location record but a broken or hostile file.
pub(crate) const MAX_ELEMENT: usize = 64 * 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Bytes that matter outside strings while scanning a container.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// [`STRUCTURAL`] plus JSON whitespace, for compacting scans.
const STRUCTURAL_OR_SPACE: [bool; 256] = {
    let mut t = STRUCTURAL;
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// Bytes that end a bare scalar (number, `true`, `false`, `null`).
const SCALAR_END: [bool; 256] = {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b']' as usize] = true;
    t[b'}' as usize] = true;
    t[b':' as usize] = true;
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// What the document's top level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Top {
    /// `{ … }`: read its members with [`JsonStream::next_key`].
    Object,
    /// `[ … ]`: read its elements with [`JsonStream::next_element`].
    Array,
}

/// The splitter over a buffered reader.
pub(crate) struct JsonStream<R> {
    reader: R,
    /// Absolute offset of the next unconsumed byte.
    offset: u64,
    /// The current element's text.
    buf: Vec<u8>,
    /// Closing brackets expected, innermost last.
    stack: Vec<u8>,
    /// Format name used in error messages.
    format: &'static str,
    /// Whether the next top-level member / array element is the first.
    first_member: bool,
    first_element: bool,
    /// Largest element accepted.
    max_element: usize,
    /// Drop whitespace outside strings while copying elements.
    compact: bool,
    /// Longest string or bare scalar kept.
    max_token: usize,
    /// Why the value being scanned stopped being kept.
    too_large: Option<String>,
}

impl<R: BufRead> JsonStream<R> {
    /// A splitter that names `format` in its errors.
    pub(crate) fn new(reader: R, format: &'static str) -> Self {
        Self {
            reader,
            offset: 0,
            buf: Vec::with_capacity(64 * 1024),
            stack: Vec::with_capacity(32),
            format,
            first_member: true,
            first_element: true,
            max_element: MAX_ELEMENT,
            compact: false,
            max_token: MAX_TOKEN,
            too_large: None,
        }
    }

    /// Makes [`next_element`](Self::next_element) and
    /// [`read_value`](Self::read_value) return the value with insignificant
    /// whitespace removed. Takeout files are pretty-printed (a third of their
    /// bytes is indentation); compacting during the copy means `serde_json`
    /// reads fewer bytes and raw values go into extras without another pass.
    /// Offsets still point at the element in the file.
    pub(crate) fn set_compact(&mut self, compact: bool) {
        self.compact = compact;
    }

    /// Changes the element size limit (tests).
    #[cfg(test)]
    pub(crate) fn set_max_element(&mut self, max: usize) {
        self.max_element = max;
    }

    /// Changes the string size limit (tests).
    #[cfg(test)]
    pub(crate) fn set_max_token(&mut self, max: usize) {
        self.max_token = max;
    }

    /// The error for a value that had to be whole (a member name, a
    /// top-level member's value) but broke a limit.
    fn refuse_too_large(&mut self, at: u64) -> Result<(), ImportError> {
        match self.too_large.take() {
            Some(why) => Err(self.malformed(at, why)),
            None => Ok(()),
        }
    }

    /// Absolute offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    fn malformed(&self, at: u64, message: impl Into<String>) -> ImportError {
        ImportError::Malformed { format: self.format, position: Position::Byte(at), message: message.into() }
    }

    fn fill(&mut self) -> Result<&[u8], ImportError> {
        fill_buf(&mut self.reader)
    }

    fn consume(&mut self, n: usize) {
        self.reader.consume(n);
        self.offset += n as u64;
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn peek_significant(&mut self) -> Result<Option<u8>, ImportError> {
        loop {
            let chunk = self.fill()?;
            if chunk.is_empty() {
                return Ok(None);
            }
            match chunk.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                Some(p) => {
                    let b = chunk[p];
                    self.consume(p);
                    return Ok(Some(b));
                }
                None => {
                    let n = chunk.len();
                    self.consume(n);
                }
            }
        }
    }

    /// Skips a UTF-8 BOM and whitespace, and opens the top-level value.
    ///
    /// # Errors
    /// [`ImportError::Unrecognised`] when the document is not an object or array.
    pub(crate) fn begin(&mut self) -> Result<Top, ImportError> {
        // Byte by byte, so that a BOM split across reads is still recognised.
        for &expected in UTF8_BOM {
            if self.fill()?.first() != Some(&expected) {
                break;
            }
            self.consume(1);
        }
        let top = match self.peek_significant()? {
            Some(b'{') => Top::Object,
            Some(b'[') => Top::Array,
            Some(b) => {
                return Err(ImportError::Unrecognised {
                    hint: format!("JSON whose top level starts with {:?}, not an object or array", char::from(b)),
                });
            }
            None => return Err(ImportError::Unrecognised { hint: "the file is empty".to_owned() }),
        };
        self.consume(1);
        self.first_member = true;
        self.first_element = true;
        Ok(top)
    }

    /// Reads the next member key of the top-level object and the `:` after
    /// it, or `None` at the closing `}`. The value must then be consumed with
    /// [`skip_value`](Self::skip_value), [`read_value`](Self::read_value) or
    /// [`begin_array`](Self::begin_array) + [`next_element`](Self::next_element).
    pub(crate) fn next_key(&mut self) -> Result<Option<String>, ImportError> {
        let Some(mut b) = self.peek_significant()? else {
            return Err(self.malformed(self.offset, "unexpected end of file: the top-level object is not closed"));
        };
        if b == b'}' {
            self.consume(1);
            return Ok(None);
        }
        if !self.first_member {
            if b != b',' {
                return Err(self.malformed(self.offset, "expected ',' or '}' after an object member"));
            }
            self.consume(1);
            b = self.peek_significant()?.unwrap_or(0);
        }
        self.first_member = false;
        if b != b'"' {
            return Err(self.malformed(self.offset, "expected a member name in quotes"));
        }
        let at = self.offset;
        self.scan(true)?;
        self.refuse_too_large(at)?;
        let key: String =
            serde_json::from_slice(&self.buf).map_err(|e| self.malformed(at, format!("bad member name: {e}")))?;
        if self.peek_significant()? != Some(b':') {
            return Err(self.malformed(self.offset, format!("expected ':' after member name {key:?}")));
        }
        self.consume(1);
        Ok(Some(key))
    }

    /// The first byte of the next value (after whitespace), not consumed.
    pub(crate) fn peek_value(&mut self) -> Result<u8, ImportError> {
        self.peek_significant()?.ok_or_else(|| self.malformed(self.offset, "unexpected end of file: expected a value"))
    }

    /// Skips the next value without buffering it.
    pub(crate) fn skip_value(&mut self) -> Result<(), ImportError> {
        self.peek_value()?;
        self.scan(false).map(|_| ())
    }

    /// Reads the next value whole (bounded like an element): its offset and text.
    pub(crate) fn read_value(&mut self) -> Result<(u64, &[u8]), ImportError> {
        self.peek_value()?;
        let at = self.scan(true)?;
        self.refuse_too_large(at)?;
        Ok((at, &self.buf))
    }

    /// Opens the array that is the next value. Returns `false` (consuming
    /// nothing) when the next value is not an array.
    pub(crate) fn begin_array(&mut self) -> Result<bool, ImportError> {
        if self.peek_value()? != b'[' {
            return Ok(false);
        }
        self.consume(1);
        self.first_element = true;
        Ok(true)
    }

    /// The next element of the array being streamed (the top-level array or
    /// the one opened by [`begin_array`](Self::begin_array)): its absolute
    /// offset and complete JSON text, or `None` after the closing `]`.
    pub(crate) fn next_element(&mut self) -> Result<Option<(u64, Element<'_>)>, ImportError> {
        let Some(mut b) = self.peek_significant()? else {
            return Err(self.malformed(self.offset, "unexpected end of file: an array is not closed"));
        };
        if b == b']' && self.first_element {
            self.consume(1);
            return Ok(None);
        }
        if !self.first_element {
            match b {
                b']' => {
                    self.consume(1);
                    return Ok(None);
                }
                b',' => {
                    self.consume(1);
                    b = self.peek_significant()?.unwrap_or(0);
                    if b == b']' {
                        return Err(self.malformed(self.offset, "expected an array element after ','"));
                    }
                }
                _ => return Err(self.malformed(self.offset, "expected ',' or ']' after an array element")),
            }
        }
        self.first_element = false;
        let at = self.scan(true)?;
        Ok(Some((
            at,
            match self.too_large.take() {
                None => Element::Whole(&self.buf),
                Some(why) => {
                    self.buf.truncate(crate::Reject::MAX_RAW);
                    Element::TooLarge { head: &self.buf, why }
                }
            },
        )))
    }

    /// Checks that only whitespace follows the top-level value.
    pub(crate) fn finish(&mut self) -> Result<(), ImportError> {
        match self.peek_significant()? {
            None => Ok(()),
            Some(_) => Err(self.malformed(self.offset, "unexpected text after the end of the JSON document")),
        }
    }

    /// Scans one complete value starting at the current (significant) byte,
    /// copying it into `buf` when `keep`. Returns the value's start offset.
    fn scan(&mut self, keep: bool) -> Result<u64, ImportError> {
        let start = self.offset;
        self.buf.clear();
        self.stack.clear();
        self.too_large = None;
        let first = self.fill()?.first().copied().unwrap_or(0);
        match first {
            b'{' | b'[' | b'"' => self.scan_container(start, keep)?,
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.scan_scalar(start, keep)?,
            b => {
                return Err(self.malformed(start, format!("expected a JSON value, found {:?}", char::from(b))));
            }
        }
        Ok(start)
    }

    fn scan_scalar(&mut self, start: u64, mut keep: bool) -> Result<(), ImportError> {
        loop {
            let max = self.max_element.min(self.max_token);
            let chunk = fill_buf(&mut self.reader)?;
            if chunk.is_empty() {
                return Ok(());
            }
            let end = chunk.iter().position(|&b| SCALAR_END[usize::from(b)]);
            let n = end.unwrap_or(chunk.len());
            if keep {
                if self.buf.len() + n > max {
                    keep = false;
                    keep_head(&mut self.buf, &chunk[..n]);
                    self.too_large = Some(format!(
                        "a JSON value at byte {start} longer than {} MiB: skipped",
                        self.max_token / (1024 * 1024)
                    ));
                } else {
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
            self.reader.consume(n);
            self.offset += n as u64;
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Scans an object, array or string (the latter ends at its closing quote).
    fn scan_container(&mut self, start: u64, mut keep: bool) -> Result<(), ImportError> {
        let mut in_string = false;
        let mut escape_pending = false;
        // The string being scanned: where its text starts in this chunk, its
        // bytes in earlier chunks, and its offset in the file.
        let mut str_start = 0usize;
        let mut str_carry = 0usize;
        let mut str_at = 0u64;
        loop {
            let max = self.max_element;
            let max_token = self.max_token;
            let chunk_at = self.offset;
            // Split borrows: the reader's chunk against the buffer and stack.
            let chunk = fill_buf(&mut self.reader)?;
            if chunk.is_empty() {
                let what = if in_string { "a string" } else { "a value" };
                return Err(ImportError::Malformed {
                    format: self.format,
                    position: Position::Byte(start),
                    message: format!("unexpected end of file inside {what} that starts here"),
                });
            }
            let len = chunk.len();
            let mut i = 0;
            // Start of the bytes not yet copied into `buf`.
            let mut run = 0;
            let mut done = false;
            let mut mismatch: Option<u8> = None;
            let compact = keep && self.compact;
            let stops = if compact { &STRUCTURAL_OR_SPACE } else { &STRUCTURAL };
            if escape_pending {
                i = 1;
                escape_pending = false;
            }
            'chunk: while i < len {
                if in_string {
                    let found = find_quote_or_backslash(chunk, i);
                    match found {
                        None => {
                            i = len;
                        }
                        Some(p) => {
                            i += p;
                            if chunk[i] == b'\\' {
                                if i + 1 < len {
                                    i += 2;
                                } else {
                                    i = len;
                                    escape_pending = true;
                                }
                            } else {
                                if keep && str_carry + (i - str_start) > max_token {
                                    keep = false;
                                    keep_head(&mut self.buf, &chunk[run..i]);
                                    self.too_large = Some(string_too_long(str_at, max_token));
                                }
                                i += 1;
                                in_string = false;
                                if self.stack.is_empty() {
                                    done = true;
                                    break 'chunk;
                                }
                            }
                        }
                    }
                } else {
                    while i < len && !stops[usize::from(chunk[i])] {
                        i += 1;
                    }
                    if i == len {
                        break;
                    }
                    let c = chunk[i];
                    if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                        // Only reached when compacting: copy what precedes the whitespace, drop the run.
                        if keep && self.buf.len() + (i - run) > max {
                            keep = false;
                            keep_head(&mut self.buf, &chunk[run..i]);
                            self.too_large.get_or_insert_with(|| element_too_large(start, max));
                        }
                        if keep {
                            push_run(&mut self.buf, chunk, run, i);
                        }
                        i = skip_space(chunk, i + 1);
                        run = i;
                        continue;
                    }
                    i += 1;
                    match c {
                        b'"' => {
                            in_string = true;
                            str_start = i;
                            str_carry = 0;
                            str_at = chunk_at + i as u64 - 1;
                        }
                        b'{' => self.stack.push(b'}'),
                        b'[' => self.stack.push(b']'),
                        _ => {
                            if self.stack.pop() != Some(c) {
                                mismatch = Some(c);
                                break 'chunk;
                            }
                            if self.stack.is_empty() {
                                done = true;
                                break 'chunk;
                            }
                        }
                    }
                }
            }
            if in_string {
                str_carry += i.saturating_sub(str_start);
                str_start = 0;
                if keep && str_carry > max_token {
                    keep = false;
                    keep_head(&mut self.buf, &chunk[run..i]);
                    self.too_large = Some(string_too_long(str_at, max_token));
                }
            }
            if keep && self.buf.len() + (i - run) > max {
                keep = false;
                keep_head(&mut self.buf, &chunk[run..i]);
                self.too_large.get_or_insert_with(|| element_too_large(start, max));
            }
            if keep {
                self.buf.extend_from_slice(&chunk[run..i]);
            }
            self.consume(i);
            if let Some(c) = mismatch {
                return Err(
                    self.malformed(self.offset - 1, format!("unexpected {:?}: brackets do not match", char::from(c)))
                );
            }
            if done {
                return Ok(());
            }
        }
    }
}

/// Appends the start of `bytes` to the head of a skipped element, up to
/// what a reject keeps.
fn keep_head(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = crate::Reject::MAX_RAW.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn string_too_long(at: u64, max: usize) -> String {
    format!("a JSON string at byte {at} longer than {} MiB: skipped", max / (1024 * 1024))
}

fn element_too_large(start: u64, max: usize) -> String {
    format!("the record at byte {start} is larger than {} MiB: skipped", max / (1024 * 1024))
}

/// Appends `chunk[run..end]` to `buf`. Runs between whitespace in
/// pretty-printed JSON are short and of every length, which makes `memcpy`'s
/// size dispatch mispredict; a fixed 16-byte copy trimmed afterwards does not.
#[inline]
fn push_run(buf: &mut Vec<u8>, chunk: &[u8], run: usize, end: usize) {
    let n = end - run;
    match chunk.get(run..run + 16) {
        Some(block) if n <= 16 => {
            let mut fixed = [0u8; 16];
            fixed.copy_from_slice(block);
            buf.extend_from_slice(&fixed);
            buf.truncate(buf.len() - (16 - n));
        }
        _ => buf.extend_from_slice(&chunk[run..end]),
    }
}

/// The offset from `i` of the first `"` or `\\` in `chunk[i..]`.
///
/// Most strings are short keys and values, where memchr's set-up costs
/// more than the search: look eight bytes at a time first (SWAR: the lowest
/// flagged byte of the classic "has zero byte" test is exact), and hand
/// long strings to memchr.
#[inline]
fn find_quote_or_backslash(chunk: &[u8], i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut at = i;
    while at < i + 32 {
        let Some(word) = chunk.get(at..at + 8) else { break };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes);
        let hits = zero_bytes(x ^ (ONES * u64::from(b'"'))) | zero_bytes(x ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(at - i + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr2(b'"', b'\\', &chunk[at..]).map(|p| at - i + p)
}

/// The index of the first non-whitespace byte at or after `i`.
///
/// Pretty-printed JSON indents with runs of spaces; counting them eight at a
/// time avoids a mispredicted loop exit per line.
#[inline]
fn skip_space(chunk: &[u8], mut i: usize) -> usize {
    loop {
        if let Some(word) = chunk.get(i..i + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            let spaces = (u64::from_le_bytes(bytes) ^ 0x2020_2020_2020_2020).trailing_zeros() / 8;
            i += spaces as usize;
            if spaces == 8 {
                continue;
            }
        }
        match chunk.get(i) {
            Some(b' ' | b'\t' | b'\n' | b'\r') => i += 1,
            _ => return i,
        }
    }
}

/// `fill_buf`, retrying interrupted reads.
fn fill_buf<R: BufRead>(reader: &mut R) -> Result<&[u8], ImportError> {
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(reader.fill_buf()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn elements_of_array(text: &[u8], chunk: usize) -> Result<Vec<(u64, Vec<u8>)>, ImportError> {
        elements(text, chunk, false)
    }

    fn elements(text: &[u8], chunk: usize, compact: bool) -> Result<Vec<(u64, Vec<u8>)>, ImportError> {
        let reader = std::io::BufReader::with_capacity(chunk, text);
        let mut s = JsonStream::new(reader, "JSON");
        s.set_compact(compact);
        assert_eq!(s.begin()?, Top::Array);
        let mut out = Vec::new();
        while let Some((at, element)) = s.next_element()? {
            out.push((at, whole(element).to_vec()));
        }
        s.finish()?;
        Ok(out)
    }

    fn whole(element: Element<'_>) -> &[u8] {
        match element {
            Element::Whole(raw) => raw,
            Element::TooLarge { why, .. } => panic!("too large: {why}"),
        }
    }

    #[test]
    fn splits_a_top_level_array_with_offsets() {
        let text = b"\xEF\xBB\xBF \n[ {\"a\": [1, \"]\\\"\"]} , 2,\"x\\\\\" ,null,[[]] ]\n";
        for chunk in [1, 2, 3, 7, 64] {
            let els = elements_of_array(text, chunk).unwrap();
            let raws: Vec<&[u8]> = els.iter().map(|(_, r)| r.as_slice()).collect();
            assert_eq!(raws, [&b"{\"a\": [1, \"]\\\"\"]}"[..], b"2", b"\"x\\\\\"", b"null", b"[[]]"], "chunk {chunk}");
            for (at, raw) in &els {
                let at = usize::try_from(*at).unwrap();
                assert_eq!(&text[at..at + raw.len()], raw.as_slice());
            }
        }
    }

    #[test]
    fn compacts_while_copying() {
        let text = b"[ {\n  \"a b\" : [ 1 ,\t2 ],\r\n  \"c\" : \"x  \\\" y\"\n} , \" s \" ,  3 ]";
        for chunk in [1, 2, 5, 100] {
            let els = elements(text, chunk, true).unwrap();
            let raws: Vec<&[u8]> = els.iter().map(|(_, r)| r.as_slice()).collect();
            assert_eq!(raws, [&b"{\"a b\":[1,2],\"c\":\"x  \\\" y\"}"[..], b"\" s \"", b"3"], "chunk {chunk}");
            assert_eq!(els[0].0, 2);
        }
    }

    #[test]
    fn walks_object_keys_and_skips_values() {
        let text =
            br#"{"rawSignals": {"big": [1,2,{"x":"}"}]}, "semanticSegments" : [ {"a":1}, {"b":"\u00b0"} ], "n": 5 }"#;
        let mut s = JsonStream::new(std::io::BufReader::with_capacity(4, &text[..]), "JSON");
        assert_eq!(s.begin().unwrap(), Top::Object);
        assert_eq!(s.next_key().unwrap().as_deref(), Some("rawSignals"));
        s.skip_value().unwrap();
        assert_eq!(s.next_key().unwrap().as_deref(), Some("semanticSegments"));
        assert!(s.begin_array().unwrap());
        let (at, raw) = s.next_element().unwrap().unwrap();
        let raw = whole(raw);
        assert_eq!(raw, b"{\"a\":1}");
        assert_eq!(&text[usize::try_from(at).unwrap()..][..7], b"{\"a\":1}");
        assert_eq!(whole(s.next_element().unwrap().unwrap().1), br#"{"b":"\u00b0"}"#);
        assert!(s.next_element().unwrap().is_none());
        assert_eq!(s.next_key().unwrap().as_deref(), Some("n"));
        assert_eq!(s.read_value().unwrap().1, b"5");
        assert_eq!(s.next_key().unwrap(), None);
        s.finish().unwrap();
    }

    #[test]
    fn empty_containers() {
        assert!(elements_of_array(b"[]", 1).unwrap().is_empty());
        assert!(elements_of_array(b" [ \n ] ", 2).unwrap().is_empty());
        let mut s = JsonStream::new(&b"{ }"[..], "JSON");
        assert_eq!(s.begin().unwrap(), Top::Object);
        assert_eq!(s.next_key().unwrap(), None);
    }

    fn malformed_at(text: &[u8]) -> u64 {
        match elements_of_array(text, 3) {
            Err(ImportError::Malformed { position: Position::Byte(b), .. }) => b,
            other => panic!("{:?} should be malformed, got {other:?}", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn structural_errors_name_the_offset() {
        assert_eq!(malformed_at(b"[{\"a\":1]"), 7);
        assert_eq!(malformed_at(b"[1 2]"), 3);
        assert_eq!(malformed_at(b"[1,]"), 3);
        assert_eq!(malformed_at(b"[{\"a\":\"unterminated]"), 1);
        assert_eq!(malformed_at(b"[{\"a\":1}"), 8);
        assert_eq!(malformed_at(b"[1] x"), 4);
        assert_eq!(malformed_at(b"[:]"), 1);
    }

    #[test]
    fn oversized_elements_and_strings_are_skipped_and_the_next_element_is_whole() {
        let long = "a".repeat(5000);
        let text = format!(
            "[[{}], {{\"k\": \"{long}\", \"n\": 1}}, \"{long}\", {}, {{\"ok\": 2}}]",
            "1,".repeat(6000) + "1",
            "9".repeat(3000)
        );
        for chunk in [7, 100, 10_000] {
            let mut s = JsonStream::new(std::io::BufReader::with_capacity(chunk, text.as_bytes()), "JSON");
            s.set_max_element(10_000);
            s.set_max_token(2000);
            s.set_compact(chunk == 100);
            s.begin().unwrap();
            let mut got = Vec::new();
            while let Some((at, element)) = s.next_element().unwrap() {
                got.push(match element {
                    Element::Whole(raw) => format!("{at} whole {}", String::from_utf8_lossy(raw)),
                    Element::TooLarge { head, why } => {
                        assert!(head.len() <= crate::Reject::MAX_RAW, "{}", head.len());
                        assert_eq!(text.as_bytes()[usize::try_from(at).unwrap()], head[0]);
                        format!("{at} {why}")
                    }
                });
            }
            s.finish().unwrap();
            let second = text.find("{\"k\"").unwrap();
            let third = text.find(", \"a").unwrap() + 2;
            let fourth = text.find("999").unwrap();
            assert_eq!(got.len(), 5, "{got:?}");
            assert!(got[0].starts_with("1 the record at byte 1 is larger than"), "{}", got[0]);
            assert!(got[1].starts_with(&format!("{second} a JSON string at byte {} longer", second + 6)), "{}", got[1]);
            assert!(got[2].starts_with(&format!("{third} a JSON string at byte {third} longer")), "{}", got[2]);
            assert!(got[3].starts_with(&format!("{fourth} a JSON value at byte {fourth} longer")), "{}", got[3]);
            assert!(
                got[4].ends_with(if chunk == 100 { "whole {\"ok\":2}" } else { "whole {\"ok\": 2}" }),
                "{}",
                got[4]
            );
        }
    }

    #[test]
    fn scalar_top_level_is_unrecognised() {
        let mut s = JsonStream::new(&b"  42"[..], "JSON");
        assert!(matches!(s.begin(), Err(ImportError::Unrecognised { .. })));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            "(\\PC|[\"\\\\\\]\\[{}\\n\\t\u{0}\u{1f}°])*".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\\\\{}]{0,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn splitting_matches_serde_json(items in prop::collection::vec(arb_json(), 0..10), pretty: bool, compact: bool, chunk in 1usize..40) {
            let doc = Value::Array(items.clone());
            let text = if pretty { serde_json::to_vec_pretty(&doc).unwrap() } else { serde_json::to_vec(&doc).unwrap() };
            let els = elements(&text, chunk, compact).unwrap();
            // Compare with serde_json's own reading of the text (floats need not round-trip).
            let Value::Array(items) = serde_json::from_slice::<Value>(&text).unwrap() else { unreachable!() };
            prop_assert_eq!(els.len(), items.len());
            for (((at, raw), want), orig) in els.iter().zip(&items).zip(doc.as_array().unwrap()) {
                let got: Value = serde_json::from_slice(raw).unwrap();
                prop_assert_eq!(&got, want);
                let at = usize::try_from(*at).unwrap();
                if compact {
                    // Compact text is exactly serde_json's compact form of the element.
                    prop_assert_eq!(raw, &serde_json::to_vec(orig).unwrap());
                    prop_assert_eq!(text[at], raw[0]);
                } else {
                    prop_assert_eq!(&text[at..at + raw.len()], raw.as_slice());
                }
            }
        }

        #[test]
        fn object_members_match_serde_json(members in prop::collection::btree_map("\\PC{0,8}", arb_json(), 0..8), chunk in 1usize..40) {
            let doc = Value::Object(members.clone().into_iter().collect());
            let text = serde_json::to_vec_pretty(&doc).unwrap();
            let Value::Object(members) = serde_json::from_slice::<Value>(&text).unwrap() else { unreachable!() };
            let mut s = JsonStream::new(std::io::BufReader::with_capacity(chunk, &text[..]), "JSON");
            prop_assert_eq!(s.begin().unwrap(), Top::Object);
            let mut seen = Vec::new();
            let mut toggle = false;
            while let Some(key) = s.next_key().unwrap() {
                let want = &members[&key];
                toggle = !toggle;
                if toggle && s.begin_array().unwrap() {
                    let mut got = Vec::new();
                    while let Some((_, raw)) = s.next_element().unwrap() {
                        got.push(serde_json::from_slice::<Value>(whole(raw)).unwrap());
                    }
                    prop_assert_eq!(&Value::Array(got), want);
                } else if toggle {
                    s.skip_value().unwrap();
                } else {
                    let (_, raw) = s.read_value().unwrap();
                    prop_assert_eq!(&serde_json::from_slice::<Value>(raw).unwrap(), want);
                }
                seen.push(key);
            }
            s.finish().unwrap();
            prop_assert_eq!(seen, members.keys().cloned().collect::<Vec<_>>());
            prop_assert!(members.len() <= doc.as_object().map_or(0, serde_json::Map::len));
        }
    }

    /// `POLO_SPLIT_FILE=… cargo test --release -p polo-formats --lib split_throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "performance measurement; run in release mode"]
    fn split_throughput() {
        let Ok(path) = std::env::var("POLO_SPLIT_FILE") else { return };
        for compact in [false, true] {
            let file = std::fs::File::open(&path).unwrap();
            let bytes = file.metadata().unwrap().len();
            let cpu_ns = || {
                std::fs::read_to_string("/proc/thread-self/schedstat")
                    .ok()
                    .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
                    .unwrap_or(0)
            };
            let start = cpu_ns();
            let mut s = JsonStream::new(std::io::BufReader::with_capacity(256 * 1024, file), "JSON");
            s.set_compact(compact);
            s.begin().unwrap();
            let mut n = 0u64;
            while let Some(_key) = s.next_key().unwrap() {
                if s.begin_array().unwrap() {
                    while let Some((_, raw)) = s.next_element().unwrap() {
                        n += whole(raw).len() as u64;
                    }
                } else {
                    s.skip_value().unwrap();
                }
            }
            #[allow(clippy::cast_precision_loss)]
            let mbs = bytes as f64 / ((cpu_ns() - start) as f64 / 1e9) / 1e6;
            eprintln!("compact={compact}: {mbs:.0} MB/s per core CPU ({n} bytes kept)");
        }
    }
}
