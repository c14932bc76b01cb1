//! `polo export`: streams a user's points from the store into a GPX,
//! GeoJSON or CSV writer, one chunk at a time, so memory stays constant
//! whatever the history size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;

use anyhow::{Context, bail};
use polo_domain::Timestamp;
use polo_domain::time::{MS_PER_DAY, parse_timestamp};
use polo_formats::export::{ExportFormat, Exporter};
use polo_store::PointQuery;

use crate::Outcome;
use crate::cli::ExportArgs;
use crate::commands::require_user;
use crate::config::Config;

/// Parses a `--from`/`--to` bound. A bare date (`2024-05-01`) or month means
/// the start of that period; for `--to` it means the end of it.
pub(crate) fn parse_bound(text: &str, is_end: bool) -> anyhow::Result<Timestamp> {
    let parsed = parse_timestamp(text).with_context(|| format!("cannot read date {text:?}"))?;
    let trimmed = text.trim();
    if !is_end || trimmed.contains(['T', 't', ' ', ':']) {
        return Ok(parsed.time);
    }
    // Reduced precision: advance to the start of the next year, month or day.
    let (y, m, d, ..) = parsed.time.civil(0);
    let next = match trimmed.len() {
        4 => Timestamp::from_civil(y + 1, 1, 1, 0, 0, 0, 0),
        7 => Timestamp::from_civil(if m == 12 { y + 1 } else { y }, if m == 12 { 1 } else { m + 1 }, 1, 0, 0, 0, 0),
        _ => Timestamp::from_civil(y, m, d, 0, 0, 0, 0).map(|t| Timestamp(t.0 + MS_PER_DAY)),
    };
    next.context("date out of range")
}

pub fn run(config: &Config, args: &ExportArgs) -> anyhow::Result<Outcome> {
    let Some(format) = ExportFormat::from_name(&args.format) else {
        bail!("unknown export format {:?}: use gpx, geojson or csv", args.format);
    };
    let store = config.open_store()?;
    let user = require_user(&*store, &args.user)?;
    let devices: HashMap<_, _> = store.list_devices(user.id)?.into_iter().map(|d| (d.id, d.name)).collect();
    let device = match &args.device {
        Some(name) => Some(
            devices
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(id, _)| *id)
                .with_context(|| format!("user {:?} has no device {name:?}", args.user))?,
        ),
        None => None,
    };
    let query = PointQuery {
        user: user.id,
        device,
        from: args.from.as_deref().map(|t| parse_bound(t, false)).transpose()?,
        to: args.to.as_deref().map(|t| parse_bound(t, true)).transpose()?,
    };
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut exporter = Exporter::new(format, BufWriter::with_capacity(256 * 1024, out))?;
    let mut write_error = None;
    store.scan_points(&query, &mut |point| {
        let name = devices.get(&point.device).map_or("unknown", String::as_str);
        match exporter.write(name, &point.fix) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_error = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = write_error {
        // A closed pipe (`polo export ... | head`) is not a failure.
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(Outcome::Success);
        }
        return Err(e).context("cannot write the export");
    }
    let written = exporter.written();
    match exporter.finish() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Outcome::Success),
        other => {
            other.context("cannot write the export")?;
        }
    }
    tracing::info!(points = written, "export finished");
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds_cover_whole_periods() {
        let day = parse_bound("2024-05-01", true).unwrap();
        assert_eq!(day, parse_timestamp("2024-05-02T00:00:00Z").unwrap().time);
        assert_eq!(parse_bound("2024-12", true).unwrap(), parse_timestamp("2025-01-01").unwrap().time);
        assert_eq!(parse_bound("2024", true).unwrap(), parse_timestamp("2025-01-01").unwrap().time);
        assert_eq!(parse_bound("2024-05-01", false).unwrap(), parse_timestamp("2024-05-01T00:00:00Z").unwrap().time);
        let exact = parse_bound("2024-05-01T10:00:00Z", true).unwrap();
        assert_eq!(exact, parse_timestamp("2024-05-01T10:00:00Z").unwrap().time);
    }
}
