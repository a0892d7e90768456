//! Action metadata files (`action.yml`): what an action takes, gives and runs.
//!
//! Read with the same positioned YAML tree as workflows, so a malformed file gets errors at
//! `action.yml:line:col`: unknown keys with suggestions, wrong types, a `runs.using` that is not
//! `node16`/`node20`/`node24`/`composite`/`docker`, a JavaScript action without `main`, and a
//! composite `run:` step without `shell` (GitHub requires it there).

use super::build::{check_keys, mapping, step, string};
use super::model::{Pos, Step, StepAction};
use super::yaml::{self, Kind, Node};
use super::{Diagnostic, Report, Severity};

const ACTION_KEYS: &[&str] = &["name", "author", "description", "inputs", "outputs", "runs", "branding"];
const INPUT_KEYS: &[&str] = &["description", "required", "default", "deprecationMessage"];
const OUTPUT_KEYS: &[&str] = &["description", "value"];
const RUNS_KEYS: &[&str] = &[
    "using",
    "main",
    "pre",
    "pre-if",
    "post",
    "post-if",
    "steps",
    "image",
    "args",
    "env",
    "entrypoint",
    "pre-entrypoint",
    "post-entrypoint",
];

/// An action's `action.yml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionManifest {
    /// `name`.
    pub name: Option<String>,
    /// `inputs`, in file order.
    pub inputs: Vec<ActionInput>,
    /// `outputs`: names with their `value` (composite actions map step outputs so).
    pub outputs: Vec<(String, Option<String>)>,
    /// `runs`.
    pub runs: ActionRuns,
}

/// One of an action's `inputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionInput {
    /// Its name as written (`INPUT_<NAME>` upper-cases it).
    pub name: String,
    /// `default`, a template.
    pub default: Option<String>,
    /// `required`. GitHub does not enforce it (the action does, through the toolkit).
    pub required: bool,
    /// `deprecationMessage`: a warning when the input is given.
    pub deprecation: Option<String>,
}

/// What the action runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionRuns {
    /// `using: node16|node20|node24`.
    Node(NodeRuns),
    /// `using: composite`.
    Composite(Vec<Step>),
    /// `using: docker`; Mobius has no container runtime.
    Docker,
}

/// The scripts of a JavaScript action, relative to the action's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRuns {
    /// `using`, e.g. `node20`.
    pub using: String,
    /// The Node.js major version it asks for (20 for `node20`).
    pub major: u32,
    /// `main`.
    pub main: String,
    /// `pre`.
    pub pre: Option<String>,
    /// `pre-if` (default `always()`).
    pub pre_if: Option<String>,
    /// `post`.
    pub post: Option<String>,
    /// `post-if` (default `always()`).
    pub post_if: Option<String>,
}

/// Parses an `action.yml`; `path` labels the diagnostics (warnings are dropped).
pub fn parse_action(path: &str, text: &str) -> Result<ActionManifest, Vec<Diagnostic>> {
    let mut report = Report::new(text);
    let manifest = match yaml::load(text) {
        Ok(root) => {
            let manifest = manifest(&mut report, &root);
            super::checks::expressions(&mut report, &root);
            manifest
        }
        Err(err) => {
            report.error(err.pos, format!("invalid YAML: {}", err.message));
            None
        }
    };
    let errors: Vec<Diagnostic> = report
        .items
        .into_iter()
        .filter(|(_, severity, _)| *severity == Severity::Error)
        .map(|(pos, severity, message)| Diagnostic {
            path: path.to_owned(),
            line: pos.line,
            column: pos.column,
            severity,
            message,
        })
        .collect();
    match manifest {
        Some(manifest) if errors.is_empty() => Ok(manifest),
        Some(_) => Err(errors),
        None if errors.is_empty() => Err(vec![Diagnostic {
            path: path.to_owned(),
            line: 1,
            column: 1,
            severity: Severity::Error,
            message: "not an action: the file must be a mapping with `runs`".into(),
        }]),
        None => Err(errors),
    }
}

fn manifest(r: &mut Report, root: &Node) -> Option<ActionManifest> {
    let map = mapping(r, root, "the action")?;
    check_keys(r, map, ACTION_KEYS, "the action");
    let mut manifest = ActionManifest { name: None, inputs: Vec::new(), outputs: Vec::new(), runs: ActionRuns::Docker };
    let mut runs = None;
    for (key, value) in map {
        match key.as_str().unwrap_or("") {
            "name" => manifest.name = string(r, value, "name"),
            "inputs" => manifest.inputs = inputs(r, value),
            "outputs" => manifest.outputs = outputs(r, value),
            "runs" => runs = runs_of(r, value),
            _ => {}
        }
    }
    if !map.iter().any(|(k, _)| k.as_str() == Some("runs")) {
        r.error(root.pos, "missing required key `runs`".into());
        return None;
    }
    manifest.runs = runs?;
    Some(manifest)
}

/// `inputs` (a null value is an input with nothing set).
fn inputs(r: &mut Report, node: &Node) -> Vec<ActionInput> {
    let Some(map) = mapping(r, node, "inputs") else { return Vec::new() };
    let mut found = Vec::new();
    for (key, value) in map {
        let Some(name) = key.scalar_string() else { continue };
        let mut input = ActionInput { name: name.clone(), default: None, required: false, deprecation: None };
        if let Some(fields) = fields(r, value, &format!("input `{name}`"), INPUT_KEYS) {
            for (k, v) in fields {
                match k.as_str().unwrap_or("") {
                    "default" => input.default = string(r, v, "default"),
                    "required" => {
                        input.required = match &v.kind {
                            Kind::Bool(b) => *b,
                            // Some actions write `required: 'true'`; GitHub reads it as true.
                            Kind::Str(s) => s.eq_ignore_ascii_case("true"),
                            _ => false,
                        }
                    }
                    "deprecationMessage" => input.deprecation = string(r, v, "deprecationMessage"),
                    _ => {}
                }
            }
        }
        found.push(input);
    }
    found
}

fn outputs(r: &mut Report, node: &Node) -> Vec<(String, Option<String>)> {
    let Some(map) = mapping(r, node, "outputs") else { return Vec::new() };
    let mut found = Vec::new();
    for (key, value) in map {
        let Some(name) = key.scalar_string() else { continue };
        let mut mapped = None;
        if let Some(fields) = fields(r, value, &format!("output `{name}`"), OUTPUT_KEYS) {
            for (k, v) in fields {
                if k.as_str() == Some("value") {
                    mapped = string(r, v, "value");
                }
            }
        }
        found.push((name, mapped));
    }
    found
}

/// The fields of an input or output: a mapping, or nothing for a null value.
fn fields<'n>(r: &mut Report, node: &'n Node, what: &str, known: &[&str]) -> Option<&'n [(Node, Node)]> {
    if node.kind == Kind::Null {
        return None;
    }
    let map = mapping(r, node, what)?;
    check_keys(r, map, known, what);
    Some(map)
}

fn runs_of(r: &mut Report, node: &Node) -> Option<ActionRuns> {
    let map = mapping(r, node, "runs")?;
    check_keys(r, map, RUNS_KEYS, "runs");
    let get = |key: &str| map.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v);
    let Some(using_node) = get("using") else {
        r.error(node.pos, "`runs` needs `using`".into());
        return None;
    };
    let using = string(r, using_node, "using")?;
    let text = |r: &mut Report, key: &str| get(key).and_then(|v| string(r, v, &format!("runs.{key}")));
    match using.as_str() {
        "composite" => {
            let Some(steps_node) = get("steps") else {
                r.error(node.pos, "a composite action needs `runs.steps`".into());
                return None;
            };
            let Kind::Seq(items) = &steps_node.kind else {
                super::build::type_error(r, steps_node, "runs.steps", "a sequence");
                return None;
            };
            let steps: Vec<Step> = items.iter().filter_map(|s| step(r, s, "the composite action")).collect();
            for step in &steps {
                if matches!(step.action, StepAction::Run(_)) && step.shell.is_none() {
                    r.error(step.pos, "a `run` step of a composite action needs `shell`".into());
                }
            }
            Some(ActionRuns::Composite(steps))
        }
        "docker" => Some(ActionRuns::Docker),
        node_version if node_version.starts_with("node") => {
            let Some(major) = node_version[4..].parse::<u32>().ok().filter(|m| [12, 16, 20, 24].contains(m)) else {
                unknown_using(r, using_node.pos, &using);
                return None;
            };
            let Some(main) = text(r, "main") else {
                r.error(node.pos, format!("a `{using}` action needs `runs.main`"));
                return None;
            };
            Some(ActionRuns::Node(NodeRuns {
                using: using.clone(),
                major,
                main,
                pre: text(r, "pre"),
                pre_if: text(r, "pre-if"),
                post: text(r, "post"),
                post_if: text(r, "post-if"),
            }))
        }
        _ => {
            unknown_using(r, using_node.pos, &using);
            None
        }
    }
}

fn unknown_using(r: &mut Report, pos: Pos, using: &str) {
    r.error(pos, format!("unknown `runs.using: {using}` (expected node16, node20, node24, composite or docker)"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_composite_actions() {
        let node = "name: n\ninputs:\n  who:\n    default: world\n  token:\noutputs:\n  greeting:\n    description: x\n\
                    runs:\n  using: node20\n  main: dist/index.js\n  post: dist/post.js\n  post-if: success()\n";
        let manifest = parse_action("action.yml", node).unwrap();
        assert_eq!(manifest.inputs[0].default.as_deref(), Some("world"));
        assert_eq!(manifest.inputs[1].name, "token");
        let ActionRuns::Node(runs) = manifest.runs else { panic!("not node") };
        assert_eq!((runs.major, runs.main.as_str(), runs.post_if.as_deref()), (20, "dist/index.js", Some("success()")));

        let composite = "runs:\n  using: composite\n  steps:\n    - run: echo hi\n      shell: bash\n    - uses: ./x\n";
        let ActionRuns::Composite(steps) = parse_action("a.yml", composite).unwrap().runs else { panic!() };
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("runs:\n  using: node99\n  main: x.js\n", "a.yml:2:10: error: unknown `runs.using: node99`"),
            ("runs:\n  using: node20\n", "a.yml:2:3: error: a `node20` action needs `runs.main`"),
            ("runs:\n  using: composite\n  steps:\n    - run: echo\n", "a.yml:4:7: error: a `run` step of a composite"),
            ("name: x\n", "a.yml:1:1: error: missing required key `runs`"),
            (
                "runs:\n  using: node20\n  mian: x\n",
                "a.yml:3:3: error: unknown key `mian` in runs; did you mean `main`?",
            ),
            ("runs: [\n", "a.yml:"),
        ];
        for (text, want) in cases {
            let errors = parse_action("a.yml", text).unwrap_err();
            assert!(errors.iter().any(|e| e.to_string().starts_with(want)), "{text:?}: {errors:?}");
        }
    }
}
