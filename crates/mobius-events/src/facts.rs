//! Facts: rows derived from events that queries read.
//!
//! These are our own model, independent of any wire format. The store materialises them as
//! events arrive ([`crate::materialise`]); measurements (`mobius-insights`) read them and
//! never the raw log.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::observation::{DeploymentOutcome, PipelineRunKind};

/// Store-assigned identity of a deployment.
pub type DeploymentId = i64;

/// A commit that reached an environment through a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippedChange {
    pub repository: String,
    pub sha: String,
    pub commit_time: Timestamp,
    pub author_time: Option<Timestamp>,
    pub message: String,
    /// The deployment that first shipped it to this service and environment.
    pub deployment_id: DeploymentId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub key: String,
    pub service: String,
    pub environment: String,
    pub repository: Option<String>,
    pub revision: Option<String>,
    pub artifact_id: Option<String>,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub outcome: DeploymentOutcome,
    /// When a rollback replaced this deployment.
    pub rolled_back: Option<Timestamp>,
    /// How the shipped changes were found.
    pub changes_from: ChangeSource,
}

/// How a deployment's changes were determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// `git rev-list previous..revision` in a registered repository.
    GitAncestry,
    /// The ordered push stream of the branch that carried the revision.
    PushStream,
    /// Nothing known about the revision (no revision, or never pushed): no changes.
    Unknown,
}

/// Which rule tied an incident to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// The incident named the deployed artifact (CDEvents `artifactId`).
    ExplicitArtifact,
    /// The incident named a commit (`root cause: <sha>`); the deployment that first shipped it.
    ExplicitCommit,
    /// The latest successful deployment finished within the attribution window before detection.
    Window,
    /// No rule matched.
    Unattributed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub key: String,
    pub service: String,
    pub environment: String,
    pub title: String,
    pub detected: Timestamp,
    pub acknowledged: Option<Timestamp>,
    pub resolved: Option<Timestamp>,
    pub deployment_id: Option<DeploymentId>,
    pub attribution: Attribution,
    /// As its source said: `sev1`…`sev4` by hand or from an issue label, `sev2` for a page.
    #[serde(default)]
    pub severity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    pub key: String,
    pub kind: PipelineRunKind,
    pub name: String,
    pub repository: Option<String>,
    pub revision: Option<String>,
    pub queued: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub outcome: Option<String>,
}

/// Everything measurements need about one service in one environment, read in one go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FactSet {
    /// Deployment attempts (successful and failed), ordered by finish time.
    pub deployments: Vec<Deployment>,
    /// Changes first shipped by the successful deployments above.
    pub changes: Vec<ShippedChange>,
    /// Incidents of the service and environment.
    pub incidents: Vec<Incident>,
    /// Pipeline runs on the revisions of the deployments above.
    pub pipeline_runs: Vec<PipelineRun>,
}
