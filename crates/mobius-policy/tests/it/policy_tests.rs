//! `test()`: the shipped examples pass, a failing test is reported by name.

use mobius_policy::{Outcome, test};

use crate::{examples, policy_dir};

#[test]
fn the_shipped_examples_pass_their_tests() {
    let report = test(examples());
    assert!(report.passed(), "{report}");
    assert!(report.tests.len() >= 15, "{report}");
    let text = report.to_string();
    assert!(text.contains(&format!("PASS: {n}/{n}\n", n = report.tests.len())), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn the_shipped_tests_catch_a_broken_policy() {
    // The examples with Friday's cut-offs (deploys and flags) moved from 16:00 to 17:00, and the secret-scan gate
    // reading all findings instead of the unresolved ones.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace("input.time.hour >= 16", "input.time.hour >= 17")
            .replace("input.artifact.scan.secrets.unresolved", "input.artifact.scan.secrets.findings");
        files.push((path.file_name().unwrap().to_str().unwrap().to_owned(), text));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let dir = policy_dir(&files);
    let report = test(dir.path());
    assert!(!report.passed());
    assert_eq!(
        report.failing().collect::<Vec<_>>(),
        [
            "data.mobius.gate_test.test_a_flag_turned_on_friday_from_16_utc_is_denied",
            "data.mobius.gate_test.test_a_rollout_step_friday_afternoon_is_denied",
            "data.mobius.gate_test.test_friday_from_16_utc_is_denied",
            "data.mobius.gate_test.test_an_unresolved_secret_is_denied_everywhere",
            "data.mobius.gate_test.test_resolved_secrets_are_allowed",
        ],
        "{report}"
    );
}

const POLICY: &str = r#"package mobius.gate

deny_latest contains msg if {
	endswith(input.image, ":latest")
	msg := "image uses :latest"
}
"#;

const TESTS: &str = r#"package mobius.gate_test

import data.mobius.gate

test_latest_is_denied if {
	count(gate.deny_latest) == 1 with input as {"image": "shop:latest"}
}

test_pinned_is_allowed if {
	count(gate.deny_latest) == 0 with input as {"image": "shop@sha256:00"}
}

# Wrong on purpose: :latest is denied.
test_latest_is_allowed if {
	print("deny_latest:", gate.deny_latest) with input as {"image": "shop:latest"}
	count(gate.deny_latest) == 0 with input as {"image": "shop:latest"}
}

test_divides_by_zero if {
	x := 1 / count(gate.deny_latest)
	x > 0
}

helper_not_a_test := true
"#;

#[test]
fn a_failing_test_is_reported_by_name_and_place() {
    let dir = policy_dir(&[("image.rego", POLICY), ("image_test.rego", TESTS)]);
    let report = test(dir.path());
    assert!(!report.passed());
    let failing: Vec<_> = report.failing().collect();
    assert_eq!(failing, ["data.mobius.gate_test.test_latest_is_allowed", "data.mobius.gate_test.test_divides_by_zero"]);

    let outcomes: Vec<_> = report.tests.iter().map(|t| (t.name.rsplit('.').next().unwrap(), &t.outcome)).collect();
    assert_eq!(outcomes[0], ("test_latest_is_denied", &Outcome::Pass));
    assert_eq!(outcomes[1], ("test_pinned_is_allowed", &Outcome::Pass));
    assert_eq!(outcomes[2], ("test_latest_is_allowed", &Outcome::Fail));
    let file = dir.path().join("image_test.rego");
    match outcomes[3].1 {
        Outcome::Error(e) => {
            assert_eq!(e, &format!("{}:20:9: divide by zero", file.display()), "{report}");
        }
        other => panic!("test_divides_by_zero: {other:?}"),
    }

    let text = report.to_string();
    let expected_tail = format!(
        "data.mobius.gate_test.test_latest_is_allowed: FAIL ({file}:14:1)\n  {file}:15: deny_latest: {{\"image uses :latest\"}}\n\
         data.mobius.gate_test.test_divides_by_zero: ERROR ({file}:19:1): {file}:20:9: divide by zero\n\
         {dashes}\nPASS: 2/4\nFAIL: 1/4\nERROR: 1/4\n",
        file = file.display(),
        dashes = "-".repeat(80),
    );
    assert!(text.ends_with(&expected_tail), "{text}\n---- expected tail ----\n{expected_tail}");

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["tests"][2]["outcome"], serde_json::json!({"outcome": "fail"}));
}

#[test]
fn a_test_directory_that_does_not_load_reports_why() {
    let dir = policy_dir(&[("image.rego", "package mobius.gate\n\ndeny contains msg if {\n  msg :=\n}\n")]);
    let report = test(dir.path());
    assert!(!report.passed());
    assert!(report.tests.is_empty());
    let file = dir.path().join("image.rego");
    // regorus reads `{` after `if` as a body or a set literal, and says so.
    assert_eq!(report.to_string(), format!("{}:4:7: expecting `}}` while parsing set\n", file.display()));
}

#[test]
fn tests_in_the_policy_package_run_too() {
    let dir = policy_dir(&[(
        "image.rego",
        "package mobius.gate\n\ndeny contains \"no\" if input.no\n\ntest_no if { deny == {\"no\"} with input as {\"no\": true} }\n",
    )]);
    let report = test(dir.path());
    assert!(report.passed(), "{report}");
    assert_eq!(report.failing().count(), 0);
    assert_eq!(report.tests.len(), 1);
    assert_eq!(report.tests[0].name, "data.mobius.gate.test_no");
    assert!(report.to_string().ends_with("PASS: 1/1\n"), "{report}");
}
