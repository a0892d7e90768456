//! Records in a batch or import file: a CDEvent (bare or in a CloudEvent), or a recorded
//! webhook delivery for backfilling history:
//!
//! ```json
//! {"webhook": "github", "event": "push", "payload": { ... }}
//! {"webhook": "gitlab", "event": "Push Hook", "payload": { ... }}
//! ```
//!
//! A recorded delivery is translated exactly as a live one, so it deduplicates against the
//! live delivery of the same thing. It is not signature-checked: it arrives over an
//! authenticated channel (an `ingest` token, or the local data directory).

use serde_json::value::RawValue;

use crate::cdevents::{EventError, json_error};
use crate::cloudevents::{self, Item};
use crate::envelope::Origin;
use crate::webhook::Webhook;
use crate::{github, gitlab};

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
    #[serde(borrow)]
    webhook: Option<&'a str>,
    #[serde(borrow)]
    event: Option<&'a str>,
    #[serde(borrow)]
    delivery: Option<&'a str>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// Parses one record.
pub fn parse(text: &str, origin: Origin) -> Item {
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text) else {
        return cloudevents::structured(text, origin);
    };
    let Some(provider) = envelope.webhook else {
        let cloudevent = cloudevents::Envelope { data: envelope.data, context: envelope.context };
        return cloudevents::from_envelope(text, &cloudevent, origin);
    };
    let payload = envelope.payload.ok_or(EventError::Missing { field: "payload" })?.get().as_bytes();
    let translated = match provider {
        "github" => {
            let event = envelope.event.ok_or(EventError::Missing { field: "event" })?;
            github::translate(event, envelope.delivery, payload)
        }
        "gitlab" => gitlab::translate(envelope.event, payload),
        _ => return Err(EventError::WrongType { field: "webhook", expected: "\"github\" or \"gitlab\"" }),
    };
    match translated.map_err(|e| EventError::Webhook(e.to_string()))? {
        Webhook::Event(event) => Ok(event),
        Webhook::Ping => Err(EventError::Webhook("a ping carries no event".into())),
    }
}

/// Parses a whole file or body: a JSON array, or JSON values one after another (NDJSON, or a
/// single event). A record's errors are positioned in the whole text, not in the record.
pub fn parse_many(text: &str, origin: Origin) -> Vec<Item> {
    if text.trim_start().starts_with('[') {
        return parse_array(text, origin).unwrap_or_else(|e| vec![Err(json_error(&e))]);
    }
    let mut items = Vec::new();
    let mut lines = Lines::new(text);
    for value in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
        match value {
            Ok(value) => items.push(parse_within(text, value.get(), &mut lines, origin)),
            Err(e) => {
                items.push(Err(json_error(&e)));
                break;
            }
        }
    }
    items
}

/// The records of a JSON array, each positioned in `text`; `Err` if `text` is not an array.
pub(crate) fn parse_array(text: &str, origin: Origin) -> Result<Vec<Item>, serde_json::Error> {
    let records: Vec<&RawValue> = serde_json::from_str(text)?;
    let mut lines = Lines::new(text);
    Ok(records.into_iter().map(|record| parse_within(text, record.get(), &mut lines, origin)).collect())
}

/// Parses `record`, a slice of `text`, with its errors' positions moved from the record's
/// first line and column to the text's.
fn parse_within(text: &str, record: &str, lines: &mut Lines<'_>, origin: Origin) -> Item {
    // Records are borrowed from the text; anything else (which never happens) stays unshifted.
    let start = (record.as_ptr() as usize).checked_sub(text.as_ptr() as usize).filter(|s| *s <= text.len());
    let Some(start) = start else { return parse(record, origin) };
    let (first_line, line_start) = lines.at(start);
    parse(record, origin).map_err(|e| match e {
        EventError::Json { line, column, message } => EventError::Json {
            line: line + first_line - 1,
            // serde_json counts columns in bytes, as `start - line_start` is.
            column: if line == 1 { column + (start - line_start) } else { column },
            message,
        },
        other => other,
    })
}

/// The line of each record, counted incrementally: recounting from the start for each record
/// would make a large body quadratic.
struct Lines<'a> {
    text: &'a str,
    /// Bytes already counted.
    counted: usize,
    /// The 1-based line at `counted`, and the offset where that line starts.
    line: usize,
    line_start: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text, counted: 0, line: 1, line_start: 0 }
    }

    /// The line of `offset` and where it starts; offsets are asked for in increasing order.
    fn at(&mut self, offset: usize) -> (usize, usize) {
        let skipped = self.text.as_bytes().get(self.counted..offset).unwrap_or_default();
        if let Some(last) = skipped.iter().rposition(|b| *b == b'\n') {
            self.line_start = self.counted + last + 1;
        }
        self.line += skipped.iter().filter(|b| **b == b'\n').count();
        self.counted = self.counted.max(offset);
        (self.line, self.line_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (line, column) of each record's JSON error.
    fn positions(text: &str) -> Vec<Option<(usize, usize)>> {
        let position = |item: &Item| match item {
            Err(EventError::Json { line, column, .. }) => Some((*line, *column)),
            _ => None,
        };
        parse_many(text, Origin::Api).iter().map(position).collect()
    }

    /// Found by the property `every_record_of_an_import_file_is_read_and_located`: an error
    /// inside a record was positioned in the record, so every element of an array was on line
    /// 1, and a record that did not start its line had the column it would have at the start.
    #[test]
    fn a_record_error_is_positioned_in_the_file() {
        // serde_json points at the last byte it read of the refused value.
        assert_eq!(positions("[1,\n  null]"), [Some((1, 2)), Some((2, 6))]);
        assert_eq!(positions("5   true\n \"x\""), [Some((1, 1)), Some((1, 8)), Some((2, 4))]);
        assert_eq!(positions("{\"a\": 1}\n[2]"), [None, Some((2, 3))]);
    }
}
