//! `polo-bench encounters`: the encounter engine on the synthetic set of
//! `algorithms.md` §2.3, against PostGIS's best plan in the same run.
//!
//! 1. Generates `--points` points ([`synth`]) deterministically.
//! 2. **Full join**: `polo_encounters::count_pairs` (the grid × time-bucket
//!    join, counting without listing), then `encounters` (the same join with
//!    the fold). Prints point pairs, user pairs, candidates per pair, points/s
//!    and pairs/s, and the process's peak RSS (`VmHWM`, reset before each
//!    timed part, so it is the input plus the join's own memory).
//! 3. **Semi-join**: the first `--index-fraction` of users are index cases;
//!    `exposures` indexes their points and streams everyone's past them.
//! 4. With `--postgis URL`: the same points loaded into PostGIS with binary
//!    `COPY`, a `btree_gist` `gist(geog, ts)` index, and the self-join
//!    ([`postgis`]), timed end to end (load + index + query) against polo's
//!    join; the counts must be identical, and the ratio is printed.
//!
//! The targets (issue 18): identical counts and ≥ 20× PostGIS end to end at
//! 1M points; ≤ 10 s and ≤ 1 GB peak RSS at 10M; the 1 % semi-join at 10M in
//! ≤ 2 s.

pub mod postgis;
pub mod synth;

use std::time::Instant;

use anyhow::bail;
use polo_encounters::{Params, count_exposures, count_pairs, encounters, exposures};

use crate::map::{mib, verdict};
use postgis::Variant;

/// The targets.
const TARGET_SPEEDUP: f64 = 20.0;
const TARGET_10M_S: f64 = 10.0;
const TARGET_10M_RSS_MIB: f64 = 1024.0;
const TARGET_SEMI_10M_S: f64 = 2.0;

/// What `polo-bench encounters` is asked to do.
pub struct Options {
    pub points: usize,
    pub index_fraction: f64,
    pub threads: usize,
    pub max_distance_m: f64,
    pub max_gap_ms: i64,
    pub seed: u64,
    pub postgis: Option<String>,
}

/// One PostGIS plan's times and counts, and polo's ratio to it.
fn print_baseline(name: &str, b: &postgis::Baseline, polo_s: f64, note: &str) {
    println!(
        "{name:<16} {:.2} s end to end = load {:.2} s + gist(geog, ts) {:.2} s + query {:.2} s  \
         {} point pairs, {} user pairs {note}",
        b.total_s(),
        b.load_s,
        b.index_s,
        b.query_s,
        b.point_pairs,
        b.user_pairs
    );
    println!("{:<16} polo {:.1}× faster end to end (query alone {:.1}×)", "", b.total_s() / polo_s, b.query_s / polo_s);
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0), so the next `VmHWM` is this part's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[allow(clippy::cast_precision_loss)]
fn per_s(n: u64, seconds: f64) -> f64 {
    n as f64 / seconds
}

pub fn encounters_bench(options: &Options) -> anyhow::Result<()> {
    let params = Params::new(options.max_distance_m, options.max_gap_ms)?.with_threads(options.threads);
    if !(0.0..=1.0).contains(&options.index_fraction) {
        bail!("--index-fraction must be between 0 and 1");
    }
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        options.threads
    };
    let started = Instant::now();
    let samples = synth::generate(options.points, options.seed);
    let n = samples.len() as u64;
    let users = samples.len().div_ceil(synth::POINTS_PER_USER);
    println!(
        "input            {n} points, {users} users × {} points in one day, 20 × 20 km around {:?} (seed {}), \
         generated in {:.2} s",
        synth::POINTS_PER_USER,
        synth::CENTRE,
        options.seed,
        started.elapsed().as_secs_f64()
    );
    println!(
        "parameters       D = {} m, T = {} s, {threads} thread(s); input resident {:.0} MiB",
        params.max_distance_m,
        params.max_gap_ms / 1000,
        mib(status_kb("VmRSS:"))
    );

    reset_peak();
    let started = Instant::now();
    let counts = count_pairs(&samples, &params);
    let join_s = started.elapsed().as_secs_f64();
    let join_peak = mib(status_kb("VmHWM:"));
    #[allow(clippy::cast_precision_loss)]
    let ratio = counts.candidates as f64 / counts.point_pairs.max(1) as f64;
    println!(
        "polo join        {join_s:.3} s  {} point pairs, {} user pairs, {ratio:.2} candidates/pair, \
         {:.2} M points/s, {:.2} M pairs/s, peak RSS {join_peak:.0} MiB",
        counts.point_pairs,
        counts.user_pairs,
        per_s(n, join_s) / 1e6,
        per_s(counts.point_pairs, join_s) / 1e6
    );

    reset_peak();
    let started = Instant::now();
    let folded = encounters(&samples, &params);
    let fold_s = started.elapsed().as_secs_f64();
    println!(
        "polo encounters  {fold_s:.3} s  {} encounters (join + fold), peak RSS {:.0} MiB",
        folded.len(),
        mib(status_kb("VmHWM:"))
    );
    drop(folded);

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let index_users = ((users as f64 * options.index_fraction).round() as usize).max(1);
    let index = &samples[..(index_users * synth::POINTS_PER_USER).min(samples.len())];
    reset_peak();
    let started = Instant::now();
    let exposed = exposures(index, samples.iter().copied(), &params);
    let semi_s = started.elapsed().as_secs_f64();
    let semi_peak = mib(status_kb("VmHWM:"));
    let mut contacts: Vec<_> = exposed
        .iter()
        .flat_map(|e| [e.user_a, e.user_b])
        .filter(|u| usize::try_from(u.0).is_ok_and(|u| u > index_users))
        .collect();
    contacts.sort_unstable();
    contacts.dedup();
    let semi_counts = count_exposures(index, samples.iter().copied(), &params);
    println!(
        "polo semi-join   {semi_s:.3} s  {index_users} index cases ({} points): {} encounters, {} exposed users, \
         {} point pairs, {} user pairs, {:.1} M streamed points/s, peak RSS {semi_peak:.0} MiB",
        index.len(),
        exposed.len(),
        contacts.len(),
        semi_counts.point_pairs,
        semi_counts.user_pairs,
        per_s(n, semi_s) / 1e6
    );

    let mut speedup = None;
    if let Some(url) = &options.postgis {
        let mut client = postgis::connect(url).map_err(anyhow::Error::msg)?;
        let sphere = postgis::run(&mut client, &samples, &params, Variant::Sphere, true)?;
        let same = (sphere.point_pairs, sphere.user_pairs) == (counts.point_pairs, counts.user_pairs);
        print_baseline("PostGIS sphere", &sphere, join_s, if same { "IDENTICAL to polo" } else { "DIFFER from polo" });
        if !same {
            bail!("polo and PostGIS disagree: {counts:?} vs {sphere:?}");
        }
        let utm = postgis::run(&mut client, &samples, &params, Variant::Utm, false)?;
        let note = format!(
            "(planar UTM 50N: {:+} point pairs against the sphere)",
            i128::from(utm.point_pairs) - i128::from(sphere.point_pairs)
        );
        print_baseline("PostGIS UTM", &utm, join_s, &note);
        speedup = Some(sphere.total_s().min(utm.total_s()) / join_s);
    }

    println!();
    if let Some(speedup) = speedup {
        println!(
            "target  ≥ {TARGET_SPEEDUP}× PostGIS's faster plan end to end, identical counts: {speedup:.1}×  {}",
            verdict(speedup >= TARGET_SPEEDUP)
        );
    }
    if options.points >= 10_000_000 {
        println!("target  10M join ≤ {TARGET_10M_S} s: {join_s:.2} s  {}", verdict(join_s <= TARGET_10M_S));
        println!(
            "target  10M peak RSS ≤ {TARGET_10M_RSS_MIB} MiB: {join_peak:.0} MiB  {}",
            verdict(join_peak <= TARGET_10M_RSS_MIB)
        );
        println!(
            "target  10M semi-join (1%) ≤ {TARGET_SEMI_10M_S} s: {semi_s:.2} s  {}",
            verdict(semi_s <= TARGET_SEMI_10M_S)
        );
    }
    Ok(())
}
