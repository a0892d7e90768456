//! Request extractors whose refusals are [`ApiError`]s, so a malformed query string, path or
//! body gets the same `{"error": {"code", "message"}}` answer as every other refusal (naming
//! the field, and for JSON the line and column). They run after [`crate::auth::Caller`].
//!
//! [`Body`] reads a request body within the server's limits: a declared length over the
//! maximum is refused before a byte is read; the bytes are taken from the shared body budget
//! (waiting for it at most the body-read timeout, then 503); the read itself has that deadline
//! (then 408) and stops at the maximum (then 413). [`UnverifiedBody`] is the same for a sender
//! not yet known (a webhook, verified by a signature over the body), and also takes one of the
//! few unauthenticated-read slots.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::error::ApiError;

/// A query string, deserialised into `T`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), "bad_request", rejection.body_text())),
        }
    }
}

/// Path parameters, deserialised into `T`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text())),
        }
    }
}

/// A request body, read within the limits; it holds its share of the body budget while it
/// lives.
pub struct Body {
    pub bytes: Bytes,
    _budget: OwnedSemaphorePermit,
}

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read(request, state).await
    }
}

/// A body whose sender is not known yet (its signature is checked over it).
pub struct UnverifiedBody {
    pub body: Body,
    _slot: OwnedSemaphorePermit,
}

impl FromRequest<AppState> for UnverifiedBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limits = &state.gates.limits;
        // A short wait: a flood of unsigned bodies is turned away rather than queued.
        let slot =
            tokio::time::timeout(limits.header_read_timeout, state.gates.unauthenticated.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| ApiError::busy("too many unverified requests are being read; retry shortly"))?;
        Ok(UnverifiedBody { body: read(request, state).await?, _slot: slot })
    }
}

async fn read(request: Request, state: &AppState) -> Result<Body, ApiError> {
    let limits = &state.gates.limits;
    let max = limits.max_body_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let wanted = declared.map_or(max, |n| n as usize);
    let budget = take(&state.gates.body_budget, wanted, limits.body_read_timeout).await?;
    // Copied into one buffer as the frames arrive, not collected then copied: a body holds its
    // length in memory (plus a frame), as the budget counts it, never twice that.
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut body = request.into_body();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > max {
                    return Err(too_large(max));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(limits.body_read_timeout, read)
        .await
        .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the body took too long to arrive"))??;
    Ok(Body { bytes: Bytes::from(bytes), _budget: budget })
}

/// `bytes` of the body budget (in KiB permits), waiting at most `wait`.
async fn take(
    budget: &Arc<Semaphore>,
    bytes: usize,
    wait: std::time::Duration,
) -> Result<OwnedSemaphorePermit, ApiError> {
    let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    tokio::time::timeout(wait, budget.clone().acquire_many_owned(kib))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::busy("the server is reading as many request bodies as it holds; retry shortly"))
}

fn too_large(max: usize) -> ApiError {
    ApiError::too_large(format!("the body is over the {} MiB limit", max >> 20))
}

/// A JSON body, deserialised into `T`: 415 for another content type, 400 for JSON that does
/// not parse, 422 for JSON of the wrong shape, each naming the line and column or the field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected `Content-Type: application/json`",
            ));
        }
        let body = read(request, state).await?;
        match axum::Json::<T>::from_bytes(&body.bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), "bad_request", rejection.body_text())),
        }
    }
}

/// `application/json` or `application/*+json`, with any parameters.
fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}
