//! The value stream: stage medians, unknown stages, and the shares of waiting and working.

use mobius_insights::flow;
use serde_json::{Value, json};

use crate::fixtures::{ENVIRONMENT, Facts, SERVICE, window};

fn report(facts: Facts, explain: bool) -> Value {
    let report = flow(SERVICE, ENVIRONMENT, &facts.build(), window("2024-01-01", "2024-01-29"), explain);
    serde_json::to_value(report).unwrap()
}

/// Checks the stage medians (`None` for unknown), the sample counts and both shares.
fn check(facts: Facts, stages: [(Option<f64>, usize); 5], efficiency: Option<f64>, waiting: Option<f64>) {
    let report = report(facts, false);
    let names = [
        ("commit_to_queued", "wait"),
        ("queued_to_started", "wait"),
        ("started_to_finished", "work"),
        ("finished_to_deploy_started", "wait"),
        ("deploy_started_to_finished", "work"),
    ];
    let expected: Vec<Value> = names
        .iter()
        .zip(stages)
        .map(|((name, kind), (median, samples))| {
            json!({ "name": name, "kind": kind, "median_seconds": median, "samples": samples })
        })
        .collect();
    assert_eq!(report["stages"], Value::Array(expected));
    assert_eq!(report["flow_efficiency"], json!(efficiency));
    assert_eq!(report["waiting_share"], json!(waiting));
}

/// Deployment 1 (10:55 to 11:00) shipping one change committed at 09:00, with two runs on its
/// revision: queued 09:10 and 09:20, started 09:15 and 09:25, finished 09:40 and 09:45.
fn traced() -> Facts {
    Facts::new()
        .deploy(1, "2024-01-10T11:00:00Z")
        .change("a1", "2024-01-10T09:00:00Z", 1)
        .run("build", 1, Some("2024-01-10T09:10:00Z"), Some("2024-01-10T09:15:00Z"), Some("2024-01-10T09:40:00Z"))
        .run("test", 1, Some("2024-01-10T09:20:00Z"), Some("2024-01-10T09:25:00Z"), Some("2024-01-10T09:45:00Z"))
}

#[test]
fn stages_use_the_earliest_start_and_latest_finish_of_the_runs() {
    // 10m wait, 5m wait, 30m work, 70m wait, 5m work: 35 of 120 minutes working.
    check(
        traced(),
        [(Some(600.0), 1), (Some(300.0), 1), (Some(1800.0), 1), (Some(4200.0), 1), (Some(300.0), 1)],
        Some(2100.0 / 7200.0),
        Some(5100.0 / 7200.0),
    );
}

#[test]
fn runs_queued_after_the_deployment_started_did_not_build_it() {
    // A nightly re-run of the same revision, the next day, changes nothing.
    let facts = traced().run(
        "nightly",
        1,
        Some("2024-01-11T02:00:00Z"),
        Some("2024-01-11T02:01:00Z"),
        Some("2024-01-11T02:30:00Z"),
    );
    check(
        facts,
        [(Some(600.0), 1), (Some(300.0), 1), (Some(1800.0), 1), (Some(4200.0), 1), (Some(300.0), 1)],
        Some(2100.0 / 7200.0),
        Some(5100.0 / 7200.0),
    );
}

#[test]
fn missing_pipeline_data_leaves_stages_unknown() {
    // No runs on the revision: only the deployment's own stage is known.
    let facts = Facts::new().deploy(1, "2024-01-10T11:00:00Z").change("a1", "2024-01-10T09:00:00Z", 1);
    check(facts, [(None, 0), (None, 0), (None, 0), (None, 0), (Some(300.0), 1)], Some(1.0), Some(0.0));

    // A run that reported only when it finished: no queue and no pipeline work.
    let facts = Facts::new().deploy(1, "2024-01-10T11:00:00Z").change("a1", "2024-01-10T09:00:00Z", 1).run(
        "build",
        1,
        None,
        None,
        Some("2024-01-10T10:00:00Z"),
    );
    check(
        facts,
        [(None, 0), (None, 0), (None, 0), (Some(3300.0), 1), (Some(300.0), 1)],
        Some(300.0 / 3600.0),
        Some(3300.0 / 3600.0),
    );

    // Nothing shipped in the window: every stage unknown, no shares.
    let facts = Facts::new().deploy(1, "2023-12-10T11:00:00Z").change("a1", "2023-12-10T09:00:00Z", 1);
    check(facts, [(None, 0); 5], None, None);
}

#[test]
fn samples_come_from_changes_and_medians_ignore_unknowns() {
    // Deployment 2 has no runs; its two changes add samples only where endpoints exist.
    let facts = traced()
        .deploy(2, "2024-01-12T11:00:00Z")
        .change("b1", "2024-01-12T08:00:00Z", 2)
        .change("b2", "2024-01-12T09:00:00Z", 2)
        .fail(3, "2024-01-13T11:00:00Z")
        .change("c1", "2024-01-13T09:00:00Z", 3);
    let report = report(facts, false);
    assert_eq!(report["changes"], 3);
    let samples: Vec<&Value> = report["stages"].as_array().unwrap().iter().map(|s| &s["samples"]).collect();
    assert_eq!(samples, [1, 1, 1, 1, 3]);
}

#[test]
fn explain_lists_each_change_and_its_stages() {
    let report = report(traced().deploy(2, "2024-01-12T11:00:00Z").change("b1", "2024-01-12T09:00:00Z", 2), true);
    assert_eq!(
        report["explain"]["changes"],
        json!([
            {
                "sha": "a1", "repository": "acme/checkout", "deployment_id": 1,
                "revision": crate::fixtures::revision(1), "pipeline_runs": ["build", "test"],
                "stages": {
                    "commit_to_queued": 600.0, "queued_to_started": 300.0, "started_to_finished": 1800.0,
                    "finished_to_deploy_started": 4200.0, "deploy_started_to_finished": 300.0
                }
            },
            {
                "sha": "b1", "repository": "acme/checkout", "deployment_id": 2,
                "revision": crate::fixtures::revision(2), "pipeline_runs": [],
                "stages": {
                    "commit_to_queued": null, "queued_to_started": null, "started_to_finished": null,
                    "finished_to_deploy_started": null, "deploy_started_to_finished": 300.0
                }
            }
        ])
    );
    assert!(self::report(traced(), false).get("explain").is_none());
}
