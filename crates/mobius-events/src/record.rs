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
//! authenticated channel (an `ingest` token, or the local data directory), but nothing proves
//! GitHub or GitLab sent it, so it is stored with [`Origin::Import`], never as theirs.
//!
//! A body holds at most [`MAX_BATCH_ITEMS`] records ([`parse_many`]); the count is taken
//! while the body is framed, before any record is read, so a body of millions of tiny items
//! costs a scan of its first ten thousand. Files on the local machine may hold more
//! ([`parse_many_unbounded`]); a caller that works through such a file in pieces frames it
//! record by record with [`frames`], or as it reads it with [`read_frames`].

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::cdevents::{EventError, json_error};
use crate::cloudevents::{self, Item};
use crate::envelope::{NewEvent, Origin};
use crate::limits::{MAX_BATCH_ITEMS, TooManyItems};
use crate::webhook::Webhook;
use crate::{github, gitlab};

mod frames;
mod reader;

pub use self::frames::{Frame, Frames, frames};
pub use self::reader::{FrameReader, ReadError, ReadFrame, check_array, read_frames, starts_array};

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
        // Translated as GitHub's or GitLab's, but unverified: not stored as theirs.
        Webhook::Event(event) => Ok(NewEvent { origin: Origin::Import, ..event }),
        Webhook::Ping => Err(EventError::Webhook("a ping carries no event".into())),
    }
}

/// Parses a whole body: a JSON array, or JSON values one after another (NDJSON, or a single
/// event). Errors carry the record's line. More than [`MAX_BATCH_ITEMS`] records is one error
/// for the whole body, found before any record is read.
pub fn parse_many(text: &str, origin: Origin) -> Result<Vec<Item>, TooManyItems> {
    parse_at_most(text, origin, MAX_BATCH_ITEMS)
}

/// [`parse_many`] without the limit on records, for files on the local machine. A caller that
/// feeds a store should still work through such a file in chunks, as `mobius events import`
/// does.
pub fn parse_many_unbounded(text: &str, origin: Origin) -> Vec<Item> {
    parse_at_most(text, origin, usize::MAX).unwrap_or_else(|_| unreachable!("no text holds usize::MAX records"))
}

fn parse_at_most(text: &str, origin: Origin, max: usize) -> Result<Vec<Item>, TooManyItems> {
    if text.trim_start().starts_with('[') {
        return Ok(match array_elements(text, max)? {
            Ok(records) => parse_all(text, records, origin),
            Err(e) => vec![Err(json_error(&e))],
        });
    }
    let Framed { records, broken } = stream(text, max)?;
    let mut items = parse_all(text, records, origin);
    items.extend(broken.map(|e| Err(json_error(&e))));
    Ok(items)
}

/// Parses `records`, slices of `text` in order, each with its errors positioned in `text`.
pub(crate) fn parse_all(text: &str, records: Vec<&str>, origin: Origin) -> Vec<Item> {
    let mut lines = Lines::new(text);
    records.into_iter().map(|record| parse_within(text, record, &mut lines, origin)).collect()
}

/// The elements of a JSON array as text, refusing more than `max` of them when the first one
/// past it is met: the scan stops there, and what it kept is `max` borrowed slices at most.
/// The inner `Err` is malformed JSON.
pub(crate) fn array_elements(text: &str, max: usize) -> Result<Result<Vec<&str>, serde_json::Error>, TooManyItems> {
    let mut past_limit = None;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let scanned = Elements { max, text_start: text.as_ptr() as usize, past_limit: &mut past_limit }
        .deserialize(&mut deserializer)
        .and_then(|items| deserializer.end().map(|()| items));
    match (scanned, past_limit) {
        (_, Some(offset)) => Err(TooManyItems { limit: max, line: 1 + newlines(&text.as_bytes()[..offset]) }),
        (Ok(items), None) => Ok(Ok(items)),
        (Err(e), None) => Ok(Err(e)),
    }
}

/// A counting visitor over a JSON array's elements, which stops at the first one past `max`
/// and notes its byte offset.
struct Elements<'p> {
    max: usize,
    /// The address of the text's first byte: elements are slices of it.
    text_start: usize,
    past_limit: &'p mut Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = Vec<&'de str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = Vec<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max {
                *self.past_limit = Some(item.get().as_ptr() as usize - self.text_start);
                return Err(serde::de::Error::custom(format_args!("more than {} events", self.max)));
            }
            items.push(item.get());
        }
        Ok(items)
    }
}

/// Records framed in a stream of JSON values.
struct Framed<'a> {
    /// Each record's text, in order.
    records: Vec<&'a str>,
    /// Malformed JSON that ended the stream: nothing after it can be framed.
    broken: Option<serde_json::Error>,
}

/// The records of JSON values one after another, refusing more than `max` when the first one
/// past it is met.
fn stream(text: &str, max: usize) -> Result<Framed<'_>, TooManyItems> {
    let mut records = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    // Lines are counted incrementally: recounting from the start for each record would make
    // a large body quadratic.
    let (mut line, mut counted) = (1, 0);
    loop {
        match stream.next() {
            None => return Ok(Framed { records, broken: None }),
            Some(Ok(value)) => {
                let start = value.get().as_ptr() as usize - text.as_ptr() as usize;
                line += newlines(&text.as_bytes()[counted..start]);
                counted = start;
                if records.len() == max {
                    return Err(TooManyItems { limit: max, line });
                }
                records.push(value.get());
            }
            Some(Err(e)) => return Ok(Framed { records, broken: Some(e) }),
        }
    }
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
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
        parse_many(text, Origin::Api).unwrap().iter().map(position).collect()
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
