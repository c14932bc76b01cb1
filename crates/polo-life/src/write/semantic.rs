//! Semantic Location History: one `YYYY_MONTH.json` per month (Takeout's
//! `Semantic Location History/YYYY/` files, flattened into the directory),
//! `{"timelineObjects":[…]}` with a `placeVisit` per stay and an
//! `activitySegment` per move or flight, for the calendar's semantic window
//! and outside its gaps. The fields follow formats.md §1.3 and what
//! `polo-formats`' semantic importer reads: visit `location` with name,
//! address, place id and semantic type; durations as `…TimestampMs` before
//! 2022 and ISO after; activity start/end locations (a few empty, as in real
//! files), `distance` (sometimes missing), `activityType`, `activities`,
//! `waypointPath`; and, on some visits, a `simplifiedRawPath` of real fixes.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ISO_ERA_MS;
use super::records::iso;
use crate::Life;
use crate::calendar::Calendar;
use crate::geo::offset_m;
use crate::manifest::{FileEntry, Manifest};
use crate::plan::{Activity, Mode, Segment, local_to_utc};
use crate::rng::Rng;
use crate::world::PlaceKind;
use crate::zones::Zone;
use crate::{Date, Device};

const MONTHS: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];

struct Open {
    month: (i32, u32),
    name: String,
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    first: bool,
    entry: FileEntry,
}

pub(super) struct Writer<'a> {
    dir: &'a Path,
    life: &'a Life,
    window: (i64, i64),
    gaps: Vec<(i64, i64)>,
    rng: Rng,
    open: Option<Open>,
    files: Vec<FileEntry>,
    visits: u64,
    activities: u64,
    without_distance: u64,
    raw_points: u64,
    /// Raw-path points of the object about to be pushed.
    pending_points: u64,
}

fn e7(v: f64) -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    let e = (v * 1e7).round() as i64;
    e
}

fn duration(start: i64, end: i64) -> Value {
    if start < ISO_ERA_MS {
        json!({"startTimestampMs": start.to_string(), "endTimestampMs": end.to_string()})
    } else {
        json!({"startTimestamp": iso(start), "endTimestamp": iso(end)})
    }
}

fn semantic_activity(mode: Mode) -> (&'static str, Option<&'static str>) {
    match mode {
        Mode::Walk => ("WALKING", Some("WALK")),
        Mode::Bike => ("CYCLING", Some("BICYCLE")),
        Mode::Car => ("IN_PASSENGER_VEHICLE", Some("DRIVE")),
        Mode::Transit => ("IN_SUBWAY", None),
        Mode::Flight => ("FLYING", None),
    }
}

impl<'a> Writer<'a> {
    pub(super) fn new(dir: &'a Path, life: &'a Life) -> Self {
        let cal: &Calendar = life.calendar();
        let window = (local_to_utc(cal.semantic.0, 0, Zone::Berlin), local_to_utc(cal.semantic.1, 0, Zone::Berlin));
        Self {
            dir,
            life,
            window,
            gaps: super::gap_ranges(life),
            rng: Rng::new(life.seed(), 0x5e3a_0001),
            open: None,
            files: Vec::new(),
            visits: 0,
            activities: 0,
            without_distance: 0,
            raw_points: 0,
            pending_points: 0,
        }
    }

    fn device_tag(&self, t: i64) -> i64 {
        let b_from = local_to_utc(self.life.calendar().phone_b.0, 0, Zone::Berlin);
        if t >= b_from { Device::PhoneB.device_tag() } else { Device::PhoneA.device_tag() }
    }

    pub(super) fn observe(&mut self, s: &Segment) -> io::Result<()> {
        if s.start_ms < self.window.0 || s.start_ms >= self.window.1 {
            return Ok(());
        }
        if self.gaps.iter().any(|&(a, b)| s.start_ms < b && s.end_ms > a) {
            return Ok(());
        }
        let object = match s.activity {
            Activity::Stay => self.visit(s),
            Activity::Move { to, mode, path } => {
                let waypoints: Vec<Value> = (1..=1 + self.rng.below(5))
                    .map(|i| {
                        #[allow(clippy::cast_precision_loss)]
                        let p = path.at(i as f64 / 7.0);
                        json!({"latE7": e7(p.0), "lngE7": e7(p.1)})
                    })
                    .collect();
                let mut wp = json!({"waypoints": waypoints, "source": "INFERRED"});
                #[allow(clippy::cast_possible_truncation)]
                let length = path.length_m.round() as i64;
                if let Some(travel_mode) = semantic_activity(mode).1 {
                    wp["travelMode"] = json!(travel_mode);
                    wp["distanceMeters"] = json!(length);
                }
                self.segment(s, to, mode, length, Some(wp))
            }
            Activity::Flight { to, .. } => {
                let d =
                    crate::geo::distance_m(self.life.world().place(s.from).pos(), self.life.world().place(to).pos());
                #[allow(clippy::cast_possible_truncation)]
                self.segment(s, to, Mode::Flight, d.round() as i64, None)
            }
        };
        self.push(s.start_ms, &object)
    }

    fn visit(&mut self, s: &Segment) -> Value {
        let place = self.life.world().place(s.from);
        let mut location = json!({
            "latitudeE7": e7(place.lat),
            "longitudeE7": e7(place.lon),
            "placeId": place.place_id,
            "address": place.address,
            "name": place.name,
            "sourceInfo": {"deviceTag": self.device_tag(s.start_ms)},
            "locationConfidence": (self.rng.range(40.0, 99.0) * 1000.0).round() / 1000.0,
        });
        match place.kind {
            PlaceKind::Home => location["semanticType"] = json!("TYPE_HOME"),
            PlaceKind::Work => location["semanticType"] = json!("TYPE_WORK"),
            _ => {}
        }
        let centre = offset_m(place.pos(), self.rng.normal() * 15.0, self.rng.normal() * 15.0);
        let mut visit = json!({
            "location": location,
            "duration": duration(s.start_ms, s.end_ms),
            "placeConfidence": "HIGH_CONFIDENCE",
            "centerLatE7": e7(centre.0),
            "centerLngE7": e7(centre.1),
            "visitConfidence": 60 + self.rng.below(40),
            "editConfirmationStatus": "NOT_CONFIRMED",
            "locationConfidence": 80,
            "placeVisitType": "SINGLE_PLACE",
            "placeVisitImportance": "MAIN",
        });
        if self.rng.chance(0.1) && s.end_ms - s.start_ms > 10 * 60_000 {
            let n = 1 + self.rng.below(2);
            let points: Vec<Value> = (0..n)
                .map(|i| {
                    #[allow(clippy::cast_possible_wrap)]
                    let t = s.start_ms + (s.end_ms - s.start_ms) * (i as i64 + 1) / (n as i64 + 1);
                    let p = offset_m(place.pos(), self.rng.normal() * 10.0, self.rng.normal() * 10.0);
                    let mut point =
                        json!({"latE7": e7(p.0), "lngE7": e7(p.1), "accuracyMeters": 5 + self.rng.below(30)});
                    if t < ISO_ERA_MS {
                        point["timestampMs"] = json!(t.to_string());
                    } else {
                        point["timestamp"] = json!(iso(t));
                    }
                    point
                })
                .collect();
            self.raw_points += n;
            self.pending_points = n;
            visit["simplifiedRawPath"] = json!({"points": points});
        }
        self.visits += 1;
        json!({"placeVisit": visit})
    }

    fn segment(&mut self, s: &Segment, to: usize, mode: Mode, distance_m: i64, waypoints: Option<Value>) -> Value {
        let world = self.life.world();
        let (from, to) = (world.place(s.from), world.place(to));
        let tag = self.device_tag(s.start_ms);
        let location = |p: &crate::world::Place| json!({"latitudeE7": e7(p.lat), "longitudeE7": e7(p.lon), "sourceInfo": {"deviceTag": tag}});
        // A few segments come with empty start/end locations, as in real files.
        let empty = self.rng.chance(0.05);
        let (kind, _) = semantic_activity(mode);
        let probability = (self.rng.range(60.0, 99.0) * 100.0).round() / 100.0;
        let mut segment = json!({
            "startLocation": if empty { json!({}) } else { location(from) },
            "endLocation": location(to),
            "duration": duration(s.start_ms, s.end_ms),
            "activityType": kind,
            "confidence": if probability > 80.0 { "HIGH" } else { "MEDIUM" },
            "activities": [
                {"activityType": kind, "probability": probability},
                {"activityType": "WALKING", "probability": ((100.0 - probability) * 100.0).round() / 100.0},
            ],
        });
        if self.rng.chance(0.15) {
            self.without_distance += 1;
        } else {
            segment["distance"] = json!(distance_m);
        }
        if let Some(wp) = waypoints {
            segment["waypointPath"] = wp;
        }
        self.activities += 1;
        json!({"activitySegment": segment})
    }

    fn push(&mut self, start_ms: i64, object: &Value) -> io::Result<()> {
        let date = Date::from_days(start_ms.div_euclid(polo_domain::time::MS_PER_DAY));
        let month = (date.year, date.month);
        if self.open.as_ref().is_none_or(|o| o.month != month) {
            self.close()?;
            let name = format!("{}_{}.json", date.year, MONTHS[usize::try_from(date.month - 1).unwrap_or(0)]);
            let path = self.dir.join(&name);
            let mut out = BufWriter::new(std::fs::File::create(&path)?);
            out.write_all(b"{\n  \"timelineObjects\": [")?;
            let entry = FileEntry { name: name.clone(), format: "google_semantic", ..FileEntry::default() };
            self.open = Some(Open { month, name, path, out, first: true, entry });
        }
        let Some(open) = self.open.as_mut() else { return Ok(()) };
        if !open.first {
            open.out.write_all(b", ")?;
        }
        open.first = false;
        serde_json::to_writer_pretty(&mut open.out, object)?;
        open.entry.intervals += 1;
        open.entry.points += std::mem::take(&mut self.pending_points);
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(mut open) = self.open.take() {
            open.out.write_all(b"]\n}\n")?;
            open.out.flush()?;
            drop(open.out);
            open.entry.bytes = std::fs::metadata(&open.path)?.len();
            debug_assert_eq!(open.entry.name, open.name);
            self.files.push(open.entry);
        }
        Ok(())
    }

    pub(super) fn finish(mut self, manifest: &mut Manifest) -> io::Result<()> {
        self.close()?;
        let cal = self.life.calendar();
        manifest.semantic.span = super::span(cal.semantic.0, cal.semantic.1);
        manifest.semantic.files = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        manifest.semantic.visits = self.visits;
        manifest.semantic.activities = self.activities;
        manifest.semantic.activities_without_distance = self.without_distance;
        manifest.semantic.raw_path_points = self.raw_points;
        manifest.files.extend(self.files);
        Ok(())
    }
}
