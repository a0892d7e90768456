//! JavaScript actions (`runs.using: node16|node20|node24`): their `pre`, `main` and `post`
//! scripts, run with a Node.js found on the machine.
//!
//! As on GitHub's runner: inputs reach the script as `INPUT_<NAME>` (upper case, spaces as
//! `_`), with the action's defaults; it runs in the workspace with `GITHUB_ACTION_PATH`,
//! `GITHUB_ACTION` (the step's id), `GITHUB_ACTION_REPOSITORY` and `GITHUB_ACTION_REF`; its
//! environment files exist before it starts (the toolkit insists), and what it writes to
//! `GITHUB_STATE` comes back to its later scripts as `STATE_<name>`. `pre` scripts run before
//! the job's first step, for the job's own steps (not inside composite actions), when their
//! `pre-if` holds (default `always()`). A `post` script is queued when its `main` ran, and the
//! queue runs last first after the job's steps, whatever happened to them, when its `post-if`
//! holds (default `always()`) against the job's status then; a failing `pre` or `post` fails
//! the job.

use super::uses::{UsesStep, manifest_inputs};
use super::*;
use crate::engine::resolve::{Loaded, find_node, is_remote};
use crate::exec::StepResult;
use crate::workflow::{ActionRuns, Job, NodeRuns};

/// A `post` script waiting for the job's steps to end.
pub(super) struct Post {
    name: String,
    loaded: Arc<Loaded>,
    script: String,
    condition: String,
    node: PathBuf,
    env: BTreeMap<String, String>,
    ctx: MapContext,
    state: BTreeMap<String, String>,
    id: String,
}

/// Runs an action's `main` script; queues its `post`.
pub(super) async fn run_main(
    step: &UsesStep<'_>,
    loaded: &Arc<Loaded>,
    runs: &NodeRuns,
    inputs: BTreeMap<String, String>,
    step_env: BTreeMap<String, String>,
    cancel: &CancellationSignal,
    job: &mut JobRun,
) -> (Status, Status, BTreeMap<String, String>) {
    let node = match node_for(loaded, runs, job) {
        Ok(node) => node,
        Err(why) => {
            let at = job.at(step.pos);
            job.say(&format!("{at}: {why}"));
            return failed_step(step.continue_on_error);
        }
    };
    let env = action_env(loaded, &inputs, step.id, step_env);
    let mut state = job.pre_state.remove(step.id).unwrap_or_default();
    let script = Script { name: step.name, node: &node, loaded, file: &runs.main, env: &env, state: &state };
    let result = script.run(step.timeout, step.continue_on_error, cancel, job).await;
    if let Some(post) = &runs.post {
        state.extend(result.state.clone());
        job.posts.push(Post {
            name: format!("Post {}", step.name),
            loaded: loaded.clone(),
            script: post.clone(),
            condition: runs.post_if.clone().unwrap_or_else(|| "always()".into()),
            node,
            env,
            ctx: step.ctx.clone(),
            state,
            id: step.id.to_owned(),
        });
    }
    statuses(&result, result.outputs.clone())
}

/// Runs the `pre` scripts of the job's JavaScript actions from repositories; whether one
/// failed. Each is a step of the report, `Pre <step name>`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_pres(
    job: &Job,
    ctx: &MapContext,
    env: &BTreeMap<String, String>,
    run: &mut JobRun,
    cancel: &CancellationSignal,
    steps: &mut Vec<StepReport>,
    sender: &UnboundedSender<Event>,
    instance: &str,
) -> bool {
    let mut failed = false;
    for (index, step) in job.steps.iter().enumerate() {
        let StepAction::Uses { action, with, pos } = &step.action else { continue };
        if !is_remote(action) {
            continue;
        }
        // Preloaded: this finds it in the job's set without fetching.
        let Ok(loaded) = run.actions.load(action, Path::new("/"), &mut Vec::new()).await else { continue };
        let ActionRuns::Node(runs) = &loaded.manifest.runs else { continue };
        let Some(pre) = &runs.pre else { continue };
        let id = step.id.clone().unwrap_or_else(|| format!("__{index}"));
        let name = format!("Pre {}", step_name(step, ctx));
        run.sink.step = name.clone();
        let status = if failed { JobStatus::Failure } else { JobStatus::Success };
        let step_ctx = ctx.clone().with("env", json!(env)).with("steps", json!({})).with("job", job_context(status));
        let condition = runs.pre_if.as_deref().unwrap_or("always()");
        let holds = match expr::evaluate_condition(condition, &step_ctx.clone().with_status(status)) {
            Ok(holds) => holds,
            Err(why) => {
                run.say(&format!("cannot evaluate `pre-if` of {action}: {why}"));
                failed = true;
                false
            }
        };
        if !holds {
            continue;
        }
        let _ = sender.send(Event::StepStarted(instance.to_owned(), name.clone()));
        let step_env = render_env(&step.env, &step_ctx).unwrap_or_default();
        let step_ctx = with_env(&step_ctx, &step_env);
        let uses = UsesStep {
            action,
            with,
            ctx: &step_ctx,
            continue_on_error: false,
            id: &id,
            name: &name,
            pos: *pos,
            timeout: None,
        };
        let (outcome, conclusion) = match (manifest_inputs(&uses, &loaded, run), node_for(&loaded, runs, run)) {
            (Some(inputs), Ok(node)) => {
                let env = action_env(&loaded, &inputs, &id, step_env);
                let none = BTreeMap::new();
                let script = Script { name: &name, node: &node, loaded: &loaded, file: pre, env: &env, state: &none };
                let result = script.run(None, false, cancel, run).await;
                run.pre_state.insert(id.clone(), result.state.clone());
                let (outcome, conclusion, _) = statuses(&result, BTreeMap::new());
                (outcome, conclusion)
            }
            (_, Err(why)) => {
                let at = run.at(*pos);
                run.say(&format!("{at}: {why}"));
                (Status::Failure, Status::Failure)
            }
            (None, _) => (Status::Failure, Status::Failure),
        };
        failed |= conclusion == Status::Failure;
        let report = StepReport { id: format!("pre:{id}"), name, outcome, conclusion, outputs: BTreeMap::new() };
        let _ = sender.send(Event::StepFinished(instance.to_owned(), report.clone()));
        steps.push(report);
    }
    failed
}

/// Runs the queued `post` scripts, last first; whether one failed. `status` is the job's.
pub(super) async fn run_posts(
    mut status: JobStatus,
    run: &mut JobRun,
    steps: &mut Vec<StepReport>,
    sender: &UnboundedSender<Event>,
    instance: &str,
) -> bool {
    let mut failed = false;
    while let Some(post) = run.posts.pop() {
        run.sink.step = post.name.clone();
        let ctx = post.ctx.clone().with("job", job_context(status)).with_status(status);
        let holds = match expr::evaluate_condition(&post.condition, &ctx) {
            Ok(holds) => holds,
            Err(why) => {
                run.say(&format!("cannot evaluate `post-if` of {}: {why}", post.loaded.uses));
                false
            }
        };
        if !holds {
            continue;
        }
        let _ = sender.send(Event::StepStarted(instance.to_owned(), post.name.clone()));
        let script = Script {
            name: &post.name,
            node: &post.node,
            loaded: &post.loaded,
            file: &post.script,
            env: &post.env,
            state: &post.state,
        };
        // The job's cancellation is behind it: a post script runs to its end.
        let result = script.run(None, false, &CancellationSignal::new(), run).await;
        let (outcome, conclusion, _) = statuses(&result, BTreeMap::new());
        if conclusion == Status::Failure {
            failed = true;
            status = JobStatus::Failure;
        }
        let id = format!("post:{}", post.id);
        let report = StepReport { id, name: post.name, outcome, conclusion, outputs: BTreeMap::new() };
        let _ = sender.send(Event::StepFinished(instance.to_owned(), report.clone()));
        steps.push(report);
    }
    failed
}

/// The Node.js for the action, or why there is none.
fn node_for(loaded: &Loaded, runs: &NodeRuns, job: &JobRun) -> Result<PathBuf, String> {
    let mut path: Vec<PathBuf> = job.state.added_path().to_vec();
    path.extend(job.state.job_env().path.iter().cloned());
    find_node(&loaded.uses, &runs.using, runs.major, &path).map_err(|why| why.to_string())
}

/// The environment of an action's scripts: the step's `env`, the inputs, and the variables
/// naming the action.
fn action_env(
    loaded: &Loaded,
    inputs: &BTreeMap<String, String>,
    id: &str,
    mut env: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    for (name, value) in inputs {
        env.insert(format!("INPUT_{}", name.replace(' ', "_").to_uppercase()), value.clone());
    }
    env.insert("GITHUB_ACTION".into(), id.to_owned());
    env.insert("GITHUB_ACTION_PATH".into(), loaded.dir.display().to_string());
    if let Some((repo, sha)) = &loaded.origin {
        env.insert("GITHUB_ACTION_REPOSITORY".into(), repo.clone());
        env.insert("GITHUB_ACTION_REF".into(), sha.clone());
    }
    env
}

/// One script of an action, ready to run.
struct Script<'a> {
    name: &'a str,
    node: &'a Path,
    loaded: &'a Loaded,
    file: &'a str,
    env: &'a BTreeMap<String, String>,
    state: &'a BTreeMap<String, String>,
}

impl Script<'_> {
    async fn run(
        &self,
        timeout: Option<Duration>,
        continue_on_error: bool,
        cancel: &CancellationSignal,
        job: &mut JobRun,
    ) -> StepResult {
        let mut env = self.env.clone();
        env.extend(self.state.iter().map(|(k, v)| (format!("STATE_{k}"), v.clone())));
        let entry = self.loaded.dir.join(self.file);
        let spec = StepSpec {
            name: self.name.to_owned(),
            script: String::new(),
            shell: Shell::Bash,
            working_directory: None,
            env,
            timeout,
            continue_on_error,
            program: Some(vec![self.node.display().to_string(), entry.display().to_string()]),
        };
        run_step(&mut job.state, &spec, &mut job.sink, cancel.clone()).await
    }
}
