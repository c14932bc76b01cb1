//! The read path's cache: each user's status answer, ready to send.
//!
//! `GET /api/v1/exposure/status` is the heavy read of the issue (very many
//! people showing their code at a door), and its answer only changes when
//! the batch or a decision writes the user's row. Reading the row from the
//! store costs a hop to the blocking pool, a query and a JSON decode per
//! request; the cache keeps the answer's bytes and its `ETag` per user
//! instead, so a hit is a map lookup on the request's own thread.
//!
//! **Staying right.** Every write of a status row goes through
//! `polo_exposure` (the batch, a decision), which reports whose rows it
//! wrote; the worker and the decision route then [`StatusCache::forget`]
//! those users. On a store only this process serves (SQLite) that is every
//! write, so entries live until forgotten. When other nodes share the store
//! (PostgreSQL), a row another node wrote is not seen here, so entries expire
//! after [`SHARED_TTL`]: a change made on another node is served within that
//! time, like the settings each node re-reads every poll. (Exposure records
//! stay out of the change log on purpose, see `docs/exposure.md`, so the log
//! cannot carry them.)
//!
//! A request that misses reads the row and stores the answer only if
//! nothing was forgotten meanwhile (a generation number), so a row read just
//! before a write cannot outlive it. The map holds at most [`MAX_ENTRIES`]
//! answers (about 400 bytes each); when full it starts over, and the next
//! reads fill it again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use polo_domain::UserId;

/// How long an entry is served when other nodes may write the rows.
pub const SHARED_TTL: Duration = super::POLL_INTERVAL;
/// The most answers kept (about 40 MB).
pub const MAX_ENTRIES: usize = 100_000;

/// One user's answer as sent: its `ETag` and its JSON body.
#[derive(Debug)]
pub struct Cached {
    /// The quoted entity tag.
    pub etag: HeaderValue,
    /// The `200` body.
    pub body: Bytes,
}

#[derive(Debug)]
struct Entry {
    answer: Arc<Cached>,
    stored: Instant,
}

/// The answers by user (see the module documentation).
#[derive(Debug)]
pub struct StatusCache {
    entries: RwLock<HashMap<i64, Entry>>,
    /// Bumped by every [`StatusCache::forget`].
    generation: AtomicU64,
    /// `None`: entries live until forgotten.
    ttl: Option<Duration>,
}

impl StatusCache {
    /// A cache whose entries expire after `ttl` (`None`: only when forgotten).
    #[must_use]
    pub fn new(ttl: Option<Duration>) -> Self {
        Self { entries: RwLock::new(HashMap::new()), generation: AtomicU64::new(0), ttl }
    }

    /// The generation to hand back to [`StatusCache::insert`] after a miss.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `user`'s answer, while it is fresh.
    #[must_use]
    pub fn get(&self, user: UserId) -> Option<Arc<Cached>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(&user.0)?;
        if self.ttl.is_some_and(|ttl| entry.stored.elapsed() >= ttl) {
            return None;
        }
        Some(entry.answer.clone())
    }

    /// Keeps `user`'s answer, read from the store at `generation`, unless
    /// something was forgotten since.
    pub fn insert(&self, user: UserId, answer: Arc<Cached>, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&user.0) {
            entries.clear();
        }
        entries.insert(user.0, Entry { answer, stored: Instant::now() });
    }

    /// Drops the answers of `users`, whose rows were just written.
    pub fn forget(&self, users: &[UserId]) {
        if users.is_empty() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        for user in users {
            entries.remove(&user.0);
        }
    }

    /// How many answers are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(tag: &str) -> Arc<Cached> {
        Arc::new(Cached { etag: HeaderValue::from_str(tag).unwrap(), body: Bytes::from_static(b"{}") })
    }

    #[test]
    fn an_answer_is_served_until_its_user_is_forgotten() {
        let cache = StatusCache::new(None);
        let seen = cache.generation();
        cache.insert(UserId(1), answer("\"1-10\""), seen);
        cache.insert(UserId(2), answer("\"2-10\""), seen);
        assert_eq!(cache.get(UserId(1)).unwrap().etag, "\"1-10\"");
        cache.forget(&[UserId(1)]);
        assert!(cache.get(UserId(1)).is_none());
        assert_eq!(cache.get(UserId(2)).unwrap().etag, "\"2-10\"", "only the written rows go");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_row_read_before_a_write_is_not_kept_after_it() {
        let cache = StatusCache::new(None);
        // A request misses and reads the old row …
        let seen = cache.generation();
        // … the batch writes a new one and forgets the user …
        cache.forget(&[UserId(7)]);
        // … and the request's old answer is not kept.
        cache.insert(UserId(7), answer("\"7-1\""), seen);
        assert!(cache.get(UserId(7)).is_none());
        cache.insert(UserId(7), answer("\"7-2\""), cache.generation());
        assert_eq!(cache.get(UserId(7)).unwrap().etag, "\"7-2\"");
    }

    #[test]
    fn on_a_shared_store_answers_expire() {
        let cache = StatusCache::new(Some(Duration::ZERO));
        cache.insert(UserId(1), answer("\"1-1\""), cache.generation());
        assert!(cache.get(UserId(1)).is_none(), "another node may have written the row");
        let cache = StatusCache::new(Some(Duration::from_secs(60)));
        cache.insert(UserId(1), answer("\"1-1\""), cache.generation());
        assert!(cache.get(UserId(1)).is_some());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = StatusCache::new(None);
        let seen = cache.generation();
        for user in 0..MAX_ENTRIES {
            cache.insert(UserId(i64::try_from(user).unwrap()), answer("\"x\""), seen);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.insert(UserId(-1), answer("\"y\""), seen);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(UserId(-1)).is_some());
    }
}
