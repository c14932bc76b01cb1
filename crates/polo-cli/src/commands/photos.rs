//! `polo photos scan | geotag | undo`: photos and videos in a folder, placed
//! by the user's location history.
//!
//! `scan` reads every file's metadata ([`polo_photos::meta`]) and, for each
//! photo without a position, proposes one from the history
//! ([`polo_photos::geotag`]) with its confidence; a photo that states only a
//! wall-clock time gets its offset from the time zone at its own position,
//! or else from the history. `geotag` writes
//! the proposals at or above a confidence as XMP sidecars
//! ([`polo_photos::sidecar`]); `undo` removes them. Originals are only ever
//! read.
//!
//! Both add what they read to the user's photo library in the store
//! ([`polo_derived::photos`]; `--no-save` only lists), which the timeline
//! and the map show: a reference to each file by its absolute path, never a
//! copy. Scanning a folder again updates the rows of files that changed and
//! removes those of files no longer there. A proposal whose sidecar `geotag`
//! wrote (or found unchanged) is marked applied in its row, as the web app's
//! review page does; `undo --user` marks the photos it undid as proposals
//! again.
//!
//! The history is read through a window of a few days around the photo at
//! hand, kept while the next photo falls inside it: photos in a folder are
//! mostly in time order, so a folder of thousands reads each stretch of the
//! history about once. Fixes the timeline leaves out (teleports) are left
//! out here too.

use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, bail};
use polo_derived::photos::{Library, PhotoRow, Put};
use polo_domain::{Timestamp, UserId};
use polo_photos::geotag::{self, Confidence, Geotag, HistoryFix};
use polo_photos::meta::MetaReader;
use polo_photos::scan::{Found, Walk};
use polo_photos::sidecar::{self, Written};
use polo_photos::{CaptureTime, PhotoError, PhotoMeta};
use polo_store::{PointQuery, Store};
use polo_timeline::ZoneLookup;
use serde_json::json;

use crate::Outcome;
use crate::cli::{GeotagArgs, PhotosArgs, PhotosCommand};
use crate::commands::require_user;
use crate::config::Config;

/// How much history one read loads after the photo's time (before it: the
/// geotag reach plus the widest offset).
const WINDOW_AHEAD_MS: i64 = 3 * 86_400_000;
/// How far a wall-clock time may be from UTC (UTC−12 to UTC+14, rounded up).
const MAX_OFFSET_MS: i64 = 14 * 3_600_000;

pub fn run(config: &Config, command: &PhotosCommand) -> anyhow::Result<Outcome> {
    match command {
        PhotosCommand::Scan(args) => scan(config, args, None),
        PhotosCommand::Geotag(args) => {
            let Some(min) = Confidence::from_name(&args.min_confidence) else {
                bail!("unknown confidence {:?}: use high, medium or low", args.min_confidence);
            };
            scan(config, &args.photos, Some((min, args)))
        }
        PhotosCommand::Undo { path, user } => undo(config, path, user.as_deref()),
    }
}

/// One photo, placed.
struct Placed {
    meta: PhotoMeta,
    /// The instant and the offset (and where the offset came from).
    when: Option<(Timestamp, Option<i16>, &'static str)>,
    proposal: Option<Geotag>,
}

fn scan(config: &Config, args: &PhotosArgs, geotag: Option<(Confidence, &GeotagArgs)>) -> anyhow::Result<Outcome> {
    if !args.path.exists() {
        bail!("{}: no such file or folder", args.path.display());
    }
    let store = config.open_store()?;
    let user = require_user(&*store, &args.user)?;
    let zones = polo_tz::BundledZones::builtin().context("cannot load the bundled time zones")?;
    let mut history = History::new(&*store, user.id, &zones);
    let mut reader = MetaReader::new();
    let mut out = std::io::stdout().lock();
    let mut tally = Tally::default();
    let root = std::fs::canonicalize(&args.path).with_context(|| format!("{}", args.path.display()))?;
    let dry_run = geotag.is_some_and(|(_, options)| options.dry_run);
    let mut library = if args.no_save || dry_run { None } else { Some(Library::load(&*store, user.id)?) };
    let mut seen: HashSet<String> = HashSet::new();
    for found in Walk::new(&root) {
        let path = match found {
            Ok(Found::Media(path)) => path,
            Ok(Found::Other(_)) => {
                tally.other += 1;
                continue;
            }
            Err(e) => {
                tally.unreadable += 1;
                report_error(&mut out, args.json, &e)?;
                continue;
            }
        };
        let meta = match reader.read(&path) {
            Ok(meta) => meta,
            Err(e) => {
                tally.unreadable += 1;
                report_error(&mut out, args.json, &e)?;
                continue;
            }
        };
        let placed = place(meta, &mut history)?;
        tally.count(&placed);
        let written = match (geotag, &placed.proposal, placed.when) {
            (Some((min, options)), Some(proposal), Some((at, _, _))) if proposal.confidence >= min => {
                if options.dry_run { Some(Ok(None)) } else { Some(sidecar::write(&path, proposal, at).map(Some)) }
            }
            _ => None,
        };
        if let Some(library) = &mut library {
            let mut row = library_row(&path, &placed);
            // A sidecar in place is an applied proposal, as the review page's apply makes one.
            if matches!(written, Some(Ok(Some(_)))) && row.position_from.as_deref() == Some("history") {
                row.applied = Some(now_ms());
            }
            seen.insert(row.path.clone());
            let (_, put) = library.put(row)?;
            tally.saved[put as usize] += 1;
        }
        let written = match written {
            Some(Err(e)) => {
                tally.sidecar_errors += 1;
                report_error(&mut out, args.json, &e)?;
                continue;
            }
            Some(Ok(written)) => {
                tally.written(written);
                Some(written)
            }
            None => None,
        };
        report(&mut out, args.json, &path, &placed, written)?;
    }
    if let Some(library) = &mut library {
        // Files gone from a scanned folder leave the library; unreadable ones stay as they were.
        if root.is_dir() {
            let mut folder = root.to_string_lossy().into_owned();
            if !folder.ends_with(std::path::MAIN_SEPARATOR) {
                folder.push(std::path::MAIN_SEPARATOR);
            }
            for path in library.paths_under(&folder) {
                if !seen.contains(&path) && !Path::new(&path).exists() && library.remove(&path)? {
                    tally.removed += 1;
                }
            }
        }
        library.flush()?;
        tally.library = Some(library.len());
    }
    tally.print(&mut out, args.json, geotag.map(|(min, options)| (min, options.dry_run)))?;
    Ok(if tally.unreadable + tally.sidecar_errors > 0 { Outcome::Rejected } else { Outcome::Success })
}

/// Now, UTC ms.
fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The library's row for a photo read from `path` (absolute).
fn library_row(path: &Path, placed: &Placed) -> PhotoRow {
    let meta = &placed.meta;
    let (position, position_from) = match (meta.position, placed.proposal) {
        (Some(coord), _) => (Some(coord), Some("file")),
        (None, Some(proposal)) => (Some(proposal.coord), Some("history")),
        (None, None) => (None, None),
    };
    let proposal = placed.proposal.filter(|_| meta.position.is_none());
    PhotoRow {
        path: path.to_string_lossy().into_owned(),
        media: meta.kind.name().to_owned(),
        taken: placed.when.map(|(at, _, _)| at.0),
        offset_min: placed.when.and_then(|(_, offset, _)| offset),
        offset_from: placed.when.map(|(_, _, from)| from.to_owned()),
        lat_e7: position.map(|c| c.lat_e7),
        lon_e7: position.map(|c| c.lon_e7),
        position_from: position_from.map(str::to_owned),
        confidence: proposal.map(|p| p.confidence.name().to_owned()),
        error_m: proposal.map(|p| p.error_m.round()),
        nearest_fix_s: proposal.map(|p| p.nearest_fix_s),
        moving: proposal.map(|p| p.moving),
        applied: None,
        altitude_m: meta.altitude_m,
        camera: meta.camera.clone(),
    }
}

/// The photo's instant (the file's own, or its wall-clock time placed by
/// the history's offset) and, when it has no position, the history's.
fn place(meta: PhotoMeta, history: &mut History<'_>) -> anyhow::Result<Placed> {
    let when = match meta.taken {
        Some(CaptureTime::Zoned { at, offset_minutes }) => Some((at, Some(offset_minutes), "file")),
        Some(CaptureTime::Utc(at)) => {
            let fixes = history.around(Timestamp(at.0 - MAX_OFFSET_MS), Timestamp(at.0 + MAX_OFFSET_MS))?;
            match geotag::offset_at_instant(fixes, at) {
                Some(offset) => Some((at, Some(offset), "history")),
                None => Some((at, None, "none")),
            }
        }
        // A photo that says where it was taken: the time zone there says its offset.
        Some(CaptureTime::Local(wall)) if let Some(coord) = meta.position => {
            let offset = history.zone_offset_at_wall(coord, wall);
            Some((Timestamp(wall.0 - i64::from(offset) * 60_000), Some(offset), "position"))
        }
        Some(CaptureTime::Local(wall)) => {
            let fixes = history.around(Timestamp(wall.0 - MAX_OFFSET_MS), Timestamp(wall.0 + MAX_OFFSET_MS))?;
            geotag::offset_at_wall(fixes, wall)
                .map(|offset| (Timestamp(wall.0 - i64::from(offset) * 60_000), Some(offset), "history"))
        }
        None => None,
    };
    let proposal = match (meta.position, when) {
        (None, Some((at, _, _))) => {
            let reach = geotag::MAX_GAP_MS;
            geotag::geotag(history.around(Timestamp(at.0 - reach), Timestamp(at.0 + reach))?, at)
        }
        _ => None,
    };
    Ok(Placed { meta, when, proposal })
}

/// The user's fixes (all devices, flagged ones left out, offsets known) in
/// a window that is kept while requests fall inside it.
struct History<'a> {
    store: &'a dyn Store,
    user: UserId,
    zones: &'a dyn ZoneLookup,
    loaded: Option<(Timestamp, Timestamp)>,
    fixes: Vec<HistoryFix>,
}

impl<'a> History<'a> {
    fn new(store: &'a dyn Store, user: UserId, zones: &'a dyn ZoneLookup) -> Self {
        Self { store, user, zones, loaded: None, fixes: Vec::new() }
    }

    /// The offset of the time zone at `coord` at the wall-clock time `wall`
    /// (the offset at the instant the wall clock would be in that offset;
    /// around a DST change, the offset after it).
    fn zone_offset_at_wall(&self, coord: polo_domain::Coord, wall: Timestamp) -> i16 {
        let zone = self.zones.zone_at(coord);
        let guess = self.zones.zone_offset_minutes(zone, wall);
        self.zones.zone_offset_minutes(zone, Timestamp(wall.0 - i64::from(guess) * 60_000))
    }

    /// The fixes in `[from, to]` (and possibly more around them), by time.
    fn around(&mut self, from: Timestamp, to: Timestamp) -> anyhow::Result<&[HistoryFix]> {
        if !self.loaded.is_some_and(|(a, b)| a <= from && to <= b) {
            let (start, end) = (from, Timestamp(to.0.max(from.0 + WINDOW_AHEAD_MS)));
            self.load(start, end)?;
            self.loaded = Some((start, end));
        }
        let first = self.fixes.partition_point(|f| f.time < from);
        let last = self.fixes.partition_point(|f| f.time <= to);
        Ok(&self.fixes[first..last])
    }

    fn load(&mut self, from: Timestamp, to: Timestamp) -> anyhow::Result<()> {
        let mut flagged = HashSet::new();
        for device in self.store.list_devices(self.user)? {
            let times = polo_derived::outliers::flagged_times(self.store, self.user, device.id, Some(from), Some(to))?;
            flagged.extend(times.into_iter().map(|time| (device.id, time)));
        }
        self.fixes.clear();
        let query = PointQuery { user: self.user, device: None, from: Some(from), to: Some(Timestamp(to.0 + 1)) };
        let zones = self.zones;
        let fixes = &mut self.fixes;
        self.store.scan_points(&query, &mut |point| {
            if !flagged.contains(&(point.device, point.fix.time.0)) {
                let fix = &point.fix;
                let offset = fix
                    .utc_offset_minutes
                    .unwrap_or_else(|| zones.zone_offset_minutes(zones.zone_at(fix.coord), fix.time));
                fixes.push(HistoryFix {
                    time: fix.time,
                    coord: fix.coord,
                    accuracy_m: fix.horizontal_accuracy_cm.map(|cm| f64::from(cm) / 100.0),
                    offset_minutes: Some(offset),
                });
            }
            ControlFlow::Continue(())
        })?;
        // Several devices' points come device by device.
        self.fixes.sort_by_key(|f| f.time);
        Ok(())
    }
}

fn report_error(out: &mut impl Write, json: bool, error: &PhotoError) -> std::io::Result<()> {
    if json { writeln!(out, "{}", json!({ "error": error.to_string() })) } else { writeln!(out, "unreadable  {error}") }
}

fn report(
    out: &mut impl Write,
    json: bool,
    path: &Path,
    placed: &Placed,
    written: Option<Option<Written>>,
) -> std::io::Result<()> {
    let meta = &placed.meta;
    if json {
        let position = meta.position.or(placed.proposal.map(|p| p.coord));
        let value = json!({
            "path": path,
            "kind": meta.kind.name(),
            "taken": placed.when.map(|(at, offset, _)| at.to_rfc3339(offset)),
            "offset_from": placed.when.map(|(_, _, from)| from),
            "camera": meta.camera,
            "position": position.map(|c| json!({ "lat": c.lat(), "lon": c.lon() })),
            "position_from": if meta.position.is_some() { Some("file") } else { placed.proposal.map(|_| "history") },
            "altitude_m": meta.altitude_m,
            "confidence": placed.proposal.map(|p| p.confidence.name()),
            "error_m": placed.proposal.map(|p| p.error_m.round()),
            "nearest_fix_s": placed.proposal.map(|p| p.nearest_fix_s),
            "moving": placed.proposal.map(|p| p.moving),
            "sidecar": written.map(|w| w.map_or("would be written", written_name)),
        });
        return writeln!(out, "{value}");
    }
    let when = match placed.when {
        Some((at, offset, "history")) => format!("{} (local time from the history)", at.to_rfc3339(offset)),
        Some((at, offset, _)) => at.to_rfc3339(offset),
        None => match meta.taken {
            Some(CaptureTime::Local(_)) => "no offset (no history that day)".to_owned(),
            _ => "no time".to_owned(),
        },
    };
    let place = match (meta.position, placed.proposal) {
        (Some(c), _) => format!("at {:.5}, {:.5} (in the file)", c.lat(), c.lon()),
        (None, Some(p)) => format!(
            "proposed {:.5}, {:.5}: {} confidence, ±{:.0} m, nearest fix {}, {}",
            p.coord.lat(),
            p.coord.lon(),
            p.confidence.name(),
            p.error_m,
            duration(p.nearest_fix_s),
            if p.moving { "moving" } else { "at rest" }
        ),
        (None, None) if placed.when.is_some() => "no position: no fix within 6 h".to_owned(),
        (None, None) => "no position".to_owned(),
    };
    let sidecar = match written {
        Some(Some(w)) => format!("; sidecar {}", written_name(w)),
        Some(None) => "; sidecar would be written".to_owned(),
        None => String::new(),
    };
    writeln!(out, "{}  {}  {when}  {place}{sidecar}", path.display(), meta.kind.name())
}

fn written_name(written: Written) -> &'static str {
    match written {
        Written::Created => "written",
        Written::Updated => "updated",
        Written::Unchanged => "unchanged",
    }
}

fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// What a run found and did.
#[derive(Default)]
struct Tally {
    photos: u64,
    with_position: u64,
    proposed: [u64; 3],
    unplaced: u64,
    without_time: u64,
    unreadable: u64,
    other: u64,
    written: [u64; 3],
    would_write: u64,
    sidecar_errors: u64,
    /// Library rows added, updated and unchanged ([`Put`] order).
    saved: [u64; 3],
    /// Library rows of files no longer there.
    removed: u64,
    /// Photos in the library afterwards; `None` with `--no-save`.
    library: Option<usize>,
}

impl Tally {
    fn count(&mut self, placed: &Placed) {
        self.photos += 1;
        match (placed.meta.position, placed.proposal, placed.when) {
            (Some(_), _, _) => self.with_position += 1,
            (None, Some(p), _) => self.proposed[p.confidence as usize] += 1,
            (None, None, Some(_)) => self.unplaced += 1,
            (None, None, None) => self.without_time += 1,
        }
    }

    fn written(&mut self, written: Option<Written>) {
        match written {
            Some(w) => self.written[w as usize] += 1,
            None => self.would_write += 1,
        }
    }

    fn print(&self, out: &mut impl Write, json: bool, geotag: Option<(Confidence, bool)>) -> std::io::Result<()> {
        let [low, medium, high] = self.proposed;
        let [created, updated, unchanged] = self.written;
        if json {
            let summary = json!({ "summary": {
                "photos": self.photos, "with_position": self.with_position,
                "proposed": { "high": high, "medium": medium, "low": low },
                "no_fix_nearby": self.unplaced, "no_time": self.without_time,
                "unreadable": self.unreadable, "not_photos": self.other,
                "sidecars": { "written": created, "updated": updated, "unchanged": unchanged,
                              "would_be_written": self.would_write, "refused": self.sidecar_errors },
                "library": self.library.map(|photos| json!({
                    "added": self.saved[Put::Added as usize], "updated": self.saved[Put::Updated as usize],
                    "unchanged": self.saved[Put::Unchanged as usize], "removed": self.removed, "photos": photos,
                })),
            }});
            return writeln!(out, "{summary}");
        }
        writeln!(
            out,
            "\n{} photos and videos: {} with a position of their own; positions proposed from the history for {} \
             ({high} high, {medium} medium, {low} low confidence); {} with no fix within 6 h; {} without a usable time; \
             {} unreadable; {} other files not read",
            self.photos,
            self.with_position,
            high + medium + low,
            self.unplaced,
            self.without_time,
            self.unreadable,
            self.other
        )?;
        if let Some(photos) = self.library {
            writeln!(
                out,
                "library: {} added, {} updated, {} unchanged, {} removed (gone from the folder); {photos} photos and videos \
                 in all, on the timeline and the map",
                self.saved[Put::Added as usize],
                self.saved[Put::Updated as usize],
                self.saved[Put::Unchanged as usize],
                self.removed
            )?;
        }
        match geotag {
            Some((min, true)) => writeln!(
                out,
                "dry run: {} sidecars would be written (confidence {} and above); nothing was written",
                self.would_write,
                min.name()
            ),
            Some((min, false)) => writeln!(
                out,
                "sidecars (confidence {} and above): {created} written, {updated} updated, {unchanged} unchanged, \
                 {} refused; `polo photos undo` removes them",
                min.name(),
                self.sidecar_errors
            ),
            None => Ok(()),
        }
    }
}

fn undo(config: &Config, path: &Path, user: Option<&str>) -> anyhow::Result<Outcome> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    let store = match user {
        Some(_) => Some(config.open_store()?),
        None => None,
    };
    let mut library = match (&store, user) {
        (Some(store), Some(name)) => Some(Library::load(&**store, require_user(&**store, name)?.id)?),
        _ => None,
    };
    let (mut removed, mut failed, mut unapplied) = (0u64, 0u64, 0u64);
    for found in Walk::new(path) {
        let photo = match found {
            Ok(Found::Media(photo)) => photo,
            Ok(Found::Other(_)) => continue,
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        };
        match sidecar::remove(&photo) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        }
        if let Some(library) = &mut library {
            let absolute = std::fs::canonicalize(&photo).unwrap_or(photo);
            if library.set_applied(&absolute.to_string_lossy(), None)? {
                unapplied += 1;
            }
        }
    }
    println!("{removed} sidecars polo wrote were removed");
    if let Some(library) = &mut library {
        library.flush()?;
        println!("{unapplied} positions in the library are proposals again (the review page lists them)");
    }
    Ok(if failed > 0 { Outcome::Failed } else { Outcome::Success })
}
