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

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{JobError, NewJob};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Room for the multipart framing and small text fields around the file.
const FRAMING_BYTES: u64 = 1 << 20;

pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let max = state.imports.config().max_upload_bytes.saturating_add(FRAMING_BYTES);
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    Router::new()
        .route("/api/v1/imports", get(list).post(create).layer(DefaultBodyLimit::max(limit)))
        .route("/api/v1/imports/{id}", get(status))
        .route("/api/v1/imports/{id}/rejects", get(rejects))
}

#[derive(Debug, Default, Deserialize)]
struct CreateQuery {
    device: Option<String>,
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
    state.imports.check_room(caller.user.id)?;
    // The token's own device wins, like live ingest; then ?device=; then the file's.
    let device = caller
        .device
        .as_ref()
        .map(|d| d.name.clone())
        .or_else(|| query.device.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()));

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
    let new = NewJob { user: caller.user.id, device, file_name, upload, bytes };
    let job = state.imports.start(new, state.store.clone(), state.metrics.clone())?;
    tracing::info!(user = %caller.user.name, job = %job.id(), bytes, "import job queued");
    let url = job.url();
    let body = Json(json!({"id": job.id(), "status": "queued", "url": url}));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], body).into_response())
}

async fn list(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let jobs: Vec<_> = state.imports.list(caller.user.id).iter().map(|j| j.view()).collect();
    Json(json!({ "imports": jobs }))
}

fn job_for(
    state: &AppState,
    caller: &Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<std::sync::Arc<super::Job>, ApiError> {
    let Path(id) = id?;
    state.imports.get(caller.user.id, &id).ok_or_else(|| ApiError::not_found(format!("no import job {id:?}")))
}

async fn status(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<super::JobView>, ApiError> {
    Ok(Json(job_for(&state, &caller, id)?.view()))
}

/// Streams the job's rejects file (JSON lines) in 64 KiB chunks.
async fn rejects(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let job = job_for(&state, &caller, id)?;
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
