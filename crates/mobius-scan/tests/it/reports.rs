//! Reports (text, JSON, SARIF), baselines, exit codes and directory scans through `run`.

use std::path::Path;

use mobius_scan::{EXIT_LEAKS, EXIT_NO_LEAKS, Format, ScanArgs, ScanTarget};
use serde_json::Value;

use crate::util::synth;

/// A tree with one GitHub token and one Stripe key, and things a scan must skip.
fn tree() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let github = synth("ghp_{an:36}");
    let stripe = synth("sk_live_{an:24}");
    let write = |path: &str, content: &[u8]| {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    };
    write("src/main.rs", format!("fn main() {{\n    let token = \"{github}\";\n}}\n").as_bytes());
    write("deploy/stripe.env", format!("# billing\nSTRIPE_KEY={stripe}\n").as_bytes());
    write(".git/config", format!("token = {github}\n").as_bytes());
    write("assets/logo.bin", &[b"\x89PNG\0\0".as_slice(), github.as_bytes()].concat());
    write("big/dump.sql", format!("{}\n{github}\n", "x".repeat(2048)).as_bytes());
    (dir, github, stripe)
}

fn args(root: &Path, format: Format) -> ScanArgs {
    let mut args = ScanArgs::new(ScanTarget::Path(root.to_path_buf()));
    args.format = format;
    args.max_file_size = 1024;
    args
}

fn run(args: &ScanArgs) -> (u8, String) {
    let mut out = Vec::new();
    let code = mobius_scan::run(args, &mut out).unwrap_or_else(|e| panic!("{e:#?}"));
    (code, String::from_utf8(out).expect("utf-8"))
}

#[test]
fn directory_scan_skips_git_binaries_and_large_files() {
    let (dir, _, _) = tree();
    let outcome = mobius_scan::scan(&args(dir.path(), Format::Json)).expect("scan");
    let files: Vec<(&str, &str, usize)> =
        outcome.findings.iter().map(|f| (f.file.as_str(), f.rule_id.as_str(), f.start_line)).collect();
    assert_eq!(files, [("deploy/stripe.env", "stripe-secret-key", 2), ("src/main.rs", "github-pat", 2)]);
}

#[test]
fn text_report_masks_secrets_and_has_no_colour_unless_asked() {
    let (dir, github, stripe) = tree();
    let (code, text) = run(&args(dir.path(), Format::Text));
    assert_eq!(code, EXIT_LEAKS);
    assert!(!text.contains(&github) && !text.contains(&stripe), "{text}");
    assert!(text.contains(&format!("Secret:      ghp_{}", "*".repeat(36))), "{text}");
    assert!(text.contains(&format!("Finding:  ghp_{}\n", "*".repeat(36))), "{text}");
    assert!(text.contains("File:        src/main.rs"));
    assert!(text.ends_with("2 leaks found\n"), "{text}");
    assert!(!text.contains('\x1b'));
    let mut coloured = args(dir.path(), Format::Text);
    coloured.color = true;
    assert!(run(&coloured).1.contains("\x1b[1;31m"));
}

#[test]
fn json_report_uses_gitleaks_field_names() {
    let (dir, github, _) = tree();
    let (_, text) = run(&args(dir.path(), Format::Json));
    let report: Value = serde_json::from_str(&text).expect("JSON");
    let finding = &report[1];
    let mut keys: Vec<&str> = finding.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = [
        "Description",
        "StartLine",
        "EndLine",
        "StartColumn",
        "EndColumn",
        "Match",
        "Secret",
        "File",
        "SymlinkFile",
        "Commit",
        "Entropy",
        "Author",
        "Email",
        "Date",
        "Message",
        "Tags",
        "RuleID",
        "Fingerprint",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(finding["Secret"], github.as_str());
    assert_eq!(finding["RuleID"], "github-pat");
    assert_eq!(finding["StartColumn"], 18);
    assert_eq!(finding["EndColumn"], 17 + 40);
    assert_eq!(finding["Fingerprint"], "src/main.rs:github-pat:2");
    assert_eq!(finding["Tags"], serde_json::json!(["github", "token"]));
}

#[test]
fn redaction_replaces_the_secret_in_match_and_secret() {
    let (dir, github, stripe) = tree();
    let mut redacted = args(dir.path(), Format::Json);
    redacted.redact = true;
    let (_, text) = run(&redacted);
    assert!(!text.contains(&github) && !text.contains(&stripe), "{text}");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(report[0]["Secret"], "REDACTED");
    assert_eq!(report[0]["Match"], "REDACTED");
    redacted.format = Format::Sarif;
    let (_, sarif) = run(&redacted);
    assert!(!sarif.contains(&github) && !sarif.contains(&stripe));
}

#[test]
fn baseline_suppresses_known_findings_only() {
    let (dir, _, _) = tree();
    let report = dir.path().join("baseline.json");
    let mut first = args(dir.path(), Format::Json);
    first.output = Some(report.clone());
    let (code, printed) = run(&first);
    assert_eq!((code, printed.as_str()), (EXIT_LEAKS, ""), "the report goes to the output file");
    // Keep only the Stripe finding in the baseline, as a reviewed, accepted one.
    let mut entries: Vec<Value> = serde_json::from_slice(&std::fs::read(&report).expect("read")).expect("JSON");
    entries.retain(|e| e["RuleID"] == "stripe-secret-key");
    std::fs::write(&report, serde_json::to_vec(&entries).expect("JSON")).expect("write");
    std::fs::rename(&report, dir.path().join("..").join("baseline-moved.json")).expect("move out of the tree");
    let baseline = dir.path().join("..").join("baseline-moved.json");

    let mut second = args(dir.path(), Format::Json);
    second.baseline = Some(baseline.clone());
    let outcome = mobius_scan::scan(&second).expect("scan");
    assert_eq!(outcome.baselined, 1);
    let left: Vec<&str> = outcome.findings.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(left, ["github-pat"]);
    std::fs::remove_file(baseline).expect("clean up");
}

#[test]
fn a_baseline_that_is_not_a_report_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baseline.json");
    std::fs::write(&path, "[\n  {\"RuleID\": 3}\n]").expect("write");
    let mut scan_args = args(dir.path(), Format::Json);
    scan_args.baseline = Some(path.clone());
    let err = mobius_scan::run(&scan_args, &mut Vec::new()).expect_err("bad baseline");
    assert_eq!(err.exit_code(), mobius_scan::EXIT_ERROR);
    let cause = std::error::Error::source(&err).expect("cause").to_string();
    let expected =
        format!("{}:2:14: not a gitleaks JSON report: invalid type: integer `3`, expected a string", path.display());
    assert_eq!(cause, expected);
}

#[test]
fn exit_codes() {
    let (dir, _, _) = tree();
    let mut custom = args(dir.path(), Format::Json);
    custom.exit_code = 42;
    assert_eq!(run(&custom).0, 42);
    let clean = tempfile::tempdir().expect("tempdir");
    std::fs::write(clean.path().join("a.txt"), "nothing here\n").expect("write");
    let (code, text) = run(&args(clean.path(), Format::Text));
    assert_eq!((code, text.as_str()), (EXIT_NO_LEAKS, "no leaks found\n"));
    let bad = clean.path().join("bad.toml");
    std::fs::write(&bad, "[[rules]]\nid = 'x'\nregex = '('\n").expect("write");
    let mut bad_config = args(clean.path(), Format::Text);
    bad_config.config = Some(bad.clone());
    let err = mobius_scan::run(&bad_config, &mut Vec::new()).expect_err("bad config");
    assert_eq!(err.exit_code(), mobius_scan::EXIT_ERROR);
    let cause = std::error::Error::source(&err).expect("cause").to_string();
    assert_eq!(cause, format!("{}:3:9: regex does not compile: error: unclosed group", bad.display()));
}

/// Where the OASIS schema is installed (`tests/install-sarif-schema.sh`).
fn sarif_schema() -> Value {
    let path = std::env::var("MOBIUS_SARIF_SCHEMA")
        .unwrap_or_else(|_| "/usr/local/share/sarif/sarif-schema-2.1.0.json".to_string());
    let text = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; install it with crates/mobius-scan/tests/install-sarif-schema.sh"));
    serde_json::from_slice(&text).expect("the schema is JSON")
}

#[test]
fn sarif_report_is_valid_against_the_oasis_schema() {
    let (dir, _, _) = tree();
    let (_, text) = run(&args(dir.path(), Format::Sarif));
    let log: Value = serde_json::from_str(&text).expect("JSON");
    let validator = jsonschema::validator_for(&sarif_schema()).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The schema is not vacuous: a result without its message is rejected.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0].as_object_mut().expect("result").remove("message");
    assert!(!validator.is_valid(&broken));

    let run = &log["runs"][0];
    assert_eq!(log["version"], "2.1.0");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), mobius_scan::Config::default_rules().rules.len());
    let result = &run["results"][1];
    assert_eq!(result["ruleId"], "github-pat");
    assert_eq!(rules[result["ruleIndex"].as_u64().expect("index") as usize]["id"], "github-pat");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "src/main.rs");
    assert_eq!((region["startLine"].as_u64(), region["startColumn"].as_u64()), (Some(2), Some(18)));
    assert_eq!(region["endColumn"].as_u64(), Some(18 + 40), "SARIF's end column is exclusive");
    assert_eq!(result["partialFingerprints"]["secretFingerprint/v1"], "src/main.rs:github-pat:2");
}

#[test]
fn generic_sarif_log_for_another_scanner() {
    use mobius_scan::sarif;
    let tool = sarif::Tool { name: "mobius-deps".into(), version: "0.1.0".into(), information_uri: None };
    let rule = sarif::Rule {
        id: "RUSTSEC-2099-0001".into(),
        short_description: "fixture advisory".into(),
        full_description: String::new(),
        help: String::new(),
        tags: vec!["security".into()],
        security_severity: Some(7.5),
    };
    let result = sarif::Result {
        rule_id: rule.id.clone(),
        level: sarif::Level::Warning,
        message: "fixture-crate 1.0.0 is affected".into(),
        location: sarif::Location {
            uri: "Cargo.lock".into(),
            start_line: 10,
            start_column: 1,
            end_line: 12,
            end_column: 2,
            snippet: None,
        },
        fingerprints: [("advisory/v1".to_string(), "fixture-crate@1.0.0".to_string())].into(),
        tags: Vec::new(),
    };
    let log = sarif::log(&tool, &[rule], &[result]);
    let validator = jsonschema::validator_for(&sarif_schema()).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(log["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["security-severity"], "7.5");
    assert_eq!(log["runs"][0]["results"][0]["level"], "warning");
}
