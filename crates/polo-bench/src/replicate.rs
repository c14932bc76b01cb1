//! `polo-bench replicate`: replication between two `polo serve` over
//! loopback, against the targets of the replication issue.
//!
//! * **Initial sync**: the source is the `polo-bench restore` instance (N
//!   points, default 10 million, timeline derived; built once and reused).
//!   The target is an empty instance that is serving (its timeline worker
//!   derives what arrives, as in production). Timed: `polo replicate` from
//!   start to "done", and the points per second; target ≥ 200 000.
//! * **Steady-state lag**: a continuous `polo replicate` follows the
//!   source while a writer posts 5 000 points/s (500 every 100 ms) to the
//!   source's `/api/v1/points`. A monitor polls the target's last location
//!   every 20 ms; each batch's lag is from just before its POST to the
//!   first poll that shows it on the target. Reported: p50, p99, max;
//!   target p99 ≤ 2 s.
//!
//! Exits non-zero when a target is missed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::restore::{build_source, get, post_json};
use crate::run::polo_binary;

/// Initial sync target, points per second.
const SYNC_TARGET: f64 = 200_000.0;
/// Steady-state lag target, p99 seconds.
const LAG_TARGET: f64 = 2.0;
/// Live ingest rate of the lag measurement, points per second.
const LIVE_RATE: usize = 5_000;

fn polo(data: &Path) -> anyhow::Result<Command> {
    let mut command = Command::new(polo_binary()?);
    command.arg("--data-dir").arg(data).env("POLO_LOG", "warn");
    Ok(command)
}

fn replication_token(data: &Path) -> anyhow::Result<String> {
    let out = polo(data)?.args(["replication-token", "create", "--label", "bench"]).output()?;
    if !out.status.success() {
        bail!("replication-token create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn replicate(work: &Path, points: usize, rebuild: bool, lag_seconds: u64) -> anyhow::Result<()> {
    let source = build_source(work, points, rebuild)?;
    // The synthetic history repeats a few timestamps, which the store keeps once.
    let stored = {
        use polo_store::Store as _;
        let store = polo_store_sqlite::SqliteStore::open(source.data.join("polo.sqlite"))?;
        let user = store.user_by_name("bench")?.context("no user bench")?.id;
        store.count_points(user)?
    };
    let source_token = replication_token(&source.data)?;
    let target_dir = work.join("replicate-target");
    if target_dir.exists() {
        std::fs::remove_dir_all(&target_dir)?;
    }
    std::fs::create_dir_all(&target_dir)?;
    let target_token = replication_token(&target_dir)?;
    let a = crate::serve::start(&source.data)?;
    let b = crate::serve::start(&target_dir)?;
    let replicate = |extra: &[&str]| -> anyhow::Result<Command> {
        let mut c = polo(&target_dir)?;
        c.args(["replicate", "--source", &format!("http://{}", a.addr), "--target", &format!("http://{}", b.addr)])
            .args(extra)
            .env("POLO_SOURCE_TOKEN", &source_token)
            .env("POLO_TARGET_TOKEN", &target_token);
        Ok(c)
    };

    // --- initial sync
    eprintln!("initial sync of {stored} points over loopback …");
    let started = Instant::now();
    let out = replicate(&["--json"])?.stderr(Stdio::inherit()).output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("polo replicate failed");
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).context("polo replicate printed no JSON")?;
    let applied = summary[0]["applied_points"].as_u64().unwrap_or(0);
    if applied != stored {
        bail!("the target applied {applied} points, not the source's {stored}: {summary}");
    }
    let rate = stored as f64 / seconds;

    // --- steady-state lag
    let device_token = {
        let out = polo(&source.data)?.args(["token", "create", "--user", "bench", "--device", "live"]).output()?;
        format!("Bearer {}", String::from_utf8(out.stdout)?.trim())
    };
    let mut follower = replicate(&["--continuous"])?.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // Batches in flight: (time of the batch's last point, when its POST started).
    let sent: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (addr, sent, lags, done) = (b.addr.clone(), sent.clone(), lags.clone(), done.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let auth = format!("Basic {}", base64_basic("bench", "bench-password"));
            while !done.load(Ordering::Relaxed) || !sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.is_empty() {
                let (status, body) = get(&addr, "/api/v1/locations/last", Some(&auth))?;
                if status == 200 {
                    let v: serde_json::Value = serde_json::from_str(&body)?;
                    let latest = v["locations"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|l| l["device"] == "live")
                        .filter_map(|l| l["time"].as_str().and_then(parse_ms))
                        .max();
                    if let Some(latest) = latest {
                        let now = Instant::now();
                        let mut sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        let mut lags = lags.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        sent.retain(|(last, at)| {
                            let arrived = *last <= latest;
                            if arrived {
                                lags.push(now.duration_since(*at).as_secs_f64());
                            }
                            !arrived
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        })
    };
    eprintln!("steady state: {LIVE_RATE} points/s for {lag_seconds} s …");
    let batch = LIVE_RATE / 10;
    // An hour ago, 10 ms apart: after the synthetic history, and never in the future.
    let t0: i64 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64 - 3_600_000;
    let ingest_started = Instant::now();
    let mut k = 0i64;
    while ingest_started.elapsed() < Duration::from_secs(lag_seconds) {
        let tick = ingest_started + Duration::from_millis(100 * k as u64);
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let first = t0 + k * batch as i64 * 10;
        let body: Vec<serde_json::Value> = (0..batch as i64)
            .map(|i| {
                let ms = first + i * 10;
                serde_json::json!({"time": polo_domain::Timestamp(ms).to_string(), "lat": 52.5 + (i as f64) * 1e-5, "lon": 13.4})
            })
            .collect();
        let last = first + (batch as i64 - 1) * 10;
        sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((last, Instant::now()));
        let (status, answer) =
            post_json(&a.addr, "/api/v1/points", &device_token, &serde_json::Value::Array(body).to_string())?;
        if !(200..300).contains(&status) || !answer.contains("\"rejected\":0") {
            bail!("posting live points answered {status}: {answer}");
        }
        k += 1;
    }
    let posted = ingest_started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let waited = Instant::now();
    while !sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.is_empty() {
        if waited.elapsed() > Duration::from_secs(30) {
            let pending = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len();
            let (status, body) = get(
                &b.addr,
                "/api/v1/locations/last",
                Some(&format!("Basic {}", base64_basic("bench", "bench-password"))),
            )?;
            bail!(
                "{pending} live batches did not reach the target within 30 s of the last POST; its last locations: \
                 {status} {body}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    monitor.join().map_err(|_| anyhow::anyhow!("the monitor panicked"))??;
    let _ = follower.kill();
    let _ = follower.wait();
    let mut lags = lags.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    lags.sort_by(f64::total_cmp);
    let (p50, p99, max) = (percentile(&lags, 50.0), percentile(&lags, 99.0), lags.last().copied().unwrap_or(f64::NAN));
    let live_rate = (k as usize * batch) as f64 / posted;

    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let profile = if cfg!(debug_assertions) { "debug build: figures are not meaningful" } else { "release build" };
    println!("replication over loopback ({profile}, this machine)");
    println!(
        "  initial sync: {stored} points in {seconds:.2} s = {rate:.0} points/s (target >= {SYNC_TARGET:.0}: {}, {:.2}x)",
        verdict(rate >= SYNC_TARGET),
        rate / SYNC_TARGET
    );
    println!(
        "  steady-state lag at {live_rate:.0} points/s for {posted:.0} s, {} batches: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms \
         (target p99 <= {LAG_TARGET} s: {})",
        lags.len(),
        p50 * 1000.0,
        p99 * 1000.0,
        max * 1000.0,
        verdict(p99 <= LAG_TARGET)
    );
    if rate < SYNC_TARGET || p99 > LAG_TARGET {
        bail!("a replication target was missed");
    }
    Ok(())
}

fn parse_ms(text: &str) -> Option<i64> {
    polo_domain::time::parse_timestamp(text).ok().map(|t| t.time.0)
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}
