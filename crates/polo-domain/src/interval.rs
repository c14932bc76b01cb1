//! Intervals: visits and activity segments that a source already carries
//! (Google Semantic Location History, the on-device Timeline exports,
//! Overland trips and visits).
//!
//! They are derived data from someone else's algorithm, so polo keeps them as
//! intervals of their own kind rather than smearing them into fake points. The
//! timeline engine uses them where no raw points exist.

use serde::{Deserialize, Serialize};

use crate::{Coord, Extras, SourceFormat, Timestamp};

/// What kind of interval a source described.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum IntervalKind {
    /// A stay at a place (Google `placeVisit` / `visit`, Overland visit).
    Visit = 1,
    /// A movement between places (Google `activitySegment` / `activity`, Overland trip).
    Activity = 2,
    /// A user annotation without coordinates (Google `timelineMemory`).
    Memory = 3,
}

impl IntervalKind {
    /// Stable code stored on disk.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The variant for a stored code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Visit),
            2 => Some(Self::Activity),
            3 => Some(Self::Memory),
            _ => None,
        }
    }

    /// Stable name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Visit => "visit",
            Self::Activity => "activity",
            Self::Memory => "memory",
        }
    }
}

/// A visit or activity segment as the source described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Visit, activity or memory.
    pub kind: IntervalKind,
    /// Start instant.
    pub start: Timestamp,
    /// End instant (≥ start).
    pub end: Timestamp,
    /// UTC offset at the start, minutes east, when the source gave it.
    pub start_offset_minutes: Option<i16>,
    /// UTC offset at the end, minutes east, when the source gave it.
    pub end_offset_minutes: Option<i16>,
    /// Where the visit was, or where the activity started.
    pub start_coord: Option<Coord>,
    /// Where the activity ended (activities only).
    pub end_coord: Option<Coord>,
    /// The source's place identifier (Google place id).
    pub place_id: Option<String>,
    /// A place name or label, when the source had one.
    pub name: Option<String>,
    /// The source's activity or semantic type, verbatim (`IN_PASSENGER_VEHICLE`, `HOME`...).
    pub category: Option<String>,
    /// Distance covered in metres (activities).
    pub distance_m: Option<f64>,
    /// The source's confidence, 0–1.
    pub confidence: Option<f64>,
    /// Nesting level when the source nests visits (Android `hierarchyLevel`).
    pub level: u8,
    /// Which format it came from.
    pub source: SourceFormat,
    /// Everything else the source said about the interval.
    pub extras: Option<Extras>,
}

impl Interval {
    /// A minimal interval of `kind` from `start` to `end`.
    #[must_use]
    pub fn new(kind: IntervalKind, start: Timestamp, end: Timestamp, source: SourceFormat) -> Self {
        Self {
            kind,
            start,
            end,
            start_offset_minutes: None,
            end_offset_minutes: None,
            start_coord: None,
            end_coord: None,
            place_id: None,
            name: None,
            category: None,
            distance_m: None,
            confidence: None,
            level: 0,
            source,
            extras: None,
        }
    }

    /// The discriminator that, with user, device, kind and times, identifies
    /// an interval: nested visits share times but differ in level and place.
    #[must_use]
    pub fn identity_key(&self) -> String {
        format!("{}|{}", self.level, self.place_id.as_deref().or(self.category.as_deref()).unwrap_or(""))
    }
}
