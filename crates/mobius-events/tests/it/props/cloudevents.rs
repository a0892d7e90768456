//! The CloudEvents HTTP binding (`cloudevents::decode`) and import files
//! (`record::parse_many`): whatever arrives, nothing panics, every refusal is located, and a
//! valid CDEvent comes out as it went in.

use std::sync::OnceLock;

use jiff::Timestamp;
use mobius_events::cdevents::EventError;
use mobius_events::cloudevents::{BindingError, Decoded, Item, decode};
use mobius_events::record::parse_many;
use mobius_events::{NewEvent, Origin};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{assert_located, config, json_value, offset_of};

/// The v0.5.1 conformance events, the templates generated events are made from.
fn templates() -> &'static [Value] {
    static TEMPLATES: OnceLock<Vec<Value>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let dir = crate::shared_corpus().join("cdevents-v0.5.1/conformance");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable corpus").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|path| serde_json::from_slice(&std::fs::read(path).expect("readable")).expect("JSON"))
            .collect()
    })
}

/// A valid CDEvent with generated identity, and what decoding it must give back.
#[derive(Debug, Clone)]
struct Generated {
    id: String,
    source: String,
    ty: String,
    subject: String,
    event: Value,
}

impl Generated {
    fn check(&self, decoded: &NewEvent) {
        assert_eq!(
            (decoded.id.as_str(), decoded.source.as_str(), decoded.ty.as_str(), decoded.subject.as_str()),
            (self.id.as_str(), self.source.as_str(), self.ty.as_str(), self.subject.as_str())
        );
    }

    /// The event as a structured-mode CloudEvent.
    fn cloudevent(&self) -> Value {
        json!({
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.ty,
            "datacontenttype": "application/json",
            "data": self.event,
        })
    }
}

/// A URI reference, which CDEvents requires of `context.source`.
fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-zA-Z0-9._~-]{1,12}(/[a-zA-Z0-9._~-]{0,12}){0,3}",
        "https?://[a-z0-9-]{1,12}(\\.[a-z]{2,5})?(:[0-9]{2,5})?(/[a-zA-Z0-9._~-]{0,12}){0,3}",
        "[a-z][a-z0-9+.-]{0,8}:[a-zA-Z0-9/._~-]{1,20}",
    ]
}

fn timestamp() -> impl Strategy<Value = String> {
    (0i64..4_102_444_800, 0i32..1_000_000_000)
        .prop_map(|(seconds, nanos)| Timestamp::new(seconds, nanos).expect("inside jiff's range").to_string())
}

fn cdevent() -> impl Strategy<Value = Generated> {
    (0..templates().len(), "\\PC{1,24}", source(), timestamp(), "\\PC{1,24}").prop_map(
        |(i, id, source, at, subject)| {
            let mut event = templates()[i].clone();
            event["context"]["id"] = json!(id);
            event["context"]["source"] = json!(source);
            event["context"]["timestamp"] = json!(at);
            event["subject"]["id"] = json!(subject);
            let ty = event["context"]["type"].as_str().expect("conformance events have a type").to_owned();
            Generated { id, source, ty, subject, event }
        },
    )
}

/// How a body is sent.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// A bare CDEvent as `application/json`, or with no content type at all.
    Bare {
        typed: bool,
    },
    Structured,
    Binary,
    Batch,
    Ndjson,
    JsonArray,
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        any::<bool>().prop_map(|typed| Mode::Bare { typed }),
        Just(Mode::Structured),
        Just(Mode::Binary),
        Just(Mode::Batch),
        Just(Mode::Ndjson),
        Just(Mode::JsonArray),
    ]
}

/// A media type as senders write it: any case, with parameters, padded.
fn spelled(mime: &str, style: u8) -> String {
    match style % 4 {
        0 => mime.to_owned(),
        1 => mime.to_ascii_uppercase(),
        2 => format!("{mime}; charset=utf-8"),
        _ => format!(" {mime} ;charset=UTF-8"),
    }
}

fn the_one(decoded: Result<Decoded, BindingError>) -> Vec<Item> {
    match decoded {
        Ok(Decoded::One(item)) => vec![item],
        Ok(Decoded::Batch(items)) => items,
        Err(e) => panic!("the body was refused as a whole: {e}"),
    }
}

/// Content types senders use, and some they should not.
fn content_type() -> impl Strategy<Value = Option<String>> {
    let known = prop::sample::select(
        &[
            "application/json",
            "text/json",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "application/x-ndjson",
            "application/jsonl",
            "application/ndjson",
            "text/plain",
            "",
        ][..],
    );
    prop_oneof![
        1 => Just(None),
        3 => (known, any::<u8>()).prop_map(|(mime, style)| Some(spelled(mime, style))),
        1 => ".{0,40}".prop_map(Some),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(&["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time"][..])
            .prop_map(str::to_owned),
        "ce-[a-z]{0,8}",
    ];
    prop::collection::vec((name, ".{0,24}"), 0..5)
}

/// Bodies from plain noise to nearly valid events.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(json_value(), 0..4).prop_map(|values| values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()),
        // A valid event cut short, or with one field of its context replaced.
        (cdevent(), any::<prop::sample::Index>()).prop_map(|(g, cut)| {
            let text = g.event.to_string();
            text.as_bytes()[..cut.index(text.len() + 1)].to_vec()
        }),
        (cdevent(), prop::sample::select(super::KEYS), json_value()).prop_map(|(mut g, key, value)| {
            g.event["context"][key] = value;
            g.event.to_string().into_bytes()
        }),
    ]
}

fn origin() -> impl Strategy<Value = Origin> {
    prop::sample::select(&[Origin::Api, Origin::Github, Origin::Gitlab, Origin::Internal][..])
}

proptest! {
    #![proptest_config(config(256))]

    /// No content type, header or body makes the decoder panic, and whatever it refuses it
    /// refuses with a field or a position inside the body.
    #[test]
    fn decode_never_panics_and_every_refusal_is_located(
        content_type in content_type(),
        headers in headers(),
        body in body(),
        origin in origin(),
    ) {
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let text = String::from_utf8_lossy(&body);
        match decode(content_type.as_deref(), header, &body, origin) {
            Ok(Decoded::One(item)) => check_item(&item, &text, origin),
            Ok(Decoded::Batch(items)) => items.iter().for_each(|item| check_item(item, &text, origin)),
            Err(BindingError::ContentType(mime)) => {
                prop_assert!(content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains(&mime)));
            }
            Err(BindingError::NotUtf8) => prop_assert!(std::str::from_utf8(&body).is_err()),
            Err(BindingError::NotAnArray(message)) => prop_assert!(message.contains(" line "), "{message}"),
            Err(BindingError::TooManyItems(many)) => {
                prop_assert!(offset_of(&text, many.line, 1).is_some(), "{many}: outside the input")
            }
        }
    }

    /// A valid CDEvent decodes to the id, source, type and subject it was sent with, in every
    /// mode of the binding.
    #[test]
    fn a_valid_cdevent_round_trips_in_every_mode(
        events in prop::collection::vec(cdevent(), 1..4),
        mode in mode(),
        style in any::<u8>(),
    ) {
        let first = &events[0];
        let binary = [
            ("ce-specversion", "1.0".to_owned()),
            ("ce-id", first.id.clone()),
            ("ce-source", first.source.clone()),
            ("ce-type", first.ty.clone()),
        ];
        let header = |name: &str| match mode {
            Mode::Binary => binary.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()),
            _ => None,
        };
        let (content_type, body, sent): (Option<String>, String, &[Generated]) = match mode {
            Mode::Bare { typed } => (typed.then(|| spelled("application/json", style)), first.event.to_string(), &events[..1]),
            Mode::Structured => (Some(spelled("application/cloudevents+json", style)), first.cloudevent().to_string(), &events[..1]),
            Mode::Binary => (Some(spelled("application/json", style)), first.event.to_string(), &events[..1]),
            Mode::Batch => {
                let batch: Vec<Value> = events.iter().map(Generated::cloudevent).collect();
                (Some(spelled("application/cloudevents-batch+json", style)), Value::Array(batch).to_string(), &events)
            }
            Mode::Ndjson => {
                let lines: Vec<String> = events.iter().map(|g| g.event.to_string()).collect();
                (Some(spelled("application/x-ndjson", style)), lines.join("\n"), &events)
            }
            Mode::JsonArray => {
                let array: Vec<Value> = events.iter().map(|g| g.event.clone()).collect();
                (Some(spelled("application/json", style)), Value::Array(array).to_string(), &events)
            }
        };
        let items = the_one(decode(content_type.as_deref(), header, body.as_bytes(), Origin::Api));
        prop_assert_eq!(items.len(), sent.len());
        for (item, generated) in items.iter().zip(sent) {
            match item {
                Ok(decoded) => generated.check(decoded),
                Err(e) => prop_assert!(false, "{e} for {}", generated.event),
            }
        }
    }

    /// In binary mode each of `ce-id`, `ce-source` and `ce-type` must be present and agree with
    /// the CDEvent; a refusal names the header.
    #[test]
    fn binary_mode_headers_must_agree_with_the_event(
        generated in cdevent(),
        which in 0usize..3,
        replacement in prop::option::of(".{0,24}"),
    ) {
        let names = ["ce-id", "ce-source", "ce-type"];
        let mut headers = vec![
            ("ce-specversion", "1.0".to_owned()),
            ("ce-id", generated.id.clone()),
            ("ce-source", generated.source.clone()),
            ("ce-type", generated.ty.clone()),
        ];
        let original = headers[which + 1].1.clone();
        match &replacement {
            Some(value) => {
                prop_assume!(*value != original);
                headers[which + 1].1 = value.clone();
            }
            None => drop(headers.remove(which + 1)),
        }
        let header = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
        let body = generated.event.to_string();
        let items = the_one(decode(Some("application/json"), header, body.as_bytes(), Origin::Api));
        match items.as_slice() {
            [Err(EventError::Missing { field })] => prop_assert!(replacement.is_none() && *field == names[which]),
            [Err(EventError::WrongType { field, .. })] => prop_assert!(replacement.is_some() && *field == names[which]),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    /// An import file is read record by record: valid records come out as they went in, and a
    /// refused record's position is inside that record, whether the file is NDJSON (records
    /// anywhere on their lines) or one JSON array.
    #[test]
    fn every_record_of_an_import_file_is_read_and_located(
        mut records in prop::collection::vec(record(), 1..6),
        separators in prop::collection::vec(prop::sample::select(&["\n", "\r\n", " ", "\n\n  ", "\t"][..]), 6),
        array in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        // A file that starts with `[` is one array, so records one after another start with
        // something else.
        if !array && let Record::Other(first @ Value::Array(_)) = &mut records[0] {
            *first = json!({ "array": first.take() });
        }
        let mut body = String::from(if array { "[" } else { "" });
        let mut spans = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push_str(if array { "," } else { "" });
            }
            body.push_str(separators[i]);
            let text = if pretty { serde_json::to_string_pretty(record.value()) } else { serde_json::to_string(record.value()) };
            let text = text.expect("a JSON value serialises");
            spans.push(body.len()..body.len() + text.len());
            body.push_str(&text);
        }
        body.push_str(if array { "]\n" } else { "\n" });

        let items = parse_many(&body, Origin::Api).expect("a handful of records, far under the limit");
        prop_assert_eq!(items.len(), records.len(), "{}", body);
        for ((item, record), span) in items.iter().zip(&records).zip(&spans) {
            match (item, record) {
                (Ok(decoded), Record::Event(generated)) => generated.check(decoded),
                (Err(EventError::Json { line, column, .. }), _) => {
                    let at = offset_of(&body, *line, *column);
                    prop_assert!(at.is_some_and(|at| span.contains(&at)), "{item:?} is not inside {span:?} of {body:?}");
                }
                (Err(e), Record::Other(_)) => assert_located(e, &body),
                (item, record) => prop_assert!(false, "{item:?} from {record:?}"),
            }
        }
    }
}

fn check_item(item: &Item, text: &str, origin: Origin) {
    match item {
        Ok(event) => {
            assert_eq!(event.origin, origin);
            assert!(!event.id.is_empty() && !event.source.is_empty() && !event.ty.is_empty(), "{event:?}");
        }
        Err(e) => assert_located(e, text),
    }
}

/// One record of an import file.
#[derive(Debug, Clone)]
enum Record {
    Event(Generated),
    /// Anything else: refused or accepted, but never at a position outside itself.
    Other(Value),
}

impl Record {
    fn value(&self) -> &Value {
        match self {
            Record::Event(generated) => &generated.event,
            Record::Other(value) => value,
        }
    }
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        cdevent().prop_map(Record::Event),
        json_value().prop_map(Record::Other),
        // Not objects: refused as a whole record, at its position.
        prop_oneof![Just(json!(5)), Just(json!("text")), Just(json!([1, 2])), Just(json!(null)), Just(json!(true))]
            .prop_map(Record::Other),
    ]
}
