//! Reliability's doors: SLO statuses and where a budget went, alerts, the error-budget policy
//! as a check, incidents and their post-mortems.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mobius_events::Origin;
use mobius_events::emit::reliability::postmortem_recorded;
use mobius_reliability::{incidents, slo};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, Ingest, Read};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path, Query};
use crate::page;

#[derive(Debug, Deserialize)]
pub struct ExplainParams {
    service: String,
    slo: String,
}

/// `GET /api/v1/slos/explain?service=S&slo=N`: where the SLO's budget went — by version, by
/// day, and the incidents of its window.
pub async fn get_slo_explanation(
    _: Caller<Read>,
    State(state): State<AppState>,
    Query(params): Query<ExplainParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let (service, name) = (params.service.clone(), params.slo.clone());
    let found =
        mobius_log::blocking::spawn(move || -> Result<Option<Option<slo::Explanation>>, mobius_store::StoreError> {
            let Some((_, slo)) =
                slo::definitions(store.as_ref())?.into_iter().find(|(s, slo)| *s == service && slo.name() == name)
            else {
                return Ok(None);
            };
            Ok(Some(slo::explain(store.as_ref(), &service, &slo, state.app.now())?))
        })
        .await?;
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
        None => Err(ApiError::not_found(format!(
            "{} has no SLO `{}` (see `mobius slo status`)",
            params.service, params.slo
        ))),
    }
}

#[derive(Debug, Deserialize)]
pub struct IncidentParams {
    /// Only the unresolved ones.
    #[serde(default)]
    open: bool,
    offset: Option<usize>,
    limit: Option<u32>,
}

/// `GET /api/v1/incidents[?open=true]`: every incident, newest first, each with whether it
/// still needs a post-mortem.
pub async fn get_incidents(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<IncidentParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let open = params.open;
    let listed = mobius_log::blocking::spawn(move || incidents::list(store.as_ref(), open)).await?;
    page::of_whole(&uri, listed, params.offset, params.limit)
}

#[derive(Debug, Deserialize)]
pub struct PostmortemParams {
    /// The incident's key, or the part after its `#`.
    incident: String,
}

fn no_incident(wanted: &str) -> ApiError {
    ApiError::not_found(format!(
        "no incident `{wanted}`: give its key or the part after `#` (see `mobius incident list`)"
    ))
}

/// `GET /api/v1/postmortems?incident=ID`: the incident's post-mortem draft, in Markdown.
pub async fn get_postmortem(
    _: Caller<Read>,
    State(state): State<AppState>,
    Query(params): Query<PostmortemParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let wanted = params.incident.clone();
    let draft = mobius_log::blocking::spawn(move || incidents::draft(store.as_ref(), &wanted)).await?;
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
    _: Caller<Ingest>,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RecordPostmortem>,
) -> Result<Response, ApiError> {
    if request.location.trim().is_empty() {
        return Err(ApiError::bad_request("`location`: say where the post-mortem is (a path or a URL)"));
    }
    let store = state.app.store.clone();
    let wanted = request.incident.clone();
    let incident = mobius_log::blocking::spawn(move || incidents::find(store.as_ref(), &wanted)).await?;
    let incident = incident.ok_or_else(|| no_incident(&request.incident))?;
    let event = postmortem_recorded(&incident.key, &request.location, "/mobius/api", state.app.now(), Origin::Api)
        .map_err(|e| ApiError::bad_request(format!("the post-mortem record is not a valid event: {e}")))?;
    let ingestor = state.app.log.clone();
    mobius_log::blocking::spawn(move || ingestor.append(&[event])).await?;
    let body = json!({ "incident": incident.key, "location": request.location });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/alerts`: each SLO's alert state at the last evaluation.
pub async fn get_alerts(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<page::OffsetParams>,
) -> Result<Response, ApiError> {
    page::of_whole(&uri, state.app.reliability.views(), params.offset, params.limit)
}

/// `GET /api/v1/slos`: every SLO's budget, burn rates and alert state now.
pub async fn get_slos(
    _: Caller<Read>,
    State(state): State<AppState>,
    uri: Uri,
    Query(params): Query<page::OffsetParams>,
) -> Result<Response, ApiError> {
    let (store, series) = (state.app.store.clone(), state.app.reliability.series_cache());
    let slos =
        mobius_log::blocking::spawn(move || slo::statuses_with(store.as_ref(), &series, state.app.now())).await?;
    page::of_whole(&uri, slos, params.offset, params.limit)
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
    _: Caller<Read>,
    State(state): State<AppState>,
    Path((service, environment)): Path<(String, String)>,
    Query(params): Query<PolicyParams>,
) -> Result<Response, ApiError> {
    let store = state.app.store.clone();
    let answer = mobius_log::blocking::spawn(move || {
        slo::check(store.as_ref(), &service, &environment, params.reason, state.app.now())
    })
    .await?;
    Ok(Json(answer).into_response())
}
