//! `polo-bench live-day`: what one step of the timeline worker costs while a
//! phone posts once a second, early in its day and late in it.
//!
//! A month of a synthetic phone (polo-timeline's generator) is stored and
//! caught up first, so the user has places and a history. Then a day of the
//! same phone is densified to one fix a second (86 400 fixes, jitter
//! included) and fed in: at each checkpoint hour the day so far is stored
//! and caught up untimed, and then `--steps` live steps are timed, each
//! adding the next two seconds of fixes and running one
//! [`Engine::catch_up`] (what the server's worker does every couple of
//! seconds under live ingest: flags, stays and legs, places, day
//! statistics, map rows).
//!
//! Printed per checkpoint: the points of the day so far, the median and
//! worst step in wall time and the mean CPU time of the step's thread
//! (wall time is mostly waiting for the disk's flush on a busy machine), the
//! most points one step's stay detection read from the store and the most it
//! took from the step before ([`polo_derived::tail`]: the current stay or
//! trip, from the last closed stay on), the mean bytes a step wrote (the
//! process's `write()` calls: SQLite's WAL pages, so what reaches the disk
//! before checkpoints; map tracks are stored in blocks so a step rewrites
//! the day's last block, not the day), and the time a rebuild of the
//! day's map rows takes ([`polo_derived::map::refresh_device`] from the
//! day's first point), which every step paid before the map rows were
//! appended to. The closing lines give the last checkpoint's median step
//! against the first's: issue 15 asks that the worker's cost follow the new
//! points, not the size of their day.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use polo_derived::Engine;
use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use polo_store::Store;
use polo_store_sqlite::SqliteStore;
use polo_timeline::synthetic::SyntheticTrack;

/// The synthetic phone.
const SEED: u64 = 7;
const DAY_MS: i64 = 86_400_000;
/// The worker's settle time: one step per this much of live points.
const STEP_MS: i64 = 2_000;
/// Hours (UTC) of the live day at which steps are timed.
const CHECKPOINTS: [i64; 6] = [1, 5, 9, 13, 17, 23];

/// A month of history, then a day at 1 Hz; see the module documentation.
pub fn live_day(work: &Path, history_days: u32, steps: usize) -> anyhow::Result<()> {
    let dir = work.join("live-day");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteStore::open(dir.join("polo.sqlite"))?);
    let user = store.create_user("bench", "a long bench password", false)?.id;
    let device = store.ensure_device(user, "phone")?.id;
    let engine = Engine::new(store.clone() as Arc<dyn Store>, None);

    let mut track = SyntheticTrack::new(SEED).days(history_days + 1);
    let points = std::mem::take(&mut track.points);
    let last_day = points.last().context("the generator made no points")?.time.0.div_euclid(DAY_MS);
    let day_start = last_day * DAY_MS - DAY_MS; // the last whole UTC day
    let history: Vec<Fix> = points.iter().filter(|p| p.time.0 < day_start).map(|p| fix(p.time, p.coord)).collect();
    let day: Vec<Fix> = densify(points.iter().filter(|p| p.time.0 >= day_start && p.time.0 < day_start + DAY_MS))
        .into_iter()
        .map(|(time, coord)| fix(time, coord))
        .collect();
    eprintln!("storing {} points of history and catching up …", history.len());
    for batch in history.chunks(20_000) {
        store.insert_points(user, device, batch)?;
    }
    catch_up(&engine)?;
    println!(
        "live day: {} fixes at 1 Hz ({} days of history, {} points before it); a step adds {} s of fixes",
        day.len(),
        history_days,
        history.len(),
        STEP_MS / 1000
    );
    println!(
        "{:>5} {:>9} {:>11} {:>11} {:>12} {:>11} {:>11} {:>13} {:>20}",
        "hour",
        "day pts",
        "step p50",
        "step max",
        "step CPU",
        "pts read",
        "pts reused",
        "step writes",
        "map rebuild (old)"
    );
    let mut stored = 0;
    let mut medians = Vec::new();
    for hour in CHECKPOINTS {
        let until = Timestamp(day_start + hour * 3_600_000);
        let upto = day.partition_point(|f| f.time < until);
        for batch in day[stored..upto].chunks(20_000) {
            store.insert_points(user, device, batch)?;
        }
        stored = upto;
        catch_up(&engine)?;
        let mut times = Vec::with_capacity(steps);
        let mut cpu = Vec::with_capacity(steps);
        let mut written = Vec::with_capacity(steps);
        let (mut read, mut reused) = (0u64, 0u64);
        for _ in 0..steps {
            let step_end = day.get(stored).map_or(i64::MAX, |f| f.time.0 + STEP_MS);
            let next = stored + day[stored..].partition_point(|f| f.time.0 < step_end);
            if next == stored {
                break;
            }
            store.insert_points(user, device, &day[stored..next])?;
            stored = next;
            let (started, on_cpu, wrote) = (Instant::now(), thread_cpu_ms(), bytes_written());
            let step = engine.catch_up()?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            cpu.push(thread_cpu_ms() - on_cpu);
            written.push(bytes_written() - wrote);
            read = read.max(step.points_read);
            reused = reused.max(step.points_reused);
        }
        times.sort_by(f64::total_cmp);
        // Thread CPU time advances in scheduler ticks: the mean over the steps is the figure.
        let cpu_mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
        let kib_mean = written.iter().sum::<u64>() as f64 / written.len() as f64 / 1024.0;
        let (p50, max) = (times[times.len() / 2], times[times.len() - 1]);
        let last = day[stored - 1].time;
        let (started, on_cpu) = (Instant::now(), thread_cpu_ms());
        polo_derived::map::refresh_device(&*store, user, device, Timestamp(day_start), last)?;
        let (rebuild, rebuild_cpu) = (started.elapsed().as_secs_f64() * 1e3, thread_cpu_ms() - on_cpu);
        println!(
            "{hour:>5} {stored:>9} {p50:>9.2}ms {max:>9.2}ms {cpu_mean:>10.2}ms {read:>11} {reused:>11} {kib_mean:>9.1} KiB {rebuild:>9.2}ms ({rebuild_cpu:.2} CPU)"
        );
        medians.push((cpu_mean, rebuild_cpu, kib_mean));
    }
    let ((first, _, first_kib), (last, rebuild, last_kib)) = (medians[0], medians[medians.len() - 1]);
    println!(
        "step writes at {}:00 against {}:00: {last_kib:.1} / {first_kib:.1} KiB = {:.2}×",
        CHECKPOINTS[CHECKPOINTS.len() - 1],
        CHECKPOINTS[0],
        last_kib / first_kib
    );
    println!(
        "step CPU at {}:00 against {}:00: {last:.2} / {first:.2} ms = {:.2}× (the day is {:.0}× as long)",
        CHECKPOINTS[CHECKPOINTS.len() - 1],
        CHECKPOINTS[0],
        last / first,
        CHECKPOINTS[CHECKPOINTS.len() - 1] as f64 / CHECKPOINTS[0] as f64
    );
    println!(
        "step CPU at {}:00 against the same step rebuilding the day's map rows (before): {last:.2} / {:.2} ms = {:.2}×",
        CHECKPOINTS[CHECKPOINTS.len() - 1],
        last + rebuild,
        last / (last + rebuild)
    );
    Ok(())
}

fn fix(time: Timestamp, coord: Coord) -> Fix {
    let mut fix = Fix::new(time, coord, SourceFormat::Api);
    fix.horizontal_accuracy_cm = Some(800);
    fix
}

/// CPU time this thread has run, in ms (`/proc/thread-self/schedstat`,
/// nanoseconds): wall time on a busy machine is mostly waiting.
fn thread_cpu_ms() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: f64 = text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
    ns / 1e6
}

/// Bytes this process has passed to `write()` and kin (`wchar` in
/// `/proc/self/io`); 0 where there is no such file.
fn bytes_written() -> u64 {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    text.lines().find_map(|line| line.strip_prefix("wchar:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

fn catch_up(engine: &Engine) -> anyhow::Result<()> {
    while engine.catch_up()?.changes > 0 {}
    Ok(())
}

/// One fix a second between the generator's fixes (which are seconds to
/// minutes apart), moving along the straight line with a few metres of
/// deterministic jitter; recording gaps (over 15 minutes) stay gaps.
fn densify<'a>(points: impl Iterator<Item = &'a polo_timeline::TrackPoint>) -> Vec<(Timestamp, Coord)> {
    let mut out: Vec<(Timestamp, Coord)> = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut jitter = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // ±2.5e-5° ≈ ±2.8 m.
        ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 5e-5
    };
    let mut previous: Option<&polo_timeline::TrackPoint> = None;
    for point in points {
        if let Some(a) = previous
            && point.time.0 - a.time.0 <= 15 * 60_000
            && (point.coord.lon() - a.coord.lon()).abs() < 180.0
        {
            let mut t = a.time.0 - a.time.0.rem_euclid(1000) + 1000;
            while t < point.time.0 {
                let f = (t - a.time.0) as f64 / (point.time.0 - a.time.0) as f64;
                let lat = a.coord.lat() + (point.coord.lat() - a.coord.lat()) * f + jitter();
                let lon = a.coord.lon() + (point.coord.lon() - a.coord.lon()) * f + jitter();
                if let Ok(coord) = Coord::from_degrees(lat, lon) {
                    out.push((Timestamp(t), coord));
                }
                t += 1000;
            }
        }
        if out.last().is_none_or(|(t, _)| *t < point.time) {
            out.push((point.time, point.coord));
        }
        previous = Some(point);
    }
    out
}
