//! The [`DerivedKind`] numbers this crate stores, and their key layouts.
//!
//! Numbers are part of the on-disk format: never reuse or renumber one.
//! Kinds below 100 are recomputed from the points and may be thrown away
//! and rebuilt at any time; kinds from 100 on are the user's edits, which
//! are never recomputed (they are written with `edit = true`, so they enter
//! the change log and replicate).
//!
//! The kinds the engine computes are written by the engine alone, which
//! rewrites their rows whenever a window changes. What another part of polo
//! finds out about a computed row (a place's street name, looked up online
//! by the server) therefore gets a kind of its own rather than a field in
//! that row, where the engine's next write of the row would drop it.

use polo_store::DerivedKind;

/// A device's stays (scope: device; key: start, ms since the epoch).
pub const STAY: DerivedKind = DerivedKind(1);
/// A device's legs (scope: device; key: start, ms).
pub const LEG: DerivedKind = DerivedKind(2);
/// A place as computed from the stays (scope: user; key: place id).
pub const PLACE: DerivedKind = DerivedKind(3);
/// A device's statistics of one local day (scope: device; key: local day
/// number, days since 1970-01-01).
pub const DAY_STATS: DerivedKind = DerivedKind(4);
/// The settings a device's stored timeline was computed with (scope:
/// device; key 0). A change of the user's settings recomputes everything.
pub const STATE: DerivedKind = DerivedKind(5);
/// A place's street-level name from the online geocoder, or the provider's
/// "nothing there" (scope: user; key: place id). Written only by the
/// server's street-name task (`polo_server::street_names`), never by the
/// engine; it may be thrown away like the other computed kinds, and is then
/// asked for again.
pub const PLACE_ADDRESS: DerivedKind = DerivedKind(6);
/// A fix the timeline leaves out: a teleport, a hopelessly inaccurate fix
/// or one the user flagged (scope: device; key: the fix's time, ms; see
/// [`crate::outliers`]). Every reader of the points skips these.
pub const OUTLIER: DerivedKind = DerivedKind(7);
/// A visit edit as the engine last brought it into the day statistics, and
/// the time it touched (scope: device; key: the [`VISIT_EDIT`]'s key; see
/// [`crate::edit_marks`]).
pub const VISIT_EDIT_APPLIED: DerivedKind = DerivedKind(8);
/// A mode correction as the engine last brought it into the day statistics
/// (scope: user; key: the [`MODE_EDIT`]'s key; see [`crate::edit_marks`]).
pub const MODE_EDIT_APPLIED: DerivedKind = DerivedKind(9);
/// Per UTC day, how many points each map level holds (scope: device; key:
/// UTC day number). Lets an overview pick its level without reading tracks.
pub const MAP_COUNTS: DerivedKind = DerivedKind(10);
/// One block of a day's simplified track at level 0 (scope: device; key:
/// [`crate::map::blocks::block_key`] of the UTC day number and the block's
/// index); level `l` is kind `MAP_TRACK_0 + l`, for [`MAP_LEVELS`] levels.
pub const MAP_TRACK_0: u16 = 15;
/// How many map levels there are (kinds 15 to 18 are reserved for them).
pub const MAP_LEVELS: u16 = 4;
/// Retired in rows version 4: kinds 11 to 14 held each level's track of a
/// whole day in one row (key: UTC day number), rewritten whole by every
/// live step; replaced by the blocks of [`MAP_TRACK_0`]. The version-4
/// recomputation deletes these rows.
pub const RETIRED_MAP_TRACKS: std::ops::Range<u16> = 11..15;
/// Retired in rows version 2 (heatmap cells of one whole month, keyed by
/// month): replaced by [`HEAT_BLOCKS`]; the version-2 recomputation deletes
/// these rows.
pub const HEAT: DerivedKind = DerivedKind(20);
/// Retired in rows version 2 (fog-of-war cells of one whole month): replaced
/// by [`FOG_BLOCKS`].
pub const FOG: DerivedKind = DerivedKind(21);
/// Heatmap and fog-of-war cells of one UTC day (scope: device; key: UTC day
/// number): the parts a month's [`HEAT_BLOCKS`] and [`FOG_BLOCKS`] rows are
/// summed from, so refreshing a day reads that day's points only, and tile
/// queries over a range can start and end on any day.
pub const MAP_CELLS: DerivedKind = DerivedKind(22);
/// Heatmap cell counts of one month in one block of one level (scope:
/// device; key: [`crate::map::cells::month_row_key`] of level, block and
/// month number `year * 12 + month - 1`).
pub const HEAT_BLOCKS: DerivedKind = DerivedKind(23);
/// Fog-of-war cell passes of one month in one block of one level (scope:
/// device; key as [`HEAT_BLOCKS`]).
pub const FOG_BLOCKS: DerivedKind = DerivedKind(24);

/// The user's edits of a place: name, merge (scope: user; key: place id).
pub const PLACE_EDIT: DerivedKind = DerivedKind(100);
/// A user's correction of a transport mode (scope: user; key: start of the
/// corrected leg, ms).
pub const MODE_EDIT: DerivedKind = DerivedKind(101);
/// The user's timeline settings (scope: user; key 0).
pub const SETTINGS: DerivedKind = DerivedKind(102);
/// The user's verdict on one fix, flagged or not, over the detector's
/// (scope: device; key: the fix's time, ms; see [`crate::outliers`]).
pub const FIX_EDIT: DerivedKind = DerivedKind(103);
/// The user's edit of one stay: deleted, other times, another place (scope:
/// device; key: the stay's detected start, ms; see [`crate::visit_edits`]).
pub const VISIT_EDIT: DerivedKind = DerivedKind(104);
/// The user's retention policy for raw points (scope: user; key 0; see
/// [`crate::retention`]).
pub const RETENTION: DerivedKind = DerivedKind(105);
/// The user's friend-nearby distances (scope: user; key 0): read and
/// written by `polo-server`'s zones (`friend.nearby`, `friend.away`), kept
/// here with the user's other settings so they replicate as edits.
pub const NEARBY: DerivedKind = DerivedKind(106);
/// One photo or video of the user's library (scope: user; key: capture
/// instant and slot, see [`crate::photos`]): a reference to the original
/// with its time, position and camera, written as an edit so it replicates.
pub const PHOTO: DerivedKind = DerivedKind(107);

/// The kind of map level `level`.
///
/// # Panics
/// When `level >= MAP_LEVELS`.
#[must_use]
pub fn map_track(level: u16) -> DerivedKind {
    assert!(level < MAP_LEVELS, "map level {level} out of range");
    DerivedKind(MAP_TRACK_0 + level)
}

/// The name of the change-log cursor of the timeline computation.
pub const CURSOR: &str = "timeline";

/// The name of the derived cursor that records which [`ROWS_VERSION`] the
/// stored stays, legs and days were computed with (a version, not a change
/// sequence number).
pub const ROWS_VERSION_CURSOR: &str = "timeline-rows-version";

/// The version of how stays, legs and days are computed from the points.
/// The engine recomputes every device once when the stored rows are older:
/// raise it when a change to the computation makes stored rows wrong.
/// Version 1: local days and times from the time zone at each point's
/// position where the point states no UTC offset (before: UTC).
/// Version 2: stays absorb brief excursions and span gaps where the phone
/// dozed in place (`polo_timeline::StayParams::max_excursion_fixes`,
/// `bridge_gap_s`); stay rows record when their end was decided.
/// Version 3: month heatmap and fog rows cut into blocks at four zooms
/// ([`HEAT_BLOCKS`], [`FOG_BLOCKS`]; the month-wide [`HEAT`] and [`FOG`]
/// rows are deleted).
/// Version 4: map tracks stored in blocks of at most
/// [`crate::map::blocks::BLOCK_POINTS`] points, so a live step rewrites only
/// a day's last block ([`MAP_TRACK_0`]; the whole-day rows of
/// [`RETIRED_MAP_TRACKS`] are deleted).
pub const ROWS_VERSION: u64 = 4;
