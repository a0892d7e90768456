//! The security gates through the real binary: `scan secrets` (a tree, history, the index),
//! the pre-commit hook in a real repository, `scan deps` against an OSV database built here,
//! `sbom`, `policy test` and `policy eval` over the shipped examples, and a workflow failing at
//! its `mobius/secret-scan` step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::util::{Dir, said};

/// A GitHub token of the right shape, built here so that no file of this repository holds one.
fn token() -> String {
    format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5")
}

/// The text report's masked form of [`token`]: four characters kept.
fn masked() -> String {
    format!("ghp_{}", "*".repeat(36))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `git ARGS` in `dir` with a fixed identity and no user configuration; must succeed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir, args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", said(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("SKIP");
    cmd
}

/// A repository with one commit of a clean file.
fn repo() -> Dir {
    let dir = Dir::new();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    dir.write("README.md", "hello\n");
    git(dir.path(), &["add", "README.md"]);
    git(dir.path(), &["commit", "-q", "-m", "start"]);
    dir
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_planted_secret_is_found_in_a_tree_masked_with_exit_1() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    dir.write("src/config.py", &format!("API = 'x'\ntoken = \"{}\"\n", token()));
    let result = dir.run(&["scan", "secrets", "src"]);
    let text = out(&result);
    assert_eq!(result.status.code(), Some(1), "{}", said(&result));
    assert!(text.contains(&format!("Secret:      {}", masked())), "{text}");
    assert!(text.contains("RuleID:      github-pat") && text.contains("Line:        2"), "{text}");
    assert!(!said(&result).contains(&token()), "the secret leaked: {}", said(&result));
    assert!(text.contains("1 leak found"), "{text}");

    let custom = dir.run(&["scan", "secrets", "src", "--exit-code", "7"]);
    assert_eq!(custom.status.code(), Some(7), "{}", said(&custom));
    let clean = dir.run(&["scan", "secrets", "data-that-does-not-exist"]);
    assert_eq!(clean.status.code(), Some(2), "{}", said(&clean));
    for refused in ["0", "2"] {
        let result = dir.run(&["scan", "secrets", "src", "--exit-code", refused]);
        assert_eq!(result.status.code(), Some(2), "clap's usage error: {}", said(&result));
        assert!(said(&result).contains("--exit-code"), "{}", said(&result));
    }
    std::fs::remove_file(dir.path().join("src/config.py")).unwrap();
    let result = dir.run(&["scan", "secrets", "src"]);
    assert_eq!(result.status.code(), Some(0), "{}", said(&result));
    assert!(out(&result).contains("no leaks found"), "{}", said(&result));
}

#[test]
fn history_and_staged_scans_see_only_added_lines() {
    let dir = repo();
    let first = git(dir.path(), &["rev-parse", "HEAD"]);
    dir.write("deploy.sh", &format!("export GITHUB_TOKEN={}\n", token()));
    git(dir.path(), &["add", "deploy.sh"]);

    // Staged, not committed: the index has it, history does not.
    let staged = dir.run(&["scan", "secrets", "--staged"]);
    assert_eq!(staged.status.code(), Some(1), "{}", said(&staged));
    assert!(out(&staged).contains("File:        deploy.sh"), "{}", said(&staged));
    assert!(!said(&staged).contains(&token()));
    let history = dir.run(&["scan", "secrets", "--git"]);
    assert_eq!(history.status.code(), Some(0), "{}", said(&history));

    git(dir.path(), &["commit", "-q", "-m", "add deploy script"]);
    let commit = git(dir.path(), &["rev-parse", "HEAD"]);
    let history = dir.run(&["scan", "secrets", "--git"]);
    assert_eq!(history.status.code(), Some(1), "{}", said(&history));
    assert!(out(&history).contains(&format!("Commit:      {commit}")), "{}", said(&history));
    let json = dir.run(&["--json", "scan", "secrets", "--git", &format!("{first}..HEAD"), "--redact"]);
    assert_eq!(json.status.code(), Some(1), "{}", said(&json));
    let findings: Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
    assert_eq!(findings[0]["RuleID"], "github-pat");
    assert_eq!(findings[0]["Secret"], "REDACTED");
    // Removing the line later does not hide it from history; a range after it is clean.
    std::fs::write(dir.path().join("deploy.sh"), "export GITHUB_TOKEN=$TOKEN\n").unwrap();
    git(dir.path(), &["commit", "-q", "-am", "read the token from the environment"]);
    let after = dir.run(&["scan", "secrets", "--git", &format!("{commit}..HEAD")]);
    assert_eq!(after.status.code(), Some(0), "{}", said(&after));
    assert_eq!(dir.run(&["scan", "secrets", "--git"]).status.code(), Some(1));
}

#[test]
fn a_sarif_report_goes_to_the_output_file() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    dir.write("src/app.env", &format!("TOKEN={}\n", token()));
    let result = dir.run(&["scan", "secrets", "src", "--format", "sarif", "--output", "secrets.sarif"]);
    assert_eq!(result.status.code(), Some(1), "{}", said(&result));
    assert!(result.stdout.is_empty(), "the report went to stdout: {}", out(&result));
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("secrets.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "github-pat");
    assert_eq!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "app.env");
    assert!(result["partialFingerprints"].as_object().is_some_and(|f| !f.is_empty()), "{result}");

    // A JSON report kept as the baseline accepts what it lists, and only that.
    let kept = dir.run(&["scan", "secrets", "src", "--format", "json", "--output", "known.json"]);
    assert_eq!(kept.status.code(), Some(1), "{}", said(&kept));
    let accepted = dir.run(&["scan", "secrets", "src", "--baseline", "known.json"]);
    assert_eq!(accepted.status.code(), Some(0), "{}", said(&accepted));
    dir.write("src/more.env", &format!("OTHER={}\n", token().replace("aB3", "zQ8")));
    let new = dir.run(&["scan", "secrets", "src", "--baseline", "known.json"]);
    assert_eq!(new.status.code(), Some(1), "{}", said(&new));
    assert!(
        out(&new).contains("File:        more.env") && !out(&new).contains("File:        app.env"),
        "{}",
        said(&new)
    );
}

#[test]
fn a_bad_gitleaks_config_is_named_at_its_line_and_column_with_exit_2() {
    let dir = Dir::new();
    dir.write("app.env", &format!("TOKEN={}\n", token()));
    dir.write(".gitleaks.toml", "title = \"ours\"\n\n[[rules]]\nid = \"broken\"\nregex = '''(unclosed'''\n");
    let result = dir.run(&["scan", "secrets"]);
    assert_eq!(result.status.code(), Some(2), "{}", said(&result));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains(".gitleaks.toml:5:"), "{err}");
    assert!(result.stdout.is_empty(), "a report despite the error: {}", out(&result));

    // The environment's config wins over the file at the root, as in gitleaks.
    let only_aws = "[[rules]]\nid = \"only-aws\"\nregex = '''AKIA[0-9A-Z]{16}'''\nkeywords = [\"akia\"]\n";
    let result = dir.cmd(&["scan", "secrets"]).env("GITLEAKS_CONFIG_TOML", only_aws).output().unwrap();
    assert_eq!(result.status.code(), Some(0), "{}", said(&result));
    let path = dir.write("other.toml", "[extend]\nuseDefault = true\n");
    let result = dir.cmd(&["scan", "secrets"]).env("GITLEAKS_CONFIG", &path).output().unwrap();
    assert_eq!(result.status.code(), Some(1), "{}", said(&result));
    let bad = dir.cmd(&["scan", "secrets"]).env("GITLEAKS_CONFIG_TOML", "[[rules]]\nid = 3\n").output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", said(&bad));
    assert!(said(&bad).contains("GITLEAKS_CONFIG_TOML:2:"), "{}", said(&bad));
}

#[test]
fn the_pre_commit_hook_refuses_a_secret_and_skip_lets_it_through() {
    let dir = repo();
    let installed = dir.ok(&["hooks", "install"]);
    let hook = dir.path().join(".git/hooks/pre-commit");
    assert!(installed.contains(&hook.display().to_string()) || installed.contains("pre-commit"), "{installed}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&hook).unwrap().permissions().mode() & 0o111, 0o111);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), mobius_scan::pre_commit_hook_script());
    // Installing again is a no-op; a different hook is kept, and named, without --force.
    dir.ok(&["hooks", "install"]);
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let refused = dir.run(&["hooks", "install"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        said(&refused).contains(".git/hooks/pre-commit") && said(&refused).contains("--force"),
        "{}",
        said(&refused)
    );
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), "#!/bin/sh\nexit 0\n");
    dir.ok(&["hooks", "install", "--force"]);

    let path = format!(
        "{}:{}",
        Path::new(crate::util::bin()).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    dir.write("settings.yaml", &format!("github:\n  token: {}\n", token()));
    git(dir.path(), &["add", "settings.yaml"]);
    let commit = git_cmd(dir.path(), &["commit", "-q", "-m", "settings"]).env("PATH", &path).output().unwrap();
    assert!(!commit.status.success(), "the commit went through: {}", said(&commit));
    let told = said(&commit);
    assert!(told.contains("github-pat") && told.contains("settings.yaml"), "{told}");
    assert!(told.contains("commit refused"), "{told}");
    assert!(!told.contains(&token()), "the hook printed the secret: {told}");
    assert_eq!(git(dir.path(), &["rev-list", "--count", "HEAD"]), "1");

    let skipped = git_cmd(dir.path(), &["commit", "-q", "-m", "settings"])
        .env("PATH", &path)
        .env("SKIP", "mobius-secrets")
        .output();
    let skipped = skipped.unwrap();
    assert!(skipped.status.success(), "{}", said(&skipped));
    assert_eq!(git(dir.path(), &["rev-list", "--count", "HEAD"]), "2");
}

#[test]
fn hooks_install_honours_core_hooks_path() {
    let dir = repo();
    git(dir.path(), &["config", "core.hooksPath", "tools/hooks"]);
    dir.ok(&["hooks", "install"]);
    assert!(dir.path().join("tools/hooks/pre-commit").is_file());
    assert!(!dir.path().join(".git/hooks/pre-commit").exists());
    let outside = Dir::new();
    let result = outside.run(&["hooks", "install", "--repo", "."]);
    assert_eq!(result.status.code(), Some(1));
    assert!(said(&result).contains("not in a git repository"), "{}", said(&result));
}

/// `<dir>/crates.io/all.zip` with the given OSV records, as the OSV export lays them out.
fn osv_database(dir: &Path, records: &[Value]) -> PathBuf {
    let osv = dir.join("osv");
    std::fs::create_dir_all(osv.join("crates.io")).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(osv.join("crates.io/all.zip")).unwrap());
    for record in records {
        let name = format!("{}.json", record["id"].as_str().unwrap());
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&serde_json::to_vec(record).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    osv
}

fn advisory(id: &str, name: &str, introduced: &str, fixed: &str, severity: &str) -> Value {
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-11-20T10:00:00Z",
        "summary": format!("{id} in {name}"),
        "database_specific": {"severity": severity},
        "affected": [{
            "package": {"ecosystem": "crates.io", "name": name},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": introduced}, {"fixed": fixed}]}],
        }],
    })
}

const CARGO_LOCK: &str = "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n\
    [[package]]\nname = \"smallvec\"\nversion = \"0.6.10\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
    [[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

#[test]
fn scan_deps_finds_a_vulnerable_locked_crate() {
    let dir = Dir::new();
    dir.write("Cargo.lock", CARGO_LOCK);
    let osv = osv_database(
        dir.path(),
        &[
            advisory("RUSTSEC-2019-0009", "smallvec", "0.6.3", "0.6.14", "MODERATE"),
            advisory("RUSTSEC-2099-0001", "serde", "0", "1.0.100", "CRITICAL"),
        ],
    );
    let osv = osv.to_str().unwrap();
    let result = dir.run(&["scan", "deps", "--osv-dir", osv]);
    let text = out(&result);
    assert_eq!(result.status.code(), Some(1), "{}", said(&result));
    assert!(text.contains("RUSTSEC-2019-0009") && text.contains("smallvec"), "{text}");
    assert!(!text.contains("RUSTSEC-2099-0001"), "serde 1.0.200 is past the fix: {text}");

    let report = dir.run(&["--json", "scan", "deps", ".", "--osv-dir", osv]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap_or_else(|e| panic!("{e}: {}", said(&report)));
    let finding = &report["findings"][0];
    assert!(finding.to_string().contains("0.6.14"), "the fix is reported: {finding}");

    // Medium is under a high threshold; SARIF goes to a file.
    let high =
        dir.run(&["scan", "deps", "--osv-dir", osv, "--fail-on", "high", "--format", "sarif", "-o", "deps.sarif"]);
    assert_eq!(high.status.code(), Some(0), "{}", said(&high));
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("deps.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"].as_array().map(Vec::len), Some(1), "{sarif}");

    // A database older than allowed: a warning, or with --fail-on-old an error (exit 2).
    let stale = dir.run(&["scan", "deps", "--osv-dir", osv, "--max-age", "1d", "--fail-on-old"]);
    assert_eq!(stale.status.code(), Some(2), "{}", said(&stale));
    assert!(said(&stale).contains("days old"), "{}", said(&stale));
    let bad = dir.run(&["scan", "deps", "--osv-dir", osv, "--fail-on", "severe"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(said(&bad).contains("unknown severity"), "{}", said(&bad));

    let empty = Dir::new();
    let none = empty.run(&["scan", "deps", "--osv-dir", osv]);
    assert_eq!(none.status.code(), Some(128), "{}", said(&none));
    assert!(said(&none).contains("no lockfile found"), "{}", said(&none));
}

#[test]
fn sbom_lists_the_locked_packages_as_cyclonedx() {
    let dir = Dir::new();
    dir.write("Cargo.lock", CARGO_LOCK);
    let text = dir.ok(&["sbom", "--name", "shop", "--version", "1.2.3"]);
    let bom: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["component"]["name"], "shop");
    assert_eq!(bom["metadata"]["component"]["version"], "1.2.3");
    let mut purls: Vec<&str> =
        bom["components"].as_array().unwrap().iter().filter_map(|c| c["purl"].as_str()).collect();
    purls.sort_unstable();
    assert_eq!(purls, ["pkg:cargo/serde@1.0.200", "pkg:cargo/smallvec@0.6.10"], "{text}");

    dir.ok(&["sbom", "Cargo.lock", "--output", "bom.json"]);
    let bom: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("bom.json")).unwrap()).unwrap();
    let name = dir.path().canonicalize().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(bom["metadata"]["component"]["name"], name.as_str());

    dir.write("Cargo.lock", "version = 4\n[[package]]\nname = \n");
    let bad = dir.run(&["sbom"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(said(&bad).contains("Cargo.lock:3"), "{}", said(&bad));
}

/// The input of `crates/mobius-policy/README.md`, which the examples allow.
fn allowed_input() -> Value {
    json!({
        "action": "deploy",
        "service": "checkout",
        "environment": "production",
        "artifact": {
            "digest": "sha256:4b1d0c5e8f2a9d7c3b6e1f0a2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d",
            "commit": "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e",
            "branch": "main",
            "default_branch": "main",
            "workflow": "build",
            "run": "1842",
            "built_by_mobius": true,
            "scan": {
                "secrets": {"findings": 1, "unresolved": 0},
                "vulnerabilities": {"critical": 0, "high": 0, "medium": 2, "low": 5}
            }
        },
        "actor": {"name": "ada", "token_scope": "deploy"},
        "reason": null,
        "time": {"rfc3339": "2026-12-02T10:15:00Z"},
        "slo": {"status": "ok", "budget_remaining": 0.82},
        "flag": null
    })
}

#[test]
fn policy_test_passes_over_the_examples() {
    let dir = Dir::new();
    let examples = root().join("examples/policies");
    let text = dir.ok(&["policy", "test", examples.to_str().unwrap()]);
    let total = text.lines().filter(|l| l.ends_with(": PASS")).count();
    assert!(total > 5, "{text}");
    assert!(text.contains(&format!("PASS: {total}/{total}")), "{text}");

    // A failing test fails the command, named with where it is.
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("gate.rego"), "package mobius.gate\n\ndeny contains \"no\" if input.x\n").unwrap();
    std::fs::write(
        policies.join("gate_test.rego"),
        "package mobius.gate_test\n\ntest_ok if true\n\ntest_wrong if data.mobius.gate.deny == {\"yes\"} with input as {\"x\": true}\n",
    )
    .unwrap();
    let result = dir.run(&["policy", "test"]);
    assert_eq!(result.status.code(), Some(1), "{}", said(&result));
    assert!(
        out(&result).contains("test_wrong: FAIL") && out(&result).contains("gate_test.rego:5:"),
        "{}",
        said(&result)
    );
    assert!(out(&result).contains("PASS: 1/2") && out(&result).contains("FAIL: 1/2"), "{}", said(&result));
}

#[test]
fn policy_eval_prints_the_decision_and_exits_1_on_deny() {
    let dir = Dir::new();
    let examples = root().join("examples/policies");
    let examples = examples.to_str().unwrap();
    dir.write("allowed.json", &allowed_input().to_string());
    let allowed = dir.run(&["policy", "eval", "--policy", examples, "--input", "allowed.json"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", said(&allowed));
    let decision: Value = serde_json::from_slice(&allowed.stdout).unwrap();
    assert_eq!(decision["allow"], true);

    let mut input = allowed_input();
    input["artifact"]["branch"] = json!("feature/x");
    input["artifact"]["scan"]["vulnerabilities"]["critical"] = json!(1);
    dir.write("denied.json", &serde_json::to_string_pretty(&input).unwrap());
    let denied = dir.run(&["policy", "eval", "--policy", examples, "--input", "denied.json"]);
    assert_eq!(denied.status.code(), Some(1), "{}", said(&denied));
    let decision: Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(decision["allow"], false);
    let deny: Vec<&str> = decision["deny"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(deny.iter().any(|m| m.contains("branch feature/x")), "{deny:?}");
    assert!(deny.iter().any(|m| m.contains("critical")), "{deny:?}");

    // A field the input does not have is refused at the file's line and column.
    dir.write("bad.json", "{\n  \"action\": \"deploy\",\n  \"servce\": \"checkout\"\n}\n");
    let bad = dir.run(&["policy", "eval", "--policy", examples, "--input", "bad.json"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stdout.is_empty(), "a decision despite the error: {}", out(&bad));
    assert!(said(&bad).contains("bad.json:3:"), "{}", said(&bad));
    let piped =
        crate::util::with_stdin(&dir, &["policy", "eval", "--policy", examples, "--input", "-"], "{\n\"action\": 3\n}");
    assert_eq!(piped.status.code(), Some(1));
    assert!(said(&piped).contains("<stdin>:2:"), "{}", said(&piped));
}

const SECRET_GATE: &str = "\
on: push
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: secrets
        uses: mobius/secret-scan@v1
      - run: echo built
";

#[test]
fn a_commit_with_a_secret_fails_its_workflow_at_the_secret_scan_step() {
    let dir = repo();
    dir.write("ci.yml", SECRET_GATE);
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::rename(dir.path().join("ci.yml"), dir.path().join(".github/workflows/ci.yml")).unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "ci"]);
    let clean = dir.run(&["run", "--no-events"]);
    assert_eq!(clean.status.code(), Some(0), "{}", said(&clean));
    assert!(out(&clean).contains("no leaks found in the workspace"), "{}", said(&clean));

    dir.write("settings.py", &format!("TOKEN = '{}'\n", token()));
    git(dir.path(), &["add", "settings.py"]);
    git(dir.path(), &["commit", "-q", "-m", "settings"]);
    let result = dir.run(&["run", "--no-events"]);
    let text = said(&result);
    assert_eq!(result.status.code(), Some(1), "{text}");
    assert!(text.contains("gate › secrets failed"), "{text}");
    assert!(
        text.contains(&format!("settings.py:1: github-pat (GitHub personal access token (classic)): {}", masked())),
        "{text}"
    );
    assert!(!text.contains("built\n"), "the step after the gate ran: {text}");
    assert!(!text.contains(&token()), "the secret reached the output: {text}");
}

#[test]
fn help_says_what_each_gate_does_and_what_its_exit_codes_mean() {
    let dir = Dir::new();
    let help = dir.ok(&["--help"]);
    for command in ["scan", "sbom", "hooks", "policy"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "{command}: {help}");
    }
    let secrets = dir.ok(&["scan", "secrets", "--help"]);
    for said in ["--git", "--staged", "--baseline", "--redact", "--exit-code", "GITLEAKS_CONFIG_TOML", "Exit codes: 0"]
    {
        assert!(secrets.contains(said), "{said}: {secrets}");
    }
    let deps = dir.ok(&["scan", "deps", "--help"]);
    for said in ["--osv-dir", "--max-age", "--fail-on-old", "--fail-on", "all.zip", "128 no package"] {
        assert!(deps.contains(said), "{said}: {deps}");
    }
    let install = dir.ok(&["hooks", "install", "--help"]);
    assert!(install.contains("core.hooksPath") && install.contains("SKIP=mobius-secrets"), "{install}");
    let eval = dir.ok(&["policy", "eval", "--help"]);
    assert!(eval.contains("exits 1 on deny") && eval.contains("--input"), "{eval}");
}
