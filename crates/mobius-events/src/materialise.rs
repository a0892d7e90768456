//! Folding observations into facts, inside the store's write transaction.
//!
//! The rules live here, once, for every source and every backend: which changes a deployment
//! shipped, which deployment a rollback failed, which deployment an incident is attributed to.
//! Backends implement [`FactTxn`], a narrow port of reads and writes over their own tables;
//! this module never sees SQL.
//!
//! Events are applied in arrival order. The one out-of-order case handled explicitly is an
//! incident that arrives before the deployment that caused it: inserting a deployment
//! re-attributes the incidents it could explain.

use jiff::{SignedDuration, Timestamp};

use crate::facts::{Attribution, ChangeSource, Deployment, DeploymentId, Incident};
use crate::observation::{
    CauseHint, Commit, DeploymentObserved, DeploymentOutcome, IncidentObserved, Merge, Observation,
    PipelineRunObserved, Push, RollbackObserved,
};

/// An error from the backend behind [`FactTxn`]; its message is the backend's.
pub type FactError = Box<dyn std::error::Error + Send + Sync>;
type R<T> = Result<T, FactError>;

/// Where a commit sits in a branch's push stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    pub repository: String,
    pub branch: String,
    /// Monotonic within the branch: later pushes, later positions.
    pub position: i64,
}

/// A deployment about to be inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeployment<'a> {
    pub observed: &'a DeploymentObserved,
    pub repository: Option<String>,
    pub revision: Option<String>,
    pub changes_from: ChangeSource,
}

/// The reads and writes materialisation needs, implemented by each storage backend over its
/// open write transaction.
pub trait FactTxn {
    /// Records a commit (first report wins).
    fn insert_change(&mut self, repository: &str, commit: &Commit) -> R<()>;
    /// Appends commits to the end of a branch's push stream, in order.
    fn append_push(&mut self, repository: &str, branch: &str, shas: &[&str]) -> R<()>;
    /// The latest stream position of a commit, in `repository` or in any repository.
    fn stream_position(&mut self, repository: Option<&str>, sha: &str) -> R<Option<StreamPosition>>;
    /// Commits on a branch's stream with `after < position <= upto`, in stream order.
    fn stream_between(&mut self, repository: &str, branch: &str, after: Option<i64>, upto: i64) -> R<Vec<String>>;
    fn record_merge(&mut self, merge: &Merge) -> R<()>;
    fn merge(&mut self, repository: &str, merge_sha: &str) -> R<Option<Merge>>;
    /// [`FactTxn::merge`] of each of `shas`, in their order: a backend for which each lookup is
    /// a round trip answers them all in one.
    fn merges(&mut self, repository: &str, shas: &[String]) -> R<Vec<Option<Merge>>> {
        shas.iter().map(|sha| self.merge(repository, sha)).collect()
    }
    fn record_artifact(&mut self, artifact_id: &str, repository: Option<&str>, revision: &str) -> R<()>;
    /// `(repository, revision)` an artifact was built from.
    fn artifact_revision(&mut self, artifact_id: &str) -> R<Option<(Option<String>, String)>>;

    fn deployment_exists(&mut self, key: &str) -> R<bool>;
    fn insert_deployment(&mut self, deployment: &NewDeployment<'_>) -> R<DeploymentId>;
    /// The latest successful deployment of the service to the environment finished at or
    /// before `at`.
    fn last_success(&mut self, service: &str, environment: &str, at: Timestamp) -> R<Option<Deployment>>;
    /// Associates commits with a deployment unless an earlier deployment of the same service
    /// to the same environment already shipped them.
    fn ship(
        &mut self,
        deployment: DeploymentId,
        service: &str,
        environment: &str,
        repository: &str,
        shas: &[String],
    ) -> R<()>;
    fn mark_rolled_back(&mut self, deployment: DeploymentId, at: Timestamp) -> R<()>;
    /// Records a rollback; `false` if its key was seen before.
    fn record_rollback(&mut self, rollback: &RollbackObserved, failed: Option<DeploymentId>) -> R<bool>;
    /// The latest successful deployment of `artifact_id` finished at or before `at`.
    fn deployment_of_artifact(
        &mut self,
        service: &str,
        environment: &str,
        artifact_id: &str,
        at: Timestamp,
    ) -> R<Option<DeploymentId>>;
    /// The deployment that first shipped a commit (`sha` may be abbreviated, ≥ 7 hex digits).
    fn deployment_shipping(&mut self, service: &str, environment: &str, sha: &str) -> R<Option<DeploymentId>>;

    fn incident(&mut self, key: &str) -> R<Option<(Incident, Option<CauseHint>)>>;
    fn upsert_incident(&mut self, incident: &Incident, cause: Option<&CauseHint>) -> R<()>;
    /// Incidents of a service and environment detected in `[from, to]` that an explicit link
    /// does not already attribute.
    fn incidents_open_to_attribution(
        &mut self,
        service: &str,
        environment: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> R<Vec<(Incident, Option<CauseHint>)>>;

    /// Merges a pipeline run's state into what is known (earliest times win for queued and
    /// started, the latest report wins for finished and outcome).
    fn upsert_pipeline_run(&mut self, run: &PipelineRunObserved) -> R<()>;
}

/// Commit ancestry from a local clone, when the repository is registered.
pub trait Ancestry {
    /// Commits reachable from `to` but not from `from`, oldest first; `None` when the
    /// repository is not available locally or does not know the revisions.
    fn commits_between(&self, repository: &str, from: Option<&str>, to: &str) -> Option<Vec<Commit>>;
}

/// No local repositories: every deployment falls back to the push stream.
pub struct NoAncestry;

impl Ancestry for NoAncestry {
    fn commits_between(&self, _: &str, _: Option<&str>, _: &str) -> Option<Vec<Commit>> {
        None
    }
}

/// Settings that shape materialisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// How long after a deployment an incident is still blamed on it (default 24 h).
    pub attribution_window: SignedDuration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { attribution_window: SignedDuration::from_hours(24) }
    }
}

/// Applies one event's observations.
pub fn apply(txn: &mut dyn FactTxn, ancestry: &dyn Ancestry, rules: &Rules, observations: &[Observation]) -> R<()> {
    for observation in observations {
        match observation {
            Observation::Push(push) => apply_push(txn, push)?,
            Observation::Merge(merge) => txn.record_merge(merge)?,
            Observation::Artifact(a) => txn.record_artifact(&a.artifact_id, a.repository.as_deref(), &a.revision)?,
            Observation::Deployment(d) => apply_deployment(txn, ancestry, rules, d)?,
            Observation::Rollback(r) => apply_rollback(txn, r)?,
            Observation::Incident(i) => apply_incident(txn, rules, i)?,
            Observation::PipelineRun(run) => txn.upsert_pipeline_run(run)?,
        }
    }
    Ok(())
}

fn apply_push(txn: &mut dyn FactTxn, push: &Push) -> R<()> {
    for commit in &push.commits {
        txn.insert_change(&push.repository, commit)?;
    }
    let shas: Vec<&str> = push.commits.iter().map(|c| c.sha.as_str()).collect();
    if !shas.is_empty() {
        txn.append_push(&push.repository, &push.branch, &shas)?;
    }
    Ok(())
}

fn apply_deployment(txn: &mut dyn FactTxn, ancestry: &dyn Ancestry, rules: &Rules, d: &DeploymentObserved) -> R<()> {
    if txn.deployment_exists(&d.key)? {
        return Ok(());
    }
    let mut repository = d.repository.clone();
    let mut revision = d.revision.clone();
    if let (None, Some(artifact)) = (&revision, &d.artifact_id)
        && let Some((repo, rev)) = txn.artifact_revision(artifact)?
    {
        repository = repository.or(repo);
        revision = Some(rev);
    }
    if d.outcome == DeploymentOutcome::Failure {
        let new = NewDeployment { observed: d, repository, revision, changes_from: ChangeSource::Unknown };
        txn.insert_deployment(&new)?;
        return Ok(());
    }

    let previous = txn.last_success(&d.service, &d.environment, d.finished)?;
    let shipped = revision
        .as_deref()
        .map(|rev| changes_shipped(txn, ancestry, repository.as_deref(), previous.as_ref(), rev))
        .transpose()?;
    let (changes_from, repo_and_shas) = match shipped {
        Some(Some((source, repo, shas))) => (source, Some((repo, shas))),
        _ => (ChangeSource::Unknown, None),
    };
    if repository.is_none() {
        repository = repo_and_shas.as_ref().map(|(repo, _)| repo.clone());
    }
    let new = NewDeployment { observed: d, repository, revision, changes_from };
    let id = txn.insert_deployment(&new)?;
    if let Some((repo, shas)) = repo_and_shas {
        let shas = expand_merges(txn, &repo, shas)?;
        txn.ship(id, &d.service, &d.environment, &repo, &shas)?;
    }
    reattribute_after_deployment(txn, rules, d)?;
    Ok(())
}

type Shipped = (ChangeSource, String, Vec<String>);

/// The commits that reached `revision` since the previous successful deployment.
fn changes_shipped(
    txn: &mut dyn FactTxn,
    ancestry: &dyn Ancestry,
    repository: Option<&str>,
    previous: Option<&Deployment>,
    revision: &str,
) -> R<Option<Shipped>> {
    let from = previous.and_then(|p| p.revision.as_deref());
    if let Some(repo) = repository
        && let Some(commits) = ancestry.commits_between(repo, from, revision)
    {
        for commit in &commits {
            txn.insert_change(repo, commit)?;
        }
        let shas = commits.into_iter().map(|c| c.sha).collect();
        return Ok(Some((ChangeSource::GitAncestry, repo.to_owned(), shas)));
    }
    let Some(head) = txn.stream_position(repository, revision)? else {
        return Ok(None);
    };
    // The previous revision bounds the range only if it travelled on the same branch.
    let after = match from {
        Some(prev) => txn
            .stream_position(Some(&head.repository), prev)?
            .filter(|p| p.branch == head.branch && p.position <= head.position)
            .map(|p| p.position),
        None => None,
    };
    let shas = txn.stream_between(&head.repository, &head.branch, after, head.position)?;
    Ok(Some((ChangeSource::PushStream, head.repository, shas)))
}

/// A squash or merge commit stands for the commits pushed to the merged branch: count them
/// all, so lead time starts at the first commit of the work, not at the merge.
fn expand_merges(txn: &mut dyn FactTxn, repository: &str, shas: Vec<String>) -> R<Vec<String>> {
    let merges = txn.merges(repository, &shas)?;
    let mut out = Vec::with_capacity(shas.len());
    for (sha, merge) in shas.into_iter().zip(merges) {
        if let Some(merge) = merge {
            out.extend(txn.stream_between(repository, &merge.source_branch, None, i64::MAX)?);
        }
        out.push(sha);
    }
    Ok(out)
}

fn apply_rollback(txn: &mut dyn FactTxn, r: &RollbackObserved) -> R<()> {
    let failed = txn.last_success(&r.service, &r.environment, r.at)?;
    // Rolling back *to* an artifact fails the deployment that replaced it, not itself.
    let failed =
        failed.filter(|d| d.rolled_back.is_none() && (r.artifact_id.is_none() || d.artifact_id != r.artifact_id));
    let failed_id = failed.as_ref().map(|d| d.id);
    if txn.record_rollback(r, failed_id)?
        && let Some(id) = failed_id
    {
        txn.mark_rolled_back(id, r.at)?;
    }
    Ok(())
}

fn apply_incident(txn: &mut dyn FactTxn, rules: &Rules, o: &IncidentObserved) -> R<()> {
    let existing = txn.incident(&o.key)?;
    let (mut incident, mut cause) = match existing {
        Some(found) => found,
        None => {
            let Some(detected) = o.detected.or(o.acknowledged).or(o.resolved) else {
                return Ok(());
            };
            let incident = Incident {
                key: o.key.clone(),
                service: o.service.clone(),
                environment: o.environment.clone(),
                title: o.title.clone(),
                detected,
                acknowledged: None,
                resolved: None,
                deployment_id: None,
                attribution: Attribution::Unattributed,
                severity: None,
            };
            (incident, None)
        }
    };
    if let Some(detected) = o.detected {
        incident.detected = incident.detected.min(detected);
    }
    if !o.title.is_empty() {
        incident.title = o.title.clone();
    }
    if o.acknowledged.is_some() && incident.acknowledged.is_none() {
        incident.acknowledged = o.acknowledged;
    }
    if o.reopened {
        incident.resolved = None;
    }
    if o.resolved.is_some() {
        incident.resolved = o.resolved;
    }
    if o.cause.is_some() {
        cause = o.cause.clone();
    }
    if o.severity.is_some() {
        incident.severity.clone_from(&o.severity);
    }
    attribute(txn, rules, &mut incident, cause.as_ref())?;
    txn.upsert_incident(&incident, cause.as_ref())
}

/// Explicit link, else the attribution window, else unattributed.
fn attribute(txn: &mut dyn FactTxn, rules: &Rules, incident: &mut Incident, cause: Option<&CauseHint>) -> R<()> {
    let (service, env) = (incident.service.clone(), incident.environment.clone());
    let explicit = match cause {
        Some(CauseHint::Artifact { artifact_id }) => txn
            .deployment_of_artifact(&service, &env, artifact_id, incident.detected)?
            .map(|id| (id, Attribution::ExplicitArtifact)),
        Some(CauseHint::Commit { sha }) => {
            txn.deployment_shipping(&service, &env, sha)?.map(|id| (id, Attribution::ExplicitCommit))
        }
        None => None,
    };
    let (deployment, attribution) = match explicit {
        Some((id, how)) => (Some(id), how),
        None => match txn.last_success(&service, &env, incident.detected)? {
            Some(d) if incident.detected.duration_since(d.finished) <= rules.attribution_window => {
                (Some(d.id), Attribution::Window)
            }
            _ => (None, Attribution::Unattributed),
        },
    };
    incident.deployment_id = deployment;
    incident.attribution = attribution;
    Ok(())
}

fn reattribute_after_deployment(txn: &mut dyn FactTxn, rules: &Rules, d: &DeploymentObserved) -> R<()> {
    let until = d.finished.checked_add(rules.attribution_window).unwrap_or(Timestamp::MAX);
    for (mut incident, cause) in txn.incidents_open_to_attribution(&d.service, &d.environment, d.finished, until)? {
        let before = (incident.deployment_id, incident.attribution);
        attribute(txn, rules, &mut incident, cause.as_ref())?;
        if before != (incident.deployment_id, incident.attribution) {
            txn.upsert_incident(&incident, cause.as_ref())?;
        }
    }
    Ok(())
}
