//! Size limits on single tokens, so that no input can make an importer hold
//! more than a bounded amount of memory.
//!
//! Every importer streams, but a streaming parser still buffers the token it
//! is reading: a whole XML text node or attribute, a whole CSV or `.rec`
//! line, a whole JSON string. A 2 MB gzip upload can hold a 2 GiB `<desc>`,
//! and buffering it aborted the server on allocation. So every token is
//! limited to [`MAX_TOKEN`] bytes: a longer one is skipped by streaming over
//! it (never buffered), its record becomes a reject at the token's byte
//! offset or line, and the import goes on.
//!
//! * [`lines::LineReader`]: line-oriented formats (`.rec`, NMEA, text logs).
//! * [`csv_rows::LineCounter`]: under the csv crate, for both CSV importers
//!   (the generic one and Strava's `activities.csv`); their header line is
//!   read with [`lines::LineReader`].
//! * [`xml::XmlGuard`]: a `BufRead` adapter under quick-xml that cuts text
//!   nodes, attribute values, CDATA, comments and processing instructions.
//! * JSON strings and scalars are bounded by the splitter itself
//!   (`json_stream.rs`).

pub(crate) mod csv_rows;
pub(crate) mod lines;
pub(crate) mod xml;

/// The longest text node, attribute value, line, JSON string or header
/// polo reads: 1 MiB. Documented in the README ("Limits").
pub const MAX_TOKEN: usize = 1024 * 1024;

/// The reject reason for a token over [`MAX_TOKEN`], naming what it was.
pub(crate) fn too_long(what: &str) -> String {
    format!("{what} longer than {} MiB: skipped", MAX_TOKEN / (1024 * 1024))
}
