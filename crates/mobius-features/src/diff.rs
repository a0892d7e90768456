//! What a change did to each flag, for its event: the flags whose definition differs between
//! two documents, each with its state, default and variants before and after.

use std::collections::BTreeSet;

use mobius_events::emit::flags::{FlagDiff, FlagSnapshot};
use serde_json::{Map, Value};

/// The flags of `before` and `after` (documents that loaded; `None`: no set) whose JSON
/// differs, by key. A flag whose targeting or metadata alone changed is listed too: its
/// snapshots then look alike, but the audit trail says it was touched.
pub(crate) fn flags(before: Option<&str>, after: Option<&str>) -> Vec<FlagDiff> {
    let (before, after) = (flag_map(before), flag_map(after));
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| FlagDiff {
            key: key.clone(),
            before: before.get(key).map(snapshot),
            after: after.get(key).map(snapshot),
        })
        .collect()
}

fn flag_map(document: Option<&str>) -> Map<String, Value> {
    let parsed = document.and_then(|text| serde_json::from_str::<Value>(text).ok());
    match parsed {
        Some(Value::Object(mut top)) => match top.remove("flags") {
            Some(Value::Object(flags)) => flags,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

fn snapshot(flag: &Value) -> FlagSnapshot {
    let state = match flag.get("state").and_then(Value::as_str) {
        Some("DISABLED") => "DISABLED",
        _ => "ENABLED",
    };
    FlagSnapshot {
        state,
        default_variant: flag.get("defaultVariant").and_then(Value::as_str).map(str::to_owned),
        variants: flag.get("variants").and_then(Value::as_object).cloned().unwrap_or_default(),
        targeting: flag.get("targeting").is_some_and(|t| t.as_object().is_none_or(|o| !o.is_empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_flags_that_changed_are_listed_with_before_and_after() {
        let before = r#"{"flags": {
            "same": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
            "flipped": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
            "gone": {"state": "ENABLED", "variants": {"x": "x"}}
        }}"#;
        let after = r#"{"flags": {
            "same": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
            "flipped": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
            "new": {"state": "ENABLED", "variants": {"y": "y"}, "targeting": {"if": [true, "y", null]}}
        }}"#;
        let diffs = flags(Some(before), Some(after));
        let keys: Vec<&str> = diffs.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["flipped", "gone", "new"]);
        assert_eq!(
            (diffs[0].before.as_ref().unwrap().state, diffs[0].after.as_ref().unwrap().state),
            ("ENABLED", "DISABLED")
        );
        assert!(diffs[1].after.is_none() && diffs[2].before.is_none());
        assert!(diffs[2].after.as_ref().unwrap().targeting);
        assert_eq!(flags(None, Some(after)).len(), 3, "a new set lists every flag");
    }
}
