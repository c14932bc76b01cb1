//! Deleting an account with everything it holds, and the account tombstone
//! that keeps it deleted.
//!
//! The account's rows are spread over the per-user (distributed) tables and
//! a few instance-wide (reference) ones; deleting it is one transaction that
//! empties them for its id, children before parents, and removes its
//! entries from the change log, whose readers would otherwise meet a user
//! that no longer exists. Every statement on a distributed table names
//! `user_id`, so under Citus each runs on the user's shard alone (a
//! statement over every shard would forbid writing `users` afterwards in
//! the same transaction). What stays is a row of `deleted_users`: the name,
//! the id it had and the deletion's change and version, which a
//! replication feed serves and against which replicated changes of that
//! name are judged (`polo_store::replication::apply::account_entry`).
//! Ids come from one sequence and are never reused.

use polo_domain::{Seq, UserId};
use polo_store::clock::{ChangeClock, Stamp, now};
use polo_store::{ChangeKind, DeletedAccount, StoreError, StoreResult};
use postgres::GenericClient;

use crate::statements::Tx;

use crate::error::Db;
use crate::{ChangeRecord, PostgresStore, log_change_with, with_clock};

/// Removes every row of user `id` (but the user row itself when
/// `keep_user`) and its change-log entries; returns the points and devices
/// removed.
pub(crate) fn purge(tx: &mut Tx<'_>, id: i64, keep_user: bool) -> StoreResult<(u64, u64)> {
    let points: i64 =
        tx.query_one("SELECT coalesce(sum(n), 0)::BIGINT FROM point_chunks WHERE user_id = $1", &[&id]).db()?.get(0);
    let devices: i64 = tx.query_one("SELECT count(*) FROM devices WHERE user_id = $1", &[&id]).db()?.get(0);
    tx.execute("DELETE FROM location_grants WHERE user_id = $1 OR friend_id = $1", &[&id]).db()?;
    crate::groups::forget_account(tx, id)?;
    // Per-user cursors are named `<prefix>:<id>` or `<prefix>:<id>:…`.
    let id_text = id.to_string();
    tx.execute("DELETE FROM derived_cursors WHERE name LIKE '%:' || $1 OR name LIKE '%:' || $1 || ':%'", &[&id_text])
        .db()?;
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
        tx.execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[&id]).db()?;
    }
    if !keep_user {
        tx.execute("DELETE FROM users WHERE id = $1", &[&id]).db()?;
    }
    Ok((points as u64, devices as u64))
}

/// Records the deletion of the account `name` (id `user_id`) by change
/// `seq` of version `(hlc, origin)` as its tombstone, replacing an older one
/// and that one's change.
pub(crate) fn record_tombstone(
    tx: &mut Tx<'_>,
    name: &str,
    user_id: i64,
    seq: Seq,
    hlc: i64,
    origin: i64,
) -> StoreResult<()> {
    if let Some(old) = tx.query_opt("SELECT former_user_id, seq FROM deleted_users WHERE name = $1", &[&name]).db()? {
        let (old_user, old_seq): (i64, i64) = (old.get(0), old.get(1));
        tx.execute("DELETE FROM changes WHERE user_id = $1 AND seq = $2", &[&old_user, &old_seq]).db()?;
    }
    tx.execute(
        "INSERT INTO deleted_users (name, former_user_id, seq, hlc, origin, deleted_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (name) DO UPDATE SET former_user_id = excluded.former_user_id, seq = excluded.seq, \
         hlc = excluded.hlc, origin = excluded.origin, deleted_ms = excluded.deleted_ms, \
         revived_hlc = NULL, revived_origin = NULL",
        &[&name, &user_id, &(seq.0 as i64), &hlc, &origin, &now().0],
    )
    .db()?;
    Ok(())
}

/// A stored account tombstone: the deletion's `(hlc, origin)` and the
/// recorded revival's, if any.
pub(crate) type StoredTombstone = ((i64, i64), Option<(i64, i64)>);

/// The account tombstone of `name`, if any.
pub(crate) fn tombstone(c: &mut impl GenericClient, name: &str) -> StoreResult<Option<StoredTombstone>> {
    let row = c
        .query_opt("SELECT hlc, origin, revived_hlc, revived_origin FROM deleted_users WHERE name = $1", &[&name])
        .db()?;
    Ok(row.map(|r| {
        let revived = match (r.get::<_, Option<i64>>(2), r.get::<_, Option<i64>>(3)) {
            (Some(hlc), Some(origin)) => Some((hlc, origin)),
            _ => None,
        };
        ((r.get(0), r.get(1)), revived)
    }))
}

/// Records that an account of `name` exists again since the change of
/// version `(hlc, origin code)` (see `polo_store::replication::apply::revived_since`).
pub(crate) fn set_revived(tx: &mut postgres::Transaction<'_>, name: &str, hlc: i64, origin: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE deleted_users SET revived_hlc = $2, revived_origin = $3 WHERE name = $1",
        &[&name, &hlc, &origin],
    )
    .db()?;
    Ok(())
}

/// Logs the [`ChangeKind::AccountDeleted`] change of user `id` with `stamp`
/// and records the tombstone of `name`; returns its seq.
pub(crate) fn log_deletion(
    tx: &mut Tx<'_>,
    clock: &mut ChangeClock,
    stamp: Stamp,
    name: &str,
    id: i64,
    points: u64,
) -> StoreResult<Seq> {
    let change = ChangeRecord {
        kind: ChangeKind::AccountDeleted,
        user: UserId(id),
        device: None,
        first: None,
        last: None,
        count: points,
    };
    let seq = log_change_with(tx, clock, stamp, &change)?;
    let (hlc, origin) = match stamp {
        // A local stamp leaves the clock at the change's reading.
        Stamp::Local => (clock.hlc.0 as i64, 0),
        Stamp::Replicated { hlc, origin } => (hlc.0 as i64, origin),
    };
    record_tombstone(tx, name, id, seq, hlc, origin)?;
    Ok(seq)
}

/// [`polo_store::Store::delete_user`].
pub(crate) fn delete_user(store: &PostgresStore, user: UserId) -> StoreResult<DeletedAccount> {
    store.write(|tx| {
        with_clock(tx, |tx, clock| {
            // The clock row is locked: deletions run one at a time, so the
            // count of administrators below is the truth until the commit.
            let row = tx
                .query_opt("SELECT name, is_admin FROM users WHERE id = $1", &[&user.0])
                .db()?
                .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
            let (name, is_admin): (String, bool) = (row.get(0), row.get(1));
            let admins: i64 = tx.query_one("SELECT count(*) FROM users WHERE is_admin", &[]).db()?.get(0);
            if is_admin && admins <= 1 {
                return Err(StoreError::Refused(format!(
                    "{name:?} is the only administrator; make another user one first"
                )));
            }
            let (points, devices) = purge(tx, user.0, false)?;
            let seq = log_deletion(tx, clock, Stamp::Local, &name, user.0, points)?;
            Ok(DeletedAccount { name, points, devices, seq })
        })
    })
}
