//! Which workflows a push runs, and with what: the pure part of triggering, between reading
//! git (see [`super::git`]) and queueing runs (see [`super::Runner`]).

use std::collections::BTreeSet;

use mobius_pipelines::expr::{self, MapContext};
use mobius_pipelines::workflow::{self, PushedRef, Setting, Severity, Workflow, push_matches};
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

/// A workflow file the push triggers: ready to run, or refused with the lint error to show
/// on the run.
#[derive(Debug, Clone)]
pub enum Planned {
    Run { file: String, workflow: Box<Workflow>, group: Option<String>, cancel_in_progress: bool },
    Invalid { file: String, name: String, error: String },
}

/// The runs `push` triggers among `files` (`(path, text)` at the pushed commit), in file order.
/// `stored` are the names of the repository's stored secrets (of any environment).
pub fn plan(push: &Push, files: &[(String, String)], stored: &BTreeSet<String>) -> Vec<Planned> {
    let github = github_context(push);
    let mut planned = Vec::new();
    for (file, text) in files {
        let text = workflow::with_default_branch(text, &push.default_branch);
        let errors: Vec<String> = workflow::lint(file, &text)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect();
        let parsed = workflow::parse(file, &text);
        let workflow = match (parsed, errors.first()) {
            (Ok(w), None) => w,
            (parsed, first) => {
                // A broken file still gets a (failed) run when it would react to pushes, so
                // the author sees why nothing ran; one that cannot be read at all, too.
                let name = parsed.as_ref().ok().and_then(|w| w.name.clone()).unwrap_or_else(|| file.clone());
                let reacts = parsed.as_ref().map_or(true, |w| w.on.push.is_some());
                if reacts {
                    let error = first.cloned().unwrap_or_else(|| "invalid workflow".to_owned());
                    planned.push(Planned::Invalid { file: file.clone(), name, error });
                }
                continue;
            }
        };
        let Some(filter) = &workflow.on.push else { continue };
        let (branch, tag) =
            if push.tag { (None, Some(push.branch.as_str())) } else { (Some(push.branch.as_str()), None) };
        let pushed = PushedRef { branch, tag, changed: Some(&push.changed) };
        if !push_matches(filter, &pushed) {
            continue;
        }
        // A secret the workflow names that is stored nowhere for the repository would be empty:
        // refuse to start rather than run with it.
        let missing = workflow::referenced_secrets(&text).into_iter().find(|used| !stored.contains(&used.name));
        if let Some(used) = missing {
            let name = workflow.name.clone().unwrap_or_else(|| file.clone());
            let error = format!(
                "{file}:{}: error: secret `{}` is not set for {} (`mobius secret set {} --repo {}`)",
                used.line, used.name, push.repository, used.name, push.repository
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
        let planned = plan(&push("main", &["src/lib.rs"]), &workflows, &BTreeSet::new());
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
        let planned = plan(&push("feature", &["docs/a.md"]), &workflows, &BTreeSet::new());
        let files: Vec<&str> = planned
            .iter()
            .map(|p| match p {
                Planned::Run { file, .. } | Planned::Invalid { file, .. } => file.as_str(),
            })
            .collect();
        assert_eq!(files, [".github/workflows/docs.yml", ".github/workflows/broken.yml"]);
        match plan(&push("release", &[]), &workflows[4..], &BTreeSet::new()).as_slice() {
            [Planned::Invalid { error, .. }] => {
                assert!(error.contains("secret.yml:8: error: secret `KEY` is not set for"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        let stored = BTreeSet::from(["KEY".to_owned()]);
        assert!(matches!(plan(&push("release", &[]), &workflows[4..], &stored).as_slice(), [Planned::Run { .. }]));
    }
}
