//! Shares, location grants and instance settings (see `polo_store::sharing`).
//!
//! A share is found by the SHA-256 of its link secret through the unique
//! index on `token_hash`, so a lookup costs the same whatever the secret, and
//! the answer is the same (`None`) for an unknown, a revoked and an expired
//! link. Nothing here writes the change log.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{LocationGrant, NewShare, Share, ShareKind, StoreError, StoreResult, User};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::auth::check_maker;
use crate::{Db, SqliteStore, check_device, now, user_from_row};

const SHARE_COLUMNS: &str = "s.id, s.user_id, s.kind, s.from_ms, s.to_ms, s.device_id, d.name, s.label, \
     s.created_ms, s.expires_ms, s.revoked_ms, s.created_by_token, s.hide_places";
const SHARE_FROM: &str = "shares s LEFT JOIN devices d ON d.user_id = s.user_id AND d.id = s.device_id";

fn share_from_row(r: &Row<'_>) -> StoreResult<Share> {
    let kind: String = r.get(2).db()?;
    let kind =
        ShareKind::from_name(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown share kind {kind:?}")))?;
    let time = |i: usize| r.get::<_, Option<i64>>(i).db().map(|v| v.map(Timestamp));
    Ok(Share {
        id: r.get(0).db()?,
        user: UserId(r.get(1).db()?),
        spec: NewShare {
            kind,
            from: time(3)?,
            to: time(4)?,
            device: r.get::<_, Option<i64>>(5).db()?.map(DeviceId),
            label: r.get(7).db()?,
            expires: time(9)?,
            hide_places: r.get(12).db()?,
        },
        device_name: r.get(6).db()?,
        created: Timestamp(r.get(8).db()?),
        revoked: time(10)?,
        created_by_token: r.get(11).db()?,
    })
}

fn share_by_id(conn: &Connection, user: UserId, id: i64) -> StoreResult<Share> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {SHARE_COLUMNS} FROM {SHARE_FROM} WHERE s.user_id = ?1 AND s.id = ?2"))
        .db()?;
    let mut rows = stmt.query([user.0, id]).db()?;
    let row = rows.next().db()?.ok_or_else(|| StoreError::NotFound(format!("share {id} of user {user}")))?;
    share_from_row(row)
}

fn user_exists(conn: &Connection, user: UserId) -> StoreResult<bool> {
    Ok(conn.query_row("SELECT 1 FROM users WHERE id = ?1", [user.0], |_| Ok(())).optional().db()?.is_some())
}

pub(crate) fn create_share(
    store: &SqliteStore,
    user: UserId,
    share: &NewShare,
    token_hash: &[u8; 32],
    created_by_token: Option<i64>,
) -> StoreResult<Share> {
    store.write(|tx| {
        if !user_exists(tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        check_maker(tx, user, created_by_token)?;
        if let Some(device) = share.device {
            check_device(tx, user, device)?;
        }
        let taken = tx
            .query_row("SELECT 1 FROM shares WHERE token_hash = ?1", [&token_hash[..]], |_| Ok(()))
            .optional()
            .db()?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists("share".into()));
        }
        let id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM shares", [], |r| r.get(0)).db()?;
        tx.execute(
            "INSERT INTO shares (user_id, id, kind, from_ms, to_ms, device_id, label, token_hash, created_ms, \
             expires_ms, created_by_token, hide_places) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                user.0,
                id,
                share.kind.name(),
                share.from.map(|t| t.0),
                share.to.map(|t| t.0),
                share.device.map(|d| d.0),
                share.label,
                &token_hash[..],
                now().0,
                share.expires.map(|t| t.0),
                created_by_token,
                share.hide_places,
            ],
        )
        .db()?;
        share_by_id(tx, user, id)
    })
}

pub(crate) fn share_by_hash(
    store: &SqliteStore,
    token_hash: &[u8; 32],
    at: Timestamp,
) -> StoreResult<Option<(Share, User)>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {SHARE_COLUMNS} FROM {SHARE_FROM} WHERE s.token_hash = ?1 AND s.revoked_ms IS NULL \
                 AND (s.expires_ms IS NULL OR s.expires_ms > ?2)"
            ))
            .db()?;
        let mut rows = stmt.query(params![&token_hash[..], at.0]).db()?;
        let Some(row) = rows.next().db()? else { return Ok(None) };
        let share = share_from_row(row)?;
        let user = c
            .prepare_cached(&format!("SELECT {} FROM users WHERE id = ?1", crate::USER_COLUMNS))
            .db()?
            .query_row([share.user.0], user_from_row)
            .optional()
            .db()?;
        Ok(user.map(|user| (share, user)))
    })
}

pub(crate) fn list_shares(store: &SqliteStore, user: UserId) -> StoreResult<Vec<Share>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!("SELECT {SHARE_COLUMNS} FROM {SHARE_FROM} WHERE s.user_id = ?1 ORDER BY s.id"))
            .db()?;
        let mut rows = stmt.query([user.0]).db()?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().db()? {
            out.push(share_from_row(row)?);
        }
        Ok(out)
    })
}

pub(crate) fn revoke_share(store: &SqliteStore, user: UserId, id: i64, at: Timestamp) -> StoreResult<bool> {
    store.write(|tx| {
        let found = tx
            .query_row("SELECT 1 FROM shares WHERE user_id = ?1 AND id = ?2", [user.0, id], |_| Ok(()))
            .optional()
            .db()?;
        if found.is_none() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE shares SET revoked_ms = ?3 WHERE user_id = ?1 AND id = ?2 AND revoked_ms IS NULL",
            params![user.0, id, at.0],
        )
        .db()?;
        Ok(true)
    })
}

pub(crate) fn grant_location(
    store: &SqliteStore,
    owner: UserId,
    viewer: UserId,
    created_by_token: Option<i64>,
) -> StoreResult<bool> {
    store.write(|tx| {
        for user in [owner, viewer] {
            if !user_exists(tx, user)? {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
        }
        check_maker(tx, owner, created_by_token)?;
        if owner == viewer {
            return Ok(false);
        }
        let n = tx
            .execute(
                "INSERT INTO location_grants (user_id, friend_id, created_ms, created_by_token) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![owner.0, viewer.0, now().0, created_by_token],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn revoke_location_grant(store: &SqliteStore, owner: UserId, viewer: UserId) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute("DELETE FROM location_grants WHERE user_id = ?1 AND friend_id = ?2", [owner.0, viewer.0])
            .db()?;
        Ok(n > 0)
    })
}

fn grants(c: &Connection, sql: &str, user: UserId) -> StoreResult<Vec<LocationGrant>> {
    let mut stmt = c.prepare_cached(sql).db()?;
    stmt.query_map([user.0], |r| {
        Ok(LocationGrant {
            owner: UserId(r.get(0)?),
            viewer: UserId(r.get(1)?),
            created: Timestamp(r.get(2)?),
            created_by_token: r.get(3)?,
        })
    })
    .db()?
    .collect::<rusqlite::Result<Vec<_>>>()
    .db()
}

pub(crate) fn location_grants_by(store: &SqliteStore, owner: UserId) -> StoreResult<Vec<LocationGrant>> {
    store.read(|c| {
        grants(
            c,
            "SELECT user_id, friend_id, created_ms, created_by_token FROM location_grants \
             WHERE user_id = ?1 ORDER BY friend_id",
            owner,
        )
    })
}

pub(crate) fn location_grants_to(store: &SqliteStore, viewer: UserId) -> StoreResult<Vec<LocationGrant>> {
    store.read(|c| {
        grants(
            c,
            "SELECT user_id, friend_id, created_ms, created_by_token FROM location_grants \
             WHERE friend_id = ?1 ORDER BY user_id",
            viewer,
        )
    })
}

pub(crate) fn instance_settings(store: &SqliteStore) -> StoreResult<Vec<(String, String)>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached("SELECT key, value FROM instance_settings ORDER BY key").db()?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn set_instance_setting(store: &SqliteStore, key: &str, value: Option<&str>) -> StoreResult<()> {
    store.write(|tx| {
        match value {
            Some(value) => tx
                .execute(
                    "INSERT INTO instance_settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )
                .db()?,
            None => tx.execute("DELETE FROM instance_settings WHERE key = ?1", [key]).db()?,
        };
        Ok(())
    })
}
