//! `polo-bench serve`: drives a running `polo serve` over loopback with
//! `wrk` (Debian package `wrk`) and prints throughput, latency percentiles
//! and memory next to the targets:
//!
//! * OwnTracks single-point POSTs with keep-alive, each a new point, all
//!   committed before the answer: ≥ 20,000 points/s, p99 ≤ 5 ms. Two runs:
//!   one device fed by all 32 connections (its points arrive interleaved
//!   from two wrk threads, so most commits merge into older chunks), and 32
//!   phones, each its own user with its own token, each sending its own
//!   timeline in order (every commit touches several devices' chunks);
//! * server CPU time per request, which moves far less with the host's
//!   steal than throughput and latency do;
//! * the server's own latency percentiles, from its `/metrics` histogram:
//!   wrk runs on the same two cores, and when it is not scheduled its
//!   answers wait in the socket, which its latencies include;
//! * Overland batches of 100 points: ≥ 200,000 points/s;
//! * idle RSS ≤ 20 MB, and RSS under load.
//!
//! After the load the server is stopped and the stored points are counted
//! with `polo export`, so "stored" means stored.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::run::{Instance, add_user, fresh_store};
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

pub(crate) fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) `pid` has used so far.
#[allow(clippy::cast_precision_loss)]
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
}

#[allow(clippy::cast_precision_loss)]
fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Starts the release `polo serve` on the instance `at` on a free loopback port and
/// waits until it listens.
pub(crate) fn start(at: impl Into<Instance>) -> anyhow::Result<Server> {
    start_with(at, &[])
}

/// [`start`] with more `polo serve` flags.
pub(crate) fn start_with(at: impl Into<Instance>, extra: &[&str]) -> anyhow::Result<Server> {
    let mut child = at
        .into()
        .polo()?
        .args(["serve", "--listen", "127.0.0.1:0", "--access-log", "off"])
        .args(extra)
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

/// What every wrk script starts with: a request counter, and each wrk
/// thread's number as `lane`.
const LUA_PRELUDE: &str = r#"
local counter = 0
local threads = {}
function setup(thread)
  thread:set("lane", #threads)
  table.insert(threads, thread)
end
"#;

/// What every wrk script ends with: the percentiles, on a line the bench reads.
const LUA_PERCENTILES: &str = r#"
function done(summary, latency, requests)
  io.write(string.format("PERCENTILES %f %f %f %f\n", latency:percentile(50) / 1000, latency:percentile(75) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
"#;

/// wrk script: OwnTracks location messages, one new `tst` per request.
pub(crate) const OWNTRACKS_LUA: &str = r#"
-- Each wrk thread takes every other second of one device's timeline, so
-- times arrive nearly in order, as from a real phone.
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
"#;

/// wrk script: OwnTracks location messages from many phones, each its own
/// user with its own device token. Each wrk thread drives half of them in
/// turn, and each phone's `tst` moves one second per message, so every
/// device's points arrive in order, as from real phones.
pub(crate) const OWNTRACKS_PHONES_LUA: &str = r#"
function init(args)
  base = tonumber(args[1])
  auths = {}
  for i = 2, #args do auths[#auths + 1] = args[i] end
  per = math.floor(#auths / 2)
end
function request()
  local phone = lane * per + counter % per
  local step = math.floor(counter / per)
  counter = counter + 1
  local body = string.format('{"_type":"location","lat":52.%06d,"lon":13.%06d,"tst":%d,"acc":8,"batt":77,"vel":4,"tid":"P%d","_id":"%d"}',
    step % 1000000, (step * 7) % 1000000, base + step, phone, step)
  return wrk.format("POST", "/api/owntracks", {["Authorization"] = auths[phone + 1], ["Content-Type"] = "application/json"}, body)
end
"#;

/// Phones (users with one device each) in the many-phones OwnTracks run:
/// one per keep-alive connection.
pub(crate) const PHONES: usize = 32;

/// wrk script: Overland batches of 100 features.
const OVERLAND_LUA: &str = r#"
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
"#;

pub(crate) struct WrkResult {
    pub(crate) requests: u64,
    pub(crate) non_2xx: u64,
    pub(crate) seconds: f64,
    pub(crate) percentiles_ms: [f64; 4],
    pub(crate) peak_rss_kb: u64,
    /// The hypervisor's share of CPU time during the load.
    pub(crate) steal: String,
    /// CPU time the server used during the load, in seconds.
    server_cpu_s: f64,
}

impl WrkResult {
    /// Server CPU time per answered request, in microseconds: unlike
    /// throughput, it hardly moves with the host's steal.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu_s * 1e6 / (self.requests.max(1) as f64)
    }
}

/// One wrk process's share of a load: the server it drives, the script's
/// arguments and its keep-alive connections.
pub(crate) struct Load<'a> {
    pub(crate) server: &'a Server,
    pub(crate) args: Vec<String>,
    pub(crate) connections: u32,
}

pub(crate) fn wrk(
    work: &Path,
    server: &Server,
    script: &str,
    name: &str,
    args: &[String],
    seconds: u32,
    connections: u32,
) -> anyhow::Result<WrkResult> {
    let load = Load { server, args: args.to_vec(), connections };
    let mut results = wrk_all(work, script, name, &[load], seconds)?;
    results.pop().context("wrk_all returned no result")
}

/// Runs one wrk (two threads) per load, all at once, and returns each one's
/// result, with the RSS and CPU time of the server it drove.
pub(crate) fn wrk_all(
    work: &Path,
    script: &str,
    name: &str,
    loads: &[Load<'_>],
    seconds: u32,
) -> anyhow::Result<Vec<WrkResult>> {
    let path = work.join(format!("{name}.lua"));
    std::fs::write(&path, format!("{LUA_PRELUDE}{script}{LUA_PERCENTILES}"))?;
    let steal = StealMeter::start();
    let mut running = Vec::with_capacity(loads.len());
    for load in loads {
        let pid = load.server.child.id();
        let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
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
        let child = Command::new("wrk")
            .args(["-t2", &format!("-c{}", load.connections), &format!("-d{seconds}s"), "--latency", "-s"])
            .arg(&path)
            .arg(format!("http://{}", load.server.addr))
            .arg("--")
            .args(&load.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run wrk: install Debian's `wrk` package")?;
        running.push((pid, cpu_before, sampler, child));
    }
    let mut results = Vec::with_capacity(running.len());
    for (pid, cpu_before, sampler, child) in running {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        }
        let (requests, non_2xx, seconds_run, percentiles_ms) = parse_wrk(&text, f64::from(seconds));
        let peak_rss_kb = sampler.join().unwrap_or(0);
        let server_cpu_s = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
        results.push(WrkResult {
            requests,
            non_2xx,
            seconds: seconds_run,
            percentiles_ms,
            peak_rss_kb,
            steal: steal.describe(),
            server_cpu_s,
        });
    }
    Ok(results)
}

/// Requests, non-2xx answers, seconds and the percentiles line of wrk's output.
fn parse_wrk(text: &str, seconds: f64) -> (u64, u64, f64, [f64; 4]) {
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
        .unwrap_or(seconds);
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
    (requests, non_2xx, seconds_run, percentiles_ms)
}

/// Cumulative bucket counts `(upper bound in seconds, count)` of the
/// server's latency histogram for the 2xx answers of `route`, read from
/// its `/metrics`.
pub(crate) fn server_histogram(server: &Server, route: &str) -> anyhow::Result<Vec<(f64, u64)>> {
    let mut stream = std::net::TcpStream::connect(&server.addr)?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", server.addr)?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(parse_histogram(&text, route))
}

fn parse_histogram(metrics: &str, route: &str) -> Vec<(f64, u64)> {
    let route = format!("route=\"{route}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("http_request_duration_seconds_bucket{"))
        .filter(|l| l.contains(&route) && l.contains("status=\"2xx\""))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The bucket-wise sum of two snapshots of the same histogram taken on two
/// servers: the histogram of both together.
pub(crate) fn merge_histograms(a: &[(f64, u64)], b: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut merged: Vec<(f64, u64)> = a.to_vec();
    for &(le, n) in b {
        match merged.iter_mut().find(|m| m.0 == le) {
            Some(slot) => slot.1 += n,
            None => merged.push((le, n)),
        }
    }
    merged.sort_by(|x, y| x.0.total_cmp(&y.0));
    merged
}

/// The upper bounds (ms) of the buckets holding p50, p99 and p99.9 of the
/// answers counted between two snapshots of one histogram.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn server_percentiles(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<[f64; 3]> {
    let counts: Vec<(f64, u64)> =
        after.iter().map(|&(le, n)| (le, n - before.iter().find(|b| b.0 == le).map_or(0, |b| b.1))).collect();
    let total = counts.last()?.1;
    let bound = |q: f64| counts.iter().find(|&&(_, n)| n as f64 >= q * total as f64).map(|&(le, _)| le * 1e3);
    Some([bound(0.5)?, bound(0.99)?, bound(0.999)?])
}

pub(crate) fn print_server_side(before: &[(f64, u64)], after: &[(f64, u64)]) {
    if let Some([p50, p99, p999]) = server_percentiles(before, after) {
        println!(
            "  inside polo          p50 ≤ {p50:.2} ms  p99 ≤ {p99:.2} ms  p99.9 ≤ {p999:.2} ms  (its /metrics histogram's bucket bounds)"
        );
    }
}

/// The points `user` has in `at`, counted with `polo export`.
pub(crate) fn stored_points(at: impl Into<Instance>, user: &str) -> anyhow::Result<u64> {
    let out = at.into().polo()?.args(["export", "--user", user, "--format", "csv"]).output()?;
    Ok(out.stdout.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64)
}

/// `polo token create` for `user`'s `device`: the `Bearer` header value.
pub(crate) fn bearer(at: impl Into<Instance>, user: &str, device: &str) -> anyhow::Result<String> {
    let out = at.into().polo()?.args(["token", "create", "--user", user, "--device", device]).output()?;
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    if token.is_empty() {
        bail!("polo token create printed no token: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(format!("Bearer {token}"))
}

pub(crate) fn phone_user(i: usize) -> String {
    format!("phone-{i:02}")
}

/// Adds the many-phones users, each with one device token.
pub(crate) fn phone_tokens(at: impl Into<Instance>) -> anyhow::Result<Vec<String>> {
    let at = at.into();
    (0..PHONES)
        .map(|i| {
            let user = phone_user(i);
            add_user(&at, &user)?;
            bearer(&at, &user, "phone")
        })
        .collect()
}

pub(crate) fn print_owntracks(label: &str, run: &WrkResult) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let rate = (run.requests - run.non_2xx) as f64 / run.seconds;
    let [p50, p75, p99, p999] = run.percentiles_ms;
    println!(
        "{label:<16} {rate:>9.0} points/s  ({} requests, {} non-2xx)  p50 {p50:.2} ms  p75 {p75:.2} ms  p99 {p99:.2} ms  p99.9 {p999:.2} ms  server CPU {:.1} µs/request  RSS under load {:.1} MB  ({})",
        run.requests,
        run.non_2xx,
        run.cpu_us_per_request(),
        mb(run.peak_rss_kb),
        run.steal
    );
    rate
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

pub fn serve(work: &Path, seconds: u32) -> anyhow::Result<()> {
    let data = fresh_store(work, "store-serve")?;
    let bearer_phone = bearer(&data, "bench", "phone")?;
    let phones = phone_tokens(&data)?;
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    // Synthetic timelines start 60 days ago and move one second per point.
    let base = (now_s - 60 * 86_400).to_string();

    let server = start(&data)?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_kb = status_kb(server.child.id(), "VmRSS:").unwrap_or(0);
    println!("idle RSS         {:.1} MB", mb(idle_kb));

    // One device fed by all 32 connections, its two wrk threads' times interleaved.
    let histogram = |route| server_histogram(&server, route);
    let before = histogram("/api/owntracks")?;
    let own = wrk(work, &server, OWNTRACKS_LUA, "owntracks", &[base.clone(), bearer_phone.clone()], seconds, 32)?;
    let own_rate = print_owntracks("owntracks", &own);
    let after = histogram("/api/owntracks")?;
    print_server_side(&before, &after);
    let mut phone_args = vec![base];
    phone_args.extend(phones.iter().cloned());
    let many = wrk(work, &server, OWNTRACKS_PHONES_LUA, "owntracks-phones", &phone_args, seconds, 32)?;
    let many_rate = print_owntracks(&format!("owntracks {PHONES} ph"), &many);
    print_server_side(&after, &histogram("/api/owntracks")?);
    let overland_base = (now_s - 50 * 86_400).to_string();
    let before = histogram("/api/overland")?;
    let over = wrk(work, &server, OVERLAND_LUA, "overland", &[overland_base, bearer_phone], seconds, 8)?;
    #[allow(clippy::cast_precision_loss)]
    let over_rate = ((over.requests - over.non_2xx) * 100) as f64 / over.seconds;
    let [o50, _, o99, o999] = over.percentiles_ms;
    println!(
        "overland x100    {over_rate:>9.0} points/s  ({} requests, {} non-2xx)  p50 {o50:.2} ms  p99 {o99:.2} ms  p99.9 {o999:.2} ms  server CPU {:.1} µs/point  RSS under load {:.1} MB  ({})",
        over.requests,
        over.non_2xx,
        over.cpu_us_per_request() / 100.0,
        mb(over.peak_rss_kb),
        over.steal
    );
    print_server_side(&before, &histogram("/api/overland")?);
    drop(server);
    let mut stored = stored_points(&data, "bench")?;
    for i in 0..PHONES {
        stored += stored_points(&data, &phone_user(i))?;
    }
    let expected = (own.requests - own.non_2xx) + (many.requests - many.non_2xx) + (over.requests - over.non_2xx) * 100;
    println!("stored           {stored} points (answered 2xx: {expected}; wrk may count requests cut off at the end)");
    println!();
    let [_, _, p99, _] = own.percentiles_ms;
    let [_, _, many_p99, _] = many.percentiles_ms;
    println!(
        "target owntracks ≥ {TARGET_OWNTRACKS_PER_S:.0} points/s   one device {}, {PHONES} phones {}",
        verdict(own_rate >= TARGET_OWNTRACKS_PER_S),
        verdict(many_rate >= TARGET_OWNTRACKS_PER_S)
    );
    println!(
        "target owntracks p99 ≤ {TARGET_P99_MS} ms        one device {}, {PHONES} phones {}",
        verdict(p99 <= TARGET_P99_MS),
        verdict(many_p99 <= TARGET_P99_MS)
    );
    println!("target overland ≥ {TARGET_OVERLAND_PER_S:.0} points/s   {}", verdict(over_rate >= TARGET_OVERLAND_PER_S));
    println!("target idle RSS ≤ {TARGET_IDLE_RSS_MB} MB          {}", verdict(mb(idle_kb) <= TARGET_IDLE_RSS_MB));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.001\",method=\"POST\",route=\"/api/owntracks\",status=\"2xx\"} 10
http_request_duration_seconds_bucket{le=\"0.002\",method=\"POST\",route=\"/api/owntracks\",status=\"2xx\"} 1095
http_request_duration_seconds_bucket{le=\"0.004\",method=\"POST\",route=\"/api/owntracks\",status=\"2xx\"} 1109
http_request_duration_seconds_bucket{le=\"+Inf\",method=\"POST\",route=\"/api/owntracks\",status=\"2xx\"} 1110
http_request_duration_seconds_bucket{le=\"0.001\",method=\"POST\",route=\"/api/owntracks\",status=\"4xx\"} 7
http_request_duration_seconds_bucket{le=\"0.001\",method=\"POST\",route=\"/api/overland\",status=\"2xx\"} 3
";

    #[test]
    fn the_route_s_2xx_buckets_are_read() {
        let buckets = parse_histogram(METRICS, "/api/owntracks");
        assert_eq!(buckets, vec![(0.001, 10), (0.002, 1095), (0.004, 1109), (f64::INFINITY, 1110)]);
        assert_eq!(parse_histogram(METRICS, "/api/overland"), vec![(0.001, 3)]);
    }

    #[test]
    fn histograms_of_two_servers_add_up_bucket_by_bucket() {
        let a = [(0.001, 10), (0.002, 20), (f64::INFINITY, 21)];
        let b = [(0.001, 1), (0.002, 5), (f64::INFINITY, 30)];
        assert_eq!(merge_histograms(&a, &b), vec![(0.001, 11), (0.002, 25), (f64::INFINITY, 51)]);
        assert_eq!(merge_histograms(&[], &b), b.to_vec());
    }

    #[test]
    fn percentiles_count_only_what_was_answered_between_the_snapshots() {
        let before = [(0.001, 10), (0.002, 95), (0.004, 109), (f64::INFINITY, 110)];
        let after = parse_histogram(METRICS, "/api/owntracks");
        // 1,000 answers in between: 0 under 1 ms, 1,000 under 2 ms.
        assert_eq!(server_percentiles(&before, &after), Some([2.0, 2.0, 2.0]));
        // From nothing: 1,110 answers, 1,095 of them under 2 ms (98.6%), 1,109 under 4 ms.
        assert_eq!(server_percentiles(&[], &after), Some([2.0, 4.0, 4.0]));
        assert_eq!(server_percentiles(&[], &[]), None);
    }
}
