//! A `uses:` step: the actions the engine runs itself (see [`super::super::actions`]), and
//! the others from their `action.yml` (JavaScript in [`super::node`], composite in
//! [`super::composite`]).

use super::*;
use crate::chain::Chain;
use crate::engine::actions::InputError;
use crate::engine::resolve::{ActionError, Loaded, MAX_COMPOSITE_DEPTH};
use crate::engine::security;
use crate::workflow::{ActionRuns, Pos};

/// What a `uses:` step is: its action, inputs, context and whether a failure stops the job.
pub(super) struct UsesStep<'a> {
    pub action: &'a str,
    pub with: &'a Pairs,
    pub ctx: &'a MapContext,
    pub continue_on_error: bool,
    /// The step's id (or `__<index>`).
    pub id: &'a str,
    pub name: &'a str,
    /// Where `uses:` is, for errors about the action.
    pub pos: Pos,
    /// The step's `timeout-minutes`.
    pub timeout: Option<Duration>,
}

/// Runs a `uses:` step: `(outcome, conclusion, outputs)`.
pub(super) async fn run(
    step: &UsesStep<'_>,
    step_env: BTreeMap<String, String>,
    scope: &Scope<'_>,
    cancel: &CancellationSignal,
    job: &mut JobRun,
) -> (Status, Status, BTreeMap<String, String>) {
    let UsesStep { action, with, ctx, continue_on_error, .. } = *step;
    let fail = failed_step;
    let (sink, masker, state, store) = (&mut job.sink, &job.masker, &mut job.state, &mut job.store);
    let deployments = job.deployments.as_ref();
    match actions::native(action) {
        Native::Other => from_manifest(step, step_env, scope, cancel, job).await,
        Native::Checkout => (Status::Success, Status::Success, BTreeMap::new()),
        kind @ (Native::Upload | Native::Download | Native::Cache) => {
            let name = actions::action_name(action);
            let Some(inputs) = render_inputs(name, with, ctx, sink, masker) else {
                return fail(continue_on_error);
            };
            match actions::run_store_action(&kind, &inputs, store) {
                Ok((outputs, log)) => {
                    for line in log {
                        sink.say(masker, &line);
                    }
                    (Status::Success, Status::Success, outputs)
                }
                Err(why) => {
                    sink.say(masker, &format!("{name} failed: {}", Chain(&why)));
                    fail(continue_on_error)
                }
            }
        }
        Native::RequireTool(tool) => {
            let mut dirs: Vec<PathBuf> = state.added_path().to_vec();
            dirs.extend(state.job_env().path.iter().cloned());
            if actions::on_path(tool, &dirs) {
                sink.say(
                    masker,
                    &format!("using `{tool}` from PATH; {} installs nothing", actions::action_name(action)),
                );
                for (name, value) in actions::tool_env(tool) {
                    sink.say(masker, &format!("exporting {name}={value}"));
                    state.export(name, value);
                }
                (Status::Success, Status::Success, BTreeMap::new())
            } else {
                sink.say(
                    masker,
                    &format!(
                        "`{tool}` is not on PATH: install it first, {} cannot install it here",
                        actions::action_name(action)
                    ),
                );
                fail(continue_on_error)
            }
        }
        Native::Deploy => {
            let name = actions::action_name(action);
            let asked = server_request(name, with, ctx, sink, masker, deployments, deploy::request);
            let Some((request, deployments)) = asked else { return fail(continue_on_error) };
            sink.say(
                masker,
                &format!("deploying {} to {} from artifact {}", request.service, request.environment, request.artifact),
            );
            let (progress, mut lines) = DeployProgress::channel();
            let mut deployment = deployments.deploy(request, progress);
            let result = loop {
                tokio::select! {
                    Some(line) = lines.recv() => sink.say(masker, &line),
                    result = &mut deployment => break Some(result),
                    () = cancel.cancelled() => break None,
                }
            };
            while let Ok(line) = lines.try_recv() {
                sink.say(masker, &line);
            }
            match result {
                Some(Ok(outcome)) => {
                    sink.say(masker, &outcome.summary);
                    (Status::Success, Status::Success, outcome.outputs)
                }
                Some(Err(why)) => {
                    sink.say(masker, &format!("{name} failed: {}", Chain(&why)));
                    fail(continue_on_error)
                }
                None => {
                    drop(deployment);
                    sink.say(
                        masker,
                        "cancelled: stopped waiting for the rollout, which goes on on the server \
                         (`mobius rollout status` follows it, `mobius rollout abort` stops it)",
                    );
                    (Status::Cancelled, Status::Cancelled, BTreeMap::new())
                }
            }
        }
        Native::PolicyCheck => {
            let name = actions::action_name(action);
            let asked = server_request(name, with, ctx, sink, masker, deployments, deploy::policy_request);
            let Some((request, deployments)) = asked else { return fail(continue_on_error) };
            let (service, environment) = (request.service.clone(), request.environment.clone());
            sink.say(masker, &format!("asking the error-budget policy about a deploy of {service} to {environment}"));
            let answer = tokio::select! {
                answer = deployments.check_policy(request) => answer,
                () = cancel.cancelled() => return (Status::Cancelled, Status::Cancelled, BTreeMap::new()),
            };
            match answer {
                Ok(message) => {
                    let said = if message.is_empty() { "the policy lets it through".to_owned() } else { message };
                    sink.say(masker, &said);
                    let outputs =
                        BTreeMap::from([("allowed".to_owned(), "true".to_owned()), ("message".to_owned(), said)]);
                    (Status::Success, Status::Success, outputs)
                }
                Err(why) => {
                    sink.say(masker, &format!("{name}: {}", Chain(&why)));
                    fail(continue_on_error)
                }
            }
        }
        kind @ (Native::SecretScan | Native::DependencyAudit) => {
            let name = actions::action_name(action);
            let Some(inputs) = render_inputs(name, with, ctx, sink, masker) else {
                return fail(continue_on_error);
            };
            let github = ctx.contexts.get("github").cloned().unwrap_or_default();
            let (source, files) = (job.source.clone(), store.files.clone());
            // The scanners read files and run git: on a thread of their own, off the runtime's
            // (no store is touched, so `mobius_log::blocking` has nothing to guard here).
            let (done, scanned) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new().name("mobius-gate".into()).spawn(move || {
                let result = match kind {
                    Native::SecretScan => security::secret_scan(&inputs, &github, &source, &files),
                    _ => security::dependency_audit(&inputs, &files),
                };
                // The step may have been cancelled meanwhile: nobody is waiting then.
                let _ = done.send(result);
            });
            if let Err(why) = spawned {
                sink.say(masker, &format!("{name} failed: cannot start the scan: {why}"));
                return fail(continue_on_error);
            }
            let result = tokio::select! {
                result = scanned => result,
                () = cancel.cancelled() => return (Status::Cancelled, Status::Cancelled, BTreeMap::new()),
            };
            match result {
                Ok(Ok(gate)) => {
                    // What was found is masked in every later line of the job too.
                    for secret in &gate.secrets {
                        if let Err(why) = masker.add("secret-scan finding", secret) {
                            tracing::warn!(error = %why, "cannot mask a secret-scan finding");
                        }
                    }
                    for line in &gate.log {
                        sink.say(masker, line);
                    }
                    if gate.failed {
                        let why = "findings at or above the threshold (`fail: false` reports without failing)";
                        sink.say(masker, &format!("{name} failed: {why}"));
                        let (outcome, conclusion, _) = fail(continue_on_error);
                        (outcome, conclusion, gate.outputs)
                    } else {
                        (Status::Success, Status::Success, gate.outputs)
                    }
                }
                Ok(Err(why)) => {
                    sink.say(masker, &format!("{name} failed: {}", Chain(&why)));
                    fail(continue_on_error)
                }
                Err(_) => {
                    sink.say(masker, &format!("{name} failed: the scan stopped without an answer"));
                    fail(continue_on_error)
                }
            }
        }
        Native::NotImplemented(why) => {
            sink.say(masker, &why);
            fail(continue_on_error)
        }
    }
}

/// What a step of a server action (`mobius/deploy`, `mobius/policy-check`) asks, from its
/// rendered inputs, and the server to ask; `None`, with the reason in the log, when an input
/// does not render or make a request, or the run has no server.
fn server_request<'d, T>(
    name: &str,
    with: &Pairs,
    ctx: &MapContext,
    sink: &mut ChannelSink,
    masker: &Masker,
    deployments: Option<&'d Arc<dyn Deployments>>,
    parse: fn(&BTreeMap<String, String>) -> Result<T, InputError>,
) -> Option<(T, &'d Arc<dyn Deployments>)> {
    let inputs = render_inputs(name, with, ctx, sink, masker)?;
    let request = match parse(&inputs) {
        Ok(request) => request,
        Err(why) => {
            sink.say(masker, &format!("{name}: {why}"));
            return None;
        }
    };
    let Some(deployments) = deployments else {
        sink.say(masker, NO_SERVER);
        return None;
    };
    Some((request, deployments))
}

/// A `uses:` step's `with:` inputs, rendered; `None` (and a line in the log) when one fails.
fn render_inputs(
    name: &str,
    with: &Pairs,
    ctx: &MapContext,
    sink: &mut ChannelSink,
    masker: &Masker,
) -> Option<BTreeMap<String, String>> {
    let mut inputs = BTreeMap::new();
    for (key, value) in with {
        match expr::render(value, ctx) {
            Ok(text) => {
                inputs.insert(key.clone(), text);
            }
            Err(why) => {
                sink.say(masker, &format!("{name}: cannot evaluate input `{key}`: {why}"));
                return None;
            }
        }
    }
    Some(inputs)
}

/// A step whose action is not built in: loaded (fetched before the job, or read from the
/// workspace now for `./path`) and run as its `action.yml` says.
async fn from_manifest(
    step: &UsesStep<'_>,
    step_env: BTreeMap<String, String>,
    scope: &Scope<'_>,
    cancel: &CancellationSignal,
    job: &mut JobRun,
) -> (Status, Status, BTreeMap<String, String>) {
    let fail = failed_step(step.continue_on_error);
    if scope.depth >= MAX_COMPOSITE_DEPTH {
        let why = ActionError::TooDeep { uses: step.action.to_owned() };
        let at = job.at(step.pos);
        job.say(&format!("{at}: {}", describe(&why)));
        return fail;
    }
    let workspace = job.state.job_env().workspace.clone();
    let mut said = Vec::new();
    let loaded = job.actions.load(step.action, &workspace, &mut said).await;
    for line in said {
        job.say(&line);
    }
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(why) => {
            let at = job.at(step.pos);
            job.say(&format!("{at}: {}", describe(&why)));
            return fail;
        }
    };
    let Some(inputs) = manifest_inputs(step, &loaded, job) else { return fail };
    match &loaded.manifest.runs {
        ActionRuns::Node(runs) => node::run_main(step, &loaded, runs, inputs, step_env, cancel, job).await,
        ActionRuns::Composite(steps) => {
            Box::pin(composite::run(step, &loaded, steps, inputs, step_env, scope, cancel, job)).await
        }
        // Refused when the manifest was read.
        ActionRuns::Docker => fail,
    }
}

/// The inputs of an action run from its `action.yml`: the step's `with:` rendered, then each
/// input's `default` (rendered in the step's context) for those not given. Names compare
/// without regard to case, as `INPUT_<NAME>` does on GitHub. Inputs the action does not declare
/// get GitHub's warning and are passed on anyway. `None` (with the reason logged) when a value
/// does not render.
pub(super) fn manifest_inputs(
    step: &UsesStep<'_>,
    loaded: &Loaded,
    job: &mut JobRun,
) -> Option<BTreeMap<String, String>> {
    let given = render_inputs(step.action, step.with, step.ctx, &mut job.sink, &job.masker)?;
    let declared = &loaded.manifest.inputs;
    let mut inputs = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (key, value) in given {
        match declared.iter().find(|d| d.name.eq_ignore_ascii_case(&key)) {
            Some(input) => {
                if let Some(message) = &input.deprecation {
                    job.say(&format!("warning: input '{}' has been deprecated with message: {message}", input.name));
                }
                inputs.insert(input.name.clone(), value);
            }
            None => {
                unexpected.push(format!("'{key}'"));
                inputs.insert(key, value);
            }
        }
    }
    if !unexpected.is_empty() {
        let valid: Vec<String> = declared.iter().map(|d| format!("'{}'", d.name)).collect();
        job.say(&format!(
            "warning: Unexpected input(s) {}, valid inputs are [{}]",
            unexpected.join(", "),
            valid.join(", ")
        ));
    }
    for input in declared {
        if inputs.contains_key(&input.name) {
            continue;
        }
        let Some(default) = &input.default else { continue };
        match expr::render(default, step.ctx) {
            Ok(value) => {
                inputs.insert(input.name.clone(), value);
            }
            Err(why) => {
                job.say(&format!("{}: cannot evaluate the default of input `{}`: {why}", step.action, input.name));
                return None;
            }
        }
    }
    Some(inputs)
}
