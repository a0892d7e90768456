//! A JSON parser that remembers where every value starts.
//!
//! serde_json says where a document stops being JSON, but not where a well-formed value sits,
//! and a flag set's errors are mostly about well-formed values in the wrong place ("this weight
//! is negative"). So the document is parsed once into [`Node`]s carrying their byte offset;
//! tokens are still decoded by serde_json (strings with their escapes, numbers with their exact
//! `Number` representation), so values mean exactly what they mean everywhere else.
//!
//! Offsets become `line:column` only when an error is reported ([`line_column`]), which keeps
//! the happy path free of counting; columns count characters, as editors do.
//!
//! Limits: nesting deeper than [`MAX_DEPTH`] is refused (the parser is recursive and must not
//! overflow the stack on hostile input), and an object repeating a key is refused (JSON parsers
//! disagree on which copy wins; a flag set that says two things is a mistake).

use std::collections::HashSet;

use serde_json::{Map, Number, Value};

/// How deep arrays and objects may nest in a flag document.
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value with the byte offset where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub offset: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

/// One `"key": value` pair of an object, in document order.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub key: String,
    pub key_offset: usize,
    pub value: Node,
}

/// A syntax error: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

impl Node {
    /// The JSON type's name, for messages ("expected a string, found an array").
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Array(_) => "an array",
            Kind::Object(_) => "an object",
        }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The member named `key` of an object (keys are unique: the parser refuses repeats).
    pub fn get(&self, key: &str) -> Option<&Member> {
        self.as_object()?.iter().find(|m| m.key == key)
    }

    /// The plain serde_json value, for variant values and metadata that are served as they are.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::String(s) => Value::String(s.clone()),
            Kind::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Kind::Object(members) => {
                let mut map = Map::new();
                for m in members {
                    map.insert(m.key.clone(), m.value.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// Parses a whole document; trailing non-whitespace is an error.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser { text, bytes: text.as_bytes(), at: 0 };
    parser.skip_whitespace();
    let node = parser.value(0)?;
    parser.skip_whitespace();
    if parser.at < parser.bytes.len() {
        return Err(parser.error("trailing characters after the document"));
    }
    Ok(node)
}

/// The 1-based line and column where the value at `pointer` (object keys from the root)
/// starts in `text`; `None` when the text is not JSON or has no such value. For checks made
/// outside this crate (Mobius's own extensions to a flag) that report where, as loading does.
pub fn locate(text: &str, pointer: &[&str]) -> Option<(usize, usize)> {
    let mut node = &parse(text).ok()?;
    for key in pointer {
        node = &node.get(key)?.value;
    }
    Some(line_column(text, node.offset))
}

/// The 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // The offset always sits on a character boundary (the parser only stops on ASCII), but a
    // lossy count keeps this total for any offset.
    let column = String::from_utf8_lossy(&text.as_bytes()[line_start..offset]).chars().count() + 1;
    (line, column)
}

struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
}

impl<'t> Parser<'t> {
    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError { offset: self.at, message: message.into() }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let offset = self.at;
        let kind = match self.bytes.get(self.at) {
            None => return Err(self.error("unexpected end of the document, expected a value")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') => self.keyword("true", Kind::Bool(true))?,
            Some(b'f') => self.keyword("false", Kind::Bool(false))?,
            Some(b'n') => self.keyword("null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => Kind::Number(self.number()?),
            Some(_) => return Err(self.error(format!("expected a value, found {}", self.found()))),
        };
        Ok(Node { offset, kind })
    }

    /// What sits at the cursor, for "found …" in messages.
    fn found(&self) -> String {
        match self.text.get(self.at..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("{c:?}"),
            None => "the end of the document".to_owned(),
        }
    }

    fn keyword(&mut self, word: &str, kind: Kind) -> Result<Kind, SyntaxError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(kind)
        } else {
            Err(self.error(format!("expected a value, found {}", self.found())))
        }
    }

    fn enter(&self, depth: usize) -> Result<usize, SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(depth + 1)
    }

    fn array(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        let depth = self.enter(depth)?;
        self.at += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Kind::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Kind::Array(items));
                }
                _ => return Err(self.error(format!("expected ',' or ']', found {}", self.found()))),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        let depth = self.enter(depth)?;
        self.at += 1; // '{'
        let mut members: Vec<Member> = Vec::new();
        // Small objects are checked for repeats by a scan; big ones (a set's `flags`) by a set.
        let mut seen: Option<HashSet<String>> = None;
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Kind::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_offset = self.at;
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(self.error(format!("expected a key in double quotes, found {}", self.found())));
            }
            let key = self.string()?;
            let repeated = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => members.iter().any(|m| m.key == key),
            };
            if repeated {
                return Err(SyntaxError { offset: key_offset, message: format!("the key {key:?} appears twice") });
            }
            if seen.is_none() && members.len() >= 16 {
                let mut set: HashSet<String> = members.iter().map(|m| m.key.clone()).collect();
                set.insert(key.clone());
                seen = Some(set);
            }
            self.skip_whitespace();
            if self.bytes.get(self.at) != Some(&b':') {
                return Err(self.error(format!("expected ':' after a key, found {}", self.found())));
            }
            self.at += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push(Member { key, key_offset, value });
            self.skip_whitespace();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Kind::Object(members));
                }
                _ => return Err(self.error(format!("expected ',' or '}}', found {}", self.found()))),
            }
        }
    }

    /// A string token; escapes are decoded by serde_json, so only the token's end is found here.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.at;
        self.at += 1; // opening quote
        let mut escaped = false;
        loop {
            match self.bytes.get(self.at) {
                None => {
                    return Err(SyntaxError { offset: start, message: "a string is not closed".to_owned() });
                }
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    escaped = true;
                    self.at += 2;
                }
                Some(0..=0x1f) => return Err(self.error("a control character inside a string must be escaped")),
                Some(_) => self.at += 1,
            }
        }
        let token = &self.text[start..self.at.min(self.text.len())];
        if !escaped {
            return Ok(token[1..token.len() - 1].to_owned());
        }
        serde_json::from_str::<String>(token)
            .map_err(|e| SyntaxError { offset: start, message: format!("invalid string: {}", strip_position(&e)) })
    }

    fn number(&mut self) -> Result<Number, SyntaxError> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        let token = &self.text[start..self.at];
        serde_json::from_str::<Number>(token)
            .map_err(|_| SyntaxError { offset: start, message: format!("invalid number {token:?}") })
    }
}

/// serde_json's message without its own " at line 1 column N" (the token was parsed alone).
fn strip_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, line: usize, column: usize, message: &str) {
        let error = parse(text).expect_err(text);
        assert_eq!(line_column(text, error.offset), (line, column), "{text}: {error:?}");
        assert!(error.message.contains(message), "{text}: {error:?}");
    }

    #[test]
    fn values_round_trip_through_serde_json() {
        let text = r#"{"a": [1, -2.5e3, "x\u00e9\n", true, false, null, {}], "b": {"c": 18446744073709551615}}"#;
        let node = parse(text).unwrap();
        assert_eq!(node.to_value(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn offsets_point_at_each_value() {
        let text = "{\n  \"k\": [1,\n   \"é\", \"x\"]\n}";
        let node = parse(text).unwrap();
        let array = &node.get("k").unwrap().value;
        let Kind::Array(items) = &array.kind else { panic!() };
        assert_eq!(line_column(text, array.offset), (2, 8));
        assert_eq!(line_column(text, items[1].offset), (3, 4));
        // Columns count characters, not bytes: "é" is two bytes.
        assert_eq!(line_column(text, items[2].offset), (3, 9));
    }

    #[test]
    fn a_pointer_is_located_or_not_found() {
        let text = "{\n  \"flags\": {\"f\": {\n    \"rollout\": {\"to\": 101}}}}";
        assert_eq!(locate(text, &["flags", "f", "rollout", "to"]), Some((3, 23)));
        assert_eq!(locate(text, &[]), Some((1, 1)));
        assert_eq!(locate(text, &["flags", "g"]), None);
        assert_eq!(locate("{", &[]), None, "not JSON");
    }

    #[test]
    fn syntax_errors_say_where() {
        check_error("{\"a\": 1,}", 1, 9, "expected a key");
        check_error("{\"a\" 1}", 1, 6, "expected ':'");
        check_error("[1 2]", 1, 4, "expected ',' or ']'");
        check_error("{\"a\": tru}", 1, 7, "expected a value");
        check_error("{\"a\": 01}", 1, 7, "invalid number");
        check_error("{\"a\": \"x", 1, 7, "not closed");
        check_error("{\"a\": \"\\q\"}", 1, 7, "invalid string");
        check_error("{} x", 1, 4, "trailing");
        check_error("{\n\"a\": 1,\n\"a\": 2}", 3, 1, "appears twice");
        check_error("", 1, 1, "end of the document");
    }

    #[test]
    fn repeated_keys_are_found_in_big_objects_too() {
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\": {i},"));
        }
        text.push_str("\"k3\": 0}");
        check_error(&text, 1, text.len() - 7, "\"k3\" appears twice");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(100_000);
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("nested deeper than 128"), "{error:?}");
        assert_eq!(error.offset, MAX_DEPTH);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        parse(&ok).unwrap();
    }
}
