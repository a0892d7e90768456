//! A `uses:` step: the actions the engine runs itself (see [`super::super::actions`]).

use super::*;
use crate::chain::Chain;
use crate::engine::actions::InputError;

/// What a `uses:` step is: its action, inputs, context and whether a failure stops the job.
pub(super) struct UsesStep<'a> {
    pub action: &'a str,
    pub with: &'a Pairs,
    pub ctx: &'a MapContext,
    pub continue_on_error: bool,
}

/// Runs a `uses:` step: `(outcome, conclusion, outputs)`.
pub(super) async fn run(
    step: &UsesStep<'_>,
    state: &mut JobState,
    sink: &mut ChannelSink,
    masker: &Masker,
    cancel: &CancellationSignal,
    store: &mut actions::StoreCtx,
    deployments: Option<&Arc<dyn Deployments>>,
) -> (Status, Status, BTreeMap<String, String>) {
    let UsesStep { action, with, ctx, continue_on_error } = *step;
    let fail = |continue_on_error: bool| {
        let conclusion = if continue_on_error { Status::Success } else { Status::Failure };
        (Status::Failure, conclusion, BTreeMap::new())
    };
    match actions::native(action) {
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
