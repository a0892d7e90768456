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
/// single event). Errors carry the record's line.
pub fn parse_many(text: &str, origin: Origin) -> Vec<Item> {
    if text.trim_start().starts_with('[') {
        return match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items.into_iter().map(|item| parse(item.get(), origin)).collect(),
            Err(e) => vec![Err(json_error(&e))],
        };
    }
    let mut items = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    // Lines are counted incrementally: recounting from the start for each record would make
    // a large body quadratic.
    let (mut line, mut counted) = (1, 0);
    loop {
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let start = value.get().as_ptr() as usize - text.as_ptr() as usize;
                line += text.as_bytes()[counted..start].iter().filter(|b| **b == b'\n').count();
                counted = start;
                items.push(parse(value.get(), origin).map_err(|e| at_line(e, line)));
            }
            Some(Err(e)) => {
                items.push(Err(json_error(&e)));
                break;
            }
        }
    }
    items
}

/// Positions inside a record are relative to it; shift them to the file's lines.
fn at_line(e: EventError, first_line: usize) -> EventError {
    match e {
        EventError::Json { line, column, message } => EventError::Json { line: line + first_line - 1, column, message },
        other => other,
    }
}
