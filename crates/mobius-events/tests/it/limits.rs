//! The limits every event and batch must respect: how many events a body holds, how large one
//! event is, when it may say it happened, which characters its identifiers may have.

use mobius_events::cdevents::{self, EventError};
use mobius_events::cloudevents::{self, BindingError, Decoded};
use mobius_events::limits::TooManyItems;
use mobius_events::{
    MAX_BATCH_ITEMS, MAX_EVENT_BYTES, NewEvent, Origin, Webhook, WebhookError, github, gitlab, record,
};
use serde_json::{Value, json};

pub(crate) fn event() -> Value {
    json!({
        "context": {
            "specversion": "0.5.1",
            "id": "d-1",
            "source": "/ci",
            "type": "dev.cdevents.service.deployed.0.3.0",
            "timestamp": "2024-05-01T12:00:00Z",
        },
        "subject": {
            "id": "shop",
            "source": "/ci",
            "content": { "environment": { "id": "production" }, "artifactId": "pkg:generic/shop@v1" },
        },
    })
}

fn parse(value: &Value) -> Result<NewEvent, EventError> {
    cdevents::parse(&value.to_string(), Origin::Api)
}

pub(crate) fn decode(content_type: &str, body: &str) -> Result<Decoded, BindingError> {
    cloudevents::decode(Some(content_type), |_| None, body.as_bytes(), Origin::Api)
}

fn batch_len(decoded: Result<Decoded, BindingError>) -> usize {
    match decoded {
        Ok(Decoded::Batch(items)) => items.len(),
        other => panic!("expected a batch, got {other:?}"),
    }
}

/// `n` tiny items in each batch shape, with the line the last one starts on.
fn bodies(n: usize) -> [(&'static str, String, usize); 3] {
    let array = format!("[{}]", vec!["{}"; n].join(","));
    let lines = format!("[\n{}\n]", vec!["{}"; n].join(",\n"));
    let ndjson = "{}\n".repeat(n);
    [
        ("application/cloudevents-batch+json", array, 1),
        ("application/json", lines, n + 1),
        ("application/x-ndjson", ndjson, n),
    ]
}

#[test]
fn a_batch_holds_at_most_the_limit() {
    assert_eq!(MAX_BATCH_ITEMS, 10_000);
    for (content_type, body, _) in bodies(MAX_BATCH_ITEMS) {
        // Each tiny item is refused on its own; the batch is read.
        assert_eq!(batch_len(decode(content_type, &body)), MAX_BATCH_ITEMS, "{content_type}");
    }
    for (content_type, body, line) in bodies(MAX_BATCH_ITEMS + 1) {
        let error = decode(content_type, &body).expect_err(content_type);
        assert_eq!(error, BindingError::TooManyItems(TooManyItems { limit: MAX_BATCH_ITEMS, line }), "{content_type}");
        assert_eq!(
            error.to_string(),
            format!("a batch holds at most 10000 events; this one has more (event 10001 starts at line {line})")
        );
    }
}

/// The finding: a 10 MiB body of 5.2 million tiny items. It is refused once the scan passes the
/// limit, without reading (or allocating for) the millions after it.
#[test]
fn millions_of_tiny_items_are_one_error() {
    let n = 5_200_000;
    let mut array = String::with_capacity(2 * n + 2);
    array.push('[');
    for _ in 0..n {
        array.push_str("1,");
    }
    array.push_str("1]");
    let error = decode("application/cloudevents-batch+json", &array).unwrap_err();
    assert_eq!(error, BindingError::TooManyItems(TooManyItems { limit: MAX_BATCH_ITEMS, line: 1 }));
    let ndjson = "1\n".repeat(n);
    let error = decode("application/x-ndjson", &ndjson).unwrap_err();
    assert_eq!(error, BindingError::TooManyItems(TooManyItems { limit: MAX_BATCH_ITEMS, line: MAX_BATCH_ITEMS + 1 }));
}

#[test]
fn import_files_may_hold_more_without_the_limit() {
    let record = event().to_string();
    let file = format!("{record}\n").repeat(MAX_BATCH_ITEMS + 1);
    let error = record::parse_many(&file, Origin::Api).unwrap_err();
    assert_eq!(error, TooManyItems { limit: MAX_BATCH_ITEMS, line: MAX_BATCH_ITEMS + 1 });
    let items = record::parse_many_unbounded(&file, Origin::Api);
    assert_eq!(items.len(), MAX_BATCH_ITEMS + 1);
    assert!(items.iter().all(Result::is_ok));
    // Malformed JSON still ends the file, keeping what came before, with its line.
    let items = record::parse_many_unbounded(&format!("{record}\n{record}\n{{\"context\": [1,\n"), Origin::Api);
    assert_eq!(items.len(), 3);
    assert!(matches!(&items[2], Err(EventError::Json { line: 4, .. })), "{:?}", items[2]);
}

/// `event()` padded with spaces to exactly `len` bytes.
fn padded(len: usize) -> String {
    let text = event().to_string();
    let inner = text.strip_suffix('}').unwrap();
    format!("{inner}{}}}", " ".repeat(len - text.len()))
}

#[test]
fn one_event_is_at_most_1_mib() {
    assert_eq!(MAX_EVENT_BYTES, 1 << 20);
    let fits = padded(MAX_EVENT_BYTES);
    assert!(cdevents::parse(&fits, Origin::Api).is_ok());
    let over = padded(MAX_EVENT_BYTES + 1);
    let too_large = EventError::TooLarge { bytes: MAX_EVENT_BYTES + 1, limit: MAX_EVENT_BYTES };
    assert_eq!(cdevents::parse(&over, Origin::Api).unwrap_err(), too_large);
    assert_eq!(too_large.to_string(), "the event is 1048577 bytes, over the limit of 1048576 bytes (1 MiB)");
    // Through every door: a structured body, a batch element, a CloudEvent's `data`.
    match decode("application/cloudevents+json", &over) {
        Ok(Decoded::One(Err(e))) => assert_eq!(e, too_large),
        other => panic!("{other:?}"),
    }
    match decode("application/cloudevents-batch+json", &format!("[{fits}, {over}]")) {
        Ok(Decoded::Batch(items)) => {
            assert!(items[0].is_ok());
            assert_eq!(items[1].as_ref().unwrap_err(), &too_large);
        }
        other => panic!("{other:?}"),
    }
    let cloudevent = format!(r#"{{"specversion": "1.0", "id": "x", "source": "/ci", "type": "t", "data": {over}}}"#);
    assert_eq!(cloudevents::structured(&cloudevent, Origin::Api).unwrap_err(), too_large);
}

#[test]
fn a_webhook_body_is_at_most_1_mib() {
    let body = format!(r#"{{"zen": "{}"}}"#, "x".repeat(MAX_EVENT_BYTES));
    let too_large = WebhookError::TooLarge { bytes: body.len(), limit: MAX_EVENT_BYTES };
    assert_eq!(github::translate("ping", None, body.as_bytes()).unwrap_err(), too_large);
    assert_eq!(gitlab::translate(Some("Push Hook"), body.as_bytes()).unwrap_err(), too_large);
    assert!(too_large.to_string().contains("1048576 bytes"), "{too_large}");
}

#[test]
fn timestamps_lie_between_1970_and_2200() {
    for bad in [
        "0001-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "2999-01-01 00:00:00 UTC",
    ] {
        let mut e = event();
        e["context"]["timestamp"] = json!(bad);
        let error = parse(&e).unwrap_err();
        assert_eq!(error, EventError::OutOfRange { field: "context.timestamp", value: bad.to_owned() });
        assert!(error.to_string().starts_with("`context.timestamp`: "), "{error}");
    }
    for good in ["1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z"] {
        let mut e = event();
        e["context"]["timestamp"] = json!(good);
        assert!(parse(&e).is_ok(), "{good}");
    }
}

pub(crate) fn github_push(commit_time: &str) -> Value {
    json!({
        "ref": "refs/heads/main",
        "after": "b".repeat(40),
        "repository": { "full_name": "acme/app", "name": "app" },
        "commits": [{ "id": "b".repeat(40), "timestamp": commit_time, "message": "Fix" }],
    })
}

pub(crate) fn github_event(event: &str, delivery: Option<&str>, payload: &Value) -> Result<NewEvent, WebhookError> {
    match github::translate(event, delivery, payload.to_string().as_bytes())? {
        Webhook::Event(event) => Ok(event),
        Webhook::Ping => panic!("a ping"),
    }
}

pub(crate) fn gitlab_event(payload: &Value) -> Result<NewEvent, WebhookError> {
    match gitlab::translate(None, payload.to_string().as_bytes())? {
        Webhook::Event(event) => Ok(event),
        Webhook::Ping => panic!("a ping"),
    }
}

#[track_caller]
fn field_error(result: Result<NewEvent, WebhookError>, field: &str, problem: &str) {
    match result {
        Err(WebhookError::Field { field: got, problem: why }) => {
            assert_eq!(got, field);
            assert!(why.contains(problem), "`{problem}` in `{why}`");
        }
        other => panic!("expected an error about `{field}`, got {other:?}"),
    }
}

#[test]
fn webhook_times_lie_between_1970_and_2200() {
    assert!(github_event("push", None, &github_push("2024-05-01T12:00:00Z")).is_ok());
    field_error(github_event("push", None, &github_push("2999-01-01T00:00:00Z")), "commits[0].timestamp", "outside");
    let pull_request = json!({
        "action": "opened",
        "pull_request": { "id": 1, "number": 2, "updated_at": "0001-01-01T00:00:00Z" },
        "repository": { "full_name": "acme/app", "name": "app" },
    });
    field_error(github_event("pull_request", None, &pull_request), "pull_request.updated_at", "outside");
    let merge_request = json!({
        "object_kind": "merge_request",
        "project": { "path_with_namespace": "acme/app", "name": "app" },
        "object_attributes": { "id": 1, "iid": 2, "updated_at": "2999-01-01 00:00:00 UTC", "action": "open" },
    });
    field_error(gitlab_event(&merge_request), "object_attributes.updated_at", "outside");
    // Deliveries stored raw only peek at their time: one out of range is not theirs.
    let check_run = json!({
        "action": "completed",
        "check_run": { "completed_at": "2999-01-01T00:00:00Z", "started_at": "2024-05-01T12:00:00Z" },
        "repository": { "full_name": "acme/app", "name": "app" },
    });
    let stored = github_event("check_run", Some("d-1"), &check_run).unwrap();
    assert_eq!(stored.timestamp, "2024-05-01T12:00:00Z".parse::<jiff::Timestamp>().unwrap());
}

#[test]
fn identifiers_have_no_control_characters() {
    for (path, field) in [
        ("/context/id", "context.id"),
        ("/context/source", "context.source"),
        ("/context/type", "context.type"),
        ("/subject/id", "subject.id"),
        ("/subject/source", "subject.source"),
    ] {
        for (character, text) in [('\0', "a\0b"), ('\u{1b}', "a\u{1b}b"), ('\n', "a\nb"), ('\u{85}', "a\u{85}b")] {
            let mut e = event();
            *e.pointer_mut(path).unwrap() = json!(text);
            let error = parse(&e).unwrap_err();
            assert_eq!(error, EventError::ControlCharacter { field, at: 1, character }, "{path}");
        }
    }
    let mut e = event();
    e["context"]["id"] = json!("\0");
    assert_eq!(parse(&e).unwrap_err().to_string(), "`context.id` contains the control character U+0000 at byte 0");
}

#[track_caller]
fn control_error(result: Result<NewEvent, WebhookError>, field: &str) {
    match result {
        Err(WebhookError::ControlCharacter { field: got, .. }) => assert_eq!(got, field),
        other => panic!("expected a control character in `{field}`, got {other:?}"),
    }
}

#[test]
fn webhook_identities_have_no_control_characters() {
    let mut push = github_push("2024-05-01T12:00:00Z");
    push["ref"] = json!("refs/heads/ma\0in");
    control_error(github_event("push", None, &push), "(event id)");
    let mut push = github_push("2024-05-01T12:00:00Z");
    push["after"] = json!("\0abc");
    control_error(github_event("push", None, &push), "after");
    let mut push = github_push("2024-05-01T12:00:00Z");
    push["repository"]["full_name"] = json!("acme/\napp");
    control_error(github_event("push", None, &push), "(event source)");
    control_error(github_event("check_run", Some("d-\u{1}1"), &json!({"action": "created"})), "(event id)");
    control_error(github_event("fork\0", None, &json!({"action": "created"})), "(event subject)");
    let gitlab_push = json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "after": "b".repeat(40),
        "project": { "path_with_namespace": "acme/\0app", "name": "app" },
        "commits": [],
    });
    control_error(gitlab_event(&gitlab_push), "(event source)");
    let error = github_event("push", None, &push).unwrap_err();
    assert_eq!(error.to_string(), "`(event source)` contains the control character U+000A at byte 12");
}
