//! Intervals (imported visits, activities, memories): storing them once
//! each and reading them by time.
//!
//! # Why it is built this way
//!
//! * **Identity in the key.** `UNIQUE (user_id, device_id, kind, start_ms,
//!   end_ms, identity_key)` makes a repeated interval a duplicate, which
//!   `ON CONFLICT DO NOTHING` counts without a read first.
//! * **One statement per batch.** A Takeout import brings thousands of
//!   visits; they go in as arrays through `unnest`, and `RETURNING` tells
//!   which were new, so a batch costs one round trip, not one per interval.
//! * Every row carries the seq of the change that stored it, so a
//!   replicated delete can spare intervals newer than itself. The seq is
//!   the one the clock hands out next: the caller holds the
//!   `change_clock` lock, so nobody else can take it meanwhile.

use std::borrow::Cow;

use polo_domain::{Coord, DeviceId, Extras, Interval, IntervalKind, SourceFormat, Timestamp, UserId};
use polo_store::clock::{ChangeClock, Stamp};
use polo_store::{ChangeKind, StoreError, StoreResult, StoredInterval, WriteOutcome};
use postgres::Row;
use postgres::types::Type;

use crate::statements::Tx;

use crate::deletes::tombstones_over;
use crate::error::Db;
use crate::{ChangeRecord, PostgresStore, check_device, log_change_with, with_clock};

/// The columns [`interval_from_row`] reads, in order.
pub(crate) const INTERVAL_COLUMNS: &str = "id, user_id, device_id, kind, start_ms, end_ms, start_offset, end_offset, \
     start_lat, start_lon, end_lat, end_lon, place_id, name, category, distance_m, confidence, level, source, extras";

/// Stores `intervals` of `device` inside the caller's transaction, which
/// holds `clock`, the change stamped with `stamp`. Unless `restore`
/// ([`polo_store::Store::restore_intervals`], or replication, which weighs
/// tombstones by their versions itself), intervals a tombstone buries are
/// left out and counted in [`WriteOutcome::suppressed`]. As the SQLite
/// store's `insert_intervals`.
pub(crate) fn insert_intervals(
    tx: &mut Tx<'_>,
    clock: &mut ChangeClock,
    user: UserId,
    device: DeviceId,
    intervals: &[Interval],
    stamp: Stamp,
    restore: bool,
) -> StoreResult<WriteOutcome> {
    let (Some(lo), Some(hi)) = (intervals.iter().map(|i| i.start.0).min(), intervals.iter().map(|i| i.start.0).max())
    else {
        return Ok(WriteOutcome::default());
    };
    let (kept, suppressed) = if restore {
        (Cow::Borrowed(intervals), 0)
    } else {
        // What a delete buried stays out, as for points.
        let stones = tombstones_over(&mut **tx, user, device, lo, hi, true)?;
        let kept: Vec<Interval> = intervals
            .iter()
            .filter(|i| !stones.iter().any(|t| t.buries_at(device, i.start, i.start_coord)))
            .cloned()
            .collect();
        let suppressed = (intervals.len() - kept.len()) as u64;
        (Cow::Owned(kept), suppressed)
    };
    if kept.is_empty() {
        return Ok(WriteOutcome { suppressed, ..WriteOutcome::default() });
    }
    check_device(tx, user, device)?;
    let seq = clock.last_seq.0 + 1;
    let column = |f: &dyn Fn(&Interval) -> Option<i32>| kept.iter().map(f).collect::<Vec<_>>();
    let (start_lat, start_lon, end_lat, end_lon) = (
        column(&|i| i.start_coord.map(|c| c.lat_e7)),
        column(&|i| i.start_coord.map(|c| c.lon_e7)),
        column(&|i| i.end_coord.map(|c| c.lat_e7)),
        column(&|i| i.end_coord.map(|c| c.lon_e7)),
    );
    let text = |f: &dyn Fn(&Interval) -> Option<&str>| kept.iter().map(f).collect::<Vec<_>>();
    let (place_id, name, category, extras) = (
        text(&|i| i.place_id.as_deref()),
        text(&|i| i.name.as_deref()),
        text(&|i| i.category.as_deref()),
        text(&|i| i.extras.as_ref().map(Extras::as_str)),
    );
    let kind: Vec<i16> = kept.iter().map(|i| i16::from(i.kind.code())).collect();
    let start: Vec<i64> = kept.iter().map(|i| i.start.0).collect();
    let end: Vec<i64> = kept.iter().map(|i| i.end.0).collect();
    let identity: Vec<String> = kept.iter().map(Interval::identity_key).collect();
    let start_offset: Vec<Option<i16>> = kept.iter().map(|i| i.start_offset_minutes).collect();
    let end_offset: Vec<Option<i16>> = kept.iter().map(|i| i.end_offset_minutes).collect();
    let distance: Vec<Option<f64>> = kept.iter().map(|i| i.distance_m).collect();
    let confidence: Vec<Option<f64>> = kept.iter().map(|i| i.confidence).collect();
    let level: Vec<i16> = kept.iter().map(|i| i16::from(i.level)).collect();
    let source: Vec<i16> = kept.iter().map(|i| i16::from(i.source.code())).collect();
    let rows = tx
        .query(
            "INSERT INTO intervals (user_id, device_id, kind, start_ms, end_ms, identity_key, start_offset, \
             end_offset, start_lat, start_lon, end_lat, end_lon, place_id, name, category, distance_m, confidence, \
             level, source, extras, seq) \
             SELECT $1, $2, t.* , $21 FROM unnest($3::SMALLINT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], \
                 $7::SMALLINT[], $8::SMALLINT[], $9::INTEGER[], $10::INTEGER[], $11::INTEGER[], $12::INTEGER[], \
                 $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::DOUBLE PRECISION[], $17::DOUBLE PRECISION[], \
                 $18::SMALLINT[], $19::SMALLINT[], $20::TEXT[]) AS t \
             ON CONFLICT DO NOTHING RETURNING start_ms, end_ms",
            &[
                &user.0,
                &device.0,
                &kind,
                &start,
                &end,
                &identity,
                &start_offset,
                &end_offset,
                &start_lat,
                &start_lon,
                &end_lat,
                &end_lon,
                &place_id,
                &name,
                &category,
                &distance,
                &confidence,
                &level,
                &source,
                &extras,
                &(seq as i64),
            ],
        )
        .db()?;
    let added = rows.len() as u64;
    let duplicates = kept.len() as u64 - added;
    let first = rows.iter().map(|r| r.get::<_, i64>(0)).min();
    let last = rows.iter().map(|r| r.get::<_, i64>(1)).max();
    if added == 0 {
        return Ok(WriteOutcome { duplicates, suppressed, ..WriteOutcome::default() });
    }
    let change =
        ChangeRecord { kind: ChangeKind::IntervalsInserted, user, device: Some(device), first, last, count: added };
    let logged = log_change_with(tx, clock, stamp, &change)?;
    if logged.0 != seq {
        return Err(StoreError::Backend(format!(
            "intervals of device {device} were stored with seq {seq}, but the change was logged as {logged}"
        )));
    }
    Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed, seq: Some(logged) })
}

/// [`polo_store::Store::insert_intervals`] and
/// [`polo_store::Store::restore_intervals`] (`restore`).
pub(crate) fn store_intervals(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    intervals: &[Interval],
    restore: bool,
) -> StoreResult<WriteOutcome> {
    if intervals.is_empty() {
        return Ok(WriteOutcome::default());
    }
    store.write(|tx| {
        with_clock(tx, |tx, clock| insert_intervals(tx, clock, user, device, intervals, Stamp::Local, restore))
    })
}

/// The intervals of `user` overlapping `[from, to)`, of one kind or all,
/// by start time.
pub(crate) fn intervals(
    store: &PostgresStore,
    user: UserId,
    kind: Option<IntervalKind>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> StoreResult<Vec<StoredInterval>> {
    let kind = kind.map(|k| i16::from(k.code()));
    let (from, to) = (from.map(|t| t.0), to.map(|t| t.0));
    let rows = store.read(|c| {
        c.query_typed(
            &format!(
                "SELECT {INTERVAL_COLUMNS} FROM intervals WHERE user_id = $1 AND ($2::SMALLINT IS NULL OR kind = $2) \
                 AND ($3::BIGINT IS NULL OR end_ms >= $3) AND ($4::BIGINT IS NULL OR start_ms < $4) \
                 ORDER BY start_ms, id"
            ),
            &[(&user.0, Type::INT8), (&kind, Type::INT2), (&from, Type::INT8), (&to, Type::INT8)],
        )
        .db()
    })?;
    rows.iter().map(interval_from_row).collect()
}

fn coord_from(lat: Option<i32>, lon: Option<i32>) -> Option<Coord> {
    Some(Coord { lat_e7: lat?, lon_e7: lon? })
}

/// An interval from a row of [`INTERVAL_COLUMNS`].
pub(crate) fn interval_from_row(r: &Row) -> StoreResult<StoredInterval> {
    let id: i64 = r.get(0);
    let corrupt = |what: &str| StoreError::Corrupt(format!("interval {id}: {what}"));
    let kind: i16 = r.get(3);
    let kind = u8::try_from(kind).ok().and_then(IntervalKind::from_code).ok_or_else(|| corrupt("kind"))?;
    let level: i16 = r.get(17);
    let source: i16 = r.get(18);
    Ok(StoredInterval {
        id,
        user: UserId(r.get(1)),
        device: DeviceId(r.get(2)),
        interval: Interval {
            kind,
            start: Timestamp(r.get(4)),
            end: Timestamp(r.get(5)),
            start_offset_minutes: r.get(6),
            end_offset_minutes: r.get(7),
            start_coord: coord_from(r.get(8), r.get(9)),
            end_coord: coord_from(r.get(10), r.get(11)),
            place_id: r.get(12),
            name: r.get(13),
            category: r.get(14),
            distance_m: r.get(15),
            confidence: r.get(16),
            level: u8::try_from(level).map_err(|_| corrupt("level"))?,
            source: SourceFormat::from_code(u8::try_from(source).map_err(|_| corrupt("source"))?),
            extras: r.get::<_, Option<String>>(19).map(Extras::from_json_object),
        },
    })
}
