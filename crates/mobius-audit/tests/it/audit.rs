//! The audit entry point: exit codes, the severity threshold, where the report goes.

use std::fs;

use mobius_audit::{EXIT_CLEAN, EXIT_NO_PACKAGES, EXIT_VULNERABLE, Format, Severity, audit_at};
use serde_json::{Value, json};

use crate::fixture::{Fixture, advisory, cargo_lock, now};

fn rated(id: &str, name: &str, label: Option<&str>) -> Value {
    let mut record =
        advisory(id, "crates.io", name, json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}));
    if let Some(label) = label {
        record["database_specific"] = json!({"severity": label});
    }
    record
}

/// The exit code of an audit of `lockfile` against `records` failing at `threshold`.
fn exit_code(records: &[Value], threshold: Option<Severity>) -> u8 {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("a", &["1.0.0"]));
    fixture.archive("crates.io", records);
    let mut args = fixture.args();
    args.fail_on = threshold;
    audit_at(&args, &mut Vec::new(), now()).unwrap()
}

#[test]
fn exit_codes_follow_the_threshold() {
    let moderate = [rated("GHSA-1", "a", Some("MODERATE"))];
    let unrated = [rated("GHSA-2", "a", None)];
    for (records, threshold, expected) in [
        (&[][..], None, EXIT_CLEAN),
        (&moderate[..], None, EXIT_VULNERABLE),
        (&moderate[..], Some(Severity::Low), EXIT_VULNERABLE),
        (&moderate[..], Some(Severity::Medium), EXIT_VULNERABLE),
        (&moderate[..], Some(Severity::High), EXIT_CLEAN),
        // Nobody rated it, so nobody showed it harmless: it fails every gate.
        (&unrated[..], Some(Severity::Critical), EXIT_VULNERABLE),
    ] {
        assert_eq!(exit_code(records, threshold), expected, "{records:?} at {threshold:?}");
    }
}

#[test]
fn no_packages_is_its_own_exit_code() {
    let fixture = Fixture::new();
    fixture.lockfile("requirements.txt", "flask>=2\n");
    let code = audit_at(&fixture.args(), &mut Vec::new(), now()).unwrap();
    assert_eq!(code, EXIT_NO_PACKAGES);
}

#[test]
fn the_report_goes_to_the_output_file_when_one_is_given() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("a", &["1.0.0"]));
    fixture.archive("crates.io", &[rated("GHSA-1", "a", Some("HIGH"))]);
    let mut args = fixture.args();
    args.format = Format::Json;
    args.output = Some(fixture.dir.path().join("report.json"));
    let mut out = Vec::new();
    assert_eq!(audit_at(&args, &mut out, now()).unwrap(), EXIT_VULNERABLE);
    assert!(out.is_empty());
    let written: Value = serde_json::from_slice(&fs::read(args.output.as_ref().unwrap()).unwrap()).unwrap();
    assert_eq!(written["findings"][0]["advisory"], "GHSA-1");
    assert_eq!(written["findings"][0]["severity"], "high");
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let fixture = Fixture::new();
    let mut args = fixture.args();
    args.paths = vec![fixture.dir.path().join("nowhere")];
    let error = audit_at(&args, &mut Vec::new(), now()).unwrap_err();
    assert_eq!(error.to_string(), format!("cannot read {}", fixture.dir.path().join("nowhere").display()));
}

#[test]
fn severity_names_parse_as_gates_spell_them() {
    for (text, expected) in [
        ("low", Severity::Low),
        ("MODERATE", Severity::Medium),
        ("medium", Severity::Medium),
        ("Critical", Severity::Critical),
    ] {
        assert_eq!(text.parse::<Severity>().unwrap(), expected);
    }
    assert_eq!(
        "severe".parse::<Severity>().unwrap_err().to_string(),
        "unknown severity \"severe\" (expected low, medium, moderate, high or critical)"
    );
}

#[test]
fn one_vulnerability_under_several_ids_is_one_finding() {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("a", &["1.0.0"]));
    let all = json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.1.0"}]}]});
    let mut rustsec = advisory("RUSTSEC-2024-0001", "crates.io", "a", all.clone());
    rustsec["aliases"] = json!(["CVE-2024-1"]);
    rustsec["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
    let mut ghsa = advisory("GHSA-aaaa-bbbb-cccc", "crates.io", "a", all.clone());
    ghsa["aliases"] = json!(["CVE-2024-1"]);
    ghsa["database_specific"] = json!({"severity": "HIGH"});
    // Linked to the others only through RUSTSEC-2024-0001's id.
    let mut go_on = advisory("GHSA-zzzz-yyyy-xxxx", "crates.io", "a", all.clone());
    go_on["aliases"] = json!(["RUSTSEC-2024-0001"]);
    let unrelated = advisory("RUSTSEC-2024-0002", "crates.io", "a", all);
    fixture.archive("crates.io", &[go_on, rustsec, unrelated, ghsa]);

    let report = fixture.report();
    let found: Vec<_> = report.findings.iter().map(|f| (f.advisory.as_str(), f.aliases.clone(), f.severity)).collect();
    assert_eq!(
        found,
        [
            (
                "GHSA-aaaa-bbbb-cccc",
                vec!["CVE-2024-1".to_owned(), "GHSA-zzzz-yyyy-xxxx".to_owned(), "RUSTSEC-2024-0001".to_owned()],
                Some(Severity::Critical),
            ),
            ("RUSTSEC-2024-0002", vec![], None),
        ]
    );
    assert_eq!(report.findings[0].score, Some(9.8));
}
