//! A job's `strategy`: matrices computed at run time, `fail-fast`, `max-parallel`, the
//! `strategy` context, and settings that may be expressions.

use serde_json::{Value, json};

use crate::expr::{self, MapContext};
use crate::workflow::{Combination, Job, MatrixEntryError, MatrixSpec, Setting, Strategy, matrix_from_entries};

/// Whether the job's matrix is known only once its needs are done.
pub(super) fn is_dynamic(job: &Job) -> bool {
    matches!(job.strategy.as_ref().and_then(|s| s.matrix.as_ref()), Some(MatrixSpec::Expr(_) | MatrixSpec::Computed(_)))
}

/// Why a matrix written with expressions does not compute.
#[derive(Debug, thiserror::Error)]
pub(super) enum ComputedMatrixError {
    /// An expression of it does not parse or evaluate.
    #[error(transparent)]
    Expr(#[from] expr::ExprError),
    /// The whole matrix, given as one expression, gives something else than a mapping.
    #[error("`{expression}` gives {value}, not a mapping")]
    NotAMapping { expression: String, value: Value },
    /// An entry of the computed mapping has the wrong shape.
    #[error(transparent)]
    Entry(#[from] MatrixEntryError),
}

/// The strategy with its matrix computed from `ctx` (`needs`, `github`, `inputs`…); as it is
/// when its matrix is not computed.
pub(super) fn resolve_matrix(strategy: &Strategy, ctx: &MapContext) -> Result<Strategy, ComputedMatrixError> {
    let evaluate = |text: &str| expr::parse_template(text).and_then(|t| expr::evaluate_template(&t, ctx));
    let entries: Vec<(String, Value)> = match &strategy.matrix {
        Some(MatrixSpec::Expr(text)) => match evaluate(text)? {
            expr::Value::Object(entries) => entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            other => return Err(ComputedMatrixError::NotAMapping { expression: text.clone(), value: other.to_json() }),
        },
        Some(MatrixSpec::Computed(entries)) => entries
            .iter()
            .map(|(k, v)| Ok((compute_key(k, &evaluate)?, compute(v, &evaluate)?)))
            .collect::<Result<_, expr::ExprError>>()?,
        _ => return Ok(strategy.clone()),
    };
    let matrix = matrix_from_entries(entries.iter().map(|(k, v)| (k.as_str(), v)))?;
    Ok(Strategy { matrix: Some(MatrixSpec::Static(matrix)), ..strategy.clone() })
}

/// `value` with every string that holds `${{` replaced by what it evaluates to (an array or
/// mapping from `fromJSON` stays one), and every such key by its text.
pub(super) fn compute(
    value: &Value,
    evaluate: &dyn Fn(&str) -> Result<expr::Value, expr::ExprError>,
) -> Result<Value, expr::ExprError> {
    Ok(match value {
        Value::String(text) if text.contains("${{") => evaluate(text)?.to_json(),
        Value::Array(items) => Value::Array(items.iter().map(|v| compute(v, evaluate)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((compute_key(k, evaluate)?, compute(v, evaluate)?)))
                .collect::<Result<_, expr::ExprError>>()?,
        ),
        other => other.clone(),
    })
}

/// A mapping key with its expressions rendered (`${{ inputs.axis }}: [a, b]`), as it is
/// without any.
pub(super) fn compute_key(
    key: &str,
    evaluate: &dyn Fn(&str) -> Result<expr::Value, expr::ExprError>,
) -> Result<String, expr::ExprError> {
    if key.contains("${{") { Ok(evaluate(key)?.to_display_string()) } else { Ok(key.to_owned()) }
}

/// Evaluates a boolean setting.
pub(in crate::engine) fn setting_bool(setting: &Setting<bool>, ctx: &MapContext) -> Result<bool, expr::ExprError> {
    match setting {
        Setting::Value(v) => Ok(*v),
        Setting::Expr(text) => {
            expr::parse_template(text).and_then(|t| expr::evaluate_template(&t, ctx)).map(|v| v.is_truthy())
        }
    }
}

/// Evaluates a number setting; `None` when it does not evaluate to a finite number.
pub(in crate::engine) fn setting_number(
    setting: &Setting<f64>,
    ctx: &MapContext,
) -> Result<Option<f64>, expr::ExprError> {
    match setting {
        Setting::Value(v) => Ok(Some(*v)),
        Setting::Expr(text) => {
            let value = expr::parse_template(text).and_then(|t| expr::evaluate_template(&t, ctx))?;
            Ok(Some(value.to_number()).filter(|n| n.is_finite()))
        }
    }
}

/// `strategy.fail-fast` for an instance (true when not set).
pub(super) fn fail_fast(job: &Job, matrix: &Combination) -> Result<bool, expr::ExprError> {
    let ctx = MapContext::new().with("matrix", Value::Object(matrix.clone()));
    match &job.strategy {
        Some(strategy) => setting_bool(&strategy.fail_fast, &ctx),
        None => Ok(false),
    }
}

/// The `strategy` context of one instance, as GitHub fills it: `max-parallel` is the number of
/// combinations when not set, and a job without a matrix is instance 0 of 1. A setting that does
/// not evaluate is told to `explain` and taken as not set; the scheduler does the same later.
pub(super) fn strategy_context(
    job: &Job,
    matrix: &Combination,
    job_index: usize,
    job_total: usize,
    explain: &mut dyn FnMut(&str),
) -> Value {
    let max_parallel = max_parallel(job)
        .unwrap_or_else(|why| {
            explain(&format!("cannot evaluate `strategy.max-parallel`: {why}; not limited"));
            usize::MAX
        })
        .min(job_total.max(1));
    let fail_fast = fail_fast(job, matrix).unwrap_or_else(|why| {
        explain(&format!("cannot evaluate `strategy.fail-fast`: {why}; using true"));
        true
    });
    json!({
        "fail-fast": fail_fast || job.strategy.is_none(),
        "job-index": job_index,
        "job-total": job_total,
        "max-parallel": max_parallel,
    })
}

/// `strategy.max-parallel` (unlimited when not set, at least 1).
pub(super) fn max_parallel(job: &Job) -> Result<usize, expr::ExprError> {
    let ctx = MapContext::new();
    let set = match job.strategy.as_ref().and_then(|s| s.max_parallel.as_ref()) {
        Some(setting) => setting_number(setting, &ctx)?,
        None => None,
    };
    Ok(set.map(|n| n.max(1.0) as usize).unwrap_or(usize::MAX))
}
