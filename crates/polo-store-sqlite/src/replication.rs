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
//!
//! What to apply and what a page holds is decided by
//! `polo_store::replication::{apply, feed}`, shared with every backend;
//! this module reads and writes the rows.

use std::collections::HashMap;

use polo_domain::{DeviceId, Interval, Seq, UserId};
use polo_store::codec::{StoredFix, decode_chunk};
use polo_store::replication::apply::{
    AccountDecision, AccountEntry, OriginNames, PointArbiter, PointVersions, VersionedTombstone, admit_points,
    decide_account, edit_batch, judge_account, time_span, tombstone_selection, unlogged_point,
};
use polo_store::replication::feed::{FeedAssembly, LOG_SLICE, PointsAt, edit_change};
use polo_store::{
    ApplyOutcome, ChangeKind, Checkpoint, DerivedBatch, DeviceCard, EpochSpan, FeedEntry, FeedFilter, FeedPage, Hlc,
    ReplicatedChange, ReplicationToken, StoreError, StoreResult, Version,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{
    ChangeRecord, Db, Stamp, WriterMemory, accounts, derived, insert_intervals, interval_from_row, last_seq,
    log_change_stamped, log_change_with, now, points, with_clock,
};

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
    let origin = find_or_create_origin(tx, &old_id)?;
    for table in ["changes", "users", "devices", "tombstones", "deleted_users"] {
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

/// The `origins` row of `instance`, created if new.
fn find_or_create_origin(tx: &Connection, instance: &str) -> StoreResult<i64> {
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

/// The instance id `origins` holds under `code`.
fn origin_name(c: &Connection, code: i64) -> StoreResult<Option<String>> {
    c.prepare_cached("SELECT instance FROM origins WHERE id = ?1").db()?.query_row([code], |r| r.get(0)).optional().db()
}

/// The version of a change stored as `(hlc, origin code)`.
fn version(c: &Connection, origins: &mut OriginNames, hlc: i64, code: i64) -> StoreResult<Version> {
    origins.version(hlc, code, |code| origin_name(c, code))
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
    let mut page = FeedAssembly::new(after, max_weight);
    let mut devices: HashMap<i64, HashMap<i64, String>> = HashMap::new();
    'log: while page.wants_more(head) {
        let mut stmt = c
            .prepare_cached(
                "SELECT c.seq, c.kind, c.user_id, c.device_id, c.first_ms, c.last_ms, c.count, c.hlc, c.origin, \
                 coalesce(d.name, u.name) \
                 FROM changes c LEFT JOIN users u ON u.id = c.user_id LEFT JOIN deleted_users d ON d.seq = c.seq \
                 WHERE c.seq > ?1 AND c.seq <= ?2 AND (u.id IS NOT NULL OR d.seq IS NOT NULL) \
                 ORDER BY c.seq LIMIT ?3",
            )
            .db()?;
        let rows: Vec<LogRow> = stmt
            .query_map(params![page.next().0 as i64, head.0 as i64, LOG_SLICE as i64], |r| {
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
            let version = version(c, &mut origins, hlc, origin)?;
            if !filter.admits(&user, &version.origin) {
                page.skip(Seq(seq as u64));
                continue;
            }
            let mut device_name = |id: i64| -> StoreResult<String> {
                let names = match devices.entry(user_id) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(device_names(c, user_id)?),
                };
                names.get(&id).cloned().ok_or_else(|| StoreError::Corrupt(format!("change {seq}: no device {id}")))
            };
            let no_device = || StoreError::Corrupt(format!("change {seq}: no device"));
            let change = match ChangeKind::from_code(kind)? {
                ChangeKind::User => {
                    let (password_hash, is_admin) = c
                        .prepare_cached("SELECT password_hash, is_admin FROM users WHERE id = ?1")
                        .db()?
                        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .db()?;
                    ReplicatedChange::User { name: user, password_hash, is_admin }
                }
                ChangeKind::AccountDeleted => ReplicatedChange::AccountDeleted { name: user },
                ChangeKind::Device => {
                    let id = device_id.ok_or_else(no_device)?;
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
                    let id = device_id.ok_or_else(no_device)?;
                    let (Some(first), Some(last)) = (first, last) else {
                        return Err(StoreError::Corrupt(format!("change {seq}: points without a time span")));
                    };
                    let at = PointsAt { user: user_id, device: id, first, last };
                    let device = device_name(id)?;
                    if page.push_points(Seq(seq as u64), version, user, device, at, count as u64) {
                        break 'log;
                    }
                    continue;
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
                    let id = device_id.ok_or_else(no_device)?;
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
                    let Some(batch) = batch else {
                        page.skip(Seq(seq as u64));
                        continue;
                    };
                    edit_change(user, DerivedBatch::decode(&batch)?, &mut |d| device_name(d.0))?
                }
            };
            if page.push(Seq(seq as u64), version, change) {
                break 'log;
            }
        }
    }
    for scan in page.point_scans() {
        let mut stmt = c
            .prepare_cached(
                "SELECT data FROM point_chunks WHERE user_id = ?1 AND device_id = ?2 \
                 AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                     WHERE user_id = ?1 AND device_id = ?2 AND first_ms <= ?3), ?3) \
                 AND first_ms <= ?4 AND last_ms >= ?3 AND max_seq >= ?5 ORDER BY first_ms",
            )
            .db()?;
        let mut rows = stmt.query(params![scan.user, scan.device, scan.from, scan.last, scan.min_seq.0 as i64]).db()?;
        while let Some(r) = rows.next().db()? {
            let data: Vec<u8> = r.get(0).db()?;
            page.collect(&scan, decode_chunk(&data)?);
        }
    }
    Ok(page.finish(head, Hlc(head_hlc as u64)))
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

// -------------------------------------------------------------------- apply

/// The version of change `seq`, from the log.
fn change_version(tx: &Connection, origins: &mut OriginNames, seq: Seq) -> StoreResult<Version> {
    let (hlc, origin): (i64, i64) = tx
        .prepare_cached("SELECT hlc, origin FROM changes WHERE seq = ?1")
        .db()?
        .query_row([seq.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?
        .ok_or_else(|| unlogged_point(seq))?;
    version(tx, origins, hlc, origin)
}

/// [`polo_store::Store::replication_apply`] inside the writer's transaction.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    name: &str,
    entries: &[FeedEntry],
    checkpoint: &Checkpoint,
) -> StoreResult<ApplyOutcome> {
    let mut origins = OriginNames::new(instance_id(tx)?);
    let mut versions = PointVersions::default();
    let mut out = ApplyOutcome::default();
    for entry in entries {
        let origin = origins.code(&entry.version.origin, |instance| find_or_create_origin(tx, instance))?;
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
        out.count_entry(changed);
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
    match account_rule(tx, entry, stamp, origins)? {
        (AccountEntry::Apply, _) => {}
        (AccountEntry::Skip, _) => return Ok(false),
        (AccountEntry::Delete { keep_user }, user) => {
            let name = entry.change.user();
            let id = user.map_or(0, |(id, _)| id);
            if user.is_some() {
                accounts::purge(tx, id, keep_user)?;
            }
            let change = ChangeRecord {
                kind: ChangeKind::AccountDeleted,
                user: UserId(id),
                device: None,
                first: None,
                last: None,
                count: 0,
            };
            let seq = with_clock(tx, |clock| log_change_with(tx, clock, stamp, &change))?;
            accounts::record_tombstone(tx, name, id, seq)?;
            if let (true, Some((_, (hlc, origin)))) = (keep_user, user) {
                accounts::set_revived(tx, name, hlc, origin)?;
                // The newer account change stays in the log, after the deletion.
                let kept = Stamp::Replicated { hlc: Hlc(hlc as u64), origin };
                log_change_stamped(tx, kept, ChangeKind::User, UserId(id), None, None, None, 1)?;
            }
            return Ok(true);
        }
    }
    match &entry.change {
        ReplicatedChange::AccountDeleted { .. } => Ok(false),
        ReplicatedChange::User { name, password_hash, is_admin } => {
            let stored: Option<(i64, String, bool, i64, i64)> = tx
                .prepare_cached("SELECT id, password_hash, is_admin, hlc, origin FROM users WHERE name = ?1")
                .db()?
                .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()
                .db()?;
            let held = match &stored {
                Some((_, hash, admin, hlc, origin)) => {
                    Some((version(tx, origins, *hlc, *origin)?, (hash.as_str(), *admin)))
                }
                None => None,
            };
            let id = match decide_account(
                held.as_ref().map(|(v, c)| (v, c)),
                incoming,
                &(password_hash.as_str(), *is_admin),
            ) {
                AccountDecision::Skip => return Ok(false),
                AccountDecision::Create => insert_user(tx, name, password_hash, *is_admin, stamp)?,
                AccountDecision::Update => {
                    let id = stored.map_or(0, |s| s.0);
                    tx.prepare_cached(
                        "UPDATE users SET password_hash = ?2, is_admin = ?3, hlc = ?4, origin = ?5 WHERE id = ?1",
                    )
                    .db()?
                    .execute(params![id, password_hash, is_admin, incoming.hlc.0 as i64, stamp_origin(stamp)])
                    .db()?;
                    id
                }
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
            let content = (encryption_key.as_deref(), card_name, card_face);
            let held = match &stored {
                Some((_, key, cn, cf, hlc, origin)) => {
                    Some((version(tx, origins, *hlc, *origin)?, (key.as_deref(), cn.as_deref(), cf.as_deref())))
                }
                None => None,
            };
            let id = match decide_account(held.as_ref().map(|(v, c)| (v, c)), incoming, &content) {
                AccountDecision::Skip => return Ok(false),
                AccountDecision::Create => create_device(tx, user, name)?,
                AccountDecision::Update => stored.map_or(0, |s| s.0),
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
            let Some((lo, hi)) = time_span(fixes) else { return Ok(false) };
            let covering = covering_tombstones(tx, origins, user, Some(device), lo, hi)?;
            let (admitted, suppressed) = admit_points(fixes, &covering, incoming);
            let mut arbiter = PointArbiter::new(incoming, versions, |seq| change_version(tx, origins, seq));
            let mut replace = |stored: &StoredFix, fix: &polo_domain::Fix| arbiter.replaces(stored, fix);
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
            let replaced = arbiter.finish()?;
            out.count_points(outcome.added, replaced, suppressed);
            Ok(outcome.seq.is_some())
        }
        ReplicatedChange::Tombstone { user, device, from, last, area, keep_one_every_ms } => {
            let user = ensure_user(tx, user)?;
            let device = device.as_deref().map(|d| ensure_device(tx, user, d)).transpose()?;
            let selection =
                tombstone_selection(UserId(user), device.map(DeviceId), *from, *last, *area, *keep_one_every_ms);
            let mut arbiter = PointArbiter::new(incoming, versions, |seq| change_version(tx, origins, seq));
            let mut keep = |seq: Seq| arbiter.survives(seq);
            let outcome = points::delete(tx, &selection, stamp, Some(&mut keep), true)?;
            arbiter.finish()?;
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
            let batch = edit_batch(delete, put, &mut |name| ensure_device(tx, user, name).map(DeviceId))?;
            Ok(derived::write(tx, UserId(user), &batch, true, stamp)?.is_some())
        }
    }
}

/// The rule's decision, and the user of the entry's name when it looked:
/// its id and stored `(hlc, origin)`.
type AccountRule = (AccountEntry, Option<(i64, (i64, i64))>);

/// What [`polo_store::replication::apply::account_entry`] says of `entry`,
/// with the user of its name (id and stored `(hlc, origin)`) when the rule
/// needed to look. Only names with an account tombstone cost more than one
/// lookup; for them, an account change that applies is noted as the
/// account's revival.
fn account_rule(
    tx: &Transaction<'_>,
    entry: &FeedEntry,
    stamp: Stamp,
    origins: &mut OriginNames,
) -> StoreResult<AccountRule> {
    let name = entry.change.user();
    let deletion = matches!(entry.change, ReplicatedChange::AccountDeleted { .. });
    let tombstone = accounts::tombstone(tx, origins, name, |code| origin_name(tx, code))?;
    if tombstone.is_none() && !deletion {
        return Ok((AccountEntry::Apply, None));
    }
    let user: Option<(i64, (i64, i64))> = tx
        .prepare_cached("SELECT id, hlc, origin FROM users WHERE name = ?1")
        .db()?
        .query_row([name], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .optional()
        .db()?;
    let user_version = user.map(|(_, (hlc, origin))| version(tx, origins, hlc, origin)).transpose()?;
    let (deleted, revived) = tombstone.map_or((None, None), |(d, r)| (Some(d), r));
    let (decision, revival) = judge_account(entry, deleted.as_ref(), revived.as_ref(), user_version.as_ref());
    if let Some(since) = revival {
        accounts::set_revived(tx, name, since.hlc.0 as i64, stamp_origin(stamp))?;
    }
    Ok((decision, user))
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

/// The burying tombstones of `user` (all devices, or `device`'s)
/// overlapping `[lo, hi]`, with their versions.
fn covering_tombstones(
    tx: &Connection,
    origins: &mut OriginNames,
    user: i64,
    device: Option<i64>,
    lo: i64,
    hi: i64,
) -> StoreResult<Vec<VersionedTombstone>> {
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
            Ok(VersionedTombstone { from, last, area, version: version(tx, origins, hlc, origin)? })
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
    let id = accounts::next_user_id(tx)?;
    tx.prepare_cached(
        "INSERT INTO users (id, name, password_hash, is_admin, created_ms, hlc, origin) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![id, name, password_hash, is_admin, now().0, hlc, stamp_origin(stamp)])
    .db()?;
    Ok(id)
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
    let id = accounts::next_device_id(tx)?;
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
