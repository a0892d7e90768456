//! The GitHub Actions `${{ }}` expression language.
//!
//! - [`parse`] turns the text inside `${{ }}` into an [`Expr`], with 1-based columns in errors;
//!   unknown functions, wrong argument counts and unknown contexts are parse errors, as in the
//!   runner.
//! - [`evaluate`] runs it against a [`Context`] with GitHub's rules (docs.github.com, "Evaluate
//!   expressions in workflows and actions"): truthiness, loose equality with numeric coercion,
//!   case-insensitive strings and property names, `&&`/`||` returning operands, the object filter.
//! - [`parse_template`] and [`render`] handle strings with embedded `${{ }}`;
//!   [`evaluate_condition`] implements `if:` with its implicit `success() &&`.
//! - [`MapContext`] is a plain in-memory [`Context`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod eval;
mod functions;
mod lexer;
mod parser;
mod template;
mod value;

pub use eval::evaluate;
pub use parser::{BinaryOp, CONTEXTS, Expr, Function, Literal, parse};
pub use template::{Segment, evaluate_template, parse_template, render};
pub use value::{Value, format_number, parse_number};

/// Why an expression could not be parsed or evaluated. Columns are 1-based and count chars
/// of the expression without its `${{ }}` delimiters (of the whole text for templates).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression is empty. GitHub's language service evaluates an empty expression to
    /// `null`, but an empty `${{ }}` in a workflow is a mistake, so we reject it.
    #[error("empty expression")]
    Empty,
    /// A token that cannot appear here.
    #[error("unexpected {} at column {column}", quoted(found))]
    Unexpected { found: String, column: usize },
    /// The expression stops where more was needed.
    #[error("unexpected end of expression")]
    UnexpectedEnd,
    /// A string literal without its closing quote.
    #[error("unterminated string starting at column {column}")]
    UnterminatedString { column: usize },
    /// A word starting like a number that is not one.
    #[error("invalid number `{text}` at column {column}")]
    InvalidNumber { text: String, column: usize },
    /// A call of a function that does not exist.
    #[error("unknown function `{name}` at column {column}")]
    UnknownFunction { name: String, column: usize },
    /// A call with too few or too many arguments.
    #[error("wrong number of arguments to `{function}` (expected {expected}) at column {column}")]
    ArgumentCount { function: &'static str, expected: String, column: usize },
    /// A bare name that is not one of [`CONTEXTS`].
    #[error("unrecognized named-value `{name}` at column {column}")]
    UnknownContext { name: String, column: usize },
    /// Nesting beyond the parser's limit.
    #[error("expression nested too deeply at column {column}")]
    TooDeep { column: usize },
    /// A `${{` without its `}}`.
    #[error("unterminated `${{{{` at column {column}")]
    UnterminatedTemplate { column: usize },
    /// A bad `format` template or argument index.
    #[error("invalid format string `{template}`: {reason}")]
    Format { template: String, reason: String },
    /// `fromJSON` of text that is not JSON.
    #[error("fromJSON: {reason}")]
    FromJson { reason: String },
    /// `hashFiles` could not read the workspace or got a bad pattern.
    #[error("hashFiles: {reason}")]
    HashFiles { reason: String },
}

/// A token as a message shows it: a string literal in its own quotes (`'abc'`), anything
/// else in backticks, so quotes are never nested.
fn quoted(found: &str) -> String {
    if found.starts_with('\'') { format!("string {found}") } else { format!("`{found}`") }
}

impl ExprError {
    /// The column the error points at, when it has one.
    pub fn column(&self) -> Option<usize> {
        match self {
            ExprError::Unexpected { column, .. }
            | ExprError::UnterminatedString { column }
            | ExprError::InvalidNumber { column, .. }
            | ExprError::UnknownFunction { column, .. }
            | ExprError::ArgumentCount { column, .. }
            | ExprError::UnknownContext { column, .. }
            | ExprError::TooDeep { column }
            | ExprError::UnterminatedTemplate { column } => Some(*column),
            ExprError::Empty
            | ExprError::UnexpectedEnd
            | ExprError::Format { .. }
            | ExprError::FromJson { .. }
            | ExprError::HashFiles { .. } => None,
        }
    }
}

/// The status of the current job, which the status functions report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobStatus {
    /// No earlier step failed and the run is not cancelled.
    #[default]
    Success,
    /// An earlier step (or needed job) failed.
    Failure,
    /// The run was cancelled.
    Cancelled,
}

/// What an expression can see.
pub trait Context {
    /// The named context (`github`, `env`, `matrix`, …), asked for in lower case; `None`
    /// evaluates to `null`.
    fn context(&self, name: &str) -> Option<serde_json::Value>;
    /// The job status for `success()`, `failure()` and `cancelled()`.
    fn job_status(&self) -> JobStatus;
    /// The directory `hashFiles` searches; `None` makes `hashFiles` an error.
    fn workspace(&self) -> Option<&Path>;
}

/// A [`Context`] backed by a map, for tests and simple callers.
#[derive(Debug, Clone, Default)]
pub struct MapContext {
    /// Named contexts by lower-case name.
    pub contexts: HashMap<String, serde_json::Value>,
    /// The job status.
    pub status: JobStatus,
    /// The workspace for `hashFiles`.
    pub workspace: Option<PathBuf>,
}

impl MapContext {
    /// An empty context with a successful job and no workspace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named context; the name is lower-cased because lookups are case-insensitive.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.contexts.insert(name.to_ascii_lowercase(), value);
        self
    }

    /// Sets the job status.
    pub fn with_status(mut self, status: JobStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets the workspace directory.
    pub fn with_workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = Some(dir.into());
        self
    }
}

impl Context for MapContext {
    fn context(&self, name: &str) -> Option<serde_json::Value> {
        self.contexts.get(&name.to_ascii_lowercase()).cloned()
    }

    fn job_status(&self) -> JobStatus {
        self.status
    }

    fn workspace(&self) -> Option<&Path> {
        self.workspace.as_deref()
    }
}

/// Whether the expression calls `success()`, `failure()`, `cancelled()` or `always()`.
pub fn uses_status_function(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(_) | Expr::Context(_) => false,
        Expr::Property { target, .. } | Expr::Filter(target) | Expr::Not(target) => uses_status_function(target),
        Expr::Index { target, index } => uses_status_function(target) || uses_status_function(index),
        Expr::Binary { lhs, rhs, .. } => uses_status_function(lhs) || uses_status_function(rhs),
        Expr::Call { function, args } => function.is_status() || args.iter().any(uses_status_function),
    }
}

/// Evaluates an `if:` condition. The text may be wrapped in `${{ }}` or bare. Without a status
/// function it means `success() && (expr)`, so it is false once the job has failed or was
/// cancelled. An empty condition is `success()`.
pub fn evaluate_condition(source: &str, ctx: &dyn Context) -> Result<bool, ExprError> {
    let trimmed = source.trim();
    let inner = trimmed.strip_prefix("${{").and_then(|s| s.strip_suffix("}}")).unwrap_or(trimmed);
    if inner.trim().is_empty() {
        return Ok(ctx.job_status() == JobStatus::Success);
    }
    let expr = parse(inner)?;
    if !uses_status_function(&expr) && ctx.job_status() != JobStatus::Success {
        return Ok(false);
    }
    Ok(evaluate(&expr, ctx)?.is_truthy())
}
