//! GitHub: every corpus payload, the observations the measurements read, signatures and
//! refusals.

use std::path::PathBuf;

use hmac::{Hmac, Mac};
use mobius_events::github::{translate, verify_signature};
use mobius_events::observation::{
    CauseHint, Commit, DeploymentObserved, DeploymentOutcome, IncidentObserved, Merge, Observation, PipelineRunKind,
    PipelineRunObserved, Push,
};
use mobius_events::{NewEvent, Origin, Webhook, WebhookError};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{stored, ts};

const SECRET: &[u8] = b"It's a Secret to Everybody";
fn corpus_dir() -> std::path::PathBuf {
    crate::shared_corpus().join("github-webhooks")
}

/// A corpus payload, by its path under the corpus (`<event>/<file>`).
fn corpus(file: &str) -> Vec<u8> {
    let path = corpus_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A corpus payload changed by `edit`: the corpus has no merged pull request, no incident and
/// no failed deployment, so those are made from the nearest real payload.
fn edited(file: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&corpus(file)).expect("corpus payloads are JSON");
    edit(&mut value);
    serde_json::to_vec_pretty(&value).expect("a JSON value serialises")
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the server does with a delivery: verify, then translate.
fn deliver(event: &str, body: &[u8]) -> NewEvent {
    verify_signature(SECRET, Some(&sign(SECRET, body)), body).expect("signed with the secret");
    stored(translate(event, Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"), body).expect("translates"))
}

fn check(event: &str, body: &[u8], expected: &[Observation]) {
    assert_eq!(deliver(event, body).observations, expected);
}

#[test]
fn every_corpus_payload_verifies_and_translates() {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for dir in std::fs::read_dir(corpus_dir()).expect("the shared corpus is present") {
        let dir = dir.expect("readable corpus").path();
        if !dir.is_dir() {
            continue;
        }
        let event = dir.file_name().and_then(|n| n.to_str()).expect("UTF-8 folder name").to_owned();
        for file in std::fs::read_dir(&dir).expect("readable corpus") {
            files.push((event.clone(), file.expect("readable corpus").path()));
        }
    }
    assert!(files.len() > 100, "found only {} corpus payloads", files.len());

    for (event, path) in files {
        let body = std::fs::read(&path).expect("readable payload");
        let name = path.display();
        verify_signature(SECRET, Some(&sign(SECRET, &body)), &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let webhook = translate(&event, None, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        if event == "ping" {
            assert_eq!(webhook, Webhook::Ping, "{name}");
            continue;
        }
        let got = stored(webhook);
        assert_eq!(got.origin, Origin::Github, "{name}");
        assert_eq!(got.raw.as_bytes(), body, "{name}: the body is kept verbatim");
        assert!(got.ty.starts_with(&format!("dev.cdeventsx.github-{event}.")), "{name}: {}", got.ty);
        assert!(got.source.starts_with("github"), "{name}: {}", got.source);
        assert!(!got.id.is_empty() && !got.subject.is_empty(), "{name}");
    }
}

#[test]
fn envelope_fields_come_from_the_payload() {
    // (event, file, id, ty, subject, timestamp)
    let cases = [
        (
            "push",
            "push/with-new-branch.payload.json",
            "push:refs/heads/master:6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "dev.cdeventsx.github-push.received.0.1.0",
            "Codertocat/Hello-World",
            "2019-05-15T15:19:25Z",
        ),
        (
            // A tag deletion has no commit: the repository's `pushed_at` dates it.
            "push",
            "push/payload.json",
            "push:refs/tags/simple-tag:0000000000000000000000000000000000000000",
            "dev.cdeventsx.github-push.received.0.1.0",
            "Codertocat/Hello-World",
            "2019-05-15T15:20:57Z",
        ),
        (
            "deployment_status",
            "deployment_status/payload.json",
            "deployment_status:209916254",
            "dev.cdeventsx.github-deployment_status.created.0.1.0",
            "Codertocat/Hello-World",
            "2019-05-15T15:20:55Z",
        ),
        (
            "workflow_run",
            "workflow_run/completed.payload.json",
            "workflow_run:289782451:1:completed",
            "dev.cdeventsx.github-workflow_run.completed.0.1.0",
            "octo-org/octo-repo",
            "2020-10-05T16:33:49Z",
        ),
        (
            "workflow_job",
            "workflow_job/completed.success.with-organization.payload.json",
            "workflow_job:289782451:completed",
            "dev.cdeventsx.github-workflow_job.completed.0.1.0",
            "Codertocat/Hello-World",
            "2021-08-05T10:38:16Z",
        ),
        (
            "issues",
            "issues/opened.payload.json",
            "issues:444500041:opened:2019-05-15T15:20:18Z",
            "dev.cdeventsx.github-issues.opened.0.1.0",
            "Codertocat/Hello-World#1",
            "2019-05-15T15:20:18Z",
        ),
        (
            "pull_request",
            "pull_request/closed.payload.json",
            "pull_request:279147437:closed:2019-05-15T15:21:18Z",
            "dev.cdeventsx.github-pull_request.closed.0.1.0",
            "Codertocat/Hello-World#2",
            "2019-05-15T15:21:18Z",
        ),
        (
            // Events the measurements do not read keep the delivery id (with the body's digest,
            // appended below) and their own time.
            "check_run",
            "check_run/completed.payload.json",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958:sha256:",
            "dev.cdeventsx.github-check_run.completed.0.1.0",
            "Codertocat/Hello-World",
            "2019-05-15T15:21:12Z",
        ),
        (
            "create",
            "create/payload.json",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958:sha256:",
            "dev.cdeventsx.github-create.received.0.1.0",
            "Codertocat/Hello-World",
            "",
        ),
    ];
    for (event, file, id, ty, subject, timestamp) in cases {
        let got = deliver(event, &corpus(file));
        let id = match id.strip_suffix(":sha256:") {
            Some(_) => format!("{id}{}", hex::encode(<Sha256 as sha2::Digest>::digest(corpus(file)))),
            None => id.to_owned(),
        };
        assert_eq!((got.id.as_str(), got.ty.as_str(), got.subject.as_str()), (id.as_str(), ty, subject), "{file}");
        assert_eq!(got.source, format!("github:{}", subject.split('#').next().unwrap_or_default()), "{file}");
        if !timestamp.is_empty() {
            assert_eq!(got.timestamp, ts(timestamp), "{file}");
        }
    }
}

#[test]
fn corpus_payloads_yield_their_observations() {
    let hello = "Codertocat/Hello-World";
    let deployment = |outcome, key: &str| {
        Observation::Deployment(DeploymentObserved {
            key: key.to_owned(),
            service: "Hello-World".to_owned(),
            environment: "production".to_owned(),
            repository: Some(hello.to_owned()),
            revision: Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e".to_owned()),
            artifact_id: None,
            started: ts("2019-05-15T15:20:53Z"),
            finished: ts("2019-05-15T15:20:55Z"),
            outcome,
        })
    };
    let workflow_run = PipelineRunObserved {
        key: "github:octo-org/octo-repo:workflow_run:289782451:1".to_owned(),
        kind: PipelineRunKind::Run,
        // The workflow has no `name:`, so its file names it.
        name: ".github/workflows/test.yml".to_owned(),
        repository: Some("octo-org/octo-repo".to_owned()),
        revision: Some("3484a3fb816e0859fd6e1cea078d76385ff50625".to_owned()),
        branch: Some("master".to_owned()),
        queued: Some(ts("2020-10-05T16:33:24Z")),
        started: Some(ts("2020-10-05T16:33:49Z")),
        finished: Some(ts("2020-10-05T16:33:49Z")),
        outcome: Some("success".to_owned()),
    };
    let job = |name: &str, started: Option<&str>, finished: Option<&str>, outcome: Option<&str>| {
        Observation::PipelineRun(PipelineRunObserved {
            key: format!("github:{hello}:workflow_job:289782451"),
            kind: PipelineRunKind::Job,
            name: name.to_owned(),
            repository: Some(hello.to_owned()),
            revision: Some("3484a3fb816e0859fd6e1cea078d76385ff50625".to_owned()),
            branch: Some("main".to_owned()),
            queued: Some(ts(if finished.is_some() { "2021-08-05T10:33:58Z" } else { "2021-09-13T02:21:13Z" })),
            started: started.map(ts),
            finished: finished.map(ts),
            outcome: outcome.map(str::to_owned),
        })
    };

    let cases: Vec<(&str, &str, Vec<Observation>)> = vec![
        (
            "push",
            "push/with-new-branch.payload.json",
            vec![Observation::Push(Push {
                repository: hello.to_owned(),
                branch: "master".to_owned(),
                commits: vec![Commit {
                    sha: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".to_owned(),
                    author_time: None,
                    commit_time: ts("2019-05-15T15:19:25Z"),
                    message: "Initial commit".to_owned(),
                }],
            })],
        ),
        // A deleted tag: stored, but no change.
        ("push", "push/payload.json", vec![]),
        (
            "deployment_status",
            "deployment_status/payload.json",
            vec![deployment(DeploymentOutcome::Success, "github:Codertocat/Hello-World:deployment:145988746")],
        ),
        // `in_progress` is not a finished attempt.
        ("deployment_status", "deployment_status/gh-pages.payload.json", vec![]),
        ("workflow_run", "workflow_run/completed.payload.json", vec![Observation::PipelineRun(workflow_run.clone())]),
        (
            "workflow_run",
            "workflow_run/requested.payload.json",
            vec![Observation::PipelineRun(PipelineRunObserved { finished: None, outcome: None, ..workflow_run })],
        ),
        (
            "workflow_job",
            "workflow_job/completed.failure.with-organization.payload.json",
            vec![job("linters", Some("2021-08-05T10:34:58Z"), Some("2021-08-05T10:38:16Z"), Some("failure"))],
        ),
        (
            "workflow_job",
            "workflow_job/in_progress.payload.json",
            vec![job("Analyze (javascript)", Some("2021-09-13T02:21:13Z"), None, None)],
        ),
        // Queued: GitHub fills `started_at`, but nothing has started.
        ("workflow_job", "workflow_job/queued.payload.json", vec![job("update", None, None, None)]),
        // Labelled `bug`, not `incident`.
        ("issues", "issues/opened.payload.json", vec![]),
        // Closed without merging.
        ("pull_request", "pull_request/closed.payload.json", vec![]),
    ];
    for (event, file, expected) in cases {
        let got = deliver(event, &corpus(file));
        assert_eq!(got.observations, expected, "{file}");
    }
}

#[test]
fn a_push_keeps_every_commit_in_order_with_its_first_line() {
    let body = edited("push/with-new-branch.payload.json", |v| {
        let second = json!({
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "message": "Fix the README typo\n\nIt said 'committ'.",
            "timestamp": "2019-05-15T17:25:00+02:00",
        });
        v["commits"].as_array_mut().expect("commits").push(second.clone());
        v["head_commit"] = second;
        v["after"] = json!("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
    });
    let got = deliver("push", &body);
    let Observation::Push(push) = &got.observations[0] else { panic!("{:?}", got.observations) };
    let commits: Vec<_> = push.commits.iter().map(|c| (c.sha.as_str(), c.commit_time, c.message.as_str())).collect();
    assert_eq!(
        commits,
        [
            ("6113728f27ae82c7b1a177c8d03f9e96e0adf246", ts("2019-05-15T15:19:25Z"), "Initial commit"),
            ("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", ts("2019-05-15T15:25:00Z"), "Fix the README typo"),
        ]
    );
    assert_eq!(got.timestamp, ts("2019-05-15T15:25:00Z"), "the head commit dates the push");
}

#[test]
fn a_failed_deployment_is_its_own_attempt() {
    for state in ["failure", "error"] {
        let body = edited("deployment_status/payload.json", |v| v["deployment_status"]["state"] = json!(state));
        let got = deliver("deployment_status", &body);
        let [Observation::Deployment(d)] = got.observations.as_slice() else { panic!("{:?}", got.observations) };
        assert_eq!(d.outcome, DeploymentOutcome::Failure, "{state}");
        assert_eq!(d.key, "github:Codertocat/Hello-World:deployment:145988746:failed:209916254");
    }
    // Older deliveries name the environment on the deployment only.
    let body = edited("deployment_status/payload.json", |v| {
        v["deployment_status"].as_object_mut().expect("object").remove("environment");
        v["deployment"]["environment"] = json!("staging");
    });
    let got = deliver("deployment_status", &body);
    let [Observation::Deployment(d)] = got.observations.as_slice() else { panic!("{:?}", got.observations) };
    assert_eq!(d.environment, "staging");
}

#[test]
fn a_merged_pull_request_is_a_merge() {
    let body = edited("pull_request/closed.payload.json", |v| {
        v["pull_request"]["merged"] = json!(true);
        v["pull_request"]["merged_at"] = json!("2019-05-15T15:21:18Z");
    });
    check(
        "pull_request",
        &body,
        &[Observation::Merge(Merge {
            repository: "Codertocat/Hello-World".to_owned(),
            merge_sha: "c4295bd74fb0f4fda03689c3df3f2803b658fd85".to_owned(),
            source_branch: "changes".to_owned(),
            target_branch: "master".to_owned(),
            merged_at: ts("2019-05-15T15:21:18Z"),
        })],
    );
}

#[test]
fn an_issue_labelled_incident_is_an_incident() {
    let incident = |file: &str, body: &str| {
        edited(file, |v| {
            v["issue"]["labels"] = json!([
                {"id": 1, "name": "Incident", "color": "b60205", "default": false},
                {"id": 2, "name": "SEV-1", "color": "b60205", "default": false}
            ]);
            v["issue"]["body"] = json!(body);
        })
    };
    let expected = IncidentObserved {
        key: "github:Codertocat/Hello-World:issue:1".to_owned(),
        service: "Hello-World".to_owned(),
        environment: mobius_events::DEFAULT_ENVIRONMENT.to_owned(),
        title: "Spelling error in the README file".to_owned(),
        detected: Some(ts("2019-05-15T15:20:18Z")),
        acknowledged: None,
        resolved: None,
        reopened: false,
        cause: Some(CauseHint::Commit { sha: "abc1234".to_owned() }),
        severity: Some("sev1".to_owned()),
    };
    let body = incident("issues/opened.payload.json", "Checkout is down.\n\nroot cause: abc1234\n");
    check("issues", &body, &[Observation::Incident(expected.clone())]);

    // Reopened: GitHub keeps the old `closed_at`, which must not resolve it again.
    let body = incident("issues/reopened.payload.json", "Root Cause: ABC1234");
    let reopened = IncidentObserved { detected: Some(ts("2021-07-05T18:05:24Z")), reopened: true, ..expected.clone() };
    check("issues", &body, &[Observation::Incident(reopened)]);

    let body = edited("issues/reopened.payload.json", |v| {
        v["action"] = json!("closed");
        v["issue"]["state"] = json!("closed");
        v["issue"]["labels"] = json!([{"name": "incident"}]);
    });
    let closed = IncidentObserved {
        detected: Some(ts("2021-07-05T18:05:24Z")),
        resolved: Some(ts("2021-07-05T18:07:10Z")),
        cause: None,
        severity: None,
        ..expected
    };
    check("issues", &body, &[Observation::Incident(closed)]);
}

#[test]
fn a_redelivery_has_the_same_identity() {
    for (event, file) in [("push", "push/with-new-branch.payload.json"), ("issues", "issues/opened.payload.json")] {
        let body = corpus(file);
        let first = stored(translate(event, Some("delivery-1"), &body).expect("translates"));
        let again = stored(translate(event, Some("delivery-2"), &body).expect("translates"));
        assert_eq!((&first.id, &first.source), (&again.id, &again.source), "{file}");
    }
    // Without a delivery id, an uninterpreted event is known by its content.
    let body = corpus("release/published.payload.json");
    let first = stored(translate("release", None, &body).expect("translates"));
    let again = stored(translate("release", None, &body).expect("translates"));
    assert_eq!(first.id, again.id);
    assert!(first.id.starts_with("sha256:") && first.id.len() == "sha256:".len() + 64, "{}", first.id);
}

#[test]
fn signatures_are_checked() {
    let body = corpus("push/with-new-branch.payload.json");
    let good = sign(SECRET, &body);
    let bad = WebhookError::BadSignature { header: "X-Hub-Signature-256" };
    let cases: Vec<(&str, &[u8], Option<String>, WebhookError)> = vec![
        ("wrong secret", &body, Some(sign(b"another secret", &body)), bad.clone()),
        ("tampered body", b"{\"ref\":\"refs/heads/main\"}", Some(good.clone()), bad.clone()),
        ("missing header", &body, None, WebhookError::MissingHeader { header: "X-Hub-Signature-256" }),
        ("no sha256= prefix", &body, Some(good.trim_start_matches("sha256=").to_owned()), bad.clone()),
        ("sha1 signature", &body, Some(good.replacen("sha256=", "sha1=", 1)), bad.clone()),
        ("not hex", &body, Some("sha256=zz".repeat(8)), bad.clone()),
        ("truncated", &body, Some(good[..good.len() - 2].to_owned()), bad.clone()),
        ("empty", &body, Some(String::new()), bad),
    ];
    for (name, body, header, expected) in cases {
        let err = verify_signature(SECRET, header.as_deref(), body).expect_err(name);
        assert_eq!(err, expected, "{name}");
        assert!(err.is_unauthorized(), "{name}");
    }
    assert_eq!(verify_signature(SECRET, Some(&good), &body), Ok(()));
    let err = verify_signature(b"", Some(&sign(b"", &body)), &body).expect_err("an empty secret verifies nothing");
    assert!(matches!(err, WebhookError::NotConfigured { .. }) && err.is_unauthorized());
}

#[test]
fn bad_content_is_refused_naming_the_field() {
    let no_sha = edited("deployment_status/payload.json", |v| {
        v["deployment"].as_object_mut().expect("object").remove("sha");
    });
    let bad_time = edited("push/with-new-branch.payload.json", |v| v["commits"][0]["timestamp"] = json!("yesterday"));
    let merged_without_sha = edited("pull_request/closed.payload.json", |v| {
        v["pull_request"]["merged"] = json!(true);
        v["pull_request"]["merged_at"] = json!("2019-05-15T15:21:18Z");
        v["pull_request"]["merge_commit_sha"] = Value::Null;
    });
    // (what is wrong, event, body, the field the error names)
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("no deployment.sha", "deployment_status", no_sha, "deployment.sha"),
        ("bad commit time", "push", bad_time, "commits[0].timestamp"),
        ("merged without sha", "pull_request", merged_without_sha, "pull_request.merge_commit_sha"),
        ("no repository", "push", br#"{"ref":"refs/heads/main","after":"abc"}"#.to_vec(), "repository"),
        ("not UTF-8", "push", b"{\"ref\":\"\xff\"}".to_vec(), "(body)"),
        ("not an object", "push", b"[1, 2]".to_vec(), "(body)"),
    ];
    for (name, event, body, field) in cases {
        let err = translate(event, None, &body).expect_err(name);
        assert!(matches!(&err, WebhookError::Field { field: f, .. } if f == field), "{name}: {err:?}");
        assert!(!err.is_unauthorized(), "{name}");
    }

    let err = translate("push", None, b"{\n  \"ref\": \"refs/heads/main\",\n  oops\n}").expect_err("malformed");
    assert!(
        matches!(&err, WebhookError::Json { line: 3, column: 3, message } if message == "key must be a string"),
        "{err:?}"
    );
    assert!(!err.is_unauthorized());
}

#[test]
fn types_are_always_valid_custom_types() {
    let got = stored(translate("Security Advisory!", None, b"{\"action\":\"Published\"}").expect("translates"));
    assert_eq!(got.ty, "dev.cdeventsx.github-security_advisory_.published.0.1.0");
    assert_eq!(got.source, "github");
}
