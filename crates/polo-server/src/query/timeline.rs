//! `GET /api/v1/timeline/day`: the stays and legs of one local day.
//!
//! Computed on request from the stored points with `polo-timeline` (stays by
//! trackintel's sliding method, legs with their transport mode), with the
//! user's default parameters. The points read reach a day beyond each side
//! of the asked day, so a stay that began the evening before is found whole,
//! exactly as a computation over the whole history would find it.
//!
//! "Local" is the time zone the points themselves carry (their UTC offsets,
//! which change when the user travels or at DST); points without one count
//! as UTC. Entries that overlap the local day are returned whole.

use std::collections::HashMap;
use std::ops::ControlFlow;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use polo_domain::{DeviceId, Timestamp};
use polo_store::PointQuery;
use polo_timeline::clock::instant_of_local;
use polo_timeline::{LocalClock, LocalDate, OffsetChanges, TimelineParams, TrackPoint};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest};

const DAY_MS: i64 = 86_400_000;
/// Context read on each side of the local day (a day, plus the widest UTC offsets).
const CONTEXT_MS: i64 = DAY_MS + 14 * 3_600_000;

/// Query parameters of `GET /api/v1/timeline/day`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DayParams {
    /// The local day, `YYYY-MM-DD` (years 1970 to 9999).
    #[param(example = "2024-05-01", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    date: String,
    /// The device whose points tell the story; default: the one with the most points around that day.
    #[param(example = "phone")]
    device: Option<String>,
}

/// What an entry of the day is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntryKind {
    /// Staying at one place.
    Stay,
    /// Moving between places.
    Leg,
}

/// One stay or leg. Times are RFC 3339 in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayEntry {
    /// Stay or leg.
    kind: EntryKind,
    /// When it began.
    #[schema(example = "2024-05-01T07:12:03Z")]
    start: String,
    /// When it ended (a stay: the time of the first point outside it).
    #[schema(example = "2024-05-01T08:40:00Z")]
    end: String,
    /// Seconds from start to end.
    duration_s: f64,
    /// Points it is made of.
    points: u32,
    /// Stays: the centroid's latitude in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    /// Stays: the centroid's longitude in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    /// Stays: long enough to count as a visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    visit: Option<bool>,
    /// Legs: metres along the points.
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
    /// Legs: `walk`, `cycle`, `road`, `rail`, `flight` or `unknown`, inferred from speeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "walk")]
    mode: Option<&'static str>,
    /// Legs: the fastest sustained speed, m/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_speed_mps: Option<f64>,
    /// Legs: the mean speed, m/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_speed_mps: Option<f64>,
}

/// The day's story.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayTimeline {
    /// The local day asked for.
    #[schema(example = "2024-05-01")]
    date: String,
    /// The device whose points were used; absent when there were none.
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    /// The first instant of the local day (UTC).
    from: String,
    /// The first instant of the next local day (UTC).
    to: String,
    /// The UTC offset at the start of the day, in minutes (from the points; 0 when they carry none).
    utc_offset_minutes: i16,
    /// Stays and legs overlapping the day, in time order.
    entries: Vec<DayEntry>,
}

fn parse_date(text: &str) -> Result<LocalDate, ApiError> {
    let bad = || ApiError::bad_request(format!("date must be a day as YYYY-MM-DD from 1970 to 9999, not {text:?}"));
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (year, month, day) = (
        y.parse::<i32>().map_err(|_| bad())?,
        m.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&year) {
        return Err(bad());
    }
    LocalDate::from_ymd(year, month, day).ok_or_else(bad)
}

/// The stays and legs of a local day, computed from the caller's points.
#[utoipa::path(
    get,
    path = "/api/v1/timeline/day",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(DayParams),
    responses((status = 200, body = DayTimeline), BadRequest, AuthErrors)
)]
pub(crate) async fn day(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<DayParams>, QueryRejection>,
) -> Result<Json<DayTimeline>, ApiError> {
    let Query(params) = params?;
    let date = parse_date(&params.date)?;
    let store = state.store.clone();
    let user = caller.user.id;
    tokio::task::spawn_blocking(move || {
        let devices = store.list_devices(user)?;
        let wanted = match &params.device {
            Some(name) => Some(
                devices
                    .iter()
                    .find(|d| &d.name == name)
                    .map(|d| d.id)
                    .ok_or_else(|| ApiError::bad_request(format!("you have no device named {name:?}")))?,
            ),
            None => None,
        };
        let midnight_utc = date.0 * DAY_MS;
        let query = PointQuery {
            user,
            device: wanted,
            from: Some(Timestamp(midnight_utc - CONTEXT_MS)),
            to: Some(Timestamp(midnight_utc + DAY_MS + CONTEXT_MS)),
        };
        let mut by_device: HashMap<DeviceId, Vec<TrackPoint>> = HashMap::new();
        store.scan_points(&query, &mut |point| {
            by_device.entry(point.device).or_default().push(TrackPoint::from(&point));
            ControlFlow::Continue(())
        })?;
        // One device's points tell one story; interleaving a phone and a watch would jitter.
        let chosen = by_device.into_iter().max_by_key(|(id, points)| (points.len(), std::cmp::Reverse(id.0)));
        let (device, points) = chosen.unwrap_or((DeviceId(0), Vec::new()));
        let clock = OffsetChanges::from_points(&points, 0);
        let from = instant_of_local(&clock, date.0 * DAY_MS);
        let to = instant_of_local(&clock, (date.0 + 1) * DAY_MS);
        let settings = TimelineParams::default();
        let timeline = polo_timeline::detect(&points, &settings)
            .map_err(|e| ApiError::internal(format!("timeline computation failed: {e}")))?;
        let mut entries = Vec::new();
        for stay in &timeline.stays {
            if stay.end > from && stay.start < to {
                entries.push(DayEntry {
                    kind: EntryKind::Stay,
                    start: stay.start.to_string(),
                    end: stay.end.to_string(),
                    duration_s: seconds(stay.start, stay.end),
                    points: stay.point_count,
                    lat: Some(stay.centroid.lat()),
                    lon: Some(stay.centroid.lon()),
                    visit: Some(stay.is_visit(&settings.stays)),
                    distance_m: None,
                    mode: None,
                    max_speed_mps: None,
                    mean_speed_mps: None,
                });
            }
        }
        for leg in &timeline.legs {
            if leg.end > from && leg.start < to {
                entries.push(DayEntry {
                    kind: EntryKind::Leg,
                    start: leg.start.to_string(),
                    end: leg.end.to_string(),
                    duration_s: seconds(leg.start, leg.end),
                    points: leg.point_count,
                    lat: None,
                    lon: None,
                    visit: None,
                    distance_m: Some(leg.distance_m),
                    mode: Some(leg.mode.name()),
                    max_speed_mps: Some(leg.speed.max_m_s),
                    mean_speed_mps: Some(leg.speed.mean_m_s),
                });
            }
        }
        entries.sort_by(|a, b| a.start.cmp(&b.start));
        let offset = clock.offset_minutes_at(from);
        Ok(Json(DayTimeline {
            date: params_date(date),
            device: devices.iter().find(|d| d.id == device).map(|d| d.name.clone()),
            from: from.to_string(),
            to: to.to_string(),
            utc_offset_minutes: offset,
            entries,
        }))
    })
    .await
    .map_err(|e| ApiError::internal(format!("timeline task failed: {e}")))?
}

fn params_date(date: LocalDate) -> String {
    let (y, m, d) = date.ymd();
    format!("{y:04}-{m:02}-{d:02}")
}

#[allow(clippy::cast_precision_loss)]
fn seconds(start: Timestamp, end: Timestamp) -> f64 {
    (end.0 - start.0) as f64 / 1000.0
}
