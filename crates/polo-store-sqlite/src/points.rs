//! Point chunks: reading and writing them in SQLite.
//!
//! What a write does to a device's chunks (merging inserts, sealing live
//! tails, compaction, splitting, deletes) is decided by the planner in
//! [`polo_store::chunks`], shared with the PostgreSQL store; this module
//! reads the rows a plan needs and applies the [`ChunkWrite`]s it decides.
//! What it adds is SQLite's: the single writer keeps the chunks it wrote
//! last decoded ([`TailCache`]) and notes which devices receive late points
//! ([`LatePoints`](polo_store::chunks::LatePoints)) to spare them compaction.

use std::ops::ControlFlow;
use std::time::Instant;

use polo_domain::{DeviceId, Fix, Point, Seq, Timestamp, UserId};
use polo_store::chunks::{Batch, COMPACT_LOOKBACK, ChunkMeta, ChunkWrite, Deletion, bounds, compact, compaction};
use polo_store::codec::{ExtrasEncoding, StoredFix, decode_chunk, encode_chunk_with};
use polo_store::{Area, ChangeKind, Hlc, PointQuery, PointSelection, StoreError, StoreResult, Tombstone, WriteOutcome};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::tail_cache::TailCache;
use crate::{
    ChangeClock, ChangeRecord, Db, SqliteStore, Stamp, WriterMemory, check_device, log_change_stamped, log_change_with,
};

/// Chunks fetched per reader round trip while scanning.
const SCAN_PAGE: i64 = 8;

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

/// Writes `piece` as a new chunk; returns its id and bytes.
fn insert_chunk(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    piece: &[StoredFix],
    extras: ExtrasEncoding,
) -> StoreResult<(i64, Vec<u8>)> {
    let b = bounds(piece);
    let bytes = encode_chunk_with(piece, extras);
    tx.prepare_cached(
        "INSERT INTO point_chunks (user_id, device_id, first_ms, last_ms, n, max_seq, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![user.0, device.0, b.first, b.last, b.n, b.max_seq, bytes])
    .db()?;
    Ok((tx.last_insert_rowid(), bytes))
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
    let b = bounds(piece);
    let bytes = encode_chunk_with(piece, extras);
    if b.first == old_first {
        tx.prepare_cached("UPDATE point_chunks SET last_ms = ?2, n = ?3, max_seq = ?4, data = ?5 WHERE id = ?1")
            .db()?
            .execute(params![id, b.last, b.n, b.max_seq, bytes])
            .db()?;
        return Ok(bytes);
    }
    tx.prepare_cached(
        "UPDATE point_chunks SET first_ms = ?2, last_ms = ?3, n = ?4, max_seq = ?5, data = ?6 WHERE id = ?1",
    )
    .db()?
    .execute(params![id, b.first, b.last, b.n, b.max_seq, bytes])
    .db()?;
    Ok(bytes)
}

fn delete_chunk(tx: &Transaction<'_>, id: i64) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM point_chunks WHERE id = ?1").db()?.execute([id]).db()?;
    Ok(())
}

/// Applies a plan's writes to `device`'s chunks in order, keeping the live
/// ones decoded in `tails`. [`ChunkWrite::CompactBefore`] compacts only
/// when `compact` (the device receives no late points).
fn apply(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    writes: Vec<ChunkWrite>,
    tails: &mut TailCache,
    compact: bool,
) -> StoreResult<()> {
    for write in writes {
        match write {
            ChunkWrite::Insert { fixes, encoding, live } => {
                let (id, bytes) = insert_chunk(tx, user, device, &fixes, encoding)?;
                if live {
                    tails.keep(id, bytes, fixes);
                }
            }
            ChunkWrite::Rewrite { id, old_first, fixes, encoding, live } => {
                let bytes = update_chunk(tx, id, old_first, &fixes, encoding)?;
                if live {
                    tails.keep(id, bytes, fixes);
                }
            }
            ChunkWrite::Delete { id } => delete_chunk(tx, id)?,
            ChunkWrite::CompactBefore { last } if compact => compact_before(tx, user, device, last, tails)?,
            ChunkWrite::CompactBefore { .. } => {}
        }
    }
    Ok(())
}

pub(crate) use polo_store::chunks::Replace;

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
    let Provenance { stamp, replace } = provenance;
    let WriterMemory { tails, late } = memory;
    check_device(tx, user, device)?;
    let batch = Batch::new(fixes);
    let Some((lo, hi)) = batch.span() else {
        return Ok(WriteOutcome::default());
    };
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
    let merge = batch.assign(metas).compare(&mut |meta| load_cached(tx, meta.id, tails), replace)?;
    let now = Instant::now();
    if merge.received_late() {
        late.record(user, device, now);
    }
    for time in merge.added_times() {
        added(time);
    }
    let (added, duplicates) = (merge.added(), merge.duplicates());
    let Some((first_added, last_added)) = merge.added_span() else {
        return Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed: 0, seq: None });
    };
    let change = ChangeRecord {
        kind: ChangeKind::PointsInserted,
        user,
        device: Some(device),
        first: Some(first_added),
        last: Some(last_added),
        count: added,
    };
    let seq = log_change_with(tx, clock, stamp, &change)?;
    let compact = !late.recent(user, device, now);
    apply(tx, user, device, merge.writes(seq), tails, compact)?;
    Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed: 0, seq: Some(seq) })
}

/// Compacts the small chunks before the sealed tail ending at `last`
/// ([`compaction`]). Each fix keeps its `Seq`, so this is not a change of
/// its own.
fn compact_before(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    last: i64,
    tails: &mut TailCache,
) -> StoreResult<()> {
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
    let Some(merged) = compaction(&newest_first, last) else {
        return Ok(());
    };
    let mut fixes = Vec::new();
    for meta in &merged {
        fixes.extend(load(tx, meta.id)?);
    }
    apply(tx, user, device, compact(&merged, fixes), tails, false)
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
    let user = query.user;
    let Some(mut deletion) = Deletion::new(selection, keep.is_some()) else {
        return Ok(WriteOutcome::default());
    };
    let (lo, to) = (deletion.lo(), deletion.to());
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
    let mut deleted = 0u64;
    let mut no_tails = TailCache::default();
    for (device, meta) in chunks {
        if deletion.removes_whole(&meta) {
            delete_chunk(tx, meta.id)?;
            deleted += meta.n as u64;
            continue;
        }
        let points = load(tx, meta.id)?;
        let (removed, write) = deletion.sift(DeviceId(device), &meta, points, keep.as_deref_mut());
        deleted += removed;
        apply(tx, user, DeviceId(device), write.into_iter().collect(), &mut no_tails, false)?;
    }
    // The visits and activities a source carried go with the points (a
    // thinning keeps them).
    let intervals = if deletion.thins() { 0 } else { delete_intervals(tx, selection, &deletion, &mut keep)? };
    if deleted == 0 && intervals == 0 && !always {
        return Ok(WriteOutcome::default());
    }
    let last = to.map(|to| to - 1);
    let thin = selection.keep_one_every_ms.filter(|ms| *ms > 0);
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
    deletion: &Deletion,
    keep: &mut Option<&mut dyn FnMut(Seq) -> bool>,
) -> StoreResult<u64> {
    let query = &selection.query;
    let rows: Vec<(i64, Option<i32>, Option<i32>, i64)> = tx
        .prepare_cached(
            "SELECT id, start_lat, start_lon, seq FROM intervals WHERE user_id = ?1 \
             AND (?2 IS NULL OR device_id = ?2) AND start_ms >= ?3 AND (?4 IS NULL OR start_ms < ?4)",
        )
        .db()?
        .query_map(params![query.user.0, query.device.map(|d| d.0), deletion.lo(), deletion.to()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    let mut removed = 0;
    for (id, lat, lon, seq) in rows {
        if !deletion.takes_interval_at(lat.zip(lon)) {
            continue;
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

/// Leaves out of a local insert the fixes a tombstone buries
/// ([`polo_store::chunks::unburied`]). Returns the fixes to store and how
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
    Ok(polo_store::chunks::unburied(&stones, device, fixes))
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
