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
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Github => "github",
            Origin::Gitlab => "gitlab",
            Origin::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Some(match s {
            "api" => Origin::Api,
            "github" => Origin::Github,
            "gitlab" => Origin::Gitlab,
            "internal" => Origin::Internal,
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
