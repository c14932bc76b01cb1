//! `polo serve`: opens (and migrates) the embedded store, then serves HTTP
//! until SIGINT or SIGTERM, finishing in-flight requests before exiting.

use std::sync::Arc;

use anyhow::Context;
use polo_server::AppState;

use crate::Outcome;
use crate::cli::ServeArgs;
use crate::config::Config;

pub fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<Outcome> {
    let addr = config.listen_addr(args.listen.as_deref())?;
    let store = config.open_store()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!(data_dir = %config.data_dir.display(), "store ready");
        // Integration tests and scripts read this line to learn the port.
        eprintln!("polo listening on http://{local}");
        polo_server::serve(listener, AppState { store: Arc::new(store) }, shutdown_signal()).await?;
        tracing::info!("shut down cleanly");
        Ok(Outcome::Success)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
