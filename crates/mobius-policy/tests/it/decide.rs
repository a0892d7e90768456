//! Decisions of the shipped example policies, failing closed, and `eval`.

use std::time::Duration;

use mobius_policy::{Decision, Input, Policies, PolicyError, Position, eval};
use serde_json::json;

use crate::{examples, input_with, policy_dir, readme_input};

/// Decides `changes` (merged into the README's input) with the shipped examples.
fn check(changes: serde_json::Value, deny: &[&str], warn: &[&str], exceptions: &[&str]) {
    let policies = Policies::load(examples()).unwrap();
    let input = Input::from_json(&input_with(changes.clone())).unwrap();
    let decision = policies.decide(&input);
    let expected = Decision {
        allow: deny.is_empty(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
        warn: warn.iter().map(|s| s.to_string()).collect(),
        exceptions: exceptions.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(decision, expected, "for {changes}");
}

const DIGEST: &str = "sha256:4b1d0c5e8f2a9d7c3b6e1f0a2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d";
const FRIDAY_5PM: &str = r#"{"rfc3339": "2026-12-04T17:05:00Z", "weekday": "Friday", "hour": 17}"#;

#[test]
fn the_readme_input_is_allowed() {
    check(json!({}), &[], &[], &[]);
}

#[test]
fn production_takes_only_mobius_builds_of_the_default_branch() {
    check(
        json!({"artifact": {"built_by_mobius": false, "workflow": "gha-build", "run": "77"}}),
        &[&format!(
            "checkout: only artifacts built by Mobius go to production; {DIGEST} was built outside Mobius \
             (workflow gha-build, run 77)"
        )],
        &[],
        &[],
    );
    check(
        json!({"artifact": {"branch": "feature/pay-later"}}),
        &[&format!("checkout: only builds of main go to production; {DIGEST} was built from branch feature/pay-later")],
        &[],
        &[],
    );
    // Both at once: rules in name order.
    check(
        json!({"action": "promotion", "artifact": {"built_by_mobius": false, "branch": ""}}),
        &[
            &format!("checkout: only builds of main go to production; {DIGEST} was built from a tag"),
            &format!(
                "checkout: only artifacts built by Mobius go to production; {DIGEST} was built outside Mobius \
                 (workflow build, run 1842)"
            ),
        ],
        &[],
        &[],
    );
    // Staging takes anything clean; a flag change ships no build.
    check(json!({"environment": "staging", "artifact": {"built_by_mobius": false, "branch": "wip"}}), &[], &[], &[]);
    check(json!({"action": "flag-change", "artifact": {"branch": "wip"}}), &[], &[], &[]);
}

#[test]
fn friday_afternoon_needs_a_reason() {
    let denied =
        "checkout: no production deploys on Friday after 16:00 UTC without a reason (it is 2026-12-04T17:05:00Z)";
    let friday: serde_json::Value = serde_json::from_str(FRIDAY_5PM).unwrap();
    check(json!({"time": friday}), &[denied], &[], &[]);
    check(json!({"time": {"rfc3339": "2026-12-04T15:59:59Z", "weekday": "Friday", "hour": 15}}), &[], &[], &[]);
    check(
        json!({"time": {"rfc3339": "2026-12-04T16:00:00Z", "weekday": "Friday", "hour": 16}}),
        &[denied.replace("17:05", "16:00").as_str()],
        &[],
        &[],
    );
    // Saturday evening is not Friday afternoon.
    check(json!({"time": {"rfc3339": "2026-12-05T18:00:00Z", "weekday": "Saturday", "hour": 18}}), &[], &[], &[]);
    // A reason is an exception: allowed, and the decision says which rule was excepted.
    // (As in conftest, a rule an exception names is listed whether or not it fired: the
    // example's freeze exception also names deny_budget_frozen for a hotfix.)
    check(json!({"time": friday, "reason": "hotfix"}), &[], &[], &["deny_budget_frozen", "deny_friday_afternoon"]);
    check(json!({"time": friday, "reason": "customer demo"}), &[], &[], &["deny_friday_afternoon"]);
    check(json!({"time": friday, "reason": "  "}), &[denied], &[], &[]);
    check(json!({"time": friday, "environment": "staging"}), &[], &[], &[]);
}

#[test]
fn no_unresolved_secret_nor_critical_vulnerability_ships_anywhere() {
    check(
        json!({"environment": "dev", "artifact": {"scan": {"secrets": {"findings": 3, "unresolved": 2}}}}),
        &["checkout: 9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e has 2 unresolved secret-scan finding(s); \
             revoke each secret or mark it a false positive first"],
        &[],
        &[],
    );
    check(
        json!({"artifact": {"scan": {"vulnerabilities": {"critical": 1, "high": 4}}}, "reason": "security"}),
        &[&format!("checkout: {DIGEST} has 1 critical vulnerabilit(y/ies)")],
        &[&format!("checkout: {DIGEST} has 4 high-severity vulnerabilit(y/ies)")],
        // A reason excepts Friday afternoons and freezes, never a vulnerability.
        &["deny_budget_frozen", "deny_friday_afternoon"],
    );
}

#[test]
fn an_exhausted_budget_freezes_production_but_for_hotfixes() {
    let frozen = json!({"slo": {"status": "frozen", "budget_remaining": -0.25}});
    check(
        frozen.clone(),
        &[
            "checkout: the error budget is exhausted (-25% left): production is frozen but for hotfixes and security fixes",
        ],
        &[],
        &[],
    );
    let mut hotfix = frozen.clone();
    hotfix["reason"] = json!("hotfix");
    check(hotfix, &[], &[], &["deny_budget_frozen", "deny_friday_afternoon"]);
    check(
        json!({"slo": {"status": "warning", "budget_remaining": 0.125}}),
        &[],
        &["checkout: the error budget is burning fast (12.5% left)"],
        &[],
    );
}

#[test]
fn decisions_serialise_as_documented() {
    let allowed = Decision { allow: true, ..Decision::default() };
    assert_eq!(serde_json::to_string(&allowed).unwrap(), r#"{"allow":true,"deny":[],"warn":[]}"#);
    let excepted = Decision {
        allow: false,
        deny: vec!["no".into()],
        warn: vec!["careful".into()],
        exceptions: vec!["deny_friday_afternoon".into()],
    };
    assert_eq!(
        serde_json::to_string(&excepted).unwrap(),
        r#"{"allow":false,"deny":["no"],"warn":["careful"],"exceptions":["deny_friday_afternoon"]}"#
    );
    assert_eq!(serde_json::from_str::<Decision>(r#"{"allow":true,"deny":[],"warn":[]}"#).unwrap(), allowed);
}

/// Policies in a temporary directory, decided on the README's input.
fn decide(files: &[(&str, &str)]) -> (tempfile::TempDir, Decision) {
    let dir = policy_dir(files);
    let policies = Policies::load(dir.path()).unwrap();
    let decision = policies.decide(&Input::from_json(&readme_input()).unwrap());
    (dir, decision)
}

const FINE: &str =
    "package mobius.gate\n\ndeny_never contains \"never\" if false\n\nwarn_always contains \"hello\" if true\n";

#[test]
fn a_runtime_error_denies_with_the_rule_and_its_position() {
    let broken = "package mobius.gate\n\n\
                  deny_ratio contains msg if {\n\
                  \tratio := input.artifact.scan.vulnerabilities.high / input.artifact.scan.secrets.unresolved\n\
                  \tratio > 1\n\
                  \tmsg := \"too many\"\n\
                  }\n\n\
                  warn_service contains msg if {\n\
                  \tstartswith(input.service, 3)\n\
                  \tmsg := \"never\"\n\
                  }\n";
    let (dir, decision) = decide(&[("fine.rego", FINE), ("ratio.rego", broken)]);
    let file = dir.path().join("ratio.rego");
    let file = file.display();
    assert_eq!(
        decision,
        Decision {
            allow: false,
            deny: vec![
                format!("policy error in deny_ratio: {file}:4:52: divide by zero (the gate fails closed)"),
                format!(
                    "policy error in warn_service: {file}:10:28: `startswith` expects string argument. \
                     Got `3` instead (the gate fails closed)"
                ),
            ],
            // The rules that work still report.
            warn: vec!["hello".into()],
            exceptions: vec![],
        }
    );
}

#[test]
fn a_conflict_and_a_malformed_message_deny() {
    let broken = "package mobius.gate\n\n\
                  level := 1 if input.service == \"checkout\"\n\
                  level := 2 if input.environment == \"production\"\n\n\
                  deny_level contains msg if {\n\
                  \tlevel > 1\n\
                  \tmsg := \"level\"\n\
                  }\n\n\
                  deny_shape contains {\"message\": \"no msg field\"} if true\n";
    let (dir, decision) = decide(&[("levels.rego", broken)]);
    let file = dir.path().join("levels.rego");
    assert!(!decision.allow);
    assert_eq!(decision.deny.len(), 2, "{decision:?}");
    assert_eq!(
        decision.deny[0],
        format!(
            "policy error in deny_level: {}:4:1: rule conflicts with rule at {}:3:1 (the gate fails closed)",
            file.display(),
            file.display()
        )
    );
    assert_eq!(
        decision.deny[1],
        "policy error in deny_shape: {\"message\":\"no msg field\"} has no string `msg`; a message is a string \
         or an object with a string `msg` (the gate fails closed)"
    );
}

#[test]
fn messages_may_be_objects_with_msg_and_violation_denies_like_deny() {
    let policy = "package mobius.gate\n\n\
                  violation contains {\"msg\": \"structured\", \"details\": {\"rule\": \"x\"}} if true\n\n\
                  deny contains \"plain\" if true\n";
    let (_dir, decision) = decide(&[("p.rego", policy)]);
    assert_eq!(decision.deny, ["plain", "structured"]);
    assert!(!decision.allow);
}

#[test]
fn exceptions_follow_conftest() {
    let policy = "package mobius.gate\n\n\
                  deny contains \"bare\" if true\n\
                  deny_a contains \"a\" if true\n\
                  violation_a contains \"violation a\" if true\n\
                  deny_b contains \"b\" if true\n\
                  warn_a contains \"warn a\" if true\n\
                  deny_quiet contains \"quiet\" if false\n\n\
                  exception contains [\"a\", \"quiet\"] if true\n\
                  exception contains {\"\"} if input.service == \"checkout\"\n\
                  exception contains [\"b\"] if input.service == \"billing\"\n";
    let (_dir, decision) = decide(&[("p.rego", policy)]);
    assert_eq!(
        decision,
        Decision {
            allow: false,
            deny: vec!["b".into()],
            warn: vec![],
            // `""` excepts the bare rule; a named rule is listed even when it had no message.
            exceptions: vec![
                "deny".into(),
                "deny_a".into(),
                "deny_quiet".into(),
                "violation_a".into(),
                "warn_a".into()
            ],
        }
    );
}

#[test]
fn an_excepted_rule_that_fails_still_denies() {
    let policy = "package mobius.gate\n\n\
                  deny_x contains msg if { msg := sprintf(\"%d\", [1 / 0]) }\n\n\
                  exception contains [\"x\"] if true\n";
    let (_dir, decision) = decide(&[("p.rego", policy)]);
    assert!(!decision.allow);
    assert!(decision.deny[0].starts_with("policy error in deny_x: "), "{decision:?}");
    assert!(decision.deny[0].ends_with(":3:50: divide by zero (the gate fails closed)"), "{decision:?}");
}

#[test]
fn a_broken_exception_denies_and_excepts_nothing() {
    let policy = "package mobius.gate\n\n\
                  deny_x contains \"x\" if true\n\n\
                  exception contains [\"x\", 1] if true\n";
    let (_dir, decision) = decide(&[("p.rego", policy)]);
    assert_eq!(
        decision.deny,
        [
            "x",
            "policy error in exception: 1 is not a list of rule names (`exception contains rules if { rules := \
             [\"name\"] }`) (the gate fails closed)",
        ]
    );
    assert!(decision.exceptions.is_empty());
}

#[test]
fn a_rule_past_its_time_limit_denies() {
    let slow = "package mobius.gate\n\n\
                deny_slow contains msg if {\n\
                \tn := count([1 | some a in numbers.range(1, 2000); some b in numbers.range(1, 2000)])\n\
                \tn < 0\n\
                \tmsg := \"unreachable\"\n\
                }\n";
    let dir = policy_dir(&[("slow.rego", slow)]);
    let policies = Policies::load(dir.path()).unwrap().with_time_limit(Duration::from_millis(20));
    let decision = policies.decide(&Input::from_json(&readme_input()).unwrap());
    assert!(!decision.allow);
    assert_eq!(decision.deny.len(), 1);
    assert!(decision.deny[0].starts_with("policy error in deny_slow: "), "{decision:?}");
    assert!(decision.deny[0].contains("time limit"), "{decision:?}");
}

#[test]
fn eval_reads_the_input_and_says_where_it_is_wrong() {
    let decision = eval(examples(), &readme_input()).unwrap();
    assert!(decision.allow, "{decision:?}");

    let denied = eval(examples(), &input_with(json!({"artifact": {"scan": {"secrets": {"unresolved": 1}}}}))).unwrap();
    assert!(!denied.allow);

    let input = "{\n  \"action\": \"deploy\",\n  \"servce\": \"checkout\"\n}";
    match eval(examples(), input).unwrap_err() {
        PolicyError::Input { at, message } => {
            assert_eq!(at, Position { line: 3, column: 10 });
            assert!(message.starts_with("unknown field `servce`"), "{message}");
        }
        other => panic!("{other}"),
    }
    let error = eval(examples(), "{\"action\": \"launch\"}").unwrap_err();
    assert_eq!(
        error.to_string(),
        "input at line 1, column 19: unknown variant `launch`, expected one of `deploy`, `promotion`, \
         `gitops-sync`, `flag-change`"
    );
    let error = eval(
        examples(),
        &input_with(json!({"time": {"rfc3339": "2026-12-04T17:05:00Z", "weekday": "Friday", "hour": 16}})),
    )
    .unwrap_err();
    assert!(error.to_string().contains("time.hour 16 disagrees with time.rfc3339"), "{error}");
}

#[test]
fn policies_are_shared_across_threads() {
    fn shared<T: Send + Sync + Clone>(_: &T) {}
    let policies = Policies::load(examples()).unwrap();
    shared(&policies);
    let friday =
        Input::from_json(&input_with(serde_json::from_str(&format!("{{\"time\": {FRIDAY_5PM}}}")).unwrap())).unwrap();
    let clean = Input::from_json(&readme_input()).unwrap();
    std::thread::scope(|s| {
        let a = s.spawn(|| (0..50).map(|_| policies.decide(&friday).allow).collect::<Vec<_>>());
        let b = s.spawn(|| (0..50).map(|_| policies.decide(&clean).allow).collect::<Vec<_>>());
        // Each decision sees its own input only.
        assert!(a.join().unwrap().iter().all(|allow| !allow));
        assert!(b.join().unwrap().iter().all(|allow| *allow));
    });
}

#[test]
fn an_unsafe_variable_denies_at_its_position() {
    // regorus schedules around an unsafe variable when loading and reports it when the rule runs.
    let (dir, decision) = decide(&[("u.rego", "package mobius.gate\n\ndeny contains msg if {\n\tmsg := other\n}\n")]);
    assert!(!decision.allow);
    let expected = format!("policy error in deny: {}:4:9: var other is unsafe", dir.path().join("u.rego").display());
    assert!(decision.deny[0].starts_with(&expected), "{decision:?}");
}

#[test]
fn a_builtin_that_is_not_built_in_denies() {
    let (dir, decision) = decide(&[(
        "h.rego",
        "package mobius.gate\n\ndeny contains msg if {\n  r := http.send({\"method\": \"get\", \"url\": \"http://x\"})\n  msg := r.body\n}\n",
    )]);
    assert!(!decision.allow);
    let expected = format!("policy error in deny: {}:4:", dir.path().join("h.rego").display());
    assert!(decision.deny[0].starts_with(&expected), "{decision:?}");
    assert!(decision.deny[0].contains("http.send"), "{decision:?}");
}
