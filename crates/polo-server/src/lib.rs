//! polo's HTTP side.
//!
//! [`router`] builds the axum application over an explicit [`AppState`]
//! (no global singletons), and [`serve`] runs it on an injected listener
//! with an injected shutdown future, so integration tests can start the real
//! binary on port 0. Every route is registered together with its OpenAPI
//! operation ([`openapi`]), served at `/api/openapi.json`.

mod access_log;
mod account;
pub mod audit;
pub mod auth;
pub mod client;
pub mod deleting;
pub mod device_labels;
pub mod error;
pub mod exposure;
mod front_door;
pub mod groups;
mod health;
pub mod import_job;
pub mod ingest;
pub mod live;
pub mod locality;
pub mod metrics;
pub mod mqtt;
pub mod mqtt_out;
pub mod openapi;
pub mod options;
pub mod photos;
mod query;
pub mod replication;
pub mod retention;
pub mod sharing;
pub mod site;
pub mod stream;
pub mod street_names;
pub mod timeline_worker;
mod web;
pub mod zones;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn;
use polo_store::Store;
use utoipa_axum::router::OpenApiRouter;

pub use crate::access_log::{AccessLogWriter, AccessLogger};
pub use crate::front_door::{SHUTDOWN_GRACE, ServeError, app, restrict_to_admin_networks, serve, serve_app};
pub use crate::metrics::{Metrics, QueueStats};
pub use crate::options::ServerOptions;

/// Everything a request handler may touch, passed explicitly.
#[derive(Clone)]
pub struct AppState {
    /// The store, shared by all handlers. Its calls block, so handlers run
    /// them on the blocking pool.
    pub store: Arc<dyn Store>,
    /// This node's random id of this start: it holds the node's leases and
    /// import jobs when several nodes share the store (`docs/postgres.md`).
    pub node: Arc<str>,
    /// Prometheus metrics; handlers count through its helpers
    /// ([`Metrics::points_ingested`], [`Metrics::rejected`]).
    pub metrics: Metrics,
    /// Resolves credentials to callers; holds the password-verification
    /// cache and the failed-login back-off.
    pub auth: Arc<auth::Authenticator>,
    /// The group-commit writer every live-ingest handler submits to.
    pub ingestor: ingest::Ingestor,
    /// The newest fix per device, for the OwnTracks friends reply.
    pub last_seen: Arc<ingest::LastSeen>,
    /// File imports uploaded over HTTP (`/api/v1/imports`).
    pub imports: import_job::ImportJobs,
    /// Keeps stays, legs, places, statistics and map levels current.
    pub timeline: Arc<timeline_worker::TimelineWorker>,
    /// The replications this server runs in the background.
    pub replications: replication::Replications,
    /// Every point live ingest stores, for the live streams.
    pub live: live::LiveFeed,
    /// The instance's name and map settings from the configuration (an
    /// administrator's runtime changes are kept in the store and win).
    pub site: Arc<site::SiteDefaults>,
    /// Slows down anyone guessing share links.
    pub share_guard: Arc<sharing::ShareGuard>,
    /// The exposure workflow: its settings, signing key and batch worker.
    pub exposure: exposure::Exposure,
    /// The request body limits; [`app`] sets them from
    /// [`ServerOptions::body_limits`], and [`router`] gives the ingest
    /// routes theirs.
    pub body_limits: options::BodyLimits,
    /// Zone evaluation, the event log's writer and the webhook sender.
    pub zones: zones::Zones,
    /// Positions and events for the MQTT broker (a no-op unless
    /// republishing or discovery is on).
    pub mqtt_out: mqtt_out::MqttOutbox,
    /// Sign-in with an OpenID provider, when `[oidc]` is configured.
    pub oidc: Option<Arc<auth::oidc::Oidc>>,
    /// Where photo thumbnails are kept (`polo serve`: under its data directory).
    pub photos: photos::PhotoFiles,
}

impl AppState {
    /// The state over `store`, with fresh metrics, an authenticator
    /// (cookies without `Secure`; replace `auth` to change that) and a
    /// started ingest writer whose queue feeds the metrics.
    ///
    /// Uploaded imports are spooled to a temporary directory; `polo serve`
    /// replaces `imports` with one under its data directory.
    ///
    /// # Errors
    /// When the ingest writer thread or the upload directory cannot be
    /// created.
    pub fn new(store: Arc<dyn Store>) -> std::io::Result<Self> {
        let auth = Arc::new(auth::Authenticator::new(store.clone()));
        let ingestor = ingest::Ingestor::start(store.clone(), ingest::IngestorConfig::default())?;
        let metrics = Metrics::new();
        metrics.set_queue_stats(Arc::new(ingestor.clone()));
        let replications = replication::Replications::default();
        metrics.set_replications(replications.clone());
        let imports = import_job::ImportJobs::temporary()?;
        let locator: Arc<dyn polo_derived::Locator> = Arc::new(locality::OfflineLocator::default());
        let zones: Arc<dyn polo_timeline::ZoneLookup> = Arc::new(locality::OfflineZones::default());
        let engine = Arc::new(polo_derived::Engine::new(store.clone(), Some(locator)).with_zones(zones));
        let node: Arc<str> = polo_store::clock::new_random_id().into();
        let last_seen = Arc::new(ingest::LastSeen::new());
        let mut live = live::LiveFeed::new();
        live.share_through(&store, &last_seen)?;
        let share_guard = Arc::new(sharing::ShareGuard::default().shared_through(&store));
        let timeline = Arc::new(timeline_worker::TimelineWorker::start(engine, &node)?);
        let exposure = exposure::Exposure::start(store.clone(), &node, live.clone(), metrics.clone())?;
        let mqtt_out = mqtt_out::MqttOutbox::default();
        let zones = zones::Zones::start(store.clone(), &node, mqtt_out.clone())?;
        Ok(Self {
            store,
            node,
            metrics,
            auth,
            ingestor,
            last_seen,
            imports,
            timeline,
            replications,
            live,
            site: Arc::new(site::SiteDefaults::default()),
            share_guard,
            exposure,
            body_limits: options::BodyLimits::default(),
            zones,
            mqtt_out,
            oidc: None,
            photos: photos::PhotoFiles::temporary()?,
        })
    }
}

/// Every documented route with its operation; `max_upload` sizes the
/// import upload's body limit, `ingest_limit` the live-ingest routes'.
fn api_routes(max_upload: u64, ingest_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::routes())
        .merge(account::routes())
        .merge(auth::oidc::routes::routes())
        .merge(auth::totp::routes::routes())
        .merge(auth::webauthn::routes::routes())
        .merge(auth::sessions::routes())
        .merge(audit::routes::routes())
        .merge(device_labels::routes())
        .merge(ingest::routes::routes(ingest_limit))
        .merge(query::routes())
        .merge(deleting::routes())
        .merge(retention::routes())
        .merge(import_job::routes::routes(max_upload))
        .merge(replication::routes())
        .merge(sharing::routes())
        .merge(site::routes())
        .merge(exposure::routes())
        .merge(zones::routes::routes())
        .merge(photos::routes())
        .merge(groups::routes::routes())
}

/// The OpenAPI 3.1 document of the API, as `GET /api/openapi.json` serves it.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document(api_routes(0, 0).into_openapi())
}

/// The application's routes, `/api/openapi.json` and the docs page.
///
/// Every error answer is JSON ([`error::json_errors`]), unmatched routes included.
/// Paths outside `/api/` that no route matches are the web app's ([`web`]):
/// its embedded files, or `index.html` for its client-side routes.
pub fn router(state: AppState) -> Router {
    let limits = (state.imports.config().max_upload_bytes, state.body_limits.ingest);
    let (routes, paths) = api_routes(limits.0, limits.1).split_for_parts();
    routes
        .merge(openapi::routes(openapi::document(paths)))
        .fallback(web::fallback)
        .layer(from_fn(error::json_errors))
        .with_state(state)
}
