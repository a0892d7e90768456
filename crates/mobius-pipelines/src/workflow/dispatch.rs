//! The inputs of a manual run (`workflow_dispatch`), checked against what the workflow
//! declares, as GitHub checks them when a run is requested: unknown inputs and missing required
//! ones are refused, booleans are `true`/`false`, numbers parse, a `choice` is one of its
//! options; defaults fill in the rest.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::model::{InputKind, Workflow};

/// Why the inputs of a manual run are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The workflow has no `on.workflow_dispatch`.
    #[error("the workflow cannot be run by hand: it has no `on: workflow_dispatch`")]
    NotDispatchable,
    #[error("unknown input `{name}` (inputs: {known})")]
    Unknown { name: String, known: String },
    #[error("input `{0}` is required")]
    Missing(String),
    #[error("input `{name}` must be {expected}, not `{value}`")]
    Type { name: String, expected: String, value: String },
}

/// The `inputs` context of a manual run of `workflow` given `given`, typed.
pub fn dispatch_inputs(
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, DispatchError> {
    let Some(declared) = &workflow.on.workflow_dispatch else { return Err(DispatchError::NotDispatchable) };
    if let Some(name) = given.keys().find(|name| !declared.iter().any(|i| &i.name == *name)) {
        let known: Vec<&str> = declared.iter().map(|i| i.name.as_str()).collect();
        let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
        return Err(DispatchError::Unknown { name: name.clone(), known });
    }
    let mut inputs = Map::new();
    for input in declared {
        let Some(value) = given.get(&input.name).cloned().or_else(|| input.default.clone()) else {
            if input.required {
                return Err(DispatchError::Missing(input.name.clone()));
            }
            continue;
        };
        let wrong = |expected: &str| DispatchError::Type {
            name: input.name.clone(),
            expected: expected.to_owned(),
            value: value.clone(),
        };
        let typed = match &input.kind {
            InputKind::Boolean => match value.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(wrong("true or false")),
            },
            InputKind::Number => value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| wrong("a number"))?,
            InputKind::Choice(options) if !options.contains(&value) => {
                return Err(wrong(&format!("one of {}", options.join(", "))));
            }
            _ => Value::String(value),
        };
        inputs.insert(input.name.clone(), typed);
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::parse;

    #[test]
    fn inputs_are_typed_defaulted_and_checked() {
        let yaml = "on:\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [low, high]\n        \
                    default: low\n      dry:\n        type: boolean\n        required: true\n      count:\n        type: number\n\
                    jobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n";
        let w = parse("w.yml", yaml).unwrap();
        let given = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let ok = dispatch_inputs(&w, &given(&[("dry", "true"), ("count", "3")])).unwrap();
        assert_eq!(serde_json::Value::Object(ok), serde_json::json!({ "level": "low", "dry": true, "count": 3.0 }));
        let cases = [
            (given(&[]), "input `dry` is required"),
            (given(&[("dry", "yes")]), "input `dry` must be true or false, not `yes`"),
            (given(&[("dry", "true"), ("count", "many")]), "input `count` must be a number, not `many`"),
            (given(&[("dry", "true"), ("level", "max")]), "input `level` must be one of low, high, not `max`"),
            (given(&[("dry", "true"), ("colour", "red")]), "unknown input `colour` (inputs: level, dry, count)"),
        ];
        for (inputs, want) in cases {
            assert_eq!(dispatch_inputs(&w, &inputs).unwrap_err().to_string(), want);
        }
        let push = parse("p.yml", "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n").unwrap();
        assert_eq!(dispatch_inputs(&push, &BTreeMap::new()), Err(DispatchError::NotDispatchable));
    }
}
