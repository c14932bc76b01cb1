//! The chunk planner: how a write changes a device's point chunks, as pure
//! decisions that every backend applies with its own I/O.
//!
//! # Why it is separate
//!
//! Both backends store the same [`codec`](crate::codec) chunks and must
//! shape them the same way: the conformance suite and the backends' own
//! tests assert chunk shapes (full chunks after an import, compacted live
//! tails, no overlaps). So the policy lives here once, over a chunk's bounds
//! ([`ChunkMeta`]), decoded fixes ([`StoredFix`]) and decisions
//! ([`ChunkWrite`]); a backend reads the rows a step asks for, and writes
//! the rows a step decides.
//!
//! # Insert
//!
//! A batch is sorted and deduplicated (first wins, [`Batch`]), then merged
//! into the chunks it touches: the *predecessor* (the last chunk starting at
//! or before the batch's first time) and every chunk starting inside the
//! batch's range ([`Batch::assign`]). Each new fix goes to the last chunk
//! starting at or before it, so chunks never overlap. Only chunks that
//! receive new fixes are decoded and rewritten
//! ([`Assignment::chunks_to_read`]); the rest are located by their bounds.
//!
//! * **Appends** (every new fix after the chunk's last) fill the chunk up to
//!   [`CHUNK_CAPACITY`] and start new full chunks; a full chunk is left
//!   alone. Small appends (live ingest) stop growing a chunk at
//!   [`LIVE_TAIL`] fixes, so one live fix rewrites at most that many, an
//!   O(1) cost independent of the history's length; bulk imports of
//!   appended batches write each chunk about once.
//! * **Compaction** folds sealed live tails back into full chunks: when a new
//!   live tail starts ([`ChunkWrite::CompactBefore`]), and the small chunks
//!   before it hold a whole [`CHUNK_CAPACITY`] of fixes besides the newest
//!   [`COMPACT_BEHIND`], the oldest of them are rewritten as one full chunk
//!   ([`compaction`], [`compact`]). Each live fix is thus encoded about
//!   `LIVE_TAIL / 2` times while it is in the tail and once more in its
//!   final chunk. A device that received points out of order lately is
//!   left alone ([`LatePoints`]): its late points would otherwise rewrite
//!   whole compacted chunks.
//! * **Backfills** into the middle split an overflowing chunk into evenly
//!   filled pieces, B-tree style, so repeated backfills don't leave
//!   one-point chunks behind.
//! * **Duplicates**: a fix whose time is stored already keeps the stored fix,
//!   unless a [`Replace`] rule (replication's last-writer-wins) says the
//!   incoming one replaces it.
//!
//! # Delete
//!
//! [`Deletion`] decides per chunk, in device and time order, whether a
//! chunk goes whole (without decoding it) or which of its fixes go:
//! those inside the range and area, except the first of each thinning slot
//! and those a caller's `keep` rule spares.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Fix, Seq, Timestamp, UserId};

use crate::codec::{CHUNK_CAPACITY, ExtrasEncoding, StoredFix};
use crate::{Area, PointSelection, StoreResult, Tombstone};

/// A tail chunk holding at least this many fixes is not rewritten by a small
/// append (fewer fixes than this): the append starts a new chunk instead.
/// Live ingest thus rewrites at most this many fixes per commit instead of a
/// whole [`CHUNK_CAPACITY`] chunk; compaction later merges the sealed
/// tails. Measured with 32 phones posting at once: at 128 the ingest writer
/// spent about a fifth of its time encoding tails and about 30 µs of CPU
/// per point; at 32, about 21 µs.
pub const LIVE_TAIL: usize = 32;

/// How many fixes of a device's newest data compaction leaves in small
/// chunks: a fix arriving a little late lands in a small chunk, not in a
/// full one that it would have to rewrite whole, even before the writer has
/// noticed that the device receives late points.
pub const COMPACT_BEHIND: usize = CHUNK_CAPACITY;

/// The most chunks compaction looks at ([`compaction`]): enough sealed live
/// tails to fill a whole chunk behind the [`COMPACT_BEHIND`] newest fixes.
pub const COMPACT_LOOKBACK: usize = (COMPACT_BEHIND + CHUNK_CAPACITY) / LIVE_TAIL + 1;

/// A chunk's bounds, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// The backend's id of the chunk.
    pub id: i64,
    /// Time of its first fix (ms).
    pub first: i64,
    /// Time of its last fix (ms).
    pub last: i64,
    /// How many fixes it holds.
    pub n: usize,
}

/// The columns a backend stores beside a chunk's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceBounds {
    /// Time of the first fix (ms).
    pub first: i64,
    /// Time of the last fix (ms).
    pub last: i64,
    /// Number of fixes.
    pub n: i64,
    /// The newest write among them.
    pub max_seq: i64,
}

/// The bounds of `piece` (sorted by time); zeros for an empty one.
#[must_use]
pub fn bounds(piece: &[StoredFix]) -> PieceBounds {
    PieceBounds {
        first: piece.first().map_or(0, |f| f.fix.time.0),
        last: piece.last().map_or(0, |f| f.fix.time.0),
        n: piece.len() as i64,
        max_seq: piece.iter().map(|f| f.seq.0).max().unwrap_or(0) as i64,
    }
}

/// Full chunks, then the remainder: for appends.
#[must_use]
pub fn greedy(points: &[StoredFix]) -> Vec<&[StoredFix]> {
    points.chunks(CHUNK_CAPACITY).collect()
}

/// Evenly filled pieces: for merges into the middle.
#[must_use]
pub fn even(points: &[StoredFix]) -> Vec<&[StoredFix]> {
    let pieces = points.len().div_ceil(CHUNK_CAPACITY).max(1);
    let (base, extra) = (points.len() / pieces, points.len() % pieces);
    let mut out = Vec::with_capacity(pieces);
    let mut at = 0;
    for i in 0..pieces {
        let len = base + usize::from(i < extra);
        out.push(&points[at..at + len]);
        at += len;
    }
    out
}

/// How an insert stores a chunk's extras: a chunk under [`LIVE_TAIL`]
/// fixes is a live tail, rewritten by the next commits, and keeps them
/// uncompressed until it is sealed.
#[must_use]
pub fn insert_encoding(piece: &[StoredFix]) -> ExtrasEncoding {
    if piece.len() < LIVE_TAIL { ExtrasEncoding::Raw } else { ExtrasEncoding::Compressed }
}

/// Decides whether an incoming fix replaces the stored one of the same time.
pub type Replace<'r> = dyn FnMut(&StoredFix, &Fix) -> bool + 'r;

/// One decision about a device's chunks. A backend applies a plan's writes
/// in order: a piece inserted may take the first time of a chunk deleted
/// before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkWrite {
    /// Store `fixes` (sorted, at most [`CHUNK_CAPACITY`]) as a new chunk.
    Insert {
        /// The fixes.
        fixes: Vec<StoredFix>,
        /// How to encode them.
        encoding: ExtrasEncoding,
        /// The chunk is a device's newest, likely rewritten by its next
        /// commit: worth keeping decoded in a writer's cache.
        live: bool,
    },
    /// Rewrite chunk `id` to hold `fixes` instead.
    Rewrite {
        /// Which chunk.
        id: i64,
        /// Its first time before the rewrite: when the new first time is the
        /// same (appends), a backend need not touch its time index.
        old_first: i64,
        /// Its new fixes.
        fixes: Vec<StoredFix>,
        /// How to encode them.
        encoding: ExtrasEncoding,
        /// As for [`ChunkWrite::Insert`].
        live: bool,
    },
    /// Remove chunk `id`.
    Delete {
        /// Which chunk.
        id: i64,
    },
    /// A live tail ending at `last` was just sealed: unless the device
    /// receives late points ([`LatePoints`]), read the newest
    /// [`COMPACT_LOOKBACK`] chunks starting at or before `last` (newest
    /// first), and apply what [`compaction`] and [`compact`] decide.
    CompactBefore {
        /// The sealed tail's last time.
        last: i64,
    },
}

// ---------------------------------------------------------------- insert

/// A batch to insert: sorted by time, the first fix of each time kept.
#[derive(Debug)]
pub struct Batch<'f> {
    fixes: Vec<&'f Fix>,
    /// How many fixes the caller gave, repeats included.
    given: usize,
}

impl<'f> Batch<'f> {
    /// Sorts `fixes` by time (stable) and drops repeated times but the first.
    #[must_use]
    pub fn new(fixes: &'f [Fix]) -> Self {
        let mut batch: Vec<&Fix> = fixes.iter().collect();
        if !batch.is_sorted_by(|a, b| a.time < b.time) {
            batch.sort_by_key(|f| f.time); // stable: the first of equal times stays first
            batch.dedup_by_key(|f| f.time);
        }
        Self { fixes: batch, given: fixes.len() }
    }

    /// The first and last time, or `None` for an empty batch. A backend
    /// reads the chunks an insert touches as
    /// `first_ms >= coalesce((max first_ms <= lo), lo) AND first_ms <= hi
    /// ORDER BY first_ms`: the predecessor and those starting inside.
    #[must_use]
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((self.fixes.first()?.time.0, self.fixes.last()?.time.0))
    }

    /// Assigns each fix to the last of `metas` (the chunks [`Batch::span`]
    /// selects, sorted by first time) starting at or before it; fixes
    /// before all of them go to the first, and without any chunk every fix
    /// starts new ones.
    #[must_use]
    pub fn assign(self, metas: Vec<ChunkMeta>) -> Assignment<'f> {
        let mut groups: Vec<Group> = Vec::new();
        if !metas.is_empty() {
            let mut j = 0;
            for (i, f) in self.fixes.iter().enumerate() {
                while j + 1 < metas.len() && metas[j + 1].first <= f.time.0 {
                    j += 1;
                }
                match groups.last_mut() {
                    Some(g) if g.chunk == j => g.fixes.end = i + 1,
                    _ => groups.push(Group { chunk: j, fixes: i..i + 1, read: true }),
                }
            }
        }
        for g in &mut groups {
            let meta = &metas[g.chunk];
            let small = g.fixes.len() < LIVE_TAIL;
            let after = self.fixes[g.fixes.start].time.0 > meta.last;
            // A pure append after a chunk that stays as it is: no need to decode it.
            g.read = !(after && (meta.n >= CHUNK_CAPACITY || (small && meta.n >= LIVE_TAIL)));
        }
        Assignment { batch: self, metas, groups }
    }
}

/// The fixes of a batch that fall to one chunk.
#[derive(Debug)]
struct Group {
    /// Index into the assignment's chunks.
    chunk: usize,
    /// Indices into the batch.
    fixes: Range<usize>,
    /// Whether comparing needs the chunk's fixes.
    read: bool,
}

/// A batch assigned to the chunks it touches ([`Batch::assign`]).
#[derive(Debug)]
pub struct Assignment<'f> {
    batch: Batch<'f>,
    metas: Vec<ChunkMeta>,
    groups: Vec<Group>,
}

impl<'f> Assignment<'f> {
    /// The chunks whose fixes [`Assignment::compare`] reads, in time order.
    pub fn chunks_to_read(&self) -> impl Iterator<Item = &ChunkMeta> {
        self.groups.iter().filter(|g| g.read).map(|g| &self.metas[g.chunk])
    }

    /// Finds which fixes are new and which replace a stored fix: `read`
    /// gives the decoded fixes of each chunk [`Assignment::chunks_to_read`]
    /// names, in that order; `replace` (replication) decides for each fix
    /// whose time is stored already, which otherwise keeps the stored fix.
    ///
    /// # Errors
    /// Whatever `read` fails with.
    pub fn compare(
        self,
        read: &mut dyn FnMut(&ChunkMeta) -> StoreResult<Vec<StoredFix>>,
        mut replace: Option<&mut Replace<'_>>,
    ) -> StoreResult<Merge<'f>> {
        let Assignment { batch, metas, groups } = self;
        let mut touched = Vec::with_capacity(groups.len());
        for g in groups {
            let meta = &metas[g.chunk];
            if !g.read {
                touched.push(Touched {
                    chunk: g.chunk,
                    old: Vec::new(),
                    new: g.fixes.collect(),
                    replaced: Vec::new(),
                    append: true,
                    leave_alone: true,
                });
                continue;
            }
            let old = read(meta)?;
            let old_last = old.last().map(|f| f.fix.time.0);
            let append = old_last.is_none_or(|l| batch.fixes[g.fixes.start].time.0 > l);
            let mut new = Vec::new();
            let mut replaced = Vec::new();
            if append {
                new.extend(g.fixes);
            } else {
                let mut k = 0;
                for i in g.fixes {
                    let t = batch.fixes[i].time;
                    while k < old.len() && old[k].fix.time < t {
                        k += 1;
                    }
                    match old.get(k) {
                        Some(stored) if stored.fix.time == t => {
                            if replace.as_mut().is_some_and(|replace| replace(stored, batch.fixes[i])) {
                                replaced.push((k, i));
                            }
                        }
                        _ => new.push(i),
                    }
                }
            }
            if !new.is_empty() || !replaced.is_empty() {
                touched.push(Touched { chunk: g.chunk, old, new, replaced, append, leave_alone: false });
            }
        }
        let new_only = if metas.is_empty() { (0..batch.fixes.len()).collect() } else { Vec::new() };
        Ok(Merge { batch, metas, touched, new_only })
    }
}

/// A chunk that receives fixes.
#[derive(Debug)]
struct Touched {
    chunk: usize,
    old: Vec<StoredFix>,
    /// Indices into the batch.
    new: Vec<usize>,
    /// (index into `old`, index into the batch): stored fixes the batch replaces.
    replaced: Vec<(usize, usize)>,
    append: bool,
    /// An append to a chunk that stays as it is (full, or a live tail).
    leave_alone: bool,
}

/// What an insert changes ([`Assignment::compare`]), before it is written.
#[derive(Debug)]
pub struct Merge<'f> {
    batch: Batch<'f>,
    metas: Vec<ChunkMeta>,
    touched: Vec<Touched>,
    /// Indices into the batch, for a device without chunks in range.
    new_only: Vec<usize>,
}

impl Merge<'_> {
    /// Indices into the batch of the fixes that are new or replace a stored one.
    fn changed(&self) -> impl Iterator<Item = usize> + '_ {
        let replaced = self.touched.iter().flat_map(|t| t.replaced.iter().map(|&(_, i)| i));
        self.touched.iter().flat_map(|t| t.new.iter().copied()).chain(replaced).chain(self.new_only.iter().copied())
    }

    /// The times of the fixes that are new or replace a stored one.
    pub fn added_times(&self) -> impl Iterator<Item = Timestamp> + '_ {
        self.changed().map(|i| self.batch.fixes[i].time)
    }

    /// How many fixes are new or replace a stored one.
    #[must_use]
    pub fn added(&self) -> u64 {
        self.changed().count() as u64
    }

    /// How many of the given fixes (repeats within the batch included)
    /// were stored already and are kept as they were.
    #[must_use]
    pub fn duplicates(&self) -> u64 {
        self.batch.given as u64 - self.added()
    }

    /// The first and last time added, or `None` when nothing is.
    #[must_use]
    pub fn added_span(&self) -> Option<(i64, i64)> {
        let times = || self.changed().map(|i| self.batch.fixes[i].time.0);
        Some((times().min()?, times().max()?))
    }

    /// Whether a fix lands between stored ones (a late point; see [`LatePoints`]).
    #[must_use]
    pub fn received_late(&self) -> bool {
        self.touched.iter().any(|t| !t.append && !t.new.is_empty())
    }

    /// The chunk writes that store the merge, each new fix stamped with
    /// `seq` (the change the insert is logged as).
    #[must_use]
    pub fn writes(self, seq: Seq) -> Vec<ChunkWrite> {
        let Merge { batch, metas, touched, new_only } = self;
        let stored = |i: usize| StoredFix { fix: batch.fixes[i].clone(), seq };
        let mut out = Vec::new();
        if !new_only.is_empty() {
            insert_pieces(new_only.into_iter().map(stored).collect(), &mut out);
        }
        for mut t in touched {
            let meta = metas[t.chunk];
            for &(k, i) in &t.replaced {
                t.old[k] = stored(i);
            }
            if t.append && (t.leave_alone || t.old.len() >= CHUNK_CAPACITY) {
                // A full chunk (or a live tail) stays as it is; the appended fixes start new ones.
                insert_pieces(t.new.iter().map(|&i| stored(i)).collect(), &mut out);
                if meta.n < CHUNK_CAPACITY {
                    // A live tail was just sealed: the small chunks up to it may fill a whole one.
                    out.push(ChunkWrite::CompactBefore { last: meta.last });
                }
                continue;
            }
            let merged = if t.append {
                let mut merged = t.old;
                merged.extend(t.new.iter().map(|&i| stored(i)));
                merged
            } else {
                let mut merged = Vec::with_capacity(t.old.len() + t.new.len());
                let mut new = t.new.iter().copied().peekable();
                for old in t.old {
                    while let Some(i) = new.next_if(|&i| batch.fixes[i].time < old.fix.time) {
                        merged.push(stored(i));
                    }
                    merged.push(old);
                }
                merged.extend(new.map(stored));
                merged
            };
            if merged.len() <= CHUNK_CAPACITY {
                // One piece: the chunk keeps its id.
                let encoding = insert_encoding(&merged);
                out.push(ChunkWrite::Rewrite {
                    id: meta.id,
                    old_first: meta.first,
                    fixes: merged,
                    encoding,
                    live: true,
                });
                continue;
            }
            let lens = lengths(&if t.append { greedy(&merged) } else { even(&merged) });
            let mut pieces = split_owned(merged, &lens).into_iter();
            if let Some(piece) = pieces.next() {
                let encoding = insert_encoding(&piece);
                out.push(ChunkWrite::Rewrite {
                    id: meta.id,
                    old_first: meta.first,
                    fixes: piece,
                    encoding,
                    live: false,
                });
            }
            for piece in pieces {
                let encoding = insert_encoding(&piece);
                out.push(ChunkWrite::Insert { fixes: piece, encoding, live: false });
            }
        }
        out
    }
}

/// New chunks for `points` (sorted): one, a live tail, when they fit, else
/// full chunks and the remainder.
fn insert_pieces(points: Vec<StoredFix>, out: &mut Vec<ChunkWrite>) {
    if points.len() <= CHUNK_CAPACITY {
        let encoding = insert_encoding(&points);
        out.push(ChunkWrite::Insert { fixes: points, encoding, live: true });
        return;
    }
    let lens = lengths(&greedy(&points));
    for piece in split_owned(points, &lens) {
        let encoding = insert_encoding(&piece);
        out.push(ChunkWrite::Insert { fixes: piece, encoding, live: false });
    }
}

fn lengths(pieces: &[&[StoredFix]]) -> Vec<usize> {
    pieces.iter().map(|p| p.len()).collect()
}

/// `points` cut into pieces of `lens` (which add up to its length), each
/// fix moved once rather than copied.
fn split_owned(points: Vec<StoredFix>, lens: &[usize]) -> Vec<Vec<StoredFix>> {
    let mut rest = points.into_iter();
    lens.iter().map(|&len| rest.by_ref().take(len).collect()).collect()
}

// ---------------------------------------------------------------- compaction

/// Which chunks to compact before the sealed tail ending at `last`, given
/// the [`COMPACT_LOOKBACK`] chunks starting at or before it, newest first:
/// the oldest of the run of small chunks (fewer than [`CHUNK_CAPACITY`]
/// fixes each) that ends there, just enough to fill one chunk, once the run
/// holds that much besides the [`COMPACT_BEHIND`] newest fixes. Oldest
/// first; `None` when nothing is worth merging.
#[must_use]
pub fn compaction(newest_first: &[ChunkMeta], last: i64) -> Option<Vec<ChunkMeta>> {
    if newest_first.first().is_none_or(|m| m.last != last) {
        return None;
    }
    let run: Vec<&ChunkMeta> = newest_first.iter().take_while(|m| m.n < CHUNK_CAPACITY).collect();
    if run.iter().map(|m| m.n).sum::<usize>() < COMPACT_BEHIND + CHUNK_CAPACITY {
        return None;
    }
    let mut merged = Vec::new();
    let mut filled = 0;
    for &meta in run.iter().rev() {
        if filled >= CHUNK_CAPACITY {
            break;
        }
        filled += meta.n;
        merged.push(*meta);
    }
    (merged.len() >= 2).then_some(merged)
}

/// The writes that merge the chunks [`compaction`] chose (`merged`, oldest
/// first) holding `fixes` (their fixes, in order) into one full chunk and a
/// remainder. Each fix keeps its `Seq`: compaction is not a change.
#[must_use]
pub fn compact(merged: &[ChunkMeta], fixes: Vec<StoredFix>) -> Vec<ChunkWrite> {
    let mut out = Vec::new();
    let Some(oldest) = merged.first() else { return out };
    let lens = lengths(&greedy(&fixes));
    let mut pieces = split_owned(fixes, &lens).into_iter();
    if let Some(piece) = pieces.next() {
        out.push(ChunkWrite::Rewrite {
            id: oldest.id,
            old_first: oldest.first,
            fixes: piece,
            encoding: ExtrasEncoding::Compressed,
            live: false,
        });
    }
    out.extend(merged[1..].iter().map(|m| ChunkWrite::Delete { id: m.id }));
    for piece in pieces {
        let encoding = insert_encoding(&piece);
        out.push(ChunkWrite::Insert { fixes: piece, encoding, live: false });
    }
    out
}

/// How long after a device's last late point compaction leaves it alone.
pub const QUIET_FOR: Duration = Duration::from_secs(60);

/// Devices tracked by [`LatePoints`] before the stale ones are dropped.
const LATE_PRUNE_ABOVE: usize = 1024;

/// When each device last received a late point, so that compaction leaves
/// it alone for a while.
///
/// A point that arrives after newer ones are stored lands between two
/// stored points, and the chunk holding its time is rewritten whole: cheap
/// for a live tail, a thousand fixes for a compacted chunk. Phones post in
/// order, but one device's points can reach the server from two senders at
/// once (two clients replaying one history, a load generator with two
/// threads), and those drift apart by thousands of points: each of the late
/// sender's points then rewrote a full chunk, which doubled the writer's
/// cost per point. So a writer notes when a device last received a point
/// between stored ones ([`Merge::received_late`]), and skips
/// [`ChunkWrite::CompactBefore`] until it has had none for [`QUIET_FOR`].
///
/// This is a hint held by one writer process: another process (an import,
/// another node) starts without it, which only means it compacts as usual.
/// Compaction never changes what is stored, so a stale hint costs time,
/// never correctness.
#[derive(Debug, Default)]
pub struct LatePoints {
    last: HashMap<(UserId, DeviceId), Instant>,
}

impl LatePoints {
    /// Notes that `device` just received a point between stored ones.
    pub fn record(&mut self, user: UserId, device: DeviceId, now: Instant) {
        if self.last.len() >= LATE_PRUNE_ABOVE {
            self.last.retain(|_, at| now.saturating_duration_since(*at) < QUIET_FOR);
        }
        self.last.insert((user, device), now);
    }

    /// Whether `device` received a late point within [`QUIET_FOR`] of `now`.
    #[must_use]
    pub fn recent(&self, user: UserId, device: DeviceId, now: Instant) -> bool {
        self.last.get(&(user, device)).is_some_and(|at| now.saturating_duration_since(*at) < QUIET_FOR)
    }
}

// ---------------------------------------------------------------- delete

/// What a delete removes, chunk by chunk ([`PointSelection`]).
///
/// A backend reads the chunks of the selection's user (and device) with
/// `last_ms >= lo AND (to IS NULL OR first_ms < to)`, ordered by device and
/// first time, and asks for each: [`Deletion::removes_whole`] (drop it
/// without decoding), else [`Deletion::sift`] its decoded fixes.
#[derive(Debug, Clone)]
pub struct Deletion {
    lo: i64,
    to: Option<i64>,
    area: Option<Area>,
    thin: Option<i64>,
    /// A caller's rule may spare single fixes.
    sparing: bool,
    /// (device, slot) of the last fix a thinning kept.
    slot_kept: Option<(i64, i64)>,
}

impl Deletion {
    /// The deletion of `selection`; `sparing` when a `keep` rule will be
    /// passed to [`Deletion::sift`]. `None` for an empty time range.
    #[must_use]
    pub fn new(selection: &PointSelection, sparing: bool) -> Option<Self> {
        let query = &selection.query;
        let lo = query.from.map_or(i64::MIN, |t| t.0);
        let to = query.to.map(|t| t.0);
        if to.is_some_and(|to| to <= lo) {
            return None;
        }
        let thin = selection.keep_one_every_ms.filter(|ms| *ms > 0);
        Some(Self { lo, to, area: selection.area, thin, sparing, slot_kept: None })
    }

    /// The inclusive lower time bound (`i64::MIN` when unbounded).
    #[must_use]
    pub fn lo(&self) -> i64 {
        self.lo
    }

    /// The exclusive upper time bound.
    #[must_use]
    pub fn to(&self) -> Option<i64> {
        self.to
    }

    /// Whether it thins (keeps one fix per slot) rather than deletes.
    #[must_use]
    pub fn thins(&self) -> bool {
        self.thin.is_some()
    }

    fn inside(&self, t: i64) -> bool {
        t >= self.lo && self.to.is_none_or(|to| t < to)
    }

    /// Whether the chunk goes whole: it lies inside the range, and no area,
    /// thinning or `keep` rule needs its fixes.
    #[must_use]
    pub fn removes_whole(&self, meta: &ChunkMeta) -> bool {
        !self.sparing && self.area.is_none() && self.thin.is_none() && self.inside(meta.first) && self.inside(meta.last)
    }

    /// Removes from `fixes` (chunk `meta` of `device`, decoded) what the
    /// deletion takes, sparing the fixes `keep` keeps by their seq. Returns
    /// how many went and the write that stores the rest (`None` when none
    /// went). Chunks must come in device and time order: a thinning keeps
    /// the first fix of each slot, which may lie in the chunk before.
    pub fn sift(
        &mut self,
        device: DeviceId,
        meta: &ChunkMeta,
        mut fixes: Vec<StoredFix>,
        mut keep: Option<&mut (dyn FnMut(Seq) -> bool + '_)>,
    ) -> (u64, Option<ChunkWrite>) {
        let before = fixes.len();
        let (area, thin) = (self.area, self.thin);
        let (lo, to) = (self.lo, self.to);
        let slot_kept = &mut self.slot_kept;
        fixes.retain(|f| {
            let t = f.fix.time.0;
            let selected = t >= lo
                && to.is_none_or(|to| t < to)
                && area.is_none_or(|a| a.contains(f.fix.coord.lat_e7, f.fix.coord.lon_e7));
            if !selected {
                return true;
            }
            if let Some(every) = thin {
                let slot = (device.0, t.div_euclid(every));
                if *slot_kept != Some(slot) {
                    *slot_kept = Some(slot);
                    return true;
                }
            }
            keep.as_mut().is_some_and(|keep| keep(f.seq))
        });
        let removed = (before - fixes.len()) as u64;
        if removed == 0 {
            return (0, None);
        }
        let write = if fixes.is_empty() {
            ChunkWrite::Delete { id: meta.id }
        } else {
            // What a delete leaves is not a live tail: compressed.
            ChunkWrite::Rewrite {
                id: meta.id,
                old_first: meta.first,
                fixes,
                encoding: ExtrasEncoding::Compressed,
                live: false,
            }
        };
        (removed, Some(write))
    }

    /// Whether an interval starting at `start` (a time inside the range,
    /// which the backend selected) at `start_coord` goes with the points:
    /// it lies inside the area, if there is one.
    #[must_use]
    pub fn takes_interval_at(&self, start_coord: Option<(i32, i32)>) -> bool {
        match self.area {
            None => true,
            Some(area) => start_coord.is_some_and(|(lat, lon)| area.contains(lat, lon)),
        }
    }
}

/// Leaves out of a local insert the fixes one of `stones` (the tombstones
/// over the batch's range) buries: a re-import does not bring deleted
/// points back. Returns the fixes to store and how many were left out;
/// borrows when nothing was.
#[must_use]
pub fn unburied<'f>(stones: &[Tombstone], device: DeviceId, fixes: &'f [Fix]) -> (Cow<'f, [Fix]>, u64) {
    if stones.is_empty() || !fixes.iter().any(|f| stones.iter().any(|t| t.buries(device, f))) {
        return (Cow::Borrowed(fixes), 0);
    }
    let kept: Vec<Fix> = fixes.iter().filter(|f| !stones.iter().any(|t| t.buries(device, f))).cloned().collect();
    let suppressed = (fixes.len() - kept.len()) as u64;
    (Cow::Owned(kept), suppressed)
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat};

    use super::*;
    use crate::PointQuery;

    fn fix(t: i64) -> Fix {
        Fix::new(Timestamp(t), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Csv)
    }

    fn at(t: i64, lat_e7: i32) -> Fix {
        Fix::new(Timestamp(t), Coord { lat_e7, lon_e7: 2 }, SourceFormat::Csv)
    }

    fn stored(times: impl IntoIterator<Item = i64>, seq: u64) -> Vec<StoredFix> {
        times.into_iter().map(|t| StoredFix { fix: fix(t), seq: Seq(seq) }).collect()
    }

    fn meta(id: i64, fixes: &[StoredFix]) -> ChunkMeta {
        ChunkMeta { id, first: fixes[0].fix.time.0, last: fixes.last().unwrap().fix.time.0, n: fixes.len() }
    }

    fn times(fixes: &[StoredFix]) -> Vec<i64> {
        fixes.iter().map(|f| f.fix.time.0).collect()
    }

    /// Plans an insert of `fixes` into the chunks `stored` (id = index + 1).
    fn plan(
        fixes: &[Fix],
        chunks: &[Vec<StoredFix>],
        replace: Option<&mut Replace<'_>>,
    ) -> (u64, u64, bool, Vec<i64>, Vec<ChunkWrite>) {
        let metas: Vec<ChunkMeta> = chunks.iter().enumerate().map(|(i, c)| meta(i as i64 + 1, c)).collect();
        let assignment = Batch::new(fixes).assign(metas);
        let read: Vec<i64> = assignment.chunks_to_read().map(|m| m.id).collect();
        let merge = assignment.compare(&mut |m: &ChunkMeta| Ok(chunks[(m.id - 1) as usize].clone()), replace).unwrap();
        let (added, duplicates, late) = (merge.added(), merge.duplicates(), merge.received_late());
        (added, duplicates, late, read, merge.writes(Seq(9)))
    }

    fn shapes(writes: &[ChunkWrite]) -> Vec<String> {
        writes
            .iter()
            .map(|w| match w {
                ChunkWrite::Insert { fixes, .. } => format!("insert {}", fixes.len()),
                ChunkWrite::Rewrite { id, fixes, .. } => format!("rewrite {id} {}", fixes.len()),
                ChunkWrite::Delete { id } => format!("delete {id}"),
                ChunkWrite::CompactBefore { last } => format!("compact before {last}"),
            })
            .collect()
    }

    #[test]
    fn greedy_fills_chunks_and_even_spreads_them() {
        let points = stored(0..2 * CHUNK_CAPACITY as i64 + 11, 1);
        let lens = |pieces: Vec<&[StoredFix]>| pieces.iter().map(|p| p.len()).collect::<Vec<_>>();
        assert_eq!(lens(greedy(&points)), vec![CHUNK_CAPACITY, CHUNK_CAPACITY, 11]);
        let third = (2 * CHUNK_CAPACITY + 11) / 3;
        assert_eq!(lens(even(&points)), vec![third + 1, third, third]);
        assert_eq!(lens(even(&[])), vec![0]);
    }

    #[test]
    fn a_batch_is_sorted_and_keeps_the_first_of_each_time() {
        let fixes = [at(30, 1), at(10, 1), at(30, 2), at(20, 1)];
        let batch = Batch::new(&fixes);
        assert_eq!(batch.span(), Some((10, 30)));
        let merge = batch.assign(Vec::new()).compare(&mut |_| unreachable!(), None).unwrap();
        assert_eq!((merge.added(), merge.duplicates()), (3, 1));
        let writes = merge.writes(Seq(4));
        let [ChunkWrite::Insert { fixes: written, live: true, encoding: ExtrasEncoding::Raw }] = &writes[..] else {
            panic!("{writes:?}");
        };
        assert_eq!(times(written), vec![10, 20, 30]);
        assert_eq!(written[2].fix.coord.lat_e7, 1, "the first fix of a time wins");
        assert!(written.iter().all(|f| f.seq == Seq(4)));
        assert_eq!(Batch::new(&[]).span(), None);
    }

    #[test]
    fn fixes_go_to_the_last_chunk_starting_at_or_before_them() {
        let chunks = [stored([100, 200], 1), stored([300, 400], 2)];
        let (added, duplicates, late, read, writes) =
            plan(&[fix(50), fix(150), fix(200), fix(350), fix(450)], &chunks, None);
        assert_eq!((added, duplicates, late), (4, 1, true));
        assert_eq!(read, vec![1, 2]);
        let [
            ChunkWrite::Rewrite { id: 1, old_first: 100, fixes: first, .. },
            ChunkWrite::Rewrite { id: 2, old_first: 300, fixes: second, .. },
        ] = &writes[..]
        else {
            panic!("{writes:?}");
        };
        assert_eq!(times(first), vec![50, 100, 150, 200]);
        assert_eq!(times(second), vec![300, 350, 400, 450]);
        assert_eq!(first.iter().map(|f| f.seq.0).collect::<Vec<_>>(), vec![9, 1, 9, 1], "stored fixes keep their seq");
    }

    #[test]
    fn duplicates_keep_the_stored_fix_unless_a_rule_replaces_it() {
        let chunks = [stored([100, 200, 300], 1)];
        let (added, duplicates, _, _, writes) = plan(&[at(200, 5)], &chunks, None);
        assert_eq!((added, duplicates), (0, 1));
        assert!(writes.is_empty());
        let mut replace = |old: &StoredFix, new: &Fix| old.fix.coord != new.coord;
        let (added, duplicates, late, _, writes) = plan(&[at(200, 5), fix(300)], &chunks, Some(&mut replace));
        assert_eq!((added, duplicates, late), (1, 1, false), "a replacement is added, not late");
        let [ChunkWrite::Rewrite { fixes, .. }] = &writes[..] else { panic!("{writes:?}") };
        assert_eq!((fixes[1].fix.coord.lat_e7, fixes[1].seq), (5, Seq(9)));
        assert_eq!(fixes[2].seq, Seq(1));
    }

    #[test]
    fn a_live_append_grows_a_small_tail_and_seals_a_full_one() {
        let small = [stored(0..10, 1)];
        let (_, _, late, read, writes) = plan(&[fix(20)], &small, None);
        assert!(!late);
        assert_eq!(read, vec![1]);
        assert_eq!(shapes(&writes), vec!["rewrite 1 11"]);
        // A tail of LIVE_TAIL fixes is not read; the fix starts a new tail
        // and the sealed one may be compacted.
        let tail = [stored(0..LIVE_TAIL as i64, 1)];
        let (_, _, _, read, writes) = plan(&[fix(1_000)], &tail, None);
        assert!(read.is_empty());
        assert_eq!(shapes(&writes), vec!["insert 1".to_owned(), format!("compact before {}", LIVE_TAIL - 1)]);
        // A big append fills the tail up instead, then full chunks.
        let batch: Vec<Fix> = (1_000..1_000 + CHUNK_CAPACITY as i64).map(fix).collect();
        let (_, _, _, read, writes) = plan(&batch, &tail, None);
        assert_eq!(read, vec![1]);
        assert_eq!(shapes(&writes), vec![format!("rewrite 1 {CHUNK_CAPACITY}"), format!("insert {LIVE_TAIL}")]);
        // After a full chunk nothing is compacted.
        let full = [stored(0..CHUNK_CAPACITY as i64, 1)];
        let (_, _, _, read, writes) = plan(&[fix(5_000)], &full, None);
        assert!(read.is_empty());
        assert_eq!(shapes(&writes), vec!["insert 1"]);
    }

    #[test]
    fn a_backfill_that_overflows_a_chunk_splits_it_evenly() {
        let full = [stored((0..CHUNK_CAPACITY as i64).map(|t| t * 10), 1)];
        let (added, _, late, _, writes) = plan(&[fix(5)], &full, None);
        assert_eq!((added, late), (1, true));
        let half = CHUNK_CAPACITY.div_ceil(2);
        assert_eq!(shapes(&writes), vec![format!("rewrite 1 {}", half + 1), format!("insert {half}")]);
        let ChunkWrite::Insert { fixes, encoding, .. } = &writes[1] else { unreachable!() };
        assert_eq!(*encoding, ExtrasEncoding::Compressed);
        assert!(times(fixes).is_sorted());
    }

    #[test]
    fn sealed_tails_are_compacted_behind_the_newest_fixes() {
        // Small chunks of LIVE_TAIL fixes each, oldest first.
        let tails: Vec<ChunkMeta> = (0..COMPACT_LOOKBACK as i64)
            .map(|i| ChunkMeta { id: i + 1, first: i * 100, last: i * 100 + 31, n: LIVE_TAIL })
            .collect();
        let newest_first: Vec<ChunkMeta> = tails.iter().rev().copied().collect();
        let newest_last = newest_first[0].last;
        let chosen = compaction(&newest_first, newest_last).expect("enough to fill a chunk");
        assert_eq!(chosen.len(), CHUNK_CAPACITY / LIVE_TAIL);
        assert_eq!(chosen[0], tails[0], "oldest first");
        assert_eq!(compaction(&newest_first, newest_last - 1), None, "not the sealed tail");
        let few = &newest_first[..(COMPACT_BEHIND + CHUNK_CAPACITY) / LIVE_TAIL - 1];
        assert_eq!(compaction(few, newest_last), None, "the newest fixes stay in small chunks");
        let mut behind_a_full_one = newest_first.clone();
        behind_a_full_one[3].n = CHUNK_CAPACITY;
        assert_eq!(compaction(&behind_a_full_one, newest_last), None, "the run ends at a full chunk");

        let fixes = stored(0..(chosen.len() * LIVE_TAIL) as i64 + 5, 3);
        let mut longer = chosen.clone();
        longer[0].n += 5;
        let writes = compact(&longer, fixes);
        let mut expected = vec![format!("rewrite 1 {CHUNK_CAPACITY}")];
        expected.extend(longer[1..].iter().map(|m| format!("delete {}", m.id)));
        expected.push("insert 5".to_owned());
        assert_eq!(shapes(&writes), expected);
        let ChunkWrite::Rewrite { fixes: full, encoding, .. } = &writes[0] else { unreachable!() };
        assert_eq!(*encoding, ExtrasEncoding::Compressed);
        assert!(full.iter().all(|f| f.seq == Seq(3)), "compaction keeps each fix's seq");
    }

    #[test]
    fn a_device_is_late_for_a_while_after_its_last_late_point() {
        let mut late = LatePoints::default();
        let (alice, phone, watch) = (UserId(1), DeviceId(1), DeviceId(2));
        let start = Instant::now();
        assert!(!late.recent(alice, phone, start));
        late.record(alice, phone, start);
        assert!(late.recent(alice, phone, start + QUIET_FOR / 2));
        assert!(!late.recent(alice, watch, start), "another device is not affected");
        assert!(!late.recent(alice, phone, start + QUIET_FOR));
    }

    #[test]
    fn stale_devices_are_dropped_once_many_are_tracked() {
        let mut late = LatePoints::default();
        let start = Instant::now();
        for d in 0..LATE_PRUNE_ABOVE as i64 {
            late.record(UserId(1), DeviceId(d), start);
        }
        let later = start + QUIET_FOR;
        late.record(UserId(2), DeviceId(1), later);
        assert_eq!(late.last.len(), 1, "only the fresh entry is left");
        assert!(late.recent(UserId(2), DeviceId(1), later));
    }

    fn selection(from: Option<i64>, to: Option<i64>) -> PointSelection {
        PointSelection::from(PointQuery {
            user: UserId(1),
            device: None,
            from: from.map(Timestamp),
            to: to.map(Timestamp),
        })
    }

    #[test]
    fn a_delete_drops_chunks_inside_whole_and_sifts_the_edges() {
        assert!(Deletion::new(&selection(Some(10), Some(10)), false).is_none(), "an empty range");
        let mut deletion = Deletion::new(&selection(Some(100), Some(300)), false).unwrap();
        let inside = stored([100, 200, 299], 1);
        assert!(deletion.removes_whole(&meta(1, &inside)));
        let edge = stored([250, 300, 301], 1);
        assert!(!deletion.removes_whole(&meta(2, &edge)));
        let (removed, write) = deletion.sift(DeviceId(1), &meta(2, &edge), edge.clone(), None);
        assert_eq!(removed, 1);
        let Some(ChunkWrite::Rewrite { id: 2, old_first: 250, fixes, .. }) = write else { panic!("{write:?}") };
        assert_eq!(times(&fixes), vec![300, 301]);
        let outside = stored([400], 1);
        assert_eq!(deletion.sift(DeviceId(1), &meta(3, &outside), outside, None), (0, None));
        // Sparing needs each fix's seq: nothing goes whole.
        let mut sparing = Deletion::new(&selection(None, None), true).unwrap();
        assert!(!sparing.removes_whole(&meta(1, &inside)));
        let mixed = [stored([1, 2], 1), stored([3], 7)].concat();
        let (removed, write) = sparing.sift(DeviceId(1), &meta(1, &mixed), mixed.clone(), Some(&mut |s| s == Seq(7)));
        assert_eq!(removed, 2);
        let Some(ChunkWrite::Rewrite { fixes, .. }) = write else { panic!("{write:?}") };
        assert_eq!(times(&fixes), vec![3]);
        let (removed, write) = sparing.sift(DeviceId(1), &meta(1, &mixed), mixed, None);
        assert_eq!((removed, write), (3, Some(ChunkWrite::Delete { id: 1 })));
    }

    #[test]
    fn a_thinning_keeps_the_first_fix_of_each_slot_across_chunks_and_devices() {
        let mut thin =
            Deletion::new(&PointSelection { keep_one_every_ms: Some(100), ..selection(None, None) }, false).unwrap();
        assert!(thin.thins());
        let one = stored([10, 20, 150], 1);
        let two = stored([160, 210], 1);
        assert!(!thin.removes_whole(&meta(1, &one)));
        let (removed, write) = thin.sift(DeviceId(1), &meta(1, &one), one, None);
        assert_eq!(removed, 1);
        let Some(ChunkWrite::Rewrite { fixes, .. }) = write else { panic!("{write:?}") };
        assert_eq!(times(&fixes), vec![10, 150]);
        let (removed, write) = thin.sift(DeviceId(1), &meta(2, &two), two.clone(), None);
        assert_eq!(removed, 1, "150 kept slot 1 in the chunk before");
        let Some(ChunkWrite::Rewrite { fixes, .. }) = write else { panic!("{write:?}") };
        assert_eq!(times(&fixes), vec![210]);
        let (removed, _) = thin.sift(DeviceId(2), &meta(3, &two), two, None);
        assert_eq!(removed, 0, "another device's slots are its own");
    }

    #[test]
    fn an_area_deletes_only_the_fixes_and_intervals_inside_it() {
        let area = Area { west_e7: 0, south_e7: 0, east_e7: 10, north_e7: 10 };
        let mut deletion = Deletion::new(&PointSelection { area: Some(area), ..selection(None, None) }, false).unwrap();
        let fixes = vec![StoredFix { fix: at(1, 5), seq: Seq(1) }, StoredFix { fix: at(2, 50), seq: Seq(1) }];
        assert!(!deletion.removes_whole(&meta(1, &fixes)));
        let (removed, write) = deletion.sift(DeviceId(1), &meta(1, &fixes), fixes, None);
        assert_eq!(removed, 1);
        let Some(ChunkWrite::Rewrite { fixes, .. }) = write else { panic!("{write:?}") };
        assert_eq!(fixes[0].fix.coord.lat_e7, 50);
        assert!(deletion.takes_interval_at(Some((5, 5))));
        assert!(!deletion.takes_interval_at(Some((50, 5))));
        assert!(!deletion.takes_interval_at(None), "an interval without a position lies in no area");
        assert!(Deletion::new(&selection(None, None), false).unwrap().takes_interval_at(None));
    }

    #[test]
    fn buried_fixes_are_left_out_of_an_insert() {
        let stone = Tombstone {
            device: Some(DeviceId(1)),
            from: Some(Timestamp(100)),
            last: Some(Timestamp(200)),
            area: None,
            keep_one_every_ms: None,
            made: Timestamp(1_000),
        };
        let fixes = [fix(50), fix(150), fix(250), fix(2_000)];
        let (kept, suppressed) = unburied(std::slice::from_ref(&stone), DeviceId(1), &fixes);
        assert_eq!((kept.iter().map(|f| f.time.0).collect::<Vec<_>>(), suppressed), (vec![50, 250, 2_000], 1));
        let (kept, suppressed) = unburied(std::slice::from_ref(&stone), DeviceId(2), &fixes);
        assert!(matches!(kept, Cow::Borrowed(_)) && suppressed == 0, "another device's tombstone");
        let (kept, _) = unburied(&[], DeviceId(1), &fixes);
        assert!(matches!(kept, Cow::Borrowed(_)));
    }
}
