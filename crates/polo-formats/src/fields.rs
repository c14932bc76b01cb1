//! Field names of polo's own export formats, shared by the exporters and the
//! importers so that export → import is an exact round trip.
//!
//! The GeoJSON properties and CSV columns use these names; GPX carries the
//! fields it has no element for in the [`GPX_NAMESPACE`] extension namespace.

/// RFC 3339 time with milliseconds and the original offset
/// ([`polo_domain::Timestamp::to_text`]).
pub const TIME: &str = "time";
/// Latitude in degrees (CSV only; GeoJSON and GPX have geometry).
pub const LAT: &str = "lat";
/// Longitude in degrees (CSV only).
pub const LON: &str = "lon";
/// Altitude in metres.
pub const ALTITUDE: &str = "altitude";
/// Horizontal accuracy in metres.
pub const ACCURACY: &str = "accuracy";
/// Vertical accuracy in metres.
pub const VERTICAL_ACCURACY: &str = "vertical_accuracy";
/// Speed in m/s.
pub const SPEED: &str = "speed";
/// Course in degrees.
pub const COURSE: &str = "course";
/// Battery in percent.
pub const BATTERY: &str = "battery";
/// Motion name ([`polo_domain::Motion::name`]).
pub const MOTION: &str = "motion";
/// Source format name ([`polo_domain::SourceFormat::name`]).
pub const SOURCE: &str = "source";
/// Device name.
pub const DEVICE: &str = "device";
/// The extras object, verbatim.
pub const EXTRAS: &str = "extras";

/// polo's GPX extension namespace.
pub const GPX_NAMESPACE: &str = "https://polo.example/xmlns/gpx/1";

/// All CSV export columns, in order.
pub const CSV_COLUMNS: [&str; 13] =
    [TIME, LAT, LON, ALTITUDE, ACCURACY, VERTICAL_ACCURACY, SPEED, COURSE, BATTERY, MOTION, SOURCE, DEVICE, EXTRAS];
