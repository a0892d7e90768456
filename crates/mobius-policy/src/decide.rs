//! A directory's gate policies, and the decision they make on an input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regorus::Value;
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::input::Input;
use crate::load::{self, DEFAULT_TIME_LIMIT, Files, PACKAGE};
use crate::located::{Sources, one_line};

/// A repository's gate policies (`policies/*.rego`, package `mobius.gate`), parsed and
/// prepared once; [`Policies::decide`] evaluates them on an input.
///
/// Cheap to share: `Send + Sync`, and deciding takes `&self` (each decision evaluates on its
/// own copy of the prepared engine, so decisions run in parallel and none sees another's
/// input).
#[derive(Clone)]
pub struct Policies {
    dir: PathBuf,
    engine: regorus::Engine,
    /// `deny`, `deny_*`, `violation`, `violation_*`, in name order.
    failures: Vec<String>,
    /// `warn`, `warn_*`, in name order.
    warnings: Vec<String>,
    has_exceptions: bool,
    sources: Sources,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("dir", &self.dir)
            .field("failures", &self.failures)
            .field("warnings", &self.warnings)
            .field("has_exceptions", &self.has_exceptions)
            .finish_non_exhaustive()
    }
}

/// What the policies decided.
///
/// Serialises as `{"allow": false, "deny": [...], "warn": [...]}`, with `"exceptions": [...]`
/// when an exception applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the change may go ahead: no `deny` message, and no policy error.
    pub allow: bool,
    /// Why not: the messages of the `deny`/`violation` rules (rules in name order, each
    /// rule's messages in order), then one per policy error (an evaluation error denies: the
    /// gate fails closed), the `exception` rule's first.
    pub deny: Vec<String>,
    /// The messages of the `warn` rules: shown, never blocking.
    pub warn: Vec<String>,
    /// The rules an `exception` excepted (`deny_friday_afternoon`), whose messages are left
    /// out of `deny` and `warn`. As in conftest, a rule named by an exception is listed
    /// whether or not it had a message this time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
}

impl Policies {
    /// Reads `dir/*.rego` (not `*_test.rego`, not subdirectories): every file must parse as
    /// Rego v1 and declare `package mobius.gate`, and every `deny`/`violation`/`warn`/
    /// `exception` rule must be a multi-value rule. Refusals are at `file:line:column`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let dir = dir.as_ref();
        let loaded = load::load(dir, Files::Policies, DEFAULT_TIME_LIMIT)?;
        let ours = |d: &load::Declared| d.package == PACKAGE;
        Ok(Self {
            dir: dir.to_path_buf(),
            failures: load::names(&loaded.declared, |d| ours(d) && load::is_failure(&d.name)),
            warnings: load::names(&loaded.declared, |d| ours(d) && load::is_warning(&d.name)),
            has_exceptions: loaded.declared.iter().any(|d| ours(d) && d.name == "exception"),
            engine: loaded.engine,
            sources: loaded.sources,
        })
    }

    /// How long one rule may evaluate before that is an error, and so a denial (default
    /// [`DEFAULT_TIME_LIMIT`]).
    #[must_use]
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        load::set_time_limit(&mut self.engine, limit);
        self
    }

    /// The directory the policies were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `deny`/`violation` rules and the `warn` rules the policies declare, in name order.
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        self.failures.iter().chain(&self.warnings).map(String::as_str)
    }

    /// Decides on `input`, conftest's way: every `deny`/`violation` rule's messages deny,
    /// every `warn` rule's messages warn, and a rule named by an `exception` (`deny_x` by
    /// `"x"`) is excepted. Any evaluation error denies, with the error and where it happened.
    pub fn decide(&self, input: &Input) -> Decision {
        match serde_json::to_value(input) {
            Ok(json) => self.decide_value(Value::from(json)),
            Err(e) => Decision {
                allow: false,
                deny: vec![format!("the input could not be given to the policies: {e}")],
                ..Decision::default()
            },
        }
    }

    fn decide_value(&self, input: Value) -> Decision {
        let mut engine = self.engine.clone();
        engine.set_input(input);
        let mut decision = Decision::default();
        let mut errors = Vec::new();

        let excepted = if self.has_exceptions {
            self.exceptions(&mut engine).unwrap_or_else(|error| {
                errors.push(error);
                BTreeSet::new()
            })
        } else {
            BTreeSet::new()
        };
        for (rule, into_deny) in self.failures.iter().map(|r| (r, true)).chain(self.warnings.iter().map(|r| (r, false)))
        {
            // Evaluated even when excepted, as conftest does: an excepted rule that fails
            // still fails the gate.
            let messages = match engine.eval_rule(format!("data.{PACKAGE}.{rule}")) {
                Ok(value) => messages(rule, &value),
                Err(e) => Err(format!("policy error in {rule}: {}", one_line(&e, &self.sources))),
            };
            match messages {
                Ok(_) if excepted.contains(load::exception_name(rule)) => decision.exceptions.push(rule.clone()),
                Ok(messages) if into_deny => decision.deny.extend(messages),
                Ok(messages) => decision.warn.extend(messages),
                Err(error) => errors.push(error),
            }
        }
        decision.deny.extend(errors.into_iter().map(|error| format!("{error} (the gate fails closed)")));
        decision.allow = decision.deny.is_empty();
        decision
    }

    /// The names `exception` excepts. An exception that errs, or lists anything but names,
    /// excepts nothing: the error is returned, to deny.
    fn exceptions(&self, engine: &mut regorus::Engine) -> Result<BTreeSet<String>, String> {
        let value = engine
            .eval_rule(format!("data.{PACKAGE}.exception"))
            .map_err(|e| format!("policy error in exception: {}", one_line(&e, &self.sources)))?;
        let entries = match &value {
            Value::Set(set) => set.iter().collect::<Vec<_>>(),
            Value::Undefined => Vec::new(),
            other => return Err(format!("policy error in exception: it is {}, not a set", json(other))),
        };
        let mut names = BTreeSet::new();
        for entry in entries {
            let listed: Vec<&Value> = match entry {
                Value::Array(items) => items.iter().collect(),
                Value::Set(items) => items.iter().collect(),
                other => vec![other],
            };
            for name in listed {
                match name {
                    Value::String(name) => names.insert(name.to_string()),
                    other => {
                        return Err(format!(
                            "policy error in exception: {} is not a list of rule names \
                             (`exception contains rules if {{ rules := [\"name\"] }}`)",
                            json(other)
                        ));
                    }
                };
            }
        }
        Ok(names)
    }
}

/// A rule's messages: each element a string, or an object with a string `msg`.
fn messages(rule: &str, value: &Value) -> Result<Vec<String>, String> {
    let set = match value {
        Value::Set(set) => set,
        // A multi-value rule with no element is the empty set; undefined means the same.
        Value::Undefined => return Ok(Vec::new()),
        other => return Err(format!("policy error in {rule}: it is {}, not a set of messages", json(other))),
    };
    let mut out = Vec::with_capacity(set.len());
    for element in set.iter() {
        match element {
            Value::String(message) => out.push(message.to_string()),
            Value::Object(fields) => match fields.get(&Value::from("msg")) {
                Some(Value::String(message)) => out.push(message.to_string()),
                _ => {
                    return Err(format!(
                        "policy error in {rule}: {} has no string `msg`; a message is a string or an \
                         object with a string `msg`",
                        json(element)
                    ));
                }
            },
            other => {
                return Err(format!(
                    "policy error in {rule}: {} is not a message; a message is a string or an object \
                     with a string `msg`",
                    json(other)
                ));
            }
        }
    }
    Ok(out)
}

/// A value as compact JSON, for a message (Rego values with non-string keys are not JSON:
/// those are shown as regorus prints them).
fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Reads the policies of `dir` and decides on `input_json` (the documented input), for
/// `mobius policy eval`. The input's errors are at its line and column.
pub fn eval(dir: impl AsRef<Path>, input_json: &str) -> Result<Decision, PolicyError> {
    let policies = Policies::load(dir)?;
    let input = Input::from_json(input_json)?;
    Ok(policies.decide(&input))
}
