//! Property tests of every parser that takes untrusted input: the CloudEvents HTTP binding and
//! import files (`cloudevents`), and the GitHub and GitLab webhook translators (`webhooks`).
//!
//! Each property runs a modest number of cases by default so that CI stays fast; set
//! `PROPTEST_CASES` to run many more (`bench/fuzz.sh` does, in release mode).

mod cloudevents;
mod webhooks;

use mobius_events::cdevents::EventError;
use proptest::prelude::*;
use serde_json::Value;

/// `cases` cases, unless `PROPTEST_CASES` says otherwise. proptest reads the variable into
/// `ProptestConfig::default()`, but an explicit case count would override it, so the default
/// count is only applied when the variable is unset.
pub fn config(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() { config } else { ProptestConfig { cases, ..config } }
}

/// Keys the decoders look for, mixed into generated objects so that arbitrary values reach
/// past the first "missing field" check.
const KEYS: &[&str] = &[
    "context",
    "subject",
    "data",
    "specversion",
    "version",
    "id",
    "source",
    "type",
    "timestamp",
    "content",
    "customData",
    "webhook",
    "event",
    "delivery",
    "payload",
    "environment",
    "artifactId",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => ".{0,8}"]
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("JSON has no NaN or infinities", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        ".{0,16}".prop_map(Value::from),
        prop::sample::select(
            &["0.5.1", "0.4.1", "dev.cdevents.service.deployed.0.3.0", "2024-01-01T00:00:00Z", "github"][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// The 1-based line and byte column a position names, as the byte offset it points at, if the
/// position is inside `text`. serde_json counts columns in bytes, and column 0 is the start of
/// a line (nothing on it read yet).
pub fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line == 1 { 0 } else { text.match_indices('\n').nth(line.checked_sub(2)?)?.0 + 1 };
    let length = text[start..].find('\n').unwrap_or(text.len() - start);
    // One past the end of the line is where a reader stops at end of input.
    (column <= length + 1).then(|| start + column.saturating_sub(1))
}

/// Every refusal names a field or a position, and a position is inside `text`.
pub fn assert_located(error: &EventError, text: &str) {
    match error {
        EventError::Json { line, column, message } => {
            assert!(!message.is_empty(), "{error}");
            assert!(offset_of(text, *line, *column).is_some(), "{error}: outside the input {text:?}");
        }
        EventError::Missing { field } | EventError::WrongType { field, .. } => {
            assert!(!field.is_empty(), "{error}")
        }
        // Both name the field in their message (`context.timestamp`, `context.type`).
        EventError::Timestamp(_) | EventError::BadType { .. } | EventError::UnsupportedVersion { .. } => {}
        EventError::Webhook(message) => {
            assert!(message.contains('`') || message.contains(" line ") || message.contains("ping"), "{error}")
        }
        EventError::Schema { ty, message } => assert!(!ty.is_empty() && !message.is_empty(), "{error}"),
        // The limits name their field, or the whole event's size.
        EventError::OutOfRange { field, .. } | EventError::ControlCharacter { field, .. } => {
            assert!(!field.is_empty(), "{error}")
        }
        EventError::TooLarge { bytes, limit } => assert!(bytes > limit, "{error}"),
    }
}
