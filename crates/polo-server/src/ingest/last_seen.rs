//! The newest fix of each device, kept in memory.
//!
//! Every OwnTracks POST answers with the last location of the caller's
//! devices. Reading that from the store means decoding the newest chunk per
//! device — tens of microseconds each, on every request, which at 20,000
//! requests per second would cost more than the writes themselves. Live
//! ingest already knows each new fix, so it updates this cache as it stores;
//! a device not seen since start-up is read from the store once.
//!
//! The reply also lists the user's devices, and those of the users who
//! granted the user their location (friends). Both lists are cached per
//! user for [`DEVICE_LIST_TTL`] and dropped at once when live ingest or the
//! API creates a device ([`LastSeen::forget_devices`]) or a grant changes
//! ([`LastSeen::forget_grants`]).
//!
//! Points stored by another process (a CLI import running beside the
//! server) only show here once the device sends a newer live point, or
//! after a restart; imports are history, so "last location" rarely moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Fix, UserId};
use polo_store::{Device, DeviceCard, Store, StoreResult};

/// How long a user's device list is reused before it is read again (devices
/// created by another process show up after at most this long).
pub const DEVICE_LIST_TTL: Duration = Duration::from_secs(5);

/// The newest known fix per device (`None`: the device has no points), and
/// each user's device list.
#[derive(Debug, Default)]
pub struct LastSeen {
    fixes: Mutex<HashMap<DeviceId, Option<Fix>>>,
    devices: Expiring<UserId, Arc<[Device]>>,
    /// OwnTracks encryption passphrases (`None`: clear text), same TTL.
    keys: Expiring<DeviceId, Option<Arc<str>>>,
    /// Device cards for the friends reply, same TTL.
    cards: Expiring<DeviceId, Option<Arc<DeviceCard>>>,
    /// Per viewer, the users who granted them their location (id and name), same TTL.
    granters: Expiring<UserId, Arc<[(UserId, String)]>>,
}

/// Values remembered for [`DEVICE_LIST_TTL`].
#[derive(Debug)]
struct Expiring<K, V>(Mutex<HashMap<K, (V, Instant)>>);

impl<K, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Expiring<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).filter(|(_, at)| at.elapsed() < DEVICE_LIST_TTL).map(|(value, _)| value.clone())
    }

    fn insert(&self, key: K, value: V) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key, (value, Instant::now()));
    }

    /// The fresh value, or `load`'s, which is then remembered.
    fn get_or_load(&self, key: K, load: impl FnOnce() -> StoreResult<V>) -> StoreResult<V> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let value = load()?;
        self.insert(key, value.clone());
        Ok(value)
    }

    fn remove(&self, key: &K) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl LastSeen {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a stored fix if it is newer than what is known. Devices not
    /// loaded yet are left alone, so the first read still consults the store.
    pub fn observe(&self, device: DeviceId, fix: &Fix) {
        let mut fixes = self.fixes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = fixes.get_mut(&device)
            && slot.as_ref().is_none_or(|known| known.time < fix.time)
        {
            *slot = Some(fix.clone());
        }
    }

    /// The newest fix of `device` if it is in memory (`Some(None)`: known to
    /// have no points); never reads the store.
    #[must_use]
    pub fn cached(&self, device: DeviceId) -> Option<Option<Fix>> {
        self.fixes.lock().unwrap_or_else(PoisonError::into_inner).get(&device).cloned()
    }

    /// The newest fix of `device`, from memory or, the first time, the store.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn get(&self, store: &dyn Store, user: UserId, device: DeviceId) -> StoreResult<Option<Fix>> {
        if let Some(known) = self.fixes.lock().unwrap_or_else(PoisonError::into_inner).get(&device) {
            return Ok(known.clone());
        }
        let loaded = store.last_point(user, device)?.map(|p| p.fix);
        let mut fixes = self.fixes.lock().unwrap_or_else(PoisonError::into_inner);
        // A live write may have landed meanwhile: keep the newer of the two.
        let slot = fixes.entry(device).or_insert_with(|| loaded.clone());
        if let (Some(loaded), Some(known)) = (&loaded, slot.as_ref())
            && loaded.time > known.time
        {
            *slot = Some(loaded.clone());
        }
        Ok(slot.clone())
    }

    /// The user's devices, from memory when read less than
    /// [`DEVICE_LIST_TTL`] ago.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn devices(&self, store: &dyn Store, user: UserId) -> StoreResult<Arc<[Device]>> {
        self.devices.get_or_load(user, || Ok(store.list_devices(user)?.into()))
    }

    /// The user's device list if it is in memory and fresh; never reads the
    /// store, so async code may call it.
    #[must_use]
    pub fn cached_devices(&self, user: UserId) -> Option<Arc<[Device]>> {
        self.devices.get(&user)
    }

    /// The device's OwnTracks encryption passphrase, from memory when read
    /// less than [`DEVICE_LIST_TTL`] ago.
    ///
    /// # Errors
    /// When the store cannot be read, or the device is not the user's.
    pub fn encryption_key(&self, store: &dyn Store, user: UserId, device: DeviceId) -> StoreResult<Option<Arc<str>>> {
        self.keys.get_or_load(device, || Ok(store.device_encryption_key(user, device)?.map(Into::into)))
    }

    /// The passphrase if it is in memory and fresh (`Some(None)`: known to
    /// have none); never reads the store.
    #[must_use]
    pub fn cached_encryption_key(&self, device: DeviceId) -> Option<Option<Arc<str>>> {
        self.keys.get(&device)
    }

    /// Drops the cached passphrase of `device` (it was set or cleared).
    pub fn forget_encryption_key(&self, device: DeviceId) {
        self.keys.remove(&device);
    }

    /// The device's card, from memory when read less than
    /// [`DEVICE_LIST_TTL`] ago.
    ///
    /// # Errors
    /// When the store cannot be read, or the device is not the user's.
    pub fn card(&self, store: &dyn Store, user: UserId, device: DeviceId) -> StoreResult<Option<Arc<DeviceCard>>> {
        self.cards.get_or_load(device, || Ok(store.device_card(user, device)?.map(Arc::new)))
    }

    /// The card if it is in memory and fresh; never reads the store.
    #[must_use]
    pub fn cached_card(&self, device: DeviceId) -> Option<Option<Arc<DeviceCard>>> {
        self.cards.get(&device)
    }

    /// Remembers a card just stored.
    pub fn card_stored(&self, device: DeviceId, card: Option<DeviceCard>) {
        self.cards.insert(device, card.map(Arc::new));
    }

    /// Drops the cached device list of `user` (a device was created).
    pub fn forget_devices(&self, user: UserId) {
        self.devices.remove(&user);
    }

    /// The users who granted `viewer` their location (id and name), from
    /// memory when read less than [`DEVICE_LIST_TTL`] ago.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn granters(&self, store: &dyn Store, viewer: UserId) -> StoreResult<Arc<[(UserId, String)]>> {
        self.granters.get_or_load(viewer, || {
            let mut out = Vec::new();
            for grant in store.location_grants_to(viewer)? {
                if let Some(user) = store.user_by_id(grant.owner)? {
                    out.push((user.id, user.name));
                }
            }
            Ok(out.into())
        })
    }

    /// The granters of `viewer` if in memory and fresh; never reads the store.
    #[must_use]
    pub fn cached_granters(&self, viewer: UserId) -> Option<Arc<[(UserId, String)]>> {
        self.granters.get(&viewer)
    }

    /// Drops every cached grant list (a grant was made or withdrawn).
    pub fn forget_grants(&self) {
        self.granters.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use polo_domain::{Coord, SourceFormat, Timestamp};
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn fix(ms: i64) -> Fix {
        Fix::new(Timestamp(ms), Coord::from_degrees(1.0, 2.0).unwrap(), SourceFormat::Api)
    }

    #[test]
    fn loads_once_then_follows_live_writes() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let user = store.create_user("u", "x", false).unwrap().id;
        let device = store.ensure_device(user, "d").unwrap().id;
        let cache = LastSeen::new();
        cache.observe(device, &fix(5_000_000_000_000)); // not loaded yet: ignored
        assert_eq!(cache.get(store.as_ref(), user, device).unwrap(), None);
        store.insert_points(user, device, &[fix(1_600_000_000_000)]).unwrap();
        // Still the cached answer: the store is read once.
        assert_eq!(cache.get(store.as_ref(), user, device).unwrap(), None);
        cache.observe(device, &fix(1_700_000_000_000));
        cache.observe(device, &fix(1_650_000_000_000)); // older: ignored
        assert_eq!(cache.get(store.as_ref(), user, device).unwrap().unwrap().time, Timestamp(1_700_000_000_000));
    }

    #[test]
    fn device_lists_are_cached_until_forgotten() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let user = store.create_user("u", "x", false).unwrap().id;
        store.ensure_device(user, "a").unwrap();
        let cache = LastSeen::new();
        assert_eq!(cache.devices(store.as_ref(), user).unwrap().len(), 1);
        store.ensure_device(user, "b").unwrap();
        assert_eq!(cache.devices(store.as_ref(), user).unwrap().len(), 1, "served from memory");
        cache.forget_devices(user);
        let names: Vec<String> = cache.devices(store.as_ref(), user).unwrap().iter().map(|d| d.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
