//! The secrets API (admin): names and scopes listed, values write-only.
//!
//! `GET /api/v1/secrets[?repository=owner/name]`, `PUT` and `DELETE
//! /api/v1/secrets/{owner}/{repo}/{name}[?environment=E]` with `{"value": "…"}`. A value is
//! never returned, logged or put in an error; every change is an event (who, what, where).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mobius_secrets::{SecretError, Secrets};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path, Query};

/// The largest secret value (GitHub's limit is 48 KB).
const MAX_VALUE_BYTES: usize = 48 * 1024;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    repository: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ScopeParams {
    environment: Option<String>,
}

/// The body of `PUT`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewValue {
    value: String,
}

/// `GET /api/v1/secrets`: name, repository, environment, when and by whom; never values.
pub async fn list(
    _: Caller<Admin>,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let secrets = secrets(&state)?;
    let listed = mobius_log::blocking::spawn(move || secrets.list(params.repository.as_deref())).await;
    Ok(Json(listed.map_err(secret_error)?).into_response())
}

/// `PUT /api/v1/secrets/{owner}/{repo}/{name}`: sets the value (`204`).
pub async fn put(
    caller: Caller<Admin>,
    State(state): State<AppState>,
    Path((owner, repo, name)): Path<(String, String, String)>,
    Query(scope): Query<ScopeParams>,
    JsonBody(body): JsonBody<NewValue>,
) -> Result<Response, ApiError> {
    if body.value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::too_large(format!("a secret's value is at most {MAX_VALUE_BYTES} bytes")));
    }
    let secrets = secrets(&state)?;
    let who = who(&caller);
    let log = state.app.log.clone();
    let repository = format!("{owner}/{repo}");
    let environment = scope.environment.unwrap_or_default();
    mobius_log::blocking::spawn(move || -> Result<(), ApiError> {
        let event = mobius_app::secrets::set(&secrets, &repository, &environment, &name, &body.value, &who)
            .map_err(secret_error)?;
        log.append(&event.into_iter().collect::<Vec<_>>())?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/v1/secrets/{owner}/{repo}/{name}`: `204`, or `404` when there is none.
pub async fn delete(
    caller: Caller<Admin>,
    State(state): State<AppState>,
    Path((owner, repo, name)): Path<(String, String, String)>,
    Query(scope): Query<ScopeParams>,
) -> Result<Response, ApiError> {
    let secrets = secrets(&state)?;
    let who = who(&caller);
    let log = state.app.log.clone();
    let repository = format!("{owner}/{repo}");
    let environment = scope.environment.unwrap_or_default();
    mobius_log::blocking::spawn(move || -> Result<(), ApiError> {
        match mobius_app::secrets::remove(&secrets, &repository, &environment, &name, &who).map_err(secret_error)? {
            None => Err(ApiError::not_found(format!("no secret {name} in {repository}"))),
            Some(event) => {
                log.append(&event.into_iter().collect::<Vec<_>>())?;
                Ok(())
            }
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn secrets(state: &AppState) -> Result<Secrets, ApiError> {
    state.app.config().secrets.clone().ok_or_else(|| ApiError::not_found("this server keeps no secrets"))
}

/// Who a change is recorded as: the token's name and id.
fn who(caller: &Caller<Admin>) -> String {
    caller.token.as_ref().map_or_else(|| "anonymous".to_owned(), |t| format!("{} ({})", t.name, t.id))
}

/// Bad names and empty values are the client's; the rest the server's.
fn secret_error(error: SecretError) -> ApiError {
    match error {
        SecretError::BadName(_) | SecretError::Empty(_) => ApiError::bad_request(error.to_string()),
        other => ApiError::internal(other),
    }
}
