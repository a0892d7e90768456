//! The CDEvents a rollout emits, so DORA fills in from real rollouts: `environment.created`
//! the first time an environment gets a version, `service.deployed` (first version) or
//! `service.upgraded` when a version takes all traffic, and for a rollback the attempt
//! (`service.upgraded`) followed by `service.rolledback` to the stable artifact — which marks
//! that attempt failed — and an `incident.detected` naming the artifact that failed.

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

/// A rollout was rolled back: its attempt, the rollback to `stable_artifact`, and an incident.
pub fn rolled_back(
    service: &str,
    environment: &str,
    failed_artifact: &str,
    stable_artifact: &str,
    rollout: i64,
    reason: &str,
    at: Timestamp,
) -> Vec<Value> {
    let attempt = event(
        service,
        "dev.cdevents.service.upgraded.0.3.0",
        at,
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
    let incident = event(
        service,
        "dev.cdevents.incident.detected.0.3.0",
        at,
        &format!("rollout-{rollout}"),
        json!({
            "description": format!("automatic rollback of {service} in {environment}: {reason}"),
            "environment": { "id": environment },
            "service": { "id": service },
            "artifactId": failed_artifact,
        }),
        format!("rollout:{rollout}:incident"),
    );
    vec![attempt, rollback, incident]
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
        events.extend(rolled_back("shop", "production", "pkg:generic/shop@v3", "pkg:generic/shop@v2", 3, "5xx", at));
        let parsed = crate::runs::cdevents::validate(&events).expect("valid");
        assert_eq!(parsed.len(), 6);
    }
}
