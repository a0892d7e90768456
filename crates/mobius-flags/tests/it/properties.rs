//! Properties over generated input: any context, any split.

use mobius_flags::{Context, FlagSet, LoadOptions, Reason, Strictness};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("gold"), Just("1.2.3"), Just("v2.0.0-rc.1"), Just("NL"), Just("")].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}|tier|age|version|xs", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const DOCUMENT: &str = r#"{"flags": {
  "everything": {"state": "ENABLED", "variants": {"a": "A", "b": "B", "c": "C"}, "defaultVariant": "a",
    "targeting": {"if": [
      {"and": [{"in": [{"var": "tier"}, ["gold", "silver"]]}, {"<=": [18, {"var": "age"}, 99]}]}, "b",
      {"sem_ver": [{"var": "version"}, "^", "1.0.0"]}, "c",
      {"some": [{"var": "xs"}, {"==": [{"var": ""}, {"cat": [{"substr": [{"var": "tier"}, 0, 2]}, {"+": [{"var": "age"}, 1]}]}]}]}, "a",
      {"starts_with": [{"var": "tier"}, "g"]}, {"fractional": [{"var": "targetingKey"}, ["a", 1], ["b", {"var": "age"}], ["c", 2]]},
      {"missing_some": [1, ["tier", "age"]]}, null,
      {"merge": [{"var": "xs"}, {"map": [{"var": "xs"}, {"%": [{"var": ""}, 3]}]}]}
    ]}},
  "numbers": {"state": "ENABLED", "variants": {"1": 1, "2": 2}, "defaultVariant": "1",
    "targeting": {"max": [1, {"min": [2, {"-": [{"*": [{"var": "age"}, 2]}, {"/": [{"var": "age"}, 0.5]}, 1]}]}]}}
}}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the context: no panic, and the outcome is self-consistent — an error has a code
    /// and no value; a value comes with its variant, and is that variant's value.
    #[test]
    fn any_context_gives_a_consistent_outcome(attributes in prop::collection::btree_map("tier|age|version|xs|targetingKey|\\$flagd|[a-z]{1,2}", json_value(), 0..8)) {
        let set = FlagSet::from_json("props", DOCUMENT, &LoadOptions::default()).unwrap();
        let mut context = Context::new();
        for (key, value) in attributes {
            context = context.set(key, value);
        }
        for evaluation in set.evaluate_all(&context) {
            let flag = set.get(evaluation.key).unwrap();
            match evaluation.reason {
                Reason::Error => prop_assert!(evaluation.error_code.is_some() && evaluation.value.is_none()),
                _ => {
                    prop_assert!(evaluation.error_code.is_none());
                    let variant = evaluation.variant.unwrap();
                    prop_assert_eq!(evaluation.value, flag.variant(variant));
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// A split's shares converge to its weights: 20,000 subjects over random weights land
    /// within 1.5 percentage points of each weight's share.
    #[test]
    fn split_shares_converge_to_the_weights(weights in prop::collection::vec(0u32..1000, 2..5), salt in "[a-z]{4}") {
        let total: u32 = weights.iter().sum();
        prop_assume!(total > 0);
        let entries: Vec<Value> = weights.iter().enumerate().map(|(i, w)| json!([format!("v{i}"), w])).collect();
        let variants: Map<String, Value> = (0..weights.len()).map(|i| (format!("v{i}"), json!(i))).collect();
        let document = json!({"flags": {"split": {"state": "ENABLED", "variants": variants, "defaultVariant": "v0",
            "targeting": {"fractional": entries}}}});
        let set = FlagSet::from_json("split", &document.to_string(), &LoadOptions::default()).unwrap();
        let mut counts = vec![0u32; weights.len()];
        for i in 0..20_000 {
            let evaluation = set.evaluate("split", &Context::with_targeting_key(format!("{salt}-{i}")));
            prop_assert_eq!(evaluation.reason, Reason::Split);
            counts[evaluation.value.unwrap().as_u64().unwrap() as usize] += 1;
        }
        for (count, weight) in counts.iter().zip(&weights) {
            let share = f64::from(*count) / 200.0;
            let expected = f64::from(*weight) * 100.0 / f64::from(total);
            prop_assert!((share - expected).abs() < 1.5, "{:?} for weights {:?}", counts, weights);
            if *weight == 0 {
                prop_assert_eq!(*count, 0);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Loading never panics, whatever the bytes: a document mangled at random (characters
    /// replaced, inserted, cut) is loaded or refused, and a refusal points inside the text.
    #[test]
    fn any_document_is_loaded_or_refused_at_a_place_in_it(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just(None), any::<char>().prop_map(Some), prop::sample::select(vec!['{', '}', '[', ']', '"', ',', ':', '\\', '-', '0']).prop_map(Some),
        ]), 1..6)
    ) {
        let mut chars: Vec<char> = DOCUMENT.chars().collect();
        for (at, edit) in edits {
            let i = at.index(chars.len());
            match edit {
                Some(c) if i % 2 == 0 => chars.insert(i, c),
                Some(c) => chars[i] = c,
                None => {
                    chars.truncate(i.max(1));
                }
            }
        }
        let text: String = chars.into_iter().collect();
        for strictness in [Strictness::Schema, Strictness::Flagd] {
            let options = LoadOptions { strictness, ..LoadOptions::default() };
            if let Err(error) = FlagSet::from_json("mangled", &text, &options) {
                let location = error.location.clone().expect("every refusal of a text has a place");
                let lines: Vec<&str> = text.split('\n').collect();
                prop_assert!(location.line >= 1 && location.line <= lines.len(), "{error}");
                prop_assert!(location.column >= 1 && location.column <= lines[location.line - 1].chars().count() + 1, "{error}");
            }
        }
    }
}
