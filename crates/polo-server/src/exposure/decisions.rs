//! The health authority's decisions: proposals to approve or reject, the
//! audit log, and the batch's windows.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use polo_domain::UserId;
use polo_exposure::model::{Proposal, ProposalState, WindowState};
use polo_exposure::{windows, workflow};
use polo_store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::authority::{Authority, blocking, name_of, names, reason, time, user_named};
use crate::AppState;
use crate::error::{ApiError, AuthErrors, AuthorityErrors, BadRequest, Conflict, JsonBodyErrors};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_proposals))
        .routes(routes!(decide))
        .routes(routes!(audit_log))
        .routes(routes!(list_windows))
}

/// What the rules saw.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvidenceView {
    /// Exposure minutes over every window.
    minutes: u32,
    /// Windows with contact.
    encounters: u32,
    /// Point pairs.
    pairs: u64,
    /// First pair.
    first: String,
    /// Last pair.
    last: String,
    /// Closest distance in metres.
    min_distance_m: f64,
}

/// A proposed status change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProposalView {
    /// The case's id.
    case: String,
    /// The contact.
    user: String,
    /// `pending`, `approved`, `rejected` or `applied` (auto-apply).
    #[schema(example = "pending")]
    state: String,
    /// The status it proposes (`exposed`).
    status: &'static str,
    /// What the rules saw.
    evidence: EvidenceView,
    /// When it was made.
    created: String,
    /// Who decided (`system` for auto-apply).
    decided_by: Option<String>,
    /// When.
    decided_at: Option<String>,
    /// Why.
    reason: Option<String>,
}

fn state_name(state: ProposalState) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn proposal_view(p: &Proposal, names: &BTreeMap<i64, String>) -> ProposalView {
    ProposalView {
        case: p.case.clone(),
        user: name_of(names, p.contact),
        state: state_name(p.state),
        status: p.status.name(),
        evidence: EvidenceView {
            minutes: p.evidence.minutes,
            encounters: p.evidence.encounters,
            pairs: p.evidence.pairs,
            first: time(p.evidence.first),
            last: time(p.evidence.last),
            min_distance_m: p.evidence.min_distance_m,
        },
        created: time(p.created),
        decided_by: p.decided_by.clone(),
        decided_at: p.decided_at.map(time),
        reason: p.reason.clone(),
    }
}

/// Filters of the proposal list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProposalParams {
    /// Only proposals in this state: `pending`, `approved`, `rejected` or `applied`.
    state: Option<String>,
}

/// The proposals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProposalList {
    proposals: Vec<ProposalView>,
}

/// Proposed status changes, by case (health authority only).
#[utoipa::path(
    get,
    path = "/api/v1/exposure/proposals",
    tag = "exposure",
    security(("session" = []), ("basic" = [])),
    params(ProposalParams),
    responses((status = 200, body = ProposalList), BadRequest, AuthorityErrors, AuthErrors)
)]
async fn list_proposals(
    State(state): State<AppState>,
    _authority: Authority,
    params: Result<Query<ProposalParams>, QueryRejection>,
) -> ApiResult<Json<ProposalList>> {
    let Query(params) = params?;
    let filter = params
        .state
        .as_deref()
        .map(|s| {
            serde_json::from_value::<ProposalState>(serde_json::Value::String(s.to_owned())).map_err(|_| {
                ApiError::bad_request(format!("state must be pending, approved, rejected or applied, not {s:?}"))
            })
        })
        .transpose()?;
    let store = state.store.clone();
    blocking(move || {
        let names = names(&*store)?;
        let proposals = workflow::proposals(&*store, filter)?;
        Ok(Json(ProposalList { proposals: proposals.iter().map(|p| proposal_view(p, &names)).collect() }))
    })
    .await
}

/// `POST …/decision`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// Approve (apply the proposed status) or reject.
    approve: bool,
    /// Why (kept in the audit log).
    #[schema(example = "long contact indoors")]
    reason: String,
}

/// Approves or rejects a pending proposal (health authority only). Approving applies the status, and
/// the contact's live stream is told.
#[utoipa::path(
    post,
    path = "/api/v1/exposure/proposals/{case}/{user}/decision",
    tag = "exposure",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("case" = String, Path, description = "The case's id"), ("user" = String, Path, description = "The contact's user name")),
    request_body = DecisionBody,
    responses((status = 200, body = ProposalView), JsonBodyErrors, AuthorityErrors, Conflict, AuthErrors)
)]
async fn decide(
    State(state): State<AppState>,
    Authority(authority): Authority,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> ApiResult<Json<ProposalView>> {
    let Path((case, user)) = path?;
    let Json(body) = body?;
    reason(&body.reason)?;
    let settings = state.exposure.enabled()?;
    let (store, exposure) = (state.store.clone(), state.exposure.clone());
    let (view, contact) = blocking(move || {
        let contact = user_named(&*store, &user)?;
        let signer = exposure.signer()?;
        let now = polo_store::clock::now();
        let why = reason(&body.reason)?;
        let decided = workflow::decide(
            &*store,
            &signer,
            &settings,
            &authority.user,
            &case,
            contact.id.0,
            body.approve,
            why,
            now,
        )?;
        Ok((proposal_view(&decided, &names(&*store)?), contact.id))
    })
    .await?;
    if view.state == state_name(ProposalState::Approved) {
        state.exposure.statuses().forget(&[contact]);
        state.live.exposure_changed(contact);
    }
    Ok(Json(view))
}

// -------------------------------------------------------- audit, windows

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    /// Its id (page with `before`).
    id: i64,
    /// When.
    at: String,
    /// Who (`system` for automatic decisions).
    actor: String,
    /// What (`exposure.case.mark`, `exposure.proposal.approve`, …).
    action: String,
    /// Whom it concerns.
    subject: Option<String>,
    /// Why and on which evidence.
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

/// Audit-log filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only entries about this user (name).
    user: Option<String>,
    /// Only entries with a smaller id (the next page).
    before: Option<i64>,
    /// At most this many (1–500, default 100).
    limit: Option<usize>,
}

/// Audit entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditList {
    entries: Vec<AuditView>,
}

/// The audit log of exposure decisions, newest first (health authority only).
#[utoipa::path(
    get,
    path = "/api/v1/exposure/audit",
    tag = "exposure",
    security(("session" = []), ("basic" = [])),
    params(AuditParams),
    responses((status = 200, body = AuditList), BadRequest, AuthorityErrors, AuthErrors)
)]
async fn audit_log(
    State(state): State<AppState>,
    _authority: Authority,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<AuditList>> {
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1 to 500, not {limit}")));
    }
    let store = state.store.clone();
    blocking(move || {
        let subject = params.user.as_deref().map(|n| user_named(&*store, n).map(|u| u.id)).transpose()?;
        let names = names(&*store)?;
        let entries =
            store.audit_log(&AuditQuery { subject, before_id: params.before, limit, ..AuditQuery::default() })?;
        Ok(Json(AuditList {
            entries: entries
                .into_iter()
                .map(|e| AuditView {
                    id: e.id,
                    at: e.at.to_string(),
                    actor: e.actor,
                    action: e.action,
                    subject: e.subject.map(|UserId(id)| name_of(&names, id)),
                    detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
                })
                .collect(),
        }))
    })
    .await
}

/// One window of the batch.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WindowView {
    /// Start.
    start: String,
    /// End (exclusive).
    end: String,
    /// Waiting to be computed.
    queued: bool,
    /// Why it was queued (`complete`, `late data`, `parameters changed`).
    reason: String,
    /// When it was last computed.
    computed_at: Option<String>,
    /// Contacts found then.
    contacts: u64,
}

/// The batch's windows.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WindowList {
    /// Windows waiting.
    queue_depth: u64,
    /// Every window, by start.
    windows: Vec<WindowView>,
    /// Why the batch's last run failed, while it keeps failing on this node.
    failure: Option<String>,
}

/// The batch's windows and queue (health authority only).
#[utoipa::path(
    get,
    path = "/api/v1/exposure/windows",
    tag = "exposure",
    security(("session" = []), ("basic" = [])),
    responses((status = 200, body = WindowList), AuthorityErrors, AuthErrors)
)]
async fn list_windows(State(state): State<AppState>, _authority: Authority) -> ApiResult<Json<WindowList>> {
    let (store, failure) = (state.store.clone(), state.exposure.failure());
    blocking(move || {
        let all: Vec<WindowState> = windows::windows(&*store)?;
        Ok(Json(WindowList {
            queue_depth: all.iter().filter(|w| w.queued).count() as u64,
            windows: all
                .iter()
                .map(|w| WindowView {
                    start: time(w.start),
                    end: time(w.end),
                    queued: w.queued,
                    reason: w.reason.clone(),
                    computed_at: w.computed_at.map(time),
                    contacts: w.contacts,
                })
                .collect(),
            failure,
        }))
    })
    .await
}
