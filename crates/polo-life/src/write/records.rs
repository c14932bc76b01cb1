//! `Records.json` as Google Takeout wrote it: both phones in one
//! `{"locations":[…]}` array, merged by time, pretty-printed with two spaces.
//! Records before 2022 carry `timestampMs` (epoch ms as a string), later ones
//! an ISO `timestamp` (no fraction when the milliseconds are zero, as
//! ProtoJSON prints it) plus `platformType`/`formFactor`. Phone A's 2019
//! records west of Greenwich carry the unsigned-overflow `longitudeE7`.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::iter::Peekable;
use std::path::Path;

use polo_domain::Timestamp;

use super::ISO_ERA_MS;
use crate::manifest::{DeviceEntry, FileEntry, InjectedReject, Manifest, Teleport};
use crate::plan::Mode;
use crate::sample::{LifeFix, Points, Source};
use crate::{Device, Life};

/// The file name.
pub const FILE: &str = "Records.json";

/// 2019 in UTC ms: the era of the E7 overflow quirk.
const OVERFLOW_ERA: (i64, i64) = (1_546_300_800_000, 1_577_836_800_000);

/// RFC 3339 UTC; no fraction for whole seconds.
pub(crate) fn iso(ms: i64) -> String {
    let text = Timestamp(ms).to_rfc3339(None);
    if ms.rem_euclid(1000) == 0 { format!("{}Z", &text[..19]) } else { text }
}

/// Google's `activity` types for a fix, most probable first.
fn activity_types(mode: Option<Mode>) -> &'static [&'static str] {
    match mode {
        None => &["STILL", "TILTING", "UNKNOWN"],
        Some(Mode::Walk) => &["ON_FOOT", "WALKING", "STILL"],
        Some(Mode::Bike) => &["ON_BICYCLE", "IN_VEHICLE", "ON_FOOT"],
        Some(Mode::Car) => &["IN_VEHICLE", "IN_ROAD_VEHICLE", "IN_CAR"],
        Some(Mode::Transit) => &["IN_VEHICLE", "IN_RAIL_VEHICLE", "ON_FOOT"],
        Some(Mode::Flight) => &["UNKNOWN", "IN_VEHICLE", "STILL"],
    }
}

struct Merge<'a> {
    a: Peekable<Points<'a>>,
    b: Peekable<Points<'a>>,
}

impl Iterator for Merge<'_> {
    type Item = (Device, LifeFix);

    fn next(&mut self) -> Option<(Device, LifeFix)> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) => a.time_ms <= b.time_ms,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_a { self.a.next().map(|f| (Device::PhoneA, f)) } else { self.b.next().map(|f| (Device::PhoneB, f)) }
    }
}

pub(super) fn write(dir: &Path, life: &Life, manifest: &mut Manifest) -> io::Result<()> {
    let path = dir.join(FILE);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    out.write_all(b"{\n  \"locations\": [")?;
    let merge = Merge { a: life.points(Device::PhoneA).peekable(), b: life.points(Device::PhoneB).peekable() };
    let mut devices: Vec<DeviceEntry> = Device::ALL
        .iter()
        .map(|d| DeviceEntry {
            name: d.polo_name(),
            model: d.model(),
            device_tag: d.device_tag(),
            label: d.label(),
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            ..DeviceEntry::default()
        })
        .collect();
    let mut file = FileEntry { name: FILE.to_owned(), format: "google_records", ..FileEntry::default() };
    let mut rec = String::with_capacity(1024);
    let mut first = true;
    for (device, fix) in merge {
        let entry = &mut devices[usize::from(device == Device::PhoneB)];
        if fix.null_island {
            manifest.injected_rejects.push(InjectedReject {
                file: FILE.to_owned(),
                device: entry.name.clone(),
                time_ms: fix.time_ms,
                reason: "position 0,0 (null island)",
            });
            file.rejects += 1;
        } else {
            entry.points += 1;
            entry.first_ms = entry.first_ms.min(fix.time_ms);
            entry.last_ms = entry.last_ms.max(fix.time_ms);
            file.points += 1;
        }
        if fix.teleport {
            manifest.teleports.push(Teleport {
                device: entry.name.clone(),
                time_ms: fix.time_ms,
                lat: fix.lat,
                lon: fix.lon,
            });
        }
        rec.clear();
        rec.push_str(if first { "{\n" } else { ", {\n" });
        first = false;
        let t = fix.time_ms;
        let old_era = t < ISO_ERA_MS;
        if old_era {
            let _ = writeln!(rec, "    \"timestampMs\": \"{t}\",");
        }
        #[allow(clippy::cast_possible_truncation)]
        let (lat_e7, mut lon_e7) = ((fix.lat * 1e7).round() as i64, (fix.lon * 1e7).round() as i64);
        if device == Device::PhoneA && lon_e7 < 0 && (OVERFLOW_ERA.0..OVERFLOW_ERA.1).contains(&t) {
            lon_e7 += 4_294_967_296;
            manifest.e7_overflow_records += 1;
        }
        let _ = write!(rec, "    \"latitudeE7\": {lat_e7},\n    \"longitudeE7\": {lon_e7},\n");
        let _ = writeln!(rec, "    \"accuracy\": {},", fix.accuracy_m);
        if let (Some(v), Some(h)) = (fix.speed_m_s, fix.heading_deg) {
            #[allow(clippy::cast_possible_truncation)]
            let v = v.round() as i64;
            let _ = write!(rec, "    \"velocity\": {v},\n    \"heading\": {h},\n");
        }
        // Altitude on GPS fixes, and on every other fix in the new era.
        if fix.source == Source::Gps || (!old_era && t % 2 == 0) {
            let _ = write!(
                rec,
                "    \"altitude\": {},\n    \"verticalAccuracy\": {},\n",
                fix.altitude_m, fix.vertical_accuracy_m
            );
        }
        // About a third of the records carry activity recognition.
        if t % 3 == 0 {
            let types = activity_types(fix.mode);
            let stamp = t + 1_000 + t % 1_000;
            let stamp = if old_era {
                format!("\"timestampMs\": \"{stamp}\"")
            } else {
                format!("\"timestamp\": \"{}\"", iso(stamp))
            };
            let main = 60 + t.rem_euclid(41);
            let _ = write!(
                rec,
                "    \"activity\": [{{\n      {stamp},\n      \"activity\": [{{\n        \"type\": \"{}\",\n        \"confidence\": {main}\n      }}, {{\n        \"type\": \"{}\",\n        \"confidence\": {}\n      }}]\n    }}],\n",
                types[0],
                types[1 + usize::from(t % 7 == 0)],
                100 - main
            );
        }
        let source = match fix.source {
            Source::Gps => "GPS",
            Source::Wifi if t % 5 == 0 => "wifi",
            Source::Wifi => "WIFI",
            Source::Cell => "CELL",
        };
        let _ = writeln!(rec, "    \"source\": \"{source}\",");
        let _ = write!(rec, "    \"deviceTag\": {}", device.device_tag());
        if old_era {
            rec.push_str("\n  }");
        } else {
            let _ = write!(
                rec,
                ",\n    \"platformType\": \"ANDROID\",\n    \"formFactor\": \"PHONE\",\n    \"timestamp\": \"{}\"\n  }}",
                iso(t)
            );
        }
        out.write_all(rec.as_bytes())?;
    }
    out.write_all(b"]\n}\n")?;
    out.flush()?;
    drop(out);
    file.bytes = std::fs::metadata(&path)?.len();
    for d in &mut devices {
        if d.points == 0 {
            (d.first_ms, d.last_ms) = (0, 0);
        }
    }
    manifest.devices = devices;
    manifest.files.push(file);
    Ok(())
}
