//! Timeline intelligence for polo: what a location history *means*, computed
//! from the points alone. Every function here is pure (no I/O, no clock, no
//! global state), so the server can run it on any window of any user's points
//! and tests can pin every edge case.
//!
//! Segmentation — where the user stayed and how they moved:
//! * [`stay`] — stay detection, an exact port of trackintel 1.4.2's sliding
//!   staypoints (the correctness oracle of the agreement test).
//! * [`leg`] — the legs between stays (trackintel triplegs), with distance,
//!   speed profile and transport mode ([`mode`]).
//! * [`trip`] — legs and short stops grouped into trips between visits.
//! * [`timeline`] and [`incremental`] — both passes in one call, and the rule
//!   for recomputing only the window after a change.
//! * [`outlier`] — teleports (fixes thousands of km off for a moment) and
//!   hopelessly inaccurate fixes, which callers flag and leave out.
//!
//! Meaning — places and routines:
//! * [`place`] — DBSCAN clustering of stays into places on an R-tree, and
//!   matching new clusters to known places so user edits survive recomputation.
//! * [`home_work`] — home from night-time dwell, work from weekday daytime dwell.
//! * [`clock`] — local time from stated UTC offsets or a caller-supplied
//!   time-zone lookup (DST, travel).
//! * [`daily`] — per local day distance, moving time per mode, stationary time.
//!
//! Maps — levels of detail:
//! * [`simplify`] — Douglas–Peucker returning kept indices, tolerance per zoom.
//! * [`tiles`] — web-mercator tiles, heatmap and fog-of-war cell counts.
//! * [`antimeridian`] — longitude unwrapping and polyline splitting at ±180°.
//!
//! Shared ground: [`track`] (the compact input point), [`geo`] (distances and
//! centroids), [`params`] (per-user settings), [`error`].
//! With the `synthetic` feature, `synthetic` generates deterministic tracks
//! and `oracle` speaks the CSV the trackintel comparison script reads and writes.

pub mod antimeridian;
pub mod clock;
pub mod daily;
pub mod error;
pub mod geo;
pub mod home_work;
pub mod incremental;
pub mod leg;
pub mod mode;
#[cfg(feature = "synthetic")]
pub mod oracle;
pub mod outlier;
pub mod params;
pub mod place;
pub mod simplify;
pub mod stay;
#[cfg(feature = "synthetic")]
pub mod synthetic;
mod threshold;
pub mod tiles;
pub mod timeline;
pub mod track;
pub mod trip;

pub use clock::{
    DayBoundaries, FixedOffset, LocalClock, LocalDate, LocalDays, OffsetChanges, ZoneClock, ZoneId, ZoneLookup,
};
pub use daily::{ByMode, DayStats, daily_stats};
pub use error::TimelineError;
pub use home_work::{HomeWork, HomeWorkParams, PlaceDwell, detect_home_work};
pub use incremental::ResumePoint;
pub use leg::{Leg, LegSource, detect_legs};
pub use mode::{ModeParams, SpeedProfile, TransportMode};
pub use outlier::{OutlierParams, Sample, Verdict, classify};
pub use params::{StayParams, TimelineParams};
pub use place::{Clustering, KnownPlace, PlaceCluster, PlaceParams, cluster_places, match_places};
pub use stay::{Stay, detect_stays};
pub use timeline::{Timeline, detect};
pub use track::TrackPoint;
pub use trip::{Trip, group_trips};
