//! The owner's side of share links: create (the secret is shown once, like
//! a device token's), list, revoke.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use polo_domain::Timestamp;
use polo_store::{NewShare, Share, ShareKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{LIVE_LOOKBACK_MS, MAX_SHARE_MS, blocking, now};
use crate::AppState;
use crate::auth::{Caller, random_secret, sha256};
use crate::error::{ApiError, AuthErrors, CsrfFailed, JsonBodyErrors, NotFound, json_object};
use crate::query::derived::parse_instant;

/// What a share shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindName {
    /// A trip: a range whose `from`/`to` are the trip's (or leg's) start and end.
    Trip,
    /// Any time range.
    Range,
    /// The latest position, updated live until the share expires.
    Live,
}

impl From<KindName> for ShareKind {
    fn from(kind: KindName) -> Self {
        match kind {
            KindName::Trip => Self::Trip,
            KindName::Range => Self::Range,
            KindName::Live => Self::Live,
        }
    }
}

impl From<ShareKind> for KindName {
    fn from(kind: ShareKind) -> Self {
        match kind {
            ShareKind::Trip => Self::Trip,
            ShareKind::Range => Self::Range,
            ShareKind::Live => Self::Live,
        }
    }
}

/// `POST /api/v1/shares`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareBody {
    /// `trip` or `range` (with `from` and `to`), or `live`.
    kind: KindName,
    /// Trip and range shares: the start (RFC 3339), inclusive.
    #[schema(example = "2024-05-01T08:00:00Z")]
    from: Option<String>,
    /// Trip and range shares: the end (RFC 3339), exclusive; after `from`, at most 366 days later.
    #[schema(example = "2024-05-01T18:00:00Z")]
    to: Option<String>,
    /// Only this device (by name); default: all of the caller's devices.
    #[schema(example = "phone")]
    device: Option<String>,
    /// Shown on the public page: at most 200 characters.
    #[schema(example = "Our walk up the Rigi", max_length = 200)]
    label: Option<String>,
    /// The link stops working this many seconds from now (1 to 31 622 400, i.e. 366 days).
    #[schema(minimum = 1, maximum = 31_622_400)]
    expires_in_s: Option<i64>,
    /// The link stops working at this instant (RFC 3339): in the future, at most 366 days away.
    /// Give this or `expires_in_s`; live shares need one of them, other shares may last until
    /// revoked.
    #[schema(example = "2024-06-01T00:00:00Z")]
    expires_at: Option<String>,
    /// Leave place names and street addresses out of the public page (stays show their town and
    /// country only). Default `false`.
    #[serde(default)]
    hide_places: bool,
}

/// A share, as its owner sees it. Times are RFC 3339 in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShareView {
    /// The share's id (for `DELETE /api/v1/shares/{id}`).
    id: i64,
    /// What it shows.
    kind: KindName,
    /// Trip and range shares: the start.
    from: Option<String>,
    /// Trip and range shares: the end (exclusive).
    to: Option<String>,
    /// The device shown; `null`: all devices.
    device: Option<String>,
    /// Free text shown on the public page.
    label: String,
    /// When it was made.
    created: String,
    /// When the link stops working; `null`: when revoked.
    expires: Option<String>,
    /// When it was revoked, if it was.
    revoked: Option<String>,
    /// Whether the link works now.
    active: bool,
    /// Whether the public page leaves out place names and addresses.
    hide_places: bool,
}

impl ShareView {
    fn new(share: &Share, at: Timestamp) -> Self {
        Self {
            id: share.id,
            kind: share.spec.kind.into(),
            from: share.spec.from.map(|t| t.to_string()),
            to: share.spec.to.map(|t| t.to_string()),
            device: share.device_name.clone(),
            label: share.spec.label.clone(),
            created: share.created.to_string(),
            expires: share.spec.expires.map(|t| t.to_string()),
            revoked: share.revoked.map(|t| t.to_string()),
            active: share.is_active(at),
            hide_places: share.spec.hide_places,
        }
    }
}

/// A new share: the only answer that shows its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewShareView {
    #[serde(flatten)]
    share: ShareView,
    /// The public page's path: `/s/` and the token.
    #[schema(example = "/s/9sQ2xv5dYw0bN3mZp8rT1uVh6kLc4eJfGa7iOyWqHs0")]
    url: String,
    /// The link's secret (43 characters). It is not stored and cannot be shown again.
    #[schema(example = "9sQ2xv5dYw0bN3mZp8rT1uVh6kLc4eJfGa7iOyWqHs0")]
    token: String,
}

/// The caller's shares.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShareList {
    /// By id, revoked and expired ones included (see `active`); never with their tokens.
    shares: Vec<ShareView>,
}

/// Checks a share request against the clock; returns the share to store
/// without its device (resolved by name later).
fn validate(body: &ShareBody, at: Timestamp) -> Result<NewShare, ApiError> {
    let kind = ShareKind::from(body.kind);
    let from = body.from.as_deref().map(|t| parse_instant("from", t)).transpose()?;
    let to = body.to.as_deref().map(|t| parse_instant("to", t)).transpose()?;
    match kind {
        ShareKind::Live => {
            if from.is_some() || to.is_some() {
                return Err(ApiError::bad_request(
                    "a live share shows the latest position while it lasts; leave out from and to",
                ));
            }
        }
        ShareKind::Trip | ShareKind::Range => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(ApiError::bad_request(format!("a {} share needs from and to (RFC 3339)", kind.name())));
            };
            if to <= from {
                return Err(ApiError::bad_request(format!("to ({to}) must be after from ({from})")));
            }
            if to.0 - from.0 > MAX_SHARE_MS {
                return Err(ApiError::bad_request("a shared range may span at most 366 days"));
            }
        }
    }
    let expires = match (body.expires_in_s, body.expires_at.as_deref()) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give expires_in_s or expires_at, not both")),
        (Some(seconds), None) => {
            if !(1..=MAX_SHARE_MS / 1000).contains(&seconds) {
                return Err(ApiError::bad_request(format!(
                    "expires_in_s must be 1 to {} (366 days), not {seconds}",
                    MAX_SHARE_MS / 1000
                )));
            }
            Some(Timestamp(at.0 + seconds * 1000))
        }
        (None, Some(text)) => {
            let expires = parse_instant("expires_at", text)?;
            if expires <= at {
                return Err(ApiError::bad_request(format!("expires_at ({expires}) must be in the future")));
            }
            if expires.0 - at.0 > MAX_SHARE_MS {
                return Err(ApiError::bad_request("expires_at may be at most 366 days from now"));
            }
            Some(expires)
        }
        (None, None) if kind == ShareKind::Live => {
            return Err(ApiError::bad_request("a live share needs an expiry: expires_in_s or expires_at"));
        }
        (None, None) => None,
    };
    let label = body.label.as_deref().unwrap_or_default().trim().to_owned();
    if label.chars().count() > 200 || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request("label must be at most 200 characters, without control characters"));
    }
    Ok(NewShare { kind, from, to, device: None, label, expires, hide_places: body.hide_places })
}

/// Makes a public link to a trip, a time range or the caller's live position. The token is shown
/// only in this answer.
#[utoipa::path(
    post,
    path = "/api/v1/shares",
    tag = "sharing",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = ShareBody,
    responses(
        (status = 201, description = "Created: the only time the token is shown", body = NewShareView),
        JsonBodyErrors,
        NotFound,
        CsrfFailed,
        AuthErrors,
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    client: crate::client::Client,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<NewShareView>), ApiError> {
    let body: ShareBody = json_object(body)?;
    let at = now();
    let mut spec = validate(&body, at)?;
    let (store, user, maker) = (state.store.clone(), caller.user.id, caller.maker());
    let made = blocking(move || {
        if let Some(name) = body.device.as_deref() {
            let device = store.list_devices(user)?.into_iter().find(|d| d.name == name);
            let device = device.ok_or_else(|| ApiError::not_found(format!("you have no device named {name:?}")))?;
            spec.device = Some(device.id);
        }
        let token = random_secret();
        // Made with a device token, the link is revoked with that token.
        let share = store.create_share(user, &spec, &sha256(token.as_bytes()), maker)?;
        Ok((share.id, NewShareView { share: ShareView::new(&share, at), url: format!("/s/{token}"), token }))
    })
    .await
    .map(|(id, view)| (id, (StatusCode::CREATED, Json(view))));
    let (id, made) = made?;
    let event = crate::audit::Event::new(&caller.user.name, "share.create", Some(caller.user.id)).with("share", id);
    crate::audit::record(&state.store, event, client.ip).await;
    Ok(made)
}

/// The caller's shares, revoked and expired ones included (never their tokens).
#[utoipa::path(
    get,
    path = "/api/v1/shares",
    tag = "sharing",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = ShareList), AuthErrors)
)]
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ShareList>, ApiError> {
    let (store, user, at) = (state.store.clone(), caller.user.id, now());
    blocking(move || {
        let shares = store.list_shares(user)?.iter().map(|s| ShareView::new(s, at)).collect();
        Ok(Json(ShareList { shares }))
    })
    .await
}

/// Revokes one of the caller's shares: its link stops working at once (open live streams end).
#[utoipa::path(
    delete,
    path = "/api/v1/shares/{id}",
    tag = "sharing",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The share's id")),
    responses((status = 204, description = "Revoked (or it already was)"), NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    client: crate::client::Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        if store.revoke_share(user, id, now())? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::not_found(format!("you have no share {id}")))
        }
    })
    .await?;
    let event = crate::audit::Event::new(&caller.user.name, "share.revoke", Some(caller.user.id)).with("share", id);
    crate::audit::record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a live share starts looking for positions.
pub(crate) fn live_window_start(share: &Share) -> Timestamp {
    Timestamp(share.created.0.saturating_sub(LIVE_LOOKBACK_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> ShareBody {
        serde_json::from_value(json).unwrap()
    }

    const AT: Timestamp = Timestamp(1_714_550_400_000); // 2024-05-01T08:00:00Z

    #[test]
    fn ranges_need_both_ends_in_order() {
        let ok = validate(
            &body(serde_json::json!({"kind": "trip", "from": "2024-04-30T08:00:00Z", "to": "2024-04-30T09:00:00Z"})),
            AT,
        )
        .unwrap();
        assert_eq!((ok.kind, ok.expires), (ShareKind::Trip, None));
        for (json, why) in [
            (serde_json::json!({"kind": "range", "from": "2024-04-30T08:00:00Z"}), "needs from and to"),
            (
                serde_json::json!({"kind": "range", "from": "2024-04-30T09:00:00Z", "to": "2024-04-30T08:00:00Z"}),
                "must be after from",
            ),
            (
                serde_json::json!({"kind": "range", "from": "2020-01-01T00:00:00Z", "to": "2022-01-01T00:00:00Z"}),
                "366 days",
            ),
            (serde_json::json!({"kind": "range", "from": "yesterday", "to": "2024-04-30T08:00:00Z"}), "from:"),
            (serde_json::json!({"kind": "live", "expires_in_s": 60, "from": "2024-04-30T08:00:00Z"}), "leave out from"),
        ] {
            let e = validate(&body(json), AT).unwrap_err();
            assert!(e.message.contains(why), "{}", e.message);
            assert_eq!(e.code, "bad_request");
        }
    }

    #[test]
    fn expiry_is_in_the_future_within_a_year_and_required_for_live() {
        let live = validate(&body(serde_json::json!({"kind": "live", "expires_in_s": 3600})), AT).unwrap();
        assert_eq!(live.expires, Some(Timestamp(AT.0 + 3_600_000)));
        let at =
            validate(&body(serde_json::json!({"kind": "live", "expires_at": "2024-05-02T08:00:00Z"})), AT).unwrap();
        assert_eq!(at.expires, Some(Timestamp(AT.0 + 86_400_000)));
        for (json, why) in [
            (serde_json::json!({"kind": "live"}), "needs an expiry"),
            (serde_json::json!({"kind": "live", "expires_in_s": 0}), "expires_in_s must be 1 to"),
            (serde_json::json!({"kind": "live", "expires_in_s": 40_000_000}), "expires_in_s must be 1 to"),
            (serde_json::json!({"kind": "live", "expires_at": "2024-04-01T00:00:00Z"}), "must be in the future"),
            (serde_json::json!({"kind": "live", "expires_at": "2026-04-01T00:00:00Z"}), "at most 366 days"),
            (serde_json::json!({"kind": "live", "expires_at": "2024-05-02T08:00:00Z", "expires_in_s": 5}), "not both"),
        ] {
            let e = validate(&body(json), AT).unwrap_err();
            assert!(e.message.contains(why), "{}", e.message);
        }
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        let json = serde_json::json!({"kind": "live", "expires_in_s": 60, "label": "  Home soon  "});
        assert_eq!(validate(&body(json), AT).unwrap().label, "Home soon");
        let json = serde_json::json!({"kind": "live", "expires_in_s": 60, "label": "x".repeat(201)});
        assert!(validate(&body(json), AT).is_err());
    }
}
