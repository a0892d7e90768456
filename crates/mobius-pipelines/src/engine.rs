//! Running a parsed workflow's jobs on this machine, as a DAG.
//!
//! [`run`] expands each job's matrix into job instances (named as GitHub names them:
//! `build (linux, 20)`, the matrix values in order), starts an instance once every job it
//! `needs` has finished, and keeps at most [`RunOptions::jobs_parallelism`] instances running
//! (and at most `strategy.max-parallel` of one matrix job). A job whose needs did not all
//! succeed is skipped unless its `if:` calls a status function (`always()`, `failure()`…).
//! A matrix computed by expressions (`matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}`, or
//! an axis, `include` or value written so) is evaluated once the job's needs are done and its
//! `if:` holds; a job skipped before that is one `skipped` entry, and a matrix that does not
//! compute to a mapping of sequences fails the job.
//!
//! Each instance gets three directories in [`RunOptions::work_dir`], side by side rather than
//! under one of their own (a directory fewer to create per job): `<n>-<name>-workspace`,
//! `<n>-<name>-home` and `<n>-<name>-temp`. When an instance ends, its processes are killed
//! and its directories emptied and kept; a later instance renames them to its own names rather
//! than creating new ones (creating inodes dominates a short job on some filesystems, ext4 after
//! many deletions). So a failed job's files are not left in the work dir for inspection. With
//! a [`RunOptions::sandbox`] that runs steps as another user, directories are not reused (a
//! process of that user could still hold one) but created by the runner, filled, and handed
//! over to the user. Choice: the workspace is a copy of [`RunOptions::workspace_source`]
//! (without `.git` and `target/`) when the job has an `actions/checkout` step (at the step's
//! `path` under the workspace, which may not leave it), and empty otherwise — as on GitHub,
//! where nothing is checked out without it. `actions/checkout` itself is then a no-op; action
//! names are matched without regard to case, as on GitHub (`Actions/Checkout@v4` is
//! `actions/checkout`). Setup actions only check that their tool is on `PATH`;
//! `actions/upload-artifact`, `actions/download-artifact` and `actions/cache` use the stores of
//! [`crate::artifacts`] and [`crate::cache`] under [`RunOptions::store_dir`]. `mobius/deploy`
//! asks [`RunOptions::deployments`] for the deployment and waits for its rollout to end,
//! logging its progress (see [`Deployments`]). Every other `owner/repo[/path]@ref` action is
//! fetched through [`RunOptions::actions`] before the job's first step and `./path` ones read
//! from the workspace when their step runs; they run as their `action.yml` says (JavaScript
//! actions with `pre`/`main`/`post`, composite actions inline; Docker actions fail the job).
//! A job with `uses:` a workflow runs it as a nested run (see `call.rs`).
//!
//! Cancellation, as on GitHub: a job is cancelled by fail-fast of its matrix, by its
//! `timeout-minutes`, or by [`RunOptions::cancel`] for the whole run (jobs not started yet then
//! end `cancelled`, and so does the run). The running step's process group is killed unless the
//! step's `if:` still holds with `cancelled()` true (`always()`, `cancelled()`), and the
//! remaining steps run only if theirs does; such a step gets its own cancellation signal, so
//! only its own `timeout-minutes` ends it. A timed-out job's result stays `failure`.
//!
//! Contexts, as on GitHub: `strategy` (`fail-fast`, `job-index`, `job-total`, `max-parallel`,
//! which is the number of combinations when not set; a job without a matrix is instance 0 of
//! 1), `job` (`status` so far, and empty `container` and `services`, since jobs run on the
//! host), and a step's own `env` in its `env` context for its `run:`, `with:` and other fields
//! (not its `if:`, evaluated first). `env: ${{ fromJSON(…) }}`, a whole mapping as one
//! expression, at workflow, job or step level is evaluated to a mapping whose entries are used;
//! one that gives something else is logged (workflow, job) or fails the step.
//!
//! A job with `uses:` runs a reusable workflow: each of its instances runs the called
//! workflow as a nested run, whose jobs are reported as `caller / job`, and takes its
//! `on.workflow_call.outputs` as outputs (see `call.rs` for the design and GitHub's rules).
//! Local called workflows are read from [`RunOptions::workspace_source`], remote ones
//! (`owner/repo/.github/workflows/x.yml@ref`) from the tree [`RunOptions::actions`] fetches.
//!
//! Agents: with a [`RunOptions::dispatch`], an instance of a job of this workflow (a called
//! workflow's jobs run here, whatever their `runs-on`) without `uses:`, whose `runs-on` labels
//! ([`runs_on_labels`]) the dispatcher routes to agents, runs on one: once its needs, `if:` and
//! environment's gate let it start, the engine issues its credential, sends a [`RemoteJob`]
//! (the workflow text, the instance's contexts, its secrets and credential) through
//! [`JobDispatch::run`] and relays what the agent reports ([`RemoteProgress`]) to the observer;
//! the agent runs it with [`run_job`], and [`crate::store_sync`] keeps its artifact and cache
//! store in step with the server's. Such jobs take no slot of
//! [`RunOptions::jobs_parallelism`] (agents have their own); see `dispatch.rs`.
//!
//! Workflow commands in a step's output (`::add-mask::`, `::warning::`…) are applied as
//! [`crate::exec`] describes.
//!
//! Extensions and limits: fractional `timeout-minutes` are honoured (GitHub accepts any number
//! there too); secrets shorter than [`MIN_SECRET_CHARS`](crate::mask::MIN_SECRET_CHARS) cannot
//! be masked and are left out of the masker (they are still in the `secrets` context), and
//! `::add-mask::` refuses such values with a warning in the log, where GitHub masks any length;
//! a job not yet started when the run is cancelled ends `cancelled` even if its `if:` calls
//! `always()` (GitHub would still run it); the axes of a matrix that `fromJSON` produced as a
//! whole come in key order rather than the JSON's order, which only shows in instance names.
//!
//! Progress is reported to a [`RunObserver`] as it happens; the end result is a [`RunReport`].
//! [`run`] must be called inside a Tokio runtime with timers enabled; its future is not `Send`
//! (the observer is borrowed), so a caller drives it with `block_on` or on a local task, while
//! the jobs themselves run on the runtime's worker threads.

mod actions;
mod agent;
mod call;
mod deploy;
mod dispatch;
mod gate;
pub mod history;
mod job;
mod resolve;
mod runs_on;
mod schedule;
mod security;
pub use security::SCANNER;
mod workspace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mobius_sandbox::Sandbox;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::exec::{CancellationSignal, LogLine};
use crate::remote::ActionCache;

pub use agent::{RemoteJobError, run_job};
pub use call::{MAX_UNIQUE_WORKFLOWS, MAX_WORKFLOW_LEVELS};
pub use deploy::{
    Cause, DEPLOY_INPUTS, DEPLOY_REQUIRED, DeployError, DeployFuture, DeployOutcome, DeployProgress, DeployStep,
    Deployments, NO_SERVER, POLICY_INPUTS, POLICY_REQUIRED, PolicyError, PolicyFuture, PolicyStep, RolloutEnded,
};
pub use dispatch::{JobDispatch, RemoteJob, RemoteProgress};
pub use gate::{Admission, BoxFuture, EnvironmentGate, JobCredential, JobCredentials};
pub use runs_on::{RunsOnError, runs_on_labels};
pub use schedule::{instance_names, run};
pub use security::{DEPENDENCY_AUDIT_INPUTS, DEPENDENCY_AUDIT_REQUIRED, SECRET_SCAN_INPUTS, SECRET_SCAN_REQUIRED};

/// What a run needs besides the workflow.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The repository directory, copied into the workspace of jobs that check out.
    pub workspace_source: PathBuf,
    /// The git repository `workspace_source` was exported from, when it is an export without
    /// history (the server's runs): what `mobius/secret-scan` reads a push's range from.
    /// `None`: `workspace_source` itself is a clone.
    pub history: Option<PathBuf>,
    /// How many job instances may run at once on this machine (at least 1); those on agents
    /// (see [`RunOptions::dispatch`]) do not count.
    pub jobs_parallelism: usize,
    /// The event that triggered the run (`github.event_name`, `GITHUB_EVENT_NAME`).
    pub event_name: String,
    /// The `github` context as the caller knows it (`ref`, `sha`, `repository`, `event`…);
    /// the engine adds `event_name`, `job`, `run_id` and `workspace`.
    pub github: Value,
    /// The `inputs` context.
    pub inputs: Map<String, Value>,
    /// The `secrets` context; the values are masked in logs.
    pub secrets: BTreeMap<String, String>,
    /// Secrets of deployment environments, by environment name: a job whose `environment:`
    /// names one sees them too, over [`RunOptions::secrets`] (GitHub's environment secrets).
    pub environment_secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// The `vars` context.
    pub vars: BTreeMap<String, String>,
    /// Run only these jobs and what they need, transitively; all jobs when empty.
    pub selected_jobs: Vec<String>,
    /// Run only matrix instances whose `matrix.<key>` renders as the value (`os=linux`);
    /// a filter on a key a job's matrix lacks does not apply to it.
    pub matrix_filter: Vec<(String, String)>,
    /// Where each instance's workspace, home and temp dirs are created.
    pub work_dir: PathBuf,
    /// `GITHUB_RUN_ID`.
    pub run_id: u64,
    /// Where artifacts and caches are stored; `work_dir/store` when `None`. Give the same
    /// directory to several runs for caches to carry over between them.
    pub store_dir: Option<PathBuf>,
    /// Cancels the run when triggered (from any thread or task, e.g. a server asked to stop
    /// the run): running jobs are cancelled as by fail-fast, jobs not started yet end
    /// `cancelled`, and so does the run. Clones are the same signal, so keep one before
    /// handing the options to [`run`].
    pub cancel: CancellationSignal,
    /// Runs the deployments of `mobius/deploy` steps; without it such a step fails with
    /// [`NO_SERVER`].
    pub deployments: Option<Arc<dyn Deployments>>,
    /// Asked before a job whose `environment:` names an environment starts (protection rules,
    /// reviews); without it every environment admits every job, as in `mobius run`.
    pub gate: Option<Arc<dyn EnvironmentGate>>,
    /// Gives each job a credential for its host's API (`MOBIUS_TOKEN` on a server); without
    /// it jobs get none.
    pub credentials: Option<Arc<dyn JobCredentials>>,
    /// How steps are started: [`Sandbox::none`] (the default) runs them as plain processes of
    /// the caller's user, as `mobius run` does; the server gives its own. With a sandbox that
    /// confines (bubblewrap, or another user), each job's directories are created afresh and
    /// handed over to its user rather than reused, `workspace_source` is bound read-only, and
    /// the artifact and cache actions reach only the job's workspace, home and temp dir, with
    /// that user's permissions.
    pub sandbox: Sandbox,
    /// Where `uses: owner/repo@ref` actions come from (see [`crate::remote`]); without it such
    /// a step fails its job before the first step, saying so. Built-in actions and `./local`
    /// ones need none. Remote reusable workflows (`owner/repo/.github/workflows/x.yml@ref`)
    /// come from here too; without it a job calling one fails.
    pub actions: Option<ActionCache>,
    /// The workflow file as the user knows it (`.github/workflows/ci.yml`), to say where a step
    /// is in errors found while the run goes (an action that cannot be had).
    pub workflow_file: String,
    /// Runs on agents the job instances whose `runs-on` labels it routes there (see
    /// [`JobDispatch`]); without it every job runs here and `runs-on` is not evaluated.
    pub dispatch: Option<Arc<dyn JobDispatch>>,
    /// The workflow file's whole text, which a job sent to an agent carries
    /// ([`RemoteJob::workflow_text`]); a job routed to an agent fails without it, saying so.
    pub workflow_text: Option<String>,
    /// The chain of calls that led to this run and what the whole run called (see `call.rs`).
    pub(crate) calls: call::CallStack,
}

impl RunOptions {
    /// Options with the defaults: as many parallel jobs as cores, a `push` event, an empty
    /// `github` context, no inputs, secrets or vars, every job.
    pub fn new(workspace_source: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> RunOptions {
        // A clock before 1970 gives run 0: an id, not a time.
        let run_id =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        RunOptions {
            workspace_source: workspace_source.into(),
            history: None,
            jobs_parallelism: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            event_name: "push".to_owned(),
            github: Value::Object(Map::new()),
            inputs: Map::new(),
            secrets: BTreeMap::new(),
            environment_secrets: BTreeMap::new(),
            vars: BTreeMap::new(),
            selected_jobs: Vec::new(),
            matrix_filter: Vec::new(),
            work_dir: work_dir.into(),
            run_id,
            store_dir: None,
            cancel: CancellationSignal::new(),
            deployments: None,
            gate: None,
            credentials: None,
            sandbox: Sandbox::none(),
            actions: None,
            workflow_file: "workflow.yml".to_owned(),
            dispatch: None,
            workflow_text: None,
            calls: call::CallStack::default(),
        }
    }

    /// The secrets a job sees: the run's, and over them those of the environment its
    /// `environment:` names.
    pub fn secrets_for(&self, job: &crate::workflow::Job) -> BTreeMap<String, String> {
        let mut secrets = self.secrets.clone();
        if let Some(scoped) = job.environment.as_ref().and_then(|name| self.environment_secrets.get(name)) {
            secrets.extend(scoped.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        secrets
    }

    /// The store directory: [`RunOptions::store_dir`] or `work_dir/store`.
    pub fn store(&self) -> PathBuf {
        self.store_dir.clone().unwrap_or_else(|| self.work_dir.join("store"))
    }
}

/// How a job, a step or the run ended: GitHub's `result` / `conclusion` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Succeeded.
    Success,
    /// Failed (or timed out).
    Failure,
    /// Cancelled by fail-fast, a timeout of its job or [`RunOptions::cancel`].
    Cancelled,
    /// Not run: its `if:` was false or a needed job did not succeed.
    Skipped,
}

impl Status {
    /// The word used in expressions (`needs.a.result == 'success'`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
        }
    }
}

/// One step of a job instance, once run (or skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step's `id`, or `__<index>` as GitHub names steps without one.
    pub id: String,
    /// The display name: `name`, else `Run <first line>` or `Run <action>`.
    pub name: String,
    /// How it ended before `continue-on-error`.
    pub outcome: Status,
    /// How it ended after `continue-on-error`.
    pub conclusion: Status,
    /// What it set: the values written to `GITHUB_OUTPUT`, or a native action's outputs
    /// (`artifact-id`, `artifact-digest`, `cache-hit`…), masked; empty when it did not run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// One job instance (one matrix combination).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job's id in the workflow.
    pub id: String,
    /// The display name, with the matrix values in parentheses.
    pub name: String,
    /// The matrix combination; empty without a matrix.
    pub matrix: Map<String, Value>,
    /// How the job ended before `continue-on-error`.
    pub outcome: Status,
    /// How the job ended after `continue-on-error`: what `needs.<id>.result` sees.
    pub result: Status,
    /// The job's `outputs`, rendered after its steps.
    pub outputs: BTreeMap<String, String>,
    /// Its steps; empty when the job was skipped or cancelled before starting.
    pub steps: Vec<StepReport>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Failure if a job's result is failure, else cancelled if one was cancelled, else success.
    pub result: Status,
    /// Every job instance, in the workflow's job order then matrix order.
    pub jobs: Vec<JobReport>,
}

/// Watches a run as it happens, e.g. to draw a live view. Every method has an empty default.
/// Jobs are named by their instance display name ([`JobReport::name`]).
pub trait RunObserver {
    /// An instance is known and waits for its needs or a free slot.
    fn job_queued(&mut self, _job: &str) {}
    /// An instance waits for a review before it may deploy to `environment` (see
    /// [`EnvironmentGate`]); `job_started` or `job_finished` follows.
    fn job_waiting(&mut self, _job: &str, _environment: &str) {}
    /// An instance started.
    fn job_started(&mut self, _job: &str) {}
    /// An instance ended (also when skipped or cancelled without starting).
    fn job_finished(&mut self, _job: &str, _result: Status, _duration: Duration) {}
    /// A step started.
    fn step_started(&mut self, _job: &str, _step: &str) {}
    /// A step ended.
    fn step_finished(&mut self, _job: &str, _step: &StepReport) {}
    /// A (masked) line of a step's output, or a line of the runner's own about it.
    fn log_line(&mut self, _job: &str, _step: &str, _line: &LogLine) {}
}

/// One event seen by a [`RecordingObserver`].
#[derive(Debug, Clone, PartialEq)]
pub enum ObservedEvent {
    /// [`RunObserver::job_queued`].
    JobQueued(String),
    /// [`RunObserver::job_waiting`]: job, environment.
    JobWaiting(String, String),
    /// [`RunObserver::job_started`].
    JobStarted(String),
    /// [`RunObserver::job_finished`], without the duration.
    JobFinished(String, Status),
    /// [`RunObserver::step_started`].
    StepStarted(String, String),
    /// [`RunObserver::step_finished`].
    StepFinished(String, StepReport),
    /// [`RunObserver::log_line`]: job, step, text.
    Log(String, String, String),
}

/// Records every event in order; for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingObserver {
    /// The events so far.
    pub events: Vec<ObservedEvent>,
}

impl RecordingObserver {
    /// The text of every log line, in order.
    pub fn log_text(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ObservedEvent::Log(_, _, text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl RunObserver for RecordingObserver {
    fn job_queued(&mut self, job: &str) {
        self.events.push(ObservedEvent::JobQueued(job.to_owned()));
    }
    fn job_waiting(&mut self, job: &str, environment: &str) {
        self.events.push(ObservedEvent::JobWaiting(job.to_owned(), environment.to_owned()));
    }
    fn job_started(&mut self, job: &str) {
        self.events.push(ObservedEvent::JobStarted(job.to_owned()));
    }
    fn job_finished(&mut self, job: &str, result: Status, _duration: Duration) {
        self.events.push(ObservedEvent::JobFinished(job.to_owned(), result));
    }
    fn step_started(&mut self, job: &str, step: &str) {
        self.events.push(ObservedEvent::StepStarted(job.to_owned(), step.to_owned()));
    }
    fn step_finished(&mut self, job: &str, step: &StepReport) {
        self.events.push(ObservedEvent::StepFinished(job.to_owned(), step.clone()));
    }
    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.events.push(ObservedEvent::Log(job.to_owned(), step.to_owned(), line.text.clone()));
    }
}
