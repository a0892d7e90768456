//! The CloudEvents HTTP binding for CDEvents.
//!
//! Accepted bodies:
//! - structured mode, `application/cloudevents+json`: a CloudEvent whose `data` is the CDEvent;
//! - binary mode, `ce-*` headers with the CDEvent as an `application/json` body (the `ce-id`,
//!   `ce-source` and `ce-type` headers must agree with the CDEvent's context);
//! - batches, `application/cloudevents-batch+json` (a JSON array of structured CloudEvents) or
//!   NDJSON (`application/x-ndjson`, `application/jsonl`: one event per line);
//! - plain `application/json`: a bare CDEvent or an array of them.
//!
//! Wherever a CloudEvent is expected, a bare CDEvent (an object with `context`) is accepted too,
//! and batch elements may be recorded webhook deliveries ([`crate::record`]).
//! The raw text stored for each event is the CDEvent itself, as received.
//!
//! A batch holds at most [`MAX_BATCH_ITEMS`] events: a body with more is refused as a whole,
//! found while the body is framed (see [`crate::limits`]).

use serde_json::Value;
use serde_json::value::RawValue;

use crate::cdevents::{self, EventError, json_error};
use crate::envelope::{NewEvent, Origin};
use crate::limits::{MAX_BATCH_ITEMS, TooManyItems};
use crate::record;

/// The outcome of decoding one event of a body.
pub type Item = Result<NewEvent, EventError>;

/// A decoded request body.
#[derive(Debug)]
pub enum Decoded {
    /// One event (structured or binary mode, or a bare CDEvent).
    One(Item),
    /// A batch: one result per element, in order.
    Batch(Vec<Item>),
}

/// The body as a whole could not be read (as opposed to one event in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error(
        "unsupported content type `{0}` (use application/cloudevents+json, application/cloudevents-batch+json, application/x-ndjson or application/json)"
    )]
    ContentType(String),
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("a batch must be a JSON array: {0}")]
    NotAnArray(String),
    #[error(transparent)]
    TooManyItems(#[from] TooManyItems),
}

/// Decodes a request body. `header` looks a request header up by lower-case name.
pub fn decode<'h>(
    content_type: Option<&str>,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    origin: Origin,
) -> Result<Decoded, BindingError> {
    let text = std::str::from_utf8(body).map_err(|_| BindingError::NotUtf8)?;
    let mime = content_type
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_else(|| "application/json".to_owned());
    match mime.as_str() {
        "application/cloudevents+json" => Ok(Decoded::One(structured(text, origin))),
        "application/cloudevents-batch+json" => batch(text, origin).map(Decoded::Batch),
        "application/x-ndjson" | "application/jsonl" | "application/ndjson" => {
            Ok(Decoded::Batch(record::parse_many(text, origin)?))
        }
        "application/json" | "text/json" => {
            if header("ce-specversion").is_some() {
                return Ok(Decoded::One(binary(text, &header, origin)));
            }
            if text.trim_start().starts_with('[') {
                batch(text, origin).map(Decoded::Batch)
            } else {
                Ok(Decoded::One(structured(text, origin)))
            }
        }
        other => Err(BindingError::ContentType(other.to_owned())),
    }
}

/// Reads a JSON array of at most [`MAX_BATCH_ITEMS`] events.
pub fn batch(text: &str, origin: Origin) -> Result<Vec<Item>, BindingError> {
    let records =
        record::array_elements(text, MAX_BATCH_ITEMS)?.map_err(|e| BindingError::NotAnArray(e.to_string()))?;
    Ok(record::parse_all(text, records, origin))
}

/// One structured CloudEvent, or a bare CDEvent.
pub fn structured(text: &str, origin: Origin) -> Item {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    from_envelope(text, &envelope, origin)
}

/// The top-level keys that tell a CloudEvent from a bare CDEvent, read in one pass over the
/// text without building the tree.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow)]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(crate) context: Option<&'a RawValue>,
}

pub(crate) fn from_envelope(text: &str, envelope: &Envelope<'_>, origin: Origin) -> Item {
    match (envelope.context, envelope.data) {
        (Some(_), _) => cdevents::parse(text, origin),
        (None, Some(data)) => {
            let value: Value = serde_json::from_str(data.get()).map_err(|e| json_error(&e))?;
            if value.is_string() {
                return Err(EventError::WrongType {
                    field: "data",
                    expected: "a JSON CDEvent (data_base64 is not supported)",
                });
            }
            cdevents::from_value(value, data.get().to_owned(), origin)
        }
        (None, None) => Err(EventError::Missing { field: "data" }),
    }
}

fn binary<'h>(text: &str, header: &impl Fn(&str) -> Option<&'h str>, origin: Origin) -> Item {
    let event = cdevents::parse(text, origin)?;
    let checks: [(&str, &'static str, &str); 3] =
        [("ce-id", "ce-id", &event.id), ("ce-source", "ce-source", &event.source), ("ce-type", "ce-type", &event.ty)];
    for (name, field, expected) in checks {
        match header(name) {
            None => return Err(EventError::Missing { field }),
            Some(value) if value != expected && !(name == "ce-type" && cdevents_type_matches(text, value)) => {
                return Err(EventError::WrongType {
                    field,
                    expected: "equal to the CDEvent's context (id, source, type)",
                });
            }
            Some(_) => {}
        }
    }
    Ok(event)
}

/// `ce-type` carries the type as sent, which for v0.4 events differs from the normalised one.
fn cdevents_type_matches(text: &str, ce_type: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.pointer("/context/type").and_then(Value::as_str).map(|t| t == ce_type))
        .unwrap_or(false)
}
