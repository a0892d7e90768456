//! GitOps (`mobius_gitops`): deploy repositories followed, their status, syncs and promotions.
//!
//! - `GET /api/v1/gitops` (`read`): every source with its status — revision, per service and
//!   environment the sync and health axes, and the last reconciliations.
//! - `POST /api/v1/gitops` (`admin`) `{"repository", "path"?, "revision"?, "self_heal"?,
//!   "prune"?, "allow_empty"?, "interval"?: "3m", "review"?: ["production"]}`: follow a
//!   registered repository (201); promotions to a `review` environment open a pull request.
//! - `DELETE /api/v1/gitops?repository=` (`admin`): stop following it; what runs stays.
//! - `POST /api/v1/gitops/sync` (`deploy`) `{"repository", "force"?}`: a pass now; `force`
//!   tries failed digests again and goes through sync windows.
//! - `POST /api/v1/promotions` (`deploy`) `{"service", "from", "to", "reason"?,
//!   "pull_request"?}`: the digest serving `from` committed into the file declaring `to` (201
//!   with the commit, the branch, the remote and, when it waits for review, the pull request).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mobius_gitops::promote::{PromoteError, Promotion};
use mobius_gitops::{GitOpsError, Source};
use serde::{Deserialize, Serialize};

use super::flags::actor;
use crate::AppState;
use crate::auth::{Admin, Caller, Deploy, Read};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Query};

#[derive(Serialize)]
struct Followed {
    #[serde(flatten)]
    source: Source,
    status: mobius_gitops::SourceStatus,
}

/// `GET /api/v1/gitops`.
pub async fn list(_: Caller<Read>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = state.app.gitops.status().await.map_err(gitops_error)?;
    let all: Vec<Followed> = all.into_iter().map(|(source, status)| Followed { source, status }).collect();
    Ok(Json(all).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    repository: String,
    #[serde(default)]
    path: String,
    revision: Option<String>,
    #[serde(default)]
    self_heal: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    allow_empty: bool,
    /// `3m`, `90s`, `1h`.
    interval: Option<String>,
    /// Environments whose promotions open a pull request.
    #[serde(default)]
    review: Vec<String>,
}

/// `POST /api/v1/gitops`: 201 with the source.
pub async fn add(
    _: Caller<Admin>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AddBody>,
) -> Result<Response, ApiError> {
    let interval_s = match &body.interval {
        Some(text) => mobius_gitops::desired::parse_duration(text)
            .ok_or_else(|| ApiError::bad_request(format!("`interval` must be a duration such as 3m, not `{text}`")))?
            .as_secs(),
        None => mobius_gitops::DEFAULT_INTERVAL.as_secs(),
    };
    let source = Source {
        repository: body.repository,
        path: body.path,
        revision: body.revision.unwrap_or_else(|| "HEAD".to_owned()),
        self_heal: body.self_heal,
        prune: body.prune,
        allow_empty: body.allow_empty,
        interval_s,
        review: body.review,
    };
    let added = state.app.gitops.add(source).await.map_err(gitops_error)?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryParams {
    repository: String,
}

/// `DELETE /api/v1/gitops?repository=`.
pub async fn remove(
    _: Caller<Admin>,
    State(state): State<AppState>,
    Query(params): Query<RepositoryParams>,
) -> Result<Response, ApiError> {
    state.app.gitops.remove(&params.repository).await.map_err(gitops_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    repository: String,
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/gitops/sync`: the source's status after the pass.
pub async fn sync(
    _: Caller<Deploy>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SyncBody>,
) -> Result<Response, ApiError> {
    let status = state.app.gitops.sync(&body.repository, body.force).await.map_err(gitops_error)?;
    Ok(Json(status).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    service: String,
    from: String,
    to: String,
    reason: Option<String>,
    /// A branch and pull request even when `to` does not require review.
    #[serde(default)]
    pull_request: bool,
}

/// `POST /api/v1/promotions`: 201 with the commit.
pub async fn promote(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PromoteBody>,
) -> Result<Response, ApiError> {
    let actor = actor(&caller, &headers, body.reason)?;
    let promotion = Promotion {
        service: body.service,
        from: body.from,
        to: body.to,
        by: actor.by,
        reason: actor.reason,
        pull_request: body.pull_request,
    };
    let promoted = state.app.gitops.promote(promotion).await.map_err(gitops_error)?;
    Ok((StatusCode::CREATED, Json(promoted)).into_response())
}

/// The one place a GitOps refusal gets its status.
fn gitops_error(error: GitOpsError) -> ApiError {
    use GitOpsError as G;
    match error {
        G::UnknownRepository { .. } | G::NotASource { .. } => ApiError::not_found(error.to_string()),
        G::Invalid { .. } | G::Desired(_) | G::FlagFile(_) => ApiError::bad_request(error.to_string()),
        G::Promote(PromoteError::NoSource { .. } | PromoteError::NothingServing { .. }) => {
            ApiError::not_found(error.to_string())
        }
        G::Promote(PromoteError::CannotEdit { .. }) => ApiError::bad_request(error.to_string()),
        // The forge refused the pull request or could not be reached.
        G::Promote(PromoteError::Forge { .. }) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "forge_failed", error.to_string())
        }
        G::Promote(PromoteError::Secrets { .. }) => ApiError::internal(error),
        G::Promote(_) | G::Contended => ApiError::conflict(error.to_string()),
        // A branch that moved under the promotion's commit, or a repository git cannot read.
        G::Git(_) => ApiError::conflict(error.to_string()),
        G::Deploy(deploy) => deploy.into(),
        G::Store(store) => ApiError::store(store),
        G::Corrupt(_) => ApiError::internal(error),
    }
}
