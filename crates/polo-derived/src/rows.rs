//! The stored shape of each derived row, and its encoding.
//!
//! Rows are JSON: they are small (a stay is about 150 bytes), read a few
//! thousand at a time at most, and JSON keeps them inspectable with the
//! `sqlite3` shell and forward-compatible (new optional fields decode from
//! old rows). Map levels, which are large, have their own binary encoding
//! in [`crate::map`].

use polo_domain::{Coord, Timestamp};
use polo_store::{DerivedKind, DerivedRow, DerivedScope};
use polo_timeline::{ByMode, Leg, LegSource, SpeedProfile, Stay, TransportMode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{DerivedError, DerivedResult};

/// Encodes a row value.
pub(crate) fn encode<T: Serialize>(kind: DerivedKind, scope: DerivedScope, key: i64, value: &T) -> DerivedRow {
    // Serialising these plain structs to a Vec cannot fail.
    let value = serde_json::to_vec(value).expect("derived rows serialise");
    DerivedRow { kind, scope, key, value }
}

/// Decodes a row value, naming the row when it is damaged.
pub(crate) fn decode<T: DeserializeOwned>(row: &DerivedRow) -> DerivedResult<T> {
    serde_json::from_slice(&row.value).map_err(|e| DerivedError::Corrupt {
        kind: row.kind.0,
        key: row.key,
        why: e.to_string(),
    })
}

/// A stay as stored (scope: device; key: `start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StayRow {
    /// Time of its first point, ms.
    pub start: i64,
    /// Time of the first point outside it, ms.
    pub end: i64,
    /// Time of its last point inside, ms.
    pub last_seen: i64,
    /// Time of the point that decided its end, ms, when later than `end`
    /// (an excursion that did not come back; see `polo_timeline::Stay::decided_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<i64>,
    /// Centroid latitude, 1e-7 degrees.
    pub lat_e7: i32,
    /// Centroid longitude, 1e-7 degrees.
    pub lon_e7: i32,
    /// Points in it.
    pub points: u32,
    /// Long enough to be a visit (the user's minimum duration).
    pub visit: bool,
    /// The place of a visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<i64>,
    /// UTC offset at its start, minutes east: as its first point stated it,
    /// or, for a point that states none, the offset of the time zone at its
    /// position then. `None` only where neither is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i16>,
    /// Where the offset changes after its start and before its end (a DST
    /// night at home): instant (ms) and the new offset, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offset_changes: Vec<(i64, i16)>,
}

impl StayRow {
    /// From a detected stay.
    #[must_use]
    pub fn new(stay: &Stay, visit: bool, offset: Option<i16>) -> Self {
        Self {
            start: stay.start.0,
            end: stay.end.0,
            last_seen: stay.last_seen.0,
            decided: (stay.decided_at > stay.end).then_some(stay.decided_at.0),
            lat_e7: stay.centroid.lat_e7,
            lon_e7: stay.centroid.lon_e7,
            points: stay.point_count,
            visit,
            place: None,
            offset,
            offset_changes: Vec::new(),
        }
    }

    /// The centroid.
    #[must_use]
    pub fn centroid(&self) -> Coord {
        Coord { lat_e7: self.lat_e7, lon_e7: self.lon_e7 }
    }

    /// When its end was decided, ms: points after this cannot change it.
    #[must_use]
    pub fn decided_at(&self) -> i64 {
        self.decided.unwrap_or(self.end).max(self.end)
    }

    /// A window may restart detection at this stay's end (see
    /// `polo_timeline::incremental`) for a change after [`Self::decided_at`].
    #[must_use]
    pub fn is_restart_point(&self) -> bool {
        self.last_seen < self.end
    }

    /// Back to the algorithm's type (point indices are not stored: empty).
    #[must_use]
    pub fn to_stay(&self) -> Stay {
        Stay {
            start: Timestamp(self.start),
            end: Timestamp(self.end),
            last_seen: Timestamp(self.last_seen),
            decided_at: Timestamp(self.decided_at()),
            centroid: self.centroid(),
            points: 0..0,
            point_count: self.points,
        }
    }
}

/// A leg as stored (scope: device; key: `start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegRow {
    /// Time of its first point, ms.
    pub start: i64,
    /// Time of its last point, ms.
    pub end: i64,
    /// Points in it.
    pub points: u32,
    /// Metres along its points.
    pub distance_m: f64,
    /// Mean speed, m/s.
    pub mean_mps: f64,
    /// Time-weighted median speed, m/s.
    pub median_mps: f64,
    /// Time-weighted 85th percentile speed (cruising speed), m/s.
    pub p85_mps: f64,
    /// Fastest segment, m/s (may be a GPS jump).
    pub max_mps: f64,
    /// The mode inferred from speeds (a user's correction is applied on read).
    pub mode: TransportMode,
    /// Recorded, or inferred across a gap.
    pub source: LegSource,
    /// UTC offset at its start, minutes east (see [`StayRow::offset`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i16>,
    /// Where the offset changes after its start and before its end (a
    /// flight across zones): instant (ms) and the new offset, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offset_changes: Vec<(i64, i16)>,
}

impl LegRow {
    /// Back to the algorithm's type with `mode` (point indices are not stored: empty).
    #[must_use]
    pub fn to_leg(&self, mode: TransportMode) -> Leg {
        Leg {
            start: Timestamp(self.start),
            end: Timestamp(self.end),
            points: 0..0,
            point_count: self.points,
            distance_m: self.distance_m,
            speed: SpeedProfile {
                mean_m_s: self.mean_mps,
                median_m_s: self.median_mps,
                p85_m_s: self.p85_mps,
                p95_m_s: self.p85_mps.max(self.median_mps),
                max_m_s: self.max_mps,
            },
            mode,
            source: self.source,
        }
    }
}

/// Where a place is, from the offline geocoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Locality {
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Country name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// First-level region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Nearest town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
}

/// A place as computed (scope: user; key: place id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceRow {
    /// Where it was first found: what later clusters are matched against.
    pub lat_e7: i32,
    /// See `lat_e7`.
    pub lon_e7: i32,
    /// Start of its first visit, ms.
    pub first_visit: i64,
    /// The UTC offset at the start of its first visit (see [`StayRow::offset`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_visit_offset: Option<i16>,
    /// Country, region and town.
    #[serde(default)]
    pub locality: Locality,
}

impl PlaceRow {
    /// The anchor position.
    #[must_use]
    pub fn anchor(&self) -> Coord {
        Coord { lat_e7: self.lat_e7, lon_e7: self.lon_e7 }
    }
}

/// A place's street-level name as the online geocoder answered it (scope:
/// user; key: place id; kind [`crate::kinds::PLACE_ADDRESS`]). Not part of
/// [`PlaceRow`]: the engine rewrites place rows, and would drop a name
/// written into one while it recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceAddress {
    /// The name, e.g. "Bahnhofstrasse 1, Zürich"; `None` when the provider
    /// had nothing there (kept, so the place is not asked about again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Who answered: `photon` or `nominatim`.
    pub provider: String,
    /// When, ms since the epoch.
    pub resolved_at: i64,
    /// The position asked about (the place's anchor), 1e-7 degrees: an
    /// answer about another position is not this place's.
    pub lat_e7: i32,
    /// See `lat_e7`.
    pub lon_e7: i32,
}

impl PlaceAddress {
    /// Whether this answers for `place`'s anchor, from `provider`.
    #[must_use]
    pub fn answers(&self, place: &PlaceRow, provider: &str) -> bool {
        self.provider == provider && self.describes(place)
    }

    /// Whether this was asked about `place`'s anchor.
    #[must_use]
    pub fn describes(&self, place: &PlaceRow) -> bool {
        (self.lat_e7, self.lon_e7) == (place.lat_e7, place.lon_e7)
    }
}

/// The user's edit of a place (scope: user; key: place id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlaceEdit {
    /// The name the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The place this one was merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<i64>,
}

/// The user's correction of a leg's mode (scope: user; key: leg start, ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeEdit {
    /// End of the corrected leg, ms.
    pub end: i64,
    /// The mode the user says it was.
    pub mode: TransportMode,
}

/// A device's statistics of one local day (scope: device; key: day number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// Metres travelled.
    pub distance_m: f64,
    /// Metres per mode.
    pub distance_m_by_mode: ByMode<f64>,
    /// Milliseconds moving per mode.
    pub moving_ms_by_mode: ByMode<i64>,
    /// Milliseconds in stays.
    pub stationary_ms: i64,
    /// Places visited (ids, after merges), ascending.
    #[serde(default)]
    pub places: Vec<i64>,
    /// Countries of the visited places (alpha-2), ascending.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Towns of the visited places, ascending.
    #[serde(default)]
    pub towns: Vec<String>,
}

impl DayRow {
    /// Milliseconds tracked (moving and stationary): how much of the day
    /// this device's story covers.
    #[must_use]
    pub fn tracked_ms(&self) -> i64 {
        TransportMode::ALL.iter().map(|&m| *self.moving_ms_by_mode.get(m)).sum::<i64>() + self.stationary_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_damage_is_named() {
        let row = StayRow {
            start: 1,
            end: 5,
            last_seen: 4,
            decided: Some(6),
            lat_e7: 470_000_000,
            lon_e7: 85_000_000,
            points: 3,
            visit: true,
            place: Some(7),
            offset: Some(60),
            offset_changes: vec![(3, 120)],
        };
        let stored = encode(crate::kinds::STAY, DerivedScope::User, 1, &row);
        assert_eq!(decode::<StayRow>(&stored).unwrap(), row);
        assert!(row.is_restart_point());
        let damaged = DerivedRow { value: b"{\"start\":".to_vec(), ..stored };
        let err = decode::<StayRow>(&damaged).unwrap_err();
        assert!(matches!(err, DerivedError::Corrupt { kind: 1, key: 1, .. }), "{err}");
    }
}
