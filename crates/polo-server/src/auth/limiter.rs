//! Exponential back-off after failed authentications, per client address
//! and per user name.
//!
//! Guessing passwords (or tokens) online is made slow without locking
//! accounts: the first [`Backoff::free_failures`] failures cost nothing, each
//! one after that blocks the key for twice as long as the one before, from
//! [`Backoff::base`] up to [`Backoff::max`]. A key's record is forgotten
//! [`Backoff::forget_after`] after its last failure, and a successful login
//! clears the user name's record (not the address's: an attacker holding one
//! account must not be able to reset their address by logging in).
//!
//! Both keys are checked before any work is done, so a blocked key costs no
//! Argon2 run. IPv6 clients are keyed by their /64, the block one
//! subscriber typically controls. The table is in memory, owned by the
//! [`super::Authenticator`] (no global state) and bounded: when full, stale
//! records are dropped first, then the least recently failed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The back-off policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures per key before any delay.
    pub free_failures: u32,
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
        Self {
            free_failures: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            forget_after: Duration::from_secs(900),
            max_entries: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    User(String),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// The failure table.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    policy: Backoff,
    records: Mutex<HashMap<Key, Record>>,
}

/// Longest user name kept as a key (longer ones cannot exist anyway).
const MAX_KEY_NAME: usize = 128;

fn keys(addr: Option<IpAddr>, user: Option<&str>) -> impl Iterator<Item = Key> {
    let addr = addr.map(|ip| match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut seg = v6.segments();
            seg[4..].fill(0);
            Key::Addr(IpAddr::from(seg))
        }
        v4 => Key::Addr(v4),
    });
    let user = user.map(|u| {
        let mut end = u.len().min(MAX_KEY_NAME);
        while !u.is_char_boundary(end) {
            end -= 1;
        }
        Key::User(u[..end].to_owned())
    });
    addr.into_iter().chain(user)
}

impl RateLimiter {
    pub(crate) fn new(policy: Backoff) -> Self {
        Self { policy, records: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Err(wait)` while the address or the user name is blocked.
    pub(crate) fn check(&self, addr: Option<IpAddr>, user: Option<&str>) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self.lock();
        let wait = keys(addr, user)
            .filter_map(|k| records.get(&k).and_then(|r| r.blocked_until))
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Records a failure for both keys.
    pub(crate) fn failure(&self, addr: Option<IpAddr>, user: Option<&str>) {
        let now = Instant::now();
        let p = self.policy;
        let mut records = self.lock();
        for key in keys(addr, user) {
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
            if record.failures > p.free_failures {
                let doublings = (record.failures - p.free_failures - 1).min(31);
                let delay = p.base.saturating_mul(1u32 << doublings).min(p.max);
                record.blocked_until = Some(now + delay);
            }
        }
    }

    /// A successful authentication clears the user name's record.
    pub(crate) fn success(&self, user: &str) {
        let mut records = self.lock();
        for key in keys(None, Some(user)) {
            records.remove(&key);
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
        Backoff { free_failures: 2, base: Duration::from_secs(1), max: Duration::from_secs(4), ..Backoff::default() }
    }

    #[test]
    fn free_failures_then_doubling_up_to_the_cap() {
        let limiter = RateLimiter::new(policy());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut waits = Vec::new();
        for _ in 0..6 {
            assert!(limiter.check(Some(ip), Some("alice")).is_ok() || !waits.is_empty());
            limiter.failure(Some(ip), Some("alice"));
            waits.push(limiter.check(Some(ip), Some("alice")).err().map(|d| d.as_secs_f64().ceil() as u64));
        }
        assert_eq!(waits, vec![None, None, Some(1), Some(2), Some(4), Some(4)]);
        // Another address is still blocked for this user, another user not from this address.
        assert!(limiter.check(Some("192.0.2.2".parse().unwrap()), Some("alice")).is_err());
        assert!(limiter.check(Some(ip), Some("bob")).is_err());
        assert!(limiter.check(Some("192.0.2.2".parse().unwrap()), Some("bob")).is_ok());
        // Success clears the user, not the address.
        limiter.success("alice");
        assert!(limiter.check(None, Some("alice")).is_ok());
        assert!(limiter.check(Some(ip), None).is_err());
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_the_table_is_bounded() {
        let limiter = RateLimiter::new(Backoff { max_entries: 100, ..policy() });
        for i in 0..3 {
            limiter.failure(Some(format!("2001:db8::{i}").parse().unwrap()), None);
        }
        assert!(limiter.check(Some("2001:db8::ffff".parse().unwrap()), None).is_err());
        assert!(limiter.check(Some("2001:db8:0:1::1".parse().unwrap()), None).is_ok());
        for i in 0..1_000 {
            limiter.failure(None, Some(&format!("user{i}")));
        }
        assert!(limiter.len() <= 100);
    }
}
