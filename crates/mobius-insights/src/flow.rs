//! The value stream: where a change's lead time goes, stage by stage, and how much of it is
//! waiting.
//!
//! The changes measured are those first shipped by successful deployments finished in the
//! window (the same changes as DORA's lead time). A change's pipeline is every pipeline run
//! (workflow runs and jobs alike) whose `revision` equals its deployment's revision and that
//! was queued before the deployment started (a later re-run or nightly build on the same
//! revision did not produce it): the pipeline was queued at the earliest `queued`, started at
//! the earliest `started` and finished at the latest `finished` of those runs. The stages, in
//! order:
//!
//! | stage                         | kind | from                 | to                      |
//! |-------------------------------|------|----------------------|-------------------------|
//! | `commit_to_queued`            | wait | commit time          | pipeline queued         |
//! | `queued_to_started`           | wait | pipeline queued      | pipeline started        |
//! | `started_to_finished`         | work | pipeline started     | pipeline finished       |
//! | `finished_to_deploy_started`  | wait | pipeline finished    | deployment started      |
//! | `deploy_started_to_finished`  | work | deployment started   | deployment finished     |
//!
//! A change with an endpoint missing gives that stage no sample; a stage with no samples has
//! an unknown (`null`) median, never zero. Negative spans (clock skew) count as zero. Every
//! change is one sample, so a deployment that shipped ten changes weighs ten times.
//!
//! `flow_efficiency` is the sum of the known work medians over the sum of all known medians;
//! `waiting_share` is the same for waits. Both are `null` when no stage is known or when the
//! known medians sum to zero. Medians of stages do not add up to the median lead time; the
//! shares say where time typically goes, not an exact split of one number.

use std::collections::HashMap;

use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, DeploymentOutcome, FactSet, PipelineRun, ShippedChange};
use serde::{Deserialize, Serialize};

use crate::Window;
use crate::scope;
use crate::stats::{elapsed_seconds, median};

/// A stage of the value stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    CommitToQueued,
    QueuedToStarted,
    StartedToFinished,
    FinishedToDeployStarted,
    DeployStartedToFinished,
}

impl StageName {
    /// Every stage, in the order a change goes through them.
    pub const ALL: [StageName; 5] = [
        StageName::CommitToQueued,
        StageName::QueuedToStarted,
        StageName::StartedToFinished,
        StageName::FinishedToDeployStarted,
        StageName::DeployStartedToFinished,
    ];

    /// Whether the change is waiting or being worked on in this stage.
    pub fn kind(self) -> StageKind {
        match self {
            StageName::StartedToFinished | StageName::DeployStartedToFinished => StageKind::Work,
            _ => StageKind::Wait,
        }
    }

    /// The stage's name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::CommitToQueued => "commit_to_queued",
            StageName::QueuedToStarted => "queued_to_started",
            StageName::StartedToFinished => "started_to_finished",
            StageName::FinishedToDeployStarted => "finished_to_deploy_started",
            StageName::DeployStartedToFinished => "deploy_started_to_finished",
        }
    }
}

/// Waiting in a queue or being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Wait,
    Work,
}

/// The value stream of one service in one environment over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowReport {
    pub service: String,
    pub environment: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Changes measured.
    pub changes: usize,
    /// Every stage, in order, known or not.
    pub stages: Vec<Stage>,
    /// Share of the known stage medians spent working, from 0 to 1.
    pub flow_efficiency: Option<f64>,
    /// Share of the known stage medians spent waiting, from 0 to 1.
    pub waiting_share: Option<f64>,
    /// Each change's stages; present only when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<FlowExplain>,
}

/// One stage's typical duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: StageName,
    pub kind: StageKind,
    /// `None` when no change had both endpoints: unknown, not zero.
    pub median_seconds: Option<f64>,
    /// Changes that gave a duration for this stage.
    pub samples: usize,
}

/// The changes behind a [`FlowReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowExplain {
    pub changes: Vec<FlowChange>,
}

/// One change's way through the stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowChange {
    pub sha: String,
    pub repository: String,
    pub deployment_id: DeploymentId,
    pub revision: Option<String>,
    /// Keys of the pipeline runs on the deployment's revision.
    pub pipeline_runs: Vec<String>,
    /// Seconds per stage; `None` where an endpoint is missing.
    pub stages: StageSeconds,
}

/// A duration per stage, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    pub commit_to_queued: Option<f64>,
    pub queued_to_started: Option<f64>,
    pub started_to_finished: Option<f64>,
    pub finished_to_deploy_started: Option<f64>,
    pub deploy_started_to_finished: Option<f64>,
}

impl StageSeconds {
    /// The duration of `stage`.
    pub fn get(&self, stage: StageName) -> Option<f64> {
        match stage {
            StageName::CommitToQueued => self.commit_to_queued,
            StageName::QueuedToStarted => self.queued_to_started,
            StageName::StartedToFinished => self.started_to_finished,
            StageName::FinishedToDeployStarted => self.finished_to_deploy_started,
            StageName::DeployStartedToFinished => self.deploy_started_to_finished,
        }
    }
}

/// Measures the value stream of `service` in `environment` from `facts` (which must hold that
/// service's facts in that environment; the names only label the report). With `explain`, the
/// report lists every change and its stage durations.
pub fn flow(service: &str, environment: &str, facts: &FactSet, window: Window, explain: bool) -> FlowReport {
    let deployments = scope::attempts(facts, window, DeploymentOutcome::Success);
    let mut runs_by_revision: HashMap<&str, Vec<&PipelineRun>> = HashMap::new();
    for run in &facts.pipeline_runs {
        if let Some(revision) = &run.revision {
            runs_by_revision.entry(revision).or_default().push(run);
        }
    }

    let changes: Vec<FlowChange> = scope::changes_of(facts, &deployments)
        .into_iter()
        .map(|(change, deployment)| {
            let runs = deployment
                .revision
                .as_deref()
                .and_then(|revision| runs_by_revision.get(revision))
                .map_or(&[][..], Vec::as_slice);
            let before: Vec<&PipelineRun> =
                runs.iter().copied().filter(|r| r.queued.is_none_or(|q| q <= deployment.started)).collect();
            trace(change, deployment, &before)
        })
        .collect();

    let stages: Vec<Stage> = StageName::ALL
        .into_iter()
        .map(|name| {
            let samples: Vec<f64> = changes.iter().filter_map(|c| c.stages.get(name)).collect();
            Stage { name, kind: name.kind(), median_seconds: median(&samples), samples: samples.len() }
        })
        .collect();

    let known = |kind: Option<StageKind>| -> f64 {
        stages.iter().filter(|s| kind.is_none_or(|k| s.kind == k)).filter_map(|s| s.median_seconds).sum()
    };
    let total = known(None);
    let share = |kind| (total > 0.0).then(|| known(Some(kind)) / total);

    FlowReport {
        service: service.to_owned(),
        environment: environment.to_owned(),
        from: window.from,
        to: window.to,
        changes: changes.len(),
        flow_efficiency: share(StageKind::Work),
        waiting_share: share(StageKind::Wait),
        stages,
        explain: explain.then_some(FlowExplain { changes }),
    }
}

/// One change's stage durations, from its deployment and the pipeline runs on its revision.
fn trace(change: &ShippedChange, deployment: &Deployment, runs: &[&PipelineRun]) -> FlowChange {
    let queued = runs.iter().filter_map(|r| r.queued).min();
    let started = runs.iter().filter_map(|r| r.started).min();
    let finished = runs.iter().filter_map(|r| r.finished).max();
    let span = |start: Option<Timestamp>, end: Option<Timestamp>| Some(elapsed_seconds(start?, end?));
    FlowChange {
        sha: change.sha.clone(),
        repository: change.repository.clone(),
        deployment_id: deployment.id,
        revision: deployment.revision.clone(),
        pipeline_runs: runs.iter().map(|r| r.key.clone()).collect(),
        stages: StageSeconds {
            commit_to_queued: span(Some(change.commit_time), queued),
            queued_to_started: span(queued, started),
            started_to_finished: span(started, finished),
            finished_to_deploy_started: span(finished, Some(deployment.started)),
            deploy_started_to_finished: span(Some(deployment.started), Some(deployment.finished)),
        },
    }
}
