//! `mobius lint` and `mobius run --list` over workflow files in a temporary repository.

use std::process::Command;

use crate::util::Dir;

const CI: &str = "\
name: CI
on:
  push:
    branches: [main]
  pull_request:
jobs:
  build:
    name: Build
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, mac]
        rust: [stable, beta, nightly]
        exclude:
          - os: mac
            rust: nightly
    steps:
      - run: cargo build
      - run: cargo test
  deploy:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo deploy
";

/// `runs_on` on line 4, column 5: the typo the linter must point at.
const BAD: &str = "\
on: push
jobs:
  test:
    runs_on: ubuntu-latest
    steps:
      - run: echo hi
";

/// A repository (it has `.git`) with the given files, created with their directories.
fn repo(files: &[(&str, &str)]) -> Dir {
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_valid_workflow_lints_clean() {
    let dir = repo(&[(".github/workflows/ci.yml", CI)]);
    let out = dir.ok(&["lint"]);
    assert_eq!(out, "1 workflow file, 0 errors, 0 warnings\n");
}

#[test]
fn an_unknown_key_is_an_error_at_its_position_with_a_suggestion() {
    let dir = repo(&[(".github/workflows/ci.yml", CI), (".github/workflows/bad.yml", BAD)]);
    let out = dir.run(&["lint"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains(".github/workflows/bad.yml:4:5: error:"), "{text}");
    assert!(text.contains("`runs-on`"), "{text}");
    assert!(text.ends_with("2 workflow files, 1 error, 0 warnings\n"), "{text}");
}

#[test]
fn paths_are_relative_to_the_repository_root_from_a_subdirectory() {
    let dir = repo(&[(".mobius/workflows/bad.yaml", BAD), ("src/lib.rs", "")]);
    let out = dir.cmd(&["lint"]).current_dir(dir.path().join("src")).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(".mobius/workflows/bad.yaml:4:5: error:"), "{}", stdout(&out));
}

#[test]
fn lint_takes_files_and_directories() {
    let dir = repo(&[("one/bad.yml", BAD), ("two/ci.yml", CI), ("two/notes.txt", "not a workflow")]);
    let out = dir.run(&["lint", "two"]);
    assert_eq!(stdout(&out), "1 workflow file, 0 errors, 0 warnings\n");
    let out = dir.run(&["lint", "one/bad.yml", "two"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("one/bad.yml:4:5: error:"), "{}", stdout(&out));
    let out = dir.run(&["lint", "missing.yml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yml does not exist"));
}

#[test]
fn lint_json_lists_files_and_diagnostics() {
    let dir = repo(&[(".github/workflows/ci.yml", CI), (".github/workflows/bad.yml", BAD)]);
    let out = dir.run(&["--json", "lint"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["files"], serde_json::json!([".github/workflows/bad.yml", ".github/workflows/ci.yml"]));
    assert_eq!((report["errors"].as_u64(), report["warnings"].as_u64()), (Some(1), Some(0)));
    let d = &report["diagnostics"][0];
    assert_eq!(d["path"], ".github/workflows/bad.yml");
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(4), Some(5)));
    assert_eq!(d["severity"], "error");
    assert!(d["message"].as_str().unwrap().contains("runs-on"), "{d}");
}

#[test]
fn no_workflows_is_said_plainly_and_is_not_a_failure() {
    let dir = repo(&[]);
    let out = dir.ok(&["lint"]);
    assert!(out.contains("no workflow files under .github/workflows or .mobius/workflows"), "{out}");
    let out = dir.ok(&["run", "--list"]);
    assert!(out.contains("no workflow files"), "{out}");
}

#[test]
fn run_list_shows_jobs_needs_and_matrix_sizes() {
    let dir = repo(&[(".github/workflows/ci.yml", CI), (".github/workflows/bad.yml", BAD)]);
    let out = dir.ok(&["run", "--list"]);
    assert!(out.contains(".github/workflows/ci.yml  \"CI\"  on: push, pull_request  (2 jobs)"), "{out}");
    // 2 × 3 minus the excluded (mac, nightly).
    let build = out.lines().find(|l| l.trim_start().starts_with("build")).expect("build row");
    assert_eq!(build.split_whitespace().collect::<Vec<_>>(), ["build", "Build", "-", "5", "2"]);
    let deploy = out.lines().find(|l| l.trim_start().starts_with("deploy")).expect("deploy row");
    assert_eq!(deploy.split_whitespace().collect::<Vec<_>>(), ["deploy", "-", "build", "1", "1"]);
    assert!(out.contains(".github/workflows/bad.yml  (invalid)"), "{out}");
    assert!(out.contains("bad.yml:4:5: error:"), "{out}");

    let listed = dir.json(&["run", "--list", "ci"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "a file stem selects one workflow: {listed}");
    let jobs = &listed[0]["jobs"];
    assert_eq!(jobs[0]["matrix"], 5);
    assert_eq!(jobs[1]["needs"], serde_json::json!(["build"]));
    assert_eq!(listed[0]["triggers"], serde_json::json!(["push", "pull_request"]));
    assert!(!dir.run(&["run", "--list", "nope"]).status.success());
}

#[test]
fn run_without_list_says_it_is_not_implemented_yet() {
    let dir = repo(&[(".github/workflows/ci.yml", CI)]);
    let out = dir.run(&["run", "--event", "push", "--secret", "TOKEN=abcd=ef", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not implemented yet"));
    let out = dir.run(&["run", "--input", "no-equals-sign"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));
    let help = dir.ok(&["run", "--help"]);
    for flag in ["--event", "--input", "--secret", "--secrets-file", "--matrix", "--jobs", "--list"] {
        assert!(help.contains(flag), "{help}");
    }
}

/// Colour needs a terminal, so this runs `mobius lint` under `script`, which gives it a pty.
#[test]
fn severity_is_coloured_only_on_a_terminal_without_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = repo(&[(".github/workflows/bad.yml", BAD)]);
    let on_terminal = |no_color: Option<&str>| {
        let line = format!("{} lint", crate::util::bin());
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]).current_dir(dir.path()).env_remove("NO_COLOR");
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        stdout(&cmd.output().expect("script runs"))
    };
    assert!(on_terminal(None).contains("\x1b[1;31merror\x1b[0m"));
    let plain = on_terminal(Some("1"));
    assert!(plain.contains("error:") && !plain.contains('\x1b'), "{plain:?}");
    // Piped output (as in every other test) is never coloured.
    let piped =
        stdout(&repo(&[(".github/workflows/bad.yml", BAD)]).cmd(&["lint"]).env_remove("NO_COLOR").output().unwrap());
    assert!(!piped.contains('\x1b'), "{piped:?}");
}

#[test]
fn every_starter_workflow_is_linted() {
    let dir = Dir::new();
    let starters = crate::util::corpus("starter-workflows");
    // Some starters use actions Mobius does not run, so the exit code is 1; the report is whole.
    let out = dir.run(&["--json", "lint", starters.join("ci").to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let files = report["files"].as_array().unwrap();
    assert!(files.len() > 40, "{}", files.len());
    // Every diagnostic names a file that was listed, so none is lost or mislabelled.
    for d in report["diagnostics"].as_array().unwrap() {
        assert!(files.contains(&d["path"]), "{d}");
    }
}
