//! Places: visits clustered into places whose ids survive recomputation,
//! and the user's renames and merges of them.
//!
//! A place row is computed (where it was first found, its first visit, its
//! locality); a place edit is the user's (a name, a merge). They are
//! separate kinds so a recomputation never overwrites an edit. New visits
//! are clustered (DBSCAN, `polo_timeline::cluster_places`) and each cluster
//! is matched to a known place (`match_places`), where a place merged into
//! another contributes its own anchor under the surviving id: a merge keeps
//! attracting the visits of both originals.

use std::collections::{BTreeMap, HashMap};

use polo_domain::{Coord, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope, Store};
use polo_timeline::{KnownPlace, PlaceParams, cluster_places, match_places};

use crate::kinds::{PLACE, PLACE_EDIT};
use crate::rows::{Locality, PlaceEdit, PlaceRow, StayRow, decode, encode};
use crate::{DerivedError, DerivedResult};

/// Resolves coordinates to a locality (the server plugs in the offline
/// geocoder; tests a table).
pub trait Locator: Send + Sync {
    /// Country, region and town of `coord`.
    fn locate(&self, coord: Coord) -> Locality;
}

/// A user's places and edits, as stored.
#[derive(Debug, Clone, Default)]
pub struct PlaceBook {
    /// Computed places by id.
    pub places: BTreeMap<i64, PlaceRow>,
    /// Edits by place id.
    pub edits: BTreeMap<i64, PlaceEdit>,
}

impl PlaceBook {
    /// Reads a user's places and edits.
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
            let first_visit = cluster.members.iter().map(|&m| stays[visits[m]].start).min().unwrap_or(i64::MAX);
            let id = match found {
                Some(id) => {
                    if let Some(place) = self.places.get_mut(&id).filter(|p| first_visit < p.first_visit) {
                        place.first_visit = first_visit;
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
                        locality: locator.map(|l| l.locate(cluster.centroid)).unwrap_or_default(),
                        address: None,
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

fn write_edit(store: &dyn Store, user: UserId, id: i64, edit: &PlaceEdit) -> DerivedResult<()> {
    let batch = DerivedBatch { delete: vec![], put: vec![encode(PLACE_EDIT, DerivedScope::User, id, edit)] };
    store.derived_write(user, &batch, true)?;
    Ok(())
}
