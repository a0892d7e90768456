//! Who is calling, decided before anything else is read.
//!
//! A handler's first argument is a [`Caller`] of the scope it needs (`Caller<Ingest>`, …): the
//! extractor reads only the `Authorization` header, looks the bearer token up, and rejects with
//! 401 or 403 before any path, query string or body is parsed — so an unauthenticated client
//! learns nothing about what a valid request looks like. Reads pass without a token when the
//! server runs with `--public-read`; `/metrics` with `public_metrics`. A restricted token (a
//! job's `MOBIUS_TOKEN`) is refused everything but the run endpoints of its own repository.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use mobius_app::tokens::{Asked, restriction_permits};
use mobius_store::{TokenRecord, TokenRestriction, TokenScope};

use crate::AppState;
use crate::error::ApiError;

/// A scope an endpoint needs, as a type.
pub trait Needs: Send + Sync + 'static {
    const SCOPE: TokenScope;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $name:ident => $scope:ident,)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl Needs for $name {
            const SCOPE: TokenScope = TokenScope::$scope;
        }
    )*};
}

scopes! {
    /// Queries: any token (or none, with `--public-read`).
    Read => Read,
    /// Appending events.
    Ingest => Ingest,
    /// Deployments, rollouts, chaos faults, uploads.
    Deploy => Deploy,
    /// Triggering, cancelling and re-running pipelines.
    Run => Run,
    /// Tokens, recorded webhook deliveries.
    Admin => Admin,
    /// `/metrics`: a `metrics` token (or any reading one; none with `public_metrics`).
    Scrape => Metrics,
    /// The agent protocol: an `agent` token (or an admin's).
    Agent => Agent,
}

/// The caller of a request that needs `N`: its token, or none when the endpoint is public.
#[derive(Debug)]
pub struct Caller<N> {
    pub token: Option<TokenRecord>,
    needs: PhantomData<N>,
}

impl<N: Needs> FromRequestParts<AppState> for Caller<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let public = match N::SCOPE {
            TokenScope::Read => state.config.public_read,
            TokenScope::Metrics => state.config.public_read || state.config.public_metrics,
            _ => false,
        };
        let secret = match bearer(parts)? {
            Some(secret) => secret,
            None if public => return Ok(Caller { token: None, needs: PhantomData }),
            None => return Err(ApiError::unauthorized("this endpoint needs `Authorization: Bearer <token>`")),
        };
        let store = state.app.store.clone();
        let token = mobius_log::blocking::spawn(move || mobius_app::tokens::authenticate(store.as_ref(), &secret))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        if !token.scope.allows(N::SCOPE) {
            return Err(ApiError::forbidden(format!(
                "this endpoint needs a `{}` token; this one is `{}`",
                N::SCOPE.as_str(),
                token.scope.as_str()
            )));
        }
        if let Some(restriction) = &token.restriction {
            within_restriction(parts, state, restriction).await?;
        }
        Ok(Caller { token: Some(token), needs: PhantomData })
    }
}

/// Refuses a restricted token (a job's run token) anything but the run endpoints of its own
/// repository (see `mobius_app::tokens::restriction_permits`). For a route about one run, the
/// run's repository is read first, from the id in the path.
async fn within_restriction(parts: &Parts, state: &AppState, restriction: &TokenRestriction) -> Result<(), ApiError> {
    let route = parts.extensions.get::<MatchedPath>().map_or("", MatchedPath::as_str).to_owned();
    let run_repository = match route.starts_with("/api/v1/runs/{id}") {
        // `/api/v1/runs/<id>/…`: the fourth segment.
        true => match parts.uri.path().split('/').nth(4).and_then(|id| id.parse::<i64>().ok()) {
            Some(id) => {
                let store = state.app.store.clone();
                mobius_log::blocking::spawn(move || store.run(id)).await?.map(|detail| detail.record.run.repository)
            }
            None => None,
        },
        false => None,
    };
    let asked = Asked { method: parts.method.as_str(), route: &route, run_repository: run_repository.as_deref() };
    restriction_permits(restriction, asked).map_err(|refused| ApiError::forbidden(refused.to_string()))
}

/// The bearer token of the request, if it has an `Authorization` header; a malformed header is
/// refused rather than ignored.
fn bearer(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let secret = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    Ok(Some(secret.to_owned()))
}
