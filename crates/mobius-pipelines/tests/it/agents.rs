//! Jobs on agents: a dispatcher in the test hands each routed job, as JSON, to a real agent in
//! process — `engine::run_job` in a work dir and store of its own, its steps real processes —
//! and syncs the stores around it as `store_sync` describes, while the server's engine drives
//! the rest of the DAG here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mobius_pipelines::chain::Chain;
use mobius_pipelines::engine::{
    self, BoxFuture, JobDispatch, JobReport, ObservedEvent as E, RecordingObserver, RemoteJob, RemoteProgress,
    RunObserver, RunOptions, RunReport, Status, StepReport,
};
use mobius_pipelines::exec::{CancellationSignal, LogLine, Stream};
use mobius_pipelines::store_sync::{self, Received, RecordScope};
use mobius_pipelines::workflow;
use serde_json::json;

const SECRET: &str = "s3cr3t-token-value";
const STAGING_SECRET: &str = "staging-only-value";
const CREDENTIAL: &str = "mbx_agent_job_token_value";

/// What the dispatcher saw.
#[derive(Debug, Default)]
struct Seen {
    /// Each job as sent, and as the agent read it back from JSON.
    jobs: Mutex<Vec<(RemoteJob, RemoteJob)>>,
    /// Every line as the agent's engine gave it, before the server saw it.
    agent_lines: Mutex<Vec<String>>,
    /// A job's cancellation signal was triggered.
    cancelled: AtomicBool,
}

/// Runs routed jobs on in-process agents, each in `root/agent-<n>`.
#[derive(Debug)]
struct Agents {
    root: PathBuf,
    /// The tree the agents checked out.
    source: PathBuf,
    server_store: PathBuf,
    seen: Arc<Seen>,
    count: AtomicUsize,
    /// Every agent is lost before it reports.
    lost: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl JobDispatch for Agents {
    fn routes(&self, labels: &[String]) -> bool {
        labels.iter().any(|l| l == "self-hosted")
    }

    fn run(&self, job: RemoteJob, progress: RemoteProgress, cancel: CancellationSignal) -> BoxFuture<JobReport> {
        // The payload crosses machines as JSON.
        let received: Result<RemoteJob, _> = serde_json::to_string(&job).and_then(|wire| serde_json::from_str(&wire));
        let dir = self.root.join(format!("agent-{}", self.count.fetch_add(1, Ordering::SeqCst)));
        let (source, server_store, seen, lost) =
            (self.source.clone(), self.server_store.clone(), self.seen.clone(), self.lost);
        Box::pin(async move {
            let received = match received {
                Ok(received) => received,
                Err(why) => return progress.failed(&format!("the job does not cross as JSON: {why}")),
            };
            lock(&seen.jobs).push((job, received.clone()));
            if lost {
                // An agent that did not mask: the server masks what it relays again.
                let line = LogLine {
                    at: std::time::SystemTime::now(),
                    stream: Stream::Stdout,
                    text: format!("leaked {SECRET}"),
                };
                progress.log("Set up job", line);
                return progress.failed("the agent was lost: no renewal for 60 s");
            }
            let watch = tokio::spawn({
                let (seen, cancel) = (seen.clone(), cancel.clone());
                async move {
                    cancel.cancelled().await;
                    seen.cancelled.store(true, Ordering::SeqCst);
                }
            });
            let agent = Agent { dir, source, server_store, seen };
            let report = match agent.run(&received, progress.clone(), cancel).await {
                Ok(report) => report,
                Err(why) => progress.failed(&why),
            };
            watch.abort();
            report
        })
    }
}

struct Agent {
    dir: PathBuf,
    source: PathBuf,
    server_store: PathBuf,
    seen: Arc<Seen>,
}

impl Agent {
    /// What `mobius agent` does with a job: fetch the run's records and the blobs it lacks, run
    /// the job, send the blobs the server lacks and then the new records.
    async fn run(
        &self,
        job: &RemoteJob,
        progress: RemoteProgress,
        cancel: CancellationSignal,
    ) -> Result<JobReport, String> {
        let fail = |e: &(dyn std::error::Error + 'static)| Chain(e).to_string();
        let (server, store) = (self.server_store.as_path(), self.dir.join("store"));
        let scope = RecordScope::of(job);
        let given = store_sync::list_records(server, &scope).map_err(|e| fail(&e))?;
        let wanted = store_sync::referenced_blobs(&given).map_err(|e| fail(&e))?;
        for digest in store_sync::missing_blobs(&store, &wanted).map_err(|e| fail(&e))? {
            let bytes = store_sync::read_blob(server, &digest).map_err(|e| fail(&e))?;
            store_sync::write_blob(&store, &digest, &bytes).map_err(|e| fail(&e))?;
        }
        store_sync::write_records(&store, &scope, Received::FromServer, &given).map_err(|e| fail(&e))?;
        let mut opts = RunOptions::new(&self.source, self.dir.join("work"));
        opts.store_dir = Some(store.clone());
        opts.cancel = cancel;
        let mut relay = Relay { progress, seen: self.seen.clone() };
        let report = engine::run_job(job, opts, &mut relay).await.map_err(|e| fail(&e))?;
        let now = store_sync::list_records(&store, &scope).map_err(|e| fail(&e))?;
        let made = store_sync::new_records(&given, &now);
        let needed = store_sync::referenced_blobs(&made).map_err(|e| fail(&e))?;
        for digest in store_sync::missing_blobs(server, &needed).map_err(|e| fail(&e))? {
            let bytes = store_sync::read_blob(&store, &digest).map_err(|e| fail(&e))?;
            store_sync::write_blob(server, &digest, &bytes).map_err(|e| fail(&e))?;
        }
        store_sync::write_records(server, &scope, Received::FromAgent, &made).map_err(|e| fail(&e))?;
        Ok(report)
    }
}

/// The agent's observer: relays what its engine reports to the server's run, lines through JSON.
struct Relay {
    progress: RemoteProgress,
    seen: Arc<Seen>,
}

impl RunObserver for Relay {
    fn job_started(&mut self, _job: &str) {
        self.progress.started();
    }
    fn step_started(&mut self, _job: &str, step: &str) {
        self.progress.step_started(step);
    }
    fn step_finished(&mut self, _job: &str, step: &StepReport) {
        self.progress.step_finished(step.clone());
    }
    fn log_line(&mut self, _job: &str, step: &str, line: &LogLine) {
        lock(&self.seen.agent_lines).push(line.text.clone());
        let wire = serde_json::to_string(line).and_then(|w| serde_json::from_str::<LogLine>(&w));
        self.progress.log(step, wire.unwrap_or_else(|_| line.clone()));
    }
}

/// Hands out a masked token and counts revocations.
#[derive(Debug, Default)]
struct Credentials(Arc<AtomicUsize>);

impl engine::JobCredentials for Credentials {
    fn issue(&self, _job: &str) -> BoxFuture<Result<engine::JobCredential, String>> {
        let revoked = self.0.clone();
        Box::pin(async move {
            Ok(engine::JobCredential {
                env: BTreeMap::from([("MOBIUS_SERVER".to_owned(), "http://127.0.0.1:9".to_owned())]),
                secret_env: BTreeMap::from([("MOBIUS_TOKEN".to_owned(), CREDENTIAL.to_owned())]),
                revoke: Box::pin(async move {
                    revoked.fetch_add(1, Ordering::SeqCst);
                }),
            })
        })
    }
}

/// A server run's setup: its work dir, the tree, its store, and agents beside it.
struct Setup {
    _temp: tempfile::TempDir,
    work: PathBuf,
    source: PathBuf,
    agents: Arc<Agents>,
}

impl Setup {
    fn new(lost: bool) -> Setup {
        let temp = tempfile::tempdir().expect("temp dir");
        let work = temp.path().to_owned();
        let source = work.join("source");
        std::fs::create_dir_all(source.join(".github/workflows")).expect("source");
        let agents = Agents {
            root: work.join("agents"),
            source: source.clone(),
            server_store: work.join("server-store"),
            seen: Arc::default(),
            count: AtomicUsize::new(0),
            lost,
        };
        Setup { _temp: temp, work, source, agents: Arc::new(agents) }
    }

    fn options(&self, text: &str) -> RunOptions {
        let mut opts = RunOptions::new(&self.source, self.work.join("server"));
        opts.github = json!({ "repository": "acme/app", "ref": "refs/heads/main", "sha": "abc123" });
        opts.secrets = BTreeMap::from([("TOKEN".to_owned(), SECRET.to_owned())]);
        opts.environment_secrets = BTreeMap::from([
            ("staging".to_owned(), BTreeMap::from([("STAGING_KEY".to_owned(), STAGING_SECRET.to_owned())])),
            ("production".to_owned(), BTreeMap::from([("PROD_KEY".to_owned(), "prod-only-value".to_owned())])),
        ]);
        opts.store_dir = Some(self.agents.server_store.clone());
        opts.run_id = 42;
        opts.jobs_parallelism = 2;
        opts.workflow_file = ".github/workflows/ci.yml".to_owned();
        opts.workflow_text = Some(text.to_owned());
        opts.dispatch = Some(self.agents.clone());
        opts
    }

    /// The jobs the agents ran, by instance name; each checked to cross as JSON unchanged.
    fn remote_jobs(&self) -> Vec<RemoteJob> {
        let jobs = lock(&self.agents.seen.jobs);
        for (sent, received) in jobs.iter() {
            assert_eq!(sent, received, "the job crosses as JSON unchanged");
        }
        jobs.iter().map(|(sent, _)| sent.clone()).collect()
    }
}

async fn run(text: &str, opts: RunOptions, observer: &mut dyn RunObserver) -> RunReport {
    let workflow = workflow::parse(".github/workflows/ci.yml", text).expect("valid workflow");
    engine::run(&workflow, opts, observer).await
}

fn result(report: &RunReport, name: &str) -> Option<Status> {
    report.jobs.iter().find(|j| j.name == name).map(|j| j.result)
}

const DAG: &str = r#"on: push
jobs:
  prepare:
    runs-on: ubuntu-latest
    outputs:
      word: ${{ steps.w.outputs.word }}
    steps:
      - id: w
        run: echo "word=hello" >> "$GITHUB_OUTPUT"
      - run: mkdir -p out && echo data-from-server > out/a.txt
      - uses: actions/upload-artifact@v4
        with: {name: server-art, path: out}
  gpu:
    needs: prepare
    runs-on: [self-hosted, GPU]
    environment: staging
    outputs:
      shout: ${{ steps.s.outputs.shout }}
    steps:
      - uses: actions/download-artifact@v4
        with: {name: server-art, path: got}
      - run: cat got/a.txt
      - id: s
        run: echo "shout=${{ needs.prepare.outputs.word }}-gpu" >> "$GITHUB_OUTPUT"
      - run: echo "token is $TOKEN, cred=$MOBIUS_TOKEN at $MOBIUS_SERVER"
        env: {TOKEN: "${{ secrets.TOKEN }}"}
      - run: echo "ws=$GITHUB_WORKSPACE"
      - run: mkdir -p res && echo result-from-agent > res/r.txt
      - uses: actions/upload-artifact@v4
        with: {name: agent-art, path: res}
  report:
    needs: gpu
    runs-on: ubuntu-latest
    steps:
      - run: test "${{ needs.gpu.outputs.shout }}" = hello-gpu
      - uses: actions/download-artifact@v4
        with: {name: agent-art, path: back}
      - run: grep result-from-agent back/r.txt
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_an_agent_between_local_ones_with_needs_outputs_artifacts_and_secrets_both_ways() {
    let setup = Setup::new(false);
    let mut opts = setup.options(DAG);
    let credentials = Credentials::default();
    let revoked = credentials.0.clone();
    opts.credentials = Some(Arc::new(credentials));
    let mut observer = RecordingObserver::default();
    let report = run(DAG, opts, &mut observer).await;
    let logs = observer.log_text().join("\n");
    for job in ["prepare", "gpu", "report"] {
        assert_eq!(result(&report, job), Some(Status::Success), "{job}: {logs}");
    }
    let remote = setup.remote_jobs();
    assert_eq!(remote.len(), 1, "only `gpu` routes to agents");
    let gpu = &remote[0];
    assert_eq!((gpu.job.as_str(), gpu.name.as_str()), ("gpu", "gpu"));
    assert_eq!(gpu.labels, ["gpu", "self-hosted"]);
    assert_eq!(gpu.workflow_text, DAG);
    assert_eq!(gpu.run_id, 42);
    assert_eq!(gpu.needs["prepare"]["outputs"]["word"], "hello");
    let secrets: Vec<&str> = gpu.secrets.keys().map(String::as_str).collect();
    assert_eq!(secrets, ["STAGING_KEY", "TOKEN"], "the job's secrets, its environment's, no other's");
    assert_eq!(gpu.credential_secret_env.get("MOBIUS_TOKEN").map(String::as_str), Some(CREDENTIAL));
    assert_eq!(revoked.load(Ordering::SeqCst), 3, "the remote job's credential is revoked too");
    // It ran on the agent, in the agent's work dir.
    let agent_work = setup.agents.root.join("agent-0/work");
    assert!(logs.contains(&format!("ws={}", agent_work.display())), "{logs}");
    // Masked on the agent already, and so on the server.
    let agent_lines = lock(&setup.agents.seen.agent_lines).join("\n");
    for text in [&logs, &agent_lines] {
        assert!(text.contains("token is ***, cred=*** at http://127.0.0.1:9"), "{text}");
        assert!(!text.contains(SECRET) && !text.contains(CREDENTIAL), "{text}");
    }
    // The observer sees the remote job as a local one.
    let events = &observer.events;
    let at = |event: E| events.iter().position(|e| *e == event).unwrap_or(usize::MAX);
    let cat = "Run cat got/a.txt";
    let order = [
        at(E::JobFinished("prepare".into(), Status::Success)),
        at(E::JobStarted("gpu".into())),
        at(E::StepStarted("gpu".into(), cat.into())),
        at(E::Log("gpu".into(), cat.into(), "data-from-server".into())),
        events
            .iter()
            .position(|e| matches!(e, E::StepFinished(job, step) if job == "gpu" && step.name == cat))
            .unwrap_or(usize::MAX),
        at(E::JobFinished("gpu".into(), Status::Success)),
        at(E::JobStarted("report".into())),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1] && w[1] != usize::MAX), "{order:?} in {events:?}");
    let started = events.iter().filter(|e| **e == E::JobStarted("gpu".into())).count();
    assert_eq!(started, 1, "{events:?}");
    let gpu_report = report.jobs.iter().find(|j| j.name == "gpu").expect("gpu");
    assert_eq!(gpu_report.outputs.get("shout").map(String::as_str), Some("hello-gpu"));
    assert_eq!(gpu_report.steps.len(), 7);
}

const MATRIX: &str = r#"on: push
jobs:
  build:
    strategy:
      matrix:
        os: [ubuntu-latest, self-hosted]
        include:
          - os: self-hosted
            extra: {n: 1.5, big: 12345678901234, list: [1, "a", true, null]}
    runs-on: ${{ matrix.os }}
    outputs:
      seen: ${{ steps.s.outputs.seen }}
    steps:
      - id: s
        run: |
          echo "on ${{ matrix.os }} as ${{ strategy.job-index }}/${{ strategy.job-total }} in $GITHUB_WORKSPACE"
          echo "seen=${{ matrix.extra.n }}" >> "$GITHUB_OUTPUT"
  after:
    needs: build
    runs-on: [self-hosted]
    steps:
      - run: test "${{ needs.build.outputs.seen }}" = 1.5
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_instances_route_by_their_own_runs_on() {
    let setup = Setup::new(false);
    let opts = setup.options(MATRIX);
    let mut observer = RecordingObserver::default();
    let report = run(MATRIX, opts, &mut observer).await;
    let logs = observer.log_text().join("\n");
    assert_eq!(report.result, Status::Success, "{logs}");
    assert_eq!(report.jobs.len(), 3, "{:?}", report.jobs);
    let remote = setup.remote_jobs();
    let routed: Vec<(&str, &serde_json::Value)> =
        remote.iter().map(|j| (j.job.as_str(), j.matrix.get("os").unwrap_or(&serde_json::Value::Null))).collect();
    assert_eq!(routed, [("build", &json!("self-hosted")), ("after", &serde_json::Value::Null)]);
    let build = &remote[0];
    assert_eq!(build.labels, ["self-hosted"]);
    assert_eq!(build.matrix["extra"], json!({ "n": 1.5, "big": 12345678901234_u64, "list": [1, "a", true, null] }));
    assert_eq!(build.strategy["job-index"], 1);
    let server_work = setup.work.join("server");
    assert!(logs.contains(&format!("on ubuntu-latest as 0/2 in {}", server_work.display())), "{logs}");
    let agent_work = setup.agents.root.join("agent-0/work");
    assert!(logs.contains(&format!("on self-hosted as 1/2 in {}", agent_work.display())), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_an_agent_takes_no_slot_here() {
    // With one slot here, `wait` would hold it until it gave up if it took it.
    let text = "on: push\njobs:\n  wait:\n    runs-on: self-hosted\n    steps:\n      \
                - run: for i in $(seq 100); do test -f '${{ vars.MARK }}' && exit 0; sleep 0.1; done; exit 1\n  \
                signal:\n    runs-on: ubuntu-latest\n    steps:\n      - run: touch '${{ vars.MARK }}'\n";
    let setup = Setup::new(false);
    let mut opts = setup.options(text);
    opts.jobs_parallelism = 1;
    opts.vars.insert("MARK".into(), setup.work.join("mark").display().to_string());
    let mut observer = RecordingObserver::default();
    let report = run(text, opts, &mut observer).await;
    let logs = observer.log_text().join("\n");
    assert_eq!(result(&report, "wait"), Some(Status::Success), "{logs}");
    assert_eq!(result(&report, "signal"), Some(Status::Success), "{logs}");
    assert_eq!(setup.remote_jobs().len(), 1);
}

/// Cancels the run once the remote job's first step has printed.
struct CancelWhenStarted {
    seen: RecordingObserver,
    cancel: CancellationSignal,
}

impl RunObserver for CancelWhenStarted {
    fn job_started(&mut self, job: &str) {
        self.seen.job_started(job);
    }
    fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        self.seen.job_finished(job, result, duration);
    }
    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        if line.text == "sleeping" {
            self.cancel.cancel();
        }
        self.seen.log_line(job, step, line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run_reaches_the_agent() {
    let text = "on: push\njobs:\n  slow:\n    runs-on: self-hosted\n    steps:\n      \
                - run: echo sleeping; sleep 30\n      - if: always()\n        run: echo cleaned up\n";
    let setup = Setup::new(false);
    let opts = setup.options(text);
    let mut observer = CancelWhenStarted { seen: RecordingObserver::default(), cancel: opts.cancel.clone() };
    let begun = Instant::now();
    let report = run(text, opts, &mut observer).await;
    let logs = observer.seen.log_text().join("\n");
    assert!(begun.elapsed() < Duration::from_secs(20), "the agent's step was stopped: {logs}");
    assert!(setup.agents.seen.cancelled.load(Ordering::SeqCst), "the dispatcher's signal was triggered");
    assert_eq!(result(&report, "slow"), Some(Status::Cancelled), "{logs}");
    assert_eq!(report.result, Status::Cancelled);
    assert!(logs.contains("cleaned up"), "the always() step ran on the agent: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn called_workflows_run_here_and_a_routed_job_needs_the_workflow_text() {
    let called = "on:\n  workflow_call:\njobs:\n  inner:\n    runs-on: [self-hosted]\n    steps:\n      \
                  - run: echo inner ran\n";
    let text = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/called.yml\n  \
                remote:\n    runs-on: [self-hosted, gpu]\n    steps:\n      - run: echo never\n  \
                local:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo local ran\n";
    let setup = Setup::new(false);
    std::fs::write(setup.source.join(".github/workflows/called.yml"), called).expect("write");
    let mut opts = setup.options(text);
    opts.workflow_text = None;
    let mut observer = RecordingObserver::default();
    let report = run(text, opts, &mut observer).await;
    let logs = observer.log_text().join("\n");
    assert_eq!(result(&report, "call / inner"), Some(Status::Success), "{logs}");
    assert_eq!(result(&report, "local"), Some(Status::Success), "{logs}");
    assert_eq!(result(&report, "remote"), Some(Status::Failure), "{logs}");
    assert!(setup.remote_jobs().is_empty());
    let said = "this job runs on an agent (runs-on: gpu, self-hosted), but the run has no workflow text to send it";
    assert!(observer.events.contains(&E::Log("remote".into(), "Set up job".into(), said.into())), "{logs}");
    assert!(logs.contains("inner ran") && !logs.contains("never"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_agent_fails_its_job_saying_why() {
    let text = "on: push\njobs:\n  remote:\n    runs-on: [self-hosted]\n    steps:\n      - run: echo never\n  \
                after:\n    needs: remote\n    if: failure()\n    runs-on: ubuntu-latest\n    steps:\n      \
                - run: echo \"remote was ${{ needs.remote.result }}\"\n";
    let setup = Setup::new(true);
    let mut observer = RecordingObserver::default();
    let report = run(text, setup.options(text), &mut observer).await;
    let logs = observer.log_text().join("\n");
    assert_eq!(result(&report, "remote"), Some(Status::Failure), "{logs}");
    assert_eq!(result(&report, "after"), Some(Status::Success), "{logs}");
    let events = &observer.events;
    let lost = E::Log("remote".into(), "Set up job".into(), "the agent was lost: no renewal for 60 s".into());
    let at = |event: &E| events.iter().position(|e| e == event).unwrap_or(usize::MAX);
    assert!(at(&E::JobStarted("remote".into())) < at(&lost), "{events:?}");
    assert!(at(&lost) < at(&E::JobFinished("remote".into(), Status::Failure)), "{events:?}");
    assert!(logs.contains("remote was failure"), "{logs}");
    assert!(logs.contains("leaked ***") && !logs.contains(SECRET), "{logs}");
}

fn remote_job(text: &str, job: &str) -> RemoteJob {
    RemoteJob {
        format: RemoteJob::FORMAT,
        workflow_file: ".github/workflows/ci.yml".into(),
        workflow_text: text.into(),
        job: job.into(),
        name: job.into(),
        matrix: Default::default(),
        strategy: json!({ "job-index": 0, "job-total": 1 }),
        needs: json!({}),
        github: json!({ "repository": "acme/app" }),
        event_name: "push".into(),
        inputs: Default::default(),
        vars: BTreeMap::new(),
        secrets: BTreeMap::new(),
        run_id: 7,
        labels: vec!["self-hosted".into()],
        credential_env: BTreeMap::new(),
        credential_secret_env: BTreeMap::new(),
        history: None,
    }
}

#[tokio::test]
async fn an_agent_refuses_a_job_it_cannot_run_before_any_step() {
    let work = tempfile::tempdir().expect("temp dir");
    let refuse = async |job: RemoteJob| {
        let opts = RunOptions::new(work.path(), work.path());
        let mut observer = RecordingObserver::default();
        let outcome = engine::run_job(&job, opts, &mut observer).await;
        assert!(observer.events.is_empty(), "{:?}", observer.events);
        outcome.map_err(|e| e.to_string()).err().unwrap_or_default()
    };
    let broken = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ matrix.x ) }}\n";
    let said = refuse(remote_job(broken, "a")).await;
    assert!(
        said.starts_with("`.github/workflows/ci.yml` is not a valid workflow:\n.github/workflows/ci.yml:6:"),
        "{said}"
    );
    let fine = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo hi\n  \
                c:\n    uses: ./.github/workflows/other.yml\n";
    assert_eq!(refuse(remote_job(fine, "b")).await, "`.github/workflows/ci.yml` has no job `b`");
    assert_eq!(
        refuse(remote_job(fine, "c")).await,
        "job `c` of `.github/workflows/ci.yml` calls a reusable workflow, which runs on the server"
    );
    let future = RemoteJob { format: 2, ..remote_job(fine, "a") };
    assert_eq!(refuse(future).await, "the job is in format 2; this agent runs format 1");
    // And one it can run reports its steps; its `Debug` shows no secret.
    let mut job = remote_job(fine, "a");
    job.secrets.insert("TOKEN".into(), SECRET.into());
    assert!(!format!("{job:?}").contains(SECRET));
    let mut observer = RecordingObserver::default();
    let report = engine::run_job(&job, RunOptions::new(work.path(), work.path()), &mut observer).await;
    let report = report.map_err(|e| e.to_string()).expect("runs");
    assert_eq!((report.result, report.steps.len()), (Status::Success, 1));
    assert!(observer.log_text().contains(&"hi"), "{:?}", observer.events);
    assert_eq!(observer.events.last(), Some(&E::JobFinished("a".into(), Status::Success)));
    assert_eq!(JobReport::failed(&job).result, Status::Failure);
}

#[test]
fn the_sync_scope_of_a_job_follows_its_github_context() {
    let mut job = remote_job("", "a");
    job.github = json!({ "repository": "acme/app", "ref": "refs/heads/feature", "event": { "repository": { "default_branch": "trunk" } } });
    let scope = RecordScope::of(&job);
    assert_eq!(
        (scope.run_id, scope.cache.branch.as_str(), scope.cache.default_branch.as_str()),
        (7, "feature", "trunk")
    );
}
