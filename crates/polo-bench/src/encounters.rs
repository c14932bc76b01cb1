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
//! Each polo part runs `--runs` times and the best time is quoted (the
//! machine is shared; every run's time is printed, with the load average and
//! the host's steal during the run, so a figure can be read together with the
//! conditions it was taken in). PostGIS runs once.
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
use crate::steal::StealMeter;
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
    /// Timed runs of each polo part; the best is quoted.
    pub runs: usize,
}

/// This process's CPU seconds (user + system) so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `f` `runs` times (at least once): the last result, the best time, and every run's
/// wall and CPU seconds as text.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (T, f64, String) {
    let mut times = Vec::new();
    let mut result: Option<T> = None;
    while times.len() < runs.max(1) {
        // The previous result goes first, so two never live at once.
        drop(result.take());
        let (started, cpu) = (Instant::now(), cpu_seconds());
        result = Some(f());
        times.push((started.elapsed().as_secs_f64(), cpu_seconds() - cpu));
    }
    let best = times.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
    let all: Vec<String> = times.iter().map(|(wall, cpu)| format!("{wall:.3} s/{cpu:.2} CPU s")).collect();
    (result.expect("at least one run"), best, all.join(", "))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
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

    println!("machine          load average {} before the runs", load_average());
    let steal = StealMeter::start();
    reset_peak();
    let (counts, join_s, join_runs) = best_of(options.runs, || count_pairs(&samples, &params));
    let join_peak = mib(status_kb("VmHWM:"));
    #[allow(clippy::cast_precision_loss)]
    let ratio = counts.candidates as f64 / counts.point_pairs.max(1) as f64;
    println!(
        "polo join        {join_s:.3} s (runs {join_runs})  {} point pairs, {} user pairs, \
         {ratio:.2} candidates/pair, {:.2} M points/s, {:.2} M pairs/s, peak RSS {join_peak:.0} MiB",
        counts.point_pairs,
        counts.user_pairs,
        per_s(n, join_s) / 1e6,
        per_s(counts.point_pairs, join_s) / 1e6
    );

    reset_peak();
    let (folded, fold_s, fold_runs) = best_of(options.runs, || encounters(&samples, &params));
    println!(
        "polo encounters  {fold_s:.3} s (runs {fold_runs})  {} encounters (join + fold), peak RSS {:.0} MiB",
        folded.len(),
        mib(status_kb("VmHWM:"))
    );
    drop(folded);

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let index_users = ((users as f64 * options.index_fraction).round() as usize).max(1);
    let index = &samples[..(index_users * synth::POINTS_PER_USER).min(samples.len())];
    reset_peak();
    let (exposed, semi_s, semi_runs) = best_of(options.runs, || exposures(index, samples.iter().copied(), &params));
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
        "polo semi-join   {semi_s:.3} s (runs {semi_runs})  {index_users} index cases ({} points): {} encounters, {} exposed users, \
         {} point pairs, {} user pairs, {:.1} M streamed points/s, peak RSS {semi_peak:.0} MiB",
        index.len(),
        exposed.len(),
        contacts.len(),
        semi_counts.point_pairs,
        semi_counts.user_pairs,
        per_s(n, semi_s) / 1e6
    );

    println!("machine          {} during polo's runs, load average {} after", steal.describe(), load_average());

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
