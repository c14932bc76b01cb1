//! `polo-bench zones`: one fix against every zone of the instance, through
//! the R-tree, against the target of 2 µs per fix with 10,000 zones.
//!
//! The zones are spread over a 600 × 800 km area (about Germany): `--users`
//! users with `--zones / --users` zones each, circles of 50–500 m and
//! quadrilaterals of about 200–800 m in equal parts, each user's clustered
//! within 20 km of their home as people's places are. Each user has one
//! device, which stays five minutes (30 fixes) at a place, seven times in
//! ten one of its owner's zones, so enters and leaves fire as they would. The fixes and the per-device states are
//! made before the clock starts; the loop calls `Evaluator::fix`, which
//! looks the fix up in the index, tests the candidate zones with the
//! accuracy, and steps their state machines. A second run puts all zones on
//! one user, the worst case for the per-user filter.

use std::hint::black_box;
use std::time::Instant;

use polo_domain::{Coord, DeviceId, Fix, SourceFormat, Timestamp, UserId};
use polo_timeline::synthetic::Rng;
use polo_zones::geometry::M_PER_DEG;
use polo_zones::{DeviceWatch, Evaluator, Rules, Shape, WatchRules, Zone, ZoneIndex, ZoneSpec};

/// The target per fix.
const TARGET_US: f64 = 2.0;

fn offset(center: [f64; 2], north_m: f64, east_m: f64) -> [f64; 2] {
    let lat = center[0] + north_m / M_PER_DEG;
    [lat, center[1] + east_m / (M_PER_DEG * center[0].to_radians().cos())]
}

fn zones(count: usize, users: usize, rng: &mut Rng) -> Vec<Zone> {
    let homes: Vec<[f64; 2]> = (0..users).map(|_| [rng.range(47.5, 54.5), rng.range(6.0, 14.5)]).collect();
    (0..count)
        .map(|i| {
            let user = i % users;
            let center = offset(homes[user], rng.range(-20_000.0, 20_000.0), rng.range(-20_000.0, 20_000.0));
            let shape = if i % 2 == 0 {
                Shape::Circle { center, radius_m: rng.range(50.0, 500.0) }
            } else {
                let (h, w) = (rng.range(100.0, 400.0), rng.range(100.0, 400.0));
                let vertices = vec![
                    offset(center, -h, -w),
                    offset(center, -h * 0.8, w),
                    offset(center, h, w * 1.1),
                    offset(center, h * 0.9, -w),
                ];
                Shape::Polygon { vertices }
            };
            let spec = ZoneSpec {
                name: format!("zone {i}"),
                shape,
                rules: Rules { dwell_s: 60, ..Rules::default() },
                origin: None,
            };
            Zone { id: i as i64 + 1, user: UserId(user as i64 + 1), spec }
        })
        .collect()
}

/// Fixes of `users` devices, one every 10 s per device. A device stays
/// 30 fixes (5 minutes) at one place: seven times in ten one of its owner's
/// zones (within 150 m of its centre), otherwise anywhere in the area.
fn fixes(zones: &[Zone], users: usize, count: usize, rng: &mut Rng) -> Vec<(UserId, Fix)> {
    let by_user: Vec<Vec<&Zone>> =
        (0..users).map(|u| zones.iter().filter(|z| z.user.0 == u as i64 + 1).collect()).collect();
    let mut places: Vec<[f64; 2]> = vec![[50.0, 10.0]; users];
    (0..count)
        .map(|i| {
            let user = i % users;
            let round = i / users;
            if round.is_multiple_of(30) {
                let own = &by_user[user];
                places[user] = if rng.chance(0.7) && !own.is_empty() {
                    let zone = own[rng.below(own.len() as u64) as usize];
                    let (s, w, n, e) = zone.spec.shape.bbox(0.0);
                    [(s + n) / 2.0, (w + e) / 2.0]
                } else {
                    [rng.range(47.5, 54.5), rng.range(6.0, 14.5)]
                };
            }
            let p = offset(places[user], rng.range(-150.0, 150.0), rng.range(-150.0, 150.0));
            let time = Timestamp(1_700_000_000_000 + round as i64 * 10_000);
            let coord = Coord::from_degrees(p[0], p[1]).expect("inside the area");
            let mut fix = Fix::new(time, coord, SourceFormat::Owntracks);
            fix.horizontal_accuracy_cm = Some((rng.range(3.0, 40.0) * 100.0) as u32);
            (UserId(user as i64 + 1), fix)
        })
        .collect()
}

/// µs per fix and events fired.
fn run(index: &ZoneIndex, fixes: &[(UserId, Fix)], users: usize) -> (f64, usize) {
    let evaluator = Evaluator::new(index, WatchRules::default());
    let mut watches: Vec<DeviceWatch> = (0..users).map(|_| DeviceWatch::default()).collect();
    let mut events = Vec::with_capacity(1024);
    let mut fired = 0;
    let started = Instant::now();
    for (user, fix) in fixes {
        let slot = (user.0 - 1) as usize;
        evaluator.fix(*user, DeviceId(user.0), &mut watches[slot], fix, &mut events);
        fired += events.len();
        events.clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    black_box(&watches);
    (seconds * 1e6 / fixes.len() as f64, fired)
}

pub fn zones_bench(count: usize, users: usize, points: usize) -> anyhow::Result<()> {
    anyhow::ensure!(count > 0 && users > 0 && points > 0, "--zones, --users and --points must be above 0");
    let mut rng = Rng::new(19);
    let all = zones(count, users, &mut rng);
    let started = Instant::now();
    let index = ZoneIndex::new(all.clone());
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    let fixes_many = fixes(&all, users, points, &mut rng);
    // Warm-up, then the timed run.
    run(&index, &fixes_many[..points.min(10_000)], users);
    let (us, fired) = run(&index, &fixes_many, users);

    let one: Vec<Zone> = all
        .iter()
        .cloned()
        .map(|mut z| {
            z.user = UserId(1);
            z
        })
        .collect();
    let one_index = ZoneIndex::new(one.clone());
    let one_fixes = fixes(&one, 1, points, &mut rng);
    run(&one_index, &one_fixes[..points.min(10_000)], 1);
    let (one_us, one_fired) = run(&one_index, &one_fixes, 1);

    println!("index build      {build_ms:8.1} ms  R-tree over {count} zones (half circles, half polygons)");
    println!(
        "evaluate         {us:8.3} µs/fix  {points} fixes of {users} devices, {users} users × {} zones; {fired} events \
         ({:.2}× the {TARGET_US} µs target)",
        count / users,
        us / TARGET_US
    );
    println!(
        "one user         {one_us:8.3} µs/fix  all {count} zones on one user; {one_fired} events ({:.2}× the target)",
        one_us / TARGET_US
    );
    Ok(())
}
