//! Points: one position fix at one instant.
//!
//! A [`Fix`] is what an importer or ingest protocol produces: the measurement
//! alone. A [`Point`] is a fix that belongs to a user's device. A point's
//! identity is `(user, device, time)`: storing the same fix twice adds nothing,
//! which is what makes re-importing a file idempotent.
//!
//! Optional measurements are fixed-point integers (centimetres, cm/s,
//! hundredths of a degree), so that equality is exact and a stored value reads
//! back bit for bit. Accessors convert to SI units.

use serde::{Deserialize, Serialize};

use crate::{Coord, DeviceId, Timestamp, UserId};

/// Which kind of source a point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum SourceFormat {
    /// Not known (e.g. replicated from an older peer).
    Unknown = 0,
    /// Google Takeout `Records.json`.
    GoogleRecords = 1,
    /// Google Takeout Semantic Location History.
    GoogleSemantic = 2,
    /// Android on-device Timeline export.
    GoogleAndroidTimeline = 3,
    /// iOS on-device Timeline export.
    GoogleIosTimeline = 4,
    /// GPX 1.0 / 1.1.
    Gpx = 5,
    /// KML or KMZ.
    Kml = 6,
    /// GeoJSON (including Overland batches).
    Geojson = 7,
    /// CSV.
    Csv = 8,
    /// OwnTracks (`.rec` files or the live protocol).
    Owntracks = 9,
    /// Garmin FIT.
    Fit = 10,
    /// Overland live protocol.
    Overland = 11,
    /// GPSLogger / OsmAnd / Traccar client live protocols.
    Osmand = 12,
    /// polo's own API.
    Api = 13,
    /// Garmin Training Center XML.
    Tcx = 14,
    /// GeoLife or OziExplorer `.plt` track.
    Plt = 15,
    /// NMEA 0183 sentence log.
    Nmea = 16,
    /// IGC flight recorder file.
    Igc = 17,
    /// Headerless numeric text (`lat lon time …`), columns sniffed.
    HeaderlessText = 18,
    /// Polarsteps trip export.
    Polarsteps = 19,
    /// Strava bulk export's `activities.csv`.
    Strava = 20,
}

impl SourceFormat {
    /// All variants, in code order.
    pub const ALL: [Self; 21] = [
        Self::Unknown,
        Self::GoogleRecords,
        Self::GoogleSemantic,
        Self::GoogleAndroidTimeline,
        Self::GoogleIosTimeline,
        Self::Gpx,
        Self::Kml,
        Self::Geojson,
        Self::Csv,
        Self::Owntracks,
        Self::Fit,
        Self::Overland,
        Self::Osmand,
        Self::Api,
        Self::Tcx,
        Self::Plt,
        Self::Nmea,
        Self::Igc,
        Self::HeaderlessText,
        Self::Polarsteps,
        Self::Strava,
    ];

    /// The stable numeric code stored on disk.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The variant for a stored code; unknown codes map to [`SourceFormat::Unknown`].
    #[must_use]
    pub fn from_code(code: u8) -> Self {
        Self::ALL.get(usize::from(code)).copied().unwrap_or(Self::Unknown)
    }

    /// The stable kebab-case name used in exports and the API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::GoogleRecords => "google-records",
            Self::GoogleSemantic => "google-semantic",
            Self::GoogleAndroidTimeline => "google-android-timeline",
            Self::GoogleIosTimeline => "google-ios-timeline",
            Self::Gpx => "gpx",
            Self::Kml => "kml",
            Self::Geojson => "geojson",
            Self::Csv => "csv",
            Self::Owntracks => "owntracks",
            Self::Fit => "fit",
            Self::Overland => "overland",
            Self::Osmand => "osmand",
            Self::Api => "api",
            Self::Tcx => "tcx",
            Self::Plt => "plt",
            Self::Nmea => "nmea",
            Self::Igc => "igc",
            Self::HeaderlessText => "headerless-text",
            Self::Polarsteps => "polarsteps",
            Self::Strava => "strava",
        }
    }

    /// Parses a name written by [`SourceFormat::name`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What the device was doing, as far as the source says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Motion {
    /// Stationary / still.
    Stationary = 1,
    /// Walking or on foot.
    Walking = 2,
    /// Running.
    Running = 3,
    /// Cycling.
    Cycling = 4,
    /// In a road vehicle (car, bus, motorbike).
    Road = 5,
    /// In a train, tram or subway.
    Rail = 6,
    /// Flying.
    Flying = 7,
    /// On water.
    Boat = 8,
    /// The source said it did not know.
    Unknown = 9,
}

impl Motion {
    /// The stable numeric code stored on disk.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The variant for a stored code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Stationary,
            2 => Self::Walking,
            3 => Self::Running,
            4 => Self::Cycling,
            5 => Self::Road,
            6 => Self::Rail,
            7 => Self::Flying,
            8 => Self::Boat,
            9 => Self::Unknown,
            _ => return None,
        })
    }

    /// The stable kebab-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Stationary => "stationary",
            Self::Walking => "walking",
            Self::Running => "running",
            Self::Cycling => "cycling",
            Self::Road => "road",
            Self::Rail => "rail",
            Self::Flying => "flying",
            Self::Boat => "boat",
            Self::Unknown => "unknown",
        }
    }

    /// Maps the activity vocabularies of Google (`IN_VEHICLE`, `ON_BICYCLE`,
    /// `in passenger vehicle`...), Overland (`driving`, `stationary`...) and
    /// polo's own names onto a motion. Case and separators are ignored.
    #[must_use]
    pub fn from_activity_name(name: &str) -> Option<Self> {
        let key: String = name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
        Some(match key.as_str() {
            "still" | "stationary" | "tilting" => Self::Stationary,
            "walking" | "walk" | "onfoot" | "foot" | "hiking" => Self::Walking,
            "running" | "run" => Self::Running,
            "onbicycle" | "cycling" | "bicycle" | "bike" | "biking" => Self::Cycling,
            "invehicle"
            | "inroadvehicle"
            | "incar"
            | "inbus"
            | "infourwheelervehicle"
            | "intwowheelervehicle"
            | "inpassengervehicle"
            | "driving"
            | "automotive"
            | "drive"
            | "car"
            | "road"
            | "motorcycling"
            | "intaxi"
            | "exitingvehicle" => Self::Road,
            "inrailvehicle" | "intrain" | "insubway" | "intram" | "rail" | "train" => Self::Rail,
            "flying" | "plane" | "inplane" => Self::Flying,
            "inferry" | "boating" | "sailing" | "boat" => Self::Boat,
            "unknown" | "unknownactivitytype" => Self::Unknown,
            _ => return None,
        })
    }
}

/// Source fields polo has no column for, kept as a compact JSON object so that
/// nothing the source said is thrown away (Wi-Fi scans, activity confidences,
/// GPX extensions, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Extras(Box<str>);

impl Extras {
    /// Wraps text that is already a compact JSON object. Callers build it with
    /// a JSON writer; the store keeps it byte for byte.
    #[must_use]
    pub fn from_json_object(text: impl Into<Box<str>>) -> Self {
        Self(text.into())
    }

    /// The JSON object text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One position fix: the measurement alone, without owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fix {
    /// When the fix was taken, UTC, millisecond precision.
    pub time: Timestamp,
    /// The UTC offset the source gave for the fix, in minutes east of UTC.
    pub utc_offset_minutes: Option<i16>,
    /// True when the source gave a time without a zone and UTC was assumed.
    pub zone_assumed: bool,
    /// The position.
    pub coord: Coord,
    /// Altitude in centimetres (above the ellipsoid or sea level, as the source says).
    pub altitude_cm: Option<i32>,
    /// Horizontal accuracy radius in centimetres.
    pub horizontal_accuracy_cm: Option<u32>,
    /// Vertical accuracy in centimetres.
    pub vertical_accuracy_cm: Option<u32>,
    /// Ground speed in cm/s.
    pub speed_cm_s: Option<u32>,
    /// Course over ground in hundredths of a degree, 0..36000.
    pub course_centideg: Option<u16>,
    /// Battery level in percent, 0..=100.
    pub battery_percent: Option<u8>,
    /// Motion or activity, when the source reported one.
    pub motion: Option<Motion>,
    /// Which format or protocol the fix came from.
    pub source: SourceFormat,
    /// Source fields without a column of their own.
    pub extras: Option<Extras>,
}

fn round_to_u32(value: f64, scale: f64) -> Option<u32> {
    let scaled = (value * scale).round();
    // Checked range: the cast below cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value.is_finite() && scaled >= 0.0 && scaled <= f64::from(u32::MAX)).then_some(scaled as u32)
}

impl Fix {
    /// A fix with only time and position.
    #[must_use]
    pub fn new(time: Timestamp, coord: Coord, source: SourceFormat) -> Self {
        Self {
            time,
            utc_offset_minutes: None,
            zone_assumed: false,
            coord,
            altitude_cm: None,
            horizontal_accuracy_cm: None,
            vertical_accuracy_cm: None,
            speed_cm_s: None,
            course_centideg: None,
            battery_percent: None,
            motion: None,
            source,
            extras: None,
        }
    }

    /// Sets the altitude from metres; non-finite values are ignored.
    pub fn set_altitude_m(&mut self, metres: f64) {
        let cm = (metres * 100.0).round();
        // Range-checked: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        if metres.is_finite() && cm.abs() < f64::from(i32::MAX) {
            self.altitude_cm = Some(cm as i32);
        }
    }

    /// Sets the horizontal accuracy from metres; negative values mean "invalid" and are ignored.
    pub fn set_horizontal_accuracy_m(&mut self, metres: f64) {
        self.horizontal_accuracy_cm = round_to_u32(metres, 100.0);
    }

    /// Sets the vertical accuracy from metres; negative values mean "invalid" and are ignored.
    pub fn set_vertical_accuracy_m(&mut self, metres: f64) {
        self.vertical_accuracy_cm = round_to_u32(metres, 100.0);
    }

    /// Sets the speed from m/s; negative values mean "invalid" and are ignored.
    pub fn set_speed_m_s(&mut self, metres_per_second: f64) {
        self.speed_cm_s = round_to_u32(metres_per_second, 100.0);
    }

    /// Sets the course from degrees, normalised into 0..360; non-finite or negative ("invalid") values are ignored.
    pub fn set_course_deg(&mut self, degrees: f64) {
        if degrees.is_finite() && degrees >= 0.0 {
            let centi = (degrees * 100.0).round() % 36_000.0;
            // 0 ≤ centi < 36000.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                self.course_centideg = Some(centi as u16);
            }
        }
    }

    /// Sets the battery level from a percentage (0–100); other values are ignored.
    pub fn set_battery_percent(&mut self, percent: f64) {
        if percent.is_finite() && (0.0..=100.0).contains(&percent) {
            // 0 ≤ percent ≤ 100.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                self.battery_percent = Some(percent.round() as u8);
            }
        }
    }

    /// Sets the battery level from a 0–1 fraction (Overland's `battery_level`).
    pub fn set_battery_fraction(&mut self, fraction: f64) {
        self.set_battery_percent(fraction * 100.0);
    }

    /// Altitude in metres.
    #[must_use]
    pub fn altitude_m(&self) -> Option<f64> {
        self.altitude_cm.map(|v| f64::from(v) / 100.0)
    }

    /// Horizontal accuracy in metres.
    #[must_use]
    pub fn horizontal_accuracy_m(&self) -> Option<f64> {
        self.horizontal_accuracy_cm.map(|v| f64::from(v) / 100.0)
    }

    /// Vertical accuracy in metres.
    #[must_use]
    pub fn vertical_accuracy_m(&self) -> Option<f64> {
        self.vertical_accuracy_cm.map(|v| f64::from(v) / 100.0)
    }

    /// Speed in m/s.
    #[must_use]
    pub fn speed_m_s(&self) -> Option<f64> {
        self.speed_cm_s.map(|v| f64::from(v) / 100.0)
    }

    /// Course in degrees.
    #[must_use]
    pub fn course_deg(&self) -> Option<f64> {
        self.course_centideg.map(|v| f64::from(v) / 100.0)
    }
}

/// A fix that belongs to a user's device: the unit the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Point {
    /// Owner.
    pub user: UserId,
    /// Recording device.
    pub device: DeviceId,
    /// The measurement.
    pub fix: Fix,
}

impl Point {
    /// The identity that makes storage idempotent.
    #[must_use]
    pub fn identity(&self) -> (UserId, DeviceId, Timestamp) {
        (self.user, self.device, self.fix.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for f in SourceFormat::ALL {
            assert_eq!(SourceFormat::from_code(f.code()), f);
            assert_eq!(SourceFormat::from_name(f.name()), Some(f));
        }
        for code in 1..=9 {
            assert_eq!(Motion::from_code(code).map(Motion::code), Some(code));
        }
    }

    #[test]
    fn activity_vocabularies() {
        assert_eq!(Motion::from_activity_name("IN_PASSENGER_VEHICLE"), Some(Motion::Road));
        assert_eq!(Motion::from_activity_name("in passenger vehicle"), Some(Motion::Road));
        assert_eq!(Motion::from_activity_name("ON_BICYCLE"), Some(Motion::Cycling));
        assert_eq!(Motion::from_activity_name("driving"), Some(Motion::Road));
        assert_eq!(Motion::from_activity_name("STILL"), Some(Motion::Stationary));
        assert_eq!(Motion::from_activity_name("CATCHING_POKEMON"), None);
    }

    #[test]
    fn setters_refuse_invalid_values() {
        let mut f = Fix::new(Timestamp(0), Coord::from_degrees(1.0, 1.0).unwrap(), SourceFormat::Api);
        f.set_vertical_accuracy_m(-1.0);
        f.set_speed_m_s(-1.0);
        f.set_course_deg(-1.0);
        f.set_battery_fraction(0.42);
        assert_eq!((f.vertical_accuracy_cm, f.speed_cm_s, f.course_centideg), (None, None, None));
        assert_eq!(f.battery_percent, Some(42));
        f.set_battery_percent(87.0);
        assert_eq!(f.battery_percent, Some(87));
        f.set_course_deg(360.0);
        assert_eq!(f.course_centideg, Some(0));
    }
}
