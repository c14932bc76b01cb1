//! Places: visits clustered into places whose ids survive recomputation,
//! and the user's renames and merges of them.
//!
//! A place row is computed (where it was first found, its first visit, its
//! locality); a place edit is the user's (a name, a merge); a place address
//! is the street-level name the server's online geocoder found for it
//! ([`set_address`]). They are separate kinds so a recomputation never
//! overwrites an edit or an address. New visits
//! are clustered (DBSCAN, `polo_timeline::cluster_places`) and each cluster
//! is matched to a known place (`match_places`), where a place merged into
//! another contributes its own anchor under the surviving id: a merge keeps
//! attracting the visits of both originals.
//!
//! A place the user has not named is called after the zone that holds it
//! (`polo_zones::naming`): their own "Gym", or their family group's
//! "Grandma's", which is how a group shares places. The user's own name
//! still wins, and the zone's name is looked up when the book is read, so a
//! zone drawn, renamed or deleted names the past visits at once.

use std::collections::{BTreeMap, HashMap};

use polo_domain::{Coord, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope, Store};
use polo_timeline::{KnownPlace, PlaceParams, cluster_places, match_places};
use polo_zones::ZoneSpec;
use polo_zones::naming::{NamingZone, ZoneNames};

use crate::kinds::{PLACE, PLACE_ADDRESS, PLACE_EDIT};
use crate::rows::{Locality, PlaceAddress, PlaceEdit, PlaceRow, StayRow, decode, encode};
use crate::{DerivedError, DerivedResult};

/// Resolves coordinates to a locality (the server plugs in the offline
/// geocoder; tests a table).
pub trait Locator: Send + Sync {
    /// Country, region and town of `coord`.
    fn locate(&self, coord: Coord) -> Locality;
}

/// A user's places, edits and street names, as stored.
#[derive(Debug, Clone, Default)]
pub struct PlaceBook {
    /// Computed places by id.
    pub places: BTreeMap<i64, PlaceRow>,
    /// Edits by place id.
    pub edits: BTreeMap<i64, PlaceEdit>,
    /// The online geocoder's answers by place id.
    pub addresses: BTreeMap<i64, PlaceAddress>,
    /// The zones the user sees (theirs and their groups'), which name the
    /// places they hold.
    pub zones: ZoneNames,
}

impl PlaceBook {
    /// Reads a user's places, edits and street names.
    ///
    /// # Errors
    /// Store failures and damaged rows.
    pub fn load(store: &dyn Store, user: UserId) -> DerivedResult<Self> {
        let mut book = Self::default();
        for row in store.derived_range(user, &DerivedRange::all(PLACE, DerivedScope::User))? {
            book.places.insert(row.key, decode(&row)?);
        }
        for row in store.derived_range(user, &DerivedRange::all(PLACE_EDIT, DerivedScope::User))? {
            book.edits.insert(row.key, decode(&row)?);
        }
        for row in store.derived_range(user, &DerivedRange::all(PLACE_ADDRESS, DerivedScope::User))? {
            book.addresses.insert(row.key, decode(&row)?);
        }
        let groups = store.groups_of(user)?;
        let zones = polo_store::zones::visible_zones(store, user, &groups)?;
        // A zone whose body does not decode names nothing; the zones API
        // reports it.
        book.zones = ZoneNames::new(
            zones.into_iter().filter_map(|z| Some((z.id, z.group, serde_json::from_str::<ZoneSpec>(&z.body).ok()?))),
        );
        Ok(book)
    }

    /// The place `id` stands for after merges (itself when not merged).
    #[must_use]
    pub fn resolve(&self, mut id: i64) -> i64 {
        // Merge chains are short and acyclic (merge refuses cycles); the
        // bound only guards against a damaged store.
        for _ in 0..64 {
            match self.edits.get(&id).and_then(|e| e.merged_into) {
                Some(next) => id = next,
                None => break,
            }
        }
        id
    }

    /// The user's name for a place, if any.
    #[must_use]
    pub fn name(&self, id: i64) -> Option<&str> {
        self.edits.get(&id).and_then(|e| e.name.as_deref())
    }

    /// The zone (the user's or a group's) that holds place `id`'s anchor.
    #[must_use]
    pub fn zone(&self, id: i64) -> Option<&NamingZone> {
        let place = self.places.get(&id)?;
        self.zones.at([place.anchor().lat(), place.anchor().lon()])
    }

    /// The name a place goes by: the user's, else its zone's.
    #[must_use]
    pub fn given_name(&self, id: i64) -> Option<&str> {
        self.name(id).or_else(|| self.zone(id).map(|z| z.name.as_str()))
    }

    /// The street-level name of place `id`, when the online geocoder found
    /// one for its anchor.
    #[must_use]
    pub fn address(&self, id: i64) -> Option<&str> {
        let place = self.places.get(&id)?;
        self.addresses.get(&id).filter(|a| a.describes(place)).and_then(|a| a.address.as_deref())
    }

    /// The name to show place `id` with ([`crate::naming::best_name`] of
    /// its [`Self::given_name`]).
    #[must_use]
    pub fn title(&self, id: i64) -> Option<String> {
        let locality = self.places.get(&id).map(|p| &p.locality);
        crate::naming::best_name(self.given_name(id), self.address(id), locality)
    }

    /// The places (not merged into another) that `provider` has not
    /// answered for yet, by id, with the position to ask about: those
    /// without an address row, and those whose row is about another
    /// position or from another provider.
    #[must_use]
    pub fn without_address(&self, provider: &str) -> Vec<(i64, Coord)> {
        self.places
            .iter()
            .filter(|&(&id, _)| self.resolve(id) == id)
            .filter(|&(id, place)| !self.addresses.get(id).is_some_and(|a| a.answers(place, provider)))
            .map(|(&id, place)| (id, place.anchor()))
            .collect()
    }

    fn next_id(&self) -> i64 {
        self.places.keys().next_back().map_or(1, |last| last + 1)
    }

    /// Gives every visit among `stays` a place, creating places for new
    /// clusters; returns the place rows to store (new ones, and known ones
    /// whose first visit moved earlier).
    ///
    /// # Errors
    /// Invalid place parameters.
    pub fn assign(
        &mut self,
        stays: &mut [StayRow],
        params: &PlaceParams,
        locator: Option<&dyn Locator>,
    ) -> DerivedResult<Vec<(i64, PlaceRow)>> {
        let visits: Vec<usize> = (0..stays.len()).filter(|&i| stays[i].visit).collect();
        if visits.is_empty() {
            return Ok(Vec::new());
        }
        let positions: Vec<Coord> = visits.iter().map(|&i| stays[i].centroid()).collect();
        let clustering = cluster_places(&positions, params)?;
        let known: Vec<KnownPlace<i64>> =
            self.places.iter().map(|(&id, row)| KnownPlace { id: self.resolve(id), anchor: row.anchor() }).collect();
        let matched = match_places(&known, &clustering.clusters, &positions, params.epsilon_m)?;
        let mut changed: HashMap<i64, PlaceRow> = HashMap::new();
        for (cluster, found) in clustering.clusters.iter().zip(matched) {
            let first = cluster.members.iter().map(|&m| &stays[visits[m]]).min_by_key(|stay| stay.start);
            let (first_visit, first_visit_offset) = first.map_or((i64::MAX, None), |stay| (stay.start, stay.offset));
            let id = match found {
                Some(id) => {
                    // Earlier, or the same visit with another offset (rows
                    // computed before local time came from the zones).
                    let moved = |p: &&mut PlaceRow| {
                        first_visit < p.first_visit
                            || (first_visit == p.first_visit && first_visit_offset != p.first_visit_offset)
                    };
                    if let Some(place) = self.places.get_mut(&id).filter(moved) {
                        place.first_visit = first_visit;
                        place.first_visit_offset = first_visit_offset;
                        changed.insert(id, place.clone());
                    }
                    id
                }
                None => {
                    let id = self.next_id();
                    let place = PlaceRow {
                        lat_e7: cluster.centroid.lat_e7,
                        lon_e7: cluster.centroid.lon_e7,
                        first_visit,
                        first_visit_offset,
                        locality: locator.map(|l| l.locate(cluster.centroid)).unwrap_or_default(),
                    };
                    self.places.insert(id, place.clone());
                    changed.insert(id, place);
                    id
                }
            };
            for &member in &cluster.members {
                stays[visits[member]].place = Some(id);
            }
        }
        let mut changed: Vec<_> = changed.into_iter().collect();
        changed.sort_by_key(|&(id, _)| id);
        Ok(changed)
    }
}

/// The rows that store `places`.
pub(crate) fn place_rows(places: Vec<(i64, PlaceRow)>) -> Vec<DerivedRow> {
    places.into_iter().map(|(id, place)| encode(PLACE, DerivedScope::User, id, &place)).collect()
}

/// Longest place name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Names (or, with `None`, un-names) place `id`.
///
/// # Errors
/// [`DerivedError::Invalid`] for an unknown place or a bad name; store failures.
pub fn rename(store: &dyn Store, user: UserId, id: i64, name: Option<&str>) -> DerivedResult<()> {
    let book = PlaceBook::load(store, user)?;
    if !book.places.contains_key(&id) {
        return Err(DerivedError::Invalid(format!("you have no place {id}")));
    }
    let name = name.map(str::trim);
    if let Some(name) = name
        && (name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control))
    {
        return Err(DerivedError::Invalid(format!(
            "a place name must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    let mut edit = book.edits.get(&id).cloned().unwrap_or_default();
    edit.name = name.map(str::to_owned);
    write_edit(store, user, id, &edit)
}

/// Merges place `from` into place `into`: `from`'s visits count as
/// `into`'s from now on, in every view and every later recomputation.
///
/// # Errors
/// [`DerivedError::Invalid`] for unknown places, a place merged into itself
/// or into a place already merged into it; store failures.
pub fn merge(store: &dyn Store, user: UserId, from: i64, into: i64) -> DerivedResult<()> {
    let book = PlaceBook::load(store, user)?;
    for id in [from, into] {
        if !book.places.contains_key(&id) {
            return Err(DerivedError::Invalid(format!("you have no place {id}")));
        }
    }
    let (from_root, into_root) = (book.resolve(from), book.resolve(into));
    if from_root == into_root {
        return Err(DerivedError::Invalid(format!("places {from} and {into} are already one place")));
    }
    let mut edit = book.edits.get(&from_root).cloned().unwrap_or_default();
    edit.merged_into = Some(into_root);
    write_edit(store, user, from_root, &edit)
}

/// Stores the online geocoder's answer for place `id` (a name, or "nothing
/// there"). Not an edit: it enters no change log, so the engine is not
/// woken by it, and it is the only writer of its kind, so nothing the
/// engine writes meanwhile is lost.
///
/// # Errors
/// Store failures.
pub fn set_address(store: &dyn Store, user: UserId, id: i64, address: &PlaceAddress) -> DerivedResult<()> {
    let batch = DerivedBatch { delete: vec![], put: vec![encode(PLACE_ADDRESS, DerivedScope::User, id, address)] };
    store.derived_write(user, &batch, false)?;
    Ok(())
}

fn write_edit(store: &dyn Store, user: UserId, id: i64, edit: &PlaceEdit) -> DerivedResult<()> {
    let batch = DerivedBatch { delete: vec![], put: vec![encode(PLACE_EDIT, DerivedScope::User, id, edit)] };
    store.derived_write(user, &batch, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn place(lat_e7: i32, first_visit: i64) -> PlaceRow {
        PlaceRow { lat_e7, lon_e7: 85_000_000, first_visit, first_visit_offset: None, locality: Locality::default() }
    }

    fn answer(place: &PlaceRow, address: Option<&str>, provider: &str) -> PlaceAddress {
        PlaceAddress {
            address: address.map(str::to_owned),
            provider: provider.to_owned(),
            resolved_at: 1_700_000_000_000,
            lat_e7: place.lat_e7,
            lon_e7: place.lon_e7,
        }
    }

    fn put_places(store: &dyn Store, user: UserId, places: Vec<(i64, PlaceRow)>) {
        store.derived_write(user, &DerivedBatch { delete: vec![], put: place_rows(places) }, false).unwrap();
    }

    fn circle_zone(name: &str, at: &PlaceRow, radius_m: f64) -> String {
        let anchor = at.anchor();
        format!(
            r#"{{"name":{name:?},"shape":{{"type":"circle","center":[{},{}],"radius_m":{radius_m}}}}}"#,
            anchor.lat(),
            anchor.lon()
        )
    }

    #[test]
    fn a_place_inside_a_zone_takes_its_name_and_a_groups_zone_names_every_members_places() {
        use polo_domain::Timestamp;
        use polo_store::{JoinOutcome, NewInvitation};

        let store = SqliteStore::open_in_memory().unwrap();
        let alice = store.create_user("alice", "x", false).unwrap().id;
        let bob = store.create_user("bob", "x", false).unwrap().id;
        let carol = store.create_user("carol", "x", false).unwrap().id;
        let at = Timestamp(1_700_000_000_000);
        let family = store.create_group("Family", alice, at).unwrap().id;
        let invitation =
            NewInvitation { group: family, created_by: alice, max_uses: 1, expires: Timestamp(at.0 + 60_000) };
        store.create_group_invitation(&invitation, &[5; 32]).unwrap();
        assert!(matches!(store.join_group(&[5; 32], bob, at).unwrap(), JoinOutcome::Joined(_)));

        // Grandma's house, as each of them visited it, and somewhere else.
        let grandma = place(470_000_000, 10);
        let gym = place(471_000_000, 20);
        for user in [alice, bob, carol] {
            put_places(&store, user, vec![(1, grandma.clone()), (2, gym.clone())]);
        }
        store.create_group_zone(alice, family, &circle_zone("Grandma's", &grandma, 80.0), at).unwrap();
        store.create_zone(bob, &circle_zone("Gym", &gym, 50.0), at).unwrap();
        rename(&store, bob, 2, Some("Fitness first")).unwrap();

        let book = PlaceBook::load(&store, alice).unwrap();
        assert_eq!(book.given_name(1), Some("Grandma's"));
        assert_eq!(book.zone(1).and_then(|z| z.group), Some(family));
        assert_eq!(book.name(1), None, "the zone's name is not the user's own");
        assert_eq!(book.zone(2), None, "bob's own zone names nothing of alice's");

        let book = PlaceBook::load(&store, bob).unwrap();
        assert_eq!(book.title(1).as_deref(), Some("Grandma's"), "a member's place too");
        assert_eq!(book.given_name(2), Some("Fitness first"), "the user's own name wins over a zone's");
        assert_eq!(book.zone(2).map(|z| z.name.as_str()), Some("Gym"));

        let book = PlaceBook::load(&store, carol).unwrap();
        assert_eq!(book.given_name(1), None, "not a member: the group's zone names nothing of hers");

        assert!(store.remove_group_member(family, bob).unwrap());
        assert_eq!(PlaceBook::load(&store, bob).unwrap().given_name(1), None, "gone with the membership");
    }

    #[test]
    fn street_names_live_beside_place_rows_and_follow_anchor_provider_and_merges() {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("alice", "x", false).unwrap().id;
        let (a, b, c) = (place(470_000_000, 10), place(471_000_000, 20), place(472_000_000, 30));
        put_places(&store, user, vec![(1, a.clone()), (2, b.clone()), (3, c)]);
        merge(&store, user, 3, 1).unwrap();
        let book = PlaceBook::load(&store, user).unwrap();
        assert_eq!(book.without_address("photon"), [(1, a.anchor()), (2, b.anchor())], "3 is merged away");

        set_address(&store, user, 1, &answer(&a, Some("Bahnhofstrasse 1, Zürich"), "photon")).unwrap();
        set_address(&store, user, 2, &answer(&b, None, "photon")).unwrap();
        let book = PlaceBook::load(&store, user).unwrap();
        assert_eq!(book.address(1), Some("Bahnhofstrasse 1, Zürich"));
        assert_eq!(book.address(2), None);
        assert!(book.without_address("photon").is_empty(), "\"nothing there\" counts as answered");
        assert_eq!(book.without_address("nominatim").len(), 2, "another provider is asked again");

        // The engine rewrites a place row (an earlier first visit): the name stays.
        put_places(&store, user, vec![(1, place(470_000_000, 5))]);
        let book = PlaceBook::load(&store, user).unwrap();
        assert_eq!((book.places[&1].first_visit, book.address(1)), (5, Some("Bahnhofstrasse 1, Zürich")));
        assert!(book.without_address("photon").is_empty());

        // A row about another position (the place was rebuilt elsewhere) is not shown, and is asked again.
        let moved = place(473_000_000, 5);
        put_places(&store, user, vec![(1, moved.clone())]);
        let book = PlaceBook::load(&store, user).unwrap();
        assert_eq!(book.address(1), None);
        assert_eq!(book.without_address("photon"), [(1, moved.anchor())]);
        assert_eq!(book.address(9), None, "no such place");
    }
}
