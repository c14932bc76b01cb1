//! The exposure semi-join: pairs between index cases and everyone else,
//! without a join over everyone.
//!
//! Only the index cases' points are indexed. Each of them is entered under
//! every (bucket, band, cell) key of its own bucket where a partner of it
//! could lie: the three bands around its own, and in each band the cells
//! [`Grid::reach`](crate::grid) gives. Everyone else's points are then
//! streamed past once: a point computes its band and cell and asks a Bloom
//! filter of the same keys spread over the buckets around theirs (one bit
//! per point, which nearly always says no); only then does it look in its
//! own bucket and the two around it, and it is refined exactly against the
//! few index points found. Cost: O(|I|) to build, O(1) per streamed point,
//! memory O(|I|); the other points are never stored.
//!
//! What counts:
//! * every pair of an index case's point and another user's streamed point;
//! * pairs of two index cases (two cases met: the full join over the index
//!   cases' points, which are few);
//! * a streamed point of an index-case user (a user with points among
//!   `index_cases`) is skipped: the case's own points are the ones given as
//!   `index_cases` (for example those of the infectious period), and the
//!   rest of that user's history is not evidence. So the caller can stream
//!   everyone's points, the cases' included.
//!
//! So the result equals the full join over `index_cases` and the streamed
//! points of other users, restricted to pairs with at least one index case.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, sync_channel};

use crate::fold::fold;
use crate::grid::Grid;
use crate::join::{Pt, Refine, join};
use crate::parallel::map_pieces;
use crate::sinks::{self, Collect, Count, Sink, Spans};
use crate::table::{Filter, Table};
use crate::{Counts, Encounter, Params, PointPair, Sample};

/// Streamed points handed to a worker at a time.
const BATCH: usize = 16_384;

/// Encounters between the index cases and everyone else (and among the index
/// cases), as [`crate::encounters`] over both would give restricted to user
/// pairs with an index case; see the module documentation.
///
/// # Panics
/// If `params` do not pass [`Params::validate`].
#[must_use]
pub fn exposures(index_cases: &[Sample], others: impl IntoIterator<Item = Sample>, params: &Params) -> Vec<Encounter> {
    let params = params.checked();
    let parts = semi_join(index_cases, others, params, Spans::default);
    fold(parts.into_iter().flat_map(|s| s.spans).collect(), params.max_gap_ms)
}

/// The point pairs behind [`exposures`], in [`crate::point_pairs`]'s order.
///
/// # Panics
/// If `params` do not pass [`Params::validate`].
#[must_use]
pub fn exposure_pairs(
    index_cases: &[Sample],
    others: impl IntoIterator<Item = Sample>,
    params: &Params,
) -> Vec<PointPair> {
    let parts = semi_join(index_cases, others, params.checked(), Collect::default);
    sinks::sorted(parts.into_iter().flat_map(|s| s.pairs).collect())
}

/// Counts what [`exposure_pairs`] would list.
///
/// # Panics
/// If `params` do not pass [`Params::validate`].
#[must_use]
pub fn count_exposures(index_cases: &[Sample], others: impl IntoIterator<Item = Sample>, params: &Params) -> Counts {
    Count::total(semi_join(index_cases, others, params.checked(), Count::default))
}

/// The index cases' join with itself, then everyone else streamed past them.
fn semi_join<S: Sink + Send>(
    index_cases: &[Sample],
    others: impl IntoIterator<Item = Sample>,
    params: &Params,
    make: impl Fn() -> S + Sync,
) -> Vec<S> {
    let mut parts = join(index_cases, params, &make);
    if index_cases.is_empty() {
        return parts;
    }
    let index = Index::new(index_cases, params);
    let threads = params.worker_threads();
    if threads == 1 {
        let mut sink = make();
        for sample in others {
            index.probe(&sample, &mut sink);
        }
        sink.finish();
        parts.push(sink);
        return parts;
    }
    let (tx, rx) = sync_channel::<Vec<Sample>>(threads * 2);
    let rx = Mutex::new(rx);
    let workers = std::thread::scope(|scope| {
        let handle = scope.spawn(|| map_pieces(threads, threads, |_| drain(&rx, &index, &make)));
        let mut batch = Vec::with_capacity(BATCH);
        for sample in others {
            batch.push(sample);
            if batch.len() == BATCH && tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
                break;
            }
        }
        if !batch.is_empty() {
            // A send only fails when every worker is gone, which `join` below reports.
            let _ = tx.send(batch);
        }
        drop(tx);
        match handle.join() {
            Ok(workers) => workers,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    parts.extend(workers);
    parts
}

/// A worker: batches from the channel until it closes.
fn drain<S: Sink>(rx: &Mutex<Receiver<Vec<Sample>>>, index: &Index<'_>, make: &impl Fn() -> S) -> S {
    let mut sink = make();
    loop {
        let batch = {
            let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rx.recv()
        };
        let Ok(batch) = batch else { break };
        for sample in &batch {
            index.probe(sample, &mut sink);
        }
    }
    sink.finish();
    sink
}

/// The index cases' points under every key a partner of theirs could have.
struct Index<'a> {
    cases: &'a [Sample],
    grid: Grid,
    refine: Refine,
    /// The earliest index point, and the bucket width.
    t0: i64,
    width: i64,
    /// The last bucket an index point is in.
    last_bucket: i64,
    /// The index-case users (values unused).
    users: Table,
    /// Key → range of `members`.
    cells: Table,
    /// The keys of `cells` with the bucket one later, the same, and one earlier: a
    /// streamed point's own key (bucket + 1) is in it if any of its three lookups can hit.
    near: Filter,
    /// Indexes into `pts`, grouped by key.
    members: Vec<u32>,
    /// The index points.
    pts: Vec<Pt>,
}

impl<'a> Index<'a> {
    fn new(cases: &'a [Sample], params: &Params) -> Self {
        let width = params.max_gap_ms.max(1);
        let t0 = cases.iter().map(|s| s.at.0).min().unwrap_or(0);
        let grid = Grid::new(params.max_distance_m);
        let mut last_bucket = 0;
        let mut entries: Vec<(u128, u32)> = Vec::with_capacity(cases.len() * 9);
        for (sample, idx) in cases.iter().zip(0u32..) {
            let bucket = bucket(sample.at.0, t0, width);
            last_bucket = last_bucket.max(bucket);
            let (band, cell) = grid.locate(sample.coord);
            for to in band.saturating_sub(1)..=(band + 1).min(grid.band_count() - 1) {
                for (lo, hi) in grid.reach(band, cell, to).iter() {
                    entries.extend((lo..=hi).map(|c| (key(bucket, to, c), idx)));
                }
            }
        }
        entries.sort_unstable();
        let members: Vec<u32> = entries.iter().map(|e| e.1).collect();
        let mut runs: Vec<(u128, u32, u32)> = Vec::new();
        for (n, &(k, _)) in (0u32..).zip(&entries) {
            match runs.last_mut() {
                Some(run) if run.0 == k => run.2 += 1,
                _ => runs.push((k, n, 1)),
            }
        }
        drop(entries);
        let mut near = Filter::new(runs.len() * 3, 8);
        for &(k, _, _) in &runs {
            // `k`'s bucket is in the high half; the streamed points' keys are one bucket later.
            for later in 0..3u128 {
                near.insert(k + (later << 64));
            }
        }
        let cells = Table::new(runs.into_iter());
        let mut users: Vec<u128> = cases.iter().map(|s| user_key(s.user.0)).collect();
        users.sort_unstable();
        users.dedup();
        let users = Table::new(users.into_iter().map(|u| (u, 0, 0)));
        let pts = cases.iter().zip(0u32..).map(|(s, i)| Pt::new(s, i)).collect();
        Self { cases, grid, refine: Refine::new(params), t0, width, last_bucket, users, cells, near, members, pts }
    }

    /// Streams one point past the index.
    #[inline]
    fn probe<S: Sink>(&self, sample: &Sample, sink: &mut S) {
        let bucket = bucket(sample.at.0, self.t0, self.width);
        if bucket < -1 || bucket > self.last_bucket + 1 {
            return;
        }
        let (band, cell) = self.grid.locate(sample.coord);
        if !self.near.may_contain(key(bucket + 1, band, cell)) {
            return;
        }
        // Past the filter: a candidate, unless it is an index case's own point.
        if self.users.get(user_key(sample.user.0)).is_some() {
            return;
        }
        // Its index is never used: pairs name the streamed sample itself.
        let other = Pt::new(sample, 0);
        for b in (bucket - 1).max(0)..=(bucket + 1).min(self.last_bucket) {
            let Some((start, len)) = self.cells.get(key(b, band, cell)) else { continue };
            let members = &self.members[start as usize..(start + len) as usize];
            sink.candidates(members.len() as u64);
            for &m in members {
                let case = &self.pts[m as usize];
                if let Some(d) = case.pairs_with(&other, &self.refine) {
                    sink.pair(&self.cases[case.idx as usize], sample, d);
                }
            }
        }
    }
}

/// The bucket of `at`, counted from `t0` (negative before it; clamped far away).
fn bucket(at: i64, t0: i64, width: i64) -> i64 {
    match at.checked_sub(t0) {
        Some(diff) => diff.div_euclid(width).clamp(i64::MIN / 2, i64::MAX / 2),
        None if at < t0 => i64::MIN / 2,
        None => i64::MAX / 2,
    }
}

/// The table key of (bucket ≥ 0, band, cell): bucket in the high half, band and cell in the
/// low half.
fn key(bucket: i64, band: u32, cell: u32) -> u128 {
    (u128::from(bucket.cast_unsigned()) << 64) | (u128::from(band) << 32) | u128::from(cell)
}

/// A user's key in the user table.
fn user_key(user: i64) -> u128 {
    u128::from(user.cast_unsigned())
}
