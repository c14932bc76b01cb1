//! `polo-bench geocode`: offline reverse-geocoding load time, memory and
//! lookups per second.
//!
//! Loads [`Geocoder::builtin`] once cold (the first touch of the embedded
//! data) and reports the time and the growth of the process's resident set
//! (`VmRSS` from `/proc/self/status`, in kB: unlike `/proc/self/statm` it
//! needs no page size, which is 16 KiB on a Raspberry Pi 5), next to the
//! heap the geocoder reports for itself. Then it times the best of three
//! more loads, and looks up `--lookups` positions on one thread.
//!
//! The positions are land-weighted like real stays: nine in ten are a
//! random GeoNames town moved by up to ±0.25° (about 28 km) in each
//! direction, one in ten is uniform on the sphere (mostly open sea). They
//! are generated before the clock starts; the loop only calls `lookup`.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use polo_domain::Coord;
use polo_geocode::Geocoder;
use polo_timeline::synthetic::Rng;

/// The process's resident set in kB, if `/proc` has it (Linux).
fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Land-weighted positions: jittered towns, and a tenth uniform on the sphere.
fn positions(geocoder: &Geocoder, count: usize, rng: &mut Rng) -> Vec<Coord> {
    let towns: Vec<(f64, f64)> = geocoder.town_positions().collect();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let (lat, lon) = if rng.chance(0.1) {
            // Uniform on the sphere: latitude from the arcsine of a uniform sine.
            (rng.range(-1.0, 1.0).asin().to_degrees(), rng.range(-180.0, 180.0))
        } else {
            // The town count fits u64 and the index fits usize.
            #[allow(clippy::cast_possible_truncation)]
            let (lat, lon) = towns[rng.below(towns.len() as u64) as usize];
            let lon = lon + rng.range(-0.25, 0.25);
            let lon = if lon > 180.0 {
                lon - 360.0
            } else if lon < -180.0 {
                lon + 360.0
            } else {
                lon
            };
            ((lat + rng.range(-0.25, 0.25)).clamp(-90.0, 90.0), lon)
        };
        if let Ok(coord) = Coord::from_degrees(lat, lon) {
            out.push(coord);
        }
    }
    out
}

pub fn geocode(lookups: usize) -> anyhow::Result<()> {
    let rss_before = resident_kb();
    let started = Instant::now();
    let geocoder = Geocoder::builtin().context("the embedded geocoding data does not load")?;
    let cold = started.elapsed().as_secs_f64();
    let rss_after = resident_kb();
    let warm = (0..3)
        .map(|_| {
            let started = Instant::now();
            black_box(Geocoder::builtin().map(|g| g.heap_bytes()).unwrap_or(0));
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);

    let mut rng = Rng::new(2024);
    let coords = positions(&geocoder, lookups, &mut rng);
    let (mut countries, mut towns, mut regions) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    for &coord in &coords {
        let location = black_box(geocoder.lookup(coord));
        countries += usize::from(location.country_code.is_some());
        regions += usize::from(location.region.is_some());
        towns += usize::from(location.town.is_some());
    }
    let seconds = started.elapsed().as_secs_f64();

    // Counts fit f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let (n, share) = (coords.len() as f64, |count: usize| 100.0 * count as f64 / coords.len().max(1) as f64);
    #[allow(clippy::cast_precision_loss)]
    let heap_mb = geocoder.heap_bytes() as f64 / 1e6;
    println!("load (cold)      {:8.1} ms  Geocoder::builtin(), first call", cold * 1e3);
    println!("load (warm)      {:8.1} ms  best of 3 more", warm * 1e3);
    match (rss_before, rss_after) {
        (Some(before), Some(after)) => {
            // kB counts fit f64 exactly.
            #[allow(clippy::cast_precision_loss)]
            let delta_mb = after.saturating_sub(before) as f64 / 1e3;
            println!("resident delta   {delta_mb:8.1} MB  VmRSS after − before the first load (heap {heap_mb:.1} MB)");
        }
        _ => println!("resident delta        n/a  (no /proc/self/status; heap {heap_mb:.1} MB)"),
    }
    println!(
        "lookups          {:8.0} /s  {} positions in {:.2} s, one thread ({:.2} µs each)",
        n / seconds,
        coords.len(),
        seconds,
        seconds * 1e6 / n
    );
    println!(
        "answers          country {:.1} %, region {:.1} %, town {:.1} % of the positions",
        share(countries),
        share(regions),
        share(towns)
    );
    Ok(())
}
