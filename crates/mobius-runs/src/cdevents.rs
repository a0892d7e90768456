//! The CDEvents of a pipeline run, shared by `mobius run` and the server: `pipelinerun.queued|
//! started|finished` per workflow run, `taskrun.started|finished` per job instance,
//! `artifact.packaged` per uploaded artifact, and `change.merged` for the commits that
//! triggered a server run — so `mobius dora` and `mobius flow` fill in from pipeline runs.
//!
//! Moments are taken from the observer callbacks as they happen; the events are built as JSON
//! and validated with the same parser the API uses before they are appended, so a run never
//! waits on the store and a bug never writes a malformed event. Pipeline runs carry
//! `customData` `{repository, revision, branch}` so the value stream can tie a run to the
//! deployment of its revision (see `mobius_events::cdevents`).

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use mobius_pipelines::engine::{RunObserver, Status, StepReport};
use mobius_pipelines::exec::LogLine;
use mobius_pipelines::workflow::{StepAction, Workflow};
use serde_json::{Value, json};

/// What identifies one workflow run in its events.
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

/// The SBOM URI of `artifact.packaged`, which the schema requires: local runs make no SBOM,
/// so this documented placeholder says so rather than pointing at something invented.
const NO_SBOM: &str = "file:///dev/null";

/// An artifact an `actions/upload-artifact` step uploaded.
struct Packaged {
    name: String,
    digest: String,
    at: Timestamp,
}

/// One job instance as seen by the observer.
struct Task {
    name: String,
    started: Timestamp,
    finished: Option<(Timestamp, Status)>,
}

/// Records the moments of one workflow run while forwarding every callback to `inner`.
pub struct Recorder<'a> {
    inner: &'a mut dyn RunObserver,
    queued: Timestamp,
    started: Option<Timestamp>,
    tasks: Vec<Task>,
    /// Display names of the workflow's `actions/upload-artifact` steps.
    upload_steps: BTreeSet<String>,
    packaged: Vec<Packaged>,
}

impl<'a> Recorder<'a> {
    /// Starts recording a run of `workflow`; the run counts as queued now.
    pub fn new(inner: &'a mut dyn RunObserver, workflow: &Workflow) -> Recorder<'a> {
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
            queued: Timestamp::now(),
            started: None,
            tasks: Vec::new(),
            upload_steps,
            packaged: Vec::new(),
        }
    }

    /// Counts the run as queued at `at` (when it waited before it started).
    pub fn queued_at(mut self, at: Timestamp) -> Self {
        self.queued = at;
        self
    }

    /// The CDEvents (as JSON values) of the run, which ended now with `result`.
    pub fn finish(self, id: &RunIdentity, result: Status) -> Vec<Value> {
        let finished = Timestamp::now();
        let subject_id = format!("{}/{}/{}", id.repository, id.file, id.run_id);
        let event = |ty: &str, at: Timestamp, subject: &str, content: Value| run_event(id, ty, at, subject, content);
        let pipeline = json!({ "pipelineName": id.pipeline_name, "uri": id.uri });
        let mut events = vec![
            event("dev.cdevents.pipelinerun.queued.0.3.0", self.queued, &subject_id, pipeline.clone()),
            // A run whose jobs were all skipped never starts one; it still started.
            event(
                "dev.cdevents.pipelinerun.started.0.3.0",
                self.started.unwrap_or(self.queued),
                &subject_id,
                pipeline.clone(),
            ),
        ];
        for task in &self.tasks {
            let task_id = format!("{subject_id}/{}", task.name);
            let content = json!({ "taskName": task.name, "uri": id.uri, "pipelineRun": { "id": subject_id } });
            events.push(event("dev.cdevents.taskrun.started.0.3.0", task.started, &task_id, content.clone()));
            if let Some((at, status)) = task.finished {
                let content = with_outcome(content, status, &format!("job {} {}", task.name, status_word(status)));
                events.push(event("dev.cdevents.taskrun.finished.0.3.0", at, &task_id, content));
            }
        }
        // `change.id` is required; a repository without commits has no revision to name.
        if let Some(sha) = &id.sha {
            for p in &self.packaged {
                let purl = format!("pkg:generic/{}@{}", p.name, p.digest.replace(':', "%3A"));
                let content = json!({
                    "change": { "id": sha, "source": id.repository },
                    "sbom": { "uri": NO_SBOM },
                });
                events.push(event("dev.cdevents.artifact.packaged.0.3.0", p.at, &purl, content));
            }
        }
        let failed: Vec<&str> = self
            .tasks
            .iter()
            .filter(|t| matches!(t.finished, Some((_, Status::Failure))))
            .map(|t| t.name.as_str())
            .collect();
        let errors = format!("failed jobs: {}", failed.join(", "));
        events.push(event(
            "dev.cdevents.pipelinerun.finished.0.3.0",
            finished,
            &subject_id,
            with_outcome(pipeline, result, &errors),
        ));
        events
    }
}

/// One event of a run, with the run's `customData` when it has a revision.
fn run_event(id: &RunIdentity, ty: &str, at: Timestamp, subject: &str, content: Value) -> Value {
    let mut event = json!({
        "context": {
            "specversion": "0.5.1",
            "id": uuid::Uuid::new_v4().to_string(),
            "source": id.source,
            "type": ty,
            "timestamp": at.to_string(),
        },
        "subject": { "id": subject, "source": id.source, "content": content },
    });
    if let Some(sha) = &id.sha {
        event["customData"] = json!({ "repository": id.repository, "revision": sha, "branch": id.branch });
        event["customDataContentType"] = json!("application/json");
    }
    event
}

/// The events of a run cancelled while it waited (superseded in its concurrency group, or by
/// hand): queued, then finished with outcome `cancel`, without a start.
pub fn never_started(id: &RunIdentity, queued: Timestamp, reason: &str) -> Vec<Value> {
    let subject_id = format!("{}/{}/{}", id.repository, id.file, id.run_id);
    let pipeline = json!({ "pipelineName": id.pipeline_name, "uri": id.uri });
    let mut finished = pipeline.clone();
    finished["outcome"] = json!("cancel");
    finished["errors"] = json!(reason);
    vec![
        run_event(id, "dev.cdevents.pipelinerun.queued.0.3.0", queued, &subject_id, pipeline),
        run_event(id, "dev.cdevents.pipelinerun.finished.0.3.0", Timestamp::now(), &subject_id, finished),
    ]
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

/// `change.merged` for each commit that landed on `branch` (what triggered a run): the commit
/// time is the event's timestamp, and the ids are derived from the content, so seeing the
/// same commits again (a re-poll) appends nothing.
pub fn change_events(repository: &str, repository_uri: &str, branch: &str, commits: &[LandedCommit]) -> Vec<Value> {
    let source = format!("/mobius/server/{repository}");
    commits
        .iter()
        .map(|c| {
            json!({
                "context": {
                    "specversion": "0.5.1",
                    "id": format!("change:{branch}:{}", c.sha),
                    "source": source,
                    "type": "dev.cdevents.change.merged.0.3.0",
                    "timestamp": c.commit_time.to_string(),
                },
                "subject": {
                    "id": c.sha,
                    "source": source,
                    "content": { "repository": { "id": repository, "source": repository_uri } },
                },
                "customData": {
                    "branch": branch,
                    "message": c.subject,
                    "authorTime": c.author_time.to_string(),
                },
                "customDataContentType": "application/json",
            })
        })
        .collect()
}

/// `content` with the CDEvents `outcome` for `status`, and `errors` when it failed.
fn with_outcome(mut content: Value, status: Status, errors: &str) -> Value {
    let outcome = match status {
        Status::Success | Status::Skipped => "success",
        Status::Failure => "failure",
        Status::Cancelled => "cancel",
    };
    if let Value::Object(map) = &mut content {
        map.insert("outcome".into(), json!(outcome));
        if status == Status::Failure {
            map.insert("errors".into(), json!(errors));
        }
    }
    content
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Success => "succeeded",
        Status::Failure => "failed",
        Status::Cancelled => "was cancelled",
        Status::Skipped => "was skipped",
    }
}

impl RunObserver for Recorder<'_> {
    fn job_queued(&mut self, job: &str) {
        self.inner.job_queued(job);
    }

    fn job_started(&mut self, job: &str) {
        let now = Timestamp::now();
        self.started.get_or_insert(now);
        self.tasks.push(Task { name: job.to_owned(), started: now, finished: None });
        self.inner.job_started(job);
    }

    fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        // Jobs skipped or cancelled before starting have no task run to finish.
        if let Some(task) = self.tasks.iter_mut().rev().find(|t| t.name == job && t.finished.is_none()) {
            task.finished = Some((Timestamp::now(), result));
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
            self.packaged.push(Packaged { name: name.to_owned(), digest: digest.to_owned(), at: Timestamp::now() });
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
        let mut recorder = Recorder::new(&mut inner, &workflow);
        recorder.job_queued("a");
        recorder.job_started("a");
        recorder.job_finished("a", Status::Failure, Duration::ZERO);
        recorder.job_finished("b", Status::Skipped, Duration::ZERO);
        let events = recorder.finish(&identity(), Status::Failure);
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
        for e in &events {
            let text = serde_json::to_string(e).expect("json");
            assert!(mobius_events::cdevents::parse(&text, mobius_events::Origin::Internal).is_ok(), "{text}");
        }
        assert_eq!(inner.events.len(), 4, "callbacks are forwarded");
        assert_eq!(events[1]["customData"]["revision"], "abc123", "runs carry their revision");
    }

    #[test]
    fn change_and_cancel_events_are_valid() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let commit = LandedCommit { sha: "a".repeat(40), commit_time: at, author_time: at, subject: "Fix".into() };
        let mut events = change_events("acme/app", "file:///src/app", "main", &[commit]);
        events.extend(never_started(&identity(), at, "superseded by run 8"));
        let parsed = mobius_log::ingest::validate(&events).expect("valid");
        assert_eq!(parsed.len(), 3);
        assert_eq!(events[0]["context"]["id"], format!("change:main:{}", "a".repeat(40)));
        assert_eq!(events[2]["subject"]["content"]["outcome"], "cancel");
    }
}
