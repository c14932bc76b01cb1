//! Coordinates in fixed point: degrees × 10⁷ ("E7") in an `i32`.
//!
//! One E7 unit is 1.11 cm of latitude, so rounding to E7 keeps every position
//! within 0.56 cm of the source — "exact enough for 1 cm" — while using half
//! the bytes of an `f64` and making point equality exact (round trips through
//! export and import compare bit for bit).
//!
//! This module also reads the coordinate spellings the importers meet:
//! E7 integers that overflowed as unsigned 32-bit values, `"48.1°, 11.5°"`
//! strings from Android's on-device Timeline and `"geo:48.1,11.5"` from iOS.

use serde::{Deserialize, Serialize};

/// A WGS84 position in E7 fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coord {
    /// Latitude in degrees × 10⁷, −900000000..=900000000.
    pub lat_e7: i32,
    /// Longitude in degrees × 10⁷, −1800000000..=1800000000.
    pub lon_e7: i32,
}

/// Why a coordinate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoordError {
    /// Not a finite number, or outside the WGS84 range.
    #[error("latitude {lat} / longitude {lon} is outside the valid range")]
    OutOfRange {
        /// The latitude as given, in degrees.
        lat: f64,
        /// The longitude as given, in degrees.
        lon: f64,
    },
    /// Exactly 0,0: the classic "no fix" placeholder.
    #[error("position 0,0 (\"null island\") is a missing fix, not a location")]
    NullIsland,
    /// A coordinate string that could not be read.
    #[error("unreadable coordinate text {0:?}")]
    Syntax(String),
}

impl Coord {
    /// Builds a coordinate from degrees, rounding to the nearest E7 unit.
    ///
    /// # Errors
    /// [`CoordError::OutOfRange`] for non-finite or out-of-range values and
    /// [`CoordError::NullIsland`] for exactly 0,0.
    pub fn from_degrees(lat: f64, lon: f64) -> Result<Self, CoordError> {
        if !lat.is_finite() || !lon.is_finite() || lat.abs() > 90.0 || lon.abs() > 180.0 {
            return Err(CoordError::OutOfRange { lat, lon });
        }
        if lat == 0.0 && lon == 0.0 {
            return Err(CoordError::NullIsland);
        }
        // In range, so the products fit an i32 (|v| ≤ 1.8e9 < 2^31).
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self { lat_e7: (lat * 1e7).round() as i32, lon_e7: (lon * 1e7).round() as i32 })
    }

    /// Builds a coordinate from Google's E7 integers, repairing the unsigned
    /// overflow some 2019-era exports contain (values above 1.8e9 were
    /// negative numbers written as unsigned 32-bit integers).
    ///
    /// ```
    /// use polo_domain::Coord;
    /// // -85.0° written as an unsigned 32-bit integer:
    /// let c = Coord::from_e7(100_000_000, 4_294_967_296 - 850_000_000).unwrap();
    /// assert_eq!(c.lon_e7, -850_000_000);
    /// ```
    ///
    /// # Errors
    /// As [`Coord::from_degrees`].
    pub fn from_e7(lat_e7: i64, lon_e7: i64) -> Result<Self, CoordError> {
        let fix = |v: i64| if v > 1_800_000_000 { v - 4_294_967_296 } else { v };
        let (lat, lon) = (fix(lat_e7), fix(lon_e7));
        if lat.abs() > 900_000_000 || lon.abs() > 1_800_000_000 {
            #[allow(clippy::cast_precision_loss)]
            return Err(CoordError::OutOfRange { lat: lat as f64 / 1e7, lon: lon as f64 / 1e7 });
        }
        if lat == 0 && lon == 0 {
            return Err(CoordError::NullIsland);
        }
        // Range-checked above.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self { lat_e7: lat as i32, lon_e7: lon as i32 })
    }

    /// Latitude in degrees.
    #[must_use]
    pub fn lat(self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }

    /// Longitude in degrees.
    #[must_use]
    pub fn lon(self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }

    /// Reads `"lat, lon"` pairs as written by Google's on-device exports:
    /// `"50.0506312°, 14.3439906°"`, the same without degree signs, or
    /// `"geo:27.720022,-97.347951"` (RFC 5870, parameters after `;` ignored).
    /// A third (altitude) component is tolerated and ignored.
    ///
    /// # Errors
    /// [`CoordError::Syntax`] if the text is not two numbers, or the range errors.
    pub fn parse_lat_lon_text(text: &str) -> Result<Self, CoordError> {
        let body = text.trim();
        let body = body.strip_prefix("geo:").unwrap_or(body);
        let body = body.split(';').next().unwrap_or(body);
        let mut parts = body.split(',').map(|p| p.trim().trim_end_matches('°').trim());
        let lat = parts.next().and_then(|p| p.parse::<f64>().ok());
        let lon = parts.next().and_then(|p| p.parse::<f64>().ok());
        match (lat, lon) {
            (Some(lat), Some(lon)) => Self::from_degrees(lat, lon),
            _ => Err(CoordError::Syntax(text.chars().take(64).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degree_strings_in_all_spellings() {
        let want = Coord::from_degrees(50.050_631_2, 14.343_990_6).unwrap();
        for text in [
            "50.0506312°, 14.3439906°",
            "50.0506312, 14.3439906",
            " 50.0506312° ,14.3439906° ",
            "geo:50.0506312,14.3439906",
            "50.0506312°, 14.3439906°, 230",
        ] {
            assert_eq!(Coord::parse_lat_lon_text(text).unwrap(), want, "{text}");
        }
        assert!(Coord::parse_lat_lon_text("somewhere").is_err());
    }

    #[test]
    fn e7_overflow_is_repaired() {
        let c = Coord::from_e7(-337_000_000, 3_444_967_296).unwrap();
        assert_eq!(c.lon_e7, -850_000_000);
        assert_eq!(c.lat_e7, -337_000_000);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Coord::from_degrees(0.0, 0.0), Err(CoordError::NullIsland));
        assert!(Coord::from_degrees(91.0, 0.0).is_err());
        assert!(Coord::from_degrees(f64::NAN, 1.0).is_err());
        assert!(Coord::from_e7(950_000_000, 0).is_err());
    }

    #[test]
    fn rounding_error_is_below_a_centimetre() {
        // 0.5 E7 units of latitude is 0.56 cm.
        // Garmin Connect writes 30 significant digits.
        let lat: f64 = "48.830705098807811737060546875".parse().unwrap();
        let c = Coord::from_degrees(lat, 2.1).unwrap();
        assert!((c.lat() - 48.830_705_098_807_81).abs() * 111_320.0 < 0.01);
    }
}
