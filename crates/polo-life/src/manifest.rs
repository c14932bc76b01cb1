//! The ground truth of a written life: what is in which file and what
//! really happened, for tests to assert against. Times are UTC
//! milliseconds; dates are local dates (`YYYY-MM-DD`) where they say so.

use serde::Serialize;

/// Everything [`crate::write`] put into the directory, and the truth behind it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Manifest {
    /// The seed.
    pub seed: u64,
    /// First day (home-zone date).
    pub first_day: String,
    /// Last day (home-zone date).
    pub last_day: String,
    /// Number of days.
    pub days: i64,
    /// The files written, in write order.
    pub files: Vec<FileEntry>,
    /// The phones, with the device names polo gives them.
    pub devices: Vec<DeviceEntry>,
    /// Fixes polo must store from all files (rejects excluded).
    pub total_points: u64,
    /// When both phones recorded.
    pub device_overlap: Span,
    /// Every teleport fix: one fix thousands of km off, the next back.
    pub teleports: Vec<Teleport>,
    /// Records written deliberately broken: polo must reject exactly these.
    pub injected_rejects: Vec<InjectedReject>,
    /// `Records.json` records whose negative `longitudeE7` is written as
    /// unsigned 32-bit (the 2019 export quirk, to be repaired, not rejected).
    pub e7_overflow_records: u64,
    /// Every flight, airport to airport.
    pub flights: Vec<Flight>,
    /// Holidays away from home.
    pub holidays: Vec<HolidayEntry>,
    /// Weekend trips by car.
    pub weekend_trips: Vec<WeekendTripEntry>,
    /// Where the user was, as maximal runs in one time zone.
    pub zone_periods: Vec<ZonePeriod>,
    /// Daylight-saving changes the user lived through (in the zone they were in).
    pub dst_changes: Vec<DstChange>,
    /// Crossings of the 180° meridian, on the ground and in the air.
    pub antimeridian_crossings: Vec<Crossing>,
    /// Days without any fix from any device.
    pub gaps: Vec<Span>,
    /// The first day in the second home.
    pub moved_home_on: String,
    /// The first day at the second job.
    pub changed_job_on: String,
    /// What the Semantic Location History files hold.
    pub semantic: SemanticEntry,
    /// What the GPX files hold.
    pub gpx: GpxEntry,
    /// How often places were visited.
    pub places: PlacesEntry,
}

/// One file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileEntry {
    /// File name inside the directory.
    pub name: String,
    /// `google_records`, `google_settings`, `google_semantic` or `gpx`.
    pub format: &'static str,
    /// Size.
    pub bytes: u64,
    /// Fixes polo must store from it.
    pub points: u64,
    /// Visits and activities it holds.
    pub intervals: u64,
    /// Records polo must reject.
    pub rejects: u64,
}

/// One phone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceEntry {
    /// The device name polo stores its fixes under (`google-<deviceTag>`).
    pub name: String,
    /// The phone model.
    pub model: &'static str,
    /// Google's `deviceTag`.
    pub device_tag: i64,
    /// The label `Settings.json` gives it.
    pub label: String,
    /// Fixes polo must store (rejects excluded, teleports included).
    pub points: u64,
    /// First fix.
    pub first_ms: i64,
    /// Last fix.
    pub last_ms: i64,
}

/// A time range `[from_ms, to_ms)`, with the home-zone dates for reading.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Span {
    /// Start.
    pub from_ms: i64,
    /// End (exclusive).
    pub to_ms: i64,
    /// First day (home-zone date).
    pub first_day: String,
    /// Last day (home-zone date).
    pub last_day: String,
}

/// A teleport fix.
#[derive(Debug, Clone, Serialize)]
pub struct Teleport {
    /// Device name.
    pub device: String,
    /// Its time.
    pub time_ms: i64,
    /// Where it claims to be.
    pub lat: f64,
    /// Where it claims to be.
    pub lon: f64,
}

/// A deliberately broken record.
#[derive(Debug, Clone, Serialize)]
pub struct InjectedReject {
    /// File.
    pub file: String,
    /// Device name.
    pub device: String,
    /// The record's time.
    pub time_ms: i64,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A flight.
#[derive(Debug, Clone, Serialize)]
pub struct Flight {
    /// IATA code of the departure airport.
    pub from: &'static str,
    /// IATA code of the arrival airport.
    pub to: &'static str,
    /// Take-off (gate to gate: includes taxiing).
    pub depart_ms: i64,
    /// Landing.
    pub arrive_ms: i64,
    /// Great-circle distance.
    pub distance_km: f64,
    /// Average speed gate to gate.
    pub speed_kmh: f64,
    /// Fixes a phone records in the air.
    pub air_fixes: u8,
    /// The flight crosses the 180° meridian.
    pub crosses_antimeridian: bool,
}

/// A holiday.
#[derive(Debug, Clone, Serialize)]
pub struct HolidayEntry {
    /// Destination.
    pub destination: &'static str,
    /// IANA zone there.
    pub zone: &'static str,
    /// The local UTC offset there on arrival, minutes.
    pub offset_minutes: i16,
    /// Departure day (home date).
    pub departure_day: String,
    /// First night at the hotel (UTC).
    pub hotel_from_ms: i64,
    /// Leaving the hotel for the flight home (UTC).
    pub hotel_to_ms: i64,
    /// Full local days at the destination (`YYYY-MM-DD`, destination time).
    pub local_days: Vec<String>,
    /// Sightseeing recorded as GPX.
    pub gpx: bool,
}

/// A weekend trip.
#[derive(Debug, Clone, Serialize)]
pub struct WeekendTripEntry {
    /// The town.
    pub town: &'static str,
    /// The Saturday.
    pub day: String,
    /// Recorded as GPX.
    pub gpx: bool,
}

/// A run of time in one zone.
#[derive(Debug, Clone, Serialize)]
pub struct ZonePeriod {
    /// Start.
    pub from_ms: i64,
    /// End (exclusive).
    pub to_ms: i64,
    /// IANA zone.
    pub zone: &'static str,
}

/// A DST change experienced.
#[derive(Debug, Clone, Serialize)]
pub struct DstChange {
    /// IANA zone.
    pub zone: &'static str,
    /// The instant.
    pub at_ms: i64,
    /// The local date it happened on.
    pub local_day: String,
    /// Offset before, minutes.
    pub offset_before: i16,
    /// Offset after, minutes.
    pub offset_after: i16,
}

/// A crossing of the 180° meridian.
#[derive(Debug, Clone, Serialize)]
pub struct Crossing {
    /// When (approximately, to the minute).
    pub time_ms: i64,
    /// `ground` or `flight`.
    pub by: &'static str,
    /// The local date (zone of departure).
    pub local_day: String,
}

/// The Semantic Location History part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SemanticEntry {
    /// Covered time.
    pub span: Span,
    /// Monthly files.
    pub files: u32,
    /// `placeVisit` objects.
    pub visits: u64,
    /// `activitySegment` objects.
    pub activities: u64,
    /// Of which without `distance`.
    pub activities_without_distance: u64,
    /// `simplifiedRawPath` points (real fixes; polo stores them under its default device).
    pub raw_path_points: u64,
}

/// The GPX part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GpxEntry {
    /// Files (one per recorded trip day).
    pub files: u32,
    /// Track points (polo stores them under its default device).
    pub points: u64,
}

/// Place statistics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlacesEntry {
    /// Distinct places stayed at.
    pub distinct: u64,
    /// Of which stayed at twice or more.
    pub repeated: u64,
    /// Stays in total.
    pub stays: u64,
}

impl Manifest {
    /// The manifest as pretty JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A few lines for people.
    #[must_use]
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let bytes: u64 = self.files.iter().map(|f| f.bytes).sum();
        let _ = writeln!(s, "life {} .. {} ({} days, seed {})", self.first_day, self.last_day, self.days, self.seed);
        #[allow(clippy::cast_precision_loss)]
        let mb = bytes as f64 / 1e6;
        let _ = writeln!(s, "files: {} ({mb:.1} MB)", self.files.len());
        for d in &self.devices {
            let _ = writeln!(s, "  {} ({}): {} points", d.name, d.model, d.points);
        }
        let _ = writeln!(
            s,
            "  default device: {} GPX points in {} files, {} semantic raw-path points",
            self.gpx.points, self.gpx.files, self.semantic.raw_path_points
        );
        let _ = writeln!(
            s,
            "total points: {}, injected rejects: {}, teleports: {}, E7 overflow records: {}",
            self.total_points,
            self.injected_rejects.len(),
            self.teleports.len(),
            self.e7_overflow_records
        );
        let _ = writeln!(
            s,
            "semantic: {} files, {} visits, {} activities ({} .. {})",
            self.semantic.files,
            self.semantic.visits,
            self.semantic.activities,
            self.semantic.span.first_day,
            self.semantic.span.last_day
        );
        let _ = writeln!(
            s,
            "holidays: {}, flights: {}, weekend trips: {}, gaps: {}, DST changes: {}, antimeridian crossings: {}",
            self.holidays.len(),
            self.flights.len(),
            self.weekend_trips.len(),
            self.gaps.len(),
            self.dst_changes.len(),
            self.antimeridian_crossings.len()
        );
        let _ = writeln!(
            s,
            "places: {} distinct, {} visited repeatedly, {} stays; phones overlap {} .. {}",
            self.places.distinct,
            self.places.repeated,
            self.places.stays,
            self.device_overlap.first_day,
            self.device_overlap.last_day
        );
        s
    }
}
