//! `polo-bench web`: the front-end performance check.
//!
//! 1. Builds (or reuses, unless `--rebuild`) a store with a generated user of
//!    `--points` points (default 5 million) within ten years: polo-timeline's
//!    synthetic phone history for two devices ("phone", "tablet": two people
//!    in one city) over 3 653 days, and a third ("watch") over as many days
//!    as the rest needs; then derives everything (stays, places, map levels)
//!    with the timeline engine, as `polo serve` would in the background.
//! 2. Starts the release `polo serve` on it and runs `web/e2e/perf.mjs` in
//!    headless Chromium (playwright-core, `/usr/bin/chromium` or
//!    `POLO_CHROMIUM`): the map explorer opened on the last ten years, in a
//!    fresh browser context per run.
//! 3. Prints per run the time to first map render (navigation start to the
//!    painted frame), the overview request, the JS heap after a GC and the
//!    longest long task (PerformanceObserver `longtask`, over the load and
//!    over zooming, panning and the heatmap), and PASS/MISS against the
//!    targets: **≤ 2 s to render, no long task over 200 ms** (every run).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use polo_derived::Engine;
use polo_domain::{Fix, SourceFormat};
use polo_store::Store;
use polo_store_sqlite::SqliteStore;
use polo_timeline::synthetic::SyntheticTrack;

use crate::run::fresh_store;

const TARGET_RENDER_MS: f64 = 2000.0;
const TARGET_LONG_TASK_MS: f64 = 200.0;
const TEN_YEARS_DAYS: u32 = 3653;
const SEED: u64 = 2024;
const PASSWORD: &str = "bench-password";

/// Seeds whose synthetic person lives in the city of [`SEED`].
fn seeds(n: usize) -> Vec<u64> {
    let city = SyntheticTrack::new(SEED).city;
    let mut seeds = vec![SEED];
    let mut seed = SEED;
    while seeds.len() < n {
        seed += 1;
        if SyntheticTrack::new(seed).city == city {
            seeds.push(seed);
        }
    }
    seeds
}

fn build(work: &Path, points: u64, rebuild: bool) -> anyhow::Result<PathBuf> {
    let name = format!("web-source-{points}");
    let marker = work.join(&name).join("bench-source.json");
    if !rebuild && marker.is_file() {
        eprintln!("reusing {} (pass --rebuild for a new one)", work.join(&name).display());
        return Ok(work.join(name));
    }
    let data = fresh_store(work, &name)?;
    let store = Arc::new(SqliteStore::open(data.join("polo.sqlite"))?);
    let user = store.user_by_name("bench")?.context("fresh_store made no user bench")?.id;
    let started = Instant::now();
    let mut stored = 0u64;
    for (index, (device, seed)) in ["phone", "tablet", "watch"].into_iter().zip(seeds(3)).enumerate() {
        if stored >= points {
            break;
        }
        let id = store.ensure_device(user, device)?.id;
        let mut track = SyntheticTrack::new(seed);
        let mut days = 0;
        // The first two devices cover ten years; the last one fills up to the target.
        while days < TEN_YEARS_DAYS && (index < 2 || stored < points) {
            let step = (TEN_YEARS_DAYS - days).min(30);
            days += step;
            track = track.days(step);
            let mut fixes: Vec<Fix> = std::mem::take(&mut track.points)
                .iter()
                .map(|p| {
                    let mut fix = Fix::new(p.time, p.coord, SourceFormat::Unknown);
                    fix.utc_offset_minutes = p.utc_offset_minutes;
                    fix
                })
                .collect();
            if index == 2 {
                #[allow(clippy::cast_possible_truncation)]
                fixes.truncate(points.saturating_sub(stored) as usize);
            }
            stored += store.insert_points(user, id, &fixes)?.added;
        }
        eprintln!("{device}: {days} days, {stored} points in total so far");
    }
    println!("input            {stored} points in ten years ({:.1} s to store)", started.elapsed().as_secs_f64());
    let derive = Instant::now();
    let engine = Engine::new(store.clone() as Arc<dyn Store>, None);
    while engine.catch_up()?.changes > 0 {}
    println!("derived          stays, places, statistics and map levels in {:.1} s", derive.elapsed().as_secs_f64());
    drop(engine);
    drop(store);
    std::fs::write(&marker, serde_json::json!({ "points": stored }).to_string())?;
    Ok(data)
}

/// The phase (load, zoom in, pan, …) of a run's longest long task.
fn longest_phase(run: &serde_json::Value) -> String {
    run["longTaskList"]
        .as_array()
        .into_iter()
        .flatten()
        .max_by(|a, b| a["duration"].as_f64().unwrap_or(0.0).total_cmp(&b["duration"].as_f64().unwrap_or(0.0)))
        .and_then(|task| task["phase"].as_str())
        .unwrap_or("none")
        .to_owned()
}

fn figure(run: &serde_json::Value, key: &str) -> f64 {
    run[key].as_f64().unwrap_or(f64::NAN)
}

pub fn web(work: &Path, points: u64, runs: u32, rebuild: bool) -> anyhow::Result<()> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    if !web.join("node_modules/playwright-core/package.json").is_file() {
        bail!(
            "the web app's npm packages are missing: run `npm --prefix {} ci` (or build polo, which does)",
            web.display()
        );
    }
    let data = build(work, points, rebuild)?;
    // The login the browser uses: the bench user's password from fresh_store.
    let server = crate::serve::start(&data)?;
    let base = format!("http://{}", server.addr);
    let shots = work.join("web-screenshots");
    std::fs::create_dir_all(&shots)?;
    eprintln!("running {runs} browser runs against {base} …");
    let output = Command::new("node")
        .arg(web.join("e2e/perf.mjs"))
        .current_dir(&web)
        .env("POLO_URL", &base)
        .env("POLO_USER", "bench")
        .env("POLO_PASSWORD", PASSWORD)
        .env("POLO_RUNS", runs.to_string())
        .env("POLO_SCREENSHOTS", &shots)
        .output()
        .context("cannot run node (Node.js 18 or newer is needed)")?;
    if !output.status.success() {
        bail!(
            "the browser run failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8(output.stdout)?;
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .with_context(|| format!("perf.mjs printed {stdout}"))?;
    let results = result["runs"].as_array().context("no runs")?;
    println!();
    println!("map explorer, last ten years, Chromium headless, 1440×900 (run 1 is a cold load):");
    let (mut worst_render, mut worst_task) = (0.0f64, 0.0f64);
    let mut errors = Vec::new();
    for run in results {
        let render = figure(run, "firstRenderMs");
        let task = figure(run, "longestTaskMs");
        worst_render = worst_render.max(render);
        worst_task = worst_task.max(task);
        println!(
            "run {}  first map render {render:6.0} ms  (overview request {:.0} ms, {:.0} kB; {} points in {} lines; {:.0} pixels drawn)  JS heap {:.1} MB used / {:.1} MB  longest task {task:.0} ms ({}; {} long tasks)",
            run["run"],
            figure(run, "overviewRequestMs"),
            figure(run, "overviewBytes") / 1e3,
            run["points"],
            run["segments"],
            figure(run, "pixels"),
            figure(run, "jsHeapUsedMB"),
            figure(run, "jsHeapTotalMB"),
            longest_phase(run),
            run["longTasks"],
        );
        if figure(run, "pixels") < 1000.0 {
            errors.push(format!("run {}: the map's canvas is (nearly) empty", run["run"]));
        }
        for error in run["errors"].as_array().into_iter().flatten() {
            errors.push(format!("run {}: console error {error}", run["run"]));
        }
    }
    println!("screenshots      {}", shots.display());
    // The machine is shared: long tasks are wall-clock time, so say how busy it was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        println!(
            "machine          load average {} on {cores} cores during the runs",
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
    let render_ok = worst_render <= TARGET_RENDER_MS;
    let task_ok = worst_task <= TARGET_LONG_TASK_MS;
    println!();
    println!(
        "target first map render ≤ {TARGET_RENDER_MS:.0} ms (worst run {worst_render:.0} ms)   {}",
        verdict(render_ok)
    );
    println!("target no long task > {TARGET_LONG_TASK_MS:.0} ms (longest {worst_task:.0} ms)   {}", verdict(task_ok));
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    if !(render_ok && task_ok) {
        bail!("the front end missed its targets");
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}
