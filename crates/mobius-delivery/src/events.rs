//! The CDEvents a rollout emits, so DORA fills in from real rollouts: `environment.created`
//! the first time an environment gets a version, `service.deployed` (first version) or
//! `service.upgraded` when a version takes all traffic, and for a rollback the attempt
//! (`service.upgraded`) followed by `service.rolledback` to the stable artifact — which marks
//! that attempt failed — and an incident naming the artifact that failed, detected when its
//! first users got it and resolved when traffic was back on stable (the rollback restored
//! the service; the reliability work may keep incidents open longer).

use jiff::Timestamp;
use serde_json::{Value, json};

/// The event source of the control plane for a service.
fn source(service: &str) -> String {
    format!("/mobius/deploy/{service}")
}

fn event(service: &str, ty: &str, at: Timestamp, subject: &str, content: Value, id: String) -> Value {
    json!({
        "context": {
            "specversion": "0.5.1",
            "id": id,
            "source": source(service),
            "type": ty,
            "timestamp": at.to_string(),
        },
        "subject": { "id": subject, "source": source(service), "content": content },
    })
}

pub fn environment_created(service: &str, environment: &str, url: &str, at: Timestamp) -> Value {
    event(
        service,
        "dev.cdevents.environment.created.0.3.0",
        at,
        environment,
        json!({ "name": environment, "uri": url }),
        format!("environment:{environment}"),
    )
}

/// A version took all traffic (`first`: nothing served before it).
pub fn deployed(service: &str, environment: &str, artifact: &str, rollout: i64, first: bool, at: Timestamp) -> Value {
    let ty = if first { "dev.cdevents.service.deployed.0.3.0" } else { "dev.cdevents.service.upgraded.0.3.0" };
    event(
        service,
        ty,
        at,
        service,
        json!({ "environment": { "id": environment }, "artifactId": artifact }),
        format!("rollout:{rollout}:deployed"),
    )
}

/// What a rollback reports.
pub struct Rollback<'a> {
    pub service: &'a str,
    /// The version rolled back.
    pub version: &'a str,
    pub environment: &'a str,
    pub failed_artifact: &'a str,
    pub stable_artifact: &'a str,
    pub rollout: i64,
    pub reason: &'a str,
    /// When users first got the failing version (its first traffic): the incident's start.
    pub impact_from: Timestamp,
    /// When traffic was back on stable: the rollback, and the incident's resolution.
    pub at: Timestamp,
}

/// A rollout was rolled back: its attempt, the rollback to the stable artifact, and an
/// incident from the failing version's first traffic until traffic was back on stable.
pub fn rolled_back(r: &Rollback<'_>) -> Vec<Value> {
    let Rollback { service, version, environment, failed_artifact, stable_artifact, rollout, reason, impact_from, at } =
        *r;
    // The title names what happened; the measurements behind it are in the rollout's history.
    let why = reason.split(':').next().unwrap_or(reason).trim();
    // The attempt happened when its first users got it, before the rollback.
    let attempt = event(
        service,
        "dev.cdevents.service.upgraded.0.3.0",
        impact_from,
        service,
        json!({ "environment": { "id": environment }, "artifactId": failed_artifact }),
        format!("rollout:{rollout}:attempt"),
    );
    let rollback = event(
        service,
        "dev.cdevents.service.rolledback.0.3.0",
        at,
        service,
        json!({ "environment": { "id": environment }, "artifactId": stable_artifact }),
        format!("rollout:{rollout}:rolledback"),
    );
    let content = json!({
        "description": format!("automatic rollback of {service} {version} in {environment}: {why}"),
        "environment": { "id": environment },
        "service": { "id": service },
        "artifactId": failed_artifact,
    });
    let subject = format!("rollout-{rollout}");
    let detected = event(
        service,
        "dev.cdevents.incident.detected.0.3.0",
        impact_from,
        &subject,
        content.clone(),
        format!("rollout:{rollout}:incident"),
    );
    let resolved = event(
        service,
        "dev.cdevents.incident.resolved.0.3.0",
        at,
        &subject,
        content,
        format!("rollout:{rollout}:incident-resolved"),
    );
    vec![attempt, rollback, detected, resolved]
}

/// A deployment let through a frozen error budget (`--reason hotfix|security`): a custom
/// event, since CDEvents has no policy vocabulary.
pub fn policy_exception(service: &str, environment: &str, reason: &str, message: &str, at: Timestamp) -> Value {
    event(
        service,
        "dev.cdeventsx.mobius-policy.exception.0.1.0",
        at,
        service,
        json!({ "environment": { "id": environment }, "reason": reason, "message": message }),
        uuid::Uuid::new_v4().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_valid_cdevents() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let mut events = vec![
            environment_created("shop", "production", "http://127.0.0.1:8080", at),
            deployed("shop", "production", "pkg:generic/shop@v1", 1, true, at),
            deployed("shop", "production", "pkg:generic/shop@v2", 2, false, at),
        ];
        events.extend(rolled_back(&Rollback {
            service: "shop",
            version: "v3",
            environment: "production",
            failed_artifact: "pkg:generic/shop@v3",
            stable_artifact: "pkg:generic/shop@v2",
            rollout: 3,
            reason: "5xx",
            impact_from: at,
            at,
        }));
        events.push(policy_exception("shop", "production", "hotfix", "budget exhausted", at));
        let parsed = mobius_log::ingest::validate(&events).expect("valid");
        assert_eq!(parsed.len(), 8);
    }
}
