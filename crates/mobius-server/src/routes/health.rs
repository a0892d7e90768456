//! Liveness, readiness, and Prometheus metrics about the server itself.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::{Caller, Scrape};
use crate::metrics::{LeaseLabels, RunLabels};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers: one cheap indexed read (anyone may ask, so nothing that
/// grows with the log). Says which leases this replica holds (the singleton work it runs).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.app.store.clone();
    let leases = serde_json::json!({
        "replica": state.app.leases.holder(),
        "held": state.app.leases.held(),
    });
    match mobius_log::blocking::spawn(move || store.state("readyz")).await {
        Ok(_) => {
            let body = serde_json::json!({ "status": "ready", "database": "ok", "leases": leases });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the store does not answer: not ready");
            let body = serde_json::json!({ "status": "unavailable", "database": "not answering", "leases": leases });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// `GET /metrics` (a `metrics` token, any reading token, or none with `public_metrics`).
pub async fn metrics(_: Caller<Scrape>, State(state): State<AppState>) -> Response {
    let store = state.app.store.clone();
    match mobius_log::blocking::spawn(move || store.event_count()).await {
        Ok(count) => {
            state.metrics.events_in_log.set(count as i64);
        }
        Err(e) => tracing::error!(error = %e, "cannot count the log's events for /metrics"),
    }
    for (lease, held) in state.app.leases.wanted_leases() {
        state.metrics.leases.get_or_create(&LeaseLabels { lease }).set(i64::from(held));
    }
    let (running, waiting) = state.app.runs.load();
    for (label, n) in [("running", running), ("waiting", waiting)] {
        state.metrics.runs.get_or_create(&RunLabels { state: label.to_owned() }).set(n as i64);
    }
    match state.app.agents.queue_sizes().await {
        Ok((queued, running)) => {
            for (label, n) in [("queued", queued), ("running", running)] {
                state.metrics.agent_jobs.get_or_create(&RunLabels { state: label.to_owned() }).set(n as i64);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot count the agent job queue for /metrics"),
    }
    let mut text = state.metrics.render();
    let (store, series) = (state.app.store.clone(), state.app.reliability.series_cache());
    let slos = mobius_log::blocking::spawn(move || {
        mobius_reliability::slo::statuses_with(store.as_ref(), &series, state.app.now())
    })
    .await;
    match slos {
        Ok(slos) => {
            // The registry's text ends with `# EOF` (OpenMetrics); the SLO series go before it.
            if let Some(stripped) = text.strip_suffix("# EOF\n") {
                text = stripped.to_owned();
            }
            text.push_str(&mobius_reliability::slo::exposition(&slos));
            text.push_str("# EOF\n");
        }
        // The server's own metrics are still worth a scrape.
        Err(e) => tracing::error!(error = %e, "cannot evaluate the SLOs for /metrics"),
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
