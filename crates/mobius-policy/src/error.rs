//! What goes wrong loading policies or reading an input, and where.

use std::path::PathBuf;

/// A position in a policy file or in an input document: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
}

/// Policies that were refused, or an input that could not be read.
///
/// Each message names the file and, when the problem is in its text, `line:column`, so an
/// editor can jump to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A directory or a file that could not be read.
    #[error("{}: cannot be read: {source}", path.display())]
    Unreadable {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A policy directory without a single `.rego` file: a gate that would allow everything
    /// by accident is refused instead.
    #[error("{}: no policy (*.rego) files", dir.display())]
    NoPolicies {
        /// The directory.
        dir: PathBuf,
    },
    /// Rego that does not parse or compile (syntax, an unsafe variable, a rule conflict found
    /// before evaluation, a missing `if` or `contains` of Rego v1).
    #[error("{}:{}:{}: {message}", file.display(), at.line, at.column)]
    Rego {
        /// The policy file.
        file: PathBuf,
        /// Where in it.
        at: Position,
        /// regorus's message.
        message: String,
    },
    /// What regorus refused without saying where in the file (a file over its size limits).
    #[error("{}: {message}", path.display())]
    Refused {
        /// The file, or the directory when regorus did not say which file.
        path: PathBuf,
        /// regorus's message.
        message: String,
    },
    /// A gate policy in another package than `mobius.gate`.
    #[error(
        "{}:{}:{}: package {package} is not a gate policy: a file in policies/ declares \
         `package mobius.gate` (tests, in *_test.rego files, may use any package)",
        file.display(), at.line, at.column
    )]
    WrongPackage {
        /// The policy file.
        file: PathBuf,
        /// Where its `package` is.
        at: Position,
        /// The package it declares.
        package: String,
    },
    /// A `deny`, `violation`, `warn` or `exception` rule that is not a set of messages.
    #[error(
        "{}:{}:{}: `{rule}` must be a multi-value rule (`{rule} contains msg if {{ … }}`): \
         the gate reads it as a set",
        file.display(), at.line, at.column
    )]
    NotASet {
        /// The policy file.
        file: PathBuf,
        /// Where the rule is.
        at: Position,
        /// The rule's name.
        rule: String,
    },
    /// An input document that is not JSON, or not the documented input.
    #[error("input at line {}, column {}: {message}", at.line, at.column)]
    Input {
        /// Where in the input.
        at: Position,
        /// What is wrong.
        message: String,
    },
}

impl PolicyError {
    /// The input error for what serde_json refused, at its position.
    pub(crate) fn input(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        // serde_json appends " at line L column C"; the position is said once, in front.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        let at = Position { line: clamp(error.line()), column: clamp(error.column()) };
        Self::Input { at, message }
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
