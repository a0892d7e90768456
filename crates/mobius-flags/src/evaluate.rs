//! Evaluating flags: [`FlagSet::evaluate`] and its typed helpers.
//!
//! An evaluation borrows everything it returns from the set (the variant's value and name, the
//! pre-merged metadata), so resolving a flag allocates nothing unless the rule computes
//! something. Outcomes follow flagd: no targeting is `STATIC`; targeting naming a variant is
//! `TARGETING_MATCH`, or `SPLIT` when a `fractional` chose it; targeting returning null (or one
//! of flagd's operators unable to decide) is `DEFAULT`; a disabled flag is `DISABLED` with no
//! value; a rule that fails is that flag's `ERROR` and nothing else's.

use std::cell::Cell;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ErrorCode, Reason};
use crate::logic::value::{View, number_to_string};
use crate::logic::{Abort, Env, Scope, State, eval};
use crate::set::{Flag, FlagSet};

/// The evaluation context: a JSON object, with the subject's `targetingKey` among its keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    map: Map<String, Value>,
}

/// A context that cannot be used, with the OFREP code to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ContextError {
    /// `PARSE_ERROR` (not JSON) or `INVALID_CONTEXT` (not an object, or a non-string targeting key).
    pub code: ErrorCode,
    /// What is wrong, for `errorDetails`.
    pub message: String,
}

impl Context {
    /// An empty context (no targeting key).
    pub fn new() -> Self {
        Context::default()
    }

    /// A context identifying a subject (what `fractional` buckets by).
    pub fn with_targeting_key(key: impl Into<String>) -> Self {
        let mut context = Context::new();
        context.map.insert("targetingKey".to_owned(), Value::String(key.into()));
        context
    }

    /// Adds or replaces an attribute.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.map.insert(key.into(), value.into());
        self
    }

    /// A context from a JSON value: an object whose `targetingKey`, if any, is a string
    /// (`INVALID_CONTEXT` otherwise).
    pub fn from_value(value: Value) -> Result<Self, ContextError> {
        let Value::Object(map) = value else {
            return Err(ContextError {
                code: ErrorCode::InvalidContext,
                message: "the context is not a JSON object".to_owned(),
            });
        };
        if let Some(key) = map.get("targetingKey")
            && !key.is_string()
        {
            return Err(ContextError {
                code: ErrorCode::InvalidContext,
                message: "targetingKey must be a string".to_owned(),
            });
        }
        Ok(Context { map })
    }

    /// A context from JSON bytes (`PARSE_ERROR` when they are not JSON). serde_json's nesting
    /// limit bounds how deep it can be.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ContextError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ContextError {
            code: ErrorCode::ParseError,
            message: format!("the context is not JSON: {e}"),
        })?;
        Context::from_value(value)
    }

    /// The subject's `targetingKey`, when it is a string.
    pub fn targeting_key(&self) -> Option<&str> {
        self.map.get("targetingKey").and_then(Value::as_str)
    }

    /// The attributes, as rules read them.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }
}

/// The outcome of evaluating one flag, borrowing from the set. Serialises in OFREP's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation<'a> {
    /// The flag's key, as asked for.
    pub key: &'a str,
    /// The variant's value; absent when the caller's default applies (disabled, no default
    /// variant, error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a Value>,
    /// The chosen variant's name; absent when `value` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<&'a str>,
    /// Why this outcome.
    pub reason: Reason,
    /// Set exactly when `reason` is `ERROR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// What went wrong, for people; set with `error_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
    /// The set's metadata overlaid with the flag's (for an unknown flag, the set's).
    pub metadata: &'a Map<String, Value>,
}

/// A typed evaluation: the value, or the caller's default when the flag has none for this
/// context or its value is not of the type asked for (`TYPE_MISMATCH`).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'a, T> {
    /// The flag's value, or the caller's default.
    pub value: T,
    /// The variant whose value `value` is; absent when it is the caller's default.
    pub variant: Option<&'a str>,
    /// As in [`Evaluation`]; `ERROR` with `TYPE_MISMATCH` for a value of another type.
    pub reason: Reason,
    /// As in [`Evaluation`].
    pub error_code: Option<ErrorCode>,
    /// As in [`Evaluation`].
    pub error_details: Option<String>,
    /// As in [`Evaluation`].
    pub metadata: &'a Map<String, Value>,
}

impl FlagSet {
    /// Evaluates one flag now.
    pub fn evaluate<'a>(&'a self, key: &'a str, context: &Context) -> Evaluation<'a> {
        self.evaluate_with_clock(key, context, None)
    }

    /// Evaluates one flag as of `timestamp` (unix seconds, what `$flagd.timestamp` reads).
    pub fn evaluate_at<'a>(&'a self, key: &'a str, context: &Context, timestamp: i64) -> Evaluation<'a> {
        self.evaluate_with_clock(key, context, Some(timestamp))
    }

    /// `timestamp: None` reads the clock, and only if a rule asks for `$flagd.timestamp`.
    fn evaluate_with_clock<'a>(&'a self, key: &'a str, context: &Context, timestamp: Option<i64>) -> Evaluation<'a> {
        match self.get(key) {
            Some(flag) => self.resolve(flag, context, timestamp),
            None => Evaluation {
                key,
                value: None,
                variant: None,
                reason: Reason::Error,
                error_code: Some(ErrorCode::FlagNotFound),
                error_details: Some(format!("flag {key:?} is not in the set")),
                metadata: &self.inner.metadata,
            },
        }
    }

    /// Evaluates every enabled flag, by key. Disabled flags are left out, as flagd's bulk
    /// evaluation leaves them out.
    pub fn evaluate_all<'a>(&'a self, context: &Context) -> Vec<Evaluation<'a>> {
        self.evaluate_all_with_clock(context, None)
    }

    /// Every enabled flag as of `timestamp` (unix seconds).
    pub fn evaluate_all_at<'a>(&'a self, context: &Context, timestamp: i64) -> Vec<Evaluation<'a>> {
        self.evaluate_all_with_clock(context, Some(timestamp))
    }

    fn evaluate_all_with_clock<'a>(&'a self, context: &Context, timestamp: Option<i64>) -> Vec<Evaluation<'a>> {
        // One instant for the whole set, read at most once.
        let clock = Cell::new(timestamp);
        self.inner.flags.iter().filter(|f| f.enabled).map(|f| self.resolve_shared(f, context, &clock)).collect()
    }

    fn resolve<'a>(&'a self, flag: &'a Flag, context: &Context, timestamp: Option<i64>) -> Evaluation<'a> {
        self.resolve_shared(flag, context, &Cell::new(timestamp))
    }

    fn resolve_shared<'a>(&'a self, flag: &'a Flag, context: &Context, clock: &Cell<Option<i64>>) -> Evaluation<'a> {
        let outcome = |variant: Option<usize>, reason: Reason| Evaluation {
            key: &flag.key,
            value: variant.map(|i| &flag.variants[i].1),
            variant: variant.map(|i| flag.variants[i].0.as_str()),
            reason,
            error_code: None,
            error_details: None,
            metadata: &flag.metadata,
        };
        let failure = |code: ErrorCode, details: String| Evaluation {
            reason: Reason::Error,
            error_code: Some(code),
            error_details: Some(details),
            ..outcome(None, Reason::Error)
        };
        if !flag.enabled {
            return outcome(None, Reason::Disabled);
        }
        let Some(targeting) = &flag.targeting else {
            let reason = if flag.default_variant.is_some() { Reason::Static } else { Reason::Default };
            return outcome(flag.default_variant, reason);
        };
        let env = Env {
            context: &context.map,
            flag_key: &flag.key_value,
            timestamp: Cell::new(clock.get()),
            algorithm: self.inner.algorithm,
            require_targeting_key: self.inner.require_targeting_key,
        };
        let mut state = State::new();
        let evaluated = eval(targeting, &env, Scope::Root, &mut state);
        clock.set(env.timestamp.get());
        let result = match evaluated.map_err(|abort| *abort) {
            Ok(result) => result,
            Err(Abort::Undecided) => return outcome(flag.default_variant, Reason::Default),
            Err(Abort::TargetingKeyMissing) => {
                return failure(
                    ErrorCode::TargetingKeyMissing,
                    "fractional buckets by the targeting key and the context has none".to_owned(),
                );
            }
            Err(Abort::Error(message)) => return failure(ErrorCode::ParseError, message),
            Err(Abort::Budget) => {
                return failure(ErrorCode::General, "the targeting rule exceeded its evaluation budget".to_owned());
            }
        };
        // A boolean names the variant "true" or "false" (flagd's shorthand); a number, its text.
        let number;
        let name = match result.view() {
            View::Null => return outcome(flag.default_variant, Reason::Default),
            View::Str(s) => s,
            View::Bool(true) => "true",
            View::Bool(false) => "false",
            View::Num(n) => {
                number = number_to_string(n);
                &number
            }
            View::Arr(_) | View::Obj => {
                return failure(
                    ErrorCode::ParseError,
                    "targeting returned an array or object, not a variant name".to_owned(),
                );
            }
        };
        match flag.variant_index(name) {
            Some(i) => outcome(Some(i), if state.split { Reason::Split } else { Reason::TargetingMatch }),
            None => failure(
                ErrorCode::ParseError,
                format!("targeting returned {name:?}, which is not a variant of flag {:?}", flag.key),
            ),
        }
    }

    fn typed<'a, T>(
        &'a self,
        key: &'a str,
        context: &Context,
        default: T,
        expected: &str,
        extract: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Resolved<'a, T> {
        let evaluation = self.evaluate(key, context);
        let resolved = |value, error_code, error_details| Resolved {
            value,
            variant: evaluation.variant,
            reason: evaluation.reason,
            error_code,
            error_details,
            metadata: evaluation.metadata,
        };
        match evaluation.value {
            None => resolved(default, evaluation.error_code, evaluation.error_details.clone()),
            Some(v) => match extract(v) {
                Some(value) => resolved(value, None, None),
                None => Resolved {
                    variant: None,
                    reason: Reason::Error,
                    ..resolved(
                        default,
                        Some(ErrorCode::TypeMismatch),
                        Some(format!("flag {key:?} is not {expected}: its value is {v}")),
                    )
                },
            },
        }
    }

    /// A boolean flag's value, or `default`.
    pub fn boolean<'a>(&'a self, key: &'a str, context: &Context, default: bool) -> Resolved<'a, bool> {
        self.typed(key, context, default, "a boolean", Value::as_bool)
    }

    /// A string flag's value, or `default`.
    pub fn string<'a>(&'a self, key: &'a str, context: &Context, default: &'a str) -> Resolved<'a, &'a str> {
        self.typed(key, context, default, "a string", Value::as_str)
    }

    /// An integer: a JSON integer, or a number with no fractional part that fits an `i64`.
    pub fn integer<'a>(&'a self, key: &'a str, context: &Context, default: i64) -> Resolved<'a, i64> {
        self.typed(key, context, default, "an integer", |v| {
            v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
        })
    }

    /// A number flag's value, or `default`.
    pub fn float<'a>(&'a self, key: &'a str, context: &Context, default: f64) -> Resolved<'a, f64> {
        self.typed(key, context, default, "a number", Value::as_f64)
    }

    /// An object flag's value, or `default`.
    pub fn object<'a>(
        &'a self,
        key: &'a str,
        context: &Context,
        default: &'a Map<String, Value>,
    ) -> Resolved<'a, &'a Map<String, Value>> {
        self.typed(key, context, default, "an object", Value::as_object)
    }
}
