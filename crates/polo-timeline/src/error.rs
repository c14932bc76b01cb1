//! The one error type of the timeline algorithms.
//!
//! Every algorithm here is a pure function, so the only things that can go
//! wrong are inputs that break a stated precondition (points out of time
//! order, stays that do not belong to the points) and parameters outside
//! their meaningful range. Each variant names the offending value so a caller
//! can report it without re-deriving it.

use polo_domain::Timestamp;

/// Why a timeline computation refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// The points are not sorted by time. Sort them (stably, so that points of
    /// the same instant keep their order) before calling.
    #[error("points are not sorted by time: point {index} at {time} comes after {previous}")]
    Unsorted {
        /// Index of the first point that is earlier than its predecessor.
        index: usize,
        /// Its time.
        time: Timestamp,
        /// The predecessor's time.
        previous: Timestamp,
    },
    /// The stays passed alongside the points were not computed from them:
    /// a range is out of bounds, empty, or overlaps or precedes the previous one.
    #[error("stay {index} covers points {start}..{end}, which does not fit {len} points after the previous stay")]
    StaysDoNotMatchPoints {
        /// Index of the offending stay.
        index: usize,
        /// Its first point.
        start: usize,
        /// One past its last point.
        end: usize,
        /// How many points were passed.
        len: usize,
    },
    /// A parameter outside its meaningful range.
    #[error("parameter {name} = {value} is invalid: {why}")]
    InvalidParameter {
        /// The parameter's field name.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// What the parameter must satisfy.
        why: &'static str,
    },
    /// A zoom level deeper than the tile grid supports.
    #[error("zoom level {zoom} is deeper than the supported maximum {max}")]
    ZoomTooDeep {
        /// The zoom asked for.
        zoom: u8,
        /// The deepest supported zoom.
        max: u8,
    },
}
