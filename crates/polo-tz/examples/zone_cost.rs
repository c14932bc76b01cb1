//! What the bundled time zones cost: load time, resident memory, lookup time.
//!
//!     cargo run --release -p polo-tz --example zone_cost
//!
//! Reads `VmRSS` from `/proc/self/status` (Linux), before loading, after
//! loading and after looking up positions all over the world (which touches
//! every part of the embedded file, the worst case for the resident set).

use std::hint::black_box;
use std::time::Instant;

use polo_domain::{Coord, Timestamp};
use polo_timeline::ZoneLookup;
use polo_tz::BundledZones;

/// A `/proc/self/status` field in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Resident KiB: in all, anonymous (heap) and file-backed (the binary's mapped data).
fn rss_kib() -> (u64, u64, u64) {
    (status_kib("VmRSS:"), status_kib("RssAnon:"), status_kib("RssFile:"))
}

fn show(label: &str, (all, anon, file): (u64, u64, u64), (all0, anon0, file0): (u64, u64, u64)) {
    println!(
        "{label:<16} {all:8} KiB  (+{} KiB: heap +{} KiB, mapped data +{} KiB)",
        all.saturating_sub(all0),
        anon.saturating_sub(anon0),
        file.saturating_sub(file0)
    );
}

fn main() -> Result<(), polo_tz::TzError> {
    let before = rss_kib();
    let started = Instant::now();
    let zones = BundledZones::builtin()?;
    let load = started.elapsed();
    let loaded = rss_kib();

    // A 0.5° grid over the inhabited latitudes: 720 × 260 positions.
    let grid: Vec<Coord> = (0..260)
        .flat_map(|lat| (0..720).map(move |lon| (f64::from(lat) * 0.5 - 60.0, f64::from(lon) * 0.5 - 180.0)))
        .filter_map(|(lat, lon)| Coord::from_degrees(lat, lon).ok())
        .collect();
    let started = Instant::now();
    let mut used = std::collections::BTreeSet::new();
    for &coord in &grid {
        used.insert(black_box(zones.zone_at(coord)));
    }
    let lookup = started.elapsed();
    let time = Timestamp::from_civil(2024, 7, 1, 0, 0, 0, 0).unwrap_or(Timestamp(0));
    let started = Instant::now();
    let mut offsets = 0i64;
    for &zone in &used {
        offsets += i64::from(black_box(zones.zone_offset_minutes(zone, time)));
    }
    let first_offsets = started.elapsed();
    let started = Instant::now();
    for _ in 0..100 {
        for &zone in &used {
            offsets += i64::from(black_box(zones.zone_offset_minutes(zone, time)));
        }
    }
    let offset_lookup = started.elapsed();
    let after = rss_kib();
    black_box(offsets);

    #[allow(clippy::cast_precision_loss)]
    let per = |total: std::time::Duration, n: usize| total.as_secs_f64() * 1e9 / n as f64;
    println!("data version     {}", zones.data_version());
    println!("load             {:8.2} ms  BundledZones::builtin()", load.as_secs_f64() * 1e3);
    show("rss loaded", loaded, before);
    println!(
        "zone_at          {:8.0} ns  per lookup, {} positions, {} zones met",
        per(lookup, grid.len()),
        grid.len(),
        used.len()
    );
    println!("first offset     {:8.0} ns  per zone (parses its rules)", per(first_offsets, used.len()));
    println!("offset           {:8.0} ns  per lookup", per(offset_lookup, used.len() * 100));
    show("rss after", after, before);
    Ok(())
}
