//! The rollout command queue: changes to an environment's rollouts (deploy, promote, abort,
//! undo) asked of whichever replica drives that environment.
//!
//! With replicas, one of them holds an environment's lease and is the only writer of its
//! rollouts. A request that reaches another replica is queued here
//! ([`crate::Store::enqueue_rollout_command`]); the holder claims the oldest queued command of
//! the environments it drives ([`crate::Store::claim_rollout_command`]: `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, the one writer on SQLite), applies it and stores its answer
//! ([`crate::Store::finish_rollout_command`]), which the asker reads. A command nobody claimed
//! in time is withdrawn by its asker; one claimed by a replica that then lost the lease is made
//! [`CommandState::Lost`] by the next holder, never applied twice. The store keeps the change
//! and the answer as opaque text: the application encodes both.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandState {
    /// Waiting for the replica that drives its environment.
    Queued,
    /// That replica is applying it.
    Claimed,
    /// Applied (or refused): the answer is in `result`.
    Done,
    /// Its claimer lost the environment's lease before answering: whether it was applied, the
    /// rollout says.
    Lost,
    /// Its asker stopped waiting before anyone claimed it: it will never be applied.
    Withdrawn,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Claimed => "claimed",
            CommandState::Done => "done",
            CommandState::Lost => "lost",
            CommandState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<CommandState> {
        Some(match s {
            "queued" => CommandState::Queued,
            "claimed" => CommandState::Claimed,
            "done" => CommandState::Done,
            "lost" => CommandState::Lost,
            "withdrawn" => CommandState::Withdrawn,
            _ => return None,
        })
    }

    /// Whether the command will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, CommandState::Done | CommandState::Lost | CommandState::Withdrawn)
    }
}

/// A command to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRolloutCommand {
    pub service: String,
    pub environment: String,
    /// The change, as the application encodes it.
    pub body: String,
    pub queued: Timestamp,
}

/// A command as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutCommand {
    pub id: i64,
    pub service: String,
    pub environment: String,
    pub body: String,
    pub state: CommandState,
    /// The replica that claimed it.
    pub holder: Option<String>,
    /// The answer, once [`CommandState::Done`].
    pub result: Option<String>,
    pub queued: Timestamp,
    pub claimed: Option<Timestamp>,
    /// When it was answered, lost or withdrawn.
    pub ended: Option<Timestamp>,
}
