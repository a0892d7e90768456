//! The CDEvents of a pipeline run, for `mobius run` and the server: `pipelinerun.queued|
//! started|finished` per workflow run, `taskrun.started|finished` per job instance,
//! `artifact.packaged` per uploaded artifact, and `change.merged` for the commits that
//! triggered a server run — so `mobius dora` and `mobius flow` fill in from pipeline runs.
//!
//! A run's events carry `customData` `{repository, revision, branch}` when it has a revision,
//! so the value stream can tie the run to the deployment of that revision (see
//! [`crate::cdevents`]). They get random ids: a run happens once. `change.merged` ids derive
//! from the branch and commit, so seeing the same commits again appends nothing.
//!
//! The moments come from whoever watched the run (the server's `Recorder`); the outcome is in
//! CDEvents' words ([`Outcome`]), which that watcher maps its job states to.

use jiff::Timestamp;
use serde::Serialize;

use super::{EmitError, Parts, Ref, build, random_id, stamp};
use crate::envelope::{NewEvent, Origin};

pub const PIPELINERUN_QUEUED: &str = "dev.cdevents.pipelinerun.queued.0.3.0";
pub const PIPELINERUN_STARTED: &str = "dev.cdevents.pipelinerun.started.0.3.0";
pub const PIPELINERUN_FINISHED: &str = "dev.cdevents.pipelinerun.finished.0.3.0";
pub const TASKRUN_STARTED: &str = "dev.cdevents.taskrun.started.0.3.0";
pub const TASKRUN_FINISHED: &str = "dev.cdevents.taskrun.finished.0.3.0";
pub const ARTIFACT_PACKAGED: &str = "dev.cdevents.artifact.packaged.0.3.0";
pub const CHANGE_MERGED: &str = "dev.cdevents.change.merged.0.3.0";

/// The SBOM URI of `artifact.packaged`, which the schema requires: local runs make no SBOM,
/// so this documented placeholder says so rather than pointing at something invented.
pub const NO_SBOM: &str = "file:///dev/null";

/// What identifies one workflow run in its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// `owner/name` (or the directory name): the `github.repository` of the run.
    pub repository: String,
    /// The workflow file, relative to the repository root.
    pub file: String,
    /// The workflow's `name:`, else its file.
    pub pipeline_name: String,
    /// `GITHUB_RUN_ID` of the run.
    pub run_id: u64,
    /// `file://` URI of the workflow file, a stable link to what ran.
    pub uri: String,
    /// The commit checked out (`git rev-parse HEAD`), if there is one.
    pub sha: Option<String>,
    /// The branch the run was for, if any.
    pub branch: Option<String>,
    /// The events' `source`: `/mobius/run/<repository>` for local runs,
    /// `/mobius/server/<repository>` for the server's.
    pub source: String,
}

impl RunIdentity {
    /// The run's subject: `<repository>/<file>/<run id>`.
    pub fn subject(&self) -> String {
        format!("{}/{}/{}", self.repository, self.file, self.run_id)
    }

    /// The subject of the run's job instance `task`.
    pub fn task_subject(&self, task: &str) -> String {
        format!("{}/{task}", self.subject())
    }
}

/// How a run or a job ended, in CDEvents' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Cancel,
    /// It could not run (e.g. it failed before its jobs).
    Error,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineRunContent<'a> {
    pipeline_name: &'a str,
    uri: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskRunContent<'a> {
    task_name: &'a str,
    uri: &'a str,
    pipeline_run: Ref<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a str>,
}

/// `{"id", "source"}`: a change or a repository.
#[derive(Serialize)]
struct SourcedRef<'a> {
    id: &'a str,
    source: &'a str,
}

#[derive(Serialize)]
struct ArtifactPackagedContent<'a> {
    change: SourcedRef<'a>,
    sbom: Sbom,
}

#[derive(Serialize)]
struct Sbom {
    uri: &'static str,
}

#[derive(Serialize)]
struct ChangeMergedContent<'a> {
    repository: SourcedRef<'a>,
}

/// What a run's events say it built.
#[derive(Serialize)]
struct RunCustomData<'a> {
    repository: &'a str,
    revision: &'a str,
    /// `null` when the run was for no branch.
    branch: Option<&'a str>,
}

/// What `change.merged` says beyond the schema (see [`crate::cdevents`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeCustomData<'a> {
    branch: &'a str,
    message: &'a str,
    author_time: String,
}

/// The run was queued at `at`.
pub fn run_queued(run: &RunIdentity, at: Timestamp) -> Result<NewEvent, EmitError> {
    run_event(run, PIPELINERUN_QUEUED, at, &run.subject(), pipeline_content(run, None, None))
}

/// The run started at `at` (its first job started; a run whose jobs were all skipped still
/// started, when it was queued).
pub fn run_started(run: &RunIdentity, at: Timestamp) -> Result<NewEvent, EmitError> {
    run_event(run, PIPELINERUN_STARTED, at, &run.subject(), pipeline_content(run, None, None))
}

/// The run ended at `at` with `outcome`; `errors` says why when it did not succeed (e.g.
/// `failed jobs: build, test`).
pub fn run_finished(
    run: &RunIdentity,
    at: Timestamp,
    outcome: Outcome,
    errors: Option<&str>,
) -> Result<NewEvent, EmitError> {
    run_event(run, PIPELINERUN_FINISHED, at, &run.subject(), pipeline_content(run, Some(outcome), errors))
}

/// A run that ended while it waited — cancelled (superseded in its concurrency group, or by
/// hand; [`Outcome::Cancel`]) or unable to start ([`Outcome::Error`]): queued at `queued`, then
/// finished at `at` with `reason`, without a start.
pub fn run_never_started(
    run: &RunIdentity,
    queued: Timestamp,
    at: Timestamp,
    outcome: Outcome,
    reason: &str,
) -> Result<Vec<NewEvent>, EmitError> {
    Ok(vec![run_queued(run, queued)?, run_finished(run, at, outcome, Some(reason))?])
}

/// The run's job instance `task` started at `at`.
pub fn task_started(run: &RunIdentity, task: &str, at: Timestamp) -> Result<NewEvent, EmitError> {
    let (run_subject, subject) = (run.subject(), run.task_subject(task));
    run_event(run, TASKRUN_STARTED, at, &subject, task_content(run, &run_subject, task, None, None))
}

/// The run's job instance `task` ended at `at` with `outcome`; `errors` says why when it failed
/// (e.g. `job build failed`).
pub fn task_finished(
    run: &RunIdentity,
    task: &str,
    at: Timestamp,
    outcome: Outcome,
    errors: Option<&str>,
) -> Result<NewEvent, EmitError> {
    let (run_subject, subject) = (run.subject(), run.task_subject(task));
    run_event(run, TASKRUN_FINISHED, at, &subject, task_content(run, &run_subject, task, Some(outcome), errors))
}

/// The run uploaded artifact `name` with `digest` (`sha256:<hex>`) at `at`. Its subject is the
/// package URL `pkg:generic/<name>@<digest>`, and it names the run's revision as the change it
/// was built from, which a run without one cannot ([`EmitError::NoRevision`]).
pub fn artifact_packaged(run: &RunIdentity, name: &str, digest: &str, at: Timestamp) -> Result<NewEvent, EmitError> {
    let sha = run.sha.as_deref().ok_or(EmitError::NoRevision { ty: ARTIFACT_PACKAGED })?;
    let purl = format!("pkg:generic/{name}@{}", digest.replace(':', "%3A"));
    let content = ArtifactPackagedContent {
        change: SourcedRef { id: sha, source: &run.repository },
        sbom: Sbom { uri: NO_SBOM },
    };
    run_event(run, ARTIFACT_PACKAGED, at, &purl, content)
}

/// A commit that landed on a branch, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedCommit {
    pub sha: String,
    pub commit_time: Timestamp,
    pub author_time: Timestamp,
    /// First line of the message.
    pub subject: String,
}

/// `commit` landed on `branch` of `repository` (whose clone URI is `repository_uri`): a
/// `change.merged` at the commit time, from `/mobius/server/<repository>`.
pub fn change_merged(
    repository: &str,
    repository_uri: &str,
    branch: &str,
    commit: &LandedCommit,
) -> Result<NewEvent, EmitError> {
    let source = format!("/mobius/server/{repository}");
    let id = format!("change:{branch}:{}", commit.sha);
    let content = ChangeMergedContent { repository: SourcedRef { id: repository, source: repository_uri } };
    let custom = ChangeCustomData { branch, message: &commit.subject, author_time: stamp(commit.author_time) };
    let parts =
        Parts::new(CHANGE_MERGED, id, &source, commit.commit_time, &commit.sha, content).custom_data(custom, true);
    build(parts, Origin::Internal)
}

fn pipeline_content<'a>(
    run: &'a RunIdentity,
    outcome: Option<Outcome>,
    errors: Option<&'a str>,
) -> PipelineRunContent<'a> {
    PipelineRunContent { pipeline_name: &run.pipeline_name, uri: &run.uri, outcome, errors }
}

fn task_content<'a>(
    run: &'a RunIdentity,
    run_subject: &'a str,
    task: &'a str,
    outcome: Option<Outcome>,
    errors: Option<&'a str>,
) -> TaskRunContent<'a> {
    TaskRunContent { task_name: task, uri: &run.uri, pipeline_run: Ref { id: run_subject }, outcome, errors }
}

/// One event of a run, with the run's `customData` when it has a revision.
fn run_event<C: Serialize>(
    run: &RunIdentity,
    ty: &str,
    at: Timestamp,
    subject: &str,
    content: C,
) -> Result<NewEvent, EmitError> {
    let parts = Parts::new(ty, random_id(), &run.source, at, subject, content);
    match &run.sha {
        Some(sha) => {
            let custom = RunCustomData { repository: &run.repository, revision: sha, branch: run.branch.as_deref() };
            build(parts.custom_data(custom, true), Origin::Internal)
        }
        None => build(parts, Origin::Internal),
    }
}
