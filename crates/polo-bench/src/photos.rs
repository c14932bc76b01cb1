//! `polo-bench photos`: reading the metadata of a folder of photos and
//! proposing positions for them from a history, against issue 21's target
//! of ≥ 1,000 photos/s for a metadata-only scan of 10,000 photos.
//!
//! The folder is made once under the work directory (`photos-N/`, kept for
//! later runs): `polo_photos::synthetic` files in month folders, nine in ten
//! JPEGs (half with a GPS position, a third with only a wall-clock time),
//! the rest PNG, WebP, MP4 and MOV, each a few kilobytes (the headers a real
//! photo has before its pixels; the scan reads only those). The timed part
//! walks the folder and reads every file with one `MetaReader`, as
//! `polo photos scan` does. The page cache is warm (the files were just
//! written or read before); on a cold disk the scan waits for a few reads per
//! file. A second figure times `geotag::geotag` over a month of history with
//! a fix a minute, for the photos without a position.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use polo_domain::{Coord, Timestamp};
use polo_photos::geotag::{self, HistoryFix};
use polo_photos::meta::MetaReader;
use polo_photos::scan::{Found, Walk};
use polo_photos::synthetic::{ImageFormat, Spec, VideoFormat, image, video};
use polo_timeline::synthetic::Rng;

/// The target for a metadata-only scan.
const TARGET_PER_S: f64 = 1_000.0;

pub fn photos(work: &Path, count: usize) -> anyhow::Result<()> {
    let folder = work.join(format!("photos-{count}"));
    let start = Timestamp::from_civil(2024, 1, 1, 0, 0, 0, 0).context("date")?;
    if !folder.join("done").exists() {
        eprintln!("writing {count} photos and videos to {} …", folder.display());
        write_folder(&folder, count, start)?;
    }
    let mut reader = MetaReader::new();
    let (mut read, mut failed, mut bytes, mut unplaced) = (0u64, 0u64, 0u64, Vec::new());
    let started = Instant::now();
    for found in Walk::new(&folder) {
        let Found::Media(path) = found? else { continue };
        bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match reader.read(&path) {
            Ok(meta) => {
                read += 1;
                // The folder's wall-clock times are in UTC+1.
                if meta.position.is_none()
                    && let Some((at, _)) = meta.taken.and_then(|t| t.resolve(|_| Some(60)))
                {
                    unplaced.push(at);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let per_s = read as f64 / seconds;
    println!(
        "metadata scan: {read} files ({:.1} MB) in {seconds:.2} s = {per_s:.0} photos/s; target ≥ {TARGET_PER_S:.0}/s: {:.1}× ({})",
        bytes as f64 / 1e6,
        per_s / TARGET_PER_S,
        if per_s >= TARGET_PER_S { "PASS" } else { "MISS" }
    );
    anyhow::ensure!(failed == 0, "{failed} files could not be read");

    let history = month_of_history(start);
    let started = Instant::now();
    let mut proposed = 0usize;
    for &at in &unplaced {
        proposed += usize::from(geotag::geotag(&history, at).is_some());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "geotagging: {} photos without a position against {} fixes, {proposed} placed, in {:.1} ms = {:.0} photos/s",
        unplaced.len(),
        history.len(),
        seconds * 1e3,
        unplaced.len() as f64 / seconds
    );
    Ok(())
}

fn write_folder(folder: &Path, count: usize, start: Timestamp) -> anyhow::Result<()> {
    let mut rng = Rng::new(21);
    let _ = std::fs::remove_dir_all(folder);
    for i in 0..count {
        // Spread over a month, in order, as a phone's camera roll is.
        let wall = Timestamp(start.0 + (i as i64) * (30 * 86_400_000 / count.max(1) as i64));
        let position = Coord::from_degrees(rng.range(47.5, 54.5), rng.range(6.0, 14.5)).ok();
        let spec = Spec {
            wall: Some(wall),
            offset_minutes: (i % 3 != 0).then_some(60),
            position: position.filter(|_| i % 2 == 0),
            altitude_m: Some(rng.range(0.0, 800.0)),
            gps_time: None,
            make_model: Some(("Google".into(), "Pixel 8".into())),
        };
        let day = (wall.0 - start.0) / 86_400_000;
        let dir = folder.join(format!("2024-01-{:02}", day + 1));
        std::fs::create_dir_all(&dir)?;
        let (name, bytes) = match i % 20 {
            0 => (format!("PXL_{i:05}.png"), image(ImageFormat::Png, &spec)),
            1 => (format!("PXL_{i:05}.webp"), image(ImageFormat::Webp, &spec)),
            2 => (format!("PXL_{i:05}.mp4"), video(VideoFormat::Mp4, &spec)),
            3 => (format!("IMG_{i:05}.mov"), video(VideoFormat::Mov, &spec)),
            _ => (format!("PXL_{i:05}.jpg"), image(ImageFormat::Jpeg, &spec)),
        };
        std::fs::write(dir.join(name), bytes)?;
    }
    std::fs::write(folder.join("done"), b"")?;
    Ok(())
}

/// A fix a minute for a month, wandering around Lübeck.
fn month_of_history(start: Timestamp) -> Vec<HistoryFix> {
    let mut rng = Rng::new(7);
    (0..30 * 24 * 60)
        .map(|minute: i64| HistoryFix {
            time: Timestamp(start.0 + minute * 60_000),
            coord: Coord::from_degrees(53.8655 + rng.range(-0.01, 0.01), 10.6866 + rng.range(-0.01, 0.01))
                .unwrap_or_else(|_| Coord::from_degrees(53.8655, 10.6866).expect("valid")),
            accuracy_m: Some(15.0),
            offset_minutes: Some(60),
        })
        .collect()
}
