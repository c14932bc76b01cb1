//! Recently resolved device tokens, kept in memory for a few seconds.
//!
//! A phone sends one request per point, each carrying its token. Looking the
//! token up in the store costs a blocking-pool hand-off and a SQLite read per
//! request, which under live ingest was more CPU than storing the point.
//! Successful lookups are therefore remembered for [`TOKEN_CACHE_TTL`],
//! keyed by the token's SHA-256 (the token itself is never kept).
//!
//! A token revoked through the server's API is forgotten at once
//! ([`TokenCache::clear`]); one revoked by another process (the CLI) stops
//! working within the TTL. Unknown tokens are never cached, so a token
//! created a moment ago works immediately and guesses always reach the
//! store and the rate limiter.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use polo_store::{Token, User};

/// How long a resolved token is trusted without asking the store again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Tokens remembered at most; the map is emptied of expired entries, then
/// wholly, when it is full. It must hold every token used within the TTL:
/// the exposure check's status reads (`GET /api/v1/exposure/status`) come
/// from very many phones, each with its own token, and a token that misses
/// costs a store read on the blocking pool (3× the CPU of the whole answer,
/// measured by `polo-bench exposure-status` with 20,000 people against a
/// cache of 4,096). 65,536 tokens (about 0.5 kB each with their user, some
/// 32 MB at most) cover 13,000 distinct tokens a second; the map only grows
/// that large under such a load.
const TOKEN_CACHE_MAX: usize = 65_536;

#[derive(Default)]
pub(super) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], (Token, User, Instant)>>,
}

impl TokenCache {
    pub(super) fn get(&self, hash: &[u8; 32]) -> Option<(Token, User)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (token, user, at) = entries.get(hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| (token.clone(), user.clone()))
    }

    pub(super) fn insert(&self, hash: [u8; 32], token: Token, user: User) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= TOKEN_CACHE_MAX {
            entries.retain(|_, (_, _, at)| at.elapsed() < TOKEN_CACHE_TTL);
            if entries.len() >= TOKEN_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (token, user, Instant::now()));
    }

    /// Forgets every token: after a revocation or a password change.
    pub(super) fn clear(&self) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{DeviceId, Timestamp, UserId};
    use polo_store::{Device, TokenScopes};

    use super::*;

    fn device() -> Token {
        Token {
            id: 1,
            user: UserId(1),
            device: Device { id: DeviceId(1), user: UserId(1), name: "phone".into() },
            label: String::new(),
            created: Timestamp(0),
            last_used: None,
            scopes: TokenScopes::NONE,
            created_by: None,
        }
    }

    fn user() -> User {
        User { id: UserId(1), name: "ada".into(), password_hash: String::new(), is_admin: false, created: Timestamp(0) }
    }

    #[test]
    fn remembers_until_cleared() {
        let cache = TokenCache::default();
        assert!(cache.get(&[1; 32]).is_none());
        cache.insert([1; 32], device(), user());
        assert_eq!(cache.get(&[1; 32]).map(|(t, u)| (t.device.name, u.name)), Some(("phone".into(), "ada".into())));
        assert!(cache.get(&[2; 32]).is_none());
        cache.clear();
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn stays_bounded() {
        let cache = TokenCache::default();
        for i in 0..=TOKEN_CACHE_MAX {
            let mut hash = [0; 32];
            hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(hash, device(), user());
        }
        assert!(cache.entries.lock().unwrap().len() <= TOKEN_CACHE_MAX);
    }
}
