//! From a parsed rule to an [`Expr`], refusing at load what can only fail later.
//!
//! Under [`Strictness::Schema`](crate::Strictness) (the default) a rule must satisfy flagd's
//! targeting schema: known operators with the arguments the schema allows, `sem_ver` with one of
//! its eight operators and parseable literal versions, `fractional` with non-negative integer
//! weights whose sum fits, and a `$ref` that names an evaluator. [`Compiler::check_returns`]
//! adds what the schema cannot say: a literal the targeting can return must name a variant.
//! Under `Strictness::Flagd` only what cannot be evaluated at all is refused, and the rest
//! behaves at evaluation as flagd does (null from the operator, an error for a missing `$ref`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Entry, Expr, Fractional, Op, Path, Weight};
use crate::error::{LoadErrorKind, Problem};
use crate::fractional::MAX_TOTAL_WEIGHT;
use crate::position::{Kind, Node};
use crate::semver;

/// One step of a JSON pointer, borrowed from the document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'n> {
    Key(&'n str),
    Index(usize),
}

/// Renders a JSON pointer (RFC 6901).
pub(crate) fn pointer(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match seg {
            Seg::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

pub(crate) fn problem(node_offset: usize, path: &[Seg<'_>], kind: LoadErrorKind) -> Problem {
    Problem { offset: node_offset, pointer: pointer(path), kind }
}

/// Compiles the rules of one document; holds its compiled `$evaluators`.
pub(crate) struct Compiler<'n> {
    strict: bool,
    evaluators: HashMap<&'n str, (Arc<Expr>, &'n Node)>,
}

impl<'n> Compiler<'n> {
    pub fn new(strict: bool) -> Self {
        Compiler { strict, evaluators: HashMap::new() }
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Compiles a shared evaluator; a `$ref` inside one is refused (flagd does not resolve it).
    pub fn add_evaluator(&mut self, name: &'n str, node: &'n Node, path: &mut Vec<Seg<'n>>) -> Result<(), Problem> {
        let expr = self.rule(node, path, true)?;
        self.evaluators.insert(name, (Arc::new(expr), node));
        Ok(())
    }

    /// Compiles a flag's targeting (an object; `{}` is no targeting and gives `None`).
    pub fn targeting(&self, node: &'n Node, path: &mut Vec<Seg<'n>>) -> Result<Option<Expr>, Problem> {
        match node.as_object() {
            Some([]) => Ok(None),
            Some(_) => self.rule(node, path, false).map(Some),
            None => Err(problem(
                node.offset,
                path,
                LoadErrorKind::Expected { expected: "an object (a JsonLogic rule)", found: node.type_name() },
            )),
        }
    }

    /// Compiles any rule, as JsonLogic's own tests write them (a literal is a rule too).
    #[cfg(test)]
    pub fn any(&self, node: &'n Node) -> Result<Expr, Problem> {
        self.rule(node, &mut Vec::new(), false)
    }

    fn rule(&self, node: &'n Node, path: &mut Vec<Seg<'n>>, in_evaluator: bool) -> Result<Expr, Problem> {
        match &node.kind {
            Kind::Array(items) => {
                let mut exprs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    exprs.push(self.rule(item, path, in_evaluator)?);
                    path.pop();
                }
                if exprs.iter().all(|e| matches!(e, Expr::Literal(_))) {
                    Ok(Expr::Literal(node.to_value()))
                } else {
                    Ok(Expr::Array(exprs))
                }
            }
            Kind::Object(members) => {
                let [member] = members.as_slice() else {
                    return Err(problem(node.offset, path, LoadErrorKind::RuleShape { count: members.len() }));
                };
                path.push(Seg::Key(&member.key));
                let compiled = self.operation(member, node, path, in_evaluator);
                path.pop();
                compiled
            }
            _ => Ok(Expr::Literal(node.to_value())),
        }
    }

    fn operation(
        &self,
        member: &'n crate::position::Member,
        node: &'n Node,
        path: &mut Vec<Seg<'n>>,
        in_evaluator: bool,
    ) -> Result<Expr, Problem> {
        let name = member.key.as_str();
        let value = &member.value;
        match name {
            "$ref" => return self.reference(value, node, path, in_evaluator),
            "var" => return self.var(value, path),
            "fractional" => return self.fractional(value, path, in_evaluator),
            _ => {}
        }
        let Some(op) = Op::from_name(name) else {
            return Err(problem(member.key_offset, path, LoadErrorKind::UnknownOperator { name: name.to_owned() }));
        };
        // The schema wants an argument array, except for the unary operators.
        let args: &'n [Node] = match &value.kind {
            Kind::Array(items) => items,
            _ if !self.strict || matches!(op, Op::Not | Op::Truthy) => std::slice::from_ref(value),
            _ => {
                return Err(problem(
                    value.offset,
                    path,
                    LoadErrorKind::Expected { expected: "an array of arguments", found: value.type_name() },
                ));
            }
        };
        if self.strict {
            let arity = op.arity();
            if args.len() < arity.min || args.len() > arity.max {
                let expected = match (arity.min, arity.max) {
                    (min, usize::MAX) => format!("at least {min}"),
                    (min, max) if min == max => min.to_string(),
                    (min, max) => format!("{min} to {max}"),
                };
                return Err(problem(
                    value.offset,
                    path,
                    LoadErrorKind::Arity { operator: name.to_owned(), expected, found: args.len() },
                ));
            }
            check_arguments(op, name, args, path)?;
        }
        let mut exprs = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            if matches!(value.kind, Kind::Array(_)) {
                path.push(Seg::Index(i));
            }
            let expr = self.rule(arg, path, in_evaluator);
            if matches!(value.kind, Kind::Array(_)) {
                path.pop();
            }
            exprs.push(expr?);
        }
        Ok(Expr::Op(op, exprs))
    }

    fn reference(
        &self,
        value: &'n Node,
        node: &'n Node,
        path: &[Seg<'n>],
        in_evaluator: bool,
    ) -> Result<Expr, Problem> {
        if in_evaluator {
            return Err(problem(node.offset, path, LoadErrorKind::NestedRef));
        }
        let Some(name) = value.as_str() else {
            return Err(problem(
                value.offset,
                path,
                LoadErrorKind::Expected { expected: "an evaluator's name", found: value.type_name() },
            ));
        };
        match self.evaluators.get(name) {
            Some((expr, _)) => Ok(Expr::Shared(Arc::clone(expr))),
            None if self.strict => {
                Err(problem(value.offset, path, LoadErrorKind::UnknownEvaluator { name: name.to_owned() }))
            }
            None => Ok(Expr::Broken(format!("$ref to {name:?}, which is not in $evaluators"))),
        }
    }

    fn var(&self, value: &'n Node, path: &[Seg<'n>]) -> Result<Expr, Problem> {
        let (target, default) = match &value.kind {
            Kind::Array(items) => (items.first(), items.get(1)),
            _ => (Some(value), None),
        };
        let keys = match target.map(|t| &t.kind) {
            None | Some(Kind::Null) => Path::Whole,
            Some(Kind::String(s)) => {
                if self.strict && s.starts_with("$flagd.") && s != "$flagd.timestamp" && s != "$flagd.flagKey" {
                    return Err(problem(
                        value.offset,
                        path,
                        LoadErrorKind::Argument {
                            operator: "var".to_owned(),
                            message: format!("flagd injects only $flagd.timestamp and $flagd.flagKey, not {s}"),
                        },
                    ));
                }
                split_path(s)
            }
            // JsonLogic reads `{"var": 1}` as the path "1"; the schema wants a string.
            Some(Kind::Number(n)) if !self.strict => {
                split_path(&super::value::number_to_string(n.as_f64().unwrap_or(f64::NAN)))
            }
            Some(_) => {
                let target = target.unwrap_or(value);
                return Err(problem(
                    target.offset,
                    path,
                    LoadErrorKind::Expected { expected: "a var path (a string)", found: target.type_name() },
                ));
            }
        };
        let default = match default {
            None => None,
            Some(d @ Node { kind: Kind::Array(_) | Kind::Object(_), .. }) => {
                return Err(problem(
                    d.offset,
                    path,
                    LoadErrorKind::Expected {
                        expected: "a var default (null, boolean, string or number)",
                        found: d.type_name(),
                    },
                ));
            }
            Some(d) => Some(d.to_value()),
        };
        Ok(Expr::Var { path: keys, default })
    }

    fn fractional(&self, value: &'n Node, path: &mut Vec<Seg<'n>>, in_evaluator: bool) -> Result<Expr, Problem> {
        let Kind::Array(args) = &value.kind else {
            return Err(problem(
                value.offset,
                path,
                LoadErrorKind::Expected {
                    expected: "an array: [bucketBy?, [variant, weight?], …]",
                    found: value.type_name(),
                },
            ));
        };
        // The first argument is the bucketing value unless it is itself an entry.
        let (bucket_by, first_entry) = match args.first() {
            Some(first) if !matches!(first.kind, Kind::Array(_)) => {
                path.push(Seg::Index(0));
                let expr = self.rule(first, path, in_evaluator)?;
                path.pop();
                (Some(expr), 1)
            }
            _ => (None, 0),
        };
        if args.len() <= first_entry {
            return Err(problem(
                value.offset,
                path,
                LoadErrorKind::Argument {
                    operator: "fractional".to_owned(),
                    message: "there is no [variant, weight] entry".to_owned(),
                },
            ));
        }
        let mut entries = Vec::with_capacity(args.len() - first_entry);
        let mut total: u128 = 0;
        for (i, arg) in args.iter().enumerate().skip(first_entry) {
            path.push(Seg::Index(i));
            let entry = match &arg.kind {
                Kind::Array(parts) if (1..=2).contains(&parts.len()) => self.entry(parts, path, in_evaluator)?,
                _ => {
                    return Err(problem(
                        arg.offset,
                        path,
                        LoadErrorKind::Argument {
                            operator: "fractional".to_owned(),
                            message: format!("an entry is [variant, weight?], found {}", describe_entry(arg)),
                        },
                    ));
                }
            };
            if let Weight::Fixed(w) = entry.weight {
                total += u128::from(w);
            }
            path.pop();
            entries.push(entry);
        }
        if self.strict && total > u128::from(MAX_TOTAL_WEIGHT) {
            return Err(problem(value.offset, path, LoadErrorKind::WeightOverflow { total: total.to_string() }));
        }
        let fixed_weights = entries
            .iter()
            .map(|e| match e.weight {
                Weight::Fixed(w) => Some(w),
                Weight::Computed(_) => None,
            })
            .collect();
        Ok(Expr::Fractional(Box::new(Fractional { bucket_by, entries, fixed_weights })))
    }

    fn entry(&self, parts: &'n [Node], path: &mut Vec<Seg<'n>>, in_evaluator: bool) -> Result<Entry, Problem> {
        path.push(Seg::Index(0));
        let variant = self.rule(&parts[0], path, in_evaluator)?;
        path.pop();
        let Some(weight) = parts.get(1) else {
            return Ok(Entry { variant, weight: Weight::Fixed(1) });
        };
        path.push(Seg::Index(1));
        let weight = match &weight.kind {
            Kind::Number(n) => {
                let weight_problem = |kind| Err(problem(weight.offset, path, kind));
                if let Some(w) = n.as_u64() {
                    Weight::Fixed(w)
                } else if n.as_i64().is_some() || n.as_f64().is_some_and(|f| f < 0.0) {
                    if self.strict {
                        return weight_problem(LoadErrorKind::NegativeWeight { weight: n.to_string() });
                    }
                    Weight::Fixed(0)
                } else if self.strict {
                    return weight_problem(LoadErrorKind::FractionalWeight { weight: n.to_string() });
                } else {
                    // flagd truncates a float weight to an integer.
                    Weight::Fixed(n.as_f64().map_or(0, |f| f as u64))
                }
            }
            Kind::Object(_) => Weight::Computed(self.rule(weight, path, in_evaluator)?),
            _ if self.strict => {
                return Err(problem(
                    weight.offset,
                    path,
                    LoadErrorKind::Expected { expected: "a weight (an integer or a rule)", found: weight.type_name() },
                ));
            }
            // flagd ignores a weight that is not a number and counts 1.
            _ => Weight::Fixed(1),
        };
        path.pop();
        Ok(Entry { variant, weight })
    }

    /// Checks that every literal the targeting can return names a variant (`has_variant`).
    /// Follows the branches of `if`, the operands of `and`/`or` (either can be the result),
    /// `var`'s default, `$ref`s, and the variants of a `fractional`; a computed result cannot be
    /// checked here.
    pub fn check_returns(
        &self,
        node: &'n Node,
        path: &mut Vec<Seg<'n>>,
        has_variant: &dyn Fn(&str) -> bool,
    ) -> Result<(), Problem> {
        let name = match &node.kind {
            Kind::Null => return Ok(()),
            Kind::Bool(b) => b.to_string(),
            Kind::Number(n) => super::value::number_to_string(n.as_f64().unwrap_or(f64::NAN)),
            Kind::String(s) => s.clone(),
            Kind::Array(_) => {
                return Err(problem(node.offset, path, LoadErrorKind::NotAVariant { found: node.type_name() }));
            }
            Kind::Object(members) => return self.check_operation_returns(members, path, has_variant),
        };
        if has_variant(&name) {
            Ok(())
        } else {
            Err(problem(node.offset, path, LoadErrorKind::UnknownVariant { name }))
        }
    }

    fn check_operation_returns(
        &self,
        members: &'n [crate::position::Member],
        path: &mut Vec<Seg<'n>>,
        has_variant: &dyn Fn(&str) -> bool,
    ) -> Result<(), Problem> {
        let [member] = members else { return Ok(()) };
        let args: &'n [Node] = match &member.value.kind {
            Kind::Array(items) => items,
            _ => std::slice::from_ref(&member.value),
        };
        let returned: Vec<usize> = match member.key.as_str() {
            "if" | "?:" => (1..args.len())
                .step_by(2)
                .chain((args.len() % 2 == 1 && args.len() > 1).then_some(args.len() - 1))
                .collect(),
            "and" | "or" => (0..args.len()).collect(),
            // `var`'s default is returned when the context lacks the key.
            "var" if matches!(member.value.kind, Kind::Array(_)) && args.len() > 1 => vec![1],
            "fractional" => {
                let first = usize::from(!matches!(args.first().map(|a| &a.kind), Some(Kind::Array(_)) | None));
                path.push(Seg::Key("fractional"));
                for (i, arg) in args.iter().enumerate().skip(first) {
                    if let Kind::Array(parts) = &arg.kind
                        && let Some(variant) = parts.first()
                    {
                        path.extend([Seg::Index(i), Seg::Index(0)]);
                        self.check_returns(variant, path, has_variant)?;
                        path.truncate(path.len() - 2);
                    }
                }
                path.pop();
                return Ok(());
            }
            "$ref" => {
                let Some((_, evaluator)) = member.value.as_str().and_then(|name| self.evaluators.get(name)) else {
                    return Ok(());
                };
                let name = member.value.as_str().unwrap_or_default();
                let mut evaluator_path = vec![Seg::Key("$evaluators"), Seg::Key(name)];
                return self.check_returns(evaluator, &mut evaluator_path, has_variant);
            }
            _ => return Ok(()),
        };
        path.push(Seg::Key(&member.key));
        for i in returned {
            let is_array = matches!(member.value.kind, Kind::Array(_));
            if is_array {
                path.push(Seg::Index(i));
            }
            self.check_returns(&args[i], path, has_variant)?;
            if is_array {
                path.pop();
            }
        }
        path.pop();
        Ok(())
    }
}

/// `var` paths are dotted; `""` is the whole data.
fn split_path(s: &str) -> Path {
    if s.is_empty() { Path::Whole } else { Path::Keys(s.split('.').map(str::to_owned).collect()) }
}

fn describe_entry(node: &Node) -> String {
    match &node.kind {
        Kind::Array(parts) => format!("an array of {} items", parts.len()),
        _ => node.type_name().to_owned(),
    }
}

/// The schema's constraints on literal arguments of flagd's operators and of `missing`.
fn check_arguments(op: Op, name: &str, args: &[Node], path: &mut Vec<Seg<'_>>) -> Result<(), Problem> {
    let wrong = |path: &mut Vec<Seg<'_>>, index: usize, node: &Node, message: String| {
        path.push(Seg::Index(index));
        let p = problem(node.offset, path, LoadErrorKind::Argument { operator: name.to_owned(), message });
        path.pop();
        Err(p)
    };
    let is_rule = |node: &Node| matches!(node.kind, Kind::Object(_));
    match op {
        Op::StartsWith | Op::EndsWith => {
            for (i, arg) in args.iter().enumerate() {
                if !is_rule(arg) && arg.as_str().is_none() {
                    return wrong(path, i, arg, format!("arguments are strings or rules, found {}", arg.type_name()));
                }
            }
        }
        Op::SemVer => {
            for i in [0, 2] {
                let version = &args[i];
                match version.as_str() {
                    Some(v) if semver::parse(v).is_none() => {
                        return wrong(path, i, version, format!("{v:?} is not a semantic version"));
                    }
                    None if !is_rule(version) => {
                        let found = version.type_name();
                        return wrong(path, i, version, format!("a version is a string or a rule, found {found}"));
                    }
                    _ => {}
                }
            }
            if semver::Operator::parse(args[1].as_str().unwrap_or_default()).is_none() {
                let found = args[1].to_value();
                return wrong(path, 1, &args[1], format!("the operator is one of = != < <= > >= ~ ^, found {found}"));
            }
        }
        Op::Missing => {
            if let Some((i, arg)) = args.iter().enumerate().find(|(_, a)| a.as_str().is_none()) {
                return wrong(path, i, arg, format!("keys are strings, found {}", arg.type_name()));
            }
        }
        Op::MissingSome => {
            if !matches!(args[0].kind, Kind::Number(_)) {
                return wrong(
                    path,
                    0,
                    &args[0],
                    format!("the first argument is a count, found {}", args[0].type_name()),
                );
            }
            match &args[1].kind {
                Kind::Array(keys) => {
                    if let Some(key) = keys.iter().find(|k| k.as_str().is_none()) {
                        return wrong(path, 1, key, format!("keys are strings, found {}", key.type_name()));
                    }
                }
                _ => {
                    let found = args[1].type_name();
                    return wrong(path, 1, &args[1], format!("the second argument is an array of keys, found {found}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}
