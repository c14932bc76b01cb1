//! Reviewing the positions proposed from the history, and applying them:
//! `GET /api/v1/photos/proposals`, `POST /api/v1/photos/proposals/apply`
//! and `POST /api/v1/photos/proposals/undo` (the web app's "Review photo
//! positions" page).
//!
//! A *proposal* is a library row whose position came from the history
//! (`position_from: history`). Applying it writes polo's XMP sidecar beside
//! the original ([`polo_photos::sidecar::write`]: never the original itself,
//! never over another program's sidecar) and records in the row when it was
//! applied, so the list of proposals no longer shows it and the timeline
//! shows it as placed. Undoing removes polo's sidecar (only polo's:
//! [`polo_photos::sidecar::remove`]) and makes the row a proposal again.
//!
//! Both are idempotent and go photo by photo: each photo's outcome is
//! reported (written, unchanged, removed, failed with the reason, skipped,
//! not found), and one photo that cannot be written (a read-only folder, an
//! original that is gone, a sidecar of another program) never fails the
//! batch. The rows of the photos that changed are written as one edit after
//! the files, so they replicate like every other library change; should
//! that write fail, the sidecars already written stay, and applying again
//! finds them unchanged.
//!
//! Only the owner sees or changes their photos: ids of another user's
//! photos are not found (a batch naming none of the caller's photos
//! answers 404, as the thumbnail route does).

use std::path::Path as FsPath;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use polo_derived::photos::{StoredPhoto, is_proposal, keys_between, photo, photos_in, replace};
use polo_domain::{Coord, Timestamp, UserId};
use polo_photos::PhotoError;
use polo_photos::geotag::{Confidence, Geotag};
use polo_photos::sidecar::{self, Written};
use polo_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{derived, file_name, has_thumbnail, parse_time};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, JsonBodyErrors, NotFound};
use crate::query::derived::blocking;

/// The most proposals one answer lists, and the most photos one batch changes.
pub(crate) const MAX_BATCH: usize = 2_000;
/// Proposals listed when the request does not say.
const DEFAULT_LIMIT: usize = 500;

/// A proposal's confidence, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ConfidenceLevel {
    /// Far from any fix in time or space.
    Low,
    /// Within a kilometre or so.
    Medium,
    /// Within about 100 m, with a fix close in time.
    High,
}

impl ConfidenceLevel {
    fn of(row_confidence: Option<&str>) -> Self {
        match row_confidence.and_then(Confidence::from_name) {
            Some(Confidence::High) => Self::High,
            Some(Confidence::Medium) => Self::Medium,
            _ => Self::Low,
        }
    }

    fn geotag(self) -> Confidence {
        match self {
            Self::Low => Confidence::Low,
            Self::Medium => Confidence::Medium,
            Self::High => Confidence::High,
        }
    }
}

/// Which proposals a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReviewStatus {
    /// Not applied yet (the default).
    #[default]
    Proposed,
    /// Applied: polo's sidecar was written.
    Applied,
}

/// Which proposals.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProposalParams {
    /// `proposed` (not applied yet, the default) or `applied`.
    #[param(inline)]
    status: Option<ReviewStatus>,
    /// Only proposals at least this confident (default `low`: all).
    #[param(inline)]
    min_confidence: Option<ConfidenceLevel>,
    /// Taken at or after this instant (RFC 3339, or a date: its UTC midnight); default: ever.
    #[param(example = "2024-07-01T00:00:00+02:00")]
    from: Option<String>,
    /// Taken before this instant; default: ever.
    #[param(example = "2024-08-01T00:00:00+02:00")]
    to: Option<String>,
    /// Continue after this photo id (the `next` of the previous page).
    after: Option<String>,
    /// At most this many (1 to 2,000; default 500).
    #[param(minimum = 1, maximum = 2000)]
    limit: Option<u32>,
}

/// A photo's proposed position, with the reasons for its confidence.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProposalView {
    /// The photo's id.
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
    /// The proposed latitude, degrees.
    lat: f64,
    /// The proposed longitude, degrees.
    lon: f64,
    /// How far to trust it.
    confidence: ConfidenceLevel,
    /// Its estimated error, metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_m: Option<f64>,
    /// Time from the capture to the nearest fix of the history, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    nearest_fix_s: Option<f64>,
    /// Whether the history shows you moving then (the position is interpolated along the way).
    #[serde(skip_serializing_if = "Option::is_none")]
    moving: Option<bool>,
    /// When it was applied (RFC 3339); absent while only proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<String>,
    /// Its thumbnail; absent for kinds without one (videos, HEIC).
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail: Option<String>,
}

/// Proposals in a range by what they are, whatever the page shows.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct ProposalCounts {
    /// Not applied, high confidence.
    high: u64,
    /// Not applied, medium confidence.
    medium: u64,
    /// Not applied, low confidence.
    low: u64,
    /// Applied.
    applied: u64,
}

/// Proposals in time order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProposalPage {
    /// The proposals.
    proposals: Vec<ProposalView>,
    /// How many proposals the range holds (all confidences, proposed and applied).
    counts: ProposalCounts,
    /// More match than this page lists: ask again with `after` = `next`.
    truncated: bool,
    /// The id to continue after, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn proposal_view(stored: &StoredPhoto) -> ProposalView {
    let StoredPhoto { key, row } = stored;
    let id = key.to_string();
    ProposalView {
        thumbnail: has_thumbnail(row).then(|| format!("/api/v1/photos/{id}/thumbnail")),
        id,
        name: file_name(&row.path),
        media: row.media.clone(),
        taken: row.taken.map(|ms| Timestamp(ms).to_rfc3339(row.offset_min)).unwrap_or_default(),
        lat: f64::from(row.lat_e7.unwrap_or_default()) / 1e7,
        lon: f64::from(row.lon_e7.unwrap_or_default()) / 1e7,
        confidence: ConfidenceLevel::of(row.confidence.as_deref()),
        error_m: row.error_m,
        nearest_fix_s: row.nearest_fix_s,
        moving: row.moving,
        applied: row.applied.map(|ms| Timestamp(ms).to_rfc3339(row.offset_min)),
    }
}

/// Which proposals a batch or a list takes: a time range and a confidence.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposalFilter {
    /// Only proposals at least this confident (default `low`: all).
    #[serde(default)]
    min_confidence: Option<ConfidenceLevel>,
    /// Taken at or after this instant (RFC 3339); default: ever.
    #[schema(example = "2024-07-01T00:00:00+02:00")]
    #[serde(default)]
    from: Option<String>,
    /// Taken before this instant; default: ever.
    #[schema(example = "2024-08-01T00:00:00+02:00")]
    #[serde(default)]
    to: Option<String>,
}

/// A filter's parsed form.
#[derive(Debug, Clone)]
struct Selection {
    min: ConfidenceLevel,
    keys: std::ops::Range<i64>,
}

impl Selection {
    fn parse(min: Option<ConfidenceLevel>, from: Option<&str>, to: Option<&str>) -> Result<Self, ApiError> {
        let from = from.map(|t| parse_time("from", t)).transpose()?.unwrap_or(Timestamp(i64::MIN));
        let to = to.map(|t| parse_time("to", t)).transpose()?.unwrap_or(Timestamp(i64::MAX));
        if to <= from {
            return Err(ApiError::bad_request("to must be after from"));
        }
        Ok(Self { min: min.unwrap_or(ConfidenceLevel::Low), keys: keys_between(from, to) })
    }

    /// The proposals of the range with `status` at or above the confidence, and the counts of all of them.
    fn find(
        self,
        store: &dyn Store,
        user: UserId,
        status: ReviewStatus,
    ) -> Result<(Vec<StoredPhoto>, ProposalCounts), ApiError> {
        let mut counts = ProposalCounts::default();
        let mut found = Vec::new();
        for stored in photos_in(store, user, self.keys).map_err(derived)? {
            if !is_proposal(&stored.row) || stored.row.taken.is_none() {
                continue;
            }
            let confidence = ConfidenceLevel::of(stored.row.confidence.as_deref());
            let applied = stored.row.applied.is_some();
            match (applied, confidence) {
                (true, _) => counts.applied += 1,
                (false, ConfidenceLevel::High) => counts.high += 1,
                (false, ConfidenceLevel::Medium) => counts.medium += 1,
                (false, ConfidenceLevel::Low) => counts.low += 1,
            }
            if applied == (status == ReviewStatus::Applied) && confidence >= self.min {
                found.push(stored);
            }
        }
        Ok((found, counts))
    }
}

/// Your photos whose positions were proposed from your location history: not yet applied (or,
/// with `status=applied`, applied), in time order, with each proposal's confidence and its reasons.
#[utoipa::path(
    get,
    path = "/api/v1/photos/proposals",
    tag = "photos",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(ProposalParams),
    responses((status = 200, body = ProposalPage), BadRequest, AuthErrors)
)]
pub(crate) async fn list_proposals(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ProposalParams>, QueryRejection>,
) -> Result<Json<ProposalPage>, ApiError> {
    let Query(params) = params?;
    let selection = Selection::parse(params.min_confidence, params.from.as_deref(), params.to.as_deref())?;
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n @ 1..=2_000) => n as usize,
        Some(n) => return Err(ApiError::bad_request(format!("limit: {n} is not between 1 and 2000"))),
    };
    let after = match params.after.as_deref() {
        None => None,
        Some(text) => {
            Some(text.parse::<i64>().map_err(|_| ApiError::bad_request(format!("after: {text:?} is not a photo id")))?)
        }
    };
    let (store, user, status) = (state.store.clone(), caller.user.id, params.status.unwrap_or_default());
    blocking(move || {
        let (mut found, counts) = selection.find(&*store, user, status)?;
        if let Some(after) = after {
            found.retain(|p| p.key > after);
        }
        let truncated = found.len() > limit;
        found.truncate(limit);
        let next = truncated.then(|| found.last().map(|p| p.key.to_string())).flatten();
        Ok(Json(ProposalPage { proposals: found.iter().map(proposal_view).collect(), counts, truncated, next }))
    })
    .await
}

/// Which photos a batch changes: their ids, or every proposal that matches a filter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// These photos (at most 2,000), as `GET /api/v1/photos/proposals` lists them.
    #[schema(example = json!(["1720953000000517"]))]
    #[serde(default)]
    ids: Option<Vec<String>>,
    /// Every proposal that matches (the first 2,000 in time order; `more` says when there were
    /// more): to apply, those not applied yet; to undo, those applied. Give `ids` or this.
    #[serde(default)]
    matching: Option<ProposalFilter>,
}

/// What happened to one photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// polo's sidecar was written (there was none).
    Written,
    /// polo's sidecar held another position and was rewritten.
    Updated,
    /// polo's sidecar already held this position (applied before): nothing was written.
    Unchanged,
    /// polo's sidecar was removed.
    Removed,
    /// There was no sidecar of polo's to remove: nothing was removed.
    Absent,
    /// Nothing to do: the photo has a position of its own, not a proposal.
    Skipped,
    /// Not one of your photos.
    NotFound,
    /// It could not be done; `message` says why.
    Failed,
}

/// One photo's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PhotoOutcome {
    /// The photo's id (as sent).
    id: String,
    /// The file's name, when it is one of yours.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// What happened.
    outcome: Outcome,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// What a batch did, photo by photo.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchOutcome {
    /// Each photo's outcome, in the order asked (or in time order for `matching`).
    results: Vec<PhotoOutcome>,
    /// Sidecars written or rewritten.
    written: u64,
    /// Photos already so: nothing written or removed.
    unchanged: u64,
    /// Sidecars removed.
    removed: u64,
    /// Photos that failed (see their `message`).
    failed: u64,
    /// `matching` found more than one batch takes: send it again for the rest.
    more: bool,
}

impl BatchOutcome {
    fn new(results: Vec<PhotoOutcome>, more: bool) -> Self {
        let count = |f: fn(Outcome) -> bool| results.iter().filter(|r| f(r.outcome)).count() as u64;
        Self {
            written: count(|o| matches!(o, Outcome::Written | Outcome::Updated)),
            unchanged: count(|o| matches!(o, Outcome::Unchanged | Outcome::Absent)),
            removed: count(|o| o == Outcome::Removed),
            failed: count(|o| o == Outcome::Failed),
            results,
            more,
        }
    }
}

/// Apply or undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Apply,
    Undo,
}

/// The photos a batch names: `(id as sent, the photo when it is the caller's)`, and whether
/// `matching` left some for another batch.
type Targets = (Vec<(String, Option<StoredPhoto>)>, bool);

fn targets(store: &dyn Store, user: UserId, body: BatchRequest, action: Action) -> Result<Targets, ApiError> {
    match (body.ids, body.matching) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::bad_request("ids: name at least one photo"));
            }
            if ids.len() > MAX_BATCH {
                return Err(ApiError::bad_request(format!(
                    "ids: at most {MAX_BATCH} photos at once, not {}",
                    ids.len()
                )));
            }
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let stored = match id.parse::<i64>() {
                    Ok(key) => photo(store, user, key).map_err(derived)?.map(|row| StoredPhoto { key, row }),
                    Err(_) => None,
                };
                found.push((id, stored));
            }
            if found.iter().all(|(_, stored)| stored.is_none()) {
                let (first, _) = &found[0];
                return Err(ApiError::not_found(format!("no photo {first}")));
            }
            Ok((found, false))
        }
        (None, Some(filter)) => {
            let selection = Selection::parse(filter.min_confidence, filter.from.as_deref(), filter.to.as_deref())?;
            let status = if action == Action::Apply { ReviewStatus::Proposed } else { ReviewStatus::Applied };
            let (mut found, _) = selection.find(store, user, status)?;
            let more = found.len() > MAX_BATCH;
            found.truncate(MAX_BATCH);
            Ok((found.into_iter().map(|p| (p.key.to_string(), Some(p))).collect(), more))
        }
        _ => Err(ApiError::bad_request("give ids or matching (one of them)")),
    }
}

/// The geotag a proposal row stands for, as `polo photos geotag` would have written it.
fn geotag_of(stored: &StoredPhoto) -> Option<(Geotag, Timestamp)> {
    let row = &stored.row;
    let coord = Coord::from_e7(i64::from(row.lat_e7?), i64::from(row.lon_e7?)).ok()?;
    let tag = Geotag {
        coord,
        confidence: ConfidenceLevel::of(row.confidence.as_deref()).geotag(),
        error_m: row.error_m.unwrap_or_default(),
        nearest_fix_s: row.nearest_fix_s.unwrap_or_default(),
        accuracy_m: polo_photos::geotag::DEFAULT_ACCURACY_M,
        moving: row.moving.unwrap_or_default(),
    };
    Some((tag, Timestamp(row.taken?)))
}

/// Why a sidecar could not be written or removed, for the person reading the outcome.
fn reason(error: &PhotoError) -> String {
    match error {
        PhotoError::ForeignSidecar { sidecar, .. } => {
            format!("another program's sidecar is there ({}); polo does not overwrite it", sidecar.display())
        }
        PhotoError::Io { path, source } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("cannot write beside the photo (permission denied: {})", path.display())
        }
        PhotoError::Io { path, source } if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
            format!("cannot write beside the photo (read-only file system: {})", path.display())
        }
        other => other.to_string(),
    }
}

/// Does one photo's part of a batch; returns its outcome and the row to store when it changed.
fn one(action: Action, stored: &StoredPhoto, now: Timestamp) -> (Outcome, Option<String>, Option<StoredPhoto>) {
    let row = &stored.row;
    if !is_proposal(row) {
        return (Outcome::Skipped, Some("its position is its own, not proposed from your history".to_owned()), None);
    }
    let original = FsPath::new(&row.path);
    match action {
        Action::Apply => {
            let Some((tag, taken)) = geotag_of(stored) else {
                return (
                    Outcome::Failed,
                    Some("the proposal has no capture time or no valid position".to_owned()),
                    None,
                );
            };
            if !original.is_file() {
                return (Outcome::Failed, Some(format!("the original is gone: {}", row.path)), None);
            }
            match sidecar::write(original, &tag, taken) {
                Ok(written) => {
                    let outcome = match written {
                        Written::Created => Outcome::Written,
                        Written::Updated => Outcome::Updated,
                        Written::Unchanged => Outcome::Unchanged,
                    };
                    let changed = row.applied.is_none().then(|| StoredPhoto {
                        key: stored.key,
                        row: polo_derived::photos::PhotoRow { applied: Some(now.0), ..row.clone() },
                    });
                    (outcome, None, changed)
                }
                Err(error) => (Outcome::Failed, Some(reason(&error)), None),
            }
        }
        Action::Undo => match sidecar::remove(original) {
            Ok(removed) => {
                let changed = row.applied.is_some().then(|| StoredPhoto {
                    key: stored.key,
                    row: polo_derived::photos::PhotoRow { applied: None, ..row.clone() },
                });
                (if removed { Outcome::Removed } else { Outcome::Absent }, None, changed)
            }
            Err(error) => (Outcome::Failed, Some(reason(&error)), None),
        },
    }
}

fn run_batch(store: &dyn Store, user: UserId, body: BatchRequest, action: Action) -> Result<BatchOutcome, ApiError> {
    let (targets, more) = targets(store, user, body, action)?;
    let now = crate::audit::now();
    let mut results = Vec::with_capacity(targets.len());
    let mut changed = Vec::new();
    for (id, stored) in targets {
        let Some(stored) = stored else {
            results.push(PhotoOutcome { id, name: None, outcome: Outcome::NotFound, message: None });
            continue;
        };
        let (outcome, message, row) = one(action, &stored, now);
        results.push(PhotoOutcome { id, name: Some(file_name(&stored.row.path)), outcome, message });
        changed.extend(row);
    }
    // Each photo once, whatever the request repeated.
    changed.sort_by_key(|p| p.key);
    changed.dedup_by_key(|p| p.key);
    replace(store, user, &changed).map_err(derived)?;
    Ok(BatchOutcome::new(results, more))
}

/// Applies proposed positions: writes polo's XMP sidecar beside each original (never the original,
/// never over another program's sidecar) and marks each as applied. Idempotent; every photo's
/// outcome is reported, and a photo that fails does not fail the others.
#[utoipa::path(
    post,
    path = "/api/v1/photos/proposals/apply",
    tag = "photos",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = BatchRequest,
    responses((status = 200, body = BatchOutcome), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Json<BatchOutcome>, ApiError> {
    let Json(body) = body?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || run_batch(&*store, user, body, Action::Apply).map(Json)).await
}

/// Undoes applied positions: removes polo's sidecar beside each original (only polo's) and makes
/// each a proposal again. Idempotent, photo by photo like apply.
#[utoipa::path(
    post,
    path = "/api/v1/photos/proposals/undo",
    tag = "photos",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = BatchRequest,
    responses((status = 200, body = BatchOutcome), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn undo(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Json<BatchOutcome>, ApiError> {
    let Json(body) = body?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || run_batch(&*store, user, body, Action::Undo).map(Json)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidences_order_and_unknown_ones_are_low() {
        assert!(ConfidenceLevel::Low < ConfidenceLevel::Medium && ConfidenceLevel::Medium < ConfidenceLevel::High);
        assert_eq!(ConfidenceLevel::of(Some("high")), ConfidenceLevel::High);
        assert_eq!(ConfidenceLevel::of(Some("certain")), ConfidenceLevel::Low);
        assert_eq!(ConfidenceLevel::of(None), ConfidenceLevel::Low);
    }

    #[test]
    fn a_batch_counts_its_outcomes() {
        let result = |outcome| PhotoOutcome { id: "1".to_owned(), name: None, outcome, message: None };
        let batch = BatchOutcome::new(
            vec![
                result(Outcome::Written),
                result(Outcome::Updated),
                result(Outcome::Unchanged),
                result(Outcome::Failed),
            ],
            false,
        );
        assert_eq!((batch.written, batch.unchanged, batch.removed, batch.failed), (2, 1, 0, 1));
    }

    #[test]
    fn a_selection_needs_its_range_in_order() {
        assert!(Selection::parse(None, Some("2024-07-02"), Some("2024-07-01")).is_err());
        assert!(Selection::parse(None, Some("yesterday"), None).is_err());
        let open = Selection::parse(Some(ConfidenceLevel::Medium), None, None).unwrap();
        assert_eq!(open.min, ConfidenceLevel::Medium);
        assert!(open.keys.start < 0 && open.keys.end > 0);
    }
}
