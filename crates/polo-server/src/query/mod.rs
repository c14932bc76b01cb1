//! The read side of the API under `/api/v1`: points for a time range (as
//! paginated JSON or streamed GeoJSON/GPX/CSV), the last known location per
//! device, the intervals a source carried, and the day timeline computed
//! from the points.
//!
//! Every query is scoped to the caller's user: the user id comes from the
//! authenticated [`Caller`], never from the request.

mod points;
mod timeline;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(points::list))
        .routes(routes!(points::export))
        .routes(routes!(points::last_locations))
        .routes(routes!(points::intervals))
        .routes(routes!(timeline::day))
}
