//! Who is calling: the bearer token of a request, checked against the scope an endpoint needs.

use axum::http::HeaderMap;
use mobius_app::tokens::hash;
use mobius_store::{Store, TokenRecord, TokenScope};

use crate::error::ApiError;

/// Checks the request's bearer token against the scope an endpoint needs.
pub fn require(store: &dyn Store, headers: &HeaderMap, needed: TokenScope) -> Result<TokenRecord, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("this endpoint needs `Authorization: Bearer <token>`"))?;
    let secret = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    let token = store.token_by_secret_hash(&hash(secret))?.ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    if !token.scope.allows(needed) {
        return Err(ApiError::forbidden(format!(
            "this endpoint needs a `{}` token; this one is `{}`",
            needed.as_str(),
            token.scope.as_str()
        )));
    }
    Ok(token)
}
