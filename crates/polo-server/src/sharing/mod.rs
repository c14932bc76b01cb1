//! Sharing: public links to a stretch of history or a live position, and
//! location grants between the users of an instance.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `POST /api/v1/shares` | caller | 201 the share with `url` and `token` (shown once) |
//! | `GET /api/v1/shares` | caller | `{shares:[…]}` (never the token) |
//! | `DELETE /api/v1/shares/{id}` | caller | 204; 404 when not the caller's |
//! | `GET /api/v1/public/shares/{token}` | anyone with the link | what is shared, by whom, until when |
//! | `GET /api/v1/public/shares/{token}/points` | anyone with the link | the points inside the share (live: the latest) |
//! | `GET /api/v1/public/shares/{token}/timeline` | anyone with the link | stays and legs inside the range |
//! | `GET /api/v1/public/shares/{token}/track` | anyone with the link | the simplified track as GeoJSON |
//! | `GET /api/v1/public/shares/{token}/live` | anyone with the link | SSE `position` events (live shares) |
//! | `GET /api/v1/friends` | caller | grants both ways |
//! | `POST /api/v1/friends` `{user}` | caller | 201: that user may see the caller's location |
//! | `DELETE /api/v1/friends/{user}` | caller | 204: withdrawn |
//! | `GET /api/v1/live` | caller | the newest position of the caller's devices and of users who granted the caller (JSON), or SSE `position` events |
//! | `GET /api/v1/together` | caller | encounters with friends who share both ways ([`together`]) |
//! | `GET /api/v1/together/{friend}` | caller | the same for one friend, and the latest at any time |
//!
//! A share never shows anything outside its time range and device: every
//! public answer is computed from the stored share, not from the request,
//! and the source's raw extras are left out. An unknown, revoked or expired
//! link all answer the same 404 `share_not_found`, and guessing is slowed
//! per client address ([`ShareGuard`]); the link is looked up by the
//! SHA-256 of its secret through a unique index, so the time a lookup takes
//! says nothing about how close a guess was.

mod friends;
mod links;
mod public;
pub(crate) mod stream;
pub(crate) mod together;

use std::net::IpAddr;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::Store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::friends::visible_users;
use crate::AppState;
use crate::auth::Backoff;
use crate::auth::limiter::RateLimiter;
use crate::error::ApiError;

/// How far back a live share looks for the latest position when it is
/// opened: a phone at rest may report rarely, but a live share must not
/// show where its owner was days before it was made.
pub const LIVE_LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// The longest a share may stay valid, and the longest range it may cover.
pub const MAX_SHARE_MS: i64 = 366 * 86_400_000;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(links::create, links::list))
        .routes(routes!(links::revoke))
        .routes(routes!(public::info))
        .routes(routes!(public::points))
        .routes(routes!(public::timeline))
        .routes(routes!(public::track))
        .routes(routes!(public::live))
        .routes(routes!(friends::list, friends::grant))
        .routes(routes!(friends::withdraw))
        .routes(routes!(stream::live))
        .routes(routes!(together::list))
        .routes(routes!(together::with))
}

/// Back-off for clients that present share links that do not work: 20
/// misses cost nothing (a revoked link opened a few times), then each miss
/// blocks the address for twice as long, up to a minute.
#[derive(Debug)]
pub struct ShareGuard {
    limiter: RateLimiter,
}

impl Default for ShareGuard {
    fn default() -> Self {
        Self::new(Backoff {
            free_failures: 20,
            address_free_failures: 20,
            base: std::time::Duration::from_secs(1),
            max: std::time::Duration::from_secs(60),
            forget_after: std::time::Duration::from_secs(600),
            max_entries: 10_000,
        })
    }
}

impl ShareGuard {
    /// A guard with this policy.
    #[must_use]
    pub fn new(policy: Backoff) -> Self {
        Self { limiter: RateLimiter::scoped(policy, "share") }
    }

    /// Counts misses in `store` too when other nodes share it, so that the
    /// allowance holds across nodes.
    #[must_use]
    pub fn shared_through(self, store: &std::sync::Arc<dyn Store>) -> Self {
        Self { limiter: self.limiter.shared_through(store) }
    }

    async fn check(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.limiter.check_address_everywhere(ip).await.map_err(ApiError::rate_limited)
    }

    async fn missed(&self, ip: Option<IpAddr>) {
        self.limiter.address_failure_everywhere(ip).await;
    }
}

/// The current time.
pub(crate) fn now() -> Timestamp {
    crate::ingest::routes::now()
}

/// The devices a share (or a viewer) covers: the one named, or all of the owner's.
pub(crate) fn covered_devices(
    store: &dyn Store,
    user: UserId,
    device: Option<DeviceId>,
) -> Result<Vec<polo_store::Device>, ApiError> {
    let mut devices = store.list_devices(user)?;
    if let Some(device) = device {
        devices.retain(|d| d.id == device);
    }
    Ok(devices)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}
