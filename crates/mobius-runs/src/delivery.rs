//! What a verified forge webhook asks of the runner: a push polls the repository, a pull
//! request or a release runs the workflows that listen for it. GitHub's payloads are read as
//! GitHub documents them; GitLab's merge requests and releases are mapped onto GitHub's
//! activity types, so a workflow's `types:` means the same for both.
//!
//! Reading a delivery never fails loudly: the log has already recorded it for DORA, and a
//! delivery that does not say what a run needs (a draft release without a tag, a merge-request
//! approval) simply triggers nothing.

use serde_json::{Value, json};

use crate::trigger::{PullRequest, Release};

/// What a delivery triggers.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A branch or tag was pushed to this repository: poll it.
    Push {
        repository: String,
    },
    PullRequest(Box<PullRequest>),
    Release(Box<Release>),
}

impl Delivery {
    /// The repository the delivery is for.
    pub fn repository(&self) -> &str {
        match self {
            Delivery::Push { repository } => repository,
            Delivery::PullRequest(pr) => &pr.repository,
            Delivery::Release(r) => &r.repository,
        }
    }
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    path.iter().try_fold(value, |v, key| v.get(*key))?.as_str().map(str::to_owned)
}

/// What a GitHub delivery of event `event` (`X-GitHub-Event`) triggers, if anything.
pub fn github(event: &str, raw: &[u8]) -> Option<Delivery> {
    let payload: Value = serde_json::from_slice(raw).ok()?;
    let repository = text(&payload, &["repository", "full_name"])?;
    match event {
        "push" => Some(Delivery::Push { repository }),
        "pull_request" => {
            let pr = payload.get("pull_request")?;
            let number = payload.get("number").or_else(|| pr.get("number"))?.as_u64()?;
            let base_repository = text(pr, &["base", "repo", "full_name"]).unwrap_or_else(|| repository.clone());
            // A fork that was deleted leaves `head.repo` null: still not this repository.
            let head_repository = text(pr, &["head", "repo", "full_name"]);
            Some(Delivery::PullRequest(Box::new(PullRequest {
                fork: head_repository.as_deref() != Some(base_repository.as_str()),
                repository: base_repository,
                number,
                action: text(&payload, &["action"])?,
                head_ref: text(pr, &["head", "ref"])?,
                head_sha: text(pr, &["head", "sha"])?,
                base_ref: text(pr, &["base", "ref"])?,
                base_sha: text(pr, &["base", "sha"]),
                actor: text(&payload, &["sender", "login"]).unwrap_or_default(),
                refs_prefix: format!("refs/pull/{number}"),
                payload,
                sha: String::new(),
                git_ref: String::new(),
                changed: Vec::new(),
                default_branch: String::new(),
            })))
        }
        "release" => {
            let release = payload.get("release")?;
            Some(Delivery::Release(Box::new(Release {
                repository,
                action: text(&payload, &["action"])?,
                tag: text(release, &["tag_name"]).filter(|t| !t.is_empty())?,
                actor: text(&payload, &["sender", "login"]).unwrap_or_default(),
                payload,
                sha: String::new(),
                default_branch: String::new(),
            })))
        }
        _ => None,
    }
}

/// What a GitLab delivery of kind `kind` (`X-Gitlab-Event`) triggers, if anything.
pub fn gitlab(kind: Option<&str>, raw: &[u8]) -> Option<Delivery> {
    let payload: Value = serde_json::from_slice(raw).ok()?;
    let repository = text(&payload, &["project", "path_with_namespace"])?;
    match kind? {
        "Push Hook" | "Tag Push Hook" => Some(Delivery::Push { repository }),
        "Merge Request Hook" => merge_request(repository, &payload).map(|pr| Delivery::PullRequest(Box::new(pr))),
        "Release Hook" => {
            // GitLab says create / update / delete; a created release is published at once.
            let action = match text(&payload, &["action"])?.as_str() {
                "create" => "published",
                "update" => "edited",
                "delete" => "deleted",
                _ => return None,
            };
            let tag = text(&payload, &["tag"]).filter(|t| !t.is_empty())?;
            let github_shaped = json!({
                "action": action,
                "release": { "tag_name": tag, "name": payload.get("name"), "body": payload.get("description") },
                "repository": { "full_name": repository },
            });
            Some(Delivery::Release(Box::new(Release {
                repository,
                action: action.to_owned(),
                tag,
                actor: String::new(),
                payload: github_shaped,
                sha: String::new(),
                default_branch: String::new(),
            })))
        }
        _ => None,
    }
}

/// A GitLab merge request as a GitHub pull request: `open` → `opened`, `reopen` → `reopened`,
/// `update` with new commits (`oldrev`) → `synchronize` and without → `edited`, `close` and
/// `merge` → `closed`; approvals trigger nothing.
fn merge_request(repository: String, payload: &Value) -> Option<PullRequest> {
    let attributes = payload.get("object_attributes")?;
    let action = match text(attributes, &["action"])?.as_str() {
        "open" => "opened",
        "reopen" => "reopened",
        "update" if attributes.get("oldrev").is_some_and(|v| !v.is_null()) => "synchronize",
        "update" => "edited",
        "close" | "merge" => "closed",
        _ => return None,
    };
    let number = attributes.get("iid")?.as_u64()?;
    let id = |key: &str| attributes.get(key).and_then(Value::as_u64);
    let fork = id("source_project_id") != id("target_project_id");
    let head_ref = text(attributes, &["source_branch"])?;
    let head_sha = text(attributes, &["last_commit", "id"])?;
    let base_ref = text(attributes, &["target_branch"])?;
    let head_repository = text(attributes, &["source", "path_with_namespace"]).unwrap_or_else(|| repository.clone());
    let actor = text(payload, &["user", "username"]).unwrap_or_default();
    let github_shaped = json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": attributes.get("title"),
            "html_url": attributes.get("url"),
            "merged": text(attributes, &["action"]).as_deref() == Some("merge"),
            "head": { "ref": head_ref, "sha": head_sha, "repo": { "full_name": head_repository } },
            "base": { "ref": base_ref, "repo": { "full_name": repository } },
        },
        "repository": { "full_name": repository },
        "sender": { "login": actor },
    });
    Some(PullRequest {
        repository,
        number,
        action: action.to_owned(),
        head_ref,
        head_sha,
        base_ref,
        base_sha: None,
        fork,
        actor,
        refs_prefix: format!("refs/merge-requests/{number}"),
        payload: github_shaped,
        sha: String::new(),
        git_ref: String::new(),
        changed: Vec::new(),
        default_branch: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/github-webhooks");
        std::fs::read(root.join(name)).unwrap()
    }

    #[test]
    fn github_pull_requests_and_releases_from_the_corpus() {
        let Some(Delivery::PullRequest(pr)) = github("pull_request", &corpus("pull_request/synchronize.payload.json"))
        else {
            panic!("a pull request")
        };
        assert_eq!(
            (pr.repository.as_str(), pr.number, pr.action.as_str()),
            ("Codertocat/Hello-World", 2, "synchronize")
        );
        assert_eq!((pr.head_ref.as_str(), pr.base_ref.as_str()), ("changes", "master"));
        assert_eq!(pr.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
        assert!(!pr.fork, "head and base are the same repository");
        assert_eq!(pr.refs_prefix, "refs/pull/2");
        let mut forked: Value = serde_json::from_slice(&corpus("pull_request/opened.payload.json")).unwrap();
        forked["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World".into();
        let Some(Delivery::PullRequest(pr)) = github("pull_request", &serde_json::to_vec(&forked).unwrap()) else {
            panic!("a pull request")
        };
        assert!(pr.fork);
        forked["pull_request"]["head"]["repo"] = Value::Null;
        let Some(Delivery::PullRequest(pr)) = github("pull_request", &serde_json::to_vec(&forked).unwrap()) else {
            panic!("a pull request")
        };
        assert!(pr.fork, "a deleted fork is still a fork");

        let Some(Delivery::Release(release)) = github("release", &corpus("release/published.payload.json")) else {
            panic!("a release")
        };
        assert_eq!((release.action.as_str(), release.tag.as_str()), ("published", "0.0.1"));
        assert!(matches!(github("push", &corpus("push/payload.json")), Some(Delivery::Push { .. })));
        assert!(github("issues", &corpus("push/payload.json")).is_none());
        assert!(github("pull_request", b"{").is_none());
    }

    #[test]
    fn gitlab_merge_requests_map_to_pull_request_activities() {
        let hook = |action: &str, oldrev: Value, source: u64| {
            let body = json!({
                "object_kind": "merge_request",
                "user": { "username": "ada" },
                "project": { "path_with_namespace": "acme/app" },
                "object_attributes": {
                    "iid": 7, "action": action, "oldrev": oldrev, "title": "Faster",
                    "source_branch": "feature", "target_branch": "main",
                    "source_project_id": source, "target_project_id": 1,
                    "last_commit": { "id": "c".repeat(40) },
                },
            });
            gitlab(Some("Merge Request Hook"), &serde_json::to_vec(&body).unwrap())
        };
        let actions = [
            ("open", Value::Null, Some("opened")),
            ("reopen", Value::Null, Some("reopened")),
            ("update", json!("a".repeat(40)), Some("synchronize")),
            ("update", Value::Null, Some("edited")),
            ("merge", Value::Null, Some("closed")),
            ("approved", Value::Null, None),
        ];
        for (action, oldrev, want) in actions {
            let got = match hook(action, oldrev, 1) {
                Some(Delivery::PullRequest(pr)) => Some(pr.action),
                _ => None,
            };
            assert_eq!(got.as_deref(), want, "{action}");
        }
        let Some(Delivery::PullRequest(pr)) = hook("open", Value::Null, 1) else { panic!() };
        assert_eq!((pr.number, pr.head_ref.as_str(), pr.base_ref.as_str()), (7, "feature", "main"));
        assert_eq!((pr.refs_prefix.as_str(), pr.fork, pr.actor.as_str()), ("refs/merge-requests/7", false, "ada"));
        let Some(Delivery::PullRequest(pr)) = hook("open", Value::Null, 2) else { panic!() };
        assert!(pr.fork, "another source project is a fork");
        let release = json!({ "action": "create", "tag": "v1.0", "project": { "path_with_namespace": "acme/app" } });
        let Some(Delivery::Release(release)) = gitlab(Some("Release Hook"), &serde_json::to_vec(&release).unwrap())
        else {
            panic!("a release")
        };
        assert_eq!((release.action.as_str(), release.tag.as_str()), ("published", "v1.0"));
    }
}
