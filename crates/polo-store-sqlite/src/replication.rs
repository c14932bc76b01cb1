//! Replication in the SQLite store: reading a feed page, applying one with
//! its checkpoint in one transaction, epochs and peer tokens.
//!
//! The model is `polo_store::replication`'s. What is particular here:
//!
//! * A point's version is that of the change that stored it: every stored
//!   fix carries its change `seq` in the chunk, and `changes` holds the
//!   `(hlc, origin)` of each seq. Versions thus cost no bytes per point.
//! * The feed finds a change's points by scanning the chunks of its time
//!   span for fixes with its seq; consecutive changes of one device that lie
//!   close together are served by one scan.
//! * `origin` is a small integer: 0 for this instance, else a row of
//!   `origins`. Comparisons use the instance id strings, so every replica
//!   orders versions alike.

use std::collections::HashMap;

use polo_domain::{DeviceId, Fix, Interval, Seq, Timestamp, UserId};
use polo_store::codec::{StoredFix, decode_chunk};
use polo_store::replication::{EditRange, EditRow};
use polo_store::{
    ApplyOutcome, ChangeKind, Checkpoint, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope,
    DeviceCard, EpochSpan, FeedEntry, FeedFilter, FeedPage, Hlc, PointQuery, PointSelection, ReplicatedChange,
    ReplicationToken, StoreError, StoreResult, Version,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{
    Db, Stamp, WriterMemory, derived, insert_intervals, interval_from_row, last_seq, log_change_stamped, now, points,
    with_clock,
};

/// Changes read from the log per query while filling a page.
const LOG_SLICE: i64 = 512;
/// Point changes of one device whose spans are closer than this are served
/// by one chunk scan (live ingest: thousands of tiny changes a day).
const MERGE_GAP_MS: i64 = 3_600_000;

/// This instance's id.
pub(crate) fn instance_id(c: &Connection) -> StoreResult<String> {
    c.prepare_cached("SELECT value FROM meta WHERE key = 'instance_id'").db()?.query_row([], |r| r.get(0)).db()
}

/// The epochs, oldest first.
pub(crate) fn epochs(c: &Connection) -> StoreResult<Vec<EpochSpan>> {
    let mut stmt = c.prepare_cached("SELECT epoch, start_seq, instance FROM epochs ORDER BY id").db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok(EpochSpan { epoch: r.get(0)?, start: Seq(r.get::<_, i64>(1)? as u64), instance: r.get(2)? })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Makes the database a new instance after a restore: a new epoch starting
/// at the restored `last_seq`, a new instance id, the restored changes
/// attributed to the old id, and a checkpoint saying this copy holds the
/// old instance's feed up to `last_seq` (so replication from it resumes
/// there instead of starting over). Returns the new epoch.
pub(crate) fn become_restored_copy(tx: &Transaction<'_>) -> StoreResult<String> {
    let old_id = instance_id(tx)?;
    let old_epoch: String = tx.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| r.get(0)).db()?;
    let last = last_seq(tx)?;
    let origin = origin_code(tx, "", &old_id)?;
    for table in ["changes", "users", "devices", "tombstones"] {
        tx.execute(&format!("UPDATE {table} SET origin = ?1 WHERE origin = 0"), [origin]).db()?;
    }
    let instance: String = tx
        .query_row(
            "UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'instance_id' RETURNING value",
            [],
            |r| r.get(0),
        )
        .db()?;
    let epoch: String = tx
        .query_row("UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'epoch' RETURNING value", [], |r| {
            r.get(0)
        })
        .db()?;
    tx.execute(
        "INSERT INTO epochs (epoch, start_seq, instance) VALUES (?1, ?2, ?3)",
        params![epoch, last.0 as i64, instance],
    )
    .db()?;
    write_checkpoint(tx, &old_id, &Checkpoint { epoch: old_epoch, seq: last })?;
    Ok(epoch)
}

// ------------------------------------------------------------------ origins

/// The `origins` code of `instance` (0 for `me`), created if new.
fn origin_code(tx: &Connection, me: &str, instance: &str) -> StoreResult<i64> {
    if instance == me {
        return Ok(0);
    }
    if let Some(id) = tx
        .prepare_cached("SELECT id FROM origins WHERE instance = ?1")
        .db()?
        .query_row([instance], |r| r.get(0))
        .optional()
        .db()?
    {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO origins (instance) VALUES (?1)").db()?.execute([instance]).db()?;
    Ok(tx.last_insert_rowid())
}

/// Instance ids by `origins` code, with 0 as `me`.
struct OriginNames {
    me: String,
    names: HashMap<i64, String>,
}

impl OriginNames {
    fn new(me: String) -> Self {
        Self { me, names: HashMap::new() }
    }

    fn name(&mut self, c: &Connection, code: i64) -> StoreResult<&str> {
        if code == 0 {
            return Ok(&self.me);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.names.entry(code) {
            let name: String = c
                .prepare_cached("SELECT instance FROM origins WHERE id = ?1")
                .db()?
                .query_row([code], |r| r.get(0))
                .optional()
                .db()?
                .ok_or_else(|| StoreError::Corrupt(format!("unknown origin {code}")))?;
            slot.insert(name);
        }
        Ok(&self.names[&code])
    }

    fn version(&mut self, c: &Connection, hlc: i64, code: i64) -> StoreResult<Version> {
        Ok(Version { hlc: Hlc(hlc as u64), origin: self.name(c, code)?.to_owned() })
    }
}

// --------------------------------------------------------------------- feed

/// One row of the change log, with its user's name.
struct LogRow {
    seq: i64,
    kind: i64,
    user_id: i64,
    device_id: Option<i64>,
    first: Option<i64>,
    last: Option<i64>,
    count: i64,
    hlc: i64,
    origin: i64,
    user: String,
}

/// A point change whose fixes the page still has to collect.
struct PendingPoints {
    entry: usize,
    user: i64,
    device: i64,
    seq: i64,
    first: i64,
    last: i64,
}

/// [`polo_store::Store::replication_feed`] on one read snapshot.
pub(crate) fn feed(c: &Connection, after: Seq, max_weight: usize, filter: &FeedFilter) -> StoreResult<FeedPage> {
    let mut origins = OriginNames::new(instance_id(c)?);
    let head = last_seq(c)?;
    let head_hlc: i64 = c
        .prepare_cached("SELECT hlc FROM changes WHERE seq = ?1")
        .db()?
        .query_row([head.0 as i64], |r| r.get(0))
        .optional()
        .db()?
        .unwrap_or(0);
    let mut entries: Vec<FeedEntry> = Vec::new();
    let mut pending: Vec<PendingPoints> = Vec::new();
    let mut devices: HashMap<i64, HashMap<i64, String>> = HashMap::new();
    let (mut next, mut weight) = (after, 0usize);
    'log: while weight < max_weight.max(1) && next < head {
        let mut stmt = c
            .prepare_cached(
                "SELECT c.seq, c.kind, c.user_id, c.device_id, c.first_ms, c.last_ms, c.count, c.hlc, c.origin, u.name \
                 FROM changes c JOIN users u ON u.id = c.user_id \
                 WHERE c.seq > ?1 AND c.seq <= ?2 ORDER BY c.seq LIMIT ?3",
            )
            .db()?;
        let rows: Vec<LogRow> = stmt
            .query_map(params![next.0 as i64, head.0 as i64, LOG_SLICE], |r| {
                Ok(LogRow {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    user_id: r.get(2)?,
                    device_id: r.get(3)?,
                    first: r.get(4)?,
                    last: r.get(5)?,
                    count: r.get(6)?,
                    hlc: r.get(7)?,
                    origin: r.get(8)?,
                    user: r.get(9)?,
                })
            })
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?;
        if rows.is_empty() {
            break;
        }
        for LogRow { seq, kind, user_id, device_id, first, last, count, hlc, origin, user } in rows {
            next = Seq(seq as u64);
            let version = origins.version(c, hlc, origin)?;
            if !filter.admits(&user, &version.origin) {
                continue;
            }
            let mut device_name = |id: i64| -> StoreResult<String> {
                let names = match devices.entry(user_id) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(device_names(c, user_id)?),
                };
                names.get(&id).cloned().ok_or_else(|| StoreError::Corrupt(format!("change {seq}: no device {id}")))
            };
            let change = match ChangeKind::from_code(kind)? {
                ChangeKind::User => {
                    let (password_hash, is_admin) = c
                        .prepare_cached("SELECT password_hash, is_admin FROM users WHERE id = ?1")
                        .db()?
                        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .db()?;
                    ReplicatedChange::User { name: user, password_hash, is_admin }
                }
                ChangeKind::Device => {
                    let id = device_id.ok_or_else(|| StoreError::Corrupt(format!("change {seq}: no device")))?;
                    let (encryption_key, card_name, card_face): (Option<String>, Option<String>, Option<String>) = c
                        .prepare_cached(
                            "SELECT encryption_key, card_name, card_face FROM devices WHERE user_id = ?1 AND id = ?2",
                        )
                        .db()?
                        .query_row([user_id, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .db()?;
                    let card = (card_name.is_some() || card_face.is_some())
                        .then_some(DeviceCard { name: card_name, face: card_face });
                    ReplicatedChange::Device { user, name: device_name(id)?, encryption_key, card }
                }
                ChangeKind::PointsInserted => {
                    let id = device_id.ok_or_else(|| StoreError::Corrupt(format!("change {seq}: no device")))?;
                    let (Some(first), Some(last)) = (first, last) else {
                        return Err(StoreError::Corrupt(format!("change {seq}: points without a time span")));
                    };
                    pending.push(PendingPoints { entry: entries.len(), user: user_id, device: id, seq, first, last });
                    ReplicatedChange::Points { user, device: device_name(id)?, fixes: Vec::new() }
                }
                ChangeKind::PointsDeleted => ReplicatedChange::Tombstone {
                    user,
                    device: device_id.map(&mut device_name).transpose()?,
                    from: first,
                    last,
                    area: tombstone_area(c, seq)?,
                    keep_one_every_ms: tombstone_thinning(c, seq)?,
                },
                ChangeKind::IntervalsInserted => {
                    let id = device_id.ok_or_else(|| StoreError::Corrupt(format!("change {seq}: no device")))?;
                    let intervals = change_intervals(c, user_id, id, seq, first, last)?;
                    ReplicatedChange::Intervals { user, device: device_name(id)?, intervals }
                }
                ChangeKind::Edit => {
                    let batch: Option<Vec<u8>> = c
                        .prepare_cached("SELECT batch FROM edit_log WHERE seq = ?1")
                        .db()?
                        .query_row([seq], |r| r.get(0))
                        .optional()
                        .db()?;
                    // Edits from before replication kept no batch: nothing to send.
                    let Some(batch) = batch else { continue };
                    let batch = derived::decode_batch(&batch)?;
                    let mut scope_name = |scope: DerivedScope| match scope {
                        DerivedScope::User => Ok(None),
                        DerivedScope::Device(d) => device_name(d.0).map(Some),
                    };
                    let delete = batch
                        .delete
                        .iter()
                        .map(|d| Ok(EditRange { kind: d.kind.0, device: scope_name(d.scope)?, from: d.from, to: d.to }))
                        .collect::<StoreResult<_>>()?;
                    let put = batch
                        .put
                        .into_iter()
                        .map(|p| {
                            Ok(EditRow { kind: p.kind.0, device: scope_name(p.scope)?, key: p.key, value: p.value })
                        })
                        .collect::<StoreResult<_>>()?;
                    ReplicatedChange::Edit { user, delete, put }
                }
            };
            weight += match &change {
                ReplicatedChange::Points { .. } => usize::try_from(count).unwrap_or(1).max(1),
                other => other.weight(),
            };
            entries.push(FeedEntry { seq: Seq(seq as u64), version, change });
            if weight >= max_weight.max(1) {
                break 'log;
            }
        }
    }
    fill_points(c, &mut entries, pending)?;
    Ok(FeedPage { entries, next, head, head_hlc: Hlc(head_hlc as u64) })
}

fn device_names(c: &Connection, user: i64) -> StoreResult<HashMap<i64, String>> {
    let mut stmt = c.prepare_cached("SELECT id, name FROM devices WHERE user_id = ?1").db()?;
    let rows = stmt.query_map([user], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

fn change_intervals(
    c: &Connection,
    user: i64,
    device: i64,
    seq: i64,
    first: Option<i64>,
    last: Option<i64>,
) -> StoreResult<Vec<Interval>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {} FROM intervals WHERE user_id = ?1 AND start_ms >= ?2 AND start_ms <= ?3 \
             AND device_id = ?4 AND seq = ?5 ORDER BY start_ms, id",
            crate::INTERVAL_COLUMNS
        ))
        .db()?;
    let mut rows = stmt.query(params![user, first.unwrap_or(i64::MIN), last.unwrap_or(i64::MAX), device, seq]).db()?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().db()? {
        out.push(interval_from_row(r)?.interval);
    }
    Ok(out)
}

/// Collects the fixes of the page's point changes: per device, changes whose
/// spans lie close together share one scan of the chunks.
fn fill_points(c: &Connection, entries: &mut [FeedEntry], mut pending: Vec<PendingPoints>) -> StoreResult<()> {
    pending.sort_by_key(|p| (p.user, p.device, p.first));
    let mut at = 0;
    while at < pending.len() {
        let (user, device) = (pending[at].user, pending[at].device);
        let (lo, mut hi) = (pending[at].first, pending[at].last);
        let mut end = at + 1;
        while end < pending.len()
            && pending[end].user == user
            && pending[end].device == device
            && pending[end].first <= hi.saturating_add(MERGE_GAP_MS)
        {
            hi = hi.max(pending[end].last);
            end += 1;
        }
        let group = &pending[at..end];
        let by_seq: HashMap<i64, usize> = group.iter().map(|p| (p.seq, p.entry)).collect();
        let min_seq = group.iter().map(|p| p.seq).min().unwrap_or(0);
        let mut stmt = c
            .prepare_cached(
                "SELECT data FROM point_chunks WHERE user_id = ?1 AND device_id = ?2 \
                 AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                     WHERE user_id = ?1 AND device_id = ?2 AND first_ms <= ?3), ?3) \
                 AND first_ms <= ?4 AND last_ms >= ?3 AND max_seq >= ?5 ORDER BY first_ms",
            )
            .db()?;
        let mut rows = stmt.query(params![user, device, lo, hi, min_seq]).db()?;
        while let Some(r) = rows.next().db()? {
            let data: Vec<u8> = r.get(0).db()?;
            for sf in decode_chunk(&data)? {
                if let Some(&entry) = by_seq.get(&(sf.seq.0 as i64))
                    && let ReplicatedChange::Points { fixes, .. } = &mut entries[entry].change
                {
                    fixes.push(sf.fix);
                }
            }
        }
        at = end;
    }
    Ok(())
}

// -------------------------------------------------------------------- apply

/// The stored versions of points, by the seq their chunk records.
struct PointVersions {
    by_seq: HashMap<u64, Version>,
}

impl PointVersions {
    fn of(&mut self, tx: &Connection, origins: &mut OriginNames, seq: Seq) -> StoreResult<Version> {
        if let Some(v) = self.by_seq.get(&seq.0) {
            return Ok(v.clone());
        }
        let (hlc, origin): (i64, i64) = tx
            .prepare_cached("SELECT hlc, origin FROM changes WHERE seq = ?1")
            .db()?
            .query_row([seq.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .db()?
            .ok_or_else(|| StoreError::Corrupt(format!("a stored point names change {seq}, which is not logged")))?;
        let v = origins.version(tx, hlc, origin)?;
        self.by_seq.insert(seq.0, v.clone());
        Ok(v)
    }
}

/// [`polo_store::Store::replication_apply`] inside the writer's transaction.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    name: &str,
    entries: &[FeedEntry],
    checkpoint: &Checkpoint,
) -> StoreResult<ApplyOutcome> {
    let mut origins = OriginNames::new(instance_id(tx)?);
    let mut versions = PointVersions { by_seq: HashMap::new() };
    let mut out = ApplyOutcome::default();
    for entry in entries {
        let me = origins.me.clone();
        let origin = origin_code(tx, &me, &entry.version.origin)?;
        let hlc = entry.version.hlc;
        let held = tx
            .prepare_cached("SELECT 1 FROM changes WHERE origin = ?1 AND hlc = ?2")
            .db()?
            .query_row(params![origin, hlc.0 as i64], |_| Ok(()))
            .optional()
            .db()?
            .is_some();
        let changed =
            !held && apply_one(tx, entry, Stamp::Replicated { hlc, origin }, &mut origins, &mut versions, &mut out)?;
        if changed {
            out.applied += 1;
        } else {
            out.skipped += 1;
        }
    }
    write_checkpoint(tx, name, checkpoint)?;
    Ok(out)
}

/// Applies one entry; whether it changed anything.
fn apply_one(
    tx: &Transaction<'_>,
    entry: &FeedEntry,
    stamp: Stamp,
    origins: &mut OriginNames,
    versions: &mut PointVersions,
    out: &mut ApplyOutcome,
) -> StoreResult<bool> {
    let incoming = &entry.version;
    match &entry.change {
        ReplicatedChange::User { name, password_hash, is_admin } => {
            let stored: Option<(i64, String, bool, i64, i64)> = tx
                .prepare_cached("SELECT id, password_hash, is_admin, hlc, origin FROM users WHERE name = ?1")
                .db()?
                .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()
                .db()?;
            let id = match stored {
                Some((id, hash, admin, hlc, origin)) => {
                    if origins.version(tx, hlc, origin)? >= *incoming || (hash == *password_hash && admin == *is_admin)
                    {
                        return Ok(false);
                    }
                    tx.prepare_cached(
                        "UPDATE users SET password_hash = ?2, is_admin = ?3, hlc = ?4, origin = ?5 WHERE id = ?1",
                    )
                    .db()?
                    .execute(params![id, password_hash, is_admin, incoming.hlc.0 as i64, stamp_origin(stamp)])
                    .db()?;
                    id
                }
                None => insert_user(tx, name, password_hash, *is_admin, stamp)?,
            };
            log_change_stamped(tx, stamp, ChangeKind::User, UserId(id), None, None, None, 1)?;
            Ok(true)
        }
        ReplicatedChange::Device { user, name, encryption_key, card } => {
            let user = ensure_user(tx, user)?;
            let (card_name, card_face) = card.as_ref().map_or((None, None), |c| (c.name.as_deref(), c.face.as_deref()));
            type StoredDevice = (i64, Option<String>, Option<String>, Option<String>, i64, i64);
            let stored: Option<StoredDevice> = tx
                .prepare_cached(
                    "SELECT id, encryption_key, card_name, card_face, hlc, origin FROM devices \
                     WHERE user_id = ?1 AND name = ?2",
                )
                .db()?
                .query_row(params![user, name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .optional()
                .db()?;
            let id = match stored {
                Some((id, key, cn, cf, hlc, origin)) => {
                    let same = key.as_deref() == encryption_key.as_deref()
                        && cn.as_deref() == card_name
                        && cf.as_deref() == card_face;
                    if same || origins.version(tx, hlc, origin)? >= *incoming {
                        return Ok(false);
                    }
                    id
                }
                None => create_device(tx, user, name)?,
            };
            tx.prepare_cached(
                "UPDATE devices SET encryption_key = ?3, card_name = ?4, card_face = ?5, hlc = ?6, origin = ?7 \
                 WHERE user_id = ?1 AND id = ?2",
            )
            .db()?
            .execute(params![
                user,
                id,
                encryption_key,
                card_name,
                card_face,
                incoming.hlc.0 as i64,
                stamp_origin(stamp)
            ])
            .db()?;
            log_change_stamped(tx, stamp, ChangeKind::Device, UserId(user), Some(DeviceId(id)), None, None, 1)?;
            Ok(true)
        }
        ReplicatedChange::Points { user, device, fixes } => {
            let user = ensure_user(tx, user)?;
            let device = ensure_device(tx, user, device)?;
            let (Some(lo), Some(hi)) = (fixes.iter().map(|f| f.time.0).min(), fixes.iter().map(|f| f.time.0).max())
            else {
                return Ok(false);
            };
            let covering = covering_tombstones(tx, origins, user, Some(device), lo, hi)?;
            let admitted: Vec<Fix> = fixes
                .iter()
                .filter(|f| {
                    let buried = covering.iter().any(|(from, last, area, v)| {
                        from.is_none_or(|from| from <= f.time.0)
                            && last.is_none_or(|last| f.time.0 <= last)
                            && area.is_none_or(|a| a.contains(f.coord.lat_e7, f.coord.lon_e7))
                            && v > incoming
                    });
                    out.points_suppressed += u64::from(buried);
                    !buried
                })
                .cloned()
                .collect();
            let mut replaced = 0u64;
            let mut failure = None;
            let mut replace = |stored: &StoredFix, fix: &Fix| {
                if stored.fix == *fix {
                    return false;
                }
                match versions.of(tx, origins, stored.seq) {
                    Ok(v) if *incoming > v => {
                        replaced += 1;
                        true
                    }
                    Ok(_) => false,
                    Err(e) => {
                        failure.get_or_insert(e);
                        false
                    }
                }
            };
            let outcome = with_clock(tx, |clock| {
                points::insert(
                    tx,
                    UserId(user),
                    DeviceId(device),
                    &admitted,
                    &mut |_| {},
                    points::Provenance { stamp, replace: Some(&mut replace) },
                    &mut WriterMemory::default(),
                    clock,
                )
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            out.points_added += outcome.added - replaced;
            out.points_replaced += replaced;
            Ok(outcome.seq.is_some())
        }
        ReplicatedChange::Tombstone { user, device, from, last, area, keep_one_every_ms } => {
            let user = ensure_user(tx, user)?;
            let device = device.as_deref().map(|d| ensure_device(tx, user, d)).transpose()?;
            let query = PointSelection {
                query: PointQuery {
                    user: UserId(user),
                    device: device.map(DeviceId),
                    from: from.map(Timestamp),
                    to: last.map(|l| Timestamp(l.saturating_add(1))),
                },
                area: *area,
                keep_one_every_ms: *keep_one_every_ms,
            };
            let mut failure = None;
            let mut keep = |seq: Seq| match versions.of(tx, origins, seq) {
                Ok(v) => v > *incoming,
                Err(e) => {
                    failure.get_or_insert(e);
                    true
                }
            };
            let outcome = points::delete(tx, &query, stamp, Some(&mut keep), true)?;
            if let Some(e) = failure {
                return Err(e);
            }
            out.points_deleted += outcome.deleted;
            Ok(true)
        }
        ReplicatedChange::Intervals { user, device, intervals } => {
            let user = ensure_user(tx, user)?;
            let device = ensure_device(tx, user, device)?;
            if intervals.is_empty() {
                return Ok(false);
            }
            Ok(insert_intervals(tx, UserId(user), DeviceId(device), intervals, stamp)?.seq.is_some())
        }
        ReplicatedChange::Edit { user, delete, put } => {
            let user = ensure_user(tx, user)?;
            let scope = |device: &Option<String>| -> StoreResult<DerivedScope> {
                Ok(match device {
                    None => DerivedScope::User,
                    Some(name) => DerivedScope::Device(DeviceId(ensure_device(tx, user, name)?)),
                })
            };
            let mut batch = DerivedBatch::default();
            for d in delete {
                batch.delete.push(DerivedRange {
                    kind: DerivedKind(d.kind),
                    scope: scope(&d.device)?,
                    from: d.from,
                    to: d.to,
                });
            }
            for p in put {
                batch.put.push(DerivedRow {
                    kind: DerivedKind(p.kind),
                    scope: scope(&p.device)?,
                    key: p.key,
                    value: p.value.clone(),
                });
            }
            Ok(derived::write(tx, UserId(user), &batch, true, stamp)?.is_some())
        }
    }
}

fn stamp_origin(stamp: Stamp) -> i64 {
    match stamp {
        Stamp::Local => 0,
        Stamp::Replicated { origin, .. } => origin,
    }
}

/// The area of the tombstone change `seq` recorded, if it has one.
fn tombstone_area(c: &Connection, seq: i64) -> StoreResult<Option<polo_store::Area>> {
    let corners: Option<[Option<i32>; 4]> = c
        .prepare_cached("SELECT west_e7, south_e7, east_e7, north_e7 FROM tombstones WHERE seq = ?1")
        .db()?
        .query_row([seq], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
        .optional()
        .db()?;
    Ok(match corners {
        Some([Some(west_e7), Some(south_e7), Some(east_e7), Some(north_e7)]) => {
            Some(polo_store::Area { west_e7, south_e7, east_e7, north_e7 })
        }
        _ => None,
    })
}

/// The slot length of the thinning change `seq` recorded, if it was one.
fn tombstone_thinning(c: &Connection, seq: i64) -> StoreResult<Option<i64>> {
    let thin: Option<Option<i64>> = c
        .prepare_cached("SELECT thin_ms FROM tombstones WHERE seq = ?1")
        .db()?
        .query_row([seq], |r| r.get(0))
        .optional()
        .db()?;
    Ok(thin.flatten())
}

/// A stored tombstone: inclusive bounds (`None` unbounded), area and version.
type Tombstone = (Option<i64>, Option<i64>, Option<polo_store::Area>, Version);

/// The tombstones of `user` (all devices, or `device`'s) overlapping
/// `[lo, hi]`.
fn covering_tombstones(
    tx: &Connection,
    origins: &mut OriginNames,
    user: i64,
    device: Option<i64>,
    lo: i64,
    hi: i64,
) -> StoreResult<Vec<Tombstone>> {
    type Row = (Option<i64>, Option<i64>, i64, i64, [Option<i32>; 4]);
    let rows: Vec<Row> = tx
        .prepare_cached(
            "SELECT from_ms, last_ms, hlc, origin, west_e7, south_e7, east_e7, north_e7 FROM tombstones \
             WHERE user_id = ?1 AND (device_id IS NULL OR device_id = ?2) AND thin_ms IS NULL \
             AND (from_ms IS NULL OR from_ms <= ?4) AND (last_ms IS NULL OR last_ms >= ?3)",
        )
        .db()?
        .query_map(params![user, device, lo, hi], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?]))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    rows.into_iter()
        .map(|(from, last, hlc, origin, corners)| {
            let area = match corners {
                [Some(west_e7), Some(south_e7), Some(east_e7), Some(north_e7)] => {
                    Some(polo_store::Area { west_e7, south_e7, east_e7, north_e7 })
                }
                _ => None,
            };
            Ok((from, last, area, origins.version(tx, hlc, origin)?))
        })
        .collect()
}

fn insert_user(
    tx: &Transaction<'_>,
    name: &str,
    password_hash: &str,
    is_admin: bool,
    stamp: Stamp,
) -> StoreResult<i64> {
    let hlc = match stamp {
        Stamp::Local => 0,
        Stamp::Replicated { hlc, .. } => hlc.0 as i64,
    };
    tx.prepare_cached(
        "INSERT INTO users (name, password_hash, is_admin, created_ms, hlc, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![name, password_hash, is_admin, now().0, hlc, stamp_origin(stamp)])
    .db()?;
    Ok(tx.last_insert_rowid())
}

/// The user called `name`. One that does not exist yet (its own change is
/// filtered out or still to come) is created without a usable password and
/// without a change: the user's own change fills it in.
fn ensure_user(tx: &Transaction<'_>, name: &str) -> StoreResult<i64> {
    let found = tx
        .prepare_cached("SELECT id FROM users WHERE name = ?1")
        .db()?
        .query_row([name], |r| r.get(0))
        .optional()
        .db()?;
    match found {
        Some(id) => Ok(id),
        None => insert_user(tx, name, "!", false, Stamp::Local),
    }
}

/// The device of `user` called `name`, created without a change when
/// missing (its own change, when admitted, carries its settings).
fn ensure_device(tx: &Transaction<'_>, user: i64, name: &str) -> StoreResult<i64> {
    let found = tx
        .prepare_cached("SELECT id FROM devices WHERE user_id = ?1 AND name = ?2")
        .db()?
        .query_row(params![user, name], |r| r.get(0))
        .optional()
        .db()?;
    match found {
        Some(id) => Ok(id),
        None => create_device(tx, user, name),
    }
}

fn create_device(tx: &Transaction<'_>, user: i64, name: &str) -> StoreResult<i64> {
    let id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM devices", [], |r| r.get(0)).db()?;
    tx.prepare_cached("INSERT INTO devices (user_id, id, name) VALUES (?1, ?2, ?3)")
        .db()?
        .execute(params![user, id, name])
        .db()?;
    Ok(id)
}

// -------------------------------------------------------------- checkpoints

pub(crate) fn write_checkpoint(tx: &Transaction<'_>, name: &str, checkpoint: &Checkpoint) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO replication_checkpoints (name, epoch, seq, updated_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, updated_ms = excluded.updated_ms",
    )
    .db()?
    .execute(params![name, checkpoint.epoch, checkpoint.seq.0 as i64, now().0])
    .db()?;
    Ok(())
}

pub(crate) fn checkpoint(c: &Connection, name: &str) -> StoreResult<Option<Checkpoint>> {
    c.prepare_cached("SELECT epoch, seq FROM replication_checkpoints WHERE name = ?1")
        .db()?
        .query_row([name], |r| Ok(Checkpoint { epoch: r.get(0)?, seq: Seq(r.get::<_, i64>(1)? as u64) }))
        .optional()
        .db()
}

pub(crate) fn checkpoints(c: &Connection) -> StoreResult<Vec<(String, Checkpoint)>> {
    let mut stmt = c.prepare_cached("SELECT name, epoch, seq FROM replication_checkpoints ORDER BY name").db()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, Checkpoint { epoch: r.get(1)?, seq: Seq(r.get::<_, i64>(2)? as u64) })))
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

// ------------------------------------------------------------------- tokens

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplicationToken> {
    Ok(ReplicationToken { id: r.get(0)?, label: r.get(1)?, created: r.get(2)?, last_used: r.get(3)? })
}

pub(crate) fn create_token(tx: &Transaction<'_>, label: &str, hash: &[u8; 32]) -> StoreResult<ReplicationToken> {
    let taken = tx
        .query_row("SELECT 1 FROM replication_tokens WHERE token_hash = ?1", [&hash[..]], |_| Ok(()))
        .optional()
        .db()?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists("replication token".into()));
    }
    let created = now().0;
    tx.execute(
        "INSERT INTO replication_tokens (label, token_hash, created_ms) VALUES (?1, ?2, ?3)",
        params![label, &hash[..], created],
    )
    .db()?;
    Ok(ReplicationToken { id: tx.last_insert_rowid(), label: label.to_owned(), created, last_used: None })
}

pub(crate) fn token_by_hash(c: &Connection, hash: &[u8; 32]) -> StoreResult<Option<ReplicationToken>> {
    c.prepare_cached("SELECT id, label, created_ms, last_used_ms FROM replication_tokens WHERE token_hash = ?1")
        .db()?
        .query_row([&hash[..]], token_from_row)
        .optional()
        .db()
}

pub(crate) fn touch_token(tx: &Transaction<'_>, id: i64, at: i64) -> StoreResult<()> {
    tx.prepare_cached("UPDATE replication_tokens SET last_used_ms = ?2 WHERE id = ?1").db()?.execute([id, at]).db()?;
    Ok(())
}

pub(crate) fn list_tokens(c: &Connection) -> StoreResult<Vec<ReplicationToken>> {
    let mut stmt =
        c.prepare_cached("SELECT id, label, created_ms, last_used_ms FROM replication_tokens ORDER BY id").db()?;
    let rows = stmt.query_map([], token_from_row).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn revoke_token(tx: &Transaction<'_>, id: i64) -> StoreResult<bool> {
    Ok(tx.execute("DELETE FROM replication_tokens WHERE id = ?1", [id]).db()? > 0)
}
