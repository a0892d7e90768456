//! `mobius serve`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mobius_app::App;
use mobius_app::tokens::{self, Bootstrap};
use mobius_server::{AppState, ServerConfig};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::config::{self, Overrides, Settings};

pub async fn run(data_dir: Option<&Path>, args: ServeArgs) -> Result<ExitCode> {
    let settings = config::load(
        data_dir,
        Overrides {
            listen: args.listen.as_deref(),
            public_read: args.public_read,
            attribution_window: args.rules.attribution_window.as_deref(),
            public_url: args.public_url.as_deref(),
            database_url: args.database_url.as_deref(),
            policy_dir: args.policy_dir.as_deref(),
        },
    )?;
    // Bound before the application opens: commit statuses link runs under its address.
    let listener =
        TcpListener::bind(settings.listen).await.with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let mut config = app_config(&settings)?;
    config.public_url = Some(settings.public_url.clone().unwrap_or_else(|| format!("http://{address}")));
    // Opening the store and the first reads are blocking work (a PostgreSQL client may not
    // even start on an async thread): the blocking pool does them.
    let app = mobius_log::blocking::spawn(move || App::open(config)).await?;
    let (store, admin_token) = (app.store.clone(), settings.admin_token.clone());
    let bootstrap = mobius_log::blocking::spawn(move || {
        tokens::bootstrap(store.as_ref(), admin_token.as_ref().map(|s| s.expose()))
    });
    match bootstrap.await? {
        Bootstrap::Generated(secret) => {
            // Shown once: only its hash is stored.
            println!("Generated the admin token (shown only now; store it safely):\n\n    {secret}\n");
        }
        Bootstrap::FromEnvironment { replaced } if replaced > 0 => {
            tracing::info!("MOBIUS_ADMIN_TOKEN changed: the previous one is revoked");
        }
        Bootstrap::FromEnvironment { .. } | Bootstrap::Existing => {}
    }

    tracing::info!(%address, data_dir = %settings.data_dir.display(), "mobius is serving");
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "listening beyond loopback: every mutation still needs a token");
    }
    let shutdown = shutdown_signal();
    eprintln!("mobius listening on http://{address}");
    // Jobs reach the API here (`MOBIUS_SERVER`): on this machine, so through loopback when the
    // server listens on every address.
    let mut reachable = address;
    if reachable.ip().is_unspecified() {
        reachable.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    app.runs.set_server_url(format!("http://{reachable}"));

    let recovered = app.recover().await?;
    if recovered.rollouts > 0 {
        eprintln!("resumed {} rollout(s)", recovered.rollouts);
    }
    if !recovered.runs.is_empty() {
        eprintln!("re-queued {} interrupted run(s)", recovered.runs.len());
    }
    let background = app.start();
    let state = AppState::new(
        app,
        ServerConfig {
            public_read: settings.public_read,
            github_webhook_secret: settings.github_webhook_secret.clone(),
            gitlab_webhook_token: settings.gitlab_webhook_token.clone(),
            public_metrics: settings.public_metrics,
            limits: settings.limits.clone(),
            ofrep_cors_origins: settings.ofrep_cors_origins.clone(),
            ofrep_rate: settings.ofrep_rate,
        },
    );
    mobius_server::serve(listener, state, shutdown).await.context("the server failed")?;
    background.stop().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The application's configuration from the layered settings.
pub(super) fn app_config(settings: &Settings) -> Result<mobius_app::Config> {
    let mut config = mobius_app::Config::new(&settings.data_dir);
    config.rules = settings.rules;
    config.poll_interval = settings.poll_interval;
    config.sandbox = settings.sandbox()?;
    config.actions = settings.action_cache();
    config.secret_key = settings.secret_key.as_ref().map(|key| key.expose().to_owned());
    config.database_url = settings.database_url.as_ref().map(|url| url.expose().to_owned());
    config.policy_dir = settings.policy_dir.clone();
    config.external_proxy = std::env::var("MOBIUS_PROXY").is_ok_and(|v| v == "external");
    if let Ok(runs) = std::env::var("MOBIUS_RUNS") {
        config.runs = runs
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("MOBIUS_RUNS must be a number of runs above 0, not `{runs}`"))?;
    }
    if let Ok(every) = std::env::var("MOBIUS_ALERT_EVERY") {
        config.alert_every = crate::config::parse_interval(&every)?;
    }
    if let Some(labels) = &settings.local_labels {
        config.agents.local_labels = Some(labels.iter().cloned().collect());
    }
    // How long an agent holds a job without renewing (60 s); agents renew at a third of it.
    if let Ok(lease) = std::env::var("MOBIUS_AGENT_LEASE") {
        config.agents.lease = crate::config::parse_interval(&lease).context("MOBIUS_AGENT_LEASE")?;
        config.agents.renew = (config.agents.lease / 3).max(std::time::Duration::from_secs(1));
    }
    Ok(config)
}

/// SIGTERM or SIGINT (`mobius serve` and `mobius proxy` stop on either). The handlers are
/// installed when this is called, not when the future is first polled: a signal that comes
/// right after the server said it listens (while it still recovers its runs) stops it cleanly
/// instead of killing it.
pub(super) fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Some(mut term), Some(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = interrupt.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
