//! When and from where each web session and device token was last used,
//! for the sessions page (`GET /api/v1/me/sessions`).
//!
//! Kept as store records of the user (`auth.session`, one per session,
//! keyed by a public id derived from the session's hash; `auth.token.seen`,
//! one per token), so the store needs no new columns and deleting the
//! account deletes them. Writing on every request would double the writes
//! of a busy phone, so a use is written at most once per [`TOUCH_EVERY`]
//! per session or token ([`Seen`] remembers what it wrote last), off the
//! request's path.
//!
//! The public id is a SHA-256 of the stored hash, cut to 16 hex digits:
//! neither it nor the hash logs anyone in, but the id does not even reveal
//! the hash.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use polo_domain::{Timestamp, UserId};
use polo_store::{Record, RecordQuery, RecordWrite, Store, StoreResult};
use serde::{Deserialize, Serialize};

use super::secret::sha256;

/// The session records' kind.
pub const SESSION_KIND: &str = "auth.session";
/// The token records' kind.
pub const TOKEN_KIND: &str = "auth.token.seen";
/// The least time between two writes of one session's or token's use.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// The most uses remembered before old ones are dropped.
const REMEMBERED: usize = 8192;

/// A session as the sessions page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSeen {
    /// Hex SHA-256 of the session cookie (what the store keys sessions by).
    pub hash: String,
    /// When the session began (ms).
    pub created: i64,
    /// When it ends (ms).
    pub expires: i64,
    /// Its last use (ms).
    pub last_used: i64,
    /// The client's address at its last use.
    pub address: Option<String>,
    /// How it began: `password` or `oidc`.
    pub method: String,
}

/// A token's last use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSeen {
    /// When (ms).
    pub last_used: i64,
    /// The client's address then.
    pub address: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The public id of the session whose cookie hashes to `hash`.
#[must_use]
pub fn session_id(hash: &[u8; 32]) -> String {
    hex(&sha256(hash)[..8])
}

fn corrupt(e: serde_json::Error) -> polo_store::StoreError {
    polo_store::StoreError::Corrupt(format!("a session record: {e}"))
}

/// Records a new session.
///
/// # Errors
/// Store failures.
pub fn session_started(
    store: &dyn Store,
    user: UserId,
    hash: &[u8; 32],
    expires: Timestamp,
    now: Timestamp,
    address: Option<IpAddr>,
    method: &str,
) -> StoreResult<()> {
    let seen = SessionSeen {
        hash: hex(hash),
        created: now.0,
        expires: expires.0,
        last_used: now.0,
        address: address.map(|a| a.to_string()),
        method: method.to_owned(),
    };
    store.write_records(&[RecordWrite::Put(Record {
        kind: SESSION_KIND.to_owned(),
        key: session_id(hash),
        user: Some(user),
        at: now,
        body: serde_json::to_string(&seen).map_err(corrupt)?,
    })])
}

/// The user's sessions (still in the store and unexpired), newest use
/// first, with their public ids; records of ended sessions are deleted.
///
/// # Errors
/// Store failures.
pub fn sessions(store: &dyn Store, user: UserId, now: Timestamp) -> StoreResult<Vec<(String, SessionSeen)>> {
    let mut live = Vec::new();
    let mut ended = Vec::new();
    for record in store.records(&RecordQuery::kind(SESSION_KIND).user(user))? {
        let seen: SessionSeen = serde_json::from_str(&record.body).map_err(corrupt)?;
        let hash = decode_hash(&seen.hash);
        let alive = match hash {
            Some(hash) => store.session_by_hash(&hash, now)?.is_some_and(|(s, _)| s.user == user),
            None => false,
        };
        if alive {
            live.push((record.key, seen));
        } else {
            ended.push(RecordWrite::Delete { kind: SESSION_KIND.to_owned(), key: record.key });
        }
    }
    if !ended.is_empty() {
        store.write_records(&ended)?;
    }
    live.sort_by_key(|s| std::cmp::Reverse(s.1.last_used));
    Ok(live)
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Ends the user's session with public id `id`; whether there was one.
///
/// # Errors
/// Store failures.
pub fn end_session(store: &dyn Store, user: UserId, id: &str) -> StoreResult<bool> {
    let Some(record) = store.record(SESSION_KIND, id)?.filter(|r| r.user == Some(user)) else { return Ok(false) };
    let seen: SessionSeen = serde_json::from_str(&record.body).map_err(corrupt)?;
    if let Some(hash) = decode_hash(&seen.hash) {
        store.delete_session(&hash)?;
    }
    store.write_records(&[RecordWrite::Delete { kind: SESSION_KIND.to_owned(), key: id.to_owned() }])?;
    Ok(true)
}

/// The last use of each of the user's tokens, by token id.
///
/// # Errors
/// Store failures.
pub fn tokens(store: &dyn Store, user: UserId) -> StoreResult<HashMap<i64, TokenSeen>> {
    let mut out = HashMap::new();
    for record in store.records(&RecordQuery::kind(TOKEN_KIND).user(user))? {
        if let Ok(id) = record.key.parse::<i64>() {
            out.insert(id, serde_json::from_str(&record.body).map_err(corrupt)?);
        }
    }
    Ok(out)
}

fn touch_session(store: &dyn Store, id: &str, now: Timestamp, address: Option<IpAddr>) -> StoreResult<()> {
    let Some(mut record) = store.record(SESSION_KIND, id)? else { return Ok(()) };
    let mut seen: SessionSeen = serde_json::from_str(&record.body).map_err(corrupt)?;
    seen.last_used = now.0;
    seen.address = address.map(|a| a.to_string());
    record.body = serde_json::to_string(&seen).map_err(corrupt)?;
    store.write_records(&[RecordWrite::Put(record)])
}

/// What was in use, remembered to write each use at most every [`TOUCH_EVERY`].
#[derive(Debug, Default)]
pub struct Seen {
    last: Mutex<HashMap<String, Instant>>,
}

impl Seen {
    /// Whether `key`'s use is due to be written (and marks it written).
    fn due(&self, key: String) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(&key).is_some_and(|at| at.elapsed() < TOUCH_EVERY) {
            return false;
        }
        if last.len() >= REMEMBERED {
            last.retain(|_, at| at.elapsed() < TOUCH_EVERY);
        }
        last.insert(key, Instant::now());
        true
    }

    /// Notes a use of the session with cookie hash `hash`, in the background.
    pub fn session_used(&self, store: &Arc<dyn Store>, hash: &[u8; 32], now: Timestamp, address: Option<IpAddr>) {
        let id = session_id(hash);
        if !self.due(format!("s{id}")) {
            return;
        }
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = touch_session(&*store, &id, now, address) {
                tracing::debug!(%error, "could not note a session's use");
            }
        });
    }

    /// Notes a use of token `id` of `user`, in the background.
    pub fn token_used(&self, store: &Arc<dyn Store>, user: UserId, id: i64, now: Timestamp, address: Option<IpAddr>) {
        if !self.due(format!("t{id}")) {
            return;
        }
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let seen = TokenSeen { last_used: now.0, address: address.map(|a| a.to_string()) };
            let result = serde_json::to_string(&seen).map_err(corrupt).and_then(|body| {
                store.write_records(&[RecordWrite::Put(Record {
                    kind: TOKEN_KIND.to_owned(),
                    key: id.to_string(),
                    user: Some(user),
                    at: now,
                    body,
                })])
            });
            if let Err(error) = result {
                tracing::debug!(%error, "could not note a token's use");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;

    #[test]
    fn sessions_are_listed_while_they_live_and_ended_by_id() {
        let store = SqliteStore::open_in_memory().unwrap();
        let ann = store.create_user("ann", "h", false).unwrap().id;
        let bob = store.create_user("bob", "h", false).unwrap().id;
        let (a, b, gone) = (sha256(b"a"), sha256(b"b"), sha256(b"gone"));
        for (hash, at) in [(&a, 10), (&b, 20), (&gone, 30)] {
            store.create_session(hash, ann, "csrf", Timestamp(1_000)).unwrap();
            session_started(&store, ann, hash, Timestamp(1_000), Timestamp(at), "127.0.0.1".parse().ok(), "password")
                .unwrap();
        }
        store.delete_session(&gone).unwrap();
        let listed = sessions(&store, ann, Timestamp(100)).unwrap();
        assert_eq!(listed.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), [session_id(&b), session_id(&a)]);
        assert_eq!(listed[0].1.address.as_deref(), Some("127.0.0.1"));
        assert!(store.record(SESSION_KIND, &session_id(&gone)).unwrap().is_none(), "ended sessions are forgotten");
        assert!(!end_session(&store, bob, &session_id(&a)).unwrap(), "not bob's");
        assert!(end_session(&store, ann, &session_id(&a)).unwrap());
        assert!(store.session_by_hash(&a, Timestamp(100)).unwrap().is_none());
        assert!(sessions(&store, ann, Timestamp(2_000)).unwrap().is_empty(), "expired");
    }

    #[test]
    fn uses_are_written_at_most_once_a_minute() {
        let seen = Seen::default();
        assert!(seen.due("t1".into()));
        assert!(!seen.due("t1".into()));
        assert!(seen.due("t2".into()));
        assert_eq!(decode_hash(&hex(&sha256(b"x"))), Some(sha256(b"x")));
        assert_eq!(decode_hash("zz"), None);
    }
}
