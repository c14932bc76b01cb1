//! `polo-bench zones-live`: OwnTracks live ingest while every user has 100
//! zones and a webhook subscription, against the issue's target (≥ 20,000
//! points/s, p99 ≤ 5 ms), then the webhook sender's delivery throughput.
//!
//! Why not `polo-bench serve`'s load with zones added: its phones replay
//! history (a second of their timeline per request, days ago), and history
//! is evaluated as such — late points, past events, no webhook calls. Live
//! means fixes stamped now, so each device may send one new point a second;
//! 20,000 points/s therefore takes 20,000 and more devices. The bench makes
//! `--users` users (default 2,500), each with `--devices` phones (default
//! 10, each with its own device token), 100 circular zones (250,000 on the
//! instance; dwell 0, one confirming fix, no cooldown, so events fire at
//! once) and one webhook subscription to a receiver inside the bench that
//! answers 200 at once. wrk sends each device in turn a fix stamped with the
//! current second, alternately inside one of its owner's zones and 6 km
//! away (every 10 s of its clock), so enters and leaves keep firing.
//!
//! The server runs with `--zone-reorder-window-ms 1000` so that evaluation
//! and delivery run during the measured load (the default 30 s window would
//! start them only after a short run). After the load the bench keeps
//! counting what the receiver gets for `--drain-seconds`: webhook deliveries
//! per second while the sender works through its outbox.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use polo_store::{Store, TokenGrant};
use polo_store_sqlite::SqliteStore;
use polo_zones::webhook::{Preset, SubscriptionSpec};
use polo_zones::{Rules, Shape, ZoneSpec};
use sha2::{Digest, Sha256};

use crate::run::fresh_store;
use crate::serve::{print_owntracks, print_server_side, server_histogram, start_with, wrk};

const TARGET_POINTS_PER_S: f64 = 20_000.0;
const TARGET_P99_MS: f64 = 5.0;
/// Zones per user, as the issue asks.
const ZONES_PER_USER: usize = 100;
/// Users per row of the grid their homes lie on.
const GRID_COLUMNS: usize = 50;

/// wrk script: device `d` (of `users × per` devices, token `polo_zoneslive_<d>`)
/// in turn, a fix stamped with the current second: inside its zone or 6 km
/// north of it, changing every 10 s of the device's own (shifted) clock.
const ZONES_LIVE_LUA: &str = r#"
function init(args)
  users = tonumber(args[1])
  per = tonumber(args[2])
  columns = tonumber(args[3])
  total = users * per
end
function request()
  local d = (counter * 2 + lane) % total
  counter = counter + 1
  local u = math.floor(d / per)
  local j = d % per
  local k = (j * 10) % 100
  local t = os.time()
  local lat = 47 + math.floor(u / columns) * 0.1 + math.floor(k / 10) * 0.005
  local lon = 6 + (u % columns) * 0.15 + (k % 10) * 0.008
  if math.floor((t + d) / 10) % 2 == 1 then lat = lat + 0.06 end
  local body = string.format('{"_type":"location","lat":%.6f,"lon":%.6f,"tst":%d,"acc":8,"batt":77,"tid":"ZL"}', lat, lon, t)
  return wrk.format("POST", "/api/owntracks",
    {["Authorization"] = string.format("Bearer polo_zoneslive_%07d", d), ["Content-Type"] = "application/json"}, body)
end
"#;

/// The centre of user `u`'s zone `k`, as the wrk script computes it.
#[allow(clippy::cast_precision_loss)]
fn zone_center(u: usize, k: usize) -> [f64; 2] {
    let lat = 47.0 + (u / GRID_COLUMNS) as f64 * 0.1 + (k / 10) as f64 * 0.005;
    let lon = 6.0 + (u % GRID_COLUMNS) as f64 * 0.15 + (k % 10) as f64 * 0.008;
    [lat, lon]
}

/// An HTTP/1.1 receiver on loopback that answers every request 200 at once
/// (keep-alive) and counts them.
struct Receiver {
    url: String,
    count: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let _ = answer(stream, &counted);
                });
            }
        });
        Ok(Self { url, count })
    }

    fn received(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Answers the requests of one connection until it closes.
fn answer(stream: TcpStream, count: &AtomicU64) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        count.fetch_add(1, Ordering::Relaxed);
        writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Users with their devices, tokens, zones and a subscription each, written
/// straight into the store before the server starts.
fn populate(data: &Path, users: usize, per: usize, url: &str) -> anyhow::Result<()> {
    let store = SqliteStore::open(data.join("polo.sqlite"))?;
    let now = polo_store::clock::now();
    let rules = Rules { dwell_s: 0, exit_confirmations: 1, cooldown_s: 0, ..Rules::default() };
    let hook =
        SubscriptionSpec { url: url.to_owned(), preset: Preset::Json, kinds: vec![], zones: vec![], disabled: false };
    let hook = serde_json::to_string(&hook)?;
    for u in 0..users {
        // Nobody logs in with a password here: an unusable hash.
        let user = store.create_user(&format!("zl-{u:05}"), "!", false)?;
        for k in 0..ZONES_PER_USER {
            let shape = Shape::Circle { center: zone_center(u, k), radius_m: 100.0 };
            let spec = ZoneSpec { name: format!("zone {k}"), shape, rules, origin: None };
            store.create_zone(user.id, &spec.to_body(), now)?;
        }
        store.create_webhook(user.id, &hook, "bench-secret", now)?;
        for j in 0..per {
            let device = store.ensure_device(user.id, &format!("phone-{j}"))?;
            let token = format!("polo_zoneslive_{:07}", u * per + j);
            store.create_token(user.id, device.id, "zones-live bench", &sha256(&token), TokenGrant::default())?;
        }
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// Runs the bench.
///
/// # Errors
/// When the store, the server or wrk fail.
#[allow(clippy::cast_precision_loss)]
pub fn zones_live(work: &Path, users: usize, per: usize, seconds: u32, drain_seconds: u32) -> anyhow::Result<()> {
    if users == 0 || per == 0 || seconds == 0 {
        bail!("--users, --devices and --seconds must be at least 1");
    }
    let data = fresh_store(work, "store-zones-live")?;
    let receiver = Receiver::start()?;
    let started = Instant::now();
    populate(&data, users, per, &receiver.url)?;
    println!(
        "input            {users} users × {per} devices (a token each) = {} devices; {} zones ({ZONES_PER_USER} per user), \
         {users} webhook subscriptions; stored in {:.1} s",
        users * per,
        users * ZONES_PER_USER,
        started.elapsed().as_secs_f64()
    );
    let server = start_with(&data, &["--zone-reorder-window-ms", "1000"])?;
    let args = vec![users.to_string(), per.to_string(), GRID_COLUMNS.to_string()];
    // Warm-up: every device's first fix (tokens and devices read once), zones sent as setWaypoints once.
    let warm_seconds = u32::try_from((users * per / 5_000).clamp(3, 20)).unwrap_or(20);
    let warm = wrk(work, &server, ZONES_LIVE_LUA, "zones-live", &args, warm_seconds, 32)?;
    println!(
        "warm-up          {:.0} points/s over {warm_seconds} s ({} requests: each device's first fixes)",
        (warm.requests - warm.non_2xx) as f64 / warm.seconds,
        warm.requests
    );
    let delivered_before = receiver.received();
    let before = server_histogram(&server, "/api/owntracks")?;
    let load_started = Instant::now();
    let run = wrk(work, &server, ZONES_LIVE_LUA, "zones-live", &args, seconds, 32)?;
    let load_s = load_started.elapsed().as_secs_f64();
    let rate = print_owntracks("owntracks+zones", &run);
    print_server_side(&before, &server_histogram(&server, "/api/owntracks")?);
    let during = receiver.received() - delivered_before;
    println!("webhooks         {during} deliveries during the load ({:.0}/s)", during as f64 / load_s);
    let drain_started = Instant::now();
    let at_start = receiver.received();
    let mut last_change = Instant::now();
    let mut last = at_start;
    while drain_started.elapsed() < Duration::from_secs(u64::from(drain_seconds)) {
        std::thread::sleep(Duration::from_millis(250));
        let now = receiver.received();
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let drained = last - at_start;
    let drain_s = (last_change - drain_started).as_secs_f64().max(0.001);
    if drained == 0 {
        println!("webhooks after   none: the outbox was empty when the load ended (the sender had kept up)");
    } else {
        println!(
            "webhooks after   {drained} deliveries in {drain_s:.1} s after the load ({:.0}/s; the sender working \
             through its outbox{})",
            drained as f64 / drain_s,
            if last_change.elapsed() > Duration::from_secs(3) { ", until it was empty" } else { ", still going" }
        );
    }
    drop(server);
    let [_, _, p99, _] = run.percentiles_ms;
    println!();
    println!(
        "target ≥ {TARGET_POINTS_PER_S:.0} points/s: {rate:.0} = {:.2}×  {}",
        rate / TARGET_POINTS_PER_S,
        verdict(rate >= TARGET_POINTS_PER_S)
    );
    println!(
        "target p99 ≤ {TARGET_P99_MS} ms: {p99:.2} ms = {:.2}× the bound  {}",
        p99 / TARGET_P99_MS,
        verdict(p99 <= TARGET_P99_MS)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_lie_where_the_script_sends_the_devices_and_apart() {
        // User 51 is on the second row, second column; zone 37 is the fourth row and eighth column of its grid.
        let [lat, lon] = zone_center(51, 37);
        assert!((lat - (47.0 + 0.1 + 3.0 * 0.005)).abs() < 1e-9 && (lon - (6.0 + 0.15 + 7.0 * 0.008)).abs() < 1e-9);
        // Neighbouring zones are ~550 m apart (radius 100 m), and "away" (+0.06°) lies beyond the user's grid.
        let [a, _] = zone_center(0, 0);
        let [b, _] = zone_center(0, 10);
        assert!((b - a) * 111_000.0 > 500.0);
        assert!(zone_center(0, 99)[0] < a + 0.06 && a + 0.06 + 0.005 < zone_center(GRID_COLUMNS, 0)[0]);
    }

    #[test]
    fn the_receiver_answers_keep_alive_requests_and_counts_them() {
        let receiver = Receiver::start().unwrap();
        let addr = receiver.url.trim_start_matches("http://").trim_end_matches("/hook").to_owned();
        let mut stream = TcpStream::connect(addr).unwrap();
        for _ in 0..3 {
            stream.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").unwrap();
            let mut answer = [0u8; 38];
            stream.read_exact(&mut answer).unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
        }
        assert_eq!(receiver.received(), 3);
    }
}
