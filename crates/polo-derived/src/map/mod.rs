//! Map levels of detail: per device and UTC day, simplified tracks at four
//! levels with their counts, heatmap and fog-of-war cells; per month, the
//! cells summed; and the queries over them. Kept in the store so that a
//! ten-year overview or a heatmap tile is a lookup of a few thousand small
//! rows, never a scan of millions of points.
//!
//! * [`track`] — the levels (gap splitting, Douglas–Peucker tolerances,
//!   antimeridian), the track block encoding and the per-day counts.
//! * [`blocks`] — a day's track of one level cut into blocks of a bounded
//!   number of points, so a live step rewrites only the last one.
//! * [`cells`] — base-zoom cells in Morton order, heatmap and fog-of-war
//!   lists per day and month.
//! * [`refresh`] — rebuilding a device's rows for a changed time span,
//!   a day and a month at a time ([`refresh_device`]; [`refresh_change`]
//!   for a change-log entry); a live phone's new points are appended to
//!   its last day's rows instead (`append`), reading only those points.
//! * [`overview`](mod@overview) — the tracks of a range at the level that fits a budget,
//!   optionally only inside a [`viewport`] (the explorer refines as you zoom in).
//! * [`tile`] — heatmap and fog-of-war tiles over all time or a range.
//! * [`calendar`] — the UTC day and month numbers the rows are keyed by.
//!
//! | kind | key | value |
//! |---|---|---|
//! | `MAP_COUNTS` (10) | UTC day | points, and per level points and segments |
//! | `map_track(l)` (15–18) | UTC day and block ([`blocks::block_key`]) | one block of level `l`'s segments of the day |
//! | `MAP_CELLS` (22) | UTC day | the day's heatmap and fog cells |
//! | `HEAT_BLOCKS` (23) | level, block, month | the month's heatmap cells in one block (sum of its days) |
//! | `FOG_BLOCKS` (24) | level, block, month | the month's fog-of-war cells in one block (sum of its days) |
//!
//! All rows are per device (`DerivedScope::Device`) and recomputable
//! (written with `edit = false`).

mod append;
pub mod blocks;
pub mod calendar;
pub mod cells;
mod codec;
pub mod overview;
pub mod refresh;
#[cfg(test)]
mod test_support;
pub mod tile;
pub mod track;
pub mod viewport;

pub use cells::{BASE_ZOOM, GRID};
pub use overview::{Overview, OverviewSegment, SEGMENT_COST, overview, overview_within};
pub use refresh::{MapRefresh, refresh_change, refresh_device};
pub use tile::{TileCells, fog_tile, heat_tile};
pub use track::{GAP_MS, LEVEL_ZOOMS, MapPoint};
pub use viewport::Viewport;
