//! Point, last-location, export and interval queries.
//!
//! JSON answers are pages of at most [`MAX_LIMIT`] points with an opaque
//! cursor (device id and time of the last point returned), so a client walks
//! any range in bounded requests. The file formats stream the whole range:
//! a blocking task scans the store chunk by chunk and feeds the exporter,
//! whose output flows to the socket through a bounded channel — memory stays
//! constant whatever the range.

use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use polo_derived::outliers::FlagReason;
use polo_domain::{DeviceId, Fix, IntervalKind, Point, Timestamp};
use polo_formats::export::{ExportFormat, Exporter};
use polo_store::{Device, PointQuery, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::parse_time;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, JsonBodyErrors, NotFound};

/// Default page size of JSON point queries.
const DEFAULT_LIMIT: usize = 1000;
/// Largest page size.
const MAX_LIMIT: usize = 10_000;

/// What `GET /api/v1/points` answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PointFormat {
    /// A page of [`PointPage`], resumed with `cursor`.
    #[default]
    Json,
    /// The whole range as GeoJSON.
    Geojson,
    /// The whole range as GPX.
    Gpx,
    /// The whole range as CSV.
    Csv,
}

/// The file format of `GET /api/v1/export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileFormat {
    /// GeoJSON (`json` is the same).
    #[default]
    #[serde(alias = "json")]
    Geojson,
    /// GPX.
    Gpx,
    /// CSV.
    Csv,
}

impl FileFormat {
    fn export_format(self) -> ExportFormat {
        match self {
            Self::Geojson => ExportFormat::Geojson,
            Self::Gpx => ExportFormat::Gpx,
            Self::Csv => ExportFormat::Csv,
        }
    }
}

/// Query parameters of `GET /api/v1/points`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PointParams {
    /// Start of the range, inclusive: RFC 3339, epoch seconds or milliseconds, or any timestamp
    /// spelling the importers read; without a zone, UTC.
    #[param(example = "2024-05-01T00:00:00Z")]
    from: Option<String>,
    /// End of the range, inclusive (same spellings); not before `from`.
    #[param(example = "2024-05-02T00:00:00Z")]
    to: Option<String>,
    /// Only points inside `west,south,east,north` (degrees; `west > east` crosses the
    /// antimeridian, `south <= north`).
    #[param(example = "10.9,48.05,11.1,48.1")]
    bbox: Option<String>,
    /// Only this device (by name); 404 when the caller has none of that name.
    device: Option<String>,
    /// `json` (default): a page; the file formats stream the whole range.
    #[param(inline)]
    format: Option<PointFormat>,
    /// Page size for `json` (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Fixes the timeline leaves out (teleports, hopelessly inaccurate fixes, fixes you
    /// flagged), for `json` pages: `include` (default; each marked `flagged: true`),
    /// `exclude` or `only`. The file formats always carry every point.
    #[param(inline)]
    outliers: Option<Outliers>,
}

/// Which points a JSON page carries, by their flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outliers {
    /// Every point; flagged ones say so.
    #[default]
    Include,
    /// Only the points the timeline uses.
    Exclude,
    /// Only the flagged points.
    Only,
}

impl Outliers {
    fn admits(self, flagged: bool) -> bool {
        match self {
            Self::Include => true,
            Self::Exclude => !flagged,
            Self::Only => flagged,
        }
    }
}

/// Query parameters of `GET /api/v1/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// Start of the range, inclusive (as for `GET /api/v1/points`).
    #[param(example = "2024-05-01T00:00:00Z")]
    from: Option<String>,
    /// End of the range, inclusive; not before `from`.
    #[param(example = "2024-05-02T00:00:00Z")]
    to: Option<String>,
    /// Only points inside `west,south,east,north` (degrees).
    bbox: Option<String>,
    /// Only this device (by name).
    device: Option<String>,
    /// The file format (default GeoJSON).
    #[param(inline)]
    format: Option<FileFormat>,
}

/// A bounding box `w,s,e,n` in E7; `w > e` crosses the antimeridian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BoundingBox {
    west: i32,
    south: i32,
    east: i32,
    north: i32,
}

impl BoundingBox {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let parts: Vec<f64> = text
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| ApiError::bad_request(format!("bbox must be four numbers w,s,e,n (got {text:?})")))?;
        let [w, s, e, n] = parts[..] else {
            return Err(ApiError::bad_request(format!("bbox must be four numbers w,s,e,n (got {text:?})")));
        };
        let valid_lon = |v: f64| (-180.0..=180.0).contains(&v);
        let valid_lat = |v: f64| (-90.0..=90.0).contains(&v);
        if !(valid_lon(w) && valid_lon(e) && valid_lat(s) && valid_lat(n) && s <= n) {
            return Err(ApiError::bad_request(format!("bbox {text:?} is out of range or has south > north")));
        }
        // Range-checked above.
        #[allow(clippy::cast_possible_truncation)]
        let e7 = |v: f64| (v * 1e7).round() as i32;
        Ok(Self { west: e7(w), south: e7(s), east: e7(e), north: e7(n) })
    }

    fn contains(self, fix: &Fix) -> bool {
        let (lat, lon) = (fix.coord.lat_e7, fix.coord.lon_e7);
        let lon_ok = if self.west <= self.east {
            lon >= self.west && lon <= self.east
        } else {
            lon >= self.west || lon <= self.east
        };
        lon_ok && lat >= self.south && lat <= self.north
    }
}

/// Where a JSON page resumes: after this device's point at this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    device: i64,
    time: i64,
}

impl Cursor {
    fn encode(self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", self.device, self.time))
    }

    fn decode(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request("cursor is not one this server issued".to_owned());
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (device, time) = text.split_once(':').ok_or_else(bad)?;
        Ok(Self { device: device.parse().map_err(|_| bad())?, time: time.parse().map_err(|_| bad())? })
    }
}

/// The resolved filter of a point query.
pub(crate) struct Filter {
    /// The devices to read, all of the user's.
    pub(crate) devices: Vec<Device>,
    /// Inclusive lower bound.
    pub(crate) from: Option<Timestamp>,
    /// Upper bound (`PointQuery::to`).
    pub(crate) to: Option<Timestamp>,
    bbox: Option<BoundingBox>,
    /// Leave out what only the owner should see (the source's raw extras).
    pub(crate) public: bool,
    /// Which points, by their flag (JSON pages; shares leave flagged points out everywhere).
    outliers: Outliers,
}

impl Filter {
    /// A filter of whole devices in a range, for what a share shows: without flagged fixes.
    pub(crate) fn shared(devices: Vec<Device>, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        Self { devices, from, to, bbox: None, public: true, outliers: Outliers::Exclude }
    }
}

fn resolve(store: &dyn Store, caller: &Caller, params: &PointParams) -> Result<Filter, ApiError> {
    let from = params.from.as_deref().map(|t| parse_time("from", t)).transpose()?;
    let to = params.to.as_deref().map(|t| parse_time("to", t)).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request("from is after to".to_owned()));
    }
    let bbox = params.bbox.as_deref().map(BoundingBox::parse).transpose()?;
    let mut devices = store.list_devices(caller.user.id)?;
    if let Some(name) = &params.device {
        devices.retain(|d| &d.name == name);
        if devices.is_empty() {
            return Err(ApiError::not_found(format!("you have no device named {name:?}")));
        }
    }
    Ok(Filter { devices, from, to, bbox, public: false, outliers: params.outliers.unwrap_or_default() })
}

/// One point. Measurements the source did not give are left out.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PointView {
    /// The device's name.
    #[schema(example = "phone")]
    device: String,
    /// RFC 3339 with the fix's own UTC offset when the source gave one; without a zone when the
    /// source had none (read as UTC).
    #[schema(example = "2024-05-01T14:03:12.250+02:00")]
    time: String,
    /// Latitude in degrees.
    #[schema(example = 48.137154)]
    lat: f64,
    /// Longitude in degrees.
    #[schema(example = 11.576124)]
    lon: f64,
    /// The source format (`owntracks`, `gpx`, `google-records`, `api`, …).
    #[schema(example = "owntracks")]
    source: &'static str,
    /// Metres above the WGS 84 ellipsoid or sea level, as the source gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    altitude: Option<f64>,
    /// Horizontal accuracy in metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    /// Vertical accuracy in metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    vertical_accuracy: Option<f64>,
    /// Speed in m/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<f64>,
    /// Course in degrees from north.
    #[serde(skip_serializing_if = "Option::is_none")]
    course: Option<f64>,
    /// Battery level in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    battery: Option<u8>,
    /// Motion (`stationary`, `walking`, `running`, `cycling`, `road`, `rail`, `flying`, `boat`, `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    motion: Option<&'static str>,
    /// Everything else the source said, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    extras: Option<Value>,
    /// True for a fix the timeline leaves out (absent otherwise); see `flag_reason`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flagged: bool,
    /// Why it is flagged: `teleport` (reaching it and leaving it both need an impossible
    /// speed), `inaccurate` (its accuracy radius is too large) or `user` (you flagged it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "teleport")]
    flag_reason: Option<&'static str>,
}

pub(crate) fn point_view(device: &str, fix: &Fix) -> PointView {
    PointView {
        device: device.to_owned(),
        time: fix.time.to_text(fix.utc_offset_minutes, fix.zone_assumed),
        lat: fix.coord.lat(),
        lon: fix.coord.lon(),
        source: fix.source.name(),
        altitude: fix.altitude_m(),
        accuracy: fix.horizontal_accuracy_m(),
        vertical_accuracy: fix.vertical_accuracy_m(),
        speed: fix.speed_m_s(),
        course: fix.course_deg(),
        battery: fix.battery_percent,
        motion: fix.motion.map(|m| m.name()),
        extras: fix.extras.as_ref().and_then(|e| serde_json::from_str::<Value>(e.as_str()).ok()),
        flagged: false,
        flag_reason: None,
    }
}

fn reason_name(reason: FlagReason) -> &'static str {
    match reason {
        FlagReason::Teleport => "teleport",
        FlagReason::Inaccurate => "inaccurate",
        FlagReason::User => "user",
    }
}

/// A point for people the owner shares it with: without the source's raw extras.
pub(crate) fn public_point_view(device: &str, fix: &Fix) -> PointView {
    PointView { extras: None, ..point_view(device, fix) }
}

/// A page of points, by device id, then time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PointPage {
    /// At most `limit` points.
    pub(crate) points: Vec<PointView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

/// The caller's points in a time range: a page of JSON, or the whole range as a file.
#[utoipa::path(
    get,
    path = "/api/v1/points",
    tag = "query",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(PointParams),
    responses(
        (status = 200, description = "A page (`format=json`) or the whole range streamed (`geojson`, `gpx`, `csv`)",
            content(
                (PointPage = "application/json"),
                (Object = "application/geo+json"),
                (String = "application/gpx+xml"),
                (String = "text/csv"),
            )),
        BadRequest,
        NotFound,
        AuthErrors,
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PointParams>,
) -> Result<Response, ApiError> {
    match params.format.unwrap_or_default() {
        PointFormat::Json => json_page(state, caller, params).await.map(IntoResponse::into_response),
        PointFormat::Geojson => stream_export(state, caller, params, ExportFormat::Geojson),
        PointFormat::Gpx => stream_export(state, caller, params, ExportFormat::Gpx),
        PointFormat::Csv => stream_export(state, caller, params, ExportFormat::Csv),
    }
}

/// The caller's points in a time range as a file download (`Content-Disposition: attachment`).
#[utoipa::path(
    get,
    path = "/api/v1/export",
    tag = "query",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(ExportParams),
    responses(
        (status = 200, description = "The whole range, streamed",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"polo-export.…\"`")),
            content(
                (Object = "application/geo+json"),
                (String = "application/gpx+xml"),
                (String = "text/csv"),
            )),
        BadRequest,
        NotFound,
        AuthErrors,
    )
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let format = params.format.unwrap_or_default().export_format();
    let params = PointParams {
        from: params.from,
        to: params.to,
        bbox: params.bbox,
        device: params.device,
        ..PointParams::default()
    };
    stream_export(state, caller, params, format)
}

async fn json_page(state: AppState, caller: Caller, params: PointParams) -> Result<Json<PointPage>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    let store = state.store.clone();
    blocking(move || {
        let filter = resolve(store.as_ref(), &caller, &params)?;
        page(store.as_ref(), caller.user.id, &filter, limit, params.cursor.as_deref()).map(Json)
    })
    .await
}

/// The flags of one device's fixes, read a month at a time as a time-ordered scan advances.
struct FlagScan<'a> {
    store: &'a dyn Store,
    user: polo_domain::UserId,
    device: DeviceId,
    end: Option<Timestamp>,
    loaded_to: i64,
    reasons: std::collections::BTreeMap<i64, FlagReason>,
}

impl<'a> FlagScan<'a> {
    const STEP_MS: i64 = 31 * 86_400_000;

    fn new(store: &'a dyn Store, user: polo_domain::UserId, device: DeviceId, end: Option<Timestamp>) -> Self {
        Self { store, user, device, end, loaded_to: i64::MIN, reasons: std::collections::BTreeMap::new() }
    }

    /// Why the fix at `time` is flagged, if it is. Times must not go backwards.
    fn reason(&mut self, time: Timestamp) -> Result<Option<FlagReason>, ApiError> {
        if time.0 >= self.loaded_to {
            let end = self.end.map_or(i64::MAX, |t| t.0);
            let to = time.0.saturating_add(Self::STEP_MS).min(end).max(time.0.saturating_add(1));
            self.reasons =
                polo_derived::outliers::flags(self.store, self.user, self.device, Some(time), Some(Timestamp(to)))
                    .map_err(|e| ApiError::internal(format!("cannot read the flagged fixes: {e}")))?;
            self.loaded_to = to;
        }
        Ok(self.reasons.get(&time.0).copied())
    }
}

/// A page of `user`'s points matching `filter`, after `cursor` (blocking).
pub(crate) fn page(
    store: &dyn Store,
    user: polo_domain::UserId,
    filter: &Filter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<PointPage, ApiError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_LIMIT}")));
    }
    let cursor = cursor.map(Cursor::decode).transpose()?;
    let view = if filter.public { public_point_view } else { point_view };
    let mut points = Vec::new();
    let mut last: Option<Cursor> = None;
    let mut more = false;
    for device in &filter.devices {
        let mut from = filter.from;
        if let Some(c) = cursor {
            if device.id.0 < c.device {
                continue;
            }
            if device.id.0 == c.device {
                let after = c.time.saturating_add(1);
                from = Some(Timestamp(from.map_or(after, |f| f.0.max(after))));
            }
        }
        let query = PointQuery { user, device: Some(device.id), from, to: filter.to };
        let mut flags = FlagScan::new(store, user, device.id, filter.to);
        let mut failure = None;
        store.scan_points(&query, &mut |point: Point| {
            if filter.bbox.is_some_and(|b| !b.contains(&point.fix)) {
                return ControlFlow::Continue(());
            }
            let reason = match flags.reason(point.fix.time) {
                Ok(reason) => reason,
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            };
            if !filter.outliers.admits(reason.is_some()) {
                return ControlFlow::Continue(());
            }
            if points.len() == limit {
                more = true;
                return ControlFlow::Break(());
            }
            last = Some(Cursor { device: device.id.0, time: point.fix.time.0 });
            let mut shown = view(&device.name, &point.fix);
            shown.flagged = reason.is_some();
            shown.flag_reason = reason.map(reason_name);
            points.push(shown);
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if more {
            break;
        }
    }
    let next = if more { last.map(Cursor::encode) } else { None };
    Ok(PointPage { points, next_cursor: next })
}

/// A `Write` that forwards bytes into a bounded channel feeding the response body.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buffer: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buffer);
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

fn stream_export(
    state: AppState,
    caller: Caller,
    params: PointParams,
    format: ExportFormat,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    // Validate before answering 200: errors after the headers can only cut the body.
    let filter = resolve(store.as_ref(), &caller, &params)?;
    let filename = format!("polo-export.{}", format.extension());
    let body = stream(store, caller.user.id, filter, format);
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response())
}

/// `user`'s points matching `filter` as a file, streamed from a blocking scan.
pub(crate) fn stream(
    store: std::sync::Arc<dyn Store>,
    user: polo_domain::UserId,
    filter: Filter,
    format: ExportFormat,
) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let names: HashMap<DeviceId, String> = filter.devices.iter().map(|d| (d.id, d.name.clone())).collect();
        let writer = ChannelWriter { sender: sender.clone(), buffer: Vec::with_capacity(64 * 1024) };
        let Ok(mut exporter) = Exporter::new(format, writer) else { return };
        for device in &filter.devices {
            let query = PointQuery { user, device: Some(device.id), from: filter.from, to: filter.to };
            let mut failed = false;
            // Files carry every point, except where a share leaves flagged fixes out.
            let mut flags = filter.public.then(|| FlagScan::new(store.as_ref(), user, device.id, filter.to));
            let scanned = store.scan_points(&query, &mut |point: Point| {
                if filter.bbox.is_some_and(|b| !b.contains(&point.fix)) {
                    return ControlFlow::Continue(());
                }
                if let Some(flags) = flags.as_mut() {
                    match flags.reason(point.fix.time) {
                        Ok(None) => {}
                        Ok(Some(_)) => return ControlFlow::Continue(()),
                        Err(e) => {
                            tracing::error!(error = %e.message, "export could not read the flagged fixes");
                            failed = true;
                            return ControlFlow::Break(());
                        }
                    }
                }
                let name = names.get(&point.device).map_or("unknown", String::as_str);
                let written = if filter.public {
                    let fix = Fix { extras: None, ..point.fix };
                    exporter.write(name, &fix)
                } else {
                    exporter.write(name, &point.fix)
                };
                if written.is_err() {
                    failed = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            if let Err(e) = scanned {
                tracing::error!(error = %e, "export scan failed");
                let _ = sender.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
            if failed {
                return;
            }
        }
        let _ = exporter.finish();
    });
    Body::from_stream(tokio_stream_from(receiver))
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// The newest point of each device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LastLocations {
    /// One per device that has points.
    locations: Vec<PointView>,
}

/// The newest point of each of the caller's devices; for a device token
/// without the `read` scope, of its own device only.
#[utoipa::path(
    get,
    path = "/api/v1/locations/last",
    tag = "query",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = LastLocations), AuthErrors)
)]
pub(crate) async fn last_locations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<LastLocations>, ApiError> {
    let store = state.store.clone();
    // A phone's token sees where its phone is, not where the user's other devices are.
    let only = (!caller.has_scope(polo_store::TokenScope::Read)).then(|| caller.device.as_ref().map(|d| d.id));
    blocking(move || {
        let mut locations = Vec::new();
        for device in store.list_devices(caller.user.id)? {
            if only.is_some_and(|own| own != Some(device.id)) {
                continue;
            }
            if let Some(point) = store.last_point(caller.user.id, device.id)? {
                locations.push(point_view(&device.name, &point.fix));
            }
        }
        Ok(Json(LastLocations { locations }))
    })
    .await
}

/// The kinds of interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindName {
    /// A stay at a place.
    Visit,
    /// Moving between places.
    Activity,
    /// A timeline memory (a trip summary).
    Memory,
}

impl From<KindName> for IntervalKind {
    fn from(kind: KindName) -> Self {
        match kind {
            KindName::Visit => Self::Visit,
            KindName::Activity => Self::Activity,
            KindName::Memory => Self::Memory,
        }
    }
}

/// Query parameters of `GET /api/v1/intervals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IntervalParams {
    /// Intervals that end at or after this time (as `from` of `GET /api/v1/points`).
    #[param(example = "2024-05-01T00:00:00Z")]
    from: Option<String>,
    /// Intervals that start at or before this time.
    #[param(example = "2024-05-02T00:00:00Z")]
    to: Option<String>,
    /// Only this kind.
    #[param(inline)]
    kind: Option<KindName>,
}

/// A visit, activity or memory as the source described it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IntervalView {
    /// The interval's id.
    id: i64,
    /// The device's name.
    device: Option<String>,
    /// What it is.
    kind: &'static str,
    /// Start (RFC 3339, with the source's offset when it gave one).
    start: String,
    /// End.
    end: String,
    /// Where it started (degrees).
    start_lat: Option<f64>,
    /// Where it started (degrees).
    start_lon: Option<f64>,
    /// Where it ended (degrees).
    end_lat: Option<f64>,
    /// Where it ended (degrees).
    end_lon: Option<f64>,
    /// The source's place id.
    place_id: Option<String>,
    /// The place's or activity's name.
    name: Option<String>,
    /// The semantic type or activity type.
    category: Option<String>,
    /// Distance in metres.
    distance_m: Option<f64>,
    /// The source's confidence.
    confidence: Option<f64>,
    /// Nesting level (0 for top-level visits).
    level: u8,
    /// The source format.
    source: &'static str,
}

/// Your verdict on one fix.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct FixFlag {
    /// The device whose fix it is.
    #[schema(example = "phone")]
    device: String,
    /// The fix's time, exactly as listed by `GET /api/v1/points` (RFC 3339).
    #[schema(example = "2014-06-01T12:03:12.250Z")]
    time: String,
    /// `true`: leave the fix out of the timeline and maps; `false`: use it, even if it
    /// looks like a teleport.
    flagged: bool,
}

/// Flags a fix or clears its flag. The timeline leaves flagged fixes (teleports, hopelessly
/// inaccurate fixes) out of stays, legs, distances, statistics and maps; your verdict overrides
/// the detector's, is kept as your edit and survives every recomputation, and the fix's day is
/// recomputed before the answer.
#[utoipa::path(
    put,
    path = "/api/v1/points/flag",
    tag = "query",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = FixFlag,
    responses((status = 204, description = "Stored and applied"), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn flag_fix(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<FixFlag>, JsonRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    let Json(body) = body?;
    let time = parse_time("time", &body.time)?;
    let (store, engine, user) = (state.store.clone(), state.timeline.engine().clone(), caller.user.id);
    blocking(move || {
        let device = super::derived::device_named(&store.list_devices(user)?, &body.device)?;
        engine.set_fix_flag(user, device, time, body.flagged).map_err(|e| match e {
            polo_derived::DerivedError::Invalid(why) => ApiError::not_found(why),
            other => other.into(),
        })?;
        Ok(axum::http::StatusCode::NO_CONTENT)
    })
    .await
}

/// The intervals of a range.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IntervalList {
    /// By start.
    intervals: Vec<IntervalView>,
}

/// Visits, activities and memories the sources carried.
#[utoipa::path(
    get,
    path = "/api/v1/intervals",
    tag = "query",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(IntervalParams),
    responses((status = 200, body = IntervalList), BadRequest, AuthErrors)
)]
pub(crate) async fn intervals(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<IntervalParams>,
) -> Result<Json<IntervalList>, ApiError> {
    let from = params.from.as_deref().map(|t| parse_time("from", t)).transpose()?;
    let to = params.to.as_deref().map(|t| parse_time("to", t)).transpose()?;
    let kind = params.kind.map(IntervalKind::from);
    let store = state.store.clone();
    blocking(move || {
        let names: HashMap<DeviceId, String> =
            store.list_devices(caller.user.id)?.into_iter().map(|d| (d.id, d.name)).collect();
        let rows = store.intervals(caller.user.id, kind, from, to)?;
        let intervals = rows
            .into_iter()
            .map(|row| {
                let i = row.interval;
                IntervalView {
                    id: row.id,
                    device: names.get(&row.device).cloned(),
                    kind: i.kind.name(),
                    start: i.start.to_text(i.start_offset_minutes, false),
                    end: i.end.to_text(i.end_offset_minutes, false),
                    start_lat: i.start_coord.map(polo_domain::Coord::lat),
                    start_lon: i.start_coord.map(polo_domain::Coord::lon),
                    end_lat: i.end_coord.map(polo_domain::Coord::lat),
                    end_lon: i.end_coord.map(polo_domain::Coord::lon),
                    place_id: i.place_id,
                    name: i.name,
                    category: i.category,
                    distance_m: i.distance_m,
                    confidence: i.confidence,
                    level: i.level,
                    source: i.source.name(),
                }
            })
            .collect();
        Ok(Json(IntervalList { intervals }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_parsing_and_antimeridian() {
        let b = BoundingBox::parse("170,-10,-170,10").unwrap();
        let at = |lat: f64, lon: f64| {
            Fix::new(Timestamp(0), polo_domain::Coord::from_degrees(lat, lon).unwrap(), polo_domain::SourceFormat::Api)
        };
        assert!(b.contains(&at(0.5, 175.0)));
        assert!(b.contains(&at(0.5, -175.0)));
        assert!(!b.contains(&at(0.5, 0.0)));
        assert!(BoundingBox::parse("1,2,3").is_err());
        assert!(BoundingBox::parse("0,10,1,5").is_err(), "south > north");
    }

    #[test]
    fn pages_mark_flagged_fixes_and_filter_by_them() {
        use polo_domain::{Coord, SourceFormat};
        let store = polo_store_sqlite::SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("alice", "x", false).unwrap().id;
        let device = store.ensure_device(user, "phone").unwrap();
        // Twenty fixes a minute apart at home, and one of them 6 000 km away.
        let fixes: Vec<Fix> = (0..20)
            .map(|i| {
                let lat = if i == 10 { -6.0 } else { 48.0 };
                Fix::new(
                    Timestamp(1_700_000_000_000 + i * 60_000),
                    Coord::from_degrees(lat, 11.0).unwrap(),
                    SourceFormat::Api,
                )
            })
            .collect();
        store.insert_points(user, device.id, &fixes).unwrap();
        polo_derived::outliers::refresh(&store, user, device.id, None, &polo_timeline::OutlierParams::default())
            .unwrap();
        let listed = |outliers| {
            let filter =
                Filter { devices: vec![device.clone()], from: None, to: None, bbox: None, public: false, outliers };
            page(&store, user, &filter, 100, None).unwrap().points
        };
        let all = listed(Outliers::Include);
        assert_eq!(all.len(), 20);
        let flagged: Vec<(usize, Option<&str>)> =
            all.iter().enumerate().filter(|(_, p)| p.flagged).map(|(i, p)| (i, p.flag_reason)).collect();
        assert_eq!(flagged, [(10, Some("teleport"))]);
        let text = serde_json::to_string(&all[10]).unwrap();
        assert!(text.contains("\"flagged\":true,\"flag_reason\":\"teleport\""), "{text}");
        assert!(!serde_json::to_string(&all[9]).unwrap().contains("flag"), "unflagged points do not mention it");
        assert_eq!(listed(Outliers::Exclude).len(), 19);
        let only = listed(Outliers::Only);
        assert_eq!((only.len(), only[0].lat), (1, -6.0));
        // Shares leave them out too.
        let shared = Filter::shared(vec![device.clone()], None, None);
        assert_eq!(page(&store, user, &shared, 100, None).unwrap().points.len(), 19);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor { device: 7, time: 1_700_000_000_123 };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("not a cursor!").is_err());
    }
}
