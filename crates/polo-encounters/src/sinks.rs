//! Where the joins put what they find: a list of point pairs, the compact
//! spans the encounter fold needs, or only counts.
//!
//! The joins run one sink per slab of work (per thread), so sinks need no
//! locks; the caller merges them and sorts, which makes every result
//! independent of the number of threads and of scheduling.

use polo_domain::{Coord, Timestamp, UserId};

use crate::{Counts, PointPair, Sample};

/// Receives the pairs a join finds.
pub(crate) trait Sink {
    /// A pair within both thresholds, of two different users, in either order.
    fn pair(&mut self, a: &Sample, b: &Sample, distance_m: f64);
    /// `n` more point combinations were looked at.
    fn candidates(&mut self, n: u64);
    /// The slab this sink served is done.
    fn finish(&mut self) {}
}

/// Orders a pair so that `a.user < b.user`.
fn ordered<'s>(a: &'s Sample, b: &'s Sample) -> (&'s Sample, &'s Sample) {
    if a.user < b.user { (a, b) } else { (b, a) }
}

/// Lists the pairs.
#[derive(Debug, Default)]
pub(crate) struct Collect {
    pub pairs: Vec<PointPair>,
}

impl Sink for Collect {
    fn pair(&mut self, a: &Sample, b: &Sample, distance_m: f64) {
        let (a, b) = ordered(a, b);
        self.pairs.push(PointPair { a: *a, b: *b, distance_m });
    }

    fn candidates(&mut self, _: u64) {}
}

/// The sort order of [`crate::point_pairs`]: users, times, coordinates.
#[allow(clippy::type_complexity)]
fn pair_order(p: &PointPair) -> (UserId, UserId, Timestamp, Timestamp, i32, i32, i32, i32) {
    (p.a.user, p.b.user, p.a.at, p.b.at, p.a.coord.lat_e7, p.a.coord.lon_e7, p.b.coord.lat_e7, p.b.coord.lon_e7)
}

/// Sorts pairs into the documented order.
pub(crate) fn sorted(mut pairs: Vec<PointPair>) -> Vec<PointPair> {
    pairs.sort_unstable_by_key(pair_order);
    pairs
}

/// A pair as the encounter fold needs it: the users, the earlier and later of
/// its two times, and the distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    pub user_a: UserId,
    pub user_b: UserId,
    pub start: i64,
    pub end: i64,
    pub distance_m: f64,
    /// `user_a`'s position.
    pub place: Coord,
}

/// Keeps the spans of the pairs.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    pub spans: Vec<Span>,
}

impl Sink for Spans {
    fn pair(&mut self, a: &Sample, b: &Sample, distance_m: f64) {
        let (a, b) = ordered(a, b);
        let (start, end) = (a.at.0.min(b.at.0), a.at.0.max(b.at.0));
        self.spans.push(Span { user_a: a.user, user_b: b.user, start, end, distance_m, place: a.coord });
    }

    fn candidates(&mut self, _: u64) {}
}

/// Counts pairs and candidates, and keeps the distinct user pairs.
#[derive(Debug, Default)]
pub(crate) struct Count {
    pairs: u64,
    candidates: u64,
    users: Vec<(UserId, UserId)>,
}

impl Sink for Count {
    fn pair(&mut self, a: &Sample, b: &Sample, _: f64) {
        let (a, b) = ordered(a, b);
        self.pairs += 1;
        self.users.push((a.user, b.user));
    }

    fn candidates(&mut self, n: u64) {
        self.candidates += n;
    }

    fn finish(&mut self) {
        self.users.sort_unstable();
        self.users.dedup();
    }
}

impl Count {
    /// The counts of all slabs together.
    pub fn total(parts: Vec<Self>) -> Counts {
        let mut counts = Counts::default();
        let mut users = Vec::new();
        for part in parts {
            counts.point_pairs += part.pairs;
            counts.candidates += part.candidates;
            users.extend(part.users);
        }
        users.sort_unstable();
        users.dedup();
        counts.user_pairs = users.len() as u64;
        counts
    }
}
