//! What the GitHub and GitLab translators share.

use crate::envelope::NewEvent;
use crate::limits;

/// A verified, translated webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Webhook {
    /// GitHub's `ping`: acknowledged, nothing stored.
    Ping,
    /// Store this event. Its observations are empty for deliveries that carry no facts
    /// ("stored raw").
    Event(NewEvent),
}

/// Why a delivery was refused. Messages never contain the secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No secret is configured for this source, so nothing can be verified.
    #[error("webhooks from {source_name} are disabled: no secret is configured")]
    NotConfigured { source_name: &'static str },
    #[error("the `{header}` header is missing")]
    MissingHeader { header: &'static str },
    /// The signature or token does not match.
    #[error("the `{header}` header does not match the configured secret")]
    BadSignature { header: &'static str },
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    /// A field the event type needs is absent or has the wrong shape.
    #[error("`{field}`: {problem}")]
    Field { field: String, problem: String },
    /// Past [`limits::MAX_EVENT_BYTES`]: refused before it is read.
    #[error("the body is {bytes} bytes, over the limit of {limit} bytes (1 MiB) for one event")]
    TooLarge { bytes: usize, limit: usize },
    /// In a field that names something, or in the event's id, source or subject derived from
    /// the payload (`(event id)`, `(event source)`, `(event subject)`).
    #[error("`{field}` contains the control character U+{:04X} at byte {at}", u32::from(*character))]
    ControlCharacter { field: String, at: usize, character: char },
}

impl WebhookError {
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> WebhookError {
        WebhookError::Field { field: field.into(), problem: problem.into() }
    }

    /// [`WebhookError::ControlCharacter`] if `value` has one.
    pub(crate) fn control_characters(field: impl Into<String>, value: &str) -> Result<(), WebhookError> {
        match limits::control_character(value) {
            Some((at, character)) => Err(WebhookError::ControlCharacter { field: field.into(), at, character }),
            None => Ok(()),
        }
    }

    /// True for authentication failures (HTTP 401), false for bad content (HTTP 400).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            WebhookError::MissingHeader { .. } | WebhookError::BadSignature { .. } | WebhookError::NotConfigured { .. }
        )
    }
}

/// The event of a delivery, refused if the id, source or subject derived from its payload
/// holds a control character: the payload's text ends up in the log's keys.
pub(crate) fn checked(event: NewEvent) -> Result<Webhook, WebhookError> {
    WebhookError::control_characters("(event id)", &event.id)?;
    WebhookError::control_characters("(event source)", &event.source)?;
    WebhookError::control_characters("(event subject)", &event.subject)?;
    Ok(Webhook::Event(event))
}
