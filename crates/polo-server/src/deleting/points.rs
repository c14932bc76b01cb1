//! `POST /api/v1/points/delete` and `POST /api/v1/points/restore`.

use std::ops::ControlFlow;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use polo_domain::Timestamp;
use polo_store::{Area, PointQuery, PointSelection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::undo::{self, Removed};
use crate::AppState;
use crate::auth::{Caller, random_secret};
use crate::error::{ApiError, AuthErrors, CsrfFailed, JsonBodyErrors, NotFound};
use crate::query::derived::{blocking, device_named, parse_instant};

/// Which points to delete. Give a time range (`from`, `to`, either may be
/// left open), a `device`, a `bbox`, or any of them together; or
/// `everything` alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteRequest {
    /// Points from this instant on (RFC 3339), inclusive.
    #[schema(example = "2024-05-01T00:00:00+02:00")]
    from: Option<String>,
    /// Points before this instant (RFC 3339), exclusive.
    #[schema(example = "2024-05-02T00:00:00+02:00")]
    to: Option<String>,
    /// Only this device's points (by name); default: every device.
    #[schema(example = "phone")]
    device: Option<String>,
    /// Only points inside `[west, south, east, north]` (degrees, edges included; west > east
    /// crosses ±180°): a selection on the map.
    #[schema(example = json!([11.55, 48.13, 11.6, 48.16]))]
    bbox: Option<Vec<f64>>,
    /// Every point of every device: the whole history. Give nothing else with it.
    #[serde(default)]
    everything: bool,
}

/// What a delete did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeleteOutcome {
    /// Points removed.
    deleted: u64,
    /// Pass to `POST /api/v1/points/restore` to undo the delete (its points and the imported
    /// visits and activities it took); absent when it removed nothing or more than 100,000 points.
    #[serde(skip_serializing_if = "Option::is_none")]
    undo: Option<String>,
    /// Until when the undo works (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    undo_expires: Option<String>,
}

/// The area of a `bbox`, or a 400 naming it.
fn parse_bbox(values: &[f64]) -> Result<Area, ApiError> {
    let &[w, s, e, n] = values else {
        return Err(ApiError::bad_request(format!(
            "bbox must be four numbers [west, south, east, north], not {}",
            values.len()
        )));
    };
    let lon = |v: f64| (-180.0..=180.0).contains(&v);
    let lat = |v: f64| (-90.0..=90.0).contains(&v);
    if !(lon(w) && lon(e) && lat(s) && lat(n)) {
        return Err(ApiError::bad_request("bbox: longitudes must lie in -180..180 and latitudes in -90..90"));
    }
    if s > n {
        return Err(ApiError::bad_request("bbox: south is north of north"));
    }
    // Range-checked above: |v| * 1e7 fits an i32.
    #[allow(clippy::cast_possible_truncation)]
    let e7 = |v: f64| (v * 1e7).round() as i32;
    Ok(Area { west_e7: e7(w), south_e7: e7(s), east_e7: e7(e), north_e7: e7(n) })
}

/// The time range of a request, each bound optional, checked in order.
fn parse_range(from: Option<&str>, to: Option<&str>) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    let from = from.map(|t| parse_instant("from", t)).transpose()?;
    let to = to.map(|t| parse_instant("to", t)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        return Err(ApiError::bad_request("to must be after from"));
    }
    Ok((from, to))
}

/// Deletes points: a range, a day (its local bounds as `from` and `to`), a device, a selection on
/// the map (`bbox`, with or without a time range), or `everything`. The delete is kept as a
/// tombstone: it replicates, and importing the same file again leaves these points out (unless
/// the import asks for them back with `restore_deleted`). The timeline of the affected days is
/// recomputed before the answer. Imported visits and activities (intervals) starting inside the
/// selection go with the points (and stay out of a re-import too).
#[utoipa::path(
    post,
    path = "/api/v1/points/delete",
    tag = "query",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = DeleteRequest,
    responses((status = 200, body = DeleteOutcome), JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<DeleteRequest>, JsonRejection>,
) -> Result<Json<DeleteOutcome>, ApiError> {
    let Json(body) = body?;
    let chose_some = body.from.is_some() || body.to.is_some() || body.device.is_some() || body.bbox.is_some();
    if body.everything && chose_some {
        return Err(ApiError::bad_request("everything: give no from, to, device or bbox with it"));
    }
    if !body.everything && !chose_some {
        return Err(ApiError::bad_request(
            "give from and to, a device, a bbox, or everything: true (to delete the whole history)",
        ));
    }
    let (from, to) = parse_range(body.from.as_deref(), body.to.as_deref())?;
    let area = body.bbox.as_deref().map(parse_bbox).transpose()?;
    let (store, engine, user) = (state.store.clone(), state.timeline.engine().clone(), caller.user.id);
    blocking(move || {
        let device = match body.device.as_deref() {
            Some(name) => Some(device_named(&store.list_devices(user)?, name)?),
            None => None,
        };
        let selection = PointSelection { query: PointQuery { user, device, from, to }, area, keep_one_every_ms: None };
        let mut removed = Removed::default();
        let mut undoable = true;
        store.scan_points(&selection.query, &mut |p| {
            if area.is_some_and(|a| !a.contains(p.fix.coord.lat_e7, p.fix.coord.lon_e7)) {
                return ControlFlow::Continue(());
            }
            if removed.note(p.device, p.fix) {
                ControlFlow::Continue(())
            } else {
                undoable = false;
                ControlFlow::Break(())
            }
        })?;
        // The intervals the delete takes with the points: those starting inside it.
        for stored in store.intervals(user, None, from, to)? {
            let interval = stored.interval;
            let inside = device.is_none_or(|d| d == stored.device)
                && from.is_none_or(|f| f <= interval.start)
                && to.is_none_or(|t| interval.start < t)
                && area.is_none_or(|a| interval.start_coord.is_some_and(|c| a.contains(c.lat_e7, c.lon_e7)));
            if inside {
                removed.note_interval(stored.device, interval);
            }
        }
        let outcome = store.delete_selection(&selection)?;
        tracing::info!(user = user.0, deleted = outcome.deleted, "points deleted");
        engine.catch_up()?;
        let took_something = outcome.deleted > 0 || removed.has_intervals();
        let (undo, undo_expires) = if undoable && took_something {
            let token = random_secret();
            let expires = undo::keep(&*store, &token, user, removed, Timestamp(now_ms()))?;
            (Some(token), Some(expires.to_string()))
        } else {
            (None, None)
        };
        Ok(Json(DeleteOutcome { deleted: outcome.deleted, undo, undo_expires }))
    })
    .await
}

fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// `POST /api/v1/points/restore`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreRequest {
    /// The `undo` a delete answered with.
    undo: String,
}

/// What an undo stored again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RestoreOutcome {
    /// Points stored again.
    restored: u64,
    /// Imported visits and activities stored again.
    restored_intervals: u64,
}

/// Undoes a delete within 15 minutes, through any node and after a restart: its points are
/// stored again (a newer write than the delete, so replicas take them back too) and the timeline
/// of their days is recomputed. An undo works once; after the window it is 404 `not_found`.
#[utoipa::path(
    post,
    path = "/api/v1/points/restore",
    tag = "query",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = RestoreRequest,
    responses((status = 200, body = RestoreOutcome), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<RestoreRequest>, JsonRejection>,
) -> Result<Json<RestoreOutcome>, ApiError> {
    let Json(body) = body?;
    let (store, engine, user) = (state.store.clone(), state.timeline.engine().clone(), caller.user.id);
    blocking(move || {
        let (removed, kept) = undo::take(&*store, &body.undo, user, Timestamp(now_ms()))?
            .ok_or_else(|| ApiError::not_found("undo: no such delete to undo (it may have expired)"))?;
        let mut restored = 0;
        let mut failure = None;
        for (device, fixes) in &removed.points {
            match store.restore_points(user, *device, fixes) {
                Ok(outcome) => restored += outcome.added,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut restored_intervals = 0;
        if failure.is_none() {
            for (device, intervals) in &removed.intervals {
                match store.restore_intervals(user, *device, intervals) {
                    Ok(outcome) => restored_intervals += outcome.added,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failure {
            // What was stored stays; the rest can be tried again.
            undo::put_back(&*store, &kept)?;
            return Err(e.into());
        }
        engine.catch_up()?;
        Ok(Json(RestoreOutcome { restored, restored_intervals }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bboxes_and_ranges_name_what_is_wrong() {
        let area = parse_bbox(&[170.0, -10.0, -170.0, 10.0]).unwrap();
        assert!(area.contains(0, 1_750_000_000) && area.contains(0, -1_750_000_000));
        assert!(!area.contains(0, 0));
        assert!(parse_bbox(&[1.0, 2.0, 3.0]).unwrap_err().message.contains("four numbers"));
        assert!(parse_bbox(&[0.0, 10.0, 1.0, 5.0]).unwrap_err().message.contains("south"));
        assert!(parse_bbox(&[0.0, 0.0, 181.0, 5.0]).unwrap_err().message.contains("-180..180"));
        assert!(parse_range(Some("2024-01-02T00:00:00Z"), Some("2024-01-01T00:00:00Z")).is_err());
        assert!(parse_range(Some("yesterday"), None).unwrap_err().message.starts_with("from:"));
        assert_eq!(parse_range(None, None).unwrap(), (None, None));
    }
}
