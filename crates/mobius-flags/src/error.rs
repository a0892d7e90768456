//! What goes wrong loading a flag set, and the codes an evaluation reports.

use std::fmt;

/// A flag set that was refused, with where and why.
///
/// Displayed as `source:line:column: at /json/pointer: what`, so an editor can jump to it and a
/// reader knows which flag it is about without counting lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct LoadError {
    /// The name the document was loaded under (a file path, or what the caller said).
    pub source_name: String,
    /// Where in the document, when the problem is in it (not for an unreadable file).
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

/// A position in a flag document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The JSON pointer (RFC 6901) of the value at fault; empty for the document itself.
    pub pointer: String,
}

impl LoadError {
    fn render(&self) -> String {
        match &self.location {
            Some(Location { line, column, pointer }) if pointer.is_empty() => {
                format!("{}:{line}:{column}: {}", self.source_name, self.kind)
            }
            Some(Location { line, column, pointer }) => {
                format!("{}:{line}:{column}: at {pointer}: {}", self.source_name, self.kind)
            }
            None => format!("{}: {}", self.source_name, self.kind),
        }
    }
}

/// Why a flag set was refused. Each variant's message (its `Display`) is its documentation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "the #[error] message of each variant says what it means")]
pub enum LoadErrorKind {
    #[error("the file cannot be read: {0}")]
    Unreadable(String),
    #[error("not JSON: {0}")]
    Syntax(String),
    #[error("expected {expected}, found {found}")]
    Expected { expected: &'static str, found: &'static str },
    #[error("`{field}` is required")]
    Missing { field: &'static str },
    #[error("state must be \"ENABLED\" or \"DISABLED\", found {found:?}")]
    State { found: String },
    #[error("a flag needs at least one variant")]
    NoVariants,
    #[error("a variant value must be a boolean, a string, a number or an object, found {found}")]
    VariantType { found: &'static str },
    #[error("the variants of a flag must all be of one type: the first is {expected}, this one is {found}")]
    MixedVariants { expected: &'static str, found: &'static str },
    #[error("defaultVariant {name:?} is not one of the flag's variants")]
    UnknownDefaultVariant { name: String },
    #[error("a metadata value must be a string, a number or a boolean, found {found}")]
    MetadataValue { found: &'static str },
    #[error("{0}")]
    Metadata(&'static str),
    #[error("unknown operator {name:?}")]
    UnknownOperator { name: String },
    #[error("a rule is an object with exactly one operator, this one has {count} keys")]
    RuleShape { count: usize },
    #[error("`{operator}` takes {expected} argument(s), found {found}")]
    Arity { operator: String, expected: String, found: usize },
    #[error("`{operator}`: {message}")]
    Argument { operator: String, message: String },
    #[error("$ref to {name:?}, which is not in $evaluators")]
    UnknownEvaluator { name: String },
    #[error("a $ref inside $evaluators is not supported (flagd does not resolve it)")]
    NestedRef,
    #[error("a fractional weight must not be negative, found {weight}")]
    NegativeWeight { weight: String },
    #[error("a fractional weight must be an integer, found {weight}")]
    FractionalWeight { weight: String },
    #[error("the fractional weights sum to {total}, past the limit of 2147483647")]
    WeightOverflow { total: String },
    #[error("unknown fractional algorithm {found:?}: \"mobius.fractional\" is \"high-precision\" or \"legacy\"")]
    FractionalAlgorithm { found: String },
    #[error("targeting can return {name:?}, which is not one of the flag's variants")]
    UnknownVariant { name: String },
    #[error("targeting can return {found}, which cannot name a variant")]
    NotAVariant { found: &'static str },
}

/// The OFREP error codes an evaluation can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No flag has this key in the set.
    FlagNotFound,
    /// The flag's rule failed to evaluate (flagd reports targeting errors this way), or the
    /// request's context is not JSON.
    ParseError,
    /// A rule needs the targeting key (`fractional` without a bucketing value) and the
    /// context has none, under [`LoadOptions::require_targeting_key`](crate::LoadOptions).
    TargetingKeyMissing,
    /// The context is not an object, or its `targetingKey` is not a string.
    InvalidContext,
    /// The flag's value is not of the type asked for (typed helpers only: OFREP has no types).
    TypeMismatch,
    /// Anything else, such as a rule exceeding its evaluation budget.
    General,
}

impl ErrorCode {
    /// The code as OFREP and OpenFeature spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why an evaluation resolved as it did (OpenFeature's reasons, as flagd uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No targeting: the default variant, the same for everyone (cacheable).
    Static,
    /// Targeting chose a variant.
    TargetingMatch,
    /// A `fractional` split chose the variant.
    Split,
    /// Targeting chose nothing (null), or there is no targeting and no default variant:
    /// the default variant, or the caller's default when the flag has none.
    Default,
    /// The flag is disabled: the caller's default.
    Disabled,
    /// Evaluation failed; see the error code.
    Error,
}

impl Reason {
    /// The reason as OFREP and OpenFeature spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A problem found while loading, before it is given a line and column.
#[derive(Debug)]
pub(crate) struct Problem {
    pub offset: usize,
    pub pointer: String,
    pub kind: LoadErrorKind,
}
