//! One flag resolved as OpenFeature 0.3's provider trait answers: `mobius-flags`' typed
//! helpers (the same typing rules as the server's OFREP) mapped to `ResolutionDetails` or an
//! `EvaluationError`.
//!
//! The 0.3 trait is given no default value, and its client returns the caller's default only
//! for an error. So an evaluation that has no value for this context — a disabled flag
//! (`DISABLED`), or no targeting match and no default variant (`DEFAULT`) — is an error whose
//! code is `General` with the reason as its text: the caller's `unwrap_or(default)` then gives
//! what flagd gives, where a zero value (`false`, `""`) would not be the caller's.

use mobius_flags::{Context, ErrorCode, FlagSet, Reason, Resolved};
use open_feature::provider::ResolutionDetails;
use open_feature::{
    EvaluationError, EvaluationErrorCode, EvaluationReason, FlagMetadata, FlagMetadataValue, StructValue,
};
use serde_json::{Map, Value};

use crate::context::json_to_struct;
use crate::served;

/// OpenFeature's reason for a `mobius-flags` reason (the same six words).
pub fn reason(reason: Reason) -> EvaluationReason {
    match reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Default => EvaluationReason::Default,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => EvaluationReason::Error,
    }
}

/// OpenFeature's error code for a `mobius-flags` one. `GENERAL` carries the details, as the
/// SDK's `General(String)` displays its text as the code.
pub fn error_code(code: ErrorCode, details: Option<&str>) -> EvaluationErrorCode {
    match code {
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
        ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        ErrorCode::General => EvaluationErrorCode::General(details.unwrap_or("GENERAL").to_owned()),
    }
}

/// The flag's metadata (the set's overlaid with the flag's), primitives only as flagd allows.
fn metadata(map: &Map<String, Value>) -> Option<FlagMetadata> {
    if map.is_empty() {
        return None;
    }
    let mut metadata = FlagMetadata::default();
    for (key, value) in map {
        let value = match value {
            Value::Bool(b) => FlagMetadataValue::Bool(*b),
            Value::String(s) => FlagMetadataValue::String(s.clone()),
            Value::Number(n) => {
                n.as_i64().map_or_else(|| FlagMetadataValue::Float(n.as_f64().unwrap_or(0.0)), FlagMetadataValue::Int)
            }
            // The loader refuses any other metadata value.
            _ => continue,
        };
        metadata.add_value(key.clone(), value);
    }
    Some(metadata)
}

/// A typed outcome as the trait returns it; records the variant served into the request's
/// [`Served`](crate::Served), if any.
fn answer<T, U>(
    key: &str,
    resolved: Resolved<'_, T>,
    convert: impl FnOnce(T) -> U,
) -> Result<ResolutionDetails<U>, EvaluationError> {
    if let Some(code) = resolved.error_code {
        return Err(EvaluationError {
            code: error_code(code, resolved.error_details.as_deref()),
            message: resolved.error_details,
        });
    }
    let Some(variant) = resolved.variant else {
        // No value for this context: the caller's default applies (see the module's note).
        let why = match resolved.reason {
            Reason::Disabled => format!("flag {key:?} is disabled: the caller's default applies"),
            _ => format!(
                "flag {key:?} has no default variant and its targeting chose none: the caller's default applies"
            ),
        };
        return Err(EvaluationError {
            code: EvaluationErrorCode::General(resolved.reason.as_str().to_owned()),
            message: Some(why),
        });
    };
    served::record_in_scope(key, variant);
    Ok(ResolutionDetails {
        value: convert(resolved.value),
        variant: Some(variant.to_owned()),
        reason: Some(reason(resolved.reason)),
        flag_metadata: metadata(resolved.metadata),
    })
}

/// Resolves a boolean flag.
pub fn boolean(set: &FlagSet, key: &str, context: &Context) -> Result<ResolutionDetails<bool>, EvaluationError> {
    answer(key, set.boolean(key, context, false), |v| v)
}

/// Resolves a string flag.
pub fn string(set: &FlagSet, key: &str, context: &Context) -> Result<ResolutionDetails<String>, EvaluationError> {
    answer(key, set.string(key, context, ""), str::to_owned)
}

/// Resolves an integer flag: a JSON integer, or a number with no fractional part.
pub fn integer(set: &FlagSet, key: &str, context: &Context) -> Result<ResolutionDetails<i64>, EvaluationError> {
    answer(key, set.integer(key, context, 0), |v| v)
}

/// Resolves a number flag.
pub fn float(set: &FlagSet, key: &str, context: &Context) -> Result<ResolutionDetails<f64>, EvaluationError> {
    answer(key, set.float(key, context, 0.0), |v| v)
}

/// Resolves an object flag.
pub fn object(set: &FlagSet, key: &str, context: &Context) -> Result<ResolutionDetails<StructValue>, EvaluationError> {
    let empty = Map::new();
    answer(key, set.object(key, context, &empty), json_to_struct)
}

#[cfg(test)]
mod tests {
    use mobius_flags::LoadOptions;
    use open_feature::Value as Of;

    use super::*;

    const SET: &str = r#"{
      "flags": {
        "banner": {
          "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
          "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]},
          "metadata": {"owner": "web", "rev": 3, "weight": 0.5, "live": true}
        },
        "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"},
        "limit": {"state": "ENABLED", "variants": {"low": 10, "high": 1.5}, "defaultVariant": "low"},
        "split": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a",
                  "targeting": {"fractional": [["a", 50], ["b", 50]]}},
        "theme": {"state": "ENABLED", "variants": {"dark": {"bg": "black", "sizes": [1, 2]}}, "defaultVariant": "dark"},
        "off": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
        "none": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
        "broken": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                   "targeting": {"var": "pick"}}
      },
      "metadata": {"team": "shop"}
    }"#;

    fn set() -> FlagSet {
        FlagSet::from_json("test", SET, &LoadOptions::default()).expect("loads")
    }

    fn user(email: &str) -> Context {
        Context::with_targeting_key("u1").set("email", email)
    }

    #[test]
    fn reasons_and_codes_map_one_to_one() {
        let reasons = [
            (Reason::Static, EvaluationReason::Static),
            (Reason::TargetingMatch, EvaluationReason::TargetingMatch),
            (Reason::Split, EvaluationReason::Split),
            (Reason::Default, EvaluationReason::Default),
            (Reason::Disabled, EvaluationReason::Disabled),
            (Reason::Error, EvaluationReason::Error),
        ];
        for (ours, theirs) in reasons {
            assert_eq!(reason(ours), theirs);
            assert_eq!(ours.as_str(), theirs.to_string(), "the same word");
        }
        let codes = [
            (ErrorCode::FlagNotFound, EvaluationErrorCode::FlagNotFound),
            (ErrorCode::ParseError, EvaluationErrorCode::ParseError),
            (ErrorCode::TargetingKeyMissing, EvaluationErrorCode::TargetingKeyMissing),
            (ErrorCode::InvalidContext, EvaluationErrorCode::InvalidContext),
            (ErrorCode::TypeMismatch, EvaluationErrorCode::TypeMismatch),
        ];
        for (ours, theirs) in codes {
            assert_eq!(error_code(ours, Some("why")), theirs);
            assert_eq!(ours.as_str(), theirs.to_string(), "the same word");
        }
        assert_eq!(error_code(ErrorCode::General, Some("budget")), EvaluationErrorCode::General("budget".into()));
    }

    #[test]
    fn values_variants_reasons_and_metadata() {
        let set = set();
        let on = boolean(&set, "banner", &user("ana@example.com")).unwrap();
        assert_eq!(
            (on.value, on.variant.as_deref(), on.reason),
            (true, Some("on"), Some(EvaluationReason::TargetingMatch))
        );
        let meta = on.flag_metadata.unwrap().values;
        assert_eq!(meta["owner"], FlagMetadataValue::String("web".into()));
        assert_eq!(meta["team"], FlagMetadataValue::String("shop".into()), "the set's metadata merged in");
        assert_eq!(meta["rev"], FlagMetadataValue::Int(3));
        assert_eq!(meta["weight"], FlagMetadataValue::Float(0.5));
        assert_eq!(meta["live"], FlagMetadataValue::Bool(true));
        let off = boolean(&set, "banner", &user("bo@elsewhere.org")).unwrap();
        assert_eq!(
            (off.value, off.variant.as_deref(), off.reason),
            (false, Some("off"), Some(EvaluationReason::Default))
        );
        let color = string(&set, "color", &Context::new()).unwrap();
        assert_eq!((color.value.as_str(), color.reason), ("red", Some(EvaluationReason::Static)));
        assert_eq!(integer(&set, "limit", &Context::new()).unwrap().value, 10);
        assert_eq!(float(&set, "limit", &Context::new()).unwrap().value, 10.0);
        let split = string(&set, "split", &user("x")).unwrap();
        assert_eq!(split.reason, Some(EvaluationReason::Split));
        let theme = object(&set, "theme", &Context::new()).unwrap();
        assert_eq!(theme.value.fields["bg"], Of::String("black".into()));
        assert_eq!(theme.value.fields["sizes"], Of::Array(vec![Of::Int(1), Of::Int(2)]));
    }

    #[test]
    fn no_value_and_failures_are_errors_so_the_callers_default_applies() {
        let set = set();
        let code = |r: Result<ResolutionDetails<bool>, EvaluationError>| r.expect_err("an error").code;
        assert_eq!(code(boolean(&set, "nope", &Context::new())), EvaluationErrorCode::FlagNotFound);
        assert_eq!(code(boolean(&set, "color", &Context::new())), EvaluationErrorCode::TypeMismatch);
        assert_eq!(code(boolean(&set, "off", &Context::new())), EvaluationErrorCode::General("DISABLED".into()));
        assert_eq!(code(boolean(&set, "none", &Context::new())), EvaluationErrorCode::General("DEFAULT".into()));
        let unknown = Context::new().set("pick", "zzz");
        assert_eq!(code(boolean(&set, "broken", &unknown)), EvaluationErrorCode::ParseError, "not a variant");
        let mistyped = string(&set, "banner", &Context::new()).expect_err("a boolean is no string");
        assert_eq!(mistyped.code, EvaluationErrorCode::TypeMismatch);
        assert!(mistyped.message.unwrap().contains("banner"));
        assert_eq!(integer(&set, "color", &Context::new()).unwrap_err().code, EvaluationErrorCode::TypeMismatch);
        assert_eq!(object(&set, "limit", &Context::new()).unwrap_err().code, EvaluationErrorCode::TypeMismatch);
    }

    #[tokio::test]
    async fn served_variants_are_recorded_and_defaults_are_not() {
        let set = set();
        let served = crate::Served::new();
        served
            .scope(async {
                let _ = boolean(&set, "banner", &user("ana@example.com"));
                let _ = boolean(&set, "off", &Context::new());
                let _ = boolean(&set, "color", &Context::new());
                let _ = string(&set, "color", &Context::new());
            })
            .await;
        assert_eq!(served.header_value().as_deref(), Some("banner=on, color=red"));
    }
}
