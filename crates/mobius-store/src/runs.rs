//! The operational records of pipeline runs the server executes: runs, their jobs and steps,
//! and the branch heads last seen in each registered repository.
//!
//! The event log keeps what a run *meant* (CDEvents: queued, started, finished); these records
//! keep what `mobius runs` shows and what a restarted server needs to re-queue interrupted work.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a run, job or step is. Jobs and steps use the same words as runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Waiting: for its concurrency group (a run), its needs or a slot (a job).
    Queued,
    /// A job held by its environment's protection rules until a reviewer approves or rejects
    /// it (jobs only; its run is `running` meanwhile).
    Waiting,
    Running,
    Success,
    Failure,
    Cancelled,
    Skipped,
    /// The server stopped while it was in flight.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Waiting => "waiting",
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Failure => "failure",
            RunState::Cancelled => "cancelled",
            RunState::Skipped => "skipped",
            RunState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        Some(match s {
            "queued" => RunState::Queued,
            "waiting" => RunState::Waiting,
            "running" => RunState::Running,
            "success" => RunState::Success,
            "failure" => RunState::Failure,
            "cancelled" => RunState::Cancelled,
            "skipped" => RunState::Skipped,
            "interrupted" => RunState::Interrupted,
            _ => return None,
        })
    }

    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Waiting | RunState::Running)
    }
}

/// A run to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRun {
    pub repository: String,
    /// Relative to the repository root, e.g. `.github/workflows/ci.yml`.
    pub workflow_file: String,
    /// The workflow's `name:`, else its file.
    pub workflow_name: String,
    /// `push`, `workflow_dispatch`…
    pub event: String,
    pub branch: Option<String>,
    pub sha: String,
    /// Where the branch was before the push; `None` for a new branch or a manual run.
    pub before_sha: Option<String>,
    /// The workflow's `concurrency.group`, evaluated.
    pub concurrency_group: Option<String>,
    pub cancel_in_progress: bool,
    /// Job ids to run with what they need; empty for every job.
    pub only_jobs: Vec<String>,
    /// 1 for a first run; a re-run counts up from the run it repeats.
    pub attempt: u32,
    pub rerun_of: Option<i64>,
    pub requeue_of: Option<i64>,
    pub queued_at: Timestamp,
    /// A pull request from a fork: the run gets no secrets, cannot deploy, and its token only
    /// reads.
    #[serde(default)]
    pub fork: bool,
    /// What the event gave the run besides its commit: `{"github": …, "inputs": …}`, kept so a
    /// re-run or a re-queue sees the same contexts. Not shown (a delivery's payload is large).
    #[serde(skip)]
    pub trigger: Option<serde_json::Value>,
}

/// The `server_state` key naming the driver of run `run` (`<node> <holder>`): written by
/// [`crate::Store::claim_run`] with the claim, read by the orphan sweep.
pub fn driver_key(run: i64) -> String {
    format!("run-driver:{run}")
}

/// The channel (PostgreSQL's `NOTIFY`) a queued run is announced on, with the payload
/// `queued`, when its transaction commits.
pub const RUNS_CHANNEL: &str = "mobius_runs";

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: i64,
    #[serde(flatten)]
    pub run: NewRun,
    pub state: RunState,
    /// Why it ended as it did when that is not obvious (cancelled by whom, interrupted).
    pub reason: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Whether a process drives it: claimed from the queue ([`crate::Store::claim_run`]), or
    /// in flight from before runs were a queue. A queued run that is not is waiting for a
    /// replica with a free run slot. Not shown.
    #[serde(skip)]
    pub claimed: bool,
}

/// A job instance of a run (one matrix combination), with its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The instance's display name, e.g. `test (linux, 20)`.
    pub name: String,
    pub state: RunState,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub state: RunState,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// A run with its jobs, in the order they were queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub record: RunRecord,
    pub jobs: Vec<JobRecord>,
    /// The commit statuses reported (or to report) to the repository's forge, oldest first;
    /// empty for a repository without forge settings.
    #[serde(default)]
    pub statuses: Vec<crate::CommitStatus>,
}

/// A change to a run's state, applied in batches ([`crate::Store::update_runs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunUpdate {
    /// The run moved to `state` at `at` (`started_at` for running, `finished_at` for a final
    /// state).
    Run { run: i64, state: RunState, at: Timestamp, reason: Option<String> },
    /// A job instance is known (queued), started or ended: created on first sight.
    Job { run: i64, job: String, state: RunState, at: Timestamp },
    /// Step `position` (0-based) of a job started or ended.
    Step { run: i64, job: String, position: u32, name: String, state: RunState, at: Timestamp },
}

/// A filter over runs, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    pub repository: Option<String>,
    pub state: Option<RunState>,
    /// Only runs of this branch (without `refs/heads/`).
    pub branch: Option<String>,
    /// Only runs older than this one (for paging: the last id of the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// Branch name (without `refs/heads/`) → the sha it pointed at.
pub type Heads = BTreeMap<String, String>;

/// A stored rollout: its state machine as JSON, with the columns queries filter on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRow {
    /// 0 for one not stored yet.
    pub id: i64,
    pub service: String,
    pub environment: String,
    pub phase: String,
    /// Whether its controller still has work.
    pub active: bool,
    pub body: String,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A filter over rollouts, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutQuery {
    pub service: Option<String>,
    pub environment: Option<String>,
    pub active_only: bool,
    /// Only each service's newest rollout (in any environment): what defines it now.
    pub latest_per_service: bool,
    /// Only rollouts older than this one (for paging: the last id of the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// One minute of one version's SLIs (what a proxy counted in that minute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliMinute {
    pub service: String,
    pub environment: String,
    pub version: String,
    /// Unix seconds of the minute's start.
    pub minute: i64,
    pub requests: u64,
    /// 5xx responses.
    pub errors: u64,
    /// Responses per latency bucket (the proxy's fixed bounds, in order).
    pub latency: Vec<u64>,
}

/// One minute's (or compacted hour's) requests and 5xx, every version summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliCounts {
    /// Unix seconds of the row's start.
    pub minute: i64,
    pub requests: u64,
    pub errors: u64,
}

/// What [`crate::Store::compact_sli`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliCompaction {
    /// Minute rows folded into their hour.
    pub folded: u64,
    /// Hour rows they were folded into.
    pub hours: u64,
    /// Rows dropped as older than the retention.
    pub dropped: u64,
}
