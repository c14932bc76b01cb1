//! Deterministic generators for benchmark inputs.
//!
//! The Records.json generator reproduces what real Takeout files contain
//! (formats.md §1.2): two-space pretty printing, `timestampMs` strings for
//! the old eras and ISO `timestamp` (with and without fraction) for the new,
//! `activity` arrays and the 2014 `activitys`/`activities` spelling, Wi-Fi
//! scans that make up much of the bytes, occasional E7 sign overflow, and
//! mixed-case `source` values.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The deterministic PRNG the timeline generator uses too.
pub use polo_timeline::synthetic::Rng;

/// A person's day: stays at a few places joined by movement, with GPS jitter.
pub struct Walker {
    rng: Rng,
    pub time_ms: i64,
    lat: f64,
    lon: f64,
    target: (f64, f64),
    places: Vec<(f64, f64)>,
    pub moving: bool,
    pub speed: f64,
}

impl Walker {
    pub fn new(seed: u64, start_ms: i64) -> Self {
        let mut rng = Rng::new(seed);
        let home = (52.52, -13.40); // negative longitude exercises the overflow repair
        let places: Vec<_> =
            (0..12).map(|_| (home.0 + (rng.unit() - 0.5) * 0.2, home.1 + (rng.unit() - 0.5) * 0.3)).collect();
        Self { rng, time_ms: start_ms, lat: home.0, lon: home.1, target: home, places, moving: false, speed: 0.0 }
    }

    /// Advances to the next fix: `(interval_ms)`.
    pub fn step(&mut self) {
        let interval = if self.moving { 5_000 + self.rng.below(25_000) } else { 60_000 + self.rng.below(120_000) };
        #[allow(clippy::cast_possible_wrap)]
        {
            self.time_ms += interval as i64;
        }
        if self.moving {
            let (dlat, dlon) = (self.target.0 - self.lat, self.target.1 - self.lon);
            let dist = (dlat * dlat + dlon * dlon).sqrt();
            #[allow(clippy::cast_precision_loss)]
            let step = self.speed * (interval as f64 / 1000.0) / 111_000.0;
            if dist <= step {
                self.lat = self.target.0;
                self.lon = self.target.1;
                self.moving = false;
                self.speed = 0.0;
            } else {
                self.lat += dlat / dist * step;
                self.lon += dlon / dist * step;
            }
        } else if self.rng.chance(0.02) {
            #[allow(clippy::cast_possible_truncation)]
            let idx = self.rng.below(self.places.len() as u64) as usize;
            self.target = self.places[idx];
            self.moving = true;
            self.speed = [1.4, 4.5, 12.0, 25.0][self.rng.below(4) as usize];
        }
    }

    /// Current position with jitter, in degrees.
    pub fn position(&mut self) -> (f64, f64) {
        let jitter = 0.000_15;
        (self.lat + (self.rng.unit() - 0.5) * jitter, self.lon + (self.rng.unit() - 0.5) * jitter)
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

/// RFC 3339 UTC, with milliseconds or (like ProtoJSON for `.000`) without a fraction.
fn iso(ms: i64, with_fraction: bool) -> String {
    let text = polo_domain::Timestamp(ms).to_rfc3339(None);
    if with_fraction { text } else { format!("{}Z", &text[..19]) }
}

const ACTIVITIES: [&str; 8] =
    ["STILL", "ON_FOOT", "WALKING", "IN_VEHICLE", "ON_BICYCLE", "TILTING", "UNKNOWN", "IN_ROAD_VEHICLE"];

/// Writes a pretty-printed Records.json of at least `target_bytes`; returns the record count.
pub fn records_json(path: &Path, target_bytes: u64, seed: u64) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    out.write_all(b"{\n  \"locations\": [")?;
    let mut walker = Walker::new(seed, 1_356_998_400_000); // 2013-01-01
    let mut written: u64 = 20;
    let mut count: u64 = 0;
    let mut rec = String::with_capacity(4096);
    let new_era_from = 1_640_995_200_000; // 2022-01-01: ISO timestamps
    while written < target_bytes {
        walker.step();
        let (lat, lon) = walker.position();
        let t = walker.time_ms;
        rec.clear();
        rec.push_str(if count == 0 { "{\n" } else { ", {\n" });
        #[allow(clippy::cast_possible_truncation)]
        let (lat_e7, mut lon_e7) = ((lat * 1e7).round() as i64, (lon * 1e7).round() as i64);
        if walker.rng().chance(0.01) {
            lon_e7 += 4_294_967_296; // the unsigned-overflow quirk
        }
        let _ = write!(rec, "    \"latitudeE7\": {lat_e7},\n    \"longitudeE7\": {lon_e7},\n");
        let acc = 3 + walker.rng().below(60);
        let _ = writeln!(rec, "    \"accuracy\": {acc},");
        let rng = walker.rng();
        if rng.chance(0.5) {
            let _ = write!(
                rec,
                "    \"altitude\": {},\n    \"verticalAccuracy\": {},\n",
                30 + rng.below(40),
                2 + rng.below(20)
            );
        }
        let moving = walker.moving;
        let speed = walker.speed;
        let rng = walker.rng();
        if moving && rng.chance(0.8) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let v = speed.round() as u64;
            let _ = write!(rec, "    \"velocity\": {v},\n    \"heading\": {},\n", rng.below(360));
        }
        let with_activity = rng.chance(0.4);
        let old_spelling = t < 1_420_070_400_000 && rng.chance(0.5); // 2014 era
        if with_activity {
            let act_t = t + 1500;
            let stamp = if t < new_era_from {
                format!("\"timestampMs\": \"{act_t}\"")
            } else {
                format!("\"timestamp\": \"{}\"", iso(act_t, true))
            };
            let (outer, inner) = if old_spelling { ("activitys", "activities") } else { ("activity", "activity") };
            let _ = write!(rec, "    \"{outer}\": [{{\n      {stamp},\n      \"{inner}\": [");
            let n = 1 + rng.below(4);
            let mut confidence = 100;
            for i in 0..n {
                #[allow(clippy::cast_possible_truncation)]
                let kind = ACTIVITIES[rng.below(ACTIVITIES.len() as u64) as usize];
                let c = confidence / 2 + rng.below(confidence / 2 + 1);
                confidence = (confidence - c).max(1);
                let _ = write!(
                    rec,
                    "{}{{\n        \"type\": \"{kind}\",\n        \"confidence\": {c}\n      }}",
                    if i > 0 { ", " } else { "" }
                );
            }
            rec.push_str("]\n    }],\n");
        }
        if rng.chance(0.2) {
            rec.push_str("    \"activeWifiScan\": {\n      \"accessPoints\": [");
            let n = 2 + rng.below(10);
            for i in 0..n {
                let _ = write!(
                    rec,
                    "{}{{\n        \"mac\": \"{}\",\n        \"strength\": -{},\n        \"frequencyMhz\": {}\n      }}",
                    if i > 0 { ", " } else { "" },
                    rng.next_u64() % 281_474_976_710_656,
                    40 + rng.below(50),
                    if rng.chance(0.5) { 2437 } else { 5180 }
                );
            }
            rec.push_str("]\n    },\n");
        }
        let source = ["WIFI", "GPS", "CELL", "wifi", "UNKNOWN"][usize::try_from(rng.below(5)).unwrap_or(0)];
        let _ = write!(rec, "    \"source\": \"{source}\",\n    \"deviceTag\": -1438393939,\n");
        if t >= new_era_from {
            let _ = write!(rec, "    \"platformType\": \"ANDROID\",\n    \"formFactor\": \"PHONE\",\n");
            let with_fraction = t % 1000 != 0 && !rng.chance(0.1);
            let _ = write!(rec, "    \"timestamp\": \"{}\"\n  }}", iso(t, with_fraction));
        } else {
            let _ = write!(rec, "    \"timestampMs\": \"{t}\"\n  }}");
        }
        out.write_all(rec.as_bytes())?;
        written += rec.len() as u64;
        count += 1;
    }
    out.write_all(b"]\n}\n")?;
    out.flush()?;
    Ok(count)
}

/// Writes a typical phone history as CSV (one fix every 10–30 s while
/// moving, every few minutes while still, with accuracy, altitude, speed,
/// course and battery — what OwnTracks or GPSLogger record).
pub fn phone_history_csv(path: &Path, points: u64, seed: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "time,lat,lon,altitude,accuracy,speed,course,battery")?;
    let mut walker = Walker::new(seed, 1_640_995_200_000);
    let mut battery: i64 = 100;
    let mut line = String::with_capacity(160);
    for i in 0..points {
        walker.step();
        let (lat, lon) = walker.position();
        let t = walker.time_ms;
        let moving = walker.moving;
        let speed = walker.speed;
        let rng = walker.rng();
        if i % 40 == 0 {
            battery = if battery <= 15 { 100 } else { battery - 1 };
        }
        line.clear();
        let _ = write!(
            line,
            "{},{lat:.7},{lon:.7},{:.1},{},{:.1},{},{battery}",
            iso(t, false),
            35.0 + rng.unit() * 10.0,
            3 + rng.below(20),
            if moving { speed + rng.unit() } else { 0.0 },
            rng.below(360),
        );
        writeln!(out, "{line}")?;
    }
    out.flush()
}
