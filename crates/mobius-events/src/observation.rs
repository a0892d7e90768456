//! What an event says happened, in the facts model's words.
//!
//! Translating a wire event (a CDEvent, a GitHub or GitLab webhook) into observations is pure
//! and happens before anything is written; [`crate::materialise`] then folds observations into
//! facts inside the store's transaction. Keeping the two apart means every source shares one
//! set of rules for "which changes a deployment shipped" and "which deployment caused this".

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One thing an event reports. An event yields zero or more observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// Commits pushed to a branch, oldest first, as one push.
    Push(Push),
    /// A pull or merge request was merged; with a squash or merge commit, the commits pushed to
    /// `source_branch` are what `merge_sha` brought in.
    Merge(Merge),
    /// An artifact was built from a revision (CDEvents `artifact.packaged`).
    Artifact(ArtifactBuilt),
    /// A deployment attempt finished, successfully or not.
    Deployment(DeploymentObserved),
    /// A service in an environment was rolled back (the deployment it replaced failed).
    Rollback(RollbackObserved),
    /// An incident was detected, updated or resolved.
    Incident(IncidentObserved),
    /// A pipeline run (a workflow run or one of its jobs) changed state.
    PipelineRun(PipelineRunObserved),
}

/// A commit as a push reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    /// When the commit was authored, if the sender says.
    pub author_time: Option<Timestamp>,
    /// When the commit was made: what lead time is measured from.
    pub commit_time: Timestamp,
    /// First line of the commit message.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    /// Repository key, e.g. `octo-org/octo-repo`.
    pub repository: String,
    /// Branch name without `refs/heads/`.
    pub branch: String,
    /// Commits in push order (oldest first). May be capped by the sender (GitHub and GitLab
    /// send at most 20); registering the repository (`mobius repo add`) fills the gaps.
    pub commits: Vec<Commit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merge {
    pub repository: String,
    pub merge_sha: String,
    pub source_branch: String,
    pub target_branch: String,
    pub merged_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactBuilt {
    /// The artifact id (a purl for CDEvents).
    pub artifact_id: String,
    pub repository: Option<String>,
    pub revision: String,
}

/// Whether a deployment attempt succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentObserved {
    /// Stable identity of this attempt at its source: a re-delivery with the same key changes
    /// nothing.
    pub key: String,
    pub service: String,
    pub environment: String,
    pub repository: Option<String>,
    /// The deployed commit, when the sender knows it.
    pub revision: Option<String>,
    pub artifact_id: Option<String>,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub outcome: DeploymentOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackObserved {
    pub key: String,
    pub service: String,
    pub environment: String,
    /// The artifact the environment went back to, if known.
    pub artifact_id: Option<String>,
    pub at: Timestamp,
}

/// A link the sender gave between an incident and what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CauseHint {
    /// CDEvents `incident.*` `artifactId`: the deployment of that artifact.
    Artifact { artifact_id: String },
    /// `root cause: <sha>` in an issue body: the deployment that shipped that commit.
    Commit { sha: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentObserved {
    /// Identity of the incident at its source; later observations with the same key update it.
    pub key: String,
    pub service: String,
    pub environment: String,
    pub title: String,
    pub detected: Option<Timestamp>,
    pub acknowledged: Option<Timestamp>,
    /// `Some` resolves the incident; `None` leaves it as is unless `reopened`.
    pub resolved: Option<Timestamp>,
    /// The incident was reopened: clear any resolution.
    pub reopened: bool,
    pub cause: Option<CauseHint>,
    /// `Some` sets the severity (a later observation may raise or lower it).
    #[serde(default)]
    pub severity: Option<String>,
}

/// Workflow runs and their jobs are both pipeline runs; flow metrics use either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineRunKind {
    Run,
    Job,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRunObserved {
    pub key: String,
    pub kind: PipelineRunKind,
    pub name: String,
    pub repository: Option<String>,
    pub revision: Option<String>,
    pub branch: Option<String>,
    pub queued: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    /// `success`, `failure`, `cancel`, `error` (CDEvents' enum), once finished.
    pub outcome: Option<String>,
}
