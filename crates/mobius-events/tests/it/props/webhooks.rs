//! The GitHub and GitLab translators on real payloads, mutated: keys dropped, values of the
//! wrong type, deep nesting, huge and odd strings, bodies cut short. Nothing panics, a refusal
//! names the JSON path of the field at fault (or the position of the syntax error), and what
//! is accepted is an event the log can store.

use std::path::Path;
use std::sync::OnceLock;

use mobius_events::cdevents::EventType;
use mobius_events::{Webhook, WebhookError, github, gitlab};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use super::{config, json_value, offset_of};

/// A payload and the event name it was delivered with.
struct Payload {
    event: String,
    value: Value,
}

fn load(dir: &Path, event_of: impl Fn(&Path) -> String) -> Vec<Payload> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a readable corpus").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|path| Payload {
            event: event_of(path),
            value: serde_json::from_slice(&std::fs::read(path).expect("readable")).expect("payloads are JSON"),
        })
        .collect()
}

/// The shared corpus of GitHub payloads, by event (their directory).
fn github_payloads() -> &'static [Payload] {
    static PAYLOADS: OnceLock<Vec<Payload>> = OnceLock::new();
    PAYLOADS.get_or_init(|| {
        let payloads = load(&crate::shared_corpus().join("github-webhooks"), |path| {
            let dir = path.parent().and_then(Path::file_name).expect("payloads are in event directories");
            dir.to_string_lossy().into_owned()
        });
        assert!(payloads.len() > 100, "only {} GitHub payloads", payloads.len());
        payloads
    })
}

/// Our GitLab fixtures, by `X-Gitlab-Event` header (their name's first part is the kind).
fn gitlab_payloads() -> &'static [Payload] {
    static PAYLOADS: OnceLock<Vec<Payload>> = OnceLock::new();
    PAYLOADS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab");
        load(&dir, |path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let kind = name.split('.').next().unwrap_or_default();
            let words: Vec<String> = kind.split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
            format!("{} Hook", words.join(" "))
        })
    })
}

/// One change to a payload: at a node no deeper than `depth`, the one `at` picks.
#[derive(Debug, Clone)]
enum Edit {
    Drop {
        depth: usize,
        at: Index,
    },
    Replace {
        depth: usize,
        at: Index,
        with: Value,
    },
    /// The node wrapped in `levels` arrays and objects.
    Nest {
        depth: usize,
        at: Index,
        levels: usize,
    },
}

/// Changes to the serialised body.
#[derive(Debug, Clone)]
enum Cut {
    Whole,
    /// Only the first bytes, up to the index.
    Truncate(Index),
    /// A byte changed (possibly into invalid UTF-8).
    Byte(Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let depth = 1usize..=4;
    prop_oneof![
        1 => (depth.clone(), any::<Index>()).prop_map(|(depth, at)| Edit::Drop { depth, at }),
        3 => (depth.clone(), any::<Index>(), replacement()).prop_map(|(depth, at, with)| Edit::Replace { depth, at, with }),
        1 => (depth, any::<Index>(), 1usize..300).prop_map(|(depth, at, levels)| Edit::Nest { depth, at, levels }),
    ]
}

fn cut() -> impl Strategy<Value = Cut> {
    prop_oneof![
        8 => Just(Cut::Whole),
        1 => any::<Index>().prop_map(Cut::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Cut::Byte(at, byte)),
    ]
}

/// Values of every type, and the strings that break naive code.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(&[0.5, -1.0, 1e300, -1e300, 1e-300, 9.2e18][..]).prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(
            &[
                "",
                "é💥\u{0}\u{202e}\u{feff}",
                "yesterday",
                "2024-13-01T00:00:00Z",
                "2024-01-01 00:00:00 +9999",
                "-009999-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999999Z",
                "refs/heads/",
                "0000000000000000000000000000000000000000",
                "root cause: ",
            ][..],
        )
        .prop_map(Value::from),
        (1usize..200_000).prop_map(|n| Value::from("x".repeat(n))),
        Just(json!({})),
        Just(json!([])),
        Just(json!([{}, null, 1, "a"])),
        json_value(),
    ]
}

/// JSON pointers of the nodes no deeper than `depth`, in document order.
fn pointers(value: &Value, depth: usize) -> Vec<String> {
    fn walk(value: &Value, at: String, depth: usize, out: &mut Vec<String>) {
        if depth == 0 {
            return;
        }
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v)).collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            _ => return,
        };
        for (token, child) in children {
            let pointer = format!("{at}/{token}");
            out.push(pointer.clone());
            walk(child, pointer, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), depth, &mut out);
    out
}

fn apply(value: &mut Value, edit: &Edit) {
    let (depth, at) = match edit {
        Edit::Drop { depth, at } | Edit::Replace { depth, at, .. } | Edit::Nest { depth, at, .. } => (*depth, at),
    };
    let pointers = pointers(value, depth);
    if pointers.is_empty() {
        return;
    }
    let pointer = at.get(&pointers);
    match edit {
        Edit::Drop { .. } => {
            let (parent, token) = pointer.rsplit_once('/').expect("pointers start with /");
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => drop(map.remove(&token.replace("~1", "/").replace("~0", "~"))),
                Some(Value::Array(items)) => drop(items.remove(token.parse::<usize>().expect("an index"))),
                _ => {}
            }
        }
        Edit::Replace { with, .. } => *value.pointer_mut(pointer).expect("a pointer just listed") = with.clone(),
        Edit::Nest { levels, .. } => {
            let node = value.pointer_mut(pointer).expect("a pointer just listed");
            for level in 0..*levels {
                let inner = node.take();
                *node = if level % 2 == 0 { json!([inner]) } else { json!({ "x": inner }) };
            }
        }
    }
}

fn body(value: &Value, cut: &Cut) -> Vec<u8> {
    let mut body = serde_json::to_vec_pretty(value).expect("a JSON value serialises");
    match cut {
        Cut::Whole => {}
        Cut::Truncate(at) => body.truncate(at.index(body.len() + 1)),
        Cut::Byte(at, byte) => {
            let i = at.index(body.len());
            body[i] = *byte;
        }
    }
    body
}

/// One segment of a JSON path as errors write it (`commits[2].timestamp`).
#[derive(Debug)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        out.push(Segment::Key(pieces.next().unwrap_or_default()));
        for index in pieces {
            let index = index.strip_suffix(']').and_then(|i| i.parse().ok());
            out.push(Segment::Index(index.unwrap_or_else(|| panic!("`{path}` is not a JSON path"))));
        }
    }
    out
}

/// The value a segment leads to. A key holding `null` counts as absent, as the translators read
/// it; an array element that is `null` is there (and is not an object).
fn step<'v>(value: &'v Value, segment: &Segment<'_>) -> Option<&'v Value> {
    match segment {
        Segment::Key(key) => value.as_object()?.get(*key).filter(|v| !v.is_null()),
        Segment::Index(i) => value.as_array()?.get(*i),
    }
}

/// A refusal names where the problem is: a syntax error inside the body, or the JSON path of
/// the field, whose parent exists and which is absent exactly when it is said to be required.
fn assert_located(error: &WebhookError, body: &[u8]) {
    let document = std::str::from_utf8(body).ok().and_then(|text| serde_json::from_str::<Value>(text).ok());
    match error {
        WebhookError::Json { line, column, .. } => {
            let text = std::str::from_utf8(body).expect("a syntax error is only reported for UTF-8 text");
            assert!(document.is_none(), "{error} for valid JSON");
            assert!(offset_of(text, *line, *column).is_some(), "{error}: outside the body");
        }
        WebhookError::Field { field, problem } if field == "(body)" => {
            let is_object = document.as_ref().is_some_and(Value::is_object);
            assert!(std::str::from_utf8(body).is_err() || !is_object, "{error} for a JSON object");
            assert!(!problem.is_empty());
        }
        WebhookError::Field { field, problem } => {
            let document = document.unwrap_or_else(|| panic!("{error} for a body that is not JSON"));
            let path = segments(field);
            let (last, parents) = path.split_last().expect("split yields at least one segment");
            let parent = parents
                .iter()
                .try_fold(&document, |value, segment| step(value, segment))
                .unwrap_or_else(|| panic!("{error}: the parent of `{field}` is not in the payload"));
            let target = step(parent, last);
            if problem.starts_with("is required") {
                assert!(target.is_none(), "{error}, but it is there: {target:?}");
            } else {
                assert!(target.is_some(), "{error}, but it is not there");
            }
        }
        // An identifier the payload gave (or one derived from the delivery id) holding a control
        // character: named by its path, or by the derived id it went into.
        WebhookError::ControlCharacter { field, .. } => assert!(!field.is_empty(), "{error}"),
        WebhookError::TooLarge { bytes, limit } => assert!(bytes > limit, "{error}"),
        other => panic!("translation is not verification: {other}"),
    }
}

/// What an accepted delivery must be to be stored.
fn assert_storable(webhook: &Webhook, body: &[u8]) {
    let Webhook::Event(event) = webhook else { return };
    assert!(!event.id.is_empty() && !event.source.is_empty(), "{event:?}");
    assert_eq!(EventType::parse(&event.ty), Some(EventType::Custom), "{}", event.ty);
    assert_eq!(event.raw.as_bytes(), body, "the body is kept verbatim");
}

/// Event names the readers know, plus odd ones: a payload is read with another's reader too.
const GITHUB_EVENTS: &[&str] = &[
    "push",
    "pull_request",
    "deployment_status",
    "workflow_run",
    "workflow_job",
    "issues",
    "ping",
    "release",
    "",
    "Push",
    "ünïcode event",
];

const GITLAB_HEADERS: &[&str] = &[
    "Push Hook",
    "Tag Push Hook",
    "Merge Request Hook",
    "Pipeline Hook",
    "Deployment Hook",
    "Issue Hook",
    "Work Item Hook",
    "Job Hook",
    "Note Hook",
    " ",
    "",
];

proptest! {
    #![proptest_config(config(256))]

    /// A mutated GitHub delivery is translated or refused with the JSON path at fault.
    #[test]
    fn github_translation_never_panics_and_names_the_path(
        payload in any::<Index>(),
        own_event in prop::bool::weighted(0.8),
        other_event in prop::sample::select(GITHUB_EVENTS),
        delivery in prop::option::of(".{0,40}"),
        edits in prop::collection::vec(edit(), 0..4),
        cut in cut(),
    ) {
        let payload = payload.get(github_payloads());
        let event = if own_event { payload.event.as_str() } else { other_event };
        let mut value = payload.value.clone();
        edits.iter().for_each(|edit| apply(&mut value, edit));
        let body = body(&value, &cut);
        match github::translate(event, delivery.as_deref(), &body) {
            Ok(webhook) => {
                prop_assert_eq!(webhook == Webhook::Ping, event == "ping");
                assert_storable(&webhook, &body);
            }
            Err(error) => assert_located(&error, &body),
        }
    }

    /// A mutated GitLab delivery, with or without its `X-Gitlab-Event` header, is translated
    /// or refused with the JSON path at fault.
    #[test]
    fn gitlab_translation_never_panics_and_names_the_path(
        payload in any::<Index>(),
        header in prop_oneof![Just(None), Just(Some("own")), prop::sample::select(GITLAB_HEADERS).prop_map(Some)],
        edits in prop::collection::vec(edit(), 0..4),
        cut in cut(),
    ) {
        let payload = payload.get(gitlab_payloads());
        let header = header.map(|h| if h == "own" { payload.event.as_str() } else { h });
        let mut value = payload.value.clone();
        edits.iter().for_each(|edit| apply(&mut value, edit));
        let body = body(&value, &cut);
        match gitlab::translate(header, &body) {
            Ok(webhook) => {
                prop_assert_ne!(&webhook, &Webhook::Ping);
                assert_storable(&webhook, &body);
            }
            Err(error) => assert_located(&error, &body),
        }
    }

    /// Arbitrary bytes and arbitrary JSON never make either translator panic.
    #[test]
    fn any_body_is_translated_or_refused(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..128),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
        event in prop::sample::select(GITHUB_EVENTS),
        header in prop::option::of(prop::sample::select(GITLAB_HEADERS)),
    ) {
        match github::translate(event, None, &body) {
            Ok(webhook) => assert_storable(&webhook, &body),
            Err(error) => assert_located(&error, &body),
        }
        match gitlab::translate(header, &body) {
            Ok(webhook) => assert_storable(&webhook, &body),
            Err(error) => assert_located(&error, &body),
        }
    }
}

/// The mutations reach the translators' fields: a payload with the field a reader needs
/// dropped is refused naming it (if this failed, the properties above would test little).
#[test]
fn a_dropped_field_is_named() {
    let push = github_payloads().iter().find(|p| p.event == "push").expect("the corpus has pushes");
    let mut value = push.value.clone();
    value.as_object_mut().expect("an object").remove("ref");
    let body = serde_json::to_vec(&value).expect("serialises");
    let error = github::translate("push", None, &body).expect_err("a push needs its ref");
    assert_eq!(error, WebhookError::Field { field: "ref".into(), problem: "is required".into() });
    assert_located(&error, &body);
}
