//! CDEvents validation against the v0.5.1 conformance corpus, read in place: every file is
//! accepted, and mutated copies are rejected with a message naming the problem.

use std::path::PathBuf;

use mobius_events::Origin;
use mobius_events::cdevents::{self, EventError};
use mobius_events::observation::Observation;
use serde_json::{Value, json};

fn conformance() -> Vec<(String, Value)> {
    let dir = crate::shared_corpus().join("cdevents-v0.5.1/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect()
}

fn parse(value: &Value) -> Result<mobius_events::NewEvent, EventError> {
    cdevents::parse(&value.to_string(), Origin::Api)
}

#[test]
fn every_conformance_event_is_accepted() {
    for (name, event) in conformance() {
        let parsed = parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.ty, event["context"]["type"], "{name}");
        assert_eq!(parsed.id, event["context"]["id"], "{name}");
        assert_eq!(parsed.subject, event["subject"]["id"], "{name}");
    }
}

/// Mutates every conformance event and checks the error names the problem.
fn check_mutation(mutate: impl Fn(&mut Value), expected: impl Fn(&str) -> String) {
    for (name, mut event) in conformance() {
        mutate(&mut event);
        let error = match parse(&event) {
            Ok(_) => panic!("{name}: the mutated event was accepted"),
            Err(e) => e.to_string(),
        };
        let want = expected(&name);
        assert!(error.contains(&want), "{name}: expected `{want}` in `{error}`");
    }
}

#[test]
fn missing_required_fields_are_named() {
    for field in ["id", "source", "type", "timestamp"] {
        check_mutation(
            |e| drop(e["context"].as_object_mut().unwrap().remove(field)),
            |_| format!("`context.{field}` is required"),
        );
    }
    check_mutation(|e| drop(e["subject"].as_object_mut().unwrap().remove("id")), |_| "`subject.id` is required".into());
    check_mutation(|e| drop(e.as_object_mut().unwrap().remove("subject")), |_| "`subject` is required".into());
    check_mutation(|e| drop(e["subject"].as_object_mut().unwrap().remove("content")), |_| "`subject.content`".into());
}

#[test]
fn wrong_type_strings_are_refused() {
    check_mutation(|e| e["context"]["type"] = json!("dev.cdevents.nothing"), |_| "dev.cdevents.nothing".into());
    // A real subject at a version the spec never had.
    check_mutation(
        |e| {
            let ty = e["context"]["type"].as_str().unwrap().to_owned();
            let base: Vec<&str> = ty.split('.').take(4).collect();
            e["context"]["type"] = json!(format!("{}.9.9.9", base.join(".")));
        },
        |_| ".9.9.9".into(),
    );
    check_mutation(|e| e["context"]["type"] = json!(42), |_| "`context.type` must be a string".into());
}

#[test]
fn bad_timestamps_are_refused_with_the_value() {
    check_mutation(|e| e["context"]["timestamp"] = json!("2023-02-30T25:00:00Z"), |_| "2023-02-30T25:00:00Z".into());
    check_mutation(|e| e["context"]["timestamp"] = json!("last tuesday"), |_| "`context.timestamp`".into());
}

#[test]
fn schema_violations_in_the_content_are_refused() {
    let (_, mut deployed) = conformance().into_iter().find(|(n, _)| n == "service_deployed.json").unwrap();
    deployed["subject"]["content"].as_object_mut().unwrap().remove("environment");
    let error = parse(&deployed).unwrap_err().to_string();
    assert!(error.contains("environment") && error.contains("dev.cdevents.service.deployed.0.3.0"), "{error}");
    let error = cdevents::parse("{\"context\": [1,", Origin::Api).unwrap_err().to_string();
    assert!(error.starts_with("malformed JSON at line 1 column"), "{error}");
}

#[test]
fn custom_types_pass_through_without_facts() {
    let event = json!({
        "context": {"specversion": "0.5.1", "id": "x1", "source": "/mytool", "type": "dev.cdeventsx.mytool-widget.created.0.1.0", "timestamp": "2024-01-01T00:00:00Z"},
        "subject": {"id": "w1", "content": {"anything": ["goes", 1]}}
    });
    let parsed = parse(&event).unwrap();
    assert_eq!(parsed.ty, "dev.cdeventsx.mytool-widget.created.0.1.0");
    assert!(parsed.observations.is_empty());
    assert_eq!(parsed.raw, event.to_string());
}

#[test]
fn v0_4_events_are_accepted_and_normalised_to_v0_5_names() {
    let event = json!({
        "context": {"version": "0.4.1", "id": "old-1", "source": "/legacy/cd", "type": "dev.cdevents.service.deployed.0.2.0", "timestamp": "2024-01-01T00:00:00Z"},
        "subject": {"id": "shop", "source": "/legacy/cd", "type": "service", "content": {"environment": {"id": "production"}, "artifactId": "pkg:generic/shop@1"}}
    });
    let parsed = parse(&event).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.ty, "dev.cdevents.service.deployed.0.3.0");
    assert_eq!(parsed.raw, event.to_string(), "the raw body is kept as received");
    match parsed.observations.as_slice() {
        [Observation::Deployment(d)] => {
            assert_eq!((d.service.as_str(), d.environment.as_str()), ("shop", "production"));
        }
        other => panic!("{other:?}"),
    }
    let mut future = event.clone();
    future["context"]["version"] = json!("0.9.0");
    assert!(parse(&future).unwrap_err().to_string().contains("0.9.0"));
}

#[test]
fn custom_data_gives_a_pipeline_run_its_revision() {
    let event = json!({
        "context": {"specversion": "0.5.1", "id": "r1", "source": "/mobius/server/acme/app", "type": "dev.cdevents.pipelinerun.started.0.3.0", "timestamp": "2024-01-01T00:00:00Z"},
        "subject": {"id": "acme/app/ci.yml/1", "content": {"pipelineName": "CI", "uri": "file:///x"}},
        "customData": {"repository": "acme/app", "revision": "abc123", "branch": "main"},
        "customDataContentType": "application/json"
    });
    match parse(&event).unwrap_or_else(|e| panic!("{e}")).observations.as_slice() {
        [Observation::PipelineRun(run)] => {
            assert_eq!(run.revision.as_deref(), Some("abc123"));
            assert_eq!(run.repository.as_deref(), Some("acme/app"));
            assert_eq!(run.branch.as_deref(), Some("main"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_change_merged_onto_a_branch_is_a_one_commit_push() {
    let mut event = json!({
        "context": {"specversion": "0.5.1", "id": "c1", "source": "/mobius/server/acme/app", "type": "dev.cdevents.change.merged.0.3.0", "timestamp": "2024-01-01T10:00:00Z"},
        "subject": {"id": "abc123", "content": {"repository": {"id": "acme/app", "source": "/srv/app"}}},
        "customData": {"branch": "main", "message": "Fix the thing", "authorTime": "2024-01-01T09:00:00Z"}
    });
    match parse(&event).unwrap_or_else(|e| panic!("{e}")).observations.as_slice() {
        [Observation::Push(push)] => {
            assert_eq!((push.repository.as_str(), push.branch.as_str()), ("acme/app", "main"));
            assert_eq!(push.commits.len(), 1);
            assert_eq!(push.commits[0].sha, "abc123");
            assert_eq!(push.commits[0].message, "Fix the thing");
            assert_eq!(push.commits[0].commit_time.to_string(), "2024-01-01T10:00:00Z");
            assert_eq!(push.commits[0].author_time.map(|t| t.to_string()).as_deref(), Some("2024-01-01T09:00:00Z"));
        }
        other => panic!("{other:?}"),
    }
    // Without a branch it says nothing about where the commit landed: no facts.
    event["customData"] = json!({});
    assert!(parse(&event).unwrap().observations.is_empty());
}
