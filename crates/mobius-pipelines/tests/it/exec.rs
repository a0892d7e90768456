//! The step executor against real shells and processes in temp dirs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mobius_pipelines::exec::{
    CancellationSignal, Conclusion, JobEnv, JobState, LogLine, NdjsonSink, Outcome, Shell, StepResult, StepSpec,
    Stream, run_step,
};
use mobius_pipelines::mask::Masker;
use tempfile::TempDir;

const SECRET: &str = "s3cr3t-value";

/// A job in a fresh temp dir, with short grace and drain so tests stay fast.
fn job() -> (TempDir, JobState) {
    let dir = tempfile::tempdir().expect("temp dir");
    let [workspace, home, temp] = ["workspace", "home", "temp"].map(|d| dir.path().join(d));
    for d in [&workspace, &home, &temp] {
        std::fs::create_dir_all(d).expect("create dir");
    }
    let base_env = BTreeMap::from([
        ("CI".to_owned(), "true".to_owned()),
        ("GITHUB_WORKSPACE".to_owned(), workspace.display().to_string()),
        ("RUNNER_TEMP".to_owned(), temp.display().to_string()),
        ("WHO".to_owned(), "job".to_owned()),
    ]);
    let path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    let masker = Masker::new([("TOKEN", SECRET)]).expect("valid secret");
    let env = JobEnv { workspace, home, temp, base_env, path, masker };
    let job = JobState::new(env).with_kill_grace(Duration::from_millis(200)).with_drain(Duration::from_millis(300));
    (dir, job)
}

fn step(script: &str) -> StepSpec {
    StepSpec {
        name: "test step".to_owned(),
        script: script.to_owned(),
        shell: Shell::Bash,
        working_directory: None,
        env: BTreeMap::new(),
        timeout: None,
        continue_on_error: false,
        program: None,
    }
}

async fn run(job: &mut JobState, spec: &StepSpec) -> (StepResult, Vec<LogLine>) {
    let mut lines = Vec::new();
    let result = run_step(job, spec, &mut lines, CancellationSignal::new()).await;
    (result, lines)
}

fn texts(lines: &[LogLine], stream: Stream) -> Vec<&str> {
    lines.iter().filter(|l| l.stream == stream).map(|l| l.text.as_str()).collect()
}

fn stdout(lines: &[LogLine]) -> Vec<&str> {
    texts(lines, Stream::Stdout)
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet), waiting up to 1 s.
async fn exited(pid: &str) -> bool {
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) => return true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

fn read_pid(path: &Path) -> String {
    std::fs::read_to_string(path).expect("pid file").trim().to_owned()
}

#[tokio::test]
async fn exit_codes_and_conclusion() {
    let (_dir, mut job) = job();
    let (ok, _) = run(&mut job, &step("echo hi")).await;
    assert_eq!(ok.outcome, Outcome::Success);
    let (failed, _) = run(&mut job, &step("exit 3")).await;
    assert_eq!(failed.outcome, Outcome::Failure { exit_code: Some(3) });
    assert_eq!(failed.conclusion(), Conclusion::Failure);
    let excused = StepSpec { continue_on_error: true, ..step("exit 3") };
    let (excused, _) = run(&mut job, &excused).await;
    assert_eq!(excused.outcome, Outcome::Failure { exit_code: Some(3) });
    assert_eq!(excused.conclusion(), Conclusion::Success);
}

/// GitHub's runner ends a step that exited nonzero with this line, after all its output.
#[tokio::test]
async fn a_nonzero_exit_is_the_last_line() {
    let (_dir, mut job) = job();
    let (_, lines) = run(&mut job, &step("exit 7")).await;
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["error: Process completed with exit code 7."]);
    let (_, lines) = run(&mut job, &step("echo out\necho err >&2\nkill -KILL $$")).await;
    assert_eq!(lines.last().map(|l| l.text.as_str()), Some("error: Process completed with exit code 137."));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let (_, lines) = run(&mut job, &step("echo fine")).await;
    assert_eq!(stdout(&lines), ["fine"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
}

/// `::set-output` and `::save-state` land in the result; `::set-env` fails the step unless
/// `ACTIONS_ALLOW_UNSECURE_COMMANDS` is true in the step's environment.
#[tokio::test]
async fn legacy_commands_reach_the_result_and_the_job() {
    let (_dir, mut job) = job();
    let script = "echo '::set-output name=a::1'\necho '::save-state name=s::x%3Ay'\necho 'a=2' >> \"$GITHUB_OUTPUT\"";
    let (result, _) = run(&mut job, &step(script)).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(result.outputs, BTreeMap::from([("a".to_owned(), "2".to_owned())]));
    assert_eq!(result.state, BTreeMap::from([("s".to_owned(), "x%3Ay".to_owned())]));

    let (result, _) = run(&mut job, &step("echo '::set-env name=V::1'")).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: None });
    assert!(job.exported_env().is_empty());
    let allowed = StepSpec {
        env: BTreeMap::from([("ACTIONS_ALLOW_UNSECURE_COMMANDS".to_owned(), "true".to_owned())]),
        ..step("echo '::set-env name=V::1'\necho '::add-path::/opt/legacy'")
    };
    let (result, _) = run(&mut job, &allowed).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(job.exported_env().get("V").map(String::as_str), Some("1"));
    assert_eq!(job.added_path(), [PathBuf::from("/opt/legacy")]);
}

#[tokio::test]
async fn bash_is_errexit_and_pipefail() {
    let (_dir, mut job) = job();
    let (result, lines) = run(&mut job, &step("false | true\necho after")).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: Some(1) });
    assert!(stdout(&lines).is_empty());
    let (result, lines) = run(&mut job, &step("false\necho after")).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: Some(1) });
    assert!(stdout(&lines).is_empty());
}

#[tokio::test]
async fn sh_python_and_custom_shells() {
    let (_dir, mut job) = job();
    let sh = StepSpec { shell: Shell::Sh, ..step("echo from sh\nfalse\necho after") };
    let (result, lines) = run(&mut job, &sh).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: Some(1) });
    assert_eq!(stdout(&lines), ["from sh"]);

    let python = StepSpec { shell: Shell::Python, ..step("import sys\nprint('from', 'python')\nsys.exit(5)") };
    let (result, lines) = run(&mut job, &python).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: Some(5) });
    assert_eq!(stdout(&lines), ["from python"]);

    let custom = StepSpec { shell: Shell::Custom("bash -x {0}".to_owned()), ..step("echo custom") };
    let (result, lines) = run(&mut job, &custom).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(texts(&lines, Stream::Stderr), ["+ echo custom"]);

    let no_placeholder = StepSpec { shell: Shell::Custom("bash".to_owned()), ..step("true") };
    let (result, lines) = run(&mut job, &no_placeholder).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: None });
    assert!(texts(&lines, Stream::Stderr)[0].contains("placeholder"), "{lines:?}");
}

#[tokio::test]
async fn working_directory() {
    let (_dir, mut job) = job();
    let sub = job.job_env().workspace.join("sub");
    std::fs::create_dir(&sub).expect("create sub");
    let (result, lines) = run(&mut job, &step("pwd")).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(PathBuf::from(stdout(&lines)[0]), job.job_env().workspace);

    let in_sub = StepSpec { working_directory: Some("sub".into()), ..step("pwd") };
    let (_, lines) = run(&mut job, &in_sub).await;
    assert_eq!(PathBuf::from(stdout(&lines)[0]), sub);

    let missing = StepSpec { working_directory: Some("nope".into()), ..step("pwd") };
    let (result, lines) = run(&mut job, &missing).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: None });
    assert!(texts(&lines, Stream::Stderr)[0].contains("does not exist"), "{lines:?}");
}

#[tokio::test]
async fn environment_is_clean() {
    // Cargo sets these for the test process; a leaking host environment would pass them on.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let (_dir, mut job) = job();
    let (result, lines) = run(&mut job, &step("env")).await;
    assert_eq!(result.outcome, Outcome::Success);
    let vars: BTreeMap<&str, &str> = stdout(&lines).iter().filter_map(|l| l.split_once('=')).collect();
    let home = job.job_env().home.display().to_string();
    assert_eq!(vars.get("HOME"), Some(&home.as_str()));
    assert_eq!(vars.get("CI"), Some(&"true"));
    assert!(!vars.contains_key("CARGO_MANIFEST_DIR"));
    assert!(!vars.contains_key("CARGO"));
    let allowed = [
        "CI",
        "GITHUB_WORKSPACE",
        "RUNNER_TEMP",
        "WHO",
        "HOME",
        "PATH",
        "GITHUB_ENV",
        "GITHUB_OUTPUT",
        "GITHUB_PATH",
        "GITHUB_STEP_SUMMARY",
        // bash, as a login shell would have it.
        "SHELL",
        // Set by bash itself.
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
    ];
    for name in vars.keys() {
        assert!(allowed.contains(name), "unexpected variable {name}");
    }
}

#[tokio::test]
async fn github_env_reaches_later_steps() {
    let (_dir, mut job) = job();
    let write = step(
        "echo 'SIMPLE=one=1' >> \"$GITHUB_ENV\"\n\
         printf 'MULTI<<ghadelim_x\\nline 1\\nline 2\\nghadelim_x\\n' >> \"$GITHUB_ENV\"\n\
         echo 'WHO=step' >> \"$GITHUB_ENV\"",
    );
    let (result, _) = run(&mut job, &write).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert_eq!(job.exported_env().get("MULTI").map(String::as_str), Some("line 1\nline 2"));

    let read = step("echo \"$SIMPLE\"\necho \"$MULTI\"\necho \"$WHO\"");
    let (_, lines) = run(&mut job, &read).await;
    assert_eq!(stdout(&lines), ["one=1", "line 1", "line 2", "step"]);

    // The step's own env wins over GITHUB_ENV.
    let overridden = StepSpec { env: BTreeMap::from([("WHO".to_owned(), "spec".to_owned())]), ..step("echo \"$WHO\"") };
    let (_, lines) = run(&mut job, &overridden).await;
    assert_eq!(stdout(&lines), ["spec"]);

    let (result, lines) = run(&mut job, &step("echo 'A<<EOF' >> \"$GITHUB_ENV\"")).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: None });
    assert!(texts(&lines, Stream::Stderr)[0].contains("GITHUB_ENV"), "{lines:?}");
}

#[tokio::test]
async fn github_output_and_summary() {
    let (_dir, mut job) = job();
    let spec = step(
        "echo 'plain=1' >> \"$GITHUB_OUTPUT\"\n\
         printf 'json<<END\\n{\"a\": 1}\\n[2]\\nEND\\n' >> \"$GITHUB_OUTPUT\"\n\
         echo '# Report' >> \"$GITHUB_STEP_SUMMARY\"\n\
         echo '- ok' >> \"$GITHUB_STEP_SUMMARY\"",
    );
    let (result, _) = run(&mut job, &spec).await;
    assert_eq!(result.outcome, Outcome::Success);
    let expected =
        BTreeMap::from([("json".to_owned(), "{\"a\": 1}\n[2]".to_owned()), ("plain".to_owned(), "1".to_owned())]);
    assert_eq!(result.outputs, expected);
    assert_eq!(result.summary, "# Report\n- ok\n");

    // Each step gets fresh files.
    let (again, _) = run(&mut job, &step("true")).await;
    assert!(again.outputs.is_empty() && again.summary.is_empty());
}

#[tokio::test]
async fn github_path_prepends_newest_first() {
    let (_dir, mut job) = job();
    let add = |name: &str| {
        step(&format!(
            "mkdir -p {name}\nprintf '#!/bin/sh\\necho {name}\\n' > {name}/tool\nchmod +x {name}/tool\n\
             echo \"$PWD/{name}\" >> \"$GITHUB_PATH\""
        ))
    };
    run(&mut job, &add("one")).await;
    run(&mut job, &add("two")).await;
    let (_, lines) = run(&mut job, &step("tool\necho \"$PATH\"")).await;
    let workspace = job.job_env().workspace.display().to_string();
    assert_eq!(stdout(&lines)[0], "two");
    assert!(stdout(&lines)[1].starts_with(&format!("{workspace}/two:{workspace}/one:")), "{lines:?}");
}

#[tokio::test]
async fn timeout_kills_the_whole_tree() {
    let (dir, mut job) = job();
    let spec = StepSpec { timeout: Some(Duration::from_millis(300)), ..step("sleep 30 &\necho $! > bg.pid\nsleep 30") };
    let (result, _) = run(&mut job, &spec).await;
    assert_eq!(result.outcome, Outcome::TimedOut);
    assert_eq!(result.conclusion(), Conclusion::Failure);
    assert!(result.duration < Duration::from_secs(2), "{:?}", result.duration);
    let pid = read_pid(&dir.path().join("workspace/bg.pid"));
    assert!(exited(&pid).await, "background child {pid} survived");
}

#[tokio::test]
async fn sigterm_ignored_gets_sigkill_after_grace() {
    let (_dir, mut job) = job();
    let spec = StepSpec { timeout: Some(Duration::from_millis(200)), ..step("trap '' TERM\nsleep 30") };
    let (result, _) = run(&mut job, &spec).await;
    assert_eq!(result.outcome, Outcome::TimedOut);
    assert!(result.duration < Duration::from_secs(2), "{:?}", result.duration);
}

#[tokio::test]
async fn cancellation() {
    let (dir, mut job) = job();
    let cancel = CancellationSignal::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let mut lines = Vec::new();
    let result = run_step(&mut job, &step("sleep 30 &\necho $! > bg.pid\nsleep 30"), &mut lines, cancel.clone()).await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert_eq!(result.conclusion(), Conclusion::Cancelled);
    let pid = read_pid(&dir.path().join("workspace/bg.pid"));
    assert!(exited(&pid).await, "background child {pid} survived");

    // Once cancelled, later steps do not start.
    let result = run_step(&mut job, &step("touch ran"), &mut lines, cancel).await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert!(!dir.path().join("workspace/ran").exists());
}

#[tokio::test]
async fn leftover_background_process_ends_with_the_job() {
    let (dir, mut job) = job();
    let (result, _) = run(&mut job, &step("sleep 30 &\necho $! > bg.pid")).await;
    assert_eq!(result.outcome, Outcome::Success);
    assert!(result.duration < Duration::from_secs(2), "{:?}", result.duration);
    let pid = read_pid(&dir.path().join("workspace/bg.pid"));
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "killed before the job ended");
    drop(job);
    assert!(exited(&pid).await, "background process {pid} survived the job");
}

#[tokio::test]
async fn stdout_and_stderr_kept_apart_in_order() {
    let (_dir, mut job) = job();
    let spec = step("for i in 1 2 3; do echo out$i; echo err$i >&2; done\nprintf 'no newline'");
    let (_, lines) = run(&mut job, &spec).await;
    assert_eq!(stdout(&lines), ["out1", "out2", "out3", "no newline"]);
    assert_eq!(texts(&lines, Stream::Stderr), ["err1", "err2", "err3"]);
}

#[tokio::test]
async fn secrets_are_masked() {
    let (_dir, mut job) = job();
    let spec = step(&format!(
        "echo 'token is {SECRET}'\nprintf 's3cr3t'\nsleep 0.1\nprintf -- '-value!\\n'\necho '{SECRET}' >&2"
    ));
    let (_, lines) = run(&mut job, &spec).await;
    assert_eq!(stdout(&lines), ["token is ***", "***!"]);
    assert_eq!(texts(&lines, Stream::Stderr), ["***"]);
}

#[tokio::test]
async fn ndjson_sink_format() {
    let (_dir, mut job) = job();
    let mut sink = NdjsonSink::new(Vec::new());
    run_step(&mut job, &step("echo 'hi \"there\"'\necho oops >&2"), &mut sink, CancellationSignal::new()).await;
    let bytes = sink.finish().expect("written");
    let text = String::from_utf8(bytes).expect("utf-8");
    let records: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(records.len(), 2, "{text}");
    let mut seen = Vec::new();
    for record in &records {
        let object = record.as_object().expect("object");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 3);
        let t = record["t"].as_str().expect("t is a string");
        assert!(t.parse::<jiff::Timestamp>().is_ok(), "{t} is not RFC 3339");
        seen.push((record["stream"].as_str().expect("stream"), record["line"].as_str().expect("line")));
    }
    seen.sort();
    assert_eq!(seen, [("stderr", "oops"), ("stdout", "hi \"there\"")]);
}

#[tokio::test]
async fn environment_files_are_created_by_the_first_write() {
    let (_dir, mut job) = job();
    // Not there beforehand (a difference from GitHub, which creates them empty), each step has
    // its own, and a missing one reads as empty.
    let check = step(
        "for f in \"$GITHUB_ENV\" \"$GITHUB_OUTPUT\" \"$GITHUB_PATH\" \"$GITHUB_STEP_SUMMARY\"; do test ! -e \"$f\"; done\n\
         test \"$(dirname \"$GITHUB_OUTPUT\")\" = \"$RUNNER_TEMP\"\n\
         echo \"$GITHUB_OUTPUT\"",
    );
    let (result, first) = run(&mut job, &check).await;
    assert_eq!(result.outcome, Outcome::Success, "{first:?}");
    assert!(result.outputs.is_empty() && result.summary.is_empty());
    let (result, _) = run(&mut job, &step("echo 'x=1' >> \"$GITHUB_OUTPUT\"")).await;
    assert_eq!(result.outputs.get("x").map(String::as_str), Some("1"));
    let (result, second) = run(&mut job, &check).await;
    assert_eq!(result.outcome, Outcome::Success, "{second:?}");
    assert_ne!(stdout(&first), stdout(&second));
    // No directory per step: only the scripts and the files written are in the temp dir.
    let entries = std::fs::read_dir(&job.job_env().temp).expect("temp dir").filter_map(Result::ok);
    assert!(entries.into_iter().all(|e| e.path().is_file()));
}

#[tokio::test]
async fn custom_shell_found_on_a_path_added_by_a_step() {
    let (_dir, mut job) = job();
    let custom = || StepSpec { shell: Shell::Custom("mobius-test-shell {0}".to_owned()), ..step("echo from-script") };
    let (result, _) = run(&mut job, &custom()).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: None });
    let add = step(
        "mkdir -p \"$RUNNER_TEMP/bin\"\n\
         printf '#!/bin/sh\\necho custom; exec sh \"$1\"\\n' > \"$RUNNER_TEMP/bin/mobius-test-shell\"\n\
         chmod +x \"$RUNNER_TEMP/bin/mobius-test-shell\"\n\
         echo \"$RUNNER_TEMP/bin\" >> \"$GITHUB_PATH\"",
    );
    assert_eq!(run(&mut job, &add).await.0.outcome, Outcome::Success);
    let (result, lines) = run(&mut job, &custom()).await;
    assert_eq!(result.outcome, Outcome::Success, "{lines:?}");
    assert_eq!(stdout(&lines), ["custom", "from-script"]);
}
