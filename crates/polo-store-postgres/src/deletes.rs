//! Deleting points and the tombstones that keep them deleted.
//!
//! # Why it is built this way
//!
//! * **The shared planner.** Which chunks go whole and which fixes go from
//!   the others is [`Deletion`]'s decision, as in the SQLite store; this
//!   module lists the chunks, deletes the whole ones in one statement, and
//!   decodes the rest a page at a time, in device and time order (a
//!   thinning keeps the first fix of a slot, which may lie in the chunk
//!   before), so a delete over years of history holds a page, not years.
//! * **Tombstones** record every delete that removed something (and
//!   selections and replicated deletes even when nothing was stored yet),
//!   so a re-import does not bring deleted points back: a local insert
//!   leaves out what one buries (`points::probe` reads them with the chunks).
//! * Like every changing write, a delete runs under the `change_clock` lock
//!   its caller took.

use polo_domain::{DeviceId, Seq, Timestamp, UserId};
use polo_store::chunks::{ChunkMeta, Deletion};
use polo_store::clock::{ChangeClock, Stamp};
use polo_store::{Area, ChangeKind, Hlc, PointSelection, StoreResult, Tombstone, WriteOutcome};
use postgres::types::Type;
use postgres::{GenericClient, Row};

use crate::error::Db;
use crate::points::{apply, decode_loaded, delete_chunks, load_chunks};
use crate::statements::Tx;
use crate::{ChangeRecord, PostgresStore, log_change_with, with_clock};

/// Chunks decoded per round trip while deleting.
const DELETE_PAGE: usize = 16;

pub(crate) fn delete_selection(store: &PostgresStore, selection: &PointSelection) -> StoreResult<WriteOutcome> {
    // A selection on the map keeps its tombstone even when nothing was
    // stored there yet: what a re-import would bring must stay out.
    let always = selection.area.is_some();
    store.write(|tx| with_clock(tx, |tx, clock| delete(tx, clock, selection, Stamp::Local, None, always)))
}

/// Deletes what `selection` selects inside the caller's transaction, which
/// holds `clock`, and records the tombstone (with its area and thinning,
/// if any), stamped with `stamp`. As the SQLite store's `points::delete`.
///
/// `keep`, when given, spares fixes and intervals by the seq of their write
/// (replication: those newer than the tombstone); `always` records the
/// tombstone even when nothing was removed (a replicated delete must still
/// stop older points that arrive later; so must a selection, which a
/// re-import would fill again).
pub(crate) fn delete(
    tx: &mut Tx<'_>,
    clock: &mut ChangeClock,
    selection: &PointSelection,
    stamp: Stamp,
    mut keep: Option<&mut dyn FnMut(Seq) -> bool>,
    always: bool,
) -> StoreResult<WriteOutcome> {
    let query = &selection.query;
    let user = query.user;
    let Some(mut deletion) = Deletion::new(selection, keep.is_some()) else {
        return Ok(WriteOutcome::default());
    };
    let (lo, to) = (deletion.lo(), deletion.to());
    let device = query.device.map(|d| d.0);
    let rows = tx
        .query_typed(
            "SELECT id, first_ms, last_ms, n, device_id FROM point_chunks WHERE user_id = $1 \
             AND ($2::BIGINT IS NULL OR device_id = $2) AND last_ms >= $3 AND ($4::BIGINT IS NULL OR first_ms < $4) \
             ORDER BY device_id, first_ms",
            &[(&user.0, Type::INT8), (&device, Type::INT8), (&lo, Type::INT8), (&to, Type::INT8)],
        )
        .db()?;
    let mut whole = Vec::new();
    let mut sifted: Vec<(DeviceId, ChunkMeta)> = Vec::new();
    let mut deleted = 0u64;
    for row in &rows {
        let meta = crate::points::chunk_meta(row)?;
        if deletion.removes_whole(&meta) {
            whole.push(meta.id);
            deleted += meta.n as u64;
        } else {
            sifted.push((DeviceId(row.get(4)), meta));
        }
    }
    delete_chunks(tx, user, &whole)?;
    for page in sifted.chunks(DELETE_PAGE) {
        let ids: Vec<i64> = page.iter().map(|(_, m)| m.id).collect();
        let mut payloads = load_chunks(tx, user, &ids)?;
        for (device, meta) in page {
            let fixes = decode_loaded(&mut payloads, meta.id)?;
            let (removed, write) = deletion.sift(*device, meta, fixes, keep.as_deref_mut());
            deleted += removed;
            apply(tx, user, *device, write.into_iter().collect(), false)?;
        }
    }
    // The visits and activities a source carried go with the points (a
    // thinning keeps them).
    let intervals = if deletion.thins() { 0 } else { delete_intervals(tx, selection, &deletion, &mut keep)? };
    if deleted == 0 && intervals == 0 && !always {
        return Ok(WriteOutcome::default());
    }
    let change = ChangeRecord {
        kind: ChangeKind::PointsDeleted,
        user,
        device: query.device,
        first: query.from.map(|t| t.0),
        last: to.map(|to| to - 1),
        count: deleted,
    };
    let seq = log_change_with(tx, clock, stamp, &change)?;
    let area = selection.area;
    let thin = selection.keep_one_every_ms.filter(|ms| *ms > 0);
    tx.execute_typed(
        "INSERT INTO tombstones (user_id, device_id, from_ms, last_ms, hlc, origin, seq, \
         west_e7, south_e7, east_e7, north_e7, thin_ms) \
         SELECT user_id, device_id, first_ms, last_ms, hlc, origin, seq, $3, $4, $5, $6, $7 \
         FROM changes WHERE user_id = $1 AND seq = $2",
        &[
            (&user.0, Type::INT8),
            (&(seq.0 as i64), Type::INT8),
            (&area.map(|a| a.west_e7), Type::INT4),
            (&area.map(|a| a.south_e7), Type::INT4),
            (&area.map(|a| a.east_e7), Type::INT4),
            (&area.map(|a| a.north_e7), Type::INT4),
            (&thin, Type::INT8),
        ],
    )
    .db()?;
    Ok(WriteOutcome { deleted, seq: Some(seq), ..WriteOutcome::default() })
}

/// Removes the intervals (imported visits, activities, memories) a delete
/// covers: the user's (or the device's) starting inside the range, and
/// inside the area if there is one. `keep` spares them by the seq of their
/// write.
fn delete_intervals(
    tx: &mut Tx<'_>,
    selection: &PointSelection,
    deletion: &Deletion,
    keep: &mut Option<&mut dyn FnMut(Seq) -> bool>,
) -> StoreResult<u64> {
    let query = &selection.query;
    let device = query.device.map(|d| d.0);
    let rows = tx
        .query_typed(
            "SELECT id, start_lat, start_lon, seq FROM intervals WHERE user_id = $1 \
             AND ($2::BIGINT IS NULL OR device_id = $2) AND start_ms >= $3 AND ($4::BIGINT IS NULL OR start_ms < $4)",
            &[
                (&query.user.0, Type::INT8),
                (&device, Type::INT8),
                (&deletion.lo(), Type::INT8),
                (&deletion.to(), Type::INT8),
            ],
        )
        .db()?;
    let mut gone = Vec::new();
    for row in &rows {
        let (lat, lon): (Option<i32>, Option<i32>) = (row.get(1), row.get(2));
        if !deletion.takes_interval_at(lat.zip(lon)) {
            continue;
        }
        let seq: i64 = row.get(3);
        if keep.as_mut().is_some_and(|keep| keep(Seq(seq as u64))) {
            continue;
        }
        gone.push(row.get::<_, i64>(0));
    }
    if !gone.is_empty() {
        tx.execute_typed(
            "DELETE FROM intervals WHERE user_id = $1 AND id = ANY($2)",
            &[(&query.user.0, Type::INT8), (&gone, Type::INT8_ARRAY)],
        )
        .db()?;
    }
    Ok(gone.len() as u64)
}

/// The tombstones of `user` that may cover fixes of `device` in `[lo, hi]`
/// (its own and the user-wide ones), with their versions' wall-clock time;
/// with `burying`, only those that bury (not thinnings, which the retention
/// job writes once a day and which a live insert need not read).
pub(crate) fn tombstones_over(
    c: &mut impl GenericClient,
    user: UserId,
    device: DeviceId,
    lo: i64,
    hi: i64,
    burying: bool,
) -> StoreResult<Vec<Tombstone>> {
    let rows = c
        .query_typed(
            "SELECT device_id, from_ms, last_ms, hlc, west_e7, south_e7, east_e7, north_e7, thin_ms FROM tombstones \
             WHERE user_id = $1 AND (device_id IS NULL OR device_id = $2) AND (NOT $5 OR thin_ms IS NULL) \
             AND (from_ms IS NULL OR from_ms <= $4) AND (last_ms IS NULL OR last_ms >= $3)",
            &[
                (&user.0, Type::INT8),
                (&device.0, Type::INT8),
                (&lo, Type::INT8),
                (&hi, Type::INT8),
                (&burying, Type::BOOL),
            ],
        )
        .db()?;
    Ok(rows.iter().map(|r| tombstone_at(r, 0, 3, 4, 8)).collect())
}

/// A [`Tombstone`] from a row holding `device_id, from_ms, last_ms` from
/// column `at`, its `hlc` at `hlc`, the area's four corners (west, south,
/// east, north) from `corners` and `thin_ms` at `thin`.
pub(crate) fn tombstone_at(r: &Row, at: usize, hlc: usize, corners: usize, thin: usize) -> Tombstone {
    let [west, south, east, north]: [Option<i32>; 4] = std::array::from_fn(|i| r.get(corners + i));
    let area = match (west, south, east, north) {
        (Some(west_e7), Some(south_e7), Some(east_e7), Some(north_e7)) => {
            Some(Area { west_e7, south_e7, east_e7, north_e7 })
        }
        _ => None,
    };
    let hlc: i64 = r.get(hlc);
    Tombstone {
        device: r.get::<_, Option<i64>>(at).map(DeviceId),
        from: r.get::<_, Option<i64>>(at + 1).map(Timestamp),
        last: r.get::<_, Option<i64>>(at + 2).map(Timestamp),
        area,
        keep_one_every_ms: r.get(thin),
        made: Timestamp(Hlc(hlc as u64).millis()),
    }
}

pub(crate) fn tombstones(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    last: Timestamp,
) -> StoreResult<Vec<Tombstone>> {
    store.read(|c| tombstones_over(&mut **c, user, device, from.0, last.0, false))
}
