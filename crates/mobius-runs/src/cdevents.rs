//! The CDEvents of a pipeline run, shared by `mobius run` and the server: `pipelinerun.queued|
//! started|finished` per workflow run, `taskrun.started|finished` per job instance,
//! `artifact.packaged` per uploaded artifact, and `change.merged` for the commits that
//! triggered a server run — so `mobius dora` and `mobius flow` fill in from pipeline runs.
//!
//! The events are built by `mobius_events::emit::pipeline`'s typed constructors from the
//! moments the observer callbacks report. A run never waits on the store for them: `mobius run`
//! records them all when the run ends; the server takes each job's events as the job finishes
//! ([`Recorder::job_events_to`]), and appends them before it stores the job as finished — so
//! nothing is ever reported final before what it caused is in the log.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use mobius_events::NewEvent;
use mobius_events::emit::EmitError;
use mobius_events::emit::pipeline::{self as emit, Outcome};
pub use mobius_events::emit::pipeline::{LandedCommit, RunIdentity};
use mobius_pipelines::engine::{RunObserver, Status, StepReport};
use mobius_pipelines::exec::LogLine;
use mobius_pipelines::workflow::{StepAction, Workflow};

/// An artifact an `actions/upload-artifact` step uploaded.
struct Packaged {
    job: String,
    name: String,
    digest: String,
    at: Timestamp,
}

/// One job instance as seen by the observer.
struct Task {
    name: String,
    started: Timestamp,
    finished: Option<(Timestamp, Status)>,
    /// Its events were handed over when it finished.
    handed_over: bool,
}

/// Where finished jobs' events go as they finish.
pub type JobEvents<'a> = Box<dyn FnMut(Vec<NewEvent>) + 'a>;

/// Records the moments of one workflow run while forwarding every callback to `inner`.
pub struct Recorder<'a> {
    inner: &'a mut dyn RunObserver,
    run: RunIdentity,
    queued: Timestamp,
    started: Option<Timestamp>,
    tasks: Vec<Task>,
    /// Display names of the workflow's `actions/upload-artifact` steps.
    upload_steps: BTreeSet<String>,
    packaged: Vec<Packaged>,
    job_events: Option<JobEvents<'a>>,
}

impl<'a> Recorder<'a> {
    /// Starts recording `run`, a run of `workflow`; it counts as queued now.
    pub fn new(inner: &'a mut dyn RunObserver, workflow: &Workflow, run: RunIdentity) -> Recorder<'a> {
        // Step names as the engine reports them (`name`, else `Run <action>`), so the upload
        // log line is trusted only from an upload step, not from a script that echoes it.
        let upload_steps = workflow
            .jobs
            .iter()
            .flat_map(|j| &j.steps)
            .filter_map(|step| match &step.action {
                StepAction::Uses { action, .. } if action.split('@').next() == Some("actions/upload-artifact") => {
                    Some(step.name.clone().unwrap_or_else(|| format!("Run {action}")))
                }
                _ => None,
            })
            .collect();
        Recorder {
            inner,
            run,
            queued: Timestamp::now(),
            started: None,
            tasks: Vec::new(),
            upload_steps,
            packaged: Vec::new(),
            job_events: None,
        }
    }

    /// Counts the run as queued at `at` (when it waited before it started).
    pub fn queued_at(mut self, at: Timestamp) -> Self {
        self.queued = at;
        self
    }

    /// Hands each job's events (its task run and the artifacts it uploaded) to `to` as the job
    /// finishes, before `inner` hears of it.
    pub fn job_events_to(mut self, to: JobEvents<'a>) -> Self {
        self.job_events = Some(to);
        self
    }

    /// Every artifact the run's upload steps reported so far: `(name, digest)`.
    pub fn uploaded(&self) -> Vec<(String, String)> {
        self.packaged.iter().map(|p| (p.name.clone(), p.digest.clone())).collect()
    }

    /// The events of the run, which ended now with `result`: every event not handed over yet.
    pub fn finish(mut self, result: Status) -> Result<Vec<NewEvent>, EmitError> {
        let run = &self.run;
        // A run whose jobs were all skipped never starts one; it still started.
        let mut events =
            vec![emit::run_queued(run, self.queued)?, emit::run_started(run, self.started.unwrap_or(self.queued))?];
        for task in self.tasks.iter().filter(|t| !t.handed_over) {
            events.extend(task_events(run, task, &self.packaged)?);
        }
        let failed: Vec<&str> = self
            .tasks
            .iter()
            .filter(|t| matches!(t.finished, Some((_, Status::Failure))))
            .map(|t| t.name.as_str())
            .collect();
        let errors = format!("failed jobs: {}", failed.join(", "));
        let errors = (result == Status::Failure).then_some(errors.as_str());
        events.push(emit::run_finished(run, Timestamp::now(), outcome(result), errors)?);
        self.packaged.clear();
        Ok(events)
    }
}

/// A job's task run and the artifacts it uploaded (those need the run's revision).
fn task_events(run: &RunIdentity, task: &Task, packaged: &[Packaged]) -> Result<Vec<NewEvent>, EmitError> {
    let mut events = vec![emit::task_started(run, &task.name, task.started)?];
    if let Some((at, status)) = task.finished {
        let errors = format!("job {} failed", task.name);
        let errors = (status == Status::Failure).then_some(errors.as_str());
        events.push(emit::task_finished(run, &task.name, at, outcome(status), errors)?);
    }
    if run.sha.is_some() {
        for p in packaged.iter().filter(|p| p.job == task.name) {
            events.push(emit::artifact_packaged(run, &p.name, &p.digest, p.at)?);
        }
    }
    Ok(events)
}

/// The CDEvents outcome of how a run or job ended.
pub fn outcome(status: Status) -> Outcome {
    match status {
        Status::Success | Status::Skipped => Outcome::Success,
        Status::Failure => Outcome::Failure,
        Status::Cancelled => Outcome::Cancel,
    }
}

/// The events of a run that ended while it waited: cancelled (superseded in its concurrency
/// group, or by hand), or unable to start ([`Outcome::Error`]).
pub fn never_started(
    run: &RunIdentity,
    queued: Timestamp,
    outcome: Outcome,
    reason: &str,
) -> Result<Vec<NewEvent>, EmitError> {
    emit::run_never_started(run, queued, Timestamp::now(), outcome, reason)
}

/// `change.merged` for each commit that landed on `branch` (what triggered a run): the commit
/// time is the event's timestamp, and the ids are derived from the content, so seeing the
/// same commits again (a re-poll) appends nothing.
pub fn change_events(
    repository: &str,
    repository_uri: &str,
    branch: &str,
    commits: &[LandedCommit],
) -> Result<Vec<NewEvent>, EmitError> {
    commits.iter().map(|c| emit::change_merged(repository, repository_uri, branch, c)).collect()
}

impl RunObserver for Recorder<'_> {
    fn job_queued(&mut self, job: &str) {
        self.inner.job_queued(job);
    }

    fn job_waiting(&mut self, job: &str, environment: &str) {
        self.inner.job_waiting(job, environment);
    }

    fn job_started(&mut self, job: &str) {
        let now = Timestamp::now();
        self.started.get_or_insert(now);
        self.tasks.push(Task { name: job.to_owned(), started: now, finished: None, handed_over: false });
        self.inner.job_started(job);
    }

    fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        // Jobs skipped or cancelled before starting have no task run to finish.
        if let Some(task) = self.tasks.iter_mut().rev().find(|t| t.name == job && t.finished.is_none()) {
            task.finished = Some((Timestamp::now(), result));
            if let Some(to) = &mut self.job_events {
                match task_events(&self.run, task, &self.packaged) {
                    Ok(events) => {
                        task.handed_over = true;
                        to(events);
                    }
                    // Left for `finish`, which reports it.
                    Err(e) => tracing::error!(error = %e, job, "a job's events do not build"),
                }
            }
        }
        self.inner.job_finished(job, result, duration);
    }

    fn step_started(&mut self, job: &str, step: &str) {
        self.inner.step_started(job, step);
    }

    fn step_finished(&mut self, job: &str, step: &StepReport) {
        self.inner.step_finished(job, step);
    }

    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        // The step's `artifact-digest` output is not reported to observers; the upload
        // action's own line carries the same name and digest.
        if self.upload_steps.contains(step)
            && let Some((name, digest)) = uploaded(&line.text)
        {
            self.packaged.push(Packaged {
                job: job.to_owned(),
                name: name.to_owned(),
                digest: digest.to_owned(),
                at: Timestamp::now(),
            });
        }
        self.inner.log_line(job, step, line);
    }
}

/// Name and digest from the upload action's ``uploaded artifact `NAME`: N file(s), digest D``.
fn uploaded(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("uploaded artifact `")?;
    let (name, rest) = rest.split_once("`: ")?;
    let digest = rest.rsplit_once(", digest ")?.1;
    (digest.starts_with("sha256:") && !name.is_empty()).then_some((name, digest))
}

#[cfg(test)]
mod tests {
    use mobius_pipelines::engine::RecordingObserver;

    use super::*;

    fn identity() -> RunIdentity {
        RunIdentity {
            repository: "acme/app".into(),
            file: ".github/workflows/ci.yml".into(),
            pipeline_name: "CI".into(),
            run_id: 7,
            uri: "file:///src/.github/workflows/ci.yml".into(),
            sha: Some("abc123".into()),
            branch: Some("main".into()),
            source: "/mobius/run/acme/app".into(),
        }
    }

    #[test]
    fn upload_lines_give_name_and_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let line = format!("uploaded artifact `dist`: 2 file(s), digest {digest}");
        assert_eq!(uploaded(&line), Some(("dist", digest.as_str())));
        assert_eq!(uploaded("uploaded artifact `x`: 1 file(s), digest md5:1"), None);
        assert_eq!(uploaded("something else"), None);
    }

    #[test]
    fn a_failed_run_yields_valid_events_in_order() {
        let mut inner = RecordingObserver::default();
        let workflow = mobius_pipelines::workflow::parse(
            "ci.yml",
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: true\n",
        )
        .expect("workflow");
        let mut recorder = Recorder::new(&mut inner, &workflow, identity());
        recorder.job_queued("a");
        recorder.job_started("a");
        recorder.job_finished("a", Status::Failure, Duration::ZERO);
        recorder.job_finished("b", Status::Skipped, Duration::ZERO);
        let events: Vec<serde_json::Value> =
            recorder.finish(Status::Failure).unwrap().iter().map(|e| serde_json::from_str(&e.raw).unwrap()).collect();
        let types: Vec<&str> = events.iter().filter_map(|e| e["context"]["type"].as_str()).collect();
        assert_eq!(
            types,
            [
                "dev.cdevents.pipelinerun.queued.0.3.0",
                "dev.cdevents.pipelinerun.started.0.3.0",
                "dev.cdevents.taskrun.started.0.3.0",
                "dev.cdevents.taskrun.finished.0.3.0",
                "dev.cdevents.pipelinerun.finished.0.3.0",
            ]
        );
        assert_eq!(events[4]["subject"]["id"], "acme/app/.github/workflows/ci.yml/7");
        assert_eq!(events[4]["subject"]["content"]["outcome"], "failure");
        assert_eq!(events[4]["subject"]["content"]["errors"], "failed jobs: a");
        assert_eq!(events[3]["subject"]["content"]["pipelineRun"]["id"], "acme/app/.github/workflows/ci.yml/7");
        assert_eq!(inner.events.len(), 4, "callbacks are forwarded");
        assert_eq!(events[1]["customData"]["revision"], "abc123", "runs carry their revision");
    }

    #[test]
    fn change_and_cancel_events_are_valid() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let commit = LandedCommit { sha: "a".repeat(40), commit_time: at, author_time: at, subject: "Fix".into() };
        let mut events = change_events("acme/app", "file:///src/app", "main", &[commit]).unwrap();
        events.extend(never_started(&identity(), at, Outcome::Cancel, "superseded by run 8").unwrap());
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].id, format!("change:main:{}", "a".repeat(40)));
        let finished: serde_json::Value = serde_json::from_str(&events[2].raw).unwrap();
        assert_eq!(finished["subject"]["content"]["outcome"], "cancel");
    }

    /// On the server a job's events are handed over as it finishes, before the observer hears
    /// of it, and the run's own events come at the end: nothing is twice, nothing missing.
    #[test]
    fn a_job_s_events_come_before_its_end_is_observed() {
        let workflow = mobius_pipelines::workflow::parse(
            "ci.yml",
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/upload-artifact@v4\n        with: {name: dist, path: x}\n",
        )
        .expect("workflow");
        let digest = format!("sha256:{}", "b".repeat(64));
        let mut inner = RecordingObserver::default();
        let mut handed = Vec::new();
        let events = {
            let mut recorder =
                Recorder::new(&mut inner, &workflow, identity()).job_events_to(Box::new(|events| handed.push(events)));
            recorder.job_started("a");
            let text = format!("uploaded artifact `dist`: 1 file(s), digest {digest}");
            let line =
                LogLine { at: std::time::SystemTime::now(), stream: mobius_pipelines::exec::Stream::Stdout, text };
            recorder.log_line("a", "Run actions/upload-artifact@v4", &line);
            recorder.job_finished("a", Status::Success, Duration::ZERO);
            recorder.finish(Status::Success).unwrap()
        };
        let types = |events: &[NewEvent]| events.iter().map(|e| e.ty.clone()).collect::<Vec<_>>();
        assert_eq!(handed.len(), 1);
        assert_eq!(
            types(&handed[0]),
            [emit::TASKRUN_STARTED, emit::TASKRUN_FINISHED, emit::ARTIFACT_PACKAGED],
            "the job's task run and its artifact, as it finished"
        );
        assert_eq!(types(&events), [emit::PIPELINERUN_QUEUED, emit::PIPELINERUN_STARTED, emit::PIPELINERUN_FINISHED]);
    }
}
