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
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use polo_domain::time::parse_timestamp;
use polo_domain::{DeviceId, Fix, IntervalKind, Point, Timestamp};
use polo_formats::export::{ExportFormat, Exporter};
use polo_store::{Device, PointQuery, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Default page size of JSON point queries.
const DEFAULT_LIMIT: usize = 1000;
/// Largest page size.
const MAX_LIMIT: usize = 10_000;

/// Query parameters shared by the point endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct PointParams {
    from: Option<String>,
    to: Option<String>,
    bbox: Option<String>,
    device: Option<String>,
    format: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
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

fn parse_time(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    parse_timestamp(text).map(|p| p.time).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
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
struct Filter {
    devices: Vec<Device>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    bbox: Option<BoundingBox>,
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
    Ok(Filter { devices, from, to, bbox })
}

fn fix_json(device: &str, fix: &Fix) -> Value {
    let mut object = json!({
        "device": device,
        "time": fix.time.to_text(fix.utc_offset_minutes, fix.zone_assumed),
        "lat": fix.coord.lat(),
        "lon": fix.coord.lon(),
        "source": fix.source.name(),
    });
    let fields: [(&str, Option<f64>); 5] = [
        ("altitude", fix.altitude_m()),
        ("accuracy", fix.horizontal_accuracy_m()),
        ("vertical_accuracy", fix.vertical_accuracy_m()),
        ("speed", fix.speed_m_s()),
        ("course", fix.course_deg()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            object[name] = json!(v);
        }
    }
    if let Some(b) = fix.battery_percent {
        object["battery"] = json!(b);
    }
    if let Some(m) = fix.motion {
        object["motion"] = json!(m.name());
    }
    if let Some(extras) = &fix.extras
        && let Ok(value) = serde_json::from_str::<Value>(extras.as_str())
    {
        object["extras"] = value;
    }
    object
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

/// `GET /api/v1/points`: a JSON page, or the whole range streamed when `format` is a file format.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PointParams>,
) -> Result<Response, ApiError> {
    match params.format.as_deref().unwrap_or("json") {
        "json" => json_page(state, caller, params).await.map(IntoResponse::into_response),
        other => {
            let format = ExportFormat::from_name(other).ok_or_else(|| {
                ApiError::bad_request(format!("format must be json, geojson, gpx or csv (got {other:?})"))
            })?;
            stream_export(state, caller, params, format)
        }
    }
}

/// `GET /api/v1/export`: the whole range as a file (default GeoJSON).
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PointParams>,
) -> Result<Response, ApiError> {
    let name = params.format.clone().unwrap_or_else(|| "geojson".to_owned());
    let format = ExportFormat::from_name(&name)
        .ok_or_else(|| ApiError::bad_request(format!("format must be geojson, gpx or csv (got {name:?})")))?;
    stream_export(state, caller, params, format)
}

async fn json_page(state: AppState, caller: Caller, params: PointParams) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_LIMIT}")));
    }
    let cursor = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let store = state.store.clone();
    blocking(move || {
        let filter = resolve(store.as_ref(), &caller, &params)?;
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
                    from = Some(Timestamp(from.map_or(c.time + 1, |f| f.0.max(c.time + 1))));
                }
            }
            let query = PointQuery { user: caller.user.id, device: Some(device.id), from, to: filter.to };
            store.scan_points(&query, &mut |point: Point| {
                if filter.bbox.is_some_and(|b| !b.contains(&point.fix)) {
                    return ControlFlow::Continue(());
                }
                if points.len() == limit {
                    more = true;
                    return ControlFlow::Break(());
                }
                last = Some(Cursor { device: device.id.0, time: point.fix.time.0 });
                points.push(fix_json(&device.name, &point.fix));
                ControlFlow::Continue(())
            })?;
            if more {
                break;
            }
        }
        let next = if more { last.map(Cursor::encode) } else { None };
        Ok(Json(json!({"points": points, "next_cursor": next})))
    })
    .await
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
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(8);
    let store = state.store.clone();
    // Validate before answering 200: errors after the headers can only cut the body.
    let filter = resolve(store.as_ref(), &caller, &params)?;
    tokio::task::spawn_blocking(move || {
        let names: HashMap<DeviceId, String> = filter.devices.iter().map(|d| (d.id, d.name.clone())).collect();
        let writer = ChannelWriter { sender: sender.clone(), buffer: Vec::with_capacity(64 * 1024) };
        let Ok(mut exporter) = Exporter::new(format, writer) else { return };
        for device in &filter.devices {
            let query = PointQuery { user: caller.user.id, device: Some(device.id), from: filter.from, to: filter.to };
            let mut failed = false;
            let scanned = store.scan_points(&query, &mut |point: Point| {
                if filter.bbox.is_some_and(|b| !b.contains(&point.fix)) {
                    return ControlFlow::Continue(());
                }
                let name = names.get(&point.device).map_or("unknown", String::as_str);
                if exporter.write(name, &point.fix).is_err() {
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
    let stream = tokio_stream_from(receiver);
    let filename = format!("polo-export.{}", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// `GET /api/v1/locations/last`: the newest point of each of the caller's devices.
pub(crate) async fn last_locations(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let mut out = Vec::new();
        for device in store.list_devices(caller.user.id)? {
            if let Some(point) = store.last_point(caller.user.id, device.id)? {
                out.push(fix_json(&device.name, &point.fix));
            }
        }
        Ok(Json(json!({ "locations": out })))
    })
    .await
}

/// Query parameters of `GET /api/v1/intervals`.
#[derive(Debug, Deserialize)]
pub(crate) struct IntervalParams {
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
}

/// `GET /api/v1/intervals`: visits, activities and memories the sources carried.
pub(crate) async fn intervals(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<IntervalParams>,
) -> Result<Json<Value>, ApiError> {
    let from = params.from.as_deref().map(|t| parse_time("from", t)).transpose()?;
    let to = params.to.as_deref().map(|t| parse_time("to", t)).transpose()?;
    let kind = match params.kind.as_deref() {
        None => None,
        Some("visit") => Some(IntervalKind::Visit),
        Some("activity") => Some(IntervalKind::Activity),
        Some("memory") => Some(IntervalKind::Memory),
        Some(other) => {
            return Err(ApiError::bad_request(format!("kind must be visit, activity or memory (got {other:?})")));
        }
    };
    let store = state.store.clone();
    blocking(move || {
        let names: HashMap<DeviceId, String> =
            store.list_devices(caller.user.id)?.into_iter().map(|d| (d.id, d.name)).collect();
        let rows = store.intervals(caller.user.id, kind, from, to)?;
        let items: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let i = &row.interval;
                json!({
                    "id": row.id,
                    "device": names.get(&row.device),
                    "kind": i.kind.name(),
                    "start": i.start.to_text(i.start_offset_minutes, false),
                    "end": i.end.to_text(i.end_offset_minutes, false),
                    "start_lat": i.start_coord.map(polo_domain::Coord::lat),
                    "start_lon": i.start_coord.map(polo_domain::Coord::lon),
                    "end_lat": i.end_coord.map(polo_domain::Coord::lat),
                    "end_lon": i.end_coord.map(polo_domain::Coord::lon),
                    "place_id": i.place_id,
                    "name": i.name,
                    "category": i.category,
                    "distance_m": i.distance_m,
                    "confidence": i.confidence,
                    "level": i.level,
                    "source": i.source.name(),
                })
            })
            .collect();
        Ok(Json(json!({ "intervals": items })))
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
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor { device: 7, time: 1_700_000_000_123 };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("not a cursor!").is_err());
    }
}
