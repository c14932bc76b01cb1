//! Streaming exporters: GPX, GeoJSON and CSV.
//!
//! Points are written one at a time as the store streams them, so an export
//! of ten years of history runs in constant memory. Every field of a
//! [`Fix`] is written — GPX carries what it has no element for in polo's
//! extension namespace — and numbers are printed from their fixed-point
//! values exactly, so importing an export gives back identical points
//! (see the round-trip property test).

use std::fmt::Write as _;
use std::io::{self, Write};

use polo_domain::Fix;

use crate::extras::push_json_string;
use crate::fields;

/// A format polo exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// GPX 1.1, one track per device.
    Gpx,
    /// A GeoJSON FeatureCollection of Point features.
    Geojson,
    /// CSV with [`fields::CSV_COLUMNS`].
    Csv,
}

impl ExportFormat {
    /// Parses `gpx`, `geojson` or `csv`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "gpx" => Some(Self::Gpx),
            "geojson" | "json" => Some(Self::Geojson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    /// The conventional file extension.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Gpx => "gpx",
            Self::Geojson => "geojson",
            Self::Csv => "csv",
        }
    }

    /// The HTTP media type.
    #[must_use]
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gpx => "application/gpx+xml",
            Self::Geojson => "application/geo+json",
            Self::Csv => "text/csv",
        }
    }
}

/// Writes points in one format, as they come.
pub struct Exporter<W: Write> {
    format: ExportFormat,
    out: W,
    line: String,
    current_device: Option<String>,
    written: u64,
}

/// `value / 10^decimals` printed exactly, without trailing zeros.
fn fixed(line: &mut String, value: i64, decimals: u32) {
    let scale = 10_i64.pow(decimals);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let scale_u = scale.unsigned_abs();
    let whole = magnitude / scale_u;
    let frac = magnitude % scale_u;
    let _ = write!(line, "{sign}{whole}");
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = decimals as usize);
        line.push('.');
        line.push_str(digits.trim_end_matches('0'));
    }
}

fn xml_escape(line: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => line.push_str("&lt;"),
            '>' => line.push_str("&gt;"),
            '&' => line.push_str("&amp;"),
            '"' => line.push_str("&quot;"),
            '\'' => line.push_str("&apos;"),
            c => line.push(c),
        }
    }
}

fn csv_field(line: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
}

/// The optional measurements of a fix as `(name, value, decimals)`.
fn measurements(fix: &Fix) -> [(&'static str, Option<i64>, u32); 5] {
    [
        (fields::ACCURACY, fix.horizontal_accuracy_cm.map(i64::from), 2),
        (fields::VERTICAL_ACCURACY, fix.vertical_accuracy_cm.map(i64::from), 2),
        (fields::SPEED, fix.speed_cm_s.map(i64::from), 2),
        (fields::COURSE, fix.course_centideg.map(i64::from), 2),
        (fields::BATTERY, fix.battery_percent.map(i64::from), 0),
    ]
}

impl<W: Write> Exporter<W> {
    /// Starts an export, writing the format's header.
    ///
    /// # Errors
    /// Write failures.
    pub fn new(format: ExportFormat, mut out: W) -> io::Result<Self> {
        match format {
            ExportFormat::Gpx => write!(
                out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"polo\" \
                 xmlns=\"http://www.topografix.com/GPX/1/1\" xmlns:polo=\"{}\">\n",
                fields::GPX_NAMESPACE
            )?,
            ExportFormat::Geojson => out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n")?,
            ExportFormat::Csv => writeln!(out, "{}", fields::CSV_COLUMNS.join(","))?,
        }
        Ok(Self { format, out, line: String::with_capacity(512), current_device: None, written: 0 })
    }

    /// Number of points written so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes one point of `device`. Points of one device should come
    /// together (GPX starts a new track whenever the device changes).
    ///
    /// # Errors
    /// Write failures.
    pub fn write(&mut self, device: &str, fix: &Fix) -> io::Result<()> {
        self.line.clear();
        match self.format {
            ExportFormat::Gpx => self.gpx_point(device, fix),
            ExportFormat::Geojson => self.geojson_point(device, fix),
            ExportFormat::Csv => self.csv_point(device, fix),
        }
        self.written += 1;
        self.out.write_all(self.line.as_bytes())
    }

    /// Writes the closing part and returns the writer.
    ///
    /// # Errors
    /// Write failures.
    pub fn finish(mut self) -> io::Result<W> {
        match self.format {
            ExportFormat::Gpx => {
                if self.current_device.is_some() {
                    self.out.write_all(b"</trkseg></trk>\n")?;
                }
                self.out.write_all(b"</gpx>\n")?;
            }
            ExportFormat::Geojson => self.out.write_all(b"\n]}\n")?,
            ExportFormat::Csv => {}
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn gpx_point(&mut self, device: &str, fix: &Fix) {
        let line = &mut self.line;
        if self.current_device.as_deref() != Some(device) {
            if self.current_device.is_some() {
                line.push_str("</trkseg></trk>\n");
            }
            line.push_str("<trk><name>");
            xml_escape(line, device);
            line.push_str("</name><extensions><polo:device>");
            xml_escape(line, device);
            line.push_str("</polo:device></extensions><trkseg>\n");
            self.current_device = Some(device.to_owned());
        }
        line.push_str("<trkpt lat=\"");
        fixed(line, i64::from(fix.coord.lat_e7), 7);
        line.push_str("\" lon=\"");
        fixed(line, i64::from(fix.coord.lon_e7), 7);
        line.push_str("\">");
        if let Some(alt) = fix.altitude_cm {
            line.push_str("<ele>");
            fixed(line, i64::from(alt), 2);
            line.push_str("</ele>");
        }
        line.push_str("<time>");
        line.push_str(&fix.time.to_text(fix.utc_offset_minutes, fix.zone_assumed));
        line.push_str("</time><extensions>");
        for (name, value, decimals) in measurements(fix) {
            if let Some(v) = value {
                let _ = write!(line, "<polo:{name}>");
                fixed(line, v, decimals);
                let _ = write!(line, "</polo:{name}>");
            }
        }
        if let Some(motion) = fix.motion {
            let _ = write!(line, "<polo:{0}>{1}</polo:{0}>", fields::MOTION, motion.name());
        }
        let _ = write!(line, "<polo:{0}>{1}</polo:{0}>", fields::SOURCE, fix.source.name());
        if let Some(extras) = &fix.extras {
            let _ = write!(line, "<polo:{}>", fields::EXTRAS);
            xml_escape(line, extras.as_str());
            let _ = write!(line, "</polo:{}>", fields::EXTRAS);
        }
        line.push_str("</extensions></trkpt>\n");
    }

    fn geojson_point(&mut self, device: &str, fix: &Fix) {
        let line = &mut self.line;
        if self.written > 0 {
            line.push_str(",\n");
        }
        line.push_str("{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[");
        fixed(line, i64::from(fix.coord.lon_e7), 7);
        line.push(',');
        fixed(line, i64::from(fix.coord.lat_e7), 7);
        if let Some(alt) = fix.altitude_cm {
            line.push(',');
            fixed(line, i64::from(alt), 2);
        }
        line.push_str("]},\"properties\":{\"");
        line.push_str(fields::TIME);
        line.push_str("\":\"");
        line.push_str(&fix.time.to_text(fix.utc_offset_minutes, fix.zone_assumed));
        line.push('"');
        for (name, value, decimals) in measurements(fix) {
            if let Some(v) = value {
                let _ = write!(line, ",\"{name}\":");
                fixed(line, v, decimals);
            }
        }
        if let Some(motion) = fix.motion {
            let _ = write!(line, ",\"{}\":\"{}\"", fields::MOTION, motion.name());
        }
        let _ = write!(line, ",\"{}\":\"{}\",\"{}\":", fields::SOURCE, fix.source.name(), fields::DEVICE);
        push_json_string(line, device);
        if let Some(extras) = &fix.extras {
            let _ = write!(line, ",\"{}\":{}", fields::EXTRAS, extras.as_str());
        }
        line.push_str("}}");
    }

    fn csv_point(&mut self, device: &str, fix: &Fix) {
        let line = &mut self.line;
        line.push_str(&fix.time.to_text(fix.utc_offset_minutes, fix.zone_assumed));
        line.push(',');
        fixed(line, i64::from(fix.coord.lat_e7), 7);
        line.push(',');
        fixed(line, i64::from(fix.coord.lon_e7), 7);
        line.push(',');
        if let Some(alt) = fix.altitude_cm {
            fixed(line, i64::from(alt), 2);
        }
        for (_, value, decimals) in measurements(fix) {
            line.push(',');
            if let Some(v) = value {
                fixed(line, v, decimals);
            }
        }
        line.push(',');
        if let Some(motion) = fix.motion {
            line.push_str(motion.name());
        }
        line.push(',');
        line.push_str(fix.source.name());
        line.push(',');
        csv_field(line, device);
        line.push(',');
        if let Some(extras) = &fix.extras {
            csv_field(line, extras.as_str());
        }
        line.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polo_domain::{Coord, Extras, Motion, SourceFormat, Timestamp};

    fn sample() -> Fix {
        let mut fix = Fix::new(
            Timestamp(1_700_000_000_123),
            Coord::from_degrees(-33.865_143_2, 151.209_900_1).unwrap(),
            SourceFormat::GoogleRecords,
        );
        fix.utc_offset_minutes = Some(660);
        fix.altitude_cm = Some(-1234);
        fix.horizontal_accuracy_cm = Some(500);
        fix.speed_cm_s = Some(135);
        fix.motion = Some(Motion::Walking);
        fix.extras = Some(Extras::from_json_object(r#"{"wifi":[1,2],"note":"a,\"b\""}"#));
        fix
    }

    fn export(format: ExportFormat) -> String {
        let mut exporter = Exporter::new(format, Vec::new()).unwrap();
        exporter.write("phone <1>", &sample()).unwrap();
        exporter.write("phone <1>", &sample()).unwrap();
        String::from_utf8(exporter.finish().unwrap()).unwrap()
    }

    #[test]
    fn fixed_point_printing_is_exact() {
        let mut s = String::new();
        for (v, d) in [(-338_651_432, 7), (5, 2), (-5, 2), (1200, 2), (0, 7), (7, 0)] {
            fixed(&mut s, v, d);
            s.push(' ');
        }
        assert_eq!(s, "-33.8651432 0.05 -0.05 12 0 7 ");
    }

    #[test]
    fn geojson_is_valid_and_complete() {
        let text = export(ExportFormat::Geojson);
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let props = &doc["features"][1]["properties"];
        assert_eq!(props["time"], "2023-11-15T09:13:20.123+11:00");
        assert_eq!(props["accuracy"], 5);
        assert_eq!(props["speed"], 1.35);
        assert_eq!(props["motion"], "walking");
        assert_eq!(props["source"], "google-records");
        assert_eq!(props["device"], "phone <1>");
        assert_eq!(props["extras"]["note"], "a,\"b\"");
        assert_eq!(doc["features"][0]["geometry"]["coordinates"][2], -12.34);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let text = export(ExportFormat::Csv);
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), fields::CSV_COLUMNS.to_vec());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "-33.8651432");
        assert_eq!(&row[12], r#"{"wifi":[1,2],"note":"a,\"b\""}"#);
    }

    #[test]
    fn gpx_is_well_formed() {
        let text = export(ExportFormat::Gpx);
        let mut reader = quick_xml::Reader::from_str(&text);
        let mut trkpts = 0;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(e) if e.name().0 == "trkpt" => trkpts += 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(trkpts, 2);
        assert!(text.contains("<name>phone &lt;1&gt;</name>"));
        assert_eq!(text.matches("<trk>").count(), 1);
    }
}
