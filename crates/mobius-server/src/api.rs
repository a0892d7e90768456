//! HTTP handlers. Each one authenticates, decodes, calls the domain, and maps the result; the
//! work itself lives in [`crate::ingest`] and [`crate::query`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use mobius_events::cloudevents::{self, Decoded};
use mobius_events::{Origin, Webhook, WebhookError, github, gitlab};
use mobius_store::{EventQuery, TokenScope};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth;
use crate::error::ApiError;
use crate::extract::Query;
use mobius_log::ingest::{IngestReport, Status};
use mobius_log::query::{self, Selection};

/// Turns the body extractor's refusal (over 10 MiB, unreadable) into our error shape.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(status, "bad_request", rejection.body_text())
        }
    })
}

pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is over the {} MiB limit", crate::MAX_BODY >> 20),
    )
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn authorize(state: &AppState, headers: &HeaderMap, scope: TokenScope) -> Result<(), ApiError> {
    let store = state.app.store.clone();
    let headers = headers.clone();
    tokio::task::spawn_blocking(move || auth::require(store.as_ref(), &headers, scope).map(|_| ())).await?
}

pub(crate) async fn authorize_read(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.public_read {
        return Ok(());
    }
    authorize(state, headers, TokenScope::Read).await
}

/// `POST /api/v1/events`: CDEvents over the CloudEvents HTTP binding.
pub async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Ingest).await?;
    let raw = body(raw)?;
    let decoded =
        cloudevents::decode(header(&headers, "content-type"), |name| header(&headers, name), &raw, Origin::Api)
            .map_err(|e| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_body", e.to_string()))?;
    let (items, single) = match decoded {
        Decoded::One(item) => (vec![item], true),
        Decoded::Batch(items) => (items, false),
    };
    let ingestor = state.app.log.clone();
    let report = tokio::task::spawn_blocking(move || ingestor.ingest(items)).await??;
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

/// `POST /api/v1/webhooks/github`.
pub async fn post_github(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw)?;
    let secret = configured(&state.config.github_webhook_secret, "GitHub")?;
    github::verify_signature(secret.expose().as_bytes(), header(&headers, "x-hub-signature-256"), &raw)
        .map_err(webhook_error)?;
    let event = header(&headers, "x-github-event")
        .ok_or_else(|| webhook_error(WebhookError::MissingHeader { header: "X-GitHub-Event" }))?;
    let translated = github::translate(event, header(&headers, "x-github-delivery"), &raw).map_err(webhook_error)?;
    store_webhook(&state, translated, "github").await
}

/// `POST /api/v1/webhooks/gitlab`.
pub async fn post_gitlab(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw)?;
    let token = configured(&state.config.gitlab_webhook_token, "GitLab")?;
    gitlab::verify_token(token.expose(), header(&headers, "x-gitlab-token")).map_err(webhook_error)?;
    let translated = gitlab::translate(header(&headers, "x-gitlab-event"), &raw).map_err(webhook_error)?;
    store_webhook(&state, translated, "gitlab").await
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
    let report: IngestReport = tokio::task::spawn_blocking(move || ingestor.ingest(vec![Ok(event)])).await??;
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
}

impl MeasureParams {
    fn selection(&self) -> Result<Selection, ApiError> {
        let window = query::window(self.since.as_deref(), self.from.as_deref(), self.to.as_deref(), Timestamp::now())?;
        Ok(Selection {
            service: self.service.clone().filter(|s| !s.is_empty()),
            environment: self.environment.clone().unwrap_or_else(|| mobius_events::DEFAULT_ENVIRONMENT.to_owned()),
            window,
        })
    }
}

/// `GET /api/v1/dora`: one object with `service`, else a list.
pub async fn get_dora(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<MeasureParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let selection = params.selection()?;
    let bands = params.bands.clone().unwrap_or_else(|| mobius_insights::bands::DEFAULT.to_owned());
    let store = state.app.store.clone();
    let single = selection.service.is_some();
    let reports =
        tokio::task::spawn_blocking(move || query::dora(store.as_ref(), &selection, &bands, params.explain)).await??;
    Ok(if single { Json(json!(reports[0])).into_response() } else { Json(reports).into_response() })
}

/// `GET /api/v1/flow`.
pub async fn get_flow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<MeasureParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let selection = params.selection()?;
    let store = state.app.store.clone();
    let single = selection.service.is_some();
    let reports =
        tokio::task::spawn_blocking(move || query::flow(store.as_ref(), &selection, params.explain)).await??;
    Ok(if single { Json(json!(reports[0])).into_response() } else { Json(reports).into_response() })
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    after: Option<i64>,
    #[serde(rename = "type")]
    ty: Option<String>,
    origin: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/events`: the raw log, in order, paged by `after`.
pub async fn get_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<EventParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let origin = params
        .origin
        .as_deref()
        .map(|o| Origin::parse(o).ok_or_else(|| ApiError::bad_request(format!("`origin`: unknown origin `{o}`"))))
        .transpose()?;
    let limit = params.limit.unwrap_or(100).min(1000);
    let q = EventQuery { after_seq: params.after, ty: params.ty, origin, happened: None, limit };
    let store = state.app.store.clone();
    let events = tokio::task::spawn_blocking(move || store.events(&q)).await??;
    Ok(Json(events).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NewTokenRequest {
    scope: String,
    #[serde(default)]
    name: String,
}

/// `POST /api/v1/tokens` (admin): the secret is in this response and nowhere else.
pub async fn post_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::Json(request): crate::extract::Json<NewTokenRequest>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Admin).await?;
    let scope = TokenScope::parse(&request.scope).ok_or_else(|| {
        ApiError::bad_request(format!("`scope`: `{}` is not one of read, ingest, deploy, run, admin", request.scope))
    })?;
    let token = mobius_app::tokens::issue(&request.name, scope);
    let store = state.app.store.clone();
    let record = token.record.clone();
    tokio::task::spawn_blocking(move || store.insert_token(&record)).await??;
    let body = json!({ "id": token.record.id, "name": token.record.name, "scope": scope, "token": token.secret });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/tokens`: every token's id, name, scope and creation time (never a secret).
pub async fn get_tokens(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Admin).await?;
    let store = state.app.store.clone();
    let tokens = tokio::task::spawn_blocking(move || store.tokens()).await??;
    Ok(Json(tokens).into_response())
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token at once (every request looks its token up).
/// The token making the request cannot revoke itself, so an admin cannot lock themselves out
/// by mistake.
pub async fn delete_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let caller = {
        let (store, headers) = (store.clone(), headers.clone());
        tokio::task::spawn_blocking(move || auth::require(store.as_ref(), &headers, TokenScope::Admin)).await??
    };
    if caller.id == id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a token cannot revoke itself: revoke it with another admin token".to_owned(),
        ));
    }
    let revoked = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || store.revoke_token(&id)).await??
    };
    if !revoked {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no token has id `{id}`")));
    }
    tracing::info!(token = %id, by = %caller.id, "token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct ExplainParams {
    service: String,
    slo: String,
}

/// `GET /api/v1/slos/explain?service=S&slo=N`: where the SLO's budget went — by version, by
/// day, and the incidents of its window.
pub async fn get_slo_explanation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ExplainParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let store = state.app.store.clone();
    let (service, name) = (params.service.clone(), params.slo.clone());
    let found = tokio::task::spawn_blocking(
        move || -> Result<Option<Option<mobius_reliability::slo::Explanation>>, mobius_store::StoreError> {
            let Some((_, slo)) = mobius_reliability::slo::definitions(store.as_ref())?
                .into_iter()
                .find(|(s, slo)| *s == service && slo.name() == name)
            else {
                return Ok(None);
            };
            Ok(Some(mobius_reliability::slo::explain(store.as_ref(), &service, &slo, Timestamp::now())?))
        },
    )
    .await??;
    match found {
        Some(Some(explanation)) => Ok(Json(explanation).into_response()),
        Some(None) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_explainable",
            format!(
                "SLO `{}` of {} reads Prometheus: its requests are not in Mobius's store",
                params.slo, params.service
            ),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} has no SLO `{}` (see `mobius slo status`)", params.service, params.slo),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct IncidentParams {
    /// Only the unresolved ones.
    #[serde(default)]
    open: bool,
}

/// `GET /api/v1/incidents[?open=true]`: every incident, newest first, each with whether it
/// still needs a post-mortem.
pub async fn get_incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<IncidentParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let store = state.app.store.clone();
    let listed =
        tokio::task::spawn_blocking(move || mobius_reliability::incidents::list(store.as_ref(), params.open)).await??;
    Ok(Json(listed).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PostmortemParams {
    /// The incident's key, or the part after its `#`.
    incident: String,
}

fn no_incident(wanted: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no incident `{wanted}`: give its key or the part after `#` (see `mobius incident list`)"),
    )
}

/// `GET /api/v1/postmortems?incident=ID`: the incident's post-mortem draft, in Markdown.
pub async fn get_postmortem(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<PostmortemParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let store = state.app.store.clone();
    let wanted = params.incident.clone();
    let draft =
        tokio::task::spawn_blocking(move || mobius_reliability::incidents::draft(store.as_ref(), &wanted)).await??;
    let draft = draft.ok_or_else(|| no_incident(&params.incident))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")], draft).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RecordPostmortem {
    incident: String,
    /// Where it was written: a path or a URL.
    location: String,
}

/// `POST /api/v1/postmortems` `{"incident","location"}`: records that the incident's
/// post-mortem was written (an event), which ends its "post-mortem required" flag.
pub async fn post_postmortem(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::Json(request): crate::extract::Json<RecordPostmortem>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, TokenScope::Ingest).await?;
    if request.location.trim().is_empty() {
        return Err(ApiError::bad_request("`location`: say where the post-mortem is (a path or a URL)"));
    }
    let store = state.app.store.clone();
    let wanted = request.incident.clone();
    let incident =
        tokio::task::spawn_blocking(move || mobius_reliability::incidents::find(store.as_ref(), &wanted)).await??;
    let incident = incident.ok_or_else(|| no_incident(&request.incident))?;
    let event = mobius_reliability::incidents::recorded_event(
        &incident.key,
        &request.location,
        "/mobius/api",
        Timestamp::now(),
    );
    let parsed = mobius_events::cdevents::parse(&event.to_string(), Origin::Api)
        .map_err(|e| ApiError::bad_request(format!("the post-mortem record is not a valid event: {e}")))?;
    let ingestor = state.app.log.clone();
    tokio::task::spawn_blocking(move || ingestor.ingest(vec![Ok(parsed)])).await??;
    let body = json!({ "incident": incident.key, "location": request.location });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.app.store.clone();
    match tokio::task::spawn_blocking(move || store.event_count()).await {
        Ok(Ok(count)) => {
            state.metrics.events_in_log.set(count as i64);
            (StatusCode::OK, "ready\n").into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.app.store.clone();
    if let Ok(Ok(count)) = tokio::task::spawn_blocking(move || store.event_count()).await {
        state.metrics.events_in_log.set(count as i64);
    }
    let mut text = state.metrics.render();
    let (store, series) = (state.app.store.clone(), state.app.reliability.series_cache());
    if let Ok(Ok(slos)) = tokio::task::spawn_blocking(move || {
        mobius_reliability::slo::statuses_with(store.as_ref(), &series, Timestamp::now())
    })
    .await
    {
        // The registry's text ends with `# EOF` (OpenMetrics); the SLO series go before it.
        if let Some(stripped) = text.strip_suffix("# EOF\n") {
            text = stripped.to_owned();
        }
        text.push_str(&mobius_reliability::slo::exposition(&slos));
        text.push_str("# EOF\n");
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// `GET /api/v1/alerts`: each SLO's alert state at the last evaluation.
pub async fn get_alerts(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    Ok(Json(state.app.reliability.views()).into_response())
}

/// `GET /api/v1/slos`: every SLO's budget, burn rates and alert state now.
pub async fn get_slos(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let (store, series) = (state.app.store.clone(), state.app.reliability.series_cache());
    let slos = tokio::task::spawn_blocking(move || {
        mobius_reliability::slo::statuses_with(store.as_ref(), &series, Timestamp::now())
    })
    .await??;
    Ok(Json(slos).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PolicyParams {
    /// `hotfix` or `security`: would a deploy with that reason go through a freeze.
    reason: Option<mobius_slo::policy::Reason>,
}

/// `GET /api/v1/policy/{service}/{environment}[?reason=hotfix|security]`: whether the
/// error-budget policy would let a deploy through now (`allowed`), and why. Records nothing;
/// pipelines call it before deploying.
pub async fn get_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((service, environment)): axum::extract::Path<(String, String)>,
    Query(params): Query<PolicyParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers).await?;
    let store = state.app.store.clone();
    let answer = tokio::task::spawn_blocking(move || {
        mobius_reliability::slo::check(store.as_ref(), &service, &environment, params.reason, Timestamp::now())
    })
    .await??;
    Ok(Json(answer).into_response())
}
