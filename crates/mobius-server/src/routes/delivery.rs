//! The deployments API: upload a tree, deploy and change rollouts, inject faults with a
//! `deploy` token; read them with `read`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use mobius_delivery::DeployRequest;
use mobius_delivery::upload::Upload;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Caller, Deploy, Read};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path, Query};
use crate::page;

/// `POST /api/v1/deployments` (`deploy`): starts a rollout; answers with it (201).
pub async fn deploy(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    JsonBody(mut request): JsonBody<DeployRequest>,
) -> Result<Response, ApiError> {
    // What the release's flag set changes record as who made them.
    request.by = caller.token.map(|token| token.name);
    let stored = state.app.delivery.deploy(request).await?;
    Ok((StatusCode::CREATED, Json(stored.rollout)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    service: Option<String>,
    environment: Option<String>,
    /// Rollouts older than this one (the `Link: rel="next"` of a page gives it).
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/rollouts?service=&environment=&limit=`: newest first.
pub async fn list(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let deployer = state.app.delivery.clone();
    let limit = page::limit(params.limit, 20);
    let list = mobius_log::blocking::spawn(move || {
        deployer.list(params.service.as_deref(), params.environment.as_deref(), params.before, limit + 1)
    })
    .await?;
    let rollouts: Vec<_> = list.into_iter().map(|s| s.rollout).collect();
    page::of_cursor(&uri, rollouts, limit, |r| ("before", r.id.to_string()))
}

/// `PUT /api/v1/uploads/{digest}` (`deploy`): a tree packed by `mobius deploy --dir`, as a tar
/// whose SHA-256 is `digest`. Streamed to disk (up to 512 MiB), kept only if the digest
/// matches; a deployment then names it (`{"source": {"upload": "sha256:…"}}`).
pub async fn upload(
    _: Caller<Deploy>,
    State(state): State<AppState>,
    Path(digest): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let mut upload = Upload::begin(&state.app.config().data_dir, &digest).await?;
    let mut body = request.into_body();
    let deadline = tokio::time::Instant::now() + state.gates.limits.body_read_timeout * 10;
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the upload took too long"))?;
        match frame {
            None => break,
            Some(Ok(frame)) => {
                if let Some(chunk) = frame.data_ref() {
                    upload.write(chunk).await?;
                }
            }
            Some(Err(e)) => return Err(ApiError::bad_request(format!("cannot read the upload: {e}"))),
        }
    }
    upload.finish().await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "upload": digest }))).into_response())
}

/// `GET /api/v1/rollouts/{service}/{environment}`: the latest rollout.
pub async fn status(
    _: Caller<Read>,
    State(state): State<AppState>,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let deployer = state.app.delivery.clone();
    let (s, e) = (service.clone(), environment.clone());
    let stored = mobius_log::blocking::spawn(move || deployer.status(&s, &e)).await?;
    let stored = stored.ok_or_else(|| ApiError::not_found(format!("{service} was never deployed to {environment}")))?;
    Ok(Json(stored.rollout).into_response())
}

/// `POST /api/v1/rollouts/{service}/{environment}/{promote|abort|undo}` (`deploy`).
pub async fn change(
    _: Caller<Deploy>,
    State(state): State<AppState>,
    Path((service, environment, verb)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let stored = match verb.as_str() {
        "promote" => state.app.delivery.promote(&service, &environment).await?,
        "abort" => state.app.delivery.abort(&service, &environment).await?,
        "undo" => state.app.delivery.undo(&service, &environment).await?,
        other => {
            return Err(ApiError::not_found(format!("`{other}` is not a rollout action (promote, abort, undo)")));
        }
    };
    Ok(Json(stored.rollout).into_response())
}

#[derive(Debug, Deserialize)]
pub struct InjectRequest {
    fault: mobius_proxy::chaos::Fault,
    /// Count the injected failures in error budgets (default: a game day left out).
    #[serde(default)]
    counted: bool,
}

/// `POST /api/v1/chaos/{service}/{environment}` (`deploy`): inject a fault; answers with the
/// environment's faults.
pub async fn inject(
    _: Caller<Deploy>,
    State(state): State<AppState>,
    Path((service, environment)): Path<(String, String)>,
    JsonBody(request): JsonBody<InjectRequest>,
) -> Result<Response, ApiError> {
    let faults = state.app.delivery.inject(&service, &environment, request.fault, request.counted).await?;
    Ok((StatusCode::CREATED, Json(faults)).into_response())
}

/// `DELETE /api/v1/chaos/{service}/{environment}` (`deploy`): remove every fault.
pub async fn clear(
    _: Caller<Deploy>,
    State(state): State<AppState>,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.app.delivery.clear_faults(&service, &environment).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/chaos`: the active faults of every environment.
pub async fn faults(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<page::OffsetParams>,
) -> Result<Response, ApiError> {
    let list: Vec<serde_json::Value> = state
        .app
        .delivery
        .faults()
        .await
        .into_iter()
        .map(|(service, environment, faults)| serde_json::json!({ "service": service, "environment": environment, "faults": faults }))
        .collect();
    page::of_whole(&uri, list, params.offset, params.limit)
}
