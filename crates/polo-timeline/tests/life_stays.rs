//! Stays against the truth of a lived life: the realistic fixture
//! (`polo-life`) knows where its person really was, visit by visit, so the
//! visits polo detects from the phones' fixes can be scored against it.
//!
//! Each phone's fixes go through what the engine does with them (teleports
//! and hopeless fixes flagged by [`classify`] and left out, then
//! [`detect`]), and each real visit (a stay longer than the visit threshold
//! that the phone recorded at least two fixes in) is looked for among the
//! detected visits within [`NEAR_M`] of its place:
//!
//! * *matched*: detected visits there cover at least half of it;
//! * *fragments*: how many detected visits there overlap it (a person would
//!   say one: 1.0 is right, 3.0 is "Home, Home, Home");
//! * *visits per day*: detected against real, over the days recorded;
//! * *home*: detected visits at home against real ones (the "Home had
//!   12,170 visits in two years" figure);
//! * *spurious*: detected visits that overlap no real stay near them.
//!
//! Run with `-- --nocapture` to see the figures for trackintel's rules,
//! polo's rules before excursions and bridged gaps, and polo's rules now;
//! `POLO_LIFE_YEARS=10` scores the whole decade instead of six months.

use polo_domain::{Coord, Timestamp};
use polo_life::{Activity, Device, Life, LifeOptions, Scale};
use polo_timeline::geo::coord_distance_m;
use polo_timeline::{OutlierParams, Sample, StayParams, TimelineParams, TrackPoint, classify, detect};

/// A detected visit this close to a real place counts as being there.
const NEAR_M: f64 = 250.0;

/// A real visit the phone could have seen.
struct Truth {
    start: i64,
    end: i64,
    at: Coord,
    home: bool,
}

fn coord(lat: f64, lon: f64) -> Coord {
    Coord::from_degrees(lat, lon).expect("the life's places are valid positions")
}

/// The phone's fixes as the engine sees them: null-island placeholders are
/// rejected by the importers, teleports flagged by the outlier detector.
fn fixes(life: &Life, device: Device) -> Vec<TrackPoint> {
    let mut samples = Vec::new();
    for fix in life.points(device).filter(|f| !f.null_island) {
        let at = coord(fix.lat, fix.lon);
        samples.push(Sample { accuracy_m: Some(f64::from(fix.accuracy_m)), ..Sample::new(Timestamp(fix.time_ms), at) });
    }
    samples.sort_by_key(|s| s.time);
    let verdicts = classify(&samples, &OutlierParams::default()).expect("default outlier parameters are valid");
    samples
        .iter()
        .zip(verdicts)
        .filter(|(_, verdict)| !verdict.is_flagged())
        .map(|(s, _)| TrackPoint::new(s.time, s.coord))
        .collect()
}

/// The real visits at least two of `points` fall into.
fn truth(life: &Life, points: &[TrackPoint], visit_min_ms: i64) -> Vec<Truth> {
    let homes = life.world().homes;
    let fixes_in = |start: i64, end: i64| {
        points.partition_point(|p| p.time.0 < end) - points.partition_point(|p| p.time.0 < start)
    };
    life.segments()
        .filter(|s| s.activity == Activity::Stay && s.end_ms - s.start_ms > visit_min_ms)
        .filter(|s| fixes_in(s.start_ms, s.end_ms) >= 2)
        .map(|s| {
            let place = life.world().place(s.from);
            Truth { start: s.start_ms, end: s.end_ms, at: coord(place.lat, place.lon), home: homes.contains(&s.from) }
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    real_visits: usize,
    matched: usize,
    fragments: usize,
    detected_visits: usize,
    real_home: usize,
    detected_home: usize,
    spurious: usize,
    days: usize,
}

impl Score {
    #[allow(clippy::cast_precision_loss)]
    fn ratio(a: usize, b: usize) -> f64 {
        a as f64 / b.max(1) as f64
    }

    fn matched_share(&self) -> f64 {
        Self::ratio(self.matched, self.real_visits)
    }

    fn fragments_per_visit(&self) -> f64 {
        Self::ratio(self.fragments, self.matched)
    }

    fn visits_per_day(&self) -> (f64, f64) {
        (Self::ratio(self.detected_visits, self.days), Self::ratio(self.real_visits, self.days))
    }

    fn home_ratio(&self) -> f64 {
        Self::ratio(self.detected_home, self.real_home)
    }

    fn add(&mut self, other: Score) {
        self.real_visits += other.real_visits;
        self.matched += other.matched;
        self.fragments += other.fragments;
        self.detected_visits += other.detected_visits;
        self.real_home += other.real_home;
        self.detected_home += other.detected_home;
        self.spurious += other.spurious;
        self.days += other.days;
    }

    fn line(&self, label: &str) -> String {
        let (detected, real) = self.visits_per_day();
        format!(
            "{label:<28} matched {:5.1} % of {} real visits · {:.2} fragments each · {detected:.2} visits/day \
             (real {real:.2}) · home {} vs {} real ({:.2}x) · {} spurious",
            100.0 * self.matched_share(),
            self.real_visits,
            self.fragments_per_visit(),
            self.detected_home,
            self.real_home,
            self.home_ratio(),
            self.spurious,
        )
    }
}

fn score(life: &Life, points: &[TrackPoint], params: &TimelineParams) -> Score {
    let visit_min_ms = params.stays.visit_min_duration_ms();
    let real = truth(life, points, visit_min_ms);
    let timeline = detect(points, params).expect("the life's fixes are sorted");
    let visits: Vec<_> = timeline.stays.iter().filter(|s| s.is_visit(&params.stays)).collect();
    let mut days: Vec<i64> = points.iter().map(|p| p.time.0.div_euclid(86_400_000)).collect();
    days.dedup();
    let mut score =
        Score { real_visits: real.len(), detected_visits: visits.len(), days: days.len(), ..Score::default() };
    for visit in &real {
        let near: Vec<_> = visits
            .iter()
            .filter(|v| v.start.0 < visit.end && v.end.0 > visit.start)
            .filter(|v| coord_distance_m(v.centroid, visit.at) <= NEAR_M)
            .collect();
        let covered: i64 = near.iter().map(|v| v.end.0.min(visit.end) - v.start.0.max(visit.start)).sum();
        if covered * 2 >= visit.end - visit.start {
            score.matched += 1;
            score.fragments += near.len();
        }
        if visit.home {
            score.real_home += 1;
        }
    }
    let homes: Vec<Coord> =
        life.world().homes.iter().map(|&h| life.world().place(h)).map(|p| coord(p.lat, p.lon)).collect();
    let stays: Vec<_> = life.segments().filter(|s| s.activity == Activity::Stay).collect();
    for visit in &visits {
        if homes.iter().any(|&h| coord_distance_m(visit.centroid, h) <= NEAR_M) {
            score.detected_home += 1;
        }
        let first = stays.partition_point(|s| s.end_ms <= visit.start.0);
        let real_here = stays[first..].iter().take_while(|s| s.start_ms < visit.end.0).any(|s| {
            let place = life.world().place(s.from);
            coord_distance_m(visit.centroid, coord(place.lat, place.lon)) <= NEAR_M
        });
        if !real_here {
            score.spurious += 1;
        }
    }
    score
}

fn score_life(life: &Life, params: &TimelineParams) -> Score {
    let mut total = Score::default();
    for device in Device::ALL {
        let points = fixes(life, device);
        if !points.is_empty() {
            total.add(score(life, &points, params));
        }
    }
    total
}

#[test]
fn polos_visits_match_the_life_a_person_would_describe() {
    // Six months by default; `POLO_LIFE_YEARS=10` scores the whole decade.
    let scale = match std::env::var("POLO_LIFE_YEARS").ok().and_then(|y| y.parse().ok()) {
        Some(years) => Scale::Full { years },
        None => Scale::Small,
    };
    let life = LifeOptions { seed: 7, scale, start: None }.life();
    let with = |stays: StayParams| TimelineParams { stays, ..TimelineParams::default() };
    let trackintel = score_life(&life, &with(StayParams::trackintel()));
    let before = score_life(
        &life,
        &with(StayParams {
            max_excursion_fixes: 0,
            bridge_gap_s: 0,
            keep_stay_before_gap: false,
            ..StayParams::default()
        }),
    );
    let now = score_life(&life, &TimelineParams::default());
    println!("{}", trackintel.line("trackintel's rules"));
    println!("{}", before.line("polo before (legs folded)"));
    println!("{}", now.line("polo now"));

    let summary = now.line("now");
    assert!(now.matched_share() >= 0.95 && now.matched_share() > before.matched_share(), "{summary}");
    assert!(now.fragments_per_visit() <= 1.1 && now.fragments_per_visit() < before.fragments_per_visit(), "{summary}");
    assert!((0.9..=1.15).contains(&now.home_ratio()), "{summary}");
    let (detected, real) = now.visits_per_day();
    assert!((real * 0.85..=real * 1.15).contains(&detected), "{summary}");
    assert!(now.spurious * 100 <= now.detected_visits, "{summary}");
}

#[test]
fn recomputing_a_window_of_the_life_equals_recomputing_everything() {
    // Excursions and bridged gaps look ahead of the point that ends a stay;
    // the restart rule (`Stay::decided_at`) must still give the full answer
    // wherever a change lands. A month of the first phone, cut at 60 places.
    let life = LifeOptions { seed: 11, scale: Scale::Small, start: None }.life();
    let all = fixes(&life, Device::PhoneA);
    let month = &all[..all.partition_point(|p| p.time.0 < all[0].time.0 + 30 * 86_400_000)];
    let params = TimelineParams::default();
    let full = detect(month, &params).unwrap();
    assert!(full.stays.len() > 100, "{} stays", full.stays.len());
    for step in 1..=60 {
        let cut = month.len() * step / 61;
        let cut = month.partition_point(|p| p.time < month[cut].time);
        // Appending: the stored timeline knew only the points before the cut.
        let stored = detect(&month[..cut], &params).unwrap();
        let resume = stored.resume_point(month[cut].time);
        let offset = resume.from.map_or(0, |from| month.partition_point(|p| p.time < from));
        let window = detect(&month[offset..], &params).unwrap();
        assert_eq!(stored.splice(&resume, window, offset), full, "appending from point {cut}");
        // Changing: a point deleted at the cut, with the full timeline stored.
        let mut changed = month.to_vec();
        changed.remove(cut);
        let resume = full.resume_point(month[cut].time);
        let offset = resume.from.map_or(0, |from| changed.partition_point(|p| p.time < from));
        let window = detect(&changed[offset..], &params).unwrap();
        assert_eq!(
            full.clone().splice(&resume, window, offset),
            detect(&changed, &params).unwrap(),
            "deleting point {cut}"
        );
    }
}
