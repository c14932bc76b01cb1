//! `polo serve`: opens (and migrates) the embedded store, then serves HTTP
//! (and, with `--mqtt-url`, subscribes to OwnTracks over MQTT; with
//! `--geocoder`, names places from an online geocoder in the background)
//! until SIGINT or SIGTERM, finishing in-flight requests before exiting.
//!
//! The shutdown is bounded: in-flight requests get up to
//! [`SHUTDOWN_GRACE`] after the signal, then the background tasks and the
//! ingest writer get what is left of it (at least [`FLUSH_AT_LEAST`]) to
//! stop and store what they hold. Whatever is still stuck then (a writer
//! hanging on a dead disk, an import job inside a store call) is abandoned
//! and the process exits, with status 2 when queued points were not stored.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use polo_server::auth::oidc::Oidc;
use polo_server::auth::{Authenticator, Backoff};
use polo_server::import_job::{ImportJobs, ImportJobsConfig};
use polo_server::mqtt::{MqttSettings, MqttTask};
use polo_server::options::{AccessLog, AllowedHosts, IpNetwork, TlsFiles};
use polo_server::street_names::StreetNames;
use polo_server::{AppState, SHUTDOWN_GRACE, ServerOptions};

use crate::Outcome;
use crate::cli::ServeArgs;
use crate::config::Config;

/// The least time the writers get after the in-flight requests, however
/// long those took.
const FLUSH_AT_LEAST: Duration = Duration::from_secs(5);

/// Zone evaluation and webhook retries from the flags; defaults otherwise.
fn zone_settings(args: &ServeArgs) -> polo_server::zones::ZoneSettings {
    let mut settings = polo_server::zones::ZoneSettings::default();
    if let Some(ms) = args.zone_reorder_window_ms {
        settings.reorder_window = Duration::from_millis(ms);
    }
    if let Some(hours) = args.silent_after_hours {
        settings.watch.silent_after_ms = i64::from(hours) * 3_600_000;
    }
    if let Some(percent) = args.low_battery_percent {
        settings.watch.low_battery_percent = percent;
        settings.watch.battery_rearm_percent = percent.saturating_add(5);
    }
    if let Some(ms) = args.webhook_first_retry_ms {
        settings.retry.first_ms = ms;
    }
    if let Some(ms) = args.webhook_max_retry_ms {
        settings.retry.max_ms = ms;
    }
    if let Some(n) = args.webhook_max_attempts {
        settings.retry.max_attempts = n;
    }
    settings
}

pub fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<Outcome> {
    let addr = config.listen_addr(args.listen.as_deref())?;
    let options = server_options(config, args)?;
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    let mqtt = mqtt_settings(config, args)?;
    let street_names = config.street_names(args.geocoder.as_deref(), args.geocoder_url.as_deref())?;
    let site =
        config.site(args.instance_name.as_deref(), args.tile_url.as_deref(), args.tile_attribution.as_deref())?;
    let backoff = args
        .auth_free_failures
        .or(config.file_serve.auth_free_failures)
        .map_or_else(Backoff::default, Backoff::with_free_failures);
    let replications = replication_specs(config, args)?;
    let oidc = config.oidc()?.map(Oidc::new).transpose().context("cannot set up the OIDC client")?;
    let store = config.open_store()?;
    crate::allocator::spawn_releaser();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    // When the shutdown must be over: set once serving has stopped.
    let deadline = Arc::new(OnceLock::<Instant>::new());
    let shutdown_deadline = Arc::clone(&deadline);
    let outcome = runtime.block_on(async move {
        // Listened for before anything else, so that a signal right after start-up (a supervisor
        // stopping a server that has only just printed its address) shuts down cleanly too.
        let shutdown = ShutdownSignals::listen();
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!(data_dir = %config.data_dir.display(), "store ready");
        // Integration tests and scripts read this line to learn the port.
        eprintln!("polo listening on {scheme}://{local}");
        let mut state = AppState::new(store).context("cannot start the ingest writer")?;
        // Session cookies are `Secure` when polo itself terminates TLS (and, per request, when a
        // trusted proxy says the client came over HTTPS).
        // `[oidc] password_login = false` leaves the identity provider as the only way in.
        let password_login = oidc.as_ref().is_none_or(|o| o.settings.password_login);
        state.auth = Arc::new(
            Authenticator::new(state.store.clone())
                .with_secure_cookies(options.tls.is_some())
                .with_backoff(backoff)
                .with_password_login(password_login),
        );
        state.oidc = oidc.map(Arc::new);
        // Uploaded imports spool under the data directory, next to the CLI's rejects files.
        state.imports = ImportJobs::new(ImportJobsConfig::in_data_dir(&config.data_dir))
            .context("cannot create the upload directory")?;
        // Photo thumbnails are made once and kept beside the store.
        state.photos = polo_server::photos::PhotoFiles::in_dir(config.data_dir.join("thumbnails"));
        state.site = Arc::new(site);
        state.zones.configure(zone_settings(args));
        let imports = state.imports.clone();
        let ingestor = state.ingestor.clone();
        let street_names = street_names
            .map(|settings| StreetNames::start(&state, &settings))
            .transpose()
            .context("cannot start the street-name geocoder")?;
        let mqtt = mqtt.map(|settings| MqttTask::start(state.clone(), settings));
        let retention = polo_server::retention::RetentionJob::start(&state);
        let mut replication_tasks = Vec::new();
        for pull in replications {
            let spec = polo_replication::Spec {
                name: pull.name,
                source: pull.source,
                target: polo_replication::Peer::Local(state.store.clone()),
                users: pull.users,
                continuous: true,
                page_points: pull.page_points,
            };
            let handle = polo_replication::Handle::new(&spec);
            state.replications.add(handle.clone());
            tracing::info!(replication = %spec.name, source = %spec.source, "replicating into this instance");
            replication_tasks.push((handle.clone(), tokio::spawn(polo_replication::run(spec, handle))));
        }
        let signalled = Arc::new(OnceLock::<Instant>::new());
        let signal = {
            let signalled = Arc::clone(&signalled);
            async move {
                shutdown.recv().await;
                let _ = signalled.set(Instant::now());
            }
        };
        let served = polo_server::serve(listener, state, options, signal).await;
        let since = signalled.get().copied().unwrap_or_else(Instant::now);
        let deadline = (since + SHUTDOWN_GRACE).max(Instant::now() + FLUSH_AT_LEAST);
        let _ = shutdown_deadline.set(deadline);
        // Long imports stop at their next read; what they read is stored.
        imports.close();
        let background = async {
            // A street-name lookup in flight is abandoned; its place is asked about at the next start.
            if let Some(street_names) = street_names {
                street_names.shutdown().await;
            }
            retention.shutdown().await;
            // Stop the MQTT subscriber before the writer, so what it accepted is stored.
            if let Some(mqtt) = mqtt {
                mqtt.shutdown().await;
            }
            // A page being applied commits with its checkpoint or not at all.
            for (handle, task) in replication_tasks {
                handle.send(polo_replication::Control::Cancel);
                let _ = task.await;
            }
        };
        if tokio::time::timeout_at(deadline.into(), background).await.is_err() {
            tracing::warn!("background tasks did not stop in time; exiting without them");
        }
        served?;
        // No request is in flight any more: store what the writer still holds.
        let flushed = ingestor.shutdown_within(deadline.saturating_duration_since(Instant::now())).await;
        if flushed {
            tracing::info!("shut down cleanly");
            Ok(Outcome::Success)
        } else {
            Ok(Outcome::Failed)
        }
    });
    // Blocking tasks still running (an import job inside a store call that
    // hangs) are not waited for past the deadline.
    let left = deadline.get().map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
    runtime.shutdown_timeout(left.max(Duration::from_millis(100)));
    outcome
}

/// A replication `polo serve` runs into its own store.
struct Pull {
    name: String,
    source: polo_replication::Peer,
    users: Vec<String>,
    page_points: usize,
}

/// The replications to run: `--replicate-from` (flags and env) plus the
/// file's `[[replication]]` entries.
fn replication_specs(config: &Config, args: &ServeArgs) -> anyhow::Result<Vec<Pull>> {
    let default_page = polo_replication::task::DEFAULT_PAGE_POINTS;
    let mut out = Vec::new();
    if let Some(url) = &args.replicate_from {
        let token = args
            .replicate_token
            .as_deref()
            .context("--replicate-from needs --replicate-token (or POLO_REPLICATE_TOKEN)")?;
        let peer = polo_replication::HttpPeer::new(url, token).map_err(|e| anyhow::anyhow!("--replicate-from: {e}"))?;
        out.push(Pull {
            name: url.clone(),
            source: polo_replication::Peer::Http(peer),
            users: args.replicate_users.clone(),
            page_points: default_page,
        });
    }
    for (i, r) in config.file_serve.replications.iter().enumerate() {
        let peer = polo_replication::HttpPeer::new(&r.source, &r.token)
            .map_err(|e| anyhow::anyhow!("[[replication]] number {} in the config file: {e}", i + 1))?;
        let name = r.name.clone().unwrap_or_else(|| r.source.clone());
        if out.iter().any(|p| p.name == name) {
            bail!("two replications are called {name:?}; give them distinct `name`s");
        }
        out.push(Pull {
            name,
            source: polo_replication::Peer::Http(peer),
            users: r.users.clone(),
            page_points: r.page_points.unwrap_or(default_page),
        });
    }
    Ok(out)
}

/// OwnTracks over MQTT, when a broker is configured: flags (merged with env) over the file.
fn mqtt_settings(config: &Config, args: &ServeArgs) -> anyhow::Result<Option<MqttSettings>> {
    let file = &config.file_serve;
    let Some(url) = args.mqtt_url.as_deref().or(file.mqtt_url.as_deref()) else { return Ok(None) };
    let mut settings = MqttSettings::new(
        url,
        args.mqtt_username.as_deref().or(file.mqtt_username.as_deref()),
        args.mqtt_password.as_deref().or(file.mqtt_password.as_deref()),
        args.mqtt_topic.as_deref().or(file.mqtt_topic.as_deref()),
    )?;
    settings.republish = args.mqtt_republish || file.mqtt_republish.unwrap_or(false);
    settings.discovery = args.mqtt_discovery || file.mqtt_discovery.unwrap_or(false);
    Ok(Some(settings))
}

/// The front-door settings: flags (merged with env by clap) over the file over the defaults.
fn server_options(config: &Config, args: &ServeArgs) -> anyhow::Result<ServerOptions> {
    let file = &config.file_serve;
    let or_file = |flag: &[String], file: &Option<Vec<String>>| {
        if flag.is_empty() { file.clone().unwrap_or_default() } else { flag.to_vec() }
    };
    let mut options = ServerOptions {
        allowed_hosts: AllowedHosts::parse(&or_file(&args.allowed_hosts, &file.allowed_hosts))?,
        ..ServerOptions::default()
    };
    let networks = or_file(&args.admin_networks, &file.admin_networks);
    if !networks.is_empty() {
        options.admin_networks = IpNetwork::parse_list(&networks)?;
    }
    options.trusted_proxies = IpNetwork::parse_trusted_proxies(&or_file(&args.trusted_proxies, &file.trusted_proxies))?;
    if let Some(access_log) = args.access_log.as_deref().or(file.access_log.as_deref()) {
        options.access_log = access_log.parse::<AccessLog>()?;
    }
    options.tls = TlsFiles::from_pair(
        args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
        args.tls_key.clone().or_else(|| file.tls_key.clone()),
    )?;
    Ok(options)
}

/// SIGINT (Ctrl-C) and SIGTERM, registered when made: a signal that arrives
/// before [`ShutdownSignals::recv`] is first awaited is kept, not fatal.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Starts listening (inside the runtime).
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self { interrupt: signal(SignalKind::interrupt()).ok(), terminate: signal(SignalKind::terminate()).ok() }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the first of them.
    async fn recv(mut self) {
        #[cfg(unix)]
        {
            let next = |signal: &mut Option<tokio::signal::unix::Signal>| {
                let signal = signal.take();
                async move {
                    match signal {
                        Some(mut signal) => {
                            signal.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                }
            };
            tokio::select! {
                () = next(&mut self.interrupt) => {},
                () = next(&mut self.terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
