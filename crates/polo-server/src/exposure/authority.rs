//! What the health authority's routes share: the [`Authority`] extractor
//! (the role, then the feature), and turning stored ids and times into what
//! the API shows.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use polo_domain::Timestamp;
use polo_store::{Role, Store, User};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type ApiResult<T> = Result<T, ApiError>;

pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
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

pub(super) fn names(store: &dyn Store) -> ApiResult<BTreeMap<i64, String>> {
    Ok(store.list_users()?.into_iter().map(|u| (u.id.0, u.name)).collect())
}

pub(super) fn name_of(names: &BTreeMap<i64, String>, id: i64) -> String {
    names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

pub(super) fn time(ms: i64) -> String {
    Timestamp(ms).to_string()
}

pub(super) use crate::query::parse_time;

pub(super) fn user_named(store: &dyn Store, name: &str) -> ApiResult<User> {
    store.user_by_name(name)?.ok_or_else(|| ApiError::not_found(format!("there is no user {name:?}")))
}

pub(super) fn reason(text: &str) -> ApiResult<&str> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 1000 {
        return Err(ApiError::bad_request("reason: 1 to 1000 characters, for the audit log"));
    }
    Ok(text)
}
