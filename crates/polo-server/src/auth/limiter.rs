//! Exponential back-off after failed authentications, per client address
//! and user name, and per client address; never per user name alone.
//!
//! Guessing passwords (or tokens) online is made slow without locking
//! accounts: the first free failures of a key cost nothing, each one after
//! that blocks the key for twice as long as the one before, from
//! [`Backoff::base`] up to [`Backoff::max`]. A key's record is forgotten
//! [`Backoff::forget_after`] after its last failure.
//!
//! **The keys.** A wrong password counts against the pair (address, user
//! name) ([`Backoff::free_failures`]) and against the address over all names
//! ([`Backoff::address_free_failures`], higher, since several people may
//! share one address). There is no key for a user name alone: then anyone
//! could lock a user out from anywhere, as a failure every few minutes would
//! keep the doubling delay at its cap for good. Someone guessing from
//! another address does not slow the user down; someone guessing from many
//! addresses gets the free failures of each, and IPv6 clients are keyed by
//! their /64, the block one subscriber typically controls.
//!
//! Unknown device tokens count against the address in a table of their own
//! (with the address's allowance): password failures never block a device
//! token, and a device retrying with a revoked token blocks no password.
//!
//! A successful login clears its (address, user) pair, not the address: an
//! attacker holding one account must not be able to reset their address by
//! logging in. Keys are checked before any work is done, so a blocked key
//! costs no Argon2 run. The table is in memory, owned by the
//! [`super::Authenticator`] (no global state) and bounded: when full, stale
//! records are dropped first, then the least recently failed.
//!
//! **Several nodes.** When several `polo serve` nodes share the store
//! ([`Store::is_shared`]), every failure is also counted in the store
//! ([`Store::count_failure`], one atomic upsert), and a check that memory
//! lets through asks the store for the keys' counts, so an attacker spreading
//! guesses over the nodes gets the free failures once, not once per node.
//! A key's blocking is a function of its count and last failure, so every
//! node computes the same wait. The memory table stays in front: a key this
//! node knows to be blocked costs no query. Device tokens are checked against
//! the store only when the token is not a known one (the caller does that, on
//! a token-cache miss), so live ingest with valid tokens costs no query. With
//! one server (SQLite) the memory table is the whole truth and the store is
//! not asked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use polo_domain::Timestamp;
use polo_store::{FailureCount, Store};

/// The back-off policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wrong passwords per (address, user name) before any delay.
    pub free_failures: u32,
    /// Wrong passwords per address, over all user names, before any delay;
    /// also unknown device tokens per address.
    pub address_free_failures: u32,
    /// The first delay; each further failure doubles it.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
    /// The most keys remembered.
    pub max_entries: usize,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::with_free_failures(5)
    }
}

impl Backoff {
    /// The default policy with `free` failures per (address, user name) and
    /// four times as many per address.
    #[must_use]
    pub fn with_free_failures(free: u32) -> Self {
        Self {
            free_failures: free,
            address_free_failures: free.saturating_mul(4),
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            forget_after: Duration::from_secs(900),
            max_entries: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// Wrong passwords from an address, any user name.
    Addr(IpAddr),
    /// Wrong passwords for a user name from an address (`None`: the server
    /// recorded no peer, as in tests without one).
    AddrUser(Option<IpAddr>, String),
    /// Unknown device tokens from an address.
    Tokens(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// The failure table.
pub(crate) struct RateLimiter {
    policy: Backoff,
    records: Mutex<HashMap<Key, Record>>,
    /// What the keys are counted as in the store (`login`, `share`), so
    /// that limiters with different policies keep apart.
    scope: &'static str,
    /// The store that counts failures across nodes, when nodes share it.
    shared: Option<Arc<dyn Store>>,
    /// Failures counted in the store since its stale keys were last pruned.
    since_pruned: AtomicU32,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("policy", &self.policy)
            .field("scope", &self.scope)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Failures counted in a shared store between two prunings of its stale keys.
const PRUNE_EVERY: u32 = 1024;

fn wall_clock() -> Timestamp {
    polo_store::clock::now()
}

/// Longest user name kept as a key (longer ones cannot exist anyway).
const MAX_KEY_NAME: usize = 128;

/// The address a key is made of: IPv4 as is, IPv6 by its /64.
fn key_addr(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::from(seg)
        }
        v4 => v4,
    }
}

fn key_name(user: &str) -> String {
    let mut end = user.len().min(MAX_KEY_NAME);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_owned()
}

fn password_keys(addr: Option<IpAddr>, user: &str) -> impl Iterator<Item = Key> {
    let addr = addr.map(key_addr);
    addr.map(Key::Addr).into_iter().chain(std::iter::once(Key::AddrUser(addr, key_name(user))))
}

fn token_keys(addr: Option<IpAddr>) -> impl Iterator<Item = Key> {
    addr.map(|ip| Key::Tokens(key_addr(ip))).into_iter()
}

impl RateLimiter {
    pub(crate) fn new(policy: Backoff) -> Self {
        Self::scoped(policy, "login")
    }

    /// A limiter whose keys are counted in a shared store as `scope:…`.
    pub(crate) fn scoped(policy: Backoff, scope: &'static str) -> Self {
        Self { policy, records: Mutex::new(HashMap::new()), scope, shared: None, since_pruned: AtomicU32::new(0) }
    }

    /// Counts failures in `store` too when other nodes share it.
    #[must_use]
    pub(crate) fn shared_through(mut self, store: &Arc<dyn Store>) -> Self {
        self.shared = store.is_shared().then(|| Arc::clone(store));
        self
    }

    fn key_text(&self, key: &Key) -> String {
        match key {
            Key::Addr(ip) => format!("{}:addr:{ip}", self.scope),
            Key::AddrUser(ip, name) => {
                format!("{}:user:{}:{name}", self.scope, ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string()))
            }
            Key::Tokens(ip) => format!("{}:token:{ip}", self.scope),
        }
    }

    /// How long a key with `failures` is blocked after its last failure.
    fn delay(&self, key: &Key, failures: u32) -> Option<Duration> {
        let free = self.free_failures(key);
        (failures > free).then(|| {
            let doublings = (failures - free - 1).min(31);
            self.policy.base.saturating_mul(1u32 << doublings).min(self.policy.max)
        })
    }

    /// Takes what the store says of `key` into memory: the wait left, if any.
    fn learn(&self, key: &Key, count: FailureCount, now: Timestamp) -> Option<Duration> {
        let until = count
            .last_failure
            .0
            .saturating_add(i64::try_from(self.delay(key, count.failures)?.as_millis()).unwrap_or(i64::MAX));
        let left = Duration::from_millis(u64::try_from(until.saturating_sub(now.0)).ok().filter(|&ms| ms > 0)?);
        let at = Instant::now();
        let mut records = self.lock();
        let record =
            records.entry(key.clone()).or_insert(Record { failures: 0, last_failure: at, blocked_until: None });
        record.failures = record.failures.max(count.failures);
        record.blocked_until = record.blocked_until.max(Some(at + left));
        Some(left)
    }

    /// For a shared store, the wait the store's counts of `keys` impose.
    async fn check_shared(&self, keys: Vec<Key>) -> Result<(), Duration> {
        let Some(store) = self.shared.clone() else { return Ok(()) };
        let texts: Vec<String> = keys.iter().map(|k| self.key_text(k)).collect();
        let counts = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            store.failure_counts(&refs)
        })
        .await;
        let counts = match counts {
            Ok(Ok(counts)) => counts,
            // The request fails at the store next anyway; memory still holds.
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the shared failure counts");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%error, "reading the shared failure counts failed");
                return Ok(());
            }
        };
        let now = wall_clock();
        let wait = counts
            .into_iter()
            .filter_map(|(text, count)| {
                let key = keys.iter().find(|k| self.key_text(k) == text)?;
                self.learn(key, count, now)
            })
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// For a shared store, counts a failure of `keys` in the store.
    async fn count_shared(&self, keys: Vec<Key>) {
        let Some(store) = self.shared.clone() else { return };
        let now = wall_clock();
        let texts: Vec<String> = keys.iter().map(|k| self.key_text(k)).collect();
        let forget_after = self.policy.forget_after;
        let prune = self.since_pruned.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1;
        let counted = tokio::task::spawn_blocking(move || {
            if prune {
                let before = Timestamp(now.0.saturating_sub(i64::try_from(forget_after.as_millis()).unwrap_or(0)));
                store.forget_failures_before(before)?;
            }
            texts.iter().map(|text| store.count_failure(text, now, forget_after)).collect::<Result<Vec<_>, _>>()
        })
        .await;
        match counted {
            Ok(Ok(counts)) => {
                for (key, count) in keys.iter().zip(counts) {
                    self.learn(key, count, now);
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot count a failure in the shared store"),
            Err(error) => tracing::warn!(%error, "counting a failure in the shared store failed"),
        }
    }

    /// [`Self::check_password`] across every node sharing the store.
    pub(crate) async fn check_password_everywhere(&self, addr: Option<IpAddr>, user: &str) -> Result<(), Duration> {
        self.check_password(addr, user)?;
        self.check_shared(password_keys(addr, user).collect()).await
    }

    /// [`Self::password_failure`], counted for every node sharing the store.
    pub(crate) async fn password_failure_everywhere(&self, addr: Option<IpAddr>, user: &str) {
        self.password_failure(addr, user);
        self.count_shared(password_keys(addr, user).collect()).await;
    }

    /// [`Self::password_success`] for every node sharing the store.
    pub(crate) async fn password_success_everywhere(&self, addr: Option<IpAddr>, user: &str) {
        self.password_success(addr, user);
        let Some(store) = self.shared.clone() else { return };
        let text = self.key_text(&Key::AddrUser(addr.map(key_addr), key_name(user)));
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.clear_failures(&text)).await {
            tracing::warn!(%error, "cannot clear a key's failures in the shared store");
        }
    }

    /// [`Self::check_token`] across every node sharing the store.
    pub(crate) async fn check_token_everywhere(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        self.check_token(addr)?;
        self.check_shared(token_keys(addr).collect()).await
    }

    /// [`Self::token_failure`], counted for every node sharing the store.
    pub(crate) async fn token_failure_everywhere(&self, addr: Option<IpAddr>) {
        self.token_failure(addr);
        self.count_shared(token_keys(addr).collect()).await;
    }

    /// [`Self::check_address`] across every node sharing the store.
    pub(crate) async fn check_address_everywhere(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        self.check_address(addr)?;
        self.check_shared(addr.map(|ip| Key::Addr(key_addr(ip))).into_iter().collect()).await
    }

    /// [`Self::address_failure`], counted for every node sharing the store.
    pub(crate) async fn address_failure_everywhere(&self, addr: Option<IpAddr>) {
        self.address_failure(addr);
        self.count_shared(addr.map(|ip| Key::Addr(key_addr(ip))).into_iter().collect()).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn free_failures(&self, key: &Key) -> u32 {
        match key {
            Key::AddrUser(..) => self.policy.free_failures,
            Key::Addr(_) | Key::Tokens(_) => self.policy.address_free_failures,
        }
    }

    /// `Err(wait)` while the address, or the user name from this address,
    /// is blocked for passwords.
    pub(crate) fn check_password(&self, addr: Option<IpAddr>, user: &str) -> Result<(), Duration> {
        self.check(password_keys(addr, user))
    }

    /// Records a wrong password (or an unknown user name).
    pub(crate) fn password_failure(&self, addr: Option<IpAddr>, user: &str) {
        self.failure(password_keys(addr, user));
    }

    /// A right password clears its (address, user name) pair.
    pub(crate) fn password_success(&self, addr: Option<IpAddr>, user: &str) {
        let pair = Key::AddrUser(addr.map(key_addr), key_name(user));
        self.lock().remove(&pair);
    }

    /// `Err(wait)` while the address is blocked, for failures that name no
    /// user (share links that do not work); they count with the address's allowance.
    pub(crate) fn check_address(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        self.check(addr.map(|ip| Key::Addr(key_addr(ip))).into_iter())
    }

    /// Records a failure that names no user.
    pub(crate) fn address_failure(&self, addr: Option<IpAddr>) {
        self.failure(addr.map(|ip| Key::Addr(key_addr(ip))).into_iter());
    }

    /// `Err(wait)` while the address is blocked for device tokens.
    pub(crate) fn check_token(&self, addr: Option<IpAddr>) -> Result<(), Duration> {
        self.check(token_keys(addr))
    }

    /// Records an unknown or revoked device token.
    pub(crate) fn token_failure(&self, addr: Option<IpAddr>) {
        self.failure(token_keys(addr));
    }

    fn check(&self, keys: impl Iterator<Item = Key>) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self.lock();
        let wait = keys
            .filter_map(|k| records.get(&k).and_then(|r| r.blocked_until))
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max();
        wait.map_or(Ok(()), Err)
    }

    fn failure(&self, keys: impl Iterator<Item = Key>) {
        let now = Instant::now();
        let p = self.policy;
        let mut records = self.lock();
        for key in keys {
            let free = self.free_failures(&key);
            if !records.contains_key(&key) && records.len() >= p.max_entries {
                records.retain(|_, r| {
                    now.duration_since(r.last_failure) < p.forget_after || r.blocked_until.is_some_and(|u| u > now)
                });
                if records.len() >= p.max_entries {
                    let oldest = records.iter().min_by_key(|(_, r)| r.last_failure).map(|(k, _)| k.clone());
                    if let Some(oldest) = oldest {
                        records.remove(&oldest);
                    }
                }
            }
            let record = records.entry(key).or_insert(Record { failures: 0, last_failure: now, blocked_until: None });
            if now.duration_since(record.last_failure) >= p.forget_after {
                *record = Record { failures: 0, last_failure: now, blocked_until: None };
            }
            record.failures = record.failures.saturating_add(1);
            record.last_failure = now;
            if record.failures > free {
                let doublings = (record.failures - free - 1).min(31);
                let delay = p.base.saturating_mul(1u32 << doublings).min(p.max);
                record.blocked_until = Some(now + delay);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            free_failures: 2,
            address_free_failures: 4,
            base: Duration::from_secs(1),
            max: Duration::from_secs(4),
            ..Backoff::default()
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn wait_secs(result: Result<(), Duration>) -> Option<u64> {
        result.err().map(|d| d.as_secs_f64().ceil() as u64)
    }

    #[test]
    fn free_failures_then_doubling_up_to_the_cap() {
        let limiter = RateLimiter::new(policy());
        let attacker = ip("192.0.2.1");
        let mut waits = Vec::new();
        for _ in 0..6 {
            limiter.password_failure(attacker, "alice");
            waits.push(wait_secs(limiter.check_password(attacker, "alice")));
        }
        assert_eq!(waits, vec![None, None, Some(1), Some(2), Some(4), Some(4)]);
    }

    #[test]
    fn a_user_is_never_blocked_by_someone_elses_address() {
        let limiter = RateLimiter::new(policy());
        let (attacker, alice_home) = (ip("192.0.2.1"), ip("198.51.100.7"));
        for _ in 0..12 {
            limiter.password_failure(attacker, "alice");
        }
        assert!(limiter.check_password(attacker, "alice").is_err(), "the pair is blocked");
        assert!(limiter.check_password(alice_home, "alice").is_ok(), "alice elsewhere is not");
        assert!(limiter.check_token(attacker).is_ok(), "password failures never block device tokens");
        // The attacker's address is blocked for every name once over its own allowance.
        assert!(limiter.check_password(attacker, "bob").is_err());
        assert!(limiter.check_password(ip("192.0.2.2"), "bob").is_ok());
        // A right password clears the pair, not the address.
        limiter.password_success(attacker, "alice");
        assert!(limiter.check_password(attacker, "alice").is_err(), "the address still is blocked");
    }

    #[test]
    fn spraying_names_from_one_address_hits_the_address_allowance() {
        let limiter = RateLimiter::new(policy());
        let attacker = ip("192.0.2.1");
        for i in 0..4 {
            limiter.password_failure(attacker, &format!("user{i}"));
            assert!(limiter.check_password(attacker, "someone").is_ok(), "failure {i} is free");
        }
        limiter.password_failure(attacker, "user4");
        assert!(limiter.check_password(attacker, "someone").is_err());
        // Each name was tried once: from another address all are fine.
        assert!(limiter.check_password(ip("192.0.2.2"), "user0").is_ok());
    }

    #[test]
    fn unknown_tokens_count_apart_from_passwords() {
        let limiter = RateLimiter::new(policy());
        let device = ip("192.0.2.1");
        for _ in 0..5 {
            limiter.token_failure(device);
        }
        assert!(limiter.check_token(device).is_err());
        assert!(limiter.check_password(device, "alice").is_ok(), "a stale token blocks no password");
        assert!(limiter.check_token(ip("192.0.2.2")).is_ok());
        assert!(limiter.check_token(None).is_ok(), "no address, no token key");
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_the_table_is_bounded() {
        let limiter = RateLimiter::new(Backoff { max_entries: 100, ..policy() });
        for i in 0..3 {
            limiter.password_failure(ip(&format!("2001:db8::{i}")), "alice");
        }
        assert!(limiter.check_password(ip("2001:db8::ffff"), "alice").is_err());
        assert!(limiter.check_password(ip("2001:db8:0:1::1"), "alice").is_ok());
        for i in 0..1_000 {
            limiter.password_failure(None, &format!("user{i}"));
        }
        assert!(limiter.len() <= 100);
    }
}
