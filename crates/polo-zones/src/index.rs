//! The spatial index over every zone of the instance.
//!
//! A fix only needs the zones whose outline could hold it. An R-tree
//! (`rstar`, already used for place clustering) over the zones' bounding
//! boxes answers that in a few hundred nanoseconds for 10,000 zones, where
//! testing each zone would take tens of microseconds. The index is rebuilt
//! whole when a zone changes (bulk loading 10,000 boxes takes milliseconds),
//! so readers never see half an update.
//!
//! A box is the zone's own, not grown by accuracy or exit buffer: a fix
//! whose centre lies outside the box cannot have its accuracy circle inside
//! the zone, so for a device that is outside the zone it changes nothing.
//! Zones a device is in (or entering) are evaluated through its states
//! instead ([`crate::evaluate`]), whatever the index says. Boxes across the
//! antimeridian are inserted twice, once on each side.

use std::collections::{HashMap, HashSet};

use polo_domain::UserId;
use rstar::{AABB, RTree, RTreeObject};

use crate::zone::Zone;

struct Entry {
    envelope: AABB<[f64; 2]>,
    slot: u32,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// Every zone of the instance, by position and by id.
pub struct ZoneIndex {
    tree: RTree<Entry>,
    zones: Vec<Zone>,
    by_id: HashMap<i64, u32>,
    users: HashSet<UserId>,
    /// A group's zone: the members whose devices it is evaluated for
    /// (instead of its maker's alone).
    audiences: HashMap<i64, HashSet<UserId>>,
}

impl std::fmt::Debug for ZoneIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneIndex").field("zones", &self.zones.len()).finish_non_exhaustive()
    }
}

impl Default for ZoneIndex {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl ZoneIndex {
    /// Indexes `zones`, each evaluated for its owner's devices.
    #[must_use]
    pub fn new(zones: Vec<Zone>) -> Self {
        Self::with_audiences(zones, HashMap::new())
    }

    /// Indexes `zones`; a zone with an entry in `audiences` (a group's zone)
    /// is evaluated for the devices of those users instead of its owner's.
    #[must_use]
    pub fn with_audiences(zones: Vec<Zone>, audiences: HashMap<i64, HashSet<UserId>>) -> Self {
        let mut entries = Vec::with_capacity(zones.len());
        let mut by_id = HashMap::with_capacity(zones.len());
        for (slot, zone) in zones.iter().enumerate() {
            let slot = u32::try_from(slot).expect("fewer than 4 billion zones");
            by_id.insert(zone.id, slot);
            let (s, w, n, e) = zone.spec.shape.bbox(0.0);
            let mut add = |w: f64, e: f64| entries.push(Entry { envelope: AABB::from_corners([w, s], [e, n]), slot });
            add(w, e);
            if w < -180.0 {
                add(w + 360.0, e + 360.0);
            }
            if e > 180.0 {
                add(w - 360.0, e - 360.0);
            }
        }
        let users = zones
            .iter()
            .filter(|z| !audiences.contains_key(&z.id))
            .map(|z| z.user)
            .chain(audiences.values().flatten().copied())
            .collect();
        Self { tree: RTree::bulk_load(entries), zones, by_id, users, audiences }
    }

    /// How many zones.
    #[must_use]
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The zone with `id`.
    #[must_use]
    pub fn get(&self, id: i64) -> Option<&Zone> {
        self.by_id.get(&id).map(|&slot| &self.zones[slot as usize])
    }

    /// Whether `user` has any zone (most users have none, and their fixes
    /// then skip the index).
    #[must_use]
    pub fn has_user(&self, user: UserId) -> bool {
        self.users.contains(&user)
    }

    /// Whether `user`'s devices are evaluated against `zone`: their own
    /// zone, or a zone of a group they are in.
    #[must_use]
    pub fn applies_to(&self, zone: &Zone, user: UserId) -> bool {
        match self.audiences.get(&zone.id) {
            Some(members) => members.contains(&user),
            None => zone.user == user,
        }
    }

    /// The zones `user`'s devices are evaluated against whose bounding box
    /// holds `[lat, lon]`.
    pub fn candidates(&self, user: UserId, lat: f64, lon: f64) -> impl Iterator<Item = &Zone> {
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
            .map(|e| &self.zones[e.slot as usize])
            .filter(move |z| self.applies_to(z, user))
    }

    /// Every zone.
    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Shape;
    use crate::zone::ZoneSpec;

    fn circle(id: i64, user: i64, lat: f64, lon: f64) -> Zone {
        let spec = ZoneSpec {
            origin: None,
            name: format!("z{id}"),
            shape: Shape::Circle { center: [lat, lon], radius_m: 100.0 },
            rules: crate::Rules::default(),
        };
        Zone { id, user: UserId(user), spec }
    }

    #[test]
    fn candidates_are_the_users_zones_whose_box_holds_the_fix() {
        let index = ZoneIndex::new(vec![
            circle(1, 1, 52.5, 13.4),
            circle(2, 2, 52.5, 13.4),
            circle(3, 1, 48.1, 11.6),
            circle(4, 1, 0.0, 179.9995),
        ]);
        let ids = |lat, lon| index.candidates(UserId(1), lat, lon).map(|z| z.id).collect::<Vec<_>>();
        assert_eq!(ids(52.5, 13.4), [1]);
        assert_eq!(ids(48.1, 11.6), [3]);
        assert!(ids(50.0, 10.0).is_empty());
        assert_eq!(ids(0.0, -179.9998), [4], "across the antimeridian");
        assert_eq!(ids(0.0, 179.9995), [4]);
        assert_eq!(index.get(3).map(|z| z.user), Some(UserId(1)));
        assert!(index.has_user(UserId(2)) && !index.has_user(UserId(3)));
    }

    #[test]
    fn a_group_zone_is_a_candidate_for_its_members_only() {
        let audiences = HashMap::from([(2, HashSet::from([UserId(3), UserId(4)]))]);
        let index = ZoneIndex::with_audiences(vec![circle(1, 1, 52.5, 13.4), circle(2, 1, 52.5, 13.4)], audiences);
        let ids = |user| index.candidates(UserId(user), 52.5, 13.4).map(|z| z.id).collect::<Vec<_>>();
        assert_eq!(ids(1), [1], "the maker left the group: only their own zone");
        assert_eq!(ids(3), [2]);
        assert_eq!(ids(4), [2]);
        assert!(ids(5).is_empty());
        assert!(index.has_user(UserId(3)) && index.has_user(UserId(1)) && !index.has_user(UserId(5)));
    }
}
