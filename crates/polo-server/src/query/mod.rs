//! The read side of the API under `/api/v1`: points for a time range (as
//! paginated JSON or streamed GeoJSON/GPX/CSV), the last known location per
//! device, the intervals a source carried, the stored timeline (days,
//! stays and legs, trips, places, statistics) with the user's edits of it,
//! and the map (overviews, heatmap and fog-of-war tiles).
//!
//! Every query is scoped to the caller's user: the user id comes from the
//! authenticated [`Caller`], never from the request.

pub(crate) mod derived;
pub(crate) mod map;
mod places;
pub(crate) mod points;
mod stats;
pub(crate) mod timeline;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(points::list))
        .routes(routes!(points::export))
        .routes(routes!(points::last_locations))
        .routes(routes!(points::intervals))
        .routes(routes!(points::flag_fix))
        .routes(routes!(timeline::day))
        .routes(routes!(timeline::entries))
        .routes(routes!(timeline::trips))
        .routes(routes!(timeline::correct_mode))
        .routes(routes!(timeline::get_settings, timeline::put_settings))
        .routes(routes!(timeline::progress))
        .routes(routes!(places::list))
        .routes(routes!(places::rename))
        .routes(routes!(places::merge))
        .routes(routes!(stats::stats))
        .routes(routes!(map::overview))
        .routes(routes!(map::heatmap))
        .routes(routes!(map::fog))
}
