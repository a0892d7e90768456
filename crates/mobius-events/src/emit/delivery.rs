//! The CDEvents a rollout emits, so DORA fills in from real rollouts: `environment.created`
//! the first time an environment gets a version, `service.deployed` (first version) or
//! `service.upgraded` when a version takes all traffic, and for a rollback the attempt
//! (`service.upgraded`) followed by `service.rolledback` to the stable artifact — which marks
//! that attempt failed — and an incident naming the artifact that failed, detected when its
//! first users got it and resolved when traffic was back on stable (the rollback restored
//! the service; the reliability work may keep incidents open longer).
//!
//! Every event of a service has the source [`source`]; ids derive from the environment or the
//! rollout, so an event emitted twice is one event.

use jiff::Timestamp;
use serde::Serialize;

use super::reliability::{INCIDENT_DETECTED, INCIDENT_RESOLVED, IncidentContent};
use super::{EmitError, Parts, Ref, build, random_id};
use crate::envelope::{NewEvent, Origin};

pub const ENVIRONMENT_CREATED: &str = "dev.cdevents.environment.created.0.3.0";
pub const SERVICE_DEPLOYED: &str = "dev.cdevents.service.deployed.0.3.0";
pub const SERVICE_UPGRADED: &str = "dev.cdevents.service.upgraded.0.3.0";
pub const SERVICE_ROLLEDBACK: &str = "dev.cdevents.service.rolledback.0.3.0";
pub const SERVICE_REMOVED: &str = "dev.cdevents.service.removed.0.3.0";
/// Mobius's own: a deployment let through a frozen error budget. CDEvents has no policy
/// vocabulary.
pub const POLICY_EXCEPTION: &str = "dev.cdeventsx.mobius-policy.exception.0.1.0";
/// Mobius's own: what the gate policies (`policies/*.rego`) decided about a change, allowed or
/// not.
pub const POLICY_DECIDED: &str = "dev.cdeventsx.mobius-policy.decided.0.1.0";

/// The event source of the control plane for a service.
pub fn source(service: &str) -> String {
    format!("/mobius/deploy/{service}")
}

#[derive(Serialize)]
struct EnvironmentContent<'a> {
    name: &'a str,
    uri: &'a str,
}

/// `service.deployed`, `service.upgraded` and `service.rolledback` say the same: which
/// artifact now serves in which environment.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceContent<'a> {
    environment: Ref<'a>,
    artifact_id: &'a str,
}

#[derive(Serialize)]
struct PolicyExceptionContent<'a> {
    environment: Ref<'a>,
    reason: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct PolicyDecidedContent<'a> {
    environment: Ref<'a>,
    action: &'a str,
    artifact: &'a str,
    allow: bool,
    deny: &'a [String],
    warn: &'a [String],
    exceptions: &'a [String],
}

/// What the gate policies decided about one change of `service` in an environment.
#[derive(Debug, Clone, Copy)]
pub struct PolicyDecision<'a> {
    pub environment: &'a str,
    /// `deploy`, `promotion`, `gitops-sync`, `flag-change`.
    pub action: &'a str,
    /// The artifact the change ships (`pkg:generic/NAME@sha256%3A…`).
    pub artifact: &'a str,
    /// The deny messages: the change is allowed when there are none.
    pub deny: &'a [String],
    pub warn: &'a [String],
    /// The rules excepted by an `exception` rule.
    pub exceptions: &'a [String],
}

/// The gate policies' decision about a change of `service`, recorded whether it allows the
/// change or not. Each decision is its own event.
pub fn policy_decided(service: &str, decision: &PolicyDecision<'_>, at: Timestamp) -> Result<NewEvent, EmitError> {
    let source = source(service);
    let content = PolicyDecidedContent {
        environment: Ref { id: decision.environment },
        action: decision.action,
        artifact: decision.artifact,
        allow: decision.deny.is_empty(),
        deny: decision.deny,
        warn: decision.warn,
        exceptions: decision.exceptions,
    };
    build(Parts::new(POLICY_DECIDED, random_id(), &source, at, service, content), Origin::Internal)
}

/// `environment` got its first version of `service`, served at `url`.
pub fn environment_created(service: &str, environment: &str, url: &str, at: Timestamp) -> Result<NewEvent, EmitError> {
    let (source, id) = (source(service), format!("environment:{environment}"));
    let content = EnvironmentContent { name: environment, uri: url };
    build(Parts::new(ENVIRONMENT_CREATED, id, &source, at, environment, content), Origin::Internal)
}

/// `artifact` took all traffic of `service` in `environment` at the end of rollout `rollout`:
/// `service.deployed` when it is the first version (`first`), `service.upgraded` otherwise.
pub fn deployed(
    service: &str,
    environment: &str,
    artifact: &str,
    rollout: i64,
    first: bool,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let ty = if first { SERVICE_DEPLOYED } else { SERVICE_UPGRADED };
    service_event(service, ty, format!("rollout:{rollout}:deployed"), environment, artifact, at)
}

/// What a rollback reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollback<'a> {
    pub service: &'a str,
    /// The version rolled back.
    pub version: &'a str,
    pub environment: &'a str,
    pub failed_artifact: &'a str,
    pub stable_artifact: &'a str,
    pub rollout: i64,
    /// Why: its first `:`-separated part titles the incident; the measurements behind it are
    /// in the rollout's history.
    pub reason: &'a str,
    /// When users first got the failing version (its first traffic): the incident's start.
    pub impact_from: Timestamp,
    /// When traffic was back on stable: the rollback, and the incident's resolution.
    pub at: Timestamp,
}

/// A rollout was rolled back: its attempt (`service.upgraded` at `impact_from`), the rollback
/// to the stable artifact (`service.rolledback`), and an incident (`incident.detected` at
/// `impact_from`, `incident.resolved` at `at`) naming the failed artifact. In that order.
pub fn rolled_back(r: &Rollback<'_>) -> Result<Vec<NewEvent>, EmitError> {
    let Rollback { service, version, environment, failed_artifact, stable_artifact, rollout, reason, impact_from, at } =
        *r;
    let why = reason.split(':').next().unwrap_or(reason).trim();
    let attempt_id = format!("rollout:{rollout}:attempt");
    let attempt = service_event(service, SERVICE_UPGRADED, attempt_id, environment, failed_artifact, impact_from)?;
    let rollback_id = format!("rollout:{rollout}:rolledback");
    let rollback = service_event(service, SERVICE_ROLLEDBACK, rollback_id, environment, stable_artifact, at)?;
    let source = source(service);
    let subject = format!("rollout-{rollout}");
    let description = format!("automatic rollback of {service} {version} in {environment}: {why}");
    let content = || IncidentContent {
        description: Some(&description),
        environment: Ref { id: environment },
        service: Ref { id: service },
        artifact_id: Some(failed_artifact),
    };
    let detected_id = format!("rollout:{rollout}:incident");
    let detected =
        build(Parts::new(INCIDENT_DETECTED, detected_id, &source, impact_from, &subject, content()), Origin::Internal)?;
    let resolved_id = format!("rollout:{rollout}:incident-resolved");
    let resolved =
        build(Parts::new(INCIDENT_RESOLVED, resolved_id, &source, at, &subject, content()), Origin::Internal)?;
    Ok(vec![attempt, rollback, detected, resolved])
}

/// A deployment of `service` to `environment` let through a frozen error budget for `reason`
/// (`hotfix`, `security`, `game-day`). Each exception is its own event.
pub fn policy_exception(
    service: &str,
    environment: &str,
    reason: &str,
    message: &str,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let source = source(service);
    let content = PolicyExceptionContent { environment: Ref { id: environment }, reason, message };
    build(Parts::new(POLICY_EXCEPTION, random_id(), &source, at, service, content), Origin::Internal)
}

#[derive(Serialize)]
struct RemovedContent<'a> {
    environment: Ref<'a>,
}

/// `service` no longer runs in `environment` (retired: its instances stopped, its proxy
/// closed).
pub fn service_removed(service: &str, environment: &str, at: Timestamp) -> Result<NewEvent, EmitError> {
    let source = source(service);
    let content = RemovedContent { environment: Ref { id: environment } };
    build(Parts::new(SERVICE_REMOVED, random_id(), &source, at, service, content), Origin::Internal)
}

/// `service.*` about `service`: `artifact` serves in `environment`.
fn service_event(
    service: &str,
    ty: &str,
    id: String,
    environment: &str,
    artifact: &str,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let source = source(service);
    let content = ServiceContent { environment: Ref { id: environment }, artifact_id: artifact };
    build(Parts::new(ty, id, &source, at, service, content), Origin::Internal)
}
