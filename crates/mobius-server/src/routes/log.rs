//! The log's doors: events in (CDEvents over HTTP, GitHub and GitLab webhooks), the raw log
//! out, the measurements read from it (DORA, the value stream), and the tokens that guard it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mobius_events::cloudevents::{self, BindingError, Decoded};
use mobius_events::{Origin, Webhook, WebhookError, github, gitlab};
use mobius_log::ingest::{IngestReport, Status};
use mobius_log::query::{self, Selection};
use mobius_store::{EventQuery, TokenScope};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Admin, Caller, Ingest, Read};
use crate::error::ApiError;
use crate::extract::{Body, Json as JsonBody, Path, Query, UnverifiedBody};
use crate::page;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /api/v1/events`: CDEvents over the CloudEvents HTTP binding. Recorded webhook
/// deliveries (`{"webhook": …}` records, which nothing verified) need an `admin` token.
pub async fn post_events(
    caller: Caller<Ingest>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let decoded =
        cloudevents::decode(header(&headers, "content-type"), |name| header(&headers, name), &body.bytes, Origin::Api)
            .map_err(binding_error)?;
    let (items, single) = match decoded {
        Decoded::One(item) => (vec![item], true),
        Decoded::Batch(items) => (items, false),
    };
    let admin = caller.token.as_ref().is_some_and(|t| t.scope == TokenScope::Admin);
    if !admin && items.iter().any(|item| matches!(item, Ok(event) if event.origin == Origin::Import)) {
        return Err(ApiError::forbidden(
            "recorded webhook deliveries are not verified by a signature: appending them needs an `admin` token",
        ));
    }
    let ingestor = state.app.log.clone();
    let report = mobius_log::blocking::spawn(move || ingestor.ingest(items)).await?;
    drop(body);
    state.metrics.count_ingest("api", "stored", report.stored);
    state.metrics.count_ingest("api", "duplicate", report.duplicates);
    state.metrics.count_ingest("api", "rejected", report.rejected);
    let status = match (single, &report) {
        (true, r) if r.stored == 1 => StatusCode::CREATED,
        (_, r) if r.rejected > 0 && r.rejected == r.results.len() => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    Ok((status, Json(report)).into_response())
}

fn binding_error(e: BindingError) -> ApiError {
    match e {
        BindingError::ContentType(_) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", e.to_string())
        }
        BindingError::TooManyItems(_) => ApiError::too_large(e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// `POST /api/v1/webhooks/github`: verified (HMAC-SHA256 over the body) before it is parsed.
pub async fn post_github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: UnverifiedBody,
) -> Result<Response, ApiError> {
    let secret = configured(&state.config.github_webhook_secret, "GitHub")?;
    let raw = &body.body.bytes;
    github::verify_signature(secret.expose().as_bytes(), header(&headers, "x-hub-signature-256"), raw)
        .map_err(webhook_error)?;
    let event = header(&headers, "x-github-event")
        .ok_or_else(|| webhook_error(WebhookError::MissingHeader { header: "X-GitHub-Event" }))?;
    let translated = github::translate(event, header(&headers, "x-github-delivery"), raw).map_err(webhook_error)?;
    let delivery = mobius_runs::delivery::github(event, raw);
    // The runs start while the log stores the delivery: neither waits for the other.
    trigger(&state, delivery);
    store_webhook(&state, translated, "github").await
}

/// `POST /api/v1/webhooks/gitlab`: its `X-Gitlab-Token` checked before the body is parsed.
pub async fn post_gitlab(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: UnverifiedBody,
) -> Result<Response, ApiError> {
    let token = configured(&state.config.gitlab_webhook_token, "GitLab")?;
    gitlab::verify_token(token.expose(), header(&headers, "x-gitlab-token")).map_err(webhook_error)?;
    let kind = header(&headers, "x-gitlab-event");
    let translated = gitlab::translate(kind, &body.body.bytes).map_err(webhook_error)?;
    let delivery = mobius_runs::delivery::gitlab(kind, &body.body.bytes);
    // The runs start while the log stores the delivery: neither waits for the other.
    trigger(&state, delivery);
    store_webhook(&state, translated, "gitlab").await
}

/// A verified delivery for a registered repository triggers its runs, while the log records
/// it for DORA (the same delivery does both): a push polls the repository (fetching its mirror
/// first), a pull request or a release runs the workflows that listen for it. A repository
/// that is not registered triggers nothing.
fn trigger(state: &AppState, delivery: Option<mobius_runs::delivery::Delivery>) {
    use mobius_runs::delivery::Delivery;
    let Some(delivery) = delivery else { return };
    let runs = state.app.runs.clone();
    tokio::spawn(async move {
        let repository = delivery.repository().to_owned();
        let queued = match delivery {
            Delivery::Push { repository } => runs.poll(&repository).await,
            Delivery::PullRequest(pr) => runs.pull_request(*pr).await,
            Delivery::Release(release) => runs.release(*release).await,
        };
        match queued {
            Ok(queued) => tracing::info!(repository, runs = ?queued, "a webhook triggered the repository's runs"),
            Err(mobius_runs::RunError::UnknownRepository(_)) => {}
            Err(error) => tracing::warn!(repository, error = %error, "webhook: triggering runs failed"),
        }
    });
}

/// The secret a webhook source is verified with; without one its webhooks are refused.
fn configured<'a>(secret: &'a Option<crate::Secret>, source_name: &'static str) -> Result<&'a crate::Secret, ApiError> {
    secret.as_ref().ok_or_else(|| webhook_error(WebhookError::NotConfigured { source_name }))
}

fn webhook_error(e: WebhookError) -> ApiError {
    if e.is_unauthorized() { ApiError::unauthorized(e.to_string()) } else { ApiError::bad_request(e.to_string()) }
}

async fn store_webhook(state: &AppState, translated: Webhook, origin: &'static str) -> Result<Response, ApiError> {
    let event = match translated {
        Webhook::Ping => return Ok((StatusCode::OK, Json(json!({ "status": "pong" }))).into_response()),
        Webhook::Event(event) => event,
    };
    let has_facts = !event.observations.is_empty();
    let ingestor = state.app.log.clone();
    let report: IngestReport = mobius_log::blocking::spawn(move || ingestor.ingest(vec![Ok(event)])).await?;
    let result = &report.results[0];
    let status = match result.status {
        Status::Stored => "stored",
        Status::Duplicate => "duplicate",
        Status::Rejected => "rejected",
    };
    state.metrics.count_ingest(origin, status, 1);
    // "Accepted" says: kept in the log, but nothing in it became a fact.
    let code = if has_facts { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((code, Json(json!({ "status": status, "id": result.id, "facts": has_facts }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct MeasureParams {
    service: Option<String>,
    environment: Option<String>,
    since: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bands: Option<String>,
    #[serde(default)]
    explain: bool,
    /// Services to skip (a list of every service is paged).
    offset: Option<usize>,
    limit: Option<u32>,
}

impl MeasureParams {
    fn selection(&self, now: jiff::Timestamp) -> Result<Selection, ApiError> {
        let window = query::window(self.since.as_deref(), self.from.as_deref(), self.to.as_deref(), now)?;
        Ok(Selection {
            service: self.service.clone().filter(|s| !s.is_empty()),
            environment: self.environment.clone().unwrap_or_else(|| mobius_events::DEFAULT_ENVIRONMENT.to_owned()),
            window,
        })
    }
}

/// One report for a `service`, else a page of every service's.
fn reports<T: serde::Serialize>(
    uri: &Uri,
    single: bool,
    params: &MeasureParams,
    reports: Vec<T>,
) -> Result<Response, ApiError> {
    if single {
        return Ok(Json(json!(reports.into_iter().next())).into_response());
    }
    page::of_whole(uri, reports, params.offset, params.limit)
}

/// `GET /api/v1/dora`: one object with `service`, else a list.
pub async fn get_dora(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<MeasureParams>,
) -> Result<Response, ApiError> {
    let selection = params.selection(state.app.now())?;
    let bands = params.bands.clone().unwrap_or_else(|| mobius_insights::bands::DEFAULT.to_owned());
    let store = state.app.store.clone();
    let single = selection.service.is_some();
    let explain = params.explain;
    let list = mobius_log::blocking::spawn(move || query::dora(store.as_ref(), &selection, &bands, explain)).await?;
    reports(&uri, single, &params, list)
}

/// `GET /api/v1/flow`.
pub async fn get_flow(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<MeasureParams>,
) -> Result<Response, ApiError> {
    let selection = params.selection(state.app.now())?;
    let store = state.app.store.clone();
    let single = selection.service.is_some();
    let explain = params.explain;
    let list = mobius_log::blocking::spawn(move || query::flow(store.as_ref(), &selection, explain)).await?;
    reports(&uri, single, &params, list)
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    after: Option<i64>,
    before: Option<i64>,
    #[serde(rename = "type")]
    ty: Option<String>,
    /// Only events whose subject starts with this.
    subject: Option<String>,
    origin: Option<String>,
    /// `oldest` (log order, the default) or `newest` first.
    order: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/events`: the raw log, in order (paged by `after`) or newest first
/// (`order=newest`, paged by `before`), filtered by type, subject prefix and origin.
pub async fn get_events(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<EventParams>,
) -> Result<Response, ApiError> {
    let origin = params
        .origin
        .as_deref()
        .map(|o| Origin::parse(o).ok_or_else(|| ApiError::bad_request(format!("`origin`: unknown origin `{o}`"))))
        .transpose()?;
    let newest_first = match params.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => return Err(ApiError::bad_request(format!("`order`: `{other}` is not oldest or newest"))),
    };
    let limit = page::limit(params.limit, 100);
    let q = EventQuery {
        after_seq: params.after,
        before_seq: params.before,
        ty: params.ty,
        subject: params.subject,
        origin,
        newest_first,
        limit: limit + 1,
        ..EventQuery::default()
    };
    let store = state.app.store.clone();
    let events = mobius_log::blocking::spawn(move || store.events(&q)).await?;
    let cursor = if newest_first { "before" } else { "after" };
    page::of_cursor(&uri, events, limit, |e| (cursor, e.seq.to_string()))
}

#[derive(Debug, Deserialize)]
pub struct NewTokenRequest {
    scope: String,
    #[serde(default)]
    name: String,
    /// The flag set a `flags` token evaluates.
    #[serde(default)]
    set: Option<String>,
}

/// `POST /api/v1/tokens` (admin): the secret is in this response and nowhere else.
pub async fn post_token(
    _: Caller<Admin>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<NewTokenRequest>,
) -> Result<Response, ApiError> {
    let scope = TokenScope::parse(&request.scope).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`scope`: `{}` is not one of read, ingest, deploy, run, admin, metrics, agent, flags",
            request.scope
        ))
    })?;
    let token = mobius_app::tokens::issue_scoped(&request.name, scope, request.set.as_deref())
        .map_err(ApiError::bad_request)?;
    let store = state.app.store.clone();
    let record = token.record.clone();
    mobius_log::blocking::spawn(move || store.insert_token(&record)).await?;
    let mut body = json!({ "id": token.record.id, "name": token.record.name, "scope": scope, "token": token.secret });
    if let Some(set) = &token.record.flag_set {
        body["set"] = json!(set);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/tokens`: every token's id, name, scope and creation time (never a secret).
pub async fn get_tokens(
    _: Caller<Admin>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<page::OffsetParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let tokens = mobius_log::blocking::spawn(move || store.tokens()).await?;
    page::of_whole(&uri, tokens, params.offset, params.limit)
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token at once (every request looks its token up).
/// The token making the request cannot revoke itself, so an admin cannot lock themselves out
/// by mistake.
pub async fn delete_token(
    caller: Caller<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let by = caller.token.map(|t| t.id).unwrap_or_default();
    if by == id {
        return Err(ApiError::conflict("a token cannot revoke itself: revoke it with another admin token"));
    }
    let store = state.app.store.clone();
    let revoked = {
        let id = id.clone();
        mobius_log::blocking::spawn(move || store.revoke_token(&id)).await?
    };
    if !revoked {
        return Err(ApiError::not_found(format!("no token has id `{id}`")));
    }
    tracing::info!(token = %id, %by, "token revoked");
    // OFREP remembers tokens for a few seconds: not this one.
    state.ofrep_keys.forget_all();
    // An agent's jobs end with its token, not a lease later.
    match state.app.agents.token_revoked(&id).await {
        Ok(lost) if !lost.is_empty() => tracing::info!(token = %id, jobs = ?lost, "the revoked agent's jobs failed"),
        Ok(_) => {}
        Err(e) => tracing::warn!(token = %id, error = %e, "cannot fail the revoked agent's jobs"),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
