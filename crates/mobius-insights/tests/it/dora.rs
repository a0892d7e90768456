//! DORA's four keys: each definition against scenarios whose numbers are worked out by hand.

use mobius_events::facts::FactSet;
use mobius_insights::{Window, bands, dora};
use serde_json::{Value, json};

use crate::fixtures::{ENVIRONMENT, Facts, SERVICE, revision, window};

fn report(facts: &FactSet, window: Window, table: &str, explain: bool) -> Value {
    let table = bands::table(table).unwrap();
    serde_json::to_value(dora(SERVICE, ENVIRONMENT, facts, window, table, explain)).unwrap()
}

/// Checks one metric's JSON object under the default bands.
fn check(facts: Facts, window: Window, metric: &str, expected: Value) {
    check_with("seed-2023", facts, window, metric, expected);
}

fn check_with(table: &str, facts: Facts, window: Window, metric: &str, expected: Value) {
    let report = report(&facts.build(), window, table, false);
    assert_eq!(report[metric], expected, "{metric} under {table}");
}

/// `n` deployments, one a day at noon from 2024-01-01.
fn daily(n: i64) -> Facts {
    (1..=n).fold(Facts::new(), |facts, i| facts.deploy(i, &format!("2024-01-{i:02}T12:00:00Z")))
}

#[test]
fn nothing_in_the_window_is_null_not_zero() {
    let facts = Facts::new()
        .deploy(1, "2023-12-31T23:59:59Z")
        .change("a1", "2023-12-31T20:00:00Z", 1)
        .incident("INC-1", "2023-12-30", Some("2023-12-31"), Some(1))
        .deploy(2, "2024-01-29");
    let report = report(&facts.build(), window("2024-01-01", "2024-01-29"), "seed-2023", false);
    assert_eq!(
        report,
        json!({
            "service": "checkout",
            "environment": "production",
            "from": "2024-01-01T00:00:00Z",
            "to": "2024-01-29T00:00:00Z",
            "bands": "seed-2023",
            "deployment_frequency": {
                "deployments": 0,
                "failed_attempts": 0,
                "per_day": 0.0,
                "deploy_days_per_week_median": 0.0,
                "band": "low"
            },
            "lead_time": { "changes": 0, "median_seconds": null, "p90_seconds": null, "band": null },
            "change_failure_rate": { "deployments": 0, "failed": 0, "rate": null, "band": null },
            "recovery_time": { "incidents": 0, "median_seconds": null, "band": null }
        })
    );
}

#[test]
fn deployment_frequency_edges() {
    let four_weeks = || window("2024-01-01", "2024-01-29");
    let frequency = |deployments, per_day: f64, median: f64, band| {
        json!({
            "deployments": deployments,
            "failed_attempts": 0,
            "per_day": per_day,
            "deploy_days_per_week_median": median,
            "band": band,
        })
    };
    // Exactly one a day is high, not elite: elite is more than one a day.
    check(daily(28), four_weeks(), "deployment_frequency", frequency(28, 1.0, 7.0, "high"));
    check(
        daily(28).deploy(29, "2024-01-28T13:00:00Z"),
        four_weeks(),
        "deployment_frequency",
        frequency(29, 29.0 / 28.0, 7.0, "elite"),
    );
    // Exactly once a week is high; a little less is medium.
    let weekly = Facts::new()
        .deploy(1, "2024-01-01T09:00:00Z")
        .deploy(2, "2024-01-08T09:00:00Z")
        .deploy(3, "2024-01-15T09:00:00Z")
        .deploy(4, "2024-01-22T09:00:00Z");
    check(weekly, four_weeks(), "deployment_frequency", frequency(4, 1.0 / 7.0, 1.0, "high"));
    check(
        daily(4),
        window("2024-01-01", "2024-01-29T00:00:01Z"),
        "deployment_frequency",
        frequency(4, 4.0 / (2_419_201.0 / 86_400.0), 0.0, "medium"),
    );
    // Exactly once in 30 days is medium.
    check(
        daily(1),
        window("2024-01-01", "2024-01-31"),
        "deployment_frequency",
        frequency(1, 1.0 / 30.0, 0.0, "medium"),
    );
}

#[test]
fn deploy_days_per_week_across_partial_iso_weeks() {
    // Wednesday 2024-01-03 to Tuesday 2024-01-23: four ISO weeks, the first and last partial.
    let facts = Facts::new()
        .deploy(1, "2024-01-02T12:00:00Z") // before the window
        .deploy(2, "2024-01-03T08:00:00Z") // week 1: two deploys on one day, one on another
        .deploy(3, "2024-01-03T17:00:00Z")
        .deploy(4, "2024-01-07T23:59:59Z")
        .deploy(5, "2024-01-08T00:00:00Z") // week 2: three days
        .deploy(6, "2024-01-10T12:00:00Z")
        .deploy(7, "2024-01-14T12:00:00Z")
        .fail(8, "2024-01-17T12:00:00Z") // week 3: only a failed attempt, so 0 days
        .deploy(9, "2024-01-22T12:00:00Z") // week 4: one day
        .deploy(10, "2024-01-23T00:00:00Z"); // the window's end, excluded
    let report = report(&facts.build(), window("2024-01-03", "2024-01-23"), "seed-2023", false);
    let df = &report["deployment_frequency"];
    assert_eq!(df["deployments"], 7);
    assert_eq!(df["failed_attempts"], 1);
    assert_eq!(df["per_day"], 7.0 / 20.0);
    // Weeks [2, 3, 0, 1]: the median of an even count is the mean of the middle two.
    assert_eq!(df["deploy_days_per_week_median"], 1.5);
}

#[test]
fn a_window_ending_on_monday_midnight_takes_no_day_of_that_week() {
    let facts = daily(2).deploy(3, "2024-01-08T10:00:00Z");
    // Two weeks, [2, 1]; had the excluded Monday's week counted, [2, 1, 0] would give 1.
    let report = report(&facts.build(), window("2024-01-01", "2024-01-15"), "seed-2023", false);
    assert_eq!(report["deployment_frequency"]["deploy_days_per_week_median"], 1.5);
}

#[test]
fn lead_time_counts_only_changes_of_the_windows_deployments() {
    let facts = Facts::new()
        .deploy(1, "2023-12-31T12:00:00Z")
        .change("before", "2023-12-30T12:00:00Z", 1)
        .deploy(2, "2024-01-10T12:00:00Z")
        .change("two-hours", "2024-01-10T10:00:00Z", 2)
        .change("half-hour", "2024-01-10T11:30:00Z", 2)
        .change("skewed", "2024-01-10T12:10:00Z", 2) // committed "after" it shipped: 0
        .fail(3, "2024-01-11T12:00:00Z")
        .deploy(4, "2024-02-01T12:00:00Z")
        .change("after", "2024-01-20T12:00:00Z", 4);
    check(
        facts,
        window("2024-01-01", "2024-01-29"),
        "lead_time",
        json!({ "changes": 3, "median_seconds": 1800.0, "p90_seconds": 7200.0, "band": "elite" }),
    );
}

#[test]
fn lead_time_edges() {
    let one_change = |committed: &str| Facts::new().deploy(1, "2024-01-10T12:00:00Z").change("a1", committed, 1);
    let lead_time = |seconds: f64, band: &str| json!({ "changes": 1, "median_seconds": seconds, "p90_seconds": seconds, "band": band });
    let w = || window("2024-01-01", "2024-01-29");
    check(one_change("2024-01-10T11:00:01Z"), w(), "lead_time", lead_time(3599.0, "elite"));
    // Exactly an hour is high under seed-2023 and elite under dora-2024.
    check(one_change("2024-01-10T11:00:00Z"), w(), "lead_time", lead_time(3600.0, "high"));
    check_with("dora-2024", one_change("2024-01-10T11:00:00Z"), w(), "lead_time", lead_time(3600.0, "elite"));
    check(one_change("2024-01-03T12:00:00Z"), w(), "lead_time", lead_time(604_800.0, "high"));
}

#[test]
fn change_failure_rate_counts_each_failed_deployment_once() {
    let facts = Facts::new()
        .deploy(0, "2023-12-31T12:00:00Z")
        .incident("INC-0", "2024-01-02", Some("2024-01-03"), Some(0)) // outside the window
        .deploy(1, "2024-01-02T12:00:00Z")
        .roll_back(1)
        .incident("INC-1", "2024-01-02T12:30:00Z", None, Some(1)) // and rolled back: once
        .deploy(2, "2024-01-05T12:00:00Z")
        .incident("INC-2", "2024-01-05T13:00:00Z", Some("2024-01-05T14:00:00Z"), Some(2))
        .incident("INC-3", "2024-03-01", None, Some(2)) // detected later: still counts
        .deploy(3, "2024-01-08T12:00:00Z")
        .fail(4, "2024-01-09T12:00:00Z") // a failed attempt is not a deployment
        .roll_back(4)
        .incident("INC-4", "2024-01-09T13:00:00Z", None, Some(4))
        .deploy(5, "2024-01-10T12:00:00Z")
        .incident("INC-5", "2024-01-11", None, None); // unattributed
    check(
        facts,
        window("2024-01-01", "2024-01-29"),
        "change_failure_rate",
        json!({ "deployments": 4, "failed": 2, "rate": 0.5, "band": "low" }),
    );
}

#[test]
fn change_failure_rate_edges() {
    // `failed` of twenty deployments, the first ones rolled back.
    let of_twenty = |failed: i64| (1..=failed).fold(daily(20), Facts::roll_back);
    let cfr = |failed: i64, band: &str| json!({ "deployments": 20, "failed": failed, "rate": failed as f64 / 20.0, "band": band });
    let w = || window("2024-01-01", "2024-01-29");
    check(of_twenty(1), w(), "change_failure_rate", cfr(1, "elite"));
    check(of_twenty(2), w(), "change_failure_rate", cfr(2, "high"));
    check(of_twenty(3), w(), "change_failure_rate", cfr(3, "high"));
    check(of_twenty(6), w(), "change_failure_rate", cfr(6, "medium"));
    check(of_twenty(7), w(), "change_failure_rate", cfr(7, "low"));
    check_with("dora-2024", of_twenty(4), w(), "change_failure_rate", cfr(4, "high"));
    check_with("dora-2024", of_twenty(8), w(), "change_failure_rate", cfr(8, "medium"));
}

#[test]
fn recovery_time_takes_incidents_resolved_in_the_window() {
    let facts = Facts::new()
        .incident("before", "2023-12-31T23:00:00Z", Some("2024-01-01T00:00:00Z"), None) // 1h
        .incident("long", "2024-01-05T00:00:00Z", Some("2024-01-06T00:00:00Z"), None) // 1d
        .incident("short", "2024-01-07T00:00:00Z", Some("2024-01-07T00:10:00Z"), None) // 10m
        .incident("skewed", "2024-01-08T00:10:00Z", Some("2024-01-08T00:00:00Z"), None) // 0
        .incident("open", "2024-01-09T00:00:00Z", None, None)
        .incident("at-end", "2024-01-28T23:00:00Z", Some("2024-01-29T00:00:00Z"), None);
    check(
        facts,
        window("2024-01-01", "2024-01-29"),
        "recovery_time",
        // [0, 600, 3600, 86400]
        json!({ "incidents": 4, "median_seconds": 2100.0, "band": "elite" }),
    );
}

#[test]
fn explain_lists_exactly_the_items_behind_each_number() {
    let facts = Facts::new()
        .deploy(1, "2023-12-31T12:00:00Z")
        .change("old", "2023-12-31T11:00:00Z", 1)
        .deploy(2, "2024-01-02T12:00:00Z")
        .change("c2", "2024-01-02T11:00:00Z", 2)
        .roll_back(2)
        .incident("INC-7", "2024-01-02T12:30:00Z", Some("2024-01-02T13:00:00Z"), Some(2))
        .fail(3, "2024-01-03T12:00:00Z")
        .deploy(4, "2024-01-04T12:00:00Z")
        .change("c4", "2024-01-04T08:00:00Z", 4)
        .incident("INC-8", "2024-02-01", Some("2024-02-02"), None);
    let report = report(&facts.build(), window("2024-01-01", "2024-01-29"), "seed-2023", true);
    assert_eq!(
        report["explain"],
        json!({
            "deployments": [
                {
                    "id": 2, "key": "deploy-2", "revision": revision(2),
                    "finished": "2024-01-02T12:00:00Z",
                    "failed": true, "why": ["rolled_back", "incident INC-7"]
                },
                {
                    "id": 4, "key": "deploy-4", "revision": revision(4),
                    "finished": "2024-01-04T12:00:00Z", "failed": false, "why": []
                }
            ],
            "failed_attempts": [
                { "id": 3, "key": "deploy-3", "revision": revision(3), "finished": "2024-01-03T12:00:00Z" }
            ],
            "changes": [
                {
                    "sha": "c2", "repository": "acme/checkout", "summary": "change c2", "commit_time": "2024-01-02T11:00:00Z",
                    "deployment_id": 2, "lead_time_seconds": 3600.0
                },
                {
                    "sha": "c4", "repository": "acme/checkout", "summary": "change c4", "commit_time": "2024-01-04T08:00:00Z",
                    "deployment_id": 4, "lead_time_seconds": 14400.0
                }
            ],
            "incidents": [
                {
                    "key": "INC-7", "detected": "2024-01-02T12:30:00Z", "resolved": "2024-01-02T13:00:00Z",
                    "recovery_seconds": 1800.0, "deployment_id": 2, "attribution": "window"
                }
            ]
        })
    );
    // The numbers agree with their lists.
    assert_eq!(report["deployment_frequency"]["deployments"], 2);
    assert_eq!(report["deployment_frequency"]["failed_attempts"], 1);
    assert_eq!(report["lead_time"]["changes"], 2);
    assert_eq!(report["change_failure_rate"]["failed"], 1);
    assert_eq!(report["recovery_time"]["incidents"], 1);
}

#[test]
fn reports_round_trip_through_json() {
    let facts = daily(3).change("a1", "2024-01-01T10:00:00Z", 1).build();
    let table = bands::default_table();
    let report = dora(SERVICE, ENVIRONMENT, &facts, window("2024-01-01", "2024-01-29"), table, true);
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<mobius_insights::DoraReport>(&json).unwrap(), report);
}
