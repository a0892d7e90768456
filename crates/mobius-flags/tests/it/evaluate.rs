//! Evaluation outcomes: every reason, every error code, metadata, injected properties,
//! contexts that try to break things.

use mobius_flags::{Context, ErrorCode, FlagSet, LoadOptions, Reason};
use serde_json::{Value, json};

const DOCUMENT: &str = r#"{
  "metadata": {"flagSetId": "shop", "version": "3", "team": "payments"},
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
      "metadata": {"team": "checkout", "owner": "ana"}},
    "targeted": {"state": "ENABLED", "variants": {"gold": "G", "basic": "B"}, "defaultVariant": "basic",
      "targeting": {"if": [{"in": [{"var": "tier"}, ["gold", "platinum"]]}, "gold", null]}},
    "split": {"state": "ENABLED", "variants": {"a": "A", "b": "B", "c": "C"}, "defaultVariant": "a",
      "targeting": {"if": [{"==": [{"var": "beta"}, true]}, {"fractional": [["a", 1], ["b", 1], ["c", 1]]}, "c"]}},
    "disabled": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "shorthand": {"state": "ENABLED", "variants": {"true": 1, "false": 0}, "defaultVariant": "false",
      "targeting": {">=": [{"var": "age"}, 18]}},
    "numbered": {"state": "ENABLED", "variants": {"1": "one", "2": "two"}, "defaultVariant": "1",
      "targeting": {"+": [1, {"var": "n"}]}},
    "computed": {"state": "ENABLED", "variants": {"x-1": "X"}, "defaultVariant": "x-1",
      "targeting": {"cat": ["x-", {"var": "n"}]}},
    "object-result": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
      "targeting": {"if": [true, {"merge": [["a"]]}]}},
    "flag-key": {"state": "ENABLED", "variants": {"mine": "yes", "other": "no"}, "defaultVariant": "other",
      "targeting": {"if": [{"==": [{"var": "$flagd.flagKey"}, "flag-key"]}, "mine", "other"]}},
    "clock": {"state": "ENABLED", "variants": {"before": "b", "after": "a"}, "defaultVariant": "before",
      "targeting": {"if": [{">=": [{"var": "$flagd.timestamp"}, 1700000000]}, "after", "before"]}},
    "ramp": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"fractional": [
        ["on", {"max": [0, {"min": [1000, {"-": [{"var": "$flagd.timestamp"}, 1000]}]}]}],
        ["off", {"max": [0, {"min": [1000, {"-": [2000, {"var": "$flagd.timestamp"}]}]}]}]]}},
    "printer": {"state": "ENABLED", "variants": {"x": "x"}, "defaultVariant": "x",
      "targeting": {"if": [{"cat": [{"var": "blob"}]}, "x", null]}},
    "spinner": {"state": "ENABLED", "variants": {"x": "x"}, "defaultVariant": "x",
      "targeting": {"if": [{"all": [{"var": "xs"}, {"none": [{"var": ""}, {"var": "nope"}]}]}, "x", "x"]}}
  }
}"#;

fn set() -> FlagSet {
    FlagSet::from_json("shop.flagd.json", DOCUMENT, &LoadOptions::default()).unwrap()
}

#[test]
fn every_reason() {
    let set = set();
    let none = Context::new();
    let reason = |key: &str, context: &Context| set.evaluate(key, context).reason;
    assert_eq!(reason("static", &none), Reason::Static);
    assert_eq!(reason("targeted", &Context::new().set("tier", "gold")), Reason::TargetingMatch);
    assert_eq!(reason("targeted", &Context::new().set("tier", "tin")), Reason::Default);
    assert_eq!(reason("split", &Context::with_targeting_key("u1").set("beta", true)), Reason::Split);
    assert_eq!(reason("split", &Context::with_targeting_key("u1").set("beta", false)), Reason::TargetingMatch);
    assert_eq!(reason("disabled", &none), Reason::Disabled);
    assert_eq!(reason("nothing", &none), Reason::Error);

    let default = set.evaluate("targeted", &none);
    assert_eq!((default.value, default.variant), (Some(&json!("B")), Some("basic")));
    let disabled = set.evaluate("disabled", &none);
    assert_eq!((disabled.value, disabled.variant, disabled.error_code), (None, None, None));
}

#[test]
fn every_error_code() {
    let set = set();
    let missing = set.evaluate("nothing", &Context::new());
    assert_eq!(missing.error_code, Some(ErrorCode::FlagNotFound));
    assert_eq!(missing.error_details.as_deref(), Some("flag \"nothing\" is not in the set"));

    // A computed variant name the flag does not have, and a result that names nothing.
    let unknown = set.evaluate("computed", &Context::new().set("n", 2));
    assert_eq!((unknown.error_code, unknown.value), (Some(ErrorCode::ParseError), None));
    assert_eq!(
        unknown.error_details.as_deref(),
        Some("targeting returned \"x-2\", which is not a variant of flag \"computed\"")
    );
    assert_eq!(set.evaluate("computed", &Context::new().set("n", 1)).value, Some(&json!("X")));
    assert_eq!(set.evaluate("object-result", &Context::new()).error_code, Some(ErrorCode::ParseError));

    assert_eq!(Context::from_slice(b"{\"targetingKey\": ").unwrap_err().code, ErrorCode::ParseError);
    assert_eq!(Context::from_slice(b"[1]").unwrap_err().code, ErrorCode::InvalidContext);
    assert_eq!(Context::from_value(json!({"targetingKey": 7})).unwrap_err().code, ErrorCode::InvalidContext);
    assert_eq!(Context::from_value(json!({"targetingKey": "k", "a": 1})).unwrap().targeting_key(), Some("k"));

    assert_eq!(set.string("static", &Context::new(), "x").error_code, Some(ErrorCode::TypeMismatch));

    let strict = LoadOptions { require_targeting_key: true, ..LoadOptions::default() };
    let strict_set = FlagSet::from_json("shop.flagd.json", DOCUMENT, &strict).unwrap();
    let keyless = strict_set.evaluate("split", &Context::new().set("beta", true));
    assert_eq!((keyless.reason, keyless.error_code), (Reason::Error, Some(ErrorCode::TargetingKeyMissing)));
    // flagd's own behaviour without the option: the split cannot decide, the default applies.
    let lenient = set.evaluate("split", &Context::new().set("beta", true));
    assert_eq!((lenient.reason, lenient.variant), (Reason::Default, Some("a")));
    let empty_key = set.evaluate("split", &Context::with_targeting_key("").set("beta", true));
    assert_eq!(empty_key.reason, Reason::Default, "an empty targeting key is no key");

    // 600 × 600 inner steps: past the budget of 250,000, stopped rather than run.
    let budget = set.evaluate("spinner", &Context::new().set("xs", vec![vec![0; 600]; 600]));
    assert_eq!((budget.reason, budget.error_code), (Reason::Error, Some(ErrorCode::General)));

    for code in [
        ErrorCode::FlagNotFound,
        ErrorCode::ParseError,
        ErrorCode::TargetingKeyMissing,
        ErrorCode::InvalidContext,
        ErrorCode::TypeMismatch,
        ErrorCode::General,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
}

#[test]
fn boolean_and_number_results_name_variants() {
    let set = set();
    let adult = set.evaluate("shorthand", &Context::new().set("age", 30));
    assert_eq!((adult.variant, adult.value, adult.reason), (Some("true"), Some(&json!(1)), Reason::TargetingMatch));
    assert_eq!(set.evaluate("shorthand", &Context::new().set("age", 3)).variant, Some("false"));
    assert_eq!(set.evaluate("numbered", &Context::new().set("n", 1)).variant, Some("2"));
    assert_eq!(set.evaluate("numbered", &Context::new().set("n", 0.5)).error_code, Some(ErrorCode::ParseError));
}

#[test]
fn metadata_merges_with_the_flags_keys_winning() {
    let set = set();
    let own = set.evaluate("static", &Context::new());
    let expected = json!({"flagSetId": "shop", "version": "3", "team": "checkout", "owner": "ana"});
    assert_eq!(Value::Object(own.metadata.clone()), expected);
    let inherited = set.evaluate("targeted", &Context::new());
    assert_eq!(
        Value::Object(inherited.metadata.clone()),
        json!({"flagSetId": "shop", "version": "3", "team": "payments"})
    );
    let missing = set.evaluate("nothing", &Context::new());
    assert_eq!(missing.metadata, set.metadata(), "an unknown flag reports the set's metadata");
}

#[test]
fn injected_properties() {
    let set = set();
    assert_eq!(set.evaluate("flag-key", &Context::new()).variant, Some("mine"));
    // A caller cannot forge $flagd: it is replaced, as flagd replaces it.
    let forged = Context::new().set("$flagd", json!({"flagKey": "other", "timestamp": 0}));
    assert_eq!(set.evaluate("flag-key", &forged).variant, Some("mine"));
    assert_eq!(set.evaluate_at("clock", &forged, 1_700_000_000).variant, Some("after"));
    assert_eq!(set.evaluate_at("clock", &Context::new(), 1_699_999_999).variant, Some("before"));
    assert_eq!(set.evaluate("clock", &Context::new()).variant, Some("after"), "now is past 2023");
}

#[test]
fn a_time_based_rollout_with_computed_weights() {
    let set = set();
    let on_share = |timestamp: i64| {
        (0..1000)
            .filter(|i| {
                set.evaluate_at("ramp", &Context::with_targeting_key(format!("u{i}")), timestamp).variant == Some("on")
            })
            .count()
    };
    assert_eq!(on_share(1_000), 0);
    assert_eq!(on_share(2_000), 1000);
    let half = on_share(1_500);
    assert!((450..550).contains(&half), "{half}");
    // Monotone: a subject that is on stays on as the ramp advances.
    for i in 0..200 {
        let context = Context::with_targeting_key(format!("u{i}"));
        if set.evaluate_at("ramp", &context, 1_300).variant == Some("on") {
            assert_eq!(set.evaluate_at("ramp", &context, 1_700).variant, Some("on"), "u{i}");
        }
    }
}

#[test]
fn evaluate_all_skips_disabled_flags_and_isolates_errors() {
    let set = set();
    let all = set.evaluate_all_at(&Context::new().set("n", 5), 1_700_000_000);
    let keys: Vec<&str> = all.iter().map(|e| e.key).collect();
    assert!(!keys.contains(&"disabled"));
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(all.len(), set.len() - 1);
    let computed = all.iter().find(|e| e.key == "computed").unwrap();
    assert_eq!(computed.error_code, Some(ErrorCode::ParseError));
    let fine = all.iter().find(|e| e.key == "static").unwrap();
    assert_eq!(fine.value, Some(&json!(true)));
}

#[test]
fn evaluations_serialise_in_ofreps_shape() {
    let set = set();
    let success = serde_json::to_value(set.evaluate("targeted", &Context::new().set("tier", "gold"))).unwrap();
    assert_eq!(
        success,
        json!({"key": "targeted", "value": "G", "variant": "gold", "reason": "TARGETING_MATCH",
               "metadata": {"flagSetId": "shop", "version": "3", "team": "payments"}})
    );
    let disabled = serde_json::to_value(set.evaluate("disabled", &Context::new())).unwrap();
    assert_eq!(disabled["reason"], "DISABLED");
    assert!(disabled.get("value").is_none() && disabled.get("variant").is_none());
    let failure = serde_json::to_value(set.evaluate("nothing", &Context::new())).unwrap();
    assert_eq!(failure["errorCode"], "FLAG_NOT_FOUND");
    assert_eq!(failure["reason"], "ERROR");
}

/// Contexts of every shape, including ones built in code deeper than any parser allows, against
/// every flag: nothing panics, nothing overflows, and a failure stays that flag's.
#[test]
fn no_context_breaks_an_evaluation() {
    let set = set();
    // Deeper than serde_json would parse (128) and than the coercions walk (64); not so deep that
    // serde_json's own recursive clone and drop of it would overflow a test thread.
    let mut deep = json!("bottom");
    for _ in 0..1_000 {
        deep = Value::Array(vec![deep]);
    }
    let strange = [
        json!(null),
        json!(true),
        json!(-0.0),
        json!(1e308),
        json!(u64::MAX),
        json!(""),
        json!("x".repeat(100_000)),
        json!([]),
        json!({}),
        json!({"a": {"b": [1, {"c": null}]}}),
        deep,
    ];
    for value in &strange {
        let mut context = Context::with_targeting_key("k");
        for key in ["tier", "beta", "age", "n", "blob", "xs", "ys", "$flagd", "targetingKey"] {
            context = context.set(key, value.clone());
        }
        for evaluation in set.evaluate_all(&context) {
            if evaluation.reason == Reason::Error {
                assert!(evaluation.error_code.is_some() && evaluation.value.is_none(), "{evaluation:?}");
            }
        }
    }
    // The deep array cannot be printed by `cat`: an error for that flag, not a crash.
    let mut deep = json!(1);
    for _ in 0..500 {
        deep = Value::Array(vec![deep]);
    }
    let printer = set.evaluate("printer", &Context::new().set("blob", deep));
    assert_eq!(printer.error_code, Some(ErrorCode::ParseError));
}
