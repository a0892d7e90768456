//! OFREP's answers, as the protocol's OpenAPI document (`shared/corpus/openfeature/ofrep`)
//! shapes them, from a flag set and a request body — no HTTP here, so every status and body
//! is tested on its own; the parent module adds authentication, the set, tags and limits.
//!
//! - One flag: 200 `{key, value?, reason, variant?, metadata}` (no `value` when the caller's
//!   default applies: disabled, or no default variant); 404 `{key, errorCode:
//!   FLAG_NOT_FOUND, errorDetails}`; 400 `{key, errorCode, errorDetails}` for a context that
//!   is not usable or a rule that failed (`PARSE_ERROR`, `INVALID_CONTEXT`, `GENERAL`, …).
//! - Every flag (bulk): 200 `{flags: [success | failure…], metadata, eventStreams}`, disabled
//!   flags left out as flagd leaves them out; 400 `{errorCode, errorDetails}` when the request
//!   itself is unusable. An evaluation never fails the whole answer.
//!
//! A request's `context` may be absent (an empty context: flagd's reading), but when present
//! it must be an object whose `targetingKey`, if any, is a string.

use mobius_flags::{Context, ErrorCode, Evaluation, FlagSet, Reason};
use serde_json::{Map, Value, json};

/// Why a request cannot be evaluated at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub code: ErrorCode,
    pub details: String,
}

/// The context of an OFREP request body (`{"context": {...}}`).
pub fn context_of(body: &[u8]) -> Result<Context, Unusable> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Context::new());
    }
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| Unusable { code: ErrorCode::ParseError, details: format!("the request body is not JSON: {e}") })?;
    let Value::Object(mut request) = parsed else {
        return Err(Unusable {
            code: ErrorCode::InvalidContext,
            details: "the request body must be an object with a `context`".to_owned(),
        });
    };
    match request.remove("context") {
        None | Some(Value::Null) => Ok(Context::new()),
        Some(context) => Context::from_value(context)
            .map_err(|e| Unusable { code: e.code, details: format!("`context`: {}", e.message) }),
    }
}

/// One flag's answer: its HTTP status and JSON body.
pub fn one(set: &FlagSet, key: &str, context: &Context, now: i64) -> (u16, Value) {
    let evaluation = set.evaluate_at(key, context, now);
    match evaluation.error_code {
        Some(ErrorCode::FlagNotFound) => (404, failure(&evaluation, None)),
        Some(_) => (400, failure(&evaluation, Some(evaluation.metadata))),
        None => (200, success(&evaluation)),
    }
}

/// The answer to a request that cannot be evaluated: 400 with the code, keyed by flag when
/// one was asked for.
pub fn unusable(key: Option<&str>, why: &Unusable) -> (u16, Value) {
    let mut body = Map::new();
    if let Some(key) = key {
        body.insert("key".into(), Value::String(key.to_owned()));
    }
    body.insert("errorCode".into(), Value::String(why.code.as_str().to_owned()));
    body.insert("errorDetails".into(), Value::String(why.details.clone()));
    (400, Value::Object(body))
}

/// Every enabled flag's answer, the set's metadata, and where to hear of changes
/// (`events_uri`, a path on this server: OFREP's `eventStreams[].endpoint.requestUri`).
pub fn bulk(set: &FlagSet, context: &Context, now: i64, events_uri: Option<&str>) -> Value {
    let flags: Vec<Value> = set
        .evaluate_all_at(context, now)
        .iter()
        .map(|e| if e.error_code.is_some() { failure(e, Some(e.metadata)) } else { success(e) })
        .collect();
    let mut body = json!({ "flags": flags, "metadata": set.metadata() });
    if let Some(uri) = events_uri {
        body["eventStreams"] = json!([{ "type": "sse", "endpoint": { "requestUri": uri } }]);
    }
    body
}

fn success(e: &Evaluation<'_>) -> Value {
    let mut body = Map::new();
    body.insert("key".into(), Value::String(e.key.to_owned()));
    if let Some(value) = e.value {
        body.insert("value".into(), value.clone());
    }
    body.insert("reason".into(), Value::String(reason(e.reason).to_owned()));
    if let Some(variant) = e.variant {
        body.insert("variant".into(), Value::String(variant.to_owned()));
    }
    body.insert("metadata".into(), Value::Object(e.metadata.clone()));
    Value::Object(body)
}

fn failure(e: &Evaluation<'_>, metadata: Option<&Map<String, Value>>) -> Value {
    let code = e.error_code.unwrap_or(ErrorCode::General);
    let details = e.error_details.clone().unwrap_or_else(|| match code {
        ErrorCode::FlagNotFound => format!("flag `{}` is not in this set", e.key),
        _ => "the flag cannot be evaluated".to_owned(),
    });
    let mut body = json!({ "key": e.key, "errorCode": code.as_str(), "errorDetails": details });
    if let Some(metadata) = metadata.filter(|m| !m.is_empty()) {
        body["metadata"] = Value::Object(metadata.clone());
    }
    body
}

/// OFREP's reasons are OpenFeature's: flagd's `DEFAULT` is one of them (the schema's enum
/// lags behind; OpenFeature's SDKs read it).
fn reason(reason: Reason) -> &'static str {
    reason.as_str()
}

#[cfg(test)]
mod tests {
    use mobius_flags::LoadOptions;

    use super::*;

    const SET: &str = r#"{
      "flags": {
        "banner": { "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
          "targeting": { "if": [ { "ends_with": [ { "var": "email" }, "@example.com" ] }, "on" ] } },
        "color": { "state": "ENABLED", "variants": { "red": "red", "blue": "blue" }, "defaultVariant": "red",
          "metadata": { "owner": "web" } },
        "gone": { "state": "DISABLED", "variants": { "a": 1 }, "defaultVariant": "a" },
        "nodefault": { "state": "ENABLED", "variants": { "a": 1 }, "defaultVariant": null },
        "broken": { "state": "ENABLED", "variants": { "a": 1 }, "defaultVariant": "a",
          "targeting": { "if": [ true, "nope" ] } }
      },
      "metadata": { "version": "v3" }
    }"#;

    fn set() -> FlagSet {
        FlagSet::from_json(
            "set.json",
            SET,
            &LoadOptions { strictness: mobius_flags::Strictness::Flagd, ..LoadOptions::default() },
        )
        .expect("the set loads")
    }

    fn ctx(body: &str) -> Context {
        context_of(body.as_bytes()).expect("a usable context")
    }

    #[test]
    fn one_flag_answers_as_the_schema_says() {
        let set = set();
        let (status, body) =
            one(&set, "banner", &ctx(r#"{"context":{"targetingKey":"u","email":"a@example.com"}}"#), 0);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"key":"banner","value":true,"reason":"TARGETING_MATCH","variant":"on","metadata":{"version":"v3"}})
        );
        let (_, body) = one(&set, "color", &ctx("{}"), 0);
        assert_eq!(body["reason"], "STATIC");
        assert_eq!(body["metadata"], json!({"version":"v3","owner":"web"}), "the flag's metadata over the set's");
        let (status, body) = one(&set, "gone", &ctx("{}"), 0);
        assert_eq!((status, &body["reason"], body.get("value")), (200, &json!("DISABLED"), None), "{body}");
        let (status, body) = one(&set, "nodefault", &ctx("{}"), 0);
        assert_eq!((status, body.get("value"), body.get("variant")), (200, None, None), "the code's default: {body}");
        let (status, body) = one(&set, "missing", &ctx("{}"), 0);
        assert_eq!(status, 404);
        assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
        assert_eq!(body["key"], "missing");
        let (status, body) = one(&set, "broken", &ctx("{}"), 0);
        assert_eq!((status, &body["errorCode"]), (400, &json!("PARSE_ERROR")), "{body}");
        assert!(body.get("value").is_none());
    }

    #[test]
    fn unusable_requests_are_told_why_and_an_absent_context_is_empty() {
        assert_eq!(context_of(b"").unwrap(), Context::new());
        assert_eq!(context_of(br#"{"context":null}"#).unwrap(), Context::new());
        let not_json = context_of(b"{").unwrap_err();
        assert_eq!(not_json.code, ErrorCode::ParseError);
        for bad in [&br#"{"context":[1]}"#[..], br#"{"context":{"targetingKey":7}}"#, b"[]"] {
            assert_eq!(
                context_of(bad).unwrap_err().code,
                ErrorCode::InvalidContext,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let (status, body) = unusable(Some("banner"), &not_json);
        assert_eq!((status, &body["key"], &body["errorCode"]), (400, &json!("banner"), &json!("PARSE_ERROR")));
        let (_, body) = unusable(None, &not_json);
        assert!(body.get("key").is_none());
    }

    #[test]
    fn bulk_answers_every_enabled_flag_and_fails_none_for_one() {
        let set = set();
        let body = bulk(&set, &ctx(r#"{"context":{"targetingKey":"u"}}"#), 0, Some("/ofrep/v1/events?set=web"));
        let keys: Vec<&str> = body["flags"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["banner", "broken", "color", "nodefault"], "disabled flags are left out");
        let broken = &body["flags"][1];
        assert_eq!(broken["errorCode"], "PARSE_ERROR");
        assert_eq!(body["flags"][0]["value"], false);
        assert_eq!(body["metadata"], json!({"version":"v3"}));
        assert_eq!(body["eventStreams"][0], json!({"type":"sse","endpoint":{"requestUri":"/ofrep/v1/events?set=web"}}));
        assert!(bulk(&set, &Context::new(), 0, None).get("eventStreams").is_none());
    }
}
