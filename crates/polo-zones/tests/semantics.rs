//! The zone semantics the issue asks to be shown by property tests: jitter
//! inside the hysteresis band never flaps, a drive-by shorter than the dwell
//! time fires nothing, and random fix sequences, arriving out of order within
//! the reorder window, give exactly the events an oracle computes from the
//! sorted sequence.

use polo_domain::{Coord, DeviceId, Fix, SourceFormat, Timestamp, UserId};
use polo_zones::evaluate::{Event, EventKind};
use polo_zones::geometry::M_PER_DEG;
use polo_zones::sequence::{Arrival, Sequencer};
use polo_zones::{DeviceWatch, Evaluator, Relation, Rules, Shape, WatchRules, Zone, ZoneIndex, ZoneSpec, ZoneState};
use proptest::prelude::*;

const USER: UserId = UserId(1);
const DEVICE: DeviceId = DeviceId(1);
const T0: i64 = 1_700_000_000_000;
const RADIUS: f64 = 100.0;

fn rules(dwell_s: u32, exit_confirmations: u8, cooldown_s: u32) -> Rules {
    Rules { dwell_s, exit_buffer_m: 50.0, exit_confirmations, cooldown_s, dwell_alert_s: None }
}

fn home(rules: Rules) -> ZoneIndex {
    let spec = ZoneSpec {
        name: "Home".into(),
        shape: Shape::Circle { center: [52.5, 13.4], radius_m: RADIUS },
        rules,
        origin: None,
    };
    ZoneIndex::new(vec![Zone { id: 1, user: USER, spec }])
}

/// A fix `distance_m` from the zone's centre (bearing in degrees) with an
/// accuracy radius of `accuracy_m`.
fn fix_at(t: i64, distance_m: f64, bearing: f64, accuracy_m: f64) -> Fix {
    let (dn, de) = (distance_m * bearing.to_radians().cos(), distance_m * bearing.to_radians().sin());
    let lat = 52.5 + dn / M_PER_DEG;
    let lon = 13.4 + de / (M_PER_DEG * 52.5f64.to_radians().cos());
    let mut fix = Fix::new(Timestamp(t), Coord::from_degrees(lat, lon).unwrap(), SourceFormat::Owntracks);
    fix.horizontal_accuracy_cm = Some((accuracy_m * 100.0) as u32);
    fix
}

/// Runs fixes through the evaluator, ticking the clock at each fix's time.
fn run(index: &ZoneIndex, watch: &mut DeviceWatch, fixes: &[Fix]) -> Vec<Event> {
    let evaluator = Evaluator::new(index, WatchRules::default());
    let mut out = Vec::new();
    for f in fixes {
        evaluator.fix(USER, DEVICE, watch, f, &mut out);
        evaluator.tick(USER, DEVICE, watch, f.time, &mut out);
    }
    out
}

/// A device that has been inside long enough to have entered.
fn entered(index: &ZoneIndex, dwell_s: u32) -> (DeviceWatch, i64) {
    let mut watch = DeviceWatch::default();
    let t_enter = T0 + i64::from(dwell_s) * 1000;
    let events = run(index, &mut watch, &[fix_at(T0, 0.0, 0.0, 5.0), fix_at(t_enter, 0.0, 0.0, 5.0)]);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::ZoneEnter]);
    (watch, t_enter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Inside, fixes that are inside or in the band (accuracy circle poking
    /// out, or outside but within the exit buffer) never fire a leave; outside,
    /// fixes in the band or clear never fire an enter, however long it goes on.
    #[test]
    fn jitter_inside_the_hysteresis_band_never_flaps(
        jitter in prop::collection::vec((0.0f64..1.0, 0.0f64..360.0, 3.0f64..80.0, 1i64..600), 1..80),
        dwell_s in 0u32..300,
        confirmations in 1u8..4,
    ) {
        let index = home(rules(dwell_s, confirmations, 0));
        let (mut watch, mut t) = entered(&index, dwell_s);
        // Not clear: the distance minus the accuracy stays under radius + buffer.
        let near: Vec<Fix> = jitter.iter().map(|&(u, bearing, acc, gap)| {
            t += gap * 1000;
            fix_at(t, u * (RADIUS + 50.0 + acc - 0.5), bearing, acc)
        }).collect();
        prop_assert_eq!(run(&index, &mut watch, &near), vec![]);

        let mut watch = DeviceWatch::default();
        // Not inside: the distance plus the accuracy reaches past the radius.
        let out: Vec<Fix> = jitter.iter().map(|&(u, bearing, acc, gap)| {
            t += gap * 1000;
            let least = (RADIUS - acc + 0.5).max(0.0);
            fix_at(t, least + u * 2_000.0, bearing, acc)
        }).collect();
        prop_assert_eq!(run(&index, &mut watch, &out), vec![]);
    }

    /// A pass through the zone that is over before the dwell time fires
    /// nothing, whatever the fixes inside look like.
    #[test]
    fn a_drive_by_shorter_than_the_dwell_fires_nothing(
        dwell_s in 30u32..900,
        inside in prop::collection::vec((0.0f64..1.0, 0.0f64..1.0, 0.0f64..360.0), 1..30),
        before in 1usize..5,
        after in 1usize..5,
    ) {
        let index = home(rules(dwell_s, 1, 0));
        let mut fixes = Vec::new();
        let mut t = T0;
        for _ in 0..before {
            fixes.push(fix_at(t, 3_000.0, 90.0, 10.0));
            t += 10_000;
        }
        // Every inside fix lies within the dwell time of the first one.
        let start = t;
        let span = i64::from(dwell_s) * 1000 - 1;
        let mut times: Vec<i64> = inside.iter().map(|&(f, _, _)| start + (f * span as f64) as i64).collect();
        times.sort_unstable();
        times.dedup();
        times[0] = start;
        for (&time, &(_, u, bearing)) in times.iter().zip(&inside) {
            fixes.push(fix_at(time, u * 40.0, bearing, 10.0));
        }
        t = times[times.len() - 1] + 1;
        for _ in 0..after {
            t = t.max(start + span);
            fixes.push(fix_at(t, 3_000.0, 270.0, 10.0));
            t += 10_000;
        }
        fixes.sort_by_key(|f| f.time);
        fixes.dedup_by_key(|f| f.time);
        prop_assert_eq!(run(&index, &mut DeviceWatch::default(), &fixes), vec![]);
    }

    /// Random sequences of inside / band / clear fixes, arriving out of order
    /// (each within the reorder window of its own time), give the events an
    /// oracle computes from the sorted sequence.
    #[test]
    fn random_sequences_match_the_oracle_including_out_of_order_arrival(
        steps in prop::collection::vec((0u8..10, 1i64..200, 0i64..30), 1..120),
        dwell_s in 0u32..300,
        confirmations in 1u8..4,
        cooldown_s in 0u32..400,
    ) {
        let rules = rules(dwell_s, confirmations, cooldown_s);
        let window_ms = 30_000;
        let mut t = T0;
        let fixes: Vec<(i64, Relation, i64)> = steps.iter().map(|&(r, gap, delay_s)| {
            t += gap * 1000;
            let relation = match r { 0..=3 => Relation::Inside, 4..=5 => Relation::Band, _ => Relation::Clear };
            (t, relation, delay_s * 1000)
        }).collect();
        let expected = oracle(&fixes.iter().map(|&(t, r, _)| (t, r)).collect::<Vec<_>>(), &rules);

        // Arrival in order of arrival time; the clock is the arrival time.
        let mut arrivals: Vec<&(i64, Relation, i64)> = fixes.iter().collect();
        arrivals.sort_by_key(|&&(t, _, delay)| t + delay);
        let relation_at = |time: Timestamp| fixes.iter().find(|f| f.0 == time.0).map(|f| f.1).unwrap();
        let mut sequencer = Sequencer::new(window_ms, None);
        let mut state = ZoneState::default();
        let mut got = Vec::new();
        let mut feed = |released: Vec<Fix>, got: &mut Vec<(&'static str, i64)>| {
            for f in released {
                if let Some(tr) = state.step(&rules, relation_at(f.time), f.time) {
                    got.push((kind(&tr), tr.at().0));
                }
            }
        };
        for &&(time, _, delay) in &arrivals {
            let f = Fix::new(Timestamp(time), Coord { lat_e7: 0, lon_e7: 0 }, SourceFormat::Owntracks);
            prop_assert_eq!(sequencer.push(f), Arrival::Accepted);
            let (released, _) = sequencer.release(Timestamp(time + delay));
            feed(released, &mut got);
        }
        let (released, _) = sequencer.release(Timestamp(i64::MAX / 2));
        feed(released, &mut got);
        prop_assert_eq!(got, expected);
    }
}

fn kind(t: &polo_zones::Transition) -> &'static str {
    match t {
        polo_zones::Transition::Enter { .. } => "enter",
        polo_zones::Transition::Leave { .. } => "leave",
        polo_zones::Transition::Dwell { .. } => "dwell",
    }
}

/// The events of a sorted fix sequence, computed from whole runs rather
/// than step by step: an enter is the first inside fix at least the dwell
/// after the start of an inside run that no clear fix interrupts (and at
/// least the cooldown after the last transition); a leave is the first clear
/// fix that completes `exit_confirmations` clear fixes with no inside fix
/// between them (band fixes neither count nor break the run), again after
/// the cooldown.
fn oracle(fixes: &[(i64, Relation)], rules: &Rules) -> Vec<(&'static str, i64)> {
    let (dwell, cooldown) = (i64::from(rules.dwell_s) * 1000, i64::from(rules.cooldown_s) * 1000);
    let cooled = |last: Option<i64>, t: i64| last.is_none_or(|l| t - l >= cooldown);
    let n = fixes.len();
    let mut events = Vec::new();
    let mut last = None;
    let mut inside = false;
    let mut i = 0;
    while i < n {
        if inside {
            let mut clear = 0;
            let leave = (i..n).find(|&k| {
                match fixes[k].1 {
                    Relation::Inside => clear = 0,
                    Relation::Band => {}
                    Relation::Clear => clear += 1,
                }
                fixes[k].1 == Relation::Clear
                    && clear >= usize::from(rules.exit_confirmations)
                    && cooled(last, fixes[k].0)
            });
            let Some(k) = leave else { break };
            events.push(("leave", fixes[k].0));
            (last, inside, i) = (Some(fixes[k].0), false, k + 1);
        } else {
            let Some(s) = (i..n).find(|&k| fixes[k].1 == Relation::Inside) else { break };
            let end = (s..n).find(|&k| fixes[k].1 == Relation::Clear).unwrap_or(n);
            let enter = (s..end).find(|&k| {
                fixes[k].1 == Relation::Inside && fixes[k].0 - fixes[s].0 >= dwell && cooled(last, fixes[k].0)
            });
            match enter {
                Some(k) => {
                    events.push(("enter", fixes[k].0));
                    (last, inside, i) = (Some(fixes[k].0), true, k + 1);
                }
                None => i = end,
            }
        }
    }
    events
}

#[test]
fn an_enter_fires_on_the_clock_when_the_phone_goes_quiet_inside() {
    let index = home(rules(120, 2, 0));
    let evaluator = Evaluator::new(&index, WatchRules::default());
    let mut watch = DeviceWatch::default();
    let mut out = Vec::new();
    evaluator.fix(USER, DEVICE, &mut watch, &fix_at(T0, 10.0, 0.0, 5.0), &mut out);
    evaluator.tick(USER, DEVICE, &mut watch, Timestamp(T0 + 119_000), &mut out);
    assert!(out.is_empty());
    evaluator.tick(USER, DEVICE, &mut watch, Timestamp(T0 + 600_000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].kind, out[0].at), (EventKind::ZoneEnter, Timestamp(T0 + 120_000)));
}

#[test]
fn leaving_takes_confirming_fixes_and_the_cooldown_keeps_transitions_apart() {
    let index = home(Rules { cooldown_s: 300, dwell_alert_s: Some(60), ..rules(0, 2, 300) });
    let mut watch = DeviceWatch::default();
    let far = |t| fix_at(t, 1_000.0, 0.0, 10.0);
    let home_fix = |t| fix_at(t, 0.0, 0.0, 10.0);
    let kinds = |events: Vec<Event>| events.into_iter().map(|e| (e.kind, e.at.0 - T0)).collect::<Vec<_>>();
    let e = run(&index, &mut watch, &[home_fix(T0), home_fix(T0 + 61_000)]);
    assert_eq!(kinds(e), [(EventKind::ZoneEnter, 0), (EventKind::ZoneDwell, 61_000)]);
    // One clear fix, then inside again: no leave.
    let e = run(&index, &mut watch, &[far(T0 + 400_000), home_fix(T0 + 410_000), far(T0 + 420_000)]);
    assert!(e.is_empty());
    let e = run(&index, &mut watch, &[far(T0 + 430_000)]);
    assert_eq!(kinds(e), [(EventKind::ZoneLeave, 430_000)]);
    // Back within the cooldown: the enter waits for a fix after it.
    let e = run(&index, &mut watch, &[home_fix(T0 + 440_000), home_fix(T0 + 700_000), home_fix(T0 + 730_000)]);
    assert_eq!(kinds(e), [(EventKind::ZoneEnter, 730_000)]);
}

#[test]
fn low_battery_fires_once_until_the_level_recovers_and_silence_once_per_gap() {
    let index = ZoneIndex::default();
    let evaluator = Evaluator::new(&index, WatchRules::default());
    let mut watch = DeviceWatch::default();
    let mut out = Vec::new();
    for (i, level) in [50u8, 15, 14, 16, 18, 25, 12].into_iter().enumerate() {
        let mut f = fix_at(T0 + i as i64 * 60_000, 0.0, 0.0, 5.0);
        f.battery_percent = Some(level);
        evaluator.fix(USER, DEVICE, &mut watch, &f, &mut out);
    }
    let low: Vec<_> = out.iter().map(|e| e.detail["battery_percent"].as_u64().unwrap()).collect();
    assert_eq!(low, [15, 12]);
    out.clear();
    let last = T0 + 6 * 60_000;
    evaluator.tick(USER, DEVICE, &mut watch, Timestamp(last + 11 * 3_600_000), &mut out);
    assert!(out.is_empty());
    evaluator.tick(USER, DEVICE, &mut watch, Timestamp(last + 13 * 3_600_000), &mut out);
    evaluator.tick(USER, DEVICE, &mut watch, Timestamp(last + 30 * 3_600_000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].kind, out[0].at.0), (EventKind::DeviceSilent, last + 12 * 3_600_000));
}

#[test]
fn a_device_far_from_a_zone_it_is_in_still_leaves_it() {
    // The index offers only zones whose box holds the fix; the states bring in the rest.
    let index = home(rules(0, 1, 0));
    let (mut watch, t) = entered(&index, 0);
    let e = run(&index, &mut watch, &[fix_at(t + 1_000, 50_000.0, 180.0, 10.0)]);
    assert_eq!(e.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::ZoneLeave]);
}

#[test]
fn a_device_keeps_state_only_for_zones_it_is_in_or_cooling_down_from() {
    // Fixes that meet zones without entering them leave no state behind, and
    // a zone left is forgotten once its cooldown has passed.
    let index = home(rules(0, 1, 60));
    let mut watch = DeviceWatch::default();
    run(&index, &mut watch, &[fix_at(T0, 120.0, 0.0, 5.0), fix_at(T0 + 1_000, 90.0, 0.0, 30.0)]);
    assert!(watch.zones.is_empty(), "band and clear fixes keep nothing: {:?}", watch.zones);
    let events = run(&index, &mut watch, &[fix_at(T0 + 2_000, 0.0, 0.0, 5.0), fix_at(T0 + 70_000, 1_000.0, 0.0, 5.0)]);
    assert_eq!(events.len(), 2);
    assert_eq!(watch.zones.len(), 1, "cooling down after the leave");
    run(&index, &mut watch, &[fix_at(T0 + 140_000, 1_000.0, 0.0, 5.0)]);
    assert!(watch.zones.is_empty(), "the cooldown passed");
}
