//! The flag sets API: read with `read`, change with `deploy` — a flag flip releases code to
//! users as a deploy does, so the tokens that may deploy may change flags, and no other.
//!
//! - `GET /api/v1/flags`: every set with its version, environment and number of flags.
//! - `GET /api/v1/flags/{set}`: the document as stored, `ETag: "<version>"`; 304 when
//!   `If-None-Match` names that version (weak or strong, a list, or `*`).
//! - `PUT /api/v1/flags/{set}[?environment=E&reason=R]`: the whole flagd document as the body
//!   (at most `mobius_features::MAX_DOCUMENT_BYTES`, else 413); `If-Match: "<version>"` refuses
//!   the change with 409 unless the set is at that version; the reason also as
//!   `X-Mobius-Reason`. 400 with `source:line:col: at /pointer: what` for a document that does
//!   not load (the set in force stays).
//! - `PUT /api/v1/flags/{set}/flags/{flag}/state` (`{"state": "ENABLED"|"DISABLED"}`) and
//!   `…/default` (`{"variant": "on"}`): one value changed in the stored document.
//! - `DELETE /api/v1/flags/{set}`: 204.
//!
//! Changes answer with the set's summary (`changed: false` when nothing changed, `warnings`
//! when the gate policies warned) and its new `ETag`. Every change is a `mobius-flag.changed`
//! event naming the token. A change to a set of an environment the server's gate policies
//! deny is 403 `policy_denied` with every deny message, and changes nothing.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mobius_features::plan::BlockOutcome;
use mobius_features::rollout::RolloutError;
use mobius_features::{Actor, FlagError, Loaded, Outcome, Put};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Caller, Deploy, Read};
use crate::error::ApiError;
use crate::extract::{Body, Json as JsonBody, Path, Query};
use crate::page;

/// A set as listed and as changes answer.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    set: &'a str,
    version: u64,
    environment: Option<&'a str>,
    flags: usize,
    updated: jiff::Timestamp,
    updated_by: &'a str,
}

fn summary(loaded: &Loaded) -> Summary<'_> {
    Summary {
        set: &loaded.name,
        version: loaded.version,
        environment: loaded.environment.as_deref(),
        flags: loaded.set.len(),
        updated: loaded.updated,
        updated_by: &loaded.updated_by,
    }
}

/// `GET /api/v1/flags`: every set in force, by name.
pub async fn list(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<page::OffsetParams>,
) -> Result<Response, ApiError> {
    let sets = state.app.flags.list();
    let listed: Vec<Summary<'_>> = sets.iter().map(|loaded| summary(loaded)).collect();
    page::of_whole(&uri, listed, params.offset, params.limit)
}

/// `GET /api/v1/flags/{set}`: the document, with its version as the `ETag`.
pub async fn show(
    _: Caller<Read>,
    State(state): State<AppState>,
    Path(set): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let loaded = state.app.flags.current(&set).ok_or_else(|| no_set(&set))?;
    let etag = etag(loaded.version);
    if none_match(&headers, loaded.version) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::ETAG, etag)],
        loaded.document.clone(),
    )
        .into_response();
    if let Some(environment) = loaded.environment.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        response.headers_mut().insert("x-mobius-environment", environment);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct PutParams {
    environment: Option<String>,
    reason: Option<String>,
}

/// `PUT /api/v1/flags/{set}`: the whole document.
pub async fn put(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path(set): Path<String>,
    Query(params): Query<PutParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let actor = actor(&caller, &headers, params.reason)?;
    let document = String::from_utf8(body.bytes.to_vec()).map_err(|e| {
        ApiError::bad_request(format!("the document is not UTF-8 (at byte {})", e.utf8_error().valid_up_to()))
    })?;
    let put = Put { set, document, environment: params.environment, expected, source_name: None };
    // Through the rollouts: a flag's `rollout` block starts its rollout, and a rollout's split
    // survives the new document.
    let loading = state.app.flag_rollouts.load(put, actor, None, None).await.map_err(|error| match error {
        RolloutError::Flag(flag) => flag_error(flag),
        other => super::flag_rollouts::rollout_error(other),
    })?;
    let rollouts = loading.rollouts.iter().map(|(flag, outcome)| BlockAnswer::of(flag, outcome)).collect();
    answer_with(Ok(loading.outcome), rollouts)
}

/// What a `rollout` block of a put document did, in the answer.
#[derive(Serialize)]
struct BlockAnswer {
    flag: String,
    /// `started`, `running`, `released` or `refused`.
    rollout: &'static str,
    /// The variant's share now, for a started or running one.
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl BlockAnswer {
    fn of(flag: &str, outcome: &BlockOutcome) -> BlockAnswer {
        let (rollout, weight, message) = match outcome {
            BlockOutcome::Started(r) => ("started", Some(r.weight), None),
            BlockOutcome::Running(r) => ("running", Some(r.weight), None),
            BlockOutcome::Released => ("released", None, None),
            BlockOutcome::Refused(why) => ("refused", None, Some(why.clone())),
        };
        BlockAnswer { flag: flag.to_owned(), rollout, weight, message }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateBody {
    state: FlagState,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum FlagState {
    Enabled,
    Disabled,
}

#[derive(Debug, Deserialize)]
pub struct ReasonParams {
    pub(super) reason: Option<String>,
}

/// `PUT /api/v1/flags/{set}/flags/{flag}/state`: turns the flag on or off.
pub async fn set_state(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path((set, flag)): Path<(String, String)>,
    Query(params): Query<ReasonParams>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<StateBody>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let actor = actor(&caller, &headers, params.reason)?;
    let enabled = matches!(body.state, FlagState::Enabled);
    answer(state.app.flags.set_state(&set, &flag, enabled, expected, actor).await)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultBody {
    variant: String,
}

/// `PUT /api/v1/flags/{set}/flags/{flag}/default`: makes a variant the flag's default.
pub async fn set_default(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path((set, flag)): Path<(String, String)>,
    Query(params): Query<ReasonParams>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<DefaultBody>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let actor = actor(&caller, &headers, params.reason)?;
    answer(state.app.flags.set_default(&set, &flag, &body.variant, expected, actor).await)
}

/// `DELETE /api/v1/flags/{set}`: 204.
pub async fn delete(
    caller: Caller<Deploy>,
    State(state): State<AppState>,
    Path(set): Path<String>,
    Query(params): Query<ReasonParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let actor = actor(&caller, &headers, params.reason)?;
    state.app.flags.delete(&set, expected, actor).await.map_err(flag_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A change's answer: the set's summary, whether it changed, its `ETag`.
fn answer(outcome: Result<Outcome, FlagError>) -> Result<Response, ApiError> {
    answer_with(outcome, Vec::new())
}

fn answer_with(outcome: Result<Outcome, FlagError>, rollouts: Vec<BlockAnswer>) -> Result<Response, ApiError> {
    let outcome = outcome.map_err(flag_error)?;
    let Some(loaded) = outcome.loaded else { return Ok(StatusCode::NO_CONTENT.into_response()) };
    #[derive(Serialize)]
    struct Changed<'a> {
        #[serde(flatten)]
        summary: Summary<'a>,
        changed: bool,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        rollouts: Vec<BlockAnswer>,
        /// What the gate policies warned about while allowing the change.
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        warnings: &'a [String],
    }
    let body = Changed { summary: summary(&loaded), changed: outcome.changed, rollouts, warnings: &outcome.warnings };
    Ok(([(header::ETAG, etag(loaded.version))], Json(body)).into_response())
}

/// Who changes the set (the token's name: what the event and the set record) and why.
pub(super) fn actor<N>(caller: &Caller<N>, headers: &HeaderMap, reason: Option<String>) -> Result<Actor, ApiError> {
    let header = match headers.get("x-mobius-reason") {
        Some(value) => {
            Some(value.to_str().map_err(|_| ApiError::bad_request("X-Mobius-Reason must be text"))?.trim().to_owned())
        }
        None => None,
    };
    let reason = reason.or(header).filter(|r| !r.is_empty());
    if let Some(reason) = &reason
        && (reason.len() > 1024 || reason.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request("the reason must be at most 1024 bytes of text without control characters"));
    }
    let by = caller.token.as_ref().map_or_else(|| "anonymous".to_owned(), |t| t.name.clone());
    Ok(Actor { by, reason })
}

/// The version `If-Match` requires: `"7"` (or `7`); `None` without the header or with `*`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let version = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    version.parse().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "If-Match must be the set's ETag (a version in quotes, such as \"3\"), not `{text}`"
        ))
    })
}

/// Whether `If-None-Match` names this version: `*`, or a list of tags compared weakly
/// (RFC 9110 §13.1.2).
fn none_match(headers: &HeaderMap, version: u64) -> bool {
    let wanted = format!("\"{version}\"");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == wanted))
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits in quotes are a header value")
}

fn no_set(set: &str) -> ApiError {
    ApiError::not_found(format!("there is no flag set `{set}`"))
}

/// The one place a flag set's refusal gets its status.
pub(super) fn flag_error(error: FlagError) -> ApiError {
    use FlagError as F;
    match error {
        F::BadName { .. }
        | F::BadEnvironment { .. }
        | F::Invalid(_)
        | F::NoVariant { .. }
        | F::NoDefault { .. }
        | F::VariantIsDefault { .. }
        | F::BadWeight { .. }
        | F::BadRollout { .. } => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", error.to_string()),
        F::TooLarge { .. } => ApiError::too_large(error.to_string()),
        F::PolicyDenied { .. } => ApiError::new(StatusCode::FORBIDDEN, "policy_denied", error.to_string()),
        F::NoSet { .. } | F::NoFlag { .. } => ApiError::not_found(error.to_string()),
        F::VersionConflict { .. } | F::OtherEnvironment { .. } | F::Contended { .. } | F::TargetingInUse { .. } => {
            ApiError::conflict(error.to_string())
        }
        F::Store(store) => ApiError::store(store),
        F::Event(_) => ApiError::internal(error),
    }
}
