//! The CDEvents Mobius emits itself, each kind built in one place by a typed constructor that
//! knows its type, version and id scheme; nothing else writes their JSON.
//!
//! - [`delivery`]: a rollout's `environment.created`, `service.deployed|upgraded|rolledback`,
//!   the incident of an automatic rollback, and the policy exception of a frozen budget.
//! - [`pipeline`]: a workflow run's `pipelinerun.*`, `taskrun.*`, `artifact.packaged`, and
//!   `change.merged` for the commits that triggered a server run.
//! - [`reliability`]: alerts, the incidents pages open, incidents by hand (`mobius incident`),
//!   and post-mortem records.
//! - [`flags`]: changes to feature flag sets, the audit trail of each (`mobius-flag.changed`).
//! - [`any`]: an event of any type from its parts (`mobius events send`).
//!
//! Every constructor returns a [`NewEvent`] validated by the parser the API uses
//! ([`cdevents::parse`]), so Mobius never writes an event the API would refuse: values that
//! would make one (an empty name, a control character, a time out of range) are an
//! [`EmitError`]. Events are written under CDEvents [`SPEC_VERSION`].
//!
//! Ids derived from content (`rollout:7:deployed`, `change:main:<sha>`) make a re-emitted event
//! a duplicate; they must not change, since stores hold events under them. Events with nothing
//! to derive an id from get a random UUID v4.

pub mod delivery;
pub mod flags;
pub mod gitops;
pub mod pipeline;
pub mod reliability;

use jiff::Timestamp;
use serde::Serialize;

use crate::cdevents::{self, EventError};
use crate::envelope::{NewEvent, Origin};

/// The CDEvents specification version of every event built here.
pub const SPEC_VERSION: &str = "0.5.1";

/// An event could not be built from the values given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The event these values make is one the API would refuse.
    #[error("the `{ty}` event built from these values is invalid")]
    Invalid {
        ty: String,
        #[source]
        source: EventError,
    },
    /// `artifact.packaged` names the commit the artifact was built from (`change.id` is
    /// required); a run of a directory without commits has none.
    #[error("`{ty}` needs the run's revision, and the run has none")]
    NoRevision { ty: &'static str },
}

/// An event of any type from its parts, as `mobius events send` takes them from flags.
#[derive(Debug, Clone, PartialEq)]
pub struct AnyEvent<'a> {
    /// `context.type`, e.g. `dev.cdevents.service.deployed.0.3.0`.
    pub ty: &'a str,
    /// `context.id`; a random UUID v4 when `None`.
    pub id: Option<&'a str>,
    /// `context.source`.
    pub source: &'a str,
    /// `context.timestamp`, kept as written: RFC 3339 (the schemas of standard types require
    /// it; custom types may use any format [`crate::time`] reads).
    pub timestamp: &'a str,
    /// `subject.id`.
    pub subject: &'a str,
    /// `subject.content`, checked against the type's schema.
    pub content: &'a serde_json::Value,
}

/// Builds the event `event` describes (see [`AnyEvent`]).
pub fn any(event: &AnyEvent<'_>, origin: Origin) -> Result<NewEvent, EmitError> {
    let parts = Parts {
        ty: event.ty,
        id: event.id.map_or_else(random_id, str::to_owned),
        source: event.source,
        timestamp: event.timestamp.to_owned(),
        subject: event.subject,
        subject_source: None,
        content: event.content,
        custom_data: None::<()>,
        custom_data_content_type: false,
    };
    build(parts, origin)
}

/// `{"id": …}`: how CDEvents refers to an environment, a service or a pipeline run.
#[derive(Serialize)]
pub(crate) struct Ref<'a> {
    pub(crate) id: &'a str,
}

/// Everything one event is made of.
pub(crate) struct Parts<'a, C, D> {
    pub(crate) ty: &'a str,
    pub(crate) id: String,
    pub(crate) source: &'a str,
    /// As it goes into `context.timestamp`: [`stamp`] for instants.
    pub(crate) timestamp: String,
    pub(crate) subject: &'a str,
    pub(crate) subject_source: Option<&'a str>,
    pub(crate) content: C,
    pub(crate) custom_data: Option<D>,
    /// Whether `customDataContentType: application/json` goes with the custom data.
    pub(crate) custom_data_content_type: bool,
}

impl<'a, C> Parts<'a, C, ()> {
    /// An event at `at` whose subject has the event's own source, without custom data.
    pub(crate) fn new(ty: &'a str, id: String, source: &'a str, at: Timestamp, subject: &'a str, content: C) -> Self {
        Parts {
            ty,
            id,
            source,
            timestamp: stamp(at),
            subject,
            subject_source: Some(source),
            content,
            custom_data: None,
            custom_data_content_type: false,
        }
    }

    /// With `customData` (and `customDataContentType: application/json` if `content_type`).
    pub(crate) fn custom_data<D>(self, data: D, content_type: bool) -> Parts<'a, C, D> {
        Parts {
            ty: self.ty,
            id: self.id,
            source: self.source,
            timestamp: self.timestamp,
            subject: self.subject,
            subject_source: self.subject_source,
            content: self.content,
            custom_data: Some(data),
            custom_data_content_type: content_type,
        }
    }
}

impl<'a, C, D> Parts<'a, C, D> {
    /// With `subject.source` other than the event's own, or none.
    pub(crate) fn subject_source(self, subject_source: Option<&'a str>) -> Self {
        Parts { subject_source, ..self }
    }
}

/// The wire shape of a CDEvent.
#[derive(Serialize)]
struct Wire<'a, C, D> {
    context: Context<'a>,
    subject: Subject<'a, C>,
    #[serde(rename = "customData", skip_serializing_if = "Option::is_none")]
    custom_data: Option<D>,
    #[serde(rename = "customDataContentType", skip_serializing_if = "Option::is_none")]
    custom_data_content_type: Option<&'static str>,
}

#[derive(Serialize)]
struct Context<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    timestamp: String,
}

#[derive(Serialize)]
struct Subject<'a, C> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    content: C,
}

/// Writes the event and validates it as the API would.
pub(crate) fn build<C: Serialize, D: Serialize>(parts: Parts<'_, C, D>, origin: Origin) -> Result<NewEvent, EmitError> {
    let ty = parts.ty;
    let wire = Wire {
        context: Context {
            specversion: SPEC_VERSION,
            id: &parts.id,
            source: parts.source,
            ty,
            timestamp: parts.timestamp,
        },
        subject: Subject { id: parts.subject, source: parts.subject_source, content: parts.content },
        custom_data_content_type: (parts.custom_data.is_some() && parts.custom_data_content_type)
            .then_some("application/json"),
        custom_data: parts.custom_data,
    };
    // Through a `Value`, whose keys are sorted: the text is the same, byte for byte, as the
    // events Mobius wrote before these constructors, which stores already hold.
    let value = serde_json::to_value(&wire).expect("event parts serialise to JSON: string keys, no failing impl");
    cdevents::parse(&value.to_string(), origin).map_err(|source| EmitError::Invalid { ty: ty.to_owned(), source })
}

/// An instant as `context.timestamp` has it: RFC 3339 in UTC.
pub(crate) fn stamp(at: Timestamp) -> String {
    at.to_string()
}

/// A random UUID v4: the id of an event with nothing to derive one from.
pub(crate) fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
