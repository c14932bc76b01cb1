//! `polo-bench serve`: drives a running `polo serve` over loopback with
//! `wrk` (Debian package `wrk`) and prints throughput, latency percentiles
//! and memory next to the targets:
//!
//! * OwnTracks single-point POSTs with keep-alive, each a new point, all
//!   committed before the answer: ≥ 20,000 points/s, p99 ≤ 5 ms;
//! * Overland batches of 100 points: ≥ 200,000 points/s;
//! * idle RSS ≤ 20 MB, and RSS under load.
//!
//! After the load the server is stopped and the stored points are counted
//! with `polo export`, so "stored" means stored.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::run::{fresh_store, polo_binary};
use crate::steal::StealMeter;

const TARGET_OWNTRACKS_PER_S: f64 = 20_000.0;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_OVERLAND_PER_S: f64 = 200_000.0;
const TARGET_IDLE_RSS_MB: f64 = 20.0;

/// A running `polo serve`, killed when dropped. Shared by the benches that
/// measure over HTTP (`serve`, `map`, `restore`).
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[allow(clippy::cast_precision_loss)]
fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Starts the release `polo serve` on `data` on a free loopback port and
/// waits until it listens.
pub(crate) fn start(data: &Path) -> anyhow::Result<Server> {
    let mut child = Command::new(polo_binary()?)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--access-log", "off"])
        .env("POLO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.trim().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return Ok(Server { child, addr });
        }
    }
    bail!("polo serve exited before listening")
}

/// wrk script: OwnTracks location messages, one new `tst` per request.
const OWNTRACKS_LUA: &str = r#"
-- Each wrk thread takes every other second of one device's timeline, so
-- times arrive nearly in order, as from a real phone.
local counter = 0
local threads = {}
function setup(thread)
  thread:set("lane", #threads)
  table.insert(threads, thread)
end
function init(args)
  base = tonumber(args[1])
  auth = args[2]
end
function request()
  counter = counter + 1
  local body = string.format('{"_type":"location","lat":52.%06d,"lon":13.%06d,"tst":%d,"acc":8,"batt":77,"vel":4,"tid":"BP","_id":"%d"}',
    counter % 1000000, (counter * 7) % 1000000, base + counter * 2 + lane, counter * 2 + lane)
  return wrk.format("POST", "/api/owntracks", {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("PERCENTILES %f %f %f %f\n", latency:percentile(50) / 1000, latency:percentile(75) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
"#;

/// wrk script: Overland batches of 100 features.
const OVERLAND_LUA: &str = r#"
local counter = 0
local threads = {}
function setup(thread)
  thread:set("lane", #threads)
  table.insert(threads, thread)
end
function init(args)
  base = tonumber(args[1])
  auth = args[2]
end
function request()
  counter = counter + 1
  local parts = {}
  for j = 1, 100 do
    local t = base + (counter * 2 + lane) * 100 + j
    parts[j] = string.format('{"type":"Feature","geometry":{"type":"Point","coordinates":[13.%06d,52.%06d]},"properties":{"timestamp":"%s","speed":3,"horizontal_accuracy":10,"battery_level":0.5,"motion":["walking"]}}',
      (t * 7) % 1000000, t % 1000000, os.date("!%Y-%m-%dT%H:%M:%SZ", t))
  end
  local body = '{"locations":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/api/overland", {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("PERCENTILES %f %f %f %f\n", latency:percentile(50) / 1000, latency:percentile(75) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
"#;

struct WrkResult {
    requests: u64,
    non_2xx: u64,
    seconds: f64,
    percentiles_ms: [f64; 4],
    peak_rss_kb: u64,
    /// The hypervisor's share of CPU time during the load.
    steal: String,
}

fn wrk(
    work: &Path,
    server: &Server,
    script: &str,
    name: &str,
    args: &[String],
    seconds: u32,
    connections: u32,
) -> anyhow::Result<WrkResult> {
    let path = work.join(format!("{name}.lua"));
    std::fs::write(&path, script)?;
    let steal = StealMeter::start();
    let pid = server.child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        for _ in 0..(seconds * 20 + 40) {
            if let Some(kb) = status_kb(pid, "VmRSS:") {
                peak = peak.max(kb);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&path)
        .arg(format!("http://{}", server.addr))
        .arg("--")
        .args(args)
        .output()
        .context("cannot run wrk: install Debian's `wrk` package")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let seconds_run = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split("requests in ").nth(1))
        .and_then(|r| r.split('s').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(f64::from(seconds));
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut percentiles_ms = [0.0; 4];
    if let Some(line) = text.lines().find(|l| l.starts_with("PERCENTILES")) {
        for (slot, value) in percentiles_ms.iter_mut().zip(line.split_whitespace().skip(1)) {
            *slot = value.parse().unwrap_or(0.0);
        }
    }
    let peak_rss_kb = sampler.join().unwrap_or(0);
    Ok(WrkResult { requests, non_2xx, seconds: seconds_run, percentiles_ms, peak_rss_kb, steal: steal.describe() })
}

fn stored_points(data: &Path) -> anyhow::Result<u64> {
    let out = Command::new(polo_binary()?)
        .arg("--data-dir")
        .arg(data)
        .args(["export", "--user", "bench", "--format", "csv"])
        .output()?;
    Ok(out.stdout.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

pub fn serve(work: &Path, seconds: u32) -> anyhow::Result<()> {
    let data = fresh_store(work, "store-serve")?;
    let token_out = Command::new(polo_binary()?)
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "create", "--user", "bench", "--device", "phone"])
        .output()?;
    let token = String::from_utf8(token_out.stdout)?.trim().to_owned();
    if token.is_empty() {
        bail!("polo token create printed no token");
    }
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    // Synthetic timelines start 60 days ago and move one second per point.
    let base = (now_s - 60 * 86_400).to_string();
    let bearer = format!("Bearer {token}");

    let server = start(&data)?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_kb = status_kb(server.child.id(), "VmRSS:").unwrap_or(0);
    println!("idle RSS         {:.1} MB", mb(idle_kb));

    let own = wrk(work, &server, OWNTRACKS_LUA, "owntracks", &[base.clone(), bearer.clone()], seconds, 32)?;
    #[allow(clippy::cast_precision_loss)]
    let own_rate = (own.requests - own.non_2xx) as f64 / own.seconds;
    let [p50, p75, p99, p999] = own.percentiles_ms;
    println!(
        "owntracks        {own_rate:>9.0} points/s  ({} requests, {} non-2xx)  p50 {p50:.2} ms  p75 {p75:.2} ms  p99 {p99:.2} ms  p99.9 {p999:.2} ms  RSS under load {:.1} MB  ({})",
        own.requests,
        own.non_2xx,
        mb(own.peak_rss_kb),
        own.steal
    );
    let overland_base = (now_s - 50 * 86_400).to_string();
    let over = wrk(work, &server, OVERLAND_LUA, "overland", &[overland_base, bearer], seconds, 8)?;
    #[allow(clippy::cast_precision_loss)]
    let over_rate = ((over.requests - over.non_2xx) * 100) as f64 / over.seconds;
    let [o50, _, o99, o999] = over.percentiles_ms;
    println!(
        "overland x100    {over_rate:>9.0} points/s  ({} requests, {} non-2xx)  p50 {o50:.2} ms  p99 {o99:.2} ms  p99.9 {o999:.2} ms  RSS under load {:.1} MB  ({})",
        over.requests,
        over.non_2xx,
        mb(over.peak_rss_kb),
        over.steal
    );
    drop(server);
    let stored = stored_points(&data)?;
    let expected = (own.requests - own.non_2xx) + (over.requests - over.non_2xx) * 100;
    println!("stored           {stored} points (answered 2xx: {expected}; wrk may count requests cut off at the end)");
    println!();
    println!(
        "target owntracks ≥ {TARGET_OWNTRACKS_PER_S:.0} points/s   {}",
        verdict(own_rate >= TARGET_OWNTRACKS_PER_S)
    );
    println!("target owntracks p99 ≤ {TARGET_P99_MS} ms        {}", verdict(p99 <= TARGET_P99_MS));
    println!("target overland ≥ {TARGET_OVERLAND_PER_S:.0} points/s   {}", verdict(over_rate >= TARGET_OVERLAND_PER_S));
    println!("target idle RSS ≤ {TARGET_IDLE_RSS_MB} MB          {}", verdict(mb(idle_kb) <= TARGET_IDLE_RSS_MB));
    Ok(())
}
