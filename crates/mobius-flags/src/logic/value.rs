//! JsonLogic's values and JavaScript's coercions over them.
//!
//! JsonLogic is specified by its JavaScript reference implementation, so `==`, `<`, `+` and
//! `cat` mean what they mean in JavaScript: `"1" == 1`, `[] == false`, `"10" < "9"`,
//! `cat(1.0) == "1"`. The rules here are ECMAScript's abstract operations (ToNumber,
//! ToString, ToPrimitive, IsLooselyEqual, IsLessThan) restricted to JSON's types.
//!
//! An evaluated value borrows whatever it can ([`Val::Ref`] into the context or the compiled
//! rule) and keeps arithmetic in an `f64` ([`Val::Num`]) so NaN and infinities survive until
//! the end, where JSON has no place for them and they become `null`, as `JSON.stringify` does.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

/// How deep the coercions walk into nested arrays (ToString of `[[[…]]]` recurses). A context
/// parsed from JSON is already bounded; one built in code is not, and must not overflow.
const MAX_COERCION_DEPTH: usize = 64;

/// A value produced while evaluating a rule.
///
/// `repr(u64)` gives the tag a whole word and puts every payload, `Bool`'s byte included, at
/// offset 8. With the default layout the `bool` sat at offset 1, and moving a `Val` (every
/// evaluation returns one through memory, and its caller reads it straight back) copied bytes
/// 1–7 as two overlapping unaligned 4-byte loads and stores; the CPU cannot forward a load
/// from narrower stores still in flight, so each move waited for them. In a profile of a
/// three-condition rule those stalls were over a third of `eval`'s time, and the rule ran in
/// 0.64× the time once they were gone (`bench/flags`).
#[derive(Debug, Clone)]
#[repr(u64)]
pub(crate) enum Val<'a> {
    Ref(&'a Value),
    /// A value a rule computed (`cat`, `merge`, …); boxed so a `Val` is two words and an
    /// evaluation's `Result` travels in registers.
    Owned(Box<Value>),
    Num(f64),
    // Nulls and booleans are most of what conditions produce; kept out of `Value` they are a
    // byte to write and test rather than a 32-byte value to build and move.
    Bool(bool),
    Null,
}

pub(crate) const NULL: Val<'static> = Val::Null;

/// The JSON types as JsonLogic sees them, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'v> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'v str),
    Arr(&'v [Value]),
    Obj,
}

#[inline]
pub(crate) fn view(value: &Value) -> View<'_> {
    match value {
        Value::Null => View::Null,
        Value::Bool(b) => View::Bool(*b),
        Value::Number(n) => View::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => View::Str(s),
        Value::Array(items) => View::Arr(items),
        Value::Object(_) => View::Obj,
    }
}

impl<'a> Val<'a> {
    #[inline]
    pub fn bool(b: bool) -> Self {
        Val::Bool(b)
    }

    pub fn owned(v: Value) -> Self {
        Val::Owned(Box::new(v))
    }

    #[inline]
    pub fn string(s: String) -> Self {
        Val::owned(Value::String(s))
    }

    #[inline]
    pub fn view(&self) -> View<'_> {
        match self {
            Val::Ref(v) => view(v),
            Val::Owned(v) => view(v),
            Val::Num(n) => View::Num(*n),
            Val::Bool(b) => View::Bool(*b),
            Val::Null => View::Null,
        }
    }

    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self.view() {
            View::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The borrowed JSON value behind this one, if it is a JSON value already (arrays and
    /// objects always are).
    #[inline]
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Val::Ref(v) => Some(v),
            Val::Owned(v) => Some(v),
            Val::Num(_) | Val::Bool(_) | Val::Null => None,
        }
    }

    /// An owned JSON value; non-finite numbers become `null`, as in `JSON.stringify`.
    pub fn into_json(self) -> Value {
        match self {
            Val::Ref(v) => v.clone(),
            Val::Owned(v) => *v,
            Val::Num(n) => number(n),
            Val::Bool(b) => Value::Bool(b),
            Val::Null => Value::Null,
        }
    }
}

/// A JSON number for an `f64`: integral values stay integers (so `1 + 1` serialises as `2`).
pub(crate) fn number(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // Exact: |n| < 2^53.
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// JsonLogic's truthiness: JavaScript's, except that an empty array is false.
#[inline]
pub(crate) fn truthy(v: &Val<'_>) -> bool {
    match v.view() {
        View::Null => false,
        View::Bool(b) => b,
        View::Num(n) => n != 0.0 && !n.is_nan(),
        View::Str(s) => !s.is_empty(),
        View::Arr(items) => !items.is_empty(),
        View::Obj => true,
    }
}

/// A coercion walked too deep into nested arrays.
#[derive(Debug)]
pub(crate) struct TooDeep;

/// ECMAScript ToNumber.
pub(crate) fn to_number(v: View<'_>) -> Result<f64, TooDeep> {
    Ok(match v {
        View::Null => 0.0,
        View::Bool(b) => f64::from(u8::from(b)),
        View::Num(n) => n,
        View::Str(s) => string_to_number(s),
        View::Arr(_) | View::Obj => string_to_number(&to_primitive_string(v, 0)?),
    })
}

/// ECMAScript's StringToNumber: whitespace-trimmed decimal, `0x`/`0o`/`0b` integers,
/// `Infinity`; the empty string is 0; anything else NaN.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(digits) = t.strip_prefix(prefix) {
            return radix_to_number(digits, radix);
        }
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    // Rust also accepts "inf", "nan" and "infinity"; JavaScript does not.
    if !t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

fn radix_to_number(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut n = 0.0_f64;
    for c in digits.chars() {
        match c.to_digit(radix) {
            Some(d) => n = n * f64::from(radix) + f64::from(d),
            None => return f64::NAN,
        }
    }
    n
}

/// JavaScript's `parseFloat`, which JsonLogic's `+` and `*` use: the longest decimal prefix
/// of the string form, after leading whitespace.
pub(crate) fn parse_float(v: View<'_>) -> Result<f64, TooDeep> {
    if let View::Num(n) = v {
        return Ok(n);
    }
    let s = to_js_string(v)?;
    let t = s.trim_start();
    for (word, value) in [("Infinity", f64::INFINITY), ("+Infinity", f64::INFINITY), ("-Infinity", f64::NEG_INFINITY)] {
        if t.starts_with(word) {
            return Ok(value);
        }
    }
    let b = t.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let digits_start = end;
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let mut mantissa_digits = end - digits_start;
    if b.get(end) == Some(&b'.') {
        let mut frac = end + 1;
        while b.get(frac).is_some_and(u8::is_ascii_digit) {
            frac += 1;
        }
        mantissa_digits += frac - end - 1;
        if mantissa_digits > 0 {
            end = frac;
        }
    }
    if mantissa_digits == 0 {
        return Ok(f64::NAN);
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(b.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_digits = exp;
        while b.get(exp).is_some_and(u8::is_ascii_digit) {
            exp += 1;
        }
        if exp > exp_digits {
            end = exp;
        }
    }
    Ok(t[..end].parse::<f64>().unwrap_or(f64::NAN))
}

/// ECMAScript ToString for JSON values (`String(x)`).
pub(crate) fn to_js_string(v: View<'_>) -> Result<Cow<'_, str>, TooDeep> {
    Ok(match v {
        View::Null => Cow::Borrowed("null"),
        View::Bool(true) => Cow::Borrowed("true"),
        View::Bool(false) => Cow::Borrowed("false"),
        View::Num(n) => Cow::Owned(number_to_string(n)),
        View::Str(s) => Cow::Borrowed(s),
        View::Arr(_) | View::Obj => Cow::Owned(to_primitive_string(v, 0)?),
    })
}

/// ToPrimitive of an array (its elements joined with commas, `null` as empty) or an object.
fn to_primitive_string(v: View<'_>, depth: usize) -> Result<String, TooDeep> {
    if depth > MAX_COERCION_DEPTH {
        return Err(TooDeep);
    }
    match v {
        View::Arr(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match view(item) {
                    View::Null => {}
                    inner @ (View::Arr(_) | View::Obj) => out.push_str(&to_primitive_string(inner, depth + 1)?),
                    inner => out.push_str(&to_js_string(inner)?),
                }
            }
            Ok(out)
        }
        View::Obj => Ok("[object Object]".to_owned()),
        other => Ok(to_js_string(other)?.into_owned()),
    }
}

/// ECMAScript Number::toString: the shortest round-trip digits, in exponent form outside
/// `[1e-7, 1e21)`.
pub(crate) fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if n == 0.0 {
        return "0".to_owned();
    }
    // `{:e}` gives the shortest round-trip digits as d.ddde±x.
    let formatted = format!("{:e}", n.abs());
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let point = exponent + 1; // position of the decimal point relative to the digits
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
    out
}

/// `a == b` in JavaScript. Two arrays or objects are equal only when they are the same value
/// (here: the same address, as when one `var` is read twice).
pub(crate) fn loose_equal(a: &Val<'_>, b: &Val<'_>) -> Result<bool, TooDeep> {
    let (x, y) = (a.view(), b.view());
    Ok(match (x, y) {
        (View::Null, View::Null) => true,
        (View::Null, _) | (_, View::Null) => false,
        (View::Arr(_) | View::Obj, View::Arr(_) | View::Obj) => same_value(a, b),
        (View::Bool(p), View::Bool(q)) => p == q,
        (View::Str(p), View::Str(q)) => p == q,
        (View::Num(p), View::Num(q)) => p == q,
        // A boolean compares as a number; a string against a number compares as numbers; an
        // array or object against a primitive compares as its string form.
        (View::Arr(_) | View::Obj, other) | (other, View::Arr(_) | View::Obj) => {
            let prim = if matches!(x, View::Arr(_) | View::Obj) { x } else { y };
            let s = to_primitive_string(prim, 0)?;
            match other {
                View::Str(t) => s == t,
                _ => string_to_number(&s) == to_number(other)?,
            }
        }
        (p, q) => to_number(p)? == to_number(q)?,
    })
}

/// `a === b`: same type and value; arrays and objects by identity.
#[inline]
pub(crate) fn strict_equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a.view(), b.view()) {
        (View::Null, View::Null) => true,
        (View::Bool(p), View::Bool(q)) => p == q,
        (View::Num(p), View::Num(q)) => p == q,
        (View::Str(p), View::Str(q)) => p == q,
        (View::Arr(_) | View::Obj, View::Arr(_) | View::Obj) => same_value(a, b),
        _ => false,
    }
}

fn same_value(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a.as_json(), b.as_json()) {
        (Some(p), Some(q)) => std::ptr::eq(p, q),
        _ => false,
    }
}

/// JavaScript's `a < b` (IsLessThan): two strings (after ToPrimitive) compare by UTF-16 code
/// units, anything else as numbers, where NaN compares false. `None` is "undefined" (NaN).
pub(crate) fn compare(a: &Val<'_>, b: &Val<'_>) -> Result<Option<Ordering>, TooDeep> {
    let (x, y) = (a.view(), b.view());
    let px = primitive(x)?;
    let py = primitive(y)?;
    if let (Some(s), Some(t)) = (px.as_string(), py.as_string()) {
        return Ok(Some(s.encode_utf16().cmp(t.encode_utf16())));
    }
    let p = px.number()?;
    let q = py.number()?;
    Ok(p.partial_cmp(&q))
}

/// A value after ToPrimitive: arrays and objects become strings, the rest stay as they are.
enum Primitive<'v> {
    View(View<'v>),
    String(String),
}

impl Primitive<'_> {
    fn as_string(&self) -> Option<&str> {
        match self {
            Primitive::View(View::Str(s)) => Some(s),
            Primitive::String(s) => Some(s),
            _ => None,
        }
    }

    fn number(&self) -> Result<f64, TooDeep> {
        match self {
            Primitive::View(v) => to_number(*v),
            Primitive::String(s) => Ok(string_to_number(s)),
        }
    }
}

fn primitive(v: View<'_>) -> Result<Primitive<'_>, TooDeep> {
    Ok(match v {
        View::Arr(_) | View::Obj => Primitive::String(to_primitive_string(v, 0)?),
        other => Primitive::View(other),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v(value: Value) -> Val<'static> {
        Val::owned(value)
    }

    #[test]
    fn an_evaluation_result_fits_two_registers() {
        // Results are moved at every node; larger than 16 bytes they go through memory.
        assert_eq!(std::mem::size_of::<Val<'_>>(), 16);
        assert_eq!(std::mem::size_of::<Result<Val<'_>, Box<crate::logic::Abort>>>(), 16);
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (n, s) in [
            (1.0, "1"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (123456789.0, "123456789"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (-2.5e300, "-2.5e+300"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(number_to_string(n), s, "{n}");
        }
    }

    #[test]
    fn strings_become_numbers_as_in_javascript() {
        for (s, n) in
            [("", 0.0), ("  12 ", 12.0), ("0x1F", 31.0), ("1e3", 1000.0), (".5", 0.5), ("-Infinity", f64::NEG_INFINITY)]
        {
            assert_eq!(string_to_number(s), n, "{s:?}");
        }
        for s in ["abc", "inf", "nan", "1 2", "0x", "12px"] {
            assert!(string_to_number(s).is_nan(), "{s:?}");
        }
    }

    #[test]
    fn parse_float_takes_the_longest_prefix() {
        for (value, n) in [(json!("12px"), 12.0), (json!(" 1.5e2x"), 150.0), (json!("1e"), 1.0), (json!([3, 4]), 3.0)] {
            assert_eq!(parse_float(view(&value)).unwrap(), n, "{value}");
        }
        for value in [json!(""), json!(null), json!(true), json!("."), json!({})] {
            assert!(parse_float(view(&value)).unwrap().is_nan(), "{value}");
        }
    }

    #[test]
    fn loose_equality_coerces_like_javascript() {
        let yes = [
            (json!(1), json!("1")),
            (json!(0), json!(false)),
            (json!("1"), json!(true)),
            (json!(""), json!(0)),
            (json!([]), json!(false)),
            (json!(["a"]), json!("a")),
            (json!([1, 2]), json!("1,2")),
            (json!(null), json!(null)),
        ];
        let no = [
            (json!(null), json!(0)),
            (json!(null), json!(false)),
            (json!("a"), json!(0)),
            (json!([1]), json!([1])),
            (json!({}), json!("{}")),
        ];
        for (a, b) in yes {
            assert!(loose_equal(&v(a.clone()), &v(b.clone())).unwrap(), "{a} == {b}");
        }
        for (a, b) in no {
            assert!(!loose_equal(&v(a.clone()), &v(b.clone())).unwrap(), "{a} != {b}");
        }
        let shared = json!([1]);
        assert!(loose_equal(&Val::Ref(&shared), &Val::Ref(&shared)).unwrap());
    }

    #[test]
    fn comparisons_are_strings_or_numbers() {
        let lt = |a: Value, b: Value| compare(&v(a), &v(b)).unwrap() == Some(Ordering::Less);
        assert!(lt(json!("10"), json!("9")), "two strings compare as text");
        assert!(!lt(json!("10"), json!(9)), "a string and a number compare as numbers");
        assert!(lt(json!(null), json!(1)));
        assert!(!lt(json!("a"), json!(1)) && !lt(json!(1), json!("a")), "NaN is unordered");
        assert!(lt(json!([1]), json!([2])));
    }

    #[test]
    fn truthiness_is_javascripts_except_empty_arrays() {
        for f in [json!(null), json!(false), json!(0), json!(0.0), json!(""), json!([])] {
            assert!(!truthy(&v(f.clone())), "{f}");
        }
        for t in [json!(true), json!(1), json!(-1), json!("0"), json!(" "), json!([0]), json!({})] {
            assert!(truthy(&v(t.clone())), "{t}");
        }
        assert!(!truthy(&Val::Num(f64::NAN)));
    }

    #[test]
    fn coercing_absurdly_nested_arrays_is_an_error_not_a_crash() {
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = Value::Array(vec![deep]);
        }
        assert!(to_js_string(view(&deep)).is_err());
        assert!(loose_equal(&v(deep), &v(json!("1"))).is_err());
    }
}
