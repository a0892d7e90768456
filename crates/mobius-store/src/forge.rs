//! Commit statuses reported back to the forge a repository lives on: where they go (a
//! repository's [`ForgeSettings`]) and the outbox of statuses still to send.
//!
//! The outbox is written by the store itself, in the transaction that records a job's new
//! state ([`crate::Store::update_runs`], [`crate::Store::interrupt_in_flight`]), for the runs of
//! repositories that have forge settings: a state stored is a state that will be reported, even
//! across a crash. The delivery (in `mobius-runs`) reads [`PendingStatus`]es and records each
//! attempt's [`StatusOutcome`].

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::RunState;

/// Which forge API a repository's statuses go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// GitHub or GitHub Enterprise: `POST /repos/{owner}/{repo}/statuses/{sha}`.
    Github,
    /// GitLab or self-managed GitLab: `POST /projects/{id}/statuses/{sha}`.
    Gitlab,
}

impl ForgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
        }
    }

    pub fn parse(s: &str) -> Option<ForgeKind> {
        match s {
            "github" => Some(ForgeKind::Github),
            "gitlab" => Some(ForgeKind::Gitlab),
            _ => None,
        }
    }

    /// The public service's API, used when no other is configured.
    pub fn default_api_url(self) -> &'static str {
        match self {
            ForgeKind::Github => "https://api.github.com",
            ForgeKind::Gitlab => "https://gitlab.com/api/v4",
        }
    }
}

impl fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one repository's commit statuses go. Holds the name of the secret with the token,
/// never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeSettings {
    /// The registered repository (`owner/name`).
    pub repository: String,
    pub kind: ForgeKind,
    /// The API's base URL, without a trailing `/`.
    pub api_url: String,
    /// The name of a secret of the repository holding the API token; `None` sends without
    /// one (which only a forge that allows it accepts).
    pub token_secret: Option<String>,
    /// GitLab's project id or path; `None`: the repository's name.
    pub project: Option<String>,
}

/// Where a status is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Not sent yet, or to be tried again.
    Pending,
    /// The forge accepted it.
    Delivered,
    /// Given up after the last attempt; the run is not affected.
    Failed,
    /// A newer state of the same context was sent in its place (after the forge failed).
    Superseded,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Delivery> {
        Some(match s {
            "pending" => Delivery::Pending,
            "delivered" => Delivery::Delivered,
            "failed" => Delivery::Failed,
            "superseded" => Delivery::Superseded,
            _ => return None,
        })
    }
}

/// A status of a run as `mobius runs show` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    /// `mobius/<workflow>/<job>`.
    pub context: String,
    /// The job's state it reports.
    pub state: RunState,
    pub delivery: Delivery,
    pub attempts: u32,
    /// Why the last attempt failed (never a token).
    pub last_error: Option<String>,
    pub updated: Timestamp,
}

/// A status still to send, with what the request needs of its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStatus {
    pub id: i64,
    pub run: i64,
    pub repository: String,
    pub sha: String,
    pub branch: Option<String>,
    pub context: String,
    pub state: RunState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this.
    pub next_attempt: Timestamp,
}

/// What became of a pending status after an attempt (or without one, when superseded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    pub id: i64,
    pub delivery: Delivery,
    /// Attempts made so far (the store never lowers the count it has).
    pub attempts: u32,
    /// When to try again (meaningful while [`Delivery::Pending`]).
    pub next_attempt: Timestamp,
    pub error: Option<String>,
    pub at: Timestamp,
}

/// The context a job's statuses carry: `mobius/<workflow>/<job>`, the same for every state
/// of the job so the forge shows its latest.
pub fn status_context(workflow: &str, job: &str) -> String {
    format!("mobius/{workflow}/{job}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_deliveries_round_trip_their_words() {
        for kind in [ForgeKind::Github, ForgeKind::Gitlab] {
            assert_eq!(ForgeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ForgeKind::parse("bitbucket"), None);
        for delivery in [Delivery::Pending, Delivery::Delivered, Delivery::Failed, Delivery::Superseded] {
            assert_eq!(Delivery::parse(delivery.as_str()), Some(delivery));
        }
        assert_eq!(status_context("CI", "test (linux)"), "mobius/CI/test (linux)");
    }
}
