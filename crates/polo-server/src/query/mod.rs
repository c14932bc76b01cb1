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
use crate::error::ApiError;

/// The instant (RFC 3339) in query parameter `name`; a 400 naming the
/// parameter and saying why when it is not one.
pub(crate) fn parse_time(name: &str, text: &str) -> Result<polo_domain::Timestamp, ApiError> {
    polo_domain::time::parse_timestamp(text).map(|p| p.time).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

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
