//! Device tokens and web sessions.
//!
//! Both are found by the SHA-256 of their secret (unique indexes), so a copy
//! of the database never yields a usable credential. They are local to the
//! instance, not replicated data: nothing here takes the change clock.
//!
//! Several nodes write these tables at once, so nothing is check-then-insert:
//! a taken hash is found by the insert itself (`ON CONFLICT .. DO NOTHING`),
//! and revoking a token cannot race with a token making something:
//! * whatever is made in a token's name (a token, a share, a grant) first
//!   takes a `FOR KEY SHARE` lock on the maker's row ([`lock_maker`]), and
//!   finds no row once the maker is deleted;
//! * revoking locks the token and all it made `FOR UPDATE` until the set is
//!   closed ([`lock_token_and_makings`]), then revokes exactly that set.
//!
//! Under Citus, `tokens`, `sessions` and `users` are reference tables and
//! `devices` is distributed: a lookup by hash does not know the user, so it
//! reads the reference tables first and the device name from the user's
//! shard afterwards, instead of joining `devices` across every shard.
//!
//! `token_by_hash` runs on every token-authenticated request: it writes
//! `last_used` at most once per [`TOKEN_TOUCH_INTERVAL_MS`] per token, with a
//! conditional update so that concurrent requests on any node write once,
//! and a failed touch never turns the token away.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::clock::now;
use polo_store::{
    Device, Session, StoreError, StoreResult, TOKEN_TOUCH_INTERVAL_MS, Token, TokenGrant, TokenScopes, User,
};
use postgres::{GenericClient, Row};

use crate::statements::Tx;

use crate::PostgresStore;
use crate::accounts::{USER_COLUMNS, user_from_row};
use crate::error::Db;

/// The token columns [`token_at`] reads, in order (the device's name is not
/// among them: see the module docs).
const TOKEN_COLUMNS: &str =
    "t.id, t.user_id, t.device_id, t.label, t.created_ms, t.last_used_ms, t.scopes, t.created_by";
/// How many columns [`TOKEN_COLUMNS`] names.
const TOKEN_WIDTH: usize = 8;
/// How many columns [`USER_COLUMNS`] names: a joined row reads the user
/// first ([`user_from_row`] starts at column 0), then the rest.
pub(crate) const USER_WIDTH: usize = 5;

/// The token whose [`TOKEN_COLUMNS`] start at column `at`.
fn token_at(r: &Row, at: usize, device_name: String) -> StoreResult<Token> {
    let id: i64 = r.get(at);
    let user = UserId(r.get(at + 1));
    let scopes: String = r.get(at + 6);
    let scopes = TokenScopes::parse(&scopes)
        .map_err(|e| StoreError::Corrupt(format!("scopes {scopes:?} of token {id}: {e}")))?;
    Ok(Token {
        id,
        user,
        device: Device { id: DeviceId(r.get(at + 2)), user, name: device_name },
        label: r.get(at + 3),
        created: Timestamp(r.get(at + 4)),
        last_used: r.get::<_, Option<i64>>(at + 5).map(Timestamp),
        scopes,
        created_by: r.get(at + 7),
    })
}

/// The name of `device` when it is one of `user`'s.
pub(crate) fn device_name(c: &mut impl GenericClient, user: UserId, device: DeviceId) -> StoreResult<Option<String>> {
    let row = c.query_opt("SELECT name FROM devices WHERE user_id = $1 AND id = $2", &[&user.0, &device.0]).db()?;
    Ok(row.map(|r| r.get(0)))
}

/// Whether `user` exists. Users are never deleted, so no lock is needed.
pub(crate) fn user_exists(c: &mut impl GenericClient, user: UserId) -> StoreResult<bool> {
    Ok(c.query_opt("SELECT 1 FROM users WHERE id = $1", &[&user.0]).db()?.is_some())
}

/// Fails with `NotFound` unless `maker` is a token of `user`, and holds a
/// key-share lock on it until the transaction ends: a revocation of the
/// maker waits for what is made in its name, so it revokes that too, and
/// what waited for a revocation finds the maker gone.
pub(crate) fn lock_maker(tx: &mut Tx<'_>, user: UserId, maker: Option<i64>) -> StoreResult<()> {
    let Some(maker) = maker else { return Ok(()) };
    let found =
        tx.query_opt("SELECT 1 FROM tokens WHERE user_id = $1 AND id = $2 FOR KEY SHARE", &[&user.0, &maker]).db()?;
    found.map(|_| ()).ok_or_else(|| StoreError::NotFound(format!("token {maker} of user {user}")))
}

pub(crate) fn create_token(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    label: &str,
    token_hash: &[u8; 32],
    grant: TokenGrant,
) -> StoreResult<Token> {
    let scopes = grant.scopes.to_string();
    store.write(|tx| {
        let name = device_name(&mut **tx, user, device)?
            .ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))?;
        lock_maker(tx, user, grant.created_by)?;
        let created = now();
        // The id comes from the `polo_ids` sequence: never handed out twice,
        // so a new token cannot inherit what a revoked one made.
        let row = tx
            .query_opt(
                "INSERT INTO tokens (user_id, device_id, label, token_hash, created_ms, scopes, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
                &[&user.0, &device.0, &label, &&token_hash[..], &created.0, &scopes, &grant.created_by],
            )
            .db()?;
        let Some(row) = row else {
            return Err(StoreError::AlreadyExists(format!(
                "a token with this hash (for device {device} of user {user})"
            )));
        };
        Ok(Token {
            id: row.get(0),
            user,
            device: Device { id: device, user, name },
            label: label.to_owned(),
            created,
            last_used: None,
            scopes: grant.scopes,
            created_by: grant.created_by,
        })
    })
}

pub(crate) fn token_by_hash(store: &PostgresStore, token_hash: &[u8; 32]) -> StoreResult<Option<(Token, User)>> {
    let found = store.read(|c| {
        let row = c
            .query_opt(
                &format!(
                    "SELECT u.*, {TOKEN_COLUMNS} FROM tokens t \
                     JOIN (SELECT {USER_COLUMNS} FROM users) u ON u.id = t.user_id WHERE t.token_hash = $1"
                ),
                &[&&token_hash[..]],
            )
            .db()?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row);
        let device = DeviceId(row.get(USER_WIDTH + 2));
        // Devices are never deleted; a token of a missing device is damage.
        let name = device_name(&mut **c, user.id, device)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "token {} names device {device} of user {}, which does not exist",
                row.get::<_, i64>(USER_WIDTH),
                user.id
            ))
        })?;
        Ok(Some((token_at(&row, USER_WIDTH, name)?, user)))
    })?;
    let Some((mut token, user)) = found else { return Ok(None) };
    let at = now();
    if token.last_used.is_none_or(|t| at.0.saturating_sub(t.0) >= TOKEN_TOUCH_INTERVAL_MS) {
        // Conditional: of concurrent requests, the first writes; the others
        // wait for its row lock, find the token fresh and write nothing.
        let touched = store.write_once(|tx| {
            let n = tx
                .execute(
                    "UPDATE tokens SET last_used_ms = $2 WHERE id = $1 \
                     AND (last_used_ms IS NULL OR last_used_ms <= $3)",
                    &[&token.id, &at.0, &(at.0 - TOKEN_TOUCH_INTERVAL_MS)],
                )
                .db()?;
            Ok(n > 0)
        });
        match touched {
            Ok(true) => token.last_used = Some(at),
            // Another request touched it a moment ago: what was read stands.
            Ok(false) => {}
            // Like the embedded store's busy writer, a failed touch (a full
            // disk, a lost connection) must not turn the token away.
            Err(e) => tracing::warn!(error = %e, token = token.id, "cannot note the token's last use"),
        }
    }
    Ok(Some((token, user)))
}

pub(crate) fn list_tokens(store: &PostgresStore, user: UserId) -> StoreResult<Vec<Token>> {
    store.read(|c| {
        let rows = c
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, d.name FROM tokens t \
                     JOIN devices d ON d.user_id = t.user_id AND d.id = t.device_id \
                     WHERE t.user_id = $1 AND d.user_id = $1 ORDER BY t.id"
                ),
                &[&user.0],
            )
            .db()?;
        rows.iter().map(|r| token_at(r, 0, r.get(TOKEN_WIDTH))).collect()
    })
}

/// Locks token `id` of `user` and every token it made, transitively, and
/// returns their ids (empty when `user` has no such token).
///
/// Each pass reads the set afresh (a new snapshot per statement) and locks
/// it; a token made in the name of a locked token after that cannot exist
/// (its maker's key-share lock waits for ours), and one made just before
/// shows up in the next pass. Once a pass finds what the previous one
/// locked, the set is closed until commit.
fn lock_token_and_makings(tx: &mut Tx<'_>, user: UserId, id: i64) -> StoreResult<Vec<i64>> {
    const LOCK: &str = "WITH RECURSIVE made (id) AS ( \
            SELECT id FROM tokens WHERE user_id = $1 AND id = $2 \
            UNION SELECT t.id FROM tokens t JOIN made ON t.created_by = made.id WHERE t.user_id = $1) \
        SELECT id FROM tokens WHERE user_id = $1 AND id IN (SELECT id FROM made) ORDER BY id FOR UPDATE";
    let mut locked: Vec<i64> = Vec::new();
    loop {
        let ids: Vec<i64> = tx.query(LOCK, &[&user.0, &id]).db()?.iter().map(|r| r.get(0)).collect();
        if ids == locked {
            return Ok(ids);
        }
        locked = ids;
    }
}

pub(crate) fn revoke_token(store: &PostgresStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        let doomed = lock_token_and_makings(tx, user, id)?;
        if doomed.is_empty() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE shares SET revoked_ms = $3 WHERE user_id = $1 AND revoked_ms IS NULL \
             AND created_by_token = ANY($2)",
            &[&user.0, &doomed, &now().0],
        )
        .db()?;
        tx.execute(
            "DELETE FROM location_grants WHERE user_id = $1 AND created_by_token = ANY($2)",
            &[&user.0, &doomed],
        )
        .db()?;
        tx.execute("DELETE FROM tokens WHERE user_id = $1 AND id = ANY($2)", &[&user.0, &doomed]).db()?;
        Ok(true)
    })
}

pub(crate) fn create_session(
    store: &PostgresStore,
    session_hash: &[u8; 32],
    user: UserId,
    csrf_token: &str,
    expires: Timestamp,
) -> StoreResult<Session> {
    store.write(|tx| {
        if !user_exists(&mut **tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let created = now();
        let inserted = tx
            .execute(
                "INSERT INTO sessions (session_hash, user_id, csrf_token, created_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_hash) DO NOTHING",
                &[&&session_hash[..], &user.0, &csrf_token, &created.0, &expires.0],
            )
            .db()?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(format!("a session with this hash (for user {user})")));
        }
        Ok(Session { user, csrf_token: csrf_token.to_owned(), created, expires })
    })
}

pub(crate) fn session_by_hash(
    store: &PostgresStore,
    session_hash: &[u8; 32],
    at: Timestamp,
) -> StoreResult<Option<(Session, User)>> {
    store.read(|c| {
        let row = c
            .query_opt(
                &format!(
                    "SELECT u.*, s.csrf_token, s.created_ms, s.expires_ms FROM sessions s \
                     JOIN (SELECT {USER_COLUMNS} FROM users) u ON u.id = s.user_id \
                     WHERE s.session_hash = $1 AND s.expires_ms > $2"
                ),
                &[&&session_hash[..], &at.0],
            )
            .db()?;
        Ok(row.map(|r| {
            let user = user_from_row(&r);
            let session = Session {
                user: user.id,
                csrf_token: r.get(USER_WIDTH),
                created: Timestamp(r.get(USER_WIDTH + 1)),
                expires: Timestamp(r.get(USER_WIDTH + 2)),
            };
            (session, user)
        }))
    })
}

pub(crate) fn delete_session(store: &PostgresStore, session_hash: &[u8; 32]) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE session_hash = $1", &[&&session_hash[..]]).db()? > 0))
}

pub(crate) fn delete_user_sessions(store: &PostgresStore, user: UserId, keep: Option<&[u8; 32]>) -> StoreResult<u64> {
    let keep = keep.map(|k| &k[..]);
    store.write(|tx| {
        tx.execute(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::BYTEA IS NULL OR session_hash <> $2)",
            &[&user.0, &keep],
        )
        .db()
    })
}

pub(crate) fn delete_expired_sessions(store: &PostgresStore, at: Timestamp) -> StoreResult<u64> {
    store.write(|tx| tx.execute("DELETE FROM sessions WHERE expires_ms <= $1", &[&at.0]).db())
}
