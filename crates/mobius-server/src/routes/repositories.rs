//! The repositories API (admin): remotes registered, listed, shown and removed — the same
//! operations as `mobius repo add URL|list|show|remove` on a data directory.
//!
//! `POST /api/v1/repositories` with `{"url", "name"?, "credentials"?}` mirrors the remote (off
//! the async runtime: a clone takes as long as the remote takes) and answers `201` with the
//! registration; `GET /api/v1/repositories` lists them; `GET` and `DELETE
//! /api/v1/repositories/{name}` (the name's `/` kept) show one or remove it with its mirror.
//! `credentials` is the name of a repository secret; a URL carrying credentials is refused.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mobius_app::repositories::{self, NewRemote};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path};

/// The body of `POST`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    url: String,
    name: Option<String>,
    credentials: Option<String>,
}

/// `POST /api/v1/repositories`: mirrors and registers a remote (`201`).
pub async fn add(
    _: Caller<Admin>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AddRequest>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let config = state.app.config();
    let (secrets, data_dir) = (config.secrets.clone(), config.data_dir.clone());
    let new = NewRemote { url: body.url, name: body.name, credentials: body.credentials };
    let registered =
        mobius_log::blocking::spawn(move || repositories::add_remote(store.as_ref(), secrets.as_ref(), &data_dir, new))
            .await?;
    Ok((StatusCode::CREATED, Json(registered)).into_response())
}

/// `GET /api/v1/repositories`: every registered repository (name, path, credentials' name).
pub async fn list(_: Caller<Admin>, State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let listed = mobius_log::blocking::spawn(move || store.repositories()).await?;
    Ok(Json(listed).into_response())
}

/// `GET /api/v1/repositories/{name}`: one repository with its branches and secrets' names.
pub async fn show(
    _: Caller<Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let config = state.app.config();
    let (secrets, data_dir) = (config.secrets.clone(), config.data_dir.clone());
    let shown =
        mobius_log::blocking::spawn(move || repositories::show(store.as_ref(), secrets.as_ref(), &data_dir, &name))
            .await?;
    Ok(Json(shown).into_response())
}

/// `DELETE /api/v1/repositories/{name}`: unregistered and its mirror deleted (`204`); its runs
/// stay.
pub async fn remove(
    _: Caller<Admin>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let data_dir = state.app.config().data_dir.clone();
    mobius_log::blocking::spawn(move || repositories::remove(store.as_ref(), &data_dir, &name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
