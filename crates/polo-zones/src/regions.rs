//! OwnTracks regions and polo's zones, both ways.
//!
//! The OwnTracks apps keep their own regions ("waypoints": a name, a centre,
//! a radius) and report them (`waypoint` when one is made, `waypoints` as an
//! export). polo keeps them as zones, and sends its zones back to the apps
//! with a `setWaypoints` command, so a region drawn on either side exists on
//! both.
//!
//! **Identity.** The apps key a region by its creation time (`tst`) and, on
//! iOS, a region ID (`rid`); a region sent again, moved or renamed, must
//! update its zone, not add one. A zone made from a region keeps that
//! identity in its [`Origin`]. A zone made in polo gets one derived from its
//! id ([`synthetic_tst`], [`synthetic_rid`]) when it is sent to an app, so
//! when the app sends it back (an export, an edit on the phone) it is found
//! again as the same zone.
//!
//! Only circles go to the apps: an OwnTracks region cannot be a polygon.

use std::hash::{Hash as _, Hasher as _};

use serde::{Deserialize, Serialize};

use crate::geometry::{MAX_EXTENT_M, Shape};
use crate::machine::Rules;
use crate::zone::{MAX_NAME_CHARS, Zone, ZoneSpec};

/// The base of the `tst` a polo-made zone is sent with: 2000-01-01, so a
/// synthetic creation time (base + zone id, in seconds) never meets a real
/// one, which the apps take from the clock when a region is made.
pub const SYNTHETIC_TST_BASE: i64 = 946_684_800;
/// The `rid` prefix of polo-made zones.
pub const SYNTHETIC_RID_PREFIX: &str = "polo-";
/// The name of a region that has none.
pub const UNNAMED: &str = "Region";

/// Where a zone came from, when it was not made through polo's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `owntracks`.
    pub source: String,
    /// The region's ID (`rid`), when the app gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// The region's creation time (`tst`), Unix seconds.
    pub tst: i64,
}

/// A region as the app describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Name (`desc`).
    pub desc: Option<String>,
    /// Centre, `[lat, lon]`; `None` for a beacon region.
    pub center: Option<[f64; 2]>,
    /// Radius, metres (`rad`).
    pub radius_m: Option<f64>,
    /// Creation time (`tst`), Unix seconds.
    pub tst: Option<i64>,
    /// Region ID (`rid`).
    pub rid: Option<String>,
}

/// Why a region cannot be a zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// A beacon region, or one without a position.
    #[error("the region has no position (a beacon region?)")]
    NoPosition,
    /// No radius, or one out of range.
    #[error("the region's radius (rad) must be 1 to 50000 metres")]
    Radius,
    /// Neither `tst` nor `rid`: it could not be recognised when sent again.
    #[error("the region has neither tst nor rid to recognise it by")]
    NoIdentity,
}

/// The `tst` a polo-made zone is sent with.
#[must_use]
pub fn synthetic_tst(zone: i64) -> i64 {
    SYNTHETIC_TST_BASE.saturating_add(zone)
}

/// The `rid` a polo-made zone is sent with.
#[must_use]
pub fn synthetic_rid(zone: i64) -> String {
    format!("{SYNTHETIC_RID_PREFIX}{zone}")
}

/// The identity a zone has in the apps: (`tst`, `rid`).
#[must_use]
pub fn identity(zone: &Zone) -> (i64, String) {
    match &zone.spec.origin {
        Some(o) => (o.tst, o.rid.clone().unwrap_or_else(|| synthetic_rid(zone.id))),
        None => (synthetic_tst(zone.id), synthetic_rid(zone.id)),
    }
}

/// Whether `zone` is the zone of a region known by `rid` and `tst`: the
/// `rid` decides when both sides have one, else the `tst`.
#[must_use]
pub fn is_region(zone: &Zone, rid: Option<&str>, tst: Option<i64>) -> bool {
    let (own_tst, own_rid) = identity(zone);
    let explicit_rid = zone.spec.origin.as_ref().map_or(Some(own_rid.as_str()), |o| o.rid.as_deref());
    match (rid, explicit_rid) {
        (Some(a), Some(b)) => a == b,
        _ => tst == Some(own_tst),
    }
}

/// The zone among `zones` that a region (or a transition naming one) is
/// about: by identity, else — for a transition only — by name.
#[must_use]
pub fn find<'a>(zones: &'a [Zone], rid: Option<&str>, tst: Option<i64>, desc: Option<&str>) -> Option<&'a Zone> {
    zones.iter().find(|z| is_region(z, rid, tst)).or_else(|| {
        let desc = desc?.trim();
        zones.iter().find(|z| z.spec.name == desc)
    })
}

/// What storing `region` does to the user's `zones`.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    /// A new zone.
    Create(ZoneSpec),
    /// Zone `id` gets this body.
    Update(i64, ZoneSpec),
    /// Zone `id` already says this.
    Unchanged(i64),
}

/// The zone a region becomes, given the user's zones: a new one with
/// default `rules`, or the zone it already is, moved and renamed (its rules
/// and identity kept).
///
/// # Errors
/// [`RegionError`] for a region without a position, a usable radius or an
/// identity.
pub fn upsert(zones: &[Zone], region: &Region, rules: Rules) -> Result<Upsert, RegionError> {
    let center = region.center.ok_or(RegionError::NoPosition)?;
    let radius_m =
        region.radius_m.filter(|r| r.is_finite() && (1.0..=MAX_EXTENT_M).contains(r)).ok_or(RegionError::Radius)?;
    if region.tst.is_none() && region.rid.is_none() {
        return Err(RegionError::NoIdentity);
    }
    let name: String = match region.desc.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(desc) => desc.chars().take(MAX_NAME_CHARS).collect(),
        None => UNNAMED.to_owned(),
    };
    let shape = Shape::Circle { center, radius_m };
    if let Some(zone) = zones.iter().find(|z| is_region(z, region.rid.as_deref(), region.tst)) {
        let mut spec = zone.spec.clone();
        spec.name = name;
        spec.shape = shape;
        return Ok(if spec == zone.spec { Upsert::Unchanged(zone.id) } else { Upsert::Update(zone.id, spec) });
    }
    let origin = Origin {
        source: "owntracks".to_owned(),
        rid: region.rid.clone(),
        // A region with only a `rid` is recognised by it; its tst is then the epoch.
        tst: region.tst.unwrap_or(0),
    };
    Ok(Upsert::Create(ZoneSpec { name, shape, rules, origin: Some(origin) }))
}

/// One region as the apps read it in `setWaypoints`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waypoint {
    #[serde(rename = "_type")]
    kind: &'static str,
    desc: String,
    lat: f64,
    lon: f64,
    /// Whole metres.
    rad: i64,
    tst: i64,
    rid: String,
}

/// The regions of `zones` (circles only), by identity.
#[must_use]
pub fn waypoints(zones: &[Zone]) -> Vec<Waypoint> {
    let mut out: Vec<Waypoint> = zones
        .iter()
        .filter_map(|zone| {
            let Shape::Circle { center, radius_m } = zone.spec.shape else { return None };
            let (tst, rid) = identity(zone);
            // In range: a radius is at most 50 km.
            #[allow(clippy::cast_possible_truncation)]
            let rad = radius_m.round().max(1.0) as i64;
            Some(Waypoint {
                kind: "waypoint",
                desc: zone.spec.name.clone(),
                lat: center[0],
                lon: center[1],
                rad,
                tst,
                rid,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.tst, &a.rid).cmp(&(b.tst, &b.rid)));
    out
}

/// The `setWaypoints` command for `zones`, and a fingerprint of it (equal
/// fingerprints: the app has these regions already); `None` when no zone can
/// be a region.
#[must_use]
pub fn set_waypoints(zones: &[Zone]) -> Option<(serde_json::Value, u64)> {
    let list = waypoints(zones);
    if list.is_empty() {
        return None;
    }
    let command = serde_json::json!({
        "_type": "cmd",
        "action": "setWaypoints",
        "waypoints": {"_type": "waypoints", "_creator": "polo", "waypoints": list},
    });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    command.to_string().hash(&mut hasher);
    Some((command, hasher.finish()))
}

#[cfg(test)]
mod tests {
    use polo_domain::UserId;

    use super::*;

    fn region(desc: &str, lat: f64, rad: f64, tst: Option<i64>, rid: Option<&str>) -> Region {
        Region {
            desc: Some(desc.into()),
            center: Some([lat, 13.4]),
            radius_m: Some(rad),
            tst,
            rid: rid.map(Into::into),
        }
    }

    fn stored(id: i64, spec: ZoneSpec) -> Zone {
        Zone { id, user: UserId(1), spec }
    }

    fn created(u: Upsert) -> ZoneSpec {
        let Upsert::Create(spec) = u else { panic!("{u:?}") };
        spec
    }

    #[test]
    fn the_same_region_sent_again_updates_its_zone() {
        let gym = region("Gym", 52.5, 80.0, Some(1_700_000_002), None);
        let spec = created(upsert(&[], &gym, Rules::default()).unwrap());
        assert_eq!(spec.name, "Gym");
        assert_eq!(spec.shape, Shape::Circle { center: [52.5, 13.4], radius_m: 80.0 });
        assert_eq!(spec.origin, Some(Origin { source: "owntracks".into(), rid: None, tst: 1_700_000_002 }));
        let mut zones = vec![stored(7, spec)];
        assert_eq!(upsert(&zones, &gym, Rules::default()).unwrap(), Upsert::Unchanged(7));
        // Moved and renamed on the phone: the same tst, so the same zone, rules kept.
        zones[0].spec.rules.dwell_s = 5;
        let moved = region("Gym (new)", 52.6, 120.0, Some(1_700_000_002), None);
        let Upsert::Update(7, spec) = upsert(&zones, &moved, Rules::default()).unwrap() else { panic!() };
        assert_eq!((spec.name.as_str(), spec.rules.dwell_s), ("Gym (new)", 5));
        // Another tst is another region.
        let other = region("Gym", 52.5, 80.0, Some(1_700_000_003), None);
        assert!(matches!(upsert(&zones, &other, Rules::default()).unwrap(), Upsert::Create(_)));
    }

    #[test]
    fn the_rid_decides_when_both_sides_have_one() {
        let a = created(upsert(&[], &region("A", 1.0, 50.0, Some(10), Some("r1")), Rules::default()).unwrap());
        let zones = vec![stored(3, a)];
        // Same rid, another tst (iOS keeps the rid): the same zone.
        assert!(matches!(
            upsert(&zones, &region("A", 1.0, 60.0, Some(11), Some("r1")), Rules::default()),
            Ok(Upsert::Update(3, _))
        ));
        // Same tst, another rid: another region.
        assert!(matches!(
            upsert(&zones, &region("A", 1.0, 50.0, Some(10), Some("r2")), Rules::default()),
            Ok(Upsert::Create(_))
        ));
    }

    #[test]
    fn a_polo_zone_sent_to_the_app_and_back_is_the_same_zone() {
        let home = ZoneSpec {
            name: "Home".into(),
            shape: Shape::Circle { center: [52.52, 13.405], radius_m: 80.4 },
            rules: Rules::default(),
            origin: None,
        };
        let park = ZoneSpec {
            name: "Park".into(),
            shape: Shape::Polygon { vertices: vec![[52.0, 13.0], [52.01, 13.0], [52.0, 13.01]] },
            rules: Rules::default(),
            origin: None,
        };
        let zones = vec![stored(42, home), stored(43, park)];
        let (command, fingerprint) = set_waypoints(&zones).unwrap();
        assert_eq!(
            command,
            serde_json::json!({"_type": "cmd", "action": "setWaypoints", "waypoints": {"_type": "waypoints",
                "_creator": "polo", "waypoints": [{"_type": "waypoint", "desc": "Home", "lat": 52.52,
                "lon": 13.405, "rad": 80, "tst": SYNTHETIC_TST_BASE + 42, "rid": "polo-42"}]}}),
            "polygons cannot be OwnTracks regions"
        );
        assert_eq!(set_waypoints(&zones).unwrap().1, fingerprint, "stable");
        // The app exports it back (Android keys by tst, iOS by rid): the same zone.
        let back = region("Home", 52.52, 80.0, Some(SYNTHETIC_TST_BASE + 42), None);
        assert!(matches!(upsert(&zones, &back, Rules::default()), Ok(Upsert::Update(42, _))));
        let back = region("Home", 52.52, 80.0, Some(1), Some("polo-42"));
        assert!(matches!(upsert(&zones, &back, Rules::default()), Ok(Upsert::Update(42, _))));
        // A change of the zone changes the fingerprint.
        let mut renamed = zones.clone();
        renamed[0].spec.name = "Home!".into();
        assert_ne!(set_waypoints(&renamed).unwrap().1, fingerprint);
        assert_eq!(set_waypoints(&zones[1..]), None);
    }

    #[test]
    fn transitions_find_their_zone_by_identity_then_name() {
        let spec = created(upsert(&[], &region("Office", 1.0, 50.0, Some(10), Some("r1")), Rules::default()).unwrap());
        let zones = vec![stored(5, spec)];
        assert_eq!(find(&zones, Some("r1"), None, None).map(|z| z.id), Some(5));
        assert_eq!(find(&zones, None, Some(10), None).map(|z| z.id), Some(5));
        assert_eq!(find(&zones, None, None, Some(" Office ")).map(|z| z.id), Some(5));
        assert_eq!(find(&zones, Some("r9"), None, Some("Elsewhere")), None);
    }

    #[test]
    fn unusable_regions_are_refused() {
        let mut r = region("", 1.0, 50.0, Some(10), None);
        assert_eq!(created(upsert(&[], &r, Rules::default()).unwrap()).name, UNNAMED);
        r.radius_m = Some(0.0);
        assert_eq!(upsert(&[], &r, Rules::default()), Err(RegionError::Radius));
        r.radius_m = Some(60_000.0);
        assert!(upsert(&[], &r, Rules::default()).is_err());
        r.radius_m = Some(50.0);
        r.center = None;
        assert_eq!(upsert(&[], &r, Rules::default()), Err(RegionError::NoPosition));
        let r = region("x", 1.0, 50.0, None, None);
        assert_eq!(upsert(&[], &r, Rules::default()), Err(RegionError::NoIdentity));
    }
}
