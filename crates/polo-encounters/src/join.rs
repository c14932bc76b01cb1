//! The self-join: every pair of points of different users within D and T.
//!
//! 1. Each point gets its time bucket (T wide, counted from the earliest
//!    point), and the points are ordered by bucket.
//! 2. That order is cut into slabs of consecutive buckets, each with the
//!    next bucket as a read-only halo: a pair is at most one bucket apart,
//!    and the earlier point's slab finds it.
//! 3. Per slab, each point gets a packed key (bucket, band, cell), the keys
//!    are sorted (one bucket at a time) and runs of equal keys found. Each
//!    run meets itself and the cells of its half-neighbourhood, found by
//!    galloping from a cursor per kind of neighbour: later cells of its own
//!    band and bucket, the band to the north in its bucket, and the three
//!    bands of the next bucket. The other half meets it from the other side,
//!    so each pair is seen once.
//! 4. Candidates are refined in order of cost: same user, time, a haversine
//!    bound without the arcsine, then the exact distance.

use crate::distance::{Pos, distance_from_hav, hav_bound};
use crate::grid::Grid;
use crate::parallel::map_pieces;
use crate::sinks::Sink;
use crate::{Params, Sample};

/// Points per slab: enough to amortise a slab's set-up, few enough to keep
/// a slab's arrays in a few tens of megabytes and the cores evenly busy.
const SLAB_POINTS: usize = 1 << 18;

/// The thresholds as the inner loop uses them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refine {
    pub max_distance_m: f64,
    pub max_gap_ms: u64,
    pub hav_max: f64,
}

impl Refine {
    pub fn new(params: &Params) -> Self {
        Self {
            max_distance_m: params.max_distance_m,
            max_gap_ms: params.max_gap_ms.unsigned_abs(),
            hav_max: hav_bound(params.max_distance_m),
        }
    }
}

/// A point of a slab, in key order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pt {
    pub pos: Pos,
    pub at: i64,
    pub user: i64,
    pub idx: u32,
}

impl Pt {
    pub fn new(sample: &Sample, idx: u32) -> Self {
        Self { pos: Pos::new(sample.coord), at: sample.at.0, user: sample.user.0, idx }
    }

    /// The exact distance to `other` if the two are a pair.
    #[inline]
    pub fn pairs_with(&self, other: &Self, refine: &Refine) -> Option<f64> {
        if self.user == other.user || self.at.abs_diff(other.at) > refine.max_gap_ms {
            return None;
        }
        let hav = self.pos.hav(&other.pos);
        if hav > refine.hav_max {
            return None;
        }
        let distance = distance_from_hav(hav);
        (distance <= refine.max_distance_m).then_some(distance)
    }
}

/// The samples in time-bucket order (buckets T wide, counted from the earliest).
struct Buckets {
    /// Sample indexes, ordered by bucket.
    order: Vec<u32>,
    /// Each non-empty bucket and where its samples start in `order`, then a
    /// sentinel `(u64::MAX, order.len())`.
    starts: Vec<(u64, usize)>,
}

/// Buckets per point up to which the order is made by counting rather than sorting.
const COUNTING_SPAN_PER_POINT: u64 = 4;

impl Buckets {
    fn new(samples: &[Sample], width_ms: i64) -> Self {
        let t0 = samples.iter().map(|s| s.at.0).min().unwrap_or(0);
        let t1 = samples.iter().map(|s| s.at.0).max().unwrap_or(0);
        let width = width_ms.unsigned_abs();
        // The span fits a u64 (the difference of two i64); buckets are at most that.
        let span = t1.abs_diff(t0) / width + 1;
        let bucket = |s: &Sample| s.at.0.abs_diff(t0) / width;
        let mut starts = Vec::new();
        if span > COUNTING_SPAN_PER_POINT * samples.len() as u64 {
            let mut pairs: Vec<(u64, u32)> = samples.iter().zip(0u32..).map(|(s, i)| (bucket(s), i)).collect();
            pairs.sort_unstable();
            for (n, &(b, _)) in pairs.iter().enumerate() {
                if starts.last().is_none_or(|&(last, _)| last != b) {
                    starts.push((b, n));
                }
            }
            starts.push((u64::MAX, pairs.len()));
            return Self { order: pairs.into_iter().map(|p| p.1).collect(), starts };
        }
        // A counting sort: one pass to count per bucket, one to place.
        #[allow(clippy::cast_possible_truncation)]
        let mut next = vec![0u32; span as usize + 1];
        for s in samples {
            #[allow(clippy::cast_possible_truncation)]
            let b = bucket(s) as usize;
            next[b + 1] += 1;
        }
        for b in 1..next.len() {
            if next[b] > 0 {
                starts.push(((b - 1) as u64, next[b - 1] as usize));
            }
            next[b] += next[b - 1];
        }
        starts.push((u64::MAX, samples.len()));
        let mut order = vec![0u32; samples.len()];
        for (s, i) in samples.iter().zip(0u32..) {
            #[allow(clippy::cast_possible_truncation)]
            let slot = &mut next[bucket(s) as usize];
            order[*slot as usize] = i;
            *slot += 1;
        }
        Self { order, starts }
    }

    /// Slabs `(first, end, halo_end)` as ranges of `starts`: whole buckets,
    /// about `target` points, spanning fewer than `max_span` buckets, each
    /// followed by the next bucket (when it is not empty) as its halo.
    fn slabs(&self, target: usize, max_span: u64) -> Vec<(usize, usize, usize)> {
        let starts = &self.starts;
        let buckets = starts.len() - 1;
        let mut slabs = Vec::new();
        let mut first = 0;
        while first < buckets {
            let mut end = first + 1;
            while end < buckets
                && starts[end].0 - starts[first].0 < max_span
                && starts[end].1 - starts[first].1 < target
            {
                end += 1;
            }
            let halo = if end < buckets && starts[end].0 == starts[end - 1].0 + 1 { end + 1 } else { end };
            slabs.push((first, end, halo));
            first = end;
        }
        slabs
    }
}

/// Runs the self-join over `samples`, one sink per slab.
///
/// # Panics
/// With more than `u32::MAX` samples.
pub(crate) fn join<S: Sink + Send>(samples: &[Sample], params: &Params, make: impl Fn() -> S + Sync) -> Vec<S> {
    join_sized(samples, params, make, None)
}

/// [`join`] with slabs of about `slab_points` points (tests make them tiny to
/// exercise many slabs and halos).
pub(crate) fn join_sized<S: Sink + Send>(
    samples: &[Sample],
    params: &Params,
    make: impl Fn() -> S + Sync,
    slab_points: Option<usize>,
) -> Vec<S> {
    assert!(u32::try_from(samples.len()).is_ok(), "at most 2^32 − 1 samples per join");
    if samples.len() < 2 {
        return Vec::new();
    }
    let width = params.max_gap_ms.max(1);
    let buckets = Buckets::new(samples, width);
    let grid = Grid::new(params.max_distance_m);
    let time_bits = 64 - grid.band_bits - grid.cell_bits;
    // The halo bucket needs a number too, hence − 1 (and at least 2 buckets).
    let max_span = if time_bits >= 63 { u64::MAX / 2 } else { (1u64 << time_bits) - 1 };
    let threads = params.worker_threads();
    let target = slab_points.unwrap_or_else(|| SLAB_POINTS.min(samples.len().div_ceil(threads * 4)).max(4096));
    let slabs = buckets.slabs(target, max_span);
    let refine = Refine::new(params);
    map_pieces(slabs.len(), threads, |k| {
        let (start, end, halo) = slabs[k];
        // `starts[start..=halo]`: the slab's buckets, its halo, and where they end.
        let mut sink = make();
        let slab = Slab::new(samples, &grid, &buckets, start..=halo, end);
        slab.join(samples, &grid, &refine, &mut sink);
        sink.finish();
        sink
    })
}

/// One slab's points in key order, and its runs.
struct Slab {
    /// Points with their keys, sorted by key.
    pts: Vec<(u64, Pt)>,
    /// The first point of each run, and one past the last.
    run_start: Vec<u32>,
    run_key: Vec<u64>,
    /// Runs before this one belong to the slab; the rest are its halo.
    own_runs: usize,
    band_bits: u32,
    cell_bits: u32,
}

impl Slab {
    /// The buckets `starts[range]` of `buckets` (the last one only says where the one before
    /// ends); those from `own_end` on are the halo.
    fn new(
        samples: &[Sample],
        grid: &Grid,
        buckets: &Buckets,
        range: std::ops::RangeInclusive<usize>,
        own_end: usize,
    ) -> Self {
        let (band_bits, cell_bits) = (grid.band_bits, grid.cell_bits);
        let starts = &buckets.starts[range.clone()];
        let first = starts[0].0;
        let (from, to) = (starts[0].1, starts[starts.len() - 1].1);
        // First only the copies, in a loop that does nothing else: the reads are scattered over
        // all the samples, and a tight loop keeps many of their cache misses in flight at once.
        let order = &buckets.order[from..to];
        let gathered: Vec<Sample> = order.iter().map(|&idx| samples[idx as usize]).collect();
        let mut pts: Vec<(u64, Pt)> = Vec::with_capacity(to - from);
        for w in starts.windows(2) {
            let (bucket, begin, end) = (w[0].0, w[0].1 - from, w[1].1 - from);
            for (sample, &idx) in gathered[begin..end].iter().zip(&order[begin..end]) {
                let (band, cell) = grid.locate(sample.coord);
                let key =
                    ((bucket - first) << (band_bits + cell_bits)) | (u64::from(band) << cell_bits) | u64::from(cell);
                pts.push((key, Pt::new(sample, idx)));
            }
            // The bucket is the key's top, so sorting each bucket on its own sorts the slab,
            // in pieces that stay in cache.
            let len = pts.len();
            pts[len - (end - begin)..].sort_unstable_by_key(|e| (e.0, e.1.idx));
        }
        let own_points = buckets.starts[own_end].1 - from;
        let mut run_start = Vec::new();
        let mut run_key = Vec::new();
        let mut own_runs = 0;
        for (n, &(key, _)) in pts.iter().enumerate() {
            if run_key.last() != Some(&key) {
                if n < own_points {
                    own_runs += 1;
                }
                run_key.push(key);
                run_start.push(u32::try_from(n).expect("slab sizes fit u32"));
            }
        }
        run_start.push(u32::try_from(pts.len()).expect("slab sizes fit u32"));
        Self { pts, run_start, run_key, own_runs, band_bits, cell_bits }
    }

    fn key(&self, bucket: u64, band: u32, cell: u32) -> u64 {
        (bucket << (self.band_bits + self.cell_bits)) | (u64::from(band) << self.cell_bits) | u64::from(cell)
    }

    /// The points of the runs with keys in `lo..=hi`; `cursor` is where the
    /// previous search of the same kind ended, which is usually close.
    fn points_between(&self, cursor: &mut usize, lo: u64, hi: u64) -> std::ops::Range<usize> {
        let first = seek(&self.run_key, cursor, lo);
        let mut end = first;
        let last = seek(&self.run_key, &mut end, hi.saturating_add(1));
        self.run_start[first] as usize..self.run_start[last] as usize
    }

    fn join<S: Sink>(&self, samples: &[Sample], grid: &Grid, refine: &Refine, sink: &mut S) {
        let cell_mask = (1u64 << self.cell_bits) - 1;
        let band_mask = (1u64 << self.band_bits) - 1;
        // One cursor per kind of neighbour: same band, north band, next bucket's three bands.
        let mut cursors = [0usize; 5];
        for run in 0..self.own_runs {
            let key = self.run_key[run];
            let here = self.run_start[run] as usize..self.run_start[run + 1] as usize;
            let bucket = key >> (self.band_bits + self.cell_bits);
            // Masked to their bit widths, which are below 32.
            #[allow(clippy::cast_possible_truncation)]
            let (band, cell) = (((key >> self.cell_bits) & band_mask) as u32, (key & cell_mask) as u32);
            self.within(here.clone(), samples, refine, sink);
            // Later cells of the same band and bucket.
            cursors[0] = cursors[0].max(run + 1);
            for (lo, hi) in grid.reach(band, cell, band).iter() {
                let lo = lo.max(cell + 1);
                if lo <= hi {
                    let there =
                        self.points_between(&mut cursors[0], self.key(bucket, band, lo), self.key(bucket, band, hi));
                    self.across(here.clone(), there, samples, refine, sink);
                }
            }
            // The band to the north, same bucket.
            if band + 1 < grid.band_count() {
                for (lo, hi) in grid.reach(band, cell, band + 1).iter() {
                    let (lo, hi) = (self.key(bucket, band + 1, lo), self.key(bucket, band + 1, hi));
                    let there = self.points_between(&mut cursors[1], lo, hi);
                    self.across(here.clone(), there, samples, refine, sink);
                }
            }
            // The next bucket, three bands.
            for to in band.saturating_sub(1)..=(band + 1).min(grid.band_count() - 1) {
                let cursor = &mut cursors[2 + (to + 1 - band) as usize];
                for (lo, hi) in grid.reach(band, cell, to).iter() {
                    let there = self.points_between(cursor, self.key(bucket + 1, to, lo), self.key(bucket + 1, to, hi));
                    self.across(here.clone(), there, samples, refine, sink);
                }
            }
        }
    }

    /// Pairs inside one run.
    fn within<S: Sink>(&self, run: std::ops::Range<usize>, samples: &[Sample], refine: &Refine, sink: &mut S) {
        let pts = &self.pts[run];
        let n = pts.len() as u64;
        sink.candidates(n * n.saturating_sub(1) / 2);
        for (i, (_, p)) in pts.iter().enumerate() {
            for (_, q) in &pts[i + 1..] {
                if let Some(d) = p.pairs_with(q, refine) {
                    sink.pair(&samples[p.idx as usize], &samples[q.idx as usize], d);
                }
            }
        }
    }

    /// Pairs between two disjoint point ranges.
    fn across<S: Sink>(
        &self,
        here: std::ops::Range<usize>,
        there: std::ops::Range<usize>,
        samples: &[Sample],
        refine: &Refine,
        sink: &mut S,
    ) {
        if there.is_empty() {
            return;
        }
        let (ps, qs) = (&self.pts[here], &self.pts[there]);
        sink.candidates(ps.len() as u64 * qs.len() as u64);
        for (_, p) in ps {
            for (_, q) in qs {
                if let Some(d) = p.pairs_with(q, refine) {
                    sink.pair(&samples[p.idx as usize], &samples[q.idx as usize], d);
                }
            }
        }
    }
}

/// The first index of sorted `keys` whose key is at least `target`, searched
/// by galloping forward from `cursor` (or by bisection when the target lies
/// behind it); `cursor` is left at the answer.
fn seek(keys: &[u64], cursor: &mut usize, target: u64) -> usize {
    let mut lo = (*cursor).min(keys.len());
    if lo > 0 && keys[lo - 1] >= target {
        lo = keys[..lo].partition_point(|&k| k < target);
        *cursor = lo;
        return lo;
    }
    // Every key before `lo` is below the target.
    let mut hi = lo;
    let mut step = 1;
    while hi < keys.len() && keys[hi] < target {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    let hi = hi.min(keys.len());
    let found = lo + keys[lo..hi].partition_point(|&k| k < target);
    *cursor = found;
    found
}

#[cfg(test)]
mod tests {
    use super::seek;

    #[test]
    fn seek_finds_the_first_key_not_below_the_target_from_anywhere() {
        let keys: Vec<u64> = (0..200).map(|k| k * 3).collect();
        for start in [0, 1, 57, 150, 199, 200, 500] {
            for target in [0, 1, 3, 100, 299, 597, 598, 1000] {
                let mut cursor = start;
                let want = keys.partition_point(|&k| k < target);
                assert_eq!(seek(&keys, &mut cursor, target), want, "from {start} to {target}");
                assert_eq!(cursor, want);
            }
        }
        assert_eq!(seek(&[], &mut 3, 5), 0);
    }
}
