//! Shared plumbing for the XML importers (GPX and KML), on top of
//! quick-xml's namespace-aware pull parser.
//!
//! Why a layer of its own:
//!
//! * **Namespaces by URI, never by prefix.** The same Garmin extension comes
//!   as `gpxtpx:`, `ns3:` or `tp1:`; KML's `gx:` is sometimes spelled
//!   differently; and un-prefixed children inherit the default namespace.
//!   [`XmlStream`] resolves every start and end tag to `(namespace URI, local
//!   name)` with [`quick_xml::NsReader`], so the importers compare URIs.
//! * **Lenient start.** Real files begin with a UTF-8 BOM or with blank lines
//!   before `<?xml …?>` (not well-formed, but common: OsmAnd, Dawarich
//!   fixtures). [`XmlStream::new`] skips both before the parser sees a byte,
//!   and adds the skipped length back to every reported offset.
//! * **Text in one piece.** quick-xml reports text, CDATA and each entity
//!   reference as separate events; the stream glues them into one string per
//!   element (entities resolved), which the importers read at the end tag.
//!   The exception is a text node an importer reads incrementally, of any
//!   length: [`XmlStream::stream_text`] hands it over in pieces as it is
//!   read (KML `<coordinates>`, which can hold a whole day's path).
//! * **Positions.** Every event's starting byte offset in the original file is
//!   kept, so rejects can say [`Position::Byte`].
//!
//! * **Bounded tokens.** The parser reads through [`XmlGuard`]: a text node,
//!   attribute value, CDATA section or comment over [`MAX_TOKEN`] is skipped
//!   without being held, and reported as [`Node::Oversized`] right after it
//!   was read; the cut text reaches the end tag as empty text. The importer
//!   rejects the record it belonged to.
//!
//! Memory stays bounded by [`MAX_TOKEN`] per token: the event buffer and the
//! text buffer are reused for the whole file.

use std::io::BufRead;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};

use crate::bounded::MAX_TOKEN;
use crate::bounded::xml::{Cut, XmlGuard};
use crate::{ImportError, Position};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Consumes a UTF-8 BOM and any whitespace at the start of `reader`,
/// returning how many bytes were skipped.
pub(crate) fn skip_bom_and_whitespace<R: BufRead>(reader: &mut R) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    let mut first = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        let mut n = 0;
        if first {
            first = false;
            if buf.len() < UTF8_BOM.len() && UTF8_BOM.starts_with(buf) {
                // A BOM split across reads is too exotic to matter: leave it
                // to quick-xml, which strips BOMs itself.
                return Ok(skipped);
            }
            if buf.starts_with(UTF8_BOM) {
                n = UTF8_BOM.len();
            }
        }
        let ws = buf[n..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        n += ws;
        let all = n == buf.len();
        reader.consume(n);
        skipped += n as u64;
        if !all {
            return Ok(skipped);
        }
    }
}

/// One structural event of the document, namespaces resolved.
pub(crate) enum Node<'a> {
    /// A start tag (empty elements are reported as start + end).
    Start {
        /// Namespace URI, `""` when the name is in no namespace.
        ns: &'a str,
        /// Local name, without prefix.
        local: &'a str,
        /// The tag, for its attributes.
        tag: BytesStart<'a>,
        /// Where the tag starts in the file.
        at: Position,
    },
    /// An end tag.
    End {
        /// Namespace URI, `""` when the name is in no namespace.
        ns: &'a str,
        /// Local name, without prefix.
        local: &'a str,
        /// True when the element had no child elements (only text).
        leaf: bool,
        /// The text since the last start or end tag, entities resolved,
        /// untrimmed: for a leaf, its whole text.
        text: &'a str,
    },
    /// A token over [`MAX_TOKEN`] was skipped: it belongs to the element
    /// being read (an attribute of the last start tag, or the text of the
    /// element still open).
    Oversized {
        /// Where the token starts in the file.
        at: Position,
        /// What it was, for the reject reason ("XML text").
        what: &'static str,
    },
    /// End of the document.
    Eof,
}

/// A namespace-resolving pull reader over a byte stream.
pub(crate) struct XmlStream<R> {
    reader: NsReader<XmlGuard<R>>,
    buf: Vec<u8>,
    tag: String,
    text: String,
    /// Bytes skipped before the parser started (BOM, blank lines).
    base: u64,
    /// True when the last structural event was a start tag.
    after_start: bool,
    /// The text since the last start tag was cut: it goes out empty.
    text_cut: bool,
    /// The last start tag was a whole `<…>` (not an expanded `<…/>`), and
    /// nothing has been read since: its text may be streamed.
    text_may_stream: bool,
    format: &'static str,
}

impl<R: BufRead> XmlStream<R> {
    /// Wraps `reader`, skipping a BOM and leading whitespace first.
    ///
    /// # Errors
    /// Read errors.
    pub(crate) fn new(reader: R, format: &'static str) -> Result<Self, ImportError> {
        Self::with_limit(reader, format, MAX_TOKEN)
    }

    /// [`XmlStream::new`] with another token limit (tests).
    pub(crate) fn with_limit(mut reader: R, format: &'static str, max: usize) -> Result<Self, ImportError> {
        let base = skip_bom_and_whitespace(&mut reader)?;
        let mut reader = NsReader::from_reader(XmlGuard::new(reader, max));
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.trim_text(false);
        Ok(Self {
            reader,
            buf: Vec::with_capacity(4096),
            tag: String::new(),
            text: String::new(),
            base,
            after_start: false,
            text_cut: false,
            text_may_stream: false,
            format,
        })
    }

    /// The error for a document that ends while `open` is still open: a
    /// truncated file.
    pub(crate) fn truncated(&self, open: &str) -> ImportError {
        ImportError::Malformed {
            format: self.format,
            position: Position::Byte(self.base + self.reader.get_ref().original(self.reader.buffer_position())),
            message: format!("the file ends inside <{open}>: truncated?"),
        }
    }

    fn malformed(&self, message: String) -> ImportError {
        ImportError::Malformed {
            format: self.format,
            position: Position::Byte(self.base + self.reader.get_ref().original(self.reader.error_position())),
            message,
        }
    }

    /// The next start tag, end tag or end of document. Text, CDATA and
    /// entity references are accumulated into the next end tag's `text`;
    /// comments, declarations and processing instructions are skipped.
    ///
    /// # Errors
    /// [`ImportError::Malformed`] when the XML is not well-formed.
    pub(crate) fn next(&mut self) -> Result<Node<'_>, ImportError> {
        if !self.after_start {
            // The text went out with the previous end tag.
            self.text.clear();
        }
        self.text_may_stream = false;
        loop {
            if let Some(cut) = self.reader.get_mut().take_oversized() {
                if cut.kind == Cut::Text {
                    self.text_cut = true;
                }
                // A cut comment or processing instruction loses nothing.
                if cut.kind != Cut::Markup {
                    return Ok(Node::Oversized { at: Position::Byte(self.base + cut.offset), what: cut.kind.what() });
                }
            }
            self.buf.clear();
            let parsed_before = self.reader.buffer_position();
            let start = self.base + self.reader.get_ref().original(parsed_before);
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => return Err(self.malformed(e.to_string())),
            };
            match event {
                Event::Start(tag) => {
                    self.text.clear();
                    self.text_cut = false;
                    self.after_start = true;
                    // Copy the tag out of the event buffer (one small memcpy,
                    // the buffer is reused) so the node can carry the tag and
                    // the resolver's answer together.
                    let name_len = tag.name().as_ref().len();
                    self.tag.clear();
                    self.tag.push_str(&tag);
                    drop(tag);
                    // `<` + the tag + `>`: a real start tag. An empty element
                    // (`<…/>`, one byte more) is expanded by the parser and has
                    // no text to stream.
                    self.text_may_stream = self.reader.buffer_position() - parsed_before == self.tag.len() as u64 + 2;
                    let name = self.tag.get(..name_len).unwrap_or(&self.tag);
                    let (res, local) = self.reader.resolver().resolve_element(QName(name));
                    let ns = namespace(res);
                    let local = local.into_inner();
                    let tag = BytesStart::from_content(self.tag.as_str(), name_len);
                    return Ok(Node::Start { ns, local, tag, at: Position::Byte(start) });
                }
                Event::End(tag) => {
                    let leaf = self.after_start;
                    self.after_start = false;
                    if std::mem::take(&mut self.text_cut) {
                        self.text.clear();
                    }
                    self.tag.clear();
                    self.tag.push_str(tag.name().as_ref());
                    drop(tag);
                    let (res, local) = self.reader.resolver().resolve_element(QName(&self.tag));
                    let ns = namespace(res);
                    let local = local.into_inner();
                    return Ok(Node::End { ns, local, leaf, text: &self.text });
                }
                Event::Text(t) => self.text.push_str(&t.xml10_content()),
                Event::CData(c) => self.text.push_str(&c.into_inner()),
                Event::GeneralRef(r) => {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        self.text.push(c);
                    } else if let Some(s) = quick_xml::escape::resolve_xml_entity(&r) {
                        self.text.push_str(s);
                    } else {
                        // An undeclared entity: keep it literally rather than fail.
                        self.text.push('&');
                        self.text.push_str(&r);
                        self.text.push(';');
                    }
                }
                Event::Eof => return Ok(Node::Eof),
                Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }
}

impl<R: BufRead> XmlStream<R> {
    /// Streams the text of the element whose start tag [`XmlStream::next`]
    /// just returned to `piece`, in pieces, without holding it: for a text
    /// node that may be far longer than [`MAX_TOKEN`] and is read
    /// incrementally (KML `<coordinates>`). Line ends are normalised as the
    /// parser does (`\r\n` and `\r` become `\n`). The pass ends at the
    /// first `<` or `&`: what follows (an entity reference, CDATA, text after
    /// a comment) is read as usual and arrives as the end tag's `text`, which
    /// continues the streamed text. Returns false, streaming nothing, when
    /// not called right after a start tag (or after an empty element).
    ///
    /// # Errors
    /// Read errors; [`ImportError::Malformed`] for text that is not UTF-8.
    pub(crate) fn stream_text(&mut self, piece: &mut dyn FnMut(&str)) -> Result<bool, ImportError> {
        if !std::mem::take(&mut self.text_may_stream) {
            return Ok(false);
        }
        let mut decoder = StreamedText::default();
        let format = self.format;
        let base = self.base;
        let guard = self.reader.get_mut();
        let outcome = guard.pass_text(&mut |bytes, at| decoder.decode(bytes, at, piece));
        let malformed = |at: u64| ImportError::Malformed {
            format,
            position: Position::Byte(base + at),
            message: "XML text that is not UTF-8".to_owned(),
        };
        // A read error of the input itself (a broken gzip stream) stays an I/O error.
        match (outcome, decoder.invalid_at.or(decoder.unfinished)) {
            (Err(_), Some(at)) | (Ok(()), Some(at)) => Err(malformed(at)),
            (Err(e), None) => Err(ImportError::Io(e)),
            (Ok(()), None) => Ok(true),
        }
    }
}

/// Decodes streamed text: UTF-8 split anywhere between chunks, and XML 1.0
/// line ends.
#[derive(Default)]
struct StreamedText {
    /// The start of a character cut by the chunk's end.
    carry: [u8; 4],
    carry_len: usize,
    /// Input offset of `carry`, while a character is unfinished.
    unfinished: Option<u64>,
    /// The last piece ended with `\r` (a `\n` after it is dropped).
    after_cr: bool,
    /// Input offset of the first byte that is not UTF-8.
    invalid_at: Option<u64>,
}

impl StreamedText {
    fn decode(&mut self, mut bytes: &[u8], mut at: u64, piece: &mut dyn FnMut(&str)) -> std::io::Result<()> {
        let invalid = |at: u64, this: &mut Self| {
            this.invalid_at = Some(at);
            std::io::Error::new(std::io::ErrorKind::InvalidData, "text that is not UTF-8")
        };
        // Finish a character cut by the previous chunk.
        while self.carry_len > 0 && !bytes.is_empty() {
            self.carry[self.carry_len] = bytes[0];
            self.carry_len += 1;
            bytes = &bytes[1..];
            at += 1;
            let (carry, len) = (self.carry, self.carry_len);
            match std::str::from_utf8(&carry[..len]) {
                Ok(c) => {
                    self.carry_len = 0;
                    self.unfinished = None;
                    self.lines(c, piece);
                }
                Err(e) if e.error_len().is_none() && self.carry_len < 4 => {}
                Err(_) => return Err(invalid(self.unfinished.unwrap_or(at), self)),
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => self.lines(text, piece),
            Err(e) => {
                let valid = e.valid_up_to();
                let text = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
                self.lines(text, piece);
                if e.error_len().is_some() {
                    return Err(invalid(at + valid as u64, self));
                }
                let rest = &bytes[valid..];
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carry_len = rest.len();
                self.unfinished = Some(at + valid as u64);
            }
        }
        Ok(())
    }

    /// Hands `text` on with `\r\n` and lone `\r` turned into `\n`.
    fn lines(&mut self, text: &str, piece: &mut dyn FnMut(&str)) {
        let mut rest = text;
        if self.after_cr && !rest.is_empty() {
            rest = rest.strip_prefix('\n').unwrap_or(rest);
            self.after_cr = false;
        }
        while let Some(p) = rest.find('\r') {
            piece(&rest[..p]);
            piece("\n");
            rest = &rest[p + 1..];
            if rest.is_empty() {
                self.after_cr = true;
            } else {
                rest = rest.strip_prefix('\n').unwrap_or(rest);
            }
        }
        if !rest.is_empty() {
            piece(rest);
        }
    }
}

fn namespace(res: ResolveResult<'_>) -> &str {
    match res {
        ResolveResult::Bound(ns) => ns.into_inner(),
        // Unbound: no namespace. Unknown prefix: treat like no namespace, so
        // a file that forgot an `xmlns:` declaration still imports.
        ResolveResult::Unbound | ResolveResult::Unknown(_) => "",
    }
}

/// The value of the attribute with the given local name (any prefix),
/// entities resolved.
pub(crate) fn attribute<'a>(tag: &'a BytesStart<'_>, local: &str) -> Option<std::borrow::Cow<'a, str>> {
    tag.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().into_inner() == local)
        .map(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap_or_else(|_| a.value.clone()))
}

/// The text of the whole start tag, `<…>`, for a reject's raw field.
pub(crate) fn tag_text(tag: &BytesStart<'_>, out: &mut String) {
    out.clear();
    out.push('<');
    out.push_str(tag);
    out.push('>');
}

/// True when `text` is a JSON number exactly as written, so it can go into
/// the extras verbatim: JSON syntax, and a finite double (`1e999` is valid
/// syntax that JSON readers refuse as out of range).
pub(crate) fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len() && text.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Adds `key: text` to the extras: verbatim when the text is a JSON number,
/// as a string otherwise. Empty text is skipped.
pub(crate) fn push_extra(extras: &mut crate::extras::ExtrasBuilder, key: &str, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if is_json_number(text) {
        extras.raw(key, text);
    } else {
        extras.string(key, text);
    }
}

/// Parses a decimal number, trimming whitespace.
pub(crate) fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(xml: &[u8]) -> Vec<String> {
        collect_with_limit(xml, MAX_TOKEN)
    }

    fn collect_with_limit(xml: &[u8], max: usize) -> Vec<String> {
        let mut s = XmlStream::with_limit(xml, "test", max).unwrap();
        let mut out = Vec::new();
        loop {
            match s.next().unwrap() {
                Node::Start { ns, local, .. } => out.push(format!("+{ns}|{local}")),
                Node::End { ns, local, leaf, text } => {
                    out.push(format!("-{ns}|{local}|{leaf}|{}", text.trim()));
                }
                Node::Oversized { at, what } => out.push(format!("!{what} at {at}")),
                Node::Eof => break,
            }
        }
        out
    }

    #[test]
    fn oversized_tokens_are_reported_and_their_text_is_empty() {
        let xml = b"<a x=\"0123456789\"><b>0123456789</b><!--0123456789--><c>ok</c></a>";
        assert_eq!(
            collect_with_limit(xml, 8),
            [
                "+|a",
                "!XML attribute value at byte 6",
                "+|b",
                "!XML text at byte 21",
                "-|b|true|",
                "+|c",
                "-|c|true|ok",
                "-|a|false|"
            ]
        );
    }

    /// Streams the text of every `<s>` (limit 8, read in chunks of `chunk`
    /// bytes): `+s` then the pieces joined, then the end tag's rest after `|`;
    /// every other node as [`collect`] writes it, with positions.
    fn collect_streamed(xml: &[u8], chunk: usize) -> Result<Vec<String>, ImportError> {
        let reader = std::io::BufReader::with_capacity(chunk, xml);
        let mut s = XmlStream::with_limit(reader, "test", 8)?;
        let mut out = Vec::new();
        let mut stream = false;
        loop {
            if std::mem::take(&mut stream) {
                let mut text = String::new();
                let streamed = s.stream_text(&mut |piece| text.push_str(piece))?;
                out.push(format!("{streamed}:{text}"));
            }
            match s.next()? {
                Node::Start { local, at, .. } => {
                    stream = local == "s";
                    out.push(format!("+{local}@{at}"));
                }
                Node::End { local, text, .. } => out.push(format!("-{local}|{text}")),
                Node::Oversized { at, what } => out.push(format!("!{what} at {at}")),
                Node::Eof => return Ok(out),
            }
        }
    }

    #[test]
    fn streamed_text_is_decoded_as_the_parser_would_and_offsets_stay_right() {
        let xml = "<a><s>0123456789\r\nabcé\rxyz&amp;ta</s><s/><s>é</s><b at=\"1\">ok</b><b>0123456789</b></a>";
        for chunk in [1, 2, 3, 5, 4096] {
            assert_eq!(
                collect_streamed(xml.as_bytes(), chunk).unwrap(),
                [
                    "+a@byte 0",
                    "+s@byte 3",
                    "true:0123456789\nabcé\nxyz",
                    "-s|&ta",
                    "+s@byte 38",
                    "false:",
                    "-s|",
                    "+s@byte 42",
                    "true:é",
                    "-s|",
                    "+b@byte 51",
                    "-b|ok",
                    "+b@byte 67",
                    "!XML text at byte 70",
                    "-b|",
                    "-a|"
                ],
                "chunk {chunk}"
            );
        }
        // Not UTF-8: an error at the byte, not a panic and not the whole text held.
        for (text, at) in [(&b"<a><s>12\xff</s></a>"[..], 8), (&b"<a><s>12\xc3</s></a>"[..], 8)] {
            for chunk in [1, 4096] {
                let err = collect_streamed(text, chunk).unwrap_err();
                assert!(
                    matches!(&err, ImportError::Malformed { position: Position::Byte(b), .. } if *b == at),
                    "{err:?}"
                );
            }
        }
    }

    #[test]
    fn bom_and_blank_lines_before_the_declaration() {
        let xml = b"\xEF\xBB\xBF\n\n  <?xml version=\"1.0\"?>\n<a>x</a>";
        assert_eq!(collect(xml), ["+|a", "-|a|true|x"]);
        let mut s = XmlStream::new(&xml[..], "test").unwrap();
        let Node::Start { at, .. } = s.next().unwrap() else { panic!() };
        assert_eq!(at, Position::Byte(xml.iter().position(|&b| b == b'a').unwrap() as u64 - 1));
    }

    #[test]
    fn namespaces_are_matched_by_uri_not_prefix() {
        let xml = br#"<r xmlns="urn:d" xmlns:p="urn:p" xmlns:q="urn:p"><p:x/><q:x>1</q:x><y/></r>"#;
        assert_eq!(
            collect(xml),
            [
                "+urn:d|r",
                "+urn:p|x",
                "-urn:p|x|true|",
                "+urn:p|x",
                "-urn:p|x|true|1",
                "+urn:d|y",
                "-urn:d|y|true|",
                "-urn:d|r|false|"
            ]
        );
    }

    #[test]
    fn text_pieces_and_entities_are_joined() {
        let xml = b"<a>Tom &amp; Jerry &#x41;&#66; <![CDATA[<raw>]]>&bogus;</a>";
        assert_eq!(collect(xml), ["+|a", "-|a|true|Tom & Jerry AB <raw>&bogus;"]);
    }

    #[test]
    fn attributes_by_local_name() {
        let mut s = XmlStream::new(&br#"<p lat="1.5" x:lon="2&amp;" xmlns:x="u"/>"#[..], "t").unwrap();
        let Node::Start { tag, .. } = s.next().unwrap() else { panic!() };
        assert_eq!(attribute(&tag, "lat").as_deref(), Some("1.5"));
        assert_eq!(attribute(&tag, "lon").as_deref(), Some("2&"));
        assert_eq!(attribute(&tag, "ele"), None);
    }

    #[test]
    fn malformed_xml_reports_a_byte_position() {
        let mut s = XmlStream::new(&b"<a><b></a>"[..], "GPX").unwrap();
        let err = loop {
            match s.next() {
                Ok(Node::Eof) => panic!("should fail"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ImportError::Malformed { format: "GPX", position: Position::Byte(_), .. }), "{err}");
    }

    #[test]
    fn json_numbers() {
        for ok in ["0", "-1", "1.5", "1e5", "-0.25E-3", "100"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "01", "1.", ".5", "+1", "NaN", "1e", "2d", "1.2.3", "800000e376", "-1e400"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}

/// A sink that keeps everything, for the importers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use polo_domain::{Fix, Interval};

    use crate::{Reject, Sink};

    #[derive(Debug, Default)]
    pub(crate) struct Collect {
        pub(crate) points: Vec<(Fix, Option<String>)>,
        pub(crate) intervals: Vec<(Interval, Option<String>)>,
        pub(crate) rejects: Vec<Reject>,
        pub(crate) out_of_range: Vec<&'static str>,
    }

    impl Sink for Collect {
        fn point(&mut self, fix: Fix, device: Option<&str>) {
            self.points.push((fix, device.map(str::to_owned)));
        }
        fn interval(&mut self, interval: Interval, device: Option<&str>) {
            self.intervals.push((interval, device.map(str::to_owned)));
        }
        fn reject(&mut self, reject: Reject) {
            self.rejects.push(reject);
        }
        fn out_of_range(&mut self, field: &'static str) {
            self.out_of_range.push(field);
        }
    }

    impl Collect {
        pub(crate) fn fixes(&self) -> Vec<&Fix> {
            self.points.iter().map(|(f, _)| f).collect()
        }
    }

    /// Options with "now" in 2030, so that every fixture time is in the past.
    pub(crate) fn options() -> crate::ImportOptions {
        crate::ImportOptions { now: polo_domain::Timestamp(1_900_000_000_000) }
    }

    /// Milliseconds of an RFC 3339 text.
    pub(crate) fn ms(text: &str) -> i64 {
        polo_domain::time::parse_timestamp(text).unwrap().time.0
    }

    /// The shared corpus folder for one format, when it exists.
    pub(crate) fn corpus(dir: &str) -> Option<std::path::PathBuf> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(dir);
        if path.is_dir() {
            Some(path)
        } else {
            println!("skipping: corpus folder {} is absent", path.display());
            None
        }
    }
}
