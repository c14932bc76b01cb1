//! polo's HTTP side.
//!
//! [`router`] builds the axum application over an explicit [`AppState`]
//! (no global singletons), and [`serve`] runs it on an injected listener
//! with an injected shutdown future, so integration tests can start the real
//! binary on port 0. This foundation serves the health endpoints; the ingest
//! protocols and the query API are layered onto the same router.

pub mod auth;
mod health;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use polo_store::Store;
use tokio::net::TcpListener;

/// Everything a request handler may touch, passed explicitly.
#[derive(Clone)]
pub struct AppState {
    /// The store, shared by all handlers. Its calls block, so handlers run
    /// them on the blocking pool.
    pub store: Arc<dyn Store>,
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new().merge(health::routes()).with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then
/// finishes in-flight requests.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
