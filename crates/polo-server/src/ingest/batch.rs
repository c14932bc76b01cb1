//! polo's own batch body for `POST /api/v1/points`.
//!
//! Two shapes, both using the property names of polo's exports
//! ([`polo_formats::fields`]), so that an export can be uploaded again as is:
//!
//! * a JSON array of `{time, lat, lon, altitude?, accuracy?,
//!   vertical_accuracy?, speed?, course?, battery?, motion?, device?, extras?}`
//!   (SI units: metres, m/s, degrees, percent; `time` RFC 3339 or epoch);
//! * a GeoJSON `FeatureCollection` (or one `Feature`) of points with the same
//!   properties, coordinates `[lon, lat(, altitude)]` — polo's GeoJSON export.
//!
//! A single point object is accepted too. Every item is judged on its own:
//! a bad item becomes an [`ItemError`] with its index and the others are
//! stored, so a client can report exactly which entries it has to fix.
//! `source` in an export is ignored (the points now come from the API);
//! unknown members go to the extras.

use polo_domain::time::{from_epoch_number, parse_timestamp};
use polo_domain::{Coord, Fix, Motion, SourceFormat, Timestamp};
use polo_formats::ImportOptions;
use polo_formats::extras::ExtrasBuilder;
use polo_formats::fields;
use serde_json::value::RawValue;

use super::json::{Members, is_null, number, shown, string};

/// One usable item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPoint {
    /// Position in the body (array index or feature index).
    pub index: usize,
    /// The fix (`SourceFormat::Api`).
    pub fix: Fix,
    /// `device`, when given.
    pub device: Option<String>,
}

/// One unusable item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ItemError {
    /// Position in the body.
    pub index: usize,
    /// What is wrong, naming the member.
    pub reason: String,
}

/// The parsed body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiBatch {
    /// Usable items, in body order.
    pub points: Vec<ApiPoint>,
    /// Unusable items, in body order.
    pub errors: Vec<ItemError>,
}

/// Why the whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON of another shape.
    #[error("expected an array of points or a GeoJSON FeatureCollection: {0}")]
    Shape(String),
    /// An object of the body names a key twice (polo's one rule for
    /// duplicate JSON keys: `polo_formats::json_keys`).
    #[error(
        "the body names the key {key:?} twice (the second at byte {offset}): a body that names a key twice is ambiguous"
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// Byte offset of its second occurrence.
        offset: usize,
    },
}

/// Parses a batch; fix times must be plausible relative to `now`.
///
/// # Errors
/// [`BatchError`] when the body is not one of the accepted shapes or names a
/// key twice in some object; other problems of single items are [`ItemError`]s.
pub fn parse(body: &[u8], now: Timestamp) -> Result<ApiBatch, BatchError> {
    let text = std::str::from_utf8(body).map_err(|e| BatchError::NotJson(e.to_string()))?.trim();
    let options = ImportOptions { now };
    let (items, geojson): (Vec<&RawValue>, bool) = if text.starts_with('[') {
        (serde_json::from_str(text).map_err(|e| BatchError::NotJson(e.to_string()))?, false)
    } else {
        let top = Members::parse(text).map_err(|e| BatchError::NotJson(e.to_string()))?;
        match top.get("type").and_then(string).as_deref() {
            Some("FeatureCollection") => {
                let features = top.get("features").ok_or_else(|| BatchError::Shape("no \"features\"".into()))?;
                let list = serde_json::from_str(features.get())
                    .map_err(|_| BatchError::Shape("\"features\" is not an array".into()))?;
                (list, true)
            }
            Some("Feature") => {
                (vec![serde_json::from_str(text).map_err(|e| BatchError::NotJson(e.to_string()))?], true)
            }
            Some(other) => return Err(BatchError::Shape(format!("GeoJSON type {other:?}"))),
            None => (vec![serde_json::from_str(text).map_err(|e| BatchError::NotJson(e.to_string()))?], false),
        }
    };
    if let Some(d) = polo_formats::json_keys::duplicate_key(body) {
        return Err(BatchError::DuplicateKey { key: d.key, offset: d.offset });
    }
    let mut batch = ApiBatch::default();
    for (index, item) in items.into_iter().enumerate() {
        let result = if geojson { feature(item, &options) } else { point(item, None, &options) };
        match result {
            Ok((fix, device)) => batch.points.push(ApiPoint { index, fix, device }),
            Err(reason) => batch.errors.push(ItemError { index, reason }),
        }
    }
    Ok(batch)
}

fn feature(raw: &RawValue, options: &ImportOptions) -> Result<(Fix, Option<String>), String> {
    let feature = Members::parse(raw.get()).map_err(|_| format!("feature {} is not an object", shown(raw)))?;
    let geometry = feature.get("geometry").filter(|g| !is_null(g)).ok_or("feature without geometry")?;
    let geometry = Members::parse(geometry.get()).map_err(|_| "geometry is not an object".to_owned())?;
    if geometry.get("type").and_then(string).as_deref() != Some("Point") {
        return Err("geometry is not a Point".to_owned());
    }
    let coordinates = geometry.get("coordinates").ok_or("geometry without coordinates")?;
    let numbers: Vec<f64> = serde_json::from_str::<Vec<&RawValue>>(coordinates.get())
        .ok()
        .and_then(|v| v.into_iter().map(number).collect())
        .ok_or_else(|| format!("coordinates {} are not numbers", shown(coordinates)))?;
    let [lon, lat, rest @ ..] = numbers.as_slice() else {
        return Err("coordinates need longitude and latitude".to_owned());
    };
    let properties = feature.get("properties").filter(|p| !is_null(p));
    let empty = RawValue::from_string("{}".to_owned()).map_err(|e| e.to_string())?;
    point(properties.unwrap_or(&*empty), Some((*lat, *lon, rest.first().copied())), options)
}

fn point(
    raw: &RawValue,
    geometry: Option<(f64, f64, Option<f64>)>,
    options: &ImportOptions,
) -> Result<(Fix, Option<String>), String> {
    let members = Members::parse(raw.get()).map_err(|_| format!("item {} is not an object", shown(raw)))?;
    let numeric = |key: &'static str| -> Result<Option<f64>, String> {
        match members.get(key) {
            None => Ok(None),
            Some(v) if is_null(v) => Ok(None),
            Some(v) => number(v).map(Some).ok_or_else(|| format!("{key} {} is not a number", shown(v))),
        }
    };
    let raw_time = members.get(fields::TIME).filter(|v| !is_null(v)).ok_or("no time")?;
    let (time, offset, zone_assumed) = match string(raw_time) {
        Some(text) => {
            let p = parse_timestamp(&text).map_err(|e| format!("time: {e}"))?;
            (p.time, p.offset_minutes, p.zone_assumed)
        }
        None => {
            let t = number(raw_time).and_then(from_epoch_number);
            (t.ok_or_else(|| format!("time {} is not a date or an epoch number", shown(raw_time)))?, None, false)
        }
    };
    options.check_time(time)?;
    let (lat, lon, coord_alt) = match geometry {
        Some(g) => g,
        None => (numeric(fields::LAT)?.ok_or("no lat")?, numeric(fields::LON)?.ok_or("no lon")?, None),
    };
    let coord = Coord::from_degrees(lat, lon).map_err(|e| format!("lat/lon: {e}"))?;
    let mut fix = Fix::new(time, coord, SourceFormat::Api);
    fix.utc_offset_minutes = offset;
    fix.zone_assumed = zone_assumed;
    if let Some(v) = numeric(fields::ALTITUDE)?.or(coord_alt) {
        fix.set_altitude_m(v);
    }
    if let Some(v) = numeric(fields::ACCURACY)? {
        fix.set_horizontal_accuracy_m(v);
    }
    if let Some(v) = numeric(fields::VERTICAL_ACCURACY)? {
        fix.set_vertical_accuracy_m(v);
    }
    if let Some(v) = numeric(fields::SPEED)? {
        fix.set_speed_m_s(v);
    }
    if let Some(v) = numeric(fields::COURSE)? {
        fix.set_course_deg(v);
    }
    if let Some(v) = numeric(fields::BATTERY)? {
        if !(0.0..=100.0).contains(&v) {
            return Err(format!("battery {v} is not a percentage"));
        }
        fix.set_battery_percent(v);
    }
    if let Some(v) = members.get(fields::MOTION).filter(|v| !is_null(v)) {
        let name = string(v).ok_or_else(|| format!("motion {} is not a string", shown(v)))?;
        fix.motion = Some(Motion::from_activity_name(&name).ok_or_else(|| format!("motion {name:?} is unknown"))?);
    }
    let device = match members.get(fields::DEVICE).filter(|v| !is_null(v)) {
        Some(v) => Some(string(v).ok_or_else(|| format!("device {} is not a string", shown(v)))?),
        None => None,
    };
    let mut extras = ExtrasBuilder::new();
    for (key, value) in &members.0 {
        let known = [
            fields::TIME,
            fields::LAT,
            fields::LON,
            fields::ALTITUDE,
            fields::ACCURACY,
            fields::VERTICAL_ACCURACY,
            fields::SPEED,
            fields::COURSE,
            fields::BATTERY,
            fields::MOTION,
            fields::DEVICE,
            fields::SOURCE,
        ];
        if key == fields::EXTRAS {
            if is_null(value) {
                continue;
            }
            if !value.get().trim_start().starts_with('{') {
                return Err(format!("extras {} is not an object", shown(value)));
            }
            extras.merge_object(value.get());
        } else if !known.contains(&key.as_str()) {
            extras.raw(key, value.get());
        }
    }
    fix.extras = extras.finish();
    Ok((fix, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn array_of_points_with_per_item_errors() {
        let body = br#"[
            {"time":"2025-05-01T10:00:00.250+02:00","lat":46.2,"lon":6.15,"altitude":375.5,"accuracy":4.2,
             "vertical_accuracy":3,"speed":1.4,"course":12.5,"battery":80,"motion":"walking","device":"watch",
             "extras":{"hr":121},"note":"x"},
            {"time":1746086460,"lat":"46.3","lon":6.16},
            {"lat":46.2,"lon":6.15},
            {"time":"2025-05-01T10:02:00Z","lat":46.2},
            {"time":"2025-05-01T10:03:00Z","lat":46.2,"lon":6.15,"speed":"fast"},
            {"time":"2025-05-01T10:04:00Z","lat":46.2,"lon":6.15,"motion":"teleporting"},
            {"time":"1970-01-01T00:00:00Z","lat":46.2,"lon":6.15},
            {"time":"2025-05-01T10:05:00Z","lat":46.2,"lon":6.15,"extras":[1]},
            7
        ]"#;
        let batch = parse(body, NOW).unwrap();
        assert_eq!(batch.points.len(), 2);
        let p = &batch.points[0];
        assert_eq!((p.index, p.device.as_deref()), (0, Some("watch")));
        let f = &p.fix;
        assert_eq!(f.time, parse_timestamp("2025-05-01T08:00:00.250Z").unwrap().time);
        assert_eq!(f.utc_offset_minutes, Some(120));
        assert_eq!(
            (f.altitude_cm, f.horizontal_accuracy_cm, f.vertical_accuracy_cm),
            (Some(37_550), Some(420), Some(300))
        );
        assert_eq!((f.speed_cm_s, f.course_centideg, f.battery_percent), (Some(140), Some(1250), Some(80)));
        assert_eq!(f.motion, Some(Motion::Walking));
        assert_eq!(f.source, SourceFormat::Api);
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"hr":121,"note":"x"}"#);
        assert_eq!(batch.points[1].fix.time, Timestamp(1_746_086_460_000), "epoch seconds");
        let errors: Vec<(usize, &str)> = batch.errors.iter().map(|e| (e.index, e.reason.as_str())).collect();
        assert_eq!(errors[0], (2, "no time"));
        assert_eq!(errors[1], (3, "no lon"));
        assert_eq!(errors[2], (4, "speed \"fast\" is not a number"));
        assert_eq!(errors[3], (5, "motion \"teleporting\" is unknown"));
        assert_eq!(errors[4].0, 6);
        assert!(errors[4].1.contains("1985"), "{}", errors[4].1);
        assert_eq!(errors[5], (7, "extras [1] is not an object"));
        assert_eq!(errors[6], (8, "item 7 is not an object"));
    }

    #[test]
    fn geojson_export_round_trips() {
        // What polo's GeoJSON exporter writes.
        let body = br#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[6.1500000,46.2000000,375.50]},
             "properties":{"time":"2025-05-01T10:00:00.250+02:00","accuracy":4.20,"speed":1.40,"battery":80,
             "motion":"road","source":"overland","device":"phone","extras":{"wifi":"home"}}},
            {"type":"Feature","geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]},"properties":{}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[6.15,46.2]},"properties":{"time":"2025-05-01T10:00:01Z","altitude":10}}
        ]}"#;
        let batch = parse(body, NOW).unwrap();
        assert_eq!(batch.points.len(), 2);
        let f = &batch.points[0].fix;
        assert_eq!(f.coord, Coord::from_degrees(46.2, 6.15).unwrap());
        assert_eq!(f.altitude_cm, Some(37_550));
        assert_eq!(f.motion, Some(Motion::Road));
        assert_eq!(f.source, SourceFormat::Api);
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"wifi":"home"}"#);
        assert_eq!(batch.points[0].device.as_deref(), Some("phone"));
        assert_eq!(batch.points[1].fix.altitude_cm, Some(1000), "a property altitude works too");
        assert_eq!(batch.errors, vec![ItemError { index: 1, reason: "geometry is not a Point".into() }]);
    }

    #[test]
    fn single_objects_and_shape_errors() {
        let one = parse(br#"{"time":"2025-05-01T10:00:00Z","lat":46.2,"lon":6.15}"#, NOW).unwrap();
        assert_eq!(one.points.len(), 1);
        let feature = parse(
            br#"{"type":"Feature","geometry":{"type":"Point","coordinates":[6.15,46.2]},"properties":{"time":"2025-05-01T10:00:00Z"}}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(feature.points.len(), 1);
        assert!(matches!(parse(b"nope", NOW), Err(BatchError::NotJson(_))));
        assert!(matches!(parse(br#"{"type":"Polygon"}"#, NOW), Err(BatchError::Shape(_))));
        assert!(matches!(parse(br#"{"type":"FeatureCollection"}"#, NOW), Err(BatchError::Shape(_))));
    }
}
