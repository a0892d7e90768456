//! The HTTP server: ingestion (CDEvents, GitHub and GitLab webhooks), DORA and flow queries,
//! tokens, health and metrics.
//!
//! - [`router`] assembles the routes and layers; [`serve`] runs them on a pre-bound listener
//!   until the shutdown future completes, finishing in-flight requests.
//! - [`api`]: the handlers. [`ingest`] and [`query`] hold the work, shared with the CLI's
//!   embedded mode. [`auth`]: scoped bearer tokens. [`error`]: the one [`error::ApiError`].
//! - [`metrics`]: Prometheus metrics about the server itself.
//! - [`runs`]: pipelines run by the server on commits to registered repositories.
//! - [`deploy`]: the control plane of releases (rollouts, their data planes, the supervisor).

pub mod api;
pub mod auth;
pub mod delivery_http;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod runs_http;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;

use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use mobius_app::App;

/// Request bodies above this are refused with 413.
pub const MAX_BODY: usize = 10 << 20;

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

/// What the server needs beyond the store.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Serve read endpoints without a token.
    pub public_read: bool,
    /// HMAC secret for `X-Hub-Signature-256`; GitHub webhooks are refused without one.
    pub github_webhook_secret: Option<Secret>,
    /// Expected `X-Gitlab-Token`; GitLab webhooks are refused without one.
    pub gitlab_webhook_token: Option<Secret>,
}

/// What every handler holds: the application, the server's own configuration and metrics.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(app: App, config: ServerConfig) -> AppState {
        AppState { app, config: Arc::new(config), metrics: Arc::new(Metrics::new()) }
    }
}

/// Every route, with the body limit and request metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/events", post(api::post_events).get(api::get_events))
        .route("/api/v1/webhooks/github", post(api::post_github))
        .route("/api/v1/webhooks/gitlab", post(api::post_gitlab))
        .route("/api/v1/dora", get(api::get_dora))
        .route("/api/v1/flow", get(api::get_flow))
        .route("/api/v1/tokens", post(api::post_token).get(api::get_tokens))
        .route("/api/v1/tokens/{id}", delete(api::delete_token))
        .route("/api/v1/runs", get(runs_http::list))
        .route("/api/v1/runs/{id}", get(runs_http::show))
        .route("/api/v1/runs/{id}/logs", get(runs_http::logs))
        .route("/api/v1/runs/{id}/cancel", post(runs_http::cancel))
        .route("/api/v1/runs/{id}/rerun", post(runs_http::rerun))
        .route("/api/v1/poll", post(runs_http::poll))
        .route("/api/v1/slos", get(api::get_slos))
        .route("/api/v1/slos/explain", get(api::get_slo_explanation))
        .route("/api/v1/alerts", get(api::get_alerts))
        .route("/api/v1/incidents", get(api::get_incidents))
        .route("/api/v1/postmortems", get(api::get_postmortem).post(api::post_postmortem))
        .route("/api/v1/policy/{service}/{environment}", get(api::get_policy))
        .route("/api/v1/deployments", post(delivery_http::deploy))
        .route("/api/v1/chaos", get(delivery_http::faults))
        .route("/api/v1/chaos/{service}/{environment}", post(delivery_http::inject).delete(delivery_http::clear))
        .route("/api/v1/rollouts", get(delivery_http::list))
        .route("/api/v1/rollouts/{service}/{environment}", get(delivery_http::status))
        .route("/api/v1/rollouts/{service}/{environment}/{action}", post(delivery_http::change))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(refuse_oversized))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Refuses a declared length over [`MAX_BODY`] before reading a byte of the body. (Chunked
/// bodies are cut off at the limit by `DefaultBodyLimit` while they are read.)
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return api::too_large().into_response();
    }
    next.run(request).await
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

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
