//! Evaluation of a parsed expression against a [`Context`].

use std::collections::HashMap;
use std::rc::Rc;

use super::functions;
use super::parser::{BinaryOp, Expr, Function, Literal};
use super::value::Value;
use super::{Context, ExprError, JobStatus};

/// The result of evaluating a node. A filter (`.*`) yields a list that later property
/// accesses map over, dropping elements where the property is missing, as GitHub's
/// `FilteredArray`; it becomes a plain array once anything else consumes it.
enum Node {
    Value(Value),
    Filtered(Vec<Value>),
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Value(v) => v,
            Node::Filtered(items) => Value::Array(Rc::new(items)),
        }
    }
}

/// Evaluates `expr`. Errors come only from functions (`format`, `fromJSON`, `hashFiles`);
/// a missing context or property is `null`.
pub fn evaluate(expr: &Expr, ctx: &dyn Context) -> Result<Value, ExprError> {
    let mut evaluator = Evaluator { ctx, contexts: HashMap::new() };
    Ok(evaluator.node(expr)?.into_value())
}

struct Evaluator<'a> {
    ctx: &'a dyn Context,
    /// Each context is converted once per evaluation so that `github == github` is the same
    /// instance, as it is in GitHub.
    contexts: HashMap<String, Value>,
}

impl Evaluator<'_> {
    fn value(&mut self, expr: &Expr) -> Result<Value, ExprError> {
        Ok(self.node(expr)?.into_value())
    }

    fn node(&mut self, expr: &Expr) -> Result<Node, ExprError> {
        Ok(match expr {
            Expr::Literal(lit) => Node::Value(match lit {
                Literal::Null => Value::Null,
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Number(n) => Value::Number(*n),
                Literal::String(s) => Value::String(s.clone()),
            }),
            Expr::Context(name) => Node::Value(self.context(name)),
            Expr::Property { target, name } => {
                let key = Value::String(name.clone());
                access(self.node(target)?, &key)
            }
            Expr::Index { target, index } => {
                let target = self.node(target)?;
                let key = self.value(index)?;
                access(target, &key)
            }
            Expr::Filter(target) => Node::Filtered(match self.node(target)? {
                Node::Value(v) => filter_one(&v),
                // A filter of a filter flattens one more level.
                Node::Filtered(items) => items.iter().flat_map(filter_one).collect(),
            }),
            Expr::Not(operand) => Node::Value(Value::Bool(!self.value(operand)?.is_truthy())),
            Expr::Binary { op, lhs, rhs } => Node::Value(self.binary(*op, lhs, rhs)?),
            Expr::Call { function, args } => Node::Value(self.call(*function, args)?),
        })
    }

    fn context(&mut self, name: &str) -> Value {
        if let Some(value) = self.contexts.get(name) {
            return value.clone();
        }
        let value = self.ctx.context(name).map_or(Value::Null, |json| Value::from_json(&json));
        self.contexts.insert(name.to_string(), value.clone());
        value
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr) -> Result<Value, ExprError> {
        let left = self.value(lhs)?;
        // `&&` and `||` short-circuit and return an operand, not a boolean.
        match op {
            BinaryOp::And if !left.is_truthy() => return Ok(left),
            BinaryOp::Or if left.is_truthy() => return Ok(left),
            BinaryOp::And | BinaryOp::Or => return self.value(rhs),
            _ => {}
        }
        let right = self.value(rhs)?;
        let ordering = left.loose_cmp(&right);
        Ok(Value::Bool(match op {
            BinaryOp::Eq => left.loose_eq(&right),
            BinaryOp::Ne => !left.loose_eq(&right),
            BinaryOp::Lt => ordering.is_some_and(|o| o.is_lt()),
            BinaryOp::Le => ordering.is_some_and(|o| o.is_le()),
            BinaryOp::Gt => ordering.is_some_and(|o| o.is_gt()),
            BinaryOp::Ge => ordering.is_some_and(|o| o.is_ge()),
            BinaryOp::And | BinaryOp::Or => false,
        }))
    }

    fn call(&mut self, function: Function, args: &[Expr]) -> Result<Value, ExprError> {
        let status = self.ctx.job_status();
        match function {
            Function::Success => return Ok(Value::Bool(status == JobStatus::Success)),
            Function::Failure => return Ok(Value::Bool(status == JobStatus::Failure)),
            Function::Cancelled => return Ok(Value::Bool(status == JobStatus::Cancelled)),
            Function::Always => return Ok(Value::Bool(true)),
            _ => {}
        }
        let values = args.iter().map(|a| self.value(a)).collect::<Result<Vec<_>, _>>()?;
        functions::call(function, &values, self.ctx)
    }
}

fn filter_one(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.to_vec(),
        Value::Object(entries) => entries.iter().map(|(_, v)| v.clone()).collect(),
        _ => Vec::new(),
    }
}

/// `target[key]`: objects by case-insensitive name, arrays by integral in-range index;
/// anything else, or a miss, is `null`.
fn access(target: Node, key: &Value) -> Node {
    match target {
        Node::Value(v) => Node::Value(lookup(&v, key).unwrap_or(Value::Null)),
        Node::Filtered(items) => Node::Filtered(items.iter().filter_map(|item| lookup(item, key)).collect()),
    }
}

fn lookup(target: &Value, key: &Value) -> Option<Value> {
    match target {
        Value::Object(_) => target.property(&key.to_display_string()).cloned(),
        Value::Array(items) => {
            let n = key.to_number();
            // `n as usize` saturates; the integral and sign checks make it exact.
            (n >= 0.0 && n.fract() == 0.0).then(|| items.get(n as usize).cloned()).flatten()
        }
        _ => None,
    }
}
