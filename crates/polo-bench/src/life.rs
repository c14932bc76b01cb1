//! `polo-bench life`: writes the deterministic ten-year life of `polo-life`
//! (Records.json with two phones, Semantic Location History months, GPX
//! trips) into a directory, its ground-truth manifest next to it, and prints
//! the manifest's summary and how long generating took.
//!
//! The manifest goes beside the directory (`OUT.manifest.json` by default)
//! so that `polo import --user alice OUT/*` imports exactly the life's files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use polo_life::{Date, LifeOptions, Scale};

/// `--scale`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LifeScale {
    /// Six months (2021-08 to 2022-01): every property, generated in seconds.
    Small,
    /// `--years` years from 2015-01-01 at realistic rates.
    Full,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(format!("{text:?} is not a date (YYYY-MM-DD)"));
    };
    let bad = |what: &str| format!("{text:?}: {what} is not a number");
    let date = Date::new(
        y.parse().map_err(|_| bad("year"))?,
        m.parse().map_err(|_| bad("month"))?,
        d.parse().map_err(|_| bad("day"))?,
    );
    if polo_domain::Timestamp::from_civil(date.year, date.month, date.day, 0, 0, 0, 0).is_none() {
        return Err(format!("{text:?} is not a valid date"));
    }
    Ok(date)
}

pub fn life(
    out: &Path,
    manifest: Option<PathBuf>,
    scale: LifeScale,
    years: f64,
    seed: u64,
    start: Option<Date>,
) -> anyhow::Result<()> {
    let scale = match scale {
        LifeScale::Small => Scale::Small,
        LifeScale::Full => Scale::Full { years },
    };
    let options = LifeOptions { seed, scale, start };
    let started = Instant::now();
    let written = polo_life::write(out, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    let manifest_path = manifest.unwrap_or_else(|| {
        let mut name = out.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_else(|| "life".into());
        name.push(".manifest.json");
        out.with_file_name(name)
    });
    std::fs::write(&manifest_path, written.to_json())?;
    print!("{}", written.summary());
    println!("generated in {seconds:.1} s into {}; manifest {}", out.display(), manifest_path.display());
    println!("import with: polo import --user USER {}/*", out.display());
    Ok(())
}
