//! Flag rollouts (`mobius_features::rollout`): read with `read`, started and stopped with
//! `deploy`, as the flag changes they make are.
//!
//! - `GET /api/v1/flag-rollouts`: every rollout kept, active or finished.
//! - `GET /api/v1/flags/{set}/flags/{flag}/rollout`: one flag's rollout (404 without one).
//! - `POST /api/v1/flags/{set}/flags/{flag}/rollout` with `{"variant": "on", "to": 50,
//!   "step": 10, "every": "10m", "service": "shop", "reason": "hotfix"?}`: starts it (201); 409
//!   `budget_exhausted` with the policy's message under a frozen error budget, 409 when the
//!   flag is in a rollout already or has targeting of its own, 400 for a bad plan.
//! - `POST …/rollout/pause`, `…/resume`, `…/abort` (`?reason=`): 200 with the rollout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mobius_features::rollout::{RolloutError, Start};
use serde::Deserialize;

use super::flags::{ReasonParams, actor, flag_error};
use crate::AppState;
use crate::auth::{Caller, Deploy, Read};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path, Query};

/// `GET /api/v1/flag-rollouts`.
pub async fn list(_: Caller<Read>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = state.app.flag_rollouts.list().await.map_err(rollout_error)?;
    Ok(Json(all).into_response())
}

/// `GET /api/v1/flags/{set}/flags/{flag}/rollout`.
pub async fn show(
    _: Caller<Read>,
    State(state): State<AppState>,
    Path((set, flag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rollout = state.app.flag_rollouts.get(&set, &flag).await.map_err(rollout_error)?;
    Ok(Json(rollout).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    variant: String,
    to: u32,
    step: u32,
    /// A duration as `mobius.yaml` writes them: `30s`, `10m`, `1h`.
    every: String,
    service: String,
    reason: Option<String>,
}

/// `POST /api/v1/flags/{set}/flags/{flag}/rollout`: 201 with the rollout.
pub async fn start(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path((set, flag)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<Response, ApiError> {
    let every = parse_every(&body.every)?;
    let actor = actor(&caller, &headers, None)?;
    let start = Start {
        set,
        flag,
        variant: body.variant,
        service: body.service,
        to: body.to,
        step: body.step,
        every,
        reason: body.reason,
    };
    let rollout = state.app.flag_rollouts.start(start, actor).await.map_err(rollout_error)?;
    Ok((StatusCode::CREATED, Json(rollout)).into_response())
}

/// `POST /api/v1/flags/{set}/flags/{flag}/rollout/{action}`: pause, resume or abort.
pub async fn act(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path((set, flag, action)): Path<(String, String, String)>,
    Query(params): Query<ReasonParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rollouts = &state.app.flag_rollouts;
    let done = match action.as_str() {
        "pause" => rollouts.pause(&set, &flag).await,
        "resume" => rollouts.resume(&set, &flag).await,
        "abort" => rollouts.abort(&set, &flag, actor(&caller, &headers, params.reason)?).await,
        other => {
            return Err(ApiError::not_found(format!("a rollout can be paused, resumed or aborted, not `{other}`")));
        }
    };
    Ok(Json(done.map_err(rollout_error)?).into_response())
}

/// `30s`, `10m`, `2h` (what `--every` takes).
pub fn parse_every(text: &str) -> Result<std::time::Duration, ApiError> {
    mobius_features::rollout::parse_every(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The one place a rollout's refusal gets its status.
pub(super) fn rollout_error(error: RolloutError) -> ApiError {
    use RolloutError as R;
    match error {
        R::BadTarget { .. }
        | R::BadStep { .. }
        | R::BadEvery { .. }
        | R::BadEveryText { .. }
        | R::NoService
        | R::BadReason(_) => ApiError::bad_request(error.to_string()),
        R::AlreadyRolling { .. } | R::WrongPhase { .. } | R::Contended => ApiError::conflict(error.to_string()),
        R::NoRollout { .. } => ApiError::not_found(error.to_string()),
        R::BudgetExhausted { .. } => ApiError::new(StatusCode::CONFLICT, "budget_exhausted", error.to_string()),
        R::Flag(flag) => flag_error(flag),
        R::Store(store) => ApiError::store(store),
        R::Health(_) | R::Corrupt(_) => ApiError::internal(error),
    }
}
