//! Deleting an account with everything it holds, and the account tombstone
//! that keeps it deleted.
//!
//! An account's rows are spread over every per-user table; deleting it is
//! one transaction that empties them for its id (children before parents,
//! since foreign keys are on) and removes its entries from the change log,
//! whose readers would otherwise meet a user that no longer exists. What
//! stays is a row of `deleted_users`: the name, the id it had and the
//! version of the deletion, which a replication feed serves and against
//! which replicated changes of that name are judged
//! (`polo_store::replication::apply::account_entry`).
//!
//! Ids are never reused (`meta.last_user_id`, `meta.last_device_id`), so
//! nothing keyed by an old id (a retention cursor, a server's in-memory
//! state) can ever apply to a new account.

use polo_domain::{Seq, UserId};
use polo_store::replication::apply::OriginNames;
use polo_store::{ChangeKind, DeletedAccount, StoreError, StoreResult, Version};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{ChangeRecord, Db, Stamp, log_change_with, with_clock};

/// The next id for a new user: ids of deleted users are not handed out again.
pub(crate) fn next_user_id(tx: &Connection) -> StoreResult<i64> {
    tx.prepare_cached(
        "SELECT max(coalesce((SELECT max(id) FROM users), 0), \
         coalesce((SELECT value FROM meta WHERE key = 'last_user_id'), 0)) + 1",
    )
    .db()?
    .query_row([], |r| r.get(0))
    .db()
}

/// The next id for a new device (of any user), likewise never reused.
pub(crate) fn next_device_id(tx: &Connection) -> StoreResult<i64> {
    tx.prepare_cached(
        "SELECT max(coalesce((SELECT max(id) FROM devices), 0), \
         coalesce((SELECT value FROM meta WHERE key = 'last_device_id'), 0)) + 1",
    )
    .db()?
    .query_row([], |r| r.get(0))
    .db()
}

/// Removes every row of user `id` (but the user row itself when
/// `keep_user`) and its change-log entries; returns the points and devices
/// removed.
pub(crate) fn purge(tx: &Transaction<'_>, id: i64, keep_user: bool) -> StoreResult<(u64, u64)> {
    let points: i64 =
        tx.query_row("SELECT coalesce(sum(n), 0) FROM point_chunks WHERE user_id = ?1", [id], |r| r.get(0)).db()?;
    let devices: i64 = tx.query_row("SELECT count(*) FROM devices WHERE user_id = ?1", [id], |r| r.get(0)).db()?;
    // Ids stay taken after their rows are gone.
    for (key, table) in [("last_user_id", "users"), ("last_device_id", "devices")] {
        tx.execute(
            &format!(
                "INSERT INTO meta (key, value) SELECT ?1, coalesce(max(id), 0) FROM {table} WHERE true \
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"
            ),
            [key],
        )
        .db()?;
    }
    tx.execute("DELETE FROM location_grants WHERE user_id = ?1 OR friend_id = ?1", [id]).db()?;
    crate::groups::forget_account(tx, id)?;
    for table in [
        "webhook_deliveries",
        "webhooks",
        "events",
        "zone_states",
        "zones",
        "records",
        "shares",
        "sessions",
        "undo_records",
        "tokens",
        "import_jobs",
        "derived",
        "edit_log",
        "tombstones",
        "intervals",
        "point_chunks",
        "devices",
        "changes",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [id]).db()?;
    }
    // Per-user cursors are named `<prefix>:<id>` or `<prefix>:<id>:…`.
    tx.execute(
        "DELETE FROM derived_cursors WHERE name GLOB '*:' || ?1 OR name GLOB '*:' || ?1 || ':*'",
        [id.to_string()],
    )
    .db()?;
    if !keep_user {
        tx.execute("DELETE FROM users WHERE id = ?1", [id]).db()?;
    }
    Ok((points as u64, devices as u64))
}

/// Records the deletion of the account `name` (id `user_id`) by change
/// `seq` as its tombstone, replacing an older one and that one's change.
pub(crate) fn record_tombstone(tx: &Transaction<'_>, name: &str, user_id: i64, seq: Seq) -> StoreResult<()> {
    tx.execute("DELETE FROM changes WHERE seq = (SELECT seq FROM deleted_users WHERE name = ?1)", [name]).db()?;
    tx.execute(
        "INSERT INTO deleted_users (name, former_user_id, seq, hlc, origin, deleted_ms) \
         SELECT ?1, ?2, seq, hlc, origin, ?3 FROM changes WHERE seq = ?4 \
         ON CONFLICT (name) DO UPDATE SET former_user_id = excluded.former_user_id, seq = excluded.seq, hlc = excluded.hlc, \
         origin = excluded.origin, deleted_ms = excluded.deleted_ms, revived_hlc = NULL, revived_origin = NULL",
        params![name, user_id, crate::now().0, seq.0 as i64],
    )
    .db()?;
    Ok(())
}

/// The account tombstone of `name`, if it has one: the deletion's version
/// and the recorded revival's.
pub(crate) fn tombstone(
    c: &Connection,
    origins: &mut OriginNames,
    name: &str,
    mut origin_name: impl FnMut(i64) -> StoreResult<Option<String>>,
) -> StoreResult<Option<(Version, Option<Version>)>> {
    type Row = (i64, i64, Option<i64>, Option<i64>);
    let row: Option<Row> = c
        .prepare_cached("SELECT hlc, origin, revived_hlc, revived_origin FROM deleted_users WHERE name = ?1")
        .db()?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .db()?;
    let Some((hlc, origin, revived_hlc, revived_origin)) = row else { return Ok(None) };
    let deleted = origins.version(hlc, origin, &mut origin_name)?;
    let revived = match (revived_hlc, revived_origin) {
        (Some(hlc), Some(origin)) => Some(origins.version(hlc, origin, &mut origin_name)?),
        _ => None,
    };
    Ok(Some((deleted, revived)))
}

/// Records that an account of `name` exists again since the change of
/// version `(hlc, origin code)` (see `polo_store::replication::apply::revived_since`).
pub(crate) fn set_revived(tx: &Connection, name: &str, hlc: i64, origin: i64) -> StoreResult<()> {
    tx.prepare_cached("UPDATE deleted_users SET revived_hlc = ?2, revived_origin = ?3 WHERE name = ?1")
        .db()?
        .execute(params![name, hlc, origin])
        .db()?;
    Ok(())
}

/// [`polo_store::Store::delete_user`] inside the writer's transaction.
pub(crate) fn delete_user(tx: &Transaction<'_>, user: UserId) -> StoreResult<DeletedAccount> {
    let (name, is_admin): (String, bool) = tx
        .query_row("SELECT name, is_admin FROM users WHERE id = ?1", [user.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
    let admins: i64 = tx.query_row("SELECT count(*) FROM users WHERE is_admin", [], |r| r.get(0)).db()?;
    if is_admin && admins <= 1 {
        return Err(StoreError::Refused(format!("{name:?} is the only administrator; make another user one first")));
    }
    let (points, devices) = purge(tx, user.0, false)?;
    let change =
        ChangeRecord { kind: ChangeKind::AccountDeleted, user, device: None, first: None, last: None, count: points };
    let seq = with_clock(tx, |clock| log_change_with(tx, clock, Stamp::Local, &change))?;
    record_tombstone(tx, &name, user.0, seq)?;
    Ok(DeletedAccount { name, points, devices, seq })
}
