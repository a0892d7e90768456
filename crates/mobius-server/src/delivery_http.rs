//! The deployments API: deploy and change rollouts with a `deploy` token, read them with
//! `read`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mobius_store::TokenScope;
use serde::Deserialize;

use crate::AppState;
use crate::api::{authorize, authorize_read};
use crate::error::ApiError;
use crate::extract::Query;
use mobius_delivery::{DeployError, DeployRequest};

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> ApiError {
        match e {
            DeployError::BadRequest(m) => ApiError::bad_request(m),
            DeployError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            DeployError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            DeployError::Internal(m) => ApiError::internal(std::io::Error::other(m)),
            DeployError::Store(e) => ApiError::internal(e),
        }
    }
}

/// `POST /api/v1/deployments` (`deploy`): starts a rollout; answers with it (201).
pub async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::Json(request): crate::extract::Json<DeployRequest>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Deploy).await?;
    let stored = state.app.delivery.deploy(request).await?;
    Ok((StatusCode::CREATED, Json(stored.rollout)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    service: Option<String>,
    environment: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/rollouts?service=&environment=&limit=`: newest first.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let deployer = state.app.delivery.clone();
    let list = tokio::task::spawn_blocking(move || {
        deployer.list(params.service.as_deref(), params.environment.as_deref(), params.limit.unwrap_or(20).min(500))
    })
    .await??;
    let rollouts: Vec<_> = list.into_iter().map(|s| s.rollout).collect();
    Ok(Json(rollouts).into_response())
}

/// `GET /api/v1/rollouts/{service}/{environment}`: the latest rollout.
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let deployer = state.app.delivery.clone();
    let (s, e) = (service.clone(), environment.clone());
    let stored = tokio::task::spawn_blocking(move || deployer.status(&s, &e)).await??;
    let stored =
        stored.ok_or_else(|| DeployError::NotFound(format!("{service} was never deployed to {environment}")))?;
    Ok(Json(stored.rollout).into_response())
}

/// `POST /api/v1/rollouts/{service}/{environment}/{promote|abort|undo}` (`deploy`).
pub async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((service, environment, verb)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Deploy).await?;
    let stored = match verb.as_str() {
        "promote" => state.app.delivery.promote(&service, &environment).await?,
        "abort" => state.app.delivery.abort(&service, &environment).await?,
        "undo" => state.app.delivery.undo(&service, &environment).await?,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("`{other}` is not a rollout action (promote, abort, undo)"),
            ));
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
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((service, environment)): Path<(String, String)>,
    crate::extract::Json(request): crate::extract::Json<InjectRequest>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Deploy).await?;
    let faults = state.app.delivery.inject(&service, &environment, request.fault, request.counted).await?;
    Ok((StatusCode::CREATED, Json(faults)).into_response())
}

/// `DELETE /api/v1/chaos/{service}/{environment}` (`deploy`): remove every fault.
pub async fn clear(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((service, environment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Deploy).await?;
    state.app.delivery.clear_faults(&service, &environment).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/chaos`: the active faults of every environment.
pub async fn faults(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let list: Vec<serde_json::Value> = state
        .app
        .delivery
        .faults()
        .await
        .into_iter()
        .map(|(service, environment, faults)| serde_json::json!({ "service": service, "environment": environment, "faults": faults }))
        .collect();
    Ok(Json(list).into_response())
}
