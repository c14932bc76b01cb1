//! `polo-bench timeline`: stay and leg detection throughput, against trackintel.
//!
//! Generates a realistic synthetic phone track (polo-timeline's `synthetic`
//! generator, the same one the trackintel agreement test uses) and times, as
//! the best of several runs, polo's stays alone and the full pass:
//! [`polo_timeline::detect`] (stays, then legs with distance, speed profile
//! and transport mode) plus trip grouping. In the same run it gives the same
//! points to trackintel 1.4.2 through the committed comparison script, with
//! the interpreter in `POLO_PYTHON`; only `generate_staypoints` and
//! `generate_triplegs` are timed inside Python, not reading the CSV or
//! building the GeoDataFrame. It also checks that both found as many stays
//! and legs. It goes on with the offline reverse-geocoding rate (module
//! `geocode`) and, unless `--no-map`, the map overview latency of a
//! ten-year, ~5-million-point user over HTTP (module `map`, which builds
//! that store and starts the real server: about a minute more).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use polo_timeline::oracle::{self, TRACKINTEL_SCRIPT};
use polo_timeline::synthetic::SyntheticTrack;
use polo_timeline::{TimelineParams, TrackPoint, detect, detect_stays};

/// polo's stay + leg detection must be at least this many times trackintel's.
const TARGET_RATIO: f64 = 100.0;

/// The exact Rust port in the research notes (algorithms.md §1.4): 25–27 M points/s.
const ANCHOR_POINTS_PER_S: f64 = 25e6;

/// The best wall time of `runs` calls, in seconds.
fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            black_box(work());
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn per_second(points: usize, seconds: f64) -> f64 {
    // A point count fits f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let points = points as f64;
    points / seconds
}

/// What trackintel reported.
struct Baseline {
    seconds: f64,
    staypoints_seconds: f64,
    points: usize,
    stays: usize,
    legs: usize,
}

fn trackintel(work: &Path, track: &[TrackPoint], params: &TimelineParams) -> anyhow::Result<Baseline> {
    let python = std::env::var_os("POLO_PYTHON").map(PathBuf::from).context(
        "POLO_PYTHON is not set: point it at a Python with trackintel==1.4.2 (pinned in .ci/requirements.txt), \
         or pass --no-baseline",
    )?;
    let script = work.join("trackintel_staypoints.py");
    std::fs::write(&script, TRACKINTEL_SCRIPT)?;
    let input = work.join(format!("timeline-{}.csv", track.len()));
    std::fs::write(&input, oracle::points_csv(&[(1, track)]))?;
    let stays = &params.stays;
    eprintln!("running trackintel on {} points …", track.len());
    let output = Command::new(&python)
        .arg(&script)
        .arg(&input)
        .arg(work.join("trackintel-staypoints.csv"))
        .arg(work.join("trackintel-triplegs.csv"))
        .arg(stays.distance_threshold_m.to_string())
        .arg((f64::from(stays.time_threshold_s) / 60.0).to_string())
        .arg((f64::from(stays.gap_threshold_s) / 60.0).to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!("the trackintel script failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("the trackintel script printed no JSON summary")?;
    let number = |key: &str| summary[key].as_f64().with_context(|| format!("no {key} in {summary}"));
    let count = |key: &str| {
        summary[key].as_u64().and_then(|n| usize::try_from(n).ok()).with_context(|| format!("no {key} in {summary}"))
    };
    let staypoints_seconds = number("staypoints_seconds")?;
    Ok(Baseline {
        seconds: staypoints_seconds + number("triplegs_seconds")?,
        staypoints_seconds,
        points: count("points")?,
        stays: count("staypoints")?,
        legs: count("triplegs")?,
    })
}

pub fn timeline(work: &Path, points: usize, baseline: bool, with_map: bool) -> anyhow::Result<()> {
    eprintln!("generating a synthetic track of {points} points …");
    let track = SyntheticTrack::new(2024).with_points(points).points;
    let days = track.last().zip(track.first()).map_or(0, |(last, first)| (last.time.0 - first.time.0) / 86_400_000 + 1);
    // trackintel's exact rules, so that the comparison compares like with like.
    let params = TimelineParams { stays: polo_timeline::StayParams::trackintel(), ..TimelineParams::default() };
    let found = detect(&track, &params)?;
    let runs = 7;
    let stays_seconds = best_of(runs, || detect_stays(&track, &params.stays));
    let detect_seconds = best_of(runs, || detect(&track, &params).map(|timeline| timeline.trips(&params)));
    let polo_rate = per_second(track.len(), detect_seconds);
    println!(
        "input            {} points, {days} days of a synthetic phone track ({} stays, {} legs found)",
        track.len(),
        found.stays.len(),
        found.legs.len()
    );
    println!(
        "polo stays       {:8.2} ms  {:>12.0} points/s",
        stays_seconds * 1e3,
        per_second(track.len(), stays_seconds)
    );
    println!(
        "polo full        {:8.2} ms  {polo_rate:>12.0} points/s  (stays, legs with modes, trips; best of {runs}; exact-port anchor ≈ {:.0} M points/s)",
        detect_seconds * 1e3,
        ANCHOR_POINTS_PER_S / 1e6
    );
    let defaults = TimelineParams::default();
    let default_seconds = best_of(runs, || detect(&track, &defaults).map(|timeline| timeline.trips(&defaults)));
    println!(
        "polo defaults    {:8.2} ms  {:>12.0} points/s  (jitter excursions, bridged gaps, folded legs: {} stays)",
        default_seconds * 1e3,
        per_second(track.len(), default_seconds),
        detect(&track, &defaults)?.stays.len()
    );
    if baseline {
        compare_with_trackintel(work, &track, &params, &found, polo_rate)?;
    }
    println!();
    println!("reverse geocoding of stays and places (offline, 200,000 land-weighted positions):");
    crate::geocode::geocode(200_000)?;
    if with_map {
        println!();
        println!("map overview of a ten-year, ~5-million-point user (as `polo-bench map --runs 5`):");
        crate::map::map(work, 3653, 5)?;
    }
    Ok(())
}

/// Runs trackintel on the same track and prints its rates and the ratio.
fn compare_with_trackintel(
    work: &Path,
    track: &[polo_timeline::TrackPoint],
    params: &TimelineParams,
    found: &polo_timeline::Timeline,
    polo_rate: f64,
) -> anyhow::Result<()> {
    let reference = trackintel(work, track, params)?;
    let trackintel_rate = per_second(reference.points, reference.seconds);
    println!(
        "trackintel stays {:8.2} ms  {:>12.0} points/s  (generate_staypoints: {} stays)",
        reference.staypoints_seconds * 1e3,
        per_second(reference.points, reference.staypoints_seconds),
        reference.stays
    );
    println!(
        "trackintel s+l   {:8.2} ms  {trackintel_rate:>12.0} points/s  (+ generate_triplegs: {} legs)",
        reference.seconds * 1e3,
        reference.legs
    );
    let ratio = polo_rate / trackintel_rate;
    println!("ratio            {ratio:.0}x trackintel");
    let tracked_legs = found.legs.iter().filter(|l| l.source == polo_timeline::LegSource::Tracked).count();
    let same = reference.stays == found.stays.len() && reference.legs == tracked_legs;
    println!("same result      {}", if same { "yes (stay and tripleg counts equal)" } else { "NO: counts differ" });
    println!();
    println!("target ≥ {TARGET_RATIO:.0}x trackintel   {}", if ratio >= TARGET_RATIO { "PASS" } else { "MISS" });
    Ok(())
}
