//! `mobius/secret-scan` and `mobius/dependency-audit`: real scans of a checkout (and of a real
//! git repository's push range), the report written into the workspace, the step failed on
//! findings, secrets masked in the log; and their inputs checked by lint at their position.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use mobius_pipelines::engine::{self, RecordingObserver, RunOptions, RunReport, Status};
use mobius_pipelines::workflow;
use serde_json::{Value, json};

/// A GitHub token of the right shape, built here so that no file of this repository holds one.
fn token() -> String {
    format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5")
}

async fn run(text: &str, source: &Path, github: Value) -> (RunReport, String) {
    let diagnostics = workflow::lint("ci.yml", text);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let workflow = workflow::parse("ci.yml", text).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new(source, work.path());
    opts.github = github;
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    (report, observer.log_text().join("\n"))
}

fn step(report: &RunReport, index: usize) -> &engine::StepReport {
    &report.jobs[0].steps[index]
}

/// The scan step, then one that checks the report it names is in the workspace and redacted.
const SCAN: &str = r#"
on: push
jobs:
  scan:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: scan
        uses: mobius/secret-scan@v1
        with:
          format: json
          fail: true
      - if: always()
        run: |
          test -f "${{ steps.scan.outputs.report }}"
          grep -q REDACTED "${{ steps.scan.outputs.report }}" && echo "report redacted"
          cat config.env
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_secret_fails_the_step_masked_with_a_redacted_report() {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("config.env"), format!("HOST=x\nGITHUB_TOKEN={}\n", token())).unwrap();
    let (report, log) = run(SCAN, source.path(), json!({})).await;
    assert_eq!(report.result, Status::Failure, "{log}");
    let scan = step(&report, 1);
    assert_eq!(scan.conclusion, Status::Failure, "{log}");
    assert_eq!(scan.outputs["report"], "mobius-secret-scan.json");
    assert_eq!(scan.outputs["findings"], "1");
    assert!(
        log.contains(&format!(
            "config.env:2: github-pat (GitHub personal access token (classic)): ghp_{}",
            "*".repeat(36)
        )),
        "{log}"
    );
    assert!(log.contains("1 leak(s) found in the workspace"), "{log}");
    assert!(log.contains("report redacted"), "{log}");
    // Found once, masked everywhere after: even `cat` of the file does not show it.
    assert!(log.contains("GITHUB_TOKEN=***"), "{log}");
    assert!(!log.contains(&token()), "the secret reached the log: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_false_reports_without_failing_and_a_clean_tree_passes() {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("config.env"), format!("GITHUB_TOKEN={}\n", token())).unwrap();
    let flow = SCAN.replace("fail: true", "fail: false");
    let (report, log) = run(&flow, source.path(), json!({})).await;
    assert_eq!(report.result, Status::Success, "{log}");
    assert_eq!(step(&report, 1).outputs["findings"], "1");

    std::fs::write(source.path().join("config.env"), "GITHUB_TOKEN=$FROM_THE_VAULT\n").unwrap();
    let (report, log) = run(SCAN, source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Success, "{log}");
    assert_eq!(step(&report, 1).outputs["findings"], "0");
    assert!(log.contains("no leaks found in the workspace; report: mobius-secret-scan.json"), "{log}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(dir: &Path, file: &str, text: &str) -> String {
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", &format!("change {file}")]);
    git(dir, &["rev-parse", "HEAD"])
}

/// On a push, only the lines the pushed commits add are scanned: a secret already in the tree
/// from an earlier push does not fail this one, and one the push adds does, named by commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_scans_only_the_lines_it_adds() {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    let first = commit(repo.path(), "README.md", "hello\n");
    let leaked = commit(repo.path(), "config.env", &format!("GITHUB_TOKEN={}\n", token()));
    let last = commit(repo.path(), "notes.md", "nothing secret\n");
    let push = |before: &str, after: &str| json!({"event": {"before": before, "after": after}});

    let (report, log) = run(SCAN, repo.path(), push(&leaked, &last)).await;
    assert_eq!(step(&report, 1).conclusion, Status::Success, "{log}");
    assert!(log.contains(&format!("no leaks found in the lines added by {leaked}..{last}")), "{log}");

    let (report, log) = run(SCAN, repo.path(), push(&first, &last)).await;
    assert_eq!(step(&report, 1).conclusion, Status::Failure, "{log}");
    assert!(log.contains("config.env:1: github-pat") && log.contains(&format!("in commit {}", &leaked[..12])), "{log}");
    assert!(!log.contains(&token()), "{log}");

    // A new branch (before all zeros) has no range: the whole checkout is scanned.
    let (report, log) = run(SCAN, repo.path(), push(&"0".repeat(40), &last)).await;
    assert_eq!(step(&report, 1).conclusion, Status::Failure, "{log}");
    assert!(log.contains("found in the workspace"), "{log}");
}

/// An unknown input, a bad format: refused by lint at the key, and by the step at run time.
#[test]
fn lint_refuses_unknown_inputs_at_their_position() {
    let text = "on: push\njobs:\n  s:\n    runs-on: x\n    steps:\n      - uses: mobius/secret-scan@v1\n        with:\n          confg: .gitleaks.toml\n      - uses: mobius/dependency-audit@v1\n        with:\n          paths: Cargo.lock\n";
    let diagnostics = workflow::lint("ci.yml", text);
    let said: Vec<String> = diagnostics.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect();
    assert!(
        said.iter().any(|d| d.starts_with("8:11: unknown input `confg` of `mobius/secret-scan`")
            && d.contains("did you mean `config`")),
        "{said:?}"
    );
    assert!(said.iter().any(|d| d.starts_with("9:") && d.contains("needs input `osv-dir`")), "{said:?}");
    assert_eq!(said.len(), 2, "{said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_input_value_fails_the_step_with_its_name() {
    let source = tempfile::tempdir().unwrap();
    let flow = SCAN.replace("format: json", "format: xml");
    let (report, log) = run(&flow, source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Failure, "{log}");
    assert!(log.contains("mobius/secret-scan failed: input `format`: `xml` is not a format"), "{log}");
}

const CARGO_LOCK: &str = "version = 4\n\n[[package]]\nname = \"smallvec\"\nversion = \"0.6.10\"\n\
    source = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

/// `<dir>/crates.io/all.zip` with one advisory for smallvec 0.6.3 up to 0.6.14, rated medium.
fn osv_database(dir: &Path) {
    let record = json!({
        "schema_version": "1.6.0",
        "id": "RUSTSEC-2019-0009",
        "modified": "2026-11-20T10:00:00Z",
        "database_specific": {"severity": "MODERATE"},
        "affected": [{
            "package": {"ecosystem": "crates.io", "name": "smallvec"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.6.3"}, {"fixed": "0.6.14"}]}],
        }],
    });
    std::fs::create_dir_all(dir.join("osv/crates.io")).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(dir.join("osv/crates.io/all.zip")).unwrap());
    zip.start_file("RUSTSEC-2019-0009.json", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(record.to_string().as_bytes()).unwrap();
    zip.finish().unwrap();
}

const AUDIT: &str = r#"
on: push
jobs:
  audit:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: audit
        uses: mobius/dependency-audit@v1
        with:
          osv-dir: osv
          fail-on: FAIL_ON
      - if: always()
        run: |
          grep -q '"version": "2.1.0"' "${{ steps.audit.outputs.report }}" && echo "sarif written"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vulnerable_lockfile_fails_at_or_above_the_threshold() {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("Cargo.lock"), CARGO_LOCK).unwrap();
    osv_database(source.path());

    let (report, log) = run(&AUDIT.replace("FAIL_ON", "medium"), source.path(), json!({})).await;
    let audit = step(&report, 1);
    assert_eq!(audit.conclusion, Status::Failure, "{log}");
    assert_eq!(audit.outputs["report"], "mobius-dependency-audit.sarif");
    assert!(log.contains("Cargo.lock:3: smallvec 0.6.10: RUSTSEC-2019-0009 (medium, fixed in 0.6.14)"), "{log}");
    assert!(log.contains("1 vulnerability in 1 package(s), 1 at medium or above"), "{log}");
    assert!(log.contains("sarif written"), "{log}");

    let (report, log) = run(&AUDIT.replace("FAIL_ON", "critical"), source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Success, "{log}");
    assert!(log.contains("0 at critical or above"), "{log}");

    let (report, log) = run(&AUDIT.replace("FAIL_ON", "severe"), source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Failure, "{log}");
    assert!(log.contains("input `fail-on`: unknown severity"), "{log}");

    std::fs::remove_file(source.path().join("Cargo.lock")).unwrap();
    let (report, log) = run(&AUDIT.replace("FAIL_ON", "critical"), source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Failure, "nothing audited is no pass: {log}");
    assert!(log.contains("no lockfile found"), "{log}");
}

/// The workspace's `.gitleaks.toml` is the config by default (its allowlist accepts the file);
/// a `config` input that does not parse fails the step at its file, line and column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_is_the_workspaces_or_the_input_and_a_bad_one_is_placed() {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("config.env"), format!("GITHUB_TOKEN={}\n", token())).unwrap();
    let allow = "[extend]\nuseDefault = true\n\n[allowlist]\npaths = ['''config\\.env''']\n";
    std::fs::write(source.path().join(".gitleaks.toml"), allow).unwrap();
    let (report, log) = run(SCAN, source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Success, "{log}");
    assert_eq!(step(&report, 1).outputs["findings"], "0", "{log}");

    std::fs::write(source.path().join("strict.toml"), "[extend]\nuseDefault = true\nunknown = 1\n").unwrap();
    let flow = SCAN.replace("format: json", "format: json\n          config: strict.toml");
    let (report, log) = run(&flow, source.path(), json!({})).await;
    assert_eq!(step(&report, 1).conclusion, Status::Failure, "{log}");
    assert!(log.contains("mobius/secret-scan failed: the secret scan could not run: bad config: "), "{log}");
    assert!(log.contains("strict.toml:3:1"), "{log}");
}
