//! Scenario tests of the engine, as data: each `tests/scenarios/<name>/` holds a
//! `workflow.yml` and an `expected.json` with the GitHub behaviour it reproduces, the run's
//! result, every job instance's result, outcome of each step and outputs, and optionally
//! secrets to pass and log text to look for.

use std::collections::BTreeMap;
use std::path::Path;

use mobius_pipelines::engine::{self, RecordingObserver, RunObserver, RunOptions, RunReport};
use mobius_pipelines::exec::{CancellationSignal, LogLine};
use mobius_pipelines::workflow;
use serde_json::{Value, json};

/// Runs one scenario directory and returns what differs from its expectation, if anything.
async fn check(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = std::fs::read_to_string(dir.join("workflow.yml")).map_err(|e| format!("{name}: {e}"))?;
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).map_err(|e| format!("{name}: {e}"))?)
            .map_err(|e| format!("{name}: expected.json: {e}"))?;
    // Every scenario says which GitHub behaviour it reproduces, so a failure says what broke.
    if expected["github"].as_str().is_none_or(|text| text.trim().is_empty()) {
        return Err(format!("{name}: expected.json needs `github`, a non-empty string: the GitHub behaviour it shows"));
    }
    let workflow = workflow::parse("workflow.yml", &text).map_err(|d| format!("{name}: {d:?}"))?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut opts = RunOptions::new(dir, work.path());
    opts.github = json!({ "repository": "acme/app", "sha": "abc123", "ref": "refs/heads/main" });
    opts.jobs_parallelism = 4;
    if let Some(secrets) = expected.get("secrets") {
        opts.secrets =
            serde_json::from_value::<BTreeMap<String, String>>(secrets.clone()).map_err(|e| e.to_string())?;
    }
    let mut observer = RecordingObserver::default();
    let report: RunReport = engine::run(&workflow, opts, &mut observer).await;
    let actual = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    if expected["result"] != actual["result"] {
        problems.push(format!("run result {} != {}", actual["result"], expected["result"]));
    }
    let jobs = expected["jobs"].as_object().cloned().unwrap_or_default();
    let actual_jobs = actual["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.len() != actual_jobs.len() {
        problems.push(format!("{} job instances, expected {}", actual_jobs.len(), jobs.len()));
    }
    for (job_name, want) in &jobs {
        let Some(got) = actual_jobs.iter().find(|j| j["name"] == json!(job_name)) else {
            let names: Vec<&Value> = actual_jobs.iter().map(|j| &j["name"]).collect();
            problems.push(format!("no job `{job_name}` among {names:?}"));
            continue;
        };
        if want["result"] != got["result"] {
            problems.push(format!("job `{job_name}`: result {} != {}", got["result"], want["result"]));
        }
        if let Some(steps) = want.get("steps").and_then(Value::as_array) {
            let got_steps: Vec<Value> = got["steps"]
                .as_array()
                .map(|s| s.iter().map(|s| json!([s["outcome"], s["conclusion"]])).collect())
                .unwrap_or_default();
            if steps != &got_steps {
                problems.push(format!("job `{job_name}`: steps {got_steps:?} != {steps:?}"));
            }
        }
        if let Some(names) = want.get("step_names").and_then(Value::as_array) {
            let got_names: Vec<Value> =
                got["steps"].as_array().map(|s| s.iter().map(|s| s["name"].clone()).collect()).unwrap_or_default();
            if names != &got_names {
                problems.push(format!("job `{job_name}`: step names {got_names:?} != {names:?}"));
            }
        }
        if let Some(want_outputs) = want.get("step_outputs").and_then(Value::as_array) {
            let got_outputs: Vec<Value> =
                got["steps"].as_array().map(|s| s.iter().map(|s| s["outputs"].clone()).collect()).unwrap_or_default();
            let same = want_outputs.len() == got_outputs.len()
                && want_outputs.iter().zip(&got_outputs).all(|(want, got)| outputs_match(want, got));
            if !same {
                problems.push(format!("job `{job_name}`: step outputs {got_outputs:?} != {want_outputs:?}"));
            }
        }
        if let Some(outputs) = want.get("outputs")
            && outputs != &got["outputs"]
        {
            problems.push(format!("job `{job_name}`: outputs {} != {outputs}", got["outputs"]));
        }
    }
    let logs = observer.log_text().join("\n");
    for needle in expected["logs_contain"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !logs.contains(needle) {
            problems.push(format!("log lacks `{needle}`"));
        }
    }
    for needle in expected["logs_exclude"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if logs.contains(needle) {
            problems.push(format!("log contains `{needle}`"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("{name}:\n  {}\n  logs:\n{logs}", problems.join("\n  "))) }
}

/// A step's expected outputs against its report's (absent when empty): the same keys, and
/// the same values except where `"*"` is expected.
fn outputs_match(want: &Value, got: &Value) -> bool {
    let want = want.as_object().cloned().unwrap_or_default();
    let got = got.as_object().cloned().unwrap_or_default();
    want.len() == got.len() && want.iter().all(|(k, v)| got.get(k).is_some_and(|g| v == "*" || v == g))
}

#[test]
fn scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("scenarios directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("workflow.yml").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no scenarios in {}", root.display());
    // One thread and runtime per scenario so they run concurrently (several sleep) although
    // `engine::run` borrows a non-`Send` observer.
    let runs: Vec<_> = dirs
        .into_iter()
        .map(|dir| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(check(&dir))
            })
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        if let Err(problem) = run.join().expect("scenario thread") {
            failures.push(problem);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

const SELECTION: &str = "
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    steps:
      - run: echo setup
  test:
    needs: setup
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, mac]
        rust: [stable, beta]
    steps:
      - name: say
        run: echo \"testing ${{ matrix.os }}/${{ matrix.rust }}\"
  docs:
    runs-on: ubuntu-latest
    steps:
      - run: echo docs
";

/// `selected_jobs` runs the job and its needs only; `matrix_filter` keeps matching instances;
/// the observer sees each instance queued, started and finished, and the step's log.
#[tokio::test]
async fn selection_filter_and_observer() {
    use engine::{ObservedEvent, Status};
    let workflow = workflow::parse("ci.yml", SELECTION).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new(work.path(), work.path());
    opts.selected_jobs = vec!["test".to_owned()];
    opts.matrix_filter = vec![("os".to_owned(), "linux".to_owned())];
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    let names: Vec<(&str, Status)> = report.jobs.iter().map(|j| (j.name.as_str(), j.result)).collect();
    assert_eq!(
        names,
        [
            ("setup", Status::Success),
            ("test (linux, stable)", Status::Success),
            ("test (linux, beta)", Status::Success)
        ]
    );
    assert_eq!(report.result, Status::Success);
    let job = "test (linux, beta)".to_owned();
    let mine: Vec<&ObservedEvent> = observer
        .events
        .iter()
        .filter(|e| match e {
            ObservedEvent::JobQueued(j) | ObservedEvent::JobStarted(j) | ObservedEvent::JobFinished(j, _) => j == &job,
            ObservedEvent::StepStarted(j, _)
            | ObservedEvent::StepFinished(j, _)
            | ObservedEvent::Log(j, _, _)
            | ObservedEvent::JobWaiting(j, _) => j == &job,
        })
        .collect();
    assert!(matches!(mine.first(), Some(ObservedEvent::JobQueued(_))), "{mine:?}");
    assert!(matches!(mine.get(1), Some(ObservedEvent::JobStarted(_))), "{mine:?}");
    assert!(mine.contains(&&ObservedEvent::Log(job.clone(), "say".into(), "testing linux/beta".into())), "{mine:?}");
    assert_eq!(mine.last(), Some(&&ObservedEvent::JobFinished(job, Status::Success)));
    // The report is what `mobius run --json` would print.
    let json = serde_json::to_value(&report).expect("serialisable");
    assert_eq!(json["jobs"][1]["matrix"], json!({ "os": "linux", "rust": "stable" }));
}

const CANCELLABLE: &str = "
on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: echo started && sleep 30 && echo slept through
      - run: echo after
      - if: always()
        run: echo \"cleanup cancelled=${{ cancelled() }}\"
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: echo second
  other:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix:
        n: [1, 2]
    steps:
      - run: echo started && sleep 30 && echo slept through
";

/// Records the run, and cancels it once every job of `waiting` has said `started` (its step's
/// process is running).
struct CancelOnceStarted {
    recorded: RecordingObserver,
    cancel: CancellationSignal,
    waiting: Vec<&'static str>,
}

impl RunObserver for CancelOnceStarted {
    fn job_queued(&mut self, job: &str) {
        self.recorded.job_queued(job);
    }
    fn job_started(&mut self, job: &str) {
        self.recorded.job_started(job);
    }
    fn job_finished(&mut self, job: &str, result: engine::Status, duration: std::time::Duration) {
        self.recorded.job_finished(job, result, duration);
    }
    fn step_started(&mut self, job: &str, step: &str) {
        self.recorded.step_started(job, step);
    }
    fn step_finished(&mut self, job: &str, step: &engine::StepReport) {
        self.recorded.step_finished(job, step);
    }
    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.recorded.log_line(job, step, line);
        if line.text == "started" {
            self.waiting.retain(|waiting| *waiting != job);
            if self.waiting.is_empty() {
                self.cancel.cancel();
            }
        }
    }
}

/// Cancelling the run while steps run kills their processes (they never get past their
/// `sleep`), still runs `if: always()` steps of the cancelled jobs, ends the jobs not started as
/// cancelled, and so the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run() {
    use engine::Status;
    let workflow = workflow::parse("ci.yml", CANCELLABLE).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let opts = RunOptions::new(work.path(), work.path());
    let cancel = opts.cancel.clone();
    let mut observer =
        CancelOnceStarted { recorded: RecordingObserver::default(), cancel, waiting: vec!["first", "other (1)"] };
    let report = engine::run(&workflow, opts, &mut observer).await;
    let observer = observer.recorded;
    assert!(!observer.log_text().contains(&"slept through"), "a step was not killed: {:?}", observer.log_text());
    assert_eq!(report.result, Status::Cancelled);
    let jobs: Vec<(&str, Status, Vec<Status>)> = report
        .jobs
        .iter()
        .map(|j| (j.name.as_str(), j.result, j.steps.iter().map(|s| s.conclusion).collect()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("first", Status::Cancelled, vec![Status::Cancelled, Status::Skipped, Status::Success]),
            ("second", Status::Cancelled, vec![]),
            ("other (1)", Status::Cancelled, vec![Status::Cancelled]),
            ("other (2)", Status::Cancelled, vec![]),
        ]
    );
    assert!(observer.log_text().contains(&"cleanup cancelled=true"), "{:?}", observer.log_text());
}

/// A run cancelled before it starts runs nothing.
#[tokio::test]
async fn cancelled_before_starting() {
    use engine::Status;
    let workflow = workflow::parse("ci.yml", CANCELLABLE).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let opts = RunOptions::new(work.path(), work.path());
    opts.cancel.cancel();
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    assert_eq!(report.result, Status::Cancelled);
    assert!(report.jobs.iter().all(|j| j.result == Status::Cancelled && j.steps.is_empty()), "{report:?}");
    assert!(observer.log_text().is_empty());
}

/// GitHub's environment secrets: a job whose `environment:` names an environment sees its
/// secrets over the repository's, masked; a job without it does not see them.
#[tokio::test]
async fn environment_secrets_reach_only_the_jobs_of_that_environment() {
    let yaml = "on: push\njobs:\n  plain:\n    runs-on: x\n    steps:\n      - run: echo \"plain=[${{ secrets.TOKEN }}] [${{ secrets.DEPLOY_KEY }}]\"\n  \
                prod:\n    runs-on: x\n    environment: production\n    steps:\n      \
                - run: echo \"prod=[${{ secrets.TOKEN }}] len=${#KEY}\" && echo \"$KEY\"\n        env:\n          KEY: ${{ secrets.DEPLOY_KEY }}\n";
    let workflow = workflow::parse("w.yml", yaml).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut opts = RunOptions::new(work.path(), work.path());
    opts.secrets = BTreeMap::from([("TOKEN".to_owned(), "repo-token-value".to_owned())]);
    opts.environment_secrets = BTreeMap::from([(
        "production".to_owned(),
        BTreeMap::from([
            ("TOKEN".to_owned(), "prod-token-value".to_owned()),
            ("DEPLOY_KEY".to_owned(), "prod-deploy-key".to_owned()),
        ]),
    )]);
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    let logs = observer.log_text().join("\n");
    assert_eq!(report.result, engine::Status::Success, "{logs}");
    assert!(logs.contains("plain=[***] []"), "{logs}");
    assert!(logs.contains("prod=[***] len=15"), "{logs}");
    for secret in ["repo-token-value", "prod-token-value", "prod-deploy-key"] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}

/// A gate as a server's would be: `locked` refuses, `production` waits for a review that the
/// test's observer gives once the unprotected job has finished.
#[derive(Debug)]
struct TestGate(std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>);

impl engine::EnvironmentGate for TestGate {
    fn admit(&self, _job: &str, environment: &str) -> engine::BoxFuture<engine::Admission> {
        let admission = match environment {
            "locked" => engine::Admission::Refused("branch `x` is not allowed to deploy to `locked`".to_owned()),
            "production" => {
                let approved = self.0.lock().unwrap().take();
                engine::Admission::Review(Box::pin(async move {
                    match approved {
                        Some(approved) => approved.await.map_err(|_| "withdrawn".to_owned()),
                        None => Err("asked twice".to_owned()),
                    }
                }))
            }
            _ => engine::Admission::Admitted,
        };
        Box::pin(async move { admission })
    }
}

/// Approves `production` once `build` finished, recording everything.
struct Reviewer {
    seen: RecordingObserver,
    approve: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunObserver for Reviewer {
    fn job_queued(&mut self, job: &str) {
        self.seen.job_queued(job);
    }
    fn job_waiting(&mut self, job: &str, environment: &str) {
        self.seen.job_waiting(job, environment);
    }
    fn job_started(&mut self, job: &str) {
        self.seen.job_started(job);
    }
    fn job_finished(&mut self, job: &str, result: engine::Status, duration: std::time::Duration) {
        self.seen.job_finished(job, result, duration);
        if job == "build"
            && let Some(approve) = self.approve.take()
        {
            let _ = approve.send(());
        }
    }
    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.seen.log_line(job, step, line);
    }
}

/// Hands out a masked token and counts revocations.
#[derive(Debug, Default)]
struct TestCredentials(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl engine::JobCredentials for TestCredentials {
    fn issue(&self, _job: &str) -> engine::BoxFuture<Result<engine::JobCredential, String>> {
        let revoked = self.0.clone();
        Box::pin(async move {
            Ok(engine::JobCredential {
                env: BTreeMap::from([("MOBIUS_SERVER".to_owned(), "http://127.0.0.1:9".to_owned())]),
                secret_env: BTreeMap::from([("MOBIUS_TOKEN".to_owned(), "mbx_test_run_token_value".to_owned())]),
                revoke: Box::pin(async move {
                    revoked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }),
            })
        })
    }
}

#[tokio::test]
async fn an_environment_gate_holds_a_job_without_a_slot_refuses_another_and_credentials_reach_every_job() {
    use engine::ObservedEvent as E;
    let yaml = "on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n      - run: echo \"token=$MOBIUS_TOKEN at $MOBIUS_SERVER\"\n  \
                deploy:\n    runs-on: x\n    environment: production\n    steps:\n      - run: echo deployed\n  \
                locked:\n    runs-on: x\n    environment:\n      name: locked\n    steps:\n      - run: echo never\n";
    let workflow = workflow::parse("w.yml", yaml).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut opts = RunOptions::new(work.path(), work.path());
    // One slot: `deploy` must hold none while it waits, or `build` could never run.
    opts.jobs_parallelism = 1;
    let (approve, approved) = tokio::sync::oneshot::channel();
    opts.gate = Some(std::sync::Arc::new(TestGate(std::sync::Mutex::new(Some(approved)))));
    let credentials = TestCredentials::default();
    let revoked = credentials.0.clone();
    opts.credentials = Some(std::sync::Arc::new(credentials));
    let mut observer = Reviewer { seen: RecordingObserver::default(), approve: Some(approve) };
    let report = engine::run(&workflow, opts, &mut observer).await;
    let logs = observer.seen.log_text().join("\n");
    let result = |name: &str| report.jobs.iter().find(|j| j.name == name).map(|j| (j.result, j.steps.len()));
    assert_eq!(result("build"), Some((engine::Status::Success, 1)), "{logs}");
    assert_eq!(result("deploy"), Some((engine::Status::Success, 1)), "{logs}");
    assert_eq!(result("locked"), Some((engine::Status::Failure, 0)), "refused before any step: {logs}");
    assert!(logs.contains("branch `x` is not allowed to deploy to `locked`"), "{logs}");
    assert!(!logs.contains("never"), "{logs}");
    assert!(logs.contains("token=*** at http://127.0.0.1:9"), "{logs}");
    assert!(!logs.contains("mbx_test_run_token_value"), "{logs}");
    assert_eq!(revoked.load(std::sync::atomic::Ordering::SeqCst), 2, "each job that ran gave its token back");
    let events = &observer.seen.events;
    let at = |event: &E| events.iter().position(|e| e == event).unwrap_or(usize::MAX);
    let waiting = at(&E::JobWaiting("deploy".into(), "production".into()));
    assert!(waiting < at(&E::JobFinished("build".into(), engine::Status::Success)), "{events:?}");
    assert!(at(&E::JobFinished("build".into(), engine::Status::Success)) < at(&E::JobStarted("deploy".into())));
    assert_eq!(report.result, engine::Status::Failure, "the refused job fails the run");
}
