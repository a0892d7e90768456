//! The queue of pipeline jobs that run on agents (`mobius agent`), and the agents themselves.
//!
//! A run's engine (on whichever replica drives the run) puts a job whose `runs-on` labels only
//! agents have into the queue ([`crate::Store::enqueue_agent_job`]); an agent, through any
//! replica, claims the oldest queued jobs whose labels are all among its own, as many as it has
//! free slots, in one transaction ([`crate::Store::claim_agent_jobs`]: `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, the one writer on SQLite), holds each under a lease it renews, appends its
//! log at byte offsets, and finishes it with the job's report and the log's last chunk in one
//! transaction ([`crate::Store::finish_agent_job_with_log`]). A lease that lapses makes the job [`AgentJobState::Lost`] ("agent
//! lost"): never queued again silently. The store keeps the job's payload and report as opaque
//! text: the application seals the payload (it carries the job's secrets) and reads the report.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An agent as last seen: it is recorded at each poll and renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Unique per running agent process: its name and a random suffix chosen at start.
    pub id: String,
    /// The name it gave (`--name`, else its host name).
    pub name: String,
    /// Its labels, lowercase, sorted.
    pub labels: Vec<String>,
    /// The id of the `agent` token it authenticates with.
    pub token: String,
    pub first_contact: Timestamp,
    pub last_contact: Timestamp,
}

/// Where a queued job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentJobState {
    /// Waiting for an agent with its labels.
    Queued,
    /// Claimed: an agent holds it under a lease.
    Running,
    /// The agent sent its report.
    Finished,
    /// The lease lapsed, or the agent's token was revoked: the job failed ("agent lost").
    Lost,
    /// Cancelled before an agent claimed it.
    Cancelled,
}

impl AgentJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentJobState::Queued => "queued",
            AgentJobState::Running => "running",
            AgentJobState::Finished => "finished",
            AgentJobState::Lost => "lost",
            AgentJobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<AgentJobState> {
        Some(match s {
            "queued" => AgentJobState::Queued,
            "running" => AgentJobState::Running,
            "finished" => AgentJobState::Finished,
            "lost" => AgentJobState::Lost,
            "cancelled" => AgentJobState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, AgentJobState::Finished | AgentJobState::Lost | AgentJobState::Cancelled)
    }
}

/// A job to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgentJob {
    /// The run it belongs to.
    pub run: i64,
    /// The job instance's name (`build (linux, 20)`).
    pub job: String,
    /// The labels an agent must all have, lowercase, sorted.
    pub labels: Vec<String>,
    /// What the agent receives, sealed by the application; opaque here.
    pub payload: String,
    pub queued: Timestamp,
}

/// A queued, running or ended job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentJob {
    pub id: i64,
    pub run: i64,
    pub job: String,
    pub labels: Vec<String>,
    pub payload: String,
    pub state: AgentJobState,
    /// The agent holding it (or that held it), once claimed.
    pub agent: Option<String>,
    /// The token of that agent.
    pub token: Option<String>,
    /// Until when the holder's lease lasts, while running.
    pub lease_expires: Option<Timestamp>,
    /// Asked to cancel: the next renewal tells the agent.
    pub cancel: bool,
    /// How many bytes of log the store holds.
    pub log_len: u64,
    /// The agent's report, once finished; opaque here.
    pub result: Option<String>,
    /// Why it was lost or cancelled.
    pub reason: Option<String>,
    pub queued: Timestamp,
    pub claimed: Option<Timestamp>,
    pub ended: Option<Timestamp>,
}

/// What became of a log chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAppend {
    /// Stored (or already held: a chunk sent again after a network blip is accepted once); the
    /// log's length now.
    Appended(u64),
    /// The chunk starts past the end of the log: the agent must resend from `expected`.
    Gap { expected: u64 },
    /// The job is not running under this agent.
    NotHeld,
}

/// What a renewal tells the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease is extended; whether the job was asked to cancel.
    Held { cancel: bool },
    /// The job is not running under this agent (lost, finished, another holder).
    NotHeld,
}
