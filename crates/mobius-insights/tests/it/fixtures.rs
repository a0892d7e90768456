//! Facts for scenarios, built with as little noise as the scenario allows.

use jiff::{SignedDuration, Timestamp};
use mobius_events::facts::{
    Attribution, ChangeSource, Deployment, DeploymentId, DeploymentOutcome, FactSet, Incident, PipelineRun,
    PipelineRunKind, ShippedChange,
};
use mobius_insights::Window;

pub const SERVICE: &str = "checkout";
pub const ENVIRONMENT: &str = "production";

/// `2024-01-03` (midnight UTC) or a full RFC 3339 instant.
pub fn ts(s: &str) -> Timestamp {
    let full = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_owned() };
    full.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn window(from: &str, to: &str) -> Window {
    Window::new(ts(from), ts(to)).unwrap()
}

/// The revision deployment `id` ships.
pub fn revision(id: DeploymentId) -> String {
    format!("{id:0>4}aaaabbbbccccddddeeeeffff0000111122223333")
}

/// A builder of one service's facts in one environment.
#[derive(Default)]
pub struct Facts(FactSet);

impl Facts {
    pub fn new() -> Facts {
        Facts::default()
    }

    pub fn build(self) -> FactSet {
        self.0
    }

    /// A successful deployment that took five minutes and finished at `finished`.
    pub fn deploy(self, id: DeploymentId, finished: &str) -> Facts {
        self.attempt(id, finished, DeploymentOutcome::Success)
    }

    /// A failed deployment attempt.
    pub fn fail(self, id: DeploymentId, finished: &str) -> Facts {
        self.attempt(id, finished, DeploymentOutcome::Failure)
    }

    fn attempt(mut self, id: DeploymentId, finished: &str, outcome: DeploymentOutcome) -> Facts {
        let finished = ts(finished);
        self.0.deployments.push(Deployment {
            id,
            key: format!("deploy-{id}"),
            service: SERVICE.to_owned(),
            environment: ENVIRONMENT.to_owned(),
            repository: Some("acme/checkout".to_owned()),
            revision: Some(revision(id)),
            artifact_id: None,
            started: finished - SignedDuration::from_mins(5),
            finished,
            outcome,
            rolled_back: None,
            changes_from: ChangeSource::PushStream,
        });
        self
    }

    /// Marks deployment `id` rolled back an hour after it finished.
    pub fn roll_back(mut self, id: DeploymentId) -> Facts {
        let d = self.0.deployments.iter_mut().find(|d| d.id == id).unwrap();
        d.rolled_back = Some(d.finished + SignedDuration::from_hours(1));
        self
    }

    /// A change committed at `committed`, first shipped by deployment `id`.
    pub fn change(mut self, sha: &str, committed: &str, id: DeploymentId) -> Facts {
        self.0.changes.push(ShippedChange {
            repository: "acme/checkout".to_owned(),
            sha: sha.to_owned(),
            commit_time: ts(committed),
            author_time: None,
            message: format!("change {sha}"),
            deployment_id: id,
        });
        self
    }

    /// An incident, attributed to `deployment` by the window rule when there is one.
    pub fn incident(
        mut self,
        key: &str,
        detected: &str,
        resolved: Option<&str>,
        deployment: Option<DeploymentId>,
    ) -> Facts {
        self.0.incidents.push(Incident {
            key: key.to_owned(),
            service: SERVICE.to_owned(),
            environment: ENVIRONMENT.to_owned(),
            title: format!("incident {key}"),
            detected: ts(detected),
            acknowledged: None,
            resolved: resolved.map(ts),
            deployment_id: deployment,
            attribution: match deployment {
                Some(_) => Attribution::Window,
                None => Attribution::Unattributed,
            },
            severity: None,
        });
        self
    }

    /// A pipeline run on deployment `id`'s revision.
    pub fn run(
        mut self,
        key: &str,
        id: DeploymentId,
        queued: Option<&str>,
        started: Option<&str>,
        finished: Option<&str>,
    ) -> Facts {
        self.0.pipeline_runs.push(PipelineRun {
            key: key.to_owned(),
            kind: PipelineRunKind::Run,
            name: "ci".to_owned(),
            repository: Some("acme/checkout".to_owned()),
            revision: Some(revision(id)),
            queued: queued.map(ts),
            started: started.map(ts),
            finished: finished.map(ts),
            outcome: Some("success".to_owned()),
        });
        self
    }
}
