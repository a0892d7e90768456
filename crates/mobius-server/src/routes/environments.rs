//! The environments API (admin): protection rules of deployment environments, per repository.
//!
//! `GET /api/v1/environments[?repository=owner/name]`, `PUT` and `DELETE
//! /api/v1/environments/{owner}/{repo}/{env}`, the body of `PUT` being the rules
//! (`{"require_review": bool, "reviewers": [token names], "branches": [patterns]}`). Every
//! change is an event (who, what, the rules now).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mobius_app::environments::{EnvironmentError, Rules};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path, Query};

#[derive(Debug, Deserialize)]
pub struct ListParams {
    repository: Option<String>,
}

/// `GET /api/v1/environments`: every protected environment with its rules.
pub async fn list(
    _: Caller<Admin>,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let listed = mobius_log::blocking::spawn(move || store.environments(params.repository.as_deref())).await?;
    Ok(Json(listed).into_response())
}

/// `PUT /api/v1/environments/{owner}/{repo}/{env}`: replaces the rules; `200` with them.
pub async fn put(
    caller: Caller<Admin>,
    State(state): State<AppState>,
    Path((owner, repo, environment)): Path<(String, String, String)>,
    JsonBody(rules): JsonBody<Rules>,
) -> Result<Response, ApiError> {
    let (store, log, who) = (state.app.store.clone(), state.app.log.clone(), who(&caller));
    let repository = format!("{owner}/{repo}");
    let record = mobius_log::blocking::spawn(move || -> Result<_, ApiError> {
        let (record, event) = mobius_app::environments::protect(store.as_ref(), &repository, &environment, rules, &who)
            .map_err(environment_error)?;
        log.append(&event.into_iter().collect::<Vec<_>>())?;
        Ok(record)
    })
    .await?;
    Ok(Json(record).into_response())
}

/// `DELETE /api/v1/environments/{owner}/{repo}/{env}`: `204`, or `404` when it had no rules.
pub async fn delete(
    caller: Caller<Admin>,
    State(state): State<AppState>,
    Path((owner, repo, environment)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (store, log, who) = (state.app.store.clone(), state.app.log.clone(), who(&caller));
    let repository = format!("{owner}/{repo}");
    mobius_log::blocking::spawn(move || -> Result<(), ApiError> {
        let removed = mobius_app::environments::unprotect(store.as_ref(), &repository, &environment, &who)
            .map_err(environment_error)?;
        match removed {
            None => {
                Err(ApiError::not_found(format!("environment {environment} of {repository} has no protection rules")))
            }
            Some(event) => Ok(log.append(&event.into_iter().collect::<Vec<_>>()).map(drop)?),
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Who a change is recorded as: the token's name and id.
fn who(caller: &Caller<Admin>) -> String {
    caller.token.as_ref().map_or_else(|| "anonymous".to_owned(), |t| format!("{} ({})", t.name, t.id))
}

/// Invalid rules are the client's; the rest the server's.
fn environment_error(error: EnvironmentError) -> ApiError {
    match error {
        EnvironmentError::Invalid { .. } => ApiError::bad_request(error.to_string()),
        EnvironmentError::Store(store) => ApiError::internal(store),
    }
}
