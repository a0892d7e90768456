//! The shape of a DORA report, as JSON and as Rust.
//!
//! Every measured value is an `Option`: `None` (JSON `null`) means the sample was empty, which
//! is not the same as zero, and carries no band.

use jiff::Timestamp;
use mobius_events::facts::{Attribution, DeploymentId};
use serde::{Deserialize, Serialize};

use crate::bands::Band;

/// DORA's four keys for one service in one environment over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoraReport {
    pub service: String,
    pub environment: String,
    /// Start of the window, included.
    pub from: Timestamp,
    /// End of the window, excluded.
    pub to: Timestamp,
    /// Name of the band table the bands come from.
    pub bands: String,
    pub deployment_frequency: DeploymentFrequency,
    pub lead_time: LeadTime,
    pub change_failure_rate: ChangeFailureRate,
    pub recovery_time: RecoveryTime,
    /// The facts behind each number; present only when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<DoraExplain>,
}

/// How often the service reached the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentFrequency {
    /// Successful deployments finished in the window.
    pub deployments: usize,
    /// Failed attempts finished in the window; not deployments.
    pub failed_attempts: usize,
    /// `deployments` over the window's length in days. Zero deployments is a measurement
    /// (zero per day, band low), not an empty sample.
    pub per_day: f64,
    /// The median, over the ISO weeks the window overlaps, of the days with a deployment.
    pub deploy_days_per_week_median: f64,
    pub band: Band,
}

/// How long a commit takes to reach the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadTime {
    /// Changes first shipped by the window's deployments.
    pub changes: usize,
    pub median_seconds: Option<f64>,
    /// Nearest-rank 90th percentile.
    pub p90_seconds: Option<f64>,
    pub band: Option<Band>,
}

/// How many deployments needed fixing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeFailureRate {
    /// Successful deployments finished in the window.
    pub deployments: usize,
    /// Those rolled back or with an incident attributed, each counted once.
    pub failed: usize,
    /// `failed / deployments`, from 0 to 1.
    pub rate: Option<f64>,
    pub band: Option<Band>,
}

/// How long it takes to recover from a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryTime {
    /// Incidents resolved in the window.
    pub incidents: usize,
    pub median_seconds: Option<f64>,
    pub band: Option<Band>,
}

/// The items each number of a [`DoraReport`] was computed from, in time order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DoraExplain {
    /// Behind deployment frequency and change failure rate.
    pub deployments: Vec<ExplainedDeployment>,
    /// Counted as failed attempts, excluded from every rate.
    pub failed_attempts: Vec<FailedAttempt>,
    /// Behind lead time.
    pub changes: Vec<ExplainedChange>,
    /// Behind recovery time.
    pub incidents: Vec<ExplainedIncident>,
}

/// A deployment counted in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedDeployment {
    pub id: DeploymentId,
    pub key: String,
    pub revision: Option<String>,
    pub finished: Timestamp,
    /// Whether it counts as failed for the change failure rate.
    pub failed: bool,
    /// Why it failed: `rolled_back`, and `incident <key>` for each attributed incident.
    pub why: Vec<String>,
}

/// A failed deployment attempt in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub id: DeploymentId,
    pub key: String,
    pub revision: Option<String>,
    pub finished: Timestamp,
}

/// A change and its lead time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedChange {
    pub sha: String,
    pub repository: String,
    /// The first line of its commit message.
    #[serde(default)]
    pub summary: String,
    pub commit_time: Timestamp,
    pub deployment_id: DeploymentId,
    pub lead_time_seconds: f64,
}

/// An incident resolved in the window and its recovery time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedIncident {
    pub key: String,
    pub detected: Timestamp,
    pub resolved: Timestamp,
    pub recovery_seconds: f64,
    pub deployment_id: Option<DeploymentId>,
    pub attribution: Attribution,
}
