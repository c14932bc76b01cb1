//! Google's own visits on the realistic life (`polo-life`): its Semantic
//! Location History months, imported through the real importer into a
//! store beside the raw-path fixes they carry, with the timeline computed
//! by the engine. Every visit Google recorded must be shown with its name
//! and its times, whatever was detected from the raw path at the same time,
//! and every activity shown must have a distance.
//!
//! Run with `-- --nocapture` for the figures: how many visits the earlier
//! rule ("imported entries only where nothing was detected") would have
//! hidden, and how many the view shows now.

use std::collections::HashSet;
use std::sync::Arc;

use polo_derived::Engine;
use polo_derived::kinds::{LEG, STAY};
use polo_derived::places::PlaceBook;
use polo_derived::rows::{LegRow, StayRow};
use polo_derived::views::{self, Origin};
use polo_domain::{Fix, Interval, IntervalKind, Timestamp};
use polo_formats::{ImportOptions, Reject, Sink};
use polo_life::{LifeOptions, Scale};
use polo_store::{DerivedRange, DerivedScope, Store};
use polo_store_sqlite::SqliteStore;

#[derive(Default)]
struct Collect {
    fixes: Vec<Fix>,
    intervals: Vec<Interval>,
}

impl Sink for Collect {
    fn point(&mut self, fix: Fix, _device: Option<&str>) {
        self.fixes.push(fix);
    }

    fn interval(&mut self, interval: Interval, _device: Option<&str>) {
        self.intervals.push(interval);
    }

    fn reject(&mut self, reject: Reject) {
        panic!("the life's Semantic files import cleanly: {reject:?}");
    }
}

fn rows<T: serde::de::DeserializeOwned>(store: &dyn Store, user: polo_domain::UserId, range: &DerivedRange) -> Vec<T> {
    store.derived_range(user, range).unwrap().iter().map(|row| serde_json::from_slice(&row.value).unwrap()).collect()
}

#[test]
fn every_google_visit_of_the_life_is_shown_with_its_name_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = polo_life::write(dir.path(), &LifeOptions { seed: 7, scale: Scale::Small, start: None }).unwrap();
    let mut collected = Collect::default();
    let options = ImportOptions { now: Timestamp(i64::MAX / 2) };
    for file in manifest.files.iter().filter(|f| f.format == "google_semantic") {
        let reader = std::fs::File::open(dir.path().join(&file.name)).unwrap();
        polo_formats::import(std::io::BufReader::new(reader), &options, &mut collected).unwrap();
    }
    let visits: Vec<&Interval> =
        collected.intervals.iter().filter(|i| i.kind == IntervalKind::Visit && i.level == 0).collect();
    assert!(visits.len() > 100, "{} visits: the life should have Semantic months", visits.len());

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let user = store.create_user("alice", "x", false).unwrap().id;
    let device = store.ensure_device(user, "google").unwrap().id;
    collected.fixes.sort_by_key(|f| f.time);
    store.insert_points(user, device, &collected.fixes).unwrap();
    store.insert_intervals(user, device, &collected.intervals).unwrap();
    let engine = Engine::new(store.clone(), None);
    while engine.catch_up().unwrap().changes > 0 {}

    let scope = DerivedScope::Device(device);
    let detected_stays: Vec<StayRow> = rows(&*store, user, &DerivedRange::all(STAY, scope));
    let detected_legs: Vec<LegRow> = rows(&*store, user, &DerivedRange::all(LEG, scope));
    let touched = |v: &Interval| {
        let (start, end) = (v.start.0, v.end.0);
        detected_stays.iter().any(|s| s.start < end && s.end > start)
            || detected_legs.iter().any(|l| l.start < end && l.end > start)
    };
    let hidden_before = visits.iter().filter(|v| touched(v)).count();

    let book = PlaceBook::load(&*store, user).unwrap();
    let (from, to) = (visits[0].start, Timestamp(visits[visits.len() - 1].end.0 + 1));
    let shown = views::entries(&*store, user, device, from, to, &book).unwrap();
    let imported: HashSet<(i64, i64, Option<&str>)> = shown
        .stays
        .iter()
        .filter(|s| s.origin == Origin::Imported)
        .map(|s| (s.row.start, s.row.end, s.place_name.as_deref()))
        .collect();
    let kept = visits.iter().filter(|v| imported.contains(&(v.start.0, v.end.0, v.name.as_deref()))).count();
    let long = visits.iter().filter(|v| v.end.0 - v.start.0 >= 75 * 60_000).count();
    println!(
        "{} Google visits ({long} of 75 minutes or more): {hidden_before} overlapped a detected entry and were \
         hidden by the earlier rule; {kept} shown now with their names and times",
        visits.len()
    );
    assert_eq!(kept, visits.len(), "every visit is shown as Google recorded it");
    for stay in shown.stays.iter().filter(|s| s.origin == Origin::Detected) {
        let inside = visits.iter().any(|v| stay.row.start >= v.start.0 && stay.row.end <= v.end.0);
        assert!(!inside, "a detected stay inside a Google visit: {stay:?}");
    }
    let mut activities = 0;
    for leg in shown.legs.iter().filter(|l| l.origin == Origin::Imported) {
        activities += 1;
        assert!(leg.row.distance_m > 0.0, "an activity without a distance: {leg:?}");
    }
    println!(
        "{activities} activities shown where nothing was detected, all with a distance ({} in the files had none)",
        manifest.semantic.activities_without_distance
    );
}

/// What a Takeout gives: `Records.json` with each phone's fixes (no UTC
/// offsets), and Semantic Location History naming no phone, imported as
/// `polo import` files it (the visits on the import's default device).
#[test]
fn google_visits_show_on_the_phones_day_in_its_local_time() {
    #[derive(Default)]
    struct ByDevice {
        fixes: std::collections::BTreeMap<String, Vec<Fix>>,
        intervals: Vec<Interval>,
    }
    impl Sink for ByDevice {
        fn point(&mut self, fix: Fix, device: Option<&str>) {
            self.fixes.entry(device.unwrap_or("default").to_owned()).or_default().push(fix);
        }
        fn interval(&mut self, interval: Interval, _device: Option<&str>) {
            self.intervals.push(interval);
        }
        fn reject(&mut self, _reject: Reject) {}
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = polo_life::write(dir.path(), &LifeOptions { seed: 7, scale: Scale::Small, start: None }).unwrap();
    let options = ImportOptions { now: Timestamp(i64::MAX / 2) };
    let mut records = ByDevice::default();
    let file = std::fs::File::open(dir.path().join("Records.json")).unwrap();
    polo_formats::import(std::io::BufReader::new(file), &options, &mut records).unwrap();
    let mut semantic = ByDevice::default();
    for file in manifest.files.iter().filter(|f| f.format == "google_semantic") {
        let reader = std::fs::File::open(dir.path().join(&file.name)).unwrap();
        polo_formats::import(std::io::BufReader::new(reader), &options, &mut semantic).unwrap();
    }

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let user = store.create_user("alice", "x", false).unwrap().id;
    // The visits first, on a device of their own, with the raw-path fixes they carry.
    let default = store.ensure_device(user, "default").unwrap().id;
    let mut raw = semantic.fixes.into_values().flatten().collect::<Vec<_>>();
    raw.sort_by_key(|f| f.time);
    store.insert_points(user, default, &raw).unwrap();
    store.insert_intervals(user, default, &semantic.intervals).unwrap();
    let zones = Arc::new(polo_tz::BundledZones::builtin().unwrap());
    let engine = Engine::new(store.clone(), None).with_zones(zones);
    while engine.catch_up().unwrap().changes > 0 {}
    // Then the phones.
    for (name, mut fixes) in records.fixes {
        let device = store.ensure_device(user, &name).unwrap().id;
        fixes.sort_by_key(|f| f.time);
        store.insert_points(user, device, &fixes).unwrap();
    }
    while engine.catch_up().unwrap().changes > 0 {}

    // A named visit of at least an hour on a day a phone tracked.
    let phone = store.ensure_device(user, &manifest.devices[0].name).unwrap().id;
    let visit = semantic
        .intervals
        .iter()
        .filter(|i| i.kind == IntervalKind::Visit && i.level == 0 && i.name.is_some())
        .filter(|i| i.end.0 - i.start.0 >= 3_600_000)
        .find(|i| {
            let day = polo_timeline::LocalDate((i.start.0 + 3_600_000).div_euclid(86_400_000));
            views::day(&*store, user, day, None).unwrap().device == Some(phone)
        })
        .expect("a named visit on a day phone A tracked");
    let date = polo_timeline::LocalDate((visit.start.0 + 3_600_000).div_euclid(86_400_000));
    let day = views::day(&*store, user, date, None).unwrap();
    assert_eq!(day.device, Some(phone), "the day shows the phone that tracked it, not the visits' own device");
    let shown = day
        .entries
        .stays
        .iter()
        .find(|s| s.origin == Origin::Imported && s.row.start == visit.start.0)
        .unwrap_or_else(|| panic!("{:?} is not on the phone's day: {:#?}", visit.name, day.entries.stays));
    assert_eq!(shown.place_name, visit.name);
    let berlin = day.entries.stays.iter().filter(|s| s.origin == Origin::Detected).find_map(|s| s.row.offset);
    assert!(matches!(berlin, Some(60 | 120)), "the phone's stays are in Berlin time: {berlin:?}");
    assert_eq!(shown.row.offset, berlin, "the visit takes the phone's local clock");
}
