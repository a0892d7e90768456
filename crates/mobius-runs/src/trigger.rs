//! Which workflows a push, a pull request or a release runs, and with what: the pure part of
//! triggering, between reading git (see [`super::git`]) and queueing runs (see
//! [`super::Runner`]).

use std::collections::BTreeSet;

use mobius_pipelines::expr::{self, MapContext};
use mobius_pipelines::workflow::{self, PushedRef, Setting, Severity, Triggers, Workflow, push_matches};
use serde_json::{Value, json};

use super::cdevents::LandedCommit;

/// A branch of a registered repository moved.
#[derive(Debug, Clone)]
pub struct Push {
    /// The repository's key (`owner/name`).
    pub repository: String,
    /// The branch pushed, or the tag when [`Push::tag`].
    pub branch: String,
    /// A tag was pushed (created or moved), not a branch.
    pub tag: bool,
    /// Where the branch was; `None` for a new branch.
    pub before: Option<String>,
    pub after: String,
    /// The commits it gained, oldest first.
    pub commits: Vec<LandedCommit>,
    /// Files changed between `before` and `after`.
    pub changed: Vec<String>,
    /// The branch `$default-branch` stands for.
    pub default_branch: String,
}

/// A pull request opened, pushed to, reopened (or another activity) on a forge, in GitHub's
/// terms; GitLab merge requests are mapped onto it (see [`crate::delivery`]).
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The base repository's key (`owner/name`): the registered one.
    pub repository: String,
    pub number: u64,
    /// GitHub's activity type: `opened`, `synchronize`, `reopened`, `closed`, `edited`…
    pub action: String,
    /// The branch the changes come from (in the fork, for a fork).
    pub head_ref: String,
    pub head_sha: String,
    /// The branch it would merge into.
    pub base_ref: String,
    /// Where the base branch was, when the delivery says.
    pub base_sha: Option<String>,
    /// The head lives in another repository: its run gets no secrets and cannot deploy.
    pub fork: bool,
    /// Who caused the activity (`sender.login`), as `github.actor`.
    pub actor: String,
    /// Where the forge keeps the pull request's commits in the base repository
    /// (`refs/pull/N` on GitHub, `refs/merge-requests/N` on GitLab): `…/head` and `…/merge`.
    pub refs_prefix: String,
    /// The delivery's payload, GitHub-shaped, as `github.event`.
    pub payload: Value,
    /// Filled in by the runner from the mirror: the commit the run checks out (the merge
    /// commit when the forge offers one that merges the current head, else the head), the
    /// ref it is at, the files the pull request changes, and the default branch.
    pub sha: String,
    pub git_ref: String,
    pub changed: Vec<String>,
    pub default_branch: String,
}

/// A release published (or another release activity) for a tag of a registered repository.
#[derive(Debug, Clone)]
pub struct Release {
    pub repository: String,
    /// GitHub's activity type: `published`, `created`, `released`, `edited`, `deleted`…
    pub action: String,
    pub tag: String,
    pub actor: String,
    /// The delivery's payload, GitHub-shaped, as `github.event`.
    pub payload: Value,
    /// The tag's commit, filled in by the runner; and the default branch.
    pub sha: String,
    pub default_branch: String,
}

/// What happened, for choosing the workflows it runs.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Push(&'a Push),
    PullRequest(&'a PullRequest),
    Release(&'a Release),
}

impl Event<'_> {
    /// The repository's key.
    pub fn repository(&self) -> &str {
        match self {
            Event::Push(p) => &p.repository,
            Event::PullRequest(p) => &p.repository,
            Event::Release(r) => &r.repository,
        }
    }

    fn default_branch(&self) -> &str {
        match self {
            Event::Push(p) => &p.default_branch,
            Event::PullRequest(p) => &p.default_branch,
            Event::Release(r) => &r.default_branch,
        }
    }

    /// The commit its runs run.
    pub fn sha(&self) -> &str {
        match self {
            Event::Push(p) => &p.after,
            Event::PullRequest(p) => &p.sha,
            Event::Release(r) => &r.sha,
        }
    }

    /// The branch its runs are on: a pushed branch's; none for a tag, a release or a pull
    /// request (whose merge ref is no branch, so no branch rule lets it through).
    pub fn branch(&self) -> Option<&str> {
        match self {
            Event::Push(p) if !p.tag => Some(&p.branch),
            _ => None,
        }
    }

    /// Where a pushed branch was before the push.
    pub fn before(&self) -> Option<&str> {
        match self {
            Event::Push(p) => p.before.as_deref(),
            _ => None,
        }
    }

    /// `github.event_name`, and the run's `event`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Push(_) => "push",
            Event::PullRequest(_) => "pull_request",
            Event::Release(_) => "release",
        }
    }

    /// The `github` context its runs get.
    pub fn github(&self) -> Value {
        match self {
            Event::Push(p) => github_context(p),
            Event::PullRequest(p) => pull_request_context(p),
            Event::Release(r) => release_context(r),
        }
    }

    /// Whether a workflow listens for this kind of event at all: a broken file that would
    /// gets a failed run, so its author sees why nothing ran. Releases never get one.
    fn listens(&self, on: &Triggers) -> bool {
        match self {
            Event::Push(_) => on.push.is_some(),
            Event::PullRequest(_) => on.pull_request.is_some(),
            Event::Release(_) => false,
        }
    }

    /// Whether a workflow runs for this event, by its filters.
    fn matches(&self, on: &Triggers) -> bool {
        match self {
            Event::Push(push) => on.push.as_ref().is_some_and(|filter| {
                let (branch, tag) =
                    if push.tag { (None, Some(push.branch.as_str())) } else { (Some(push.branch.as_str()), None) };
                push_matches(filter, &PushedRef { branch, tag, changed: Some(&push.changed) })
            }),
            Event::PullRequest(pr) => on
                .pull_request
                .as_ref()
                .is_some_and(|f| workflow::pull_request_matches(f, &pr.action, &pr.base_ref, Some(&pr.changed))),
            Event::Release(r) => on.release.as_ref().is_some_and(|f| workflow::release_matches(f, &r.action)),
        }
    }

    /// A fork's pull request runs with no secrets: the ones its workflows name are empty
    /// rather than refused, as on GitHub.
    pub fn fork(&self) -> bool {
        matches!(self, Event::PullRequest(pr) if pr.fork)
    }
}

/// A workflow file the event triggers: ready to run, or refused with the lint error to show
/// on the run.
#[derive(Debug, Clone)]
pub enum Planned {
    Run { file: String, workflow: Box<Workflow>, group: Option<String>, cancel_in_progress: bool },
    Invalid { file: String, name: String, error: String },
}

/// The runs `event` triggers among `files` (`(path, text)` at its commit), in file order.
/// `stored` are the names of the repository's stored secrets (of any environment).
pub fn plan(event: Event<'_>, files: &[(String, String)], stored: &BTreeSet<String>) -> Vec<Planned> {
    let github = event.github();
    let mut planned = Vec::new();
    for (file, text) in files {
        let text = workflow::with_default_branch(text, event.default_branch());
        let errors: Vec<String> = workflow::lint(file, &text)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect();
        let parsed = workflow::parse(file, &text);
        let workflow = match (parsed, errors.first()) {
            (Ok(w), None) => w,
            (parsed, first) => {
                // A broken file still gets a (failed) run when it would react to the event, so
                // the author sees why nothing ran; one that cannot be read at all, for pushes
                // and pull requests.
                let name = parsed.as_ref().ok().and_then(|w| w.name.clone()).unwrap_or_else(|| file.clone());
                let listens = match &parsed {
                    Ok(w) => event.listens(&w.on),
                    Err(_) => !matches!(event, Event::Release(_)),
                };
                if listens {
                    let error = first.cloned().unwrap_or_else(|| "invalid workflow".to_owned());
                    planned.push(Planned::Invalid { file: file.clone(), name, error });
                }
                continue;
            }
        };
        if !event.matches(&workflow.on) {
            continue;
        }
        // A secret the workflow names that is stored nowhere for the repository would be empty:
        // refuse to start rather than run with it. A fork's run has none anyway.
        let missing = workflow::referenced_secrets(&text).into_iter().find(|used| !stored.contains(&used.name));
        if let Some(used) = missing.filter(|_| !event.fork()) {
            let name = workflow.name.clone().unwrap_or_else(|| file.clone());
            let repository = event.repository();
            let error = format!(
                "{file}:{}: error: secret `{}` is not set for {repository} (`mobius secret set {} --repo {repository}`)",
                used.line, used.name, used.name
            );
            planned.push(Planned::Invalid { file: file.clone(), name, error });
            continue;
        }
        let ctx = MapContext::new().with("github", github.clone()).with("inputs", json!({}));
        let (group, cancel_in_progress) = match &workflow.concurrency {
            None => (None, false),
            Some(c) => {
                // An expression that fails is a run-time error on GitHub; here the group falls
                // back to its text, which still serialises runs of this workflow.
                let group = expr::render(&c.group, &ctx).unwrap_or_else(|_| c.group.clone());
                let cancel = match &c.cancel_in_progress {
                    Setting::Value(b) => *b,
                    Setting::Expr(text) => expr::render(text, &ctx).is_ok_and(|v| v == "true"),
                };
                (Some(group), cancel)
            }
        };
        planned.push(Planned::Run { file: file.clone(), workflow: Box::new(workflow), group, cancel_in_progress });
    }
    planned
}

/// The `github` context of a push run, as GitHub fills it for `push`.
pub fn github_context(push: &Push) -> Value {
    let commits: Vec<Value> = push
        .commits
        .iter()
        .map(|c| json!({ "id": c.sha, "message": c.subject, "timestamp": c.commit_time.to_string() }))
        .collect();
    let owner = push.repository.split_once('/').map_or("", |(owner, _)| owner);
    let (prefix, ref_type) = if push.tag { ("refs/tags/", "tag") } else { ("refs/heads/", "branch") };
    json!({
        "event_name": "push",
        "ref": format!("{prefix}{}", push.branch),
        "ref_name": push.branch,
        "ref_type": ref_type,
        "sha": push.after,
        "repository": push.repository,
        "repository_owner": owner,
        "actor": "mobius",
        "event": {
            "ref": format!("{prefix}{}", push.branch),
            "before": push.before.clone().unwrap_or_else(|| "0".repeat(40)),
            "after": push.after,
            "created": push.before.is_none(),
            "commits": commits,
            "head_commit": commits.last().cloned().unwrap_or(Value::Null),
            "repository": { "full_name": push.repository, "default_branch": push.default_branch },
        },
    })
}

/// The `github` context of a pull request run, as GitHub fills it for `pull_request`: `ref`
/// is the merge ref (`refs/pull/N/merge`) and `sha` its merge commit, or the head's when the
/// forge offers no merge commit; `head_ref` and `base_ref` are the branches.
pub fn pull_request_context(pr: &PullRequest) -> Value {
    let owner = pr.repository.split_once('/').map_or("", |(owner, _)| owner);
    let ref_name = pr.git_ref.strip_prefix("refs/pull/").unwrap_or(&pr.git_ref);
    // Caches restore from the default branch's scope (the pull request writes only its own):
    // a delivery that does not say it (a GitLab merge request) gets the mirror's.
    let mut event = pr.payload.clone();
    if event.pointer("/repository/default_branch").is_none()
        && let Some(repository) = event.get_mut("repository").and_then(Value::as_object_mut)
    {
        repository.insert("default_branch".to_owned(), json!(pr.default_branch));
    }
    json!({
        "event_name": "pull_request",
        "ref": pr.git_ref,
        "ref_name": ref_name,
        "ref_type": "branch",
        "sha": pr.sha,
        "head_ref": pr.head_ref,
        "base_ref": pr.base_ref,
        "repository": pr.repository,
        "repository_owner": owner,
        "actor": pr.actor,
        "triggering_actor": pr.actor,
        "event": event,
    })
}

/// The `github` context of a release run, as GitHub fills it for `release`.
pub fn release_context(release: &Release) -> Value {
    let owner = release.repository.split_once('/').map_or("", |(owner, _)| owner);
    json!({
        "event_name": "release",
        "ref": format!("refs/tags/{}", release.tag),
        "ref_name": release.tag,
        "ref_type": "tag",
        "sha": release.sha,
        "repository": release.repository,
        "repository_owner": owner,
        "actor": release.actor,
        "triggering_actor": release.actor,
        "event": release.payload,
    })
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    fn push(branch: &str, changed: &[&str]) -> Push {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        Push {
            repository: "acme/app".into(),
            branch: branch.into(),
            tag: false,
            before: Some("a".repeat(40)),
            after: "b".repeat(40),
            commits: vec![LandedCommit {
                sha: "b".repeat(40),
                commit_time: at,
                author_time: at,
                subject: "Fix".into(),
            }],
            changed: changed.iter().map(|s| s.to_string()).collect(),
            default_branch: "main".into(),
        }
    }

    fn file(name: &str, text: &str) -> (String, String) {
        (format!(".github/workflows/{name}"), text.to_owned())
    }

    #[test]
    fn filters_groups_and_broken_files() {
        let workflows = [
            file(
                "ci.yml",
                "on:\n  push:\n    branches: [$default-branch]\nconcurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: true\n",
            ),
            file(
                "docs.yml",
                "on:\n  push:\n    paths: ['docs/**']\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: true\n",
            ),
            file("manual.yml", "on: workflow_dispatch\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: true\n"),
            file("broken.yml", "on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n"),
            file(
                "secret.yml",
                "on:\n  push:\n    branches: [release]\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ secrets.KEY }}\n",
            ),
        ];
        let planned = plan(Event::Push(&push("main", &["src/lib.rs"])), &workflows, &BTreeSet::new());
        assert_eq!(planned.len(), 2, "{planned:?}");
        match &planned[0] {
            Planned::Run { file, group, cancel_in_progress, .. } => {
                assert_eq!(file, ".github/workflows/ci.yml");
                assert_eq!(group.as_deref(), Some("ci-refs/heads/main"));
                assert!(cancel_in_progress);
            }
            other => panic!("{other:?}"),
        }
        match &planned[1] {
            Planned::Invalid { file, error, .. } => {
                assert_eq!(file, ".github/workflows/broken.yml");
                assert!(error.starts_with(".github/workflows/broken.yml:"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let planned = plan(Event::Push(&push("feature", &["docs/a.md"])), &workflows, &BTreeSet::new());
        let files: Vec<&str> = planned
            .iter()
            .map(|p| match p {
                Planned::Run { file, .. } | Planned::Invalid { file, .. } => file.as_str(),
            })
            .collect();
        assert_eq!(files, [".github/workflows/docs.yml", ".github/workflows/broken.yml"]);
        match plan(Event::Push(&push("release", &[])), &workflows[4..], &BTreeSet::new()).as_slice() {
            [Planned::Invalid { error, .. }] => {
                assert!(error.contains("secret.yml:8: error: secret `KEY` is not set for"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        let stored = BTreeSet::from(["KEY".to_owned()]);
        assert!(matches!(
            plan(Event::Push(&push("release", &[])), &workflows[4..], &stored).as_slice(),
            [Planned::Run { .. }]
        ));
    }

    #[test]
    fn a_pull_requests_context_is_githubs_with_the_default_branch_filled_in() {
        let pr = PullRequest {
            repository: "acme/app".into(),
            number: 9,
            action: "opened".into(),
            head_ref: "feature".into(),
            head_sha: "c".repeat(40),
            base_ref: "main".into(),
            base_sha: None,
            fork: false,
            actor: "ada".into(),
            refs_prefix: "refs/merge-requests/9".into(),
            payload: json!({ "action": "opened", "number": 9, "repository": { "full_name": "acme/app" } }),
            sha: "d".repeat(40),
            git_ref: "refs/merge-requests/9/head".into(),
            changed: Vec::new(),
            default_branch: "trunk".into(),
        };
        let github = pull_request_context(&pr);
        assert_eq!(github["event_name"], "pull_request");
        assert_eq!((github["head_ref"].as_str(), github["base_ref"].as_str()), (Some("feature"), Some("main")));
        assert_eq!(github["sha"], "d".repeat(40));
        assert_eq!(github["event"]["repository"]["default_branch"], "trunk", "caches restore from it");
        let mut given = pr.clone();
        given.payload["repository"]["default_branch"] = "master".into();
        given.git_ref = "refs/pull/9/merge".into();
        let github = pull_request_context(&given);
        assert_eq!(github["event"]["repository"]["default_branch"], "master", "the delivery's own wins");
        assert_eq!(github["ref_name"], "9/merge");
    }
}
