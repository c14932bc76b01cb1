//! The administrator's and the health authority's routes: settings and
//! roles, cases, contacts, proposals and decisions, the audit log and the
//! batch's windows. The module table is in [`super`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use polo_domain::time::parse_timestamp;
use polo_domain::{Timestamp, UserId};
use polo_exposure::model::{Case, Contact, Proposal, ProposalState, WindowState};
use polo_exposure::settings::{self, Settings};
use polo_exposure::{windows, workflow};
use polo_store::{AuditQuery, Role, Store, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{AdminCaller, Caller};
use crate::error::{
    AdminForbidden, ApiError, AuthErrors, AuthorityErrors, BadRequest, Conflict, JsonBodyErrors, NotFound,
};

type ApiResult<T> = Result<T, ApiError>;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// A caller with the health-authority role, while the feature is on
/// (403 `forbidden` without the role, then 404 `exposure_disabled`).
#[derive(Debug, Clone)]
pub(crate) struct Authority(pub Caller);

impl FromRequestParts<AppState> for Authority {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let (store, id) = (state.store.clone(), caller.user.id);
        let role = blocking(move || Ok(store.user_role(id)?)).await?;
        if role != Some(Role::HealthAuthority) {
            return Err(ApiError::forbidden("this needs the health-authority role (an administrator gives it)"));
        }
        state.exposure.enabled()?;
        Ok(Self(caller))
    }
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(set_role))
        .routes(routes!(list_cases, mark_case))
        .routes(routes!(withdraw_case))
        .routes(routes!(case_contacts))
        .routes(routes!(list_proposals))
        .routes(routes!(decide))
        .routes(routes!(audit_log))
        .routes(routes!(list_windows))
}

// ------------------------------------------------------------ settings, roles

/// The exposure settings: effective values and the defaults a `null` returns to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingsView {
    /// By name: `enabled`, `max_distance_m`, `max_gap_s`, `window_hours`, `completion_delay_hours`,
    /// `min_minutes`, `min_encounters`, `auto_apply`, `status_validity_days`, `code_validity_hours`,
    /// `retention_days`.
    #[schema(value_type = Object)]
    settings: serde_json::Map<String, serde_json::Value>,
    /// The defaults.
    #[schema(value_type = Object)]
    defaults: serde_json::Map<String, serde_json::Value>,
}

fn settings_view(settings: &Settings) -> Json<SettingsView> {
    Json(SettingsView { settings: settings.to_json(), defaults: Settings::default().to_json() })
}

/// `PUT /api/v1/admin/exposure`'s body: any of the settings by name, `null` for the default. Written
/// by hand from `polo_exposure::settings::SETTINGS`, so the document states each setting's type and
/// bounds from the one place they are defined.
struct SettingsPatch;

impl utoipa::PartialSchema for SettingsPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        let mut object = ObjectBuilder::new()
            .description(Some("The settings to change, by name; `null` returns one to its default"))
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
        for setting in settings::SETTINGS {
            let value = match setting.number_bounds() {
                None => ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Boolean, Type::Null])),
                Some((min, max, whole)) => {
                    let kind = if whole { Type::Integer } else { Type::Number };
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([kind, Type::Null]))
                        .minimum(Some(min))
                        .maximum(Some(max))
                }
            };
            object = object.property(setting.name, value);
        }
        object.into()
    }
}

impl ToSchema for SettingsPatch {}

/// The exposure settings (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/exposure",
    tag = "exposure",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = SettingsView), AdminForbidden, AuthErrors)
)]
async fn get_settings(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> ApiResult<Json<SettingsView>> {
    let exposure = state.exposure.clone();
    let settings = blocking(move || Ok(exposure.reload()?)).await?;
    Ok(settings_view(&settings))
}

/// Changes exposure settings (admins only, not with a device token): a JSON object of the settings to
/// change, `null` returning one to its default. The feature is off until `{"enabled": true}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/exposure",
    tag = "exposure",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = SettingsPatch,
    responses((status = 200, body = SettingsView), JsonBodyErrors, AdminForbidden, AuthErrors)
)]
async fn put_settings(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<Json<SettingsView>> {
    let Json(body) = body?;
    admin.require_password_grade()?;
    let patch = body.as_object().ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
    let changes = settings::changes(patch)?;
    let (store, exposure) = (state.store.clone(), state.exposure.clone());
    let name = admin.user.name.clone();
    let settings = blocking(move || {
        for (key, value) in &changes {
            store.set_instance_setting(key, value.as_deref())?;
        }
        let detail = serde_json::Value::Object(patch_to_detail(&changes));
        store.write_records(&[workflow::audit(
            polo_store::clock::now(),
            &name,
            "exposure.settings.change",
            None,
            &detail,
        )])?;
        Ok(exposure.reload()?)
    })
    .await?;
    Ok(settings_view(&settings))
}

fn patch_to_detail(changes: &[(String, Option<String>)]) -> serde_json::Map<String, serde_json::Value> {
    changes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(serde_json::Value::Null, serde_json::Value::String)))
        .collect()
}

/// `PUT /api/v1/users/{name}/role`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    /// `health-authority`, or `null` for no role.
    #[schema(example = "health-authority")]
    role: Option<String>,
}

/// A user's role.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleView {
    /// The user.
    user: String,
    /// The role, or `null`.
    role: Option<&'static str>,
}

/// Gives a user the health-authority role, or takes it away (admins only, not with a device token).
#[utoipa::path(
    put,
    path = "/api/v1/users/{name}/role",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("name" = String, Path, description = "The user name")),
    request_body = RoleBody,
    responses((status = 200, body = RoleView), JsonBodyErrors, AdminForbidden, NotFound, AuthErrors)
)]
async fn set_role(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<RoleBody>, JsonRejection>,
) -> ApiResult<Json<RoleView>> {
    let Path(name) = name?;
    let Json(body) = body?;
    admin.require_password_grade()?;
    let role = body
        .role
        .as_deref()
        .map(|r| {
            Role::from_name(r).ok_or_else(|| {
                ApiError::bad_request(format!("unknown role {r:?}; the roles are health-authority (or null for none)"))
            })
        })
        .transpose()?;
    let store = state.store.clone();
    let actor = admin.user.name.clone();
    blocking(move || {
        let user =
            store.user_by_name(&name)?.ok_or_else(|| ApiError::not_found(format!("there is no user {name:?}")))?;
        store.set_user_role(user.id, role)?;
        let detail = serde_json::json!({"user": name, "role": role.map(Role::name)});
        store.write_records(&[workflow::audit(
            polo_store::clock::now(),
            &actor,
            "role.set",
            Some(user.id.0),
            &detail,
        )])?;
        Ok(Json(RoleView { user: user.name, role: role.map(Role::name) }))
    })
    .await
}

// ------------------------------------------------------------------ cases

fn names(store: &dyn Store) -> ApiResult<BTreeMap<i64, String>> {
    Ok(store.list_users()?.into_iter().map(|u| (u.id.0, u.name)).collect())
}

fn name_of(names: &BTreeMap<i64, String>, id: i64) -> String {
    names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

fn time(ms: i64) -> String {
    Timestamp(ms).to_string()
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

fn parse_time(name: &str, text: &str) -> ApiResult<Timestamp> {
    parse_timestamp(text).map(|p| p.time).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

fn user_named(store: &dyn Store, name: &str) -> ApiResult<User> {
    store.user_by_name(name)?.ok_or_else(|| ApiError::not_found(format!("there is no user {name:?}")))
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

fn reason(text: &str) -> ApiResult<&str> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 1000 {
        return Err(ApiError::bad_request("reason: 1 to 1000 characters, for the audit log"));
    }
    Ok(text)
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

// -------------------------------------------------------------- proposals

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
        let entries = store.audit_log(&AuditQuery { subject, before_id: params.before, limit })?;
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
