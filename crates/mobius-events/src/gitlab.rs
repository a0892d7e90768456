//! GitLab webhooks: `X-Gitlab-Token` verification and translation into observations.
//!
//! Every verified delivery is stored as a custom CDEvent (`dev.cdeventsx.gitlab-<object_kind>.
//! <action or status>.0.1.0`) with its body kept verbatim; the hooks the measurements need
//! also yield observations:
//!
//! | `object_kind` | observation |
//! |---|---|
//! | `push` to a branch | [`Push`] of every commit in the payload (GitLab sends the newest 20) |
//! | `merge_request` merged | [`Merge`], so a squash merge stands for the branch's commits |
//! | `pipeline` | [`PipelineRunObserved`] |
//! | `deployment` success, failed or canceled | [`DeploymentObserved`] |
//! | `issue` (or `work_item`) that is an incident | [`IncidentObserved`], linked by `root cause: <sha>` |
//!
//! GitLab writes timestamps in several shapes, sometimes several in one payload;
//! [`crate::time::parse_timestamp`] reads them all.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::envelope::{NewEvent, Origin};
use crate::observation::{
    Commit, DeploymentObserved, DeploymentOutcome, Merge, Observation, PipelineRunKind, PipelineRunObserved, Push,
};
use crate::payload::{
    IssueIncident, Object, body_digest, custom_type, first_line, issue_incident, json, severity_label, text,
};
use crate::webhook::{Webhook, WebhookError, checked};

const TOKEN_HEADER: &str = "X-Gitlab-Token";

/// Compares `X-Gitlab-Token` with the configured token in constant time.
///
/// Both tokens are hashed first and the digests compared, so neither the content nor the
/// length of the expected token shows in the timing. An empty configured token is refused as
/// [`WebhookError::NotConfigured`]: it would match any request that sends an empty header.
pub fn verify_token(expected: &str, header: Option<&str>) -> Result<(), WebhookError> {
    if expected.is_empty() {
        return Err(WebhookError::NotConfigured { source_name: "GitLab" });
    }
    let given = header.ok_or(WebhookError::MissingHeader { header: TOKEN_HEADER })?;
    let expected = Sha256::digest(expected.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature { header: TOKEN_HEADER })
    }
}

/// Translates a verified delivery. `event` is `X-Gitlab-Event` (e.g. `Push Hook`); the body's
/// `object_kind` decides when the header is absent.
pub fn translate(event: Option<&str>, body: &[u8]) -> Result<Webhook, WebhookError> {
    let raw = text(body)?;
    let value = json(raw)?;
    let root = Object::root(&value)?;
    // The body's own `object_kind` wins over the header: it is what the payload's shape
    // follows. Group and system hooks have none, and only the header names them.
    let kind = match (root.opt_str("object_kind")?, event) {
        (Some(kind), _) => kind.to_owned(),
        (None, Some(header)) => kind_of_header(header),
        (None, None) => {
            return Err(WebhookError::field("object_kind", "is required when there is no X-Gitlab-Event header"));
        }
    };
    let attributes = root.opt_object("object_attributes")?;
    let predicate = match &attributes {
        Some(a) => a.opt_str("action")?.or(a.opt_str("status")?),
        None => None,
    };
    let predicate = match predicate {
        Some(p) => p,
        None => root.opt_str("status")?.unwrap_or("received"),
    };
    let path = root.opt_object("project")?.map(|p| p.str("path_with_namespace")).transpose()?;

    // Group-level work items (epics) belong to no project and are never incidents.
    let read = reader(&kind).filter(|_| kind != "work_item" || path.is_some());
    let found = match read {
        Some(read) => read(&root, &Project::of(&root)?)?,
        None => Found {
            id: body_digest(body),
            subject: path.unwrap_or(&kind).to_owned(),
            timestamp: attributes
                .as_ref()
                .and_then(|a| a.first_time_lenient(&["updated_at", "finished_at", "created_at"]))
                .or_else(|| root.first_time_lenient(&["updated_at", "created_at"])),
            observations: Vec::new(),
        },
    };
    checked(NewEvent {
        id: found.id,
        source: path.map_or_else(|| "gitlab".to_owned(), |p| format!("gitlab:{p}")),
        ty: custom_type("gitlab", &kind, predicate),
        subject: found.subject,
        timestamp: found.timestamp.unwrap_or_else(Timestamp::now),
        origin: Origin::Gitlab,
        raw: raw.to_owned(),
        observations: found.observations,
    })
}

/// `Merge Request Hook` → `merge_request`. Only used when the body has no `object_kind`, so
/// the result need not match GitLab's kinds exactly (`Job Hook` bodies say `build`).
fn kind_of_header(header: &str) -> String {
    let name = header.trim();
    let name = name.strip_suffix(" Hook").unwrap_or(name);
    name.to_ascii_lowercase().replace(' ', "_")
}

/// Reads one hook's payload.
type Reader = fn(&Object<'_>, &Project<'_>) -> Result<Found, WebhookError>;

/// The reader of a hook the measurements use; other hooks are stored raw.
fn reader(kind: &str) -> Option<Reader> {
    Some(match kind {
        "push" => push,
        "merge_request" => merge_request,
        "pipeline" => pipeline,
        "deployment" => deployment,
        // GitLab 17.2+ sends incidents created as work items with this kind.
        "issue" | "work_item" => issue,
        _ => return None,
    })
}

/// What one hook's reader found in a payload.
struct Found {
    id: String,
    subject: String,
    /// When it happened, if the payload says.
    timestamp: Option<Timestamp>,
    observations: Vec<Observation>,
}

/// The project every hook the measurements read belongs to.
struct Project<'a> {
    /// `group/project`: the repository key.
    path: &'a str,
    /// The service a deployment or incident belongs to.
    name: &'a str,
}

impl<'a> Project<'a> {
    fn of(root: &Object<'a>) -> Result<Project<'a>, WebhookError> {
        let project = root.object("project")?;
        Ok(Project { path: project.str("path_with_namespace")?, name: project.str("name")? })
    }
}

fn push(root: &Object<'_>, project: &Project<'_>) -> Result<Found, WebhookError> {
    let git_ref = root.str("ref")?;
    let after = root.id("after")?;
    let commits = root
        .objects("commits")?
        .iter()
        .map(|c| {
            Ok(Commit {
                sha: c.id("id")?,
                author_time: None,
                commit_time: c.time("timestamp")?,
                message: first_line(c.opt_str("message")?.unwrap_or_default()),
            })
        })
        .collect::<Result<Vec<_>, WebhookError>>()?;
    // The checked-out head is the push's newest commit; Four Keys dates a push by it too.
    let checkout = root.opt_str("checkout_sha")?;
    let timestamp = commits.iter().find(|c| Some(c.sha.as_str()) == checkout).or(commits.last()).map(|c| c.commit_time);
    // A deleted branch's push has `after` all zeros and no commits.
    let deleted = after.bytes().all(|b| b == b'0');
    let observations = match git_ref.strip_prefix("refs/heads/") {
        Some(branch) if !deleted && !commits.is_empty() => {
            vec![Observation::Push(Push { repository: project.path.to_owned(), branch: branch.to_owned(), commits })]
        }
        _ => Vec::new(),
    };
    Ok(Found { id: format!("push:{git_ref}:{after}"), subject: project.path.to_owned(), timestamp, observations })
}

fn merge_request(root: &Object<'_>, project: &Project<'_>) -> Result<Found, WebhookError> {
    let mr = root.object("object_attributes")?;
    let id = mr.id("id")?;
    let iid = mr.id("iid")?;
    let updated_at = mr.time("updated_at")?;
    let state = mr.opt_str("state")?;
    let action = match mr.opt_str("action")? {
        Some(action) => action,
        // Hooks from before `action` existed only say the state.
        None => state.unwrap_or("received"),
    };
    let mut observations = Vec::new();
    if action == "merge" || state == Some("merged") {
        // What landed on the target branch: the merge commit, else the squashed commit
        // (fast-forward squash), else the branch head itself (fast-forward merge).
        let merge_sha = match (mr.opt_id("merge_commit_sha")?, mr.opt_id("squash_commit_sha")?) {
            (Some(sha), _) | (None, Some(sha)) => sha,
            (None, None) => match mr.opt_object("last_commit")? {
                Some(last) => last.id("id")?,
                None => {
                    return Err(WebhookError::field(
                        mr.path_of("merge_commit_sha"),
                        "is required for a merged merge request",
                    ));
                }
            },
        };
        observations.push(Observation::Merge(Merge {
            repository: project.path.to_owned(),
            merge_sha,
            source_branch: mr.str("source_branch")?.to_owned(),
            target_branch: mr.str("target_branch")?.to_owned(),
            // The hook has no merge time; the merge is the update it reports.
            merged_at: updated_at,
        }));
    }
    Ok(Found {
        id: format!("merge_request:{id}:{action}:{updated_at}"),
        subject: format!("{}!{iid}", project.path),
        timestamp: Some(updated_at),
        observations,
    })
}

fn pipeline(root: &Object<'_>, project: &Project<'_>) -> Result<Found, WebhookError> {
    let attributes = root.object("object_attributes")?;
    let id = attributes.id("id")?;
    let status = attributes.str("status")?;
    let created_at = attributes.time("created_at")?;
    // GitLab reports how long the pipeline waited for a runner; without it, the first job to
    // start marks the start.
    let started = match attributes.opt_seconds("queued_duration")? {
        Some(queued) => created_at.checked_add(queued).ok().filter(|at| crate::limits::in_range(*at)),
        None => {
            let mut first: Option<Timestamp> = None;
            for build in root.objects("builds")? {
                if let Some(at) = build.opt_time("started_at")? {
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
            }
            first
        }
    };
    let outcome = match status {
        "success" => Some("success"),
        "failed" => Some("failure"),
        "canceled" => Some("cancel"),
        // created, pending, running, manual, …: still going.
        _ => None,
    };
    let finished = match outcome {
        Some(_) => attributes.opt_time("finished_at")?,
        None => None,
    };
    let observed = PipelineRunObserved {
        key: format!("gitlab:{}:pipeline:{id}", project.path),
        kind: PipelineRunKind::Run,
        // `name` exists since GitLab 16.1 (`workflow:name`); a project has one pipeline
        // definition, so unnamed runs share one name.
        name: attributes.opt_str("name")?.filter(|n| !n.is_empty()).unwrap_or("pipeline").to_owned(),
        repository: Some(project.path.to_owned()),
        revision: Some(attributes.id("sha")?),
        branch: attributes.opt_str("ref")?.map(str::to_owned),
        queued: Some(created_at),
        started,
        finished,
        outcome: outcome.map(str::to_owned),
    };
    Ok(Found {
        id: format!("pipeline:{id}:{status}"),
        subject: project.path.to_owned(),
        timestamp: finished.or(started).or(Some(created_at)),
        observations: vec![Observation::PipelineRun(observed)],
    })
}

fn deployment(root: &Object<'_>, project: &Project<'_>) -> Result<Found, WebhookError> {
    let deployment_id = root.id("deployment_id")?;
    let status = root.str("status")?;
    let at = root.time("status_changed_at")?;
    let environment = root.str("environment")?;
    let outcome = match status {
        "success" => Some(DeploymentOutcome::Success),
        "failed" | "canceled" => Some(DeploymentOutcome::Failure),
        // running: not an attempt that finished.
        _ => None,
    };
    // The hook names the full sha only inside `commit_url` (`…/-/commit/<sha>`).
    let from_url = root
        .opt_str("commit_url")?
        .and_then(|url| url.rsplit_once("/-/commit/"))
        .map(|(_, sha)| sha.trim_end_matches('/'))
        .filter(|sha| !sha.is_empty() && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    let revision = match from_url {
        Some(sha) => Some(sha.to_owned()),
        None => root.opt_id("short_sha")?,
    };
    let observations = outcome
        .map(|outcome| {
            Observation::Deployment(DeploymentObserved {
                // A GitLab deployment is one attempt: a retry is a new deployment id.
                key: format!("gitlab:{}:deployment:{deployment_id}", project.path),
                service: project.name.to_owned(),
                environment: environment.to_owned(),
                repository: Some(project.path.to_owned()),
                revision,
                artifact_id: None,
                // The hook only says when the status changed.
                started: at,
                finished: at,
                outcome,
            })
        })
        .into_iter()
        .collect();
    Ok(Found {
        id: format!("deployment:{deployment_id}:{status}"),
        subject: project.path.to_owned(),
        timestamp: Some(at),
        observations,
    })
}

fn issue(root: &Object<'_>, project: &Project<'_>) -> Result<Found, WebhookError> {
    // `work_item` hooks share the shape; keep their ids apart from issues'.
    let kind = root.opt_str("object_kind")?.unwrap_or("issue");
    let issue = root.object("object_attributes")?;
    let id = issue.id("id")?;
    let iid = issue.id("iid")?;
    let updated_at = issue.time("updated_at")?;
    let state = issue.opt_str("state")?;
    let action = match issue.opt_str("action")? {
        Some(action) => action,
        None => state.unwrap_or("received"),
    };

    // Four Keys' convention is an `Incident` label; GitLab's own incidents are an issue type,
    // reported as `issue_type` up to 17.1 and as `type` since.
    let is_type = |key: &str| -> Result<bool, WebhookError> {
        Ok(issue.opt_str(key)?.is_some_and(|t| t.eq_ignore_ascii_case("incident")))
    };
    let mut is_incident = is_type("issue_type")? || is_type("type")?;
    let (labels, own_labels) = (root.objects("labels")?, issue.objects("labels")?);
    let mut severity = None;
    for label in labels.iter().chain(&own_labels) {
        let title = label.opt_str("title")?;
        is_incident |= title.is_some_and(|t| t.eq_ignore_ascii_case("incident"));
        severity = severity.or_else(|| title.and_then(severity_label));
    }

    let mut observations = Vec::new();
    if is_incident {
        let reopened = action == "reopen" || state == Some("reopened");
        let closed = !reopened && state == Some("closed");
        let closed_at = issue.opt_time("closed_at")?;
        observations.push(issue_incident(IssueIncident {
            key: format!("gitlab:{}:issue:{iid}", project.path),
            service: project.name,
            title: issue.str("title")?,
            created_at: issue.time("created_at")?,
            closed_at: if closed { closed_at } else { None },
            reopened,
            body: issue.opt_str("description")?,
            severity,
        }));
    }
    Ok(Found {
        id: format!("{kind}:{id}:{action}:{updated_at}"),
        subject: format!("{}#{iid}", project.path),
        timestamp: Some(updated_at),
        observations,
    })
}
