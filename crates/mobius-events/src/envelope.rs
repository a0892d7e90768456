//! The log's unit: an event as received, with the few fields every query needs pulled out.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::observation::Observation;

/// Where an event entered Mobius.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `POST /api/v1/events`, `mobius events send|import`.
    Api,
    /// `POST /api/v1/webhooks/github`.
    Github,
    /// `POST /api/v1/webhooks/gitlab`.
    Gitlab,
    /// Emitted by Mobius itself (pipelines, rollouts).
    Internal,
    /// A recorded webhook delivery in an import file or a batch (`{"webhook": "github", …}`):
    /// translated as the provider's, but nothing verified that the provider sent it.
    Import,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Github => "github",
            Origin::Gitlab => "gitlab",
            Origin::Internal => "internal",
            Origin::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Some(match s {
            "api" => Origin::Api,
            "github" => Origin::Github,
            "gitlab" => Origin::Gitlab,
            "internal" => Origin::Internal,
            "import" => Origin::Import,
            _ => return None,
        })
    }
}

/// A validated event, ready to append. Building one is the only way into the log, so
/// everything in the log passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `context.id` (or the webhook's identity); unique per `source`.
    pub id: String,
    pub source: String,
    /// `context.type`, normalised to its v0.5 name for CDEvents v0.4.
    pub ty: String,
    /// `subject.id`.
    pub subject: String,
    /// When it happened, per the sender.
    pub timestamp: Timestamp,
    pub origin: Origin,
    /// The body exactly as received.
    pub raw: String,
    /// What the event says happened; materialised into facts on append.
    pub observations: Vec<Observation>,
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the log (1-based, gap-free only in the absence of rejected transactions).
    pub seq: i64,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub subject: String,
    pub timestamp: Timestamp,
    pub received: Timestamp,
    pub origin: Origin,
    pub raw: String,
}

/// What happened to one event on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppendStatus {
    Stored,
    /// `(source, id)` was already in the log; nothing changed.
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_round_trip_through_their_names() {
        for origin in [Origin::Api, Origin::Github, Origin::Gitlab, Origin::Internal, Origin::Import] {
            assert_eq!(Origin::parse(origin.as_str()), Some(origin));
            // The serde name is the same word, so the API's JSON and the store agree.
            assert_eq!(serde_json::to_value(origin).unwrap(), origin.as_str());
        }
        assert_eq!(Origin::parse("imported"), None);
    }
}
