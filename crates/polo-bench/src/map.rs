//! `polo-bench map`: map levels of detail on a ten-year, ~5-million-point
//! user.
//!
//! 1. Generates the history with polo-timeline's synthetic generator (fixed
//!    seeds): two devices ("phone" and "tablet", two synthetic people in the
//!    same city) over 3 653 days, about 650 points a day each. Two devices
//!    make the overview's job harder than one denser device would: the
//!    coarse levels hold a line per device and day.
//! 2. Imports it into a fresh data directory through the store (the same
//!    `insert_points` live ingest and imports use), a month at a time.
//! 3. Times `polo_derived::map::refresh_device` over each device's whole
//!    history (what the background worker does after an import), with the
//!    points/s and the peak RSS of the refresh alone (the high-water mark is
//!    reset first), and prints the points kept per level and the bytes the
//!    map rows take.
//! 4. Starts the release `polo serve` on that directory and measures, over
//!    HTTP on loopback (a new connection per request, as a browser's first
//!    request), latency (p50/p95/max of `--runs` requests after one warm-up)
//!    and response bytes of the overview of the last day, month, year and
//!    the whole ten years, and of heatmap and fog tiles around home at zooms
//!    3 to 15 over all time and at zoom 11 over the last year.
//!
//! Targets (the map issue): an overview of any range in ≤ 300 ms and ≤ 2 MB.
//! The command exits non-zero when the ten-year overview misses either
//! (p95 latency, bytes).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use polo_derived::kinds::{FOG_BLOCKS, HEAT_BLOCKS, MAP_CELLS, MAP_COUNTS, MAP_LEVELS, map_track};
use polo_derived::map::refresh_device;
use polo_derived::map::track::{LEVEL_ZOOMS, decode_counts};
use polo_domain::{DeviceId, Fix, SourceFormat, Timestamp, UserId};
use polo_store::{DerivedRange, DerivedScope, Store};
use polo_store_sqlite::SqliteStore;
use polo_timeline::synthetic::SyntheticTrack;
use polo_timeline::tiles::tile_of;

use crate::run::{fresh_store, polo_binary};

/// The targets for an overview of any range.
pub(crate) const TARGET_MS: f64 = 300.0;
pub(crate) const TARGET_BYTES: usize = 2_000_000;
/// The generator's first seed; the second device takes the next seed that lives in the same city.
const SEED: u64 = 2024;
const DEVICES: [&str; 2] = ["phone", "tablet"];
const DAY_MS: i64 = 86_400_000;

fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// The seeds of the devices: all in the city of [`SEED`].
fn seeds() -> Vec<u64> {
    let city = SyntheticTrack::new(SEED).city;
    let mut seeds = vec![SEED];
    let mut seed = SEED;
    while seeds.len() < DEVICES.len() {
        seed += 1;
        if SyntheticTrack::new(seed).city == city {
            seeds.push(seed);
        }
    }
    seeds
}

/// Generates `days` of each device and stores them, 30 days per write. Returns per device its
/// id, first and last time, and the points stored.
fn import(store: &SqliteStore, user: UserId, days: u32) -> anyhow::Result<Vec<(DeviceId, Timestamp, Timestamp, u64)>> {
    let mut out = Vec::new();
    for (name, seed) in DEVICES.iter().zip(seeds()) {
        let device = store.ensure_device(user, name)?.id;
        let mut track = SyntheticTrack::new(seed);
        let (mut first, mut last, mut stored) = (None, Timestamp(0), 0u64);
        let mut left = days;
        while left > 0 {
            let step = left.min(30);
            left -= step;
            track = track.days(step);
            let points = std::mem::take(&mut track.points);
            let fixes: Vec<Fix> = points.iter().map(|p| Fix::new(p.time, p.coord, SourceFormat::Api)).collect();
            stored += store.insert_points(user, device, &fixes)?.added;
            first = first.or(fixes.first().map(|f| f.time));
            last = fixes.last().map_or(last, |f| f.time);
        }
        out.push((device, first.context("no points generated")?, last, stored));
    }
    Ok(out)
}

/// One HTTP request on a new connection: (seconds to the last byte, status, body).
pub(crate) fn get(addr: &str, path: &str, auth: &str) -> anyhow::Result<(f64, u16, Vec<u8>)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let seconds = started.elapsed().as_secs_f64();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no HTTP head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status")?;
    let body = raw[split + 4..].to_vec();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(&body) } else { body };
    Ok((seconds, status, body))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16) else { break };
        let rest = &body[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest.get(size + 2..).unwrap_or_default();
    }
    out
}

/// Latency percentiles (ms) and the body of `runs` requests after one warm-up.
pub(crate) struct Timed {
    pub(crate) cold_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) body: Vec<u8>,
}

pub(crate) fn timed(addr: &str, path: &str, auth: &str, runs: usize) -> anyhow::Result<Timed> {
    let (cold, status, body) = get(addr, path, auth)?;
    if status != 200 {
        bail!("{path} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (seconds, status, _) = get(addr, path, auth)?;
        if status != 200 {
            bail!("{path} answered {status}");
        }
        times.push(seconds * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        // A rank within the list.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[index]
    };
    Ok(Timed { cold_ms: cold * 1e3, p50_ms: at(0.5), p95_ms: at(0.95), max_ms: at(1.0), body })
}

pub(crate) fn rfc3339(ms: i64) -> String {
    Timestamp(ms).to_string()
}

/// Points and segments per level, and bytes per kind, of the stored map rows.
fn report_rows(store: &SqliteStore, user: UserId, devices: &[DeviceId], days: u32) -> anyhow::Result<()> {
    let mut levels = [(0u64, 0u64); MAP_LEVELS as usize];
    let mut points = 0;
    for &device in devices {
        let range = DerivedRange::all(MAP_COUNTS, DerivedScope::Device(device));
        for row in store.derived_range(user, &range)? {
            let counts = decode_counts(&row.value, MAP_COUNTS, row.key)?;
            points += counts.points;
            for (total, level) in levels.iter_mut().zip(counts.levels) {
                total.0 += level.points;
                total.1 += level.segments;
            }
        }
    }
    let device_days = f64::from(days) * devices.len() as f64;
    for (level, (kept, segments)) in levels.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let (kept_f, segments_f, points_f) = (*kept as f64, *segments as f64, points as f64);
        println!(
            "level {level} (z{:>2})    {kept:>9} points ({:5.1} %)  {:7.1} points and {:4.2} segments per device-day",
            LEVEL_ZOOMS[level],
            100.0 * kept_f / points_f,
            kept_f / device_days,
            segments_f / device_days,
        );
    }
    let kinds = [
        ("MAP_COUNTS", MAP_COUNTS),
        ("MAP_CELLS", MAP_CELLS),
        ("HEAT_BLOCKS", HEAT_BLOCKS),
        ("FOG_BLOCKS", FOG_BLOCKS),
    ]
    .into_iter()
    .map(|(name, kind)| (name.to_owned(), kind))
    .chain((0..MAP_LEVELS).map(|l| (format!("track level {l}"), map_track(l))));
    let mut total = 0u64;
    let mut parts = Vec::new();
    for (name, kind) in kinds {
        let (mut rows, mut bytes) = (0u64, 0u64);
        for &device in devices {
            for row in store.derived_range(user, &DerivedRange::all(kind, DerivedScope::Device(device)))? {
                rows += 1;
                bytes += row.value.len() as u64;
            }
        }
        total += bytes;
        parts.push(format!("{name} {rows} rows {:.1} MB", mb(bytes)));
    }
    #[allow(clippy::cast_precision_loss)]
    let per_point = total as f64 / points as f64;
    println!("map rows         {:.1} MB = {per_point:.1} bytes/point ({})", mb(total), parts.join(", "));
    let chunk_bytes = store.storage_stats()?.chunk_bytes;
    #[allow(clippy::cast_precision_loss)]
    let ratio = total as f64 / chunk_bytes.max(1) as f64;
    println!(
        "map rows / points {ratio:.2}× the {:.1} MB of point chunks, target ≤ 2× (ideally ≤ 1×)  {}",
        mb(chunk_bytes),
        verdict(ratio <= 2.0)
    );
    Ok(())
}

pub fn map(work: &Path, days: u32, runs: usize) -> anyhow::Result<()> {
    let data = fresh_store(work, "store-map")?;
    let store = SqliteStore::open(data.join("polo.sqlite"))?;
    let user = store.user_by_name("bench")?.context("fresh_store made no user bench")?.id;
    eprintln!("generating and storing {days} days of {} devices …", DEVICES.len());
    let started = Instant::now();
    let devices = import(&store, user, days)?;
    let points: u64 = devices.iter().map(|d| d.3).sum();
    println!(
        "input            {points} points, {days} days, {} devices ({} stored in {:.1} s)",
        devices.len(),
        SyntheticTrack::new(SEED).city,
        started.elapsed().as_secs_f64()
    );

    // The refresh alone: reset this process's peak RSS first (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before_kb = status_kb("self", "VmRSS:").unwrap_or(0);
    let started = Instant::now();
    for &(device, first, last, _) in &devices {
        let outcome = refresh_device(&store, user, device, first, last)?;
        eprintln!("refreshed {device}: {outcome:?}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_kb = status_kb("self", "VmHWM:").unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let rate = points as f64 / seconds;
    println!(
        "refresh          {seconds:.2} s = {rate:.0} points/s  peak RSS {:.1} MB ({:.1} MB before)",
        mib(peak_kb),
        mib(before_kb)
    );
    let ids: Vec<DeviceId> = devices.iter().map(|d| d.0).collect();
    report_rows(&store, user, &ids, days)?;
    // One more point on the last day: the common case of a phone appending.
    let (device, _, last, _) = devices[0];
    let next = Timestamp(last.0 + 30_000);
    let home = SyntheticTrack::new(SEED).days(1).points[0].coord;
    store.insert_points(user, device, &[Fix::new(next, home, SourceFormat::Api)])?;
    let started = Instant::now();
    let outcome = refresh_device(&store, user, device, next, next)?;
    println!(
        "append refresh   {:.2} ms for one new point ({} points of its day re-read, {} month rewritten)",
        started.elapsed().as_secs_f64() * 1e3,
        outcome.points,
        outcome.months
    );
    drop(store);

    let token = Command::new(polo_binary()?)
        .arg("--data-dir")
        .arg(&data)
        // A phone's token (no scope) may only ingest; the map routes need "read".
        .args(["token", "create", "--user", "bench", "--device", "phone", "--scope", "read"])
        .output()?;
    let token = String::from_utf8(token.stdout)?.trim().to_owned();
    if token.is_empty() {
        bail!("polo token create printed no token");
    }
    let auth = format!("Bearer {token}");
    let server = crate::serve::start(&data)?;
    let addr = server.addr.clone();
    let pid = server.child.id().to_string();
    let end = devices.iter().map(|d| d.2.0).max().unwrap_or(0).div_euclid(DAY_MS) * DAY_MS;
    let start_ms = devices.iter().map(|d| d.1.0).min().unwrap_or(0).div_euclid(DAY_MS) * DAY_MS;
    let ranges = [
        ("1 day", end - DAY_MS),
        ("1 month", end - 30 * DAY_MS),
        ("1 year", end - 365 * DAY_MS),
        ("10 years", start_ms),
    ];
    println!();
    println!("HTTP over loopback, a new connection per request: cold (first) request, then p50/p95/max of {runs}");
    let mut ten_years_ok = false;
    for (name, from) in ranges {
        let path = format!("/api/v1/map/overview?from={}&to={}", rfc3339(from), rfc3339(end));
        let t = timed(&addr, &path, &auth, runs)?;
        let body: serde_json::Value = serde_json::from_slice(&t.body)?;
        let ok = t.p95_ms <= TARGET_MS && t.body.len() <= TARGET_BYTES;
        println!(
            "overview {name:<8} cold {:6.1} ms  p50 {:6.1}  p95 {:6.1}  max {:6.1} ms  {:>9} bytes  level {} ({} points, {} segments{})  {}",
            t.cold_ms,
            t.p50_ms,
            t.p95_ms,
            t.max_ms,
            t.body.len(),
            body["level"],
            body["points"],
            body["segments"].as_array().map_or(0, Vec::len),
            if body["thinned"] == true { ", thinned" } else { "" },
            verdict(ok),
        );
        if name == "10 years" {
            ten_years_ok = ok;
        }
    }
    let home = tile_of(home, 15)?;
    let last_year = format!("?from={}&to={}", rfc3339(end - 365 * DAY_MS), rfc3339(end));
    for layer in ["heatmap", "fog"] {
        // All time (month rows), then the last year (month rows and the day rows of its partial months).
        for (z, range) in [(3u8, ""), (7, ""), (11, ""), (15, ""), (11, last_year.as_str())] {
            let shift = 15 - z;
            let path = format!("/api/v1/map/{layer}/{z}/{}/{}{range}", home.x >> shift, home.y >> shift);
            let t = timed(&addr, &path, &auth, runs)?;
            let body: serde_json::Value = serde_json::from_slice(&t.body)?;
            let ok = t.p95_ms <= TARGET_MS && t.body.len() <= TARGET_BYTES;
            println!(
                "{layer:<7} z{z:<2} {:<4} cold {:6.1} ms  p50 {:6.1}  p95 {:6.1}  max {:6.1} ms  {:>9} bytes  {} cells  {}",
                if range.is_empty() { "all" } else { "year" },
                t.cold_ms,
                t.p50_ms,
                t.p95_ms,
                t.max_ms,
                t.body.len(),
                body["cells"].as_array().map_or(0, Vec::len),
                verdict(ok),
            );
        }
    }
    println!("server RSS       {:.1} MB after the requests", mib(status_kb(&pid, "VmRSS:").unwrap_or(0)));
    println!();
    println!(
        "target 10-year overview ≤ {TARGET_MS:.0} ms (p95) and ≤ {} MB   {}",
        TARGET_BYTES / 1_000_000,
        verdict(ten_years_ok)
    );
    if !ten_years_ok {
        bail!("the ten-year overview missed its target");
    }
    Ok(())
}
