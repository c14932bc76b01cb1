//! Garmin Training Center XML (TCX), as Garmin Connect, Strava and many
//! sports apps export activities. Streamed with the shared XML layer
//! ([`crate::xml`]): one trackpoint in memory at a time.
//!
//! What becomes what:
//!
//! * Every `Trackpoint` (in `Activity/Lap/Track` and in `Course/Track`)
//!   with a `Time` and a `Position` becomes a fix: `LatitudeDegrees`,
//!   `LongitudeDegrees`, `AltitudeMeters` → altitude, the activity
//!   extension's `Speed` (m/s) → speed.
//! * A trackpoint without `Position` (indoor sessions, a watch without a
//!   fix) holds no location: it is counted as such, like FIT records without
//!   a position, not rejected. One without `Time` is rejected, as in GPX.
//! * `HeartRateBpm/Value` → extras `heart_rate`, `Cadence` and the
//!   extension's `RunCadence` → `cadence`, `DistanceMeters` → `distance`,
//!   `Watts` → `power` (the names the FIT importer uses); any other leaf of
//!   the trackpoint (`SensorState`, unknown extensions) goes to the extras
//!   under its local name.
//! * The activity's `Sport` attribute (`Running`, `Biking`) becomes the
//!   points' motion; `Other` or an unknown word is kept as extras `sport`.
//!
//! Elements are matched by local name, whatever their namespace prefix
//! (`ns3:TPX`, `ax:Speed`): TCX's own namespace and Garmin's extension
//! namespaces use distinct element names.

use std::io::BufRead;

use polo_domain::time::{ParsedTime, parse_timestamp};
use polo_domain::{Coord, Fix, Motion, SourceFormat};

use crate::extras::ExtrasBuilder;
use crate::xml::{self, Node, XmlStream};
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// The trackpoint being read.
#[derive(Default)]
struct Trackpoint {
    position: Option<Position>,
    time: Option<Result<ParsedTime, String>>,
    lat: Option<String>,
    lon: Option<String>,
    has_position: bool,
    altitude: Option<f64>,
    speed: Option<f64>,
    extras: ExtrasBuilder,
    /// The point's leaves as text, for a reject's raw field.
    raw: String,
    /// Why the point cannot be imported although it parsed: a token of it
    /// was over the size limit and skipped.
    refused: Option<String>,
}

impl Trackpoint {
    fn leaf(&mut self, parent: &str, local: &str, text: &str) {
        let text = text.trim();
        if self.raw.len() < Reject::MAX_RAW {
            self.raw.push_str(&format!("<{local}>{text}</{local}>"));
        }
        match (parent, local) {
            (_, "Time") => {
                if self.time.is_none() {
                    self.time = Some(parse_timestamp(text).map_err(|e| format!("<Time>: {e}")));
                }
            }
            ("Position", "LatitudeDegrees") => self.lat = Some(text.to_owned()),
            ("Position", "LongitudeDegrees") => self.lon = Some(text.to_owned()),
            (_, "AltitudeMeters") => number_or_extra(&mut self.altitude, &mut self.extras, "altitude", text),
            (_, "Speed") => number_or_extra(&mut self.speed, &mut self.extras, "speed", text),
            ("HeartRateBpm", "Value") => xml::push_extra(&mut self.extras, "heart_rate", text),
            (_, "Cadence" | "RunCadence") => xml::push_extra(&mut self.extras, "cadence", text),
            (_, "DistanceMeters") => xml::push_extra(&mut self.extras, "distance", text),
            (_, "Watts") => xml::push_extra(&mut self.extras, "power", text),
            _ => xml::push_extra(&mut self.extras, local, text),
        }
    }

    fn coord(&self) -> Result<Coord, String> {
        let read = |name: &str, text: Option<&String>| -> Result<f64, String> {
            let text = text.ok_or_else(|| format!("<Position> without <{name}>"))?;
            xml::number(text).ok_or_else(|| format!("<{name}> {text:?} is not a number"))
        };
        let lat = read("LatitudeDegrees", self.lat.as_ref())?;
        let lon = read("LongitudeDegrees", self.lon.as_ref())?;
        Coord::from_degrees(lat, lon).map_err(|e| format!("<Position>: {e}"))
    }

    fn finish(&mut self, activity: &Activity, options: &ImportOptions, sink: &mut dyn Sink) {
        let point = std::mem::take(self);
        let position = point.position.unwrap_or(Position::Byte(0));
        let reject = |sink: &mut dyn Sink, reason: String| {
            sink.reject(Reject::new(position, reason, &format!("<Trackpoint>{}</Trackpoint>", point.raw)));
        };
        if let Some(why) = point.refused.clone() {
            return reject(sink, why);
        }
        if !point.has_position {
            sink.not_location("TCX trackpoint without a position (indoor session or no GPS fix)");
            return;
        }
        let time = match &point.time {
            Some(Ok(t)) => *t,
            Some(Err(why)) => return reject(sink, why.clone()),
            None => return reject(sink, "Trackpoint without <Time>".to_owned()),
        };
        let coord = match point.coord() {
            Ok(c) => c,
            Err(why) => return reject(sink, why),
        };
        if let Err(why) = options.check_time(time.time) {
            return reject(sink, why);
        }
        let mut fix = Fix::new(time.time, coord, SourceFormat::Tcx);
        fix.utc_offset_minutes = time.offset_minutes;
        fix.zone_assumed = time.zone_assumed;
        if let Some(v) = point.altitude {
            fix.set_altitude_m(v);
        }
        if let Some(v) = point.speed {
            fix.set_speed_m_s(v);
        }
        fix.motion = activity.motion;
        let mut extras = point.extras;
        if let Some(sport) = &activity.unknown_sport {
            extras.string("sport", sport);
        }
        fix.extras = extras.finish();
        sink.point(fix, None);
    }
}

fn number_or_extra(slot: &mut Option<f64>, extras: &mut ExtrasBuilder, key: &str, text: &str) {
    match xml::number(text) {
        Some(v) if slot.is_none() => *slot = Some(v),
        Some(_) => {}
        None => xml::push_extra(extras, key, text),
    }
}

/// What the enclosing `<Activity>` says about its points.
#[derive(Default)]
struct Activity {
    motion: Option<Motion>,
    unknown_sport: Option<String>,
}

impl Activity {
    fn from_sport(sport: Option<&str>) -> Self {
        let Some(sport) = sport.map(str::trim).filter(|s| !s.is_empty()) else { return Self::default() };
        let motion = match sport.to_ascii_lowercase().as_str() {
            "biking" | "cycling" => Some(Motion::Cycling),
            other => Motion::from_activity_name(other),
        };
        Self { motion, unknown_sport: motion.is_none().then(|| sport.to_owned()) }
    }
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut xml = XmlStream::new(reader, "TCX")?;
    // Local names of the open elements; bounded by the document's depth.
    let mut stack: Vec<String> = Vec::with_capacity(16);
    let mut point: Option<Trackpoint> = None;
    let mut activity = Activity::default();
    loop {
        match xml.next()? {
            Node::Start { local, tag, at, .. } => {
                match local {
                    "Activity" | "Course" => {
                        activity = Activity::from_sport(xml::attribute(&tag, "Sport").as_deref());
                    }
                    "Trackpoint" => point = Some(Trackpoint { position: Some(at), ..Trackpoint::default() }),
                    "Position" => {
                        if let Some(p) = point.as_mut() {
                            p.has_position = true;
                        }
                    }
                    _ => {}
                }
                stack.push(local.to_owned());
            }
            Node::End { local, leaf, text, .. } => {
                stack.pop();
                if local == "Trackpoint" {
                    if let Some(mut p) = point.take() {
                        p.finish(&activity, options, sink);
                    }
                } else if leaf && let Some(p) = point.as_mut() {
                    let parent = stack.last().map_or("", String::as_str);
                    p.leaf(parent, local, text);
                }
            }
            Node::Oversized { at, what } => {
                let why = format!("{} at {at}", crate::bounded::too_long(what));
                match point.as_mut() {
                    Some(p) => {
                        p.refused.get_or_insert(why);
                    }
                    None => sink.reject(Reject::new(at, why, "")),
                }
            }
            Node::Eof => {
                return match stack.last() {
                    Some(open) => Err(xml.truncated(&open.clone())),
                    None => Ok(()),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, ms, options};

    const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
  xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">"#;

    fn run(xml: &str) -> Collect {
        let mut sink = Collect::default();
        import(xml.as_bytes(), &options(), &mut sink).unwrap();
        sink
    }

    #[test]
    fn fixture_file_reads_points_extras_and_sport() {
        let s = run(include_str!("../tests/fixtures/run.tcx"));
        let fixes = s.fixes();
        assert_eq!(fixes.len(), 3, "{:?}", s.rejects);
        let f = fixes[0];
        assert_eq!(f.time.0, ms("2024-05-01T06:30:00Z"));
        assert_eq!((f.coord.lat_e7, f.coord.lon_e7), (481_371_530, 115_754_200));
        assert_eq!(f.altitude_m(), Some(520.4));
        assert_eq!(f.speed_m_s(), Some(2.85));
        assert_eq!(f.motion, Some(Motion::Running));
        assert_eq!(f.source, SourceFormat::Tcx);
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"distance":0.0,"heart_rate":121,"cadence":82,"SensorState":"Present"}"#
        );
        // The trackpoint without a position is not a reject, the one without a time is.
        assert_eq!(s.rejects.len(), 1);
        assert!(s.rejects[0].reason.contains("without <Time>"), "{:?}", s.rejects);
        assert!(matches!(s.rejects[0].position, Position::Byte(b) if b > 0));
    }

    #[test]
    fn unknown_sport_is_kept_and_bad_coordinates_are_rejected() {
        let s = run(&format!(
            r#"{HEAD}<Activities><Activity Sport="Other"><Lap><Track>
            <Trackpoint><Time>2024-05-01T06:30:00Z</Time><Position><LatitudeDegrees>48.1</LatitudeDegrees><LongitudeDegrees>11.5</LongitudeDegrees></Position></Trackpoint>
            <Trackpoint><Time>2024-05-01T06:30:01Z</Time><Position><LatitudeDegrees>97</LatitudeDegrees><LongitudeDegrees>11.5</LongitudeDegrees></Position></Trackpoint>
            <Trackpoint><Time>2024-05-01T06:30:02Z</Time><Position><LatitudeDegrees>48.1</LatitudeDegrees></Position></Trackpoint>
            </Track></Lap></Activity></Activities></TrainingCenterDatabase>"#
        ));
        assert_eq!(s.fixes().len(), 1);
        assert_eq!(s.fixes()[0].motion, None);
        assert_eq!(s.fixes()[0].extras.as_ref().unwrap().as_str(), r#"{"sport":"Other"}"#);
        assert_eq!(s.rejects.len(), 2);
        assert!(s.rejects[0].reason.contains("Position"), "{:?}", s.rejects[0]);
        assert!(s.rejects[1].reason.contains("without <LongitudeDegrees>"), "{:?}", s.rejects[1]);
    }

    #[test]
    fn truncated_file_is_malformed_after_keeping_earlier_points() {
        let mut sink = Collect::default();
        let text = format!(
            r#"{HEAD}<Activities><Activity Sport="Biking"><Lap><Track>
            <Trackpoint><Time>2024-05-01T06:30:00Z</Time><Position><LatitudeDegrees>48.1</LatitudeDegrees><LongitudeDegrees>11.5</LongitudeDegrees></Position></Trackpoint>
            <Trackpoint><Time>2024-05-01T06:30:01Z</Time>"#
        );
        let err = import(text.as_bytes(), &options(), &mut sink).unwrap_err();
        assert!(matches!(err, ImportError::Malformed { format: "TCX", .. }), "{err}");
        assert_eq!(sink.fixes().len(), 1);
        assert_eq!(sink.fixes()[0].motion, Some(Motion::Cycling));
    }
}
