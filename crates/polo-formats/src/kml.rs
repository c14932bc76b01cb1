//! KML content (a `.kml` file, or the KML inside a KMZ), streamed.
//!
//! KML describes map features, not fixes, so the importer decides what each
//! feature means for a location history:
//!
//! * `gx:Track` (and KML 2.3's un-prefixed `Track`): parallel lists of
//!   `<when>` and `<gx:coord>lon lat alt</gx:coord>` (space separated).
//!   Google Earth writes all whens first, then all coords, so the lists are
//!   queues paired by index (`kml/track.rs`): the first min(N, M) pairs
//!   become fixes, every surplus `<when>` or `<gx:coord>` is rejected with
//!   the counts in the reason. `gx:angles` gives the course,
//!   `SchemaData/gx:SimpleArrayData` per-point extras. A track is held at
//!   most up to 16 MiB of unpaired entries (about 200,000 points); past
//!   that its oldest points are emitted early, or rejected when their
//!   partner is that far away, so memory is bounded whatever the track.
//! * `gx:MultiTrack` is a group of tracks; each is read as above.
//! * `Placemark` + `TimeStamp/when` + `Point` → a fix. + `TimeSpan` + `Point`
//!   → a visit interval. + `TimeSpan` + `LineString` → an activity interval
//!   from the first to the last vertex (Google's daily Timeline KML).
//!   LineString vertices carry no time of their own, so they never become
//!   points; a LineString with only a `TimeStamp` becomes a zero-length
//!   activity at that instant, and one with no time at all is rejected
//!   ("no time"). A `TimeSpan` with only one end is read as an instant.
//! * The text of a Point's or LineString's `<coordinates>` streams in
//!   (`kml/coordinates.rs`): a path of millions of vertices is read in
//!   bounded memory, keeping only what the placemark needs (the first tuple
//!   of a Point; the first and last vertex and the count of a LineString).
//! * `MultiGeometry`, nested `Folder`s and `Document`s are walked; the
//!   placemark's time applies to every geometry inside it. (Times inherited
//!   from an enclosing Folder are not applied.)
//! * `ExtendedData` (`Data/value` and `SchemaData/SimpleData`): `speed`,
//!   `accuracy`, `battery`, `altitude`, `course`/`heading`/`bearing` fill
//!   columns, `Category` and `Distance` fill an interval's category and
//!   distance; everything else, and the placemark's `name`, `description` and
//!   `address`, go to the extras (or the interval's name).
//! * Namespaces are matched by URI: OGC 2.2/2.3, the old
//!   `earth.google.com/kml/2.x`, none at all, and gx
//!   (`http://www.google.com/kml/ext/2.2`) are all accepted.
//! * `when` may be reduced precision (`2014`, `2014-05`): the lenient
//!   timestamp parser reads it as the first instant of that period, UTC
//!   assumed.

use std::io::BufRead;

use polo_domain::time::{ParsedTime, parse_timestamp};
use polo_domain::{Coord, Fix, Interval, IntervalKind, SourceFormat};

use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::xml::{self, Node, XmlStream};

mod coordinates;
mod track;
use crate::{ImportError, ImportOptions, Position, Reject, Sink};
use coordinates::{Coordinates, Geometry};
use track::Track;

const GX: &str = "http://www.google.com/kml/ext/2.2";

fn is_kml_ns(ns: &str) -> bool {
    ns.is_empty()
        || ns.starts_with("http://www.opengis.net/kml/")
        || ns.starts_with("http://earth.google.com/kml/")
        || ns == GX
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Other,
    Container,
    Placemark,
    TimeStamp,
    TimeSpan,
    ExtendedData,
    Data,
    SchemaData,
    Point,
    LineString,
    MultiGeometry,
    MultiTrack,
    Track,
    TrackExtendedData,
    TrackSchemaData,
    TrackArray,
}

/// A parsed position with optional altitude.
type Position3 = (Coord, Option<f64>);

/// A LineString reduced to what an activity interval needs.
struct Line {
    first: Coord,
    last: Coord,
    vertices: usize,
}

/// The placemark being read. Geometry is collected and emitted at the
/// placemark's end tag, because `ExtendedData` and the time may come after it.
#[derive(Default)]
struct Placemark {
    position: Option<Position>,
    name: Option<String>,
    description: Option<String>,
    address: Option<String>,
    when: Option<String>,
    begin: Option<String>,
    end: Option<String>,
    data: Vec<(String, String)>,
    points: Vec<(Position, Result<Position3, String>, String)>,
    lines: Vec<(Position, Result<Line, String>, String)>,
    /// Why the placemark is refused whatever else it says: a token of it
    /// was over [`crate::MAX_TOKEN`], or it held too much.
    refused: Option<String>,
    /// Approximate bytes of `data`, `points` and `lines`.
    held: usize,
}

/// Measurements and labels from `ExtendedData`.
#[derive(Default)]
struct Measures {
    speed: Option<f64>,
    accuracy: Option<f64>,
    battery: Option<f64>,
    altitude: Option<f64>,
    course: Option<f64>,
    category: Option<String>,
    distance: Option<f64>,
}

enum When {
    Instant(ParsedTime),
    Span(ParsedTime, ParsedTime),
}

impl Placemark {
    /// Counts `bytes` more of geometries or data against [`track::HELD_BYTES`];
    /// false (and the placemark refused, what it held dropped) past it. Each
    /// token is bounded, but a placemark of a million `<Point>`s or `<Data>`
    /// would not be.
    fn hold(&mut self, bytes: usize) -> bool {
        if self.refused.is_some() {
            return false;
        }
        self.held += bytes + 64;
        if self.held <= track::HELD_BYTES {
            return true;
        }
        self.refused = Some(format!(
            "a Placemark holding over {} MiB of geometries and ExtendedData: skipped",
            track::HELD_BYTES >> 20
        ));
        self.data = Vec::new();
        self.points = Vec::new();
        self.lines = Vec::new();
        false
    }

    fn when(&self) -> Result<Option<When>, String> {
        let parse = |label: &str, text: &str| parse_timestamp(text).map_err(|e| format!("<{label}>: {e}"));
        if let Some(w) = &self.when {
            return parse("when", w).map(|t| Some(When::Instant(t)));
        }
        match (&self.begin, &self.end) {
            (Some(b), Some(e)) => {
                let (b, e) = (parse("begin", b)?, parse("end", e)?);
                if e.time < b.time {
                    return Err(format!("TimeSpan ends ({}) before it begins ({})", e.time, b.time));
                }
                Ok(Some(When::Span(b, e)))
            }
            (Some(t), None) => parse("begin", t).map(|t| Some(When::Instant(t))),
            (None, Some(t)) => parse("end", t).map(|t| Some(When::Instant(t))),
            (None, None) => Ok(None),
        }
    }

    /// Splits `ExtendedData` into columns and extras.
    fn measures(&self, extras: &mut ExtrasBuilder) -> Measures {
        let mut m = Measures::default();
        for (name, value) in &self.data {
            let number = xml::number(value);
            let slot = match name.to_ascii_lowercase().as_str() {
                "speed" => &mut m.speed,
                "accuracy" => &mut m.accuracy,
                "battery" => &mut m.battery,
                "altitude" | "elevation" => &mut m.altitude,
                "course" | "heading" | "bearing" => &mut m.course,
                "distance" => &mut m.distance,
                "category" if !value.trim().is_empty() => {
                    m.category = Some(value.trim().to_owned());
                    continue;
                }
                _ => {
                    xml::push_extra(extras, name, value);
                    continue;
                }
            };
            match number {
                Some(v) if slot.is_none() => *slot = Some(v),
                _ => xml::push_extra(extras, name, value),
            }
        }
        m
    }

    fn emit(&mut self, options: &ImportOptions, sink: &mut dyn Sink) {
        if let Some(why) = self.refused.take() {
            let position = self.position.unwrap_or(Position::Byte(0));
            sink.reject(Reject::new(position, why, self.name.as_deref().unwrap_or_default()));
            return;
        }
        if self.points.is_empty() && self.lines.is_empty() {
            return;
        }
        let position = self.position.unwrap_or(Position::Byte(0));
        let label = self.name.clone().unwrap_or_default();
        let when = match self.when() {
            Ok(w) => w,
            Err(why) => {
                sink.reject(Reject::new(position, why, &label));
                return;
            }
        };
        for (at, coord, raw) in std::mem::take(&mut self.points) {
            let coord = match coord {
                Ok(c) => c,
                Err(why) => {
                    sink.reject(Reject::new(at, why, &raw));
                    continue;
                }
            };
            match &when {
                None => sink.reject(Reject::new(
                    at,
                    "Placemark Point without time (no TimeStamp or TimeSpan)",
                    &format!("{label} {raw}"),
                )),
                Some(When::Instant(t)) => {
                    if let Err(why) = options.check_time(t.time) {
                        sink.reject(Reject::new(at, why, &raw));
                        continue;
                    }
                    let mut extras = ExtrasBuilder::new();
                    for (key, value) in
                        [("name", &self.name), ("description", &self.description), ("address", &self.address)]
                    {
                        if let Some(v) = value {
                            extras.string(key, v);
                        }
                    }
                    let m = self.measures(&mut extras);
                    if let Some(c) = &m.category {
                        extras.string("Category", c);
                    }
                    if let Some(d) = m.distance {
                        extras.number("Distance", d);
                    }
                    let mut fix = Fix::new(t.time, coord.0, SourceFormat::Kml);
                    fix.utc_offset_minutes = t.offset_minutes;
                    fix.zone_assumed = t.zone_assumed;
                    let mut out_of_range = OutOfRange::default();
                    for (value, column, key) in [
                        (coord.1.or(m.altitude), Column::Altitude, "altitude"),
                        (m.speed, Column::Speed, "speed"),
                        (m.accuracy, Column::Accuracy, "accuracy"),
                        (m.battery, Column::Battery, "battery"),
                        (m.course, Column::Course, "course"),
                    ] {
                        if let Some(v) = value {
                            measure::set_as(&mut fix, column, v, key, &mut extras, &mut out_of_range);
                        }
                    }
                    out_of_range.report(sink);
                    fix.extras = extras.finish();
                    sink.point(fix, None);
                }
                Some(When::Span(b, e)) => {
                    let interval = self.interval(IntervalKind::Visit, *b, *e, coord.0, None, None);
                    emit_interval(interval, at, &raw, options, sink);
                }
            }
        }
        for (at, line, raw) in std::mem::take(&mut self.lines) {
            let line = match line {
                Ok(l) => l,
                Err(why) => {
                    sink.reject(Reject::new(at, why, &raw));
                    continue;
                }
            };
            let (b, e) = match &when {
                None => {
                    sink.reject(Reject::new(
                        at,
                        "LineString with no time (no TimeStamp or TimeSpan): its vertices cannot become points",
                        &format!("{label} {raw}"),
                    ));
                    continue;
                }
                Some(When::Instant(t)) => (*t, *t),
                Some(When::Span(b, e)) => (*b, *e),
            };
            let interval =
                self.interval(IntervalKind::Activity, b, e, line.first, Some(line.last), Some(line.vertices));
            emit_interval(interval, at, &raw, options, sink);
        }
    }

    fn interval(
        &self,
        kind: IntervalKind,
        begin: ParsedTime,
        end: ParsedTime,
        start: Coord,
        finish: Option<Coord>,
        vertices: Option<usize>,
    ) -> Interval {
        let mut extras = ExtrasBuilder::new();
        if let Some(d) = &self.description {
            extras.string("description", d);
        }
        if let Some(a) = &self.address {
            extras.string("address", a);
        }
        if let Some(n) = vertices {
            extras.raw("vertices", &n.to_string());
        }
        let m = self.measures(&mut extras);
        let mut interval = Interval::new(kind, begin.time, end.time, SourceFormat::Kml);
        interval.start_offset_minutes = begin.offset_minutes;
        interval.end_offset_minutes = end.offset_minutes;
        interval.start_coord = Some(start);
        interval.end_coord = finish;
        interval.name = self.name.clone();
        interval.category = m.category;
        interval.distance_m = m.distance;
        interval.extras = extras.finish();
        interval
    }
}

fn emit_interval(interval: Interval, at: Position, raw: &str, options: &ImportOptions, sink: &mut dyn Sink) {
    for t in [interval.start, interval.end] {
        if let Err(why) = options.check_time(t) {
            sink.reject(Reject::new(at, why, raw));
            return;
        }
    }
    sink.interval(interval, None);
}

/// Reads one `lon,lat[,alt]` tuple (comma separated, or space separated for `gx:coord`).
fn parse_tuple(tuple: &str, separator: char) -> Result<Position3, String> {
    let mut parts = tuple.split(separator).map(str::trim).filter(|p| !p.is_empty());
    let mut next = |what: &str| -> Result<Option<f64>, String> {
        match parts.next() {
            None => Ok(None),
            Some(p) => p.parse::<f64>().map(Some).map_err(|_| format!("{what} {p:?} is not a number")),
        }
    };
    let lon = next("longitude")?;
    let lat = next("latitude")?;
    let alt = next("altitude").unwrap_or(None);
    match (lon, lat) {
        (Some(lon), Some(lat)) => {
            Coord::from_degrees(lat, lon).map(|c| (c, alt)).map_err(|e| format!("coordinates {tuple:?}: {e}"))
        }
        _ => Err(format!("coordinates {tuple:?} need a longitude and a latitude")),
    }
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut xml = XmlStream::new(reader, "KML")?;
    let mut stack: Vec<Ctx> = Vec::with_capacity(16);
    let mut placemark = Placemark::default();
    let mut track = Track::default();
    // The `name` attribute of the Data / SimpleData / SimpleArrayData being read.
    let mut data_name = String::new();
    let mut geometry_at = Position::Byte(0);
    // Where the most recent start tag began: at a leaf's end tag, the leaf's own position.
    let mut leaf_at = Position::Byte(0);
    // The `<coordinates>` of a Point or LineString being read, streamed in.
    let mut coordinates: Option<Coordinates> = None;
    // A `<coordinates>` start tag was just read: stream its text before the next node.
    let mut stream_coordinates = false;
    loop {
        if std::mem::take(&mut stream_coordinates)
            && let Some(reading) = coordinates.as_mut()
        {
            xml.stream_text(&mut |piece| reading.push(piece))?;
        }
        match xml.next()? {
            Node::Start { ns, local, tag, at } => {
                let parent = stack.last().copied();
                let ctx = if is_kml_ns(ns) {
                    match (parent, local) {
                        (None, _) => Ctx::Container,
                        (Some(Ctx::Container), "Document" | "Folder") => Ctx::Container,
                        (Some(Ctx::Container), "Placemark") => {
                            placemark = Placemark { position: Some(at), ..Placemark::default() };
                            Ctx::Placemark
                        }
                        (Some(Ctx::Placemark), "TimeStamp") => Ctx::TimeStamp,
                        (Some(Ctx::Placemark), "TimeSpan") => Ctx::TimeSpan,
                        (Some(Ctx::Placemark), "ExtendedData") => Ctx::ExtendedData,
                        (Some(Ctx::ExtendedData), "Data") => {
                            data_name = xml::attribute(&tag, "name").unwrap_or_default().into_owned();
                            Ctx::Data
                        }
                        (Some(Ctx::ExtendedData), "SchemaData") => Ctx::SchemaData,
                        (Some(Ctx::Placemark | Ctx::MultiGeometry), "Point") => Ctx::Point,
                        (Some(Ctx::Placemark | Ctx::MultiGeometry), "LineString") => Ctx::LineString,
                        (Some(Ctx::Placemark | Ctx::MultiGeometry), "MultiGeometry") => Ctx::MultiGeometry,
                        (Some(Ctx::Placemark | Ctx::MultiGeometry), "MultiTrack") => Ctx::MultiTrack,
                        (Some(Ctx::Placemark | Ctx::MultiGeometry | Ctx::MultiTrack), "Track") => {
                            track = Track::default();
                            Ctx::Track
                        }
                        (Some(Ctx::Track), "ExtendedData") => Ctx::TrackExtendedData,
                        (Some(Ctx::TrackExtendedData), "SchemaData") => Ctx::TrackSchemaData,
                        (Some(Ctx::TrackSchemaData), "SimpleArrayData") => {
                            let name = xml::attribute(&tag, "name").unwrap_or_default().into_owned();
                            track.array(name, at, sink);
                            Ctx::TrackArray
                        }
                        (Some(Ctx::Point), "coordinates") => {
                            coordinates = Some(Coordinates::new(Geometry::Point));
                            stream_coordinates = true;
                            Ctx::Other
                        }
                        (Some(Ctx::LineString), "coordinates") => {
                            coordinates = Some(Coordinates::new(Geometry::LineString));
                            stream_coordinates = true;
                            Ctx::Other
                        }
                        (Some(Ctx::SchemaData), "SimpleData") => {
                            data_name = xml::attribute(&tag, "name").unwrap_or_default().into_owned();
                            Ctx::Other
                        }
                        _ => Ctx::Other,
                    }
                } else {
                    Ctx::Other
                };
                if matches!(ctx, Ctx::Point | Ctx::LineString) {
                    geometry_at = at;
                }
                leaf_at = at;
                stack.push(ctx);
            }
            Node::End { ns, local, leaf, text } => {
                let Some(ctx) = stack.pop() else { continue };
                let parent = stack.last().copied();
                if ctx == Ctx::Placemark {
                    placemark.emit(options, sink);
                    continue;
                }
                if ctx == Ctx::Track {
                    track.finish(options, sink);
                    continue;
                }
                if !is_kml_ns(ns) {
                    continue;
                }
                // What streamed in, and the rest of the text (after an entity or CDATA).
                let read = match (parent, local) {
                    (Some(Ctx::Point | Ctx::LineString), "coordinates") => coordinates.take(),
                    _ => None,
                };
                if !leaf {
                    continue;
                }
                let value = text.trim();
                match (parent, local) {
                    (Some(Ctx::Placemark), "name") => placemark.name = Some(value.to_owned()),
                    (Some(Ctx::Placemark), "description") => placemark.description = Some(value.to_owned()),
                    (Some(Ctx::Placemark), "address") => placemark.address = Some(value.to_owned()),
                    (Some(Ctx::TimeStamp), "when") => placemark.when = Some(value.to_owned()),
                    (Some(Ctx::TimeSpan), "begin") => placemark.begin = Some(value.to_owned()),
                    (Some(Ctx::TimeSpan), "end") => placemark.end = Some(value.to_owned()),
                    (Some(Ctx::Data), "value") | (Some(Ctx::SchemaData), "SimpleData") => {
                        let name = std::mem::take(&mut data_name);
                        if placemark.hold(name.len() + value.len()) {
                            placemark.data.push((name, value.to_owned()));
                        }
                    }
                    (Some(Ctx::Point), "coordinates") => {
                        let mut read = read.unwrap_or_else(|| Coordinates::new(Geometry::Point));
                        read.push(text);
                        let (coord, raw) = read.finish_point();
                        if placemark.hold(raw.len()) {
                            placemark.points.push((geometry_at, coord, raw));
                        }
                    }
                    (Some(Ctx::LineString), "coordinates") => {
                        let mut read = read.unwrap_or_else(|| Coordinates::new(Geometry::LineString));
                        read.push(text);
                        let (line, raw) = read.finish_line();
                        if placemark.hold(raw.len()) {
                            placemark.lines.push((geometry_at, line, raw));
                        }
                    }
                    (Some(Ctx::Track), "when") => track.when(leaf_at, value, options, sink),
                    (Some(Ctx::Track), "coord") => track.coord(leaf_at, value, options, sink),
                    (Some(Ctx::Track), "angles") => {
                        let heading = value.split_ascii_whitespace().next().and_then(xml::number);
                        track.angles(heading, options, sink);
                    }
                    (Some(Ctx::TrackArray), "value") => track.value(value, options, sink),
                    _ => {}
                }
            }
            Node::Oversized { at, what } => {
                let why = format!("{} at {at}", crate::bounded::too_long(what));
                if stack.contains(&Ctx::Placemark) && !stack.contains(&Ctx::Track) {
                    placemark.refused.get_or_insert(why);
                } else {
                    sink.reject(Reject::new(at, why, ""));
                }
            }
            Node::Eof => {
                if stack.is_empty() {
                    return Ok(());
                }
                return Err(xml.truncated("a KML element"));
            }
        }
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

    fn doc(ns: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><kml xmlns="{ns}" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>{body}</Document></kml>"#
        )
    }

    const KML22: &str = "http://www.opengis.net/kml/2.2";

    #[test]
    fn gx_track_whens_then_coords() {
        let s = run(&doc(
            KML22,
            "<Placemark><gx:Track><altitudeMode>absolute</altitudeMode>
            <when>2014-05-25T18:30:59Z</when><when>2014-05-25T18:31:11Z</when>
            <gx:coord>-97.8586 30.244696 274.2</gx:coord><gx:coord>-97.858635 30.244665 281.2</gx:coord>
            </gx:Track></Placemark>",
        ));
        assert!(s.rejects.is_empty(), "{:?}", s.rejects);
        let f = s.fixes();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].coord, Coord::from_degrees(30.244_696, -97.8586).unwrap());
        assert_eq!(f[1].altitude_cm, Some(28120));
        assert_eq!(f[1].time.0, ms("2014-05-25T18:31:11Z"));
        assert_eq!(f[0].source, SourceFormat::Kml);
    }

    #[test]
    fn track_surplus_is_rejected_with_the_counts() {
        let s = run(&doc(
            KML22,
            "<Placemark><gx:Track><when>2024-01-20T08:00:00Z</when><when>2024-01-20T08:01:00Z</when><when>2024-01-20T08:02:00Z</when>
            <gx:coord>-122.08 37.42 10</gx:coord><gx:coord>-122.09 37.43 12</gx:coord></gx:Track></Placemark>
            <Placemark><gx:Track><when>2024-01-20T09:00:00Z</when>
            <gx:coord>-122.08 37.42</gx:coord><gx:coord>-122.09 37.43</gx:coord></gx:Track></Placemark>",
        ));
        assert_eq!(s.points.len(), 3);
        assert_eq!(s.rejects.len(), 2);
        assert!(s.rejects[0].reason.contains("3 <when> but 2 <gx:coord>"), "{}", s.rejects[0].reason);
        assert!(s.rejects[1].reason.contains("coordinate has no time"), "{}", s.rejects[1].reason);
    }

    #[test]
    fn kml_2_3_track_without_gx_prefix_and_multitrack() {
        let s = run(&doc(
            "http://www.opengis.net/kml/2.3",
            "<Placemark><MultiTrack><Track><when>2020-01-01T00:00:00Z</when><coord>10 20 30</coord></Track>
            <Track><when>2020-01-01T00:01:00Z</when><coord>11 21</coord>
            <angles>45.5 0 0</angles></Track></MultiTrack></Placemark>",
        ));
        let f = s.fixes();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].coord, Coord::from_degrees(21.0, 11.0).unwrap());
        assert_eq!(f[1].course_centideg, Some(4550));
    }

    #[test]
    fn track_extended_data_arrays_are_per_point_extras() {
        let s = run(&doc(
            KML22,
            r#"<Placemark><gx:Track><when>2020-01-01T00:00:00Z</when><when>2020-01-01T00:00:01Z</when>
            <gx:coord>10 20</gx:coord><gx:coord>10 20.1</gx:coord>
            <ExtendedData><SchemaData schemaUrl="s"><gx:SimpleArrayData name="heartrate"><gx:value>120</gx:value><gx:value>121</gx:value></gx:SimpleArrayData></SchemaData></ExtendedData>
            </gx:Track></Placemark>"#,
        ));
        assert_eq!(s.fixes()[1].extras.as_ref().unwrap().as_str(), r#"{"heartrate":121}"#);
    }

    #[test]
    fn old_google_earth_namespace() {
        for ns in [
            "http://earth.google.com/kml/2.0",
            "http://earth.google.com/kml/2.1",
            "http://earth.google.com/kml/2.2",
            "",
        ] {
            let s = run(&doc(
                ns,
                "<Placemark><TimeStamp><when>2010-07-01T10:00:00Z</when></TimeStamp><Point><coordinates>-77.03,38.89,0</coordinates></Point></Placemark>",
            ));
            assert_eq!(s.points.len(), 1, "{ns}");
        }
    }

    #[test]
    fn timestamp_point_with_extended_data() {
        let s = run(&doc(
            KML22,
            r#"<Placemark><name>Location with Speed</name><description>d</description>
            <TimeStamp><when>2024-01-19T11:30:00+01:00</when></TimeStamp><Point><coordinates> -122.0841 , 37.4220 , 10 </coordinates></Point>
            <ExtendedData><Data name="speed"><value>5.5</value></Data><Data name="accuracy"><value>10</value></Data>
            <Data name="battery"><value>85</value></Data><Data name="mood"><displayName>M</displayName><value>ok</value></Data></ExtendedData></Placemark>"#,
        ));
        let f = s.fixes()[0];
        assert_eq!(f.coord, Coord::from_degrees(37.4220, -122.0841).unwrap());
        assert_eq!(
            (f.altitude_cm, f.speed_cm_s, f.horizontal_accuracy_cm, f.battery_percent),
            (Some(1000), Some(550), Some(1000), Some(85))
        );
        assert_eq!(f.utc_offset_minutes, Some(60));
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"name":"Location with Speed","description":"d","mood":"ok"}"#
        );
    }

    #[test]
    fn timespan_point_is_a_visit_and_linestring_an_activity() {
        let s = run(&doc(
            KML22,
            r#"<Placemark><name>Home</name><address>1 Main St</address><TimeSpan><begin>2024-01-10T09:00:00Z</begin><end>2024-01-10T17:00:00Z</end></TimeSpan>
            <Point><coordinates>-122.0841,37.4220,10</coordinates></Point></Placemark>
            <Placemark><name>Driving</name><ExtendedData><Data name="Category"><value>Driving</value></Data><Data name="Distance"><value>1234</value></Data></ExtendedData>
            <TimeSpan><begin>2024-01-10T17:00:00Z</begin><end>2024-01-10T17:30:00Z</end></TimeSpan>
            <LineString><coordinates>-122.08,37.42,0 -122.09,37.43,0
              -122.10,37.44,0</coordinates></LineString></Placemark>"#,
        ));
        assert!(s.points.is_empty(), "vertices never become points");
        let (visit, _) = &s.intervals[0];
        assert_eq!(visit.kind, IntervalKind::Visit);
        assert_eq!((visit.start.0, visit.end.0), (ms("2024-01-10T09:00:00Z"), ms("2024-01-10T17:00:00Z")));
        assert_eq!(visit.name.as_deref(), Some("Home"));
        assert_eq!(visit.extras.as_ref().unwrap().as_str(), r#"{"address":"1 Main St"}"#);
        let (act, _) = &s.intervals[1];
        assert_eq!(act.kind, IntervalKind::Activity);
        assert_eq!(act.start_coord, Some(Coord::from_degrees(37.42, -122.08).unwrap()));
        assert_eq!(act.end_coord, Some(Coord::from_degrees(37.44, -122.10).unwrap()));
        assert_eq!((act.category.as_deref(), act.distance_m), (Some("Driving"), Some(1234.0)));
        assert_eq!(act.extras.as_ref().unwrap().as_str(), r#"{"vertices":3}"#);
    }

    #[test]
    fn linestring_with_a_timestamp_or_no_time() {
        let s = run(&doc(
            KML22,
            "<Placemark><TimeStamp><when>2024-01-16T10:00:00Z</when></TimeStamp><LineString><coordinates>1,2 3,4</coordinates></LineString></Placemark>
            <Placemark><name>planned</name><LineString><coordinates>1,2 3,4</coordinates></LineString></Placemark>",
        ));
        assert_eq!(s.intervals.len(), 1);
        assert_eq!(s.intervals[0].0.start, s.intervals[0].0.end);
        assert_eq!(s.rejects.len(), 1);
        assert!(s.rejects[0].reason.contains("no time"), "{}", s.rejects[0].reason);
    }

    #[test]
    fn reduced_precision_when() {
        let s = run(&doc(
            KML22,
            "<Placemark><TimeStamp><when>2014</when></TimeStamp><Point><coordinates>1,2</coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>2014-05</when></TimeStamp><Point><coordinates>1,2</coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>2014-05-25</when></TimeStamp><Point><coordinates>1,2</coordinates></Point></Placemark>",
        ));
        let t: Vec<_> = s.fixes().iter().map(|f| (f.time.0, f.zone_assumed)).collect();
        assert_eq!(
            t,
            [
                (ms("2014-01-01T00:00:00Z"), true),
                (ms("2014-05-01T00:00:00Z"), true),
                (ms("2014-05-25T00:00:00Z"), true)
            ]
        );
    }

    #[test]
    fn nested_folders_documents_and_multigeometry() {
        let s = run(&doc(
            KML22,
            "<Folder><Folder><Document><Placemark><TimeStamp><when>2024-01-18T15:00:00Z</when></TimeStamp><MultiGeometry>
            <Point><coordinates>-122.0841,37.4220,10</coordinates></Point>
            <MultiGeometry><Point><coordinates>-122.0851,37.4230,12</coordinates></Point></MultiGeometry>
            <LineString><coordinates>-122.0861,37.4240 -122.0891,37.4270</coordinates></LineString>
            </MultiGeometry></Placemark></Document></Folder></Folder>",
        ));
        assert_eq!((s.points.len(), s.intervals.len(), s.rejects.len()), (2, 1, 0));
    }

    #[test]
    fn invalid_coordinates_are_rejected() {
        let text = doc(
            KML22,
            "<Placemark><TimeStamp><when>2024-01-23T10:00:00Z</when></TimeStamp><Point><coordinates></coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>2024-01-23T11:00:00Z</when></TimeStamp><Point><coordinates>-122.0841</coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>2024-01-23T12:00:00Z</when></TimeStamp><Point><coordinates>0,0,0</coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>2024-01-23T13:00:00Z</when></TimeStamp><Point><coordinates>200,10</coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>2024-01-23T13:00:00Z</when></TimeStamp><Point><coordinates>east,10</coordinates></Point></Placemark>
            <Placemark><Point><coordinates>1,2</coordinates></Point></Placemark>
            <Placemark><TimeStamp><when>someday</when></TimeStamp><Point><coordinates>1,2</coordinates></Point></Placemark>",
        );
        let s = run(&text);
        assert!(s.points.is_empty());
        let reasons: Vec<_> = s.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 7, "{reasons:?}");
        assert!(reasons[0].contains("without coordinates"));
        assert!(reasons[1].contains("need a longitude and a latitude"));
        assert!(reasons[2].contains("0,0"));
        assert!(reasons[3].contains("longitude 200"));
        assert!(reasons[4].contains("longitude \"east\""));
        assert!(reasons[5].contains("without time"));
        assert!(reasons[6].starts_with("<when>:"));
        assert_eq!(s.rejects[0].position, Position::Byte(text.find("<Point>").unwrap() as u64));
    }

    #[test]
    fn a_placemark_holding_too_much_is_refused_and_the_next_one_imports() {
        let value = "v".repeat(700 * 1024);
        let data: String = (0..30).map(|i| format!(r#"<Data name="d{i}"><value>{value}</value></Data>"#)).collect();
        let points = "<Point><coordinates>1,2</coordinates></Point>".repeat(10);
        let text = doc(
            KML22,
            &format!(
                "<Placemark><TimeStamp><when>2024-01-23T10:00:00Z</when></TimeStamp><MultiGeometry>{points}</MultiGeometry>\
                 <ExtendedData>{data}</ExtendedData></Placemark>\
                 <Placemark><TimeStamp><when>2024-01-23T11:00:00Z</when></TimeStamp><Point><coordinates>3,4</coordinates></Point></Placemark>"
            ),
        );
        let s = run(&text);
        assert_eq!(s.points.len(), 1);
        assert_eq!(s.rejects.len(), 1, "{:?}", s.rejects);
        assert_eq!(s.rejects[0].reason, "a Placemark holding over 16 MiB of geometries and ExtendedData: skipped");
        assert_eq!(s.rejects[0].position, Position::Byte(text.find("<Placemark>").unwrap() as u64));
    }

    #[test]
    fn timespan_ending_before_it_begins_is_rejected() {
        let s = run(&doc(
            KML22,
            "<Placemark><TimeSpan><begin>2024-01-10T17:00:00Z</begin><end>2024-01-10T09:00:00Z</end></TimeSpan><Point><coordinates>1,2</coordinates></Point></Placemark>
            <Placemark><TimeSpan><begin>2024-01-10T17:00:00Z</begin></TimeSpan><Point><coordinates>1,2</coordinates></Point></Placemark>",
        ));
        assert!(s.rejects[0].reason.contains("before it begins"));
        assert_eq!(s.points.len(), 1, "an open TimeSpan is an instant");
    }
}
