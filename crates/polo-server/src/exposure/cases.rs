//! The health authority's cases: marking, withdrawing, and each case's
//! contacts per window.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use polo_exposure::model::{Case, Contact};
use polo_exposure::workflow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::authority::{Authority, blocking, name_of, names, parse_time, reason, time, user_named};
use crate::AppState;
use crate::error::{ApiError, AuthErrors, AuthorityErrors, Conflict, JsonBodyErrors};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cases, mark_case))
        .routes(routes!(withdraw_case))
        .routes(routes!(case_contacts))
}

/// A confirmed case.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaseView {
    /// The case's id.
    id: String,
    /// The user who is the case.
    user: String,
    /// Start of the infectious period (RFC 3339).
    infectious_from: String,
    /// End of the infectious period (exclusive).
    infectious_to: String,
    /// The authority who marked it.
    marked_by: String,
    /// When.
    marked_at: String,
    /// The authority's note.
    note: String,
    /// When it was withdrawn, if it was.
    withdrawn_at: Option<String>,
}

fn case_view(case: &Case, names: &BTreeMap<i64, String>) -> CaseView {
    CaseView {
        id: case.id.clone(),
        user: name_of(names, case.user),
        infectious_from: time(case.infectious_from),
        infectious_to: time(case.infectious_to),
        marked_by: case.marked_by.clone(),
        marked_at: time(case.marked_at),
        note: case.note.clone(),
        withdrawn_at: case.withdrawn_at.map(time),
    }
}

/// The cases.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaseList {
    cases: Vec<CaseView>,
}

/// Every case, oldest first (health authority only).
#[utoipa::path(
    get,
    path = "/api/v1/exposure/cases",
    tag = "exposure",
    security(("session" = []), ("basic" = [])),
    responses((status = 200, body = CaseList), AuthorityErrors, AuthErrors)
)]
async fn list_cases(State(state): State<AppState>, _authority: Authority) -> ApiResult<Json<CaseList>> {
    let store = state.store.clone();
    blocking(move || {
        let names = names(&*store)?;
        let cases = workflow::cases(&*store)?;
        Ok(Json(CaseList { cases: cases.iter().map(|c| case_view(c, &names)).collect() }))
    })
    .await
}

/// `POST /api/v1/exposure/cases`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaseBody {
    /// The user's login name.
    #[schema(example = "bob")]
    user: String,
    /// Start of the infectious period (any timestamp polo reads, e.g. RFC 3339).
    #[schema(example = "2024-05-01T00:00:00Z")]
    infectious_from: String,
    /// End of the infectious period (exclusive); at most 60 days after the start.
    #[schema(example = "2024-05-08T00:00:00Z")]
    infectious_to: String,
    /// Why (kept in the audit log).
    #[serde(default)]
    note: String,
}

/// Marks a user as a case with an infectious period (health authority only). The batch lists the case's
/// contacts once the period's windows are complete.
#[utoipa::path(
    post,
    path = "/api/v1/exposure/cases",
    tag = "exposure",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = CaseBody,
    responses((status = 201, body = CaseView), JsonBodyErrors, AuthorityErrors, AuthErrors)
)]
async fn mark_case(
    State(state): State<AppState>,
    Authority(authority): Authority,
    body: Result<Json<CaseBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CaseView>)> {
    let Json(body) = body?;
    let from = parse_time("infectious_from", &body.infectious_from)?;
    let to = parse_time("infectious_to", &body.infectious_to)?;
    if body.note.chars().count() > 1000 {
        return Err(ApiError::bad_request("note: at most 1000 characters"));
    }
    let (store, exposure) = (state.store.clone(), state.exposure.clone());
    let view = blocking(move || {
        let subject = user_named(&*store, &body.user)?;
        let case =
            workflow::mark_case(&*store, &authority.user, &subject, from, to, &body.note, polo_store::clock::now())?;
        Ok(case_view(&case, &names(&*store)?))
    })
    .await?;
    exposure.poke();
    Ok((StatusCode::CREATED, Json(view)))
}

/// A body with the authority's reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    /// Why (kept in the audit log).
    #[schema(example = "the test was a false positive")]
    reason: String,
}

/// Withdraws a case (health authority only): its contacts and pending proposals are deleted; statuses
/// already applied stay until they expire.
#[utoipa::path(
    post,
    path = "/api/v1/exposure/cases/{id}/withdraw",
    tag = "exposure",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The case's id")),
    request_body = ReasonBody,
    responses((status = 200, body = CaseView), JsonBodyErrors, AuthorityErrors, Conflict, AuthErrors)
)]
async fn withdraw_case(
    State(state): State<AppState>,
    Authority(authority): Authority,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ReasonBody>, JsonRejection>,
) -> ApiResult<Json<CaseView>> {
    let Path(id) = id?;
    let Json(body) = body?;
    reason(&body.reason)?;
    let (store, exposure) = (state.store.clone(), state.exposure.clone());
    let view = blocking(move || {
        let case =
            workflow::withdraw_case(&*store, &authority.user, &id, reason(&body.reason)?, polo_store::clock::now())?;
        Ok(case_view(&case, &names(&*store)?))
    })
    .await?;
    exposure.poke();
    Ok(Json(view))
}

/// A contact of a case in one window.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactView {
    /// The contact.
    user: String,
    /// The window's start.
    window: String,
    /// First pair of points within D and T.
    first: String,
    /// Last pair.
    last: String,
    /// Exposure minutes.
    minutes: u32,
    /// Point pairs.
    pairs: u64,
    /// Closest distance in metres.
    min_distance_m: f64,
}

fn contact_view(c: &Contact, names: &BTreeMap<i64, String>) -> ContactView {
    ContactView {
        user: name_of(names, c.contact),
        window: time(c.window),
        first: time(c.first),
        last: time(c.last),
        minutes: c.minutes,
        pairs: c.pairs,
        min_distance_m: c.min_distance_m,
    }
}

/// A case's contacts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactList {
    /// The case.
    case: CaseView,
    /// Its contacts, by window.
    contacts: Vec<ContactView>,
}

/// A case's contacts, per window, with exposure minutes (health authority only).
#[utoipa::path(
    get,
    path = "/api/v1/exposure/cases/{id}/contacts",
    tag = "exposure",
    security(("session" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The case's id")),
    responses((status = 200, body = ContactList), AuthorityErrors, AuthErrors)
)]
async fn case_contacts(
    State(state): State<AppState>,
    _authority: Authority,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ContactList>> {
    let Path(id) = id?;
    let store = state.store.clone();
    blocking(move || {
        let case = workflow::case(&*store, &id)?;
        let names = names(&*store)?;
        let contacts = workflow::contacts_of(&*store, &id)?;
        Ok(Json(ContactList {
            case: case_view(&case, &names),
            contacts: contacts.iter().map(|c| contact_view(c, &names)).collect(),
        }))
    })
    .await
}
