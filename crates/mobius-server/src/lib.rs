//! The HTTP adapter over the application ([`mobius_app::App`]): routes, who may call them,
//! limits on every connection and body, and the mapping of domain errors to statuses. The work
//! itself is in the application's services; nothing here decides anything about delivery.
//!
//! - [`router`] lists every route; [`serve`] runs it on a pre-bound listener under the
//!   [`limits::Limits`] until the shutdown future completes, finishing in-flight requests.
//! - [`auth`]: [`auth::Caller`], the first extractor of every handler — the token is checked
//!   from the headers before anything else is read.
//! - [`extract`]: query strings, paths and bodies read within the limits, refused in the API's
//!   error shape. [`page`]: every list is paged (items and bytes).
//! - [`error`]: the one [`error::ApiError`], and every domain error's status.
//! - `routes`: the handlers, one module per area (log, runs, repositories, secrets, delivery,
//!   reliability, health, agents).
//! - [`metrics`]: Prometheus metrics about the server itself.
//! - The console's pages (`mobius_console`) are routed here too, beside the API.

pub mod auth;
pub mod error;
pub mod etag;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod page;
pub mod rate;
mod routes;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use mobius_app::App;
use tokio::net::TcpListener;

use crate::limits::{Gates, Limits};
use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use crate::routes::{
    agents, delivery, environments, flag_rollouts, flags, gitops, health, log, ofrep, reliability, repositories, runs,
    secrets,
};

/// A secret from configuration; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What the HTTP adapter needs beyond the application.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Serve the `read` endpoints without a token (see [`PUBLIC_READ_OPENS`]).
    pub public_read: bool,
    /// Serve `/metrics` without a token (Prometheus without `authorization`).
    pub public_metrics: bool,
    /// HMAC secret for `X-Hub-Signature-256`; GitHub webhooks are refused without one.
    pub github_webhook_secret: Option<Secret>,
    /// Expected `X-Gitlab-Token`; GitLab webhooks are refused without one.
    pub gitlab_webhook_token: Option<Secret>,
    /// Connections, timeouts and body sizes.
    pub limits: Limits,
    /// The origins browsers may call OFREP from (`*` for any); none by default.
    pub ofrep_cors_origins: Vec<String>,
    /// OFREP evaluations per second allowed to one key (a token, or an address without one),
    /// and the burst above it; 0 for no limit.
    pub ofrep_rate: (f64, u32),
}

/// What OFREP allows one key by default: far above what a provider polls at, far below what
/// would let one client crowd the others out.
pub const OFREP_RATE: (f64, u32) = (1_000.0, 2_000);

/// What `--public-read` serves without a token: every endpoint a `read` token may call.
pub const PUBLIC_READ_OPENS: &str = "the event log (GET /api/v1/events, with every event's raw body), DORA and \
    flow, runs with their logs, rollouts, SLOs with their budgets and explanations, alerts, incidents and \
    post-mortem drafts, policy checks, active chaos faults, and /metrics";

/// What every handler holds: the application, the adapter's configuration, its metrics and
/// the limits' counters.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub gates: Arc<Gates>,
    /// OFREP's rate per key.
    pub ofrep_rate: Arc<rate::RateLimit>,
    /// The tokens OFREP callers presented lately.
    pub ofrep_keys: Arc<routes::ofrep::keys::Keys>,
}

impl AppState {
    pub fn new(app: App, config: ServerConfig) -> AppState {
        let gates = Arc::new(Gates::new(config.limits.clone()));
        let ofrep_rate = Arc::new(rate::RateLimit::new(config.ofrep_rate.0, config.ofrep_rate.1));
        let ofrep_keys = Arc::default();
        AppState { app, config: Arc::new(config), metrics: Arc::new(Metrics::new()), gates, ofrep_rate, ofrep_keys }
    }
}

/// Every route, with request metrics: the API, and the console's pages beside it.
pub fn router(state: AppState) -> Router {
    let console_config = mobius_console::ConsoleConfig {
        public_read: state.config.public_read,
        // Behind a TLS proxy (a public URL on https), the session cookie is `Secure`.
        secure_cookie: state.app.config().public_url.as_deref().is_some_and(|url| url.starts_with("https://")),
    };
    let console = mobius_console::router(state.app.clone(), console_config);
    let pages =
        mobius_console::PATHS.iter().fold(Router::new(), |router, path| router.route_service(path, console.clone()));
    pages
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/events", post(log::post_events).get(log::get_events))
        .route("/api/v1/webhooks/github", post(log::post_github))
        .route("/api/v1/webhooks/gitlab", post(log::post_gitlab))
        .route("/api/v1/dora", get(log::get_dora))
        .route("/api/v1/flow", get(log::get_flow))
        .route("/api/v1/tokens", post(log::post_token).get(log::get_tokens))
        .route("/api/v1/tokens/{id}", delete(log::delete_token))
        .route("/api/v1/runs", get(runs::list).post(runs::start))
        .route("/api/v1/runs/{id}", get(runs::show))
        .route("/api/v1/runs/{id}/logs", get(runs::logs))
        .route("/api/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/api/v1/runs/{id}/rerun", post(runs::rerun))
        .route("/api/v1/runs/{id}/jobs/{job}/approve", post(runs::approve))
        .route("/api/v1/runs/{id}/jobs/{job}/reject", post(runs::reject))
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/agent/jobs/request", post(agents::request))
        .route("/api/v1/agent/jobs/{id}/renew", put(agents::renew))
        .route("/api/v1/agent/jobs/{id}/log", post(agents::log))
        .route("/api/v1/agent/jobs/{id}/finish", put(agents::finish))
        .route("/api/v1/agent/jobs/{id}/source", get(agents::source))
        .route("/api/v1/agent/jobs/{id}/history", get(agents::history))
        .route("/api/v1/agent/jobs/{id}/records", get(agents::records).post(agents::put_records))
        .route("/api/v1/agent/jobs/{id}/blobs/missing", post(agents::missing_blobs))
        .route("/api/v1/agent/jobs/{id}/blobs/{digest}", get(agents::blob).put(agents::put_blob))
        .route("/api/v1/environments", get(environments::list))
        .route("/api/v1/environments/{owner}/{repo}/{env}", put(environments::put).delete(environments::delete))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_one).options(ofrep::preflight))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_all).options(ofrep::preflight))
        .route("/ofrep/v1/events", get(ofrep::events).options(ofrep::preflight))
        .route("/api/v1/flags", get(flags::list))
        .route("/api/v1/flags/{set}", get(flags::show).put(flags::put).delete(flags::delete))
        .route("/api/v1/flags/{set}/flags/{flag}/state", put(flags::set_state))
        .route("/api/v1/flags/{set}/flags/{flag}/default", put(flags::set_default))
        .route("/api/v1/flag-rollouts", get(flag_rollouts::list))
        .route("/api/v1/gitops", get(gitops::list).post(gitops::add).delete(gitops::remove))
        .route("/api/v1/gitops/sync", post(gitops::sync))
        .route("/api/v1/promotions", post(gitops::promote))
        .route("/api/v1/flags/{set}/flags/{flag}/rollout", get(flag_rollouts::show).post(flag_rollouts::start))
        .route("/api/v1/flags/{set}/flags/{flag}/rollout/{action}", post(flag_rollouts::act))
        .route("/api/v1/poll", post(runs::poll))
        .route("/api/v1/repositories", post(repositories::add).get(repositories::list))
        .route("/api/v1/repositories/{*name}", get(repositories::show).delete(repositories::remove))
        .route("/api/v1/secrets", get(secrets::list))
        .route("/api/v1/secrets/{owner}/{repo}/{name}", put(secrets::put).delete(secrets::delete))
        .route("/api/v1/slos", get(reliability::get_slos))
        .route("/api/v1/slos/explain", get(reliability::get_slo_explanation))
        .route("/api/v1/alerts", get(reliability::get_alerts))
        .route("/api/v1/incidents", get(reliability::get_incidents))
        .route("/api/v1/postmortems", get(reliability::get_postmortem).post(reliability::post_postmortem))
        .route("/api/v1/policy/{service}/{environment}", get(reliability::get_policy))
        .route("/api/v1/deployments", post(delivery::deploy))
        .route("/api/v1/uploads/{digest}", put(delivery::upload))
        .route("/api/v1/artifacts/{digest}/provenance", get(runs::provenance))
        .route("/api/v1/chaos", get(delivery::faults))
        .route("/api/v1/chaos/{service}/{environment}", post(delivery::inject).delete(delivery::clear))
        .route("/api/v1/rollouts", get(delivery::list))
        .route("/api/v1/rollouts/{service}/{environment}", get(delivery::status))
        .route("/api/v1/rollouts/{service}/{environment}/{action}", post(delivery::change))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
    state.metrics.durations.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    response
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.limits.clone();
    limits::serve(listener, router(state), &limits, shutdown, std::time::Duration::from_secs(10)).await
}
