//! Values and GitHub's coercion, equality and ordering rules.

use std::cmp::Ordering;
use std::rc::Rc;

/// A runtime value of the expression language.
///
/// Numbers are `f64` as in GitHub. Arrays and objects are reference-counted because GitHub
/// compares them by identity: two objects are equal only when they are the same instance.
/// Objects keep their keys in source order and look them up case-insensitively.
#[derive(Debug, Clone)]
pub enum Value {
    /// `null`, also the result of a missing property.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A double, including `NaN` and the infinities.
    Number(f64),
    /// A string.
    String(String),
    /// An array; equal to another only when it is the same instance.
    Array(Rc<Vec<Value>>),
    /// An object with keys in source order; equal to another only when it is the same instance.
    Object(Rc<Vec<(String, Value)>>),
}

impl Value {
    /// Converts a JSON value, keeping object keys in the order serde_json yields them.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::Array(Rc::new(items.iter().map(Value::from_json).collect())),
            serde_json::Value::Object(map) => {
                Value::Object(Rc::new(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect()))
            }
        }
    }

    /// Converts to JSON. Integral numbers become JSON integers; `NaN` and the infinities,
    /// which JSON cannot represent, become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(entries) => {
                serde_json::Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// GitHub's truthiness: `false`, `0`, `-0`, `""`, `null` and `NaN` are falsy; arrays and
    /// objects are always truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// Whether the value is `null`, a boolean, a number or a string.
    pub fn is_primitive(&self) -> bool {
        !matches!(self, Value::Array(_) | Value::Object(_))
    }

    /// GitHub's number conversion: null → 0, booleans → 1/0, strings parsed (see
    /// [`parse_number`]), arrays and objects → `NaN`.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => parse_number(s),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// GitHub's string conversion: null → `''`, booleans → `true`/`false`, numbers without a
    /// trailing `.0`, arrays → `Array`, objects → `Object` (as the runner's `ConvertToString`).
    pub fn to_display_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format_number(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) => "Array".to_string(),
            Value::Object(_) => "Object".to_string(),
        }
    }

    /// Looks up an object property case-insensitively, as GitHub does; the first key that
    /// matches wins. Anything but an object yields `None`.
    pub fn property(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Loose equality (`==`): values of different kinds are compared as numbers, strings
    /// case-insensitively, `NaN` equals nothing, arrays and objects only themselves.
    pub fn loose_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => eq_ignore_case(a, b),
            (Value::Array(a), Value::Array(b)) => Rc::ptr_eq(a, b),
            (Value::Object(a), Value::Object(b)) => Rc::ptr_eq(a, b),
            _ => self.to_number() == other.to_number(),
        }
    }

    /// Ordering for `<`, `<=`, `>`, `>=`: two strings compare case-insensitively, anything else
    /// as numbers. `None` (every comparison false) when a `NaN` is involved.
    pub fn loose_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::String(a), Value::String(b)) => Some(cmp_ignore_case(a, b)),
            _ => self.to_number().partial_cmp(&other.to_number()),
        }
    }
}

/// Case-insensitive string equality. GitHub uses `OrdinalIgnoreCase`, which folds Unicode
/// simple case; `to_uppercase` per char is the closest std offers.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    cmp_ignore_case(a, b) == Ordering::Equal
}

/// Case-insensitive ordering by upper-cased chars, as .NET's `OrdinalIgnoreCase`.
pub(crate) fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.chars().flat_map(char::to_uppercase).cmp(b.chars().flat_map(char::to_uppercase))
}

/// Upper-cases for case-insensitive substring searches.
pub(crate) fn fold(s: &str) -> String {
    s.to_uppercase()
}

/// GitHub's string-to-number parsing (the runner's `ExpressionUtility.ParseNumber`): trimmed;
/// empty → 0; a decimal with optional sign, point and exponent; `0x` hex and `0o` octal;
/// `Infinity`/`-Infinity`; anything else is `NaN`.
pub fn parse_number(text: &str) -> f64 {
    let s = text.trim();
    if s.is_empty() {
        return 0.0;
    }
    if is_decimal(s) {
        return s.parse().unwrap_or(f64::NAN);
    }
    if let Some(hex) = s.strip_prefix("0x") {
        // The runner parses hex as a 32-bit integer; longer literals do not parse.
        return u32::from_str_radix(hex, 16).map_or(f64::NAN, |n| f64::from(n as i32));
    }
    if let Some(oct) = s.strip_prefix("0o") {
        return i32::from_str_radix(oct, 8).ok().filter(|_| !oct.starts_with(['+', '-'])).map_or(f64::NAN, f64::from);
    }
    match s {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// `[+-]digits[.digits][e[+-]digits]` with at least one digit in the mantissa: what .NET's
/// `Double.TryParse` accepts with sign, decimal point and exponent allowed. Rust's parser
/// would also take `inf` and `nan`, which GitHub does not.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Formats a number as GitHub prints it: integers without a fractional part, `NaN`,
/// `Infinity`, `-Infinity`, otherwise the shortest round-trip decimal.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if n == 0.0 {
        // -0 prints as 0.
        "0".to_string()
    } else {
        // Display of f64 is the shortest round-trip form and already omits `.0` for integers.
        // GitHub uses .NET's round-trip format, which switches to exponent notation for very
        // large or small magnitudes; we do not.
        format!("{n}")
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_like_the_runner() {
        assert_eq!(parse_number(" 12 "), 12.0);
        assert_eq!(parse_number(""), 0.0);
        assert_eq!(parse_number("0x10"), 16.0);
        assert_eq!(parse_number("0o17"), 15.0);
        assert_eq!(parse_number("-1.5e2"), -150.0);
        assert_eq!(parse_number(".5"), 0.5);
        assert!(parse_number("abc").is_nan());
        assert!(parse_number("inf").is_nan());
        assert!(parse_number("1e").is_nan());
        assert_eq!(parse_number("Infinity"), f64::INFINITY);
    }

    #[test]
    fn formats_numbers_without_trailing_zero() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(f64::NAN), "NaN");
    }
}
