//! What the GitHub and GitLab translators share.

use crate::envelope::NewEvent;

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
}

impl WebhookError {
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> WebhookError {
        WebhookError::Field { field: field.into(), problem: problem.into() }
    }

    /// True for authentication failures (HTTP 401), false for bad content (HTTP 400).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            WebhookError::MissingHeader { .. } | WebhookError::BadSignature { .. } | WebhookError::NotConfigured { .. }
        )
    }
}
