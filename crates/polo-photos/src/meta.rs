//! What a photo or video file says about itself: when, where, with what.
//!
//! [`MetaReader`] reads the metadata only (nom-exif reads the headers and
//! seeks past the pixels), so a scan costs a few reads per file whatever
//! its size. It keeps one parser and reuses its buffer across files.
//!
//! * **When:** EXIF `DateTimeOriginal` (else `CreateDate`, else
//!   `ModifyDate`) with its `OffsetTime*` when present. Without an offset,
//!   the GPS time stamp of the same file (UTC) gives one
//!   ([`CaptureTime::from_wall_and_utc`]); without either it stays a
//!   wall-clock time for the history to place ([`crate::capture`]). Videos:
//!   Apple's `creationdate` (with its offset) or the movie header's creation
//!   time (UTC); a header time of 0 (1904, "not set") is no time.
//! * **Where:** the EXIF GPS position, or QuickTime's ISO 6709 location
//!   (`©xyz`, Apple's `location.ISO6709`). A position of exactly 0°, 0° is
//!   what cameras without a fix write, and counts as none.
//! * **With what:** make and model ("Apple iPhone X").

use std::path::Path;

use nom_exif::{EntryValue, Exif, ExifDateTime, ExifTag, GPSInfo, MediaParser, MediaSource, TrackInfo, TrackInfoTag};
use polo_domain::{Coord, Timestamp};

use crate::capture::CaptureTime;
use crate::error::PhotoError;

/// Photo or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A still image.
    Image,
    /// A video (or a Motion Photo's video).
    Video,
}

impl MediaKind {
    /// `"image"` or `"video"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }
}

/// The metadata polo uses.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoMeta {
    /// Photo or video.
    pub kind: MediaKind,
    /// When it was taken, if the file says.
    pub taken: Option<CaptureTime>,
    /// Where, if the file says.
    pub position: Option<Coord>,
    /// Altitude above sea level in metres, if the file says.
    pub altitude_m: Option<f64>,
    /// Make and model of the camera.
    pub camera: Option<String>,
}

impl PhotoMeta {
    /// A file that says nothing about itself.
    #[must_use]
    pub fn empty(kind: MediaKind) -> Self {
        Self { kind, taken: None, position: None, altitude_m: None, camera: None }
    }
}

/// Reads [`PhotoMeta`] from files, reusing one parser.
pub struct MetaReader {
    parser: MediaParser,
}

impl std::fmt::Debug for MetaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaReader").finish_non_exhaustive()
    }
}

impl Default for MetaReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MetaReader {
    /// A reader with an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self { parser: MediaParser::new() }
    }

    /// The metadata of the photo or video at `path`.
    ///
    /// # Errors
    /// [`PhotoError::Io`] when the file cannot be read,
    /// [`PhotoError::Unreadable`] when it is not a format polo reads or its
    /// metadata is damaged.
    pub fn read(&mut self, path: &Path) -> Result<PhotoMeta, PhotoError> {
        let unreadable = |e: nom_exif::Error| match e {
            nom_exif::Error::Io(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                PhotoError::Unreadable {
                    path: path.to_owned(),
                    reason: "the file ends inside its metadata (truncated or damaged)".into(),
                }
            }
            nom_exif::Error::Io(source) => PhotoError::Io { path: path.to_owned(), source },
            other => PhotoError::Unreadable { path: path.to_owned(), reason: other.to_string() },
        };
        let source = MediaSource::open(path).map_err(unreadable)?;
        match source.kind() {
            nom_exif::MediaKind::Image => match self.parser.parse_exif(source) {
                Ok(iter) => Ok(image_meta(&Exif::from(iter))),
                // A photo without EXIF (a screenshot, an edited export): nothing to say.
                Err(nom_exif::Error::ExifNotFound) => Ok(PhotoMeta::empty(MediaKind::Image)),
                Err(e) => Err(unreadable(e)),
            },
            nom_exif::MediaKind::Track => match self.parser.parse_track(source) {
                Ok(track) => Ok(video_meta(&track)),
                Err(nom_exif::Error::TrackNotFound) => Ok(PhotoMeta::empty(MediaKind::Video)),
                Err(e) => Err(unreadable(e)),
            },
        }
    }
}

fn image_meta(exif: &Exif) -> PhotoMeta {
    let gps = exif.gps_info();
    let wall = [ExifTag::DateTimeOriginal, ExifTag::CreateDate, ExifTag::ModifyDate]
        .into_iter()
        .find_map(|tag| exif.get(tag).and_then(EntryValue::as_datetime));
    let gps_time = gps_time_stamp(exif);
    let taken = match wall {
        Some(ExifDateTime::Aware(at)) => zoned(at.timestamp_millis(), at.offset().local_minus_utc()),
        Some(ExifDateTime::Naive(naive)) => {
            let wall = Timestamp(naive.and_utc().timestamp_millis());
            Some(gps_time.and_then(|utc| CaptureTime::from_wall_and_utc(wall, utc)).unwrap_or(CaptureTime::Local(wall)))
        }
        None => gps_time.map(CaptureTime::Utc),
    };
    let make_model = [ExifTag::Make, ExifTag::Model].map(|tag| exif.get(tag).and_then(EntryValue::as_str));
    assemble(MediaKind::Image, taken, gps, make_model)
}

fn video_meta(track: &TrackInfo) -> PhotoMeta {
    let taken = match track.get(TrackInfoTag::CreateDate) {
        Some(EntryValue::DateTime(at)) if at.timestamp() > 0 => {
            let offset = at.offset().local_minus_utc();
            // The movie header's time is UTC (offset 0); Apple's key carries the local offset.
            if offset == 0 {
                Some(CaptureTime::Utc(Timestamp(at.timestamp_millis())))
            } else {
                zoned(at.timestamp_millis(), offset)
            }
        }
        _ => None,
    };
    let make_model = [TrackInfoTag::Make, TrackInfoTag::Model].map(|tag| track.get(tag).and_then(EntryValue::as_str));
    assemble(MediaKind::Video, taken, track.gps_info(), make_model)
}

fn assemble(
    kind: MediaKind,
    taken: Option<CaptureTime>,
    gps: Option<&GPSInfo>,
    [make, model]: [Option<&str>; 2],
) -> PhotoMeta {
    PhotoMeta {
        kind,
        taken,
        position: gps.and_then(gps_position),
        altitude_m: gps.and_then(GPSInfo::altitude_meters).filter(|a| a.is_finite()),
        camera: camera(make, model),
    }
}

fn zoned(millis: i64, offset_seconds: i32) -> Option<CaptureTime> {
    let offset_minutes = i16::try_from(offset_seconds / 60).ok()?;
    Some(CaptureTime::Zoned { at: Timestamp(millis), offset_minutes })
}

fn gps_position(gps: &GPSInfo) -> Option<Coord> {
    // `Coord` refuses 0°, 0° (Null Island), what cameras without a fix write.
    Coord::from_degrees(gps.latitude_decimal()?, gps.longitude_decimal()?).ok()
}

/// EXIF `GPSDateStamp` ("2024:07:14") and `GPSTimeStamp` (h, m, s as rationals): UTC.
fn gps_time_stamp(exif: &Exif) -> Option<Timestamp> {
    let date = exif.get(ExifTag::GPSDateStamp)?.as_str()?;
    let time = exif.get(ExifTag::GPSTimeStamp)?.as_urational_slice()?;
    let mut fields = date.trim().split([':', '-']).map(|f| f.parse::<u32>().ok());
    let (year, month, day) = (fields.next()??, fields.next()??, fields.next()??);
    let [h, m, s] = time else { return None };
    let seconds = s.to_f64()?;
    let (whole, millis) = (seconds.trunc(), ((seconds.fract() * 1000.0).round() as u32).min(999));
    let year = i32::try_from(year).ok()?;
    Timestamp::from_civil(year, month, day, h.to_f64()? as u32, m.to_f64()? as u32, whole as u32, millis)
}

fn clean(text: Option<&str>) -> Option<&str> {
    text.map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace())).filter(|s| !s.is_empty())
}

fn camera(make: Option<&str>, model: Option<&str>) -> Option<String> {
    match (clean(make), clean(model)) {
        (Some(make), Some(model)) if model.to_lowercase().starts_with(&make.to_lowercase()) => Some(model.to_owned()),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (one, other) => one.or(other).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_is_named_once() {
        assert_eq!(camera(Some("Apple"), Some("iPhone X")).as_deref(), Some("Apple iPhone X"));
        assert_eq!(camera(Some("Canon"), Some("Canon EOS R5")).as_deref(), Some("Canon EOS R5"));
        assert_eq!(camera(Some("NIKON CORPORATION\0"), None).as_deref(), Some("NIKON CORPORATION"));
        assert_eq!(camera(Some(" "), Some("")), None);
    }
}
