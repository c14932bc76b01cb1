//! The user's photos over HTTP: the library's photos of a time range
//! (`GET /api/v1/photos`, for the day timeline and its map), their
//! thumbnails (`GET /api/v1/photos/{id}/thumbnail`), and the review of the
//! positions proposed from the history (`/api/v1/photos/proposals`, see
//! [`review`]).
//!
//! Photos enter the library with `polo photos scan` (`polo_derived::photos`
//! keeps one row per file, keyed by capture time). The review's apply and
//! undo are the only routes that change it (the row's `applied` mark) or
//! write beside an original (polo's XMP sidecar). A user sees and changes
//! only their own photos; an administrator sees no one else's.
//!
//! * [`thumbnails`] — made from the original once, kept under a directory.
//! * [`review`] — proposals listed, applied as XMP sidecars, undone.

pub mod review;
pub mod thumbnails;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use polo_derived::photos::{PhotoRow, StoredPhoto, photo, photos_between};
use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, NotFound};
use crate::query::derived::blocking;
use crate::query::parse_time;
use thumbnails::{ThumbError, ThumbSize};

/// Where thumbnails are kept; a temporary directory unless `polo serve`
/// names one under its data directory.
#[derive(Debug, Clone)]
pub struct PhotoFiles {
    dir: PathBuf,
    /// Removed with the last clone, when temporary.
    _temporary: Option<Arc<tempfile::TempDir>>,
}

impl PhotoFiles {
    /// Thumbnails under `dir` (made when the first one is).
    #[must_use]
    pub fn in_dir(dir: PathBuf) -> Self {
        Self { dir, _temporary: None }
    }

    /// Thumbnails in a temporary directory, removed when the state is dropped.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn temporary() -> std::io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("polo-thumbnails-").tempdir()?;
        Ok(Self { dir: temp.path().to_owned(), _temporary: Some(Arc::new(temp)) })
    }
}

/// The most photos one answer lists.
const MAX_PHOTOS: usize = 2_000;

/// Which photos.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PhotosParams {
    /// Taken at or after this instant (RFC 3339, or a date: its UTC midnight).
    #[param(example = "2024-07-14T00:00:00+02:00")]
    from: String,
    /// Taken before this instant.
    #[param(example = "2024-07-15T00:00:00+02:00")]
    to: String,
}

/// One photo or video of the library.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PhotoView {
    /// Its id (a string: it does not fit a JavaScript number).
    #[schema(example = "1720953000000517")]
    id: String,
    /// The file's name.
    #[schema(example = "IMG_0001.jpg")]
    name: String,
    /// `image` or `video`.
    media: String,
    /// When it was taken, in the local time of its clock where known (RFC 3339).
    #[schema(example = "2024-07-14T12:30:00.000+02:00")]
    taken: String,
    /// Where the UTC offset came from: `file`, `position` (the time zone
    /// where it was taken), `history` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset_from: Option<String>,
    /// Latitude, degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    /// Longitude, degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    /// `file` (its own GPS) or `history` (proposed from the location history).
    #[serde(skip_serializing_if = "Option::is_none")]
    position_from: Option<String>,
    /// A proposed position's confidence: `high`, `medium` or `low`.
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<String>,
    /// A proposed position's estimated error, metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_m: Option<f64>,
    /// Camera make and model.
    #[serde(skip_serializing_if = "Option::is_none")]
    camera: Option<String>,
    /// When a proposed position was applied (written to polo's XMP sidecar beside the original,
    /// RFC 3339); absent while it is only proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<String>,
    /// Its thumbnail (`?size=small` or `large`); absent for kinds without one (videos, HEIC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/api/v1/photos/1720953000000517/thumbnail")]
    thumbnail: Option<String>,
}

/// Photos of a range, in time order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PhotoPage {
    /// The photos.
    photos: Vec<PhotoView>,
    /// More were taken in the range than one answer lists; ask for a shorter range.
    truncated: bool,
}

/// Whether the library's file is of a kind thumbnails are made of.
fn has_thumbnail(row: &PhotoRow) -> bool {
    let lower = row.path.to_ascii_lowercase();
    row.media == "image" && [".jpg", ".jpeg", ".png", ".webp"].iter().any(|ext| lower.ends_with(ext))
}

/// The name of the file at `path` (the path itself when it has none).
fn file_name(path: &str) -> String {
    std::path::Path::new(path).file_name().map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}

fn view(stored: StoredPhoto) -> PhotoView {
    let StoredPhoto { key, row } = stored;
    let id = key.to_string();
    let thumbnail = has_thumbnail(&row).then(|| format!("/api/v1/photos/{id}/thumbnail"));
    let name = file_name(&row.path);
    PhotoView {
        applied: row.applied.map(|ms| Timestamp(ms).to_rfc3339(row.offset_min)),
        id,
        name,
        taken: row.taken.map(|ms| Timestamp(ms).to_rfc3339(row.offset_min)).unwrap_or_default(),
        media: row.media,
        offset_from: row.offset_from,
        lat: row.lat_e7.map(|v| f64::from(v) / 1e7),
        lon: row.lon_e7.map(|v| f64::from(v) / 1e7),
        position_from: row.position_from,
        confidence: row.confidence,
        error_m: row.error_m,
        camera: row.camera,
        thumbnail,
    }
}

fn derived(error: polo_derived::DerivedError) -> ApiError {
    match error {
        polo_derived::DerivedError::Store(e) => ApiError::from(e),
        other => {
            tracing::error!(error = %other, "a photo row is unusable");
            ApiError::internal("the photo library could not be read")
        }
    }
}

/// Your photos and videos taken in a range, in time order: where and when each was taken, and
/// where its position came from. `polo photos scan` adds them to your library.
#[utoipa::path(
    get,
    path = "/api/v1/photos",
    tag = "photos",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(PhotosParams),
    responses((status = 200, body = PhotoPage), BadRequest, AuthErrors)
)]
pub(crate) async fn list_photos(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<PhotosParams>, QueryRejection>,
) -> Result<Json<PhotoPage>, ApiError> {
    let Query(params) = params?;
    let (from, to) = (parse_time("from", &params.from)?, parse_time("to", &params.to)?);
    if to <= from {
        return Err(ApiError::bad_request(format!("to ({}) must be after from ({})", params.to, params.from)));
    }
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let mut photos = photos_between(&*store, user, from, to).map_err(derived)?;
        let truncated = photos.len() > MAX_PHOTOS;
        photos.truncate(MAX_PHOTOS);
        Ok(Json(PhotoPage { photos: photos.into_iter().map(view).collect(), truncated }))
    })
    .await
}

/// A thumbnail's size, its longest side.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SizeParam {
    /// 256 px.
    Small,
    /// 1280 px.
    Large,
}

/// Which thumbnail.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ThumbnailParams {
    /// `small` (256 px, the default) or `large` (1280 px), the longest side.
    #[param(inline)]
    size: Option<SizeParam>,
}

/// A photo's thumbnail, a JPEG made from the original the first time it is asked for and kept.
#[utoipa::path(
    get,
    path = "/api/v1/photos/{id}/thumbnail",
    tag = "photos",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The photo's id"), ThumbnailParams),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg", body = Vec<u8>),
        BadRequest, NotFound, AuthErrors
    )
)]
pub(crate) async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<ThumbnailParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let size = match params.size {
        None | Some(SizeParam::Small) => ThumbSize::Small,
        Some(SizeParam::Large) => ThumbSize::Large,
    };
    let key: i64 = id.parse().map_err(|_| ApiError::not_found(format!("no photo {id:?}")))?;
    let (store, user, dir) = (state.store.clone(), caller.user.id, state.photos.dir.join(caller.user.id.0.to_string()));
    let bytes = blocking(move || {
        let row = photo(&*store, user, key)
            .map_err(derived)?
            .ok_or_else(|| ApiError::not_found(format!("no photo {key}")))?;
        thumbnails::thumbnail(&dir, &row.path, size).map_err(|error| match error {
            ThumbError::Keep { .. } => {
                tracing::error!(%error, "cannot keep a thumbnail");
                ApiError::internal("the thumbnail could not be kept")
            }
            other => ApiError::not_found(other.to_string()),
        })
    })
    .await?;
    // Private: another user's browser must not get it from a shared cache.
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=86400")], bytes)
        .into_response())
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_photos))
        .routes(routes!(thumbnail))
        .routes(routes!(review::list_proposals))
        .routes(routes!(review::apply))
        .routes(routes!(review::undo))
}

#[cfg(test)]
mod tests;
