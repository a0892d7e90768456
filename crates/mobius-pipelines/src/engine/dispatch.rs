//! Running a job instance on another machine: the [`JobDispatch`] port (GitHub's self-hosted
//! runners, GitLab's runners).
//!
//! The run's DAG stays here: the scheduler expands matrices, waits for `needs`, evaluates
//! `if:`, asks the environment's gate, and only then, for an instance of a top-level job
//! without `uses:` whose rendered `runs-on` labels (see [`runs_on_labels`]) the dispatcher
//! [routes](JobDispatch::routes) to agents, hands a [`RemoteJob`] to
//! [`JobDispatch::run`] instead of running the steps here. The credential of the job is issued
//! here as for a local job (its variables travel in the [`RemoteJob`]) and withdrawn once the
//! dispatcher returns. The agent runs the job with this same engine ([`super::run_job`]); what
//! it reports comes back through a [`RemoteProgress`], so the run's observer sees a remote job
//! as a local one: started, its steps, their log lines, finished.
//!
//! Where an instance runs is decided once, when it could first start (its needs done, its
//! gate passed): a routed instance takes no slot of [`RunOptions::jobs_parallelism`], which is
//! this machine's, while `strategy.max-parallel` counts it as any instance.
//!
//! Choices: a job without `runs-on` labels runs here without asking the dispatcher (every
//! agent would have all of none); jobs of a called workflow (`uses:` a workflow) run here, on
//! the server, whatever their `runs-on`; without [`RunOptions::dispatch`] `runs-on` is not
//! even evaluated, as before. A `runs-on` that does not evaluate, or a routed job when
//! [`RunOptions::workflow_text`] is missing, fails the instance with a line saying why. What
//! the dispatcher reports is taken with the instance's own id, name and matrix (an agent cannot
//! rename a job), and lines and step outputs it relays are masked with the job's secrets here
//! again, so an agent that forgot to mask leaks nothing into the run's log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::gate::{BoxFuture, JobCredential};
use super::job::{Event, Instance, masker, run_instance};
use super::runs_on::runs_on_labels;
use super::schedule::base_context;
use super::workspace::cache_scope;
use super::{JobReport, RunOptions, Status, StepReport};
use crate::chain::Chain;
use crate::exec::{CancellationSignal, LogLine, Stream};
use crate::mask::{MIN_SECRET_CHARS, Masker};
use crate::workflow::{Combination, Job, Workflow};

/// Runs job instances on agents: the server's queue of `mobius agent` workers. The engine
/// asks it about each instance it could send ([`JobDispatch::routes`]) and, for those it
/// takes, awaits [`JobDispatch::run`] on the instance's job task while the run goes on.
pub trait JobDispatch: Send + Sync + std::fmt::Debug {
    /// Whether an instance with these `runs-on` labels (lowercase, sorted, never empty) runs
    /// on an agent rather than here. Asked once per instance from the scheduler's loop, so it
    /// answers at once, without I/O.
    fn routes(&self, labels: &[String]) -> bool;

    /// Runs the job on an agent and gives its report: the one the agent sent back, or, when
    /// there is none (the agent was lost, the job was cancelled before an agent took it), one
    /// made with [`RemoteProgress::failed`] or [`RemoteProgress::cancelled`]. Relays what the
    /// agent reports as it goes through `progress`. `cancel` is triggered when the job is
    /// cancelled (fail-fast of its matrix, the run's cancellation): tell the agent, and return
    /// once it has ended the job (its `always()` steps may still run there) or is lost.
    fn run(&self, job: RemoteJob, progress: RemoteProgress, cancel: CancellationSignal) -> BoxFuture<JobReport>;
}

/// Everything an agent needs to run one job instance with this engine ([`super::run_job`]).
///
/// It carries the job's secrets and credential: keep it sealed at rest and in transit. Its
/// `Debug` shows the names of secrets, never their values.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteJob {
    /// The payload's format, [`RemoteJob::FORMAT`] when made by this engine: an agent refuses
    /// one it does not know rather than run it half understood.
    pub format: u32,
    /// The workflow file as the user knows it (`.github/workflows/ci.yml`), for errors.
    pub workflow_file: String,
    /// The whole workflow file, as the run read it.
    pub workflow_text: String,
    /// The job's id in the workflow.
    pub job: String,
    /// The instance's display name (`build (linux, 20)`).
    pub name: String,
    /// The instance's matrix combination; empty without a matrix.
    pub matrix: Combination,
    /// The `strategy` context (`job-index`, `job-total`…).
    pub strategy: Value,
    /// The `needs` context: the direct needs' results and outputs.
    pub needs: Value,
    /// The `github` context as the run's caller gave it ([`RunOptions::github`]).
    pub github: Value,
    /// `github.event_name`.
    pub event_name: String,
    /// The `inputs` context.
    pub inputs: Map<String, Value>,
    /// The `vars` context.
    pub vars: BTreeMap<String, String>,
    /// The secrets this job sees ([`RunOptions::secrets_for`]), and no others.
    pub secrets: BTreeMap<String, String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: u64,
    /// The rendered `runs-on` labels: lowercase, sorted.
    pub labels: Vec<String>,
    /// The job credential's variables, in clear ([`JobCredential::env`]).
    pub credential_env: BTreeMap<String, String>,
    /// The job credential's masked variables ([`JobCredential::secret_env`]).
    pub credential_secret_env: BTreeMap<String, String>,
    /// The server's repository a push range is read from ([`RunOptions::history`]), given
    /// only when a step of the job reads it (see [`super::history`]): the dispatcher packs
    /// the range for the agent. A path on the server: never sent.
    #[serde(skip)]
    pub history: Option<std::path::PathBuf>,
}

impl RemoteJob {
    /// The format this engine writes and runs.
    pub const FORMAT: u32 = 1;

    /// The cache scope its `actions/cache` steps read and write, from its `github` context
    /// (repository, branch, default branch), as on the server.
    pub fn cache_scope(&self) -> crate::cache::Scope {
        cache_scope(&self.github)
    }
}

impl std::fmt::Debug for RemoteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |map: &BTreeMap<String, String>| map.keys().cloned().collect::<Vec<_>>();
        f.debug_struct("RemoteJob")
            .field("format", &self.format)
            .field("workflow_file", &self.workflow_file)
            .field("workflow_text_bytes", &self.workflow_text.len())
            .field("job", &self.job)
            .field("name", &self.name)
            .field("matrix", &self.matrix)
            .field("run_id", &self.run_id)
            .field("labels", &self.labels)
            .field("secrets", &names(&self.secrets))
            .field("credential_env", &names(&self.credential_env))
            .field("credential_secret_env", &names(&self.credential_secret_env))
            .finish_non_exhaustive()
    }
}

impl JobReport {
    /// The report of a remote job that ended without a report from its agent: failed, without
    /// steps or outputs. [`RemoteProgress::failed`] also says why in the job's log.
    pub fn failed(job: &RemoteJob) -> JobReport {
        unfinished(&job.job, &job.name, &job.matrix, Status::Failure)
    }
}

fn unfinished(id: &str, name: &str, matrix: &Combination, status: Status) -> JobReport {
    JobReport {
        id: id.to_owned(),
        name: name.to_owned(),
        matrix: matrix.clone(),
        outcome: status,
        result: status,
        outputs: BTreeMap::new(),
        steps: Vec::new(),
    }
}

/// What a dispatcher tells the run about a remote job as its agent reports it; cheap to clone
/// and usable from any task. Lines and step outputs are masked with the job's secrets.
#[derive(Clone)]
pub struct RemoteProgress {
    sender: UnboundedSender<Event>,
    job: Arc<Identity>,
    masker: Masker,
    /// Whether the observer was told the job started, and whether a step did.
    started: Arc<AtomicBool>,
    stepped: Arc<AtomicBool>,
}

/// Who a remote job is in the run.
struct Identity {
    id: String,
    name: String,
    matrix: Combination,
}

impl std::fmt::Debug for RemoteProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteProgress").field("job", &self.job.name).finish_non_exhaustive()
    }
}

impl RemoteProgress {
    fn new(sender: UnboundedSender<Event>, id: &str, instance: &Instance, masker: Masker) -> RemoteProgress {
        let job = Identity { id: id.to_owned(), name: instance.name.clone(), matrix: instance.matrix.clone() };
        RemoteProgress { sender, job: Arc::new(job), masker, started: Arc::default(), stepped: Arc::default() }
    }

    /// The instance's display name, as the observer knows it.
    pub fn job(&self) -> &str {
        &self.job.name
    }

    fn send(&self, event: Event) {
        // The scheduler outlives its job tasks: a send fails only while it shuts down, and a
        // dispatcher that outlives the run has no one left to tell.
        let _ = self.sender.send(event);
    }

    fn mask(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.masker.mask(text.as_bytes())).into_owned()
    }

    /// An agent took the job. Said once; the other methods say it first if it was not, and the
    /// engine does before the job finishes.
    pub fn started(&self) {
        if !self.started.swap(true, Ordering::SeqCst) {
            self.send(Event::JobStarted(self.job.name.clone()));
        }
    }

    /// A step started on the agent (its display name).
    pub fn step_started(&self, step: &str) {
        self.started();
        self.stepped.store(true, Ordering::SeqCst);
        self.send(Event::StepStarted(self.job.name.clone(), step.to_owned()));
    }

    /// A line of a step's log (or the runner's own, about a step or `Set up job`).
    pub fn log(&self, step: &str, line: LogLine) {
        self.started();
        let line = LogLine { text: self.mask(&line.text), ..line };
        self.send(Event::Log(self.job.name.clone(), step.to_owned(), line));
    }

    /// A step ended on the agent.
    pub fn step_finished(&self, step: StepReport) {
        self.started();
        let outputs = step.outputs.iter().map(|(k, v)| (k.clone(), self.mask(v))).collect();
        self.send(Event::StepFinished(self.job.name.clone(), StepReport { outputs, ..step }));
    }

    /// A line of the runner's own: under `Complete job` once a step started, else under
    /// `Set up job`, as for a job that fails before its first step here.
    fn say(&self, text: &str) {
        let step = match self.stepped.load(Ordering::SeqCst) {
            true => "Complete job",
            false => "Set up job",
        };
        self.log(step, LogLine { at: SystemTime::now(), stream: Stream::Stderr, text: text.to_owned() });
    }

    /// Says `reason` in the job's log (`the agent was lost: no renewal for 60 s`) and gives
    /// the report of a job that failed without its agent's report.
    pub fn failed(&self, reason: &str) -> JobReport {
        self.say(reason);
        unfinished(&self.job.id, &self.job.name, &self.job.matrix, Status::Failure)
    }

    /// Says `reason` in the job's log and gives the report of a job cancelled before its
    /// agent reported (cancelled while queued).
    pub fn cancelled(&self, reason: &str) -> JobReport {
        self.say(reason);
        unfinished(&self.job.id, &self.job.name, &self.job.matrix, Status::Cancelled)
    }

    /// The dispatcher's report as the run takes it: the instance's own id, name and matrix,
    /// step outputs masked.
    fn taken(&self, report: JobReport) -> JobReport {
        let steps = report
            .steps
            .into_iter()
            .map(|step| {
                let outputs = step.outputs.iter().map(|(k, v)| (k.clone(), self.mask(v))).collect();
                StepReport { outputs, ..step }
            })
            .collect();
        JobReport {
            id: self.job.id.clone(),
            name: self.job.name.clone(),
            matrix: self.job.matrix.clone(),
            steps,
            ..report
        }
    }
}

/// Where an instance of a job without `uses:` runs, decided once when it could start.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Route {
    Here,
    /// On an agent with these labels.
    Agent(Vec<String>),
    /// Its `runs-on` does not evaluate: it fails saying so.
    Unroutable(String),
}

/// Where an instance runs (see the module doc): here unless the run has a dispatcher, is not a
/// called workflow's, and the dispatcher routes the instance's labels to agents.
pub(super) fn route_of(opts: &RunOptions, job: &Job, needs: &Value, matrix: &Combination, strategy: &Value) -> Route {
    let Some(dispatch) = opts.dispatch.as_ref().filter(|_| opts.calls.is_top() && job.uses.is_none()) else {
        return Route::Here;
    };
    let ctx = base_context(opts, job, needs, matrix).with("strategy", strategy.clone());
    match runs_on_labels(job.runs_on.as_ref(), &ctx) {
        Ok(labels) if !labels.is_empty() && dispatch.routes(&labels) => Route::Agent(labels),
        Ok(_) => Route::Here,
        Err(why) => Route::Unroutable(format!("cannot evaluate `runs-on`: {}", Chain(&why))),
    }
}

/// Runs an instance of a job without `uses:` where `route` says.
pub(super) async fn run_routed(
    workflow: &Workflow,
    opts: &RunOptions,
    instance: Instance,
    sender: UnboundedSender<Event>,
    route: Route,
) -> JobReport {
    let (labels, Some(dispatch), Some(job)) = (route, opts.dispatch.as_ref(), workflow.jobs.get(instance.job)) else {
        return run_instance(workflow, opts, instance, sender).await;
    };
    let secrets = opts.secrets_for(job);
    // Secrets that cannot be masked fail the job before its first step, here as locally:
    // `run_instance` says why and runs nothing.
    let Ok(masker) = masker(&secrets) else {
        return run_instance(workflow, opts, instance, sender).await;
    };
    let progress = RemoteProgress::new(sender.clone(), &job.id, &instance, masker.clone());
    let labels = match labels {
        Route::Here => return run_instance(workflow, opts, instance, sender).await,
        Route::Unroutable(why) => return progress.failed(&why),
        Route::Agent(labels) => labels,
    };
    let Some(workflow_text) = opts.workflow_text.clone() else {
        return progress.failed(&format!(
            "this job runs on an agent (runs-on: {}), but the run has no workflow text to send it",
            labels.join(", ")
        ));
    };
    let (credential_env, credential_secret_env, revoke) = match &opts.credentials {
        None => (BTreeMap::new(), BTreeMap::new(), None),
        Some(credentials) => match credentials.issue(&instance.name).await {
            Ok(JobCredential { env, secret_env, revoke }) => (env, secret_env, Some(revoke)),
            Err(why) => return progress.failed(&why),
        },
    };
    for (name, value) in credential_secret_env.iter().filter(|(_, v)| v.chars().count() >= MIN_SECRET_CHARS) {
        // Only a value too short to mask is refused, and those were left out.
        let _ = masker.add(name.clone(), value);
    }
    let remote = RemoteJob {
        format: RemoteJob::FORMAT,
        workflow_file: opts.workflow_file.clone(),
        workflow_text,
        job: job.id.clone(),
        name: instance.name.clone(),
        matrix: instance.matrix.clone(),
        strategy: instance.strategy.clone(),
        needs: instance.needs.clone(),
        github: opts.github.clone(),
        event_name: opts.event_name.clone(),
        inputs: opts.inputs.clone(),
        vars: opts.vars.clone(),
        secrets,
        run_id: opts.run_id,
        labels,
        credential_env,
        credential_secret_env,
        history: opts
            .history
            .clone()
            .filter(|_| super::history::reads_history(job) && super::history::range_commits(&opts.github).is_some()),
    };
    let report = dispatch.run(remote, progress.clone(), instance.cancel.clone()).await;
    if let Some(revoke) = revoke {
        revoke.await;
    }
    progress.started();
    progress.taken(report)
}
