//! The groups API.
//!
//! * `GET|POST /api/v1/groups` — the caller's groups; make one (the caller
//!   is its first admin).
//! * `GET|PUT|DELETE /api/v1/groups/{id}` — one group with its members;
//!   rename; delete (with its invitations and zones).
//! * `PUT|DELETE /api/v1/groups/{id}/members/{user}/admin` — promote, demote.
//! * `DELETE /api/v1/groups/{id}/members/{user}` — remove a member;
//!   `POST /api/v1/groups/{id}/leave` — leave.
//! * `GET|POST /api/v1/groups/{id}/invitations`,
//!   `DELETE /api/v1/groups/{id}/invitations/{invitation}` — invitation links.
//! * `GET|POST /api/v1/groups/join/{token}` — what an invitation is for;
//!   join with it.
//!
//! Admin actions are written to the audit log (`group.*`). Every change of
//! who is in a group tells the zone evaluator, whose index says which
//! devices a group's zone is evaluated for.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use polo_store::{Invitation, JoinOutcome, Membership, NewInvitation, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{MAX_GROUPS_PER_USER, MAX_MEMBERS, Standing, invitation_expiry, invitation_uses, valid_name};
use crate::AppState;
use crate::audit::{Event, now, record};
use crate::auth::{Caller, random_secret, sha256};
use crate::client::Client;
use crate::error::{
    ApiError, AuthErrors, BadRequest, Conflict, CsrfFailed, Forbidden, JsonBodyErrors, NotFound, json_object,
};
use crate::query::derived::blocking;

/// A group you are in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupView {
    id: i64,
    name: String,
    /// Made, ms since the epoch.
    created_ms: i64,
    /// Who made it (absent once that account is deleted).
    created_by: Option<String>,
    /// Whether you administer it.
    admin: bool,
    /// How many members it has.
    members: u32,
}

/// Your groups.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupList {
    groups: Vec<GroupView>,
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberView {
    /// The user name.
    user: String,
    /// Administers the group.
    admin: bool,
    /// Joined, ms since the epoch.
    joined_ms: i64,
}

/// A group with its members (admins first).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupDetail {
    #[serde(flatten)]
    group: GroupView,
    member_list: Vec<MemberView>,
    /// The ids of the zones that belong to it (`GET /api/v1/zones` lists them).
    zones: Vec<i64>,
}

/// `POST /api/v1/groups` and `PUT /api/v1/groups/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupBody {
    /// 1 to 100 characters ("Family").
    #[schema(min_length = 1, max_length = 100, example = "Family")]
    name: String,
}

/// An invitation link (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationView {
    id: i64,
    /// Who made it.
    created_by: Option<String>,
    created_ms: i64,
    expires_ms: i64,
    /// How many people it admits.
    max_uses: u32,
    /// How many joined with it.
    uses: u32,
    revoked_ms: Option<i64>,
    /// Whether it still admits someone.
    active: bool,
}

/// A group's invitations, revoked, expired and used-up ones too.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationList {
    invitations: Vec<InvitationView>,
}

/// A new invitation with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewInvitationView {
    #[serde(flatten)]
    invitation: InvitationView,
    /// The secret (256 random bits, base64url).
    token: String,
    /// The web app's page for it: send this link.
    #[schema(example = "/join/9sQ2xv…")]
    url: String,
}

/// `POST /api/v1/groups/{id}/invitations`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvitationBody {
    /// How many people it admits (1 to 100; default 1, a single-use link).
    #[schema(minimum = 1, maximum = 100)]
    max_uses: Option<u32>,
    /// Seconds until it expires (60 to 2592000, 30 days; default 604800, 7 days).
    #[schema(minimum = 60, maximum = 2592000)]
    expires_in_s: Option<i64>,
}

/// What an invitation link is for.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationPreview {
    /// The group's id.
    group_id: i64,
    /// The group's name.
    group: String,
    /// The admin who made the link.
    invited_by: Option<String>,
    expires_ms: i64,
    /// You are a member already.
    member: bool,
    /// Whether joining with it would work now.
    valid: bool,
    /// Why not, when it would not.
    reason: Option<String>,
}

/// What joining did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Joined {
    #[serde(flatten)]
    group: GroupView,
    /// `false`: you were a member already (the invitation was not used).
    joined: bool,
}

fn group_view(store: &dyn Store, m: &Membership) -> Result<GroupView, ApiError> {
    let created_by = match m.group.created_by {
        Some(id) => store.user_by_id(id)?.map(|u| u.name),
        None => None,
    };
    Ok(GroupView {
        id: m.group.id,
        name: m.group.name.clone(),
        created_ms: m.group.created.0,
        created_by,
        admin: m.admin,
        members: m.members,
    })
}

fn invitation_view(store: &dyn Store, i: &Invitation, at: polo_domain::Timestamp) -> Result<InvitationView, ApiError> {
    let created_by = match i.created_by {
        Some(id) => store.user_by_id(id)?.map(|u| u.name),
        None => None,
    };
    Ok(InvitationView {
        id: i.id,
        created_by,
        created_ms: i.created.0,
        expires_ms: i.expires.0,
        max_uses: i.max_uses,
        uses: i.uses,
        revoked_ms: i.revoked.map(|t| t.0),
        active: i.refusal(at).is_none(),
    })
}

fn detail(store: &dyn Store, standing: &Standing) -> Result<GroupDetail, ApiError> {
    let id = standing.membership.group.id;
    let member_list = store
        .group_members(id)?
        .into_iter()
        .map(|m| MemberView { user: m.name, admin: m.admin, joined_ms: m.joined.0 })
        .collect();
    let zones = store.group_zones(id)?.into_iter().map(|z| z.id).collect();
    Ok(GroupDetail { group: group_view(store, &standing.membership)?, member_list, zones })
}

/// The member of group `id` called `name`.
fn member_named(store: &dyn Store, id: i64, name: &str) -> Result<polo_domain::UserId, ApiError> {
    store
        .group_members(id)?
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.user)
        .ok_or_else(|| ApiError::not_found(format!("{name:?} is not a member of this group")))
}

/// The groups you are in.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = GroupList), AuthErrors)
)]
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<GroupList>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let groups =
            store.groups_of(caller.user.id)?.iter().map(|m| group_view(&*store, m)).collect::<Result<_, _>>()?;
        Ok(Json(GroupList { groups }))
    })
    .await
}

/// Makes a group with you as its admin. It shares nothing by itself: invite people, and add zones
/// that belong to it.
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = GroupBody,
    responses((status = 201, body = GroupDetail), BadRequest, JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<GroupDetail>), ApiError> {
    let body: GroupBody = json_object(body)?;
    let name = valid_name(&body.name)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    let made = blocking(move || {
        if store.groups_of(user)?.len() >= MAX_GROUPS_PER_USER {
            return Err(ApiError::bad_request(format!(
                "you are in {MAX_GROUPS_PER_USER} groups, the most there may be; leave one first"
            )));
        }
        let group = store.create_group(&name, user, now())?;
        detail(&*store, &Standing::of(&*store, user, group.id)?)
    })
    .await?;
    let event = Event::new(&caller.user.name, "group.create", Some(caller.user.id))
        .with("group", made.group.id)
        .with("name", made.group.name.clone());
    record(&state.store, event, client.ip).await;
    Ok((StatusCode::CREATED, Json(made)))
}

/// One of your groups with its members and zones.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id")),
    responses((status = 200, body = GroupDetail), BadRequest, NotFound, AuthErrors)
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<GroupDetail>, ApiError> {
    let Path(id) = id?;
    let store = state.store.clone();
    blocking(move || Ok(Json(detail(&*store, &Standing::of(&*store, caller.user.id, id)?)?))).await
}

/// Renames a group (its admins only).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id")),
    request_body = GroupBody,
    responses((status = 200, body = GroupDetail), BadRequest, JsonBodyErrors, Forbidden, NotFound, AuthErrors)
)]
pub(crate) async fn rename(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<GroupDetail>, ApiError> {
    let Path(id) = id?;
    let body: GroupBody = json_object(body)?;
    let name = valid_name(&body.name)?;
    let (store, user, new_name) = (state.store.clone(), caller.user.id, name.clone());
    let (old, renamed) = blocking(move || {
        let old = Standing::admin(&*store, user, id)?.membership.group.name;
        if !store.rename_group(id, &new_name)? {
            return Err(ApiError::not_found(format!("you are in no group {id}")));
        }
        Ok((old, detail(&*store, &Standing::of(&*store, user, id)?)?))
    })
    .await?;
    let event = Event::new(&caller.user.name, "group.rename", Some(caller.user.id))
        .with("group", id)
        .with("from", old)
        .with("name", name);
    record(&state.store, event, client.ip).await;
    Ok(Json(renamed))
}

/// Deletes a group with its invitations and its zones (its admins only). Members keep their own
/// zones and location grants.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id")),
    responses((status = 204, description = "Deleted"), BadRequest, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let (store, zones, user) = (state.store.clone(), state.zones.clone(), caller.user.id);
    let name = blocking(move || {
        let name = Standing::admin(&*store, user, id)?.membership.group.name;
        store.delete_group(id)?;
        zones.zones_changed();
        Ok(name)
    })
    .await?;
    let event =
        Event::new(&caller.user.name, "group.delete", Some(caller.user.id)).with("group", id).with("name", name);
    record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_admin(
    state: AppState,
    client: Client,
    caller: Caller,
    (id, name): (i64, String),
    admin: bool,
) -> Result<Json<GroupDetail>, ApiError> {
    let (store, user, target_name) = (state.store.clone(), caller.user.id, name.clone());
    let (target, shown) = blocking(move || {
        Standing::admin(&*store, user, id)?;
        let target = member_named(&*store, id, &target_name)?;
        store.set_group_admin(id, target, admin).map_err(|e| match e {
            polo_store::StoreError::Refused(_) => ApiError::conflict(format!(
                "{target_name:?} is the group's only admin; make another member an admin first"
            )),
            other => other.into(),
        })?;
        if !admin {
            withdraw_invitations(&*store, id, target)?;
        }
        Ok((target, detail(&*store, &Standing::of(&*store, user, id)?)?))
    })
    .await?;
    let action = if admin { "group.member.promote" } else { "group.member.demote" };
    let event = Event::new(&caller.user.name, action, Some(target)).with("group", id).with("member", name);
    record(&state.store, event, client.ip).await;
    Ok(Json(shown))
}

/// Makes a member an admin of the group (its admins only).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{id}/members/{user}/admin",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id"), ("user" = String, Path, description = "The member's user name")),
    responses((status = 200, body = GroupDetail), BadRequest, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn promote(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> Result<Json<GroupDetail>, ApiError> {
    let Path(path) = path?;
    set_admin(state, client, caller, path, true).await
}

/// Makes an admin a plain member again (its admins only; an admin may step down). The last admin
/// cannot: 409.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/members/{user}/admin",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id"), ("user" = String, Path, description = "The member's user name")),
    responses((status = 200, body = GroupDetail), BadRequest, Forbidden, NotFound, Conflict, CsrfFailed, AuthErrors)
)]
pub(crate) async fn demote(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> Result<Json<GroupDetail>, ApiError> {
    let Path(path) = path?;
    set_admin(state, client, caller, path, false).await
}

/// Revokes the links `user` made for group `id` that still work: whoever
/// is no longer an admin of a group (stepped down, removed, gone) no longer
/// lets anyone in.
fn withdraw_invitations(store: &dyn Store, id: i64, user: polo_domain::UserId) -> Result<(), ApiError> {
    let at = now();
    for invitation in store.group_invitations(id)? {
        if invitation.created_by == Some(user) && invitation.refusal(at).is_none() {
            store.revoke_group_invitation(id, invitation.id, at)?;
        }
    }
    Ok(())
}

/// Removes `target` from group `id`, refusing the last admin with `message`,
/// and withdraws the invitation links they made.
fn remove(
    store: &dyn Store,
    zones: &crate::zones::Zones,
    id: i64,
    target: polo_domain::UserId,
    message: String,
) -> Result<(), ApiError> {
    store.remove_group_member(id, target).map_err(|e| match e {
        polo_store::StoreError::Refused(_) => ApiError::conflict(message),
        other => other.into(),
    })?;
    withdraw_invitations(store, id, target)?;
    zones.zones_changed();
    Ok(())
}

/// Removes a member from the group (its admins only; removing yourself is leaving). Their own zones
/// and location grants stay theirs.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/members/{user}",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id"), ("user" = String, Path, description = "The member's user name")),
    responses((status = 204, description = "Removed"), BadRequest, Forbidden, NotFound, Conflict, CsrfFailed, AuthErrors)
)]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((id, name)) = path?;
    let (store, zones, user, target_name) = (state.store.clone(), state.zones.clone(), caller.user.id, name.clone());
    let target = blocking(move || {
        Standing::admin(&*store, user, id)?;
        let target = member_named(&*store, id, &target_name)?;
        let message = format!("{target_name:?} is the group's only admin; make another member an admin first");
        remove(&*store, &zones, id, target, message)?;
        Ok(target)
    })
    .await?;
    let event =
        Event::new(&caller.user.name, "group.member.remove", Some(target)).with("group", id).with("member", name);
    record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Leaves the group. Its only admin cannot (409): make another member an admin, or delete the
/// group.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/leave",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id")),
    responses((status = 204, description = "Left"), BadRequest, NotFound, Conflict, CsrfFailed, AuthErrors)
)]
pub(crate) async fn leave(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let (store, zones, user) = (state.store.clone(), state.zones.clone(), caller.user.id);
    blocking(move || {
        let group = Standing::of(&*store, user, id)?.membership.group.name;
        let message =
            format!("you are the only admin of {group:?}: make another member an admin first, or delete the group");
        remove(&*store, &zones, id, user, message)
    })
    .await?;
    let event = Event::new(&caller.user.name, "group.leave", Some(caller.user.id)).with("group", id);
    record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The group's invitation links (its admins only), revoked, expired and used-up ones too.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/invitations",
    tag = "groups",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id")),
    responses((status = 200, body = InvitationList), BadRequest, Forbidden, NotFound, AuthErrors)
)]
pub(crate) async fn invitations(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<InvitationList>, ApiError> {
    let Path(id) = id?;
    let store = state.store.clone();
    blocking(move || {
        Standing::admin(&*store, caller.user.id, id)?;
        let at = now();
        let invitations =
            store.group_invitations(id)?.iter().map(|i| invitation_view(&*store, i, at)).collect::<Result<_, _>>()?;
        Ok(Json(InvitationList { invitations }))
    })
    .await
}

/// Makes an invitation link (its admins only): single-use by default, or for up to 100 people,
/// until it expires (7 days by default, at most 30). The token is shown only in this answer.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/invitations",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id")),
    request_body = InvitationBody,
    responses(
        (status = 201, description = "Created: the only time the token is shown", body = NewInvitationView),
        BadRequest,
        JsonBodyErrors,
        Forbidden,
        NotFound,
        CsrfFailed,
        AuthErrors,
    )
)]
pub(crate) async fn invite(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<NewInvitationView>), ApiError> {
    let Path(id) = id?;
    let body: InvitationBody = json_object(body)?;
    let at = now();
    let max_uses = invitation_uses(body.max_uses)?;
    let expires = invitation_expiry(body.expires_in_s, at)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    let made = blocking(move || {
        Standing::admin(&*store, user, id)?;
        let token = random_secret();
        let spec = NewInvitation { group: id, created_by: user, max_uses, expires };
        let invitation = store.create_group_invitation(&spec, &sha256(token.as_bytes()))?;
        let view = invitation_view(&*store, &invitation, at)?;
        Ok(NewInvitationView { invitation: view, url: format!("/join/{token}"), token })
    })
    .await?;
    let event = Event::new(&caller.user.name, "group.invitation.create", Some(caller.user.id))
        .with("group", id)
        .with("invitation", made.invitation.id)
        .with("max_uses", max_uses)
        .with("expires_ms", expires.0);
    record(&state.store, event, client.ip).await;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Revokes an invitation link at once (its admins only).
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/invitations/{invitation}",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The group's id"), ("invitation" = i64, Path, description = "The invitation's id")),
    responses((status = 204, description = "Revoked (or it already was)"), BadRequest, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    path: Result<Path<(i64, i64)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((id, invitation)) = path?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        Standing::admin(&*store, user, id)?;
        if store.revoke_group_invitation(id, invitation, now())? {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("the group has no invitation {invitation}")))
        }
    })
    .await?;
    let event = Event::new(&caller.user.name, "group.invitation.revoke", Some(caller.user.id))
        .with("group", id)
        .with("invitation", invitation);
    record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}

fn unknown_invitation() -> ApiError {
    ApiError::not_found("this invitation link is unknown: check that it was copied whole, or ask for a new one")
}

/// What an invitation link is for: the group, who made it, and whether joining with it would
/// work. Log in first; the link's secret is the path.
#[utoipa::path(
    get,
    path = "/api/v1/groups/join/{token}",
    tag = "groups",
    security(("session" = []), ("basic" = [])),
    params(("token" = String, Path, description = "The invitation's secret")),
    responses((status = 200, body = InvitationPreview), NotFound, AuthErrors)
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    token: Result<Path<String>, PathRejection>,
) -> Result<Json<InvitationPreview>, ApiError> {
    let Path(token) = token?;
    let store = state.store.clone();
    blocking(move || {
        let (invitation, group) =
            store.invitation_by_hash(&sha256(token.as_bytes()))?.ok_or_else(unknown_invitation)?;
        let member = store.groups_of(caller.user.id)?.iter().any(|m| m.group.id == group.id);
        let refusal = invitation.refusal(now());
        let invited_by = match invitation.created_by {
            Some(id) => store.user_by_id(id)?.map(|u| u.name),
            None => None,
        };
        Ok(Json(InvitationPreview {
            group_id: group.id,
            invited_by,
            expires_ms: invitation.expires.0,
            member,
            valid: refusal.is_none(),
            reason: refusal.map(|r| super::refusal_message(&group.name, &invitation, r)),
            group: group.name,
        }))
    })
    .await
}

/// Joins the group an invitation link is for. Refused with 409 and the reason when the link
/// expired, was used as often as it allows, or was revoked; a member opening it again uses nothing.
/// Joining shares no location: that stays your own choice (`POST /api/v1/friends`).
#[utoipa::path(
    post,
    path = "/api/v1/groups/join/{token}",
    tag = "groups",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("token" = String, Path, description = "The invitation's secret")),
    responses((status = 200, body = Joined), NotFound, Conflict, CsrfFailed, AuthErrors)
)]
pub(crate) async fn join(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    token: Result<Path<String>, PathRejection>,
) -> Result<Json<Joined>, ApiError> {
    let Path(token) = token?;
    let (store, zones, user) = (state.store.clone(), state.zones.clone(), caller.user.id);
    let joined = blocking(move || {
        let hash = sha256(token.as_bytes());
        if let Some((_, group)) = store.invitation_by_hash(&hash)?
            && store.group_members(group.id)?.len() >= MAX_MEMBERS
            && !store.groups_of(user)?.iter().any(|m| m.group.id == group.id)
        {
            return Err(ApiError::conflict(format!(
                "{:?} has {MAX_MEMBERS} members, the most there may be",
                group.name
            )));
        }
        let (group, joined) = match store.join_group(&hash, user, now())? {
            JoinOutcome::Joined(group) => (group, true),
            JoinOutcome::AlreadyMember(group) => (group, false),
            JoinOutcome::Unknown => return Err(unknown_invitation()),
            JoinOutcome::Refused(group, refusal) => {
                let invitation = store.invitation_by_hash(&hash)?.map(|(i, _)| i).ok_or_else(unknown_invitation)?;
                return Err(ApiError::conflict(super::refusal_message(&group.name, &invitation, refusal)));
            }
        };
        if joined {
            zones.zones_changed();
        }
        let standing = Standing::of(&*store, user, group.id)?;
        Ok(Joined { group: group_view(&*store, &standing.membership)?, joined })
    })
    .await?;
    if joined.joined {
        let event = Event::new(&caller.user.name, "group.join", Some(caller.user.id)).with("group", joined.group.id);
        record(&state.store, event, client.ip).await;
    }
    Ok(Json(joined))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, rename, delete))
        .routes(routes!(promote, demote))
        .routes(routes!(remove_member))
        .routes(routes!(leave))
        .routes(routes!(invitations, invite))
        .routes(routes!(revoke))
        .routes(routes!(preview, join))
}
