//! OSV range semantics, table-driven: one advisory, one package at many versions, and which
//! of them the audit reports (with the fixed version it names).

use serde_json::{Value, json};

use crate::fixture::{Fixture, advisory, cargo_lock};

/// Expected outcome per version: `None` unaffected, `Some(fixed)` affected.
type Expected<'a> = &'a [(&'a str, Option<Option<&'a str>>)];

/// Locks `name` at every version of `expected` in a lockfile of `ecosystem`, audits it against
/// one advisory with `affected`, and compares.
fn check(ecosystem: &str, name: &str, affected: Value, expected: Expected<'_>) {
    let fixture = Fixture::new();
    let versions: Vec<&str> = expected.iter().map(|(v, _)| *v).collect();
    match ecosystem {
        "crates.io" => {
            fixture.lockfile("Cargo.lock", &cargo_lock(name, &versions));
        }
        "npm" => {
            let packages: serde_json::Map<String, Value> = versions
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("node_modules/host{i}/node_modules/{name}"), json!({"version": v})))
                .collect();
            let lock = json!({"name": "app", "lockfileVersion": 3, "packages": packages});
            fixture.lockfile("package-lock.json", &serde_json::to_string_pretty(&lock).unwrap());
        }
        "PyPI" => {
            let text: String = versions.iter().map(|v| format!("{name}=={v}\n")).collect();
            fixture.lockfile("requirements.txt", &text);
        }
        "Go" => {
            let text: String =
                versions.iter().map(|v| format!("{name} {v} h1:AAAA=\n{name} {v}/go.mod h1:BBBB=\n")).collect();
            fixture.lockfile("go.sum", &text);
        }
        other => panic!("no lockfile for {other}"),
    }
    fixture.archive(ecosystem, &[advisory("TEST-1", ecosystem, name, affected)]);
    let report = fixture.report();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    for (version, outcome) in expected {
        let found: Vec<_> = report.findings.iter().filter(|f| f.package.version == *version).collect();
        match outcome {
            None => assert!(found.is_empty(), "{version} should be unaffected"),
            Some(fixed) => {
                assert_eq!(found.len(), 1, "{version} should be affected once");
                assert_eq!(found[0].fixed.as_deref(), *fixed, "fixed version reported for {version}");
            }
        }
    }
}

#[test]
fn semver_introduced_zero_and_fixed_is_exclusive() {
    check(
        "crates.io",
        "smallvec",
        json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.6.1"}]}]}),
        &[
            ("0.1.0", Some(Some("1.6.1"))),
            ("1.6.0", Some(Some("1.6.1"))),
            ("1.6.1-rc.1", Some(Some("1.6.1"))),
            ("1.6.1", None),
            ("1.7.0", None),
        ],
    );
}

#[test]
fn semver_last_affected_is_inclusive() {
    check(
        "crates.io",
        "time",
        json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.2.3"}]}]}),
        &[("0.9.9", None), ("1.0.0", Some(None)), ("1.2.3", Some(None)), ("1.2.4", None)],
    );
}

#[test]
fn several_ranges_and_several_intervals_in_one_range() {
    check(
        "npm",
        "@scope/lib",
        json!({"ranges": [
            {"type": "SEMVER", "events": [
                {"introduced": "1.0.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0.0"}, {"fixed": "3.2.5"},
            ]},
            {"type": "SEMVER", "events": [{"introduced": "5.0.0-beta.1"}, {"fixed": "5.0.0"}]},
        ]}),
        &[
            ("0.9.0", None),
            ("1.0.1", Some(Some("1.0.2"))),
            ("1.0.2", None),
            ("2.5.0", None),
            ("3.0.0", Some(Some("3.2.5"))),
            ("3.2.5", None),
            ("5.0.0-beta.2", Some(Some("5.0.0"))),
            ("5.0.0", None),
        ],
    );
}

#[test]
fn events_are_evaluated_in_version_order_not_list_order() {
    check(
        "crates.io",
        "unsorted",
        json!({"ranges": [{"type": "SEMVER", "events": [{"fixed": "2.0.0"}, {"introduced": "1.0.0"}]}]}),
        &[("0.5.0", None), ("1.5.0", Some(Some("2.0.0"))), ("2.0.0", None)],
    );
}

#[test]
fn explicit_versions_list_without_ranges() {
    check(
        "npm",
        "listed",
        json!({"versions": ["2.0.0", "2.0.1"]}),
        &[("1.9.9", None), ("2.0.0", Some(None)), ("2.0.1", Some(None)), ("2.0.2", None)],
    );
}

#[test]
fn limit_bounds_the_range() {
    check(
        "crates.io",
        "limited",
        json!({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0.0"}, {"limit": "1.5.0"}]}]}),
        &[("0.9.0", None), ("1.4.9", Some(None)), ("1.5.0", None), ("2.0.0", None)],
    );
}

#[test]
fn git_ranges_are_skipped() {
    check(
        "crates.io",
        "gitonly",
        json!({"ranges": [{"type": "GIT", "repo": "https://example.com/r", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]}),
        &[("1.0.0", None)],
    );
}

#[test]
fn pypi_ecosystem_ranges_order_by_pep_440() {
    check(
        "PyPI",
        "Django",
        json!({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0rc1"}, {"fixed": "1.0.post1"}]}]}),
        &[
            ("1.0b2", None),
            ("1.0rc1", Some(Some("1.0.post1"))),
            ("1.0", Some(Some("1.0.post1"))),
            ("1.0.0", Some(Some("1.0.post1"))),
            ("1.0.post1.dev3", Some(Some("1.0.post1"))),
            ("1.0.post1", None),
            ("1.0.1", None),
            ("1.10", None),
        ],
    );
}

#[test]
fn pypi_names_match_after_normalisation() {
    check(
        "PyPI",
        "zope.interface",
        json!({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.0"}]}]}),
        &[("4.7.2", Some(Some("5.0"))), ("5.0", None)],
    );
    // The advisory spells it `Zope_Interface`; the requirement `zope.interface`.
    let fixture = Fixture::new();
    fixture.lockfile("requirements.txt", "zope.interface==4.7.2\n");
    fixture.archive(
        "PyPI",
        &[advisory(
            "PYSEC-1",
            "PyPI",
            "Zope_Interface",
            json!({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.0"}]}]}),
        )],
    );
    assert_eq!(fixture.report().findings.len(), 1);
}

#[test]
fn go_versions_with_v_prefix_and_incompatible() {
    check(
        "Go",
        "github.com/example/mod",
        json!({"ranges": [{"type": "SEMVER", "events": [
            {"introduced": "0"}, {"fixed": "1.2.3"}, {"introduced": "2.0.0"}, {"fixed": "2.1.0"},
        ]}]}),
        &[
            ("v0.0.0-20200101000000-abcdefabcdef", Some(Some("1.2.3"))),
            ("v1.2.2", Some(Some("1.2.3"))),
            ("v1.2.3", None),
            ("v2.0.0+incompatible", Some(Some("2.1.0"))),
            ("v2.1.0+incompatible", None),
        ],
    );
}
