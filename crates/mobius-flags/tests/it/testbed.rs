//! flagd's evaluator testbed (open-feature/flagd-testbed v3.9.0, `evaluator/gherkin/*.feature`),
//! its scenarios re-stated as tables over a flag document written here: the testbed's files
//! carry no licence, its facts (which input gives which variant) do.
//!
//! The document is flagd's, warts included (a `sem_ver` with `===`, a negative weight, a
//! `$ref` to nothing), so it loads under `Strictness::Flagd`; under the default it is refused.

use mobius_flags::{Algorithm, Context, ErrorCode, FlagSet, LoadOptions, Reason, Strictness};
use serde_json::{Value, json};

const DOCUMENT: &str = r#"{
  "flags": {
    "boolean-flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "string-flag": {"state": "ENABLED", "variants": {"greeting": "hi", "parting": "bye"}, "defaultVariant": "greeting"},
    "integer-flag": {"state": "ENABLED", "variants": {"one": 1, "ten": 10}, "defaultVariant": "ten"},
    "float-flag": {"state": "ENABLED", "variants": {"tenth": 0.1, "half": 0.5}, "defaultVariant": "half"},
    "object-flag": {"state": "ENABLED", "variants": {"empty": {}, "template": {"showImages": true, "title": "Check out these pics!", "imagesPerPage": 100}}, "defaultVariant": "template"},
    "boolean-zero-flag": {"state": "ENABLED", "variants": {"zero": false, "non-zero": true}, "defaultVariant": "zero"},
    "string-zero-flag": {"state": "ENABLED", "variants": {"zero": "", "non-zero": "str"}, "defaultVariant": "zero"},
    "integer-zero-flag": {"state": "ENABLED", "variants": {"zero": 0, "non-zero": 1}, "defaultVariant": "zero"},
    "float-zero-flag": {"state": "ENABLED", "variants": {"zero": 0.0, "non-zero": 1.0}, "defaultVariant": "zero"},
    "object-zero-flag": {"state": "ENABLED", "variants": {"zero": {}, "non-zero": {"a": 1}}, "defaultVariant": "zero"},
    "boolean-targeted-zero-flag": {"state": "ENABLED", "variants": {"zero": false, "non-zero": true}, "defaultVariant": "zero", "targeting": {"if": [{"$ref": "is_ballmer"}, "zero"]}},
    "integer-targeted-zero-flag": {"state": "ENABLED", "variants": {"zero": 0, "non-zero": 1}, "defaultVariant": "zero", "targeting": {"if": [{"$ref": "is_ballmer"}, "zero"]}},
    "wrong-flag": {"state": "ENABLED", "variants": {"one": "uno", "two": "dos"}, "defaultVariant": "one"},
    "disabled-flag": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "null-default-flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
    "undefined-default-flag": {"state": "ENABLED", "variants": {"small": 10, "big": 1000}},
    "no-default-flag-null-targeting-variant": {"state": "ENABLED", "variants": {"normal": "CFO", "special": "CEO"},
      "targeting": {"if": [{"==": ["jobs@orange.com", {"var": ["email"]}]}, "special", null]}},
    "no-default-flag-undefined-targeting-variant": {"state": "ENABLED", "variants": {"normal": "CFO", "special": "CEO"},
      "targeting": {"if": [{"==": ["jobs@orange.com", {"var": ["email"]}]}, "special"]}},
    "metadata-flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
      "metadata": {"string": "1.0.2", "integer": 2, "boolean": true, "float": 0.1}},
    "some-email-targeted-flag": {"state": "ENABLED", "variants": {"hi": "hi", "bye": "bye", "none": "none"}, "defaultVariant": "none",
      "targeting": {"if": [{"$ref": "is_ballmer"}, "hi", "bye"]}},
    "ref-whitespace-flag": {"state": "ENABLED", "variants": {"hi": "hi", "bye": "bye", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{ "$ref" :   "is_ballmer" }, "hi", "bye"]}},
    "ref-to-nonexistent-evaluator-flag": {"state": "ENABLED", "variants": {"hit": "hit", "miss": "miss", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"$ref": "nonexistent_evaluator"}, "hit", "miss"]}},
    "fractional-flag": {"state": "ENABLED", "variants": {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"}, "defaultVariant": "wild",
      "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]}, ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]]}},
    "fractional-flag-shorthand": {"state": "ENABLED", "variants": {"heads": "heads", "tails": "tails", "draw": "draw"}, "defaultVariant": "draw",
      "targeting": {"fractional": [["heads"], ["tails", 1]]}},
    "fractional-flag-A-shared-seed": {"state": "ENABLED", "variants": {"clubs": "clubs", "diamonds": "diamonds", "hearts": "hearts", "spades": "spades", "wild": "wild"}, "defaultVariant": "wild",
      "targeting": {"fractional": [{"cat": ["shared-seed", {"var": "user.name"}]}, ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]]}},
    "fractional-flag-B-shared-seed": {"state": "ENABLED", "variants": {"clubs": "ace-of-clubs", "diamonds": "ace-of-diamonds", "hearts": "ace-of-hearts", "spades": "ace-of-spades", "wild": "wild"}, "defaultVariant": "wild",
      "targeting": {"fractional": [{"cat": ["shared-seed", {"var": "user.name"}]}, ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]]}},
    "fractional-hash-edge-flag": {"state": "ENABLED", "variants": {"lower": "lower", "upper": "upper"}, "defaultVariant": "lower",
      "targeting": {"fractional": [{"var": "targetingKey"}, ["lower", 50], ["upper", 50]]}},
    "fractional-nested-if-flag": {"state": "ENABLED", "variants": {"premium": "premium", "standard": "standard", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"fractional": [{"var": "targetingKey"}, [{"if": [{"==": [{"var": "tier"}, "premium"]}, "premium", "standard"]}, 50], ["standard", 50]]}},
    "fractional-nested-var-flag": {"state": "ENABLED", "variants": {"red": "red", "green": "green", "blue": "blue", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"fractional": [{"var": "targetingKey"}, [{"var": "color"}, 50], ["blue", 50]]}},
    "fractional-nested-weight-flag": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"fractional": [{"var": "targetingKey"}, ["red", {"if": [{"==": [{"var": "tier"}, "premium"]}, 100, 0]}], ["blue", 10]]}},
    "fractional-as-condition-flag": {"state": "ENABLED", "variants": {"big": "hundreds", "small": "ones", "fallback": "zero"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"fractional": [[false, 0], [true, 100]]}, "big", "small"]}},
    "fractional-single-entry-flag": {"state": "ENABLED", "variants": {"single": "single", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"fractional": [["single", 1]]}},
    "fractional-null-bucket-key-flag": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"fractional": [{"var": "missing_key"}, ["one", 50], ["two", 50]]}, "true", "false"]}},
    "fractional-zero-weights-flag": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"fractional": [{"var": "targetingKey"}, ["one", 0], ["two", 0]]}, "true", "false"]}},
    "fractional-negative-weight-flag": {"state": "ENABLED", "variants": {"one": "one", "two": "two", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"fractional": [{"var": "targetingKey"}, ["one", -50], ["two", 100]]}},
    "starts-ends-flag": {"state": "ENABLED", "variants": {"prefix": "prefix", "postfix": "postfix", "none": "none"}, "defaultVariant": "none",
      "targeting": {"if": [{"starts_with": [{"var": "id"}, "abc"]}, "prefix", {"if": [{"ends_with": [{"var": "id"}, "xyz"]}, "postfix", "none"]}]}},
    "starts-with-non-string-flag": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"starts_with": [{"var": "num"}, "abc"]}, "true", "false"]}},
    "ends-with-wrong-args-flag": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"ends_with": ["xyz"]}, "true", "false"]}},
    "equal-greater-lesser-version-flag": {"state": "ENABLED", "variants": {"equal": "equal", "greater": "greater", "lesser": "lesser", "none": "none"}, "defaultVariant": "none",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "2.0.0"]}, "equal", {"if": [{"sem_ver": [{"var": "version"}, ">", "2.0.0"]}, "greater",
        {"if": [{"sem_ver": [{"var": "version"}, "<", "2.0.0"]}, "lesser", "none"]}]}]}},
    "major-minor-version-flag": {"state": "ENABLED", "variants": {"minor": "minor", "major": "major", "none": "none"}, "defaultVariant": "none",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "~", "3.0.0"]}, "minor", {"if": [{"sem_ver": [{"var": "version"}, "^", "3.0.0"]}, "major", "none"]}]}},
    "semver-v-prefix-flag": {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"}, "defaultVariant": "no-match",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "v1.0.0"]}, "match", "no-match"]}},
    "semver-partial-version-flag": {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"}, "defaultVariant": "no-match",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "^", "1"]}, "match", "no-match"]}},
    "semver-build-metadata-flag": {"state": "ENABLED", "variants": {"match": "match", "no-match": "no-match"}, "defaultVariant": "no-match",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "=", "1.0.0+build"]}, "match", "no-match"]}},
    "semver-invalid-operator-flag": {"state": "ENABLED", "variants": {"true": "true", "false": "false", "fallback": "fallback"}, "defaultVariant": "fallback",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, "===", "1.0.0"]}, "true", "false"]}},
    "targeting-key-flag": {"state": "ENABLED", "variants": {"miss": "miss", "hit": "hit"}, "defaultVariant": "miss",
      "targeting": {"if": [{"==": [{"var": "targetingKey"}, "5c3d8535-f81a-4478-a6d3-afaa4d51199e"]}, "hit", null]}},
    "large-integer-flag": {"state": "ENABLED", "variants": {"max": 2147483647, "zero": 0}, "defaultVariant": "max"},
    "integral-float-flag": {"state": "ENABLED", "variants": {"ten": 10.0, "zero": 0.0}, "defaultVariant": "ten"},
    "huge-integer-flag": {"state": "ENABLED", "variants": {"max": 9007199254740991, "zero": 0}, "defaultVariant": "max"}
  },
  "$evaluators": {
    "is_ballmer": {"==": ["ballmer@macrosoft.com", {"var": ["email"]}]}
  }
}"#;

fn load(fractional: Algorithm) -> FlagSet {
    let options = LoadOptions { fractional, strictness: Strictness::Flagd, ..LoadOptions::default() };
    FlagSet::from_json("testbed.flagd.json", DOCUMENT, &options).unwrap()
}

fn user(name: &str) -> Context {
    Context::new().set("user", json!({ "name": name }))
}

/// Evaluates a string flag with the caller default "fallback"; checks value and reason.
fn check_string(set: &FlagSet, key: &str, context: &Context, value: &str, reason: Reason) {
    let resolved = set.string(key, context, "fallback");
    assert_eq!((resolved.value, resolved.reason), (value, reason), "{key} with {context:?}: {resolved:?}");
}

#[test]
fn the_document_is_refused_under_the_schema_and_says_where() {
    let error = FlagSet::from_json("testbed.flagd.json", DOCUMENT, &LoadOptions::default()).unwrap_err();
    // The first schema violation in document order: the `$ref` to a missing evaluator.
    assert_eq!(
        error.to_string(),
        "testbed.flagd.json:30:37: at /flags/ref-to-nonexistent-evaluator-flag/targeting/if/0/$ref: \
         $ref to \"nonexistent_evaluator\", which is not in $evaluators"
    );
}

#[test]
fn basic_values_and_zero_values() {
    let set = load(Algorithm::HighPrecision);
    let none = Context::new();
    assert!(set.boolean("boolean-flag", &none, false).value);
    check_string(&set, "string-flag", &none, "hi", Reason::Static);
    assert_eq!(set.integer("integer-flag", &none, 1).value, 10);
    assert_eq!(set.float("float-flag", &none, 0.1).value, 0.5);
    let object = set.evaluate("object-flag", &none);
    assert_eq!(
        object.value,
        Some(&json!({"showImages": true, "title": "Check out these pics!", "imagesPerPage": 100}))
    );
    // Zero values are values, not absences.
    assert!(!set.boolean("boolean-zero-flag", &none, true).value);
    check_string(&set, "string-zero-flag", &none, "", Reason::Static);
    assert_eq!(set.integer("integer-zero-flag", &none, 1).value, 0);
    assert_eq!(set.float("float-zero-flag", &none, 1.0).value, 0.0);
    assert_eq!(set.evaluate("object-zero-flag", &none).value, Some(&json!({})));
    let ballmer = Context::new().set("email", "ballmer@macrosoft.com");
    for (key, expected) in [("boolean-targeted-zero-flag", json!(false)), ("integer-targeted-zero-flag", json!(0))] {
        let hit = set.evaluate(key, &ballmer);
        assert_eq!(
            (hit.value, hit.variant, hit.reason),
            (Some(&expected), Some("zero"), Reason::TargetingMatch),
            "{key}"
        );
        let miss = set.evaluate(key, &none);
        assert_eq!((miss.value, miss.reason), (Some(&expected), Reason::Default), "{key}");
    }
}

#[test]
fn numbers_keep_their_precision() {
    let set = load(Algorithm::HighPrecision);
    let none = Context::new();
    assert_eq!(set.integer("large-integer-flag", &none, 1).value, 2_147_483_647);
    assert_eq!(set.integer("huge-integer-flag", &none, 1).value, 9_007_199_254_740_991);
    let float = set.evaluate("integral-float-flag", &none);
    assert_eq!(serde_json::to_string(float.value.unwrap()).unwrap(), "10.0", "an integral float stays a float");
}

#[test]
fn errors_flag_not_found_and_type_mismatch() {
    let set = load(Algorithm::HighPrecision);
    let none = Context::new();
    let missing = set.string("missing-flag", &none, "uh-oh");
    assert_eq!(
        (missing.value, missing.error_code, missing.reason),
        ("uh-oh", Some(ErrorCode::FlagNotFound), Reason::Error)
    );
    let wrong = set.integer("wrong-flag", &none, 13);
    assert_eq!((wrong.value, wrong.error_code), (13, Some(ErrorCode::TypeMismatch)));
    for (key, kind) in [
        ("boolean-flag", "string"),
        ("boolean-flag", "integer"),
        ("boolean-flag", "float"),
        ("string-flag", "boolean"),
        ("string-flag", "integer"),
        ("string-flag", "float"),
        ("integer-flag", "boolean"),
        ("integer-flag", "string"),
        ("float-flag", "boolean"),
        ("float-flag", "string"),
    ] {
        let code = match kind {
            "string" => set.string(key, &none, "fallback").error_code,
            "integer" => set.integer(key, &none, 1).error_code,
            "float" => set.float(key, &none, 0.1).error_code,
            _ => set.boolean(key, &none, false).error_code,
        };
        assert_eq!(code, Some(ErrorCode::TypeMismatch), "{key} as {kind}");
    }
}

#[test]
fn disabled_flags_give_the_callers_default() {
    let set = load(Algorithm::HighPrecision);
    let resolved = set.boolean("disabled-flag", &Context::new(), false);
    assert_eq!(
        (resolved.value, resolved.reason, resolved.variant, resolved.error_code),
        (false, Reason::Disabled, None, None)
    );
}

#[test]
fn flags_without_a_default_variant() {
    let set = load(Algorithm::HighPrecision);
    let email = |e: &str| Context::new().set("email", e);
    assert!(set.boolean("null-default-flag", &Context::new(), true).value);
    let resolved = set.boolean("null-default-flag", &Context::new(), false);
    assert_eq!((resolved.value, resolved.reason, resolved.variant), (false, Reason::Default, None));
    let resolved = set.integer("undefined-default-flag", &Context::new(), 100);
    assert_eq!((resolved.value, resolved.reason), (100, Reason::Default));
    let set_key = "no-default-flag-null-targeting-variant";
    assert_eq!(set.string(set_key, &email("wozniak@orange.com"), "Inventor").value, "Inventor");
    assert_eq!(set.string(set_key, &email("wozniak@orange.com"), "Inventor").reason, Reason::Default);
    assert_eq!(set.string(set_key, &email("jobs@orange.com"), "CEO").reason, Reason::TargetingMatch);
    let undefined = set.string("no-default-flag-undefined-targeting-variant", &email("wozniak@orange.com"), "Retired");
    assert_eq!((undefined.value, undefined.reason), ("Retired", Reason::Default));
}

#[test]
fn targeting_key_and_evaluator_refs() {
    let set = load(Algorithm::HighPrecision);
    let key = |k: &str| Context::with_targeting_key(k);
    check_string(
        &set,
        "targeting-key-flag",
        &key("5c3d8535-f81a-4478-a6d3-afaa4d51199e"),
        "hit",
        Reason::TargetingMatch,
    );
    check_string(&set, "targeting-key-flag", &key("f20bd32d-703b-48b6-bc8e-79d53c85134a"), "miss", Reason::Default);
    let ballmer = Context::new().set("email", "ballmer@macrosoft.com");
    check_string(&set, "some-email-targeted-flag", &ballmer, "hi", Reason::TargetingMatch);
    check_string(&set, "ref-whitespace-flag", &ballmer, "hi", Reason::TargetingMatch);
    check_string(
        &set,
        "ref-whitespace-flag",
        &Context::new().set("email", "user@example.com"),
        "bye",
        Reason::TargetingMatch,
    );
    let broken = set.string("ref-to-nonexistent-evaluator-flag", &Context::new(), "fallback");
    assert_eq!((broken.value, broken.error_code), ("fallback", Some(ErrorCode::ParseError)));
}

#[test]
fn fractional_high_precision() {
    let set = load(Algorithm::HighPrecision);
    for (name, value) in
        [("jack", "hearts"), ("queen", "spades"), ("ten", "clubs"), ("nine", "diamonds"), ("3", "clubs")]
    {
        check_string(&set, "fractional-flag", &user(name), value, Reason::Split);
    }
    for (key, value) in [("jon@company.com", "heads"), ("jane@company.com", "tails")] {
        check_string(&set, "fractional-flag-shorthand", &Context::with_targeting_key(key), value, Reason::Split);
    }
    for (name, a, b) in [
        ("seven", "hearts", "ace-of-hearts"),
        ("eight", "diamonds", "ace-of-diamonds"),
        ("nine", "clubs", "ace-of-clubs"),
        ("two", "spades", "ace-of-spades"),
    ] {
        check_string(&set, "fractional-flag-A-shared-seed", &user(name), a, Reason::Split);
        check_string(&set, "fractional-flag-B-shared-seed", &user(name), b, Reason::Split);
    }
    for (key, value) in
        [("ejOoVL", "lower"), ("bY9fO-", "lower"), ("SI7p-", "lower"), ("6LvT0", "upper"), ("ceQdGm", "upper")]
    {
        check_string(&set, "fractional-hash-edge-flag", &Context::with_targeting_key(key), value, Reason::Split);
    }
}

#[test]
fn fractional_legacy() {
    let set = load(Algorithm::Legacy);
    assert_eq!(set.fractional_algorithm(), Algorithm::Legacy);
    for (name, value) in
        [("jack", "spades"), ("queen", "clubs"), ("ten", "diamonds"), ("nine", "hearts"), ("3", "diamonds")]
    {
        check_string(&set, "fractional-flag", &user(name), value, Reason::Split);
    }
    for (key, value) in [("jon@company.com", "heads"), ("jane@company.com", "tails")] {
        check_string(&set, "fractional-flag-shorthand", &Context::with_targeting_key(key), value, Reason::Split);
    }
    for (name, a, b) in [
        ("jack", "hearts", "ace-of-hearts"),
        ("queen", "spades", "ace-of-spades"),
        ("ten", "hearts", "ace-of-hearts"),
        ("nine", "diamonds", "ace-of-diamonds"),
    ] {
        check_string(&set, "fractional-flag-A-shared-seed", &user(name), a, Reason::Split);
        check_string(&set, "fractional-flag-B-shared-seed", &user(name), b, Reason::Split);
    }
}

#[test]
fn fractional_algorithm_chosen_by_the_sets_metadata() {
    // The same document, its set metadata naming the algorithm, loaded with the default
    // options (high precision): the document's choice decides.
    let with = |name: &str| {
        let text = DOCUMENT.replacen('{', &format!("{{\n  \"metadata\": {{\"mobius.fractional\": \"{name}\"}},"), 1);
        let options = LoadOptions { strictness: Strictness::Flagd, ..LoadOptions::default() };
        FlagSet::from_json("testbed.flagd.json", &text, &options).unwrap()
    };
    let (legacy, high) = (with("legacy"), with("high-precision"));
    assert_eq!(
        (legacy.fractional_algorithm(), high.fractional_algorithm()),
        (Algorithm::Legacy, Algorithm::HighPrecision)
    );
    // The testbed's tables for the same users: v1 (`@fractional-v1`) and v2.
    for (name, v1, v2) in [
        ("jack", "spades", "hearts"),
        ("queen", "clubs", "spades"),
        ("ten", "diamonds", "clubs"),
        ("nine", "hearts", "diamonds"),
        ("3", "diamonds", "clubs"),
    ] {
        check_string(&legacy, "fractional-flag", &user(name), v1, Reason::Split);
        check_string(&high, "fractional-flag", &user(name), v2, Reason::Split);
    }
    // The hash-edge keys, 50/50: legacy's float percentage misses every range at |i32::MIN|
    // and at i32::MAX (a bucket of 100 or just past it), so those fall back to the default.
    for (key, value, reason) in [
        ("ejOoVL", "lower", Reason::Split),  // 0x00000000
        ("bY9fO-", "lower", Reason::Split),  // 0x00000001
        ("SI7p-", "lower", Reason::Default), // 0x7fffffff: 100.0
        ("6LvT0", "lower", Reason::Default), // 0x80000000: 100.00000005
        ("ceQdGm", "lower", Reason::Split),  // 0xffffffff: -1, near 0
    ] {
        check_string(&legacy, "fractional-hash-edge-flag", &Context::with_targeting_key(key), value, reason);
    }
}

#[test]
fn fractional_nested_rules_and_edge_cases() {
    let set = load(Algorithm::HighPrecision);
    let subject = |key: &str, attribute: &str, value: &str| Context::with_targeting_key(key).set(attribute, value);
    for (key, tier, value) in [
        ("jon@company.com", "premium", "premium"),
        ("jon@company.com", "basic", "standard"),
        ("user1", "premium", "standard"),
        ("user1", "basic", "standard"),
    ] {
        check_string(&set, "fractional-nested-if-flag", &subject(key, "tier", tier), value, Reason::Split);
    }
    for (key, color, value, reason) in [
        ("jon@company.com", "red", "red", Reason::Split),
        ("jon@company.com", "green", "green", Reason::Split),
        ("user1", "red", "blue", Reason::Split),
        // A computed name that is no variant: flagd's PARSE_ERROR, the caller's default.
        ("jon@company.com", "yellow", "fallback", Reason::Error),
        ("jon@company.com", "", "fallback", Reason::Error),
    ] {
        check_string(&set, "fractional-nested-var-flag", &subject(key, "color", color), value, reason);
    }
    for (key, tier, value) in [
        ("jon@company.com", "premium", "red"),
        ("jon@company.com", "basic", "blue"),
        ("user1", "premium", "red"),
        ("user1", "basic", "blue"),
    ] {
        check_string(&set, "fractional-nested-weight-flag", &subject(key, "tier", tier), value, Reason::Split);
    }
    // A split deciding a condition is a targeting match, not a split of the flag's variants.
    check_string(
        &set,
        "fractional-as-condition-flag",
        &Context::with_targeting_key("some-targeting-key"),
        "hundreds",
        Reason::TargetingMatch,
    );
    check_string(&set, "fractional-single-entry-flag", &Context::with_targeting_key("anyone"), "single", Reason::Split);
    // Nothing to bucket by, or nothing to share: the operator cannot decide, the default applies.
    check_string(&set, "fractional-null-bucket-key-flag", &Context::new(), "fallback", Reason::Default);
    check_string(
        &set,
        "fractional-null-bucket-key-flag",
        &Context::with_targeting_key("k"),
        "true",
        Reason::TargetingMatch,
    );
    check_string(&set, "fractional-zero-weights-flag", &Context::with_targeting_key("k"), "fallback", Reason::Default);
    for key in ["a", "b", "c", "d"] {
        check_string(&set, "fractional-negative-weight-flag", &Context::with_targeting_key(key), "two", Reason::Split);
    }
}

#[test]
fn sem_ver() {
    let set = load(Algorithm::HighPrecision);
    let version = |v: &str| Context::new().set("version", v);
    for (v, value) in [("2.0.0", "equal"), ("2.1.0", "greater"), ("1.9.0", "lesser"), ("2.0.0-alpha", "lesser")] {
        check_string(&set, "equal-greater-lesser-version-flag", &version(v), value, Reason::TargetingMatch);
    }
    // "2.0.0.0" is no version: the first sem_ver cannot decide, the flag's default applies.
    check_string(&set, "equal-greater-lesser-version-flag", &version("2.0.0.0"), "none", Reason::Default);
    for (v, value) in [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")] {
        check_string(&set, "major-minor-version-flag", &version(v), value, Reason::TargetingMatch);
    }
    for (key, rows) in [
        ("semver-v-prefix-flag", [("1.0.0", "match"), ("v1.0.0", "match"), ("2.0.0", "no-match")]),
        ("semver-partial-version-flag", [("1.5.0", "match"), ("1.0.0", "match"), ("2.0.0", "no-match")]),
        ("semver-build-metadata-flag", [("1.0.0", "match"), ("1.0.0+other", "match"), ("2.0.0", "no-match")]),
    ] {
        for (v, value) in rows {
            check_string(&set, key, &version(v), value, Reason::TargetingMatch);
        }
    }
    check_string(&set, "semver-invalid-operator-flag", &version("1.0.0"), "fallback", Reason::Default);
    // A number is not a version string.
    check_string(&set, "semver-v-prefix-flag", &Context::new().set("version", 1), "no-match", Reason::Default);
}

#[test]
fn starts_with_and_ends_with() {
    let set = load(Algorithm::HighPrecision);
    for (id, value) in [("abcdef", "prefix"), ("uvwxyz", "postfix"), ("abcxyz", "prefix"), ("lmnopq", "none")] {
        check_string(&set, "starts-ends-flag", &Context::new().set("id", id), value, Reason::TargetingMatch);
    }
    check_string(&set, "starts-with-non-string-flag", &Context::new().set("num", 123), "fallback", Reason::Default);
    check_string(&set, "ends-with-wrong-args-flag", &Context::new(), "fallback", Reason::Default);
}

#[test]
fn flag_metadata() {
    let set = load(Algorithm::HighPrecision);
    let evaluation = set.evaluate("metadata-flag", &Context::new());
    let expected: Value = json!({"string": "1.0.2", "integer": 2, "boolean": true, "float": 0.1});
    assert_eq!(Value::Object(evaluation.metadata.clone()), expected);
}
