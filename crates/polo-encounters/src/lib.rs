//! The encounter engine: who was where at the same time as whom.
//!
//! An *encounter* needs two thresholds ([`Params`]): a distance D (say 25 m)
//! and a time window T (say 5 minutes). Two points of two different users
//! form a *point pair* when they are at most D metres apart (haversine on
//! PostGIS's sphere, [`distance`]) and at most T apart in time, both bounds
//! inclusive. This is the definition of the PostGIS self-join
//! `ST_DWithin(a.geog, b.geog, D, false) AND b.ts BETWEEN a.ts - T AND a.ts + T`,
//! so polo's counts can be, and in CI are, compared with PostGIS's.
//!
//! * [`point_pairs`] lists every pair, [`count_pairs`] only counts them (the
//!   benchmark's figure, without the memory of a list).
//! * [`encounters`] folds a user pair's point pairs into encounters: pairs
//!   whose times lie within T of each other belong to the same encounter, so
//!   two people who meet in the morning and again in the evening have two.
//! * [`exposures`] is the health authority's question, "who was near these
//!   cases": a semi-join that indexes only the index cases' points and
//!   streams everyone else's past them, O(N + |I|) instead of a full join.
//!
//! The engine is a grid × time-bucket join ([`grid`] says why the grid is
//! exact at the antimeridian and the poles): every point gets a packed `u64`
//! key (time bucket, latitude band, longitude cell), the keys are sorted and
//! each run of equal keys meets only the runs of its half-neighbourhood
//! (later cells of its bucket and band, its band's northern neighbour, and the
//! next bucket), so every pair of cells is looked at once. The work is split
//! into slabs of consecutive time buckets, each with the next bucket as a
//! halo, which bounds memory beyond the input to a 4-byte order per point
//! and a slab per thread, and spreads the slabs over the cores. Every candidate is refined exactly; nothing is approximated.
//!
//! Pure functions over slices: no I/O, no clock, no global state.

pub mod distance;
mod fold;
mod grid;
mod join;
mod parallel;
mod params;
mod semi;
mod sinks;
mod table;

#[cfg(test)]
mod tests;

use polo_domain::{Coord, Timestamp, UserId};

pub use distance::{EARTH_RADIUS_M, haversine_m};
pub use fold::fold_encounters;
pub use params::{MAX_DISTANCE_M, MAX_GAP_MS, MIN_DISTANCE_M, Params, ParamsError};
pub use semi::{count_exposures, exposure_pairs, exposures};

/// One point of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sample {
    pub user: UserId,
    /// UTC milliseconds.
    pub at: Timestamp,
    /// WGS84, E7.
    pub coord: Coord,
}

/// Two points of two different users within D and T. `a.user < b.user`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPair {
    pub a: Sample,
    pub b: Sample,
    /// Haversine distance, metres.
    pub distance_m: f64,
}

/// A user pair's point pairs that follow each other within T, folded.
/// `user_a < user_b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encounter {
    pub user_a: UserId,
    pub user_b: UserId,
    /// The earliest point of any of its pairs.
    pub first: Timestamp,
    /// The latest point of any of its pairs.
    pub last: Timestamp,
    /// The shortest distance of its pairs, metres.
    pub min_distance_m: f64,
    /// Where they were closest: `user_a`'s position in the pair at `min_distance_m`
    /// (the earliest such pair), for "with Anna, 14:10–15:30, at Café X".
    pub place: Coord,
    /// How many point pairs it folds.
    pub pairs: u64,
    /// Exposure minutes: `last − first` in whole minutes, rounded up, at least 1.
    ///
    /// "Within 25 m of each other from 14:10 to 14:32": 22 minutes. A single
    /// pair of points counts as one minute. Inside an encounter consecutive
    /// pairs are at most T apart, so the time between them is counted, as a
    /// health authority counts a contact that lasted from one sighting to the
    /// last, not only the instants a phone happened to report.
    pub minutes: u32,
}

/// What a counting join found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Point pairs (as [`point_pairs`] would list).
    pub point_pairs: u64,
    /// Distinct user pairs among them.
    pub user_pairs: u64,
    /// Point combinations the grid looked at (same user ones included) before
    /// the exact test: the grid's overhead is `candidates / point_pairs`.
    pub candidates: u64,
}

/// Every pair of points of two different users within D metres and T, both
/// inclusive, sorted by users, then times, then coordinates.
///
/// # Panics
/// If `params` do not pass [`Params::validate`].
#[must_use]
pub fn point_pairs(samples: &[Sample], params: &Params) -> Vec<PointPair> {
    let raw = join::join(samples, params.checked(), sinks::Collect::default);
    sinks::sorted(raw.into_iter().flat_map(|s| s.pairs).collect())
}

/// The point pairs folded per user pair ([`fold_encounters`]), sorted by users and then time.
///
/// # Panics
/// If `params` do not pass [`Params::validate`].
#[must_use]
pub fn encounters(samples: &[Sample], params: &Params) -> Vec<Encounter> {
    let params = params.checked();
    let raw = join::join(samples, params, sinks::Spans::default);
    fold::fold(raw.into_iter().flat_map(|s| s.spans).collect(), params.max_gap_ms)
}

/// Counts the point pairs and user pairs [`point_pairs`] would list, without listing them.
///
/// # Panics
/// If `params` do not pass [`Params::validate`].
#[must_use]
pub fn count_pairs(samples: &[Sample], params: &Params) -> Counts {
    let raw = join::join(samples, params.checked(), sinks::Count::default);
    sinks::Count::total(raw)
}
