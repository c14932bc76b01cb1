//! `PUT /api/v1/timeline/visits`: the user's edit of one stay.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use polo_derived::visit_edits::VisitEdit;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, JsonBodyErrors, NotFound};
use crate::query::derived::{blocking, device_named, parse_instant};

/// Your version of one visit: everything given replaces what was detected; a body with only
/// `device` and `start` undoes an earlier edit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisitEditRequest {
    /// The device whose stay it is.
    #[schema(example = "phone")]
    device: String,
    /// The stay's start, exactly as the timeline lists it (RFC 3339).
    #[schema(example = "2024-05-01T07:12:03Z")]
    start: String,
    /// `true`: it was no visit; the timeline leaves it out (its points stay).
    #[serde(default)]
    deleted: bool,
    /// When it really began (RFC 3339; at most a day from the detected start).
    #[schema(example = "2024-05-01T07:00:00Z")]
    new_start: Option<String>,
    /// When it really ended (RFC 3339; at most a day from the detected end).
    #[schema(example = "2024-05-01T09:00:00Z")]
    new_end: Option<String>,
    /// Where it really was: a place id from `GET /api/v1/places`.
    place_id: Option<i64>,
}

/// Edits a visit: another place, other times, or deleted from the timeline. The edit is kept as
/// yours and applied to every recomputation that finds the stay starting at the same fix; it
/// replicates. The statistics of its days follow before the answer.
#[utoipa::path(
    put,
    path = "/api/v1/timeline/visits",
    tag = "timeline",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = VisitEditRequest,
    responses(
        (status = 204, description = "Stored; the timeline shows it at once"),
        BadRequest,
        JsonBodyErrors,
        NotFound,
        CsrfFailed,
        AuthErrors
    )
)]
pub(crate) async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<VisitEditRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    let shown = parse_instant("start", &body.start)?;
    let edit = VisitEdit {
        deleted: body.deleted,
        start: body.new_start.as_deref().map(|t| parse_instant("new_start", t)).transpose()?.map(|t| t.0),
        end: body.new_end.as_deref().map(|t| parse_instant("new_end", t)).transpose()?.map(|t| t.0),
        place: body.place_id,
    };
    if edit.deleted && (edit.start.is_some() || edit.end.is_some() || edit.place.is_some()) {
        return Err(ApiError::bad_request("deleted: give no new_start, new_end or place_id with it"));
    }
    let (store, engine, user) = (state.store.clone(), state.timeline.engine().clone(), caller.user.id);
    blocking(move || {
        let device = device_named(&store.list_devices(user)?, &body.device)?;
        if engine.set_visit_edit(user, device, shown, &edit)? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::not_found(format!("start: {} has no stay starting at {shown}", body.device)))
        }
    })
    .await
}
