//! JsonLogic with flagd's operators: rules compiled once at load, evaluated per request.
//!
//! A targeting rule is compiled from the parsed document into an [`Expr`] tree: operators are
//! looked up once (an unknown one is a load error, with its position), static `var` paths are
//! split once, literal subtrees are folded into single values that evaluation borrows, and
//! `$ref`s point at the shared compiled evaluator. Evaluation ([`eval`]) then never clones the
//! context and allocates only for what a rule computes (a `cat`, a `map`).
//!
//! Semantics are JsonLogic's reference implementation (JavaScript's coercions, [`value`]),
//! plus flagd's `fractional`, `sem_ver`, `starts_with` and `ends_with`.

mod compile;
mod eval;
mod iterate;
#[cfg(test)]
mod tests;
pub(crate) mod value;

use std::sync::Arc;

use serde_json::Value;

pub(crate) use compile::{Compiler, Seg, problem};
pub(crate) use eval::{Abort, Env, Scope, State, eval};

/// A compiled rule.
#[derive(Debug)]
pub(crate) enum Expr {
    /// A value with no operator inside: evaluation borrows it.
    Literal(Value),
    /// An array with operators inside: each element is evaluated.
    Array(Vec<Expr>),
    /// `var`: a path split at load and a literal default (the schema allows no other).
    Var {
        path: Path,
        default: Option<Value>,
    },
    Op(Op, Vec<Expr>),
    Fractional(Box<Fractional>),
    /// A `$ref` to a shared evaluator, compiled once for every flag that uses it.
    Shared(Arc<Expr>),
    /// What flagd loads but cannot evaluate (a `$ref` to a missing evaluator, under
    /// `Strictness::Flagd`): an error at evaluation.
    Broken(String),
}

/// A `var` path, split at load.
#[derive(Debug)]
pub(crate) enum Path {
    /// `""`, `null` or no path: the whole data.
    Whole,
    Keys(Vec<String>),
}

/// A compiled `fractional`.
#[derive(Debug)]
pub(crate) struct Fractional {
    /// The bucketing expression; `None` means flag key + targeting key.
    pub bucket_by: Option<Expr>,
    pub entries: Vec<Entry>,
    /// The weights, when none is computed: the common case needs no allocation.
    pub fixed_weights: Option<Vec<u64>>,
}

/// One `[variant, weight?]` of a `fractional`.
#[derive(Debug)]
pub(crate) struct Entry {
    pub variant: Expr,
    pub weight: Weight,
}

#[derive(Debug)]
pub(crate) enum Weight {
    Fixed(u64),
    Computed(Expr),
}

/// The operators, looked up once at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    If,
    Or,
    And,
    Equal,
    StrictEqual,
    NotEqual,
    StrictNotEqual,
    Not,
    Truthy,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Min,
    Max,
    Cat,
    Substr,
    In,
    Merge,
    Map,
    Filter,
    Reduce,
    All,
    None,
    Some,
    Missing,
    MissingSome,
    SemVer,
    StartsWith,
    EndsWith,
}

/// How many arguments an operator takes, as flagd's targeting schema says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arity {
    pub min: usize,
    pub max: usize,
}

impl Op {
    pub fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "if" | "?:" => Op::If,
            "or" => Op::Or,
            "and" => Op::And,
            "==" => Op::Equal,
            "===" => Op::StrictEqual,
            "!=" => Op::NotEqual,
            "!==" => Op::StrictNotEqual,
            "!" => Op::Not,
            "!!" => Op::Truthy,
            "<" => Op::Less,
            "<=" => Op::LessOrEqual,
            ">" => Op::Greater,
            ">=" => Op::GreaterOrEqual,
            "+" => Op::Add,
            "-" => Op::Subtract,
            "*" => Op::Multiply,
            "/" => Op::Divide,
            "%" => Op::Modulo,
            "min" => Op::Min,
            "max" => Op::Max,
            "cat" => Op::Cat,
            "substr" => Op::Substr,
            "in" => Op::In,
            "merge" => Op::Merge,
            "map" => Op::Map,
            "filter" => Op::Filter,
            "reduce" => Op::Reduce,
            "all" => Op::All,
            "none" => Op::None,
            "some" => Op::Some,
            "missing" => Op::Missing,
            "missing_some" => Op::MissingSome,
            "sem_ver" => Op::SemVer,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            _ => return None,
        })
    }

    pub fn arity(self) -> Arity {
        let (min, max) = match self {
            Op::If | Op::Or | Op::And | Op::Add | Op::Subtract | Op::Min | Op::Max | Op::Merge | Op::Cat => {
                (1, usize::MAX)
            }
            Op::Multiply => (2, usize::MAX),
            Op::Missing => (0, usize::MAX),
            Op::Not | Op::Truthy => (1, 1),
            Op::Less | Op::LessOrEqual | Op::Substr => (2, 3),
            Op::Reduce | Op::SemVer => (3, 3),
            Op::MissingSome => (2, 2),
            Op::Equal
            | Op::StrictEqual
            | Op::NotEqual
            | Op::StrictNotEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::Divide
            | Op::Modulo
            | Op::In
            | Op::Map
            | Op::Filter
            | Op::All
            | Op::None
            | Op::Some
            | Op::StartsWith
            | Op::EndsWith => (2, 2),
        };
        Arity { min, max }
    }
}
