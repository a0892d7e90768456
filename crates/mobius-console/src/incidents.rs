//! The incident pages: every incident, open first (`/incidents`, what `GET /api/v1/incidents`
//! gives), and one incident (`/incidents/{key}`) with its facts, its timeline and its
//! post-mortem draft (`incidents::draft_of`, the draft `GET /api/v1/postmortems` renders) shown
//! as HTML. An `ingest` session acknowledges or resolves it: the same event `mobius incident
//! ack|resolve` appends, through the application's log.

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use mobius_events::Origin;
use mobius_events::emit::reliability::{IncidentRef, acknowledged_by_hand, resolved_by_hand};
use mobius_events::facts::{Attribution, Deployment, DeploymentId, Incident};
use mobius_insights::postmortem::{self, Draft};
use mobius_reliability::incidents::{self, Listed};
use mobius_store::{StoreError, TokenScope};
use serde::Deserialize;

use crate::Console;
use crate::pages::CsrfForm;
use crate::view::ActionForm;
use crate::view::{
    Who, age, authorize, failed, html, not_found, not_found_with, percent_decode, query_escape, span, utc, viewer,
};

/// Where an incident's page is: its key escaped whole (keys hold `#`, `/` and `:`).
pub(crate) fn incident_href(key: &str) -> String {
    format!("/incidents/{}", query_escape(key))
}

/// The incident named in `/incidents/{key}…` (read from the path itself: the server's router
/// matched it), unescaped: its key, or the part after its `#`.
fn incident_key(uri: &Uri) -> Option<String> {
    let escaped = uri.path().strip_prefix("/incidents/")?.split('/').next()?;
    percent_decode(escaped).filter(|key| !key.is_empty())
}

/// Where an incident stands, in the words `mobius incident list` uses.
fn state(incident: &Incident) -> &'static str {
    match (incident.acknowledged, incident.resolved) {
        (_, Some(_)) => "resolved",
        (Some(_), None) => "acknowledged",
        (None, None) => "triggered",
    }
}

/// From detection to resolution, or to `now` while it is open.
fn duration(incident: &Incident, now: Timestamp) -> String {
    let end = incident.resolved.unwrap_or(now);
    let lasted = span(end.duration_since(incident.detected).as_secs_f64());
    if incident.resolved.is_some() { lasted } else { format!("{lasted} so far") }
}

/// What a deployment shipped, as the post-mortem names it: its artifact, else its commit.
fn version(deployment: &Deployment) -> String {
    match (&deployment.artifact_id, &deployment.revision) {
        (Some(artifact), _) => short_artifact(artifact),
        (None, Some(revision)) => format!("commit {}", revision.chars().take(10).collect::<String>()),
        (None, None) => format!("deployment {}", deployment.id),
    }
}

/// An artifact id short enough for a table: `pkg:generic/shop@sha256%3A<64 hex>` as
/// `shop@sha256:<12 hex>`; anything else as it is.
fn short_artifact(artifact: &str) -> String {
    let name = artifact.strip_prefix("pkg:generic/").unwrap_or(artifact);
    match name.split_once("@sha256%3A") {
        Some((name, digest)) => format!("{name}@sha256:{}", digest.chars().take(12).collect::<String>()),
        None => name.to_owned(),
    }
}

/// Which rule tied the incident to its deployment.
fn attribution(rule: Attribution) -> &'static str {
    match rule {
        Attribution::ExplicitArtifact => "the incident names its artifact",
        Attribution::ExplicitCommit => "the incident names one of its commits",
        Attribution::Window => "the latest deployment before detection, within the attribution window",
        Attribution::Unattributed => "unattributed",
    }
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    open: bool,
    service: &'a str,
    incidents: Vec<IncidentRow>,
    /// Which of how many: `101–200 of 3,214`.
    shown: String,
    /// The next and previous pages, when there are any.
    newer: Option<String>,
    older: Option<String>,
}

/// Incidents a page shows.
const PAGE: usize = 100;

/// One incident as the list shows it.
struct IncidentRow {
    href: String,
    title: String,
    state: &'static str,
    severity: String,
    service: String,
    environment: String,
    deployment: String,
    detected: String,
    detected_age: String,
    detected_iso: String,
    duration: String,
    postmortem_required: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IncidentsParams {
    #[serde(default)]
    open: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    offset: usize,
}

/// A page of incidents, how many there are in all, and the deployments they name by id.
struct IncidentPageRead {
    page: Vec<Listed>,
    total: usize,
    deployments: HashMap<DeploymentId, Deployment>,
}

/// A page of the incidents (open only with `open_only`; open ones first, then newest first),
/// how many there are in all, and the deployments the page's incidents are attributed to —
/// read by id, one store call for the page.
fn incidents_with_deployments(
    store: &dyn mobius_store::Store,
    open_only: bool,
    service: &str,
    offset: usize,
) -> Result<IncidentPageRead, StoreError> {
    let mut listed = incidents::list(store, open_only)?;
    listed.retain(|l| service.is_empty() || l.incident.service == service);
    // Newest first as listed; a stable sort puts the open ones ahead and keeps that order.
    listed.sort_by_key(|l| l.incident.resolved.is_some());
    let total = listed.len();
    let page: Vec<Listed> = listed.into_iter().skip(offset).take(PAGE).collect();
    let ids: BTreeSet<DeploymentId> = page.iter().filter_map(|l| l.incident.deployment_id).collect();
    let ids: Vec<DeploymentId> = ids.into_iter().collect();
    let deployments = store.deployments(&ids)?.into_iter().map(|d| (d.id, d)).collect();
    Ok(IncidentPageRead { page, total, deployments })
}

/// `GET /incidents[?open=true][&service=S]`: open ones first, then the rest, newest first.
pub(crate) async fn list(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<IncidentsParams>,
) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let open = match params.open.trim() {
        "" | "false" => false,
        "true" => true,
        other => {
            let what = format!("`open` is `true` or `false`, not `{other}`.");
            return not_found_with(&console, StatusCode::BAD_REQUEST, viewer.who(), &what);
        }
    };
    let (store, now) = (console.app.store.clone(), console.app.now());
    let service = params.service.trim().to_owned();
    let wanted = service.clone();
    let offset = params.offset;
    let read =
        mobius_log::blocking::spawn(move || incidents_with_deployments(store.as_ref(), open, &wanted, offset)).await;
    let IncidentPageRead { page: listed, total, deployments } = match read {
        Ok(read) => read,
        Err(error) => return failed("list incidents", &error),
    };
    let link = |offset: usize| {
        let mut link = format!("/incidents?offset={offset}");
        if open {
            link.push_str("&open=true");
        }
        if !service.is_empty() {
            link.push_str(&format!("&service={}", query_escape(&service)));
        }
        link
    };
    let newer = (offset > 0).then(|| link(offset.saturating_sub(PAGE)));
    let older = (offset + PAGE < total).then(|| link(offset + PAGE));
    let shown = match listed.len() {
        0 => String::new(),
        n => format!("{}–{} of {total}", offset + 1, offset + n),
    };
    let incidents = listed
        .iter()
        .map(|l| {
            let i = &l.incident;
            let deployment = i.deployment_id.map_or_else(
                || "unattributed".to_owned(),
                |id| deployments.get(&id).map_or_else(|| format!("deployment {id}"), version),
            );
            IncidentRow {
                href: incident_href(&i.key),
                title: i.title.clone(),
                state: state(i),
                severity: i.severity.clone().unwrap_or_else(|| "—".to_owned()),
                service: i.service.clone(),
                environment: i.environment.clone(),
                deployment,
                detected: utc(i.detected),
                detected_age: age(i.detected, now),
                detected_iso: i.detected.to_string(),
                duration: duration(i, now),
                postmortem_required: l.postmortem_required,
            }
        })
        .collect();
    let page = IncidentsPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        open,
        service: &service,
        incidents,
        shown,
        newer,
        older,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage<'a> {
    css: &'a str,
    icon: &'a str,
    signed_in: Option<Who>,
    href: String,
    key: String,
    title: String,
    state: &'static str,
    severity: String,
    service: String,
    environment: String,
    detected: String,
    acknowledged: Option<String>,
    resolved: Option<String>,
    duration: String,
    deployment: Option<String>,
    attribution: &'static str,
    detected_by: Option<String>,
    failed_requests: Option<String>,
    budget_consumed: Option<String>,
    timeline: Vec<Moment>,
    /// The post-mortem draft, rendered from Markdown by [`crate::markdown::to_html`] (raw HTML
    /// in it is text).
    draft: String,
    can_acknowledge: bool,
    can_resolve: bool,
    /// Why an `ingest` session gets no buttons: the incident came from elsewhere.
    changed_elsewhere: bool,
    csrf: String,
}

struct Moment {
    at: String,
    iso: String,
    what: String,
}

/// `GET /incidents/{key}`.
pub(crate) async fn page(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let Some(wanted) = incident_key(&uri) else { return not_found(&console, viewer.who(), "No such incident.") };
    let store = console.app.store.clone();
    let asked = wanted.clone();
    let read = mobius_log::blocking::spawn(move || incidents::draft_of(store.as_ref(), &asked)).await;
    let draft = match read {
        Ok(Some(draft)) => draft,
        Ok(None) => return not_found(&console, viewer.who(), &format!("No incident `{wanted}`.")),
        Err(error) => return failed("read the incident", &error),
    };
    let now = console.app.now();
    let markdown = postmortem::render(&draft);
    let Draft { incident: i, deployment, impact, detected_by, timeline, .. } = draft;
    let by_hand = IncidentRef::from_key(&i.key, &i.service, &i.environment).is_some();
    let may_change = viewer.allows(TokenScope::Ingest) && by_hand && i.resolved.is_none();
    let page = IncidentPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        signed_in: viewer.who(),
        href: incident_href(&i.key),
        state: state(&i),
        severity: i.severity.clone().unwrap_or_else(|| "—".to_owned()),
        detected: format!("{} ({})", utc(i.detected), age(i.detected, now)),
        acknowledged: i.acknowledged.map(|at| format!("{} ({})", utc(at), age(at, now))),
        resolved: i.resolved.map(|at| format!("{} ({})", utc(at), age(at, now))),
        duration: duration(&i, now),
        deployment: deployment
            .as_ref()
            .map(|d| format!("{} to {}, finished {}", version(d), d.environment, utc(d.finished))),
        attribution: attribution(i.attribution),
        detected_by,
        failed_requests: impact
            .failed_requests
            .filter(|(_, total)| *total > 0)
            .map(|(failed, total)| format!("{failed} of {total} ({:.2}%)", failed as f64 * 100.0 / total as f64)),
        budget_consumed: impact.budget_consumed.map(|(slo, share)| format!("{:.1}% of SLO `{slo}`", share * 100.0)),
        timeline: timeline
            .iter()
            .map(|m| Moment {
                at: m.at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                iso: m.at.to_string(),
                what: m.what.clone(),
            })
            .collect(),
        draft: crate::markdown::to_html(&markdown),
        can_acknowledge: may_change && i.acknowledged.is_none(),
        can_resolve: may_change,
        changed_elsewhere: viewer.allows(TokenScope::Ingest) && !by_hand && i.resolved.is_none(),
        csrf: viewer.csrf().to_owned(),
        key: i.key,
        title: i.title,
        service: i.service,
        environment: i.environment,
    };
    html(StatusCode::OK, page.render())
}

/// What a person does to an incident from its page.
#[derive(Clone, Copy)]
enum Change {
    Acknowledge,
    Resolve,
}

/// `POST /incidents/{key}/acknowledge`.
pub(crate) async fn acknowledge(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    change(console, headers, uri, form, Change::Acknowledge).await
}

/// `POST /incidents/{key}/resolve`.
pub(crate) async fn resolve(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    change(console, headers, uri, form, Change::Resolve).await
}

/// A change by hand: the session, its `ingest` scope and its CSRF token checked first (before
/// anything is read), then the incident found and the change refused if it is already done
/// (409, nothing appended), then the event `mobius incident ack|resolve` appends.
async fn change(console: Console, headers: HeaderMap, uri: Uri, form: CsrfForm, change: Change) -> Response {
    let what = match change {
        Change::Acknowledge => "acknowledging an incident",
        Change::Resolve => "resolving an incident",
    };
    let session = match authorize(&console, &headers, &uri, &form.csrf, TokenScope::Ingest, what).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let who = || Some(Who::of(&session));
    let Some(wanted) = incident_key(&uri) else { return not_found(&console, who(), "No such incident.") };
    let store = console.app.store.clone();
    let asked = wanted.clone();
    let incident = match mobius_log::blocking::spawn(move || incidents::find(store.as_ref(), &asked)).await {
        Ok(Some(incident)) => incident,
        Ok(None) => return not_found(&console, who(), &format!("No incident `{wanted}`.")),
        Err(error) => return failed("read the incident", &error),
    };
    if let Some(at) = incident.resolved {
        let said = format!("Incident `{}` was resolved at {}: nothing was changed.", incident.key, utc(at));
        return (StatusCode::CONFLICT, said).into_response();
    }
    if let (Change::Acknowledge, Some(at)) = (change, incident.acknowledged) {
        let said = format!("Incident `{}` was acknowledged at {}: nothing was changed.", incident.key, utc(at));
        return (StatusCode::CONFLICT, said).into_response();
    }
    let Some(reference) = IncidentRef::from_key(&incident.key, &incident.service, &incident.environment) else {
        let said = format!("Incident `{}` did not come from CDEvents: change it where it came from.", incident.key);
        return (StatusCode::CONFLICT, said).into_response();
    };
    let now = console.app.now();
    let event = match change {
        Change::Acknowledge => acknowledged_by_hand(&reference, now, Origin::Api),
        Change::Resolve => resolved_by_hand(&reference, now, Origin::Api),
    };
    let event = match event {
        Ok(event) => event,
        Err(error) => return failed("record the change to the incident", &error),
    };
    let log = console.app.log.clone();
    if let Err(error) = mobius_log::blocking::spawn(move || log.append(&[event])).await {
        return failed("record the change to the incident", &error);
    }
    tracing::info!(incident = %incident.key, by = %session.token.name, "{what} in the console");
    Redirect::to(&incident_href(&incident.key)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_is_named_by_its_escaped_key() {
        let key = "cdevents:/mobius/cli#inc-1";
        let href = incident_href(key);
        assert_eq!(href, "/incidents/cdevents%3A%2Fmobius%2Fcli%23inc-1");
        assert_eq!(incident_key(&href.parse().unwrap()).as_deref(), Some(key));
        assert_eq!(incident_key(&format!("{href}/resolve").parse().unwrap()).as_deref(), Some(key));
        assert_eq!(incident_key(&"/incidents/inc-1".parse().unwrap()).as_deref(), Some("inc-1"));
        assert_eq!(incident_key(&"/incidents/".parse().unwrap()), None);
        assert_eq!(short_artifact("pkg:generic/shop@sha256%3A3aadb7aea6bc75a6c8974e8d"), "shop@sha256:3aadb7aea6bc");
        assert_eq!(short_artifact("oci://registry/shop:v2"), "oci://registry/shop:v2");
    }
}
