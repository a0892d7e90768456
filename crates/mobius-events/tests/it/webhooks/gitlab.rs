//! GitLab: our fixtures (`tests/fixtures/gitlab/`, one per hook the measurements read), every
//! timestamp shape GitLab writes, tokens and refusals.

use std::path::Path;

use mobius_events::gitlab::{translate, verify_token};
use mobius_events::observation::{
    CauseHint, Commit, DeploymentObserved, DeploymentOutcome, IncidentObserved, Merge, Observation, PipelineRunKind,
    PipelineRunObserved, Push,
};
use mobius_events::{NewEvent, Origin, WebhookError};
use serde_json::{Value, json};

use super::{stored, ts};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gitlab");
const TOKEN: &str = "glwht-3c5a9f0e-checkout";
const PROJECT: &str = "acme/checkout";
const MERGE_SHA: &str = "095e8e8d0b4c1f6d1e8da382154717929e0eae7f";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&fixture(name)).expect("fixtures are JSON");
    edit(&mut value);
    serde_json::to_vec_pretty(&value).expect("a JSON value serialises")
}

/// What the server does with a delivery: check the token, then translate.
fn deliver(header: Option<&str>, body: &[u8]) -> NewEvent {
    verify_token(TOKEN, Some(TOKEN)).expect("the configured token");
    stored(translate(header, body).expect("translates"))
}

fn observations(name: &str, body: &[u8]) -> Vec<Observation> {
    let got = deliver(None, body);
    assert_eq!(got.origin, Origin::Gitlab, "{name}");
    got.observations
}

fn deployment(key: &str, revision: &str, at: &str, outcome: DeploymentOutcome) -> Observation {
    Observation::Deployment(DeploymentObserved {
        key: format!("gitlab:{PROJECT}:deployment:{key}"),
        service: "checkout".to_owned(),
        environment: "production".to_owned(),
        repository: Some(PROJECT.to_owned()),
        revision: Some(revision.to_owned()),
        artifact_id: None,
        started: ts(at),
        finished: ts(at),
        outcome,
    })
}

fn pipeline() -> PipelineRunObserved {
    PipelineRunObserved {
        key: format!("gitlab:{PROJECT}:pipeline:1874"),
        kind: PipelineRunKind::Run,
        name: "pipeline".to_owned(),
        repository: Some(PROJECT.to_owned()),
        revision: Some(MERGE_SHA.to_owned()),
        branch: Some("main".to_owned()),
        queued: Some(ts("2024-03-05T10:12:50Z")),
        // created_at + queued_duration (21 s).
        started: Some(ts("2024-03-05T10:13:11Z")),
        finished: Some(ts("2024-03-05T10:19:31Z")),
        outcome: Some("success".to_owned()),
    }
}

fn incident() -> IncidentObserved {
    IncidentObserved {
        key: format!("gitlab:{PROJECT}:issue:87"),
        service: "checkout".to_owned(),
        environment: mobius_events::DEFAULT_ENVIRONMENT.to_owned(),
        title: "EU checkout totals off by one cent, captures failing".to_owned(),
        detected: Some(ts("2024-03-05T11:41:03Z")),
        acknowledged: None,
        resolved: Some(ts("2024-03-05T12:30:15Z")),
        reopened: false,
        cause: Some(CauseHint::Commit { sha: "095e8e8".to_owned() }),
        severity: None,
    }
}

#[test]
fn every_fixture_yields_its_event() {
    // (fixture, X-Gitlab-Event, id, ty, subject, timestamp)
    let cases = [
        (
            "push.json",
            "Push Hook",
            "push:refs/heads/main:6b1f53303a732ccc8c6aae6640399827c15250e3",
            "dev.cdeventsx.gitlab-push.received.0.1.0",
            PROJECT.to_owned(),
            "2024-03-05T08:47:30Z",
        ),
        (
            "merge_request.merged.json",
            "Merge Request Hook",
            "merge_request:9051:merge:2024-03-05T10:12:44.512Z",
            "dev.cdeventsx.gitlab-merge_request.merge.0.1.0",
            format!("{PROJECT}!164"),
            "2024-03-05T10:12:44.512Z",
        ),
        (
            "pipeline.success.json",
            "Pipeline Hook",
            "pipeline:1874:success",
            "dev.cdeventsx.gitlab-pipeline.success.0.1.0",
            PROJECT.to_owned(),
            "2024-03-05T10:19:31Z",
        ),
        (
            "deployment.success.json",
            "Deployment Hook",
            "deployment:402:success",
            "dev.cdeventsx.gitlab-deployment.success.0.1.0",
            PROJECT.to_owned(),
            "2024-03-05T10:19:45Z",
        ),
        (
            "deployment.failed.json",
            "Deployment Hook",
            "deployment:403:failed",
            "dev.cdeventsx.gitlab-deployment.failed.0.1.0",
            PROJECT.to_owned(),
            "2024-03-06T08:02:11Z",
        ),
        (
            "issue.incident-label.json",
            "Issue Hook",
            "issue:5120:close:2024-03-05T12:30:15Z",
            "dev.cdeventsx.gitlab-issue.close.0.1.0",
            format!("{PROJECT}#87"),
            "2024-03-05T12:30:15Z",
        ),
        (
            "issue.incident-type.json",
            "Issue Hook",
            "issue:5133:open:2024-03-06T08:15:40Z",
            "dev.cdeventsx.gitlab-issue.open.0.1.0",
            format!("{PROJECT}#91"),
            "2024-03-06T08:15:40Z",
        ),
    ];
    for (name, header, id, ty, subject, timestamp) in cases {
        let body = fixture(name);
        let got = deliver(Some(header), &body);
        assert_eq!((got.id.as_str(), got.ty.as_str(), got.subject.as_str()), (id, ty, subject.as_str()), "{name}");
        assert_eq!(got.source, format!("gitlab:{PROJECT}"), "{name}");
        assert_eq!(got.timestamp, ts(timestamp), "{name}");
        assert_eq!(got.raw.as_bytes(), body, "{name}: the body is kept verbatim");
        // A re-delivery is the same event.
        assert_eq!(deliver(Some(header), &body).id, got.id, "{name}");
    }
}

#[test]
fn every_fixture_yields_its_observations() {
    let commit = |sha: &str, at: &str, message: &str| Commit {
        sha: sha.to_owned(),
        author_time: None,
        commit_time: ts(at),
        message: message.to_owned(),
    };
    let cases: Vec<(&str, Vec<Observation>)> = vec![
        (
            "push.json",
            vec![Observation::Push(Push {
                repository: PROJECT.to_owned(),
                branch: "main".to_owned(),
                commits: vec![
                    commit(
                        "2f22765d04931a078909145ca628d2264c852d7d",
                        "2024-03-04T15:02:11Z",
                        "Round VAT per line item, not per cart",
                    ),
                    commit(
                        "6b1f53303a732ccc8c6aae6640399827c15250e3",
                        "2024-03-05T08:47:30Z",
                        "Add regression test for EU VAT rounding",
                    ),
                ],
            })],
        ),
        (
            "merge_request.merged.json",
            vec![Observation::Merge(Merge {
                repository: PROJECT.to_owned(),
                merge_sha: MERGE_SHA.to_owned(),
                source_branch: "feature/eu-vat-rounding".to_owned(),
                target_branch: "main".to_owned(),
                merged_at: ts("2024-03-05T10:12:44.512Z"),
            })],
        ),
        ("pipeline.success.json", vec![Observation::PipelineRun(pipeline())]),
        (
            "deployment.success.json",
            vec![deployment("402", MERGE_SHA, "2024-03-05T10:19:45Z", DeploymentOutcome::Success)],
        ),
        (
            "deployment.failed.json",
            vec![deployment(
                "403",
                "4d1ab8e1668ac3ef4e49dae05f5944d0bd6c3224",
                "2024-03-06T08:02:11Z",
                DeploymentOutcome::Failure,
            )],
        ),
        ("issue.incident-label.json", vec![Observation::Incident(incident())]),
        (
            "issue.incident-type.json",
            vec![Observation::Incident(IncidentObserved {
                key: format!("gitlab:{PROJECT}:issue:91"),
                title: "Checkout 5xx ratio above 2%".to_owned(),
                detected: Some(ts("2024-03-06T08:15:40Z")),
                resolved: None,
                cause: None,
                ..incident()
            })],
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(observations(name, &fixture(name)), expected, "{name}");
    }
}

#[test]
fn variants_of_the_fixtures() {
    let no_commit_url = edited("deployment.success.json", |v| v["commit_url"] = Value::Null);
    let cases: Vec<(&str, Vec<u8>, Vec<Observation>)> = vec![
        (
            "deleted branch",
            edited("push.json", |v| {
                v["after"] = json!("0000000000000000000000000000000000000000");
                v["checkout_sha"] = Value::Null;
                v["commits"] = json!([]);
            }),
            vec![],
        ),
        ("tag push", edited("push.json", |v| v["object_kind"] = json!("tag_push")), vec![]),
        (
            "fast-forward squash merge",
            edited("merge_request.merged.json", |v| {
                v["object_attributes"]["merge_commit_sha"] = Value::Null;
                v["object_attributes"]["squash_commit_sha"] = json!("63a5fd3bc5f45a0490e4deca178d288050e26803");
            }),
            vec![Observation::Merge(Merge {
                repository: PROJECT.to_owned(),
                merge_sha: "63a5fd3bc5f45a0490e4deca178d288050e26803".to_owned(),
                source_branch: "feature/eu-vat-rounding".to_owned(),
                target_branch: "main".to_owned(),
                merged_at: ts("2024-03-05T10:12:44.512Z"),
            })],
        ),
        (
            "open merge request",
            edited("merge_request.merged.json", |v| {
                v["object_attributes"]["action"] = json!("update");
                v["object_attributes"]["state"] = json!("opened");
            }),
            vec![],
        ),
        (
            // Without `queued_duration`, the first job to start marks the start.
            "pipeline without queued_duration",
            edited("pipeline.success.json", |v| v["object_attributes"]["queued_duration"] = Value::Null),
            vec![Observation::PipelineRun(pipeline())],
        ),
        (
            "pipeline with a longer queue",
            edited("pipeline.success.json", |v| v["object_attributes"]["queued_duration"] = json!(30.5)),
            vec![Observation::PipelineRun(PipelineRunObserved {
                started: Some(ts("2024-03-05T10:13:20.5Z")),
                ..pipeline()
            })],
        ),
        (
            "running pipeline",
            edited("pipeline.success.json", |v| {
                v["object_attributes"]["status"] = json!("running");
                v["object_attributes"]["finished_at"] = Value::Null;
            }),
            vec![Observation::PipelineRun(PipelineRunObserved { finished: None, outcome: None, ..pipeline() })],
        ),
        (
            "failed pipeline",
            edited("pipeline.success.json", |v| v["object_attributes"]["status"] = json!("failed")),
            vec![Observation::PipelineRun(PipelineRunObserved { outcome: Some("failure".to_owned()), ..pipeline() })],
        ),
        (
            "canceled pipeline",
            edited("pipeline.success.json", |v| v["object_attributes"]["status"] = json!("canceled")),
            vec![Observation::PipelineRun(PipelineRunObserved { outcome: Some("cancel".to_owned()), ..pipeline() })],
        ),
        ("running deployment", edited("deployment.success.json", |v| v["status"] = json!("running")), vec![]),
        (
            "canceled deployment",
            edited("deployment.success.json", |v| v["status"] = json!("canceled")),
            vec![deployment("402", MERGE_SHA, "2024-03-05T10:19:45Z", DeploymentOutcome::Failure)],
        ),
        (
            "deployment without commit_url",
            no_commit_url,
            vec![deployment("402", "095e8e8d", "2024-03-05T10:19:45Z", DeploymentOutcome::Success)],
        ),
        (
            "reopened incident",
            edited("issue.incident-label.json", |v| {
                v["object_attributes"]["action"] = json!("reopen");
                v["object_attributes"]["state"] = json!("opened");
            }),
            vec![Observation::Incident(IncidentObserved { resolved: None, reopened: true, ..incident() })],
        ),
        (
            // GitLab 17.2+ sends incidents as work items typed `Incident`.
            "incident work item",
            edited("issue.incident-label.json", |v| {
                v["object_kind"] = json!("work_item");
                v["labels"] = json!([]);
                v["object_attributes"]["labels"] = json!([]);
                v["object_attributes"]["type"] = json!("Incident");
            }),
            vec![Observation::Incident(incident())],
        ),
        (
            "group-level work item",
            edited("issue.incident-label.json", |v| {
                v["object_kind"] = json!("work_item");
                v.as_object_mut().expect("object").remove("project");
            }),
            vec![],
        ),
        (
            "plain issue",
            edited("issue.incident-type.json", |v| v["object_attributes"]["issue_type"] = json!("issue")),
            vec![],
        ),
    ];
    for (name, body, expected) in cases {
        assert_eq!(observations(name, &body), expected, "{name}");
    }
}

#[test]
fn every_timestamp_shape_gitlab_writes_is_read() {
    let cases = [
        ("2021-04-28 21:50:00 +0200", "2021-04-28T19:50:00Z"),
        ("2016-08-12 15:23:28 UTC", "2016-08-12T15:23:28Z"),
        ("2016-08-12T15:23:28+02:00", "2016-08-12T13:23:28Z"),
        ("2013-12-03T17:15:43Z", "2013-12-03T17:15:43Z"),
        ("2021-02-23T02:41:37.886Z", "2021-02-23T02:41:37.886Z"),
        ("2022-01-18 05:35:35.320020", "2022-01-18T05:35:35.32002Z"),
    ];
    for (written, expected) in cases {
        let body = edited("deployment.success.json", |v| v["status_changed_at"] = json!(written));
        assert_eq!(deliver(None, &body).timestamp, ts(expected), "deployment status_changed_at {written}");
        let body = edited("push.json", |v| v["commits"][0]["timestamp"] = json!(written));
        let pushed = match observations("push", &body).as_slice() {
            [Observation::Push(push)] => push.commits[0].commit_time,
            other => panic!("{other:?}"),
        };
        assert_eq!(pushed, ts(expected), "push commit timestamp {written}");
        let body = edited("issue.incident-type.json", |v| v["object_attributes"]["created_at"] = json!(written));
        let detected = match observations("issue", &body).as_slice() {
            [Observation::Incident(incident)] => incident.detected,
            other => panic!("{other:?}"),
        };
        assert_eq!(detected, Some(ts(expected)), "issue created_at {written}");
    }
}

#[test]
fn the_header_names_the_kind_only_when_the_body_does_not() {
    let body = edited("push.json", |v| {
        v.as_object_mut().expect("object").remove("object_kind");
    });
    let got = deliver(Some("Push Hook"), &body);
    assert_eq!(got.ty, "dev.cdeventsx.gitlab-push.received.0.1.0");
    assert_eq!(got.observations.len(), 1);
    // The body wins when both speak.
    assert_eq!(deliver(Some("Issue Hook"), &fixture("push.json")).ty, got.ty);
    // Group hooks have no object_kind; they are stored, known by their content.
    let member = br#"{"event_name":"user_add_to_group","group_path":"acme","created_at":"2020-12-11T04:57:22Z","updated_at":"2020-12-11T04:57:22Z"}"#;
    let got = deliver(Some("Member Hook"), member);
    assert_eq!((got.ty.as_str(), got.source.as_str()), ("dev.cdeventsx.gitlab-member.received.0.1.0", "gitlab"));
    assert!(got.id.starts_with("sha256:"));
    assert_eq!(got.timestamp, ts("2020-12-11T04:57:22Z"));
    assert_eq!(deliver(Some("Member Hook"), member).id, got.id);

    let err = translate(None, &body).expect_err("no kind at all");
    assert!(matches!(&err, WebhookError::Field { field, .. } if field == "object_kind"), "{err:?}");
}

#[test]
fn tokens_are_checked() {
    let bad = WebhookError::BadSignature { header: "X-Gitlab-Token" };
    let cases = [
        ("wrong token", Some("glwht-3c5a9f0e-checkouT"), bad.clone()),
        ("prefix of the token", Some("glwht-3c5a9f0e"), bad.clone()),
        ("longer token", Some("glwht-3c5a9f0e-checkout "), bad.clone()),
        ("empty token", Some(""), bad),
        ("missing header", None, WebhookError::MissingHeader { header: "X-Gitlab-Token" }),
    ];
    for (name, header, expected) in cases {
        let err = verify_token(TOKEN, header).expect_err(name);
        assert_eq!(err, expected, "{name}");
        assert!(err.is_unauthorized(), "{name}");
    }
    assert_eq!(verify_token(TOKEN, Some(TOKEN)), Ok(()));
    let err = verify_token("", Some("")).expect_err("an empty token verifies nothing");
    assert!(matches!(err, WebhookError::NotConfigured { .. }) && err.is_unauthorized());
}

#[test]
fn bad_content_is_refused_naming_the_field() {
    let remove = |name: &str, pointer: &str, key: &str| {
        edited(name, |v| {
            v.pointer_mut(pointer).and_then(Value::as_object_mut).expect("object").remove(key);
        })
    };
    let cases = [
        ("deployment_id", remove("deployment.success.json", "", "deployment_id")),
        ("status_changed_at", edited("deployment.success.json", |v| v["status_changed_at"] = json!("28/04/2021"))),
        ("object_attributes.sha", remove("pipeline.success.json", "/object_attributes", "sha")),
        (
            "object_attributes.queued_duration",
            edited("pipeline.success.json", |v| v["object_attributes"]["queued_duration"] = json!("21s")),
        ),
        ("builds[0].started_at", {
            edited("pipeline.success.json", |v| {
                v["object_attributes"]["queued_duration"] = Value::Null;
                v["builds"][0]["started_at"] = json!(1709633822);
            })
        }),
        ("commits[1].id", remove("push.json", "/commits/1", "id")),
        ("project", remove("push.json", "", "project")),
        ("object_attributes.source_branch", remove("merge_request.merged.json", "/object_attributes", "source_branch")),
        ("object_attributes.created_at", remove("issue.incident-type.json", "/object_attributes", "created_at")),
    ];
    for (field, body) in cases {
        let err = translate(None, &body).expect_err(field);
        assert!(matches!(&err, WebhookError::Field { field: f, .. } if f == field), "{field}: {err:?}");
        assert!(!err.is_unauthorized(), "{field}");
    }
    let err = translate(Some("Push Hook"), b"{\"object_kind\": \"push\",}").expect_err("trailing comma");
    assert!(matches!(err, WebhookError::Json { line: 1, .. }), "{err:?}");
}
