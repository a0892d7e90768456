//! Running one job instance: its directories, environment, steps and outputs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::actions::{self, Native};
use super::deploy::{self, DeployProgress, Deployments, NO_SERVER};
use super::gate::JobCredential;
use super::resolve::{ActionSet, describe};
use super::schedule::{base_context, setting_bool, setting_number};
use super::workspace::{DirPool, cache_scope, documented_env, prepare_dirs, recycle, reuses_dirs, runner_context};
use super::{JobReport, RunOptions, Status, StepReport};
use crate::artifacts::JobFiles;
use crate::chain::Chain;
use crate::exec::{
    CancellationSignal, Conclusion, JobEnv, JobState, LogLine, LogSink, Outcome, Shell, StepSpec, Stream, run_step,
};
use crate::expr::{self, Context, JobStatus, MapContext};
use crate::mask::{MIN_SECRET_CHARS, MaskError, Masker};
use crate::workflow::{Combination, Pairs, RunDefaults, Step, StepAction, Workflow};

mod composite;
mod node;
mod uses;

use node::Post;
use uses::UsesStep;

/// What a job task tells the scheduler while it runs.
#[derive(Debug)]
pub(super) enum Event {
    /// A job of a called workflow (see `call.rs`), named `caller / job`.
    JobQueued(String),
    /// Held by its environment's review: job, environment.
    JobWaiting(String, String),
    JobStarted(String),
    /// A job of a called workflow ended.
    JobFinished(String, Status, Duration),
    StepStarted(String, String),
    StepFinished(String, StepReport),
    Log(String, String, LogLine),
}

/// One instance to run, as the scheduler hands it over.
pub(super) struct Instance {
    /// Its position in the scheduler's list, to name its directory uniquely.
    pub index: usize,
    /// Its job's position in the workflow.
    pub job: usize,
    pub name: String,
    pub matrix: Combination,
    /// The `strategy` context.
    pub strategy: Value,
    /// The `needs` context.
    pub needs: Value,
    /// Triggered by fail-fast for every instance of the job, and by cancelling the run.
    pub cancel: CancellationSignal,
    /// Directories of finished instances, emptied, for this one to take over.
    pub pool: DirPool,
}

/// Sends a step's lines to the scheduler, which hands them to the observer.
struct ChannelSink {
    sender: UnboundedSender<Event>,
    job: String,
    step: String,
}

impl LogSink for ChannelSink {
    fn line(&mut self, line: LogLine) {
        // The scheduler outlives every job task, so a send only fails while it is shutting down.
        let _ = self.sender.send(Event::Log(self.job.clone(), self.step.clone(), line));
    }
}

impl ChannelSink {
    /// A line from the runner itself, about the step.
    fn say(&mut self, masker: &Masker, text: &str) {
        let text = String::from_utf8_lossy(&masker.mask(text.as_bytes())).into_owned();
        self.line(LogLine { at: SystemTime::now(), stream: Stream::Stderr, text });
    }
}

/// What every step of a job instance shares while it runs.
struct JobRun {
    state: JobState,
    sink: ChannelSink,
    masker: Masker,
    store: actions::StoreCtx,
    deployments: Option<Arc<dyn Deployments>>,
    /// The actions loaded for the job.
    actions: ActionSet,
    /// Post scripts of the JavaScript actions that ran, in order; run in reverse after the job.
    posts: Vec<Post>,
    /// What each step's `pre` script saved (`GITHUB_STATE`), by step id, for its main script.
    pre_state: HashMap<String, BTreeMap<String, String>>,
    /// The workflow file, to place errors.
    workflow_file: String,
    /// The repository whose history `mobius/secret-scan` reads for a push's range
    /// (`RunOptions::history`, else `RunOptions::workspace_source`).
    source: PathBuf,
}

impl JobRun {
    /// A line from the runner about the current step, masked.
    fn say(&mut self, text: &str) {
        self.sink.say(&self.masker, text);
    }

    /// `file:line:col` of a position in the workflow file.
    fn at(&self, pos: crate::workflow::Pos) -> String {
        format!("{}:{}:{}", self.workflow_file, pos.line, pos.column)
    }
}

/// Where a step sits: the defaults that apply to its `run:` (the job's, then the workflow's;
/// none inside a composite action), and, inside a composite action, the environment its steps
/// inherit and how deep it is.
#[derive(Clone, Default)]
struct Scope<'a> {
    defaults: Vec<&'a RunDefaults>,
    env: BTreeMap<String, String>,
    depth: usize,
}

/// Runs every step of the instance and reports the job: with the credential
/// [`RunOptions::credentials`] issues for it, withdrawn once the job ends.
pub(super) async fn run_instance(
    workflow: &Workflow,
    opts: &RunOptions,
    instance: Instance,
    sender: UnboundedSender<Event>,
) -> JobReport {
    let Some(credentials) = opts.credentials.clone() else {
        return run_steps(workflow, opts, instance, sender, None).await;
    };
    match credentials.issue(&instance.name).await {
        Ok(credential) => {
            let JobCredential { env, secret_env, revoke } = credential;
            let report = run_steps(workflow, opts, instance, sender, Some((env, secret_env))).await;
            revoke.await;
            report
        }
        Err(why) => {
            // The scheduler outlives every job task (see `ChannelSink`): sends fail only as it stops.
            let _ = sender.send(Event::JobStarted(instance.name.clone()));
            let mut sink = ChannelSink { sender, job: instance.name.clone(), step: "Set up job".into() };
            sink.line(LogLine { at: SystemTime::now(), stream: Stream::Stderr, text: why });
            let id = workflow.jobs.get(instance.job).map_or("", |j| j.id.as_str());
            report(&instance, id, Status::Failure, Status::Failure, BTreeMap::new(), Vec::new())
        }
    }
}

/// Variables a credential adds to every step's environment: in clear, and masked.
pub(super) type CredentialEnv = (BTreeMap<String, String>, BTreeMap<String, String>);

/// Runs every step of the instance and reports the job.
pub(super) async fn run_steps(
    workflow: &Workflow,
    opts: &RunOptions,
    instance: Instance,
    sender: UnboundedSender<Event>,
    credential: Option<CredentialEnv>,
) -> JobReport {
    let Some(job) = workflow.jobs.get(instance.job) else {
        return report(&instance, "", Status::Failure, Status::Failure, BTreeMap::new(), Vec::new());
    };
    // The scheduler outlives every job task (see `ChannelSink`): sends fail only as it stops.
    let _ = sender.send(Event::JobStarted(instance.name.clone()));
    let mut sink = ChannelSink { sender: sender.clone(), job: instance.name.clone(), step: "Set up job".into() };
    let (credential_env, credential_secrets) = credential.unwrap_or_default();
    let mut secrets = opts.secrets_for(job);
    secrets.extend(credential_secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    let masker = match masker(&secrets) {
        Ok(masker) => masker,
        Err(why) => {
            // Without a masker nothing may be logged through `say`; the error names the secret,
            // never its value.
            sink.line(LogLine {
                at: SystemTime::now(),
                stream: Stream::Stderr,
                text: format!("cannot mask the secrets: {why}"),
            });
            return report(&instance, &job.id, Status::Failure, Status::Failure, BTreeMap::new(), Vec::new());
        }
    };
    let ctx = base_context(opts, job, &instance.needs, &instance.matrix).with("strategy", instance.strategy.clone());
    let dirs = match prepare_dirs(opts, job, &instance) {
        Ok(dirs) => dirs,
        Err(why) => {
            sink.say(&masker, &format!("cannot prepare the job's directories: {why}"));
            return report(&instance, &job.id, Status::Failure, Status::Failure, BTreeMap::new(), Vec::new());
        }
    };
    let mut github = ctx.context("github").unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut github {
        map.insert("workspace".into(), Value::String(dirs.workspace.display().to_string()));
    }
    let runner = runner_context(opts, &dirs);
    let ctx = ctx.with("github", github).with("runner", runner).with_workspace(&dirs.workspace);
    let mut env = documented_env(opts, job, &dirs);
    env.extend(credential_env);
    env.extend(credential_secrets);
    // Workflow env first, then job env, each rendered with what is defined before it.
    for pairs in [&workflow.env, &job.env] {
        let rendered = render_pairs(pairs, &ctx.clone().with("env", json!(env)), &mut sink, &masker);
        env.extend(rendered);
    }
    let job_env = JobEnv {
        workspace: dirs.workspace.clone(),
        home: dirs.home.clone(),
        temp: dirs.temp.clone(),
        base_env: env.clone(),
        path: std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default(),
        masker: masker.clone(),
    };
    // A sandboxed step may read what the workspace was copied from (`MOBIUS_SOURCE_DIR`), and
    // the actions in the cache.
    let mut readable = vec![opts.workspace_source.clone()];
    readable.extend(opts.actions.as_ref().map(|cache| cache.trees_dir()));
    let state = JobState::new(job_env).with_sandbox(opts.sandbox.clone(), readable);
    let store = actions::StoreCtx {
        store: opts.store(),
        run_id: opts.run_id,
        files: match opts.sandbox.is_active() {
            true => {
                JobFiles::confined(&dirs.workspace, &dirs.home, std::slice::from_ref(&dirs.temp), opts.sandbox.clone())
            }
            false => JobFiles::open(&dirs.workspace, &dirs.home),
        },
        scope: cache_scope(&opts.github),
        pending_saves: Vec::new(),
    };
    let mut run = JobRun {
        state,
        sink,
        masker,
        store,
        deployments: opts.deployments.clone(),
        actions: ActionSet::new(opts.actions.clone()),
        posts: Vec::new(),
        pre_state: HashMap::new(),
        workflow_file: opts.workflow_file.clone(),
        // The history a push range is read from: the repository itself when the workspace
        // source is an export of one (the server's), else the source (a clone, locally).
        source: opts.history.clone().unwrap_or_else(|| opts.workspace_source.clone()),
    };
    // The job's own signal: fail-fast of its matrix, the run's cancellation, or its timeout.
    let cancel = CancellationSignal::new();
    let timed_out = Arc::new(AtomicBool::new(false));
    let timeout = setting_number(&job.timeout_minutes, &ctx)
        .unwrap_or_else(|why| {
            run.say(&format!("cannot evaluate the job's `timeout-minutes`: {why}; using 360 minutes"));
            None
        })
        .map(minutes)
        .unwrap_or(Duration::from_secs(360 * 60));
    let watcher = tokio::spawn({
        let (group, cancel, timed_out) = (instance.cancel.clone(), cancel.clone(), timed_out.clone());
        async move {
            tokio::select! {
                () = group.cancelled() => {}
                () = tokio::time::sleep(timeout) => timed_out.store(true, Ordering::SeqCst),
            }
            cancel.cancel();
        }
    });
    let mut steps_ctx = Map::new();
    let mut steps = Vec::new();
    // Actions from repositories are fetched before the first step: one that cannot be had
    // fails the job before anything ran, as on GitHub.
    let mut failed = match run.actions.preload(&job.steps).await {
        Ok(said) => {
            for line in said {
                run.say(&line);
            }
            false
        }
        Err((pos, why)) => {
            let at = run.at(pos);
            run.say(&format!("{at}: {}", describe(&why)));
            true
        }
    };
    if !failed {
        failed = node::run_pres(job, &ctx, &env, &mut run, &cancel, &mut steps, &sender, &instance.name).await;
    }
    for (index, step) in job.steps.iter().enumerate() {
        let id = step.id.clone().unwrap_or_else(|| format!("__{index}"));
        // As on GitHub, a cancelled job still runs the steps whose `if:` holds once
        // `cancelled()` is true (`always()`, `cancelled()`); the implicit `success()` is false.
        let status = status_now(cancel.is_cancelled(), failed);
        let step_ctx = ctx.clone().with("steps", Value::Object(steps_ctx.clone()));
        let env_ctx = json!(merged(&env, run.state.exported_env()));
        let step_ctx = step_ctx.with("env", env_ctx).with("job", job_context(status));
        let name = step_name(step, &step_ctx);
        run.sink.step = name.clone();
        let condition = step.if_.as_deref().unwrap_or("");
        let will_run = match expr::evaluate_condition(condition, &step_ctx.clone().with_status(status)) {
            Ok(will_run) => will_run,
            Err(why) => {
                run.say(&format!("cannot evaluate `if:`: {why}"));
                failed = true;
                false
            }
        };
        let step_ctx = step_ctx.with_status(status);
        let (outcome, conclusion, outputs) = if will_run {
            let _ = sender.send(Event::StepStarted(instance.name.clone(), name.clone()));
            // GitHub's runner re-evaluates a running step's `if:` when its job is cancelled and
            // lets it finish if it still holds; such a step gets its own signal, so neither the
            // job's cancellation (already triggered or to come) nor the job's timeout ends it.
            // Its own `timeout-minutes` still does. The condition evaluated a moment ago with
            // only the status differing; should it fail now, the step does not survive, as a
            // false condition would not.
            let survives = expr::evaluate_condition(condition, &step_ctx.clone().with_status(JobStatus::Cancelled))
                .unwrap_or(false);
            let signal = if survives { CancellationSignal::new() } else { cancel.clone() };
            let scope = Scope { defaults: vec![&job.defaults, &workflow.defaults], ..Scope::default() };
            run_one(step, &id, &name, &step_ctx, &scope, &signal, &mut run).await
        } else {
            (Status::Skipped, Status::Skipped, BTreeMap::new())
        };
        if conclusion == Status::Failure {
            failed = true;
        }
        let masked = mask_values(&run.masker, &outputs);
        steps_ctx.insert(
            id.clone(),
            json!({ "outputs": outputs, "outcome": outcome.as_str(), "conclusion": conclusion.as_str() }),
        );
        let step_report = StepReport { id, name, outcome, conclusion, outputs: masked };
        if will_run {
            let _ = sender.send(Event::StepFinished(instance.name.clone(), step_report.clone()));
        }
        steps.push(step_report);
    }
    watcher.abort();
    // Post scripts of JavaScript actions, last first, whatever happened before (each has its
    // `post-if`, `always()` by default); a failing one fails the job, as on GitHub.
    let status = status_now(cancel.is_cancelled(), failed);
    if node::run_posts(status, &mut run, &mut steps, &sender, &instance.name).await {
        failed = true;
    }
    // GitHub's post step of `actions/cache`: save only after a successful job, and only keys
    // that were not hit exactly (entries are immutable). A failed save is a warning, as there.
    if !failed && !cancel.is_cancelled() {
        run.sink.step = "Post job cleanup".into();
        for (key, paths) in std::mem::take(&mut run.store.pending_saves) {
            let saved = crate::cache::save(&run.store.store, &run.store.scope, &key, &paths, &run.store.files);
            match saved {
                Ok(true) => run.say(&format!("cache saved with key: {key}")),
                Ok(false) => {
                    run.sink.say(&run.masker, &format!("cache not saved for key {key}: it exists or no file matched"))
                }
                Err(why) => run.say(&format!("warning: cannot save cache {key}: {}", Chain(&why))),
            }
        }
    }
    let final_status = status_now(cancel.is_cancelled(), failed);
    let out_ctx = ctx
        .clone()
        .with("steps", Value::Object(steps_ctx))
        .with("env", json!(env))
        .with("job", job_context(final_status));
    run.sink.step = "Complete job".into();
    let outputs: BTreeMap<String, String> =
        render_pairs(&job.outputs, &out_ctx, &mut run.sink, &run.masker).into_iter().collect();
    let outcome = if timed_out.load(Ordering::SeqCst) {
        run.say("the job ran past its timeout-minutes and was cancelled");
        Status::Failure
    } else if cancel.is_cancelled() {
        Status::Cancelled
    } else if failed {
        Status::Failure
    } else {
        Status::Success
    };
    let continue_on_error = outcome == Status::Failure
        && setting_bool(&job.continue_on_error, &out_ctx).unwrap_or_else(|why| {
            run.say(&format!("cannot evaluate the job's `continue-on-error`: {why}; using false"));
            false
        });
    let result = if continue_on_error { Status::Success } else { outcome };
    // The job's processes are gone (dropping the state kills what its steps left behind); its
    // directories, emptied, serve a later instance.
    drop(run);
    // Emptied apart, so the scheduler hears of this job's end (and starts the next) without
    // waiting for it; the run waits for it before it returns (see `DirPool`).
    let (pool, reuse) = (instance.pool.clone(), reuses_dirs(opts));
    tokio::spawn(async move { recycle(dirs, &pool, reuse) });
    report(&instance, &job.id, outcome, result, outputs, steps)
}

/// Outputs as they may be shown: with the job's secrets masked.
fn mask_values(masker: &Masker, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(&masker.mask(v.as_bytes())).into_owned())).collect()
}

fn report(
    instance: &Instance,
    id: &str,
    outcome: Status,
    result: Status,
    outputs: BTreeMap<String, String>,
    steps: Vec<StepReport>,
) -> JobReport {
    JobReport {
        id: id.to_owned(),
        name: instance.name.clone(),
        matrix: instance.matrix.clone(),
        outcome,
        result,
        outputs,
        steps,
    }
}

/// Runs one step that its `if:` let through: outcome, conclusion, outputs. `id` is the step's
/// id (or `__<index>`), which names a JavaScript action's state.
async fn run_one(
    step: &Step,
    id: &str,
    name: &str,
    ctx: &MapContext,
    scope: &Scope<'_>,
    cancel: &CancellationSignal,
    run: &mut JobRun,
) -> (Status, Status, BTreeMap<String, String>) {
    let continue_on_error = setting_bool(&step.continue_on_error, ctx).unwrap_or_else(|why| {
        run.say(&format!("cannot evaluate the step's `continue-on-error`: {why}; using false"));
        false
    });
    let fail = failed_step;
    // The step's own `env` is in its `env` context from here on (`run:`, `with:`…), as on
    // GitHub; its `if:` came before and did not see it. Inside a composite action it comes over
    // what the calling step's `env` gave.
    let step_env = match render_env(&step.env, ctx) {
        Ok(env) => merged(&scope.env, &env),
        Err(why) => {
            run.say(&format!("cannot evaluate the step's `env`: {}", Chain(&why)));
            return fail(continue_on_error);
        }
    };
    let ctx = &with_env(ctx, &step_env);
    let timeout = match step.timeout_minutes.as_ref().map(|t| setting_number(t, ctx)).transpose() {
        Ok(minutes_set) => minutes_set.flatten().map(minutes),
        Err(why) => {
            run.say(&format!("cannot evaluate the step's `timeout-minutes`: {why}; no timeout"));
            None
        }
    };
    match &step.action {
        StepAction::Uses { action, with, pos } => {
            let step = UsesStep { action, with, ctx, continue_on_error, id, name, pos: *pos, timeout };
            uses::run(&step, step_env, scope, cancel, run).await
        }
        StepAction::Run(script) => {
            let rendered = (|| -> Result<StepSpec, expr::ExprError> {
                let defaults =
                    |pick: fn(&RunDefaults) -> &Option<String>| scope.defaults.iter().find_map(|d| pick(d).as_ref());
                let working_directory = step
                    .working_directory
                    .as_ref()
                    .or(defaults(|d| &d.working_directory))
                    .map(|dir| expr::render(dir, ctx).map(PathBuf::from))
                    .transpose()?;
                let shell = step.shell.as_ref().or(defaults(|d| &d.shell));
                let shell = shell.map(|s| expr::render(s, ctx)).transpose()?;
                Ok(StepSpec {
                    name: name.to_owned(),
                    script: expr::render(script, ctx)?,
                    shell: shell.map(|s| parse_shell(&s)).unwrap_or(Shell::Bash),
                    working_directory,
                    env: step_env,
                    timeout,
                    continue_on_error,
                    program: None,
                })
            })();
            let spec = match rendered {
                Ok(spec) => spec,
                Err(why) => {
                    run.say(&format!("cannot evaluate an expression of the step: {why}"));
                    return fail(continue_on_error);
                }
            };
            let result = run_step(&mut run.state, &spec, &mut run.sink, cancel.clone()).await;
            statuses(&result, result.outputs.clone())
        }
    }
}

/// The job's status as steps see it (`job.status`, the status functions): cancelled wins, then
/// a failure so far.
fn status_now(cancelled: bool, failed: bool) -> JobStatus {
    if cancelled {
        JobStatus::Cancelled
    } else if failed {
        JobStatus::Failure
    } else {
        JobStatus::Success
    }
}

/// A step that failed before or instead of running: no outputs; `continue-on-error` still
/// makes its conclusion a success.
fn failed_step(continue_on_error: bool) -> (Status, Status, BTreeMap<String, String>) {
    let conclusion = if continue_on_error { Status::Success } else { Status::Failure };
    (Status::Failure, conclusion, BTreeMap::new())
}

/// A finished process step as outcome, conclusion and outputs.
fn statuses(
    result: &crate::exec::StepResult,
    outputs: BTreeMap<String, String>,
) -> (Status, Status, BTreeMap<String, String>) {
    let outcome = match result.outcome {
        Outcome::Success => Status::Success,
        Outcome::Failure { .. } | Outcome::TimedOut => Status::Failure,
        Outcome::Cancelled => Status::Cancelled,
    };
    let conclusion = match result.conclusion() {
        Conclusion::Success => Status::Success,
        Conclusion::Failure => Status::Failure,
        Conclusion::Cancelled => Status::Cancelled,
    };
    (outcome, conclusion, outputs)
}

/// A `shell:` value as the executor knows it; a custom command without `{0}` gets the script
/// path appended, as GitHub does.
fn parse_shell(shell: &str) -> Shell {
    match shell.trim() {
        "bash" => Shell::Bash,
        "sh" => Shell::Sh,
        "python" => Shell::Python,
        custom if custom.contains("{0}") => Shell::Custom(custom.to_owned()),
        custom => Shell::Custom(format!("{custom} {{0}}")),
    }
}

/// The step's `name:`, its expressions rendered with `ctx` (as written if they do not
/// render), or GitHub's default names: `Run <first line of the script>` or `Run <action>`.
fn step_name(step: &Step, ctx: &MapContext) -> String {
    if let Some(name) = &step.name {
        return expr::render(name, ctx).unwrap_or_else(|_| name.clone());
    }
    match &step.action {
        StepAction::Run(script) => format!("Run {}", script.lines().next().unwrap_or("").trim()),
        StepAction::Uses { action, .. } => format!("Run {action}"),
    }
}

/// Timeouts past about a year are clamped rather than overflowing a `Duration`.
fn minutes(m: f64) -> Duration {
    Duration::from_secs_f64((m * 60.0).clamp(0.0, 3.2e7))
}

fn merged(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = a.clone();
    out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Renders `env`/`outputs` pairs; a value that fails to render is logged and left out, and so is
/// an `env` given as one expression that does not give a mapping.
fn render_pairs(pairs: &Pairs, ctx: &MapContext, sink: &mut ChannelSink, masker: &Masker) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in pairs {
        match render_pair(key, value, ctx) {
            Ok(entries) => out.extend(entries),
            Err(why) if key.is_empty() => sink.say(masker, &format!("cannot evaluate `env`: {why}")),
            Err(why) => sink.say(masker, &format!("cannot evaluate `{key}`: {why}")),
        }
    }
    out
}

/// Why an `env` or `outputs` value does not render.
#[derive(Debug, thiserror::Error)]
enum PairError {
    /// The expression does not parse or evaluate.
    #[error(transparent)]
    Expr(#[from] expr::ExprError),
    /// A whole `env` given as one expression gives something else than a mapping.
    #[error("`{expression}` gives {value}, not a mapping")]
    NotAMapping { expression: String, value: serde_json::Value },
    /// A name written with expressions renders empty.
    #[error("the name `{name}` renders empty")]
    EmptyName { name: String },
}

/// Why a step's `env` does not render: the first value that does not.
#[derive(Debug, thiserror::Error)]
enum StepEnvError {
    /// The value of one variable.
    #[error("`{key}`")]
    Value {
        key: String,
        #[source]
        source: PairError,
    },
    /// The whole `env`, given as one expression.
    #[error(transparent)]
    Whole(PairError),
}

/// One rendered entry, or the entries of a whole `env` given as one expression (an empty name,
/// see [`crate::workflow::Job::env`]), which must evaluate to a mapping: `env: ${{ fromJSON(…) }}`.
fn render_pair(key: &str, value: &str, ctx: &MapContext) -> Result<Vec<(String, String)>, PairError> {
    if !key.is_empty() {
        // A name may hold expressions too (`${{ matrix.tool }}_HOME`), as on GitHub.
        let name = if key.contains("${{") { expr::render(key, ctx)? } else { key.to_owned() };
        if name.is_empty() {
            return Err(PairError::EmptyName { name: key.to_owned() });
        }
        return Ok(vec![(name, expr::render(value, ctx)?)]);
    }
    match expr::parse_template(value).and_then(|t| expr::evaluate_template(&t, ctx))? {
        expr::Value::Object(entries) => Ok(entries.iter().map(|(k, v)| (k.clone(), v.to_display_string())).collect()),
        other => Err(PairError::NotAMapping { expression: value.to_owned(), value: other.to_json() }),
    }
}

/// Renders a step's `env`; the first value that fails to render is the error.
fn render_env(pairs: &Pairs, ctx: &MapContext) -> Result<BTreeMap<String, String>, StepEnvError> {
    let mut env = BTreeMap::new();
    for (key, value) in pairs {
        let entries = render_pair(key, value, ctx).map_err(|source| match key.is_empty() {
            true => StepEnvError::Whole(source),
            false => StepEnvError::Value { key: key.clone(), source },
        })?;
        env.extend(entries);
    }
    Ok(env)
}

/// `ctx` with `env` in its `env` context, over what is there.
fn with_env(ctx: &MapContext, env: &BTreeMap<String, String>) -> MapContext {
    let mut merged = match ctx.context("env") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    merged.extend(env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));
    ctx.clone().with("env", Value::Object(merged))
}

/// The `job` context: the job's status so far; no container or service containers, since jobs
/// run on the host.
fn job_context(status: JobStatus) -> Value {
    let status = match status {
        JobStatus::Success => "success",
        JobStatus::Failure => "failure",
        JobStatus::Cancelled => "cancelled",
    };
    json!({ "status": status, "container": {}, "services": {} })
}

/// The masker for the secrets; values too short to mask safely are left out (masking `a` would
/// make every log unreadable), so building it cannot fail on length.
pub(super) fn masker(secrets: &BTreeMap<String, String>) -> Result<Masker, MaskError> {
    let maskable = secrets.iter().filter(|(_, v)| v.chars().count() >= MIN_SECRET_CHARS);
    Masker::new(maskable.map(|(k, v)| (k.clone(), v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_and_names() {
        assert_eq!(parse_shell("bash"), Shell::Bash);
        assert_eq!(parse_shell("perl {0}"), Shell::Custom("perl {0}".into()));
        assert_eq!(parse_shell("zsh -e"), Shell::Custom("zsh -e {0}".into()));
        assert_eq!(super::super::workspace::ref_name("refs/heads/main"), "main");
        assert_eq!(minutes(0.02), Duration::from_millis(1200));
        assert_eq!(minutes(-1.0), Duration::ZERO);
    }
}
