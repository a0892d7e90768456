//! OpenFeature's evaluation context as the rules read it: a JSON object with `targetingKey`.
//!
//! The SDK's context holds a targeting key and typed custom fields; structured fields are an
//! `Arc<dyn Any>`, so only the types a rule could read as JSON are taken — OpenFeature's own
//! [`Value`] and [`StructValue`] (lists and nested structs), and serde_json's `Value` and
//! `Map`. Anything else is refused with `INVALID_CONTEXT` naming the field, rather than
//! dropped: a rule silently missing an attribute would serve the wrong variant without a word.

use std::any::Any;

use mobius_flags::Context;
use open_feature::{EvaluationContext, EvaluationContextFieldValue, StructValue, Value};
use serde_json::{Map, Number, Value as Json};

/// Why a context cannot be evaluated, for `INVALID_CONTEXT`'s message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("context field {field:?}: {why}")]
pub struct InvalidContext {
    /// The custom field at fault (a dotted path into nested structs).
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

/// Converts the SDK's context. The targeting key wins over a custom field of the same name,
/// as flagd's providers put it last.
pub fn to_flags_context(context: &EvaluationContext) -> Result<Context, InvalidContext> {
    let mut map = Map::with_capacity(context.custom_fields.len() + 1);
    for (key, value) in &context.custom_fields {
        map.insert(key.clone(), field_to_json(key, value)?);
    }
    if let Some(key) = &context.targeting_key {
        map.insert("targetingKey".to_owned(), Json::String(key.clone()));
    }
    Context::from_value(Json::Object(map))
        .map_err(|e| InvalidContext { field: "targetingKey".to_owned(), why: e.message })
}

fn field_to_json(path: &str, value: &EvaluationContextFieldValue) -> Result<Json, InvalidContext> {
    match value {
        EvaluationContextFieldValue::Bool(b) => Ok(Json::Bool(*b)),
        EvaluationContextFieldValue::Int(i) => Ok(Json::from(*i)),
        EvaluationContextFieldValue::Float(f) => float(path, *f),
        EvaluationContextFieldValue::String(s) => Ok(Json::String(s.clone())),
        // RFC 3339, as flagd's providers send a time to flagd.
        EvaluationContextFieldValue::DateTime(t) => {
            let offset = t.offset().whole_seconds();
            let mut text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            if t.nanosecond() != 0 {
                let fraction = format!("{:09}", t.nanosecond());
                text.push('.');
                text.push_str(fraction.trim_end_matches('0'));
            }
            if offset == 0 {
                text.push('Z');
            } else {
                let sign = if offset < 0 { '-' } else { '+' };
                let offset = offset.unsigned_abs();
                text.push_str(&format!("{sign}{:02}:{:02}", offset / 3600, offset % 3600 / 60));
            }
            Ok(Json::String(text))
        }
        EvaluationContextFieldValue::Struct(any) => structured(path, any.as_ref()),
    }
}

fn structured(path: &str, any: &(dyn Any + Send + Sync)) -> Result<Json, InvalidContext> {
    if let Some(value) = any.downcast_ref::<Value>() {
        value_to_json(path, value, 0)
    } else if let Some(fields) = any.downcast_ref::<StructValue>() {
        struct_to_json(path, fields, 0)
    } else if let Some(values) = any.downcast_ref::<Vec<Value>>() {
        list_to_json(path, values, 0)
    } else if let Some(json) = any.downcast_ref::<Json>() {
        Ok(json.clone())
    } else if let Some(map) = any.downcast_ref::<Map<String, Json>>() {
        Ok(Json::Object(map.clone()))
    } else {
        Err(InvalidContext {
            field: path.to_owned(),
            why: "a structured field must hold an open_feature::Value, StructValue or Vec<Value>, \
                  or a serde_json::Value or Map"
                .to_owned(),
        })
    }
}

/// The SDK's values nest without bound; the evaluator reads no deeper than its own limit.
fn too_deep(path: &str) -> InvalidContext {
    InvalidContext { field: path.to_owned(), why: format!("nested deeper than {} levels", mobius_flags::MAX_DEPTH) }
}

fn value_to_json(path: &str, value: &Value, depth: usize) -> Result<Json, InvalidContext> {
    match value {
        Value::Bool(b) => Ok(Json::Bool(*b)),
        Value::Int(i) => Ok(Json::from(*i)),
        Value::Float(f) => float(path, *f),
        Value::String(s) => Ok(Json::String(s.clone())),
        Value::Array(values) => list_to_json(path, values, depth),
        Value::Struct(fields) => struct_to_json(path, fields, depth),
    }
}

fn list_to_json(path: &str, values: &[Value], depth: usize) -> Result<Json, InvalidContext> {
    if depth >= mobius_flags::MAX_DEPTH {
        return Err(too_deep(path));
    }
    let items = values.iter().enumerate().map(|(i, v)| value_to_json(&format!("{path}.{i}"), v, depth + 1));
    Ok(Json::Array(items.collect::<Result<_, _>>()?))
}

fn struct_to_json(path: &str, fields: &StructValue, depth: usize) -> Result<Json, InvalidContext> {
    if depth >= mobius_flags::MAX_DEPTH {
        return Err(too_deep(path));
    }
    let mut map = Map::with_capacity(fields.fields.len());
    for (key, value) in &fields.fields {
        map.insert(key.clone(), value_to_json(&format!("{path}.{key}"), value, depth + 1)?);
    }
    Ok(Json::Object(map))
}

/// JSON has no NaN or infinity; a rule comparing one would be comparing nothing.
fn float(path: &str, f: f64) -> Result<Json, InvalidContext> {
    Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| InvalidContext { field: path.to_owned(), why: format!("{f} is not a JSON number") })
}

/// A flag's JSON object as OpenFeature's struct: integers stay integers when they fit an
/// `i64`, every other number is a float.
pub fn json_to_struct(map: &Map<String, Json>) -> StructValue {
    StructValue { fields: map.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect() }
}

fn json_to_value(json: &Json) -> Value {
    match json {
        // A struct has no null: the field is there and empty, as the closest OpenFeature says.
        Json::Null => Value::Struct(StructValue::default()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_value).collect()),
        Json::Object(map) => Value::Struct(json_to_struct(map)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn check(context: EvaluationContext, expected: Json) {
        let converted = to_flags_context(&context).expect("converts");
        assert_eq!(Json::Object(converted.as_map().clone()), expected);
    }

    #[test]
    fn every_field_type_becomes_the_json_a_rule_reads() {
        check(EvaluationContext::default(), json!({}));
        check(EvaluationContext::default().with_targeting_key("u1"), json!({"targetingKey": "u1"}));
        check(
            EvaluationContext::default()
                .with_targeting_key("u1")
                .with_custom_field("email", "ana@example.com")
                .with_custom_field("age", 42)
                .with_custom_field("ratio", 0.25)
                .with_custom_field("beta", true),
            json!({"targetingKey": "u1", "email": "ana@example.com", "age": 42, "ratio": 0.25, "beta": true}),
        );
        let nested = StructValue::default().with_field("plan", "pro").with_field("seats", 5).with_field(
            "tags",
            Value::Array(vec!["a".into(), Value::Struct(StructValue::default().with_field("x", 1))]),
        );
        check(
            EvaluationContext::default().with_custom_field("org", EvaluationContextFieldValue::new_struct(nested)),
            json!({"org": {"plan": "pro", "seats": 5, "tags": ["a", {"x": 1}]}}),
        );
        check(
            EvaluationContext::default()
                .with_custom_field("groups", EvaluationContextFieldValue::new_struct(vec![Value::from("ops")]))
                .with_custom_field("raw", EvaluationContextFieldValue::new_struct(json!({"a": [null, 1.5]}))),
            json!({"groups": ["ops"], "raw": {"a": [null, 1.5]}}),
        );
        check(
            EvaluationContext::default()
                .with_custom_field("one", EvaluationContextFieldValue::new_struct(Value::Int(1))),
            json!({"one": 1}),
        );
    }

    #[test]
    fn times_are_rfc_3339() {
        let at = |unix: i64, nanos: u32, offset_seconds: i32| {
            let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap().replace_nanosecond(nanos).unwrap();
            let t = t.to_offset(time::UtcOffset::from_whole_seconds(offset_seconds).unwrap());
            EvaluationContext::default().with_custom_field("at", t)
        };
        check(at(0, 0, 0), json!({"at": "1970-01-01T00:00:00Z"}));
        check(at(1_700_000_000, 0, 0), json!({"at": "2023-11-14T22:13:20Z"}));
        check(at(1_700_000_000, 250_000_000, 3600 + 1800), json!({"at": "2023-11-14T23:43:20.25+01:30"}));
        check(at(0, 1, -7200), json!({"at": "1969-12-31T22:00:00.000000001-02:00"}));
    }

    #[test]
    fn the_targeting_key_wins_and_bad_fields_are_refused_by_name() {
        check(
            EvaluationContext::default().with_targeting_key("real").with_custom_field("targetingKey", "fake"),
            json!({"targetingKey": "real"}),
        );
        let refused = |context: EvaluationContext| to_flags_context(&context).expect_err("refused");
        let bad = refused(EvaluationContext::default().with_custom_field("targetingKey", 7));
        assert_eq!(bad.field, "targetingKey");
        let bad = refused(EvaluationContext::default().with_custom_field("score", f64::NAN));
        assert_eq!(bad.field, "score");
        let bad = refused(EvaluationContext::default().with_custom_field("who", Arc::new(3_u8)));
        assert_eq!(bad.field, "who");
        let deep = StructValue::default().with_field("a", Value::Array(vec![Value::Float(f64::INFINITY)]));
        let bad = refused(
            EvaluationContext::default().with_custom_field("org", EvaluationContextFieldValue::new_struct(deep)),
        );
        assert_eq!(bad.field, "org.a.0");
        let mut value = Value::Int(0);
        for _ in 0..=mobius_flags::MAX_DEPTH {
            value = Value::Array(vec![value]);
        }
        let bad = refused(
            EvaluationContext::default().with_custom_field("deep", EvaluationContextFieldValue::new_struct(value)),
        );
        assert!(bad.why.contains("deeper"), "{bad}");
    }

    #[test]
    fn flag_objects_become_structs() {
        let map = json!({"n": 1, "f": 1.5, "big": u64::MAX, "s": "x", "b": false, "l": [1, "a"], "o": {"k": null}});
        let s = json_to_struct(map.as_object().unwrap());
        assert_eq!(s.fields["n"], Value::Int(1));
        assert_eq!(s.fields["f"], Value::Float(1.5));
        assert_eq!(s.fields["big"], Value::Float(u64::MAX as f64));
        assert_eq!(s.fields["s"], Value::String("x".into()));
        assert_eq!(s.fields["b"], Value::Bool(false));
        assert_eq!(s.fields["l"], Value::Array(vec![Value::Int(1), Value::String("a".into())]));
        assert_eq!(s.fields["o"], Value::Struct(StructValue::default().with_field("k", StructValue::default())));
    }
}
