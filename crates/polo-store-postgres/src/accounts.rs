//! Users and their devices.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::clock::{ChangeClock, Stamp, now};
use polo_store::{ChangeKind, Device, DeviceCard, StoreError, StoreResult, User};
use postgres::Row;

use crate::statements::Tx;

use crate::error::Db;
use crate::{ChangeRecord, PostgresStore, check_device};

/// The columns [`user_from_row`] reads, in order.
pub(crate) const USER_COLUMNS: &str = "id, name, password_hash, is_admin, created_ms";

pub(crate) fn user_from_row(r: &Row) -> User {
    User {
        id: UserId(r.get(0)),
        name: r.get(1),
        password_hash: r.get(2),
        is_admin: r.get(3),
        created: Timestamp(r.get(4)),
    }
}

/// Logs a local change to an account (a user, or one of its `device`s) and
/// leaves the change's version on the row: replication compares an incoming
/// change with the row's version, and a row still carrying an older one
/// would let an older change from a peer undo this newer one.
fn log_account_change(
    tx: &mut Tx<'_>,
    clock: &mut ChangeClock,
    user: UserId,
    device: Option<DeviceId>,
) -> StoreResult<()> {
    let kind = if device.is_some() { ChangeKind::Device } else { ChangeKind::User };
    let change = ChangeRecord { kind, user, device, first: None, last: None, count: 1 };
    crate::log_change_with(tx, clock, Stamp::Local, &change)?;
    // A local stamp leaves the clock at the change's reading.
    let hlc = clock.hlc.0 as i64;
    match device {
        None => tx.execute("UPDATE users SET hlc = $1, origin = 0 WHERE id = $2", &[&hlc, &user.0]),
        Some(device) => tx.execute(
            "UPDATE devices SET hlc = $1, origin = 0 WHERE user_id = $2 AND id = $3",
            &[&hlc, &user.0, &device.0],
        ),
    }
    .db()?;
    Ok(())
}

pub(crate) fn create_user(store: &PostgresStore, name: &str, password_hash: &str, is_admin: bool) -> StoreResult<User> {
    store.write(|tx| {
        let created = now();
        // The clock first (see `with_clock`), then the row.
        crate::with_clock(tx, |tx, clock| {
            let row = tx
                .query_opt(
                    "INSERT INTO users (name, password_hash, is_admin, created_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                    &[&name, &password_hash, &is_admin, &created.0],
                )
                .db()?;
            let Some(row) = row else {
                return Err(StoreError::AlreadyExists(format!("user {name:?}")));
            };
            let id = UserId(row.get(0));
            log_account_change(tx, clock, id, None)?;
            // A name deleted before: the new account exists since this change.
            crate::account_deletion::set_revived(tx, name, clock.hlc.0 as i64, 0)?;
            Ok(User { id, name: name.to_owned(), password_hash: password_hash.to_owned(), is_admin, created })
        })
    })
}

pub(crate) fn user_by_name(store: &PostgresStore, name: &str) -> StoreResult<Option<User>> {
    store.read(|c| {
        let row = c.query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"), &[&name]).db()?;
        Ok(row.as_ref().map(user_from_row))
    })
}

pub(crate) fn user_by_id(store: &PostgresStore, id: UserId) -> StoreResult<Option<User>> {
    store.read(|c| {
        let row = c.query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id.0]).db()?;
        Ok(row.as_ref().map(user_from_row))
    })
}

pub(crate) fn list_users(store: &PostgresStore) -> StoreResult<Vec<User>> {
    store.read(|c| {
        let rows = c.query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"), &[]).db()?;
        Ok(rows.iter().map(user_from_row).collect())
    })
}

pub(crate) fn set_password(store: &PostgresStore, user: UserId, password_hash: &str) -> StoreResult<()> {
    store.write(|tx| {
        crate::with_clock(tx, |tx, clock| {
            let n = tx.execute("UPDATE users SET password_hash = $2 WHERE id = $1", &[&user.0, &password_hash]).db()?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            log_account_change(tx, clock, user, None)?;
            Ok(())
        })
    })
}

pub(crate) fn ensure_device(store: &PostgresStore, user: UserId, name: &str) -> StoreResult<Device> {
    let device = |id: i64| Device { id: DeviceId(id), user, name: name.to_owned() };
    let existing = |c: &mut dyn FnMut() -> StoreResult<Option<Row>>| Ok(c()?.map(|r| device(r.get(0))));
    const FIND: &str = "SELECT id FROM devices WHERE user_id = $1 AND name = $2";
    // The common case takes no lock.
    if let Some(found) = store.read(|c| existing(&mut || c.query_opt(FIND, &[&user.0, &name]).db()))? {
        return Ok(found);
    }
    store.write(|tx| {
        crate::with_clock(tx, |tx, clock| {
            if let Some(found) = existing(&mut || tx.query_opt(FIND, &[&user.0, &name]).db())? {
                return Ok(found);
            }
            if tx.query_opt("SELECT 1 FROM users WHERE id = $1", &[&user.0]).db()?.is_none() {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            let id: i64 = tx
                .query_one("INSERT INTO devices (user_id, name) VALUES ($1, $2) RETURNING id", &[&user.0, &name])
                .db()?
                .get(0);
            log_account_change(tx, clock, user, Some(DeviceId(id)))?;
            Ok(device(id))
        })
    })
}

pub(crate) fn list_devices(store: &PostgresStore, user: UserId) -> StoreResult<Vec<Device>> {
    store.read(|c| {
        let rows = c.query("SELECT id, name FROM devices WHERE user_id = $1 ORDER BY id", &[&user.0]).db()?;
        Ok(rows.iter().map(|r| Device { id: DeviceId(r.get(0)), user, name: r.get(1) }).collect())
    })
}

pub(crate) fn device_encryption_key(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
) -> StoreResult<Option<String>> {
    store.read(|c| {
        let row = c
            .query_opt("SELECT encryption_key FROM devices WHERE user_id = $1 AND id = $2", &[&user.0, &device.0])
            .db()?
            .ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))?;
        Ok(row.get(0))
    })
}

pub(crate) fn set_device_encryption_key(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    key: Option<&str>,
) -> StoreResult<()> {
    update_device(
        store,
        user,
        device,
        "UPDATE devices SET encryption_key = $3 WHERE user_id = $1 AND id = $2 \
         AND encryption_key IS DISTINCT FROM $3",
        &[&key],
    )
}

pub(crate) fn device_card(store: &PostgresStore, user: UserId, device: DeviceId) -> StoreResult<Option<DeviceCard>> {
    store.read(|c| {
        let row = c
            .query_opt("SELECT card_name, card_face FROM devices WHERE user_id = $1 AND id = $2", &[&user.0, &device.0])
            .db()?
            .ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))?;
        let (name, face): (Option<String>, Option<String>) = (row.get(0), row.get(1));
        Ok((name.is_some() || face.is_some()).then_some(DeviceCard { name, face }))
    })
}

pub(crate) fn set_device_card(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    card: Option<&DeviceCard>,
) -> StoreResult<()> {
    let (name, face) = card.map_or((None, None), |c| (c.name.as_deref(), c.face.as_deref()));
    update_device(
        store,
        user,
        device,
        "UPDATE devices SET card_name = $3, card_face = $4 WHERE user_id = $1 AND id = $2 \
         AND (card_name IS DISTINCT FROM $3 OR card_face IS DISTINCT FROM $4)",
        &[&name, &face],
    )
}

/// Runs `update` (parameters `$1` user, `$2` device, then `values`) and logs
/// a device change when it changed the row; [`StoreError::NotFound`] when
/// the device is not the user's.
fn update_device(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    update: &str,
    values: &[&(dyn postgres::types::ToSql + Sync)],
) -> StoreResult<()> {
    store.write(|tx| {
        crate::with_clock(tx, |tx, clock| {
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&user.0, &device.0];
            params.extend_from_slice(values);
            if tx.execute(update, &params).db()? == 0 {
                return check_device(tx, user, device);
            }
            log_account_change(tx, clock, user, Some(device))?;
            Ok(())
        })
    })
}
