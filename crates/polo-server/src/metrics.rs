//! Prometheus metrics, served at `GET /metrics` to the admin networks only.
//!
//! **Why `prometheus-client`.** It keeps every metric in a [`Registry`]
//! value that we own and pass around in [`crate::AppState`]: no global
//! recorder, no singleton, and two servers in one test process do not see
//! each other's counts. The `metrics` facade would need a process-wide
//! recorder for its macros (the local-recorder variant is thread-local and
//! does not follow tasks across threads), and `metrics-exporter-prometheus`
//! brings in `metrics-util`, `quanta`, a sketch crate and an HTTP stack we do
//! not need; `prometheus-client` adds three small crates to the build.
//!
//! **Names.** `http_request_duration_seconds{method,route,status}` where
//! `route` is the matched route *template* (`/api/users/{id}`, never the raw
//! path, so label cardinality stays bounded; unmatched requests are
//! `route="unmatched"`), `status` the class (`2xx` …). The buckets grow by a
//! factor of 1.5 from 0.1 ms to ~13 s (30 buckets), so
//! `histogram_quantile(0.5|0.75|0.99|0.999, …)` interpolates within ±25 %.
//! Counters: `polo_points_ingested_total{protocol}`,
//! `polo_rejects_total{reason}`, `polo_front_door_dropped_total{reason}`,
//! and with an online geocoder `polo_street_name_lookups_total{outcome}`
//! (`found`, `nothing`, `error`) and `polo_street_name_errors_total{reason}`.
//! Gauges: `polo_live_streams` (open live-position event streams), and,
//! read at scrape time, `polo_queue_depth`,
//! `polo_queue_oldest_age_seconds` (from [`QueueStats`], the autoscaling
//! signal) and `process_resident_memory_bytes` (Linux); the exposure batch's
//! queue of windows, `polo_exposure_queue_depth` and
//! `polo_exposure_queue_oldest_age_seconds` (every node reads them from the
//! store, so an autoscaler sees the same queue whichever node it scrapes).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What the ingest writer reports about its background queue. Read on every
/// scrape, so both calls must be cheap and must not block.
pub trait QueueStats: Send + Sync {
    /// Batches (or points) waiting to be written.
    fn depth(&self) -> u64 {
        0
    }
    /// How long the oldest waiting item has waited; zero when empty.
    fn oldest_age(&self) -> Duration {
        Duration::ZERO
    }
}

/// The default until a writer registers itself: an always-empty queue.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoQueue;

impl QueueStats for NoQueue {}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 1.5, 30))
}

struct Inner {
    registry: Registry,
    http_duration: HistogramFamily,
    points_ingested: Family<ProtocolLabel, Counter>,
    rejects: Family<ReasonLabel, Counter>,
    front_door_dropped: Family<ReasonLabel, Counter>,
    street_name_lookups: Family<OutcomeLabel, Counter>,
    street_name_errors: Family<ReasonLabel, Counter>,
    queue_depth: Gauge,
    queue_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    resident_memory: Gauge,
    live_streams: Gauge,
    queue_stats: RwLock<Arc<dyn QueueStats>>,
    replication: ReplicationGauges,
    replications: RwLock<Option<crate::replication::Replications>>,
    exposure_depth: Gauge,
    exposure_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// When the oldest queued exposure window was queued (ms; `i64::MIN`: none).
    exposure_oldest: std::sync::atomic::AtomicI64,
}

/// Per-replication gauges, refreshed from the replications' status at scrape time.
struct ReplicationGauges {
    lag_changes: Family<NameLabel, Gauge>,
    lag_seconds: Family<NameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    applied_points: Family<NameLabel, Gauge>,
    points_per_second: Family<NameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    failures: Family<NameLabel, Gauge>,
    following: Family<NameLabel, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    replication: String,
}

/// The server's metrics. Cheap to clone (one `Arc`); create one per server.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every polo metric registered.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_duration = HistogramFamily::new_with_constructor(request_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template, method and status class",
            http_duration.clone(),
        );
        let points_ingested = Family::default();
        registry.register("polo_points_ingested", "Points accepted, by ingest protocol", points_ingested.clone());
        let rejects = Family::default();
        registry.register("polo_rejects", "Records or requests rejected, by reason", rejects.clone());
        let front_door_dropped = Family::default();
        registry.register(
            "polo_front_door_dropped",
            "Connections closed without a response (reason=host: Host not allowed; tls: failed handshake)",
            front_door_dropped.clone(),
        );
        let street_name_lookups = Family::default();
        registry.register(
            "polo_street_name_lookups",
            "Street-name lookups of places by the online geocoder (outcome=found, nothing or error)",
            street_name_lookups.clone(),
        );
        let street_name_errors = Family::default();
        registry.register(
            "polo_street_name_errors",
            "Failed street-name lookups, by reason (connect, tls, http, timeout, status, too_large, bad_json, store)",
            street_name_errors.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register("polo_queue_depth", "Items waiting in the background write queue", queue_depth.clone());
        let queue_oldest_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "polo_queue_oldest_age_seconds",
            "Age of the oldest item in the background write queue",
            queue_oldest_age.clone(),
        );
        let replication = ReplicationGauges {
            lag_changes: Family::default(),
            lag_seconds: Family::default(),
            applied_points: Family::default(),
            points_per_second: Family::default(),
            failures: Family::default(),
            following: Family::default(),
        };
        registry.register(
            "polo_replication_lag_changes",
            "Source changes a replication has not applied yet",
            replication.lag_changes.clone(),
        );
        registry.register(
            "polo_replication_lag_seconds",
            "How far behind its source's latest change a replication's applied data is",
            replication.lag_seconds.clone(),
        );
        registry.register(
            "polo_replication_applied_points",
            "Points a replication added or replaced since the server started",
            replication.applied_points.clone(),
        );
        registry.register(
            "polo_replication_points_per_second",
            "A replication's apply throughput over its last page",
            replication.points_per_second.clone(),
        );
        registry.register(
            "polo_replication_failures",
            "A replication's consecutive failures (0 when healthy)",
            replication.failures.clone(),
        );
        registry.register(
            "polo_replication_following",
            "1 when a replication is caught up and following its source",
            replication.following.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register("process_resident_memory_bytes", "Resident set size of the process", resident_memory.clone());
        let live_streams = Gauge::default();
        registry.register("polo_live_streams", "Open live-position event streams (SSE)", live_streams.clone());
        let exposure_depth = Gauge::default();
        registry.register(
            "polo_exposure_queue_depth",
            "Exposure windows waiting for the batch (complete windows and windows with late points)",
            exposure_depth.clone(),
        );
        let exposure_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "polo_exposure_queue_oldest_age_seconds",
            "How long the oldest queued exposure window has waited",
            exposure_age.clone(),
        );
        Self(Arc::new(Inner {
            exposure_depth,
            exposure_age,
            exposure_oldest: std::sync::atomic::AtomicI64::new(i64::MIN),
            registry,
            http_duration,
            points_ingested,
            rejects,
            front_door_dropped,
            street_name_lookups,
            street_name_errors,
            queue_depth,
            queue_oldest_age,
            resident_memory,
            live_streams,
            queue_stats: RwLock::new(Arc::new(NoQueue)),
            replication,
            replications: RwLock::new(None),
        }))
    }

    /// A live-position event stream opened (`polo_live_streams`).
    pub fn live_stream_opened(&self) {
        self.0.live_streams.inc();
    }

    /// A live-position event stream ended.
    pub fn live_stream_closed(&self) {
        self.0.live_streams.dec();
    }

    /// Makes the queue gauges read from `stats` (the ingest writer calls this once).
    pub fn set_queue_stats(&self, stats: Arc<dyn QueueStats>) {
        // A poisoned lock only means a panic elsewhere mid-assignment; the Arc is still whole.
        *self.0.queue_stats.write().unwrap_or_else(std::sync::PoisonError::into_inner) = stats;
    }

    /// Makes the replication gauges read from `replications`.
    pub fn set_replications(&self, replications: crate::replication::Replications) {
        *self.0.replications.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(replications);
    }

    /// The exposure batch's queue: `depth` windows, the oldest queued at
    /// `oldest_queued_at` (ms); its age is computed at scrape time.
    pub fn set_exposure_queue(&self, depth: u64, oldest_queued_at: Option<i64>) {
        self.0.exposure_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.0.exposure_oldest.store(oldest_queued_at.unwrap_or(i64::MIN), std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts `count` points accepted through `protocol` (a fixed name such
    /// as `"owntracks"`, `"overland"`, `"gpslogger"`: never user input).
    pub fn points_ingested(&self, protocol: &'static str, count: u64) {
        self.0.points_ingested.get_or_create(&ProtocolLabel { protocol }).inc_by(count);
    }

    /// Counts one reject for `reason` (a fixed name such as `"no_time"`,
    /// `"bad_json"`, `"too_large"`: never user input).
    pub fn rejected(&self, reason: &'static str) {
        self.0.rejects.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a connection closed at the front door without a response.
    pub fn front_door_dropped(&self, reason: &'static str) {
        self.0.front_door_dropped.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts one street-name lookup of a place: `outcome` is `found`,
    /// `nothing` or `error`.
    pub fn street_name_lookup(&self, outcome: &'static str) {
        self.0.street_name_lookups.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Counts one failed street-name lookup (or the store failing around
    /// one) for `reason`, a fixed name such as `"timeout"`.
    pub fn street_name_error(&self, reason: &'static str) {
        self.0.street_name_errors.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Records one request's latency.
    pub fn observe_request(&self, method: &str, route: &str, status: StatusCode, elapsed: Duration) {
        let labels = HttpLabels { method: method.to_owned(), route: route.to_owned(), status: status_class(status) };
        self.0.http_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition, with the scrape-time gauges refreshed.
    #[must_use]
    pub fn render(&self) -> String {
        let stats = Arc::clone(&self.0.queue_stats.read().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.0.queue_depth.set(i64::try_from(stats.depth()).unwrap_or(i64::MAX));
        self.0.queue_oldest_age.set(stats.oldest_age().as_secs_f64());
        if let Some(replications) = &*self.0.replications.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            let g = &self.0.replication;
            for status in replications.statuses() {
                let label = NameLabel { replication: status.name.clone() };
                g.lag_changes.get_or_create(&label).set(i64::try_from(status.lag_changes).unwrap_or(i64::MAX));
                g.lag_seconds.get_or_create(&label).set(status.lag_seconds);
                g.applied_points.get_or_create(&label).set(i64::try_from(status.applied_points).unwrap_or(i64::MAX));
                g.points_per_second.get_or_create(&label).set(status.points_per_second);
                g.failures.get_or_create(&label).set(i64::from(status.failures));
                let following = status.state == polo_replication::State::Following;
                g.following.get_or_create(&label).set(i64::from(following));
            }
        }
        let oldest = self.0.exposure_oldest.load(std::sync::atomic::Ordering::Relaxed);
        let age_ms = if oldest == i64::MIN { 0 } else { (polo_store::clock::now().0 - oldest).max(0) };
        #[allow(clippy::cast_precision_loss)]
        self.0.exposure_age.set(age_ms as f64 / 1000.0);
        if let Some(rss) = resident_memory_bytes() {
            self.0.resident_memory.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Resident set size from `/proc/self/status` (`VmRSS`, in kB, so no page
/// size is needed). `None` off Linux or when unreadable.
#[must_use]
pub fn resident_memory_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Prometheus metrics (OpenMetrics text), served only to the admin networks (`--admin-network`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 403, description = "`forbidden`: the client is not on an admin network",
            body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn metrics_handler(State(metrics): State<Metrics>) -> Response {
    let body = metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Middleware: records `http_request_duration_seconds` for every request,
/// labelled by the matched route template.
pub(crate) async fn record_latency(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = route_label(&request);
    let response = next.run(request).await;
    metrics.observe_request(method.as_str(), &route, response.status(), start.elapsed());
    response
}

/// The route template of a request, or `"unmatched"`: never the raw path.
pub(crate) fn route_label(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        struct Busy;
        impl QueueStats for Busy {
            fn depth(&self) -> u64 {
                7
            }
            fn oldest_age(&self) -> Duration {
                Duration::from_millis(1500)
            }
        }
        let metrics = Metrics::new();
        metrics.points_ingested("owntracks", 3);
        metrics.rejected("no_time");
        metrics.front_door_dropped("host");
        metrics.street_name_lookup("found");
        metrics.street_name_error("timeout");
        metrics.observe_request("GET", "/users/{id}", StatusCode::NOT_FOUND, Duration::from_micros(350));
        metrics.set_queue_stats(Arc::new(Busy));
        let text = metrics.render();
        for needle in [
            "polo_points_ingested_total{protocol=\"owntracks\"} 3",
            "polo_rejects_total{reason=\"no_time\"} 1",
            "polo_front_door_dropped_total{reason=\"host\"} 1",
            "polo_street_name_lookups_total{outcome=\"found\"} 1",
            "polo_street_name_errors_total{reason=\"timeout\"} 1",
            "polo_queue_depth 7",
            "polo_queue_oldest_age_seconds 1.5",
            "http_request_duration_seconds_count{method=\"GET\",route=\"/users/{id}\",status=\"4xx\"} 1",
            "le=\"0.0001\"",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        if cfg!(target_os = "linux") {
            assert!(text.contains("process_resident_memory_bytes "), "{text}");
            assert!(resident_memory_bytes().unwrap() > 1 << 20);
        }
    }
}
