//! Deleting points: what a tombstone covers, that a re-import does not
//! bring deleted points back, that asking for them back does, and that a
//! selection on the map (an [`Area`]) deletes and replicates only what lies
//! inside it.

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

use super::replication::pull;
use super::{T0, query, rich_fix, scan, setup};
use crate::replication::ReplicatedChange;
use crate::{Area, FeedFilter, PointQuery, PointSelection, Store};

/// The wall clock now, in ms: tombstones bury only fixes timed before they
/// were made.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A fix at `t` at `(lat, lon)` degrees.
fn fix_at(t: i64, lat: f64, lon: f64) -> Fix {
    Fix::new(Timestamp(t), Coord::from_degrees(lat, lon).unwrap(), SourceFormat::Gpx)
}

/// A rectangle from degrees (west, south, east, north).
fn area(w: f64, s: f64, e: f64, n: f64) -> Area {
    let e7 = |v: f64| (v * 1e7).round() as i32;
    Area { west_e7: e7(w), south_e7: e7(s), east_e7: e7(e), north_e7: e7(n) }
}

/// A deleted range is not filled again by inserting the same fixes (a
/// re-import): they are counted as suppressed. `restore_points` brings
/// them back, and a fix timed after the delete was made is not buried.
pub fn deleted_points_stay_deleted_until_restored(store: &dyn Store) {
    let (user, phone) = setup(store, "alice");
    let watch = store.ensure_device(user, "watch").unwrap().id;
    let fixes: Vec<Fix> = (0..3_000u64).map(|i| rich_fix(T0 + i as i64 * 1000, i)).collect();
    store.insert_points(user, phone, &fixes).unwrap();
    store.insert_points(user, watch, &fixes).unwrap();
    let (from, to) = (T0 + 1_000_000, T0 + 2_000_000);
    assert_eq!(store.delete_points(&query(user, Some(phone), Some(from), Some(to))).unwrap().deleted, 1_000);

    let again = store.insert_points(user, phone, &fixes).unwrap();
    assert_eq!((again.added, again.duplicates, again.suppressed), (0, 2_000, 1_000), "a re-import adds nothing");
    assert_eq!(store.count_points(user).unwrap(), 5_000);
    // The other device's points in the same range were never deleted.
    assert_eq!(store.insert_points(user, watch, &fixes).unwrap().suppressed, 0);
    // Live ingest goes through the groups: the same rule.
    let mut groups = [crate::PointGroup::new(user, phone, &fixes[1_000..1_010])];
    store.insert_point_groups(&mut groups, &mut |_, _| {}).unwrap();
    let outcome = groups[0].outcome.take().unwrap().unwrap();
    assert_eq!((outcome.added, outcome.suppressed), (0, 10));

    let stones = store.tombstones(user, phone, Timestamp(T0), Timestamp(T0 + 10_000_000)).unwrap();
    assert_eq!(stones.len(), 1);
    let stone = &stones[0];
    assert_eq!(
        (stone.device, stone.from, stone.last, stone.area),
        (Some(phone), Some(Timestamp(from)), Some(Timestamp(to - 1)), None)
    );
    assert!((now_ms() - stone.made.0).abs() < 60_000, "made now: {}", stone.made);
    assert!(store.tombstones(user, watch, Timestamp(T0), Timestamp(T0 + 10_000_000)).unwrap().is_empty());

    // Asked for: back, exactly as they were.
    let restored = store.restore_points(user, phone, &fixes).unwrap();
    assert_eq!((restored.added, restored.suppressed), (1_000, 0));
    let phone_fixes: Vec<Fix> = scan(store, &query(user, Some(phone), None, None)).into_iter().map(|p| p.fix).collect();
    assert_eq!(phone_fixes, fixes);

    // An open-ended delete of every device does not bury what comes later.
    store.delete_points(&PointQuery::user(user)).unwrap();
    assert_eq!(store.count_points(user).unwrap(), 0);
    let later = fix_at(now_ms() + 3_600_000, 48.1, 11.5);
    let out = store.insert_points(user, phone, std::slice::from_ref(&later)).unwrap();
    assert_eq!((out.added, out.suppressed), (1, 0), "a fix timed after the delete is not the user's deleted point");
    assert_eq!(store.insert_points(user, watch, &fixes[..5]).unwrap().suppressed, 5);
}

/// A selection deletes only the points inside its rectangle (across the
/// antimeridian too), keeps its tombstone even when nothing was stored
/// there, and a re-import leaves only that selection out.
pub fn selections_delete_inside_their_area(store: &dyn Store) {
    let (user, phone) = setup(store, "alice");
    // Alternating between Munich and Fiji (179.9°E) and Samoa (-172°).
    let fixes: Vec<Fix> = (0..300)
        .map(|i| {
            let t = T0 + i * 60_000;
            match i % 3 {
                0 => fix_at(t, 48.1, 11.5),
                1 => fix_at(t, -17.8, 179.9),
                _ => fix_at(t, -13.8, -172.0),
            }
        })
        .collect();
    store.insert_points(user, phone, &fixes).unwrap();
    let munich = area(11.0, 47.5, 12.0, 48.5);
    let window = query(user, None, Some(T0 + 60 * 60_000), Some(T0 + 120 * 60_000));
    let out = store
        .delete_selection(&PointSelection { query: window.clone(), area: Some(munich), keep_one_every_ms: None })
        .unwrap();
    assert_eq!(out.deleted, 20, "the Munich fixes of that hour");
    let left = scan(store, &PointQuery::user(user));
    assert_eq!(left.len(), 280);
    assert!(left.iter().all(|p| {
        let t = p.fix.time.0;
        !(window.from.unwrap().0 <= t
            && t < window.to.unwrap().0
            && munich.contains(p.fix.coord.lat_e7, p.fix.coord.lon_e7))
    }));

    // Across the antimeridian: 179° to -171° holds Fiji and Samoa.
    let pacific = area(179.0, -20.0, -171.0, -10.0);
    assert!(pacific.contains(fix_at(0, -17.8, 179.9).coord.lat_e7, fix_at(0, -17.8, 179.9).coord.lon_e7));
    let out = store
        .delete_selection(&PointSelection {
            query: query(user, Some(phone), None, Some(T0 + 30 * 60_000)),
            area: Some(pacific),
            keep_one_every_ms: None,
        })
        .unwrap();
    assert_eq!(out.deleted, 20);

    // Nothing stored in the Alps: the tombstone is kept all the same.
    let alps = area(10.0, 46.0, 11.0, 47.0);
    let empty = store
        .delete_selection(&PointSelection {
            query: query(user, Some(phone), None, None),
            area: Some(alps),
            keep_one_every_ms: None,
        })
        .unwrap();
    assert_eq!(empty.deleted, 0);
    assert!(empty.seq.is_some(), "a selection records its tombstone even when it removed nothing");
    let stones = store.tombstones(user, phone, Timestamp(T0), Timestamp(T0 + 1_000 * 60_000)).unwrap();
    assert_eq!(stones.iter().filter(|t| t.area.is_some()).count(), 3);
    assert!(stones.iter().any(|t| t.area == Some(pacific) && t.device == Some(phone)));

    // Re-importing everything (plus an Alpine fix) leaves exactly the selections out.
    let mut again = fixes.clone();
    again.push(fix_at(T0 + 500 * 60_000, 46.5, 10.5));
    let out = store.insert_points(user, phone, &again).unwrap();
    assert_eq!((out.added, out.suppressed), (0, 41));
    assert_eq!(store.count_points(user).unwrap(), 260);
}

/// A selection's tombstone replicates with its area: the peer deletes only
/// inside it, and a late page with older points does not bring them back.
pub fn selections_replicate_with_their_area(a: &dyn Store, b: &dyn Store) {
    let (user, phone) = setup(a, "alice");
    let fixes: Vec<Fix> = (0..200)
        .map(|i| if i % 2 == 0 { fix_at(T0 + i * 1000, 48.1, 11.5) } else { fix_at(T0 + i * 1000, 52.5, 13.4) })
        .collect();
    a.insert_points(user, phone, &fixes).unwrap();
    pull(a, b, 1_000);
    let berlin = area(13.0, 52.0, 14.0, 53.0);
    let out = a
        .delete_selection(&PointSelection {
            query: query(user, Some(phone), None, None),
            area: Some(berlin),
            keep_one_every_ms: None,
        })
        .unwrap();
    assert_eq!(out.deleted, 100);
    let feed = a.replication_feed(polo_domain::Seq(0), 10_000, &FeedFilter::default()).unwrap();
    let stone = feed.entries.iter().find_map(|e| match &e.change {
        ReplicatedChange::Tombstone { area, .. } => Some(*area),
        _ => None,
    });
    assert_eq!(stone, Some(Some(berlin)));
    pull(a, b, 1_000);
    let alice = b.user_by_name("alice").unwrap().unwrap().id;
    let left = scan(b, &PointQuery::user(alice));
    assert_eq!(left.len(), 100);
    assert!(left.iter().all(|p| !berlin.contains(p.fix.coord.lat_e7, p.fix.coord.lon_e7)));
    // On the peer, too, a re-import leaves the selection out.
    let device = b.ensure_device(alice, "phone").unwrap().id;
    assert_eq!(b.insert_points(alice, device, &fixes).unwrap().suppressed, 100);
}

/// Thinning keeps the first fix of every slot of time per device and deletes
/// the rest; thinning again changes nothing; a thinning buries nothing (the
/// retention job thins re-imported points again); it replicates as one.
pub fn thinning_keeps_one_point_per_slot(store: &dyn Store) {
    let (user, phone) = setup(store, "alice");
    let watch = store.ensure_device(user, "watch").unwrap().id;
    let fixes: Vec<Fix> = (0..360u64).map(|i| rich_fix(T0 + i as i64 * 10_000, i)).collect();
    store.insert_points(user, phone, &fixes).unwrap();
    store.insert_points(user, watch, &fixes).unwrap();
    let (from, to) = (T0, T0 + 1_800_000);
    let thin = PointSelection {
        query: query(user, Some(phone), Some(from), Some(to)),
        area: None,
        keep_one_every_ms: Some(60_000),
    };
    let mut slots = std::collections::BTreeMap::new();
    for f in fixes.iter().filter(|f| f.time.0 < to) {
        slots.entry(f.time.0.div_euclid(60_000)).or_insert_with(|| f.clone());
    }
    let out = store.delete_selection(&thin).unwrap();
    assert_eq!(out.deleted, 180 - slots.len() as u64);
    let kept: Vec<Fix> = scan(store, &query(user, Some(phone), None, Some(to))).into_iter().map(|p| p.fix).collect();
    assert_eq!(kept, slots.into_values().collect::<Vec<_>>(), "the first fix of each minute, exactly");
    assert_eq!(scan(store, &query(user, Some(phone), Some(to), None)).len(), 180, "after the range: untouched");
    assert_eq!(scan(store, &query(user, Some(watch), None, None)).len(), 360, "another device: untouched");
    let again = store.delete_selection(&thin).unwrap();
    assert_eq!((again.deleted, again.seq), (0, None), "thinning twice changes nothing");
    let stones = store.tombstones(user, phone, Timestamp(from), Timestamp(to)).unwrap();
    assert_eq!(stones.iter().map(|t| t.keep_one_every_ms).collect::<Vec<_>>(), [Some(60_000)]);
    let back = store.insert_points(user, phone, &fixes).unwrap();
    assert_eq!((back.added, back.suppressed), (out.deleted, 0), "a thinning buries nothing");
}

/// A thinning replicates as a thinning: the peer keeps the same fixes.
pub fn thinning_replicates(a: &dyn Store, b: &dyn Store) {
    let (user, phone) = setup(a, "alice");
    let fixes: Vec<Fix> = (0..120u64).map(|i| rich_fix(T0 + i as i64 * 15_000, i)).collect();
    a.insert_points(user, phone, &fixes).unwrap();
    pull(a, b, 1_000);
    let thin = PointSelection { query: query(user, None, None, None), area: None, keep_one_every_ms: Some(60_000) };
    assert!(a.delete_selection(&thin).unwrap().deleted > 0);
    pull(a, b, 1_000);
    let alice = b.user_by_name("alice").unwrap().unwrap().id;
    let on_a: Vec<Fix> = scan(a, &PointQuery::user(user)).into_iter().map(|p| p.fix).collect();
    let on_b: Vec<Fix> = scan(b, &PointQuery::user(alice)).into_iter().map(|p| p.fix).collect();
    assert_eq!(on_a, on_b);
    let slots: std::collections::BTreeSet<i64> = fixes.iter().map(|f| f.time.0.div_euclid(60_000)).collect();
    assert_eq!(on_b.len(), slots.len());
}

/// A delete takes the intervals (imported visits and activities) starting
/// inside its range (and area) with the points, and a re-import leaves them
/// out; a thinning keeps them.
pub fn deletes_take_the_intervals_inside_them(store: &dyn Store) {
    let (user, phone) = setup(store, "alice");
    let visit = |start: i64, lat: f64| {
        let mut v = polo_domain::Interval::new(
            polo_domain::IntervalKind::Visit,
            Timestamp(start),
            Timestamp(start + 3_600_000),
            SourceFormat::GoogleSemantic,
        );
        v.start_coord = Some(Coord::from_degrees(lat, 11.5).unwrap());
        v
    };
    let (early, inside, elsewhere, late) =
        (visit(T0, 48.1), visit(T0 + 86_400_000, 48.1), visit(T0 + 90_000_000, 52.5), visit(T0 + 200_000_000, 48.1));
    let all = [early.clone(), inside.clone(), elsewhere.clone(), late.clone()];
    assert_eq!(store.insert_intervals(user, phone, &all).unwrap().added, 4);
    let starts = |store: &dyn Store| -> Vec<i64> {
        store.intervals(user, None, None, None).unwrap().into_iter().map(|i| i.interval.start.0).collect()
    };
    // A thinning keeps them.
    let thin = PointSelection { query: PointQuery::user(user), area: None, keep_one_every_ms: Some(60_000) };
    store.delete_selection(&thin).unwrap();
    assert_eq!(starts(store).len(), 4);
    // A day around Munich: only the visit starting there that day goes, though no point was deleted.
    let day = query(user, Some(phone), Some(T0 + 80_000_000), Some(T0 + 160_000_000));
    let munich = area(11.0, 47.5, 12.0, 48.5);
    let out =
        store.delete_selection(&PointSelection { query: day, area: Some(munich), keep_one_every_ms: None }).unwrap();
    assert_eq!(out.deleted, 0, "no points");
    assert!(out.seq.is_some(), "the delete is recorded: it removed a visit and replicates");
    assert_eq!(starts(store), [early.start.0, elsewhere.start.0, late.start.0]);
    // A range delete of the user: the early one goes; importing all again brings back none of the buried.
    store.delete_points(&query(user, None, None, Some(T0 + 1))).unwrap();
    assert_eq!(starts(store), [elsewhere.start.0, late.start.0]);
    let again = store.insert_intervals(user, phone, &all).unwrap();
    assert_eq!((again.added, again.duplicates, again.suppressed), (0, 2, 2), "{again:?}");
    assert_eq!(store.restore_intervals(user, phone, &all).unwrap().added, 2, "asked for: back");
    assert_eq!(starts(store).len(), 4);
}

/// Undo records: kept per user under a token hash, taken once and only by
/// their owner before they expire, the oldest dropped beyond the per-user
/// limit, expired ones swept by the next keep; no change-log entry.
pub fn undo_records_are_taken_once_by_their_owner(store: &dyn Store) {
    use crate::undo::{KeptUndo, UNDO_PER_USER, UndoRecord};

    let (alice, phone) = setup(store, "alice");
    let (bob, _) = setup(store, "bob");
    let mut record = UndoRecord::default();
    record.points.insert(phone, (0..2_000).map(|i| rich_fix(T0 + i * 1_000, i as u64)).collect());
    let bytes = record.encode().unwrap();
    let kept = |user, token: u8, made: i64| KeptUndo {
        user,
        token_hash: [token; 32],
        made: Timestamp(made),
        expires: Timestamp(made + 900_000),
        record: bytes.clone(),
    };
    let seq = store.last_seq().unwrap();

    store.keep_undo(&kept(alice, 1, T0)).unwrap();
    assert_eq!(store.take_undo(bob, &[1; 32], Timestamp(T0)).unwrap(), None, "not bob's");
    assert_eq!(store.take_undo(alice, &[2; 32], Timestamp(T0)).unwrap(), None, "no such token");
    let taken = store.take_undo(alice, &[1; 32], Timestamp(T0 + 1)).unwrap().expect("alice's record");
    assert_eq!(taken, kept(alice, 1, T0));
    assert_eq!(UndoRecord::decode(&taken.record).unwrap(), record);
    assert_eq!(store.take_undo(alice, &[1; 32], Timestamp(T0 + 1)).unwrap(), None, "taken once");

    // Kept again (an undo that failed to store its points puts it back): replaces, never duplicates.
    store.keep_undo(&kept(alice, 1, T0)).unwrap();
    store.keep_undo(&kept(alice, 1, T0)).unwrap();
    assert!(store.take_undo(alice, &[1; 32], Timestamp(T0 + 900_000)).unwrap().is_none(), "expired at `expires`");
    assert!(store.take_undo(alice, &[1; 32], Timestamp(T0)).unwrap().is_none(), "an expired take removes it");

    // The oldest goes beyond the limit; another user's records stay.
    store.keep_undo(&kept(bob, 50, T0)).unwrap();
    for i in 0..=UNDO_PER_USER as u8 {
        store.keep_undo(&kept(alice, 10 + i, T0 + i64::from(i))).unwrap();
    }
    assert!(store.take_undo(alice, &[10; 32], Timestamp(T0 + 10)).unwrap().is_none(), "the oldest went");
    for i in 1..=UNDO_PER_USER as u8 {
        assert!(store.take_undo(alice, &[10 + i; 32], Timestamp(T0 + 10)).unwrap().is_some(), "record {i}");
    }
    assert!(store.take_undo(bob, &[50; 32], Timestamp(T0 + 10)).unwrap().is_some(), "bob's stays");

    // A keep sweeps every user's expired records.
    store.keep_undo(&kept(bob, 60, T0)).unwrap();
    store.keep_undo(&kept(alice, 70, T0 + 2_000_000)).unwrap();
    assert!(store.take_undo(bob, &[60; 32], Timestamp(T0)).unwrap().is_none(), "swept when it expired");
    assert_eq!(store.last_seq().unwrap(), seq, "undo records are not changes");
}
