//! The events Mobius emits: each constructor writes exactly the JSON the hand-written code
//! before it wrote (the expected values below are that code's `json!` shapes, filled in), since
//! stores hold those events and their ids drive deduplication.

use jiff::Timestamp;
use mobius_events::cdevents::{EventError, parse};
use mobius_events::emit::delivery::{self, Rollback};
use mobius_events::emit::pipeline::{self, LandedCommit, Outcome, RunIdentity};
use mobius_events::emit::reliability::{self, AlertState, IncidentRef, SloIncident};
use mobius_events::emit::{self, AnyEvent, EmitError};
use mobius_events::{NewEvent, Origin};
use serde_json::{Value, json};

/// Stands for a random UUID v4 in an expected event's `context.id`.
const RANDOM: &str = "<uuid v4>";

/// `event` is `expected`: the same content and the same text, a `NewEvent` whose fields agree
/// with it, validated as the API validates, from `origin`.
#[track_caller]
fn check(event: &NewEvent, origin: Origin, mut expected: Value) {
    if expected["context"]["id"] == RANDOM {
        let uuid = uuid::Uuid::parse_str(&event.id).unwrap_or_else(|e| panic!("`{}` is not a UUID: {e}", event.id));
        assert_eq!(uuid.get_version_num(), 4, "{}", event.id);
        expected["context"]["id"] = json!(event.id);
    }
    let raw: Value = serde_json::from_str(&event.raw).expect("the raw event is JSON");
    assert_eq!(raw, expected);
    assert_eq!(event.raw, expected.to_string(), "the text, byte for byte");
    assert_eq!(event.id, expected["context"]["id"]);
    assert_eq!(event.source, expected["context"]["source"]);
    assert_eq!(event.ty, expected["context"]["type"]);
    assert_eq!(event.subject, expected["subject"]["id"]);
    assert_eq!(event.timestamp.to_string(), expected["context"]["timestamp"]);
    assert_eq!(event.origin, origin);
    assert_eq!(*event, parse(&event.raw, origin).expect("the API accepts it"), "what the API would make of it");
}

fn at() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn later() -> Timestamp {
    Timestamp::from_second(1_700_000_600).unwrap()
}

// The old `deploy::events::event`: every control-plane event of a service.
fn deploy_event(ty: &str, id: &str, at: &str, subject: &str, content: Value) -> Value {
    json!({
        "context": {
            "specversion": "0.5.1",
            "id": id,
            "source": "/mobius/deploy/shop",
            "type": ty,
            "timestamp": at,
        },
        "subject": { "id": subject, "source": "/mobius/deploy/shop", "content": content },
    })
}

#[test]
fn environment_created() {
    let event = delivery::environment_created("shop", "production", "http://127.0.0.1:8080", at()).unwrap();
    let expected = deploy_event(
        "dev.cdevents.environment.created.0.3.0",
        "environment:production",
        "2023-11-14T22:13:20Z",
        "production",
        json!({ "name": "production", "uri": "http://127.0.0.1:8080" }),
    );
    check(&event, Origin::Internal, expected);
}

#[test]
fn deployed_first_and_upgraded() {
    for (first, ty) in [(true, "dev.cdevents.service.deployed.0.3.0"), (false, "dev.cdevents.service.upgraded.0.3.0")] {
        let event = delivery::deployed("shop", "production", "pkg:generic/shop@v2", 2, first, at()).unwrap();
        let expected = deploy_event(
            ty,
            "rollout:2:deployed",
            "2023-11-14T22:13:20Z",
            "shop",
            json!({ "environment": { "id": "production" }, "artifactId": "pkg:generic/shop@v2" }),
        );
        check(&event, Origin::Internal, expected);
    }
}

#[test]
fn rolled_back_is_attempt_rollback_and_incident() {
    let events = delivery::rolled_back(&Rollback {
        service: "shop",
        version: "v3",
        environment: "production",
        failed_artifact: "pkg:generic/shop@v3",
        stable_artifact: "pkg:generic/shop@v2",
        rollout: 3,
        reason: "5xx: 12% over 2 min",
        impact_from: at(),
        at: later(),
    })
    .unwrap();
    let incident = json!({
        "description": "automatic rollback of shop v3 in production: 5xx",
        "environment": { "id": "production" },
        "service": { "id": "shop" },
        "artifactId": "pkg:generic/shop@v3",
    });
    let expected = [
        deploy_event(
            "dev.cdevents.service.upgraded.0.3.0",
            "rollout:3:attempt",
            "2023-11-14T22:13:20Z",
            "shop",
            json!({ "environment": { "id": "production" }, "artifactId": "pkg:generic/shop@v3" }),
        ),
        deploy_event(
            "dev.cdevents.service.rolledback.0.3.0",
            "rollout:3:rolledback",
            "2023-11-14T22:23:20Z",
            "shop",
            json!({ "environment": { "id": "production" }, "artifactId": "pkg:generic/shop@v2" }),
        ),
        deploy_event(
            "dev.cdevents.incident.detected.0.3.0",
            "rollout:3:incident",
            "2023-11-14T22:13:20Z",
            "rollout-3",
            incident.clone(),
        ),
        deploy_event(
            "dev.cdevents.incident.resolved.0.3.0",
            "rollout:3:incident-resolved",
            "2023-11-14T22:23:20Z",
            "rollout-3",
            incident,
        ),
    ];
    assert_eq!(events.len(), expected.len());
    for (event, expected) in events.iter().zip(expected) {
        check(event, Origin::Internal, expected);
    }
}

#[test]
fn policy_exception() {
    let event = delivery::policy_exception("shop", "production", "hotfix", "budget exhausted", at()).unwrap();
    let expected = deploy_event(
        "dev.cdeventsx.mobius-policy.exception.0.1.0",
        RANDOM,
        "2023-11-14T22:13:20Z",
        "shop",
        json!({ "environment": { "id": "production" }, "reason": "hotfix", "message": "budget exhausted" }),
    );
    check(&event, Origin::Internal, expected);
}

#[test]
fn policy_decided() {
    let (deny, warn, exceptions) = (vec!["not built by Mobius".to_owned()], vec!["old".to_owned()], vec![]);
    let decision = delivery::PolicyDecision {
        environment: "production",
        action: "deploy",
        artifact: "pkg:generic/upload@sha256%3Aab",
        deny: &deny,
        warn: &warn,
        exceptions: &exceptions,
    };
    let event = delivery::policy_decided("shop", &decision, at()).unwrap();
    let expected = deploy_event(
        "dev.cdeventsx.mobius-policy.decided.0.1.0",
        RANDOM,
        "2023-11-14T22:13:20Z",
        "shop",
        json!({
            "environment": { "id": "production" },
            "action": "deploy",
            "artifact": "pkg:generic/upload@sha256%3Aab",
            "allow": false,
            "deny": ["not built by Mobius"],
            "warn": ["old"],
            "exceptions": [],
        }),
    );
    check(&event, Origin::Internal, expected);
}

fn run(sha: Option<&str>, branch: Option<&str>) -> RunIdentity {
    RunIdentity {
        repository: "acme/app".into(),
        file: ".github/workflows/ci.yml".into(),
        pipeline_name: "CI".into(),
        run_id: 7,
        uri: "file:///src/.github/workflows/ci.yml".into(),
        sha: sha.map(str::to_owned),
        branch: branch.map(str::to_owned),
        source: "/mobius/run/acme/app".into(),
    }
}

// The old `runs::cdevents::run_event`: every event of a run, with the run's `customData` when
// it has a revision.
fn run_event(run: &RunIdentity, ty: &str, at: &str, subject: &str, content: Value) -> Value {
    let mut event = json!({
        "context": {
            "specversion": "0.5.1",
            "id": RANDOM,
            "source": run.source,
            "type": ty,
            "timestamp": at,
        },
        "subject": { "id": subject, "source": run.source, "content": content },
    });
    if let Some(sha) = &run.sha {
        event["customData"] = json!({ "repository": run.repository, "revision": sha, "branch": run.branch });
        event["customDataContentType"] = json!("application/json");
    }
    event
}

const RUN: &str = "acme/app/.github/workflows/ci.yml/7";

#[test]
fn pipeline_run_queued_started_finished() {
    // With a revision and a branch, with a revision and no branch (`branch: null`), without.
    for run in [run(Some("abc123"), Some("main")), run(Some("abc123"), None), run(None, None)] {
        let pipeline = json!({ "pipelineName": "CI", "uri": "file:///src/.github/workflows/ci.yml" });
        let queued = pipeline::run_queued(&run, at()).unwrap();
        let expected =
            run_event(&run, "dev.cdevents.pipelinerun.queued.0.3.0", "2023-11-14T22:13:20Z", RUN, pipeline.clone());
        check(&queued, Origin::Internal, expected);

        let started = pipeline::run_started(&run, at()).unwrap();
        let expected =
            run_event(&run, "dev.cdevents.pipelinerun.started.0.3.0", "2023-11-14T22:13:20Z", RUN, pipeline.clone());
        check(&started, Origin::Internal, expected);

        let finished = pipeline::run_finished(&run, later(), Outcome::Failure, Some("failed jobs: a, b")).unwrap();
        let mut content = pipeline.clone();
        content["outcome"] = json!("failure");
        content["errors"] = json!("failed jobs: a, b");
        let expected = run_event(&run, "dev.cdevents.pipelinerun.finished.0.3.0", "2023-11-14T22:23:20Z", RUN, content);
        check(&finished, Origin::Internal, expected);

        for (outcome, word) in [(Outcome::Success, "success"), (Outcome::Cancel, "cancel")] {
            let finished = pipeline::run_finished(&run, later(), outcome, None).unwrap();
            let mut content = pipeline.clone();
            content["outcome"] = json!(word);
            let expected =
                run_event(&run, "dev.cdevents.pipelinerun.finished.0.3.0", "2023-11-14T22:23:20Z", RUN, content);
            check(&finished, Origin::Internal, expected);
        }
    }
}

#[test]
fn task_run_started_finished() {
    let run = run(Some("abc123"), Some("main"));
    let task = format!("{RUN}/build (linux)");
    let content = json!({
        "taskName": "build (linux)",
        "uri": "file:///src/.github/workflows/ci.yml",
        "pipelineRun": { "id": RUN },
    });
    let started = pipeline::task_started(&run, "build (linux)", at()).unwrap();
    let expected =
        run_event(&run, "dev.cdevents.taskrun.started.0.3.0", "2023-11-14T22:13:20Z", &task, content.clone());
    check(&started, Origin::Internal, expected);

    let finished =
        pipeline::task_finished(&run, "build (linux)", later(), Outcome::Failure, Some("job build (linux) failed"))
            .unwrap();
    let mut failed = content.clone();
    failed["outcome"] = json!("failure");
    failed["errors"] = json!("job build (linux) failed");
    let expected = run_event(&run, "dev.cdevents.taskrun.finished.0.3.0", "2023-11-14T22:23:20Z", &task, failed);
    check(&finished, Origin::Internal, expected);

    let finished = pipeline::task_finished(&run, "build (linux)", later(), Outcome::Success, None).unwrap();
    let mut succeeded = content;
    succeeded["outcome"] = json!("success");
    let expected = run_event(&run, "dev.cdevents.taskrun.finished.0.3.0", "2023-11-14T22:23:20Z", &task, succeeded);
    check(&finished, Origin::Internal, expected);
}

#[test]
fn artifact_packaged_needs_a_revision() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let with = run(Some("abc123"), Some("main"));
    let event = pipeline::artifact_packaged(&with, "dist", &digest, at()).unwrap();
    let expected = run_event(
        &with,
        "dev.cdevents.artifact.packaged.0.3.0",
        "2023-11-14T22:13:20Z",
        &format!("pkg:generic/dist@sha256%3A{}", "a".repeat(64)),
        json!({ "change": { "id": "abc123", "source": "acme/app" }, "sbom": { "uri": "file:///dev/null" } }),
    );
    check(&event, Origin::Internal, expected);

    let without = run(None, None);
    let error = pipeline::artifact_packaged(&without, "dist", &digest, at()).unwrap_err();
    assert_eq!(error, EmitError::NoRevision { ty: "dev.cdevents.artifact.packaged.0.3.0" });
}

#[test]
fn a_run_that_never_started() {
    let run = run(Some("abc123"), Some("main"));
    for (outcome, word) in [(Outcome::Cancel, "cancel"), (Outcome::Error, "error")] {
        let events = pipeline::run_never_started(&run, at(), later(), outcome, "superseded by run 8").unwrap();
        let pipeline = json!({ "pipelineName": "CI", "uri": "file:///src/.github/workflows/ci.yml" });
        let mut finished = pipeline.clone();
        finished["outcome"] = json!(word);
        finished["errors"] = json!("superseded by run 8");
        let expected = [
            run_event(&run, "dev.cdevents.pipelinerun.queued.0.3.0", "2023-11-14T22:13:20Z", RUN, pipeline),
            run_event(&run, "dev.cdevents.pipelinerun.finished.0.3.0", "2023-11-14T22:23:20Z", RUN, finished),
        ];
        assert_eq!(events.len(), 2);
        for (event, expected) in events.iter().zip(expected) {
            check(event, Origin::Internal, expected);
        }
    }
}

#[test]
fn change_merged() {
    let sha = "a".repeat(40);
    let commit = LandedCommit { sha: sha.clone(), commit_time: later(), author_time: at(), subject: "Fix".into() };
    let event = pipeline::change_merged("acme/app", "file:///src/app", "main", &commit).unwrap();
    let expected = json!({
        "context": {
            "specversion": "0.5.1",
            "id": format!("change:main:{sha}"),
            "source": "/mobius/server/acme/app",
            "type": "dev.cdevents.change.merged.0.3.0",
            "timestamp": "2023-11-14T22:23:20Z",
        },
        "subject": {
            "id": sha,
            "source": "/mobius/server/acme/app",
            "content": { "repository": { "id": "acme/app", "source": "file:///src/app" } },
        },
        "customData": {
            "branch": "main",
            "message": "Fix",
            "authorTime": "2023-11-14T22:13:20Z",
        },
        "customDataContentType": "application/json",
    });
    check(&event, Origin::Internal, expected);
}

#[test]
fn alert_firing_and_resolved() {
    // The alerter's notification body, as it sends it to webhooks.
    let body = json!({
        "owner": "team-shop",
        "runbook": null,
        "service": "shop",
        "slo": "availability",
        "environment": "production",
        "severity": "page",
        "state": "firing",
        "at": "2023-11-14T22:13:20Z",
        "objective": 0.999,
        "budget_remaining": 0.25,
        "burn_rates": [["5m", 14.4], ["1h", 15.2]],
        "unknown": null,
    });
    for (state, ty) in [
        (AlertState::Firing, "dev.cdeventsx.mobius-alert.firing.0.1.0"),
        (AlertState::Resolved, "dev.cdeventsx.mobius-alert.resolved.0.1.0"),
    ] {
        let event = reliability::alert(state, "shop", "availability", &body, at()).unwrap();
        // The old `Alerter::record`.
        let mut expected = json!({
            "context": {
                "specversion": "0.5.1",
                "id": RANDOM,
                "source": "/mobius/slo/shop",
                "type": ty,
                "timestamp": "2023-11-14T22:13:20Z",
            },
            "subject": { "id": "shop-availability", "content": body },
        });
        expected["subject"]["source"] = expected["context"]["source"].clone();
        check(&event, Origin::Internal, expected);
    }
}

// The old `alerting::incident_event`.
fn page_incident(id: &str, predicate: &str, description: &str, at: &str) -> Value {
    json!({
        "context": {
            "specversion": "0.5.1",
            "id": format!("{id}:{predicate}"),
            "source": "/mobius/slo/shop",
            "type": format!("dev.cdevents.incident.{predicate}.0.3.0"),
            "timestamp": at,
        },
        "subject": {
            "id": id,
            "source": "/mobius/slo/shop",
            "content": {
                "description": description,
                "environment": { "id": "production" },
                "service": { "id": "shop" },
            },
        },
    })
}

#[test]
fn a_page_opens_and_resolves_an_incident() {
    let id = reliability::slo_incident_id("shop", "availability", at());
    assert_eq!(id, "alert-shop-availability-1700000000");
    let incident = SloIncident { id: &id, service: "shop", environment: "production" };

    // With the version burning the most, as `Alerter::open_incident` wrote it.
    let description = "shop availability SLO burning: page alert; version v3 has the highest error ratio";
    let event = reliability::slo_incident_detected(&incident, description, Some("pkg:generic/shop@v3"), at()).unwrap();
    let mut expected = page_incident(&id, "detected", "", "2023-11-14T22:13:20Z");
    expected["customData"] = json!({ "severity": "sev2" });
    expected["subject"]["content"]["artifactId"] = json!("pkg:generic/shop@v3");
    expected["subject"]["content"]["description"] = json!(description);
    check(&event, Origin::Internal, expected);

    // Without one.
    let description = "shop availability SLO burning: page alert";
    let event = reliability::slo_incident_detected(&incident, description, None, at()).unwrap();
    let mut expected = page_incident(&id, "detected", description, "2023-11-14T22:13:20Z");
    expected["customData"] = json!({ "severity": "sev2" });
    check(&event, Origin::Internal, expected);

    let description = "the page alert resolved and stayed quiet";
    let event = reliability::slo_incident_resolved(&incident, description, later()).unwrap();
    check(&event, Origin::Internal, page_incident(&id, "resolved", description, "2023-11-14T22:23:20Z"));
}

// The old `mobius incident`'s `incident_event`.
fn hand_incident(ty: &str, subject: &str, at: &str) -> Value {
    json!({
        "context": {
            "specversion": "0.5.1",
            "id": RANDOM,
            "source": "/mobius/cli",
            "type": ty,
            "timestamp": at,
        },
        "subject": {
            "id": subject,
            "source": "/mobius/cli",
            "content": { "environment": { "id": "production" }, "service": { "id": "shop" } },
        },
    })
}

#[test]
fn incidents_by_hand() {
    let opened =
        IncidentRef { id: "inc-1700000000000", source: "/mobius/cli", service: "shop", environment: "production" };
    let event = reliability::opened_by_hand(&opened, "checkout is down", "sev1", at(), Origin::Api).unwrap();
    let mut expected =
        hand_incident("dev.cdevents.incident.detected.0.3.0", "inc-1700000000000", "2023-11-14T22:13:20Z");
    expected["subject"]["content"]["description"] = json!("checkout is down");
    expected["customData"] = json!({ "severity": "sev1" });
    check(&event, Origin::Api, expected);

    // An incident opened elsewhere keeps its own subject source.
    let elsewhere =
        IncidentRef { id: "rollout-3", source: "/mobius/deploy/shop", service: "shop", environment: "production" };
    for (incident, subject_source) in [(opened, "/mobius/cli"), (elsewhere, "/mobius/deploy/shop")] {
        let event = reliability::acknowledged_by_hand(&incident, later(), Origin::Api).unwrap();
        let mut expected =
            hand_incident("dev.cdeventsx.mobius-incident.acknowledged.0.1.0", incident.id, "2023-11-14T22:23:20Z");
        expected["subject"]["source"] = json!(subject_source);
        check(&event, Origin::Api, expected);

        let event = reliability::resolved_by_hand(&incident, later(), Origin::Api).unwrap();
        let mut expected = hand_incident("dev.cdevents.incident.resolved.0.3.0", incident.id, "2023-11-14T22:23:20Z");
        expected["subject"]["source"] = json!(subject_source);
        check(&event, Origin::Api, expected);
    }
    assert!(reliability::INCIDENT_ACKNOWLEDGED.starts_with(mobius_events::cdevents::ACKNOWLEDGED));
}

/// `mobius incident ack|resolve` find the incident by the key of its facts: the key an event
/// by hand gives it must name that incident again.
#[test]
fn an_incident_by_hand_is_found_again_by_its_key() {
    let opened =
        IncidentRef { id: "inc-1700000000000", source: "/mobius/cli", service: "shop", environment: "production" };
    let event = reliability::opened_by_hand(&opened, "checkout is down", "sev1", at(), Origin::Api).unwrap();
    let observed = event.observations.iter().find_map(|o| match o {
        mobius_events::observation::Observation::Incident(incident) => Some(incident.key.clone()),
        _ => None,
    });
    assert_eq!(observed.as_deref(), Some("cdevents:/mobius/cli#inc-1700000000000"));
    assert_eq!(opened.key(), observed.unwrap());
    let key = opened.key();
    assert_eq!(IncidentRef::from_key(&key, "shop", "production"), Some(opened));
    let page = "cdevents:/mobius/deploy/shop#rollout-3";
    let found = IncidentRef::from_key(page, "shop", "production").unwrap();
    assert_eq!((found.source, found.id), ("/mobius/deploy/shop", "rollout-3"));
    assert_eq!(IncidentRef::from_key("github:acme/shop#12", "shop", "production"), None);
    assert_eq!(IncidentRef::from_key("cdevents:/no/subject", "shop", "production"), None);
}

#[test]
fn postmortem_recorded() {
    let key = "cdevents:/mobius/deploy/shop#rollout-3";
    for source in ["/mobius/cli", "/mobius/api"] {
        let event = reliability::postmortem_recorded(key, "https://wiki/pm/3", source, at(), Origin::Api).unwrap();
        // The old `incidents::recorded_event`: no subject source.
        let expected = json!({
            "context": {
                "specversion": "0.5.1",
                "id": format!("postmortem:{key}"),
                "source": source,
                "type": "dev.cdeventsx.mobius-postmortem.recorded.0.1.0",
                "timestamp": "2023-11-14T22:13:20Z",
            },
            "subject": { "id": key, "content": { "location": "https://wiki/pm/3" } },
        });
        check(&event, Origin::Api, expected);
    }
}

#[test]
fn any_event_from_its_parts() {
    let content = json!({ "environment": { "id": "production" }, "artifactId": "pkg:generic/shop@v1" });
    for (id, timestamp) in [(Some("d-1"), "2024-05-01T12:00:00Z"), (None, "2024-05-01T14:00:00+02:00")] {
        let parts = AnyEvent {
            ty: "dev.cdevents.service.deployed.0.3.0",
            id,
            source: "/mobius/cli",
            timestamp,
            subject: "shop",
            content: &content,
        };
        let event = emit::any(&parts, Origin::Api).unwrap();
        // The old `mobius events send`'s `build_event`: the timestamp as written, no subject
        // source.
        let expected = json!({
            "context": {
                "specversion": "0.5.1",
                "id": id.unwrap_or(RANDOM),
                "source": "/mobius/cli",
                "type": "dev.cdevents.service.deployed.0.3.0",
                "timestamp": timestamp,
            },
            "subject": { "id": "shop", "content": content },
        });
        let raw: Value = serde_json::from_str(&event.raw).unwrap();
        assert_eq!(raw["context"]["timestamp"], timestamp);
        if id.is_some() {
            assert_eq!(raw, expected);
            assert_eq!(event.raw, expected.to_string());
        } else {
            assert_eq!(raw["subject"], expected["subject"]);
            assert!(uuid::Uuid::parse_str(&event.id).is_ok());
        }
        assert_eq!(event.timestamp, "2024-05-01T12:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(event.origin, Origin::Api);
    }
}

/// A constructor never produces an event the API would refuse: values that would make one are
/// an error naming the event type and, through its source, the field.
#[test]
fn values_the_api_would_refuse_are_errors() {
    let check = |result: Result<NewEvent, EmitError>, ty: &str, field: &str| {
        let error = result.expect_err("refused");
        let EmitError::Invalid { ty: got, source } = &error else { panic!("{error:?}") };
        assert_eq!(got, ty);
        let chain = format!("{error}: {source}");
        assert!(chain.contains(field), "`{field}` in `{chain}`");
    };
    check(
        delivery::deployed("", "production", "pkg:generic/shop@v1", 1, true, at()),
        "dev.cdevents.service.deployed.0.3.0",
        "subject.id",
    );
    check(
        delivery::deployed("shop", "production", "pkg:generic/shop@v1", 1, true, Timestamp::MIN),
        "dev.cdevents.service.deployed.0.3.0",
        "context.timestamp",
    );
    check(
        delivery::environment_created("shop\0", "production", "http://x", at()),
        "dev.cdevents.environment.created.0.3.0",
        "context.source",
    );
    let run = RunIdentity { run_id: 1, ..run(Some("abc"), None) };
    check(pipeline::task_started(&run, "a\nb", at()), "dev.cdevents.taskrun.started.0.3.0", "subject.id");
    let parts = AnyEvent {
        ty: "dev.cdevents.service.deployed.0.3.0",
        id: None,
        source: "/mobius/cli",
        timestamp: "yesterday",
        subject: "shop",
        content: &json!({}),
    };
    check(emit::any(&parts, Origin::Api), "dev.cdevents.service.deployed.0.3.0", "context.timestamp");
    let parts = AnyEvent { ty: "dev.cdevents.service.deployed.0.3.0", timestamp: "2024-05-01T12:00:00Z", ..parts };
    let error = emit::any(&parts, Origin::Api).unwrap_err();
    assert!(matches!(error, EmitError::Invalid { source: EventError::Schema { .. }, .. }), "{error:?}");
}
