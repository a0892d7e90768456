//! `mobius serve`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use mobius_server::auth::{self, Bootstrap};
use mobius_server::ingest::Ingestor;
use mobius_server::metrics::Metrics;
use mobius_server::{AppState, ServerConfig};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::config::{self, Overrides};

pub async fn run(data_dir: Option<&Path>, args: ServeArgs) -> Result<ExitCode> {
    let settings = config::load(
        data_dir,
        Overrides {
            listen: args.listen.as_deref(),
            public_read: args.public_read,
            attribution_window: args.rules.attribution_window.as_deref(),
        },
    )?;
    let store = super::open_store(&settings)?;

    match auth::bootstrap(store.as_ref(), settings.admin_token.as_ref().map(|s| s.expose()))? {
        Bootstrap::Generated(secret) => {
            // Shown once: only its hash is stored.
            println!("Generated the admin token (shown only now; store it safely):\n\n    {secret}\n");
        }
        Bootstrap::FromEnvironment | Bootstrap::Existing => {}
    }

    let listener =
        TcpListener::bind(settings.listen).await.with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %settings.data_dir.display(), "mobius is serving");
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "listening beyond loopback: every mutation still needs a token");
    }
    eprintln!("mobius listening on http://{address}");

    let state = AppState {
        ingestor: Ingestor::new(store, settings.rules),
        config: Arc::new(ServerConfig {
            public_read: settings.public_read,
            github_webhook_secret: settings.github_webhook_secret.clone(),
            gitlab_webhook_token: settings.gitlab_webhook_token.clone(),
        }),
        metrics: Arc::new(Metrics::new()),
    };
    mobius_server::serve(listener, state, shutdown_signal()).await.context("the server failed")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
