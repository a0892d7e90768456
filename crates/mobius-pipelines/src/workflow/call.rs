//! Reusable workflows, as files say them: a job that calls one (`uses:` with `with:` and
//! `secrets:`), and the `on.workflow_call` trigger of the workflow called (typed `inputs`,
//! `outputs` computed from its jobs, `secrets`).
//!
//! As on GitHub, a calling job has no steps: only `name`, `needs`, `if`, `strategy`,
//! `concurrency` and `permissions` go with `uses`, `with` and `secrets`, and `with`/`secrets`
//! go nowhere else. What the call does is [`crate::engine`]'s business.

use serde_json::Value;

use super::Report;
use super::build::{check_keys, mapping, string, type_error};
use super::model::Pos;
use super::yaml::{Kind, Node};

/// The keys GitHub allows on a job that calls a reusable workflow.
pub(crate) const CALLING_JOB_KEYS: &[&str] =
    &["name", "needs", "if", "strategy", "concurrency", "permissions", "uses", "with", "secrets"];

/// The keys of `on.workflow_call`.
const WORKFLOW_CALL_KEYS: &[&str] = &["inputs", "outputs", "secrets"];

/// A job's call of a reusable workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The calling workflow's file as given to [`super::parse`], for messages.
    pub file: String,
    /// The `uses:` value as written.
    pub uses: String,
    /// Where the called workflow lives.
    pub target: CallTarget,
    /// Where the `uses:` value is.
    pub pos: Pos,
    /// `with:`, in file order, each value as YAML typed it (strings may hold `${{ }}`).
    pub with: Vec<CallArg>,
    /// `secrets:`.
    pub secrets: CallSecrets,
}

/// One `with:` entry of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallArg {
    /// The input's name.
    pub name: String,
    /// The value: a boolean, a number or a string (a template when it holds `${{`).
    pub value: Value,
    /// Where the value is.
    pub pos: Pos,
}

/// Where a called workflow lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallTarget {
    /// `./.github/workflows/x.yml`: a file of the same repository, at the same commit.
    Local {
        /// The path relative to the repository root (`.github/workflows/x.yml`).
        path: String,
    },
    /// `owner/repo/.github/workflows/x.yml@ref`.
    Remote {
        /// `owner/repo`.
        repo: String,
        /// The path in that repository (`.github/workflows/x.yml`).
        path: String,
        /// A branch, tag or commit.
        git_ref: String,
    },
}

impl std::fmt::Display for CallTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallTarget::Local { path } => write!(f, "./{path}"),
            CallTarget::Remote { repo, path, git_ref } => write!(f, "{repo}/{path}@{git_ref}"),
        }
    }
}

/// Why a `uses:` value names no reusable workflow GitHub would call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallTargetError {
    /// A local path with an `@ref`: a local workflow is always at the caller's commit.
    #[error("a local workflow takes no `@ref`: it is the caller's commit")]
    LocalRef,
    /// A remote workflow without `@ref`.
    #[error("a remote workflow needs an `@ref` (`owner/repo/.github/workflows/x.yml@v1`)")]
    MissingRef,
    /// Not in `.github/workflows/` directly, or not a `.yml`/`.yaml` file.
    #[error("a reusable workflow is a `.yml` or `.yaml` file directly in `.github/workflows/`")]
    NotAWorkflowFile,
    /// Not `./…` nor `owner/repo/…`.
    #[error("expected `./.github/workflows/<file>` or `<owner>/<repo>/.github/workflows/<file>@<ref>`")]
    Shape,
}

/// Parses a job's `uses:` value.
pub fn call_target(uses: &str) -> Result<CallTarget, CallTargetError> {
    let workflow_file = |path: &str| -> Result<(), CallTargetError> {
        let file = path.strip_prefix(".github/workflows/").ok_or(CallTargetError::NotAWorkflowFile)?;
        let named = file.strip_suffix(".yml").or_else(|| file.strip_suffix(".yaml")).unwrap_or("");
        if named.is_empty() || file.contains('/') || file.contains('\\') {
            return Err(CallTargetError::NotAWorkflowFile);
        }
        Ok(())
    };
    if let Some(path) = uses.strip_prefix("./") {
        if path.contains('@') {
            return Err(CallTargetError::LocalRef);
        }
        workflow_file(path)?;
        return Ok(CallTarget::Local { path: path.to_owned() });
    }
    let (location, git_ref) = uses.rsplit_once('@').ok_or(CallTargetError::MissingRef)?;
    if git_ref.is_empty() {
        return Err(CallTargetError::MissingRef);
    }
    let mut parts = location.splitn(3, '/');
    let (Some(owner), Some(name), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CallTargetError::Shape);
    };
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !plain(owner) || !plain(name) || owner.starts_with('.') || name.starts_with('.') {
        return Err(CallTargetError::Shape);
    }
    workflow_file(path)?;
    Ok(CallTarget::Remote { repo: format!("{owner}/{name}"), path: path.to_owned(), git_ref: git_ref.to_owned() })
}

/// The `secrets:` of a call.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CallSecrets {
    /// None passed (no `secrets:`): the called workflow sees an empty `secrets` context.
    #[default]
    None,
    /// `secrets: inherit`: every secret of the caller, under its own name.
    Inherit,
    /// The called workflow's secret name, and the template giving its value in the caller.
    Map(Vec<(String, String)>),
}

/// `on.workflow_call`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowCall {
    /// `inputs`, in file order.
    pub inputs: Vec<CallInput>,
    /// `outputs`, in file order.
    pub outputs: Vec<CallOutput>,
    /// `secrets`, in file order.
    pub secrets: Vec<CallSecret>,
}

/// An input of `on.workflow_call`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInput {
    /// The input's name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `required` (default false).
    pub required: bool,
    /// `type` (required by GitHub).
    pub kind: CallInputKind,
    /// `default`, typed; a string may hold `${{ }}` (GitHub allows the `github` context there).
    pub default: Option<Value>,
}

/// The `type` of a `workflow_call` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallInputKind {
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
    /// `number`.
    Number,
}

impl CallInputKind {
    /// The name as written in `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallInputKind::String => "string",
            CallInputKind::Boolean => "boolean",
            CallInputKind::Number => "number",
        }
    }

    /// Whether `value` (a JSON scalar) is of this type, as GitHub checks a call's `with:`: a
    /// string input takes any scalar (written as a string), the others only their own type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            CallInputKind::String => matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)),
            CallInputKind::Boolean => value.is_boolean(),
            CallInputKind::Number => value.is_number(),
        }
    }
}

/// An output of `on.workflow_call`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The output's name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `value`: a template over `jobs`, `github`, `inputs` and `vars`, rendered once the
    /// called workflow's jobs are done.
    pub value: String,
}

/// A secret of `on.workflow_call`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSecret {
    /// The secret's name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `required` (default false).
    pub required: bool,
}

/// A job's `uses:`, `with:` and `secrets:`; `None` when `uses:` is not a string.
pub(crate) fn call(
    r: &mut Report,
    uses: &Node,
    with: Option<&Node>,
    secrets: Option<&Node>,
    job: &str,
) -> Option<Call> {
    let text = string(r, uses, "uses")?;
    let target = match call_target(&text) {
        Ok(target) => target,
        Err(why) => {
            r.error(uses.pos, format!("job `{job}` calls `{text}`: {why}"));
            return None;
        }
    };
    let mut call =
        Call { file: String::new(), uses: text, target, pos: uses.pos, with: Vec::new(), secrets: CallSecrets::None };
    if let Some(map) = with.and_then(|w| mapping(r, w, "with")) {
        for (k, v) in map {
            let Some(name) = k.scalar_string() else { continue };
            match &v.kind {
                Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) | Kind::Str(_) => {
                    call.with.push(CallArg { name, value: v.to_json(), pos: v.pos })
                }
                _ => type_error(r, v, &format!("with.{name}"), "a string, a number or a boolean"),
            }
        }
    }
    call.secrets = match secrets.map(|s| (&s.kind, s)) {
        None => CallSecrets::None,
        Some((Kind::Str(word), _)) if word == "inherit" => CallSecrets::Inherit,
        Some((Kind::Map(_), node)) => CallSecrets::Map(super::build::pairs(r, node, "secrets")),
        Some((_, node)) => {
            type_error(r, node, "secrets", "`inherit` or a mapping");
            CallSecrets::None
        }
    };
    Some(call)
}

/// `on.workflow_call`, with nothing after it or with `inputs`, `outputs` and `secrets`.
pub(crate) fn workflow_call(r: &mut Report, config: Option<&Node>) -> WorkflowCall {
    let mut call = WorkflowCall::default();
    let Some(map) = config.and_then(|c| mapping(r, c, "workflow_call")) else { return call };
    check_keys(r, map, WORKFLOW_CALL_KEYS, "`workflow_call`");
    for (k, v) in map {
        let section = k.as_str().unwrap_or("");
        if v.kind == Kind::Null {
            continue;
        }
        let Some(items) = mapping(r, v, &format!("workflow_call.{section}")) else { continue };
        for (key, node) in items {
            let Some(name) = key.scalar_string() else { continue };
            match section {
                "inputs" => call.inputs.extend(input(r, name, key, node)),
                "outputs" => call.outputs.extend(output(r, name, key, node)),
                "secrets" => call.secrets.extend(secret(r, name, node)),
                _ => {}
            }
        }
    }
    call
}

fn input(r: &mut Report, name: String, key: &Node, node: &Node) -> Option<CallInput> {
    let what = format!("workflow_call input `{name}`");
    let map = mapping(r, node, &what)?;
    check_keys(r, map, &["description", "required", "default", "type", "deprecationMessage"], &what);
    let mut input = CallInput { name, description: None, required: false, kind: CallInputKind::String, default: None };
    let mut default_node = None;
    let mut typed = false;
    for (k, v) in map {
        match k.as_str().unwrap_or("") {
            "description" => input.description = string(r, v, "description"),
            "required" => match v.kind {
                Kind::Bool(b) => input.required = b,
                _ => type_error(r, v, "required", "a boolean"),
            },
            "default" => default_node = Some(v),
            "type" => {
                typed = true;
                input.kind = match v.as_str() {
                    Some("string") => CallInputKind::String,
                    Some("boolean") => CallInputKind::Boolean,
                    Some("number") => CallInputKind::Number,
                    _ => {
                        let found = v.scalar_string().unwrap_or_default();
                        r.error(v.pos, format!("{what} has unknown type `{found}` (string, boolean or number)"));
                        CallInputKind::String
                    }
                }
            }
            _ => {}
        }
    }
    if !typed {
        r.error(key.pos, format!("{what} needs a `type` (string, boolean or number)"));
    }
    if let Some(d) = default_node {
        let value = d.to_json();
        let computed = value.as_str().is_some_and(|s| s.contains("${{"));
        if matches!(d.kind, Kind::Seq(_) | Kind::Map(_)) || (!computed && !input.kind.accepts(&value)) {
            r.error(d.pos, format!("default of {what} is not a {}", input.kind.as_str()));
        } else if d.kind != Kind::Null {
            input.default = Some(value);
        }
    }
    Some(input)
}

fn output(r: &mut Report, name: String, key: &Node, node: &Node) -> Option<CallOutput> {
    let what = format!("workflow_call output `{name}`");
    let map = mapping(r, node, &what)?;
    check_keys(r, map, &["description", "value"], &what);
    let description = map.iter().find(|(k, _)| k.as_str() == Some("description")).and_then(|(_, v)| v.scalar_string());
    let Some((_, value)) = map.iter().find(|(k, _)| k.as_str() == Some("value")) else {
        r.error(key.pos, format!("{what} needs a `value`"));
        return None;
    };
    let value = string(r, value, "value")?;
    Some(CallOutput { name, description, value })
}

fn secret(r: &mut Report, name: String, node: &Node) -> Option<CallSecret> {
    let mut secret = CallSecret { name, description: None, required: false };
    if node.kind == Kind::Null {
        return Some(secret);
    }
    let what = format!("workflow_call secret `{}`", secret.name);
    let map = mapping(r, node, &what)?;
    check_keys(r, map, &["description", "required"], &what);
    for (k, v) in map {
        match (k.as_str().unwrap_or(""), &v.kind) {
            ("description", _) => secret.description = string(r, v, "description"),
            ("required", Kind::Bool(b)) => secret.required = *b,
            ("required", _) => type_error(r, v, "required", "a boolean"),
            _ => {}
        }
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let local = |p: &str| Ok(CallTarget::Local { path: p.to_owned() });
        assert_eq!(call_target("./.github/workflows/build.yml"), local(".github/workflows/build.yml"));
        assert_eq!(
            call_target("octo/lib/.github/workflows/ci.yaml@v1.2"),
            Ok(CallTarget::Remote {
                repo: "octo/lib".into(),
                path: ".github/workflows/ci.yaml".into(),
                git_ref: "v1.2".into()
            })
        );
        assert_eq!(call_target("./.github/workflows/build.yml@v1"), Err(CallTargetError::LocalRef));
        assert_eq!(call_target("octo/lib/.github/workflows/ci.yml"), Err(CallTargetError::MissingRef));
        assert_eq!(call_target("./ci/build.yml"), Err(CallTargetError::NotAWorkflowFile));
        assert_eq!(call_target("./.github/workflows/sub/build.yml"), Err(CallTargetError::NotAWorkflowFile));
        assert_eq!(call_target("./.github/workflows/.yml"), Err(CallTargetError::NotAWorkflowFile));
        assert_eq!(call_target("./.github/workflows/../../x.yml"), Err(CallTargetError::NotAWorkflowFile));
        assert_eq!(call_target("octo/.github/workflows/ci.yml@v1"), Err(CallTargetError::Shape));
        assert_eq!(call_target("../x/.github/workflows/ci.yml@v1"), Err(CallTargetError::Shape));
    }

    #[test]
    fn input_types() {
        assert!(CallInputKind::String.accepts(&Value::from(3)));
        assert!(CallInputKind::Boolean.accepts(&Value::Bool(false)));
        assert!(!CallInputKind::Boolean.accepts(&Value::from("true")));
        assert!(!CallInputKind::Number.accepts(&Value::from("3")));
        assert!(!CallInputKind::String.accepts(&Value::Null));
    }
}
