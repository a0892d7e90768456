//! flagd's own schema and example documents (`../shared/corpus/openfeature/flagd-schemas`),
//! read in place.

use std::path::PathBuf;

use mobius_flags::{Context, ErrorCode, FlagSet, LoadOptions, Reason, Strictness, semver};
use serde_json::{Value, json};

fn corpus(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/openfeature/flagd-schemas").join(file)
}

fn schema(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(corpus(file)).unwrap()).unwrap()
}

#[test]
fn the_minimal_example_loads() {
    let set = FlagSet::from_file(&corpus("examples/minimal.json"), &LoadOptions::default()).unwrap();
    let evaluation = set.evaluate("myFlag", &Context::new());
    assert_eq!(
        (evaluation.value, evaluation.variant, evaluation.reason),
        (Some(&json!(true)), Some("on"), Reason::Static)
    );
}

#[test]
fn the_full_example_breaks_the_targeting_schema_where_it_tests_bad_input() {
    // full.json exercises evaluation-time handling of bad rules (`ends_with` against a number,
    // a four-part version, a "fail" branch never taken), which the schema itself forbids.
    let error = FlagSet::from_file(&corpus("examples/full.json"), &LoadOptions::default()).unwrap_err();
    let location = error.location.clone().unwrap();
    assert_eq!((location.line, location.column), (102, 52), "{error}");
    assert_eq!(location.pointer, "/flags/starts-ends-flag/targeting/if/2/if/2/if/0/ends_with/1");
    assert!(error.to_string().ends_with("`ends_with`: arguments are strings or rules, found a number"), "{error}");
}

#[test]
fn the_full_example_evaluates_as_flagd_does() {
    let options = LoadOptions { strictness: Strictness::Flagd, ..LoadOptions::default() };
    let set = FlagSet::from_file(&corpus("examples/full.json"), &options).unwrap();
    let none = Context::new();
    assert!(set.boolean("myBoolFlag", &none, false).value);
    assert_eq!(set.string("myStringFlag", &none, "x").value, "val1");
    assert_eq!(set.integer("myNumberFlag", &none, 0).value, 2);
    assert_eq!(set.evaluate("myObjectFlag", &none).value, Some(&json!({"key": "val"})));
    assert_eq!(set.string("wrong-flag", &none, "x").value, "uno");

    let split = set.evaluate("fractional-flag", &Context::new().set("user", json!({"name": "jack"})));
    assert_eq!(split.reason, Reason::Split);
    let shorthand = set.evaluate("shorthand-fractional-flag", &Context::with_targeting_key("jack"));
    assert_eq!(shorthand.reason, Reason::Split);
    assert_ne!(shorthand.variant, Some("wild"));

    let id = |v: &str| Context::new().set("id", v);
    assert_eq!(set.string("starts-ends-flag", &id("abcdef"), "x").value, "prefix");
    assert_eq!(set.string("starts-ends-flag", &id("uvwxyz"), "x").value, "postfix");
    // `ends_with` against the number 3 cannot decide: the default variant.
    let undecided = set.string("starts-ends-flag", &id("lmnop3"), "x");
    assert_eq!((undecided.value, undecided.reason), ("none", Reason::Default));

    let version = |v: &str| Context::new().set("version", v);
    assert_eq!(set.string("equal-greater-lesser-version-flag", &version("2.0.0"), "x").value, "equal");
    assert_eq!(set.string("equal-greater-lesser-version-flag", &version("2.1.0"), "x").value, "greater");
    assert_eq!(set.string("equal-greater-lesser-version-flag", &version("1.0.0"), "x").value, "lesser");
    assert_eq!(set.string("major-minor-version-flag", &version("3.0.1"), "x").value, "minor");
    assert_eq!(set.string("major-minor-version-flag", &version("3.1.0"), "x").value, "major");

    // cat("1", "@") is "1@", no variant of the flag.
    let cat = set.evaluate("test-cat", &none);
    assert_eq!((cat.reason, cat.error_code), (Reason::Error, Some(ErrorCode::ParseError)));

    let person = Context::new().set("fn", "Sulisław").set("ln", "Świętopełk").set("age", 29).set("customer", false);
    assert_eq!(set.string("context-aware", &person, "x").value, "INTERNAL");
    assert_eq!(set.string("context-aware", &person.clone().set("age", "29"), "x").value, "INTERNAL", "== coerces");
    assert_eq!(set.string("context-aware", &person.set("customer", true), "x").value, "EXTERNAL");

    let at = |time: i64| Context::new().set("time", time);
    assert_eq!(set.evaluate_at("timestamp-flag", &at(1_000), 2_000).value, Some(&json!(-1)));
    assert_eq!(set.evaluate_at("timestamp-flag", &at(3_000), 2_000).value, Some(&json!(1)));
    assert_eq!(set.evaluate_at("timestamp-flag", &at(2_000), 2_000).value, Some(&json!(0)));
}

#[test]
fn our_states_and_sem_ver_operators_are_the_schemas() {
    let flags = schema("flags.json");
    let states = &flags["definitions"]["baseFlag"]["properties"]["state"]["enum"];
    assert_eq!(states, &json!(["ENABLED", "DISABLED"]));
    for state in ["ENABLED", "DISABLED", "enabled", "OFF"] {
        let document = format!(r#"{{"flags": {{"f": {{"state": "{state}", "variants": {{"a": 1}}}}}}}}"#);
        let loads = FlagSet::from_json("f", &document, &LoadOptions::default()).is_ok();
        assert_eq!(loads, states.as_array().unwrap().contains(&json!(state)), "{state}");
    }
    let targeting = schema("targeting.json");
    let operators =
        targeting["definitions"]["ruleSemVer"]["properties"]["sem_ver"]["items"][1]["enum"].as_array().unwrap();
    assert_eq!(operators.len(), 8);
    for op in operators {
        assert!(semver::Operator::parse(op.as_str().unwrap()).is_some(), "{op}");
    }
    let total = &targeting["definitions"]["fractionalWeightArg"]["items"][1]["description"];
    assert!(total.as_str().unwrap().contains("2,147,483,647"));
    assert_eq!(mobius_flags::fractional::MAX_TOTAL_WEIGHT, 2_147_483_647);
}
