//! GitHub and GitLab webhooks: verification, and translation into events and observations.
//!
//! GitHub payloads come from the shared `octokit/webhooks` corpus, read in place; GitLab
//! payloads are our own fixtures, written from GitLab's documented hook formats.

mod github;
mod gitlab;

use jiff::Timestamp;
use mobius_events::{NewEvent, Webhook};

/// A timestamp written in RFC 3339 in the test, to compare with what translation parsed.
fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The event a translation produced, for deliveries that are not pings.
fn stored(webhook: Webhook) -> NewEvent {
    match webhook {
        Webhook::Event(event) => event,
        Webhook::Ping => panic!("expected an event, got a ping"),
    }
}
