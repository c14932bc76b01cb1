//! The six-month life, written once per test run, checked against its own
//! manifest and through polo's real importers; plus the decade's plan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polo_domain::{Fix, Interval, Timestamp};
use polo_formats::{ImportOptions, Reject, Sink};
use polo_life::geo::distance_m;
use polo_life::{Date, Device, Life, LifeOptions, Manifest, Mode, Scale};

fn small() -> LifeOptions {
    LifeOptions { seed: 1, scale: Scale::Small, start: None }
}

/// The small life, written once into the test target directory.
fn written() -> &'static (PathBuf, Manifest) {
    static WRITTEN: OnceLock<(PathBuf, Manifest)> = OnceLock::new();
    WRITTEN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("polo-life-small");
        let _ = std::fs::remove_dir_all(&dir);
        let manifest = polo_life::write(&dir, &small()).expect("write the small life");
        (dir, manifest)
    })
}

/// FNV-1a over every file (name and bytes), in name order.
fn hash_dir(dir: &Path) -> u64 {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for path in names {
        let bytes = std::fs::read(&path).unwrap();
        for b in path.file_name().unwrap().as_encoded_bytes().iter().chain(&bytes) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[test]
fn same_seed_writes_the_same_bytes_and_another_seed_does_not() {
    let (dir, manifest) = written();
    let again = tempfile::tempdir().unwrap();
    let manifest_again = polo_life::write(again.path(), &small()).unwrap();
    assert_eq!(hash_dir(dir), hash_dir(again.path()));
    assert_eq!(manifest.to_json(), manifest_again.to_json());
    let other = tempfile::tempdir().unwrap();
    polo_life::write(other.path(), &LifeOptions { seed: 2, ..small() }).unwrap();
    assert_ne!(hash_dir(dir), hash_dir(other.path()));
}

#[derive(Default)]
struct Counting {
    points: u64,
    by_device: HashMap<Option<String>, u64>,
    intervals: u64,
    rejects: Vec<Reject>,
    times: Vec<i64>,
    labels: HashMap<String, String>,
}

impl Sink for Counting {
    fn point(&mut self, fix: Fix, device: Option<&str>) {
        self.points += 1;
        *self.by_device.entry(device.map(str::to_owned)).or_default() += 1;
        self.times.push(fix.time.0);
    }
    fn interval(&mut self, _: Interval, _: Option<&str>) {
        self.intervals += 1;
    }
    fn reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }
    fn device_label(&mut self, device: &str, label: &str) {
        self.labels.insert(device.to_owned(), label.to_owned());
    }
}

#[test]
fn every_file_imports_with_no_rejects_but_the_injected_ones() {
    let (dir, manifest) = written();
    let options = ImportOptions { now: Timestamp(1_893_456_000_000) }; // 2030
    let formats: HashSet<&str> = manifest.files.iter().map(|f| f.format).collect();
    assert_eq!(formats, HashSet::from(["google_records", "google_settings", "google_semantic", "gpx"]));
    let mut by_device: HashMap<Option<String>, u64> = HashMap::new();
    let mut labels: HashMap<String, String> = HashMap::new();
    for file in &manifest.files {
        let mut sink = Counting::default();
        polo_formats::import_path(&dir.join(&file.name), &options, &mut sink).unwrap();
        assert_eq!((sink.points, sink.intervals), (file.points, file.intervals), "{}", file.name);
        assert_eq!(sink.rejects.len() as u64, file.rejects, "{}: {:?}", file.name, sink.rejects);
        for r in &sink.rejects {
            assert!(r.reason.contains("0,0"), "{}: unexpected reject {r:?}", file.name);
        }
        for (device, n) in sink.by_device {
            *by_device.entry(device).or_default() += n;
        }
        labels.extend(sink.labels);
    }
    let expected: HashMap<String, String> =
        manifest.devices.iter().map(|d| (d.name.clone(), d.label.clone())).collect();
    assert_eq!(labels, expected, "Settings.json labels both phones");
    assert_eq!(labels["google--602738541"], "Anna's Pixel");
    assert_eq!(labels["google-1372984201"], "LGE Nexus 5X");
    assert!(!manifest.injected_rejects.is_empty());
    let rejects: u64 = manifest.files.iter().map(|f| f.rejects).sum();
    assert_eq!(rejects, manifest.injected_rejects.len() as u64);
    for d in &manifest.devices {
        assert_eq!(by_device.get(&Some(d.name.clone())).copied(), Some(d.points), "{}", d.name);
    }
    assert_eq!(by_device[&None], manifest.gpx.points + manifest.semantic.raw_path_points);
    assert_eq!(by_device.values().sum::<u64>(), manifest.total_points);
}

#[test]
fn records_json_mixes_both_timestamp_eras() {
    let (dir, _) = written();
    let text = std::fs::read_to_string(dir.join("Records.json")).unwrap();
    assert!(text.starts_with("{\n  \"locations\": [{\n    \"timestampMs\": \"16"));
    assert!(text.contains("\"timestamp\": \"2022-01-"));
    assert!(text.contains("\"activity\": [{") && text.contains("\"velocity\": "));
}

#[test]
fn teleports_are_a_tenth_of_a_percent_and_jump_thousands_of_km() {
    let (_, manifest) = written();
    let phone_points: u64 = manifest.devices.iter().map(|d| d.points).sum();
    #[allow(clippy::cast_precision_loss)]
    let fraction = manifest.teleports.len() as f64 / phone_points as f64;
    assert!((0.0006..0.0015).contains(&fraction), "{fraction}");
    let life = small().life();
    let fixes: Vec<_> = life.points(Device::PhoneA).filter(|f| !f.null_island).collect();
    let teleports = manifest.teleports.iter().filter(|t| t.device == Device::PhoneA.polo_name()).count();
    let mut seen = 0;
    for w in fixes.windows(3) {
        if w[1].teleport {
            seen += 1;
            let (before, at, after) = ((w[0].lat, w[0].lon), (w[1].lat, w[1].lon), (w[2].lat, w[2].lon));
            assert!(distance_m(before, at) > 2_000_000.0 && distance_m(at, after) > 2_000_000.0);
            assert!(!w[2].teleport, "a teleport is one fix, then back");
        }
    }
    assert!(seen > 0 && seen <= teleports);
}

#[test]
fn the_phones_overlap_for_weeks_with_their_own_fixes() {
    let (_, manifest) = written();
    let (a, b) = (&manifest.devices[0], &manifest.devices[1]);
    assert_ne!(a.name, b.name);
    let overlap_days = (a.last_ms.min(b.last_ms) - a.first_ms.max(b.first_ms)) / 86_400_000;
    assert!(overlap_days >= 40, "{overlap_days}");
    let life = small().life();
    let window = (manifest.device_overlap.from_ms, manifest.device_overlap.to_ms);
    let in_window = |d| life.points(d).filter(move |f| (window.0..window.1).contains(&f.time_ms)).collect::<Vec<_>>();
    let (fa, fb) = (in_window(Device::PhoneA), in_window(Device::PhoneB));
    assert!(fb.len() > fa.len() && !fa.is_empty(), "the second phone samples more often");
    let times_a: HashSet<i64> = fa.iter().map(|f| f.time_ms).collect();
    let shared = fb.iter().filter(|f| times_a.contains(&f.time_ms)).count();
    assert!(shared * 100 < fb.len(), "different sampling: {shared} shared times");
    // Carried together: at about the same time, about the same place.
    let mut close = 0;
    let mut j = 0;
    let plain = |f: &&polo_life::LifeFix| !f.teleport && !f.null_island && f.mode.is_none() && f.accuracy_m < 100;
    for f in fa.iter().filter(plain) {
        while j + 1 < fb.len() && fb[j + 1].time_ms <= f.time_ms {
            j += 1;
        }
        let g = &fb[j];
        if (f.time_ms - g.time_ms).abs() < 120_000 && plain(&g) {
            let d = distance_m((f.lat, f.lon), (g.lat, g.lon));
            assert!(d < 300.0, "{d} m apart: {f:?} {g:?}");
            close += 1;
        }
    }
    assert!(close > 100, "{close}");
}

#[test]
fn phones_sample_seconds_apart_moving_minutes_apart_still_and_doze_at_night() {
    let life = small().life();
    let fixes: Vec<_> = life.points(Device::PhoneA).take(40_000).collect();
    let mut moving = Vec::new();
    let mut still = Vec::new();
    for w in fixes.windows(2) {
        let gap = (w[1].time_ms - w[0].time_ms) / 1000;
        match (w[0].mode, w[1].mode) {
            (Some(Mode::Walk | Mode::Bike | Mode::Car | Mode::Transit), Some(_)) => moving.push(gap),
            (None, None) => still.push(gap),
            _ => {}
        }
    }
    moving.sort_unstable();
    still.sort_unstable();
    assert!(moving[moving.len() / 2] <= 15, "moving median {}", moving[moving.len() / 2]);
    assert!((60..=400).contains(&still[still.len() / 2]), "still median {}", still[still.len() / 2]);
    assert!(still.iter().filter(|&&g| g >= 15 * 60).count() > 100, "doze gaps");
}

#[test]
fn stationary_fixes_jitter_around_the_place() {
    let life = small().life();
    let home = life.world().place(life.world().homes[0]).pos();
    let near_home: Vec<f64> = life
        .points(Device::PhoneA)
        .take(20_000)
        .filter(|f| f.mode.is_none() && !f.teleport && !f.null_island && f.accuracy_m < 60)
        .map(|f| distance_m(home, (f.lat, f.lon)))
        .filter(|&d| d < 200.0)
        .collect();
    assert!(near_home.len() > 1_000);
    #[allow(clippy::cast_possible_truncation)]
    let distinct: HashSet<i64> = near_home.iter().map(|d| (d * 1000.0) as i64).collect();
    assert!(distinct.len() > near_home.len() / 2, "jitter, not one repeated position");
    #[allow(clippy::cast_precision_loss)]
    let mean = near_home.iter().sum::<f64>() / near_home.len() as f64;
    assert!((2.0..30.0).contains(&mean), "mean jitter {mean} m");
}

#[test]
fn holidays_flights_and_dst_are_in_the_ground_truth() {
    let (_, manifest) = written();
    let dst = manifest.dst_changes.iter().find(|d| d.zone == "Europe/Berlin").expect("a DST change at home");
    assert_eq!((dst.local_day.as_str(), dst.offset_before, dst.offset_after), ("2021-10-31", 120, 60));
    let fiji = manifest.holidays.iter().find(|h| h.zone == "Pacific/Fiji").expect("the Taveuni holiday");
    assert_eq!(fiji.offset_minutes, 720);
    assert!(fiji.local_days.len() >= 8, "{:?}", fiji.local_days);
    let tokyo = manifest.holidays.iter().find(|h| h.destination == "Tokyo").expect("a Tokyo holiday");
    assert_eq!((tokyo.zone, tokyo.offset_minutes), ("Asia/Tokyo", 540));
    let zones: HashSet<&str> = manifest.zone_periods.iter().map(|z| z.zone).collect();
    assert!(zones.is_superset(&HashSet::from(["Europe/Berlin", "Asia/Tokyo", "Pacific/Fiji", "America/Los_Angeles"])));
    // Out via Tokyo and Nadi to Taveuni, back via Nadi and Los Angeles.
    let legs: Vec<(&str, &str)> = manifest.flights.iter().map(|f| (f.from, f.to)).collect();
    let taveuni = [("BER", "HND"), ("HND", "NAN"), ("NAN", "TVU"), ("TVU", "NAN"), ("NAN", "LAX"), ("LAX", "BER")];
    assert!(legs.windows(6).any(|w| w == taveuni), "{legs:?}");
    for f in &manifest.flights {
        assert!((150.0..950.0).contains(&f.speed_kmh), "{f:?}");
        assert!(f.air_fixes <= 3);
    }
    assert!(manifest.flights.iter().any(|f| f.crosses_antimeridian));
    // Zone periods tile the life without holes.
    for w in manifest.zone_periods.windows(2) {
        assert_eq!(w[0].to_ms, w[1].from_ms);
    }
}

#[test]
fn taveuni_crosses_the_antimeridian_on_the_ground() {
    let (_, manifest) = written();
    let fiji = manifest.holidays.iter().find(|h| h.zone == "Pacific/Fiji").unwrap();
    let ground: Vec<_> = manifest.antimeridian_crossings.iter().filter(|c| c.by == "ground").collect();
    assert!(ground.len() >= 2);
    assert!(ground.iter().all(|c| (fiji.hotel_from_ms..fiji.hotel_to_ms).contains(&c.time_ms)));
    let day = &ground[0].local_day;
    assert!(fiji.local_days.contains(day) || day.as_str() > fiji.local_days[0].as_str());
    // The phone's fixes on that stretch sit on both sides of 180°.
    let life = small().life();
    let (east, west) = life
        .points(Device::PhoneA)
        .filter(|f| (ground[0].time_ms - 3_600_000..ground[0].time_ms + 3_600_000).contains(&f.time_ms))
        .filter(|f| !f.teleport)
        .fold((0, 0), |(e, w), f| {
            if f.lon < -179.0 {
                (e + 1, w)
            } else if f.lon > 179.0 {
                (e, w + 1)
            } else {
                (e, w)
            }
        });
    assert!(east > 0 && west > 0, "{east} east, {west} west");
}

#[test]
fn gaps_hold_no_fixes_from_any_device() {
    let (_, manifest) = written();
    assert!(!manifest.gaps.is_empty());
    let life = small().life();
    for gap in &manifest.gaps {
        assert!(gap.to_ms - gap.from_ms >= 86_400_000);
        for device in Device::ALL {
            let mut before = false;
            let mut after = false;
            for f in life.points(device) {
                assert!(!(gap.from_ms..gap.to_ms).contains(&f.time_ms), "{device:?} fix in gap {gap:?}");
                before |= (gap.from_ms - 86_400_000..gap.from_ms).contains(&f.time_ms);
                after |= (gap.to_ms..gap.to_ms + 86_400_000).contains(&f.time_ms);
            }
            let active = |d: Device| life.active_days(d);
            let (from, to) = active(device);
            let gap_day = Date::new(
                gap.first_day[..4].parse().unwrap(),
                gap.first_day[5..7].parse().unwrap(),
                gap.first_day[8..].parse().unwrap(),
            )
            .days();
            if (from + 1..to - 1).contains(&gap_day) {
                assert!(before && after, "{device:?} records around the gap");
            }
        }
    }
}

#[test]
fn semantic_months_cover_part_of_the_life_with_visits_and_activities() {
    let (dir, manifest) = written();
    let s = &manifest.semantic;
    assert!(s.files >= 3 && s.visits > 100 && s.activities > 100 && s.activities_without_distance > 0);
    assert!(s.span.from_ms > manifest.devices[0].first_ms && s.span.to_ms < manifest.devices[1].last_ms);
    let october = std::fs::read_to_string(dir.join("2021_OCTOBER.json")).unwrap();
    for needle in [
        "\"placeVisit\"",
        "\"activitySegment\"",
        "\"startTimestampMs\"",
        "\"placeId\": \"ChIJ",
        "\"address\"",
        "\"waypointPath\"",
        "\"TYPE_HOME\"",
    ] {
        assert!(october.contains(needle), "{needle}");
    }
    let january = std::fs::read_to_string(dir.join("2022_JANUARY.json")).unwrap();
    assert!(january.contains("\"startTimestamp\": \"2022-01-"));
}

#[test]
fn a_decade_visits_a_few_hundred_places_mostly_again_and_again() {
    let life = Life::new(1, 10.0, Date::new(2015, 1, 1));
    let mut stays: BTreeMap<usize, u32> = BTreeMap::new();
    let mut last_end = None;
    let mut zones_stayed_in = HashSet::new();
    for s in life.segments() {
        if let Some(end) = last_end {
            assert_eq!(s.start_ms, end, "segments follow each other without holes");
        }
        assert!(s.end_ms > s.start_ms);
        last_end = Some(s.end_ms);
        if s.activity == polo_life::Activity::Stay {
            *stays.entry(s.from).or_default() += 1;
            zones_stayed_in.insert(life.world().place(s.from).zone);
        }
    }
    let repeated = stays.values().filter(|&&n| n >= 2).count();
    assert!((200..500).contains(&stays.len()), "{} places", stays.len());
    assert!(repeated * 3 >= stays.len() * 2, "{repeated} of {} revisited", stays.len());
    assert!(zones_stayed_in.len() >= 6, "{zones_stayed_in:?}");
    let cal = life.calendar();
    let destinations: HashSet<&str> =
        cal.holidays.iter().map(|h| life.world().destinations[h.destination].name).collect();
    assert_eq!(destinations.len(), life.world().destinations.len(), "every destination, Tokyo too: {destinations:?}");
    assert!(cal.phone_a.1 - cal.phone_b.0 >= 90, "the phones overlap for months");
    assert!(cal.gaps.len() >= 5 && cal.holidays.len() >= 15 && cal.weekend_trips.len() >= 50);
}
