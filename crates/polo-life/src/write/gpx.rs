//! GPX tracks of some trips, as a sports watch exports them: GPX 1.1,
//! `creator="Garmin Connect"`, one file per trip with one `<trkseg>` per
//! walk or ride (drives are not recorded), a point every 1–3 s, times in UTC with `Z` and no offset (as most
//! GPX files), elevation on every point. Stays are not recorded (the watch
//! pauses), so a file holds the trip's moves only.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::records::iso;
use crate::Life;
use crate::manifest::{FileEntry, Manifest};
use crate::plan::{Activity, Mode, Segment};
use crate::rng::Rng;
use crate::sample::{Profile, fix_at};

struct Open {
    track: u32,
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    entry: FileEntry,
}

pub(super) struct Writer<'a> {
    dir: &'a Path,
    life: &'a Life,
    gaps: Vec<(i64, i64)>,
    rng: Rng,
    open: Option<Open>,
    files: Vec<FileEntry>,
    points: u64,
}

impl<'a> Writer<'a> {
    pub(super) fn new(dir: &'a Path, life: &'a Life) -> Self {
        Self {
            dir,
            life,
            gaps: super::gap_ranges(life),
            rng: Rng::new(life.seed(), 0x69f0_0001),
            open: None,
            files: Vec::new(),
            points: 0,
        }
    }

    pub(super) fn observe(&mut self, s: &Segment) -> io::Result<()> {
        let (Some(track), Activity::Move { to, mode, .. }) = (s.gpx_track, s.activity) else {
            return Ok(());
        };
        // The watch records walks and rides, not the drive there.
        if !matches!(mode, Mode::Walk | Mode::Bike) {
            return Ok(());
        }
        if self.gaps.iter().any(|&(a, b)| s.start_ms < b && s.end_ms > a) {
            return Ok(());
        }
        if self.open.as_ref().is_none_or(|o| o.track != track) {
            self.close()?;
            let world = self.life.world();
            let town = world.place(to).address.rsplit(", ").next().unwrap_or("trip").replace(' ', "_");
            let name = format!("{}_{town}.gpx", &iso(s.start_ms)[..10]);
            let path = self.dir.join(&name);
            let mut out = BufWriter::new(std::fs::File::create(&path)?);
            write!(
                out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx creator=\"Garmin Connect\" version=\"1.1\"\n  xmlns=\"http://www.topografix.com/GPX/1/1\"\n  xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n  xsi:schemaLocation=\"http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd\">\n  <metadata>\n    <time>{}</time>\n  </metadata>\n  <trk>\n    <name>{town}</name>\n",
                iso(s.start_ms - s.start_ms % 1000)
            )?;
            let entry = FileEntry { name, format: "gpx", ..FileEntry::default() };
            self.open = Some(Open { track, path, out, entry });
        }
        let Some(open) = self.open.as_mut() else { return Ok(()) };
        let kind = if mode == Mode::Walk { "hiking" } else { "cycling" };
        let mut text = format!("    <trkseg>\n      <!-- {kind} -->\n");
        // Whole seconds, 1–3 s apart.
        let mut t = s.start_ms - s.start_ms.rem_euclid(1000) + 1000;
        let mut n = 0;
        while t < s.end_ms {
            let fix = fix_at(self.life.world(), s, t, &Profile::WATCH, &mut self.rng);
            let _ = write!(
                text,
                "      <trkpt lat=\"{:.7}\" lon=\"{:.7}\">\n        <ele>{}.{}</ele>\n        <time>{}</time>\n      </trkpt>\n",
                fix.lat,
                fix.lon,
                fix.altitude_m,
                self.rng.below(10),
                iso(t)
            );
            n += 1;
            t += self.rng.between(1, 3) * 1000;
        }
        text.push_str("    </trkseg>\n");
        open.out.write_all(text.as_bytes())?;
        open.entry.points += n;
        self.points += n;
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(mut open) = self.open.take() {
            open.out.write_all(b"  </trk>\n</gpx>\n")?;
            open.out.flush()?;
            drop(open.out);
            open.entry.bytes = std::fs::metadata(&open.path)?.len();
            self.files.push(open.entry);
        }
        Ok(())
    }

    pub(super) fn finish(mut self, manifest: &mut Manifest) -> io::Result<()> {
        self.close()?;
        manifest.gpx.files = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        manifest.gpx.points = self.points;
        manifest.files.extend(self.files);
        Ok(())
    }
}
