//! Writes a life into a directory as a user would have it, and its ground
//! truth into the [`Manifest`].
//!
//! Two passes over the life, both streaming: the first walks the segments
//! once (Semantic Location History files, GPX tracks, and the truth about
//! zones, flights, DST changes and crossings); the second merges the two
//! phones' fix streams by time into one `Records.json`, as Takeout does,
//! beside the `Settings.json` that names the phones.

mod gpx;
mod records;
mod semantic;
mod settings;

use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::geo::{crosses_antimeridian, great_circle_at};
use crate::manifest::{
    Crossing, DstChange, Flight, HolidayEntry, Manifest, PlacesEntry, Span, WeekendTripEntry, ZonePeriod,
};
use crate::plan::{Activity, Segment, local_day, local_to_utc};
use crate::zones::Zone;
use crate::{Date, Life, LifeOptions};

/// 2022-01-01T00:00:00Z: Google switched from `timestampMs` to ISO `timestamp`.
pub(crate) const ISO_ERA_MS: i64 = 1_640_995_200_000;

/// Generates the life `options` describe and writes its files into `dir`
/// (created if missing; existing files of the same names are replaced).
///
/// # Errors
/// Any I/O error creating or writing a file.
pub fn write(dir: &Path, options: &LifeOptions) -> io::Result<Manifest> {
    std::fs::create_dir_all(dir)?;
    let life = options.life();
    let cal = life.calendar();
    let mut manifest = Manifest {
        seed: life.seed(),
        first_day: Date::from_days(cal.start_day).to_string(),
        last_day: Date::from_days(cal.end_day - 1).to_string(),
        days: cal.end_day - cal.start_day,
        moved_home_on: Date::from_days(cal.move_day).to_string(),
        changed_job_on: Date::from_days(cal.job_change_day).to_string(),
        ..Manifest::default()
    };
    manifest.gaps = cal.gaps.iter().map(|&(a, b)| span(a, b + 1)).collect();
    manifest.device_overlap = span(cal.phone_b.0, cal.phone_a.1);
    manifest.weekend_trips = cal
        .weekend_trips
        .iter()
        .map(|t| WeekendTripEntry {
            town: life.world().towns[t.town].name,
            day: Date::from_days(t.first_day).to_string(),
            gpx: t.gpx,
        })
        .collect();

    let mut truth = Truth::new(&life);
    let mut semantic = semantic::Writer::new(dir, &life);
    let mut gpx = gpx::Writer::new(dir, &life);
    for segment in life.segments() {
        truth.observe(&segment);
        semantic.observe(&segment)?;
        gpx.observe(&segment)?;
    }
    truth.finish(&mut manifest);
    semantic.finish(&mut manifest)?;
    gpx.finish(&mut manifest)?;
    records::write(dir, &life, &mut manifest)?;
    settings::write(dir, &mut manifest)?;
    manifest.total_points = manifest.files.iter().map(|f| f.points).sum();
    Ok(manifest)
}

/// A span of home-zone days `[from, to)`.
pub(crate) fn span(from_day: i64, to_day: i64) -> Span {
    Span {
        from_ms: local_to_utc(from_day, 0, Zone::Berlin),
        to_ms: local_to_utc(to_day, 0, Zone::Berlin),
        first_day: Date::from_days(from_day).to_string(),
        last_day: Date::from_days(to_day - 1).to_string(),
    }
}

/// `YYYY-MM-DD` of `utc_ms` in `zone`.
fn local_date(utc_ms: i64, zone: Zone) -> String {
    Date::from_days(local_day(utc_ms, zone)).to_string()
}

/// UTC ranges of the calendar's gaps.
pub(crate) fn gap_ranges(life: &Life) -> Vec<(i64, i64)> {
    life.calendar()
        .gaps
        .iter()
        .map(|&(a, b)| (local_to_utc(a, 0, Zone::Berlin), local_to_utc(b + 1, 0, Zone::Berlin)))
        .collect()
}

/// The ground truth collected while walking the segments.
struct Truth<'a> {
    life: &'a Life,
    zone: Option<(Zone, i64)>,
    last_end: i64,
    zone_periods: Vec<ZonePeriod>,
    dst: Vec<DstChange>,
    crossings: Vec<Crossing>,
    flights: Vec<Flight>,
    stays: HashMap<usize, u32>,
    /// Per calendar holiday: first hotel stay start, last hotel stay end.
    hotel: Vec<Option<(i64, i64)>>,
}

impl<'a> Truth<'a> {
    fn new(life: &'a Life) -> Self {
        Self {
            life,
            zone: None,
            last_end: 0,
            zone_periods: Vec::new(),
            dst: Vec::new(),
            crossings: Vec::new(),
            flights: Vec::new(),
            stays: HashMap::new(),
            hotel: vec![None; life.calendar().holidays.len()],
        }
    }

    fn enter_zone(&mut self, zone: Zone, at: i64) {
        match self.zone {
            Some((z, _)) if z == zone => {}
            Some((z, from)) => {
                self.zone_periods.push(ZonePeriod { from_ms: from, to_ms: at, zone: z.iana() });
                self.zone = Some((zone, at));
            }
            None => self.zone = Some((zone, at)),
        }
    }

    fn observe(&mut self, s: &Segment) {
        let world = self.life.world();
        let from = world.place(s.from);
        self.enter_zone(from.zone, s.start_ms);
        self.last_end = s.end_ms;
        let zone = from.zone;
        if zone.offset_minutes(s.start_ms) != zone.offset_minutes(s.end_ms - 1) {
            let (y0, y1) =
                (Date::from_days(local_day(s.start_ms, zone)).year, Date::from_days(local_day(s.end_ms, zone)).year);
            for year in y0..=y1 {
                for (at, after) in zone.transitions(year) {
                    if (s.start_ms..s.end_ms).contains(&at) {
                        self.dst.push(DstChange {
                            zone: zone.iana(),
                            at_ms: at,
                            local_day: local_date(at, zone),
                            offset_before: zone.offset_minutes(at - 1),
                            offset_after: after,
                        });
                    }
                }
            }
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let at_fraction = |f: f64| s.start_ms + ((s.end_ms - s.start_ms) as f64 * f) as i64;
        match s.activity {
            Activity::Stay => {
                if s.end_ms - s.start_ms >= 5 * 60_000 {
                    *self.stays.entry(s.from).or_default() += 1;
                }
                for (i, h) in self.life.calendar().holidays.iter().enumerate() {
                    let dest = &world.destinations[h.destination];
                    let window =
                        (local_to_utc(h.first_day, 0, Zone::Berlin), local_to_utc(h.last_day + 3, 0, Zone::Berlin));
                    if s.from == dest.hotel && (window.0..window.1).contains(&s.start_ms) {
                        let entry = self.hotel[i].get_or_insert((s.start_ms, s.end_ms));
                        entry.1 = s.end_ms;
                    }
                }
            }
            Activity::Move { path, .. } => {
                let mut prev = path.at(0.0);
                for i in 1..=64 {
                    let f = f64::from(i) / 64.0;
                    let p = path.at(f);
                    if crosses_antimeridian(prev, p) {
                        self.crossings.push(Crossing {
                            time_ms: at_fraction(f),
                            by: "ground",
                            local_day: local_date(at_fraction(f), zone),
                        });
                    }
                    prev = p;
                }
            }
            Activity::Flight { to, air_fixes } => {
                let to_place = world.place(to);
                let mut prev = from.pos();
                let mut crosses = false;
                for i in 1..=128 {
                    let f = f64::from(i) / 128.0;
                    let p = great_circle_at(from.pos(), to_place.pos(), f);
                    if crosses_antimeridian(prev, p) {
                        crosses = true;
                        self.crossings.push(Crossing {
                            time_ms: at_fraction(f),
                            by: "flight",
                            local_day: local_date(at_fraction(f), zone),
                        });
                    }
                    prev = p;
                }
                let distance = crate::geo::distance_m(from.pos(), to_place.pos());
                #[allow(clippy::cast_precision_loss)]
                let hours = (s.end_ms - s.start_ms) as f64 / 3_600_000.0;
                self.flights.push(Flight {
                    from: from.iata.unwrap_or("?"),
                    to: to_place.iata.unwrap_or("?"),
                    depart_ms: s.start_ms,
                    arrive_ms: s.end_ms,
                    distance_km: (distance / 100.0).round() / 10.0,
                    speed_kmh: (distance / 1000.0 / hours).round(),
                    air_fixes,
                    crosses_antimeridian: crosses,
                });
                self.enter_zone(to_place.zone, s.end_ms);
            }
        }
    }

    fn finish(mut self, manifest: &mut Manifest) {
        if let Some((z, from)) = self.zone {
            self.zone_periods.push(ZonePeriod { from_ms: from, to_ms: self.last_end, zone: z.iana() });
        }
        let world = self.life.world();
        manifest.holidays = self
            .life
            .calendar()
            .holidays
            .iter()
            .zip(&self.hotel)
            .filter_map(|(h, hotel)| {
                let dest = &world.destinations[h.destination];
                let (from, to) = (*hotel)?;
                let (first, last) = (local_day(from, dest.zone) + 1, local_day(to, dest.zone));
                Some(HolidayEntry {
                    destination: dest.name,
                    zone: dest.zone.iana(),
                    offset_minutes: dest.zone.offset_minutes(from),
                    departure_day: Date::from_days(h.first_day).to_string(),
                    hotel_from_ms: from,
                    hotel_to_ms: to,
                    local_days: (first..last).map(|d| Date::from_days(d).to_string()).collect(),
                    gpx: h.gpx,
                })
            })
            .collect();
        manifest.zone_periods = self.zone_periods;
        manifest.dst_changes = self.dst;
        manifest.antimeridian_crossings = self.crossings;
        manifest.flights = self.flights;
        manifest.places = PlacesEntry {
            distinct: self.stays.len() as u64,
            repeated: self.stays.values().filter(|&&n| n >= 2).count() as u64,
            stays: self.stays.values().map(|&n| u64::from(n)).sum(),
        };
    }
}
