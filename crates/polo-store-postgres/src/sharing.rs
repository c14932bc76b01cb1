//! Shares, location grants and instance settings (see `polo_store::sharing`).
//!
//! A share is found by the SHA-256 of its link secret through the unique
//! index on `token_hash`, and the answer is the same (`None`) for an
//! unknown, a revoked and an expired link. Nothing here takes the change
//! clock: these are local to the instance.
//!
//! As with tokens (see `auth`), several nodes write at once: a taken hash or
//! an existing grant is found by the insert itself (`ON CONFLICT`), and what
//! a token makes holds a key-share lock on it, so a concurrent revocation of
//! that token either waits and revokes it too, or happens first and the
//! making fails with `NotFound`. `shares` and `location_grants` are Citus
//! reference tables with no foreign key to the distributed `devices`, so a
//! share's device is checked here; a lookup by hash reads the device's name
//! from the owner's shard afterwards instead of joining every shard.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::clock::now;
use polo_store::{LocationGrant, NewShare, Share, ShareKind, StoreError, StoreResult, User};
use postgres::Row;

use crate::PostgresStore;
use crate::accounts::{USER_COLUMNS, user_from_row};
use crate::auth::{USER_WIDTH, device_name, lock_maker, user_exists};
use crate::error::Db;

/// The share columns [`share_at`] reads, in order.
const SHARE_COLUMNS: &str = "s.id, s.user_id, s.kind, s.from_ms, s.to_ms, s.device_id, s.label, s.created_ms, \
     s.expires_ms, s.revoked_ms, s.created_by_token, s.hide_places";
/// How many columns [`SHARE_COLUMNS`] names.
const SHARE_WIDTH: usize = 12;

/// The share whose [`SHARE_COLUMNS`] start at column `at`.
fn share_at(r: &Row, at: usize, device_name: Option<String>) -> StoreResult<Share> {
    let id: i64 = r.get(at);
    let kind: String = r.get(at + 2);
    let kind = ShareKind::from_name(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("share {id} has an unknown kind {kind:?}")))?;
    let time = |i: usize| r.get::<_, Option<i64>>(at + i).map(Timestamp);
    Ok(Share {
        id,
        user: UserId(r.get(at + 1)),
        spec: NewShare {
            kind,
            from: time(3),
            to: time(4),
            device: r.get::<_, Option<i64>>(at + 5).map(DeviceId),
            label: r.get(at + 6),
            expires: time(8),
            hide_places: r.get(at + 11),
        },
        device_name,
        created: Timestamp(r.get(at + 7)),
        revoked: time(9),
        created_by_token: r.get(at + 10),
    })
}

pub(crate) fn create_share(
    store: &PostgresStore,
    user: UserId,
    share: &NewShare,
    token_hash: &[u8; 32],
    created_by_token: Option<i64>,
) -> StoreResult<Share> {
    store.write(|tx| {
        if !user_exists(&mut **tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        lock_maker(tx, user, created_by_token)?;
        let name = match share.device {
            Some(device) => Some(
                device_name(&mut **tx, user, device)?
                    .ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))?,
            ),
            None => None,
        };
        let created = now();
        let row = tx
            .query_opt(
                "INSERT INTO shares (user_id, kind, from_ms, to_ms, device_id, label, token_hash, created_ms, \
                 expires_ms, created_by_token, hide_places) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (token_hash) DO NOTHING RETURNING id",
                &[
                    &user.0,
                    &share.kind.name(),
                    &share.from.map(|t| t.0),
                    &share.to.map(|t| t.0),
                    &share.device.map(|d| d.0),
                    &share.label,
                    &&token_hash[..],
                    &created.0,
                    &share.expires.map(|t| t.0),
                    &created_by_token,
                    &share.hide_places,
                ],
            )
            .db()?;
        let Some(row) = row else {
            return Err(StoreError::AlreadyExists(format!("a share with this hash (for user {user})")));
        };
        Ok(Share {
            id: row.get(0),
            user,
            spec: share.clone(),
            device_name: name,
            created,
            revoked: None,
            created_by_token,
        })
    })
}

pub(crate) fn share_by_hash(
    store: &PostgresStore,
    token_hash: &[u8; 32],
    at: Timestamp,
) -> StoreResult<Option<(Share, User)>> {
    store.read(|c| {
        let row = c
            .query_opt(
                &format!(
                    "SELECT u.*, {SHARE_COLUMNS} FROM shares s \
                     JOIN (SELECT {USER_COLUMNS} FROM users) u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.revoked_ms IS NULL AND (s.expires_ms IS NULL OR s.expires_ms > $2)"
                ),
                &[&&token_hash[..], &at.0],
            )
            .db()?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row);
        let name = match row.get::<_, Option<i64>>(USER_WIDTH + 5) {
            Some(device) => device_name(&mut **c, user.id, DeviceId(device))?,
            None => None,
        };
        Ok(Some((share_at(&row, USER_WIDTH, name)?, user)))
    })
}

pub(crate) fn list_shares(store: &PostgresStore, user: UserId) -> StoreResult<Vec<Share>> {
    store.read(|c| {
        let rows = c
            .query(
                &format!(
                    "SELECT {SHARE_COLUMNS}, d.name FROM shares s \
                     LEFT JOIN devices d ON d.user_id = $1 AND d.id = s.device_id \
                     WHERE s.user_id = $1 ORDER BY s.id"
                ),
                &[&user.0],
            )
            .db()?;
        rows.iter().map(|r| share_at(r, 0, r.get(SHARE_WIDTH))).collect()
    })
}

pub(crate) fn revoke_share(store: &PostgresStore, user: UserId, id: i64, at: Timestamp) -> StoreResult<bool> {
    store.write(|tx| {
        // The first revocation's time stays.
        let n = tx
            .execute(
                "UPDATE shares SET revoked_ms = coalesce(revoked_ms, $3) WHERE user_id = $1 AND id = $2",
                &[&user.0, &id, &at.0],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn grant_location(
    store: &PostgresStore,
    owner: UserId,
    viewer: UserId,
    created_by_token: Option<i64>,
) -> StoreResult<bool> {
    store.write(|tx| {
        for user in [owner, viewer] {
            if !user_exists(&mut **tx, user)? {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
        }
        lock_maker(tx, owner, created_by_token)?;
        if owner == viewer {
            return Ok(false);
        }
        // An existing grant keeps its maker.
        let n = tx
            .execute(
                "INSERT INTO location_grants (user_id, friend_id, created_ms, created_by_token) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, friend_id) DO NOTHING",
                &[&owner.0, &viewer.0, &now().0, &created_by_token],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn revoke_location_grant(store: &PostgresStore, owner: UserId, viewer: UserId) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute("DELETE FROM location_grants WHERE user_id = $1 AND friend_id = $2", &[&owner.0, &viewer.0])
            .db()?;
        Ok(n > 0)
    })
}

fn grant_from_row(r: &Row) -> LocationGrant {
    LocationGrant {
        owner: UserId(r.get(0)),
        viewer: UserId(r.get(1)),
        created: Timestamp(r.get(2)),
        created_by_token: r.get(3),
    }
}

pub(crate) fn location_grants_by(store: &PostgresStore, owner: UserId) -> StoreResult<Vec<LocationGrant>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT user_id, friend_id, created_ms, created_by_token FROM location_grants \
                 WHERE user_id = $1 ORDER BY friend_id",
                &[&owner.0],
            )
            .db()?;
        Ok(rows.iter().map(grant_from_row).collect())
    })
}

pub(crate) fn location_grants_to(store: &PostgresStore, viewer: UserId) -> StoreResult<Vec<LocationGrant>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT user_id, friend_id, created_ms, created_by_token FROM location_grants \
                 WHERE friend_id = $1 ORDER BY user_id",
                &[&viewer.0],
            )
            .db()?;
        Ok(rows.iter().map(grant_from_row).collect())
    })
}

pub(crate) fn instance_settings(store: &PostgresStore) -> StoreResult<Vec<(String, String)>> {
    store.read(|c| {
        // In byte order, as the embedded store sorts, whatever the database's collation.
        let rows = c.query("SELECT key, value FROM instance_settings ORDER BY key COLLATE \"C\"", &[]).db()?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}

pub(crate) fn set_instance_setting(store: &PostgresStore, key: &str, value: Option<&str>) -> StoreResult<()> {
    store.write(|tx| {
        match value {
            Some(value) => tx
                .execute(
                    "INSERT INTO instance_settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&key, &value],
                )
                .db()?,
            None => tx.execute("DELETE FROM instance_settings WHERE key = $1", &[&key]).db()?,
        };
        Ok(())
    })
}
