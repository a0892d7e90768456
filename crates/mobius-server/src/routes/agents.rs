//! The agent protocol (`mobius agent`, with an `agent` token) and the list of agents.
//!
//! - `POST /api/v1/agent/jobs/request?wait=S` (the agent's [`Hello`]): 201 with a job, or 204
//!   after a long poll of up to 50 s. With `&max=N` (an agent's free slots, at most 32): 201
//!   with `{"jobs": [...]}`, up to N jobs claimed in one transaction.
//! - `PUT /api/v1/agent/jobs/{id}/renew` (the hello): 200 `{"cancel": bool}`, or 409 when the
//!   agent does not hold the job (it was lost, cancelled or finished).
//! - `POST /api/v1/agent/jobs/{id}/log?agent=ID&offset=N` (raw bytes of the job's progress): 200
//!   `{"length": n}`; 409 with `expected` when the chunk leaves a gap, or the job is not held.
//! - `PUT /api/v1/agent/jobs/{id}/finish?agent=ID` (the job's report): 204; 409 when not held.
//!   With `&offset=N` the body is `{"report": …, "log": "…"}`: the log's last chunk (a short
//!   job's whole log) at byte N, stored with the report in one transaction; 200
//!   `{"length": n}`, or 409 with `expected` for a gap (nothing stored).
//! - `GET /api/v1/agent/jobs/{id}/history?agent=ID`: the objects of the push range the job
//!   scans, a git pack; 404 when it has none.
//! - `GET /api/v1/agent/jobs/{id}/source?agent=ID`: the job's workspace as a tar; 404 when it
//!   has none.
//! - Artifacts and caches (`mobius_pipelines::store_sync`'s protocol), each `?agent=ID`:
//!   `GET …/{id}/records` (what the job may read), `GET …/{id}/blobs/{digest}` (only blobs
//!   those records name), `POST …/{id}/blobs/missing` (digests → the ones the server lacks),
//!   `PUT …/{id}/blobs/{digest}` (checked against its digest), `POST …/{id}/records` (what
//!   the job made, after their blobs; only its run's artifacts and its branch's caches).
//! - `GET /api/v1/agents` (any reading token): every agent, its labels, last contact and job.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mobius_pipelines::engine::JobReport;
use mobius_pipelines::store_sync::Record;
use mobius_runs::agents::{AgentError, Hello, bound};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Agent, Caller, Read};
use crate::error::ApiError;
use crate::extract::{Body, Json as JsonBody, Path, Query};

impl From<AgentError> for ApiError {
    fn from(error: AgentError) -> ApiError {
        match error {
            AgentError::NotHeld(_) => ApiError::conflict(error.to_string()),
            AgentError::Gap { expected, .. } => {
                let mut e = ApiError::conflict(error.to_string());
                e.code = "log_gap";
                e.message = format!("{}; expected offset {expected}", e.message);
                e
            }
            AgentError::LogTooLarge(_) => ApiError::too_large(error.to_string()),
            AgentError::BadHello | AgentError::BadReport(_) => ApiError::bad_request(error.to_string()),
            AgentError::Store(e) => ApiError::store(e),
            AgentError::Sync(_) => ApiError::bad_request(error.to_string()),
            AgentError::NoBlob(..) => ApiError::not_found(error.to_string()),
            AgentError::Payload(_) => ApiError::conflict(error.to_string()),
            AgentError::Files(e) => ApiError::internal(e),
        }
    }
}

fn token_of<N>(caller: &Caller<N>) -> Result<String, ApiError> {
    caller.token.as_ref().map(|t| t.id.clone()).ok_or_else(|| ApiError::unauthorized("agents need a token"))
}

#[derive(Debug, Deserialize)]
pub struct WaitParams {
    /// Seconds to wait for a job (at most 50).
    wait: Option<u64>,
    /// Up to how many jobs to claim at once; without it, one, answered as the job itself.
    max: Option<usize>,
}

/// `POST /api/v1/agent/jobs/request`.
pub async fn request(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Query(params): Query<WaitParams>,
    JsonBody(hello): JsonBody<Hello>,
) -> Result<Response, ApiError> {
    let token = token_of(&caller)?;
    let wait = Duration::from_secs(params.wait.unwrap_or(50));
    let mut claimed = state.app.agents.request(hello, &token, wait, params.max.unwrap_or(1)).await?;
    match (params.max, claimed.pop()) {
        (_, None) => Ok(StatusCode::NO_CONTENT.into_response()),
        (None, Some(one)) => Ok((StatusCode::CREATED, Json(one)).into_response()),
        (Some(_), Some(last)) => {
            claimed.push(last);
            Ok((StatusCode::CREATED, Json(json!({ "jobs": claimed }))).into_response())
        }
    }
}

/// `PUT /api/v1/agent/jobs/{id}/renew`.
pub async fn renew(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(hello): JsonBody<Hello>,
) -> Result<Response, ApiError> {
    let token = token_of(&caller)?;
    let cancel = state.app.agents.renew(id, hello, &token).await?;
    Ok(Json(json!({ "cancel": cancel })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LogParams {
    agent: String,
    offset: u64,
}

/// `POST /api/v1/agent/jobs/{id}/log?agent=ID&offset=N`.
pub async fn log(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<LogParams>,
    body: Body,
) -> Result<Response, ApiError> {
    match state
        .app
        .agents
        .append_log(id, &bound(&token_of(&caller)?, &params.agent), params.offset, body.bytes.to_vec())
        .await
    {
        Ok(length) => Ok(Json(json!({ "length": length })).into_response()),
        Err(AgentError::Gap { expected, .. }) => Ok(gap(id, expected)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct AgentParam {
    agent: String,
}

#[derive(Debug, Deserialize)]
pub struct FinishParams {
    agent: String,
    /// Where the log's last chunk in the body starts; without it the body is the report alone.
    offset: Option<u64>,
}

/// The body of a finish with `offset`: the report and the log's last chunk.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishWithLog {
    report: JobReport,
    log: String,
}

/// `PUT /api/v1/agent/jobs/{id}/finish?agent=ID[&offset=N]`.
pub async fn finish(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<FinishParams>,
    body: Body,
) -> Result<Response, ApiError> {
    let agent = bound(&token_of(&caller)?, &params.agent);
    let Some(offset) = params.offset else {
        let report: JobReport = serde_json::from_slice(&body.bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not a job report: {e}")))?;
        state.app.agents.finish(id, &agent, report).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let FinishWithLog { report, log } = serde_json::from_slice(&body.bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not {{\"report\": a job report, \"log\": text}}: {e}"))
    })?;
    match state.app.agents.finish_with_log(id, &agent, offset, log.into_bytes(), report).await {
        Ok(length) => Ok(Json(json!({ "length": length })).into_response()),
        Err(AgentError::Gap { expected, .. }) => Ok(gap(id, expected)),
        Err(e) => Err(e.into()),
    }
}

/// 409 with the offset to resend from.
fn gap(id: i64, expected: u64) -> Response {
    let body = json!({
        "error": "log_gap",
        "message": format!("job {id}: this chunk starts past the end of the log; resend from offset {expected}"),
        "expected": expected,
    });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

/// `GET /api/v1/agent/jobs/{id}/history?agent=ID`.
pub async fn history(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<AgentParam>,
) -> Result<Response, ApiError> {
    match state.app.agents.history(id, &bound(&token_of(&caller)?, &params.agent)).await? {
        Some(pack) => Ok(([(header::CONTENT_TYPE, "application/x-git-packed-objects")], pack).into_response()),
        None => Err(ApiError::not_found(format!("job {id} has no push range history"))),
    }
}

/// `GET /api/v1/agent/jobs/{id}/source?agent=ID`.
pub async fn source(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<AgentParam>,
) -> Result<Response, ApiError> {
    match state.app.agents.source(id, &bound(&token_of(&caller)?, &params.agent)).await? {
        Some(packed) => Ok(([(header::CONTENT_TYPE, "application/x-tar")], packed).into_response()),
        None => Err(ApiError::not_found(format!("job {id} has no workspace"))),
    }
}

/// `GET /api/v1/agent/jobs/{id}/records?agent=ID`: the artifact and cache records the job may
/// read.
pub async fn records(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<AgentParam>,
) -> Result<Response, ApiError> {
    Ok(Json(state.app.agents.records(id, &bound(&token_of(&caller)?, &params.agent)).await?).into_response())
}

/// `POST /api/v1/agent/jobs/{id}/records?agent=ID`: the records the job made, after their
/// blobs.
pub async fn put_records(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<AgentParam>,
    JsonBody(records): JsonBody<Vec<Record>>,
) -> Result<Response, ApiError> {
    state.app.agents.put_records(id, &bound(&token_of(&caller)?, &params.agent), records).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/agent/jobs/{id}/blobs/missing?agent=ID`: which of these digests the server
/// lacks.
pub async fn missing_blobs(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(params): Query<AgentParam>,
    JsonBody(digests): JsonBody<Vec<String>>,
) -> Result<Response, ApiError> {
    Ok(Json(state.app.agents.missing_blobs(id, &bound(&token_of(&caller)?, &params.agent), digests).await?)
        .into_response())
}

/// `GET /api/v1/agent/jobs/{id}/blobs/{digest}?agent=ID`.
pub async fn blob(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path((id, digest)): Path<(i64, String)>,
    Query(params): Query<AgentParam>,
) -> Result<Response, ApiError> {
    let bytes = state.app.agents.blob(id, &bound(&token_of(&caller)?, &params.agent), digest).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `PUT /api/v1/agent/jobs/{id}/blobs/{digest}?agent=ID`: refused unless the bytes hash to the
/// digest.
pub async fn put_blob(
    caller: Caller<Agent>,
    State(state): State<AppState>,
    Path((id, digest)): Path<(i64, String)>,
    Query(params): Query<AgentParam>,
    body: Body,
) -> Result<Response, ApiError> {
    state.app.agents.put_blob(id, &bound(&token_of(&caller)?, &params.agent), digest, body.bytes.to_vec()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/agents`.
pub async fn list(_: Caller<Read>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let agents = state.app.agents.list().await?;
    Ok(Json(json!({ "agents": agents })).into_response())
}
