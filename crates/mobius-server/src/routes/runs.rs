//! The runs API: list and show runs, stream their logs (SSE, resumable), cancel, re-run, and
//! the notification a repository's git hook sends.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use mobius_store::{RunQuery, RunState};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::{Caller, Deploy, Read, Run};
use crate::error::ApiError;
use crate::extract::{Body, Json as JsonBody, Path, Query};
use crate::page;
use mobius_runs::RunError;
use mobius_runs::logs::{self, RunLogLine};

#[derive(Debug, Deserialize)]
pub struct ListParams {
    repository: Option<String>,
    state: Option<String>,
    /// Only runs of this branch (without `refs/heads/`).
    branch: Option<String>,
    /// Runs older than this one (the `Link: rel="next"` of a page gives it).
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/runs[?repository=&state=&branch=]`: newest first.
pub async fn list(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let run_state = params
        .state
        .as_deref()
        .map(|s| RunState::parse(s).ok_or_else(|| ApiError::bad_request(format!("`state`: unknown state `{s}`"))))
        .transpose()?;
    let limit = page::limit(params.limit, 50);
    let query = RunQuery {
        repository: params.repository,
        state: run_state,
        branch: params.branch,
        before: params.before,
        limit: limit + 1,
    };
    let store = state.app.store.clone();
    let runs = mobius_log::blocking::spawn(move || store.runs(&query)).await?;
    page::of_cursor(&uri, runs, limit, |run| ("before", run.id.to_string()))
}

/// The body of `POST /api/v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    repository: String,
    /// File path, file name or `name:`.
    workflow: String,
    /// Branch, tag or commit; the repository's default branch when absent.
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    /// Input values as strings, as GitHub's API takes them.
    #[serde(default)]
    inputs: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `POST /api/v1/runs` (`run` scope): a manual run (`workflow_dispatch`); `201` with its id.
pub async fn start(
    caller: Caller<Run>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<Response, ApiError> {
    let inputs = request
        .inputs
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    // A job's run token starts runs of its own repository only.
    if let Some(token) = &caller.token {
        mobius_app::tokens::permits_repository(token, &request.repository)
            .map_err(|refused| ApiError::forbidden(refused.to_string()))?;
    }
    let actor = caller.token.as_ref().map_or_else(|| "mobius".to_owned(), |t| t.name.clone());
    let git_ref = request.git_ref.unwrap_or_else(|| "HEAD".to_owned());
    let dispatch =
        mobius_runs::Dispatch { repository: request.repository, workflow: request.workflow, git_ref, inputs, actor };
    let id = state.app.runs.dispatch(dispatch).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `GET /api/v1/runs/{id}`: the run with its jobs and steps.
pub async fn show(_: Caller<Read>, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let detail = mobius_log::blocking::spawn(move || store.run(id)).await?.ok_or(RunError::NotFound(id))?;
    Ok(Json(detail).into_response())
}

/// `GET /api/v1/artifacts/{digest}/provenance`: the in-toto statement (SLSA provenance v1)
/// recorded when a run uploaded the artifact `sha256:<hex>`; 404 when none was.
pub async fn provenance(
    _: Caller<Read>,
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!("`{digest}` is not an artifact digest (sha256: and 64 hex digits)")));
    }
    let store = state.app.store.clone();
    let lookup = digest.clone();
    let statement = mobius_log::blocking::spawn(move || mobius_runs::provenance::of(store.as_ref(), &lookup)).await?;
    match statement {
        Some(statement) => Ok(Json(statement).into_response()),
        None => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no provenance is recorded for {digest}")))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LogParams {
    /// Lines numbered above this (as `Last-Event-ID`).
    after: Option<u64>,
    /// At most this many lines (NDJSON; 10,000 at most, and at most 4 MiB).
    limit: Option<u32>,
}

/// `GET /api/v1/runs/{id}/logs`: with `Accept: text/event-stream`, Server-Sent Events — every
/// line so far, then lines as they are written, then an `end` event with the run's state; each
/// line's id is its number, so `Last-Event-ID` resumes. Otherwise the lines so far as NDJSON.
pub async fn logs(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    mobius_log::blocking::spawn(move || store.run(id)).await?.ok_or(RunError::NotFound(id))?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let after = resume.or(params.after).unwrap_or(0);
    let wants_events = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    let path = state.app.runs.log_path(id);
    if !wants_events {
        let lines =
            mobius_log::blocking::spawn(move || logs::read_after(&path, after)).await.map_err(ApiError::internal)?;
        return ndjson_page(&uri, &lines, params.limit.unwrap_or(MAX_LOG_LINES).clamp(1, MAX_LOG_LINES));
    }
    let (sender, receiver) = mpsc::channel::<Event>(256);
    tokio::spawn(follow(state, id, after, sender));
    let events = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// The most log lines one NDJSON answer holds.
const MAX_LOG_LINES: u32 = 10_000;

/// A page of log lines as NDJSON: at most `limit` lines and the page byte budget, the next
/// page in a `Link: rel="next"` header (`after` the last line shown).
fn ndjson_page(uri: &Uri, lines: &[RunLogLine], limit: u32) -> Result<Response, ApiError> {
    let mut body = String::new();
    let mut last = None;
    for line in lines.iter().take(limit as usize) {
        let encoded = serde_json::to_string(line).map_err(ApiError::internal)?;
        if last.is_some() && body.len() + encoded.len() + 1 > page::MAX_PAGE_BYTES {
            break;
        }
        body.push_str(&encoded);
        body.push('\n');
        last = Some(line.seq);
    }
    let mut response = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    let shown = last.map_or(0, |seq| lines.iter().take_while(|l| l.seq <= seq).count());
    if shown < lines.len()
        && let Some(seq) = last
        && let Some(link) = page::next_link(uri, "after", &seq.to_string())
    {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Feeds one SSE client: the stored lines after `after`, then live lines, re-reading the file
/// whenever the live feed skipped some (a slow client) and once more after the run ended.
async fn follow(state: AppState, id: i64, after: u64, events: mpsc::Sender<Event>) {
    let (lines, mut received) = mpsc::channel::<RunLogLine>(256);
    let runner = state.app.runs.clone();
    let following = tokio::spawn(async move { runner.follow(id, after, lines).await });
    while let Some(line) = received.recv().await {
        if events.send(line_event(&line)).await.is_err() {
            following.abort();
            return;
        }
    }
    let run_state = following.await.unwrap_or(None).map_or("unknown", RunState::as_str);
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

/// `POST /api/v1/runs/{id}/cancel` (`run` scope), with an optional `{"reason"}`.
pub async fn cancel(
    _: Caller<Run>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: CancelRequest = if body.bytes.is_empty() {
        CancelRequest::default()
    } else {
        serde_json::from_slice(&body.bytes).map_err(|e| ApiError::bad_request(format!("the body: {e}")))?
    };
    let reason = request.reason.unwrap_or_else(|| "cancelled by request".to_owned());
    let runner = state.app.runs.clone();
    mobius_log::blocking::spawn(move || runner.cancel(id, &reason)).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "cancelling": true }))).into_response())
}

/// The body of a review (`approve`, `reject`); optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    comment: Option<String>,
}

/// The longest review comment kept.
const MAX_COMMENT_CHARS: usize = 1000;

/// `POST /api/v1/runs/{id}/jobs/{job}/approve` (`deploy` scope): lets a job waiting for its
/// environment's review go on. The token's name must be among the environment's reviewers
/// when it lists them (`403` otherwise); `409` when the job is not waiting.
pub async fn approve(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path((id, job)): Path<(i64, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    review(caller, state, id, job, body, true).await
}

/// `POST /api/v1/runs/{id}/jobs/{job}/reject` (`deploy` scope): fails a job waiting for its
/// environment's review, and so its run; the same rules as approving.
pub async fn reject(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path((id, job)): Path<(i64, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    review(caller, state, id, job, body, false).await
}

async fn review(
    caller: Caller<Deploy>,
    state: AppState,
    run: i64,
    job: String,
    body: Body,
    approve: bool,
) -> Result<Response, ApiError> {
    let request: ReviewRequest = if body.bytes.is_empty() {
        ReviewRequest::default()
    } else {
        serde_json::from_slice(&body.bytes).map_err(|e| ApiError::bad_request(format!("the body: {e}")))?
    };
    if request.comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(ApiError::bad_request(format!("a comment is at most {MAX_COMMENT_CHARS} characters")));
    }
    // Reviewers are named by their tokens' names; with `--public-read` and no token, nobody.
    let by = caller
        .token
        .as_ref()
        .map(|t| t.name.clone())
        .ok_or_else(|| ApiError::unauthorized("a review needs a token"))?;
    let review = mobius_runs::environments::Review { run, job, approve, by, comment: request.comment };
    let reviewed = state.app.runs.review(review).await?;
    Ok(Json(reviewed).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RerunParams {
    #[serde(default)]
    failed: bool,
}

/// `POST /api/v1/runs/{id}/rerun[?failed=true]` (`run` scope): a new attempt, all jobs or the
/// failed ones.
pub async fn rerun(
    _: Caller<Run>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<RerunParams>,
) -> Result<Response, ApiError> {
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
    _: Caller<Run>,
    State(state): State<AppState>,
    Query(params): Query<PollParams>,
) -> Result<Response, ApiError> {
    let queued = match params.repository {
        Some(name) => state.app.runs.poll(&name).await?,
        None => {
            state.app.runs.poll_all().await;
            Vec::new()
        }
    };
    Ok(Json(json!({ "queued": queued })).into_response())
}
