//! GitHub webhooks: `X-Hub-Signature-256` verification and translation into observations.
//!
//! (Being written: see the helper's brief.)

use crate::webhook::{Webhook, WebhookError};

/// Checks `X-Hub-Signature-256` (`sha256=<hex HMAC-SHA256 of the body>`) in constant time.
pub fn verify_signature(_secret: &[u8], _header: Option<&str>, _body: &[u8]) -> Result<(), WebhookError> {
    todo!()
}

/// Translates a verified delivery. `event` is `X-GitHub-Event`, `delivery` is
/// `X-GitHub-Delivery`.
pub fn translate(_event: &str, _delivery: Option<&str>, _body: &[u8]) -> Result<Webhook, WebhookError> {
    todo!()
}
