//! CDEvents: validation against the spec (v0.5.x, v0.4.x normalised) and translation into
//! observations.
//!
//! The envelope is checked by hand first so that errors name the field; the subject content
//! is then checked against the spec's schema for that type by `cdevents-sdk`. Custom types
//! (`dev.cdeventsx.*`) are stored and passed through without observations.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::envelope::{NewEvent, Origin};
use crate::limits::{self, MAX_EVENT_BYTES};
use crate::observation::{
    ArtifactBuilt, CauseHint, Commit, DeploymentObserved, DeploymentOutcome, IncidentObserved, Observation,
    PipelineRunKind, PipelineRunObserved, Push, RollbackObserved,
};
use crate::time::parse_timestamp;

/// Why an event was refused. The message names the field or position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    #[error("`{field}` is required")]
    Missing { field: &'static str },
    #[error("`{field}` must be {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("`context.timestamp`: {0}")]
    Timestamp(#[from] crate::time::BadTimestamp),
    #[error(
        "`context.type`: `{ty}` is not a CDEvents type (expected dev.cdevents.<subject>.<predicate>.<major>.<minor>.<patch> or a custom dev.cdeventsx.* type)"
    )]
    BadType { ty: String },
    #[error("`context.specversion`: `{version}` is not supported (0.5.x, or 0.4.x which is normalised)")]
    UnsupportedVersion { version: String },
    #[error("webhook record: {0}")]
    Webhook(String),
    #[error("does not match the CDEvents schema for `{ty}`: {message}")]
    Schema { ty: String, message: String },
    /// Past [`MAX_EVENT_BYTES`]: refused before it is read.
    #[error("the event is {bytes} bytes, over the limit of {limit} bytes (1 MiB)")]
    TooLarge { bytes: usize, limit: usize },
    /// A readable timestamp outside [`crate::limits::EARLIEST`]..[`crate::limits::LATEST`].
    #[error("`{field}`: `{value}` is outside the supported range {}", limits::RANGE)]
    OutOfRange { field: &'static str, value: String },
    #[error("`{field}` contains the control character U+{:04X} at byte {at}", u32::from(*character))]
    ControlCharacter { field: &'static str, at: usize, character: char },
}

/// The type prefix of Mobius's incident acknowledgement (`mobius incident ack`): it sets the
/// incident's `acknowledged` time, which CDEvents has no event for.
pub const ACKNOWLEDGED: &str = "dev.cdeventsx.mobius-incident.acknowledged.";

/// Parses and validates one CDEvent from its JSON text.
pub fn parse(raw: &str, origin: Origin) -> Result<NewEvent, EventError> {
    // Before reading it: a huge event costs its parse, however it ends.
    within_size(raw)?;
    let value: Value = serde_json::from_str(raw).map_err(|e| json_error(&e))?;
    from_value(value, raw.to_owned(), origin)
}

/// Validates an already-parsed CDEvent; `raw` is kept as the received text.
pub fn from_value(value: Value, raw: String, origin: Origin) -> Result<NewEvent, EventError> {
    within_size(&raw)?;
    let Value::Object(event) = value else {
        return Err(EventError::WrongType { field: "(event)", expected: "a JSON object with `context` and `subject`" });
    };
    let context = object(&event, "context", "context")?;
    let subject = object(&event, "subject", "subject")?;

    let version = match (context.get("specversion"), context.get("version")) {
        (Some(v), _) => {
            v.as_str().ok_or(EventError::WrongType { field: "context.specversion", expected: "a string" })?
        }
        (None, Some(v)) => {
            v.as_str().ok_or(EventError::WrongType { field: "context.version", expected: "a string" })?
        }
        (None, None) => return Err(EventError::Missing { field: "context.specversion" }),
    };
    let legacy = if version.starts_with("0.5.") {
        false
    } else if version.starts_with("0.4.") {
        true
    } else {
        return Err(EventError::UnsupportedVersion { version: version.to_owned() });
    };

    let id = identifier(context, "id", "context.id")?;
    let source = identifier(context, "source", "context.source")?;
    let ty = identifier(context, "type", "context.type")?;
    let timestamp = timestamp_in_range(string(context, "timestamp", "context.timestamp")?, "context.timestamp")?;
    let subject_id = identifier(subject, "id", "subject.id")?;
    // Optional, and the schema checks its shape; only its text is ours to police.
    if let Some(subject_source) = subject.get("source").and_then(Value::as_str) {
        no_control_characters(subject_source, "subject.source")?;
    }
    if !subject.contains_key("content") {
        return Err(EventError::Missing { field: "subject.content" });
    }

    let kind = EventType::parse(ty).ok_or_else(|| EventError::BadType { ty: ty.to_owned() })?;
    let normalised_ty = match &kind {
        EventType::Standard { subject, predicate, major, minor, .. } if legacy => {
            format!("dev.cdevents.{subject}.{predicate}.{major}.{}.0", minor + 1)
        }
        _ => ty.to_owned(),
    };
    let observations = match &kind {
        EventType::Standard { subject: s, predicate, .. } => {
            let custom = event.get("customData").and_then(Value::as_object);
            let facts = Facts { source, subject, custom, timestamp, context_id: id };
            observe(&facts, s, predicate)
        }
        // Our own extension: CDEvents has no acknowledgement of an incident.
        EventType::Custom if ty.starts_with(ACKNOWLEDGED) => {
            let custom = event.get("customData").and_then(Value::as_object);
            let facts = Facts { source, subject, custom, timestamp, context_id: id };
            vec![Observation::Incident(IncidentObserved {
                key: format!("cdevents:{}", facts.subject_key()),
                service: facts.content(&["service", "id"]).unwrap_or_default().to_owned(),
                environment: facts.content(&["environment", "id"]).unwrap_or_default().to_owned(),
                title: String::new(),
                detected: None,
                acknowledged: Some(timestamp),
                resolved: None,
                reopened: false,
                cause: None,
                severity: None,
            })]
        }
        EventType::Custom => Vec::new(),
    };
    let standard = matches!(kind, EventType::Standard { .. });
    let (id, source, ty, subject_id) = (id.to_owned(), source.to_owned(), ty.to_owned(), subject_id.to_owned());
    if standard {
        // The SDK knows every schema of 0.3, 0.4 and 0.5 and checks the content against the
        // one for this exact type and version. It takes the parsed value by move: no copy.
        serde_json::from_value::<cdevents_sdk::CDEvent>(Value::Object(event))
            .map_err(|e| EventError::Schema { ty: ty.clone(), message: e.to_string() })?;
    }
    Ok(NewEvent { id, source, ty: normalised_ty, subject: subject_id, timestamp, origin, raw, observations })
}

/// A CDEvents type string, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventType<'a> {
    Standard { subject: &'a str, predicate: &'a str, major: u32, minor: u32, patch: u32 },
    Custom,
}

impl<'a> EventType<'a> {
    pub fn parse(ty: &'a str) -> Option<EventType<'a>> {
        if let Some(rest) = ty.strip_prefix("dev.cdeventsx.") {
            return (!rest.is_empty()).then_some(EventType::Custom);
        }
        let rest = ty.strip_prefix("dev.cdevents.")?;
        let mut parts = rest.splitn(3, '.');
        let subject = parts.next().filter(|s| !s.is_empty())?;
        let predicate = parts.next().filter(|s| !s.is_empty())?;
        let version = parts.next()?;
        let version = version.split_once('-').map_or(version, |(v, _)| v);
        let mut numbers = version.split('.').map(|n| n.parse::<u32>().ok());
        let (major, minor, patch) = (numbers.next()??, numbers.next()??, numbers.next()??);
        if numbers.next().is_some() {
            return None;
        }
        Some(EventType::Standard { subject, predicate, major, minor, patch })
    }
}

struct Facts<'a> {
    source: &'a str,
    subject: &'a Map<String, Value>,
    /// The event's `customData` when it is a JSON object: where a sender puts what the spec's
    /// content has no field for (see [`observe`]).
    custom: Option<&'a Map<String, Value>>,
    timestamp: Timestamp,
    context_id: &'a str,
}

impl Facts<'_> {
    fn subject_id(&self) -> &str {
        self.subject.get("id").and_then(Value::as_str).unwrap_or_default()
    }
    fn content(&self, path: &[&str]) -> Option<&str> {
        let mut v = self.subject.get("content")?;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str()
    }
    /// A string field of `customData`.
    fn custom(&self, key: &str) -> Option<&str> {
        self.custom?.get(key)?.as_str()
    }
    /// Identity of the subject across events: its own source if given, else the event's.
    fn subject_key(&self) -> String {
        let source = self.subject.get("source").and_then(Value::as_str).unwrap_or(self.source);
        format!("{source}#{}", self.subject_id())
    }
}

/// The observations a standard event implies. Besides the spec's content, two `customData`
/// conventions (Mobius's own pipeline runs send them; any sender may):
/// - `pipelinerun.*` / `taskrun.*`: `repository`, `revision`, `branch` say what was built, so the
///   value stream can tie the run to the deployment of that revision.
/// - `change.merged` with `branch` (plus optional `revision`, default the subject id;
///   `message`; `authorTime`): the commit landed on that branch at the event's timestamp — a
///   one-commit push, the same fact a push webhook gives.
fn observe(f: &Facts<'_>, subject: &str, predicate: &str) -> Vec<Observation> {
    let environment = || f.content(&["environment", "id"]).unwrap_or_default().to_owned();
    let one = match (subject, predicate) {
        ("service", "deployed" | "upgraded") => Observation::Deployment(DeploymentObserved {
            key: format!("cdevents:{}/{}", f.source, f.context_id),
            service: f.subject_id().to_owned(),
            environment: environment(),
            repository: None,
            revision: None,
            artifact_id: f.content(&["artifactId"]).map(str::to_owned),
            started: f.timestamp,
            finished: f.timestamp,
            outcome: DeploymentOutcome::Success,
        }),
        ("service", "rolledback") => Observation::Rollback(RollbackObserved {
            key: format!("cdevents:{}/{}", f.source, f.context_id),
            service: f.subject_id().to_owned(),
            environment: environment(),
            artifact_id: f.content(&["artifactId"]).map(str::to_owned),
            at: f.timestamp,
        }),
        ("artifact", "packaged") => match f.content(&["change", "id"]) {
            Some(revision) => Observation::Artifact(ArtifactBuilt {
                artifact_id: f.subject_id().to_owned(),
                repository: f.content(&["change", "source"]).map(str::to_owned),
                revision: revision.to_owned(),
            }),
            None => return Vec::new(),
        },
        ("incident", "detected" | "reported" | "resolved") => {
            let resolved = predicate == "resolved";
            Observation::Incident(IncidentObserved {
                key: format!("cdevents:{}", f.subject_key()),
                service: f.content(&["service", "id"]).unwrap_or_default().to_owned(),
                environment: environment(),
                title: f.content(&["description"]).unwrap_or_default().to_owned(),
                detected: (!resolved).then_some(f.timestamp),
                acknowledged: None,
                resolved: resolved.then_some(f.timestamp),
                reopened: false,
                cause: f.content(&["artifactId"]).map(|a| CauseHint::Artifact { artifact_id: a.to_owned() }),
                // Not in the CDEvents schema: senders (Mobius among them) put it in customData.
                severity: f.custom("severity").map(str::to_owned),
            })
        }
        ("pipelinerun" | "taskrun", "queued" | "started" | "finished") => {
            let at = |p: &str| (predicate == p).then_some(f.timestamp);
            Observation::PipelineRun(PipelineRunObserved {
                key: format!("cdevents:{}", f.subject_key()),
                kind: if subject == "pipelinerun" { PipelineRunKind::Run } else { PipelineRunKind::Job },
                name: f.content(&["pipelineName"]).or(f.content(&["taskName"])).unwrap_or_default().to_owned(),
                repository: f.custom("repository").map(str::to_owned),
                revision: f.custom("revision").map(str::to_owned),
                branch: f.custom("branch").map(str::to_owned),
                queued: at("queued"),
                started: at("started"),
                finished: at("finished"),
                outcome: f
                    .content(&["outcome"])
                    .map(str::to_owned)
                    .or_else(|| at("finished").map(|_| "success".to_owned())),
            })
        }
        ("change", "merged") => match (f.custom("branch"), f.content(&["repository", "id"])) {
            (Some(branch), Some(repository)) => Observation::Push(Push {
                repository: repository.to_owned(),
                branch: branch.to_owned(),
                commits: vec![Commit {
                    sha: f.custom("revision").unwrap_or(f.subject_id()).to_owned(),
                    author_time: f
                        .custom("authorTime")
                        .and_then(|t| parse_timestamp(t).ok())
                        .filter(|t| limits::in_range(*t)),
                    commit_time: f.timestamp,
                    message: f.custom("message").unwrap_or_default().to_owned(),
                }],
            }),
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    vec![one]
}

fn object<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a Map<String, Value>, EventError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(EventError::Missing { field }),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(EventError::WrongType { field, expected: "an object" }),
    }
}

fn string<'a>(map: &'a Map<String, Value>, key: &str, field: &'static str) -> Result<&'a str, EventError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(EventError::Missing { field }),
        Some(Value::String(s)) if s.is_empty() => Err(EventError::WrongType { field, expected: "a non-empty string" }),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(EventError::WrongType { field, expected: "a string" }),
    }
}

/// A non-empty string that names something (an id, a source, a type): no control characters.
fn identifier<'a>(map: &'a Map<String, Value>, key: &str, field: &'static str) -> Result<&'a str, EventError> {
    let s = string(map, key, field)?;
    no_control_characters(s, field)?;
    Ok(s)
}

fn no_control_characters(s: &str, field: &'static str) -> Result<(), EventError> {
    match limits::control_character(s) {
        Some((at, character)) => Err(EventError::ControlCharacter { field, at, character }),
        None => Ok(()),
    }
}

/// A timestamp in any format senders use, within the range events may have.
fn timestamp_in_range(value: &str, field: &'static str) -> Result<Timestamp, EventError> {
    let at = parse_timestamp(value)?;
    if !limits::in_range(at) {
        return Err(EventError::OutOfRange { field, value: value.to_owned() });
    }
    Ok(at)
}

fn within_size(raw: &str) -> Result<(), EventError> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { bytes: raw.len(), limit: MAX_EVENT_BYTES });
    }
    Ok(())
}

/// A JSON syntax error with its position, without serde_json's trailing " at line L column C"
/// (the position is reported apart).
pub(crate) fn json_error(e: &serde_json::Error) -> EventError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    EventError::Json { line: e.line(), column: e.column(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings() {
        assert_eq!(
            EventType::parse("dev.cdevents.service.deployed.0.3.0"),
            Some(EventType::Standard { subject: "service", predicate: "deployed", major: 0, minor: 3, patch: 0 })
        );
        assert_eq!(EventType::parse("dev.cdeventsx.mytool-resource.created.0.1.0"), Some(EventType::Custom));
        for bad in
            ["dev.cdevents.service", "dev.cdevents.service.deployed.x.y.z", "com.example.thing", "dev.cdeventsx.", ""]
        {
            assert_eq!(EventType::parse(bad), None, "{bad}");
        }
    }
}
