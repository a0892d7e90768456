//! Running a job that calls a reusable workflow (`uses: ./.github/workflows/x.yml`).
//!
//! Design: each instance of a calling job (one per matrix combination, started by the
//! scheduler like any job once its `needs` are done) runs the called workflow as a nested run
//! of the scheduler, [`super::schedule::run_jobs`], inside its own job task. The nested run's
//! observer forwards every event through the caller's channel with its job names prefixed as
//! GitHub names them (`caller / job`, `caller (linux) / job`, `a / b / job` when nested), so
//! the outer observer sees them as jobs of the run; their reports follow the caller's in
//! [`super::RunReport::jobs`]. Expanding calls into the caller's workflow was the other way:
//! it would have needed renaming every `needs` and a second kind of job id, while a nested
//! run keeps the called workflow's own `needs`, `jobs` context and failure rules as they are.
//!
//! As on GitHub:
//! - `with:` values are rendered in the caller's context (`github`, `needs`, `matrix`,
//!   `strategy`, `inputs`, `vars`), a value that is one expression keeping its type, and
//!   checked against `on.workflow_call.inputs`: an undeclared input, a wrong type or a missing
//!   required input fails the calling job, naming it and its `file:line:col`. Inputs not given
//!   take their `default`, else `false`, `0` or `''`.
//! - The called workflow sees only the secrets passed: `secrets: inherit` passes all of the
//!   caller's, a mapping passes each under the name the called workflow declares; a required
//!   secret not passed or an undeclared one fails the calling job.
//! - `github` is the caller's (same event, ref and sha); `vars` too.
//! - Once the called jobs are done, `on.workflow_call.outputs.<name>.value` is rendered with
//!   the `jobs` context (`jobs.<id>.result`, `jobs.<id>.outputs`, merged over matrix
//!   instances as `needs` is) and becomes the calling job's outputs; its result is the called
//!   workflow's: failure if a called job failed, else cancelled if one was, else success.
//! - At most [`MAX_WORKFLOW_LEVELS`] levels of workflows (the top one included) and
//!   [`MAX_UNIQUE_WORKFLOWS`] different called workflows per run; a workflow that calls itself
//!   through a chain is refused with the chain (`a.yml → b.yml → a.yml`).
//!
//! Called workflows are read from [`RunOptions::workspace_source`] (local ones, which must
//! stay inside it) or, for `owner/repo/…@ref`, from the repository's tree that
//! [`RunOptions::actions`] (the [`crate::remote::ActionCache`] of actions, the same source and
//! pinning rules) fetches; the engine itself runs no network code. A local call inside a
//! remote workflow reads that repository at the same commit, as GitHub reads the caller's.
//!
//! Limits: a nested run has its own [`RunOptions::jobs_parallelism`], so a run with calls
//! may run more jobs at once than the option says.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::job::{Event, Instance};
use super::schedule::{Ran, base_context, run_jobs};
use super::{JobReport, RunObserver, RunOptions, Status, StepReport};
use crate::chain::Chain;
use crate::exec::{LogLine, Stream};
use crate::expr::{self, MapContext};
use crate::workflow::{self, Call, CallInputKind, CallSecrets, CallTarget, Diagnostic, Workflow, WorkflowCall};

/// GitHub's limit on nesting: the top workflow and at most nine called below it.
pub const MAX_WORKFLOW_LEVELS: usize = 10;
/// GitHub's limit on the different reusable workflows one run calls.
pub const MAX_UNIQUE_WORKFLOWS: usize = 50;
/// GitHub's limit on a workflow file's size.
const MAX_WORKFLOW_BYTES: u64 = 512 * 1024;

/// Which calls lead to the workflow being run, and what the whole run has called.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallStack {
    /// The called workflows from the top one down, as `owner/repo/path@ref` or `./path`.
    chain: Vec<String>,
    /// Where `./` calls of the running workflow are read: the workspace source, or the
    /// repository a remote workflow came from.
    home: Option<RemoteHome>,
    /// Every workflow called so far in the run.
    unique: Arc<Mutex<BTreeSet<String>>>,
}

impl CallStack {
    /// Whether the run is the top-level one, not a called workflow's.
    pub(super) fn is_top(&self) -> bool {
        self.chain.is_empty()
    }
}

/// A remote repository at a commit, whose tree is `dir`.
#[derive(Debug, Clone)]
struct RemoteHome {
    repo: String,
    sha: String,
    dir: PathBuf,
}

/// Why a calling job fails before or after its called jobs run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("cannot read `{file}`")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is outside the repository")]
    Outside { path: String },
    #[error("`{file}` is {size} bytes; a workflow file is at most {MAX_WORKFLOW_BYTES}")]
    TooLarge { file: String, size: u64 },
    #[error("`{uses}` is a remote workflow, and this run has no source of repositories (`--actions-url`)")]
    NoRepositories { uses: String },
    #[error("cannot fetch `{uses}`")]
    Fetch {
        uses: String,
        #[source]
        source: crate::remote::FetchError,
    },
    #[error("reusable workflow cycle: {}", chain.join(" → "))]
    Cycle { chain: Vec<String> },
    #[error("calling `{uses}` would nest more than {MAX_WORKFLOW_LEVELS} levels of workflows: {}", chain.join(" → "))]
    TooDeep { uses: String, chain: Vec<String> },
    #[error("calling `{uses}` would make more than {MAX_UNIQUE_WORKFLOWS} different reusable workflows in this run")]
    TooMany { uses: String },
    #[error("`{uses}` is not a valid workflow:\n{}", diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { uses: String, diagnostics: Vec<Diagnostic> },
    #[error("`{uses}` cannot be called: it has no `on.workflow_call`")]
    NotCallable { uses: String },
    #[error("input `{name}` is not defined in `{uses}`")]
    UnknownInput { name: String, uses: String },
    #[error("input `{name}` of `{uses}` is required but not given")]
    MissingInput { name: String, uses: String },
    #[error("input `{name}` of `{uses}` must be a {expected}, not a {found}")]
    WrongType { name: String, uses: String, expected: &'static str, found: &'static str },
    #[error("cannot evaluate input `{name}`")]
    Input {
        name: String,
        #[source]
        source: expr::ExprError,
    },
    #[error("secret `{name}` is not defined in `{uses}`")]
    UnknownSecret { name: String, uses: String },
    #[error("secret `{name}` of `{uses}` is required but not passed")]
    MissingSecret { name: String, uses: String },
    #[error("cannot evaluate secret `{name}`")]
    Secret {
        name: String,
        #[source]
        source: expr::ExprError,
    },
}

/// Runs the workflow the instance's job calls: the caller's report and the called jobs'.
pub(super) async fn run_call(
    workflow: &Workflow,
    opts: &RunOptions,
    instance: Instance,
    sender: UnboundedSender<Event>,
) -> (JobReport, Vec<JobReport>) {
    let _ = sender.send(Event::JobStarted(instance.name.clone()));
    let mut report = JobReport {
        id: String::new(),
        name: instance.name.clone(),
        matrix: instance.matrix.clone(),
        outcome: Status::Failure,
        result: Status::Failure,
        outputs: Default::default(),
        steps: Vec::new(),
    };
    let say = |text: String| {
        let line = LogLine { at: SystemTime::now(), stream: Stream::Stderr, text };
        // The scheduler outlives every job task: a send fails only while it shuts down.
        let _ = sender.send(Event::Log(instance.name.clone(), "Set up job".into(), line));
    };
    let Some((job, call)) = workflow.jobs.get(instance.job).and_then(|j| Some((j, j.uses.as_ref()?))) else {
        return (report, Vec::new());
    };
    report.id = job.id.clone();
    let ctx = base_context(opts, job, &instance.needs, &instance.matrix).with("strategy", instance.strategy.clone());
    let prepared = prepare(opts, call, &ctx, &instance).await;
    let (called, nested) = match prepared {
        Ok(prepared) => prepared,
        Err(why) => {
            say(format!("job `{}` ({}:{}:{}): {}", job.id, call.file, call.pos.line, call.pos.column, Chain(&why)));
            return (report, Vec::new());
        }
    };
    say(format!("calling {}", call.uses));
    let inputs = nested.inputs.clone();
    let observer = Forwarder { sender: sender.clone(), prefix: instance.name.clone() };
    let ran = nested_run(Arc::new(called.clone()), nested, observer).await;
    let jobs = jobs_context(&ran);
    let mut out_ctx = base_context(opts, job, &json!({}), &Default::default());
    out_ctx = out_ctx.with("inputs", Value::Object(inputs)).with("jobs", jobs);
    for output in called.on.workflow_call.iter().flat_map(|c| &c.outputs) {
        match expr::render(&output.value, &out_ctx) {
            Ok(value) => {
                report.outputs.insert(output.name.clone(), value);
            }
            Err(why) => say(format!("cannot evaluate output `{}` of {}: {why}", output.name, call.uses)),
        }
    }
    report.outcome = ran.result;
    report.result = ran.result;
    let prefix = |mut r: JobReport| {
        r.name = format!("{} / {}", instance.name, r.name);
        r
    };
    let called_jobs =
        ran.instances.into_iter().flat_map(|(report, deeper)| std::iter::once(report).chain(deeper)).map(prefix);
    (report, called_jobs.collect())
}

/// The nested run, boxed: the scheduler's future holds job tasks that hold nested runs, so
/// its type would otherwise contain itself.
fn nested_run(
    workflow: Arc<Workflow>,
    opts: RunOptions,
    observer: Forwarder,
) -> Pin<Box<dyn Future<Output = Ran> + Send>> {
    Box::pin(async move {
        let mut observer = observer;
        run_jobs(&workflow, opts, &mut observer).await
    })
}

/// Loads and checks the called workflow, and makes the nested run's options.
async fn prepare(
    opts: &RunOptions,
    call: &Call,
    ctx: &MapContext,
    instance: &Instance,
) -> Result<(Workflow, RunOptions), CallError> {
    let stack = &opts.calls;
    let (key, text, home) = load(opts, &call.target, &call.uses).await?;
    let mut chain = stack.chain.clone();
    chain.push(key.clone());
    if stack.chain.contains(&key) {
        return Err(CallError::Cycle { chain });
    }
    // The top workflow is level 1.
    if chain.len() + 1 > MAX_WORKFLOW_LEVELS {
        return Err(CallError::TooDeep { uses: call.uses.clone(), chain });
    }
    {
        // The set is whole even if a task panicked while holding it.
        let mut unique = stack.unique.lock().unwrap_or_else(PoisonError::into_inner);
        if !unique.contains(&key) && unique.len() >= MAX_UNIQUE_WORKFLOWS {
            return Err(CallError::TooMany { uses: call.uses.clone() });
        }
        unique.insert(key.clone());
    }
    let called = workflow::parse(&call.uses, &text)
        .map_err(|diagnostics| CallError::Invalid { uses: call.uses.clone(), diagnostics })?;
    let Some(declared) = &called.on.workflow_call else {
        return Err(CallError::NotCallable { uses: call.uses.clone() });
    };
    let mut nested = opts.clone();
    nested.inputs = inputs(call, declared, ctx)?;
    nested.secrets = secrets(call, declared, ctx, opts)?;
    nested.selected_jobs = Vec::new();
    nested.matrix_filter = Vec::new();
    // Its jobs' directories apart from the caller's run (instance numbers start again at 0);
    // artifacts and caches are the run's.
    nested.work_dir = opts.work_dir.join(format!("{}-call", instance.index));
    nested.store_dir = Some(opts.store());
    // Fail-fast of the caller's matrix and the run's cancellation reach the called jobs.
    nested.cancel = instance.cancel.clone();
    nested.calls = CallStack { chain, home, unique: stack.unique.clone() };
    nested.workflow_file = call.uses.clone();
    Ok((called, nested))
}

/// The called workflow's text, the key it is known by in chains, and where its own `./`
/// calls are read.
async fn load(
    opts: &RunOptions,
    target: &CallTarget,
    uses: &str,
) -> Result<(String, String, Option<RemoteHome>), CallError> {
    match (target, &opts.calls.home) {
        (CallTarget::Local { path }, None) => {
            Ok((format!("./{path}"), read_inside(&opts.workspace_source, path)?, None))
        }
        (CallTarget::Local { path }, Some(home)) => {
            let key = format!("{}/{path}@{}", home.repo, home.sha);
            Ok((key, read_inside(&home.dir, path)?, Some(home.clone())))
        }
        (CallTarget::Remote { repo, path, git_ref }, _) => {
            let cache = opts.actions.as_ref().ok_or_else(|| CallError::NoRepositories { uses: uses.to_owned() })?;
            let fetched = cache
                .fetch(repo, git_ref)
                .await
                .map_err(|source| CallError::Fetch { uses: uses.to_owned(), source })?;
            let text = read_inside(&fetched.dir, path)?;
            // Known by commit, so a tag and its SHA are one workflow in chains and counts.
            let key = format!("{repo}/{path}@{}", fetched.sha);
            Ok((key, text, Some(RemoteHome { repo: repo.clone(), sha: fetched.sha, dir: fetched.dir })))
        }
    }
}

/// `root/path`, which must resolve (links included) inside `root`.
fn read_inside(root: &Path, path: &str) -> Result<String, CallError> {
    let read = |source| CallError::Read { file: path.to_owned(), source };
    let root = root.canonicalize().map_err(read)?;
    let file = root.join(path).canonicalize().map_err(read)?;
    if !file.starts_with(&root) {
        return Err(CallError::Outside { path: path.to_owned() });
    }
    let size = std::fs::metadata(&file).map_err(read)?.len();
    if size > MAX_WORKFLOW_BYTES {
        return Err(CallError::TooLarge { file: path.to_owned(), size });
    }
    std::fs::read_to_string(&file).map_err(read)
}

/// The `inputs` context of the called workflow: `with:` rendered in the caller's context and
/// typed, then the defaults.
fn inputs(call: &Call, declared: &WorkflowCall, ctx: &MapContext) -> Result<Map<String, Value>, CallError> {
    let uses = || call.uses.clone();
    let mut inputs = Map::new();
    for arg in &call.with {
        let Some(input) = declared.inputs.iter().find(|i| i.name == arg.name) else {
            return Err(CallError::UnknownInput { name: arg.name.clone(), uses: uses() });
        };
        let value = evaluate(&arg.value, ctx).map_err(|source| CallError::Input { name: arg.name.clone(), source })?;
        inputs.insert(input.name.clone(), typed(input.kind, &input.name, value, &call.uses)?);
    }
    for input in &declared.inputs {
        if inputs.contains_key(&input.name) {
            continue;
        }
        let value = match &input.default {
            Some(default) => {
                let value =
                    evaluate(default, ctx).map_err(|source| CallError::Input { name: input.name.clone(), source })?;
                typed(input.kind, &input.name, value, &call.uses)?
            }
            None if input.required => return Err(CallError::MissingInput { name: input.name.clone(), uses: uses() }),
            None => match input.kind {
                CallInputKind::String => json!(""),
                CallInputKind::Boolean => json!(false),
                CallInputKind::Number => json!(0),
            },
        };
        inputs.insert(input.name.clone(), value);
    }
    Ok(inputs)
}

/// A `with:` value or default: a string with `${{ }}` is evaluated, one expression keeping its
/// type; anything else is as written.
fn evaluate(value: &Value, ctx: &MapContext) -> Result<Value, expr::ExprError> {
    match value {
        Value::String(text) if text.contains("${{") => {
            Ok(expr::evaluate_template(&expr::parse_template(text)?, ctx)?.to_json())
        }
        other => Ok(other.clone()),
    }
}

/// The value as the input's type, or why it is not of it. A string input takes any scalar,
/// as its text.
fn typed(kind: CallInputKind, name: &str, value: Value, uses: &str) -> Result<Value, CallError> {
    if !kind.accepts(&value) {
        let found = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "sequence",
            Value::Object(_) => "mapping",
        };
        return Err(CallError::WrongType {
            name: name.to_owned(),
            uses: uses.to_owned(),
            expected: kind.as_str(),
            found,
        });
    }
    Ok(match (kind, value) {
        (CallInputKind::String, Value::String(s)) => Value::String(s),
        (CallInputKind::String, other) => Value::String(expr::Value::from_json(&other).to_display_string()),
        (_, value) => value,
    })
}

/// The called workflow's `secrets` context.
fn secrets(
    call: &Call,
    declared: &WorkflowCall,
    ctx: &MapContext,
    opts: &RunOptions,
) -> Result<std::collections::BTreeMap<String, String>, CallError> {
    let uses = || call.uses.clone();
    let passed = match &call.secrets {
        CallSecrets::None => Default::default(),
        CallSecrets::Inherit => opts.secrets.clone(),
        CallSecrets::Map(pairs) => {
            let mut passed = std::collections::BTreeMap::new();
            for (name, template) in pairs {
                if !declared.secrets.iter().any(|s| &s.name == name) {
                    return Err(CallError::UnknownSecret { name: name.clone(), uses: uses() });
                }
                let value =
                    expr::render(template, ctx).map_err(|source| CallError::Secret { name: name.clone(), source })?;
                passed.insert(name.clone(), value);
            }
            passed
        }
    };
    if let Some(missing) = declared.secrets.iter().find(|s| s.required && !passed.contains_key(&s.name)) {
        return Err(CallError::MissingSecret { name: missing.name.clone(), uses: uses() });
    }
    Ok(passed)
}

/// The `jobs` context of `on.workflow_call.outputs`: each called job's result and outputs,
/// merged over its matrix instances as the `needs` context is.
fn jobs_context(ran: &Ran) -> Value {
    let mut jobs = Map::new();
    let ids: Vec<&str> = ran.instances.iter().map(|(r, _)| r.id.as_str()).collect();
    for id in ids {
        if jobs.contains_key(id) {
            continue;
        }
        let instances: Vec<&JobReport> = ran.instances.iter().map(|(r, _)| r).filter(|r| r.id == id).collect();
        let results: Vec<Status> = instances.iter().map(|r| r.result).collect();
        let result = [Status::Failure, Status::Cancelled, Status::Success]
            .into_iter()
            .find(|r| results.contains(r))
            .unwrap_or(Status::Skipped);
        let mut outputs = Map::new();
        for instance in &instances {
            outputs.extend(instance.outputs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));
        }
        jobs.insert(id.to_owned(), json!({ "result": result.as_str(), "outputs": outputs }));
    }
    Value::Object(jobs)
}

/// The nested run's observer: its events go to the caller's run with `caller / ` before each
/// job name.
struct Forwarder {
    sender: UnboundedSender<Event>,
    prefix: String,
}

impl Forwarder {
    fn name(&self, job: &str) -> String {
        format!("{} / {job}", self.prefix)
    }

    fn send(&self, event: Event) {
        // The caller's scheduler outlives its job tasks: a send fails only while it shuts down.
        let _ = self.sender.send(event);
    }
}

impl RunObserver for Forwarder {
    fn job_queued(&mut self, job: &str) {
        self.send(Event::JobQueued(self.name(job)));
    }
    fn job_waiting(&mut self, job: &str, environment: &str) {
        self.send(Event::JobWaiting(self.name(job), environment.to_owned()));
    }
    fn job_started(&mut self, job: &str) {
        self.send(Event::JobStarted(self.name(job)));
    }
    fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        self.send(Event::JobFinished(self.name(job), result, duration));
    }
    fn step_started(&mut self, job: &str, step: &str) {
        self.send(Event::StepStarted(self.name(job), step.to_owned()));
    }
    fn step_finished(&mut self, job: &str, step: &StepReport) {
        self.send(Event::StepFinished(self.name(job), step.clone()));
    }
    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.send(Event::Log(self.name(job), step.to_owned(), line.clone()));
    }
}
