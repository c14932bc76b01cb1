//! GPX 1.0 and 1.1, streamed with a pull parser: one point in memory at a time.
//!
//! What becomes what:
//!
//! * `trkpt`, `rtept` and `wpt` with a `<time>` become fixes. Waypoints with
//!   times are how Arc App writes visits; route points normally have no time.
//!   A point without `<time>` is rejected ("trkpt without <time>"): a point's
//!   identity includes its time, so a time-less point cannot be stored.
//! * Children are matched by name, never by position (Arc writes `<time>`
//!   before `<ele>`, GPSLogger writes `<extensions>` before `<geoidheight>`).
//! * Elements are matched by **namespace URI**, never by prefix. GPX core
//!   elements are accepted in the 1.0 and 1.1 namespaces and in no namespace
//!   at all (files with a bare `<gpx>`).
//! * GPX 1.0 `<speed>`/`<course>` on the point, Garmin TrackPointExtension
//!   v2 `speed`/`course`/`bearing`, OsmAnd's `speed`, and un-namespaced
//!   `<speed>`/`<accuracy>`/`<course>` inside `<extensions>` fill columns.
//!   Everything else the point says (`hdop`, `sat`, `fix`, `src`, `name`,
//!   `desc`, Garmin `hr`/`cad`/`atemp`, unknown extension leaves...) goes to
//!   the extras under its local name, numbers verbatim.
//! * A track's `<type>` (Arc: `walking`, `taxi`) becomes the points' motion
//!   when polo knows the word, else the extras key `track_type`.
//! * polo's own export (namespace [`fields::GPX_NAMESPACE`]) round-trips
//!   exactly: `polo:accuracy`, `polo:vertical_accuracy`, `polo:speed`,
//!   `polo:course`, `polo:battery`, `polo:motion`, `polo:source` and
//!   `polo:extras` map back to the fields they came from, and the track's
//!   `polo:device` becomes the device hint.
//!
//! Times without a zone are read as UTC and flagged (`zone_assumed`), as the
//! GPX convention says; every `<time>` is parsed on its own.

use std::io::BufRead;

use polo_domain::time::{ParsedTime, parse_timestamp};
use polo_domain::{Coord, Fix, Motion, SourceFormat};

use crate::extras::ExtrasBuilder;
use crate::fields;
use crate::measure::{self, Column, OutOfRange};
use crate::xml::{self, Node, XmlStream};
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

const GARMIN_TPX: &str = "http://www.garmin.com/xmlschemas/TrackPointExtension/";
const OSMAND: &str = "https://osmand.net";

/// True for the GPX namespaces, and for no namespace at all.
fn is_gpx_ns(ns: &str) -> bool {
    ns.is_empty() || ns.starts_with("http://www.topografix.com/GPX/")
}

/// Where in the document an element sits, as far as the importer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Anything that holds nothing of interest (metadata, links, unknown).
    Other,
    Gpx,
    Trk,
    TrkExtensions,
    Seg,
    Rte,
    Point,
    /// `<extensions>` of a point, and everything below it.
    PointExtensions,
}

/// The point being read, reused from one point to the next.
struct PendingPoint {
    kind: &'static str,
    position: Position,
    raw: String,
    coord: Result<Coord, String>,
    time: Option<Result<ParsedTime, String>>,
    altitude: Option<f64>,
    accuracy: Option<f64>,
    vertical_accuracy: Option<f64>,
    speed: Option<f64>,
    course: Option<f64>,
    battery: Option<f64>,
    motion: Option<Motion>,
    source: Option<SourceFormat>,
    device: Option<String>,
    extras: ExtrasBuilder,
    /// Why the point is refused whatever else it says: a token of it was
    /// over [`crate::MAX_TOKEN`].
    refused: Option<String>,
}

impl PendingPoint {
    fn new() -> Self {
        Self {
            kind: "trkpt",
            position: Position::Byte(0),
            raw: String::new(),
            coord: Err(String::new()),
            time: None,
            altitude: None,
            accuracy: None,
            vertical_accuracy: None,
            speed: None,
            course: None,
            battery: None,
            motion: None,
            source: None,
            device: None,
            extras: ExtrasBuilder::new(),
            refused: None,
        }
    }

    fn start(&mut self, kind: &'static str, position: Position, tag: &quick_xml::events::BytesStart<'_>) {
        self.kind = kind;
        self.position = position;
        xml::tag_text(tag, &mut self.raw);
        self.coord = read_coord(kind, tag);
        self.time = None;
        self.altitude = None;
        self.accuracy = None;
        self.vertical_accuracy = None;
        self.speed = None;
        self.course = None;
        self.battery = None;
        self.motion = None;
        self.source = None;
        self.device = None;
        self.extras = ExtrasBuilder::new();
        self.refused = None;
    }

    /// A direct child of the point in the GPX namespace.
    fn core_child(&mut self, local: &str, text: &str) {
        match local {
            "time" => {
                if self.time.is_none() {
                    self.time = Some(parse_timestamp(text).map_err(|e| format!("<time>: {e}")));
                }
            }
            "ele" => set_number(&mut self.altitude, &mut self.extras, local, text),
            "speed" => set_number(&mut self.speed, &mut self.extras, local, text),
            "course" => set_number(&mut self.course, &mut self.extras, local, text),
            _ => xml::push_extra(&mut self.extras, local, text),
        }
    }

    /// A leaf inside `<extensions>` (or a foreign-namespace child of the point).
    fn extension_leaf(&mut self, ns: &str, local: &str, text: &str) {
        if ns == fields::GPX_NAMESPACE {
            self.polo_leaf(local, text);
            return;
        }
        let column = if ns.starts_with(GARMIN_TPX) {
            match local {
                "speed" => Some(&mut self.speed),
                "course" | "bearing" => Some(&mut self.course),
                _ => None,
            }
        } else if ns == OSMAND {
            (local == "speed").then_some(&mut self.speed)
        } else if is_gpx_ns(ns) {
            match local {
                "speed" => Some(&mut self.speed),
                "accuracy" => Some(&mut self.accuracy),
                "course" => Some(&mut self.course),
                _ => None,
            }
        } else {
            None
        };
        match column {
            Some(slot) => set_number(slot, &mut self.extras, local, text),
            None => xml::push_extra(&mut self.extras, local, text),
        }
    }

    /// polo's own extension elements.
    fn polo_leaf(&mut self, local: &str, text: &str) {
        let slot = match local {
            fields::ACCURACY => &mut self.accuracy,
            fields::VERTICAL_ACCURACY => &mut self.vertical_accuracy,
            fields::SPEED => &mut self.speed,
            fields::COURSE => &mut self.course,
            fields::BATTERY => &mut self.battery,
            fields::MOTION => {
                self.motion = motion_from_name(text.trim());
                if self.motion.is_none() {
                    xml::push_extra(&mut self.extras, local, text);
                }
                return;
            }
            fields::SOURCE => {
                self.source = SourceFormat::from_name(text.trim());
                return;
            }
            fields::DEVICE => {
                self.device = Some(text.trim().to_owned()).filter(|d| !d.is_empty());
                return;
            }
            fields::EXTRAS => {
                self.extras.merge_object(text);
                return;
            }
            _ => {
                xml::push_extra(&mut self.extras, local, text);
                return;
            }
        };
        set_number(slot, &mut self.extras, local, text);
    }

    /// Emits the finished point (or its reject).
    fn finish(&mut self, track: &TrackState, options: &ImportOptions, sink: &mut dyn Sink) {
        if let Some(why) = self.refused.take() {
            return self.reject(sink, why);
        }
        let time = match self.time.take() {
            Some(Ok(t)) => t,
            Some(Err(why)) => return self.reject(sink, why),
            None => return self.reject(sink, format!("{} without <time>", self.kind)),
        };
        let coord = match &self.coord {
            Ok(c) => *c,
            Err(why) => return self.reject(sink, why.clone()),
        };
        if let Err(why) = options.check_time(time.time) {
            return self.reject(sink, why);
        }
        let mut fix = Fix::new(time.time, coord, self.source.unwrap_or(SourceFormat::Gpx));
        fix.utc_offset_minutes = time.offset_minutes;
        fix.zone_assumed = time.zone_assumed;
        let mut out_of_range = OutOfRange::default();
        for (value, column, key) in [
            (self.altitude, Column::Altitude, "ele"),
            (self.accuracy, Column::Accuracy, "accuracy"),
            (self.vertical_accuracy, Column::VerticalAccuracy, "vertical_accuracy"),
            (self.speed, Column::Speed, "speed"),
            (self.course, Column::Course, "course"),
            (self.battery, Column::Battery, "battery"),
        ] {
            if let Some(v) = value {
                measure::set_as(&mut fix, column, v, key, &mut self.extras, &mut out_of_range);
            }
        }
        out_of_range.report(sink);
        fix.motion = self.motion.or(track.motion);
        let mut extras = std::mem::take(&mut self.extras);
        if let Some(kind) = &track.unknown_type {
            extras.string("track_type", kind);
        }
        fix.extras = extras.finish();
        sink.point(fix, self.device.as_deref().or(track.device.as_deref()));
    }

    fn reject(&self, sink: &mut dyn Sink, reason: String) {
        sink.reject(Reject::new(self.position, reason, &self.raw));
    }
}

/// What the enclosing `<trk>` says about its points.
#[derive(Default)]
struct TrackState {
    device: Option<String>,
    motion: Option<Motion>,
    unknown_type: Option<String>,
}

fn read_coord(kind: &str, tag: &quick_xml::events::BytesStart<'_>) -> Result<Coord, String> {
    let read = |name: &str| -> Result<f64, String> {
        let text = xml::attribute(tag, name).ok_or_else(|| format!("{kind} without {name} attribute"))?;
        xml::number(&text).ok_or_else(|| format!("{kind} {name} {:?} is not a number", text.trim()))
    };
    let lat = read("lat")?;
    let lon = read("lon")?;
    Coord::from_degrees(lat, lon).map_err(|e| format!("{kind} lat/lon: {e}"))
}

/// Stores a number into its column; text that is not a number is kept in
/// the extras under its element name instead of being lost.
fn set_number(slot: &mut Option<f64>, extras: &mut ExtrasBuilder, key: &str, text: &str) {
    if slot.is_some() {
        return;
    }
    match xml::number(text) {
        Some(v) => *slot = Some(v),
        None => xml::push_extra(extras, key, text),
    }
}

/// polo's motion names first, then the general activity vocabulary.
pub(crate) fn motion_from_name(name: &str) -> Option<Motion> {
    (1..=9).filter_map(Motion::from_code).find(|m| m.name() == name).or_else(|| Motion::from_activity_name(name))
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut xml = XmlStream::new(reader, "GPX")?;
    let mut stack: Vec<Ctx> = Vec::with_capacity(16);
    let mut point = PendingPoint::new();
    let mut track = TrackState::default();
    loop {
        match xml.next()? {
            Node::Start { ns, local, tag, at } => {
                let parent = stack.last().copied();
                let gpx = is_gpx_ns(ns);
                let ctx = match parent {
                    None if local == "gpx" => Ctx::Gpx,
                    Some(Ctx::Gpx) if gpx => match local {
                        "wpt" => Ctx::Point,
                        "trk" => Ctx::Trk,
                        "rte" => Ctx::Rte,
                        _ => Ctx::Other,
                    },
                    Some(Ctx::Trk) if gpx => match local {
                        "trkseg" => Ctx::Seg,
                        "extensions" => Ctx::TrkExtensions,
                        // Tolerated: points straight in <trk> without a segment.
                        "trkpt" => Ctx::Point,
                        _ => Ctx::Other,
                    },
                    Some(Ctx::Seg) if gpx && local == "trkpt" => Ctx::Point,
                    Some(Ctx::Rte) if gpx && local == "rtept" => Ctx::Point,
                    Some(Ctx::Point) if gpx && local == "extensions" => Ctx::PointExtensions,
                    Some(Ctx::Point) if gpx && local == "link" => {
                        if let Some(href) = xml::attribute(&tag, "href") {
                            point.extras.string("link", &href);
                        }
                        Ctx::Other
                    }
                    Some(Ctx::Point) if !gpx => Ctx::PointExtensions,
                    Some(Ctx::PointExtensions) => Ctx::PointExtensions,
                    _ => Ctx::Other,
                };
                match ctx {
                    Ctx::Point => {
                        let kind = match local {
                            "wpt" => "wpt",
                            "rtept" => "rtept",
                            _ => "trkpt",
                        };
                        point.start(kind, at, &tag);
                    }
                    Ctx::Trk | Ctx::Rte => track = TrackState::default(),
                    _ => {}
                }
                stack.push(ctx);
            }
            Node::End { ns, local, leaf, text } => {
                let Some(ctx) = stack.pop() else { continue };
                let parent = stack.last().copied();
                match (ctx, parent) {
                    (Ctx::Point, _) => point.finish(&track, options, sink),
                    (Ctx::Other, Some(Ctx::Point)) if leaf => point.core_child(local, text),
                    (Ctx::PointExtensions, Some(Ctx::Point | Ctx::PointExtensions)) if leaf => {
                        point.extension_leaf(ns, local, text);
                    }
                    (Ctx::Other, Some(Ctx::Trk)) if leaf && local == "type" => {
                        let kind = text.trim();
                        track.motion = motion_from_name(kind);
                        track.unknown_type = (track.motion.is_none() && !kind.is_empty()).then(|| kind.to_owned());
                    }
                    (Ctx::Other, Some(Ctx::TrkExtensions))
                        if leaf && ns == fields::GPX_NAMESPACE && local == fields::DEVICE =>
                    {
                        let device = text.trim();
                        track.device = (!device.is_empty()).then(|| device.to_owned());
                    }
                    _ => {}
                }
            }
            Node::Oversized { at, what } => {
                let why = format!("{} at {at}", crate::bounded::too_long(what));
                if stack.contains(&Ctx::Point) {
                    point.refused.get_or_insert(why);
                } else {
                    sink.reject(Reject::new(at, why, ""));
                }
            }
            Node::Eof => {
                return match stack.last() {
                    Some(_) => Err(xml.truncated(open_name(&stack))),
                    None => Ok(()),
                };
            }
        }
    }
}

/// A name for the innermost open element, for the truncation error.
fn open_name(stack: &[Ctx]) -> &'static str {
    match stack.last() {
        Some(Ctx::Point) => "trkpt",
        Some(Ctx::Seg) => "trkseg",
        Some(Ctx::Trk) => "trk",
        Some(Ctx::Rte) => "rte",
        Some(Ctx::Gpx) => "gpx",
        _ => "an element",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, ms, options};

    fn run(xml: &str) -> Collect {
        let mut sink = Collect::default();
        import(xml.as_bytes(), &options(), &mut sink).unwrap();
        sink
    }

    const GPX11: &str = r#"<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1""#;

    #[test]
    fn track_points_in_a_plain_gpx_1_1_file() {
        let s = run(&format!(
            r#"{GPX11}><trk><name>x</name><trkseg>
            <trkpt lat="48.1" lon="11.5"><ele>520.5</ele><time>2024-05-01T10:00:00Z</time></trkpt>
            <trkpt lat="48.2" lon="11.6"><time>2024-05-01T10:00:05Z</time></trkpt>
            </trkseg></trk></gpx>"#
        ));
        assert!(s.rejects.is_empty(), "{:?}", s.rejects);
        let f = s.fixes();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].coord, Coord::from_degrees(48.1, 11.5).unwrap());
        assert_eq!(f[0].altitude_cm, Some(52050));
        assert_eq!(f[0].time.0, ms("2024-05-01T10:00:00Z"));
        assert_eq!((f[0].utc_offset_minutes, f[0].zone_assumed), (None, false));
        assert_eq!(f[1].source, SourceFormat::Gpx);
        assert!(f[1].extras.is_none());
    }

    #[test]
    fn bom_and_blank_line_before_declaration_and_no_namespace() {
        let s = run(
            "\u{feff}\n\n<?xml version=\"1.0\"?>\n<gpx><wpt lat=\"43.3\" lon=\"3.5\"><time>2016-05-27T10:08:47.8Z</time></wpt></gpx>",
        );
        assert_eq!(s.points.len(), 1);
        assert_eq!(s.points[0].0.time.0, ms("2016-05-27T10:08:47.800Z"));
    }

    #[test]
    fn children_in_any_order() {
        // Arc writes <time> before <ele>; GPSLogger writes <extensions> before <geoidheight>.
        let s = run(&format!(
            r#"{GPX11} xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v2"><trk><trkseg>
            <trkpt lat="10.75" lon="106.64"><time>2024-11-03T16:30:11.331+07:00</time><ele>17.6</ele>
              <extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>2.8</gpxtpx:speed></gpxtpx:TrackPointExtension></extensions>
              <geoidheight>-1.6</geoidheight><src>gps</src><sat>3</sat><hdop>1.9</hdop></trkpt>
            </trkseg></trk></gpx>"#
        ));
        let f = s.fixes()[0];
        assert_eq!(f.altitude_cm, Some(1760));
        assert_eq!(f.speed_cm_s, Some(280));
        assert_eq!(f.utc_offset_minutes, Some(420));
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"geoidheight":-1.6,"src":"gps","sat":3,"hdop":1.9}"#);
    }

    #[test]
    fn garmin_extension_matched_by_uri_whatever_the_prefix() {
        for (prefix, version) in [("gpxtpx", "v1"), ("ns3", "v1"), ("tp1", "v2")] {
            let s = run(&format!(
                r#"{GPX11} xmlns:{prefix}="http://www.garmin.com/xmlschemas/TrackPointExtension/{version}"><wpt lat="37.7" lon="-122.3">
                <time>2016-06-17T23:41:03Z</time><extensions><{prefix}:TrackPointExtension>
                <{prefix}:hr>171</{prefix}:hr><{prefix}:cad>80</{prefix}:cad><{prefix}:atemp>21.5</{prefix}:atemp>
                <{prefix}:speed>3.5</{prefix}:speed><{prefix}:course>270.5</{prefix}:course>
                </{prefix}:TrackPointExtension></extensions></wpt></gpx>"#
            ));
            let f = s.fixes()[0];
            assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"hr":171,"cad":80,"atemp":21.5}"#, "{prefix}");
            assert_eq!((f.speed_cm_s, f.course_centideg), (Some(350), Some(27050)));
        }
        // The same local names in a namespace polo does not know are just extras.
        let s = run(&format!(
            r#"{GPX11} xmlns:x="urn:other"><wpt lat="1" lon="1"><time>2016-06-17T23:41:03Z</time>
            <extensions><x:speed>9</x:speed></extensions></wpt></gpx>"#
        ));
        assert_eq!(s.fixes()[0].speed_cm_s, None);
        assert_eq!(s.fixes()[0].extras.as_ref().unwrap().as_str(), r#"{"speed":9}"#);
    }

    #[test]
    fn osmand_speed_and_unnamespaced_extension_fields() {
        let s = run(&format!(
            r#"{GPX11} xmlns:osmand="https://osmand.net"><trk><trkseg>
            <trkpt lat="37.17" lon="-3.55"><time>2024-04-21T10:19:55Z</time><hdop>3.8</hdop>
              <extensions><osmand:speed>2.9</osmand:speed></extensions></trkpt>
            <trkpt lat="37.18" lon="-3.55"><time>2024-04-21T10:19:56Z</time>
              <extensions><speed>1.25</speed><accuracy>4.5</accuracy><course>90</course><security>Open</security></extensions></trkpt>
            </trkseg></trk></gpx>"#
        ));
        let f = s.fixes();
        assert_eq!(f[0].speed_cm_s, Some(290));
        assert_eq!(f[0].extras.as_ref().unwrap().as_str(), r#"{"hdop":3.8}"#);
        assert_eq!(
            (f[1].speed_cm_s, f[1].horizontal_accuracy_cm, f[1].course_centideg),
            (Some(125), Some(450), Some(9000))
        );
        assert_eq!(f[1].extras.as_ref().unwrap().as_str(), r#"{"security":"Open"}"#);
        // Without any namespace declaration at all.
        let s = run(
            r#"<gpx><wpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time><extensions><speed>3</speed></extensions></wpt></gpx>"#,
        );
        assert_eq!(s.fixes()[0].speed_cm_s, Some(300));
    }

    #[test]
    fn gpx_1_0_speed_and_course_on_the_point() {
        let s = run(r#"<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"><trk><trkseg>
            <trkpt lat="52.4" lon="13.4"><time>2013-06-13T03:56:35Z</time><course>123.4</course><speed>0.285000</speed>
            <fix>3d</fix><sat>7</sat><name>p1</name><desc>a &amp; b</desc></trkpt></trkseg></trk></gpx>"#);
        let f = s.fixes()[0];
        // 0.285 m/s is 28.4999… cm/s in binary floating point.
        assert_eq!((f.speed_cm_s, f.course_centideg), (Some(28), Some(12340)));
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"fix":"3d","sat":7,"name":"p1","desc":"a & b"}"#);
    }

    #[test]
    fn routes_and_waypoints() {
        let s = run(&format!(
            r#"{GPX11}><wpt lat="16.8" lon="100.2"><time>2024-12-17T19:40:05+07:00</time><name>Hotel &amp; Center</name></wpt>
            <wpt lat="13.4" lon="46.7"></wpt>
            <rte><rtept lat="45.27" lon="13.72"><name>#001</name></rtept>
            <rtept lat="45.28" lon="13.73"><time>2013-01-02T02:03:03Z</time></rtept></rte></gpx>"#
        ));
        assert_eq!(s.points.len(), 2);
        assert_eq!(s.fixes()[0].extras.as_ref().unwrap().as_str(), r#"{"name":"Hotel & Center"}"#);
        let reasons: Vec<_> = s.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["wpt without <time>", "rtept without <time>"]);
        assert!(s.rejects[1].raw.starts_with("<rtept lat=\"45.27\""), "{}", s.rejects[1].raw);
    }

    #[test]
    fn points_without_time_are_rejected_with_their_position() {
        let text = format!(
            r#"{GPX11}><trk><trkseg><trkpt lat="45.38" lon="14.14"><ele>733.6</ele></trkpt></trkseg></trk></gpx>"#
        );
        let s = run(&text);
        assert!(s.points.is_empty());
        assert_eq!(s.rejects[0].reason, "trkpt without <time>");
        let offset = text.find("<trkpt").unwrap() as u64;
        assert_eq!(s.rejects[0].position, Position::Byte(offset));
    }

    #[test]
    fn naive_sub_second_and_offset_times() {
        let s = run(&format!(
            r#"{GPX11}><trk><trkseg>
            <trkpt lat="10.1" lon="-20.2"><time>2013-01-01T12:00:04</time></trkpt>
            <trkpt lat="10.1" lon="-20.2"><time>2021-10-10T09:55:20.952</time></trkpt>
            <trkpt lat="57.01" lon="9.99"><time>2015-12-11T15:43:13.994+01:00</time></trkpt>
            <trkpt lat="57.01" lon="9.99"><time>2015-12-11T15:43:14.2Z</time></trkpt>
            </trkseg></trk></gpx>"#
        ));
        let f = s.fixes();
        assert!(f[0].zone_assumed && f[1].zone_assumed && !f[2].zone_assumed);
        assert_eq!(f[0].time.0, ms("2013-01-01T12:00:04Z"));
        assert_eq!(f[1].time.0, ms("2021-10-10T09:55:20.952Z"));
        assert_eq!(f[2].time.0, ms("2015-12-11T14:43:13.994Z"));
        assert_eq!(f[2].utc_offset_minutes, Some(60));
        assert_eq!(f[3].time.0 % 1000, 200);
    }

    #[test]
    fn thirty_digit_coordinates() {
        let s = run(&format!(
            r#"{GPX11}><trk><trkseg><trkpt lat="48.830705098807811737060546875" lon="2.100000000000000088817841970012523">
            <time>2020-01-01T00:00:00Z</time></trkpt></trkseg></trk></gpx>"#
        ));
        assert_eq!(s.fixes()[0].coord, Coord { lat_e7: 488_307_051, lon_e7: 21_000_000 });
    }

    #[test]
    fn bad_coordinates_and_times_are_rejected_naming_the_field() {
        let s = run(&format!(
            r#"{GPX11}><trk><trkseg>
            <trkpt lat="0" lon="0"><time>2020-01-01T00:00:00Z</time></trkpt>
            <trkpt lat="91" lon="10"><time>2020-01-01T00:00:01Z</time></trkpt>
            <trkpt lat="abc" lon="10"><time>2020-01-01T00:00:02Z</time></trkpt>
            <trkpt lon="10"><time>2020-01-01T00:00:03Z</time></trkpt>
            <trkpt lat="1" lon="10"><time>yesterday</time></trkpt>
            <trkpt lat="1" lon="10"><time>1970-01-01T00:00:00Z</time></trkpt>
            <trkpt lat="1" lon="10"><time>2099-01-01T00:00:00Z</time></trkpt>
            </trkseg></trk></gpx>"#
        ));
        assert!(s.points.is_empty());
        let reasons: Vec<_> = s.rejects.iter().map(|r| r.reason.clone()).collect();
        assert!(reasons[0].contains("0,0"), "{reasons:?}");
        assert!(reasons[1].contains("latitude 91"), "{reasons:?}");
        assert!(reasons[2].contains("lat \"abc\" is not a number"), "{reasons:?}");
        assert!(reasons[3].contains("without lat attribute"), "{reasons:?}");
        assert!(reasons[4].starts_with("<time>:"), "{reasons:?}");
        assert!(reasons[5].contains("before 1985"), "{reasons:?}");
        assert!(reasons[6].contains("future"), "{reasons:?}");
    }

    #[test]
    fn empty_segments_tracks_and_single_line_files() {
        let s = run(&format!(
            r#"{GPX11}><trk><trkseg/><trkseg></trkseg></trk><trk></trk><trk><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time></trkpt></trkseg></trk></gpx>"#
        ));
        assert_eq!((s.points.len(), s.rejects.len()), (1, 0));
    }

    #[test]
    fn metadata_time_and_names_do_not_leak_into_points() {
        let s = run(&format!(
            r#"{GPX11}><metadata><name>m</name><time>2013-01-01T12:00:00</time></metadata>
            <trk><name>T</name><type>walking</type><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time></trkpt></trkseg></trk>
            <trk><type>jkljkl</type><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:01Z</time>
            <link href="http://x"><text>t</text></link></trkpt></trkseg></trk></gpx>"#
        ));
        let f = s.fixes();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].motion, f[0].extras.as_ref()), (Some(Motion::Walking), None));
        assert_eq!(f[1].extras.as_ref().unwrap().as_str(), r#"{"link":"http://x","track_type":"jkljkl"}"#);
    }

    #[test]
    fn extension_trees_keep_their_leaves() {
        let s = run(
            r#"<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1" xmlns:ext="gpx.py"><wpt lat="12.3" lon="45.6">
            <time>2013-01-02T02:03:00Z</time><extensions><ext:aaa ext:jjj="kkk">bbb</ext:aaa>hhh
            <ext:ccc><ext:ddd lll="mmm">eee<ext:fff>ggg</ext:fff>iii</ext:ddd></ext:ccc></extensions></wpt></gpx>"#,
        );
        assert_eq!(s.fixes()[0].extras.as_ref().unwrap().as_str(), r#"{"aaa":"bbb","fff":"ggg"}"#);
    }

    #[test]
    fn polo_export_round_trips_exactly() {
        let time = polo_domain::Timestamp(1_717_243_323_456);
        let mut want =
            Fix::new(time, Coord::from_degrees(52.520_008_1, -13.404_954_3).unwrap(), SourceFormat::Owntracks);
        want.utc_offset_minutes = Some(120);
        want.altitude_cm = Some(-1234);
        want.horizontal_accuracy_cm = Some(550);
        want.vertical_accuracy_cm = Some(300);
        want.speed_cm_s = Some(1389);
        want.course_centideg = Some(35_999);
        want.battery_percent = Some(87);
        want.motion = Some(Motion::Walking);
        want.extras = Some(polo_domain::Extras::from_json_object(r#"{"tid":"RO","inregions":["home"],"p":100.266}"#));
        let mut naive = Fix::new(Timestamp(1_000_000_000_000), Coord { lat_e7: 1, lon_e7: -1 }, SourceFormat::Gpx);
        naive.zone_assumed = true;
        let points: String = [&want, &naive]
            .iter()
            .map(|f| {
                let mut ext = String::new();
                let mut tag = |name: &str, v: Option<String>| {
                    if let Some(v) = v {
                        ext.push_str(&format!("<polo:{name}>{v}</polo:{name}>"));
                    }
                };
                tag(fields::ACCURACY, f.horizontal_accuracy_m().map(|v| v.to_string()));
                tag(fields::VERTICAL_ACCURACY, f.vertical_accuracy_m().map(|v| v.to_string()));
                tag(fields::SPEED, f.speed_m_s().map(|v| v.to_string()));
                tag(fields::COURSE, f.course_deg().map(|v| v.to_string()));
                tag(fields::BATTERY, f.battery_percent.map(|v| v.to_string()));
                tag(fields::MOTION, f.motion.map(|m| m.name().to_owned()));
                tag(fields::SOURCE, Some(f.source.name().to_owned()));
                tag(fields::EXTRAS, f.extras.as_ref().map(|e| e.as_str().replace('&', "&amp;").replace('<', "&lt;")));
                let ele = f.altitude_m().map(|v| format!("<ele>{v}</ele>")).unwrap_or_default();
                format!(
                    r#"<trkpt lat="{}" lon="{}">{ele}<time>{}</time><extensions>{ext}</extensions></trkpt>"#,
                    f.coord.lat(),
                    f.coord.lon(),
                    f.time.to_text(f.utc_offset_minutes, f.zone_assumed)
                )
            })
            .collect();
        let doc = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="polo" xmlns="http://www.topografix.com/GPX/1/1" xmlns:polo="{}"><trk><name>Pixel 7</name><extensions><polo:device>Pixel 7</polo:device></extensions><trkseg>{points}</trkseg></trk></gpx>"#,
            fields::GPX_NAMESPACE
        );
        let s = run(&doc);
        assert!(s.rejects.is_empty(), "{:?}", s.rejects);
        assert_eq!(s.points[0], (want, Some("Pixel 7".to_owned())));
        assert_eq!(s.points[1], (naive, Some("Pixel 7".to_owned())));
    }

    use polo_domain::Timestamp;

    #[test]
    fn malformed_xml_ends_the_file_after_the_good_points() {
        let mut sink = Collect::default();
        let text = format!(
            r#"{GPX11}><trk><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time></trkpt><trkpt lat="1"</trkseg>"#
        );
        let err = import(text.as_bytes(), &options(), &mut sink).unwrap_err();
        assert!(matches!(err, ImportError::Malformed { format: "GPX", .. }), "{err}");
        assert_eq!(sink.points.len(), 1);
    }
}
