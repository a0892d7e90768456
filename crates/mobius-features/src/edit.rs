//! Edits of a stored flagd document by hand (`set-state`, `set-default`) that keep the rest of
//! it as its author wrote it: the one value is replaced in the text, found by borrowing the
//! document's raw JSON (serde_json's `RawValue`), rather than the document re-serialised with
//! its keys sorted and its layout gone. The result is loaded again like any document, so an
//! edit can never store what a load would refuse.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why an edit could not be made in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EditError {
    /// No flag with this key in the document.
    NoFlag,
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow)]
    flags: HashMap<String, &'a RawValue>,
}

/// The document with `flags.<flag>.<field>` set to `value` (JSON text): replaced where it is,
/// or added as the flag object's first member when it has none.
pub(crate) fn set_field(document: &str, flag: &str, field: &str, value: &str) -> Result<String, EditError> {
    // The stored document loaded before: it is JSON with a `flags` object.
    let parsed: Document<'_> = serde_json::from_str(document).map_err(|_| EditError::NoFlag)?;
    let raw = parsed.flags.get(flag).ok_or(EditError::NoFlag)?;
    let flag_text = raw.get();
    let flag_at = offset(document, flag_text);
    let members: HashMap<String, &RawValue> = serde_json::from_str(flag_text).map_err(|_| EditError::NoFlag)?;
    let mut edited = String::with_capacity(document.len() + value.len() + field.len() + 8);
    match members.get(field) {
        Some(old) => {
            let at = offset(document, old.get());
            edited.push_str(&document[..at]);
            edited.push_str(value);
            edited.push_str(&document[at + old.get().len()..]);
        }
        None => {
            // Right after the flag object's `{`; a flag always has members (state, variants).
            let brace = flag_at + flag_text.find('{').unwrap_or(0) + 1;
            edited.push_str(&document[..brace]);
            edited.push_str(&format!("{}: {value}, ", serde_json::Value::String(field.to_owned())));
            edited.push_str(&document[brace..]);
        }
    }
    Ok(edited)
}

/// Where `part`, a slice borrowed from `whole`, starts in it.
fn offset(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r#"{
  "flags": {
    "checkout": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "off"
    },
    "banner": {"variants": {"a": "A"}, "state": "DISABLED"}
  }
}"#;

    #[test]
    fn a_field_is_replaced_in_place_and_the_rest_is_untouched() {
        let edited = set_field(DOCUMENT, "checkout", "state", "\"DISABLED\"").unwrap();
        assert_eq!(edited, DOCUMENT.replacen("\"ENABLED\"", "\"DISABLED\"", 1));
        let edited = set_field(DOCUMENT, "checkout", "defaultVariant", "\"on\"").unwrap();
        assert_eq!(edited, DOCUMENT.replace("\"defaultVariant\": \"off\"", "\"defaultVariant\": \"on\""));
    }

    #[test]
    fn a_missing_field_is_added_to_its_flag_and_an_unknown_flag_is_refused() {
        let edited = set_field(DOCUMENT, "banner", "defaultVariant", "\"a\"").unwrap();
        assert!(edited.contains(r#""banner": {"defaultVariant": "a", "variants""#), "{edited}");
        assert_eq!(set_field(DOCUMENT, "nope", "state", "\"ENABLED\""), Err(EditError::NoFlag));
    }
}
