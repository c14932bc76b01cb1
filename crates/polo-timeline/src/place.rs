//! Places: stays clustered by position, with identities that survive
//! recomputation.
//!
//! Clustering is trackintel's `generate_locations(method="dbscan",
//! epsilon=100, num_samples=1, distance_metric="haversine")`, i.e. sklearn
//! DBSCAN with the haversine metric: two stays are neighbours when their
//! great-circle distance is at most `epsilon` (`<=`), a stay with at least
//! `min_samples` neighbours (itself included) is a core, and a cluster is
//! everything reachable from a core through cores. With `min_samples = 1`
//! every stay is a core and clusters are the connected components of the
//! "within epsilon" graph; a place's centroid is the angular centroid of its
//! stays. Neighbour queries go through an R-tree (`rstar`) over unit vectors
//! on the sphere, where a chord bounds the great-circle distance, so poles
//! and the antimeridian need no special cases and the whole is
//! O(n log n + neighbour pairs) instead of O(n²).
//!
//! # Stable identities
//! Users name places ("Home", "Climbing gym") and merge them; those edits are
//! keyed by a place id that must survive re-clustering, which renumbers
//! clusters whenever stays are added. [`match_places`] maps each new cluster
//! to a known place: a known place is a candidate for a cluster when its
//! anchor (the position it was known by, e.g. its centroid when it was last
//! matched, or where the user pinned it) lies within the matching radius of
//! the cluster's centroid or of any of its stays. Candidates are assigned
//! greedily, closest centroid first, each known entry at most once, so two
//! clusters never take the same entry and a cluster never takes two. To keep
//! a merge, the caller passes one entry per merged original with the same
//! id: each entry can then claim its own cluster and both map to one place.
//! Unmatched clusters are new places; unmatched known places got no stays
//! this time (the caller decides whether to keep them, e.g. if renamed).

use polo_domain::Coord;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};

use crate::TimelineError;
use crate::geo::{EARTH_RADIUS_M, Prepared, angular_centroid, haversine_m};

/// DBSCAN parameters (trackintel's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaceParams {
    /// Neighbourhood radius. Metres, default 100.
    pub epsilon_m: f64,
    /// Neighbours (itself included) that make a stay a core, default 1.
    pub min_samples: usize,
}

impl Default for PlaceParams {
    fn default() -> Self {
        Self { epsilon_m: 100.0, min_samples: 1 }
    }
}

impl PlaceParams {
    /// Checks for a positive epsilon and at least one sample.
    ///
    /// # Errors
    /// [`TimelineError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<(), TimelineError> {
        check_radius("epsilon_m", self.epsilon_m)?;
        if self.min_samples == 0 {
            return Err(TimelineError::InvalidParameter {
                name: "min_samples",
                value: "0".into(),
                why: "must be at least 1 (a stay is its own neighbour)",
            });
        }
        Ok(())
    }
}

/// One place found by [`cluster_places`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceCluster {
    /// Angular centroid of its members.
    pub centroid: Coord,
    /// Indices of its members among the clustered positions, ascending.
    pub members: Vec<usize>,
}

/// The outcome of [`cluster_places`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Clustering {
    /// For each position, its cluster; `None` for noise (only with `min_samples > 1`).
    pub labels: Vec<Option<usize>>,
    /// The clusters, numbered in order of their first member.
    pub clusters: Vec<PlaceCluster>,
}

/// A place the caller already knows, to be matched by [`match_places`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownPlace<Id> {
    /// The caller's identifier.
    pub id: Id,
    /// Where the place is.
    pub anchor: Coord,
}

type Entry = GeomWithData<[f64; 3], usize>;

fn unit_vector(coord: Coord) -> [f64; 3] {
    let (lat, lon) = (coord.lat().to_radians(), coord.lon().to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Positions in an R-tree, answering "which are within `radius_m` of here".
struct Neighbourhood {
    tree: RTree<Entry>,
    prepared: Vec<Prepared>,
    radius_m: f64,
    squared_chord: f64,
}

impl Neighbourhood {
    fn new(positions: &[Coord], radius_m: f64) -> Self {
        let entries = positions.iter().enumerate().map(|(i, &c)| Entry::new(unit_vector(c), i)).collect();
        // The chord that bounds the great-circle radius, with a little slack so
        // that rounding never loses a pair the exact test accepts.
        let chord = 2.0 * (radius_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2).sin();
        let slack = chord * (1.0 + 1e-9) + 1e-12;
        Self {
            tree: RTree::bulk_load(entries),
            prepared: positions.iter().map(|&c| Prepared::new(c)).collect(),
            radius_m,
            squared_chord: slack * slack,
        }
    }

    /// Replaces `out` with the indices of the positions within the radius of
    /// `centre` (haversine, `<=`), in ascending order.
    fn around(&self, centre: Coord, out: &mut Vec<usize>) {
        let here = Prepared::new(centre);
        out.clear();
        out.extend(
            self.tree
                .locate_within_distance(unit_vector(centre), self.squared_chord)
                .map(|entry| entry.data)
                .filter(|&other| haversine_m(&here, &self.prepared[other]) <= self.radius_m),
        );
        out.sort_unstable();
    }
}

fn check_radius(name: &'static str, metres: f64) -> Result<(), TimelineError> {
    if metres.is_finite() && metres > 0.0 {
        Ok(())
    } else {
        Err(TimelineError::InvalidParameter {
            name,
            value: metres.to_string(),
            why: "must be a positive number of metres",
        })
    }
}

/// Clusters positions (typically stay centroids) into places.
///
/// # Errors
/// [`TimelineError::InvalidParameter`] for a non-positive epsilon or `min_samples = 0`.
pub fn cluster_places(positions: &[Coord], params: &PlaceParams) -> Result<Clustering, TimelineError> {
    params.validate()?;
    let neighbourhood = Neighbourhood::new(positions, params.epsilon_m);
    let mut found = Vec::new();
    let is_core: Vec<bool> = if params.min_samples == 1 {
        vec![true; positions.len()]
    } else {
        (0..positions.len())
            .map(|i| {
                neighbourhood.around(positions[i], &mut found);
                found.len() >= params.min_samples
            })
            .collect()
    };
    let mut labels = vec![None; positions.len()];
    let mut clusters = Vec::new();
    let mut stack = Vec::new();
    for seed in 0..positions.len() {
        if labels[seed].is_some() || !is_core[seed] {
            continue;
        }
        let label = clusters.len();
        let mut members = Vec::new();
        labels[seed] = Some(label);
        stack.push(seed);
        while let Some(index) = stack.pop() {
            members.push(index);
            if !is_core[index] {
                continue;
            }
            neighbourhood.around(positions[index], &mut found);
            for &other in &found {
                if labels[other].is_none() {
                    labels[other] = Some(label);
                    stack.push(other);
                }
            }
        }
        members.sort_unstable();
        let centroid = angular_centroid(members.iter().map(|&m| positions[m]));
        clusters.push(PlaceCluster { centroid: centroid.unwrap_or(positions[seed]), members });
    }
    Ok(Clustering { labels, clusters })
}

/// Gives each cluster the id of the known place it continues, if any; see
/// the module documentation for the rule. `positions` are the positions the
/// clusters' member indices refer to.
///
/// # Errors
/// [`TimelineError::InvalidParameter`] for a non-positive radius.
pub fn match_places<Id: Clone>(
    known: &[KnownPlace<Id>],
    clusters: &[PlaceCluster],
    positions: &[Coord],
    radius_m: f64,
) -> Result<Vec<Option<Id>>, TimelineError> {
    check_radius("radius_m", radius_m)?;
    let anchors: Vec<Coord> = known.iter().map(|k| k.anchor).collect();
    let neighbourhood = Neighbourhood::new(&anchors, radius_m);
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    let mut found = Vec::new();
    let mut candidates = Vec::new();
    for (cluster_index, cluster) in clusters.iter().enumerate() {
        candidates.clear();
        let members = cluster.members.iter().filter_map(|&m| positions.get(m).copied());
        for centre in std::iter::once(cluster.centroid).chain(members) {
            neighbourhood.around(centre, &mut found);
            candidates.extend_from_slice(&found);
        }
        candidates.sort_unstable();
        candidates.dedup();
        let centroid = Prepared::new(cluster.centroid);
        pairs
            .extend(candidates.iter().map(|&k| (haversine_m(&centroid, &neighbourhood.prepared[k]), cluster_index, k)));
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut assigned: Vec<Option<Id>> = vec![None; clusters.len()];
    let mut taken = vec![false; known.len()];
    for (_, cluster_index, k) in pairs {
        if assigned[cluster_index].is_none() && !taken[k] {
            assigned[cluster_index] = Some(known[k].id.clone());
            taken[k] = true;
        }
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::coord_distance_m;

    /// A position `north` and `east` metres from 47°N 8.5°E.
    fn near(north: f64, east: f64) -> Coord {
        Coord::from_degrees(47.0 + north / 111_195.0, 8.5 + east / (111_195.0 * 47f64.to_radians().cos())).unwrap()
    }

    fn labels(positions: &[Coord], params: &PlaceParams) -> Vec<Option<usize>> {
        cluster_places(positions, params).unwrap().labels
    }

    #[test]
    fn chains_within_epsilon_form_one_place() {
        // 0—90 m—1—90 m—2 chain into one place; 3 is 500 m away.
        let positions = [near(0.0, 0.0), near(90.0, 0.0), near(180.0, 0.0), near(700.0, 0.0)];
        let clustering = cluster_places(&positions, &PlaceParams::default()).unwrap();
        assert_eq!(clustering.labels, [Some(0), Some(0), Some(0), Some(1)]);
        assert_eq!(clustering.clusters[0].members, [0, 1, 2]);
        assert!(coord_distance_m(clustering.clusters[0].centroid, near(90.0, 0.0)) < 0.1);
    }

    #[test]
    fn epsilon_is_inclusive_and_exact() {
        let a = near(0.0, 0.0);
        let b = near(99.0, 0.0);
        let d = coord_distance_m(a, b);
        assert_eq!(labels(&[a, b], &PlaceParams { epsilon_m: d, min_samples: 1 }), [Some(0), Some(0)]);
        assert_eq!(labels(&[a, b], &PlaceParams { epsilon_m: d * (1.0 - 1e-9), min_samples: 1 }), [Some(0), Some(1)]);
    }

    #[test]
    fn min_samples_makes_noise_and_border_points() {
        // A dense core of four, a border stay within reach of two of them, a lone stay.
        let core = [near(0.0, 0.0), near(10.0, 0.0), near(0.0, 10.0), near(10.0, 10.0)];
        let positions = [core[0], core[1], core[2], core[3], near(-95.0, 0.0), near(5_000.0, 0.0)];
        let params = PlaceParams { epsilon_m: 100.0, min_samples: 4 };
        assert_eq!(labels(&positions, &params), [Some(0), Some(0), Some(0), Some(0), Some(0), None]);
        // Without the core nearby, the border stay is noise.
        assert_eq!(labels(&positions[4..], &params), [None, None]);
    }

    #[test]
    fn clusters_straddle_the_antimeridian_and_the_pole() {
        let east = Coord::from_degrees(-16.8, 179.9997).unwrap();
        let west = Coord::from_degrees(-16.8, -179.9997).unwrap();
        let clustering = cluster_places(&[east, west], &PlaceParams::default()).unwrap();
        assert_eq!(clustering.clusters.len(), 1);
        assert!(clustering.clusters[0].centroid.lon().abs() > 179.99);
        let pole = [Coord::from_degrees(89.9996, 0.0).unwrap(), Coord::from_degrees(89.9996, 180.0).unwrap()];
        assert_eq!(cluster_places(&pole, &PlaceParams::default()).unwrap().clusters.len(), 1);
    }

    #[test]
    fn empty_input_and_invalid_parameters() {
        assert_eq!(cluster_places(&[], &PlaceParams::default()).unwrap(), Clustering::default());
        assert!(cluster_places(&[], &PlaceParams { epsilon_m: 0.0, min_samples: 1 }).is_err());
        assert!(cluster_places(&[], &PlaceParams { epsilon_m: 10.0, min_samples: 0 }).is_err());
    }

    #[test]
    fn many_stays_scale_through_the_tree() {
        // 20 000 stays on a 14 m grid covering 2 km x 2 km chain into one place.
        let positions: Vec<_> =
            (0..20_000).map(|i| near(f64::from(i / 141) * 14.0, f64::from(i % 141) * 14.0)).collect();
        let clustering = cluster_places(&positions, &PlaceParams::default()).unwrap();
        assert_eq!(clustering.clusters.len(), 1);
        assert_eq!(clustering.clusters[0].members.len(), 20_000);
    }

    #[test]
    fn identities_survive_reclustering_and_renumbering() {
        let home = near(0.0, 0.0);
        let gym = near(3_000.0, 0.0);
        let cafe = near(0.0, 2_000.0);
        // Before: home and gym known as ids 7 and 9.
        let known = [KnownPlace { id: 7, anchor: home }, KnownPlace { id: 9, anchor: gym }];
        // After: a new café stay comes first, so cluster numbers shift, and
        // the gym's stays drifted 60 m.
        let positions = [cafe, near(60.0, 0.0), near(3_060.0, 0.0), near(3_050.0, 10.0), near(5.0, 5.0)];
        let clustering = cluster_places(&positions, &PlaceParams::default()).unwrap();
        let ids = match_places(&known, &clustering.clusters, &positions, 100.0).unwrap();
        let by_member: Vec<_> = clustering.clusters.iter().zip(&ids).map(|(c, id)| (c.members[0], *id)).collect();
        assert_eq!(by_member, [(0, None), (1, Some(7)), (2, Some(9))]);
    }

    #[test]
    fn merged_places_keep_one_id_and_a_known_place_is_claimed_once() {
        let a = near(0.0, 0.0);
        let b = near(1_000.0, 0.0);
        // The user merged the places at a and b into id "x".
        let known = [KnownPlace { id: "x", anchor: a }, KnownPlace { id: "x", anchor: b }];
        let positions = [a, b];
        let clustering = cluster_places(&positions, &PlaceParams::default()).unwrap();
        let ids = match_places(&known, &clustering.clusters, &positions, 100.0).unwrap();
        assert_eq!(ids, [Some("x"), Some("x")]);
        // One known place near two new clusters goes to the nearer one only.
        let single = [KnownPlace { id: "y", anchor: near(0.0, 0.0) }];
        let positions = [near(-60.0, 0.0), near(80.0, 0.0)];
        let clustering = cluster_places(&positions, &PlaceParams { epsilon_m: 50.0, min_samples: 1 }).unwrap();
        assert_eq!(match_places(&single, &clustering.clusters, &positions, 100.0).unwrap(), [Some("y"), None]);
    }
}
