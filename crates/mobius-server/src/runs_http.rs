//! The runs API: list and show runs, stream their logs (SSE, resumable), cancel, re-run, and
//! the notification a repository's git hook sends.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use mobius_store::{RunQuery, RunState, TokenScope};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::AppState;
use crate::api::{authorize, authorize_read};
use crate::error::ApiError;
use crate::extract::Query;
use mobius_runs::RunError;
use mobius_runs::logs::{self, RunLogLine};

impl From<RunError> for ApiError {
    fn from(e: RunError) -> ApiError {
        match e {
            RunError::NotFound(_) | RunError::UnknownRepository(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            RunError::Ended { .. } | RunError::NotEnded { .. } | RunError::NothingFailed(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            RunError::Git(_) | RunError::Store(_) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    repository: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/runs`: newest first.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let run_state = params
        .state
        .as_deref()
        .map(|s| RunState::parse(s).ok_or_else(|| ApiError::bad_request(format!("`state`: unknown state `{s}`"))))
        .transpose()?;
    let query =
        RunQuery { repository: params.repository, state: run_state, limit: params.limit.unwrap_or(50).min(1000) };
    let store = state.app.store.clone();
    let runs = tokio::task::spawn_blocking(move || store.runs(&query)).await??;
    Ok(Json(runs).into_response())
}

/// `GET /api/v1/runs/{id}`: the run with its jobs and steps.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let store = state.app.store.clone();
    let detail = tokio::task::spawn_blocking(move || store.run(id)).await??.ok_or(RunError::NotFound(id))?;
    Ok(Json(detail).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LogParams {
    /// Lines numbered above this (as `Last-Event-ID`).
    after: Option<u64>,
}

/// `GET /api/v1/runs/{id}/logs`: with `Accept: text/event-stream`, Server-Sent Events — every
/// line so far, then lines as they are written, then an `end` event with the run's state; each
/// line's id is its number, so `Last-Event-ID` resumes. Otherwise the lines so far as NDJSON.
pub async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let store = state.app.store.clone();
    tokio::task::spawn_blocking(move || store.run(id)).await??.ok_or(RunError::NotFound(id))?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let after = resume.or(params.after).unwrap_or(0);
    let wants_events = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    let path = state.app.runs.log_path(id);
    if !wants_events {
        let lines =
            tokio::task::spawn_blocking(move || logs::read_after(&path, after)).await?.map_err(ApiError::internal)?;
        let mut body = String::new();
        for line in lines {
            body.push_str(&serde_json::to_string(&line).unwrap_or_default());
            body.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    let (sender, receiver) = mpsc::channel::<Event>(256);
    tokio::spawn(follow(state, id, after, sender));
    let events = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// Feeds one SSE client: the stored lines after `after`, then live lines, re-reading the file
/// whenever the live feed skipped some (a slow client) and once more after the run ended.
async fn follow(state: AppState, id: i64, mut after: u64, events: mpsc::Sender<Event>) {
    let path = state.app.runs.log_path(id);
    // Subscribe before reading the file, so no line falls between the two.
    let mut live = state.app.runs.subscribe(id);
    loop {
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || logs::read_after(&path, after)).await
        };
        for line in read.ok().and_then(Result::ok).unwrap_or_default() {
            after = line.seq;
            if events.send(line_event(&line)).await.is_err() {
                return;
            }
        }
        let Some(receiver) = &mut live else { break };
        match receiver.recv().await {
            Ok(line) => {
                if line.seq > after {
                    after = line.seq;
                    if events.send(line_event(&line)).await.is_err() {
                        return;
                    }
                }
                // Drain what is already there without touching the file.
                loop {
                    match receiver.try_recv() {
                        Ok(line) if line.seq > after => {
                            after = line.seq;
                            if events.send(line_event(&line)).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => break,
                    }
                }
            }
            // Fell behind: the file has every line; read it again.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            // The run ended: read the file's tail once more, then stop.
            Err(broadcast::error::RecvError::Closed) => live = None,
        }
    }
    let store = state.app.store.clone();
    let run_state = tokio::task::spawn_blocking(move || store.run(id))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .map(|d| d.record.state.as_str())
        .unwrap_or("unknown");
    let _ = events.send(Event::default().event("end").data(json!({ "state": run_state }).to_string())).await;
}

fn line_event(line: &RunLogLine) -> Event {
    Event::default().id(line.seq.to_string()).data(serde_json::to_string(line).unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
pub struct CancelRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/runs/{id}/cancel` (`run` scope).
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Option<Json<CancelRequest>>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Run).await?;
    let reason = body.and_then(|b| b.0.reason).unwrap_or_else(|| "cancelled by request".to_owned());
    let runner = state.app.runs.clone();
    tokio::task::spawn_blocking(move || runner.cancel(id, &reason)).await??;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "cancelling": true }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RerunParams {
    #[serde(default)]
    failed: bool,
}

/// `POST /api/v1/runs/{id}/rerun[?failed=true]` (`run` scope): a new attempt, all jobs or the
/// failed ones.
pub async fn rerun(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(params): Query<RerunParams>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Run).await?;
    let new = state.app.runs.rerun(id, params.failed).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": new, "rerun_of": id }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PollParams {
    repository: Option<String>,
}

/// `POST /api/v1/poll[?repository=owner/name]` (`run` scope): look at the repository's (or
/// every repository's) branches now. This is what the installed git hooks call; it carries no
/// data, since the server reads the branches itself.
pub async fn poll(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<PollParams>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Run).await?;
    let queued = match params.repository {
        Some(name) => state.app.runs.poll(&name).await?,
        None => {
            state.app.runs.poll_all().await;
            Vec::new()
        }
    };
    Ok(Json(json!({ "queued": queued })).into_response())
}
