//! When a photo was taken, as precisely as its file says.
//!
//! Cameras write the wall-clock time (EXIF `DateTimeOriginal`) and, since
//! EXIF 2.31, its offset (`OffsetTimeOriginal`). Many still write no
//! offset, and then the instant is unknown until something says which
//! offset the camera's clock was in: the GPS time stamp in the same file
//! (UTC), or the location history, which knows where the person was and so
//! what their local time was. Videos are the other way round: QuickTime's
//! creation time is UTC and says nothing about the local time.

use polo_domain::Timestamp;

/// How far a wall-clock time and a UTC time of the same photo may differ
/// for the difference to be its offset (UTC−12 to UTC+14).
const MAX_OFFSET_MINUTES: i64 = 14 * 60;
/// How far the difference may be from a whole quarter hour: the GPS time
/// stamp is that of the last fix, which may lag the shutter by a minute or two.
const MAX_CLOCK_SKEW_MINUTES: f64 = 3.0;

/// A capture time as the file gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTime {
    /// An instant and the local offset it was taken in.
    Zoned {
        /// The instant.
        at: Timestamp,
        /// Minutes east of UTC.
        offset_minutes: i16,
    },
    /// An instant without its local offset (QuickTime's creation time).
    Utc(Timestamp),
    /// A wall-clock time without offset (EXIF without `OffsetTime*`),
    /// written as if it were UTC: the instant is `wall - offset` once the
    /// offset is known.
    Local(Timestamp),
}

impl CaptureTime {
    /// The instant, when the file alone says it.
    #[must_use]
    pub fn instant(self) -> Option<Timestamp> {
        match self {
            Self::Zoned { at, .. } | Self::Utc(at) => Some(at),
            Self::Local(_) => None,
        }
    }

    /// A wall-clock time and the UTC instant of the same moment (the GPS
    /// time stamp of the same photo) make a zoned time, with the difference
    /// rounded to the quarter hour as the offset; `None` when they are too
    /// far apart to be one moment.
    #[must_use]
    pub fn from_wall_and_utc(wall: Timestamp, utc: Timestamp) -> Option<Self> {
        let minutes = (wall.0 - utc.0) as f64 / 60_000.0;
        let offset = ((minutes / 15.0).round() * 15.0) as i64;
        if offset.abs() > MAX_OFFSET_MINUTES || (minutes - offset as f64).abs() > MAX_CLOCK_SKEW_MINUTES {
            return None;
        }
        let offset_minutes = i16::try_from(offset).ok()?;
        Some(Self::Zoned { at: Timestamp(wall.0 - offset * 60_000), offset_minutes })
    }

    /// The instant given the local offset at a wall-clock time (`offset_at`,
    /// from the history), with the offset used; `None` when the time is a
    /// bare wall-clock time and `offset_at` does not know.
    pub fn resolve(self, offset_at: impl FnOnce(Timestamp) -> Option<i16>) -> Option<(Timestamp, Option<i16>)> {
        match self {
            Self::Zoned { at, offset_minutes } => Some((at, Some(offset_minutes))),
            Self::Utc(at) => Some((at, None)),
            Self::Local(wall) => {
                let offset = offset_at(wall)?;
                Some((Timestamp(wall.0 - i64::from(offset) * 60_000), Some(offset)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32, s: u32) -> Timestamp {
        Timestamp::from_civil(2024, 7, 14, h, m, s, 0).unwrap()
    }

    #[test]
    fn a_gps_time_stamp_gives_a_wall_clock_time_its_offset() {
        // 14:03:10 on a camera in Lübeck (CEST), GPS 12:03:07 UTC.
        let zoned = CaptureTime::from_wall_and_utc(at(14, 3, 10), at(12, 3, 7)).unwrap();
        assert_eq!(zoned, CaptureTime::Zoned { at: at(12, 3, 10), offset_minutes: 120 });
        // India, UTC+5:30; Chatham, UTC+12:45.
        let india = CaptureTime::from_wall_and_utc(at(17, 30, 0), at(12, 0, 0)).unwrap();
        assert_eq!(india, CaptureTime::Zoned { at: at(12, 0, 0), offset_minutes: 330 });
        // A camera clock seven minutes off any quarter hour is not an offset.
        assert_eq!(CaptureTime::from_wall_and_utc(at(14, 22, 0), at(12, 0, 0)), None);
        // Nor is a day's difference.
        assert_eq!(CaptureTime::from_wall_and_utc(Timestamp(at(12, 0, 0).0 + 86_400_000), at(12, 0, 0)), None);
    }

    #[test]
    fn a_wall_clock_time_needs_the_offset_of_the_history() {
        let wall = CaptureTime::Local(at(14, 0, 0));
        assert_eq!(wall.instant(), None);
        assert_eq!(wall.resolve(|_| Some(120)), Some((at(12, 0, 0), Some(120))));
        assert_eq!(wall.resolve(|_| None), None);
        let utc = CaptureTime::Utc(at(12, 0, 0));
        assert_eq!(utc.resolve(|_| unreachable!()), Some((at(12, 0, 0), None)));
    }
}
