//! Loading a flagd document into a [`FlagSet`]: parse with positions, validate, compile.
//!
//! Everything that can be known about a flag set is checked here, once, so evaluation has
//! nothing left to doubt: the schema's shape (state, variants of one type, a default that is a
//! variant, metadata of primitives), the rules (see `logic::compile`), and what the issue's
//! "bad input" lists. The first problem found, in document order, is the error.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{LoadError, LoadErrorKind, Location, Problem};
use crate::fractional::{Algorithm, METADATA_KEY};
use crate::logic::{Compiler, Seg, problem};
use crate::position::{self, Kind, Member, Node};
use crate::set::{Flag, FlagSet, Inner, VariantType};

/// How a document is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The `fractional` bucketing of a set whose metadata does not choose one (see
    /// [`fractional`](crate::fractional): `"mobius.fractional"`, which wins); moving a set
    /// from one to the other reshuffles its splits.
    pub fractional: Algorithm,
    /// What a document must prove at load.
    pub strictness: Strictness,
    /// When a `fractional` must bucket by the targeting key and the context has none, report
    /// `TARGETING_KEY_MISSING` instead of flagd's silent fallback to the default variant.
    pub require_targeting_key: bool,
}

/// How much a document must prove at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// flagd's schema, enforced (flagd itself only warns), plus: every literal the targeting
    /// can return names a variant, `$ref`s resolve, weights are non-negative and fit. What
    /// Mobius accepts from users.
    #[default]
    Schema,
    /// What flagd loads: the rules' arguments are checked at evaluation, where a bad one makes
    /// flagd's operator return null, a missing `$ref` is a PARSE_ERROR, a negative weight
    /// counts as zero, and an unknown variant is a PARSE_ERROR. For documents written for flagd.
    Flagd,
}

impl FlagSet {
    /// Loads a flagd document. `source_name` is what errors say the document is (a path).
    pub fn from_json(source_name: &str, text: &str, options: &LoadOptions) -> Result<FlagSet, LoadError> {
        let located = |p: Problem| {
            let (line, column) = position::line_column(text, p.offset);
            LoadError {
                source_name: source_name.to_owned(),
                location: Some(Location { line, column, pointer: p.pointer }),
                kind: p.kind,
            }
        };
        let root = position::parse(text).map_err(|e| {
            located(Problem { offset: e.offset, pointer: String::new(), kind: LoadErrorKind::Syntax(e.message) })
        })?;
        load(&root, options).map_err(located)
    }

    /// Reads and loads a flagd file; errors name the path.
    pub fn from_file(path: &std::path::Path, options: &LoadOptions) -> Result<FlagSet, LoadError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            source_name: name.clone(),
            location: None,
            kind: LoadErrorKind::Unreadable(e.to_string()),
        })?;
        FlagSet::from_json(&name, &text, options)
    }
}

fn expected(node: &Node, path: &[Seg<'_>], what: &'static str) -> Problem {
    problem(node.offset, path, LoadErrorKind::Expected { expected: what, found: node.type_name() })
}

fn load(root: &Node, options: &LoadOptions) -> Result<FlagSet, Problem> {
    let strict = options.strictness == Strictness::Schema;
    let Some(members) = root.as_object() else { return Err(expected(root, &[], "an object")) };
    let mut path = Vec::new();

    let set_metadata = match root.get("metadata") {
        Some(m) => metadata(m, &mut path, true)?,
        None => Map::new(),
    };
    let algorithm = match root.get("metadata").and_then(|m| m.value.get(METADATA_KEY)) {
        Some(chosen) => fractional_algorithm(&chosen.value)?,
        None => options.fractional,
    };
    if let Some(schema) = root.get("$schema")
        && schema.value.as_str().is_none()
    {
        return Err(expected(&schema.value, &[Seg::Key("$schema")], "a string"));
    }

    let mut compiler = Compiler::new(strict);
    if let Some(evaluators) = root.get("$evaluators") {
        path.push(Seg::Key("$evaluators"));
        let Some(entries) = evaluators.value.as_object() else {
            return Err(expected(&evaluators.value, &path, "an object of named rules"));
        };
        for entry in entries {
            path.push(Seg::Key(&entry.key));
            if !matches!(entry.value.kind, Kind::Object(_)) {
                return Err(expected(&entry.value, &path, "an object (a JsonLogic rule)"));
            }
            compiler.add_evaluator(&entry.key, &entry.value, &mut path)?;
            path.pop();
        }
        path.pop();
    }

    let Some(flags) = members.iter().find(|m| m.key == "flags") else {
        return Err(problem(root.offset, &[], LoadErrorKind::Missing { field: "flags" }));
    };
    path.push(Seg::Key("flags"));
    let mut loaded: Vec<Flag> = Vec::new();
    match &flags.value.kind {
        Kind::Object(entries) => {
            for entry in entries {
                path.push(Seg::Key(&entry.key));
                if entry.key.is_empty() {
                    return Err(problem(entry.key_offset, &path, LoadErrorKind::Missing { field: "a flag key" }));
                }
                loaded.push(flag(&entry.key, &entry.value, &set_metadata, &compiler, &mut path)?);
                path.pop();
            }
        }
        // flagd's daemon also takes an array of flags, each with its `key`.
        Kind::Array(items) => {
            let mut seen = HashMap::new();
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                let key = match item.get("key") {
                    Some(Member { value: Node { kind: Kind::String(k), .. }, .. }) if !k.is_empty() => k,
                    Some(m) => return Err(expected(&m.value, &path, "a non-empty string key")),
                    None => return Err(problem(item.offset, &path, LoadErrorKind::Missing { field: "key" })),
                };
                if seen.insert(key.as_str(), ()).is_some() {
                    return Err(problem(
                        item.offset,
                        &path,
                        LoadErrorKind::Argument {
                            operator: "flags".to_owned(),
                            message: format!("the key {key:?} appears twice"),
                        },
                    ));
                }
                loaded.push(flag(key, item, &set_metadata, &compiler, &mut path)?);
                path.pop();
            }
        }
        _ => return Err(expected(&flags.value, &path, "an object of flags")),
    }
    loaded.sort_by(|a, b| a.key.cmp(&b.key));
    let index = loaded.iter().enumerate().map(|(i, f)| (f.key.clone(), i)).collect();
    Ok(FlagSet {
        inner: Arc::new(Inner {
            flags: loaded,
            index,
            metadata: set_metadata,
            algorithm,
            require_targeting_key: options.require_targeting_key,
        }),
    })
}

fn flag<'n>(
    key: &str,
    node: &'n Node,
    set_metadata: &Map<String, Value>,
    compiler: &Compiler<'n>,
    path: &mut Vec<Seg<'n>>,
) -> Result<Flag, Problem> {
    let Some(_) = node.as_object() else { return Err(expected(node, path, "an object (a flag)")) };

    let Some(state) = node.get("state") else {
        return Err(problem(node.offset, path, LoadErrorKind::Missing { field: "state" }));
    };
    path.push(Seg::Key("state"));
    let enabled = match state.value.as_str() {
        Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(other) => {
            return Err(problem(state.value.offset, path, LoadErrorKind::State { found: other.to_owned() }));
        }
        None => return Err(expected(&state.value, path, "\"ENABLED\" or \"DISABLED\"")),
    };
    path.pop();

    let Some(variants_member) = node.get("variants") else {
        return Err(problem(node.offset, path, LoadErrorKind::Missing { field: "variants" }));
    };
    path.push(Seg::Key("variants"));
    let (variants, variant_type) = variants(&variants_member.value, path)?;
    path.pop();

    let default_variant = match node.get("defaultVariant") {
        None | Some(Member { value: Node { kind: Kind::Null, .. }, .. }) => None,
        Some(Member { value: Node { kind: Kind::String(name), offset }, .. }) => {
            match variants.iter().position(|(n, _)| n == name) {
                Some(i) => Some(i),
                None => {
                    path.push(Seg::Key("defaultVariant"));
                    let p = problem(*offset, path, LoadErrorKind::UnknownDefaultVariant { name: name.clone() });
                    return Err(p);
                }
            }
        }
        Some(m) => {
            path.push(Seg::Key("defaultVariant"));
            return Err(expected(&m.value, path, "a variant name or null"));
        }
    };

    let targeting = match node.get("targeting") {
        None => None,
        Some(t) => {
            path.push(Seg::Key("targeting"));
            let compiled = compiler.targeting(&t.value, path)?;
            if compiled.is_some() && compiler.is_strict() {
                let has_variant = |name: &str| variants.iter().any(|(n, _)| n == name);
                compiler.check_returns(&t.value, path, &has_variant)?;
            }
            path.pop();
            compiled
        }
    };

    // flagd merges metadata per evaluation with the flag's keys winning; done once here.
    let mut merged = set_metadata.clone();
    if let Some(m) = node.get("metadata") {
        merged.extend(metadata(m, path, false)?);
    }

    Ok(Flag {
        key: key.to_owned(),
        key_value: Value::String(key.to_owned()),
        enabled,
        variants,
        variant_type,
        default_variant,
        targeting,
        metadata: merged,
    })
}

fn variants<'n>(node: &'n Node, path: &mut Vec<Seg<'n>>) -> Result<(Vec<(String, Value)>, VariantType), Problem> {
    let Some(entries) = node.as_object() else { return Err(expected(node, path, "an object of variants")) };
    if entries.is_empty() {
        return Err(problem(node.offset, path, LoadErrorKind::NoVariants));
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut first: Option<VariantType> = None;
    for entry in entries {
        path.push(Seg::Key(&entry.key));
        if entry.key.is_empty() {
            return Err(problem(entry.key_offset, path, LoadErrorKind::Missing { field: "a variant name" }));
        }
        let this = match entry.value.kind {
            Kind::Bool(_) => VariantType::Boolean,
            Kind::String(_) => VariantType::String,
            Kind::Number(_) => VariantType::Number,
            Kind::Object(_) => VariantType::Object,
            Kind::Null | Kind::Array(_) => {
                let found = entry.value.type_name();
                return Err(problem(entry.value.offset, path, LoadErrorKind::VariantType { found }));
            }
        };
        match first {
            None => first = Some(this),
            Some(expected) if expected != this => {
                let kind =
                    LoadErrorKind::MixedVariants { expected: expected.article(), found: entry.value.type_name() };
                return Err(problem(entry.value.offset, path, kind));
            }
            Some(_) => {}
        }
        out.push((entry.key.clone(), entry.value.to_value()));
        path.pop();
    }
    Ok((out, first.unwrap_or(VariantType::Boolean)))
}

/// The algorithm a set's metadata chooses (`"mobius.fractional"`), or why it cannot be one.
fn fractional_algorithm(node: &Node) -> Result<Algorithm, Problem> {
    let path = [Seg::Key("metadata"), Seg::Key(METADATA_KEY)];
    let Some(name) = node.as_str() else { return Err(expected(node, &path, "\"high-precision\" or \"legacy\"")) };
    Algorithm::from_name(name)
        .ok_or_else(|| problem(node.offset, &path, LoadErrorKind::FractionalAlgorithm { found: name.to_owned() }))
}

/// Flag-set or flag metadata: an object of strings, numbers and booleans; a set's `flagSetId`
/// and `version` are strings; `"mobius.fractional"` belongs to the set's alone.
fn metadata<'n>(member: &'n Member, path: &mut Vec<Seg<'n>>, is_set: bool) -> Result<Map<String, Value>, Problem> {
    path.push(Seg::Key("metadata"));
    let result = (|| {
        let Some(entries) = member.value.as_object() else { return Err(expected(&member.value, path, "an object")) };
        let mut map = Map::new();
        for entry in entries {
            path.push(Seg::Key(&entry.key));
            if !is_set && entry.key == METADATA_KEY {
                return Err(problem(
                    entry.value.offset,
                    path,
                    LoadErrorKind::Metadata(
                        "\"mobius.fractional\" chooses the algorithm of the whole set: put it in the set's metadata",
                    ),
                ));
            }
            match entry.value.kind {
                Kind::String(_) => {}
                Kind::Number(_) | Kind::Bool(_) if is_set && (entry.key == "flagSetId" || entry.key == "version") => {
                    return Err(problem(
                        entry.value.offset,
                        path,
                        LoadErrorKind::Metadata("flagSetId and version are strings"),
                    ));
                }
                Kind::Number(_) | Kind::Bool(_) => {}
                _ => {
                    let found = entry.value.type_name();
                    return Err(problem(entry.value.offset, path, LoadErrorKind::MetadataValue { found }));
                }
            }
            map.insert(entry.key.clone(), entry.value.to_value());
            path.pop();
        }
        Ok(map)
    })();
    path.pop();
    result
}
