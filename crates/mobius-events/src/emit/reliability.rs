//! The events of reliability work: an SLO alert firing or resolved (Mobius's own types), the
//! incident a page opens and resolves, incidents by hand (`mobius incident open|ack|resolve`),
//! and the record that an incident's post-mortem was written.
//!
//! Incidents carry their severity in `customData.severity`: the CDEvents schema has no field
//! for it, and [`crate::cdevents`] reads it there from any sender.

use jiff::Timestamp;
use serde::Serialize;

use super::{EmitError, Parts, Ref, build, random_id};
use crate::envelope::{NewEvent, Origin};

pub const INCIDENT_DETECTED: &str = "dev.cdevents.incident.detected.0.3.0";
pub const INCIDENT_RESOLVED: &str = "dev.cdevents.incident.resolved.0.3.0";
/// Mobius's own: sets an incident's `acknowledged` time, which CDEvents has no event for.
/// [`crate::cdevents::ACKNOWLEDGED`] is its prefix, which the parser recognises.
pub const INCIDENT_ACKNOWLEDGED: &str = "dev.cdeventsx.mobius-incident.acknowledged.0.1.0";
/// Mobius's own: an SLO alert started firing.
pub const ALERT_FIRING: &str = "dev.cdeventsx.mobius-alert.firing.0.1.0";
/// Mobius's own: an SLO alert stopped firing.
pub const ALERT_RESOLVED: &str = "dev.cdeventsx.mobius-alert.resolved.0.1.0";
/// Mobius's own: an incident's post-mortem was written; it ends the incident's "post-mortem
/// required" flag.
pub const POSTMORTEM_RECORDED: &str = "dev.cdeventsx.mobius-postmortem.recorded.0.1.0";

/// The source of everything `mobius` emits from the command line by hand.
pub const CLI_SOURCE: &str = "/mobius/cli";

/// The severity of the incident a page opens: what `mobius incident open` defaults to.
pub const PAGE_SEVERITY: &str = "sev2";

/// The content of `incident.*`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IncidentContent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
    pub(crate) environment: Ref<'a>,
    pub(crate) service: Ref<'a>,
    /// The artifact that caused it, which attributes it to that artifact's deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) artifact_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Severity<'a> {
    severity: &'a str,
}

/// The event source of a service's SLOs: their alerts and the incidents their pages open.
pub fn slo_source(service: &str) -> String {
    format!("/mobius/slo/{service}")
}

/// Whether an alert fires or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Firing,
    Resolved,
}

/// An alert of `service`'s SLO `slo` changed state at `at`. `body` is the alert's
/// notification, the JSON object webhooks receive: the event records what was sent.
pub fn alert(
    state: AlertState,
    service: &str,
    slo: &str,
    body: &serde_json::Value,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    alert_as(&random_id(), state, service, slo, body, at)
}

/// [`alert`] under a given id: each replica that steps to one claimed transition records it
/// under the same id, so the log keeps it once whichever of them records it first.
pub fn alert_as(
    id: &str,
    state: AlertState,
    service: &str,
    slo: &str,
    body: &serde_json::Value,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let ty = match state {
        AlertState::Firing => ALERT_FIRING,
        AlertState::Resolved => ALERT_RESOLVED,
    };
    let (source, subject) = (slo_source(service), format!("{service}-{slo}"));
    build(Parts::new(ty, id.to_owned(), &source, at, &subject, body), Origin::Internal)
}

/// The incident a page of an SLO opened: its subject is [`SloIncident::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SloIncident<'a> {
    /// From [`slo_incident_id`] when the page opened it.
    pub id: &'a str,
    pub service: &'a str,
    pub environment: &'a str,
}

/// The id of the incident a page of `service`'s SLO `slo` opens at `opened`.
pub fn slo_incident_id(service: &str, slo: &str, opened: Timestamp) -> String {
    format!("alert-{service}-{slo}-{}", opened.as_second())
}

/// A page opened `incident` at `at`, with severity [`PAGE_SEVERITY`]; `artifact` is the
/// version burning the budget most, when it is known.
pub fn slo_incident_detected(
    incident: &SloIncident<'_>,
    description: &str,
    artifact: Option<&str>,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let content = incident_content(incident, description, artifact);
    let (source, id) = (slo_source(incident.service), format!("{}:detected", incident.id));
    let parts = Parts::new(INCIDENT_DETECTED, id, &source, at, incident.id, content)
        .custom_data(Severity { severity: PAGE_SEVERITY }, false);
    build(parts, Origin::Internal)
}

/// `incident` resolved at `at` (its page stayed quiet, or its SLO is gone).
pub fn slo_incident_resolved(
    incident: &SloIncident<'_>,
    description: &str,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let content = incident_content(incident, description, None);
    let (source, id) = (slo_source(incident.service), format!("{}:resolved", incident.id));
    build(Parts::new(INCIDENT_RESOLVED, id, &source, at, incident.id, content), Origin::Internal)
}

fn incident_content<'a>(
    incident: &SloIncident<'a>,
    description: &'a str,
    artifact: Option<&'a str>,
) -> IncidentContent<'a> {
    IncidentContent {
        description: Some(description),
        environment: Ref { id: incident.environment },
        service: Ref { id: incident.service },
        artifact_id: artifact,
    }
}

/// An incident as `mobius incident` names it: the CDEvents subject it was opened under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentRef<'a> {
    /// `subject.id`.
    pub id: &'a str,
    /// `subject.source`: [`CLI_SOURCE`] for incidents opened by hand.
    pub source: &'a str,
    pub service: &'a str,
    pub environment: &'a str,
}

impl<'a> IncidentRef<'a> {
    /// The key of the incident's facts: `cdevents:<subject source>#<subject id>`, as
    /// [`crate::cdevents`] keys an incident by its subject.
    pub fn key(&self) -> String {
        format!("cdevents:{}#{}", self.source, self.id)
    }

    /// The incident whose facts have `key`, to change it by hand; `None` unless it came from
    /// CDEvents (an incident from an issue tracker is changed there).
    pub fn from_key(key: &'a str, service: &'a str, environment: &'a str) -> Option<IncidentRef<'a>> {
        let (source, id) = key.strip_prefix("cdevents:")?.split_once('#')?;
        Some(IncidentRef { id, source, service, environment })
    }
}

/// `mobius incident open`: `incident` was detected at `at`.
pub fn opened_by_hand(
    incident: &IncidentRef<'_>,
    title: &str,
    severity: &str,
    at: Timestamp,
    origin: Origin,
) -> Result<NewEvent, EmitError> {
    let parts = by_hand(INCIDENT_DETECTED, incident, Some(title), at).custom_data(Severity { severity }, false);
    build(parts, origin)
}

/// `mobius incident ack`: someone took `incident` on at `at`.
pub fn acknowledged_by_hand(incident: &IncidentRef<'_>, at: Timestamp, origin: Origin) -> Result<NewEvent, EmitError> {
    build(by_hand(INCIDENT_ACKNOWLEDGED, incident, None, at), origin)
}

/// `mobius incident resolve`: `incident` resolved at `at`.
pub fn resolved_by_hand(incident: &IncidentRef<'_>, at: Timestamp, origin: Origin) -> Result<NewEvent, EmitError> {
    build(by_hand(INCIDENT_RESOLVED, incident, None, at), origin)
}

/// An event about `incident` from the command line: each change by hand is its own event.
fn by_hand<'a>(
    ty: &'a str,
    incident: &IncidentRef<'a>,
    description: Option<&'a str>,
    at: Timestamp,
) -> Parts<'a, IncidentContent<'a>, ()> {
    let content = IncidentContent {
        description,
        environment: Ref { id: incident.environment },
        service: Ref { id: incident.service },
        artifact_id: None,
    };
    Parts::new(ty, random_id(), CLI_SOURCE, at, incident.id, content).subject_source(Some(incident.source))
}

/// The post-mortem of the incident whose key is `incident` was written, at `location` (a path
/// or a URL). `source` says who recorded it (`/mobius/cli`, `/mobius/api`). One record per
/// incident: recording it again is a duplicate.
pub fn postmortem_recorded(
    incident: &str,
    location: &str,
    source: &str,
    at: Timestamp,
    origin: Origin,
) -> Result<NewEvent, EmitError> {
    #[derive(Serialize)]
    struct Content<'a> {
        location: &'a str,
    }
    let id = format!("postmortem:{incident}");
    build(Parts::new(POSTMORTEM_RECORDED, id, source, at, incident, Content { location }).subject_source(None), origin)
}
