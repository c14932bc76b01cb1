//! The read side of the API under `/api/v1`: points for a time range (as
//! paginated JSON or streamed GeoJSON/GPX/CSV), the last known location per
//! device, and the intervals a source carried.
//!
//! Every query is scoped to the caller's user: the user id comes from the
//! authenticated [`Caller`], never from the request.

mod points;

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/points", get(points::list))
        .route("/api/v1/export", get(points::export))
        .route("/api/v1/locations/last", get(points::last_locations))
        .route("/api/v1/intervals", get(points::intervals))
}
