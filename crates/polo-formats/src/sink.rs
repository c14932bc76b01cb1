//! The contract between importers and whoever stores what they find.

use std::fmt;

use polo_domain::{Fix, Interval, Timestamp};

/// Where in a file a record or an error sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Byte offset from the start of the (decompressed) file.
    Byte(u64),
    /// 1-based line number (line-oriented formats: CSV, OwnTracks `.rec`).
    Line(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Byte(b) => write!(f, "byte {b}"),
            Self::Line(l) => write!(f, "line {l}"),
        }
    }
}

/// A record that could not be imported, with enough context to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Where the record starts.
    pub position: Position,
    /// What was wrong, naming the field.
    pub reason: String,
    /// The record's raw text (shortened to [`Reject::MAX_RAW`] bytes).
    pub raw: String,
}

impl Reject {
    /// Longest raw text kept per reject.
    pub const MAX_RAW: usize = 16 * 1024;

    /// Builds a reject, shortening `raw` on a character boundary.
    #[must_use]
    pub fn new(position: Position, reason: impl Into<String>, raw: &str) -> Self {
        let mut end = raw.len().min(Self::MAX_RAW);
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        Self { position, reason: reason.into(), raw: raw[..end].to_owned() }
    }
}

/// Receives what an importer finds, in file order.
///
/// `device` is a hint from the file itself (an OwnTracks topic, a Google
/// `deviceTag`, polo's own `device` field); the caller decides whether to use it.
pub trait Sink {
    /// A usable fix.
    fn point(&mut self, fix: Fix, device: Option<&str>);
    /// A visit or activity interval the source carried.
    fn interval(&mut self, interval: Interval, device: Option<&str>);
    /// A record that could not be used.
    fn reject(&mut self, reject: Reject);
    /// A record that holds no location by nature (an OwnTracks `lwt` or
    /// `card`, a FIT record of a watch without GPS, a Wi-Fi scan). Not an
    /// error and not a reject, but counted per `kind` so the summary shows it.
    fn not_location(&mut self, kind: &'static str) {
        let _ = kind;
    }
    /// A point was imported, but its `field` (`"accuracy"`, `"course"`…)
    /// was out of the column's range (an accuracy of -5 m, a heading of
    /// 720°): the column was left empty and the value kept in the fix's
    /// extras under the source's key. Counted per field so the summary
    /// shows it.
    fn out_of_range(&mut self, field: &'static str) {
        let _ = field;
    }
    /// Something the importer assumed about the file, for the user to check
    /// (the columns it guessed in headerless text, a time zone it took for
    /// granted). Each note is listed under the file in the import summary.
    fn note(&mut self, note: &str) {
        let _ = note;
    }
    /// What the source calls the device of hint `device` (Takeout
    /// `Settings.json` names the phone behind a `deviceTag`: "Pixel 7").
    /// A label, not a new name: points keep arriving under the hint.
    fn device_label(&mut self, device: &str, label: &str) {
        let _ = (device, label);
    }
    /// An archive entry is about to be imported; positions of what follows
    /// are relative to that entry. `name` is the entry's path in the archive.
    fn entry_started(&mut self, name: &str) {
        let _ = name;
    }
    /// The archive entry announced by [`Sink::entry_started`] ended.
    fn entry_finished(&mut self, name: &str, outcome: &Result<crate::Format, ImportError>) {
        let _ = (name, outcome);
    }
}

/// Settings shared by all importers.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// "Now", for refusing fixes from the future. Passed in so imports are reproducible.
    pub now: Timestamp,
}

impl ImportOptions {
    /// Earliest plausible fix: 1985-01-01T00:00:00Z. Earlier times are zeroed
    /// clocks (1970, 1980 GPS epoch, 1989 FIT epoch), not history.
    pub const EARLIEST: Timestamp = Timestamp(473_385_600_000);

    /// Checks that a fix time is plausible: not before 1985 and not more than
    /// a day after `now`.
    ///
    /// # Errors
    /// A reason naming the time, for the reject.
    pub fn check_time(&self, time: Timestamp) -> Result<(), String> {
        if time < Self::EARLIEST {
            return Err(format!("time {time} is before 1985: a zeroed clock, not a fix"));
        }
        if time.0 > self.now.0 + polo_domain::time::MS_PER_DAY {
            return Err(format!("time {time} is in the future"));
        }
        Ok(())
    }
}

/// Why a whole file (or archive entry) could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The content is recognisably something other than location data.
    #[error("not location data: this is {what}")]
    NotLocationData {
        /// What the file is, in words a user recognises ("Google Takeout Settings.json").
        what: String,
    },
    /// The content is not in any format polo reads.
    #[error("unrecognised content: {hint}")]
    Unrecognised {
        /// What the first bytes looked like.
        hint: String,
    },
    /// The file's syntax broke at a point the importer cannot recover from.
    /// Records before it were imported.
    #[error("malformed {format} at {position}: {message}")]
    Malformed {
        /// The format being read.
        format: &'static str,
        /// Where it broke.
        position: Position,
        /// What the parser expected.
        message: String,
    },
    /// The file was read to its end but yielded no point and no interval
    /// (only saved places, fixes without a position, rejected records...).
    #[error("nothing to import: {why}")]
    NothingToImport {
        /// Why, in words a user recognises ("no GPS fix: …").
        why: String,
    },
    /// An archive entry would expand past a safety limit (a zip bomb, or a
    /// nested archive too large to spool to disk).
    #[error("archive entry {entry:?} refused: {reason}")]
    ArchiveLimit {
        /// The entry's path in the archive.
        entry: String,
        /// Which limit.
        reason: String,
    },
}
