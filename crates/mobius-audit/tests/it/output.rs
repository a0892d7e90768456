//! The three renderings of one report: text, JSON and SARIF.

use mobius_audit::sarif::to_sarif;
use mobius_audit::{Format, Report, render};
use serde_json::{Value, json};

use crate::fixture::{Fixture, advisory, cargo_lock};

/// A project with a critical (CVSS-scored) and a moderate (labelled) advisory on two crates,
/// and an unpinned requirement.
fn report() -> (Fixture, Report) {
    let fixture = Fixture::new();
    fixture.lockfile("Cargo.lock", &cargo_lock("smallvec", &["1.6.0"]) .replace("version = 4\n", "version = 4\n\n[[package]]\nname = \"time\"\nversion = \"0.1.44\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"));
    fixture.lockfile("requirements.txt", "requests>=2\n");
    let mut critical = advisory(
        "GHSA-43w2-9j62-hq99",
        "crates.io",
        "smallvec",
        json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.6.1"}]}]}),
    );
    critical["aliases"] = json!(["CVE-2021-25900", "RUSTSEC-2021-0003"]);
    critical["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
    critical["details"] = json!("x".repeat(2000));
    let mut moderate = advisory(
        "RUSTSEC-2020-0071",
        "crates.io",
        "time",
        json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.23"}]}]}),
    );
    moderate["database_specific"] = json!({"severity": "MODERATE"});
    fixture.archive("crates.io", &[critical, moderate]);
    let report = fixture.report();
    (fixture, report)
}

fn rendered(report: &Report, format: Format) -> String {
    let mut out = Vec::new();
    render(report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn text_is_a_table_then_warnings_then_a_summary() {
    let (fixture, report) = report();
    let text = rendered(&report, Format::Text).replace(&fixture.project().display().to_string(), "<p>");
    let expected = "\
PACKAGE             VERSION  ADVISORY             SEVERITY        FIXED   LOCATION
crates.io/time      0.1.44   RUSTSEC-2020-0071    medium          0.2.23  <p>/Cargo.lock:3
crates.io/smallvec  1.6.0    GHSA-43w2-9j62-hq99  critical (9.8)  1.6.1   <p>/Cargo.lock:8

warning: <p>/requirements.txt:1: requests >=2 is not pinned with == and was not audited
advisories: crates.io as of 2024-05-20T10:00:00Z (2 records, 0 withdrawn)
2 vulnerabilities in 2 of 2 packages (2 lockfiles)
";
    assert_eq!(text, expected);
}

#[test]
fn json_carries_findings_warnings_and_the_database() {
    let (_fixture, report) = report();
    let json: Value = serde_json::from_str(&rendered(&report, Format::Json)).unwrap();
    let finding = &json["findings"][1];
    assert_eq!(finding["advisory"], "GHSA-43w2-9j62-hq99");
    assert_eq!(finding["aliases"], json!(["CVE-2021-25900", "RUSTSEC-2021-0003"]));
    assert_eq!(finding["severity"], "critical");
    assert_eq!(finding["score"], 9.8);
    assert_eq!(finding["fixed"], "1.6.1");
    assert_eq!(finding["package"]["ecosystem"], "crates.io");
    assert_eq!(finding["package"]["source"]["line"], 8);
    assert_eq!(json["warnings"][0]["kind"], "unpinned");
    assert_eq!(json["database"][0]["ecosystem"], "crates.io");
    assert_eq!(json["database"][0]["as_of"], "2024-05-20T10:00:00Z");
    assert_eq!(json["lockfiles"].as_array().unwrap().len(), 2);
}

#[test]
fn sarif_has_a_rule_per_advisory_and_located_results() {
    let (fixture, report) = report();
    let sarif = to_sarif(&report);
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["$schema"], "https://json.schemastore.org/sarif-2.1.0.json");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "mobius-audit");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<_> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["GHSA-43w2-9j62-hq99", "RUSTSEC-2020-0071"]);
    assert_eq!(rules[0]["properties"]["security-severity"], "9.8");
    assert_eq!(rules[1]["properties"]["security-severity"], "5.5");
    assert_eq!(rules[0]["defaultConfiguration"]["level"], "error");
    assert_eq!(rules[0]["fullDescription"]["text"].as_str().unwrap().chars().count(), 1024);
    assert!(rules[0]["help"]["text"].as_str().unwrap().contains("CVE-2021-25900"));

    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        let rule = &rules[result["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(result["ruleId"], rule["id"]);
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(uri.starts_with("file:///") && uri.ends_with("/project/Cargo.lock"), "{uri}");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    assert_eq!(results[1]["locations"][0]["physicalLocation"]["region"]["startLine"], 8);
    assert_eq!(
        results[1]["message"]["text"],
        "smallvec 1.6.0 (crates.io) is affected by GHSA-43w2-9j62-hq99: GHSA-43w2-9j62-hq99 in smallvec. Fixed in 1.6.1."
    );
    let fingerprints: Vec<_> =
        results.iter().map(|r| r["partialFingerprints"]["primaryLocationLineHash"].clone()).collect();
    assert_ne!(fingerprints[0], fingerprints[1]);
    // The same finding in another run has the same fingerprint.
    let again = to_sarif(&fixture.report());
    assert_eq!(again["runs"][0]["results"][0]["partialFingerprints"], results[0]["partialFingerprints"]);

    let notes = run["invocations"][0]["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["message"]["text"].as_str().unwrap().contains("requests >=2 is not pinned"));
}

#[test]
fn sarif_uris_stay_relative_when_the_audit_is_given_relative_paths() {
    let (_fixture, mut report) = report();
    for finding in &mut report.findings {
        finding.package.source.file = "services/api v2/Cargo.lock".into();
    }
    let sarif = to_sarif(&report);
    let uri = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
    assert_eq!(uri, "services/api%20v2/Cargo.lock");
}
