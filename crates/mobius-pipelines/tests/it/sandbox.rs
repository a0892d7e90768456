//! Steps in a sandbox, with real processes, bubblewrap and `nobody`: what a step of a pushed
//! branch can see and reach when the server runs it. These tests run as root with bubblewrap
//! installed, as CI does (`scripts/test` installs it); elsewhere they fail and say so.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mobius_pipelines::engine::{self, RecordingObserver, RunOptions, Status};
use mobius_pipelines::exec::{
    CancellationSignal, JobEnv, JobState, LogLine, Outcome, Shell, StepResult, StepSpec, Stream, run_step,
};
use mobius_pipelines::mask::Masker;
use mobius_pipelines::workflow;
use mobius_sandbox::{Isolation, Mode, Sandbox, User};
use tempfile::TempDir;

const NOBODY: u32 = 65534;

/// A server's layout in a temp dir: `data/` (the data directory, holding a secret), with a
/// job's directories under `data/runs/1/work/`, like the server's runner makes them.
struct Layout {
    tmp: TempDir,
}

impl Layout {
    fn new() -> Layout {
        let tmp = tempfile::tempdir().expect("temp dir");
        // The data directory's parent must be traversable by the run_as user, as /var/lib is.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir_all(tmp.path().join("data/runs/1/work")).expect("data dir");
        std::fs::write(tmp.path().join("data/secret.txt"), "the server's secret").expect("secret");
        Layout { tmp }
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn work(&self) -> PathBuf {
        self.data().join("runs/1/work")
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test drops privileges to `nobody` and must run as root, as CI does (scripts/test)"
    );
}

fn nobody() -> User {
    User::lookup("nobody").expect("the user nobody exists")
}

/// bubblewrap, as root, dropping to `nobody`, the data directory hidden.
fn bwrap_sandbox(layout: &Layout) -> Sandbox {
    require_root();
    let sandbox = Sandbox::new(Mode::Bwrap, Some(nobody()), &[layout.data()]).unwrap_or_else(|e| {
        panic!("bubblewrap does not work here ({e:#}): scripts/test installs bubblewrap, and CI always has it")
    });
    assert_eq!(sandbox.isolation(), Isolation::Bwrap);
    sandbox
}

/// A job whose directories are handed over to the sandbox's user.
fn job(layout: &Layout, sandbox: &Sandbox) -> JobState {
    let [workspace, home, temp] = ["workspace", "home", "temp"].map(|d| layout.work().join(d));
    for dir in [&workspace, &home, &temp] {
        std::fs::create_dir_all(dir).expect("job dir");
        sandbox.hand_over(dir).expect("hand over");
    }
    let base_env = BTreeMap::from([
        ("CI".to_owned(), "true".to_owned()),
        ("GITHUB_WORKSPACE".to_owned(), workspace.display().to_string()),
        ("DATA".to_owned(), layout.data().display().to_string()),
        ("SPAWNER".to_owned(), std::process::id().to_string()),
    ]);
    let path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    let env = JobEnv {
        workspace,
        home,
        temp,
        base_env,
        path,
        masker: Masker::new::<[(String, &str); 0], String, &str>([]).expect("masker"),
    };
    JobState::new(env)
        .with_kill_grace(Duration::from_millis(300))
        .with_drain(Duration::from_millis(300))
        .with_sandbox(sandbox.clone(), Vec::new())
}

fn step(script: &str) -> StepSpec {
    StepSpec {
        name: "sandboxed step".to_owned(),
        script: script.to_owned(),
        shell: Shell::Bash,
        working_directory: None,
        env: BTreeMap::new(),
        timeout: None,
        continue_on_error: false,
        program: None,
    }
}

async fn run(job: &mut JobState, spec: &StepSpec, cancel: CancellationSignal) -> (StepResult, Vec<String>) {
    let mut lines: Vec<LogLine> = Vec::new();
    let result = run_step(job, spec, &mut lines, cancel).await;
    let texts = lines.iter().map(|l| format!("{}{}", if l.stream == Stream::Stderr { "! " } else { "" }, l.text));
    (result, texts.collect())
}

/// `key: value` lines of a step's output.
fn answers(lines: &[String]) -> BTreeMap<&str, &str> {
    lines.iter().filter_map(|l| l.split_once(": ")).collect()
}

/// Host processes whose command line contains `marker`.
fn running(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep").args(["-f", marker]).output().expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// Waits up to 2 s for no process to match `marker`.
async fn none_running(marker: &str) -> Vec<String> {
    for _ in 0..100 {
        if running(marker).is_empty() {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running(marker)
}

#[tokio::test]
async fn a_sandboxed_step_sees_no_data_directory_no_other_process_and_runs_as_nobody() {
    let layout = Layout::new();
    let sandbox = bwrap_sandbox(&layout);
    let mut job = job(&layout, &sandbox);
    let script = r#"
echo "secret: $(cat "$DATA/secret.txt" 2>/dev/null || echo hidden)"
echo "data: $(ls -A "$DATA" | tr '\n' ' ')"
echo "uid: $(id -u)"
echo "groups: $(id -G)"
echo "pids: $(ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\n' ' ')"
echo "init: $(tr '\0' ' ' < /proc/1/cmdline)"
echo "spawner environ: $(cat /proc/$SPAWNER/environ 2>/dev/null | wc -c || true)"
echo "spawner visible: $(test -e /proc/$SPAWNER && echo yes || echo no)"
echo "env: $(tr '\0' '\n' < /proc/$$/environ | cut -d= -f1 | sort | tr '\n' ' ')"
echo "writes workspace: $(echo hi > "$GITHUB_WORKSPACE/out" && echo yes)"
echo "writes data: $(echo x 2>/dev/null > "$DATA/planted" && echo yes || echo no)"
"#;
    let (result, lines) = run(&mut job, &step(script), CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::Success, "{lines:#?}");
    let got = answers(&lines);
    assert_eq!(got["secret"], "hidden", "{lines:#?}");
    // Only the bound path of the job shows in the data directory (an empty tmpfs otherwise).
    assert_eq!(got["data"].trim(), "runs", "{lines:#?}");
    assert_eq!(got["uid"], NOBODY.to_string());
    assert_eq!(got["groups"].trim(), NOBODY.to_string(), "no supplementary groups");
    // Its own PID namespace: bubblewrap's init is 1, the step's shell 2, then its children.
    let pids: Vec<u32> = got["pids"].split_whitespace().map(|p| p.parse().expect("pid")).collect();
    assert!(pids.starts_with(&[1, 2]) && pids.iter().all(|p| *p < 32), "{pids:?}");
    assert!(got["init"].contains("bwrap"), "{lines:#?}");
    assert_eq!(got["spawner visible"], "no");
    assert_eq!(got["spawner environ"], "0");
    // The shell's own environment: the job's variables and nothing of the test process's
    // (bubblewrap adds `PWD`, the working directory it changed to).
    let env: BTreeSet<&str> = got["env"].split_whitespace().collect();
    let expected: BTreeSet<&str> = [
        "PWD",
        "CI",
        "DATA",
        "GITHUB_ENV",
        "GITHUB_OUTPUT",
        "GITHUB_PATH",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_WORKSPACE",
        "HOME",
        "PATH",
        "SHELL",
        "SPAWNER",
    ]
    .into();
    assert_eq!(env, expected);
    assert_eq!(got["writes workspace"], "yes");
    assert_eq!(got["writes data"], "no");
    let out = job.job_env().workspace.join("out");
    assert_eq!(std::fs::metadata(&out).expect("written").uid(), NOBODY);
    assert!(!layout.data().join("planted").exists());
}

#[tokio::test]
async fn a_sandboxed_step_is_killed_with_its_whole_tree_on_timeout_and_on_cancel() {
    let layout = Layout::new();
    let sandbox = bwrap_sandbox(&layout);
    let mut job = job(&layout, &sandbox);

    // Timeout, with a child that ignores SIGTERM: SIGKILL after the grace period ends it.
    let marker = "sleep 1000.4242";
    let script = format!("(trap '' TERM; {marker}) &\n{marker}");
    let spec = StepSpec { timeout: Some(Duration::from_millis(400)), ..step(&script) };
    let (result, lines) = run(&mut job, &spec, CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::TimedOut, "{lines:#?}");
    assert!(result.duration < Duration::from_secs(3), "{:?}", result.duration);
    assert_eq!(none_running(marker).await, Vec::<String>::new(), "left running after the timeout");

    // Cancellation: SIGTERM reaches the step's shell (bubblewrap itself ignores it).
    let marker = "sleep 1000.4343";
    let cancel = CancellationSignal::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let script = format!("trap 'echo got TERM; exit 3' TERM\n{marker} &\nwait");
    let (result, lines) = run(&mut job, &step(&script), cancel).await;
    assert_eq!(result.outcome, Outcome::Cancelled, "{lines:#?}");
    assert!(lines.iter().any(|l| l == "got TERM"), "the shell did not get SIGTERM: {lines:#?}");
    assert_eq!(none_running(marker).await, Vec::<String>::new(), "left running after cancellation");
}

#[tokio::test]
async fn in_a_sandbox_a_background_process_ends_with_its_step() {
    let layout = Layout::new();
    let sandbox = bwrap_sandbox(&layout);
    let mut job = job(&layout, &sandbox);
    let marker = "sleep 1000.4444";
    let (result, _) = run(&mut job, &step(&format!("{marker} &\necho started")), CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::Success);
    // `--die-with-parent`: the PID namespace ends with the step's shell, and all in it.
    assert_eq!(none_running(marker).await, Vec::<String>::new());
}

#[tokio::test]
async fn without_bubblewrap_a_step_still_runs_as_nobody_and_cannot_read_the_servers_environ() {
    let layout = Layout::new();
    require_root();
    let sandbox = Sandbox::new(Mode::Off, Some(nobody()), &[layout.data()]).expect("sandbox");
    assert_eq!(sandbox.isolation(), Isolation::Processes);
    // Without bubblewrap the user reaches the job's directories through the data directory.
    std::fs::set_permissions(layout.data(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let mut job = job(&layout, &sandbox);
    let script = r#"
echo "uid: $(id -u)"
echo "groups: $(id -G)"
echo "spawner environ: $(cat /proc/$SPAWNER/environ 2>/dev/null | wc -c || true)"
"#;
    let (result, lines) = run(&mut job, &step(script), CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::Success, "{lines:#?}");
    let got = answers(&lines);
    assert_eq!(got["uid"], NOBODY.to_string());
    assert_eq!(got["groups"].trim(), NOBODY.to_string());
    assert_eq!(got["spawner environ"], "0", "{lines:#?}");
}

#[tokio::test]
async fn without_bubblewrap_a_step_as_nobody_is_still_killed_with_its_tree() {
    let layout = Layout::new();
    require_root();
    let sandbox = Sandbox::new(Mode::Off, Some(nobody()), &[layout.data()]).expect("sandbox");
    std::fs::set_permissions(layout.data(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let mut job = job(&layout, &sandbox);
    let marker = "sleep 1000.4545";
    let script = format!("(trap '' TERM; {marker}) &\n{marker}");
    let spec = StepSpec { timeout: Some(Duration::from_millis(400)), ..step(&script) };
    let (result, lines) = run(&mut job, &spec, CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::TimedOut, "{lines:#?}");
    assert_eq!(none_running(marker).await, Vec::<String>::new(), "left running after the timeout");
}

#[tokio::test]
async fn the_runner_follows_no_link_a_step_plants_in_its_temp_dir() {
    let layout = Layout::new();
    require_root();
    let sandbox = Sandbox::new(Mode::Off, Some(nobody()), &[layout.data()]).expect("sandbox");
    std::fs::set_permissions(layout.data(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let mut job = job(&layout, &sandbox);
    // A root-only file the step must neither overwrite (through the next step's script, which
    // root would write) nor read (through its summary file, which root reads back).
    let target = layout.tmp.path().join("root-only");
    std::fs::write(&target, "root's own").expect("target");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let plant = format!(
        "ln -s {target} \"$RUNNER_TEMP/mobius-step-2.sh\"\nln -s {target} \"$GITHUB_STEP_SUMMARY\"",
        target = target.display()
    );
    let mut spec = step(&plant);
    let temp = job.job_env().temp.display().to_string();
    spec.env.insert("RUNNER_TEMP".into(), temp);
    let (result, lines) = run(&mut job, &spec, CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::Failure { exit_code: None }, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("is not a regular file")), "{lines:#?}");
    assert_eq!(result.summary, "");
    let (result, lines) = run(&mut job, &step("echo second step"), CancellationSignal::new()).await;
    assert_eq!(result.outcome, Outcome::Success, "{lines:#?}");
    assert_eq!(std::fs::read_to_string(&target).expect("target"), "root's own");
}

const STEAL: &str = r#"
on: push
jobs:
  steal:
    runs-on: ubuntu-latest
    steps:
      - run: ln -s "$DATA" data
        env:
          DATA: ${{ vars.DATA }}
      - uses: actions/upload-artifact@v4
        with:
          name: leak
          path: data/secret.txt
  absolute:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/upload-artifact@v4
        with:
          name: direct
          path: ${{ vars.DATA }}/secret.txt
  plant:
    runs-on: ubuntu-latest
    steps:
      - run: mkdir dist && echo payload > dist/file
      - uses: actions/upload-artifact@v4
        with:
          name: payload
          path: dist
      - uses: actions/download-artifact@v4
        with:
          name: payload
          path: ${{ vars.DATA }}/planted
  own:
    runs-on: ubuntu-latest
    steps:
      - run: mkdir dist && echo mine > dist/file
      - uses: actions/upload-artifact@v4
        with:
          name: own
          path: dist
      - uses: actions/download-artifact@v4
        with:
          name: own
          path: restored
      - run: test "$(stat -c %u restored/file)" = 65534 && test "$(cat restored/file)" = mine
"#;

#[tokio::test]
async fn artifact_actions_reach_only_the_jobs_own_files_as_its_user() {
    let layout = Layout::new();
    let sandbox = bwrap_sandbox(&layout);
    let workflow = workflow::parse("steal.yml", STEAL).expect("workflow");
    let source = layout.tmp.path().join("source");
    std::fs::create_dir_all(&source).expect("source");
    let mut opts = RunOptions::new(&source, layout.work());
    opts.store_dir = Some(layout.data().join("pipelines"));
    opts.vars.insert("DATA".into(), layout.data().display().to_string());
    opts.sandbox = sandbox;
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    let result = |name: &str| report.jobs.iter().find(|j| j.id == name).map(|j| j.result);
    let log = observer.log_text().join("\n");
    assert_eq!(result("steal"), Some(Status::Failure), "{log}");
    assert_eq!(result("absolute"), Some(Status::Failure), "{log}");
    assert_eq!(result("plant"), Some(Status::Failure), "{log}");
    assert_eq!(result("own"), Some(Status::Success), "{log}");
    assert!(log.contains("outside the job's workspace, home and temp directories"), "{log}");
    assert!(!layout.data().join("planted").exists());
    // Nothing of the secret went into the store.
    let blobs = layout.data().join("pipelines/blobs/sha256");
    for blob in std::fs::read_dir(&blobs).expect("blobs") {
        let text = std::fs::read_to_string(blob.expect("blob").path()).expect("blob");
        assert!(!text.contains("the server's secret"));
    }
}

/// The job's directories, from a sandboxed engine run: created for the job, `nobody`'s.
#[tokio::test]
async fn a_sandboxed_run_hands_the_jobs_directories_to_its_user() {
    let layout = Layout::new();
    let sandbox = bwrap_sandbox(&layout);
    let source = layout.tmp.path().join("source");
    std::fs::create_dir_all(source.join("src")).expect("source");
    std::fs::write(source.join("src/lib.rs"), "// code").expect("source file");
    let text = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: |\n          test \"$(stat -c %u src/lib.rs)\" = 65534\n          test \"$(stat -c %u \"$HOME\")\" = 65534\n          touch src/new \"$HOME/new\" \"$RUNNER_TEMP/new\"\n          test -r \"$MOBIUS_SOURCE_DIR/src/lib.rs\"\n";
    let workflow = workflow::parse("build.yml", text).expect("workflow");
    let mut opts = RunOptions::new(&source, layout.work());
    opts.sandbox = sandbox;
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    assert_eq!(report.result, Status::Success, "{}", observer.log_text().join("\n"));
    assert!(Path::new(&layout.work()).is_dir());
}
