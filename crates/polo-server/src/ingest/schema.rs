//! What the ingest protocols look like on the wire, for the OpenAPI document.
//!
//! The parsers read these bodies member by member (units, aliases, numbers
//! as strings, unknown members kept as extras) rather than through serde, so
//! these types exist only to describe the protocols: the members a client
//! should send, with the units the parsers expect. Bodies may carry more
//! members than listed; every schema here allows additional properties.

// Never built: the types only describe request and response bodies.
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ErrorCode;

/// One OwnTracks message (HTTP mode). Only `location` and `transition`
/// messages carry a position; `waypoint`/`waypoints` become zones,
/// `transition`s are logged as events; other types are accepted and counted.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"_type": "location", "lat": 48.137154, "lon": 11.576124, "tst": 1714572192,
    "acc": 12, "batt": 81, "tid": "ph", "topic": "owntracks/alice/phone"}))]
pub(crate) struct OwnTracksMessage {
    /// `location`, `transition`, `waypoint(s)`, `card`, `lwt`, `encrypted`, …
    #[serde(rename = "_type")]
    kind: String,
    /// Latitude in degrees.
    lat: Option<f64>,
    /// Longitude in degrees.
    lon: Option<f64>,
    /// Fix time, Unix seconds.
    tst: Option<i64>,
    /// Horizontal accuracy in metres.
    acc: Option<f64>,
    /// Altitude in metres.
    alt: Option<f64>,
    /// Vertical accuracy in metres.
    vac: Option<f64>,
    /// Speed in km/h.
    vel: Option<f64>,
    /// Course over ground in degrees.
    cog: Option<f64>,
    /// Battery level in percent.
    batt: Option<f64>,
    /// Tracker id: two characters shown on the map.
    tid: Option<String>,
    /// `owntracks/<user>/<device>`: names the device when `X-Limit-D` and `?d=` do not.
    topic: Option<String>,
    /// `waypoint`: the region's name; `transition`: the region's name.
    desc: Option<String>,
    /// `waypoint`: the region's radius in metres (it becomes a zone).
    rad: Option<f64>,
    /// `waypoint`, `transition`: the region's ID.
    rid: Option<String>,
    /// `transition`: `enter` or `leave` (logged as `app.enter`/`app.leave`).
    event: Option<String>,
    /// In replies, `cmd` messages: `setWaypoints`, polo's zones for the app.
    action: Option<String>,
    /// `waypoints`: the regions; in a `setWaypoints` reply, `{"_type": "waypoints", "waypoints": […]}`.
    #[schema(value_type = Option<Object>)]
    waypoints: Option<Value>,
}

/// An OwnTracks payload encrypted with the device's passphrase (libsodium
/// `crypto_secretbox`); the plaintext is a message, or for replies the array.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"_type": "encrypted", "data": "LlwksxNI1fdo7rmsw9l13hIXXtUjb5qNbBDLxKO84yZN"}))]
pub(crate) struct OwnTracksEncrypted {
    /// Always `encrypted`.
    #[serde(rename = "_type")]
    kind: String,
    /// Base64 of the 24-byte nonce followed by the ciphertext and its MAC.
    data: String,
}

/// The reply to an OwnTracks POST: the friends array, or that array
/// encrypted when the sending device has an encryption key.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum OwnTracksReply {
    /// Clear text: a `location` (and `card`) per device.
    Friends(Vec<OwnTracksMessage>),
    /// The same array, encrypted with the device's passphrase.
    Encrypted(OwnTracksEncrypted),
}

/// Overland's batch.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverlandBatch {
    /// Fixes, visits, app events and trip summaries, oldest first.
    locations: Vec<OverlandFeature>,
    /// The app's current location, when it sends it.
    #[schema(value_type = Option<Object>)]
    current: Option<Value>,
    /// The current trip, when one is being recorded.
    #[schema(value_type = Option<Object>)]
    trip: Option<Value>,
}

/// A GeoJSON point feature as Overland sends it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [11.576124, 48.137154]},
    "properties": {"timestamp": "2024-05-01T14:03:12Z", "horizontal_accuracy": 12, "speed": 1.4,
    "battery_level": 0.81, "device_id": "phone", "motion": ["walking"]}}))]
pub(crate) struct OverlandFeature {
    /// `Feature`.
    #[serde(rename = "type")]
    kind: String,
    /// `{"type": "Point", "coordinates": [lon, lat]}`.
    geometry: GeoPoint,
    /// `timestamp` (ISO 8601), `horizontal_accuracy`, `vertical_accuracy`, `altitude`, `speed` (m/s),
    /// `course`, `battery_level` (0–1), `motion`, `device_id`, …; `-1` means unknown. `action: "visit"`
    /// marks a visit, `type: "trip"` a trip summary.
    #[schema(value_type = Object)]
    properties: Value,
}

/// A GeoJSON point geometry.
#[derive(Serialize, ToSchema)]
pub(crate) struct GeoPoint {
    /// `Point`.
    #[serde(rename = "type")]
    kind: String,
    /// `[longitude, latitude]` or `[longitude, latitude, altitude]`.
    coordinates: Vec<f64>,
}

/// Overland's success reply; anything else makes the app keep and resend the batch.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverlandOk {
    /// `ok`.
    #[schema(example = "ok")]
    result: String,
}

/// Overland's error reply: the app shows `error` to the user.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverlandError {
    /// What went wrong.
    error: String,
    /// The stable error code.
    code: ErrorCode,
}

/// An Overland error, or the shared error shape where axum refused the request before the handler.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum OverlandFailure {
    /// From the handler.
    Overland(OverlandError),
    /// From the query or body extractor.
    Shared(crate::error::ErrorBody),
}

/// Query parameters the tracker apps use instead of headers.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IngestParams {
    /// A device token, for apps that cannot send an `Authorization` header.
    token: Option<String>,
    /// The device name (OwnTracks Recorder style), when no token names it.
    d: Option<String>,
}

/// The OsmAnd protocol's query string (`GET`); other keys go into the extras.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OsmandQuery {
    /// The device identifier (also `deviceid`); a device token here authenticates the request.
    id: String,
    /// Latitude in degrees.
    #[param(minimum = -90, maximum = 90)]
    lat: f64,
    /// Longitude in degrees.
    #[param(minimum = -180, maximum = 180)]
    lon: f64,
    /// Unix seconds (milliseconds when ≥ 2^31), ISO 8601, or `yyyy-MM-dd HH:mm:ss` (UTC); default now.
    timestamp: Option<String>,
    /// Speed in knots.
    speed: Option<f64>,
    /// Course in degrees.
    bearing: Option<f64>,
    /// Altitude in metres.
    altitude: Option<f64>,
    /// Horizontal accuracy in metres (0: unknown).
    accuracy: Option<f64>,
    /// Battery level in percent.
    batt: Option<f64>,
    /// A device token, for clients that cannot send an `Authorization` header.
    token: Option<String>,
}

/// The OsmAnd protocol's query parameters with a body (`POST`): the body's keys win.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OsmandParams {
    /// The device identifier (also `deviceid`); a device token here authenticates the request.
    id: Option<String>,
    /// Latitude in degrees.
    lat: Option<f64>,
    /// Longitude in degrees.
    lon: Option<f64>,
    /// Unix seconds (milliseconds when ≥ 2^31), ISO 8601, or `yyyy-MM-dd HH:mm:ss` (UTC); default now.
    timestamp: Option<String>,
    /// Speed in knots.
    speed: Option<f64>,
    /// Course in degrees.
    bearing: Option<f64>,
    /// Altitude in metres.
    altitude: Option<f64>,
    /// Horizontal accuracy in metres (0: unknown).
    accuracy: Option<f64>,
    /// Battery level in percent.
    batt: Option<f64>,
    /// A device token, for clients that cannot send an `Authorization` header.
    token: Option<String>,
}

/// The OsmAnd protocol's form body (the same keys as the query string); other keys go into the extras.
#[derive(Serialize, ToSchema)]
pub(crate) struct OsmandForm {
    /// The device identifier (also `deviceid`); a device token here authenticates the request.
    id: Option<String>,
    /// Latitude in degrees.
    lat: Option<f64>,
    /// Longitude in degrees.
    lon: Option<f64>,
    /// Unix seconds (milliseconds when ≥ 2^31), ISO 8601, or `yyyy-MM-dd HH:mm:ss` (UTC); default now.
    timestamp: Option<String>,
    /// Speed in knots.
    speed: Option<f64>,
    /// Course in degrees.
    bearing: Option<f64>,
    /// Altitude in metres.
    altitude: Option<f64>,
    /// Horizontal accuracy in metres (0: unknown).
    accuracy: Option<f64>,
    /// Battery level in percent.
    batt: Option<f64>,
}

/// One point of `POST /api/v1/points`: the property names of polo's exports, in SI units.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"time": "2024-05-01T14:03:12Z", "lat": 48.137154, "lon": 11.576124,
    "accuracy": 12.0, "device": "phone"}))]
pub(crate) struct BatchPoint {
    /// RFC 3339 (or any timestamp spelling the importers read), or epoch seconds or milliseconds.
    #[schema(value_type = Object)]
    time: Value,
    /// Latitude in degrees.
    lat: f64,
    /// Longitude in degrees.
    lon: f64,
    /// Metres.
    altitude: Option<f64>,
    /// Horizontal accuracy in metres.
    accuracy: Option<f64>,
    /// Vertical accuracy in metres.
    vertical_accuracy: Option<f64>,
    /// m/s.
    speed: Option<f64>,
    /// Degrees from north.
    course: Option<f64>,
    /// Percent.
    battery: Option<f64>,
    /// `stationary`, `walking`, `running`, `cycling`, `road`, `rail`, `flying`, `boat`.
    motion: Option<String>,
    /// The device's name; created on first use. A device token's own device wins.
    device: Option<String>,
    /// Anything else to keep with the point.
    #[schema(value_type = Option<Object>)]
    extras: Option<Value>,
}

/// A GeoJSON `FeatureCollection` of points (polo's GeoJSON export), the properties as [`BatchPoint`]'s.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchFeatureCollection {
    /// `FeatureCollection`.
    #[serde(rename = "type")]
    kind: String,
    /// Point features.
    #[schema(value_type = Vec<Object>)]
    features: Vec<Value>,
}

/// `POST /api/v1/points`'s body: an array of points, one point, or GeoJSON.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum BatchBody {
    /// An array of points.
    Points(Vec<BatchPoint>),
    /// A GeoJSON `FeatureCollection` (or a single `Feature`).
    Geojson(BatchFeatureCollection),
    /// One point.
    Point(BatchPoint),
}

/// What `POST /api/v1/points` stored.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchResult {
    /// Points stored.
    added: u64,
    /// Points that were already stored (same device and time).
    duplicates: u64,
    /// Items refused; see `errors`.
    rejected: u64,
    /// Why each refused item was refused.
    errors: Vec<super::batch::ItemError>,
}
