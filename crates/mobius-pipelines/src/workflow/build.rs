//! Builds the [`Workflow`] model from the YAML tree, reporting unknown keys and wrong types.
//!
//! Building never stops at the first problem: a bad field is reported and left at its
//! default so that one `mobius lint` run shows everything.

use serde_json::Value;

use super::call::CALLING_JOB_KEYS;
use super::model::*;
use super::yaml::{Kind, Node};
use super::{Report, entries, suggest, triggers};

const WORKFLOW_KEYS: &[&str] =
    &["name", "run-name", "on", "env", "defaults", "permissions", "concurrency", "jobs", "description"];
const JOB_KEYS: &[&str] = &[
    "name",
    "needs",
    "if",
    "runs-on",
    "environment",
    "strategy",
    "timeout-minutes",
    "cancel-timeout-minutes",
    "continue-on-error",
    "outputs",
    "env",
    "defaults",
    "concurrency",
    "steps",
    "permissions",
    "container",
    "services",
    "uses",
    "with",
    "secrets",
    "snapshot",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "if",
    "run",
    "uses",
    "with",
    "shell",
    "working-directory",
    "env",
    "continue-on-error",
    "timeout-minutes",
];

/// The workflow, or `None` if the document is not a mapping.
pub(crate) fn workflow(r: &mut Report, root: &Node) -> Option<Workflow> {
    let map = mapping(r, root, "the workflow")?;
    check_keys(r, map, WORKFLOW_KEYS, "the workflow");
    let mut w = Workflow::default();
    let mut saw_on = false;
    let mut saw_jobs = false;
    for (key, value) in map {
        match key.as_str().unwrap_or("") {
            "name" => w.name = string(r, value, "name"),
            "run-name" => w.run_name = string(r, value, "run-name"),
            "on" => {
                saw_on = true;
                w.on = triggers::triggers(r, value);
            }
            "env" => w.env = pairs(r, value, "env"),
            "defaults" => w.defaults = defaults(r, value),
            "permissions" => w.permissions = Some(value.to_json()),
            "concurrency" => w.concurrency = concurrency(r, value),
            "jobs" => {
                saw_jobs = true;
                if let Some(jobs) = mapping(r, value, "jobs") {
                    w.jobs = jobs.iter().filter_map(|(k, v)| job(r, k, v)).collect();
                }
            }
            _ => {}
        }
    }
    if !saw_on {
        r.error(root.pos, "missing required key `on`".into());
    }
    if !saw_jobs {
        r.error(root.pos, "missing required key `jobs`".into());
    }
    Some(w)
}

fn job(r: &mut Report, key: &Node, node: &Node) -> Option<Job> {
    let id = key.scalar_string()?;
    let what = format!("job `{id}`");
    let map = mapping(r, node, &what)?;
    check_keys(r, map, JOB_KEYS, &what);
    let mut job = Job {
        id: id.clone(),
        pos: key.pos,
        name: None,
        needs: Vec::new(),
        if_: None,
        runs_on: None,
        environment: None,
        strategy: None,
        timeout_minutes: Setting::Value(360.0),
        continue_on_error: Setting::Value(false),
        outputs: Vec::new(),
        env: Vec::new(),
        defaults: RunDefaults::default(),
        concurrency: None,
        steps: Vec::new(),
        uses: None,
    };
    // `None`: no `steps` key; `Some(n)`: a list of n entries (or a wrongly typed value,
    // already reported, counted as 1 so it is not also "no steps").
    let mut written_steps: Option<usize> = None;
    for (k, v) in map {
        match k.as_str().unwrap_or("") {
            "name" => job.name = string(r, v, "name"),
            "needs" => job.needs = strings_at(r, v, "needs"),
            "if" => job.if_ = string(r, v, "if"),
            "runs-on" => job.runs_on = Some(v.to_json()),
            "environment" => job.environment = environment(r, v),
            "strategy" => job.strategy = strategy(r, v),
            "timeout-minutes" => {
                if let Some(t) = number(r, v, "timeout-minutes") {
                    job.timeout_minutes = t;
                }
            }
            "continue-on-error" => {
                if let Some(b) = boolean(r, v, "continue-on-error") {
                    job.continue_on_error = b;
                }
            }
            "outputs" => job.outputs = pairs(r, v, "outputs"),
            "env" => job.env = pairs(r, v, "env"),
            "defaults" => job.defaults = defaults(r, v),
            "concurrency" => job.concurrency = concurrency(r, v),
            "steps" => {
                written_steps = Some(1);
                if let Kind::Seq(items) = &v.kind {
                    written_steps = Some(items.len());
                    job.steps = items.iter().filter_map(|s| step(r, s, &what)).collect();
                } else {
                    type_error(r, v, "steps", "a sequence");
                }
            }
            "snapshot" => snapshot(r, v),
            "container" | "services" => r.error(
                k.pos,
                format!("`{}` is not supported: jobs run as host processes (job `{id}`)", k.as_str().unwrap_or("")),
            ),
            _ => {}
        }
    }
    let value = |name: &str| map.iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v);
    match value("uses") {
        Some(uses) => {
            // As GitHub's schema: a calling job is a different kind of job, not a job with steps.
            for (k, _) in map {
                let name = k.as_str().unwrap_or("");
                if JOB_KEYS.contains(&name) && !CALLING_JOB_KEYS.contains(&name) {
                    r.error(
                        k.pos,
                        format!(
                            "`{name}` is not allowed on job `{id}`, which calls a reusable workflow (allowed: {})",
                            CALLING_JOB_KEYS.join(", ")
                        ),
                    );
                }
            }
            job.uses = super::call::call(r, uses, value("with"), value("secrets"), &id);
        }
        None => {
            for (k, _) in map.iter().filter(|(k, _)| matches!(k.as_str(), Some("with" | "secrets"))) {
                let name = k.as_str().unwrap_or("");
                r.error(k.pos, format!("`{name}` of job `{id}` goes with `uses:` (a reusable workflow call)"));
            }
            if written_steps.unwrap_or(0) == 0 {
                r.error(key.pos, format!("job `{id}` has no steps"));
            }
        }
    }
    Some(job)
}

/// One step of `owner` (``job `build` ``, `the composite action`).
pub(crate) fn step(r: &mut Report, node: &Node, owner: &str) -> Option<Step> {
    let what = format!("a step of {owner}");
    let map = mapping(r, node, &what)?;
    check_keys(r, map, STEP_KEYS, &what);
    let mut step = Step {
        pos: node.pos,
        id: None,
        name: None,
        action: StepAction::Run(String::new()),
        shell: None,
        working_directory: None,
        env: Vec::new(),
        if_: None,
        continue_on_error: Setting::Value(false),
        timeout_minutes: None,
    };
    let mut run = None;
    let mut uses = None;
    let mut with = Vec::new();
    let mut with_node = None;
    for (k, v) in map {
        match k.as_str().unwrap_or("") {
            "id" => step.id = string(r, v, "id"),
            "name" => step.name = string(r, v, "name"),
            "if" => step.if_ = string(r, v, "if"),
            "run" => run = string(r, v, "run"),
            "uses" => uses = string(r, v, "uses").map(|u| (u, v.pos)),
            "with" => {
                with = pairs(r, v, "with");
                with_node = Some(v);
            }
            "shell" => step.shell = string(r, v, "shell"),
            "working-directory" => step.working_directory = string(r, v, "working-directory"),
            "env" => step.env = pairs(r, v, "env"),
            "continue-on-error" => {
                if let Some(b) = boolean(r, v, "continue-on-error") {
                    step.continue_on_error = b;
                }
            }
            "timeout-minutes" => step.timeout_minutes = number(r, v, "timeout-minutes"),
            _ => {}
        }
    }
    let label = step.id.clone().or(step.name.clone()).map_or(String::new(), |n| format!(" `{n}`"));
    step.action = match (run, uses) {
        (Some(script), None) => StepAction::Run(script),
        (None, Some((action, pos))) => {
            super::checks::action_inputs(r, &action, pos, with_node, &format!("step{label} of {owner}"));
            StepAction::Uses { action, with, pos }
        }
        (Some(_), Some(_)) => {
            r.error(node.pos, format!("step{label} of {owner} has both `run` and `uses`"));
            return None;
        }
        (None, None) => {
            r.error(node.pos, format!("step{label} of {owner} has neither `run` nor `uses`"));
            return None;
        }
    };
    Some(step)
}

fn strategy(r: &mut Report, node: &Node) -> Option<Strategy> {
    let map = mapping(r, node, "strategy")?;
    check_keys(r, map, &["matrix", "fail-fast", "max-parallel"], "strategy");
    let mut strategy = Strategy { matrix: None, fail_fast: Setting::Value(true), max_parallel: None };
    for (k, v) in map {
        match k.as_str().unwrap_or("") {
            "matrix" => strategy.matrix = matrix(r, v),
            "fail-fast" => {
                if let Some(b) = boolean(r, v, "fail-fast") {
                    strategy.fail_fast = b;
                }
            }
            "max-parallel" => strategy.max_parallel = number(r, v, "max-parallel"),
            _ => {}
        }
    }
    Some(strategy)
}

fn matrix(r: &mut Report, node: &Node) -> Option<MatrixSpec> {
    if let Some(text) = expression_string(node) {
        return Some(MatrixSpec::Expr(text));
    }
    let map = mapping(r, node, "matrix")?;
    let entries: Vec<(String, Value)> =
        map.iter().map(|(k, v)| (k.scalar_string().unwrap_or_default(), v.to_json())).collect();
    if entries.iter().any(|(k, v)| k.contains("${{") || has_expression(v)) {
        // One computed part (a value, or an axis's name) makes the whole matrix known only at
        // run time.
        return Some(MatrixSpec::Computed(entries));
    }
    let mut m = Matrix::default();
    for (k, v) in map {
        let name = k.scalar_string().unwrap_or_default();
        match (name.as_str(), &v.kind) {
            ("include" | "exclude", Kind::Seq(items)) => {
                let mut list = Vec::new();
                for item in items {
                    match item.to_json() {
                        Value::Object(o) => list.push(o),
                        _ => type_error(r, item, &format!("matrix.{name} entry"), "a mapping"),
                    }
                }
                if name == "include" { m.include = list } else { m.exclude = list }
            }
            ("include" | "exclude", _) => type_error(r, v, &format!("matrix.{name}"), "a sequence"),
            (_, Kind::Seq(items)) => m.axes.push((name, items.iter().map(Node::to_json).collect())),
            _ => type_error(r, v, &format!("matrix.{name}"), "a sequence"),
        }
    }
    Some(MatrixSpec::Static(m))
}

fn defaults(r: &mut Report, node: &Node) -> RunDefaults {
    let mut d = RunDefaults::default();
    let Some(map) = mapping(r, node, "defaults") else { return d };
    check_keys(r, map, &["run"], "defaults");
    for (k, v) in map {
        if k.as_str() == Some("run") {
            let Some(run) = mapping(r, v, "defaults.run") else { continue };
            check_keys(r, run, &["shell", "working-directory"], "defaults.run");
            for (k, v) in run {
                match k.as_str().unwrap_or("") {
                    "shell" => d.shell = string(r, v, "shell"),
                    "working-directory" => d.working_directory = string(r, v, "working-directory"),
                    _ => {}
                }
            }
        }
    }
    d
}

fn concurrency(r: &mut Report, node: &Node) -> Option<Concurrency> {
    if let Kind::Str(group) = &node.kind {
        return Some(Concurrency { group: group.clone(), cancel_in_progress: Setting::Value(false) });
    }
    let map = mapping(r, node, "concurrency")?;
    check_keys(r, map, &["group", "cancel-in-progress"], "concurrency");
    let mut c = Concurrency { group: String::new(), cancel_in_progress: Setting::Value(false) };
    for (k, v) in map {
        match k.as_str().unwrap_or("") {
            "group" => c.group = string(r, v, "group").unwrap_or_default(),
            "cancel-in-progress" => {
                if let Some(b) = boolean(r, v, "cancel-in-progress") {
                    c.cancel_in_progress = b;
                }
            }
            _ => {}
        }
    }
    if c.group.is_empty() {
        r.error(node.pos, "`concurrency` needs a `group`".into());
    }
    Some(c)
}

/// `snapshot`: an image name, or `image-name` (required) with `version`. GitHub makes a custom
/// runner image of a larger runner from the job; accepted and ignored here.
fn snapshot(r: &mut Report, node: &Node) {
    if entries(node).is_none() {
        string(r, node, "snapshot");
        return;
    }
    let Some(map) = mapping(r, node, "snapshot") else { return };
    check_keys(r, map, &["image-name", "version"], "snapshot");
    for (k, v) in map {
        string(r, v, &format!("snapshot.{}", k.as_str().unwrap_or("")));
    }
    if !map.iter().any(|(k, _)| k.as_str() == Some("image-name")) {
        r.error(node.pos, "`snapshot` needs an `image-name`".into());
    }
}

fn environment(r: &mut Report, node: &Node) -> Option<String> {
    if let Some(map) = entries(node) {
        check_keys(r, map, &["name", "url", "deployment"], "environment");
        return map
            .iter()
            .find(|(k, _)| k.as_str() == Some("name"))
            .and_then(|(_, v)| string(r, v, "environment.name"));
    }
    string(r, node, "environment")
}

// ---- shared helpers ----

/// The string of a node holding only a `${{ }}` expression.
/// Whether a string anywhere in `value`, or a key of a mapping in it, holds a `${{ }}`
/// expression.
fn has_expression(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${{"),
        Value::Array(items) => items.iter().any(has_expression),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains("${{") || has_expression(v)),
        _ => false,
    }
}

fn expression_string(node: &Node) -> Option<String> {
    let s = node.as_str()?.trim();
    (s.starts_with("${{") && s.ends_with("}}")).then(|| s.to_string())
}

pub(crate) fn check_keys(r: &mut Report, map: &[(Node, Node)], known: &[&str], what: &str) {
    for (key, _) in map {
        let name = key.scalar_string().unwrap_or_default();
        if known.contains(&name.as_str()) {
            continue;
        }
        let hint = suggest(&name, known.iter().copied()).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
        r.error(key.pos, format!("unknown key `{name}` in {what}{hint}"));
    }
}

pub(crate) fn mapping<'n>(r: &mut Report, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
    let found = entries(node);
    if found.is_none() {
        type_error(r, node, what, "a mapping");
    }
    found
}

pub(crate) fn type_error(r: &mut Report, node: &Node, key: &str, expected: &str) {
    r.error(node.pos, format!("`{key}` must be {expected}, not a {}", node.type_name()));
}

/// A scalar as a string; sequences and mappings are type errors.
pub(crate) fn string(r: &mut Report, node: &Node, key: &str) -> Option<String> {
    let s = node.scalar_string();
    if s.is_none() {
        type_error(r, node, key, "a string");
    }
    s
}

/// A string or a sequence of strings (`needs: build`, `branches: [main]`), with positions.
pub(crate) fn strings_at(r: &mut Report, node: &Node, key: &str) -> Vec<(String, Pos)> {
    match &node.kind {
        Kind::Seq(items) => items.iter().filter_map(|i| string(r, i, key).map(|s| (s, i.pos))).collect(),
        _ => string(r, node, key).map(|s| vec![(s, node.pos)]).unwrap_or_default(),
    }
}

/// Like [`strings_at`] without positions.
pub(crate) fn strings(r: &mut Report, node: &Node, key: &str) -> Vec<String> {
    strings_at(r, node, key).into_iter().map(|(s, _)| s).collect()
}

/// A mapping of scalars (`env`, `with`, `outputs`).
pub(crate) fn pairs(r: &mut Report, node: &Node, key: &str) -> Pairs {
    if let Some(expression) = expression_string(node) {
        // `env: ${{ fromJSON(...) }}` is legal and known only at run time: one entry with an
        // empty name stands for it (see `Job::env`). Nowhere else is a whole mapping one
        // expression.
        if key == "env" {
            return vec![(String::new(), expression)];
        }
        r.error(node.pos, format!("`{key}` must be a mapping, not one expression"));
        return Vec::new();
    }
    let Some(map) = mapping(r, node, key) else { return Vec::new() };
    map.iter()
        .filter_map(|(k, v)| {
            let name = k.scalar_string()?;
            let value = string(r, v, &format!("{key}.{name}"))?;
            Some((name, value))
        })
        .collect()
}

pub(crate) fn boolean(r: &mut Report, node: &Node, key: &str) -> Option<Setting<bool>> {
    match &node.kind {
        Kind::Bool(b) => Some(Setting::Value(*b)),
        _ => match expression_string(node) {
            Some(e) => Some(Setting::Expr(e)),
            None => {
                type_error(r, node, key, "a boolean");
                None
            }
        },
    }
}

pub(crate) fn number(r: &mut Report, node: &Node, key: &str) -> Option<Setting<f64>> {
    match &node.kind {
        Kind::Int(i) => Some(Setting::Value(*i as f64)),
        Kind::Float(f) => Some(Setting::Value(*f)),
        _ => match expression_string(node) {
            Some(e) => Some(Setting::Expr(e)),
            None => {
                type_error(r, node, key, "a number");
                None
            }
        },
    }
}
