//! A `BufRead` adapter that keeps every XML token under a size limit.
//!
//! quick-xml reads a whole event into one buffer: a 2 GiB text node or
//! attribute value becomes a 2 GiB allocation. [`XmlGuard`] sits between the
//! input and quick-xml and follows the document with a small lexer (text,
//! tags and their quoted attribute values, comments, CDATA, processing
//! instructions, DOCTYPE). When a text run, an attribute value, a CDATA
//! section, a comment or a processing instruction reaches the limit, the
//! guard stops handing out its bytes and consumes the rest of it from the
//! input without keeping it, up to (not including) its terminator, which
//! quick-xml then sees as usual. So quick-xml holds at most `max` bytes of
//! any token, the document stays well-formed, and each cut is queued as an
//! [`Oversized`] with the token's offset in the original input.
//!
//! A tag whose names and spacing alone pass `2 × max`, or a DOCTYPE over
//! `max`, is an error: there is nothing sensible to cut there.
//!
//! Cuts never split a UTF-8 character or an entity reference (`&amp;`).
//! Offsets that quick-xml reports count only the bytes handed out;
//! [`XmlGuard::original`] maps them back to offsets in the input.

use std::collections::VecDeque;
use std::io::{self, BufRead, ErrorKind, Read};

use memchr::{memchr, memchr2, memchr3};

/// What kind of token was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// A text node or CDATA section.
    Text,
    /// An attribute value.
    Attribute,
    /// A comment or processing instruction (ignored content).
    Markup,
}

impl Cut {
    /// Words for a reject reason.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Self::Text => "XML text",
            Self::Attribute => "XML attribute value",
            Self::Markup => "XML comment or processing instruction",
        }
    }
}

/// A token that was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oversized {
    /// Offset of the token's start in the guard's input.
    pub(crate) offset: u64,
    /// What it was.
    pub(crate) kind: Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    Lt,
    /// After `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    Comment,
    CData,
    Pi,
    Doctype,
    /// Inside a start or end tag, outside quotes.
    Tag,
    /// Inside an attribute value quoted with this byte.
    Value(u8),
}

#[derive(Debug, Clone, Copy)]
struct Lexer {
    state: State,
    /// Bytes of the current text run, value, comment, CDATA, PI or DOCTYPE.
    token: usize,
    /// Bytes of the current tag, values included.
    tag: usize,
    /// The current token was cut: only its terminator follows.
    cut: bool,
    /// Inside an entity reference in text (`&` seen, `;` not yet).
    ref_open: bool,
    /// The last two bytes, for the `-->`, `]]>` and `?>` terminators.
    prev: [u8; 2],
    /// DOCTYPE bracket depth and open quote.
    depth: u32,
    quote: u8,
    /// Output offset where the current token starts.
    start: u64,
}

/// True unless `b` continues a UTF-8 character.
fn char_start(b: u8) -> bool {
    b & 0xC0 != 0x80
}

fn too_long(what: &str, max: usize) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("{what} longer than {} bytes", max))
}

impl Lexer {
    fn new() -> Self {
        Self {
            state: State::Text,
            token: 0,
            tag: 0,
            cut: false,
            ref_open: false,
            prev: [0; 2],
            depth: 0,
            quote: 0,
            start: 0,
        }
    }

    fn enter(&mut self, state: State, start: u64) {
        self.state = state;
        self.token = 0;
        self.cut = false;
        self.ref_open = false;
        self.prev = [0; 2];
        self.start = start;
    }

    fn push_prev(&mut self, bytes: &[u8]) {
        match bytes {
            [] => {}
            [b] => self.prev = [self.prev[1], *b],
            [.., a, b] => self.prev = [*a, *b],
        }
    }

    /// Follows `b` (starting at output offset `base`) and returns how many
    /// bytes may pass: fewer than `b.len()` only when a token must be cut
    /// before the returned index.
    fn advance(&mut self, b: &[u8], base: u64, max: usize) -> io::Result<usize> {
        let mut i = 0;
        while i < b.len() {
            let at = |i: usize| base + i as u64;
            match self.state {
                State::Text => {
                    if !self.cut && self.token >= max {
                        let c = b[i];
                        if c != b'<' {
                            let may_cut = !self.ref_open || self.token >= max + 64;
                            if may_cut && char_start(c) {
                                return Ok(i);
                            }
                            match c {
                                b'&' => self.ref_open = true,
                                b';' => self.ref_open = false,
                                _ => {}
                            }
                            self.token += 1;
                            i += 1;
                            continue;
                        }
                    }
                    let room = if self.cut { usize::MAX } else { max.saturating_sub(self.token).max(1) };
                    let end = b.len().min(i.saturating_add(room));
                    let window = &b[i..end];
                    let hit =
                        if self.ref_open { memchr3(b'<', b'&', b';', window) } else { memchr2(b'<', b'&', window) };
                    match hit {
                        Some(p) => {
                            self.token += p;
                            i += p;
                            match b[i] {
                                b'<' => {
                                    self.enter(State::Lt, at(i));
                                    self.tag = 1;
                                }
                                b'&' => {
                                    self.ref_open = true;
                                    self.token += 1;
                                }
                                _ => {
                                    self.ref_open = false;
                                    self.token += 1;
                                }
                            }
                            i += 1;
                        }
                        None => {
                            self.token += window.len();
                            i = end;
                        }
                    }
                }
                State::Lt => match b[i] {
                    b'!' => {
                        self.state = State::Bang;
                        self.tag += 1;
                        i += 1;
                    }
                    b'?' => {
                        let start = self.start;
                        self.enter(State::Pi, start);
                        i += 1;
                    }
                    _ => self.state = State::Tag,
                },
                State::Bang => match b[i] {
                    b'-' => {
                        self.state = State::BangDash;
                        i += 1;
                    }
                    b'[' => {
                        let start = self.start;
                        self.enter(State::CData, start);
                        i += 1;
                    }
                    _ => {
                        let start = self.start;
                        self.enter(State::Doctype, start);
                        self.depth = 0;
                        self.quote = 0;
                    }
                },
                State::BangDash => {
                    let start = self.start;
                    if b[i] == b'-' {
                        self.enter(State::Comment, start);
                        i += 1;
                    } else {
                        self.enter(State::Doctype, start);
                    }
                }
                State::Comment | State::CData | State::Pi => {
                    if !self.cut && self.token >= max {
                        if self.state != State::CData || char_start(b[i]) {
                            return Ok(i);
                        }
                        self.push_prev(&b[i..=i]);
                        self.token += 1;
                        i += 1;
                        continue;
                    }
                    let room = if self.cut { usize::MAX } else { max.saturating_sub(self.token).max(1) };
                    let end = b.len().min(i.saturating_add(room));
                    match memchr(b'>', &b[i..end]) {
                        Some(p) => {
                            let gt = i + p;
                            let p1 = if gt > i { b[gt - 1] } else { self.prev[1] };
                            let p2 = if gt > i + 1 {
                                b[gt - 2]
                            } else if gt > i {
                                self.prev[1]
                            } else {
                                self.prev[0]
                            };
                            let done = match self.state {
                                State::Comment => p1 == b'-' && p2 == b'-',
                                State::CData => p1 == b']' && p2 == b']',
                                _ => p1 == b'?',
                            };
                            self.push_prev(&b[i..=gt]);
                            self.token += p + 1;
                            i = gt + 1;
                            if done {
                                self.enter(State::Text, at(i));
                            }
                        }
                        None => {
                            self.push_prev(&b[i..end]);
                            self.token += end - i;
                            i = end;
                        }
                    }
                }
                State::Doctype => {
                    let c = b[i];
                    self.token += 1;
                    if self.token > max {
                        return Err(too_long("an XML DOCTYPE", max));
                    }
                    i += 1;
                    if self.quote != 0 {
                        if c == self.quote {
                            self.quote = 0;
                        }
                    } else {
                        match c {
                            b'"' | b'\'' => self.quote = c,
                            b'[' => self.depth += 1,
                            b']' => self.depth = self.depth.saturating_sub(1),
                            b'>' if self.depth == 0 => self.enter(State::Text, at(i)),
                            _ => {}
                        }
                    }
                }
                State::Tag => {
                    if self.tag >= 2 * max {
                        return Err(too_long("an XML tag", 2 * max));
                    }
                    let end = b.len().min(i + (2 * max - self.tag));
                    match memchr3(b'"', b'\'', b'>', &b[i..end]) {
                        Some(p) => {
                            self.tag += p + 1;
                            i += p + 1;
                            let c = b[i - 1];
                            if c == b'>' {
                                self.enter(State::Text, at(i));
                            } else {
                                let tag = self.tag;
                                self.enter(State::Value(c), at(i));
                                self.tag = tag;
                            }
                        }
                        None => {
                            self.tag += end - i;
                            i = end;
                        }
                    }
                }
                State::Value(q) => {
                    if !self.cut && self.tag >= max && b[i] != q {
                        if char_start(b[i]) {
                            return Ok(i);
                        }
                        self.token += 1;
                        self.tag += 1;
                        i += 1;
                        continue;
                    }
                    let room = if self.cut { usize::MAX } else { max.saturating_sub(self.tag).max(1) };
                    let end = b.len().min(i.saturating_add(room));
                    match memchr(q, &b[i..end]) {
                        Some(p) => {
                            self.token += p;
                            self.tag += p + 1;
                            i += p + 1;
                            self.state = State::Tag;
                            self.cut = false;
                        }
                        None => {
                            self.token += end - i;
                            self.tag += end - i;
                            i = end;
                        }
                    }
                }
            }
        }
        Ok(b.len())
    }
}

/// The adapter; see the module documentation.
pub(crate) struct XmlGuard<R> {
    inner: R,
    max: usize,
    lexer: Lexer,
    /// How many of the bytes the last scan found safe are still to be
    /// consumed, and the lexer after all of them.
    ahead: Option<(usize, Lexer)>,
    /// A multi-byte terminator consumed while skipping, still to hand out.
    pending: [u8; 3],
    pending_pos: usize,
    pending_len: usize,
    /// Bytes handed out and consumed.
    out: u64,
    /// Input bytes skipped so far.
    skipped: u64,
    /// Bytes the lexer has looked at, to keep reading linear (tested).
    scanned: u64,
    /// `(output offset of a cut, input bytes skipped up to and including it)`.
    skips: Vec<(u64, u64)>,
    oversized: VecDeque<Oversized>,
}

impl<R: BufRead> XmlGuard<R> {
    /// Guards `inner`, cutting tokens at `max` bytes (use [`super::MAX_TOKEN`]).
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            lexer: Lexer::new(),
            ahead: None,
            pending: [0; 3],
            pending_pos: 0,
            pending_len: 0,
            out: 0,
            skipped: 0,
            scanned: 0,
            skips: Vec::new(),
            oversized: VecDeque::new(),
        }
    }

    /// The oldest cut not yet taken.
    pub(crate) fn take_oversized(&mut self) -> Option<Oversized> {
        self.oversized.pop_front()
    }

    /// The input offset of output offset `out` (what quick-xml reports).
    pub(crate) fn original(&self, out: u64) -> u64 {
        let i = self.skips.partition_point(|&(at, _)| at <= out);
        out + if i == 0 { 0 } else { self.skips[i - 1].1 }
    }

    /// Hands the text that follows the start tag just read straight to
    /// `piece`, in the input's chunks, up to (not including) the next `<` or
    /// `&`, without passing it to the parser: the one text node an importer
    /// reads incrementally (KML `<coordinates>`) may be of any length and is
    /// never held. An entity reference, CDATA or a comment ends the pass; what
    /// follows goes through the parser (and its limit) as usual. `piece` gets
    /// each chunk with the input offset of its first byte.
    ///
    /// Must be called right after the parser returned a start tag (not an
    /// expanded empty element); it then sees the text as if it were empty.
    ///
    /// # Errors
    /// Read errors, and whatever `piece` returns.
    pub(crate) fn pass_text(&mut self, piece: &mut dyn FnMut(&[u8], u64) -> io::Result<()>) -> io::Result<()> {
        let began = self.original(self.out);
        if self.pending_pos < self.pending_len {
            // Only a cut comment's terminator is ever pending: not after a start tag.
            return Ok(());
        }
        self.ahead = None;
        let mut passed = 0u64;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            let end = memchr2(b'<', b'&', chunk);
            let n = end.unwrap_or(chunk.len());
            piece(&chunk[..n], began + passed)?;
            self.inner.consume(n);
            passed += n as u64;
            if end.is_some() {
                break;
            }
        }
        // The parser goes on at the `<` or `&` as at the start of a text node.
        self.lexer.enter(State::Text, self.out);
        if passed > 0 {
            self.skipped += passed;
            // Offsets before this point are never asked for again (the parser
            // has moved past them), so one earlier entry is all that is kept:
            // a file of a million `<coordinates>` keeps no million entries.
            if self.skips.len() > 1 {
                self.skips.drain(..self.skips.len() - 1);
            }
            self.skips.push((self.out, self.skipped));
        }
        Ok(())
    }

    /// Cuts the current token: consumes the rest of it from the input.
    fn skip(&mut self) -> io::Result<()> {
        let kind = match self.lexer.state {
            State::Text | State::CData => Cut::Text,
            State::Value(_) => Cut::Attribute,
            _ => Cut::Markup,
        };
        let offset = self.original(self.lexer.start);
        let terminator: &[u8] = match self.lexer.state {
            State::Comment => b"-->",
            State::CData => b"]]>",
            State::Pi => b"?>",
            _ => b"",
        };
        let mut consumed = 0u64;
        let mut prev = self.lexer.prev;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            match self.lexer.state {
                State::Text | State::Value(_) => {
                    let stop = if let State::Value(q) = self.lexer.state { q } else { b'<' };
                    if let Some(p) = memchr(stop, chunk) {
                        self.inner.consume(p);
                        consumed += p as u64;
                        break;
                    }
                }
                _ => {
                    let mut found = None;
                    for p in memchr::memchr_iter(b'>', chunk) {
                        let p1 = if p >= 1 { chunk[p - 1] } else { prev[1] };
                        let p2 = match p {
                            0 => prev[0],
                            1 => prev[1],
                            _ => chunk[p - 2],
                        };
                        let tail = [p2, p1, b'>'];
                        if tail.ends_with(terminator) {
                            found = Some(p);
                            break;
                        }
                    }
                    if let Some(p) = found {
                        self.inner.consume(p + 1);
                        consumed += p as u64 + 1;
                        self.pending[..terminator.len()].copy_from_slice(terminator);
                        self.pending_pos = 0;
                        self.pending_len = terminator.len();
                        consumed -= terminator.len() as u64;
                        break;
                    }
                    match chunk {
                        [.., a, b] => prev = [*a, *b],
                        [b] => prev = [prev[1], *b],
                        [] => {}
                    }
                }
            }
            let n = chunk.len();
            self.inner.consume(n);
            consumed += n as u64;
        }
        self.skipped += consumed;
        self.skips.push((self.out, self.skipped));
        self.lexer.cut = true;
        self.lexer.prev = [0; 2];
        self.ahead = None;
        self.oversized.push_back(Oversized { offset, kind });
        Ok(())
    }
}

impl<R: BufRead> Read for XmlGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for XmlGuard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        loop {
            if self.pending_pos < self.pending_len {
                return Ok(&self.pending[self.pending_pos..self.pending_len]);
            }
            // Bytes already scanned and known to be safe are handed out again
            // without a new scan: a parser consumes a few bytes per event, and
            // scanning the rest of the buffer on every call made reading
            // quadratic in the buffer's size (a 1.6 MB GPX took minutes).
            match self.ahead {
                Some((n, _)) if n > 0 => return Ok(&self.inner.fill_buf()?[..n]),
                Some((_, lexer)) => {
                    self.lexer = lexer;
                    self.ahead = None;
                }
                None => {}
            }
            let (max, base) = (self.max, self.out);
            let mut lexer = self.lexer;
            let n = {
                let chunk = self.inner.fill_buf()?;
                if chunk.is_empty() {
                    self.ahead = None;
                    return Ok(&[]);
                }
                self.scanned += chunk.len() as u64;
                lexer.advance(chunk, base, max)?
            };
            if n > 0 {
                self.ahead = Some((n, lexer));
                return Ok(&self.inner.fill_buf()?[..n]);
            }
            self.skip()?;
        }
    }

    fn consume(&mut self, amt: usize) {
        if amt == 0 {
            return;
        }
        if self.pending_pos < self.pending_len {
            let end = (self.pending_pos + amt).min(self.pending_len);
            let bytes = self.pending;
            // The terminator bytes only end the token: nothing to cut or refuse.
            let _ = self.lexer.advance(&bytes[self.pending_pos..end], self.out, self.max);
            self.out += (end - self.pending_pos) as u64;
            self.pending_pos = end;
            return;
        }
        match self.ahead.as_mut() {
            // Within what the last scan found safe: its end state stays ahead.
            Some((n, _)) if *n >= amt => *n -= amt,
            _ => {
                self.ahead = None;
                if let Ok(chunk) = self.inner.fill_buf() {
                    let amt = amt.min(chunk.len());
                    // A prefix of what fill_buf handed out: follows without a cut.
                    let _ = self.lexer.advance(&chunk[..amt], self.out, self.max);
                }
            }
        }
        self.inner.consume(amt);
        self.out += amt as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parser_that_consumes_a_few_bytes_at_a_time_costs_one_scan_of_the_input() {
        let mut text = String::from("<gpx>");
        while text.len() < 1 << 20 {
            text.push_str(r#"<trkpt lat="48.1" lon="11.5"><time>2021-06-01T08:00:00Z</time></trkpt>"#);
        }
        text.push_str("</gpx>");
        let mut g = XmlGuard::new(io::BufReader::with_capacity(256 * 1024, text.as_bytes()), 1 << 20);
        let mut out = 0;
        loop {
            let available = g.fill_buf().unwrap().len();
            if available == 0 {
                break;
            }
            g.consume(available.min(3));
            out += available.min(3);
        }
        assert_eq!(out, text.len());
        // Each byte is lexed about once: rescanning the buffer on every call made this quadratic.
        assert!(g.scanned <= 2 * text.len() as u64, "{} bytes scanned for {}", g.scanned, text.len());
    }

    fn guard(text: &[u8], max: usize, chunk: usize) -> (String, Vec<Oversized>, XmlGuard<io::BufReader<&[u8]>>) {
        let mut g = XmlGuard::new(io::BufReader::with_capacity(chunk, text), max);
        let mut out = Vec::new();
        // Read in odd sizes, like a parser that consumes part of what it sees.
        loop {
            let available = g.fill_buf().unwrap();
            if available.is_empty() {
                break;
            }
            let n = available.len().min(3);
            out.extend_from_slice(&available[..n]);
            g.consume(n);
        }
        let mut cuts = Vec::new();
        while let Some(o) = g.take_oversized() {
            cuts.push(o);
        }
        (String::from_utf8(out).unwrap(), cuts, g)
    }

    #[test]
    fn short_tokens_pass_unchanged() {
        let doc = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><a x="1" y='>'>t &amp; u<!-- c --><![CDATA[<d>]]></a>"#;
        for chunk in [1, 2, 7, 100] {
            let (out, cuts, _) = guard(doc, 64, chunk);
            assert_eq!(out.as_bytes(), doc, "chunk {chunk}");
            assert!(cuts.is_empty());
        }
    }

    #[test]
    fn long_tokens_are_cut_before_their_terminator() {
        let long = "é".repeat(20);
        let doc = format!(
            "<a v=\"{long}\" w=\"1\">{long}<!--{long}--><![CDATA[{long}]]><?p {long}?>x &amp;&amp;&amp;&amp;&amp;&amp;</a>"
        );
        for chunk in [1, 3, 8, 1000] {
            let (out, cuts, g) = guard(doc.as_bytes(), 10, chunk);
            let short = "é".repeat(5);
            let short_amp = "x &amp;&amp;";
            assert_eq!(
                out,
                format!(
                    "<a v=\"{}\" w=\"\">{short}<!--{short}--><![CDATA[{}]]><?p {}?>{short_amp}</a>",
                    "é".repeat(2),
                    "é".repeat(2),
                    "é".repeat(4)
                ),
                "chunk {chunk}"
            );
            let kinds: Vec<Cut> = cuts.iter().map(|c| c.kind).collect();
            assert_eq!(
                kinds,
                [Cut::Attribute, Cut::Attribute, Cut::Text, Cut::Markup, Cut::Text, Cut::Markup, Cut::Text]
            );
            assert_eq!(cuts[0].offset, 6);
            assert_eq!(&doc.as_bytes()[usize::try_from(cuts[2].offset).unwrap()..][..2], "é".as_bytes());
            // Output offsets map back to the input.
            let close = out.rfind("</a>").unwrap() as u64;
            assert_eq!(g.original(close), doc.rfind("</a>").unwrap() as u64);
        }
    }

    #[test]
    fn an_endless_tag_is_an_error() {
        let doc = format!("<a{}>", " b".repeat(50));
        let mut g = XmlGuard::new(doc.as_bytes(), 10);
        let mut sink = Vec::new();
        let err = g.read_to_end(&mut sink).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }
}
