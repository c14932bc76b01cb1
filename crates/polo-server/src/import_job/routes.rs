//! `POST /api/v1/imports` and the job status routes.
//!
//! The upload is a `multipart/form-data` body whose file part (the part
//! named `file`, or else the first part with a file name) is streamed chunk
//! by chunk into a spool file: a multi-GB Takeout never sits in memory. The
//! route has its own body limit ([`ImportJobsConfig::max_upload_bytes`] plus
//! room for the multipart framing) instead of the small default, and the
//! file part itself is counted against the maximum, answering 413
//! `payload_too_large` as soon as it is passed.
//!
//! [`ImportJobsConfig::max_upload_bytes`]: super::ImportJobsConfig::max_upload_bytes

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::{JobError, JobView, NewJob};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, ErrorBody, NotFound};

/// Room for the multipart framing and small text fields around the file.
const FRAMING_BYTES: u64 = 1 << 20;

/// The routes; uploads may be `max_upload` bytes (the file part).
pub(crate) fn routes(max_upload: u64) -> OpenApiRouter<AppState> {
    let limit = usize::try_from(max_upload.saturating_add(FRAMING_BYTES)).unwrap_or(usize::MAX);
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(create).layer(DefaultBodyLimit::max(limit)))
        .routes(routes!(status))
        .routes(routes!(rejects))
}

/// Query parameters of `POST /api/v1/imports`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CreateQuery {
    /// The device to import into when the file does not name one (a device token's own device wins);
    /// a device name as `POST /api/v1/devices` takes it. Empty means none, as an upload form's
    /// empty field sends it.
    #[param(
        max_length = 64,
        pattern = "^(?:$|(?!\\s*\\.)(?=[^\\u0000-\\u001f]*[^\\s])[^/+#\\\\<>\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$)"
    )]
    device: Option<String>,
    /// `true`: store points you deleted before too. By default a re-import leaves them out (each
    /// file's `deleted_left_out` counts them).
    restore_deleted: Option<bool>,
}

/// The upload: the part `file`, and any other parts, which are ignored. Written by hand
/// because the derive cannot say that the parts' names must fit in a `Content-Disposition`.
struct Upload;

impl utoipa::PartialSchema for Upload {
    fn schema() -> RefOr<Schema> {
        let file = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("The file: any importable format (zip, gzip, Takeout, GPX, KML, GeoJSON, CSV, FIT, …)"));
        // What a `Content-Disposition: form-data; name="…"` can carry: no control character, quote or backslash.
        let names = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[^\\u0000-\\u001f\\u007f\"\\\\]*$"));
        ObjectBuilder::new()
            .property("file", file)
            .required("file")
            .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
            .property_names(Some(names))
            .into()
    }
}

impl ToSchema for Upload {}

/// An accepted upload.
#[derive(Debug, Serialize, ToSchema)]
struct Queued {
    /// The job's id.
    id: String,
    /// `queued`.
    #[schema(example = "queued")]
    status: &'static str,
    /// The job's status URL.
    #[schema(example = "/api/v1/imports/8f3c2a")]
    url: String,
}

/// The caller's import jobs.
#[derive(Debug, Serialize, ToSchema)]
struct JobList {
    /// Newest first.
    imports: Vec<JobView>,
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::TooMany(_) => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
                error.retry_after = Some(30);
                error
            }
            JobError::Spool(io) => {
                tracing::error!(error = %io, "cannot spool an upload");
                ApiError::unavailable("cannot store the upload on the server; try again later")
            }
            JobError::Store(e) => e.into(),
        }
    }
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(e.body_text())
    } else if status.is_client_error() {
        ApiError::bad_request(format!("broken multipart body: {}", e.body_text()))
    } else {
        ApiError::internal(e.body_text())
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::payload_too_large(format!("the upload is larger than this server's maximum of {max} bytes"))
}

/// Uploads a file to import in the background, one job at a time.
///
/// The file is streamed to disk, never held in memory; the job's progress is at the answer's `url`.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "imports",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(CreateQuery),
    request_body(content = Upload, content_type = "multipart/form-data",
        description = "The file as the part named `file` (or the first part with a file name)"),
    responses(
        (status = 202, description = "Queued", body = Queued,
            headers(("Location" = String, description = "The job's status URL"))),
        BadRequest,
        (status = 413, description = "`payload_too_large`: over the server's upload maximum", body = ErrorBody),
        CsrfFailed,
        AuthErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let max = state.imports.config().max_upload_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max.saturating_add(FRAMING_BYTES)) {
        return Err(too_large(max));
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "send the file as multipart/form-data (a part named \"file\"): {}",
            e.body_text()
        ))
    })?;
    {
        let (imports, store, node, user) =
            (state.imports.clone(), state.store.clone(), state.node.clone(), caller.user.id);
        tokio::task::spawn_blocking(move || imports.check_room(&*store, &node, user)).await??;
    }
    // The token's own device wins, like live ingest; then ?device=; then the file's.
    let device = caller
        .device
        .as_ref()
        .map(|d| d.name.clone())
        .map(Ok)
        .or_else(|| {
            let named = query.device.filter(|d| !d.is_empty())?;
            Some(crate::ingest::routes::checked_device_name("the query parameter device", &named).map(str::to_owned))
        })
        .transpose()?;

    let mut received = None;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(&e))? {
        let is_file = field.name() == Some("file") || (received.is_none() && field.file_name().is_some());
        if !is_file || received.is_some() {
            // Drain other parts; they count towards the body limit.
            while field.chunk().await.map_err(|e| multipart_error(&e))?.is_some() {}
            continue;
        }
        let file_name = field
            .file_name()
            .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "upload".to_owned());
        let imports = state.imports.clone();
        let spool = tokio::task::spawn_blocking(move || imports.spool_file()).await?.map_err(JobError::Spool)?;
        let mut out = tokio::fs::File::from_std(spool.reopen().map_err(JobError::Spool)?);
        let mut bytes = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
            bytes += chunk.len() as u64;
            if bytes > max {
                return Err(too_large(max));
            }
            out.write_all(&chunk).await.map_err(JobError::Spool)?;
        }
        out.flush().await.map_err(JobError::Spool)?;
        out.sync_all().await.map_err(JobError::Spool)?;
        drop(out);
        received = Some((file_name, spool, bytes));
    }
    let Some((file_name, upload, bytes)) = received else {
        return Err(ApiError::bad_request("no file in the upload: send it as the multipart part named \"file\""));
    };
    let restore_deleted = query.restore_deleted.unwrap_or(false);
    let new = NewJob { user: caller.user.id, device, restore_deleted, file_name, upload, bytes };
    let job = state.imports.start(new, state.store.clone(), &state.node, state.metrics.clone()).await?;
    tracing::info!(user = %caller.user.name, job = %job.id(), bytes, "import job queued");
    let url = job.url();
    let body = Json(Queued { id: job.id().to_owned(), status: "queued", url: url.clone() });
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], body).into_response())
}

/// The caller's import jobs, newest first (kept in memory: a restart forgets them, not the data).
#[utoipa::path(
    get,
    path = "/api/v1/imports",
    tag = "imports",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = JobList), AuthErrors)
)]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<JobList>, ApiError> {
    let (imports, store, node, user) = (state.imports.clone(), state.store.clone(), state.node.clone(), caller.user.id);
    let imports = tokio::task::spawn_blocking(move || imports.list(&*store, &node, user)).await??;
    Ok(Json(JobList { imports }))
}

/// One of the caller's import jobs.
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    tag = "imports",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, body = JobView), NotFound, AuthErrors)
)]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<super::JobView>, ApiError> {
    let Path(id) = id?;
    let (imports, store, node, user) = (state.imports.clone(), state.store.clone(), state.node.clone(), caller.user.id);
    let wanted = id.clone();
    let view = tokio::task::spawn_blocking(move || imports.view(&*store, &node, user, &wanted)).await??;
    view.map(Json).ok_or_else(|| ApiError::not_found(format!("no import job {id:?}")))
}

/// The job's rejected records, as JSON lines (`{"offset"|"line", "reason", "raw", …}`).
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}/rejects",
    tag = "imports",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "One JSON object per line", body = String, content_type = "application/x-ndjson"),
        NotFound,
        AuthErrors,
    )
)]
async fn rejects(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Some(job) = state.imports.local(caller.user.id, &id) else {
        let (store, user, wanted) = (state.store.clone(), caller.user.id, id.clone());
        let elsewhere = tokio::task::spawn_blocking(move || store.import_job(user, &wanted)).await??;
        return Err(ApiError::not_found(match elsewhere {
            Some(_) => format!(
                "the rejected records of import job {id:?} are kept by the server node that ran it; \
                 ask that node, or upload the file again"
            ),
            None => format!("no import job {id:?}"),
        }));
    };
    let path = job.rejects_path().map(std::path::Path::to_path_buf);
    let file = match path {
        Some(path) => tokio::fs::File::open(path).await.ok(),
        None => None,
    };
    let Some(file) = file else {
        return Err(ApiError::not_found(format!("import job {} rejected no records", job.id())));
    };
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}
