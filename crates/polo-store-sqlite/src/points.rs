//! Point chunks: merging inserts into them, scanning and deleting.
//!
//! # Insert
//!
//! A batch is sorted and deduplicated (first wins), then merged into the
//! chunks it touches: the *predecessor* (the last chunk starting at or
//! before the batch's first time) and every chunk starting inside the
//! batch's range. Each new fix goes to the last chunk starting at or before
//! it, so chunks never overlap. Only chunks that receive new fixes are
//! decoded and rewritten; the rest are located by their bounds alone.
//!
//! * **Appends** (every new fix after the chunk's last) fill the chunk up to
//!   [`CHUNK_CAPACITY`] and start new full chunks; a full chunk is left alone.
//!   Small appends (live ingest) stop growing a chunk at [`LIVE_TAIL`] fixes,
//!   so one live fix rewrites at most that many, an O(1) cost independent of
//!   the history's length; bulk imports of appended batches write each chunk
//!   about once.
//! * **Compaction** folds sealed live tails back into full chunks: when a
//!   new live tail starts, and the small chunks before it hold a whole
//!   [`CHUNK_CAPACITY`] of fixes besides the newest [`COMPACT_BEHIND`], the
//!   oldest of them are rewritten as one full chunk. Each live fix is thus
//!   encoded about `LIVE_TAIL / 2` times while it is in the tail and once
//!   more in its final chunk, and live data ends up stored as compactly as
//!   imported data. A device that received points out of order within the
//!   last minute is left alone ([`crate::late_points`]): its late points
//!   would otherwise rewrite whole compacted chunks.
//! * **Backfills** into the middle split an overflowing chunk into evenly
//!   filled pieces, B-tree style, so repeated backfills don't leave
//!   one-point chunks behind.

use std::ops::ControlFlow;
use std::time::Instant;

use polo_domain::{DeviceId, Fix, Point, Seq, Timestamp, UserId};
use polo_store::codec::{CHUNK_CAPACITY, ExtrasEncoding, StoredFix, decode_chunk, encode_chunk_with};
use polo_store::{Area, ChangeKind, Hlc, PointQuery, PointSelection, StoreError, StoreResult, Tombstone, WriteOutcome};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::tail_cache::TailCache;
use crate::{
    ChangeClock, ChangeRecord, Db, SqliteStore, Stamp, WriterMemory, check_device, log_change_stamped, log_change_with,
};

/// Chunks fetched per reader round trip while scanning.
const SCAN_PAGE: i64 = 8;

/// A chunk's bounds, without its payload.
struct ChunkMeta {
    id: i64,
    first: i64,
    last: i64,
    n: usize,
}

/// A tail chunk holding at least this many fixes is not rewritten by a small
/// append (fewer fixes than this): the append starts a new chunk instead.
/// Live ingest thus rewrites at most this many fixes per commit instead of a
/// whole [`CHUNK_CAPACITY`] chunk; [`compact_before`] later merges the
/// sealed tails. Measured with 32 phones posting at once: at 128 the ingest
/// writer spent about a fifth of its time encoding tails and about 30 µs of
/// CPU per point; at 32, about 21 µs.
const LIVE_TAIL: usize = 32;

/// How many fixes of a device's newest data [`compact_before`] leaves in
/// small chunks: a fix arriving a little late lands in a small chunk, not
/// in a full one that it would have to rewrite whole, even before the
/// writer has noticed that the device receives late points.
const COMPACT_BEHIND: usize = CHUNK_CAPACITY;

/// The most chunks [`compact_before`] looks at: enough sealed live tails
/// to fill a whole chunk behind the [`COMPACT_BEHIND`] newest fixes.
const COMPACT_LOOKBACK: usize = (COMPACT_BEHIND + CHUNK_CAPACITY) / LIVE_TAIL + 1;

/// Reads a [`ChunkMeta`] from a row of `id, first_ms, last_ms, n`.
fn chunk_meta(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkMeta> {
    Ok(ChunkMeta {
        id: r.get(0)?,
        first: r.get(1)?,
        last: r.get(2)?,
        n: usize::try_from(r.get::<_, i64>(3)?).unwrap_or(usize::MAX),
    })
}

fn load(conn: &Connection, id: i64) -> StoreResult<Vec<StoredFix>> {
    decode_chunk(&load_bytes(conn, id)?)
}

fn load_bytes(conn: &Connection, id: i64) -> StoreResult<Vec<u8>> {
    conn.prepare_cached("SELECT data FROM point_chunks WHERE id = ?1").db()?.query_row([id], |r| r.get(0)).db()
}

/// [`load`], taking the decoded fixes from `tails` when it holds this
/// chunk's current bytes.
fn load_cached(conn: &Connection, id: i64, tails: &mut TailCache) -> StoreResult<Vec<StoredFix>> {
    let bytes = load_bytes(conn, id)?;
    match tails.take(id, &bytes) {
        Some(fixes) => Ok(fixes),
        None => decode_chunk(&bytes),
    }
}

fn bounds(piece: &[StoredFix]) -> (i64, i64, i64, i64) {
    let first = piece.first().map_or(0, |f| f.fix.time.0);
    let last = piece.last().map_or(0, |f| f.fix.time.0);
    let max_seq = piece.iter().map(|f| f.seq.0).max().unwrap_or(0);
    (first, last, piece.len() as i64, max_seq as i64)
}

/// How an insert stores a chunk's extras: a chunk under [`LIVE_TAIL`]
/// fixes is a live tail, rewritten by the next commits, and keeps them
/// uncompressed until it is sealed.
fn insert_encoding(piece: &[StoredFix]) -> ExtrasEncoding {
    if piece.len() < LIVE_TAIL { ExtrasEncoding::Raw } else { ExtrasEncoding::Compressed }
}

/// Writes `piece` as a new chunk; returns its id and bytes.
fn insert_chunk(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    piece: &[StoredFix],
) -> StoreResult<(i64, Vec<u8>)> {
    let (first, last, n, max_seq) = bounds(piece);
    let bytes = encode_chunk_with(piece, insert_encoding(piece));
    tx.prepare_cached(
        "INSERT INTO point_chunks (user_id, device_id, first_ms, last_ms, n, max_seq, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![user.0, device.0, first, last, n, max_seq, bytes])
    .db()?;
    Ok((tx.last_insert_rowid(), bytes))
}

/// Writes each piece as a new chunk; a lone piece is kept in `tails`, as
/// the next live commit will likely append to it.
fn insert_pieces(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    points: Vec<StoredFix>,
    tails: &mut TailCache,
) -> StoreResult<()> {
    if points.len() <= CHUNK_CAPACITY {
        let (id, bytes) = insert_chunk(tx, user, device, &points)?;
        tails.keep(id, bytes, points);
        return Ok(());
    }
    for piece in greedy(&points) {
        insert_chunk(tx, user, device, piece)?;
    }
    Ok(())
}

/// Rewrites a chunk and returns its new bytes. When its first time stays
/// `old_first` (appends, the common live case) the time index is left
/// alone: one page fewer per commit.
fn update_chunk(
    tx: &Transaction<'_>,
    id: i64,
    old_first: i64,
    piece: &[StoredFix],
    extras: ExtrasEncoding,
) -> StoreResult<Vec<u8>> {
    let (first, last, n, max_seq) = bounds(piece);
    let bytes = encode_chunk_with(piece, extras);
    if first == old_first {
        tx.prepare_cached("UPDATE point_chunks SET last_ms = ?2, n = ?3, max_seq = ?4, data = ?5 WHERE id = ?1")
            .db()?
            .execute(params![id, last, n, max_seq, bytes])
            .db()?;
        return Ok(bytes);
    }
    tx.prepare_cached(
        "UPDATE point_chunks SET first_ms = ?2, last_ms = ?3, n = ?4, max_seq = ?5, data = ?6 WHERE id = ?1",
    )
    .db()?
    .execute(params![id, first, last, n, max_seq, bytes])
    .db()?;
    Ok(bytes)
}

fn delete_chunk(tx: &Transaction<'_>, id: i64) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM point_chunks WHERE id = ?1").db()?.execute([id]).db()?;
    Ok(())
}

/// Full chunks, then the remainder: for appends.
fn greedy(points: &[StoredFix]) -> Vec<&[StoredFix]> {
    points.chunks(CHUNK_CAPACITY).collect()
}

/// Evenly filled pieces: for merges into the middle.
fn even(points: &[StoredFix]) -> Vec<&[StoredFix]> {
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

fn stored(fix: &Fix, seq: Seq) -> StoredFix {
    StoredFix { fix: fix.clone(), seq }
}

/// Decides whether an incoming fix replaces the stored one of the same time.
pub(crate) type Replace<'r> = dyn FnMut(&StoredFix, &Fix) -> bool + 'r;

/// Whose write an insert is: a local one, or one replicated from a peer.
pub(crate) struct Provenance<'r> {
    /// What the change is stamped with.
    pub(crate) stamp: Stamp,
    /// Whether a fix replaces the stored fix of the same time
    /// (replication's last-writer-wins); `None`, for local writes, keeps
    /// the stored fix.
    pub(crate) replace: Option<&'r mut Replace<'r>>,
}

impl Provenance<'_> {
    /// A write made here: stamped locally, never replacing a stored fix.
    pub(crate) fn local() -> Self {
        Provenance { stamp: Stamp::Local, replace: None }
    }
}

/// A local insert ([`polo_store::Store::insert_points`]): leaves out the
/// fixes a tombstone buries unless `restore` ([`polo_store::Store::restore_points`]),
/// and counts them in [`WriteOutcome::suppressed`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_local(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
    restore: bool,
    memory: &mut WriterMemory,
    clock: &mut ChangeClock,
) -> StoreResult<WriteOutcome> {
    let (fixes, suppressed) =
        if restore { (std::borrow::Cow::Borrowed(fixes), 0) } else { unburied(tx, user, device, fixes)? };
    let outcome = insert(tx, user, device, &fixes, added, Provenance::local(), memory, clock)?;
    Ok(WriteOutcome { suppressed, ..outcome })
}

/// [`polo_store::Store::insert_points`] inside the writer's transaction.
///
/// `added` hears the time of every fix that was new or replaced a stored
/// one. `memory` saves decoding the chunks the writer rewrites again and
/// again, and notes the devices receiving late points. The change is logged
/// on `clock`, which the caller writes back.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
    provenance: Provenance<'_>,
    memory: &mut WriterMemory,
    clock: &mut ChangeClock,
) -> StoreResult<WriteOutcome> {
    let Provenance { stamp, mut replace } = provenance;
    let WriterMemory { tails, late } = memory;
    check_device(tx, user, device)?;
    let mut batch: Vec<&Fix> = fixes.iter().collect();
    if !batch.is_sorted_by(|a, b| a.time < b.time) {
        batch.sort_by_key(|f| f.time); // stable: the first of equal times stays first
        batch.dedup_by_key(|f| f.time);
    }
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(WriteOutcome::default());
    };
    let (lo, hi) = (first.time.0, last.time.0);

    let metas: Vec<ChunkMeta> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, first_ms, last_ms, n FROM point_chunks WHERE user_id = ?1 AND device_id = ?2 \
                 AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                     WHERE user_id = ?1 AND device_id = ?2 AND first_ms <= ?3), ?3) \
                 AND first_ms <= ?4 ORDER BY first_ms",
            )
            .db()?;
        let rows = stmt.query_map(params![user.0, device.0, lo, hi], chunk_meta).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };

    // Assign each fix to the last chunk starting at or before it (the first
    // chunk for fixes before all of them), or to "new chunks" without any.
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (chunk index, end in batch)
    if !metas.is_empty() {
        let mut j = 0;
        for (i, f) in batch.iter().enumerate() {
            while j + 1 < metas.len() && metas[j + 1].first <= f.time.0 {
                j += 1;
            }
            match groups.last_mut() {
                Some((g, end)) if *g == j => *end = i + 1,
                _ => groups.push((j, i + 1)),
            }
        }
    }

    // Decode the touched chunks and find what is new.
    struct Touched {
        meta_index: usize,
        old: Vec<StoredFix>,
        new: Vec<usize>, // indices into batch
        /// (index into `old`, index into batch): stored fixes the batch replaces.
        replaced: Vec<(usize, usize)>,
        append: bool,
        /// An append to a chunk that stays as it is (full, or a live tail).
        leave_alone: bool,
    }
    let mut touched = Vec::with_capacity(groups.len());
    let mut new_only: Vec<usize> = Vec::new();
    let mut start = 0;
    for &(j, end) in &groups {
        let candidates = start..end;
        start = end;
        let meta = &metas[j];
        let small = candidates.len() < LIVE_TAIL;
        if batch[candidates.start].time.0 > meta.last && (meta.n >= CHUNK_CAPACITY || (small && meta.n >= LIVE_TAIL)) {
            // Pure append after a chunk that stays as it is: no need to decode it.
            touched.push(Touched {
                meta_index: j,
                old: Vec::new(),
                new: candidates.collect(),
                replaced: Vec::new(),
                append: true,
                leave_alone: true,
            });
            continue;
        }
        let old = load_cached(tx, meta.id, tails)?;
        let old_last = old.last().map(|f| f.fix.time.0);
        let mut new = Vec::new();
        let mut replaced = Vec::new();
        let append = old_last.is_none_or(|l| batch[candidates.start].time.0 > l);
        if append {
            new.extend(candidates);
        } else {
            let mut k = 0;
            for i in candidates {
                let t = batch[i].time;
                while k < old.len() && old[k].fix.time < t {
                    k += 1;
                }
                match old.get(k) {
                    Some(stored) if stored.fix.time == t => {
                        if replace.as_mut().is_some_and(|replace| replace(stored, batch[i])) {
                            replaced.push((k, i));
                        }
                    }
                    _ => new.push(i),
                }
            }
        }
        if !new.is_empty() || !replaced.is_empty() {
            touched.push(Touched { meta_index: j, old, new, replaced, append, leave_alone: false });
        }
    }
    if metas.is_empty() {
        new_only.extend(0..batch.len());
    }
    let now = Instant::now();
    if touched.iter().any(|t| !t.append && !t.new.is_empty()) {
        late.record(user, device, now);
    }

    let changed = || {
        let replaced = touched.iter().flat_map(|t| t.replaced.iter().map(|&(_, i)| i));
        touched.iter().flat_map(|t| t.new.iter().copied()).chain(replaced).chain(new_only.iter().copied())
    };
    for i in changed() {
        added(batch[i].time);
    }
    let added = changed().count() as u64;
    let duplicates = fixes.len() as u64 - added;
    if added == 0 {
        return Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed: 0, seq: None });
    }
    let (mut first_added, mut last_added) = (i64::MAX, i64::MIN);
    for i in changed() {
        first_added = first_added.min(batch[i].time.0);
        last_added = last_added.max(batch[i].time.0);
    }
    let change = ChangeRecord {
        kind: ChangeKind::PointsInserted,
        user,
        device: Some(device),
        first: Some(first_added),
        last: Some(last_added),
        count: added,
    };
    let seq = log_change_with(tx, clock, stamp, &change)?;

    if !new_only.is_empty() {
        let points: Vec<StoredFix> = new_only.iter().map(|&i| stored(batch[i], seq)).collect();
        insert_pieces(tx, user, device, points, tails)?;
    }
    for mut t in touched {
        let id = metas[t.meta_index].id;
        for &(k, i) in &t.replaced {
            t.old[k] = stored(batch[i], seq);
        }
        if t.append && (t.leave_alone || t.old.len() >= CHUNK_CAPACITY) {
            // A full chunk (or a live tail) stays as it is; the appended fixes start new ones.
            let points: Vec<StoredFix> = t.new.iter().map(|&i| stored(batch[i], seq)).collect();
            insert_pieces(tx, user, device, points, tails)?;
            let sealed = &metas[t.meta_index];
            if sealed.n < CHUNK_CAPACITY && !late.recent(user, device, now) {
                // A live tail was just sealed: the small chunks up to it may fill a whole one.
                compact_before(tx, user, device, sealed.last)?;
            }
            continue;
        }
        let merged = if t.append {
            let mut merged = t.old;
            merged.extend(t.new.iter().map(|&i| stored(batch[i], seq)));
            merged
        } else {
            let mut merged = Vec::with_capacity(t.old.len() + t.new.len());
            let mut new = t.new.iter().map(|&i| batch[i]).peekable();
            for old in t.old {
                while let Some(f) = new.next_if(|f| f.time < old.fix.time) {
                    merged.push(stored(f, seq));
                }
                merged.push(old);
            }
            merged.extend(new.map(|f| stored(f, seq)));
            merged
        };
        if merged.len() <= CHUNK_CAPACITY {
            // One piece: the chunk keeps its id, and its new bytes are kept with the fixes.
            let bytes = update_chunk(tx, id, metas[t.meta_index].first, &merged, insert_encoding(&merged))?;
            tails.keep(id, bytes, merged);
            continue;
        }
        let pieces = if t.append { greedy(&merged) } else { even(&merged) };
        let mut pieces = pieces.into_iter();
        if let Some(piece) = pieces.next() {
            update_chunk(tx, id, metas[t.meta_index].first, piece, insert_encoding(piece))?;
        }
        for piece in pieces {
            insert_chunk(tx, user, device, piece)?;
        }
    }
    Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed: 0, seq: Some(seq) })
}

/// Merges the oldest of the small chunks (fewer than [`CHUNK_CAPACITY`]
/// fixes each) in the run that ends with the chunk ending at `last`, once
/// they hold a whole chunk's worth besides the [`COMPACT_BEHIND`] newest
/// fixes: they are rewritten as one full chunk (and a small remainder).
/// Nothing else changes (each fix keeps its `Seq`), so this is not a change
/// of its own.
fn compact_before(tx: &Transaction<'_>, user: UserId, device: DeviceId, last: i64) -> StoreResult<()> {
    let newest_first: Vec<ChunkMeta> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, first_ms, last_ms, n FROM point_chunks WHERE user_id = ?1 AND device_id = ?2 \
                 AND first_ms <= ?3 ORDER BY first_ms DESC LIMIT ?4",
            )
            .db()?;
        let rows = stmt.query_map(params![user.0, device.0, last, COMPACT_LOOKBACK as i64], chunk_meta).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    if newest_first.first().is_none_or(|m| m.last != last) {
        return Ok(());
    }
    let run: Vec<&ChunkMeta> = newest_first.iter().take_while(|m| m.n < CHUNK_CAPACITY).collect();
    if run.iter().map(|m| m.n).sum::<usize>() < COMPACT_BEHIND + CHUNK_CAPACITY {
        return Ok(());
    }
    // The oldest chunks of the run, just enough to fill one.
    let mut merged: Vec<&ChunkMeta> = Vec::new();
    let mut filled = 0;
    for &meta in run.iter().rev() {
        if filled >= CHUNK_CAPACITY {
            break;
        }
        filled += meta.n;
        merged.push(meta);
    }
    if merged.len() < 2 {
        return Ok(());
    }
    let mut fixes = Vec::with_capacity(filled);
    for meta in &merged {
        fixes.extend(load(tx, meta.id)?);
    }
    let mut pieces = greedy(&fixes).into_iter();
    if let Some(piece) = pieces.next() {
        update_chunk(tx, merged[0].id, merged[0].first, piece, ExtrasEncoding::Compressed)?;
    }
    for meta in &merged[1..] {
        delete_chunk(tx, meta.id)?;
    }
    for piece in pieces {
        insert_chunk(tx, user, device, piece)?;
    }
    Ok(())
}

/// [`polo_store::Store::scan_points`]: pages of chunks per device, each page
/// on a briefly borrowed reader.
pub(crate) fn scan(
    store: &SqliteStore,
    query: &PointQuery,
    visit: &mut dyn FnMut(Point) -> ControlFlow<()>,
) -> StoreResult<()> {
    let user = query.user;
    let to = query.to.map(|t| t.0);
    let devices: Vec<i64> = match query.device {
        Some(d) => vec![d.0],
        None => store.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM devices WHERE user_id = ?1 ORDER BY id").db()?;
            stmt.query_map([user.0], |r| r.get(0)).db()?.collect::<rusqlite::Result<_>>().db()
        })?,
    };
    for device in devices {
        // `lo`: the earliest time not yet visited on this device.
        let mut lo = query.from.map_or(i64::MIN, |t| t.0);
        'device: loop {
            if to.is_some_and(|to| to <= lo) {
                break;
            }
            let page: Vec<(i64, Vec<u8>)> = store.read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT last_ms, data FROM point_chunks WHERE user_id = ?1 AND device_id = ?2 \
                         AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                             WHERE user_id = ?1 AND device_id = ?2 AND first_ms <= ?3), ?3) \
                         AND last_ms >= ?3 AND (?4 IS NULL OR first_ms < ?4) ORDER BY first_ms LIMIT ?5",
                    )
                    .db()?;
                stmt.query_map(params![user.0, device, lo, to, SCAN_PAGE], |r| Ok((r.get(0)?, r.get(1)?)))
                    .db()?
                    .collect::<rusqlite::Result<_>>()
                    .db()
            })?;
            if page.is_empty() {
                break;
            }
            for (last, data) in page {
                for sf in decode_chunk(&data)? {
                    let t = sf.fix.time.0;
                    if t < lo || to.is_some_and(|to| t >= to) {
                        continue;
                    }
                    if visit(Point { user, device: DeviceId(device), fix: sf.fix }).is_break() {
                        return Ok(());
                    }
                }
                match last.checked_add(1) {
                    Some(next) if next > lo => lo = next,
                    Some(_) => {
                        return Err(StoreError::Corrupt(format!("chunk bounds out of order on device {device}")));
                    }
                    None => break 'device,
                }
            }
        }
    }
    Ok(())
}

/// [`polo_store::Store::delete_selection`] inside the writer's transaction,
/// recording the tombstone (with its area, if any).
///
/// `keep`, when given, spares fixes inside the range (replication: points
/// newer than the tombstone); `always` records the tombstone even when it
/// removed nothing (a replicated delete must still stop older points that
/// arrive later; so must a selection, which a re-import would fill again).
pub(crate) fn delete(
    tx: &Transaction<'_>,
    selection: &PointSelection,
    stamp: Stamp,
    mut keep: Option<&mut dyn FnMut(Seq) -> bool>,
    always: bool,
) -> StoreResult<WriteOutcome> {
    let query = &selection.query;
    let area = selection.area;
    let thin = selection.keep_one_every_ms.filter(|ms| *ms > 0);
    let user = query.user;
    let lo = query.from.map_or(i64::MIN, |t| t.0);
    let to = query.to.map(|t| t.0);
    if to.is_some_and(|to| to <= lo) {
        return Ok(WriteOutcome::default());
    }
    // Per device in time order: a thinning keeps the first fix of each slot,
    // which may lie in the chunk before.
    let chunks: Vec<(i64, ChunkMeta)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, first_ms, last_ms, n, device_id FROM point_chunks WHERE user_id = ?1 \
                 AND (?2 IS NULL OR device_id = ?2) AND last_ms >= ?3 AND (?4 IS NULL OR first_ms < ?4) \
                 ORDER BY device_id, first_ms",
            )
            .db()?;
        stmt.query_map(params![user.0, query.device.map(|d| d.0), lo, to], |r| Ok((r.get(4)?, chunk_meta(r)?)))
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?
    };
    let inside = |t: i64| t >= lo && to.is_none_or(|to| t < to);
    let selected =
        |f: &StoredFix| inside(f.fix.time.0) && area.is_none_or(|a| a.contains(f.fix.coord.lat_e7, f.fix.coord.lon_e7));
    // (device, slot) of the last fix a thinning kept.
    let mut slot_kept: Option<(i64, i64)> = None;
    let mut deleted = 0u64;
    for (device, meta) in chunks {
        if keep.is_none() && area.is_none() && thin.is_none() && inside(meta.first) && inside(meta.last) {
            delete_chunk(tx, meta.id)?;
            deleted += meta.n as u64;
            continue;
        }
        let mut points = load(tx, meta.id)?;
        let before = points.len();
        points.retain(|f| {
            if !selected(f) {
                return true;
            }
            if let Some(every) = thin {
                let slot = (device, f.fix.time.0.div_euclid(every));
                if slot_kept != Some(slot) {
                    slot_kept = Some(slot);
                    return true;
                }
            }
            keep.as_mut().is_some_and(|keep| keep(f.seq))
        });
        let removed = before - points.len();
        if removed == 0 {
            continue;
        }
        deleted += removed as u64;
        if points.is_empty() {
            delete_chunk(tx, meta.id)?;
        } else {
            // What a delete leaves is not a live tail: compressed.
            update_chunk(tx, meta.id, meta.first, &points, ExtrasEncoding::Compressed)?;
        }
    }
    // The visits and activities a source carried go with the points (a
    // thinning keeps them).
    let intervals = if thin.is_none() { delete_intervals(tx, selection, lo, to, &mut keep)? } else { 0 };
    if deleted == 0 && intervals == 0 && !always {
        return Ok(WriteOutcome::default());
    }
    let last = to.map(|to| to - 1);
    let seq = log_change_stamped(
        tx,
        stamp,
        ChangeKind::PointsDeleted,
        user,
        query.device,
        query.from.map(|t| t.0),
        last,
        deleted,
    )?;
    tx.prepare_cached(
        "INSERT INTO tombstones (user_id, device_id, from_ms, last_ms, hlc, origin, seq, \
         west_e7, south_e7, east_e7, north_e7, thin_ms) \
         SELECT user_id, device_id, first_ms, last_ms, hlc, origin, seq, ?2, ?3, ?4, ?5, ?6 FROM changes WHERE seq = ?1",
    )
    .db()?
    .execute(params![
        seq.0 as i64,
        area.map(|a| a.west_e7),
        area.map(|a| a.south_e7),
        area.map(|a| a.east_e7),
        area.map(|a| a.north_e7),
        thin
    ])
    .db()?;
    Ok(WriteOutcome { deleted, seq: Some(seq), ..WriteOutcome::default() })
}

/// Removes the intervals (imported visits, activities, memories) a delete
/// covers: the user's (or the device's) starting inside the range, and inside
/// the area if there is one. `keep` spares them by the seq of their write.
fn delete_intervals(
    tx: &Transaction<'_>,
    selection: &PointSelection,
    lo: i64,
    to: Option<i64>,
    keep: &mut Option<&mut dyn FnMut(Seq) -> bool>,
) -> StoreResult<u64> {
    let query = &selection.query;
    let rows: Vec<(i64, Option<i32>, Option<i32>, i64)> = tx
        .prepare_cached(
            "SELECT id, start_lat, start_lon, seq FROM intervals WHERE user_id = ?1 \
             AND (?2 IS NULL OR device_id = ?2) AND start_ms >= ?3 AND (?4 IS NULL OR start_ms < ?4)",
        )
        .db()?
        .query_map(params![query.user.0, query.device.map(|d| d.0), lo, to], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    let mut removed = 0;
    for (id, lat, lon, seq) in rows {
        if let Some(area) = selection.area {
            let (Some(lat), Some(lon)) = (lat, lon) else { continue };
            if !area.contains(lat, lon) {
                continue;
            }
        }
        if keep.as_mut().is_some_and(|keep| keep(Seq(seq as u64))) {
            continue;
        }
        tx.prepare_cached("DELETE FROM intervals WHERE id = ?1").db()?.execute([id]).db()?;
        removed += 1;
    }
    Ok(removed)
}

/// The tombstones of `user` that may cover fixes of `device` in `[lo, hi]`
/// (its own and the user-wide ones), with their versions' wall-clock time;
/// with `burying`, only those that bury (not thinnings, which the retention
/// job writes once a day and which a live insert need not read).
pub(crate) fn tombstones_over(
    tx: &Connection,
    user: UserId,
    device: DeviceId,
    lo: i64,
    hi: i64,
    burying: bool,
) -> StoreResult<Vec<Tombstone>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT device_id, from_ms, last_ms, hlc, west_e7, south_e7, east_e7, north_e7, thin_ms FROM tombstones \
             WHERE user_id = ?1 AND (device_id IS NULL OR device_id = ?2) AND (?5 = 0 OR thin_ms IS NULL) \
             AND (from_ms IS NULL OR from_ms <= ?4) AND (last_ms IS NULL OR last_ms >= ?3)",
        )
        .db()?;
    let rows = stmt
        .query_map(params![user.0, device.0, lo, hi, burying], |r| {
            let corners: [Option<i32>; 4] = [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?];
            let area = match corners {
                [Some(west_e7), Some(south_e7), Some(east_e7), Some(north_e7)] => {
                    Some(Area { west_e7, south_e7, east_e7, north_e7 })
                }
                _ => None,
            };
            let hlc: i64 = r.get(3)?;
            Ok(Tombstone {
                device: r.get::<_, Option<i64>>(0)?.map(DeviceId),
                from: r.get::<_, Option<i64>>(1)?.map(Timestamp),
                last: r.get::<_, Option<i64>>(2)?.map(Timestamp),
                area,
                keep_one_every_ms: r.get(8)?,
                made: Timestamp(Hlc(hlc as u64).millis()),
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Leaves out of a local insert the fixes a tombstone buries: a re-import
/// does not bring deleted points back. Returns the fixes to store and how
/// many were left out; borrows when nothing was.
pub(crate) fn unburied<'f>(
    tx: &Connection,
    user: UserId,
    device: DeviceId,
    fixes: &'f [Fix],
) -> StoreResult<(std::borrow::Cow<'f, [Fix]>, u64)> {
    let (Some(lo), Some(hi)) = (fixes.iter().map(|f| f.time.0).min(), fixes.iter().map(|f| f.time.0).max()) else {
        return Ok((std::borrow::Cow::Borrowed(fixes), 0));
    };
    let stones = tombstones_over(tx, user, device, lo, hi, true)?;
    if stones.is_empty() || !fixes.iter().any(|f| stones.iter().any(|t| t.buries(device, f))) {
        return Ok((std::borrow::Cow::Borrowed(fixes), 0));
    }
    let kept: Vec<Fix> = fixes.iter().filter(|f| !stones.iter().any(|t| t.buries(device, f))).cloned().collect();
    let suppressed = (fixes.len() - kept.len()) as u64;
    Ok((std::borrow::Cow::Owned(kept), suppressed))
}

/// [`polo_store::Store::last_point`]: decodes only the device's last chunk
/// (chunks never overlap, so the one starting last holds the latest fix).
pub(crate) fn last(store: &SqliteStore, user: UserId, device: DeviceId) -> StoreResult<Option<Point>> {
    let data: Option<Vec<u8>> = store.read(|c| {
        c.prepare_cached(
            "SELECT data FROM point_chunks WHERE user_id = ?1 AND device_id = ?2 ORDER BY first_ms DESC LIMIT 1",
        )
        .db()?
        .query_row([user.0, device.0], |r| r.get(0))
        .optional()
        .db()
    })?;
    let Some(data) = data else { return Ok(None) };
    Ok(decode_chunk(&data)?.pop().map(|sf| Point { user, device, fix: sf.fix }))
}
