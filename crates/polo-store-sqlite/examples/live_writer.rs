//! Measures what the live-ingest writer costs the store per point, without
//! the HTTP server around it.
//!
//! ```text
//! cargo run --release -p polo-store-sqlite --example live_writer -- [devices] [points per device] [lag]
//! ```
//!
//! Every commit writes one OwnTracks-like fix (with its `_id` and `tid` as
//! extras) for each of `devices` phones, the way the server's ingest writer
//! commits a drain of single-point requests
//! ([`polo_store::Store::insert_point_groups`]). With a `lag` (one device
//! only), each commit instead holds two lanes of the same device, the
//! second `lag` points behind the first: what two load-generator threads
//! posting one device's timeline produce when they drift apart.
//!
//! It prints the store's time per point (this thread is the only one working,
//! so it is CPU time plus any write stalls), the chunks left and the bytes
//! per point in the file.

use std::time::Instant;

use polo_domain::{Coord, DeviceId, Extras, Fix, SourceFormat, Timestamp, UserId};
use polo_store::{PointGroup, Store};
use polo_store_sqlite::SqliteStore;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn owntracks_fix(device: usize, step: i64) -> Fix {
    let mut fix = Fix::new(
        Timestamp(T0 + step * 10_000),
        Coord { lat_e7: 525_000_000 + (step * 37 % 20_000) as i32, lon_e7: 134_000_000 + (step * 53 % 30_000) as i32 },
        SourceFormat::Owntracks,
    );
    fix.horizontal_accuracy_cm = Some(800);
    fix.speed_cm_s = Some(111);
    fix.battery_percent = Some(77);
    fix.extras = Some(Extras::from_json_object(format!("{{\"_id\":\"{:08x}\",\"tid\":\"P{device}\"}}", step * 7919)));
    fix
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devices = arg(1, 32).max(1);
    let per_device = arg(2, 4096);
    let lag = arg(3, 0);
    let dir = std::env::temp_dir().join(format!("polo-live-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("polo.sqlite");
    let store = SqliteStore::open(&path)?;
    let mut phones: Vec<(UserId, DeviceId)> = Vec::new();
    for d in 0..devices {
        let user = store.create_user(&format!("phone-{d}"), "$argon2id$x", false)?;
        phones.push((user.id, store.ensure_device(user.id, "phone")?.id));
    }

    let started = Instant::now();
    let mut points = 0usize;
    if lag == 0 {
        for step in 0..per_device as i64 {
            let fixes: Vec<Vec<Fix>> = (0..devices).map(|d| vec![owntracks_fix(d, step)]).collect();
            let mut groups: Vec<PointGroup<'_>> = phones
                .iter()
                .zip(&fixes)
                .map(|(&(user, device), fixes)| PointGroup::new(user, device, fixes))
                .collect();
            store.insert_point_groups(&mut groups, &mut |_, _| {})?;
            points += devices;
        }
    } else {
        // One device, two lanes taking even and odd steps, 16 fixes each per commit.
        let (user, device) = phones[0];
        let lanes = 16i64;
        let steps = per_device as i64 / 2;
        let mut ahead = 0i64;
        while ahead < steps + lag as i64 {
            let behind = ahead - lag as i64;
            let mut fixes: Vec<Fix> =
                (ahead..ahead + lanes).filter(|&s| s < steps).map(|s| owntracks_fix(0, 2 * s)).collect();
            fixes.extend(
                (behind.max(0)..(behind + lanes).max(0)).filter(|&s| s < steps).map(|s| owntracks_fix(0, 2 * s + 1)),
            );
            let mut groups = [PointGroup::new(user, device, &fixes)];
            store.insert_point_groups(&mut groups, &mut |_, _| {})?;
            points += fixes.len();
            ahead += lanes;
        }
    }
    let elapsed = started.elapsed();
    let stats = store.storage_stats()?;
    println!(
        "{points} points in {:.2} s: {:.1} µs per point; {} chunks ({:.0} points each); {:.1} bytes per point in the file",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / points.max(1) as f64,
        stats.chunks,
        stats.points as f64 / stats.chunks.max(1) as f64,
        stats.file_bytes as f64 / stats.points.max(1) as f64,
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
