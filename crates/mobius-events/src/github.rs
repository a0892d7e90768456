//! GitHub webhooks: `X-Hub-Signature-256` verification and translation into observations.
//!
//! Every verified delivery is stored as a custom CDEvent (`dev.cdeventsx.github-<event>.
//! <action>.0.1.0`) with its body kept verbatim; the events the measurements need also yield
//! observations:
//!
//! | event | observation |
//! |---|---|
//! | `push` to a branch | [`Push`] of every commit in the payload |
//! | `pull_request` closed and merged | [`Merge`], so a squash merge stands for the branch's commits |
//! | `deployment_status` success, failure or error | [`DeploymentObserved`] |
//! | `workflow_run`, `workflow_job` | [`PipelineRunObserved`] |
//! | `issues` labelled `incident` | [`IncidentObserved`], linked by `root cause: <sha>` |
//!
//! Event ids are derived from content, not from `X-GitHub-Delivery`: GitHub gives a redelivery
//! a new delivery id, and the log must still see it as the same event. Events stored raw have
//! no content to derive one from: theirs is the delivery id with the body's digest
//! (`<delivery>:sha256:<hex>`), so a different body under a replayed delivery id is not taken
//! for a duplicate.

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

use crate::envelope::{NewEvent, Origin};
use crate::observation::{
    Commit, DeploymentObserved, DeploymentOutcome, Merge, Observation, PipelineRunKind, PipelineRunObserved, Push,
};
use crate::payload::{
    IssueIncident, Object, body_digest, custom_type, first_line, issue_incident, json, severity_label, text,
};
use crate::webhook::{Webhook, WebhookError, checked};

const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Checks `X-Hub-Signature-256` (`sha256=<hex HMAC-SHA256 of the body>`) in constant time.
///
/// An empty secret is refused as [`WebhookError::NotConfigured`]: anyone can compute an HMAC
/// with an empty key, so accepting it would accept everything.
pub fn verify_signature(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NotConfigured { source_name: "GitHub" });
    }
    let header = header.ok_or(WebhookError::MissingHeader { header: SIGNATURE_HEADER })?;
    let signature = header.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    // `verify_slice` compares in constant time and refuses a signature of the wrong length.
    match signature {
        Some(signature) if mac.verify_slice(&signature).is_ok() => Ok(()),
        _ => Err(WebhookError::BadSignature { header: SIGNATURE_HEADER }),
    }
}

/// Translates a verified delivery. `event` is `X-GitHub-Event`, `delivery` is
/// `X-GitHub-Delivery`.
pub fn translate(event: &str, delivery: Option<&str>, body: &[u8]) -> Result<Webhook, WebhookError> {
    let raw = text(body)?;
    let value = json(raw)?;
    let root = Object::root(&value)?;
    if event == "ping" {
        return Ok(Webhook::Ping);
    }
    let action = root.opt_str("action")?.unwrap_or("received");
    let full_name = root.opt_object("repository")?.map(|r| r.str("full_name")).transpose()?;

    let found = match reader(event) {
        Some(read) => read(&root, action, &Repository::of(&root)?)?,
        None => Found {
            // The delivery id alone would make a different body under a replayed id a duplicate.
            id: delivery
                .filter(|d| !d.is_empty())
                .map_or_else(|| body_digest(body), |d| format!("{d}:{}", body_digest(body))),
            subject: full_name.unwrap_or(event).to_owned(),
            // Most event objects carry their own times (check_run, release, deployment, …).
            timestamp: root.opt_object(event).ok().flatten().and_then(|o| {
                o.first_time_lenient(&["updated_at", "completed_at", "published_at", "started_at", "created_at"])
            }),
            observations: Vec::new(),
        },
    };
    checked(NewEvent {
        id: found.id,
        source: full_name.map_or_else(|| "github".to_owned(), |n| format!("github:{n}")),
        ty: custom_type("github", event, action),
        subject: found.subject,
        timestamp: found.timestamp.unwrap_or_else(Timestamp::now),
        origin: Origin::Github,
        raw: raw.to_owned(),
        observations: found.observations,
    })
}

/// Reads one event type's payload; `action` is the payload's (or `received`).
type Reader = fn(&Object<'_>, &str, &Repository<'_>) -> Result<Found, WebhookError>;

/// The reader of an event type the measurements use; other events are stored raw.
fn reader(event: &str) -> Option<Reader> {
    Some(match event {
        "push" => push,
        "pull_request" => pull_request,
        "deployment_status" => deployment_status,
        "workflow_run" => workflow_run,
        "workflow_job" => workflow_job,
        "issues" => issues,
        _ => return None,
    })
}

/// What one event type's reader found in a payload.
struct Found {
    id: String,
    subject: String,
    /// When it happened, if the payload says.
    timestamp: Option<Timestamp>,
    observations: Vec<Observation>,
}

/// The repository every event the measurements read belongs to.
struct Repository<'a> {
    /// `owner/name`: the repository key.
    full_name: &'a str,
    /// The service a deployment or incident belongs to.
    name: &'a str,
    object: Object<'a>,
}

impl<'a> Repository<'a> {
    fn of(root: &Object<'a>) -> Result<Repository<'a>, WebhookError> {
        let object = root.object("repository")?;
        Ok(Repository { full_name: object.str("full_name")?, name: object.str("name")?, object })
    }
}

fn push(root: &Object<'_>, _action: &str, repo: &Repository<'_>) -> Result<Found, WebhookError> {
    let git_ref = root.str("ref")?;
    let after = root.id("after")?;
    let deleted = root.opt_bool("deleted")?.unwrap_or(false);
    let commits = root
        .objects("commits")?
        .iter()
        .map(|c| {
            Ok(Commit {
                sha: c.id("id")?,
                // GitHub's `timestamp` is the commit's; the author date is not in the payload.
                author_time: None,
                commit_time: c.time("timestamp")?,
                message: first_line(c.opt_str("message")?.unwrap_or_default()),
            })
        })
        .collect::<Result<Vec<_>, WebhookError>>()?;
    let head_time = root.opt_object("head_commit")?.map(|h| h.time("timestamp")).transpose()?;
    // Deletions carry no commit at all; `pushed_at` (epoch seconds in push payloads) is then
    // the only time GitHub gives.
    let pushed_at = || {
        let seconds = repo.object.get("pushed_at")?.as_i64()?;
        Timestamp::from_second(seconds).ok().filter(|at| crate::limits::in_range(*at))
    };
    let timestamp = head_time.or_else(|| commits.last().map(|c| c.commit_time)).or_else(pushed_at);

    let observations = match git_ref.strip_prefix("refs/heads/") {
        Some(branch) if !deleted && !commits.is_empty() => {
            vec![Observation::Push(Push { repository: repo.full_name.to_owned(), branch: branch.to_owned(), commits })]
        }
        // Tags are not changes, and a branch deletion or an empty push brings none.
        _ => Vec::new(),
    };
    Ok(Found { id: format!("push:{git_ref}:{after}"), subject: repo.full_name.to_owned(), timestamp, observations })
}

fn pull_request(root: &Object<'_>, action: &str, repo: &Repository<'_>) -> Result<Found, WebhookError> {
    let pr = root.object("pull_request")?;
    let id = pr.id("id")?;
    let number = pr.id("number")?;
    let updated_at = pr.time("updated_at")?;
    let mut observations = Vec::new();
    if action == "closed" && pr.opt_bool("merged")? == Some(true) {
        observations.push(Observation::Merge(Merge {
            repository: repo.full_name.to_owned(),
            merge_sha: pr.id("merge_commit_sha")?,
            source_branch: pr.object("head")?.str("ref")?.to_owned(),
            target_branch: pr.object("base")?.str("ref")?.to_owned(),
            merged_at: pr.time("merged_at")?,
        }));
    }
    Ok(Found {
        id: format!("pull_request:{id}:{action}:{updated_at}"),
        subject: format!("{}#{number}", repo.full_name),
        timestamp: Some(updated_at),
        observations,
    })
}

fn deployment_status(root: &Object<'_>, _action: &str, repo: &Repository<'_>) -> Result<Found, WebhookError> {
    let status = root.object("deployment_status")?;
    let deployment = root.object("deployment")?;
    let status_id = status.id("id")?;
    let state = status.str("state")?;
    let deployment_id = deployment.id("id")?;
    let sha = deployment.id("sha")?;
    // The status names the environment since 2021; older deliveries only have the
    // deployment's.
    let environment = match status.opt_str("environment")?.filter(|e| !e.is_empty()) {
        Some(environment) => environment,
        None => deployment.str("environment")?,
    };
    let started = deployment.time("created_at")?;
    // A status is created once, when the deployment reached that state.
    let finished = match status.opt_time("created_at")? {
        Some(at) => at,
        None => status.time("updated_at")?,
    };

    let outcome = match state {
        "success" => Some(DeploymentOutcome::Success),
        "failure" | "error" => Some(DeploymentOutcome::Failure),
        // pending, queued, in_progress, inactive: not an attempt that finished.
        _ => None,
    };
    let base_key = format!("github:{}:deployment:{deployment_id}", repo.full_name);
    let observations = outcome
        .map(|outcome| {
            // A deployment can fail and later succeed; each failed status is its own attempt,
            // while the success keeps the deployment's key.
            let key = match outcome {
                DeploymentOutcome::Success => base_key.clone(),
                DeploymentOutcome::Failure => format!("{base_key}:failed:{status_id}"),
            };
            Observation::Deployment(DeploymentObserved {
                key,
                service: repo.name.to_owned(),
                environment: environment.to_owned(),
                repository: Some(repo.full_name.to_owned()),
                revision: Some(sha),
                artifact_id: None,
                started,
                finished,
                outcome,
            })
        })
        .into_iter()
        .collect();
    Ok(Found {
        id: format!("deployment_status:{status_id}"),
        subject: repo.full_name.to_owned(),
        timestamp: Some(status.opt_time("updated_at")?.unwrap_or(finished)),
        observations,
    })
}

/// A check conclusion in CDEvents' outcome words.
fn outcome(conclusion: Option<&str>) -> String {
    match conclusion {
        Some("success") => "success",
        Some("failure" | "timed_out" | "startup_failure") => "failure",
        Some("cancelled") => "cancel",
        // neutral, skipped, stale, action_required, or none at all.
        _ => "error",
    }
    .to_owned()
}

fn workflow_run(root: &Object<'_>, action: &str, repo: &Repository<'_>) -> Result<Found, WebhookError> {
    let run = root.object("workflow_run")?;
    let id = run.id("id")?;
    // Re-runs keep the run id; `run_attempt` (absent before 2021) tells them apart.
    let attempt = run.opt_id("run_attempt")?.unwrap_or_else(|| "1".to_owned());
    let completed = run.str("status")? == "completed";
    let conclusion = run.opt_str("conclusion")?;
    let updated_at = run.opt_time("updated_at")?;
    // A workflow without `name:` is reported with an empty name; its file then names it.
    let name = match run.opt_str("name")?.filter(|n| !n.is_empty()) {
        Some(name) => name,
        None => run.opt_str("path")?.unwrap_or_default(),
    };
    let observed = PipelineRunObserved {
        key: format!("github:{}:workflow_run:{id}:{attempt}", repo.full_name),
        kind: PipelineRunKind::Run,
        name: name.to_owned(),
        repository: Some(repo.full_name.to_owned()),
        revision: Some(run.id("head_sha")?),
        branch: run.opt_str("head_branch")?.map(str::to_owned),
        queued: Some(run.time("created_at")?),
        started: run.opt_time("run_started_at")?,
        finished: if completed { updated_at } else { None },
        outcome: completed.then(|| outcome(conclusion)),
    };
    Ok(Found {
        id: format!("workflow_run:{id}:{attempt}:{action}"),
        subject: repo.full_name.to_owned(),
        timestamp: updated_at.or(observed.queued),
        observations: vec![Observation::PipelineRun(observed)],
    })
}

fn workflow_job(root: &Object<'_>, action: &str, repo: &Repository<'_>) -> Result<Found, WebhookError> {
    let job = root.object("workflow_job")?;
    let id = job.id("id")?;
    let status = job.str("status")?;
    let completed = status == "completed";
    let conclusion = job.opt_str("conclusion")?;
    // GitHub fills `started_at` even for a job still queued or waiting for an environment's
    // approval; it only means something once the job runs.
    let started = match status {
        "in_progress" | "completed" => job.opt_time("started_at")?,
        _ => None,
    };
    let finished = if completed { job.opt_time("completed_at")? } else { None };
    let observed = PipelineRunObserved {
        key: format!("github:{}:workflow_job:{id}", repo.full_name),
        kind: PipelineRunKind::Job,
        name: job.str("name")?.to_owned(),
        repository: Some(repo.full_name.to_owned()),
        revision: Some(job.id("head_sha")?),
        branch: job.opt_str("head_branch")?.map(str::to_owned),
        queued: Some(job.time("created_at")?),
        started,
        finished,
        outcome: completed.then(|| outcome(conclusion)),
    };
    Ok(Found {
        id: format!("workflow_job:{id}:{action}"),
        subject: repo.full_name.to_owned(),
        timestamp: finished.or(started).or(observed.queued),
        observations: vec![Observation::PipelineRun(observed)],
    })
}

fn issues(root: &Object<'_>, action: &str, repo: &Repository<'_>) -> Result<Found, WebhookError> {
    let issue = root.object("issue")?;
    let id = issue.id("id")?;
    let number = issue.id("number")?;
    let updated_at = issue.time("updated_at")?;
    let mut is_incident = false;
    let mut severity = None;
    for label in issue.objects("labels")? {
        let name = label.opt_str("name")?;
        is_incident |= name.is_some_and(|n| n.eq_ignore_ascii_case("incident"));
        severity = severity.or_else(|| name.and_then(severity_label));
    }
    let mut observations = Vec::new();
    if is_incident {
        let reopened = action == "reopened";
        // A reopened issue keeps its old `closed_at`; only a closed one is resolved.
        let closed = !reopened && issue.opt_str("state")? == Some("closed");
        let closed_at = issue.opt_time("closed_at")?;
        observations.push(issue_incident(IssueIncident {
            key: format!("github:{}:issue:{number}", repo.full_name),
            service: repo.name,
            title: issue.str("title")?,
            created_at: issue.time("created_at")?,
            closed_at: if closed { closed_at } else { None },
            reopened,
            body: issue.opt_str("body")?,
            severity,
        }));
    }
    Ok(Found {
        id: format!("issues:{id}:{action}:{updated_at}"),
        subject: format!("{}#{number}", repo.full_name),
        timestamp: Some(updated_at),
        observations,
    })
}
