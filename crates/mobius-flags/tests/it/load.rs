//! Documents that must be refused, each at the exact place at fault; and what loads.

use mobius_flags::{Algorithm, FlagSet, LoadErrorKind, LoadOptions, Strictness, VariantType};

/// Loads `document` (single quotes stand for double quotes, to keep the tables readable) and
/// checks the error's `line:column`, JSON pointer and message.
fn check(document: &str, at: &str, pointer: &str, message: &str) {
    let text = document.replace('\'', "\"");
    let error = FlagSet::from_json("flags.json", &text, &LoadOptions::default()).expect_err(&text);
    let location = error.location.clone().expect("a position");
    let found = format!("{}:{}", location.line, location.column);
    assert_eq!((found.as_str(), location.pointer.as_str()), (at, pointer), "{text}\n{error}");
    assert!(error.kind.to_string().contains(message), "{text}\n{error}");
}

/// A document with one flag `f` whose body starts at column 17.
fn flag(body: &str) -> String {
    format!("{{'flags': {{'f': {body}}}}}")
}

/// A document with one string flag whose targeting starts at column 88.
fn targeting(rule: &str) -> String {
    flag(&format!("{{'state': 'ENABLED', 'variants': {{'on': 'a', 'off': 'b'}}, 'targeting': {rule}}}"))
}

#[test]
fn the_document_and_the_flag_shape() {
    check("{'flags': 1", "1:12", "", "expected ',' or '}', found the end of the document");
    check("[]", "1:1", "", "expected an object, found an array");
    check("{'metadata': {}}", "1:1", "", "`flags` is required");
    check("{'flags': 'x'}", "1:11", "/flags", "expected an object of flags, found a string");
    check(&flag("1"), "1:17", "/flags/f", "expected an object (a flag), found a number");
    check(&flag("{'variants': {'on': true}}"), "1:17", "/flags/f", "`state` is required");
    check(
        &flag("{'state': 'enabled'}"),
        "1:27",
        "/flags/f/state",
        "state must be \"ENABLED\" or \"DISABLED\", found \"enabled\"",
    );
    check(&flag("{'state': 'ENABLED'}"), "1:17", "/flags/f", "`variants` is required");
    check(&flag("{'state': 'ENABLED', 'variants': {}}"), "1:50", "/flags/f/variants", "at least one variant");
    check(
        &flag("{'state': 'ENABLED', 'variants': {'on': true, 'off': 'no'}}"),
        "1:70",
        "/flags/f/variants/off",
        "the first is a boolean, this one is a string",
    );
    check(&flag("{'state': 'ENABLED', 'variants': {'on': null}}"), "1:57", "/flags/f/variants/on", "found null");
    check(&flag("{'state': 'ENABLED', 'variants': {'on': [1]}}"), "1:57", "/flags/f/variants/on", "found an array");
    check(
        &flag("{'state': 'ENABLED', 'variants': {'on': 1}, 'defaultVariant': 'off'}"),
        "1:79",
        "/flags/f/defaultVariant",
        "defaultVariant \"off\" is not one of the flag's variants",
    );
    check(
        &flag("{'state': 'ENABLED', 'variants': {'on': 1}, 'defaultVariant': 1}"),
        "1:79",
        "/flags/f/defaultVariant",
        "a variant name or null",
    );
    check("{'flags': {'f': {}, 'f': {}}}", "1:21", "", "the key \"f\" appears twice");
    check("{\n  'flags': {\n    'a': 1\n  }\n}", "3:10", "/flags/a", "expected an object (a flag)");
    // JSON pointers escape `~` and `/` in keys (RFC 6901).
    check("{'flags': {'a/b~c': 1}}", "1:21", "/flags/a~1b~0c", "expected an object (a flag)");
}

#[test]
fn metadata() {
    check("{'flags': {}, 'metadata': {'team': ['a']}}", "1:36", "/metadata/team", "found an array");
    check(
        "{'flags': {}, 'metadata': {'version': 2}}",
        "1:39",
        "/metadata/version",
        "flagSetId and version are strings",
    );
    check(
        &flag("{'state': 'ENABLED', 'variants': {'on': 1}, 'metadata': {'owner': {}}}"),
        "1:83",
        "/flags/f/metadata/owner",
        "found an object",
    );
}

#[test]
fn rules() {
    check(&targeting("'on'"), "1:88", "/flags/f/targeting", "expected an object (a JsonLogic rule), found a string");
    check(&targeting("{'regex': ['a']}"), "1:89", "/flags/f/targeting/regex", "unknown operator \"regex\"");
    check(
        &targeting("{'if': [true, {'a': 1, 'b': 2}]}"),
        "1:102",
        "/flags/f/targeting/if/1",
        "exactly one operator, this one has 2 keys",
    );
    check(&targeting("{'==': [1]}"), "1:95", "/flags/f/targeting/==", "`==` takes 2 argument(s), found 1");
    check(&targeting("{'cat': 'x'}"), "1:96", "/flags/f/targeting/cat", "expected an array of arguments");
    check(
        &targeting("{'var': '$flagd.other'}"),
        "1:96",
        "/flags/f/targeting/var",
        "only $flagd.timestamp and $flagd.flagKey",
    );
    check(
        &targeting("{'var': [1]}"),
        "1:97",
        "/flags/f/targeting/var",
        "expected a var path (a string), found a number",
    );
    check(
        &targeting("{'if': [{'sem_ver': [{'var': 'v'}, '===', '1.0.0']}, 'on', 'off']}"),
        "1:123",
        "/flags/f/targeting/if/0/sem_ver/1",
        "the operator is one of = != < <= > >= ~ ^, found \"===\"",
    );
    check(
        &targeting("{'if': [{'sem_ver': [{'var': 'v'}, '=', '1.0.0.0']}, 'on', 'off']}"),
        "1:128",
        "/flags/f/targeting/if/0/sem_ver/2",
        "\"1.0.0.0\" is not a semantic version",
    );
    check(
        &targeting("{'if': [{'sem_ver': [{'var': 'v'}, '=']}, 'on']}"),
        "1:108",
        "/flags/f/targeting/if/0/sem_ver",
        "takes 3 argument(s), found 2",
    );
    check(
        &targeting("{'if': [{'ends_with': [{'var': 'id'}, 3]}, 'on', 'off']}"),
        "1:126",
        "/flags/f/targeting/if/0/ends_with/1",
        "arguments are strings or rules, found a number",
    );
    check(
        &targeting("{'missing': ['a', 1]}"),
        "1:106",
        "/flags/f/targeting/missing/1",
        "keys are strings, found a number",
    );
}

#[test]
fn literals_the_targeting_returns_must_be_variants() {
    check(
        &targeting("{'if': [{'var': 'x'}, 'on', 'nope']}"),
        "1:116",
        "/flags/f/targeting/if/2",
        "can return \"nope\", which is not one of",
    );
    check(&targeting("{'or': [{'var': 'x'}, 'gone']}"), "1:110", "/flags/f/targeting/or/1", "\"gone\"");
    // Boolean shorthand: `true` names the variant "true", which this flag lacks.
    check(&targeting("{'if': [{'var': 'x'}, true, 'off']}"), "1:110", "/flags/f/targeting/if/1", "can return \"true\"");
    check(&targeting("{'if': [{'var': 'x'}, ['on']]}"), "1:110", "/flags/f/targeting/if/1", "can return an array");
    check(
        &targeting("{'fractional': [['on', 50], ['of', 50]]}"),
        "1:117",
        "/flags/f/targeting/fractional/1/0",
        "can return \"of\"",
    );
    check(&targeting("{'var': ['plan', 'free']}"), "1:105", "/flags/f/targeting/var/1", "can return \"free\"");
    // A literal inside a condition is not a return value.
    FlagSet::from_json(
        "f",
        &targeting("{'if': [{'==': [{'var': 'x'}, 'anything']}, 'on', null]}").replace('\'', "\""),
        &LoadOptions::default(),
    )
    .unwrap();
}

#[test]
fn fractional_weights() {
    check(
        &targeting("{'fractional': [['on', -5], ['off', 5]]}"),
        "1:111",
        "/flags/f/targeting/fractional/0/1",
        "must not be negative, found -5",
    );
    check(
        &targeting("{'fractional': [['on', 2.5], ['off', 5]]}"),
        "1:111",
        "/flags/f/targeting/fractional/0/1",
        "an integer, found 2.5",
    );
    check(
        &targeting("{'fractional': [['on', 2147483647], ['off', 1]]}"),
        "1:103",
        "/flags/f/targeting/fractional",
        "sum to 2147483648, past the limit",
    );
    check(
        &targeting("{'fractional': [['on', 18446744073709551615], ['off', 18446744073709551615]]}"),
        "1:103",
        "/flags/f/targeting/fractional",
        "sum to 36893488147419103230",
    );
    check(
        &targeting("{'fractional': [{'var': 'k'}, 'on']}"),
        "1:118",
        "/flags/f/targeting/fractional/1",
        "an entry is [variant, weight?], found a string",
    );
    check(
        &targeting("{'fractional': [{'var': 'k'}]}"),
        "1:103",
        "/flags/f/targeting/fractional",
        "no [variant, weight] entry",
    );
    check(
        &targeting("{'fractional': [['on', 1, 2]]}"),
        "1:104",
        "/flags/f/targeting/fractional/0",
        "an array of 3 items",
    );
    // The largest total that fits loads.
    let fits = targeting("{'fractional': [['on', 2147483646], ['off', 1]]}").replace('\'', "\"");
    FlagSet::from_json("f", &fits, &LoadOptions::default()).unwrap();
}

#[test]
fn evaluator_references() {
    check(
        &targeting("{'$ref': 'nope'}"),
        "1:97",
        "/flags/f/targeting/$ref",
        "$ref to \"nope\", which is not in $evaluators",
    );
    check(
        "{'flags': {}, '$evaluators': {'a': {'!': [{'$ref': 'b'}]}, 'b': {'!': [true]}}}",
        "1:43",
        "/$evaluators/a/!/0/$ref",
        "not supported",
    );
    // An evaluator's literals are checked against each flag that returns through it.
    let document = "{'$evaluators': {'gold': {'if': [{'var': 'tier'}, 'gold']}},\n 'flags': {'f': {'state': 'ENABLED', 'variants': {'on': 1}, 'targeting': {'$ref': 'gold'}}}}";
    check(document, "1:51", "/$evaluators/gold/if/1", "can return \"gold\"");
}

#[test]
fn nesting_past_the_limit_is_refused() {
    let deep = format!("{{'flags': {}{}}}", "[".repeat(200), "]".repeat(200));
    check(&deep, "1:138", "", "nested deeper than 128 levels");
}

#[test]
fn what_loads() {
    let document = r#"{
      "$schema": "https://flagd.dev/schema/v0/flags.json",
      "metadata": {"flagSetId": "shop", "version": "7"},
      "flags": {
        "zeta": {"state": "DISABLED", "variants": {"a": {"x": 1}, "b": {}}},
        "alpha": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": {}}
      }
    }"#;
    let set = FlagSet::from_json("shop.flagd.json", document, &LoadOptions::default()).unwrap();
    let keys: Vec<&str> = set.flags().map(|f| f.key()).collect();
    assert_eq!(keys, ["alpha", "zeta"], "flags are listed by key");
    let alpha = set.get("alpha").unwrap();
    assert_eq!(
        (alpha.is_enabled(), alpha.variant_type(), alpha.default_variant(), alpha.has_targeting()),
        (true, VariantType::Boolean, Some("off"), false)
    );
    let zeta = set.get("zeta").unwrap();
    assert_eq!((zeta.is_enabled(), zeta.variant_type(), zeta.default_variant()), (false, VariantType::Object, None));
    assert_eq!(set.metadata()["flagSetId"], "shop");
    let clone = set.clone();
    assert_eq!(clone.len(), 2);

    // flagd's daemon form: an array of flags with keys.
    let array = r#"{"flags": [{"key": "b", "state": "ENABLED", "variants": {"x": 1}}, {"key": "a", "state": "ENABLED", "variants": {"y": 2}}]}"#;
    let set = FlagSet::from_json("array", array, &LoadOptions::default()).unwrap();
    assert_eq!(set.flags().map(|f| f.key()).collect::<Vec<_>>(), ["a", "b"]);
    let repeated = r#"{"flags": [{"key": "a", "state": "ENABLED", "variants": {"x": 1}}, {"key": "a", "state": "ENABLED", "variants": {"y": 2}}]}"#;
    let error = FlagSet::from_json("array", repeated, &LoadOptions::default()).unwrap_err();
    assert_eq!(error.to_string(), "array:1:68: at /flags/1: `flags`: the key \"a\" appears twice");
}

#[test]
fn the_fractional_algorithm_is_a_set_metadata_name_checked_at_load() {
    let set = |metadata: &str| format!("{{'flags': {{}}, 'metadata': {{{metadata}}}}}");
    check(
        &set("'mobius.fractional': 'v1'"),
        "1:49",
        "/metadata/mobius.fractional",
        "unknown fractional algorithm \"v1\"",
    );
    check(
        &set("'mobius.fractional': 'Legacy'"),
        "1:49",
        "/metadata/mobius.fractional",
        "is \"high-precision\" or \"legacy\"",
    );
    check(
        &set("'mobius.fractional': 1"),
        "1:49",
        "/metadata/mobius.fractional",
        "expected \"high-precision\" or \"legacy\", found a number",
    );
    check(
        &flag("{'state': 'ENABLED', 'variants': {'on': 1}, 'metadata': {'mobius.fractional': 'legacy'}}"),
        "1:95",
        "/flags/f/metadata/mobius.fractional",
        "chooses the algorithm of the whole set",
    );

    // As a user sees it, on a document laid out by hand; flagd's strictness refuses it too.
    let text = "{\n  \"metadata\": {\"flagSetId\": \"shop\", \"mobius.fractional\": \"float\"},\n  \"flags\": {}\n}";
    for strictness in [Strictness::Schema, Strictness::Flagd] {
        let options = LoadOptions { strictness, ..LoadOptions::default() };
        let error = FlagSet::from_json("shop.flagd.json", text, &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            "shop.flagd.json:2:58: at /metadata/mobius.fractional: unknown fractional algorithm \"float\": \
             \"mobius.fractional\" is \"high-precision\" or \"legacy\""
        );
    }

    // A valid name wins over the caller's default, and is reported as metadata like any other.
    let load = |metadata: &str, fractional| {
        let text = set(metadata).replace('\'', "\"");
        FlagSet::from_json("f", &text, &LoadOptions { fractional, ..LoadOptions::default() }).unwrap()
    };
    assert_eq!(
        load("'mobius.fractional': 'legacy'", Algorithm::HighPrecision).fractional_algorithm(),
        Algorithm::Legacy
    );
    assert_eq!(
        load("'mobius.fractional': 'high-precision'", Algorithm::Legacy).fractional_algorithm(),
        Algorithm::HighPrecision
    );
    assert_eq!(load("'team': 'a'", Algorithm::Legacy).fractional_algorithm(), Algorithm::Legacy);
    assert_eq!(load("'team': 'a'", Algorithm::HighPrecision).fractional_algorithm(), Algorithm::HighPrecision);
    assert_eq!(
        load("'mobius.fractional': 'legacy'", Algorithm::HighPrecision).metadata()["mobius.fractional"],
        "legacy"
    );
}

#[test]
fn flagd_strictness_loads_what_flagd_loads() {
    let lenient = LoadOptions { strictness: Strictness::Flagd, ..LoadOptions::default() };
    for rule in [
        "{'if': [{'var': 'x'}, 'on', 'nope']}",
        "{'fractional': [['on', -5], ['off', 5]]}",
        "{'fractional': [['on', 2147483647], ['off', 1]]}",
        "{'$ref': 'nope'}",
        "{'if': [{'sem_ver': [{'var': 'v'}, '===', '1.0.0']}, 'on', 'off']}",
        "{'starts_with': ['abc']}",
    ] {
        let text = targeting(rule).replace('\'', "\"");
        FlagSet::from_json("f", &text, &lenient).unwrap_or_else(|e| panic!("{rule}: {e}"));
    }
    // What cannot be evaluated at all is refused either way.
    let text = targeting("{'regex': ['a']}").replace('\'', "\"");
    assert!(matches!(
        FlagSet::from_json("f", &text, &lenient).unwrap_err().kind,
        LoadErrorKind::UnknownOperator { .. }
    ));
}

#[test]
fn an_unreadable_file_says_which() {
    let error =
        FlagSet::from_file(std::path::Path::new("/nonexistent/flags.json"), &LoadOptions::default()).unwrap_err();
    assert_eq!(error.location, None);
    assert!(error.to_string().starts_with("/nonexistent/flags.json: the file cannot be read: "), "{error}");
}

#[test]
fn a_flag_set_is_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<FlagSet>();
    let text = targeting("{'fractional': [['on', 1], ['off', 1]]}").replace('\'', "\"");
    let set = FlagSet::from_json("f", &text, &LoadOptions::default()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let set = set.clone();
            std::thread::spawn(move || {
                (0..1000)
                    .filter(|i| {
                        let context = mobius_flags::Context::with_targeting_key(format!("{t}-{i}"));
                        set.evaluate("f", &context).variant == Some("on")
                    })
                    .count()
            })
        })
        .collect();
    for handle in handles {
        let on = handle.join().unwrap();
        assert!((400..600).contains(&on), "{on}");
    }
}
