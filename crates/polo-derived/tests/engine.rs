//! The engine against a real store: whatever order points arrive in, the
//! stored timeline equals a detection over the whole history, and the
//! user's edits survive every recomputation.

use std::sync::Arc;

use polo_derived::kinds::{LEG, PLACE, STAY};
use polo_derived::rows::{LegRow, Locality, PlaceAddress, StayRow};
use polo_derived::views::{self, Period};
use polo_derived::{Engine, Locator, places, settings};
use polo_domain::{Coord, DeviceId, Fix, SourceFormat, Timestamp, UserId};
use polo_store::{DerivedRange, DerivedScope, Store};
use polo_test_support::TestStore;
use polo_timeline::synthetic::SyntheticTrack;
use polo_timeline::{LocalDate, TimelineParams, TrackPoint, TransportMode};

struct Fixture {
    engine: Engine,
    store: Arc<dyn Store>,
    _backend: TestStore,
    user: UserId,
    device: DeviceId,
}

struct Hemispheres;

impl Locator for Hemispheres {
    fn locate(&self, coord: Coord) -> Locality {
        Locality {
            country_code: Some(if coord.lon() >= 8.5 { "EA".into() } else { "WE".into() }),
            town: Some(format!("town{}", (coord.lat() * 100.0).floor())),
            ..Locality::default()
        }
    }
}

fn fixture() -> Fixture {
    let backend = TestStore::new();
    let store = backend.store.clone();
    let user = store.create_user("alice", "x", false).unwrap().id;
    let device = store.ensure_device(user, "phone").unwrap().id;
    Fixture { engine: Engine::new(store.clone(), Some(Arc::new(Hemispheres))), store, _backend: backend, user, device }
}

fn fixes(points: &[TrackPoint]) -> Vec<Fix> {
    points
        .iter()
        .map(|p| {
            let mut fix = Fix::new(p.time, p.coord, SourceFormat::Unknown);
            fix.utc_offset_minutes = p.utc_offset_minutes;
            fix.altitude_cm = p.altitude_cm;
            fix
        })
        .collect()
}

fn catch_up(engine: &Engine) -> u64 {
    let mut read = 0;
    loop {
        let step = engine.catch_up().unwrap();
        read += step.points_read;
        if step.changes == 0 {
            return read;
        }
    }
}

fn stored(f: &Fixture) -> (Vec<StayRow>, Vec<LegRow>) {
    let scope = DerivedScope::Device(f.device);
    let decode = |kind| -> Vec<Vec<u8>> {
        f.store.derived_range(f.user, &DerivedRange::all(kind, scope)).unwrap().into_iter().map(|r| r.value).collect()
    };
    let stays = decode(STAY).iter().map(|v| serde_json::from_slice(v).unwrap()).collect();
    let legs = decode(LEG).iter().map(|v| serde_json::from_slice(v).unwrap()).collect();
    (stays, legs)
}

/// The (start, end) of stays and the (start, end, mode) of legs.
type Shape = (Vec<(i64, i64)>, Vec<(i64, i64, TransportMode)>);

/// The shape of the stays and legs a full detection over the stored
/// points finds (the store keeps one fix per instant, so its points may be
/// fewer than those inserted).
fn expected(f: &Fixture) -> Shape {
    let mut points = Vec::new();
    f.store
        .scan_points(&polo_store::PointQuery::user(f.user), &mut |p| {
            points.push(TrackPoint::from(&p));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    let timeline = polo_timeline::detect(&points, &TimelineParams::default()).unwrap();
    (
        timeline.stays.iter().map(|s| (s.start.0, s.end.0)).collect(),
        timeline.legs.iter().map(|l| (l.start.0, l.end.0, l.mode)).collect(),
    )
}

fn actual(f: &Fixture) -> Shape {
    let (stays, legs) = stored(f);
    (stays.iter().map(|s| (s.start, s.end)).collect(), legs.iter().map(|l| (l.start, l.end, l.mode)).collect())
}

#[test]
fn live_appends_keep_the_stored_timeline_equal_to_a_full_detection() {
    let f = fixture();
    let points = SyntheticTrack::new(21).days(3).points;
    for batch in points.chunks(97) {
        f.store.insert_points(f.user, f.device, &fixes(batch)).unwrap();
        if batch[0].time.0 % 3 == 0 {
            catch_up(&f.engine);
        }
    }
    catch_up(&f.engine);
    let (stays, legs) = actual(&f);
    assert!(stays.len() > 5, "{} stays", stays.len());
    assert_eq!((stays, legs), expected(&f));
}

#[test]
fn a_backfilled_point_recomputes_only_its_neighbourhood() {
    let f = fixture();
    let mut points = SyntheticTrack::new(5).days(20).points;
    // Leave one point out, import the rest, then backfill it.
    let middle = points.len() / 2;
    let late = points.remove(middle);
    f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
    catch_up(&f.engine);
    assert_eq!(actual(&f), expected(&f));
    f.store.insert_points(f.user, f.device, &fixes(&[late])).unwrap();
    let read = catch_up(&f.engine);
    points.insert(middle, late);
    assert_eq!(actual(&f), expected(&f));
    assert!(read * 10 < points.len() as u64, "read {read} of {} points for one backfilled point", points.len());
}

#[test]
fn importing_old_history_after_recent_history_equals_one_import() {
    let f = fixture();
    let points = SyntheticTrack::new(8).days(6).points;
    let cut = points.len() * 2 / 3;
    f.store.insert_points(f.user, f.device, &fixes(&points[cut..])).unwrap();
    catch_up(&f.engine);
    f.store.insert_points(f.user, f.device, &fixes(&points[..cut])).unwrap();
    catch_up(&f.engine);
    assert_eq!(actual(&f), expected(&f));
    // A range delete (a tombstone) recomputes too.
    let from = points[cut / 2].time;
    let to = points[cut].time;
    f.store
        .delete_points(&polo_store::PointQuery { user: f.user, device: Some(f.device), from: Some(from), to: Some(to) })
        .unwrap();
    catch_up(&f.engine);
    assert_eq!(actual(&f), expected(&f));
}

#[test]
fn place_names_merges_and_mode_corrections_survive_recomputation() {
    let f = fixture();
    let points = SyntheticTrack::new(3).days(5).points;
    f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
    catch_up(&f.engine);
    let before = views::places(&*f.store, f.user).unwrap();
    assert!(before.len() >= 2, "{before:?}");
    let (home, other) = (before[0].id, before[1].id);
    places::rename(&*f.store, f.user, home, Some("  Home ")).unwrap();
    places::merge(&*f.store, f.user, other, home).unwrap();
    assert!(places::merge(&*f.store, f.user, home, other).is_err(), "already one place");
    assert!(places::rename(&*f.store, f.user, 9_999, Some("x")).is_err());
    let (_, legs) = stored(&f);
    let leg = legs.iter().find(|l| l.mode != TransportMode::Flight).unwrap().clone();
    f.engine.set_leg_mode(f.user, f.device, Timestamp(leg.start), TransportMode::Flight).unwrap();

    // New settings recompute everything (a shorter minimum visit).
    let mut params = TimelineParams::default();
    params.stays.visit_min_duration_s = 20 * 60;
    settings::set_settings(&*f.store, f.user, &params).unwrap();
    catch_up(&f.engine);

    let after = views::places(&*f.store, f.user).unwrap();
    let merged = after.iter().find(|p| p.id == home).unwrap();
    assert_eq!(merged.name.as_deref(), Some("Home"));
    assert_eq!(merged.merged, [other]);
    assert!(after.iter().all(|p| p.id != other));
    let expected_visits: u32 = before.iter().filter(|p| p.id == home || p.id == other).map(|p| p.visits).sum();
    assert!(merged.visits >= expected_visits, "{} < {expected_visits}", merged.visits);
    let (_, legs) = stored(&f);
    let day = views::entries(
        &*f.store,
        f.user,
        f.device,
        Timestamp(leg.start),
        Timestamp(leg.end + 1),
        &places::PlaceBook::load(&*f.store, f.user).unwrap(),
    )
    .unwrap();
    let shown = day.legs.iter().find(|l| l.row.start == leg.start).unwrap();
    assert_eq!((shown.mode, shown.corrected), (TransportMode::Flight, true));
    assert!(legs.iter().any(|l| l.start == leg.start), "the leg is still detected at the same time");
    let stays = stored(&f).0;
    assert!(stays.iter().filter(|s| s.visit).all(|s| s.place.is_some()));
}

#[test]
fn street_names_survive_the_engine_rewriting_places() {
    let f = fixture();
    let points = SyntheticTrack::new(8).days(6).points;
    let cut = points.len() / 2;
    f.store.insert_points(f.user, f.device, &fixes(&points[cut..])).unwrap();
    catch_up(&f.engine);
    // What the server's street-name task does: name every place without a name.
    let book = places::PlaceBook::load(&*f.store, f.user).unwrap();
    let pending = book.without_address("photon");
    assert!(pending.len() >= 2, "{pending:?}");
    for &(id, at) in &pending {
        let answer = PlaceAddress {
            address: Some(format!("Street {id}")),
            provider: "photon".into(),
            resolved_at: 1,
            lat_e7: at.lat_e7,
            lon_e7: at.lon_e7,
        };
        places::set_address(&*f.store, f.user, id, &answer).unwrap();
    }
    let place_rows =
        |f: &Fixture| f.store.derived_range(f.user, &DerivedRange::all(PLACE, DerivedScope::User)).unwrap();
    let before = place_rows(&f);

    // The older half arrives: the known places are visited earlier, so the
    // engine rewrites their rows. The names are in rows of their own and stay.
    f.store.insert_points(f.user, f.device, &fixes(&points[..cut])).unwrap();
    catch_up(&f.engine);
    let after = place_rows(&f);
    let rewritten = before.iter().filter(|old| after.iter().any(|new| new.key == old.key && new.value != old.value));
    assert!(rewritten.count() >= 1, "no place row was rewritten: {before:?} {after:?}");
    let book = places::PlaceBook::load(&*f.store, f.user).unwrap();
    for &(id, _) in &pending {
        assert_eq!(book.address(id), Some(format!("Street {id}").as_str()));
    }
    let shown = views::places(&*f.store, f.user).unwrap();
    let named: Vec<_> = shown.iter().filter(|p| pending.iter().any(|&(id, _)| id == p.id)).collect();
    assert!(named.iter().all(|p| p.address.as_deref() == Some(&*format!("Street {}", p.id))), "{named:?}");
    // Stays at those places carry the name too.
    let all =
        views::entries(&*f.store, f.user, f.device, Timestamp(i64::MIN / 2), Timestamp(i64::MAX / 2), &book).unwrap();
    let at_named = all.stays.iter().filter(|s| s.place.is_some_and(|p| pending.iter().any(|&(id, _)| id == p)));
    assert!(at_named.clone().count() > 0 && at_named.clone().all(|s| s.address.is_some()));
    // Only places that are new since then are waiting for a name.
    let waiting = book.without_address("photon");
    assert!(waiting.iter().all(|(id, _)| pending.iter().all(|(named, _)| named != id)), "{waiting:?}");
}

#[test]
fn stats_per_day_month_and_year_add_up() {
    let f = fixture();
    let points = SyntheticTrack::new(12).days(40).points;
    f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
    catch_up(&f.engine);
    let first = LocalDate(points[0].time.0.div_euclid(86_400_000) - 1);
    let last = LocalDate(points.last().unwrap().time.0.div_euclid(86_400_000) + 1);
    let (days, _) = views::stats(&*f.store, f.user, first, last, Period::Day).unwrap();
    let (months, _) = views::stats(&*f.store, f.user, first, last, Period::Month).unwrap();
    let (years, _) = views::stats(&*f.store, f.user, first, last, Period::Year).unwrap();
    assert!(days.len() >= 39, "{} days", days.len());
    assert!(months.len() >= 2 && months.len() <= 3);
    let total = |buckets: &[views::PeriodStats]| buckets.iter().map(|b| b.distance_m).sum::<f64>();
    assert!((total(&days) - total(&months)).abs() < 1e-6 && (total(&days) - total(&years)).abs() < 1e-6);
    let (_, legs) = stored(&f);
    let leg_total: f64 = legs.iter().map(|l| l.distance_m).sum();
    assert!((total(&days) - leg_total).abs() < 1.0, "{} vs {leg_total}", total(&days));
    let new_places: usize = months.iter().map(|m| m.new_places.len()).sum();
    assert_eq!(new_places, views::places(&*f.store, f.user).unwrap().len());
    let countries: u32 = years[0].days_per_country.values().sum();
    assert!(countries >= days.len() as u32 / 2, "{:?}", years[0].days_per_country);
    assert!(!years[0].top_places.is_empty() && !years[0].towns.is_empty());

    // The day view is a lookup of the same rows.
    let busiest = days.iter().max_by(|a, b| a.distance_m.total_cmp(&b.distance_m)).unwrap();
    let day = views::day(&*f.store, f.user, busiest.first_day, None).unwrap();
    assert_eq!(day.device, Some(f.device));
    assert!(!day.entries.stays.is_empty() && !day.entries.legs.is_empty());
    assert!(day.entries.stays.windows(2).all(|w| w[0].row.start <= w[1].row.start));
}

#[test]
fn the_day_view_lists_every_device_that_tracked_the_day() {
    let f = fixture();
    let tablet = f.store.ensure_device(f.user, "tablet").unwrap().id;
    let points = SyntheticTrack::new(5).days(2).points;
    f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
    // The tablet tracked two hours of the first full day only.
    let day = LocalDate(points[0].time.0.div_euclid(86_400_000) + 1);
    let noon = day.0 * 86_400_000 + 12 * 3_600_000;
    let tablet_points: Vec<TrackPoint> =
        points.iter().filter(|p| p.time.0 >= noon && p.time.0 < noon + 2 * 3_600_000).cloned().collect();
    assert!(!tablet_points.is_empty());
    f.store.insert_points(f.user, tablet, &fixes(&tablet_points)).unwrap();
    catch_up(&f.engine);

    let view = views::day(&*f.store, f.user, day, None).unwrap();
    assert_eq!(view.device, Some(f.device), "the default is the device that tracked most");
    let listed: Vec<DeviceId> = view.devices.iter().map(|&(id, _)| id).collect();
    assert_eq!(listed, vec![f.device, tablet], "most tracked first: {:?}", view.devices);
    assert!(view.devices[0].1 > view.devices[1].1 && view.devices[1].1 > 0, "{:?}", view.devices);

    let tablet_day = views::day(&*f.store, f.user, day, Some(tablet)).unwrap();
    assert_eq!(tablet_day.device, Some(tablet));
    assert_eq!(tablet_day.devices, view.devices, "the list does not depend on the device shown");
    // The day before, only the phone tracked.
    let before = views::day(&*f.store, f.user, LocalDate(day.0 - 1), None).unwrap();
    assert_eq!(before.devices.iter().map(|&(id, _)| id).collect::<Vec<_>>(), vec![f.device]);
}

/// Every map row of the fixture's device (counts, level tracks, cells, heat, fog).
fn map_rows(f: &Fixture) -> Vec<polo_store::DerivedRow> {
    let scope = DerivedScope::Device(f.device);
    // Today's kinds (counts, track blocks, day cells, month blocks) and the retired ones (whole-day
    // tracks, month-wide cells), which must stay empty.
    [10u16, 15, 16, 17, 18, 22, 23, 24, 11, 12, 13, 14, 20, 21]
        .into_iter()
        .flat_map(|kind| {
            f.store.derived_range(f.user, &DerivedRange::all(polo_store::DerivedKind(kind), scope)).unwrap()
        })
        .collect()
}

/// Total distance, top speed and the map's bounding box (south, west, north, east in E7) of all time.
fn day_figures(f: &Fixture) -> (f64, f64, [i32; 4]) {
    let (_, legs) = stored(f);
    let distance: f64 = legs.iter().map(|l| l.distance_m).sum();
    let top_speed = legs.iter().map(|l| l.max_mps).fold(0.0, f64::max);
    let overview = polo_derived::map::overview(
        &*f.store,
        f.user,
        &[f.device],
        Timestamp(0),
        Timestamp(4_000_000_000_000),
        1_000_000,
    )
    .unwrap();
    let mut bbox = [i32::MAX, i32::MAX, i32::MIN, i32::MIN];
    for point in overview.segments.iter().flat_map(|s| &s.points) {
        bbox = [
            bbox[0].min(point.coord.lat_e7),
            bbox[1].min(point.coord.lon_e7),
            bbox[2].max(point.coord.lat_e7),
            bbox[3].max(point.coord.lon_e7),
        ];
    }
    (distance, top_speed, bbox)
}

#[test]
fn a_six_thousand_km_one_fix_spike_changes_no_distance_speed_or_map() {
    let points = SyntheticTrack::new(17).days(2).points;
    let clean = fixture();
    clean.store.insert_points(clean.user, clean.device, &fixes(&points)).unwrap();
    catch_up(&clean.engine);

    // The same days with one fix 6 000 km south, between two fixes of the afternoon.
    let spiked = fixture();
    let at = (points.len() * 3 / 4..points.len()).find(|&i| points[i + 1].time.0 - points[i].time.0 >= 2).unwrap();
    let mut spike = points[at];
    spike.time = Timestamp((points[at].time.0 + points[at + 1].time.0) / 2);
    spike.coord.lat_e7 -= 540_000_000;
    // Live: the history first, then the spike and the rest as they arrive.
    spiked.store.insert_points(spiked.user, spiked.device, &fixes(&points[..=at])).unwrap();
    catch_up(&spiked.engine);
    spiked.store.insert_points(spiked.user, spiked.device, &fixes(&[spike])).unwrap();
    catch_up(&spiked.engine);
    spiked.store.insert_points(spiked.user, spiked.device, &fixes(&points[at + 1..])).unwrap();
    catch_up(&spiked.engine);

    let flags = polo_derived::outliers::flags(&*spiked.store, spiked.user, spiked.device, None, None).unwrap();
    assert_eq!(flags.into_iter().collect::<Vec<_>>(), [(spike.time.0, polo_derived::outliers::FlagReason::Teleport)]);
    let (distance, top_speed, bbox) = day_figures(&clean);
    assert!(distance > 1_000.0 && top_speed > 1.0, "{distance} m, {top_speed} m/s");
    assert_eq!(day_figures(&spiked), (distance, top_speed, bbox));
    assert_eq!(stored(&spiked), stored(&clean), "stays and legs");
    assert_eq!(map_rows(&spiked), map_rows(&clean), "map levels, heatmap and fog");
    let days = |f: &Fixture| {
        let first = LocalDate(points[0].time.0.div_euclid(86_400_000) - 1);
        let last = LocalDate(points.last().unwrap().time.0.div_euclid(86_400_000) + 1);
        views::stats(&*f.store, f.user, first, last, Period::Day).unwrap().0
    };
    assert_eq!(days(&spiked), days(&clean), "statistics");

    // The user says the fix is real: it counts, 12 000 km there and back.
    spiked.engine.set_fix_flag(spiked.user, spiked.device, spike.time, false).unwrap();
    assert!(polo_derived::outliers::flags(&*spiked.store, spiked.user, spiked.device, None, None).unwrap().is_empty());
    let (with_spike, _, wide) = day_figures(&spiked);
    assert!(with_spike > distance + 10_000_000.0, "{with_spike} vs {distance}");
    assert!(wide[0] < bbox[0] - 500_000_000, "{wide:?} vs {bbox:?}");
    // More points and a recomputation from scratch keep the user's verdict.
    let mut params = TimelineParams::default();
    params.stays.visit_min_duration_s = 20 * 60;
    settings::set_settings(&*spiked.store, spiked.user, &params).unwrap();
    catch_up(&spiked.engine);
    assert!(polo_derived::outliers::flags(&*spiked.store, spiked.user, spiked.device, None, None).unwrap().is_empty());
    // And flagging it again restores the clean day.
    settings::set_settings(&*spiked.store, spiked.user, &TimelineParams::default()).unwrap();
    catch_up(&spiked.engine);
    spiked.engine.set_fix_flag(spiked.user, spiked.device, spike.time, true).unwrap();
    catch_up(&spiked.engine);
    assert_eq!(day_figures(&spiked), (distance, top_speed, bbox));
    assert_eq!(map_rows(&spiked), map_rows(&clean));
    assert!(spiked.engine.set_fix_flag(spiked.user, spiked.device, Timestamp(spike.time.0 + 1), true).is_err());
}

#[test]
fn a_fix_flag_edit_replicated_without_recomputation_is_caught_up() {
    let f = fixture();
    let mut points = SyntheticTrack::new(9).days(1).points;
    let at = points.len() / 2;
    points[at].coord.lat_e7 -= 540_000_000;
    f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
    catch_up(&f.engine);
    let flagged = |f: &Fixture| polo_derived::outliers::flagged_times(&*f.store, f.user, f.device, None, None).unwrap();
    assert!(flagged(&f).contains(&points[at].time.0));
    // What replication applies: the edit row alone, then the engine's catch-up.
    polo_derived::outliers::set_edit(&*f.store, f.user, f.device, points[at].time, false).unwrap();
    catch_up(&f.engine);
    assert!(!flagged(&f).contains(&points[at].time.0));
}

#[test]
fn timelines_an_older_polo_computed_are_recomputed_with_flags_at_start_up() {
    let f = fixture();
    let mut points = SyntheticTrack::new(4).days(1).points;
    let at = points.len() / 3;
    points[at].coord.lat_e7 -= 540_000_000;
    f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
    catch_up(&f.engine);
    let clean = (stored(&f), map_rows(&f));
    // What a polo from before flagged fixes left: no flags, a STATE row without `outliers`,
    // and the spike in the stays, legs and maps.
    let scope = DerivedScope::Device(f.device);
    let mut old_state: serde_json::Value = serde_json::to_value(TimelineParams::default()).unwrap();
    old_state.as_object_mut().unwrap().remove("outliers");
    let old_state = polo_store::DerivedRow {
        kind: polo_derived::kinds::STATE,
        scope,
        key: 0,
        value: serde_json::to_vec(&old_state).unwrap(),
    };
    // A whole-day track row as rows version 3 wrote them (kind 11, keyed by day).
    let old_track = polo_store::DerivedRow { kind: polo_store::DerivedKind(11), scope, key: 19_800, value: vec![1, 0] };
    let batch = polo_store::DerivedBatch {
        delete: vec![DerivedRange::all(polo_derived::kinds::OUTLIER, scope)],
        put: vec![old_state, old_track],
    };
    f.store.derived_write(f.user, &batch, false).unwrap();
    // An older polo recorded no rows version either.
    f.store.set_derived_cursor(polo_derived::kinds::ROWS_VERSION_CURSOR, polo_domain::Seq(0)).unwrap();
    let restarted = Engine::new(f.store.clone(), Some(Arc::new(Hemispheres)));
    assert_eq!(restarted.catch_up().unwrap().changes, 0);
    assert!(
        polo_derived::outliers::flagged_times(&*f.store, f.user, f.device, None, None)
            .unwrap()
            .contains(&points[at].time.0)
    );
    assert_eq!((stored(&f), map_rows(&f)), clean);
}

/// Lübeck's old town and a place 2.5 km north-east of it.
const LUBECK_HOME: (f64, f64) = (53.8655, 10.6866);
const LUBECK_WORK: (f64, f64) = (53.8880, 10.7030);

/// A Lübeck day as Records.json gives it: UTC instants without offsets.
/// Home until 07:30 local (CEST, +2), 20 minutes to work, there until
/// 16:00, back, home until midnight; a point a minute, from 20:00 local the
/// evening before to 00:00 local the night after.
fn lubeck_day_without_offsets() -> Vec<Fix> {
    let start = Timestamp::from_civil(2024, 4, 30, 18, 0, 0, 0).unwrap();
    (0..=28 * 60)
        .map(|minute: i64| {
            let local = (minute + 20 * 60) % (24 * 60); // minutes after local midnight
            let along = |from: i64| (local - from) as f64 / 20.0;
            let (lat, lon) = match local {
                m if (450..470).contains(&m) && minute >= 240 => lerp(LUBECK_HOME, LUBECK_WORK, along(450)),
                m if (470..960).contains(&m) && minute >= 240 => LUBECK_WORK,
                m if (960..980).contains(&m) && minute >= 240 => lerp(LUBECK_WORK, LUBECK_HOME, along(960)),
                _ => LUBECK_HOME,
            };
            Fix::new(
                Timestamp(start.0 + minute * 60_000),
                Coord::from_degrees(lat, lon).unwrap(),
                SourceFormat::Unknown,
            )
        })
        .collect()
}

fn lerp(a: (f64, f64), b: (f64, f64), t: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

#[test]
fn a_lubeck_day_without_offsets_starts_at_local_midnight() {
    let f = fixture();
    let zones = Arc::new(polo_tz::BundledZones::builtin().unwrap());
    let engine = Engine::new(f.store.clone(), Some(Arc::new(Hemispheres))).with_zones(zones);
    assert!(lubeck_day_without_offsets().iter().all(|fix| fix.utc_offset_minutes.is_none()));
    f.store.insert_points(f.user, f.device, &lubeck_day_without_offsets()).unwrap();
    catch_up(&engine);

    let may_day = LocalDate::from_ymd(2024, 5, 1).unwrap();
    let day = views::day(&*f.store, f.user, may_day, None).unwrap();
    // Local midnight in Lübeck is 22:00 UTC the evening before.
    assert_eq!(day.from, Timestamp::from_civil(2024, 4, 30, 22, 0, 0, 0).unwrap());
    assert_eq!(day.to, Timestamp::from_civil(2024, 5, 1, 22, 0, 0, 0).unwrap());
    assert_eq!(day.offset_minutes, 120);
    // The day opens with the night at home: from 00:00 local, not from 22:00.
    let first = &day.entries.stays[0];
    assert!(first.row.start <= day.from.0 && first.row.end > day.from.0 + 7 * 3_600_000, "{first:?}");
    assert_eq!(first.row.offset, Some(120));
    // The commute leaves at 07:30 local, 05:30 UTC; every entry carries the offset.
    let morning = day.entries.legs.iter().find(|l| l.row.distance_m > 1_000.0).unwrap();
    let leaves = morning.row.start + i64::from(morning.row.offset.unwrap()) * 60_000;
    let minute_of_day = leaves.rem_euclid(86_400_000) / 60_000;
    assert!((450..455).contains(&minute_of_day), "leaves at {minute_of_day} min: {morning:?}");
    assert!(day.entries.legs.iter().all(|l| l.row.offset == Some(120)));

    // The statistics count the local day: 1 May has 24 hours tracked (rounded),
    // and the evening before (from 20:00 local) its last four (in UTC days: 22 and 6).
    let (stats, _) = views::stats(&*f.store, f.user, LocalDate(may_day.0 - 1), may_day, Period::Day).unwrap();
    let tracked: Vec<(LocalDate, i64)> = stats
        .iter()
        .map(|p| {
            let moving: i64 = TransportMode::ALL.iter().map(|&m| *p.moving_ms_by_mode.get(m)).sum();
            (p.first_day, (p.stationary_ms + moving + 1_800_000) / 3_600_000)
        })
        .collect();
    assert_eq!(tracked, [(LocalDate(may_day.0 - 1), 4), (may_day, 24)]);
}

#[test]
fn rows_of_an_older_algorithm_are_recomputed_once_after_an_upgrade() {
    let f = fixture();
    f.store.insert_points(f.user, f.device, &lubeck_day_without_offsets()).unwrap();
    // The rows an engine without zones (an older polo) stored: UTC days.
    catch_up(&f.engine);
    let may_day = LocalDate::from_ymd(2024, 5, 1).unwrap();
    assert_eq!(views::day(&*f.store, f.user, may_day, None).unwrap().offset_minutes, 0);
    f.store.set_derived_cursor(polo_derived::kinds::ROWS_VERSION_CURSOR, polo_domain::Seq(0)).unwrap();

    // The upgraded engine has no new change to follow, and still recomputes.
    let zones = Arc::new(polo_tz::BundledZones::builtin().unwrap());
    let engine = Engine::new(f.store.clone(), Some(Arc::new(Hemispheres))).with_zones(zones);
    let step = engine.catch_up().unwrap();
    assert_eq!((step.changes, step.windows), (0, 1), "{step:?}");
    let day = views::day(&*f.store, f.user, may_day, None).unwrap();
    assert_eq!((day.offset_minutes, day.from), (120, Timestamp::from_civil(2024, 4, 30, 22, 0, 0, 0).unwrap()));
    // Once: the next step has nothing to do.
    assert_eq!(engine.catch_up().unwrap().windows, 0);
}

/// A visit edit and a mode correction that reach the store as their rows alone (replicated, or
/// committed while another node's step recomputed the same days from what it read before) are
/// brought into the day statistics by the next catch-up, exactly as the route's own refresh
/// would, and undoing them takes them out again.
#[test]
fn visit_and_mode_edits_that_arrive_without_their_days_are_caught_up() {
    let direct = fixture();
    let arrived = fixture();
    let points = SyntheticTrack::new(5).days(2).points;
    for f in [&direct, &arrived] {
        f.store.insert_points(f.user, f.device, &fixes(&points)).unwrap();
        catch_up(&f.engine);
    }
    let days = |f: &Fixture| -> Vec<(i64, String)> {
        let range = DerivedRange::all(polo_derived::kinds::DAY_STATS, DerivedScope::Device(f.device));
        let rows = f.store.derived_range(f.user, &range).unwrap();
        rows.into_iter().map(|r| (r.key, String::from_utf8(r.value).unwrap())).collect()
    };
    let before = days(&arrived);
    let (stays, legs) = stored(&arrived);
    let visit = stays.iter().find(|s| s.visit).expect("a visit").clone();
    let leg = legs.iter().find(|l| l.mode != TransportMode::Rail).expect("a leg").clone();
    let deleted = polo_derived::visit_edits::VisitEdit { deleted: true, ..Default::default() };

    // The route's way: the edit and its days at once.
    direct.engine.set_visit_edit(direct.user, direct.device, Timestamp(visit.start), &deleted).unwrap();
    direct.engine.set_leg_mode(direct.user, direct.device, Timestamp(leg.start), TransportMode::Rail).unwrap();
    // The rows alone, as replication applies them; the days still show the old story.
    polo_derived::visit_edits::set(&*arrived.store, arrived.user, arrived.device, Timestamp(visit.start), &deleted)
        .unwrap();
    let correction = polo_derived::rows::ModeEdit { end: leg.end, mode: TransportMode::Rail };
    let row = polo_store::DerivedRow {
        kind: polo_derived::kinds::MODE_EDIT,
        scope: DerivedScope::User,
        key: leg.start,
        value: serde_json::to_vec(&correction).unwrap(),
    };
    arrived
        .store
        .derived_write(arrived.user, &polo_store::DerivedBatch { delete: vec![], put: vec![row] }, true)
        .unwrap();
    assert_eq!(days(&arrived), before);

    catch_up(&arrived.engine);
    assert_ne!(days(&arrived), before, "the edits changed the days");
    assert_eq!(days(&arrived), days(&direct), "as the route's own refresh left them");

    // Undone (the visit edit cleared) the same way: the days follow again.
    let none = polo_derived::visit_edits::VisitEdit::default();
    direct.engine.set_visit_edit(direct.user, direct.device, Timestamp(visit.start), &none).unwrap();
    polo_derived::visit_edits::set(&*arrived.store, arrived.user, arrived.device, Timestamp(visit.start), &none)
        .unwrap();
    catch_up(&arrived.engine);
    assert_eq!(days(&arrived), days(&direct));
    // Nothing left to catch up: another catch-up changes nothing.
    let settled = polo_derived::edit_marks::catch_up(&*arrived.store, arrived.user).unwrap();
    assert_eq!(settled, polo_derived::edit_marks::EditsCaughtUp::default());
}

/// A phone posting a fix a minute through a Lübeck day, caught up after
/// every three fixes: each step reads the new fixes and takes the rest of
/// the current stay or trip from the step before. Out-of-order fixes inside
/// that tail, and steps another node takes, make the engine read again, and
/// the stored timeline is always what a full detection finds.
#[test]
fn a_live_phone_is_read_once_even_through_a_long_stay() {
    let f = fixture();
    let mut day = lubeck_day_without_offsets();
    // A few metres of jitter, as a phone at rest reports.
    for (i, fix) in day.iter_mut().enumerate() {
        let jitter = ((i * 7919) % 11) as f64 - 5.0;
        fix.coord = Coord::from_degrees(fix.coord.lat() + jitter * 1e-5, fix.coord.lon() - jitter * 1e-5).unwrap();
    }
    let other_node = Engine::new(f.store.clone(), Some(Arc::new(Hemispheres)));
    let (first, live) = day.split_at(600);
    f.store.insert_points(f.user, f.device, first).unwrap();
    catch_up(&f.engine);
    let (mut read, mut reused, mut inserted, mut longest_reuse) = (0, 0, 0, 0);
    for (step, batch) in live.chunks(3).enumerate() {
        let mut fixes = batch.to_vec();
        if step % 50 == 49 {
            // A fix that arrives late, between two already caught up.
            let mut late = batch[0].clone();
            late.time = Timestamp(batch[0].time.0 - 90_000);
            fixes.push(late);
        }
        inserted += fixes.len() as u64;
        f.store.insert_points(f.user, f.device, &fixes).unwrap();
        let engine = if step % 70 == 69 { &other_node } else { &f.engine };
        loop {
            let caught = engine.catch_up().unwrap();
            read += caught.points_read;
            reused += caught.points_reused;
            longest_reuse = longest_reuse.max(caught.points_reused);
            if caught.changes == 0 {
                break;
            }
        }
    }
    assert_eq!(actual(&f), expected(&f));
    let (stays, _) = actual(&f);
    assert!(stays.len() >= 3, "{stays:?}");
    // Without the tails every step read the whole stay or trip it was in
    // (`read + reused`); now only the new fixes, and the whole tail again
    // after each late fix and each step of the other node (a dozen times).
    assert!(longest_reuse > 400, "the afternoon at home was taken from the step before: {longest_reuse}");
    assert!(read * 15 < read + reused, "read {read} points for {inserted} new ones, reused {reused}");
}
