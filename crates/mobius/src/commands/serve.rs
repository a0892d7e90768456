//! `mobius serve`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use mobius_delivery::{DeployConfig, Deployer};
use mobius_log::ingest::Ingestor;
use mobius_runs::{Runner, RunnerConfig};
use mobius_server::auth::{self, Bootstrap};
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

    let ingestor = Ingestor::new(store.clone(), settings.rules);
    let alert_store = store.clone();
    // The control plane first: re-queued runs may deploy.
    let deployer = Deployer::new(
        store.clone(),
        ingestor.clone(),
        DeployConfig {
            data_dir: settings.data_dir.clone(),
            external_proxy: std::env::var("MOBIUS_PROXY").is_ok_and(|v| v == "external"),
        },
    );
    // Rollouts the previous server left: proxies back, instances re-adopted, controllers resumed.
    let resumed = deployer.recover().await.context("cannot recover the rollouts a previous server left")?;
    if resumed > 0 {
        eprintln!("resumed {resumed} rollout(s)");
    }

    let runner = Runner::new(
        store,
        ingestor.clone(),
        RunnerConfig {
            data_dir: settings.data_dir.clone(),
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            poll_interval: settings.poll_interval,
        },
    );
    // `mobius/deploy` steps deploy through the control plane, on this runtime.
    runner.set_deployments(deployer.for_steps());
    // Runs the previous server left in flight are marked interrupted and queued once more.
    let requeued = runner.recover().await.context("cannot recover the runs a previous server left")?;
    if !requeued.is_empty() {
        eprintln!("re-queued {} interrupted run(s)", requeued.len());
    }
    let (stop_polling, polling_stopped) = tokio::sync::oneshot::channel::<()>();
    let poller = tokio::spawn(runner.clone().poll_forever(async {
        let _ = polling_stopped.await;
    }));
    // SLO alerts: evaluated on a timer, notified, turned into incidents.
    let alerter = mobius_reliability::Alerter::new(alert_store, ingestor.clone());
    let alert_every = std::env::var("MOBIUS_ALERT_EVERY")
        .ok()
        .map(|v| crate::config::parse_interval(&v))
        .transpose()?
        .unwrap_or(ALERT_EVERY);
    let (stop_alerting, alerting_stopped) = tokio::sync::oneshot::channel::<()>();
    let alerting = tokio::spawn(alerter.clone().run(alert_every, async {
        let _ = alerting_stopped.await;
    }));
    // The proxies' SLIs into per-minute counters, which SLOs read.
    let (stop_recording, recording_stopped) = tokio::sync::oneshot::channel::<()>();
    let recorder = tokio::spawn(deployer.clone().record_slis(SLI_EVERY, async {
        let _ = recording_stopped.await;
    }));

    let state = AppState {
        ingestor,
        config: Arc::new(ServerConfig {
            public_read: settings.public_read,
            github_webhook_secret: settings.github_webhook_secret.clone(),
            gitlab_webhook_token: settings.gitlab_webhook_token.clone(),
        }),
        metrics: Arc::new(Metrics::new()),
        runner,
        deployer,
        alerter,
    };
    mobius_server::serve(listener, state, shutdown_signal()).await.context("the server failed")?;
    let _ = stop_polling.send(());
    let _ = poller.await;
    let _ = stop_recording.send(());
    let _ = recorder.await;
    let _ = stop_alerting.send(());
    let _ = alerting.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// How often SLO alerts are evaluated (`MOBIUS_ALERT_EVERY` overrides it, e.g. `5s`).
const ALERT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How often the proxies' SLIs are added to the per-minute counters.
const SLI_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// SIGTERM or SIGINT (`mobius serve` and `mobius proxy` stop on either).
pub(super) async fn shutdown_signal() {
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
