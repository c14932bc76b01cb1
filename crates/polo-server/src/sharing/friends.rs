//! Friends and family: a user grants another user of the instance the
//! right to see their location (last position, device card, live
//! positions). Grants are one way; two grants make a mutual share.
//!
//! Who sees whom is decided here ([`visible_users`]) for the live stream,
//! and through the [`crate::ingest::LastSeen`] cache for the OwnTracks
//! friends reply, which every grant change clears.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use polo_store::{Store, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::blocking;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, CsrfFailed, JsonBodyErrors, NotFound, json_object};

/// `viewer` and the users who granted `viewer` their location, `viewer` first.
///
/// # Errors
/// Store failures.
pub fn visible_users(store: &dyn Store, viewer: &User) -> Result<Vec<User>, polo_store::StoreError> {
    let mut users = vec![viewer.clone()];
    for grant in store.location_grants_to(viewer.id)? {
        if let Some(owner) = store.user_by_id(grant.owner)? {
            users.push(owner);
        }
    }
    Ok(users)
}

/// One other user and the grants between you.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Friend {
    /// Their user name.
    #[schema(example = "bob")]
    user: String,
    /// You let them see your location.
    granted_by_me: bool,
    /// They let you see theirs.
    granted_to_me: bool,
    /// Both.
    mutual: bool,
}

/// The users you share your location with, and those who share theirs with you.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FriendList {
    /// By user name.
    friends: Vec<Friend>,
}

/// `POST /api/v1/friends`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct FriendBody {
    /// The user name to let see your location.
    #[schema(example = "bob")]
    user: String,
}

fn friend_list(store: &dyn Store, me: &User) -> Result<FriendList, ApiError> {
    let mut by_name: std::collections::BTreeMap<String, (bool, bool)> = std::collections::BTreeMap::new();
    for grant in store.location_grants_by(me.id)? {
        if let Some(user) = store.user_by_id(grant.viewer)? {
            by_name.entry(user.name).or_default().0 = true;
        }
    }
    for grant in store.location_grants_to(me.id)? {
        if let Some(user) = store.user_by_id(grant.owner)? {
            by_name.entry(user.name).or_default().1 = true;
        }
    }
    let friends = by_name
        .into_iter()
        .map(|(user, (by_me, to_me))| Friend {
            user,
            granted_by_me: by_me,
            granted_to_me: to_me,
            mutual: by_me && to_me,
        })
        .collect();
    Ok(FriendList { friends })
}

/// Everyone you share your location with and everyone who shares theirs with you.
#[utoipa::path(
    get,
    path = "/api/v1/friends",
    tag = "sharing",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = FriendList), AuthErrors)
)]
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<FriendList>, ApiError> {
    let store = state.store.clone();
    blocking(move || friend_list(store.as_ref(), &caller.user).map(Json)).await
}

/// Lets another user of this instance see your location: your devices' last positions and cards
/// (OwnTracks friends), and your live positions. Answers the updated list.
#[utoipa::path(
    post,
    path = "/api/v1/friends",
    tag = "sharing",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = FriendBody,
    responses(
        (status = 201, description = "Granted (or it already was)", body = FriendList),
        JsonBodyErrors,
        NotFound,
        CsrfFailed,
        AuthErrors,
    )
)]
pub(crate) async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<FriendList>), ApiError> {
    let body: FriendBody = json_object(body)?;
    let name = body.user.trim().to_owned();
    if name == caller.user.name {
        return Err(ApiError::bad_request("you always see your own location; name another user"));
    }
    let store = state.store.clone();
    let (me, maker) = (caller.user.clone(), caller.maker());
    let list = blocking(move || {
        let friend =
            store.user_by_name(&name)?.ok_or_else(|| ApiError::not_found(format!("there is no user {name:?}")))?;
        // Made with a device token, the grant is withdrawn with that token.
        store.grant_location(me.id, friend.id, maker)?;
        friend_list(store.as_ref(), &me)
    })
    .await?;
    changed(&state, &caller);
    Ok((StatusCode::CREATED, Json(list)))
}

/// Stops letting a user see your location (their OwnTracks app and live map drop you at once).
#[utoipa::path(
    delete,
    path = "/api/v1/friends/{user}",
    tag = "sharing",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("user" = String, Path, description = "The user name")),
    responses((status = 204, description = "Withdrawn"), NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    user: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = user?;
    let (store, me) = (state.store.clone(), caller.user.id);
    let withdrawn = blocking(move || {
        let friend = store.user_by_name(&name)?;
        let revoked = match &friend {
            Some(friend) => store.revoke_location_grant(me, friend.id)?,
            None => false,
        };
        if revoked { Ok(()) } else { Err(ApiError::not_found(format!("you do not share your location with {name:?}"))) }
    })
    .await;
    changed(&state, &caller);
    withdrawn.map(|()| StatusCode::NO_CONTENT)
}

/// Makes the change visible at once: cached friend lists and open streams re-read the grants.
fn changed(state: &AppState, caller: &Caller) {
    state.last_seen.forget_grants();
    state.live.grants_changed(caller.user.id);
}
