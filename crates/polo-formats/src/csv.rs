//! Delimited text with a header row. There is no standard, so the importer
//! recognises columns by name and values by shape:
//!
//! * The delimiter (`,`, `;` or tab) is sniffed from the header line; quotes
//!   and a UTF-8 BOM around the header are stripped; names compare without
//!   regard to case, and `LATITUDE N/S` or `speed (km/h)` match on their
//!   first word (a unit in the name is honoured for km/h).
//! * Aliases: lat {lat, latitude, y, latitudeE7}, lon {lon, lng, long,
//!   longitude, x, longitudeE7}, time {timestamp, time, date, datetime, when,
//!   created_at, recorded_at, fixTime, tst, timestamp_ms, time_long}, altitude
//!   {altitude, alt, ele, elevation, height, z}, speed {speed, velocity, vel,
//!   speed_mps; speed_kmh is divided by 3.6}, accuracy {accuracy, acc,
//!   horizontal_accuracy, precision}, course {heading, bearing, course, cog},
//!   battery, device / tracker id, motion / activity, source, extras, and a
//!   WKT geometry column (`POINT (lon lat)`, PostGIS dumps).
//! * Values: each time is parsed on its own (ISO forms, PostGIS
//!   `2025-06-01 13:02:03.000000 +00:00`, epoch seconds or milliseconds);
//!   GPSLogger's `time_offset` (local time with offset) supplies the UTC
//!   offset; `…E7` columns are integers × 10⁷; `52.52N` / `13.4W` suffixes set
//!   the sign; a decimal comma is accepted when the delimiter is not a comma.
//! * A Google-Takeout-like place export (`Start Time`, `End Time`) gives
//!   visit or activity intervals (`Type` decides), not points.
//! * Columns polo has no field for go to the extras under their header name.
//! * polo's own CSV export (header [`crate::fields::CSV_COLUMNS`]) round-trips
//!   exactly: empty cells are "none", `source` names the source format,
//!   `device` is the device hint and `extras` is merged verbatim.
//! * A row that cannot be used is rejected with [`Position::Line`] and the
//!   row's text; the file goes on.

use std::io::BufRead;

use polo_domain::time::{ParsedTime, parse_timestamp};
use polo_domain::{Coord, Fix, Interval, IntervalKind, SourceFormat};

use crate::bounded::csv_rows::LineCounter;
use crate::bounded::lines::LineReader;
use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Lat,
    Lon,
    LatE7,
    LonE7,
    Geometry,
    Time,
    /// A second time column (epoch ms) used when the main one is empty.
    TimeFallback,
    Date,
    TimeOffset,
    StartTime,
    EndTime,
    Altitude,
    Speed,
    SpeedKmh,
    Accuracy,
    VerticalAccuracy,
    Course,
    Battery,
    Device,
    Motion,
    Source,
    Extras,
    Type,
    Name,
    PlaceId,
    Extra,
}

/// Lower-cases, trims and strips quotes and a BOM from a header name.
fn normalise(name: &str) -> String {
    name.trim().trim_start_matches('\u{feff}').trim().trim_matches('"').trim().to_ascii_lowercase()
}

fn role_of(name: &str) -> Option<Role> {
    Some(match name {
        "lat" | "latitude" | "y" => Role::Lat,
        "lon" | "lng" | "long" | "longitude" | "x" => Role::Lon,
        "latitudee7" | "lat_e7" | "late7" => Role::LatE7,
        "longitudee7" | "lon_e7" | "lone7" | "lnge7" => Role::LonE7,
        "geometry" | "geom" | "the_geom" | "wkt" | "geog" => Role::Geometry,
        "timestamp" | "time" | "datetime" | "when" | "created_at" | "recorded_at" | "fixtime" | "tst" | "date_time"
        | "utc_time" | "timestamp_utc" => Role::Time,
        "timestamp_ms" | "time_long" | "timestampms" => Role::TimeFallback,
        "date" => Role::Date,
        "time_offset" => Role::TimeOffset,
        "start time" | "start_time" | "starttime" | "begin" => Role::StartTime,
        "end time" | "end_time" | "endtime" => Role::EndTime,
        "altitude" | "alt" | "ele" | "elevation" | "height" | "z" => Role::Altitude,
        "speed" | "velocity" | "vel" | "speed_mps" | "speed_ms" => Role::Speed,
        "speed_kmh" | "speed_kph" => Role::SpeedKmh,
        "accuracy" | "acc" | "horizontal_accuracy" | "precision" | "hacc" => Role::Accuracy,
        "vertical_accuracy" | "vacc" | "vac" => Role::VerticalAccuracy,
        "heading" | "bearing" | "course" | "cog" => Role::Course,
        "battery" | "batt" | "batterylevel" | "battery_level" | "bat" | "battery_percent" => Role::Battery,
        "device" | "deviceid" | "device_id" | "tracker" | "tracker_id" | "trackerid" | "tracker id" | "device id" => {
            Role::Device
        }
        "motion" | "activity" => Role::Motion,
        "source" => Role::Source,
        "extras" => Role::Extras,
        "type" => Role::Type,
        "name" => Role::Name,
        "placeid" | "place_id" => Role::PlaceId,
        _ => return None,
    })
}

/// The role for a header, by full name first, then by its first word
/// (`LATITUDE N/S`, `altitude (m)`, `speed (km/h)`).
fn classify(header: &str) -> Role {
    let name = normalise(header);
    if let Some(role) = role_of(&name) {
        return role;
    }
    let first = name.split(|c: char| c.is_whitespace() || c == '(' || c == '[').next().unwrap_or("");
    match role_of(first) {
        Some(Role::Speed) if name.contains("km/h") || name.contains("kmh") || name.contains("kph") => Role::SpeedKmh,
        Some(
            role @ (Role::Lat
            | Role::Lon
            | Role::Altitude
            | Role::Speed
            | Role::Accuracy
            | Role::Course
            | Role::Battery),
        ) => role,
        _ => Role::Extra,
    }
}

/// Splits one line into cells for header detection (quotes honoured), as
/// the csv crate reads a record: a field that starts with `"` is quoted
/// (`""` inside it is a quote; text after its closing quote is kept), a `"`
/// elsewhere is literal, and `\r` or `\n` outside quotes ends the record
/// (before its first field they are skipped). A leading BOM is dropped.
///
/// Written out rather than read with a csv reader: building one builds a
/// DFA, which cost more than the rest of a small import, and this runs for
/// every text file the detector sees (`looks_like_csv_header`).
pub(crate) fn header_cells(line: &str, delimiter: u8) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        StartField,
        InField,
        InQuotes,
        /// A `"` inside quotes: the end of the quotes, or the first of `""`.
        QuoteInQuotes,
    }
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let line = line.trim_start_matches(['\r', '\n']);
    let mut cells = Vec::new();
    if line.is_empty() {
        return cells;
    }
    let mut cell: Vec<u8> = Vec::new();
    let mut state = State::StartField;
    let finish = |cell: &mut Vec<u8>, cells: &mut Vec<String>| {
        // Only ASCII bytes were left out, so the cell is still UTF-8.
        cells.push(String::from_utf8_lossy(cell).into_owned());
        cell.clear();
    };
    for &b in line.as_bytes() {
        let terminator = b == b'\r' || b == b'\n';
        match state {
            State::InQuotes => {
                if b == b'"' {
                    state = State::QuoteInQuotes;
                } else {
                    cell.push(b);
                }
                continue;
            }
            State::QuoteInQuotes if b == b'"' => {
                cell.push(b'"');
                state = State::InQuotes;
                continue;
            }
            State::StartField if b == b'"' => {
                state = State::InQuotes;
                continue;
            }
            _ => {}
        }
        if b == delimiter {
            finish(&mut cell, &mut cells);
            state = State::StartField;
        } else if terminator {
            break;
        } else {
            cell.push(b);
            state = State::InField;
        }
    }
    finish(&mut cell, &mut cells);
    cells
}

/// The delimiter that occurs most often outside quotes (`,` on a tie).
fn sniff_delimiter(line: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in line.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// True when `line` looks like the header of a location CSV: a delimiter,
/// and a latitude-like and a longitude-like column (or a WKT geometry column).
pub(crate) fn looks_like_csv_header(line: &str) -> bool {
    let line = line.trim_start_matches('\u{feff}');
    if !line.contains([',', ';', '\t']) {
        return false;
    }
    let cells = header_cells(line, sniff_delimiter(line));
    let roles: Vec<Role> = cells.iter().map(|c| classify(c)).collect();
    let has = |r: &[Role]| roles.iter().any(|x| r.contains(x));
    (has(&[Role::Lat, Role::LatE7]) && has(&[Role::Lon, Role::LonE7])) || has(&[Role::Geometry])
}

/// Parses a number cell: decimal comma (when the delimiter is not a comma),
/// quotes and N/S/E/W hemisphere letters.
fn number(cell: &str, decimal_comma: bool) -> Option<f64> {
    let mut text = cell.trim().trim_matches('"').trim();
    let mut sign = 1.0;
    if let Some(last) = text.chars().last().filter(|c| matches!(c.to_ascii_uppercase(), 'N' | 'S' | 'E' | 'W')) {
        if matches!(last.to_ascii_uppercase(), 'S' | 'W') {
            sign = -1.0;
        }
        text = text[..text.len() - 1].trim_end();
    } else if let Some(first) = text.chars().next().filter(|c| matches!(c.to_ascii_uppercase(), 'N' | 'S' | 'E' | 'W'))
    {
        if matches!(first.to_ascii_uppercase(), 'S' | 'W') {
            sign = -1.0;
        }
        text = text[1..].trim_start();
    }
    let value = if decimal_comma && text.contains(',') {
        text.replace(',', ".").parse::<f64>().ok()?
    } else {
        text.parse::<f64>().ok()?
    };
    value.is_finite().then_some(value * sign)
}

/// Reads WKT / EWKT `POINT (lon lat [alt])`.
fn wkt_point(cell: &str) -> Option<(f64, f64)> {
    let text = cell.trim();
    let text = text.rsplit(';').next().unwrap_or(text).trim();
    let upper = text.get(..5)?.to_ascii_uppercase();
    if upper != "POINT" {
        return None;
    }
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let mut parts = text.get(open + 1..close)?.split_ascii_whitespace();
    let lon = parts.next()?.parse::<f64>().ok()?;
    let lat = parts.next()?.parse::<f64>().ok()?;
    Some((lat, lon))
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    import_with_limit(reader, options, sink, crate::MAX_TOKEN)
}

/// [`import`] with rows and the header limited to `max` bytes.
fn import_with_limit<R: BufRead>(
    mut reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    max: usize,
) -> Result<(), ImportError> {
    // The header line, skipping blank lines before it.
    let header_line;
    let mut lines_before = 0u64;
    let mut lines = LineReader::new(&mut reader, max);
    loop {
        let Some(raw) = lines.next_line()? else {
            return Ok(());
        };
        lines_before += 1;
        if raw.too_long.is_some() {
            return Err(ImportError::Malformed {
                format: "CSV",
                position: Position::Line(lines_before),
                message: crate::bounded::too_long("the header line").replace(": skipped", ""),
            });
        }
        let line = String::from_utf8_lossy(raw.text);
        let line = line.trim_start_matches('\u{feff}').trim_end_matches(['\r', '\n']);
        if !line.trim().is_empty() {
            header_line = line.to_owned();
            break;
        }
    }
    drop(lines);
    let delimiter = sniff_delimiter(&header_line);
    let headers = header_cells(&header_line, delimiter);
    let columns = Columns::new(&headers, delimiter != b',');
    if !columns.has_position() {
        return Err(ImportError::Malformed {
            format: "CSV",
            position: Position::Line(lines_before),
            message: format!("no latitude/longitude or geometry column in the header {header_line:?}"),
        });
    }
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(LineCounter::new(reader, max));
    let mut record = ::csv::ByteRecord::new();
    let mut cells: Vec<String> = Vec::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(match e.into_kind() {
                    ::csv::ErrorKind::Io(io) => ImportError::Io(io),
                    other => ImportError::Malformed {
                        format: "CSV",
                        position: Position::Line(lines_before + line),
                        message: format!("{other:?}"),
                    },
                });
            }
        }
        // The csv crate does not count blank lines, so lines are counted from bytes.
        let byte = record.position().map_or(0, ::csv::Position::byte);
        let line = lines_before + csv.get_mut().line_at(byte);
        let end = csv.position().byte();
        if csv.get_mut().take_cut_in(byte, end) {
            let raw = String::from_utf8_lossy(record.as_slice());
            sink.reject(Reject::new(Position::Line(line), crate::bounded::too_long("row"), &raw));
            continue;
        }
        cells.clear();
        cells.extend(record.iter().map(|c| String::from_utf8_lossy(c).into_owned()));
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if let Err(reason) = columns.row(&cells, options, sink) {
            let raw = cells.join(std::str::from_utf8(&[delimiter]).unwrap_or(","));
            sink.reject(Reject::new(Position::Line(line), reason, &raw));
        }
    }
}

/// The header, resolved to roles.
struct Columns {
    names: Vec<String>,
    roles: Vec<Role>,
    decimal_comma: bool,
}

impl Columns {
    fn new(headers: &[String], decimal_comma: bool) -> Self {
        let names: Vec<String> = headers.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_owned()).collect();
        let mut roles: Vec<Role> = headers.iter().map(|h| classify(h)).collect();
        // Only the first column of a role is used as such; later ones are extras
        // (GPSLogger has both `time` and `timestamp_ms`).
        for i in 0..roles.len() {
            if roles[i] != Role::Extra && roles[..i].contains(&roles[i]) {
                roles[i] = Role::Extra;
            }
        }
        // `x`/`y` only mean lon/lat when there is no better column.
        Self { names, roles, decimal_comma }
    }

    fn has_position(&self) -> bool {
        let has = |r: &[Role]| self.roles.iter().any(|x| r.contains(x));
        (has(&[Role::Lat, Role::LatE7]) && has(&[Role::Lon, Role::LonE7])) || has(&[Role::Geometry])
    }

    fn cell<'a>(&self, cells: &'a [String], role: Role) -> Option<&'a str> {
        let i = self.roles.iter().position(|r| *r == role)?;
        cells.get(i).map(String::as_str).map(|c| c.trim().trim_matches('"')).filter(|c| !c.is_empty())
    }

    fn num(&self, cells: &[String], role: Role) -> Result<Option<f64>, String> {
        match self.cell(cells, role) {
            None => Ok(None),
            Some(c) => number(c, self.decimal_comma).map(Some).ok_or_else(|| {
                let i = self.roles.iter().position(|r| *r == role).unwrap_or(0);
                format!("{} {c:?} is not a number", self.names.get(i).map_or("value", String::as_str))
            }),
        }
    }

    fn coord(&self, cells: &[String]) -> Result<Option<Coord>, String> {
        let lat = match self.num(cells, Role::Lat)? {
            Some(v) => Some(v),
            None => self.num(cells, Role::LatE7)?.map(|v| v / 1e7),
        };
        let lon = match self.num(cells, Role::Lon)? {
            Some(v) => Some(v),
            None => self.num(cells, Role::LonE7)?.map(|v| v / 1e7),
        };
        let (lat, lon) = match (lat, lon) {
            (Some(lat), Some(lon)) => (lat, lon),
            (None, None) => match self.cell(cells, Role::Geometry) {
                Some(g) => wkt_point(g).ok_or_else(|| format!("geometry {g:?} is not a WKT POINT"))?,
                None => return Ok(None),
            },
            (None, _) => return Err("latitude is missing".to_owned()),
            (_, None) => return Err("longitude is missing".to_owned()),
        };
        Coord::from_degrees(lat, lon).map(Some).map_err(|e| format!("lat/lon: {e}"))
    }

    fn time(&self, cells: &[String], role: Role, label: &str) -> Result<Option<ParsedTime>, String> {
        let Some(text) = self.cell(cells, role) else {
            return Ok(None);
        };
        match parse_timestamp(text) {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                // A `date` column beside a clock-only `time` column.
                let date = if role == Role::Time { self.cell(cells, Role::Date) } else { None };
                match date.map(|date| parse_timestamp(&format!("{date} {text}"))) {
                    Some(Ok(t)) => Ok(Some(t)),
                    _ => Err(format!("{label}: {e}")),
                }
            }
        }
    }

    /// One data row: a fix, an interval, or the reject reason.
    fn row(&self, cells: &[String], options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), String> {
        if self.roles.contains(&Role::StartTime) && self.roles.contains(&Role::EndTime) {
            return self.interval_row(cells, options, sink);
        }
        let time = match self.time(cells, Role::Time, "time")? {
            Some(t) => t,
            None => match self.time(cells, Role::TimeFallback, "time")? {
                Some(t) => t,
                None => self.time(cells, Role::Date, "date")?.ok_or("time is missing")?,
            },
        };
        options.check_time(time.time)?;
        let coord = self.coord(cells)?.ok_or("latitude and longitude are missing")?;
        let source = self.cell(cells, Role::Source).and_then(SourceFormat::from_name).unwrap_or(SourceFormat::Csv);
        let mut fix = Fix::new(time.time, coord, source);
        fix.utc_offset_minutes = time.offset_minutes;
        fix.zone_assumed = time.zone_assumed;
        let local = self.cell(cells, Role::TimeOffset).map(parse_timestamp);
        if let (None, Some(Ok(local))) = (fix.utc_offset_minutes, local) {
            fix.utc_offset_minutes = local.offset_minutes;
        }
        let mut extras = ExtrasBuilder::new();
        let mut out_of_range = OutOfRange::default();
        for (role, column, scale) in [
            (Role::Altitude, Column::Altitude, 1.0),
            (Role::Accuracy, Column::Accuracy, 1.0),
            (Role::VerticalAccuracy, Column::VerticalAccuracy, 1.0),
            (Role::Speed, Column::Speed, 1.0),
            (Role::SpeedKmh, Column::Speed, 1.0 / 3.6),
            (Role::Course, Column::Course, 1.0),
            (Role::Battery, Column::Battery, 1.0),
        ] {
            if role == Role::SpeedKmh && self.num(cells, Role::Speed)?.is_some() {
                continue;
            }
            if let Some(v) = self.num(cells, role)? {
                let key = self.roles.iter().position(|r| *r == role).and_then(|i| self.names.get(i));
                let key = key.map_or(column.name(), String::as_str);
                measure::set(&mut fix, column, v * scale, (key, v), &mut extras, &mut out_of_range);
            }
        }
        out_of_range.report(sink);
        for (i, role) in self.roles.iter().enumerate() {
            let Some(value) = cells.get(i).map(|c| c.trim()).filter(|c| !c.is_empty()) else {
                continue;
            };
            let name = self.names.get(i).map_or("", String::as_str);
            match role {
                Role::Motion => match crate::gpx::motion_from_name(value) {
                    Some(m) => fix.motion = Some(m),
                    None => crate::xml::push_extra(&mut extras, name, value),
                },
                Role::Extras => extras.merge_object(value),
                Role::Extra | Role::Type | Role::Name | Role::PlaceId | Role::TimeFallback | Role::Date => {
                    if *role == Role::Date && self.cell(cells, Role::Time).is_none() {
                        continue;
                    }
                    if *role == Role::TimeFallback && self.cell(cells, Role::Time).is_none() {
                        continue;
                    }
                    crate::xml::push_extra(&mut extras, name, value);
                }
                Role::TimeOffset if fix.utc_offset_minutes.is_none() => {
                    crate::xml::push_extra(&mut extras, name, value)
                }
                Role::Source if SourceFormat::from_name(value).is_none() => {
                    crate::xml::push_extra(&mut extras, name, value);
                }
                _ => {}
            }
        }
        fix.extras = extras.finish();
        sink.point(fix, self.cell(cells, Role::Device));
        Ok(())
    }

    /// A place-export row (`Start Time`, `End Time`) → a visit or activity.
    fn interval_row(&self, cells: &[String], options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), String> {
        let start = self.time(cells, Role::StartTime, "Start Time")?.ok_or("Start Time is missing")?;
        let end = self.time(cells, Role::EndTime, "End Time")?.ok_or("End Time is missing")?;
        options.check_time(start.time)?;
        options.check_time(end.time)?;
        if end.time < start.time {
            return Err(format!("End Time {} is before Start Time {}", end.time, start.time));
        }
        let kind_text = self.cell(cells, Role::Type).unwrap_or("");
        let kind =
            if kind_text.to_ascii_lowercase().contains("activ") { IntervalKind::Activity } else { IntervalKind::Visit };
        let mut interval = Interval::new(kind, start.time, end.time, SourceFormat::Csv);
        interval.start_offset_minutes = start.offset_minutes;
        interval.end_offset_minutes = end.offset_minutes;
        interval.start_coord = self.coord(cells)?;
        interval.place_id = self.cell(cells, Role::PlaceId).map(str::to_owned);
        let name = self.cell(cells, Role::Name).map(str::to_owned);
        match kind {
            // For activities the "name" is the activity type (`IN_PASSENGER_VEHICLE`, `UNKNOWN`).
            IntervalKind::Activity => interval.category = name,
            _ => interval.name = name,
        }
        let mut extras = ExtrasBuilder::new();
        for (i, role) in self.roles.iter().enumerate() {
            let keep = matches!(role, Role::Extra | Role::Motion | Role::Battery | Role::Accuracy | Role::Altitude);
            if let (true, Some(name), Some(value)) = (keep, self.names.get(i), cells.get(i)) {
                crate::xml::push_extra(&mut extras, name, value);
            }
        }
        interval.extras = extras.finish();
        sink.interval(interval, self.cell(cells, Role::Device));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields;
    use crate::xml::testing::{Collect, ms, options};
    use polo_domain::Motion;

    fn run(text: &str) -> Collect {
        let mut sink = Collect::default();
        import(text.as_bytes(), &options(), &mut sink).unwrap();
        sink
    }

    #[test]
    fn header_detection() {
        for yes in [
            "time,lat,lon",
            "\u{feff}\"Latitude\";\"Longitude\";\"Time\"",
            "timestamp\tlatitudeE7\tlongitudeE7",
            "INDEX,TAG,timestamp,LATITUDE N/S,LONGITUDE E/W,HEIGHT",
            "id,recorded_at,geom",
            "Y,X,date",
        ] {
            assert!(looks_like_csv_header(yes), "{yes}");
        }
        for no in ["hello world", "lat lon time", "name,address,phone", "latte,lonely"] {
            assert!(!looks_like_csv_header(no), "{no}");
        }
    }

    #[test]
    fn gpslogger_with_time_offset() {
        let s = run(
            "time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider,hdop,vdop,pdop,geoidheight,ageofdgpsdata,dgpsid,activity,battery,annotation,timestamp_ms,time_offset,distance,starttimestamp_ms,profile_name,battery_charging\n\
             2025-01-24T07:02:29.168Z,52.52,13.405,34.0,8,90,1.5,12,gps,0.9,,,,,,walking,85,,1737702149168,2025-01-24T00:02:29.168-07:00,0.0,1737702000000,Default,false\n",
        );
        assert!(s.rejects.is_empty(), "{:?}", s.rejects);
        let f = s.fixes()[0];
        assert_eq!(f.time.0, ms("2025-01-24T07:02:29.168Z"));
        assert_eq!(f.utc_offset_minutes, Some(-420));
        assert_eq!(
            (f.altitude_cm, f.horizontal_accuracy_cm, f.course_centideg, f.speed_cm_s),
            (Some(3400), Some(800), Some(9000), Some(150))
        );
        assert_eq!((f.battery_percent, f.motion), (Some(85), Some(Motion::Walking)));
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"satellites":12,"provider":"gps","hdop":0.9,"timestamp_ms":1737702149168,"distance":0.0,"starttimestamp_ms":1737702000000,"profile_name":"Default","battery_charging":"false"}"#
        );
    }

    #[test]
    fn e7_columns() {
        let s = run("timestamp,latitudeE7,longitudeE7,accuracy\n2024-06-15T10:30:00Z,525200000,-134050000,8\n");
        assert_eq!(s.fixes()[0].coord, Coord { lat_e7: 525_200_000, lon_e7: -134_050_000 });
    }

    #[test]
    fn hemisphere_suffixes() {
        let s = run(
            "INDEX,TAG,timestamp,LATITUDE N/S,LONGITUDE E/W,HEIGHT,SPEED,HEADING\n1,T,2024-06-15T10:30:00Z,52.520000N,13.405000W,34,1.5,90\n2,T,2024-06-15T10:31:00Z,33.9S,151.2E,3,0,0\n",
        );
        let f = s.fixes();
        assert_eq!(f[0].coord, Coord::from_degrees(52.52, -13.405).unwrap());
        assert_eq!(f[1].coord, Coord::from_degrees(-33.9, 151.2).unwrap());
        assert_eq!((f[0].altitude_cm, f[0].speed_cm_s, f[0].course_centideg), (Some(3400), Some(150), Some(9000)));
        assert_eq!(f[0].extras.as_ref().unwrap().as_str(), r#"{"INDEX":1,"TAG":"T"}"#);
    }

    #[test]
    fn semicolons_with_decimal_commas() {
        let s = run("time;lat;lon;elevation;accuracy;speed\n2024-06-15T10:30:00Z;52,5200;13,4050;34,5;8;1,5\n");
        let f = s.fixes()[0];
        assert_eq!(f.coord, Coord::from_degrees(52.52, 13.405).unwrap());
        assert_eq!((f.altitude_cm, f.speed_cm_s), (Some(3450), Some(150)));
    }

    #[test]
    fn tabs_quotes_and_bom() {
        let s = run(
            "\u{feff}\"Time\"\t\"Latitude\"\t\"Longitude\"\t\"Speed (km/h)\"\n\"2024-06-15T10:30:00Z\"\t\"52.52\"\t\"13.4\"\t\"36\"\n",
        );
        assert_eq!(s.fixes()[0].speed_cm_s, Some(1000));
    }

    #[test]
    fn epoch_seconds_and_milliseconds_and_device() {
        let s = run(
            "deviceid,lat,lon,timestamp,batterylevel,speed_kmh\nphone1,52.52,13.405,1718444200,85,18\nphone1,52.52,13.405,1718444260123,84,\n",
        );
        let p = &s.points;
        assert_eq!(p[0].0.time.0, 1_718_444_200_000);
        assert_eq!(p[1].0.time.0, 1_718_444_260_123);
        assert_eq!(p[0].1.as_deref(), Some("phone1"));
        assert_eq!((p[0].0.battery_percent, p[0].0.speed_cm_s), (Some(85), Some(500)));
    }

    #[test]
    fn postgis_dump_with_wkt_geometry() {
        let s = run(
            "id,timestamp,geom\n1,2025-06-01 13:02:03.000000 +00:00,POINT (13.405 52.52)\n2,2025-06-01 13:02:04.000000 +00:00,SRID=4326;POINT(13.406 52.53)\n",
        );
        let f = s.fixes();
        assert_eq!(f[0].coord, Coord::from_degrees(52.52, 13.405).unwrap());
        assert_eq!(f[0].time.0, ms("2025-06-01T13:02:03Z"));
        assert_eq!(f[0].utc_offset_minutes, Some(0));
        assert_eq!(f[1].coord, Coord::from_degrees(52.53, 13.406).unwrap());
    }

    #[test]
    fn google_takeout_like_places_become_intervals() {
        let s = run(
            "\"Type\",\"Name\",\"Address\",\"Latitude\",\"Longitude\",\"Start Time\",\"End Time\",\"PlaceId\"\n\
             \"Activity\",\"UNKNOWN\",\"\",\"32.8954383\",\"-117.1930364\",\"2024-12-02T11:00:00.000-08:00\",\"2024-12-02T13:00:00.000-08:00\",\"\"\n\
             \"Visit\",\"Cafe\",\"1 Main St\",\"32.8955442\",\"-117.1929882\",\"2024-12-02T11:02:12.000-08:00\",\"2024-12-02T22:14:34.000-08:00\",\"ChIJ1\"\n",
        );
        assert!(s.points.is_empty());
        let (a, v) = (&s.intervals[0].0, &s.intervals[1].0);
        assert_eq!((a.kind, a.category.as_deref()), (IntervalKind::Activity, Some("UNKNOWN")));
        assert_eq!(
            (v.kind, v.name.as_deref(), v.place_id.as_deref()),
            (IntervalKind::Visit, Some("Cafe"), Some("ChIJ1"))
        );
        assert_eq!(v.start.0, ms("2024-12-02T19:02:12Z"));
        assert_eq!(v.start_offset_minutes, Some(-480));
        assert_eq!(v.start_coord, Some(Coord::from_degrees(32.895_544_2, -117.192_988_2).unwrap()));
        assert_eq!(v.extras.as_ref().unwrap().as_str(), r#"{"Address":"1 Main St"}"#);
    }

    #[test]
    fn separate_date_and_time_columns() {
        let s = run("date,time,lat,lon\n2024-06-15,10:30:00,52.52,13.4\n");
        assert_eq!(s.fixes()[0].time.0, ms("2024-06-15T10:30:00Z"));
        assert!(s.fixes()[0].zone_assumed);
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_text() {
        let s = run(
            "time,lat,lon,speed\n2024-06-15T10:30:00Z,52.52,13.4,1\nnot a time,52.52,13.4,1\r\n\r\n2024-06-15T10:31:00Z,0,0,1\n2024-06-15T10:32:00Z,52.5,,1\n2024-06-15T10:33:00Z,52.5,13.4,fast\n",
        );
        assert_eq!(s.points.len(), 1);
        let got: Vec<_> = s.rejects.iter().map(|r| (r.position, r.reason.as_str(), r.raw.as_str())).collect();
        assert_eq!(got[0].0, Position::Line(3));
        assert!(got[0].1.starts_with("time:"), "{}", got[0].1);
        assert_eq!(got[0].2, "not a time,52.52,13.4,1");
        assert_eq!(got[1].0, Position::Line(5));
        assert!(got[1].1.contains("0,0"));
        assert!(got[2].1.contains("longitude is missing"));
        assert!(got[3].1.contains("speed \"fast\" is not a number"));
    }

    #[test]
    fn rows_over_the_limit_are_rejected_by_line_and_the_next_rows_import() {
        let long = "x".repeat(100);
        let text = format!(
            "time,lat,lon,note\n2024-06-15T10:30:00Z,52.52,13.4,{long}\n2024-06-15T10:31:00Z,52.52,13.4,\"a\n{long}\nb\"\n\
             2024-06-15T10:32:00Z,52.52,13.4,\"ok\nok\"\n2024-06-15T10:33:00Z,52.52,13.4,x\nnot a time,1,2,x\n"
        );
        for chunk in [1, 7, 4096] {
            let mut sink = Collect::default();
            let reader = std::io::BufReader::with_capacity(chunk, text.as_bytes());
            import_with_limit(reader, &options(), &mut sink, 64).unwrap();
            let rejects: Vec<_> = sink.rejects.iter().map(|r| (r.position, &r.reason[..4])).collect();
            // Line numbers stay right after a cut row that spanned three lines.
            assert_eq!(
                rejects,
                [(Position::Line(2), "row "), (Position::Line(3), "row "), (Position::Line(9), "time")],
                "chunk {chunk}"
            );
            assert_eq!(sink.rejects[0].reason, "row longer than 1 MiB: skipped");
            let minutes: Vec<i64> = sink.points.iter().map(|(f, _)| (f.time.0 / 60_000) % 60).collect();
            assert_eq!(minutes, [32, 33], "chunk {chunk}");
            assert_eq!(sink.points[0].0.extras.as_ref().unwrap().as_str(), r#"{"note":"ok\nok"}"#);
        }
        let err =
            import_with_limit(&b"lat,lon,time,aaaaaaaaaa\n"[..], &options(), &mut Collect::default(), 8).unwrap_err();
        assert!(err.to_string().contains("header line longer than"), "{err}");
    }

    /// The header splitter reads a line exactly as the csv crate does.
    #[test]
    fn header_cells_split_as_the_csv_crate_does() {
        fn by_csv_crate(line: &str, delimiter: u8) -> Vec<String> {
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(delimiter)
                .flexible(true)
                .from_reader(line.as_bytes());
            let mut record = ::csv::StringRecord::new();
            match reader.read_record(&mut record) {
                Ok(true) => record.iter().map(str::to_owned).collect(),
                _ => Vec::new(),
            }
        }
        let mut lines: Vec<String> = [
            "",
            "a",
            "a,b",
            "a,",
            ",",
            ",,",
            "\"a,b\",c",
            "\"a\"\"b\",c",
            "\"a\"b,c",
            "a\"b\",c",
            "\"\"",
            "\"\"\"",
            "\"a",
            "a\rb,c",
            "\r\na,b",
            "\"a\rb\",c",
            "a,\"b\"\r",
            "\u{feff}lat,lon",
            "\u{feff}\"lat\",lon",
            "\"lät\";\"lön\"\tx",
            " \"a\" ,b",
            "\"a\" \"b\",c",
            "a\tb;c,d",
            "\"a\"\"\",b",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // And every short line over a small alphabet of the bytes that matter.
        let alphabet = ['a', ',', ';', '\t', '"', '\r', '\n', 'é'];
        for len in 1..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut line = String::new();
                for _ in 0..len {
                    line.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                lines.push(line);
            }
        }
        for line in &lines {
            for delimiter in [b',', b';', b'\t'] {
                assert_eq!(
                    header_cells(line, delimiter),
                    by_csv_crate(line, delimiter),
                    "{line:?} split on {delimiter}"
                );
            }
        }
    }

    #[test]
    fn a_header_without_position_columns_is_an_error() {
        let mut sink = Collect::default();
        let err = import(&b"name,phone\na,b\n"[..], &options(), &mut sink).unwrap_err();
        assert!(matches!(err, ImportError::Malformed { format: "CSV", .. }), "{err}");
    }

    #[test]
    fn polo_export_round_trips_exactly() {
        let mut want = Fix::new(
            polo_domain::Timestamp(1_717_243_323_456),
            Coord::from_degrees(52.520_008_1, -13.404_954_3).unwrap(),
            SourceFormat::Owntracks,
        );
        want.utc_offset_minutes = Some(-150);
        want.altitude_cm = Some(-1234);
        want.horizontal_accuracy_cm = Some(550);
        want.vertical_accuracy_cm = Some(300);
        want.speed_cm_s = Some(1389);
        want.course_centideg = Some(35_999);
        want.battery_percent = Some(87);
        want.motion = Some(Motion::Rail);
        want.extras = Some(polo_domain::Extras::from_json_object(
            r#"{"tid":"RO","inregions":["home, away"],"note":"say \"hi\""}"#,
        ));
        let mut bare =
            Fix::new(polo_domain::Timestamp(1_000_000_000_000), Coord { lat_e7: 1, lon_e7: -1 }, SourceFormat::Gpx);
        bare.zone_assumed = true;
        let row = |f: &Fix, device: &str| -> String {
            let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            let cells = [
                f.time.to_text(f.utc_offset_minutes, f.zone_assumed),
                f.coord.lat().to_string(),
                f.coord.lon().to_string(),
                opt(f.altitude_m()),
                opt(f.horizontal_accuracy_m()),
                opt(f.vertical_accuracy_m()),
                opt(f.speed_m_s()),
                opt(f.course_deg()),
                f.battery_percent.map(|v| v.to_string()).unwrap_or_default(),
                f.motion.map(|m| m.name().to_owned()).unwrap_or_default(),
                f.source.name().to_owned(),
                device.to_owned(),
                f.extras.as_ref().map(|e| format!("\"{}\"", e.as_str().replace('"', "\"\""))).unwrap_or_default(),
            ];
            cells.join(",")
        };
        let text = format!("{}\n{}\n{}\n", fields::CSV_COLUMNS.join(","), row(&want, "Pixel 7"), row(&bare, ""));
        let s = run(&text);
        assert!(s.rejects.is_empty(), "{:?}", s.rejects);
        assert_eq!(s.points[0], (want, Some("Pixel 7".to_owned())));
        assert_eq!(s.points[1], (bare, None));
    }
}
