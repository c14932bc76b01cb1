//! Polarsteps' trip export (Account → Download my data): each trip folder
//! holds `locations.json` and `trip.json`. Both are routed here by the JSON
//! router; they are not Google's, but share its streaming plumbing.
//!
//! * `locations.json` is `{"locations":[{"lat":…, "lon":…, "time":…}, …]}`:
//!   the app's recorded track. `time` is epoch seconds (often with a
//!   fraction). Each element becomes a fix; any other member goes to the
//!   extras. Its top-level key collides with Google's `Records.json`, so the
//!   router tells them apart by the first element (`lat`/`lon`/`time`, no
//!   `latitudeE7`).
//! * `trip.json` has the trip's `name` and its `all_steps`: the places the
//!   traveller posted, each with `location{lat, lon, name, detail,
//!   country_code}`, `start_time`, `end_time` (may be `null`), the step's
//!   `name`/`display_name` and `description`. Each step becomes a visit
//!   interval (end = start when `end_time` is missing), named after the step
//!   and carrying the place's name, country code, the step's description and
//!   its `timezone_id` in the extras. The trip's other members (photos'
//!   metadata, summary, cover) are skipped.

use polo_domain::{Coord, Fix, Interval, IntervalKind, SourceFormat};

use super::value::{RawObject, check_time, num_of, reject, str_of, time};
use crate::extras::ExtrasBuilder;
use crate::{ImportOptions, Sink};

/// True when the first element of a `locations` array is a Polarsteps
/// location rather than a Google record or an Overland feature.
pub(crate) fn is_location(obj: &RawObject<'_>) -> bool {
    obj.has("lat") && obj.has("lon") && obj.has("time") && !obj.has("latitudeE7")
}

fn coord(obj: &RawObject<'_>, what: &str) -> Result<Coord, String> {
    match (num_of(obj, "lat"), num_of(obj, "lon")) {
        (Some(lat), Some(lon)) => Coord::from_degrees(lat, lon).map_err(|e| format!("{what} lat/lon: {e}")),
        _ => Err(format!("{what} without numeric lat/lon")),
    }
}

/// One element of `locations.json`.
pub(crate) fn location(options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
    let result = RawObject::from_slice(raw).and_then(|obj| {
        let coord = coord(&obj, "location")?;
        let t = time(obj.get("time").ok_or("location without time")?, "time")?;
        check_time(options, t.time, "time")?;
        let mut fix = Fix::new(t.time, coord, SourceFormat::Polarsteps);
        let mut extras = ExtrasBuilder::new();
        obj.extras_except(&["lat", "lon", "time"], &mut extras);
        fix.extras = extras.finish();
        Ok(fix)
    });
    match result {
        Ok(fix) => sink.point(fix, None),
        Err(why) => reject(sink, offset, why, raw),
    }
}

/// One element of `trip.json`'s `all_steps`.
pub(crate) fn step(options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
    let result = RawObject::from_slice(raw).and_then(|obj| {
        let location = obj.object("location").ok_or("step without location")?;
        let coord = coord(&location, "step location")?;
        let start = time(obj.get("start_time").ok_or("step without start_time")?, "start_time")?;
        check_time(options, start.time, "start_time")?;
        let end = match obj.get("end_time").filter(|v| v.get() != "null") {
            Some(raw) => time(raw, "end_time")?.time.max(start.time),
            None => start.time,
        };
        let mut interval = Interval::new(IntervalKind::Visit, start.time, end, SourceFormat::Polarsteps);
        interval.start_coord = Some(coord);
        interval.name = str_of(&obj, "display_name").or_else(|| str_of(&obj, "name")).map(|s| s.into_owned());
        let mut extras = ExtrasBuilder::new();
        for (key, from) in [("place", "name"), ("place_detail", "detail"), ("country_code", "country_code")] {
            if let Some(v) = str_of(&location, from) {
                extras.string(key, &v);
            }
        }
        for key in ["description", "timezone_id", "id"] {
            if let Some(v) = obj.get(key).filter(|v| v.get() != "null") {
                extras.raw(key, v.get());
            }
        }
        interval.extras = extras.finish();
        Ok(interval)
    });
    match result {
        Ok(interval) => sink.interval(interval, None),
        Err(why) => reject(sink, offset, why, raw),
    }
}

#[cfg(test)]
mod tests {
    use crate::Format;
    use crate::google::tests::import_str;
    use crate::xml::testing::ms;

    #[test]
    fn locations_json_is_polarsteps_not_google_records() {
        let (format, s) = import_str(
            r#"{"locations":[{"lat":48.1,"lon":11.5,"time":1714557600.25},{"lat":48.2,"lon":11.6,"time":1714557660.0,"accuracy":5},{"lat":98,"lon":11.6,"time":1714557700}]}"#,
        );
        assert_eq!(format.unwrap(), Format::Polarsteps);
        assert_eq!(s.points.len(), 2, "{:?}", s.rejects);
        assert_eq!(s.points[0].0.time.0, 1_714_557_600_250);
        assert_eq!(s.points[1].0.extras.as_ref().unwrap().as_str(), r#"{"accuracy":5}"#);
        assert_eq!(s.rejects.len(), 1);
        assert!(s.rejects[0].reason.contains("lat/lon"), "{:?}", s.rejects);
    }

    #[test]
    fn trip_json_steps_become_visits() {
        let (format, s) = import_str(include_str!("../../tests/fixtures/polarsteps-trip.json"));
        assert_eq!(format.unwrap(), Format::Polarsteps);
        assert_eq!(s.intervals.len(), 2, "{:?}", s.rejects);
        let v = &s.intervals[0];
        assert_eq!(v.start.0, ms("2024-05-01T08:00:00Z"));
        assert_eq!(v.end.0, ms("2024-05-02T08:00:00Z"));
        assert_eq!(v.name.as_deref(), Some("Arrival in Munich"));
        assert_eq!(
            v.extras.as_ref().unwrap().as_str(),
            r#"{"place":"Marienplatz","place_detail":"Munich","country_code":"DE","description":"First day.","timezone_id":"Europe/Berlin","id":101}"#
        );
        // No end_time: the visit is an instant.
        assert_eq!(s.intervals[1].start, s.intervals[1].end);
        assert_eq!(s.rejects.len(), 1);
        assert!(s.rejects[0].reason.contains("without location"), "{:?}", s.rejects);
    }
}
