//! The `x-mobius-flag` codec over generated input: what is written reads back, and nothing
//! read panics.

use std::collections::HashSet;

use mobius_flags::header::{self, MAX_VALUE_BYTES};
use proptest::prelude::*;

/// Flag keys and variant names, weighted towards the bytes the format treats specially.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._~-]{0,12}",
        "[=,% \t/:\"a-z]{0,8}",
        // Any characters, few enough that eight pairs stay under the limit even when every
        // one takes four bytes of UTF-8, twelve encoded.
        ".{0,12}",
        prop::collection::vec(
            prop_oneof![Just("="), Just(","), Just("%"), Just("%2C"), Just(" "), Just("é"), Just("a")],
            0..6
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// What [`header::parse`] gives, owned, malformed elements skipped.
fn read(value: &str) -> Vec<(String, String)> {
    header::parse(value).flatten().map(|p| (p.flag.into_owned(), p.variant.into_owned())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn what_is_written_reads_back(pairs in prop::collection::vec((name(), name()), 0..8)) {
        let value = header::format(pairs.iter().map(|(f, v)| (f.as_str(), v.as_str())));
        // Every malformed element would be reported, so a clean read proves none was written.
        let all_well_formed = value.as_deref().is_none_or(|v| header::parse(v).all(|r| r.is_ok()));
        prop_assert!(all_well_formed, "{value:?}");
        let mut seen = HashSet::new();
        let kept: Vec<(String, String)> = pairs
            .iter()
            .filter(|(f, v)| !f.is_empty() && !v.is_empty() && seen.insert(f.clone()))
            .cloned()
            .collect();
        // Eight pairs of short names stay under the limit (see `name`): all are kept.
        prop_assert_eq!(value.as_deref().map_or(Vec::new(), read), kept);
        if let Some(value) = &value {
            prop_assert!(value.len() <= MAX_VALUE_BYTES);
            prop_assert!(value.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{}", value);
        }
    }

    #[test]
    fn any_value_reads_without_panicking(value in prop_oneof![any::<String>(), "[a-z=,%0-9A-F \t]{0,24}"]) {
        for result in header::parse(&value) {
            match result {
                // A pair read is one the writer would spell the same way again.
                Ok(pair) => {
                    let again = header::format([(pair.flag.as_ref(), pair.variant.as_ref())]).unwrap();
                    prop_assert_eq!(read(&again), vec![(pair.flag.into_owned(), pair.variant.into_owned())]);
                }
                Err(malformed) => prop_assert!(value.contains(malformed.element)),
            }
        }
    }
}
