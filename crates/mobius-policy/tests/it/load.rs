//! Loading refusals: where and why.

use mobius_policy::{Policies, PolicyError, Position};

use crate::{examples, policy_dir};

fn refusal(files: &[(&str, &str)]) -> (tempfile::TempDir, PolicyError) {
    let dir = policy_dir(files);
    let error = Policies::load(dir.path()).unwrap_err();
    (dir, error)
}

#[test]
fn the_shipped_examples_load_without_their_tests() {
    let policies = Policies::load(examples()).unwrap();
    assert_eq!(
        policies.rules().collect::<Vec<_>>(),
        [
            "deny_budget_frozen",
            "deny_critical_vulnerabilities",
            "deny_flag_change_without_reason",
            "deny_flag_on_friday_afternoon",
            "deny_friday_afternoon",
            "deny_not_default_branch",
            "deny_unresolved_secrets",
            "deny_untrusted_build",
            "warn_budget_burning",
            "warn_high_vulnerabilities",
        ]
    );
}

#[test]
fn a_parse_error_is_refused_at_its_position() {
    // A newline inside a string, on a tab-indented line: the column counts the tab as one.
    let (dir, error) = refusal(&[
        ("a.rego", "package mobius.gate\n"),
        ("b.rego", "package mobius.gate\n\ndeny contains msg if {\n\tmsg := \"unterminated\n}\n"),
    ]);
    let file = dir.path().join("b.rego");
    match &error {
        PolicyError::Rego { file: f, at, message } => {
            assert_eq!(f, &file);
            assert_eq!((*at, message.as_str()), (Position { line: 4, column: 22 }, "invalid character in string"));
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().starts_with(&format!("{}:4:22: ", file.display())), "{error}");
}

#[test]
fn rego_v0_is_refused() {
    let (dir, error) = refusal(&[("v0.rego", "package mobius.gate\n\ndeny[msg] {\n  msg := \"x\"\n}\n")]);
    assert_eq!(
        error.to_string(),
        format!("{}:3:11: `if` keyword is required before rule body", dir.path().join("v0.rego").display())
    );
}

#[test]
fn another_package_is_refused_with_its_file() {
    let (dir, error) = refusal(&[("main.rego", "# conftest's default\npackage main\n\ndeny contains \"x\" if true\n")]);
    let file = dir.path().join("main.rego");
    match &error {
        PolicyError::WrongPackage { file: f, at, package } => {
            assert_eq!((f, *at, package.as_str()), (&file, Position { line: 2, column: 1 }, "main"));
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().starts_with(&format!("{}:2:1: package main is not a gate policy", file.display())));
}

#[test]
fn a_deny_rule_that_is_not_a_set_is_refused() {
    for (rule, line) in [
        ("deny if input.x", "deny"),
        ("deny_x := \"no\" if input.x", "deny_x"),
        ("default warn := []", "warn"),
        ("exception := [\"x\"]", "exception"),
    ] {
        let (dir, error) = refusal(&[("s.rego", &format!("package mobius.gate\n\n{rule}\n"))]);
        assert_eq!(
            error.to_string(),
            format!(
                "{}:3:1: `{line}` must be a multi-value rule (`{line} contains msg if {{ … }}`): the gate reads it \
                 as a set",
                dir.path().join("s.rego").display()
            ),
            "{rule}"
        );
    }
}

#[test]
fn an_empty_directory_is_refused() {
    let dir = policy_dir(&[("only_test.rego", "package mobius.gate_test\n\ntest_x if true\n")]);
    let error = Policies::load(dir.path()).unwrap_err();
    assert_eq!(error.to_string(), format!("{}: no policy (*.rego) files", dir.path().display()));
    let missing = dir.path().join("nope");
    let error = Policies::load(&missing).unwrap_err();
    assert!(error.to_string().starts_with(&format!("{}: cannot be read: ", missing.display())), "{error}");
}

#[test]
fn tests_may_use_another_package_but_policies_may_not() {
    let dir = policy_dir(&[
        ("gate.rego", "package mobius.gate\n\ndeny contains \"x\" if input.x\n"),
        (
            "gate_test.rego",
            "package mobius.gate_test\n\nimport data.mobius.gate\n\ntest_x if { gate.deny == {\"x\"} with input as {\"x\": true} }\n",
        ),
    ]);
    assert!(Policies::load(dir.path()).is_ok());
    assert!(mobius_policy::test(dir.path()).passed());
}
