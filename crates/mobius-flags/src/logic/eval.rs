//! Evaluating a compiled rule against a context.
//!
//! The context is never copied: `var` borrows from it, and flagd's injected properties
//! (`$flagd.flagKey`, `$flagd.timestamp`) are answered from [`Env`] instead of being inserted
//! into a cloned map. Every evaluation has a step budget, and recursion follows the rule's
//! depth, which loading bounded, so no context and no rule can hang or overflow the stack.

use std::cell::Cell;
use std::cmp::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::value::{
    self, NULL, Val, View, compare, loose_equal, parse_float, strict_equal, to_js_string, to_number, truthy,
};
use super::{Expr, Fractional, Op, Path, Weight};
use crate::fractional::{self, Algorithm};
use crate::semver;

/// How many rule nodes one evaluation may visit (a `map` over a large context array counts
/// each element): far beyond any real rule, far below a stalled request.
const STEP_BUDGET: u32 = 250_000;

/// What one evaluation of one flag knows besides the data.
pub(crate) struct Env<'a> {
    pub context: &'a Map<String, Value>,
    /// The flag's key as a JSON string, for `$flagd.flagKey`.
    pub flag_key: &'a Value,
    /// Unix seconds, for `$flagd.timestamp`: given, or read from the clock the first time a
    /// rule asks (most rules never do, and the clock is a tenth of a simple evaluation).
    pub timestamp: Cell<Option<i64>>,
    pub algorithm: Algorithm,
    pub require_targeting_key: bool,
}

/// What `var` reads: the context, an element inside `map`/`filter`/`all`/…, or `reduce`'s pair.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    Root,
    Item(&'a Value),
    Reduce { current: &'a Value, accumulator: &'a Value },
}

/// Why an evaluation stopped before producing a value.
#[derive(Debug)]
pub(crate) enum Abort {
    /// One of flagd's operators cannot decide for this context (a version that is not one, a
    /// subject with nothing to bucket by): flagd's operators return null and the flag resolves
    /// to its default variant.
    Undecided,
    /// `fractional` needs the targeting key, the context has none, and the set asks for an error.
    TargetingKeyMissing,
    /// The rule failed (JsonLogic's errors: PARSE_ERROR in flagd).
    Error(String),
    /// The step budget ran out.
    Budget,
}

impl Env<'_> {
    pub fn timestamp(&self) -> i64 {
        if let Some(t) = self.timestamp.get() {
            return t;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.timestamp.set(Some(now));
        now
    }
}

/// Mutable state of one evaluation.
pub(crate) struct State {
    steps: u32,
    /// Whether the value just produced came straight out of a `fractional` (reason SPLIT).
    pub split: bool,
}

impl State {
    pub fn new() -> Self {
        State { steps: STEP_BUDGET, split: false }
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, Box<Abort>> {
    Err(Box::new(Abort::Error(message.into())))
}

fn too_deep(_: value::TooDeep) -> Box<Abort> {
    Box::new(Abort::Error("a value is nested too deeply to compare or print".to_owned()))
}

/// Evaluates `expr`. `state.split` afterwards says whether a `fractional` chose the result.
pub(crate) fn eval<'a>(expr: &'a Expr, env: &Env<'a>, scope: Scope<'a>, st: &mut State) -> Result<Val<'a>, Box<Abort>> {
    st.steps = st.steps.checked_sub(1).ok_or_else(|| Box::new(Abort::Budget))?;
    let result = match expr {
        Expr::Literal(v) => Val::Ref(v),
        Expr::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(eval(item, env, scope, st)?.into_json());
            }
            Val::owned(Value::Array(out))
        }
        Expr::Var { path, default } => match lookup(path, env, scope) {
            Some(v) => v,
            None => default.as_ref().map_or(NULL, Val::Ref),
        },
        // The result of these is the result of the child evaluated last: SPLIT carries through.
        Expr::Shared(shared) => return eval(shared, env, scope, st),
        Expr::Op(op @ (Op::If | Op::And | Op::Or), args) => return control(*op, args, env, scope, st),
        Expr::Fractional(f) => {
            let v = fractional(f, env, scope, st)?;
            st.split = true;
            return Ok(v);
        }
        Expr::Op(op, args) => operation(*op, args, env, scope, st)?,
        Expr::Broken(message) => return error(message.clone()),
    };
    st.split = false;
    Ok(result)
}

/// `if`, `and`, `or`: lazy, and what they return is one of their operands.
fn control<'a>(
    op: Op,
    args: &'a [Expr],
    env: &Env<'a>,
    scope: Scope<'a>,
    st: &mut State,
) -> Result<Val<'a>, Box<Abort>> {
    match op {
        Op::If => {
            let mut i = 0;
            while i + 1 < args.len() {
                if truthy(&eval(&args[i], env, scope, st)?) {
                    return eval(&args[i + 1], env, scope, st);
                }
                i += 2;
            }
            if i + 1 == args.len() {
                return eval(&args[i], env, scope, st);
            }
            st.split = false;
            Ok(NULL)
        }
        _ => {
            let want = op == Op::Or;
            let mut last = NULL;
            for arg in args {
                last = eval(arg, env, scope, st)?;
                if truthy(&last) == want {
                    return Ok(last);
                }
            }
            if args.is_empty() {
                st.split = false;
            }
            Ok(last)
        }
    }
}

#[inline]
fn lookup<'a>(path: &'a Path, env: &Env<'a>, scope: Scope<'a>) -> Option<Val<'a>> {
    match path {
        Path::Whole => Some(whole(env, scope)),
        Path::Keys(keys) => lookup_keys(keys.iter().map(String::as_str), env, scope),
    }
}

/// `{"var": ""}`: the whole data. At the root that includes the injected `$flagd` object, so it
/// is the one read that copies the context.
fn whole<'a>(env: &Env<'a>, scope: Scope<'a>) -> Val<'a> {
    match scope {
        Scope::Root => {
            let mut map = env.context.clone();
            map.insert("$flagd".to_owned(), flagd_properties(env));
            Val::owned(Value::Object(map))
        }
        Scope::Item(v) => Val::Ref(v),
        Scope::Reduce { current, accumulator } => {
            let mut map = Map::new();
            map.insert("current".to_owned(), current.clone());
            map.insert("accumulator".to_owned(), accumulator.clone());
            Val::owned(Value::Object(map))
        }
    }
}

fn flagd_properties(env: &Env<'_>) -> Value {
    let mut map = Map::new();
    map.insert("flagKey".to_owned(), env.flag_key.clone());
    map.insert("timestamp".to_owned(), Value::from(env.timestamp()));
    Value::Object(map)
}

/// Follows a dotted path; `None` when any step is missing (then `var`'s default applies).
fn lookup_keys<'a, 'k>(mut keys: impl Iterator<Item = &'k str>, env: &Env<'a>, scope: Scope<'a>) -> Option<Val<'a>> {
    let first = keys.next()?;
    let start: &'a Value = match scope {
        Scope::Root if first == "$flagd" => {
            // flagd overwrites any `$flagd` the caller sent.
            return match (keys.next(), keys.next()) {
                (None, _) => Some(Val::owned(flagd_properties(env))),
                (Some("flagKey"), None) => Some(Val::Ref(env.flag_key)),
                (Some("timestamp"), None) => Some(Val::Num(env.timestamp() as f64)),
                _ => None,
            };
        }
        Scope::Root => env.context.get(first)?,
        Scope::Item(v) => child(v, first)?,
        Scope::Reduce { current, .. } if first == "current" => current,
        Scope::Reduce { accumulator, .. } if first == "accumulator" => accumulator,
        Scope::Reduce { .. } => return None,
    };
    let mut at = start;
    for key in keys {
        at = child(at, key)?;
    }
    Some(Val::Ref(at))
}

/// `data[key]` for JSON: an object's member, or an array's element by canonical index.
#[inline]
fn child<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => {
            let canonical =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) && (key == "0" || !key.starts_with('0'));
            if canonical { items.get(key.parse::<usize>().ok()?) } else { None }
        }
        _ => None,
    }
}

/// The arguments of an eager operator, evaluated on demand.
struct Args<'a, 'e, 's> {
    exprs: &'a [Expr],
    env: &'e Env<'a>,
    scope: Scope<'a>,
    st: &'s mut State,
}

impl<'a> Args<'a, '_, '_> {
    /// Argument `i`, or `None` when absent (JavaScript's `undefined`).
    #[inline]
    fn get(&mut self, i: usize) -> Result<Option<Val<'a>>, Box<Abort>> {
        match self.exprs.get(i) {
            Some(e) => eval(e, self.env, self.scope, self.st).map(Some),
            None => Ok(None),
        }
    }

    #[inline]
    fn or_null(&mut self, i: usize) -> Result<Val<'a>, Box<Abort>> {
        Ok(self.get(i)?.unwrap_or(NULL))
    }

    fn all(&mut self) -> Result<Vec<Val<'a>>, Box<Abort>> {
        (0..self.exprs.len()).map(|i| self.or_null(i)).collect()
    }

    /// ToNumber of argument `i`; absent is NaN.
    fn number(&mut self, i: usize) -> Result<f64, Box<Abort>> {
        match self.get(i)? {
            Some(v) => to_number(v.view()).map_err(too_deep),
            None => Ok(f64::NAN),
        }
    }
}

fn operation<'a>(
    op: Op,
    exprs: &'a [Expr],
    env: &Env<'a>,
    scope: Scope<'a>,
    st: &mut State,
) -> Result<Val<'a>, Box<Abort>> {
    if matches!(op, Op::Map | Op::Filter | Op::Reduce | Op::All | Op::None | Op::Some) {
        return super::iterate::iterate(op, exprs, env, scope, st);
    }
    let mut args = Args { exprs, env, scope, st };
    Ok(match op {
        Op::Equal | Op::NotEqual => {
            let (a, b) = (args.or_null(0)?, args.or_null(1)?);
            Val::bool(loose_equal(&a, &b).map_err(too_deep)? == (op == Op::Equal))
        }
        Op::StrictEqual | Op::StrictNotEqual => {
            let same = match (args.get(0)?, args.get(1)?) {
                (None, None) => true,
                (Some(a), Some(b)) => strict_equal(&a, &b),
                _ => false,
            };
            Val::bool(same == (op == Op::StrictEqual))
        }
        Op::Not => Val::bool(!args.get(0)?.is_some_and(|v| truthy(&v))),
        Op::Truthy => Val::bool(args.get(0)?.is_some_and(|v| truthy(&v))),
        Op::Less | Op::LessOrEqual | Op::Greater | Op::GreaterOrEqual => Val::bool(relation(op, &mut args)?),
        Op::Add => {
            let mut sum = 0.0;
            for v in args.all()? {
                sum += parse_float(v.view()).map_err(too_deep)?;
            }
            Val::Num(sum)
        }
        Op::Multiply => {
            // `reduce` without a seed: one argument comes back untouched, none is an error.
            let mut values = args.all()?.into_iter();
            let Some(first) = values.next() else { return error("* needs at least one argument") };
            let Some(second) = values.next() else { return Ok(first) };
            let mut product =
                parse_float(first.view()).map_err(too_deep)? * parse_float(second.view()).map_err(too_deep)?;
            for v in values {
                product *= parse_float(v.view()).map_err(too_deep)?;
            }
            Val::Num(product)
        }
        Op::Subtract => match args.exprs.len() {
            0 => Val::Num(f64::NAN),
            1 => Val::Num(-args.number(0)?),
            _ => Val::Num(args.number(0)? - args.number(1)?),
        },
        Op::Divide => Val::Num(args.number(0)? / args.number(1)?),
        Op::Modulo => Val::Num(args.number(0)? % args.number(1)?),
        Op::Min | Op::Max => {
            let mut best = if op == Op::Min { f64::INFINITY } else { f64::NEG_INFINITY };
            for v in args.all()? {
                let n = to_number(v.view()).map_err(too_deep)?;
                if n.is_nan() {
                    return Ok(Val::Num(f64::NAN));
                }
                best = if op == Op::Min { best.min(n) } else { best.max(n) };
            }
            Val::Num(best)
        }
        Op::Cat => {
            let mut out = String::new();
            for v in args.all()? {
                out.push_str(&to_js_string(v.view()).map_err(too_deep)?);
            }
            Val::string(out)
        }
        Op::Substr => substr(&mut args)?,
        Op::In => {
            let (needle, haystack) = (args.or_null(0)?, args.or_null(1)?);
            Val::bool(match haystack.view() {
                View::Str(s) => s.contains(to_js_string(needle.view()).map_err(too_deep)?.as_ref()),
                View::Arr(items) => items.iter().any(|item| strict_equal(&needle, &Val::Ref(item))),
                _ => false,
            })
        }
        Op::Merge => {
            let mut out = Vec::new();
            for v in args.all()? {
                match v.into_json() {
                    Value::Array(items) => out.extend(items),
                    other => out.push(other),
                }
            }
            Val::owned(Value::Array(out))
        }
        Op::Missing => missing(&mut args)?,
        Op::MissingSome => {
            let need = args.number(0)?;
            let options = args.or_null(1)?;
            let keys: Vec<Value> = match options.view() {
                View::Arr(items) => items.to_vec(),
                _ => Vec::new(),
            };
            let absent = missing_keys(&keys, args.env, args.scope)?;
            let found = (keys.len() - absent.len()) as f64;
            if found >= need { Val::owned(Value::Array(Vec::new())) } else { Val::owned(Value::Array(absent)) }
        }
        Op::SemVer => {
            let (left, operator, right) = (args.or_null(0)?, args.or_null(1)?, args.or_null(2)?);
            if args.exprs.len() != 3 {
                return Err(Box::new(Abort::Undecided));
            }
            let parsed = (
                left.as_str().and_then(semver::parse),
                operator.as_str().and_then(semver::Operator::parse),
                right.as_str().and_then(semver::parse),
            );
            match parsed {
                (Some(l), Some(o), Some(r)) => Val::bool(o.holds(&l, &r)),
                _ => return Err(Box::new(Abort::Undecided)),
            }
        }
        Op::StartsWith | Op::EndsWith => {
            let (value, affix) = (args.or_null(0)?, args.or_null(1)?);
            match (value.as_str(), affix.as_str(), args.exprs.len()) {
                (Some(v), Some(a), 2) => {
                    Val::bool(if op == Op::StartsWith { v.starts_with(a) } else { v.ends_with(a) })
                }
                _ => return Err(Box::new(Abort::Undecided)),
            }
        }
        Op::If | Op::And | Op::Or | Op::Map | Op::Filter | Op::Reduce | Op::All | Op::None | Op::Some => {
            unreachable!("handled before")
        }
    })
}

/// `<`, `<=` (with the three-argument "between" form), `>`, `>=`.
fn relation(op: Op, args: &mut Args<'_, '_, '_>) -> Result<bool, Box<Abort>> {
    let holds = |a: &Val<'_>, b: &Val<'_>, strict: bool| -> Result<bool, Box<Abort>> {
        Ok(match compare(a, b).map_err(too_deep)? {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => !strict,
            _ => false,
        })
    };
    let (Some(a), Some(b)) = (args.get(0)?, args.get(1)?) else { return Ok(false) };
    Ok(match op {
        Op::Less | Op::LessOrEqual => {
            let strict = op == Op::Less;
            let c = args.get(2)?;
            holds(&a, &b, strict)? && c.map_or(Ok(true), |c| holds(&b, &c, strict))?
        }
        Op::Greater => holds(&b, &a, true)?,
        _ => holds(&b, &a, false)?,
    })
}

/// JsonLogic's `substr`: JavaScript's `String.prototype.substr` over UTF-16 code units, with a
/// negative length counting from the end.
fn substr<'a>(args: &mut Args<'a, '_, '_>) -> Result<Val<'a>, Box<Abort>> {
    let source = args.or_null(0)?;
    let units: Vec<u16> = to_js_string(source.view()).map_err(too_deep)?.encode_utf16().collect();
    let len = units.len() as f64;
    let start = integer(args.number(1)?);
    let start = if start < 0.0 { (len + start).max(0.0) } else { start.min(len) };
    let end = match args.get(2)? {
        None => len,
        Some(v) => {
            let count = integer(to_number(v.view()).map_err(too_deep)?);
            if count < 0.0 { (len + count).max(start) } else { (start + count).min(len) }
        }
    };
    let (from, to) = (start as usize, end.max(start) as usize);
    Ok(Val::string(String::from_utf16_lossy(&units[from..to])))
}

/// ECMAScript ToIntegerOrInfinity: NaN is 0, otherwise truncated.
fn integer(n: f64) -> f64 {
    if n.is_nan() { 0.0 } else { n.trunc() }
}

fn missing<'a>(args: &mut Args<'a, '_, '_>) -> Result<Val<'a>, Box<Abort>> {
    let values = args.all()?;
    let keys: Vec<Value> = match values.first().map(Val::view) {
        Some(View::Arr(items)) => items.to_vec(),
        _ => values.into_iter().map(Val::into_json).collect(),
    };
    Ok(Val::owned(Value::Array(missing_keys(&keys, args.env, args.scope)?)))
}

/// The keys whose `var` is absent, null or the empty string.
fn missing_keys(keys: &[Value], env: &Env<'_>, scope: Scope<'_>) -> Result<Vec<Value>, Box<Abort>> {
    let mut absent = Vec::new();
    for key in keys {
        let path = to_js_string(value::view(key)).map_err(too_deep)?;
        let found = if path.is_empty() { Some(whole(env, scope)) } else { lookup_keys(path.split('.'), env, scope) };
        let present = found.is_some_and(|v| !matches!(v.view(), View::Null | View::Str("")));
        if !present {
            absent.push(key.clone());
        }
    }
    Ok(absent)
}

/// `a` followed by `b`, in `buffer` when it fits (the usual flag key and targeting key do).
fn concat<'b>(buffer: &'b mut [u8; 256], a: &str, b: &str) -> std::borrow::Cow<'b, str> {
    let len = a.len() + b.len();
    if len > buffer.len() {
        return std::borrow::Cow::Owned(format!("{a}{b}"));
    }
    buffer[..a.len()].copy_from_slice(a.as_bytes());
    buffer[a.len()..len].copy_from_slice(b.as_bytes());
    // Two whole UTF-8 strings side by side are UTF-8.
    std::borrow::Cow::Borrowed(std::str::from_utf8(&buffer[..len]).unwrap_or_default())
}

/// flagd's `fractional`: hash the bucketing value, pick the entry, return its variant.
fn fractional<'a>(f: &'a Fractional, env: &Env<'a>, scope: Scope<'a>, st: &mut State) -> Result<Val<'a>, Box<Abort>> {
    let bucket_value = match &f.bucket_by {
        Some(expr) => eval(expr, env, scope, st)?,
        None => NULL,
    };
    let mut buffer = [0u8; 256];
    let composed;
    let bucket_by: &str = match bucket_value.view() {
        View::Str(s) => s,
        // flagd drops a null bucketing value and falls back to flag key + targeting key.
        View::Null => {
            let key = env.context.get("targetingKey").and_then(Value::as_str).filter(|k| !k.is_empty());
            let Some(targeting_key) = key else {
                return Err(Box::new(if env.require_targeting_key {
                    Abort::TargetingKeyMissing
                } else {
                    Abort::Undecided
                }));
            };
            composed = concat(&mut buffer, env.flag_key.as_str().unwrap_or_default(), targeting_key);
            &composed
        }
        _ => return Err(Box::new(Abort::Undecided)),
    };
    let computed: Vec<u64>;
    let weights: &[u64] = match &f.fixed_weights {
        Some(fixed) => fixed,
        None => {
            let mut out = Vec::with_capacity(f.entries.len());
            for entry in &f.entries {
                out.push(match &entry.weight {
                    Weight::Fixed(w) => *w,
                    Weight::Computed(expr) => match eval(expr, env, scope, st)?.view() {
                        // Negative weights count as zero; fractions are truncated, as flagd does.
                        View::Num(n) if n.is_finite() => n.max(0.0) as u64,
                        _ => return Err(Box::new(Abort::Undecided)),
                    },
                });
            }
            computed = out;
            &computed
        }
    };
    let Some(index) = fractional::pick(env.algorithm, bucket_by, weights) else {
        return Err(Box::new(Abort::Undecided));
    };
    let variant = eval(&f.entries[index].variant, env, scope, st)?;
    match variant.view() {
        View::Null | View::Bool(_) | View::Num(_) | View::Str(_) => Ok(variant),
        View::Arr(_) | View::Obj => Err(Box::new(Abort::Undecided)),
    }
}
