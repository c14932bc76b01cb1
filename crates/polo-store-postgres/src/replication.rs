//! The change log as readers see it, epochs, and replication: reading a
//! feed page, applying one with its checkpoint in one transaction, and
//! peer tokens.
//!
//! The model is `polo_store::replication`'s, and what to apply and what a
//! page holds is decided by `polo_store::replication::{apply, feed}`, which
//! the SQLite store shares; this module reads and writes rows. What is
//! particular to PostgreSQL:
//!
//! * **Readers see the log in commit order.** Every changing write holds
//!   the `change_clock` row lock from its first seq until it commits (see
//!   [`crate::with_clock`]), so once `changes_since` sees seq `s`, every
//!   seq below it is committed and visible too. A feed page reads on one
//!   `REPEATABLE READ` snapshot, so its head, log and chunks agree.
//! * **An apply is one transaction that takes the clock first**, even
//!   before it knows whether an entry changes anything, so it never waits
//!   for the clock while holding row locks, and concurrent appliers on
//!   other nodes queue instead of deadlocking.
//! * **Point versions are read ahead.** A point's version is that of the
//!   change that stored it (chunks keep a seq per fix, `changes` the seq's
//!   `(hlc, origin)`). The point writes take the transaction for
//!   themselves, so before each replicated insert or delete the versions of
//!   every stored fix it can touch are read from the chunks and the log;
//!   the arbiter's callbacks then only consult memory.
//! * `origin` is a small integer: 0 for this instance, else a row of
//!   `origins`; comparisons use the instance id strings.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};

use polo_domain::{DeviceId, Interval, Seq, Timestamp, UserId};
use polo_store::clock::{ChangeClock, Stamp, new_random_id, now};
use polo_store::codec::{StoredFix, decode_chunk};
use polo_store::replication::apply::{
    AccountDecision, AccountEntry, OriginNames, PointArbiter, PointVersions, VersionedTombstone, admit_points,
    decide_account, edit_batch, judge_account, time_span, tombstone_selection, unlogged_point,
};
use polo_store::replication::feed::{FeedAssembly, LOG_SLICE, PointsAt, edit_change};
use polo_store::{
    ApplyOutcome, Area, Change, ChangeKind, Checkpoint, DerivedBatch, DeviceCard, EpochSpan, FeedEntry, FeedFilter,
    FeedPage, Hlc, ReplicatedChange, ReplicationToken, StoreError, StoreResult, TOKEN_TOUCH_INTERVAL_MS, Version,
};
use postgres::{GenericClient, IsolationLevel, Transaction};

use crate::error::{Db, is_unique_violation};
use crate::statements::Tx;
use crate::{ChangeRecord, PostgresStore, account_deletion, derived, log_change_with, points, with_clock};

// ------------------------------------------------------------- change log

pub(crate) fn changes_since(store: &PostgresStore, after: Seq, limit: usize) -> StoreResult<Vec<Change>> {
    let after = i64::try_from(after.0).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.read(|c| {
        // Bounded by the clock read first. Under Citus the log is spread
        // over workers that a read does not see at one instant, and a
        // write's commit reaches the coordinator's clock before the
        // worker holding its change: the last seq the clock handed out may
        // not be visible yet, but every seq below it is (the next writer
        // waits for the whole commit before taking the clock). Reading
        // past the clock could return a later seq without this one, and
        // move the reader's cursor past it for good.
        let head = i64::try_from(read_last_seq(&mut **c)?.0).unwrap_or(i64::MAX);
        let rows = c
            .query(
                "SELECT seq, kind, user_id, device_id, first_ms, last_ms, count FROM changes \
                 WHERE seq > $1 AND seq <= $3 ORDER BY seq LIMIT $2",
                &[&after, &limit, &head],
            )
            .db()?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: Seq(r.get::<_, i64>(0) as u64),
                    kind: ChangeKind::from_code(i64::from(r.get::<_, i16>(1)))?,
                    user: UserId(r.get(2)),
                    device: r.get::<_, Option<i64>>(3).map(DeviceId),
                    first: r.get::<_, Option<i64>>(4).map(Timestamp),
                    last: r.get::<_, Option<i64>>(5).map(Timestamp),
                    count: r.get::<_, i64>(6) as u64,
                })
            })
            .collect()
    })
}

pub(crate) fn last_seq(store: &PostgresStore) -> StoreResult<Seq> {
    store.read(|c| read_last_seq(&mut **c))
}

fn read_last_seq(c: &mut impl GenericClient) -> StoreResult<Seq> {
    let v: i64 = c.query_one("SELECT last_seq FROM change_clock WHERE id = 1", &[]).db()?.get(0);
    Ok(Seq(v as u64))
}

fn meta(c: &mut impl GenericClient, key: &str) -> StoreResult<String> {
    c.query_opt("SELECT value FROM polo_meta WHERE key = $1", &[&key])
        .db()?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Corrupt(format!("polo_meta has no {key}")))
}

// ------------------------------------------------------------------ epochs

pub(crate) fn epoch(store: &PostgresStore) -> StoreResult<String> {
    store.read(|c| meta(&mut **c, "epoch"))
}

pub(crate) fn instance_id(store: &PostgresStore) -> StoreResult<String> {
    store.read(|c| meta(&mut **c, "instance_id"))
}

pub(crate) fn epochs(store: &PostgresStore) -> StoreResult<Vec<EpochSpan>> {
    store.read(|c| {
        let rows = c.query("SELECT epoch, start_seq, instance FROM epochs ORDER BY id", &[]).db()?;
        Ok(rows
            .iter()
            .map(|r| EpochSpan { epoch: r.get(0), start: Seq(r.get::<_, i64>(1) as u64), instance: r.get(2) })
            .collect())
    })
}

/// [`polo_store::Store::renew_epoch`]. Takes the clock (without handing out
/// a seq) so that no write commits between reading the head and forking.
pub(crate) fn renew_epoch(store: &PostgresStore) -> StoreResult<String> {
    store.write(|tx| {
        with_clock(tx, |tx, clock| {
            let last = clock.last_seq;
            let old_id = meta(&mut **tx, "instance_id")?;
            let old_epoch = meta(&mut **tx, "epoch")?;
            let origin = find_or_create_origin(tx, &old_id)?;
            // `users` first: under Citus, a reference table that distributed
            // tables point to cannot be written after a statement ran on
            // every shard in parallel in the same transaction.
            for table in ["users", "deleted_users", "changes", "devices", "tombstones"] {
                tx.execute(&format!("UPDATE {table} SET origin = $1 WHERE origin = 0"), &[&origin]).db()?;
            }
            let (instance, epoch) = (new_random_id(), new_random_id());
            tx.execute("UPDATE polo_meta SET value = $1 WHERE key = 'instance_id'", &[&instance]).db()?;
            tx.execute("UPDATE polo_meta SET value = $1 WHERE key = 'epoch'", &[&epoch]).db()?;
            tx.execute(
                "INSERT INTO epochs (epoch, start_seq, instance) VALUES ($1, $2, $3)",
                &[&epoch, &(last.0 as i64), &instance],
            )
            .db()?;
            write_checkpoint(tx, &old_id, &Checkpoint { epoch: old_epoch, seq: last })?;
            Ok(epoch)
        })
    })
}

// ----------------------------------------------------------------- origins

/// The `origins` row of `instance`, created if new.
fn find_or_create_origin(tx: &mut Transaction<'_>, instance: &str) -> StoreResult<i64> {
    let inserted = tx
        .query_opt(
            "INSERT INTO origins (instance) VALUES ($1) ON CONFLICT (instance) DO NOTHING RETURNING id",
            &[&instance],
        )
        .db()?;
    match inserted {
        Some(row) => Ok(row.get(0)),
        None => Ok(tx.query_one("SELECT id FROM origins WHERE instance = $1", &[&instance]).db()?.get(0)),
    }
}

/// The instance id `origins` holds under `code`.
fn origin_name(c: &mut impl GenericClient, code: i64) -> StoreResult<Option<String>> {
    Ok(c.query_opt("SELECT instance FROM origins WHERE id = $1", &[&code]).db()?.map(|r| r.get(0)))
}

/// The version of a change stored as `(hlc, origin code)`.
fn version(c: &mut impl GenericClient, origins: &mut OriginNames, hlc: i64, code: i64) -> StoreResult<Version> {
    origins.version(hlc, code, |code| origin_name(c, code))
}

// -------------------------------------------------------------------- feed

/// One row of the change log, with its user's name.
struct LogRow {
    seq: i64,
    kind: i16,
    user_id: i64,
    device_id: Option<i64>,
    first: Option<i64>,
    last: Option<i64>,
    count: i64,
    hlc: i64,
    origin: i64,
    user: String,
}

pub(crate) fn replication_feed(
    store: &PostgresStore,
    after: Seq,
    max_weight: usize,
    filter: &FeedFilter,
) -> StoreResult<FeedPage> {
    // Live ingest's commits are visible a moment before they are durable
    // (`durable`): hand a peer nothing a crash could still take back.
    crate::durable::wait(store)?;
    store.read(|c| {
        let mut tx =
            c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().db()?;
        let page = feed(&mut tx, after, max_weight, filter)?;
        tx.commit().db()?;
        Ok(page)
    })
}

fn feed(tx: &mut Transaction<'_>, after: Seq, max_weight: usize, filter: &FeedFilter) -> StoreResult<FeedPage> {
    let mut origins = OriginNames::new(meta(tx, "instance_id")?);
    let head = read_last_seq(tx)?;
    let head_hlc: i64 =
        tx.query_opt("SELECT hlc FROM changes WHERE seq = $1", &[&(head.0 as i64)]).db()?.map_or(0, |r| r.get(0));
    let mut page = FeedAssembly::new(after, max_weight);
    let mut devices: HashMap<i64, HashMap<i64, String>> = HashMap::new();
    'log: while page.wants_more(head) {
        let rows: Vec<LogRow> = tx
            .query(
                "SELECT c.seq, c.kind, c.user_id, c.device_id, c.first_ms, c.last_ms, c.count, c.hlc, c.origin, \
                 coalesce(d.name, u.name) \
                 FROM changes c LEFT JOIN users u ON u.id = c.user_id LEFT JOIN deleted_users d ON d.seq = c.seq \
                 WHERE c.seq > $1 AND c.seq <= $2 AND (u.id IS NOT NULL OR d.seq IS NOT NULL) \
                 ORDER BY c.seq LIMIT $3",
                &[&(page.next().0 as i64), &(head.0 as i64), &(LOG_SLICE as i64)],
            )
            .db()?
            .iter()
            .map(|r| LogRow {
                seq: r.get(0),
                kind: r.get(1),
                user_id: r.get(2),
                device_id: r.get(3),
                first: r.get(4),
                last: r.get(5),
                count: r.get(6),
                hlc: r.get(7),
                origin: r.get(8),
                user: r.get(9),
            })
            .collect();
        if rows.is_empty() {
            break;
        }
        for LogRow { seq, kind, user_id, device_id, first, last, count, hlc, origin, user } in rows {
            let version = version(tx, &mut origins, hlc, origin)?;
            if !filter.admits(&user, &version.origin) {
                page.skip(Seq(seq as u64));
                continue;
            }
            let names = match devices.entry(user_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(device_names(tx, user_id)?),
            };
            let device_name = |id: i64| -> StoreResult<String> {
                names.get(&id).cloned().ok_or_else(|| StoreError::Corrupt(format!("change {seq}: no device {id}")))
            };
            let no_device = || StoreError::Corrupt(format!("change {seq}: no device"));
            let change = match ChangeKind::from_code(i64::from(kind))? {
                ChangeKind::User => {
                    let row =
                        tx.query_one("SELECT password_hash, is_admin FROM users WHERE id = $1", &[&user_id]).db()?;
                    ReplicatedChange::User { name: user, password_hash: row.get(0), is_admin: row.get(1) }
                }
                ChangeKind::AccountDeleted => ReplicatedChange::AccountDeleted { name: user },
                ChangeKind::Device => {
                    let id = device_id.ok_or_else(no_device)?;
                    let row = tx
                        .query_one(
                            "SELECT encryption_key, card_name, card_face FROM devices WHERE user_id = $1 AND id = $2",
                            &[&user_id, &id],
                        )
                        .db()?;
                    let (card_name, card_face): (Option<String>, Option<String>) = (row.get(1), row.get(2));
                    let card = (card_name.is_some() || card_face.is_some())
                        .then_some(DeviceCard { name: card_name, face: card_face });
                    ReplicatedChange::Device { user, name: device_name(id)?, encryption_key: row.get(0), card }
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
                ChangeKind::PointsDeleted => {
                    let stone = tx
                        .query_opt(
                            "SELECT west_e7, south_e7, east_e7, north_e7, thin_ms FROM tombstones \
                             WHERE user_id = $1 AND seq = $2",
                            &[&user_id, &seq],
                        )
                        .db()?;
                    let (area, keep_one_every_ms) = match stone {
                        Some(r) => (area_of(r.get(0), r.get(1), r.get(2), r.get(3)), r.get(4)),
                        None => (None, None),
                    };
                    let device = device_id.map(device_name).transpose()?;
                    ReplicatedChange::Tombstone { user, device, from: first, last, area, keep_one_every_ms }
                }
                ChangeKind::IntervalsInserted => {
                    let id = device_id.ok_or_else(no_device)?;
                    let intervals = change_intervals(tx, user_id, id, seq, first, last)?;
                    ReplicatedChange::Intervals { user, device: device_name(id)?, intervals }
                }
                ChangeKind::Edit => {
                    let batch = tx
                        .query_opt("SELECT batch FROM edit_log WHERE user_id = $1 AND seq = $2", &[&user_id, &seq])
                        .db()?;
                    // An edit without its batch has nothing to send.
                    let Some(batch) = batch else {
                        page.skip(Seq(seq as u64));
                        continue;
                    };
                    let batch = DerivedBatch::decode(batch.get::<_, &[u8]>(0))?;
                    edit_change(user, batch, &mut |d| device_name(d.0))?
                }
            };
            if page.push(Seq(seq as u64), version, change) {
                break 'log;
            }
        }
    }
    for scan in page.point_scans() {
        // The chunk starting at or before `from` may hold its first fixes.
        let rows = tx
            .query(
                "SELECT data FROM point_chunks WHERE user_id = $1 AND device_id = $2 \
                 AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                     WHERE user_id = $1 AND device_id = $2 AND first_ms <= $3), $3) \
                 AND first_ms <= $4 AND last_ms >= $3 AND max_seq >= $5 ORDER BY first_ms",
                &[&scan.user, &scan.device, &scan.from, &scan.last, &(scan.min_seq.0 as i64)],
            )
            .db()?;
        for r in &rows {
            page.collect(&scan, decode_chunk(r.get::<_, &[u8]>(0))?);
        }
    }
    Ok(page.finish(head, Hlc(head_hlc as u64)))
}

/// The names of `user`'s devices, by id.
fn device_names(tx: &mut Transaction<'_>, user: i64) -> StoreResult<HashMap<i64, String>> {
    let rows = tx.query("SELECT id, name FROM devices WHERE user_id = $1", &[&user]).db()?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn area_of(west: Option<i32>, south: Option<i32>, east: Option<i32>, north: Option<i32>) -> Option<Area> {
    Some(Area { west_e7: west?, south_e7: south?, east_e7: east?, north_e7: north? })
}

/// The intervals change `seq` stored (those still there).
fn change_intervals(
    tx: &mut Transaction<'_>,
    user: i64,
    device: i64,
    seq: i64,
    first: Option<i64>,
    last: Option<i64>,
) -> StoreResult<Vec<Interval>> {
    let rows = tx
        .query(
            &format!(
                "SELECT {} FROM intervals WHERE user_id = $1 AND start_ms >= $2 AND start_ms <= $3 \
                 AND device_id = $4 AND seq = $5 ORDER BY start_ms, id",
                crate::intervals::INTERVAL_COLUMNS
            ),
            &[&user, &first.unwrap_or(i64::MIN), &last.unwrap_or(i64::MAX), &device, &seq],
        )
        .db()?;
    rows.iter().map(|r| Ok(crate::intervals::interval_from_row(r)?.interval)).collect()
}

// ------------------------------------------------------------------- apply

pub(crate) fn replication_apply(
    store: &PostgresStore,
    name: &str,
    entries: &[FeedEntry],
    checkpoint: &Checkpoint,
) -> StoreResult<ApplyOutcome> {
    store.write(|tx| {
        // A page may hold several users' points, written to several shards
        // at once; under Citus that parallel access would forbid writing an
        // instance-wide (reference) table later in the page, as an account
        // deletion does ("cannot execute DML on table users because there
        // was a parallel DML access"). Sequential mode lifts that. Plain
        // PostgreSQL takes the setting as a custom variable and ignores it.
        tx.batch_execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'").db()?;
        with_clock(tx, |tx, clock| {
            let mut origins = OriginNames::new(meta(&mut **tx, "instance_id")?);
            let mut out = ApplyOutcome::default();
            for entry in entries {
                let origin = origins.code(&entry.version.origin, |instance| find_or_create_origin(tx, instance))?;
                let hlc = entry.version.hlc;
                let changed = !held(tx, entry, origin)?
                    && apply_one(tx, clock, entry, Stamp::Replicated { hlc, origin }, &mut origins, &mut out)?;
                out.count_entry(changed);
            }
            write_checkpoint(tx, name, checkpoint)?;
            Ok(out)
        })
    })
}

/// Whether the target already logged the entry's change (by its version;
/// a user that does not exist here holds none). The user is looked up
/// first, so the change is found on its user's shard by the unique
/// `(user_id, origin, hlc)`: under Citus a query across every shard here
/// would forbid the transaction to create a user afterwards ("cannot modify
/// table users because there was a parallel operation on a distributed
/// table").
fn held(tx: &mut Transaction<'_>, entry: &FeedEntry, origin: i64) -> StoreResult<bool> {
    let Some(user) = tx.query_opt("SELECT id FROM users WHERE name = $1", &[&entry.change.user()]).db()? else {
        return Ok(false);
    };
    let user: i64 = user.get(0);
    let found = tx
        .query_opt(
            "SELECT 1 FROM changes WHERE user_id = $1 AND origin = $2 AND hlc = $3",
            &[&user, &origin, &(entry.version.hlc.0 as i64)],
        )
        .db()?;
    Ok(found.is_some())
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
    tx: &mut Transaction<'_>,
    entry: &FeedEntry,
    stamp: Stamp,
    origins: &mut OriginNames,
) -> StoreResult<AccountRule> {
    let name = entry.change.user();
    let deletion = matches!(entry.change, ReplicatedChange::AccountDeleted { .. });
    let tombstone = account_deletion::tombstone(tx, name)?;
    if tombstone.is_none() && !deletion {
        return Ok((AccountEntry::Apply, None));
    }
    let (deleted, revived) = match tombstone {
        Some(((hlc, origin), revived)) => {
            let revived = match revived {
                Some((hlc, origin)) => Some(version(tx, origins, hlc, origin)?),
                None => None,
            };
            (Some(version(tx, origins, hlc, origin)?), revived)
        }
        None => (None, None),
    };
    let user: Option<(i64, (i64, i64))> = tx
        .query_opt("SELECT id, hlc, origin FROM users WHERE name = $1", &[&name])
        .db()?
        .map(|r| (r.get(0), (r.get(1), r.get(2))));
    let user_version = match user {
        Some((_, (hlc, origin))) => Some(version(tx, origins, hlc, origin)?),
        None => None,
    };
    let (decision, revival) = judge_account(entry, deleted.as_ref(), revived.as_ref(), user_version.as_ref());
    if let Some(since) = revival {
        account_deletion::set_revived(tx, name, since.hlc.0 as i64, stamp_origin(stamp))?;
    }
    Ok((decision, user))
}

fn stamp_origin(stamp: Stamp) -> i64 {
    match stamp {
        Stamp::Local => 0,
        Stamp::Replicated { origin, .. } => origin,
    }
}

fn stamp_hlc(stamp: Stamp) -> i64 {
    match stamp {
        Stamp::Local => 0,
        Stamp::Replicated { hlc, .. } => hlc.0 as i64,
    }
}

fn account_change(kind: ChangeKind, user: UserId, device: Option<DeviceId>) -> ChangeRecord {
    ChangeRecord { kind, user, device, first: None, last: None, count: 1 }
}

/// Applies one entry; whether it changed anything.
fn apply_one(
    tx: &mut Tx<'_>,
    clock: &mut ChangeClock,
    entry: &FeedEntry,
    stamp: Stamp,
    origins: &mut OriginNames,
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
                account_deletion::purge(tx, id, keep_user)?;
            }
            account_deletion::log_deletion(tx, clock, stamp, name, id, 0)?;
            if let (true, Some((_, (hlc, origin)))) = (keep_user, user) {
                account_deletion::set_revived(tx, name, hlc, origin)?;
                // The newer account change stays in the log, after the deletion.
                let kept = Stamp::Replicated { hlc: Hlc(hlc as u64), origin };
                log_change_with(tx, clock, kept, &account_change(ChangeKind::User, UserId(id), None))?;
            }
            return Ok(true);
        }
    }
    match &entry.change {
        ReplicatedChange::AccountDeleted { .. } => Ok(false),
        ReplicatedChange::User { name, password_hash, is_admin } => {
            let stored = tx
                .query_opt("SELECT id, password_hash, is_admin, hlc, origin FROM users WHERE name = $1", &[name])
                .db()?;
            let held = match &stored {
                Some(r) => Some((
                    version(&mut **tx, origins, r.get(3), r.get(4))?,
                    (r.get::<_, String>(1), r.get::<_, bool>(2)),
                )),
                None => None,
            };
            let content = (password_hash.clone(), *is_admin);
            let id = match decide_account(held.as_ref().map(|(v, c)| (v, c)), incoming, &content) {
                AccountDecision::Skip => return Ok(false),
                AccountDecision::Create => insert_user(tx, name, password_hash, *is_admin, stamp)?,
                AccountDecision::Update => {
                    let id: i64 = stored.as_ref().map_or(0, |r| r.get(0));
                    tx.execute(
                        "UPDATE users SET password_hash = $2, is_admin = $3, hlc = $4, origin = $5 WHERE id = $1",
                        &[&id, password_hash, is_admin, &(incoming.hlc.0 as i64), &stamp_origin(stamp)],
                    )
                    .db()?;
                    id
                }
            };
            log_change_with(tx, clock, stamp, &account_change(ChangeKind::User, UserId(id), None))?;
            Ok(true)
        }
        ReplicatedChange::Device { user, name, encryption_key, card } => {
            let user = ensure_user(tx, user)?;
            let (card_name, card_face) = card.as_ref().map_or((None, None), |c| (c.name.clone(), c.face.clone()));
            let stored = tx
                .query_opt(
                    "SELECT id, encryption_key, card_name, card_face, hlc, origin FROM devices \
                     WHERE user_id = $1 AND name = $2",
                    &[&user, name],
                )
                .db()?;
            type DeviceContent = (Option<String>, Option<String>, Option<String>);
            let held: Option<(Version, DeviceContent)> = match &stored {
                Some(r) => Some((version(&mut **tx, origins, r.get(4), r.get(5))?, (r.get(1), r.get(2), r.get(3)))),
                None => None,
            };
            let content = (encryption_key.clone(), card_name.clone(), card_face.clone());
            let id = match decide_account(held.as_ref().map(|(v, c)| (v, c)), incoming, &content) {
                AccountDecision::Skip => return Ok(false),
                AccountDecision::Create => create_device(tx, user, name)?,
                AccountDecision::Update => stored.as_ref().map_or(0, |r| r.get(0)),
            };
            tx.execute(
                "UPDATE devices SET encryption_key = $3, card_name = $4, card_face = $5, hlc = $6, origin = $7 \
                 WHERE user_id = $1 AND id = $2",
                &[&user, &id, encryption_key, &card_name, &card_face, &(incoming.hlc.0 as i64), &stamp_origin(stamp)],
            )
            .db()?;
            log_change_with(tx, clock, stamp, &account_change(ChangeKind::Device, UserId(user), Some(DeviceId(id))))?;
            Ok(true)
        }
        ReplicatedChange::Points { user, device, fixes } => {
            let user = ensure_user(tx, user)?;
            let device = ensure_device(tx, user, device)?;
            let Some((lo, hi)) = time_span(fixes) else { return Ok(false) };
            let covering = covering_tombstones(tx, origins, user, device, lo, hi)?;
            let (admitted, suppressed) = admit_points(fixes, &covering, incoming);
            // The stored fixes the insert may weigh: those at the times it brings.
            let times: HashSet<i64> = admitted.iter().map(|f| f.time.0).collect();
            let seqs =
                stored_seqs(tx, user, Some(device), lo, Some(hi.saturating_add(1)), |f| times.contains(&f.fix.time.0))?;
            let mut versions = versions_of(tx, origins, user, &seqs)?;
            let mut arbiter = PointArbiter::new(incoming, &mut versions, |seq| Err(unlogged_point(seq)));
            let mut replace = |stored: &StoredFix, fix: &polo_domain::Fix| arbiter.replaces(stored, fix);
            let outcome = points::insert(
                tx,
                clock,
                UserId(user),
                DeviceId(device),
                &admitted,
                &mut |_| {},
                points::Provenance { stamp, replace: Some(&mut replace) },
            )?;
            let replaced = arbiter.finish()?;
            out.count_points(outcome.added, replaced, suppressed);
            Ok(outcome.seq.is_some())
        }
        ReplicatedChange::Tombstone { user, device, from, last, area, keep_one_every_ms } => {
            let user = ensure_user(tx, user)?;
            let device = device.as_deref().map(|d| ensure_device(tx, user, d)).transpose()?;
            let selection =
                tombstone_selection(UserId(user), device.map(DeviceId), *from, *last, *area, *keep_one_every_ms);
            // Every stored fix and interval the delete may weigh.
            let lo = from.unwrap_or(i64::MIN);
            let to = last.map(|l| l.saturating_add(1));
            let mut seqs = stored_seqs(tx, user, device, lo, to, |_| true)?;
            let rows = tx
                .query(
                    "SELECT DISTINCT seq FROM intervals WHERE user_id = $1 AND ($2::BIGINT IS NULL OR device_id = $2) \
                     AND start_ms >= $3 AND ($4::BIGINT IS NULL OR start_ms < $4)",
                    &[&user, &device, &lo, &to],
                )
                .db()?;
            seqs.extend(rows.iter().map(|r| r.get::<_, i64>(0) as u64));
            let mut versions = versions_of(tx, origins, user, &seqs)?;
            let mut arbiter = PointArbiter::new(incoming, &mut versions, |seq| Err(unlogged_point(seq)));
            let mut keep = |seq: Seq| arbiter.survives(seq);
            let outcome = points::delete(tx, clock, &selection, stamp, Some(&mut keep), true)?;
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
            // Replication weighs tombstones by version, not as a local insert does.
            let outcome = points::insert_intervals(tx, clock, UserId(user), DeviceId(device), intervals, stamp, true)?;
            Ok(outcome.seq.is_some())
        }
        ReplicatedChange::Edit { user, delete, put } => {
            let user = ensure_user(tx, user)?;
            let batch = edit_batch(delete, put, &mut |name| ensure_device(tx, user, name).map(DeviceId))?;
            Ok(derived::write(tx, UserId(user), &batch, Some((&mut *clock, stamp)))?.is_some())
        }
    }
}

/// The seqs of the stored fixes of `user` (one device or all) with
/// `lo <= time < to` that `wanted` picks.
fn stored_seqs(
    tx: &mut Transaction<'_>,
    user: i64,
    device: Option<i64>,
    lo: i64,
    to: Option<i64>,
    wanted: impl Fn(&StoredFix) -> bool,
) -> StoreResult<BTreeSet<u64>> {
    let rows = tx
        .query(
            "SELECT data FROM point_chunks WHERE user_id = $1 AND ($2::BIGINT IS NULL OR device_id = $2) \
             AND last_ms >= $3 AND ($4::BIGINT IS NULL OR first_ms < $4)",
            &[&user, &device, &lo, &to],
        )
        .db()?;
    let mut seqs = BTreeSet::new();
    for r in &rows {
        for f in decode_chunk(r.get::<_, &[u8]>(0))? {
            let t = f.fix.time.0;
            if t >= lo && to.is_none_or(|to| t < to) && wanted(&f) {
                seqs.insert(f.seq.0);
            }
        }
    }
    Ok(seqs)
}

/// The versions of `user`'s changes `seqs`; a seq that is not logged is
/// corrupt data.
fn versions_of(
    tx: &mut Transaction<'_>,
    origins: &mut OriginNames,
    user: i64,
    seqs: &BTreeSet<u64>,
) -> StoreResult<PointVersions> {
    let mut versions = PointVersions::default();
    if seqs.is_empty() {
        return Ok(versions);
    }
    let wanted: Vec<i64> = seqs.iter().map(|&s| s as i64).collect();
    let rows = tx
        .query("SELECT seq, hlc, origin FROM changes WHERE user_id = $1 AND seq = ANY($2)", &[&user, &wanted])
        .db()?;
    for r in &rows {
        let seq = Seq(r.get::<_, i64>(0) as u64);
        versions.insert(seq, version(tx, origins, r.get(1), r.get(2))?);
    }
    if rows.len() < wanted.len() {
        let found: HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
        let missing = wanted.iter().find(|s| !found.contains(s)).copied().unwrap_or_default();
        return Err(unlogged_point(Seq(missing as u64)));
    }
    Ok(versions)
}

/// The burying tombstones of `user` (all devices, or `device`'s)
/// overlapping `[lo, hi]`, with their versions.
fn covering_tombstones(
    tx: &mut Transaction<'_>,
    origins: &mut OriginNames,
    user: i64,
    device: i64,
    lo: i64,
    hi: i64,
) -> StoreResult<Vec<VersionedTombstone>> {
    let rows = tx
        .query(
            "SELECT from_ms, last_ms, hlc, origin, west_e7, south_e7, east_e7, north_e7 FROM tombstones \
             WHERE user_id = $1 AND (device_id IS NULL OR device_id = $2) AND thin_ms IS NULL \
             AND (from_ms IS NULL OR from_ms <= $4) AND (last_ms IS NULL OR last_ms >= $3)",
            &[&user, &device, &lo, &hi],
        )
        .db()?;
    rows.iter()
        .map(|r| {
            Ok(VersionedTombstone {
                from: r.get(0),
                last: r.get(1),
                area: area_of(r.get(4), r.get(5), r.get(6), r.get(7)),
                version: version(tx, origins, r.get(2), r.get(3))?,
            })
        })
        .collect()
}

fn insert_user(
    tx: &mut Transaction<'_>,
    name: &str,
    password_hash: &str,
    is_admin: bool,
    stamp: Stamp,
) -> StoreResult<i64> {
    let row = tx
        .query_one(
            "INSERT INTO users (name, password_hash, is_admin, created_ms, hlc, origin) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&name, &password_hash, &is_admin, &now().0, &stamp_hlc(stamp), &stamp_origin(stamp)],
        )
        .db()?;
    Ok(row.get(0))
}

/// The user called `name`. One that does not exist yet (its own change is
/// filtered out or still to come) is created without a usable password and
/// without a change: the user's own change fills it in.
fn ensure_user(tx: &mut Transaction<'_>, name: &str) -> StoreResult<i64> {
    match tx.query_opt("SELECT id FROM users WHERE name = $1", &[&name]).db()? {
        Some(r) => Ok(r.get(0)),
        None => insert_user(tx, name, "!", false, Stamp::Local),
    }
}

/// The device of `user` called `name`, created without a change when
/// missing (its own change, when admitted, carries its settings).
fn ensure_device(tx: &mut Transaction<'_>, user: i64, name: &str) -> StoreResult<i64> {
    match tx.query_opt("SELECT id FROM devices WHERE user_id = $1 AND name = $2", &[&user, &name]).db()? {
        Some(r) => Ok(r.get(0)),
        None => create_device(tx, user, name),
    }
}

fn create_device(tx: &mut Transaction<'_>, user: i64, name: &str) -> StoreResult<i64> {
    Ok(tx.query_one("INSERT INTO devices (user_id, name) VALUES ($1, $2) RETURNING id", &[&user, &name]).db()?.get(0))
}

// ------------------------------------------------------------- checkpoints

fn write_checkpoint(tx: &mut Transaction<'_>, name: &str, checkpoint: &Checkpoint) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO replication_checkpoints (name, epoch, seq, updated_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, updated_ms = excluded.updated_ms",
        &[&name, &checkpoint.epoch, &(checkpoint.seq.0 as i64), &now().0],
    )
    .db()?;
    Ok(())
}

pub(crate) fn replication_checkpoint(store: &PostgresStore, name: &str) -> StoreResult<Option<Checkpoint>> {
    store.read(|c| {
        let row = c.query_opt("SELECT epoch, seq FROM replication_checkpoints WHERE name = $1", &[&name]).db()?;
        Ok(row.map(|r| Checkpoint { epoch: r.get(0), seq: Seq(r.get::<_, i64>(1) as u64) }))
    })
}

pub(crate) fn replication_checkpoints(store: &PostgresStore) -> StoreResult<Vec<(String, Checkpoint)>> {
    store.read(|c| {
        let rows = c.query("SELECT name, epoch, seq FROM replication_checkpoints ORDER BY name", &[]).db()?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), Checkpoint { epoch: r.get(1), seq: Seq(r.get::<_, i64>(2) as u64) }))
            .collect())
    })
}

// ------------------------------------------------------------------ tokens

const TOKEN_COLUMNS: &str = "id, label, created_ms, last_used_ms";

fn token_from_row(r: &postgres::Row) -> ReplicationToken {
    ReplicationToken { id: r.get(0), label: r.get(1), created: r.get(2), last_used: r.get(3) }
}

pub(crate) fn create_replication_token(
    store: &PostgresStore,
    label: &str,
    token_hash: &[u8; 32],
) -> StoreResult<ReplicationToken> {
    let created = now().0;
    store.write(|tx| {
        let row = tx
            .query_one(
                "INSERT INTO replication_tokens (label, token_hash, created_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&label, &&token_hash[..], &created],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists("replication token".into())
                } else {
                    crate::error::store_error(&e)
                }
            })?;
        Ok(ReplicationToken { id: row.get(0), label: label.to_owned(), created, last_used: None })
    })
}

/// The token, its last use noted at most once a
/// [`TOKEN_TOUCH_INTERVAL_MS`] (a conditional update: nodes answering the
/// same peer at once write it once).
pub(crate) fn replication_token_by_hash(
    store: &PostgresStore,
    token_hash: &[u8; 32],
) -> StoreResult<Option<ReplicationToken>> {
    let found = store.read(|c| {
        let row = c
            .query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM replication_tokens WHERE token_hash = $1"),
                &[&&token_hash[..]],
            )
            .db()?;
        Ok(row.as_ref().map(token_from_row))
    })?;
    let Some(mut token) = found else { return Ok(None) };
    let at = now().0;
    if token.last_used.is_none_or(|t| at - t >= TOKEN_TOUCH_INTERVAL_MS) {
        store.write(|tx| {
            tx.execute(
                "UPDATE replication_tokens SET last_used_ms = $2 WHERE id = $1 \
                 AND (last_used_ms IS NULL OR last_used_ms <= $2 - $3)",
                &[&token.id, &at, &TOKEN_TOUCH_INTERVAL_MS],
            )
            .db()
        })?;
        token.last_used = Some(at);
    }
    Ok(Some(token))
}

pub(crate) fn list_replication_tokens(store: &PostgresStore) -> StoreResult<Vec<ReplicationToken>> {
    store.read(|c| {
        let rows = c.query(&format!("SELECT {TOKEN_COLUMNS} FROM replication_tokens ORDER BY id"), &[]).db()?;
        Ok(rows.iter().map(token_from_row).collect())
    })
}

pub(crate) fn revoke_replication_token(store: &PostgresStore, id: i64) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("DELETE FROM replication_tokens WHERE id = $1", &[&id]).db()? > 0))
}
