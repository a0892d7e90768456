//! A job's `runs-on`, rendered into the labels that decide where it runs (see
//! [`super::JobDispatch`]).
//!
//! As GitHub allows: a string (`ubuntu-latest`), a list of strings (`[self-hosted, gpu]`: a
//! runner must have every label), or a mapping with `group` and/or `labels`. Any string may
//! hold expressions (`${{ matrix.os }}`), evaluated with the instance's contexts; one that is a
//! whole expression may give a list or a mapping, taken as if written so. Labels are compared
//! without regard to case on GitHub, so they come out lowercase, trimmed, without empty ones or
//! duplicates, and sorted (the order never mattered).
//!
//! Mobius has no runner groups: `group: gpu-runners` is one more label, which an agent in that
//! "group" declares as it declares its other labels.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::expr::{self, Context};

/// Why a `runs-on` gives no labels.
#[derive(Debug, thiserror::Error)]
pub enum RunsOnError {
    /// An expression in it does not parse or evaluate.
    #[error("cannot evaluate `{text}`")]
    Expr {
        /// The string holding the expression, as written.
        text: String,
        /// Why.
        #[source]
        source: expr::ExprError,
    },
    /// A mapping with a key other than `group` and `labels`.
    #[error("`runs-on` takes `group` and `labels`, not `{key}`")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// Something that is not a label where one is wanted (a mapping inside a list, a list as a
    /// group).
    #[error("`runs-on` has {found} where a label is expected")]
    NotALabel {
        /// What was found: `a mapping`, `a list`.
        found: &'static str,
    },
}

/// The labels of a job's `runs-on` (see the module doc); `None` gives none.
pub fn runs_on_labels(runs_on: Option<&Value>, ctx: &dyn Context) -> Result<Vec<String>, RunsOnError> {
    let mut labels = BTreeSet::new();
    if let Some(runs_on) = runs_on {
        collect(runs_on, Some(ctx), Shape::Any, &mut labels)?;
    }
    Ok(labels.into_iter().collect())
}

/// What a place in `runs-on` may hold.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// The whole `runs-on`: a label, a list or a mapping.
    Any,
    /// An entry of a list, or `labels`: a label or a list of labels.
    Labels,
    /// `group`: one label.
    Label,
}

/// Adds the labels of `value` to `out`; its strings are evaluated with `ctx`, or taken as they
/// are without one (what an expression gave is data, not a workflow to evaluate again).
fn collect(
    value: &Value,
    ctx: Option<&dyn Context>,
    shape: Shape,
    out: &mut BTreeSet<String>,
) -> Result<(), RunsOnError> {
    match value {
        Value::Null => Ok(()),
        Value::String(text) => match ctx.filter(|_| text.contains("${{")) {
            None => {
                add(text, out);
                Ok(())
            }
            Some(ctx) => {
                let evaluated = expr::parse_template(text)
                    .and_then(|t| expr::evaluate_template(&t, ctx))
                    .map_err(|source| RunsOnError::Expr { text: text.clone(), source })?;
                match evaluated {
                    expr::Value::String(label) => {
                        add(&label, out);
                        Ok(())
                    }
                    // A whole expression giving a list or mapping is taken as if written so.
                    other => collect(&other.to_json(), None, shape, out),
                }
            }
        },
        Value::Bool(_) | Value::Number(_) => {
            add(&expr::Value::from_json(value).to_display_string(), out);
            Ok(())
        }
        Value::Array(items) if shape != Shape::Label => {
            items.iter().try_for_each(|item| collect(item, ctx, Shape::Label, out))
        }
        Value::Array(_) => Err(RunsOnError::NotALabel { found: "a list" }),
        Value::Object(map) if shape == Shape::Any => {
            for (key, value) in map {
                match key.as_str() {
                    "group" => collect(value, ctx, Shape::Label, out)?,
                    "labels" => collect(value, ctx, Shape::Labels, out)?,
                    other => return Err(RunsOnError::UnknownKey { key: other.to_owned() }),
                }
            }
            Ok(())
        }
        Value::Object(_) => Err(RunsOnError::NotALabel { found: "a mapping" }),
    }
}

fn add(label: &str, out: &mut BTreeSet<String>) {
    let label = label.trim().to_lowercase();
    if !label.is_empty() {
        out.insert(label);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::expr::MapContext;

    fn ctx() -> MapContext {
        MapContext::new()
            .with("matrix", json!({ "os": "Linux", "set": ["self-hosted", "GPU"], "pool": { "group": "Big" } }))
            .with("inputs", json!({ "n": 4 }))
    }

    fn check(runs_on: Value, expected: &[&str]) {
        let labels = runs_on_labels(Some(&runs_on), &ctx()).map_err(|e| format!("{e:#}"));
        assert_eq!(labels, Ok(expected.iter().map(|s| (*s).to_owned()).collect()), "runs-on: {runs_on}");
    }

    #[test]
    fn renders_labels() {
        check(json!("ubuntu-latest"), &["ubuntu-latest"]);
        check(json!("  Self-Hosted "), &["self-hosted"]);
        check(json!(["self-hosted", "gpu", "GPU", ""]), &["gpu", "self-hosted"]);
        check(json!({ "group": "Runners", "labels": "Linux" }), &["linux", "runners"]);
        check(json!({ "group": "runners" }), &["runners"]);
        check(json!({ "labels": ["a", "${{ matrix.os }}"] }), &["a", "linux"]);
        check(json!("${{ matrix.os }}"), &["linux"]);
        check(json!("${{ matrix.os }}-${{ inputs.n }}"), &["linux-4"]);
        check(json!(["self-hosted", "${{ matrix.os }}"]), &["linux", "self-hosted"]);
        check(json!("${{ matrix.set }}"), &["gpu", "self-hosted"]);
        check(json!("${{ matrix.pool }}"), &["big"]);
        check(json!("${{ fromJSON('[\"x\", \"${{ y }}\"]') }}"), &["${{ y }}", "x"]);
        check(json!(null), &[]);
        check(json!([]), &[]);
        assert_eq!(runs_on_labels(None, &ctx()).ok(), Some(Vec::new()));
    }

    #[test]
    fn refuses_what_is_not_labels() {
        let fails = |runs_on: Value| runs_on_labels(Some(&runs_on), &ctx()).map_err(|e| e.to_string()).err();
        assert_eq!(
            fails(json!({ "size": "big" })).as_deref(),
            Some("`runs-on` takes `group` and `labels`, not `size`")
        );
        assert_eq!(
            fails(json!([{ "group": "a" }])).as_deref(),
            Some("`runs-on` has a mapping where a label is expected")
        );
        assert_eq!(fails(json!({ "group": ["a"] })).as_deref(), Some("`runs-on` has a list where a label is expected"));
        assert_eq!(fails(json!("${{ matrix.os ) }}")).as_deref(), Some("cannot evaluate `${{ matrix.os ) }}`"));
        assert_eq!(
            fails(json!(["${{ matrix.set }}"])).as_deref(),
            Some("`runs-on` has a list where a label is expected")
        );
    }
}
