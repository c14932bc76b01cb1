//! XMP sidecars: how a reviewed position reaches photo managers without
//! polo rewriting a single original.
//!
//! darktable, digiKam, Immich and PhotoPrism read `IMG_1234.jpg.xmp` beside
//! `IMG_1234.jpg` (Immich and digiKam also `IMG_1234.xmp`). polo writes the
//! first form, with the position in the EXIF schema of XMP
//! (`exif:GPSLatitude="53,51.930000N"`) and, in a namespace of its own, the
//! confidence it was proposed with, so that its own sidecars are known again:
//!
//! * writing is idempotent: the same position gives the same bytes, and an
//!   unchanged sidecar is not written again ([`Written::Unchanged`]);
//! * a sidecar polo did not write (in either form) is never overwritten: the
//!   photo is reported instead ([`PhotoError::ForeignSidecar`]);
//! * undoing removes polo's sidecars and nothing else ([`remove`]).
//!
//! Sidecars are written to a temporary file and renamed into place, so a
//! crash leaves either the old sidecar or the new one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use polo_domain::{Coord, Timestamp};

use crate::error::PhotoError;
use crate::geotag::Geotag;

/// The XMP namespace of polo's own properties; its presence marks a sidecar as polo's.
pub const NAMESPACE: &str = "https://github.com/polo-location/polo/ns/geotag/1.0/";

/// What writing a sidecar did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// There was none.
    Created,
    /// polo's sidecar held another position.
    Updated,
    /// polo's sidecar already held this one.
    Unchanged,
}

/// `IMG_1234.jpg.xmp` for `IMG_1234.jpg`: the sidecar polo writes.
#[must_use]
pub fn sidecar_path(photo: &Path) -> PathBuf {
    let mut name = photo.as_os_str().to_owned();
    name.push(".xmp");
    PathBuf::from(name)
}

/// `IMG_1234.xmp` for `IMG_1234.jpg`: the other form photo managers read.
#[must_use]
pub fn short_sidecar_path(photo: &Path) -> PathBuf {
    photo.with_extension("xmp")
}

/// Whether `content` is a sidecar polo wrote.
#[must_use]
pub fn is_polos(content: &str) -> bool {
    content.contains(NAMESPACE)
}

/// The sidecar's text for `tag`, proposed for a photo taken at `taken`.
#[must_use]
pub fn render(tag: &Geotag, taken: Timestamp) -> String {
    format!(
        concat!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n",
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"polo\">\n",
            " <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n",
            "  <rdf:Description rdf:about=\"\"\n",
            "    xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"\n",
            "    xmlns:polo=\"{namespace}\"\n",
            "    exif:GPSVersionID=\"2.3.0.0\"\n",
            "    exif:GPSMapDatum=\"WGS-84\"\n",
            "    exif:GPSLatitude=\"{lat}\"\n",
            "    exif:GPSLongitude=\"{lon}\"\n",
            "    polo:Source=\"location history\"\n",
            "    polo:CaptureTime=\"{taken}\"\n",
            "    polo:Confidence=\"{confidence}\"\n",
            "    polo:ErrorMeters=\"{error:.0}\"\n",
            "    polo:NearestFixSeconds=\"{nearest:.0}\"\n",
            "    polo:Moving=\"{moving}\"/>\n",
            " </rdf:RDF>\n",
            "</x:xmpmeta>\n",
            "<?xpacket end=\"w\"?>\n"
        ),
        namespace = NAMESPACE,
        lat = xmp_coordinate(tag.coord.lat(), 'N', 'S'),
        lon = xmp_coordinate(tag.coord.lon(), 'E', 'W'),
        taken = taken.to_rfc3339(None),
        confidence = tag.confidence.name(),
        error = tag.error_m,
        nearest = tag.nearest_fix_s,
        moving = tag.moving,
    )
}

/// XMP's GPS coordinate: degrees, then decimal minutes, then the hemisphere
/// (`53,51.930000N`): six decimals of a minute are 2 mm.
fn xmp_coordinate(degrees: f64, positive: char, negative: char) -> String {
    let hemisphere = if degrees < 0.0 { negative } else { positive };
    let degrees = degrees.abs();
    let mut whole = degrees.trunc();
    let mut minutes = ((degrees - whole) * 60.0 * 1e6).round() / 1e6;
    if minutes >= 60.0 {
        whole += 1.0;
        minutes -= 60.0;
    }
    format!("{whole:.0},{minutes:09.6}{hemisphere}")
}

/// The position a sidecar holds (polo's, or any that uses XMP's EXIF schema as attributes).
#[must_use]
pub fn read_position(content: &str) -> Option<Coord> {
    let attribute = |name: &str| {
        let start = content.find(&format!("{name}=\""))? + name.len() + 2;
        let end = content[start..].find('"')? + start;
        Some(&content[start..end])
    };
    let parse = |text: &str| -> Option<f64> {
        let (degrees, rest) = text.split_once(',')?;
        let hemisphere = rest.chars().last()?;
        let minutes: f64 = rest[..rest.len() - hemisphere.len_utf8()].parse().ok()?;
        let value = degrees.parse::<f64>().ok()? + minutes / 60.0;
        Some(if matches!(hemisphere, 'S' | 'W') { -value } else { value })
    };
    Coord::from_degrees(parse(attribute("exif:GPSLatitude")?)?, parse(attribute("exif:GPSLongitude")?)?).ok()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PhotoError + '_ {
    move |source| PhotoError::Io { path: path.to_owned(), source }
}

/// Reads a sidecar, `None` when there is none.
fn existing(path: &Path) -> Result<Option<String>, PhotoError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes polo's sidecar for `photo` with `tag`.
///
/// # Errors
/// [`PhotoError::ForeignSidecar`] when a sidecar polo did not write exists
/// (in either form); [`PhotoError::Io`] when it cannot be written.
pub fn write(photo: &Path, tag: &Geotag, taken: Timestamp) -> Result<Written, PhotoError> {
    let path = sidecar_path(photo);
    let short = short_sidecar_path(photo);
    if short != path
        && let Some(content) = existing(&short)?
        && !is_polos(&content)
    {
        return Err(PhotoError::ForeignSidecar { path: photo.to_owned(), sidecar: short });
    }
    let text = render(tag, taken);
    let written = match existing(&path)? {
        Some(content) if !is_polos(&content) => {
            return Err(PhotoError::ForeignSidecar { path: photo.to_owned(), sidecar: path });
        }
        Some(content) if content == text => return Ok(Written::Unchanged),
        Some(_) => Written::Updated,
        None => Written::Created,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".polo-tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io(&temporary))?;
    fs::rename(&temporary, &path).map_err(io(&path))?;
    Ok(written)
}

/// Removes polo's sidecar of `photo`; `false` when it has none (a sidecar
/// polo did not write is left alone and also gives `false`).
///
/// # Errors
/// [`PhotoError::Io`] when it cannot be read or removed.
pub fn remove(photo: &Path) -> Result<bool, PhotoError> {
    let path = sidecar_path(photo);
    match existing(&path)? {
        Some(content) if is_polos(&content) => {
            fs::remove_file(&path).map_err(io(&path))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geotag::Confidence;

    fn tag(lat: f64, lon: f64) -> Geotag {
        Geotag {
            coord: Coord::from_degrees(lat, lon).unwrap(),
            confidence: Confidence::High,
            error_m: 12.0,
            nearest_fix_s: 90.0,
            accuracy_m: 10.0,
            moving: false,
        }
    }

    #[test]
    fn coordinates_are_written_as_xmp_wants_and_read_back() {
        assert_eq!(xmp_coordinate(53.8655, 'N', 'S'), "53,51.930000N");
        assert_eq!(xmp_coordinate(-74.00597, 'E', 'W'), "74,00.358200W");
        // A value a hair under a whole degree rounds up to it, not to 60 minutes.
        assert_eq!(xmp_coordinate(9.9999999999, 'N', 'S'), "10,00.000000N");
        let text = render(&tag(-33.8688, 151.2093), Timestamp(0));
        let back = read_position(&text).unwrap();
        assert!((back.lat() + 33.8688).abs() < 1e-6 && (back.lon() - 151.2093).abs() < 1e-6);
    }

    #[test]
    fn writing_is_idempotent_and_undo_removes_only_polos_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("IMG_0001.jpg");
        fs::write(&photo, b"not really a jpeg").unwrap();
        assert_eq!(write(&photo, &tag(53.8655, 10.6866), Timestamp(0)).unwrap(), Written::Created);
        let first = fs::read(sidecar_path(&photo)).unwrap();
        assert_eq!(write(&photo, &tag(53.8655, 10.6866), Timestamp(0)).unwrap(), Written::Unchanged);
        assert_eq!(fs::read(sidecar_path(&photo)).unwrap(), first);
        assert_eq!(write(&photo, &tag(53.9, 10.7), Timestamp(0)).unwrap(), Written::Updated);
        assert_eq!(fs::read(&photo).unwrap(), b"not really a jpeg", "the original is never touched");
        assert!(remove(&photo).unwrap());
        assert!(!sidecar_path(&photo).exists());
        assert!(!remove(&photo).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn a_sidecar_of_another_program_is_never_overwritten_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        for foreign in ["IMG_0002.jpg.xmp", "IMG_0002.xmp"] {
            let photo = dir.path().join("IMG_0002.jpg");
            let sidecar = dir.path().join(foreign);
            fs::write(&sidecar, "<x:xmpmeta>darktable's edits</x:xmpmeta>").unwrap();
            match write(&photo, &tag(53.8655, 10.6866), Timestamp(0)) {
                Err(PhotoError::ForeignSidecar { sidecar: found, .. }) => assert_eq!(found, sidecar),
                other => panic!("{other:?}"),
            }
            assert!(!remove(&photo).unwrap());
            assert_eq!(fs::read_to_string(&sidecar).unwrap(), "<x:xmpmeta>darktable's edits</x:xmpmeta>");
            fs::remove_file(&sidecar).unwrap();
        }
    }
}
