//! Derived data for polo: the timeline that `polo-timeline` computes, kept
//! in the store and maintained incrementally from the change log, so that a
//! day view, a stats page or a ten-year map overview is a lookup.
//!
//! * [`engine`] — follows the change log and recomputes what changed.
//! * [`outliers`] — the fixes every view leaves out (teleports), and the user's say on them.
//! * [`window`] — the window of a device's stays and legs a change affects.
//! * [`tail`] — the points a live device's last window read, so the next reads only the new ones.
//! * [`places`] — stable place ids, renames and merges.
//! * [`imported`] — how a source's own visits and activities meet detected entries.
//! * [`naming`] — the best name a place or stay can be shown with.
//! * [`days`] — per-day statistics, maintained per device.
//! * [`moves`] — visit and trip events (`visit.start`, …) read from a device's newest rows.
//! * [`views`] — the lookups the API serves: a day, entries, places, stats.
//! * [`visit_edits`] — the user's corrections of single stays (place, times, deleted).
//! * [`edit_marks`] — which visit and mode edits the stored days include.
//! * [`settings`] — per-user timeline parameters.
//! * [`retention`] — per-user thinning of old raw points.
//! * [`photos`] — the user's photo library: references to photos and videos, by capture time.
//! * [`kinds`] and [`rows`] — which derived rows exist, their keys and encoding.
//! * [`map`] — map levels of detail (simplified tracks per day and level),
//!   heatmap and fog-of-war aggregates, and the queries over them.

pub mod days;
pub mod edit_marks;
pub mod engine;
pub mod error;
pub mod imported;
pub mod kinds;
pub mod map;
pub mod moves;
pub mod naming;
pub mod outliers;
pub mod photos;
pub mod places;
pub mod retention;
pub mod rows;
pub mod settings;
pub mod tail;
pub mod views;
pub mod visit_edits;
pub mod window;

pub use engine::{CatchUp, Engine};
pub use places::Locator;

pub use error::{DerivedError, DerivedResult};
