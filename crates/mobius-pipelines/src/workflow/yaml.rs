//! A YAML document as a tree of positioned nodes.
//!
//! The workflow model is built from this tree rather than with `#[derive(Deserialize)]`
//! because lint needs every key and value with its position, must keep going after the first
//! problem, and must report unknown keys instead of silently ignoring them.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column in a workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in chars.
    pub column: usize,
}

/// One YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

/// The value of a [`Node`], after YAML 1.2 core-schema resolution of plain scalars.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node as a string if it is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar rendered as the string GitHub would see (`true`, `3`, `1.5`, `` for null).
    pub fn scalar_string(&self) -> Option<String> {
        match &self.kind {
            Kind::Null => Some(String::new()),
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Str(s) => Some(s.clone()),
            Kind::Seq(_) | Kind::Map(_) => None,
        }
    }

    /// A short name of the node's type, for "must be a …, not a …" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Int(_) | Kind::Float(_) => "number",
            Kind::Str(_) => "string",
            Kind::Seq(_) => "sequence",
            Kind::Map(_) => "mapping",
        }
    }

    /// The node as JSON (map keys rendered as strings), for values kept raw.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            Kind::Null => J::Null,
            Kind::Bool(b) => J::Bool(*b),
            Kind::Int(i) => J::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Kind::Str(s) => J::String(s.clone()),
            Kind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => {
                J::Object(entries.iter().map(|(k, v)| (k.scalar_string().unwrap_or_default(), v.to_json())).collect())
            }
        }
    }
}

/// Why a file is not YAML, with the position the parser reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// The deepest nesting of sequences and mappings a workflow file may have.
pub(crate) const MAX_DEPTH: usize = 32;

/// Parses one YAML document. An empty document is a null node.
pub(crate) fn load(text: &str) -> Result<Node, YamlError> {
    // YAML 1.2: only `true`/`false` are booleans, so `on:` stays a key. GitHub rejects
    // duplicate keys and does not implement `<<` merge keys, so neither do we.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.merge_keys = serde_saphyr::MergeKeyPolicy::AsOrdinary;
    // Building a positioned node costs tens of KiB of stack per level in a debug build, so the
    // library's default cap (64 levels) let hostile nesting overflow a 2 MiB thread stack at
    // about 50. Real workflows nest about ten levels deep.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    options.budget = Some(budget);
    match serde_saphyr::from_str_with_options::<Option<Node>>(text, options) {
        Ok(node) => Ok(node.unwrap_or(Node { pos: Pos { line: 1, column: 1 }, kind: Kind::Null })),
        Err(err) => {
            let pos = err
                .location()
                .map(|l| Pos { line: l.line() as usize, column: l.column() as usize })
                .unwrap_or(Pos { line: 1, column: 1 });
            // The library words this as the breach of its own `Budget`.
            if let serde_saphyr::Error::Budget { breach: serde_saphyr::budget::BudgetBreach::Depth { .. }, .. } =
                err.without_snippet()
            {
                return Err(YamlError { pos, message: format!("nested more than {MAX_DEPTH} levels deep") });
            }
            // The rendered error carries a snippet; the first line is the message itself.
            let rendered = err.without_snippet().to_string();
            let mut message = rendered.lines().next().unwrap_or("invalid YAML");
            // The position is reported separately, and the library's advice about its own
            // options means nothing to a workflow author.
            if let Some(i) = message.rfind(" at line ") {
                message = &message[..i];
            }
            let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            Err(YamlError { pos, message })
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        let pos = Pos { line: spanned.referenced.line() as usize, column: spanned.referenced.column() as usize };
        Ok(Node { pos, kind: spanned.value })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_core_schema() {
        let node = load("on: push\nx: &a [1, yes]\ny: *a\n").unwrap();
        let Kind::Map(entries) = &node.kind else { panic!("{node:?}") };
        assert_eq!(entries[0].0.as_str(), Some("on"));
        assert_eq!(entries[0].1.pos, Pos { line: 1, column: 5 });
        assert_eq!(entries[1].1.to_json(), serde_json::json!([1, "yes"]));
        assert_eq!(entries[2].1.to_json(), serde_json::json!([1, "yes"]));
    }

    /// Found by the property `mutated_starter_workflows_are_linted_at_positions_inside_them`:
    /// a value nested 50 levels deep (`x: [[[…]]]`, inside the library's default cap of 64)
    /// overflowed the test thread's stack in a debug build and aborted the process.
    #[test]
    fn deep_nesting_is_refused_before_it_overflows_the_stack() {
        // Three mappings hold `x`, so 30 sequences make 33 levels.
        for n in [MAX_DEPTH - 2, 50, 64, 10_000] {
            let text = format!("on: push\njobs:\n  a:\n    x: {}1{}\n", "[".repeat(n), "]".repeat(n));
            let err = load(&text).unwrap_err();
            assert_eq!(err.pos.line, 4, "{n}");
            if n < 255 {
                assert_eq!(err.message, format!("nested more than {MAX_DEPTH} levels deep"), "{n}");
            }
        }
        let within = format!("x: {}1{}\n", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(load(&within).is_ok());
    }

    #[test]
    fn errors_have_positions() {
        let err = load("a: [1,\nb: c\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }
}
