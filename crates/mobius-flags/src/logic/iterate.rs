//! The operators that apply a rule to each element of an array: `map`, `filter`, `reduce`,
//! `all`, `none`, `some`. Inside the rule, `var` reads the element (for `reduce`: `current`
//! and `accumulator`), as in JsonLogic.

use serde_json::Value;

use super::eval::{Abort, Env, Scope, State, eval};
use super::value::{NULL, Val, truthy};
use super::{Expr, Op};

pub(crate) fn iterate<'a>(
    op: Op,
    exprs: &'a [Expr],
    env: &Env<'a>,
    scope: Scope<'a>,
    st: &mut State,
) -> Result<Val<'a>, Box<Abort>> {
    let source = match exprs.first() {
        Some(e) => eval(e, env, scope, st)?,
        None => NULL,
    };
    let logic = exprs.get(1);
    if op == Op::Reduce {
        let initial = match exprs.get(2) {
            Some(e) => eval(e, env, scope, st)?,
            None => NULL,
        };
        let (Some(logic), Some(items)) = (logic, source.as_json().and_then(Value::as_array)) else {
            return Ok(initial);
        };
        let mut accumulator = initial.into_json();
        for item in items {
            let scope = Scope::Reduce { current: item, accumulator: &accumulator };
            accumulator = eval(logic, env, scope, st)?.into_json();
        }
        return Ok(Val::owned(accumulator));
    }
    let items: &[Value] = source.as_json().and_then(Value::as_array).map_or(&[], Vec::as_slice);
    over(op, items, logic, env, st)
}

/// Applies `logic` to each item; every result is owned, so items may be shorter-lived than
/// the rule (an array computed by `merge`).
fn over<'b>(
    op: Op,
    items: &'b [Value],
    logic: Option<&'b Expr>,
    env: &Env<'b>,
    st: &mut State,
) -> Result<Val<'static>, Box<Abort>> {
    let test = |item: &'b Value, st: &mut State| -> Result<Val<'b>, Box<Abort>> {
        match logic {
            Some(logic) => eval(logic, env, Scope::Item(item), st),
            None => Ok(NULL),
        }
    };
    Ok(match op {
        Op::Map => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(test(item, st)?.into_json());
            }
            Val::owned(Value::Array(out))
        }
        Op::Filter => {
            let mut out = Vec::new();
            for item in items {
                if truthy(&test(item, st)?) {
                    out.push(item.clone());
                }
            }
            Val::owned(Value::Array(out))
        }
        // JsonLogic: `all` of nothing is false.
        Op::All => {
            let mut all = !items.is_empty();
            for item in items {
                if !truthy(&test(item, st)?) {
                    all = false;
                    break;
                }
            }
            Val::bool(all)
        }
        _ => {
            let mut any = false;
            for item in items {
                if truthy(&test(item, st)?) {
                    any = true;
                    break;
                }
            }
            Val::bool(if op == Op::Some { any } else { !any })
        }
    })
}
