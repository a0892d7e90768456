//! Checks across the model: expressions, `needs`, matrix size, actions, step ids.

use std::collections::{HashMap, HashSet};

use super::matrix::{MAX_COMBINATIONS, MatrixError, expand_matrix};
use super::model::{Job, Pos, StepAction, Workflow};
use super::yaml::{Kind, Node};
use super::{Report, suggest};
use crate::expr::{self, Expr, Segment};

/// The actions Mobius implements natively, at any `@ref`.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "actions/checkout",
    "actions/cache",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/setup-python",
    "actions/setup-node",
    "actions/setup-go",
    "actions/setup-java",
    "dtolnay/rust-toolchain",
    "mobius/deploy",
    "mobius/policy-check",
    "mobius/secret-scan",
    "mobius/dependency-audit",
];

/// Parses every `${{ }}` in every string of the document, mapping keys included (`env` names,
/// matrix axes), and every `if:` (whose `${{ }}` is optional), reporting errors at the
/// expression's position in the file. The `jobs` context is refused outside
/// `on.workflow_call.outputs.<name>.value`, the only place GitHub has it.
pub(crate) fn expressions(r: &mut Report, node: &Node) {
    expressions_at(r, node, &mut Vec::new());
}

fn expressions_at<'n>(r: &mut Report, node: &'n Node, path: &mut Vec<&'n str>) {
    match &node.kind {
        Kind::Str(text) if text.contains("${{") => match expr::parse_template(text) {
            Err(e) => {
                let at = r.locate(node, text, e.column().unwrap_or(1));
                r.error(at, format!("invalid expression: {e}"));
            }
            Ok(segments) => {
                let uses_jobs = segments.iter().any(|s| matches!(s, Segment::Expression(e) if reads(e, "jobs")));
                if uses_jobs && !is_workflow_call_output(path) {
                    jobs_outside_outputs(r, node, text);
                }
            }
        },
        Kind::Seq(items) => items.iter().for_each(|i| expressions_at(r, i, path)),
        Kind::Map(entries) => {
            for (k, v) in entries {
                expressions(r, k);
                match (&v.kind, k.as_str()) {
                    (Kind::Str(text), Some("if")) if !text.contains("${{") => match expr::parse(text) {
                        Err(e) => {
                            let at = r.locate(v, text, e.column().unwrap_or(1));
                            r.error(at, format!("invalid expression in `if`: {e}"));
                        }
                        Ok(e) if reads(&e, "jobs") => jobs_outside_outputs(r, v, text),
                        Ok(_) => {}
                    },
                    _ => {
                        path.push(k.as_str().unwrap_or(""));
                        expressions_at(r, v, path);
                        path.pop();
                    }
                }
            }
        }
        _ => {}
    }
}

/// Whether the keys from the root lead to `on.workflow_call.outputs.<name>.value`.
fn is_workflow_call_output(path: &[&str]) -> bool {
    matches!(path, ["on", "workflow_call", "outputs", _, "value"])
}

fn jobs_outside_outputs(r: &mut Report, node: &Node, text: &str) {
    let column = text.find("jobs").map_or(1, |i| text[..i].chars().count() + 1);
    let at = r.locate(node, text, column);
    r.error(at, "the `jobs` context is only available in `on.workflow_call.outputs.<name>.value`".into());
}

/// Whether the expression reads the named context.
fn reads(e: &Expr, context: &str) -> bool {
    match e {
        Expr::Literal(_) => false,
        Expr::Context(name) => name == context,
        Expr::Property { target, .. } | Expr::Filter(target) | Expr::Not(target) => reads(target, context),
        Expr::Index { target, index } => reads(target, context) || reads(index, context),
        Expr::Binary { lhs, rhs, .. } => reads(lhs, context) || reads(rhs, context),
        Expr::Call { args, .. } => args.iter().any(|a| reads(a, context)),
    }
}

/// The checks that need the whole model.
pub(crate) fn workflow(r: &mut Report, w: &Workflow) {
    needs(r, w);
    for job in &w.jobs {
        steps(r, job);
        matrix_size(r, job);
    }
}

fn needs(r: &mut Report, w: &Workflow) {
    let ids: Vec<&str> = w.jobs.iter().map(|j| j.id.as_str()).collect();
    for job in &w.jobs {
        for (need, pos) in &job.needs {
            if !ids.contains(&need.as_str()) {
                let hint =
                    suggest(need, ids.iter().copied()).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                r.error(*pos, format!("job `{}` needs `{need}`, which is not defined{hint}", job.id));
            }
        }
    }
    // Depth-first search in file order; a back edge closes a cycle, reported once per set of
    // jobs at the first job of the cycle.
    let by_id: HashMap<&str, &Job> = w.jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    let mut done: HashSet<&str> = HashSet::new();
    let mut reported: HashSet<Vec<&str>> = HashSet::new();
    for job in &w.jobs {
        visit(r, &by_id, job.id.as_str(), &mut done, &mut reported);
    }
}

/// The search from one job. The path is an explicit stack, not recursion: a `needs` chain is as
/// long as the file makes it, and a few thousand jobs overflowed the thread's stack.
fn visit<'w>(
    r: &mut Report,
    by_id: &HashMap<&'w str, &'w Job>,
    root: &'w str,
    done: &mut HashSet<&'w str>,
    reported: &mut HashSet<Vec<&'w str>>,
) {
    if done.contains(root) || !by_id.contains_key(root) {
        return;
    }
    // The jobs on the current path, each with the index of its next need to follow, and
    // where each is on the path (a long path must not make every step a linear search).
    let mut path: Vec<(&'w str, usize)> = vec![(root, 0)];
    let mut on_path: HashMap<&'w str, usize> = HashMap::from([(root, 0)]);
    while let Some(&(id, next)) = path.last() {
        let Some(job) = by_id.get(id) else { return };
        let Some((need, _)) = job.needs.get(next) else {
            path.pop();
            on_path.remove(id);
            done.insert(id);
            continue;
        };
        if let Some(top) = path.last_mut() {
            top.1 += 1;
        }
        let Some((&key, _)) = by_id.get_key_value(need.as_str()) else { continue };
        if done.contains(key) {
            continue;
        }
        if let Some(&start) = on_path.get(key) {
            let cycle: Vec<&str> = path[start..].iter().map(|(id, _)| *id).collect();
            let mut sorted = cycle.clone();
            sorted.sort_unstable();
            if reported.insert(sorted) {
                let names: Vec<&str> = cycle.into_iter().chain([key]).collect();
                let pos = by_id.get(key).map_or(Pos { line: 1, column: 1 }, |j| j.pos);
                r.error(pos, format!("`needs` cycle: {}", names.join(" → ")));
            }
            continue;
        }
        on_path.insert(key, path.len());
        path.push((key, 0));
    }
}

fn steps(r: &mut Report, job: &Job) {
    let mut seen: HashSet<&str> = HashSet::new();
    for step in &job.steps {
        if let Some(id) = &step.id
            && !seen.insert(id.as_str())
        {
            r.error(step.pos, format!("duplicate step id `{id}` in job `{}`", job.id));
        }
        if let StepAction::Uses { action, pos, .. } = &step.action
            && let Some(why) = unsupported(action)
        {
            r.error(*pos, format!("unsupported action `{action}` in job `{}`: {why}", job.id));
        }
    }
}

/// Why `uses: action` cannot run, if it cannot: Docker actions (no container runtime here) and
/// references without an `@ref`. Built-in actions ([`SUPPORTED_ACTIONS`]) run natively; other
/// `owner/repo[/path]@ref` actions are fetched and `./path` ones read from the workspace when
/// the job runs, so only their shape is checked here.
pub fn unsupported(action: &str) -> Option<String> {
    if action.starts_with("docker://") {
        return Some("Docker actions are not supported: jobs run as host processes".into());
    }
    if action.starts_with("./") {
        return None;
    }
    if action.starts_with("../") {
        return Some("a local action must be a path in the workspace, starting with ./".into());
    }
    let Some((name, reference)) = action.split_once('@') else {
        return Some("a remote action needs an @ref (a tag, branch or commit SHA)".into());
    };
    if reference.is_empty() {
        return Some("a remote action needs an @ref (a tag, branch or commit SHA)".into());
    }
    if SUPPORTED_ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(name))
        || crate::remote::ActionRef::parse(action).is_some()
    {
        None
    } else {
        Some("not an action reference: use owner/repo[/path]@ref or ./path".into())
    }
}

/// The `with:` of an action whose inputs are known (the `mobius/*` actions):
/// each required input present, no unknown one. `uses_pos` is where a missing input is
/// reported; an unknown one is reported at its key.
pub(crate) fn action_inputs(r: &mut Report, action: &str, uses_pos: Pos, with: Option<&Node>, step: &str) {
    let name = action.split('@').next().unwrap_or(action);
    let (known, required) = match name.to_ascii_lowercase().as_str() {
        "mobius/deploy" => (crate::engine::DEPLOY_INPUTS, crate::engine::DEPLOY_REQUIRED),
        "mobius/policy-check" => (crate::engine::POLICY_INPUTS, crate::engine::POLICY_REQUIRED),
        "mobius/secret-scan" => (crate::engine::SECRET_SCAN_INPUTS, crate::engine::SECRET_SCAN_REQUIRED),
        "mobius/dependency-audit" => (crate::engine::DEPENDENCY_AUDIT_INPUTS, crate::engine::DEPENDENCY_AUDIT_REQUIRED),
        _ => return,
    };
    let entries: &[(Node, Node)] = match with.map(|w| &w.kind) {
        Some(Kind::Map(entries)) => entries,
        // A `with:` that is not a mapping is already an error of its own.
        Some(_) => return,
        None => &[],
    };
    let keys: Vec<(String, Pos)> = entries.iter().filter_map(|(k, _)| Some((k.scalar_string()?, k.pos))).collect();
    for (key, pos) in &keys {
        if !known.contains(&key.as_str()) {
            let hint = suggest(key, known.iter().copied()).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
            r.error(*pos, format!("unknown input `{key}` of `{name}` in {step} (inputs: {}){hint}", known.join(", ")));
        }
    }
    for input in required {
        if !keys.iter().any(|(key, _)| key == input) {
            r.error(uses_pos, format!("`{name}` needs input `{input}` in `with:` ({step})"));
        }
    }
}

fn matrix_size(r: &mut Report, job: &Job) {
    let Some(strategy) = &job.strategy else { return };
    match expand_matrix(strategy) {
        Ok(_) | Err(MatrixError::Dynamic) => {}
        Err(MatrixError::TooMany { count }) => r.error(
            job.pos,
            format!("matrix of job `{}` expands to {count} combinations (at most {MAX_COMBINATIONS})", job.id),
        ),
        Err(e) => r.error(job.pos, format!("matrix of job `{}`: {e}", job.id)),
    }
}

#[cfg(test)]
mod tests {
    use crate::workflow::lint;

    /// Keys are rendered at run time (`env` names, matrix axes), so lint parses them too; names
    /// and shells are values and were always checked.
    #[test]
    fn expressions_in_keys_names_and_shells_are_checked() {
        let text = "on: push\njobs:\n  t:\n    name: t ${{ matrix.x ) }}\n    runs-on: x\n    strategy:\n      \
                    matrix:\n        \"${{ inputs.a ] }}\": [1]\n    env:\n      \"${{ ( }}_HOME\": y\n    \
                    steps:\n      - shell: ${{ 'bash }}\n        run: 'true'\n";
        let found: Vec<String> = lint("w.yml", text).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "w.yml:4:26: error: invalid expression: unexpected `)` at column 16",
                "w.yml:8:23: error: invalid expression: unexpected `]` at column 14",
                "w.yml:10:8: error: invalid expression: unexpected end of expression",
                "w.yml:12:16: error: invalid expression: unterminated `${{` at column 1",
            ]
        );
    }

    /// Found by the property `long_needs_chains_are_checked`: the cycle search recursed once per
    /// job of a `needs` chain, and a few thousand jobs overflowed the stack.
    #[test]
    fn a_long_needs_chain_does_not_overflow_the_stack() {
        let jobs = 5_000;
        let mut text = "on: push\njobs:\n".to_owned();
        for i in 0..jobs {
            let need = if i == 0 { jobs - 1 } else { i - 1 };
            text.push_str(&format!("  j{i}:\n    needs: j{need}\n    runs-on: x\n    steps: [{{run: x}}]\n"));
        }
        let cycles: Vec<String> =
            lint("w.yml", &text).into_iter().filter(|d| d.message.contains("cycle")).map(|d| d.to_string()).collect();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        let expected = format!("w.yml:3:3: error: `needs` cycle: j0 → j{} → j{} → ", jobs - 1, jobs - 2);
        assert!(cycles[0].starts_with(&expected), "{}", cycles[0]);
    }
}
