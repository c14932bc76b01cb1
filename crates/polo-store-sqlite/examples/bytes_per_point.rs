//! Measures what a realistic phone history costs on disk, and how fast it is
//! stored, encoded and read back.
//!
//! ```text
//! cargo run --release -p polo-store-sqlite --example bytes_per_point -- [points] [page_size]
//! ```
//!
//! The history is generated deterministically (seeded SplitMix64): one fix
//! every 10–30 s with millisecond timestamps, a weekday pattern of night at
//! home, a drive to work, a stationary day with a lunch walk, a drive home and
//! an evening walk; GPS jitter scaled by the reported accuracy; altitude,
//! horizontal and vertical accuracy, speed, course (only while moving),
//! battery (draining by day, charging at night), motion and UTC offset — all
//! at the full precision a phone reports (centimetres, centidegrees), which is
//! the pessimistic case for the codec.

use std::time::Instant;

use polo_domain::{Coord, Fix, Motion, SourceFormat, Timestamp};
use polo_store::codec::{CHUNK_CAPACITY, StoredFix, decode_chunk, encode_chunk};
use polo_store::{PointQuery, Store};
use polo_store_sqlite::SqliteStore;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Roughly normal (Irwin–Hall of 4).
    fn gauss(&mut self, sigma: f64) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * sigma * 1.732
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Home,
    Work,
    Drive { to_work: bool },
    Walk,
}

const HOME: (f64, f64) = (48.137_154, 11.576_124);
const WORK: (f64, f64) = (48.177_700, 11.638_900);

fn generate(n: usize) -> Vec<Fix> {
    let mut rng = Rng(0x005E_ED0F_9010);
    let mut fixes = Vec::with_capacity(n);
    let mut t: i64 = 1_672_531_200_000; // 2023-01-01T00:00Z
    let (mut lat, mut lon) = HOME;
    let mut heading: f64 = 0.0;
    let mut battery: f64 = 100.0;
    let mut alt_base: f64 = 519.0;
    while fixes.len() < n {
        let offset_min: i16 = 60; // CET; DST is a second run, which changes nothing
        let local_ms = (t + i64::from(offset_min) * 60_000).rem_euclid(86_400_000);
        let hour = local_ms as f64 / 3_600_000.0;
        let weekday = (t + 4 * 86_400_000).div_euclid(86_400_000) % 7 < 5; // 1970-01-01 was a Thursday
        let state = match hour {
            h if !weekday && (15.0..17.0).contains(&h) => State::Walk,
            _ if !weekday => State::Home,
            h if h < 7.5 => State::Home,
            h if h < 8.1 => State::Drive { to_work: true },
            h if h < 12.2 => State::Work,
            h if h < 12.8 => State::Walk,
            h if h < 17.3 => State::Work,
            h if h < 17.9 => State::Drive { to_work: false },
            h if h < 19.0 => State::Home,
            h if h < 19.7 => State::Walk,
            _ => State::Home,
        };
        let (speed_ms, motion, accuracy) = match state {
            State::Home | State::Work => (rng.uniform(0.0, 0.4), Motion::Stationary, rng.uniform(8.0, 25.0)),
            State::Walk => (rng.uniform(1.1, 1.7), Motion::Walking, rng.uniform(3.0, 12.0)),
            State::Drive { .. } => (rng.uniform(6.0, 22.0), Motion::Road, rng.uniform(3.0, 8.0)),
        };
        let dt_ms = rng.uniform(10_000.0, 30_000.0) as i64;
        t += dt_ms;
        // Move.
        let dist = speed_ms * dt_ms as f64 / 1000.0;
        match state {
            State::Home => (lat, lon) = (HOME.0 + (lat - HOME.0) * 0.5, HOME.1 + (lon - HOME.1) * 0.5),
            State::Work => (lat, lon) = (WORK.0 + (lat - WORK.0) * 0.5, WORK.1 + (lon - WORK.1) * 0.5),
            State::Drive { to_work } => {
                let target = if to_work { WORK } else { HOME };
                let (dy, dx) = ((target.0 - lat) * 111_320.0, (target.1 - lon) * 111_320.0 * lat.to_radians().cos());
                heading = dx.atan2(dy) + rng.gauss(0.3);
                let step = dist.min((dy * dy + dx * dx).sqrt());
                lat += step * heading.cos() / 111_320.0;
                lon += step * heading.sin() / (111_320.0 * lat.to_radians().cos());
            }
            State::Walk => {
                heading += rng.gauss(0.5);
                lat += dist * heading.cos() / 111_320.0;
                lon += dist * heading.sin() / (111_320.0 * lat.to_radians().cos());
            }
        }
        // Observe, with noise proportional to the accuracy.
        let noise = accuracy / 3.0;
        let obs_lat = lat + rng.gauss(noise) / 111_320.0;
        let obs_lon = lon + rng.gauss(noise) / (111_320.0 * lat.to_radians().cos());
        let Ok(coord) = Coord::from_degrees(obs_lat, obs_lon) else { continue };
        let mut fix = Fix::new(Timestamp(t), coord, SourceFormat::GoogleRecords);
        fix.utc_offset_minutes = Some(offset_min);
        alt_base += rng.gauss(0.05) + (519.0 - alt_base) * 0.001;
        fix.set_altitude_m(alt_base + rng.gauss(accuracy / 4.0));
        fix.set_horizontal_accuracy_m(accuracy);
        fix.set_vertical_accuracy_m(accuracy * rng.uniform(0.5, 1.0));
        fix.set_speed_m_s((speed_ms + rng.gauss(0.2)).max(0.0));
        if state != State::Home && state != State::Work {
            fix.set_course_deg((heading.to_degrees() + rng.gauss(5.0)).rem_euclid(360.0));
        }
        battery = if state == State::Home && !(7.0..19.0).contains(&hour) {
            (battery + dt_ms as f64 / 60_000.0).min(100.0)
        } else {
            (battery - dt_ms as f64 / 600_000.0).max(5.0)
        };
        fix.set_battery_percent(battery.floor());
        fix.motion = Some(motion);
        fixes.push(fix);
    }
    fixes
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let page_size: u32 = args.next().map_or(Ok(polo_store_sqlite::DEFAULT_PAGE_SIZE), |a| a.parse())?;

    let started = Instant::now();
    let fixes = generate(n);
    println!("generated {n} fixes in {:.2?}", started.elapsed());

    // Codec alone.
    let stored: Vec<StoredFix> = fixes.iter().map(|f| StoredFix { fix: f.clone(), seq: polo_domain::Seq(1) }).collect();
    // Best of three, to see through a busy machine.
    let (mut enc, mut dec) = (std::time::Duration::MAX, std::time::Duration::MAX);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        chunks = stored.chunks(CHUNK_CAPACITY).map(encode_chunk).collect();
        enc = enc.min(started.elapsed());
        let started = Instant::now();
        let mut decoded = 0usize;
        for c in &chunks {
            decoded += decode_chunk(c)?.len();
        }
        dec = dec.min(started.elapsed());
        assert_eq!(decoded, n);
    }
    let codec_bytes: usize = chunks.iter().map(Vec::len).sum();
    println!(
        "codec: {:.2} bytes/point; encode {:.1} M points/s, decode {:.1} M points/s",
        codec_bytes as f64 / n as f64,
        n as f64 / enc.as_secs_f64() / 1e6,
        n as f64 / dec.as_secs_f64() / 1e6
    );
    drop(stored);
    drop(chunks);

    // Bulk import, 10k-point batches, into a fresh file.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("polo.db");
    let store = SqliteStore::open_with_page_size(&path, page_size)?;
    let user = store.create_user("alice", "x", false)?.id;
    let device = store.ensure_device(user, "phone")?.id;
    let started = Instant::now();
    for batch in fixes.chunks(10_000) {
        store.insert_points(user, device, batch)?;
    }
    let import = started.elapsed();
    let stats = store.storage_stats()?;
    println!(
        "import: {n} points in {import:.2?} = {:.2} M points/s (batches of 10k, page size {page_size})",
        n as f64 / import.as_secs_f64() / 1e6
    );
    println!(
        "disk: {} chunks, {:.2} chunk bytes/point, file {} bytes = {:.2} bytes/point",
        stats.chunks,
        stats.chunk_bytes as f64 / n as f64,
        stats.file_bytes,
        stats.file_bytes as f64 / n as f64
    );

    // Reading it back.
    let started = Instant::now();
    let mut seen = 0usize;
    store.scan_points(&PointQuery::user(user), &mut |_| {
        seen += 1;
        std::ops::ControlFlow::Continue(())
    })?;
    let scan = started.elapsed();
    assert_eq!(seen, n);
    println!("scan: {:.1} M points/s", n as f64 / scan.as_secs_f64() / 1e6);

    // Live ingest: single-point appends on top of the history.
    let live = 2_000;
    let last = fixes.last().map_or(0, |f| f.time.0);
    let started = Instant::now();
    for (i, f) in fixes.iter().take(live).enumerate() {
        let mut f = f.clone();
        f.time = Timestamp(last + 15_000 * (i as i64 + 1));
        store.insert_points(user, device, &[f])?;
    }
    let per = started.elapsed() / live as u32;
    println!("live append: {per:.2?} per single-point insert");

    // A re-import (all duplicates) and a backfill into the middle.
    let started = Instant::now();
    let out = store.insert_points(user, device, &fixes[n / 2..(n / 2 + 10_000).min(n)])?;
    println!("re-insert 10k duplicates: {:.2?} ({} added)", started.elapsed(), out.added);
    let stats2 = store.storage_stats()?;
    println!("after live appends: {:.2} bytes/point", stats2.file_bytes as f64 / stats2.points as f64);
    Ok(())
}
