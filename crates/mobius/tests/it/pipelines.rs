//! `mobius lint` and `mobius run` over workflow files in a temporary repository.

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
fn run_flags_are_parsed_and_documented() {
    let dir = repo(&[(".github/workflows/ci.yml", CI)]);
    let out = dir.run(&["run", "--input", "no-equals-sign"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));
    let help = dir.ok(&["run", "--help"]);
    for flag in ["--event", "--input", "--secret", "--secrets-file", "--matrix", "--jobs", "--list", "--no-events"] {
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

/// Two jobs: `b` needs `a` and echoes `a`'s output; `c` stands alone.
const NEEDS: &str = r#"
name: Needs
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    outputs:
      x: ${{ steps.s.outputs.x }}
    steps:
      - id: s
        run: echo "x=value-from-a" >> "$GITHUB_OUTPUT"
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: echo "b got ${{ needs.a.outputs.x }}"
  c:
    runs-on: ubuntu-latest
    steps:
      - run: echo c-ran
"#;

/// A real git repository (`git init`), with the given files uncommitted.
fn git_repo(files: &[(&str, &str)]) -> Dir {
    let dir = Dir::new();
    let status = Command::new("git").args(["init", "-q"]).current_dir(dir.path()).status().expect("git runs");
    assert!(status.success());
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_passes_job_outputs_through_needs() {
    let dir = git_repo(&[(".github/workflows/needs.yml", NEEDS)]);
    let out = dir.run(&["run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.lines().any(|l| l.starts_with("[b] ") && l.ends_with(": b got value-from-a")), "{text}");
    assert!(text.contains("[a] ✓ passed"), "{text}");
    assert!(text.contains("3 jobs: 3 passed, 0 failed, 0 skipped in "), "{text}");
}

#[test]
fn a_failing_step_exits_1_and_its_last_lines_are_shown_again() {
    let flow = "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - name: breaks\n        run: |\n          echo clue-before-failing\n          exit 3\n      - run: echo never\n";
    let dir = git_repo(&[(".github/workflows/f.yml", flow)]);
    let out = dir.run(&["run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("[t] ✗ failed"), "{text}");
    let tail = text.split("── t › breaks failed").nth(1).unwrap_or_else(|| panic!("no failure tail: {text}"));
    assert!(tail.contains("clue-before-failing"), "{text}");
    assert!(!text.contains("never\n"), "{text}");
    assert!(text.contains("1 job: 0 passed, 1 failed, 0 skipped"), "{text}");
}

#[test]
fn run_json_reports_each_workflow_and_job() {
    let dir = git_repo(&[(".github/workflows/needs.yml", NEEDS)]);
    let report = dir.json(&["run", "needs"]);
    assert_eq!(report["result"], "success");
    let run = &report["runs"][0];
    assert_eq!(run["file"], ".github/workflows/needs.yml");
    let jobs = run["jobs"].as_array().expect("jobs");
    let ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(jobs[0]["outputs"]["x"], "value-from-a");
    assert_eq!(jobs[1]["result"], "success");
    assert_eq!(jobs[1]["steps"][0]["conclusion"], "success");
}

#[test]
fn names_with_expressions_are_rendered_in_the_list_the_log_and_json() {
    let flow = "on: push\njobs:\n  t:\n    name: test ${{ matrix.os }}\n    runs-on: x\n    strategy:\n      \
                matrix:\n        os: [linux, mac]\n    steps:\n      - name: say ${{ matrix.os }} on ${{ github.event_name }}\n        \
                run: echo hi\n  one:\n    name: single ${{ github.event_name }}\n    runs-on: x\n    steps:\n      \
                - run: echo one\n";
    let dir = git_repo(&[(".github/workflows/names.yml", flow)]);
    let out = dir.ok(&["run", "--list"]);
    let row = |id: &str| out.lines().find(|l| l.trim_start().starts_with(id)).map(str::to_owned);
    assert!(row("t ").is_some_and(|r| r.contains("test linux, test mac")), "{out}");
    assert!(row("one").is_some_and(|r| r.contains("single push")), "{out}");
    let listed = dir.json(&["run", "--list"]);
    assert_eq!(listed[0]["jobs"][0]["instances"], serde_json::json!(["test linux", "test mac"]));
    assert_eq!(listed[0]["jobs"][1]["name"], "single push");

    let text = dir.ok(&["run"]);
    assert!(text.lines().any(|l| l.starts_with("[test mac] say mac on push") && l.ends_with(": hi")), "{text}");
    let report = dir.json(&["run"]);
    let jobs = report["runs"][0]["jobs"].as_array().expect("jobs");
    let names: Vec<&str> = jobs.iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names, ["test linux", "test mac", "single push"]);
    assert_eq!(jobs[0]["steps"][0]["name"], "say linux on push");
}

#[test]
fn run_sets_the_owner_actor_and_runner_contexts() {
    let flow = "on: push\njobs:\n  c:\n    runs-on: x\n    steps:\n      - run: |\n          \
                test \"${{ github.repository_owner }}\" = acme && test \"$GITHUB_REPOSITORY_OWNER\" = acme\n          \
                test -n \"$GITHUB_ACTOR\" && test \"$GITHUB_ACTOR\" = \"${{ github.actor }}\"\n          \
                test \"$GITHUB_TRIGGERING_ACTOR\" = \"${{ github.triggering_actor }}\"\n          \
                test \"$GITHUB_TRIGGERING_ACTOR\" = \"$GITHUB_ACTOR\"\n          \
                test \"$RUNNER_ENVIRONMENT\" = self-hosted && test \"$RUNNER_NAME\" = \"${{ runner.name }}\"\n          \
                test -n \"$RUNNER_TOOL_CACHE\" && echo contexts-checked\n";
    let dir = git_repo(&[(".github/workflows/c.yml", flow)]);
    let status = Command::new("git")
        .args(["remote", "add", "origin", "https://github.com/acme/app.git"])
        .current_dir(dir.path())
        .status()
        .expect("git runs");
    assert!(status.success());
    let text = dir.ok(&["run"]);
    assert!(text.contains("contexts-checked"), "{text}");
}

#[test]
fn a_lint_error_stops_the_run_before_any_job() {
    let dir = git_repo(&[(".github/workflows/bad.yml", BAD)]);
    let marker = dir.path().join("ran");
    let good = format!(
        "on: push\njobs:\n  g:\n    runs-on: ubuntu-latest\n    steps:\n      - run: touch '{}'\n",
        marker.display()
    );
    dir.write(".github/workflows/good.yml", &good);
    let out = dir.run(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(".github/workflows/bad.yml:4:5: error:"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    assert!(!marker.exists(), "a job ran despite the lint error");
}

#[test]
fn a_lint_error_blocks_only_the_workflows_the_run_would_include() {
    let dir = git_repo(&[(".github/workflows/bad.yml", &BAD.replace("on: push", "on: workflow_dispatch"))]);
    let marker = dir.path().join("ran");
    let good = format!(
        "on: push\njobs:\n  g:\n    runs-on: ubuntu-latest\n    steps:\n      - run: touch '{}'\n",
        marker.display()
    );
    dir.write(".github/workflows/good.yml", &good);
    // A push does not run bad.yml: its error is a warning and good.yml runs.
    let out = dir.run(&["run"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}{}", stdout(&out));
    assert!(err.contains(".github/workflows/bad.yml:4:5: warning: unknown key `runs_on`"), "{err}");
    assert!(err.contains("warning: .github/workflows/bad.yml is not run: it has 1 lint error"), "{err}");
    assert!(marker.exists(), "good.yml did not run");
    // Naming it, or dispatching it, runs it: then its error stops the run.
    std::fs::remove_file(&marker).expect("remove marker");
    for args in [&["run", "bad"][..], &["run", "--event", "workflow_dispatch"], &["run", "good", "test"]] {
        let out = dir.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(".github/workflows/bad.yml:4:5: error:") && err.contains("nothing was run"), "{err}");
        assert!(!marker.exists(), "{args:?} ran a job despite the lint error");
    }
    // A file that is not even YAML cannot say what it runs: it stops only runs that name it.
    dir.write(".github/workflows/bad.yml", "on: [push\n");
    assert!(dir.run(&["run"]).status.success());
    assert_eq!(dir.run(&["run", "bad.yml"]).status.code(), Some(1));
}

#[test]
fn secrets_are_masked_in_the_output() {
    let flow = "on: push\njobs:\n  s:\n    runs-on: ubuntu-latest\n    env:\n      TOKEN: ${{ secrets.TOKEN }}\n    steps:\n      - run: echo \"token is $TOKEN\"\n";
    let dir = git_repo(&[(".github/workflows/s.yml", flow)]);
    let out = dir.run(&["run", "--secret", "TOKEN=hunter2-secret"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("token is ***"), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");

    dir.write("secrets.env", "# from the vault\nTOKEN=hunter2-secret\n");
    let text = dir.ok(&["run", "--secrets-file", "secrets.env"]);
    assert!(text.contains("token is ***") && !text.contains("hunter2"), "{text}");
}

#[test]
fn a_secrets_file_is_read_as_dotenv() {
    let flow = "on: push\njobs:\n  s:\n    runs-on: x\n    env:\n      PEM: ${{ secrets.PEM }}\n      \
                LIT: ${{ secrets.LIT }}\n      PLAIN: ${{ secrets.PLAIN }}\n    steps:\n      - run: |\n          \
                test \"$PEM\" = \"$(printf 'BEGIN-key\\nsecond \\\"line\\\"')\"\n          \
                test \"$LIT\" = 'raw \\n value'\n          test \"$PLAIN\" = plain-value\n          echo dotenv-ok\n";
    let dir = git_repo(&[(".github/workflows/s.yml", flow)]);
    dir.write(
        "secrets.env",
        "# from the vault\nexport PEM=\"BEGIN-key\nsecond \\\"line\\\"\" # multi-line\nLIT='raw \\n value'\nPLAIN=plain-value # note\n",
    );
    let text = dir.ok(&["run", "--secrets-file", "secrets.env"]);
    assert!(text.contains("dotenv-ok"), "{text}");
    dir.write("secrets.env", "A=1\nB=\"never closed\n");
    let out = dir.run(&["run", "--secrets-file", "secrets.env"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("secrets.env:2: the value of B has no closing \""), "{}", stderr(&out));
}

#[test]
fn a_bad_secrets_file_line_is_named_by_file_and_line() {
    let dir = git_repo(&[(".github/workflows/needs.yml", NEEDS)]);
    dir.write("secrets.env", "# ok\nA=1\nthis line has no equals sign\n");
    let out = dir.run(&["run", "--secrets-file", "secrets.env"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("secrets.env:3: expected NAME=VALUE"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("[a]"), "{}", stdout(&out));
}

#[test]
fn a_job_target_runs_that_job_and_its_needs_only() {
    let dir = git_repo(&[(".github/workflows/needs.yml", NEEDS)]);
    let text = dir.ok(&["run", "b"]);
    assert!(text.contains("b got value-from-a"), "{text}");
    assert!(!text.contains("[c]"), "{text}");
    assert!(text.contains("2 jobs: 2 passed"), "{text}");
    assert!(!dir.run(&["run", "no-such-job"]).status.success());
}

#[test]
fn uncommitted_changes_are_visible_to_a_checkout() {
    let flow = "on: push\njobs:\n  read:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: cat notes.txt\n";
    let dir = git_repo(&[(".github/workflows/read.yml", flow), ("notes.txt", "not-yet-committed\n")]);
    let text = dir.ok(&["run"]);
    assert!(text.contains("[read] Run cat notes.txt: not-yet-committed"), "{text}");
}

#[test]
fn dispatch_inputs_take_their_defaults_and_the_matrix_filter_applies() {
    let flow = r#"
on:
  workflow_dispatch:
    inputs:
      greeting:
        default: hello
      who:
        required: true
jobs:
  m:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, mac]
    steps:
      - run: echo "${{ inputs.greeting }} ${{ inputs.who }} on ${{ matrix.os }} (${{ github.event_name }})"
"#;
    let dir = git_repo(&[(".github/workflows/d.yml", flow)]);
    // Not triggered by the default `push`.
    assert!(dir.ok(&["run"]).contains("no workflow runs on `push`"));
    let out = dir.run(&["run", "--event", "workflow_dispatch"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("input `who` is required"), "{}", stderr(&out));
    let text = dir.ok(&["run", "--event", "workflow_dispatch", "--input", "who=world", "--matrix", "os=mac"]);
    assert!(text.contains(": hello world on mac (workflow_dispatch)"), "{text}");
    assert!(!text.contains("on linux"), "{text}");
}

/// The types in the local event log and, per type, the `subject.content` of each event.
fn logged(dir: &Dir) -> Vec<(String, serde_json::Value)> {
    let events = dir.json(&["events", "list"]);
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let ty = e["type"].as_str().expect("type").to_owned();
            let raw: serde_json::Value = match &e["raw"] {
                serde_json::Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
                other => other.clone(),
            };
            (ty, raw)
        })
        .collect()
}

#[test]
fn a_run_records_pipelinerun_and_taskrun_events() {
    let dir = git_repo(&[(".github/workflows/needs.yml", NEEDS)]);
    let text = dir.ok(&["run"]);
    assert!(text.contains("recorded 9 events in "), "{text}");
    let events = logged(&dir);
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    for ty in ["pipelinerun.queued", "pipelinerun.started", "pipelinerun.finished"] {
        let ty = format!("dev.cdevents.{ty}.0.3.0");
        assert_eq!(types.iter().filter(|t| **t == ty).count(), 1, "{types:?}");
    }
    assert_eq!(types.iter().filter(|t| **t == "dev.cdevents.taskrun.started.0.3.0").count(), 3, "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "dev.cdevents.taskrun.finished.0.3.0").count(), 3, "{types:?}");
    let (_, finished) = events.iter().find(|(t, _)| t == "dev.cdevents.pipelinerun.finished.0.3.0").expect("finished");
    assert_eq!(finished["subject"]["content"]["outcome"], "success", "{finished}");
    let run_id = finished["subject"]["id"].as_str().expect("subject id");
    assert!(run_id.contains("/.github/workflows/needs.yml/"), "{run_id}");
    let (_, task) = events.iter().find(|(t, _)| t == "dev.cdevents.taskrun.finished.0.3.0").expect("task");
    assert_eq!(task["subject"]["content"]["pipelineRun"]["id"], run_id, "{task}");
    assert_eq!(task["subject"]["content"]["outcome"], "success", "{task}");
}

#[test]
fn a_failing_run_records_outcome_failure_and_json_counts_events() {
    let flow = "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - run: exit 3\n";
    let dir = git_repo(&[(".github/workflows/f.yml", flow)]);
    let out = dir.cmd(&["--json", "run"]).output().expect("mobius runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["events_recorded"], 5, "{report}");
    let events = logged(&dir);
    let (_, finished) = events.iter().find(|(t, _)| t == "dev.cdevents.pipelinerun.finished.0.3.0").expect("finished");
    assert_eq!(finished["subject"]["content"]["outcome"], "failure", "{finished}");
    assert!(finished["subject"]["content"]["errors"].as_str().is_some_and(|e| e.contains('t')), "{finished}");
}

#[test]
fn no_events_records_nothing() {
    let dir = git_repo(&[(".github/workflows/needs.yml", NEEDS)]);
    let text = dir.ok(&["run", "--no-events"]);
    assert!(!text.contains("recorded"), "{text}");
    assert_eq!(dir.json(&["events", "list"]), serde_json::json!([]));
}

#[test]
fn an_uploaded_artifact_records_artifact_packaged_with_its_digest() {
    let flow = "on: push\njobs:\n  p:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo built > out.txt\n      - uses: actions/upload-artifact@v4\n        with:\n          name: dist\n          path: out.txt\n";
    let dir = git_repo(&[(".github/workflows/p.yml", flow)]);
    // `change.id` needs a commit to name.
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "init"])
        .current_dir(dir.path())
        .status()
        .expect("git runs");
    assert!(status.success());
    let text = dir.ok(&["run"]);
    let digest = text.split(", digest ").nth(1).and_then(|r| r.split_whitespace().next()).expect("digest printed");
    let events = logged(&dir);
    let (_, packaged) =
        events.iter().find(|(t, _)| t == "dev.cdevents.artifact.packaged.0.3.0").expect("artifact.packaged");
    let id = packaged["subject"]["id"].as_str().expect("subject id");
    assert_eq!(id, format!("pkg:generic/dist@{}", digest.replace(':', "%3A")));
    let hex = id.strip_prefix("pkg:generic/dist@sha256%3A").expect("digest format");
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(packaged["subject"]["content"]["change"]["id"].as_str().map(str::len), Some(40), "{packaged}");
}

#[test]
fn a_local_push_honours_branch_filters_and_the_default_branch() {
    let on = |branches: &str| {
        format!(
            "on:\n  push:\n    branches: [{branches}]\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo ran\n"
        )
    };
    let dir = git_repo(&[
        (".github/workflows/main.yml", &on("$default-branch")),
        (".github/workflows/release.yml", &on("'release/**'")),
    ]);
    let status = Command::new("git").args(["symbolic-ref", "HEAD", "refs/heads/main"]).current_dir(dir.path()).status();
    assert!(status.expect("git runs").success());
    let report = dir.json(&["run", "--no-events"]);
    let files: Vec<&str> = report["runs"].as_array().unwrap().iter().filter_map(|r| r["file"].as_str()).collect();
    assert_eq!(files, [".github/workflows/main.yml"], "only the workflow whose filter matches `main`: {report}");
    // Naming a workflow runs it whatever its filters say.
    let report = dir.json(&["run", "--no-events", "release"]);
    assert_eq!(report["result"], "success", "{report}");
}

#[test]
fn a_missing_secret_stops_the_run_before_any_job_and_records_nothing() {
    let dir = git_repo(&[(
        ".github/workflows/deploy.yml",
        "on: push\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: touch ran\n      - run: echo ${{ secrets.DEPLOY_KEY }}\n",
    )]);
    let out = dir.run(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(".github/workflows/deploy.yml:7: error: secret `DEPLOY_KEY` is not set"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    assert!(!dir.path().join("ran").exists());
    assert_eq!(dir.json(&["events", "list"]), serde_json::json!([]), "no run was recorded as started");
    // Given (in any case, as GitHub's names are case-insensitive), it runs.
    let out = dir.run(&["run", "--secret", "deploy_key=s3cr3t-value"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = dir.run(&["run", "--allow-missing-secrets"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

const CALLER: &str = r#"
on: push
jobs:
  build:
    uses: ./.github/workflows/build.yml
    with:
      target: from-caller
  after:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "after got ${{ needs.build.outputs.built }}"
"#;

const BUILD: &str = r#"
on:
  workflow_call:
    inputs:
      target: {type: string, default: from-default}
      level: {type: number, default: 2}
    outputs:
      built:
        value: ${{ jobs.make.outputs.built }}
jobs:
  make:
    runs-on: ubuntu-latest
    outputs:
      built: ${{ steps.m.outputs.built }}
    steps:
      - id: m
        run: |
          echo "making ${{ inputs.target }} at level ${{ inputs.level }} (${{ inputs.level > 1 }})"
          echo "built=${{ inputs.target }}" >> "$GITHUB_OUTPUT"
"#;

/// A push runs the caller and, inside it, the called workflow's job as `build / make`; the
/// reusable workflow alone is not triggered by the push, but naming it runs it with its
/// `workflow_call` defaults, which `--input` overrides (typed: a number stays a number).
#[test]
fn reusable_workflows_run_called_and_by_name() {
    let dir = git_repo(&[(".github/workflows/ci.yml", CALLER), (".github/workflows/build.yml", BUILD)]);
    let out = dir.run(&["run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains(": making from-caller at level 2 (true)"), "{text}");
    assert!(text.contains("[build / make] ✓ passed"), "{text}");
    assert!(text.contains(": after got from-caller"), "{text}");
    let text = dir.ok(&["run", "build"]);
    assert!(text.contains(": making from-default at level 2 (true)"), "{text}");
    let text = dir.ok(&["run", "build", "--input", "level=0", "--input", "target=cli"]);
    assert!(text.contains(": making cli at level 0 (false)"), "{text}");
    let listed = dir.ok(&["run", "--list"]);
    assert!(listed.contains("workflow_call"), "{listed}");
}
