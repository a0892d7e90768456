//! Composite actions (`runs.using: composite`): their steps run as part of the calling step.
//!
//! As on GitHub: the steps see the action's `inputs` (with defaults) and their own `steps`
//! context, `github.action_path` and `GITHUB_ACTION_PATH`; they inherit the calling step's
//! `env`; a `run:` step names its `shell` (the workflow's and job's `defaults.run` do not
//! apply) and runs in the workspace unless it says otherwise; `if:` has the implicit
//! `success()` of the steps before it in the action. The action's `outputs` are rendered from
//! its steps' outputs. Nested composite actions run the same way, up to
//! [`MAX_COMPOSITE_DEPTH`](crate::engine::resolve::MAX_COMPOSITE_DEPTH) levels.

use super::uses::UsesStep;
use super::*;
use crate::engine::resolve::Loaded;

/// Runs the steps of a composite action for the calling `step`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    step: &UsesStep<'_>,
    loaded: &Arc<Loaded>,
    inner: &[Step],
    inputs: BTreeMap<String, String>,
    step_env: BTreeMap<String, String>,
    scope: &Scope<'_>,
    cancel: &CancellationSignal,
    job: &mut JobRun,
) -> (Status, Status, BTreeMap<String, String>) {
    let action_path = loaded.dir.display().to_string();
    let mut github = step.ctx.context("github").unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut github {
        map.insert("action_path".into(), Value::String(action_path.clone()));
    }
    let base = step.ctx.clone().with("github", github).with("inputs", json!(inputs));
    let mut env = step_env;
    env.insert("GITHUB_ACTION_PATH".into(), action_path);
    let inner_scope = Scope { defaults: Vec::new(), env, depth: scope.depth + 1 };
    let mut steps_ctx = Map::new();
    let mut failed = false;
    let outer_step = job.sink.step.clone();
    for (index, inner_step) in inner.iter().enumerate() {
        let id = inner_step.id.clone().unwrap_or_else(|| format!("__{index}"));
        let name = step_name(inner_step, &base);
        let status = status_now(cancel.is_cancelled(), failed);
        let ctx = base.clone().with("steps", Value::Object(steps_ctx.clone())).with_status(status);
        let condition = inner_step.if_.as_deref().unwrap_or("");
        let holds = match expr::evaluate_condition(condition, &ctx) {
            Ok(holds) => holds,
            Err(why) => {
                job.say(&format!("{}: step {name}: cannot evaluate `if:`: {why}", loaded.uses));
                failed = true;
                false
            }
        };
        let (outcome, conclusion, outputs) = if holds {
            run_one(inner_step, &id, &name, &ctx, &inner_scope, cancel, job).await
        } else {
            (Status::Skipped, Status::Skipped, BTreeMap::new())
        };
        job.sink.step = outer_step.clone();
        failed |= conclusion == Status::Failure;
        steps_ctx
            .insert(id, json!({ "outputs": outputs, "outcome": outcome.as_str(), "conclusion": conclusion.as_str() }));
    }
    let out_ctx = base.with("steps", Value::Object(steps_ctx));
    let mut outputs = BTreeMap::new();
    for (name, value) in &loaded.manifest.outputs {
        let Some(value) = value else { continue };
        match expr::render(value, &out_ctx) {
            Ok(text) => {
                outputs.insert(name.clone(), text);
            }
            Err(why) => job.say(&format!("{}: cannot evaluate output `{name}`: {why}", loaded.uses)),
        }
    }
    let outcome = if cancel.is_cancelled() && !failed {
        Status::Cancelled
    } else if failed {
        Status::Failure
    } else {
        Status::Success
    };
    let conclusion = match outcome {
        Status::Failure if step.continue_on_error => Status::Success,
        other => other,
    };
    (outcome, conclusion, outputs)
}
