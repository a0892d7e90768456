//! Pull requests, merge requests and releases from a forge's webhooks: a run on the merge
//! commit the forge offers (else the head), `types` and base-branch filters as on GitHub, the
//! repository's secrets for a pull request from the repository itself and none — and no
//! deployment — for one from a fork; a GitLab merge request means the same; a published
//! release runs the `release` workflows on its tag.

use serde_json::Value;

use crate::actions::GitDaemon;
use crate::runs::{commit, finished, get, git, wait_for};
use crate::stored_secrets::secret;
use crate::util::{Dir, GITLAB_TOKEN, Server, github_delivery, http};

const CHECK: &str = "on:\n  pull_request:\n    branches: [main]\njobs:\n  check:\n    runs-on: ubuntu-latest\n    steps:\n      \
                     - uses: actions/checkout@v4\n      \
                     - run: echo \"pr=${{ github.event.number }} ${{ github.event.action }} ref=${{ github.ref }} sha=${{ github.sha }} head=${{ github.head_ref }} base=${{ github.base_ref }} key-length=${#KEY} file=$(cat feature.txt)\"\n        \
                     env:\n          KEY: ${{ secrets.DEPLOY_KEY }}\n      \
                     - if: github.event.number == 8\n        \
                     run: printf %s \"$MOBIUS_TOKEN\" > @OUT@/token; for i in $(seq 600); do [ -f @OUT@/done ] && break; sleep 0.1; done\n  \
                     deploy:\n    needs: check\n    if: github.event.pull_request.head.repo.full_name != github.repository\n    runs-on: ubuntu-latest\n    steps:\n      \
                     - uses: mobius/deploy@v1\n        with:\n          service: app\n          environment: preview\n          artifact: sha256:0000000000000000000000000000000000000000000000000000000000000000\n";

const RELEASE: &str = "on:\n  release:\n    types: [published]\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n      \
                       - run: echo \"release ${{ github.event.release.tag_name }} ref=${{ github.ref }} sha=${{ github.sha }}\"\n";

const KEY: &str = "deploy-key-value-271828";

/// A signed GitHub delivery of `event` built from the corpus payload `file`, edited by `edit`.
fn github(server: &Server, event: &str, file: &str, edit: impl FnOnce(&mut Value)) -> String {
    let corpus = crate::util::corpus(&format!("github-webhooks/{file}"));
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(corpus).unwrap()).unwrap();
    payload["repository"]["full_name"] = "acme/app".into();
    edit(&mut payload);
    let response = github_delivery(server, event, &payload);
    assert!(response.status().is_success(), "{}", response.status());
    response.text().unwrap()
}

/// Edits a corpus pull request payload into pull request `number` of `acme/app`, from `head`
/// (`head_repo`'s branch `head_ref`) into `base_ref`, with activity `action`.
fn pull_request(
    action: &'static str,
    number: u64,
    head_repo: &'static str,
    head_ref: &'static str,
    head: String,
    base_ref: &'static str,
) -> impl FnOnce(&mut Value) {
    move |payload| {
        payload["action"] = action.into();
        payload["number"] = number.into();
        let pr = &mut payload["pull_request"];
        pr["number"] = number.into();
        pr["head"]["ref"] = head_ref.into();
        pr["head"]["sha"] = head.into();
        pr["head"]["repo"]["full_name"] = head_repo.into();
        pr["base"]["ref"] = base_ref.into();
        pr["base"]["repo"]["full_name"] = "acme/app".into();
    }
}

/// The runs so far, by id.
fn runs(server: &Server) -> Vec<Value> {
    let mut runs = get(server, "/api/v1/runs").as_array().unwrap().clone();
    runs.sort_by_key(|r| r["id"].as_i64());
    runs
}

/// Waits for run number `count` (1-based) and returns it once it ended, with its log.
fn nth_run(dir: &Dir, server: &Server, count: usize) -> (Value, String) {
    let run = wait_for(&format!("{count} runs"), || runs(server).get(count - 1).cloned());
    let id = run["id"].as_i64().unwrap();
    let run = finished(server, id);
    (run, dir.ok(&["runs", "logs", &id.to_string()]))
}

#[test]
fn pull_requests_merge_requests_and_releases_run_with_githubs_semantics() {
    let dir = Dir::new();
    let forge = dir.path().join("forge");
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join(".github/workflows")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    // A directory the steps' user may write (`nobody` when the tests run as root).
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let check = CHECK.replace("@OUT@", out.to_str().unwrap());
    std::fs::write(work.join(".github/workflows/check.yml"), check).unwrap();
    std::fs::write(work.join(".github/workflows/release.yml"), RELEASE).unwrap();
    let base = commit(&work, &[("feature.txt", "none")], "Initial");
    let bare = forge.join("acme/app.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    let remote = bare.to_str().unwrap().to_owned();
    git(&work, &["push", "-q", &remote, "main"]);
    // Pull request 7, from a branch of the repository: the forge keeps its head and a merge
    // commit (what GitHub computes) under refs/pull/7/.
    git(&work, &["checkout", "-q", "-b", "feature"]);
    let head = commit(&work, &[("feature.txt", "feature")], "Feature");
    git(&work, &["checkout", "-q", "main"]);
    let moved = commit(&work, &[("other.txt", "main moved on")], "Elsewhere");
    git(&work, &["push", "-q", &remote, "main", "feature", "feature:refs/pull/7/head"]);
    git(&work, &["checkout", "-q", "--detach", &moved]);
    git(&work, &["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"]);
    let merge = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(&work, &["push", "-q", &remote, "HEAD:refs/pull/7/merge"]);
    // Pull request 8, from a fork: only its head is here (the forge offers no merge commit).
    git(&work, &["checkout", "-q", "-b", "forked", &base]);
    let forked = commit(&work, &[("feature.txt", "from a fork")], "Forked change");
    git(&work, &["push", "-q", &remote, "forked:refs/pull/8/head"]);
    // Merge request 9 (GitLab's refs), and a tag for a release.
    git(&work, &["push", "-q", &remote, "feature:refs/merge-requests/9/head"]);
    git(&work, &["tag", "v1.0", &moved]);
    git(&work, &["push", "-q", &remote, "v1.0"]);
    let daemon = GitDaemon::start(&forge);

    let added = dir.json(&["repo", "add", &format!("{}/acme/app.git", daemon.url), "--name", "acme/app"]);
    assert_eq!(added["name"], "acme/app", "{added}");
    let stored = secret(&dir, &["set", "DEPLOY_KEY", "--repo", "acme/app"], &format!("{KEY}\n"));
    assert!(stored.status.success(), "{}", String::from_utf8_lossy(&stored.stderr));
    let server = dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1h")]);

    // From the repository itself: the merge commit, the refs GitHub gives, the secret.
    github(
        &server,
        "pull_request",
        "pull_request/opened.payload.json",
        pull_request("opened", 7, "acme/app", "feature", head.clone(), "main"),
    );
    let (run, logs) = nth_run(&dir, &server, 1);
    assert_eq!((run["event"].as_str(), run["sha"].as_str()), (Some("pull_request"), Some(merge.as_str())), "{run}");
    assert_eq!(run["fork"], false);
    let said = format!(
        "pr=7 opened ref=refs/pull/7/merge sha={merge} head=feature base=main key-length={} file=feature",
        KEY.len()
    );
    assert!(logs.contains(&said), "{logs}");
    assert!(!logs.contains(KEY), "the secret is masked: {logs}");

    // Activities outside the default types, and pull requests into another base, run nothing;
    // a push to the pull request (`synchronize`) runs again.
    github(
        &server,
        "pull_request",
        "pull_request/closed.payload.json",
        pull_request("closed", 7, "acme/app", "feature", head.clone(), "main"),
    );
    github(
        &server,
        "pull_request",
        "pull_request/opened.payload.json",
        pull_request("opened", 7, "acme/app", "feature", head.clone(), "develop"),
    );
    github(
        &server,
        "pull_request",
        "pull_request/synchronize.payload.json",
        pull_request("synchronize", 7, "acme/app", "feature", head.clone(), "main"),
    );
    let (run, logs) = nth_run(&dir, &server, 2);
    assert!(logs.contains("pr=7 synchronize ref=refs/pull/7/merge"), "{run}\n{logs}");

    // From a fork: its head (no merge commit offered), no secrets, and no deployment.
    github(
        &server,
        "pull_request",
        "pull_request/opened.payload.json",
        pull_request("opened", 8, "someone/app", "main", forked.clone(), "main"),
    );
    // Its token only reads: its own run, but not a re-run of it.
    let token = wait_for("the fork's run token", || std::fs::read_to_string(out.join("token")).ok());
    let run = wait_for("the fork's run", || runs(&server).get(2).cloned());
    let own = http().get(server.url(&format!("/api/v1/runs/{}", run["id"]))).bearer_auth(&token).send().unwrap();
    assert_eq!(own.status(), reqwest::StatusCode::OK);
    let rerun =
        http().post(server.url(&format!("/api/v1/runs/{}/rerun", run["id"]))).bearer_auth(&token).send().unwrap();
    assert_eq!(rerun.status(), reqwest::StatusCode::FORBIDDEN, "a fork's token is read-only");
    std::fs::write(out.join("done"), "").unwrap();
    let (run, logs) = nth_run(&dir, &server, 3);
    assert_eq!((run["sha"].as_str(), run["fork"].as_bool()), (Some(forked.as_str()), Some(true)), "{run}");
    assert!(
        logs.contains(&format!(
            "pr=8 opened ref=refs/pull/8/head sha={forked} head=main base=main key-length=0 file=from a fork"
        )),
        "{logs}"
    );
    assert_eq!(run["state"], "failure", "{run}\n{logs}");
    assert!(logs.contains("a pull request from a fork cannot deploy"), "{logs}");
    let shown = dir.ok(&["runs", "show", &run["id"].to_string()]);
    assert!(shown.contains("pull_request (from a fork: no secrets, no deployments) acme/app@-"), "{shown}");

    // A GitLab merge request: the same workflow, the same semantics.
    let hook = serde_json::json!({
        "object_kind": "merge_request",
        "user": { "username": "ada" },
        "project": { "path_with_namespace": "acme/app", "name": "app" },
        "object_attributes": {
            "id": 1009, "iid": 9, "action": "open", "title": "Feature", "updated_at": "2026-12-06 14:00:00 UTC",
            "source_branch": "feature", "target_branch": "main",
            "source_project_id": 1, "target_project_id": 1,
            "last_commit": { "id": head },
        },
    });
    let response = http()
        .post(server.url("/api/v1/webhooks/gitlab"))
        .header("X-Gitlab-Event", "Merge Request Hook")
        .header("X-Gitlab-Token", GITLAB_TOKEN)
        .json(&hook)
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}: {}", response.status(), response.text().unwrap());
    let (run, logs) = nth_run(&dir, &server, 4);
    assert_eq!(run["sha"].as_str(), Some(head.as_str()), "{run}");
    let said = format!(
        "pr=9 opened ref=refs/merge-requests/9/head sha={head} head=feature base=main key-length={}",
        KEY.len()
    );
    assert!(logs.contains(&said), "{logs}");

    // A release published: the `release` workflow on the tag's commit; an edit runs nothing.
    github(&server, "release", "release/edited.payload.json", |p| p["release"]["tag_name"] = "v1.0".into());
    github(&server, "release", "release/published.payload.json", |p| p["release"]["tag_name"] = "v1.0".into());
    let (run, logs) = nth_run(&dir, &server, 5);
    assert_eq!((run["event"].as_str(), run["state"].as_str()), (Some("release"), Some("success")), "{run}\n{logs}");
    assert!(logs.contains(&format!("release v1.0 ref=refs/tags/v1.0 sha={moved}")), "{logs}");

    // Re-running the fork's run keeps what it was: the same contexts, still no secrets.
    let fork_run = runs(&server)[2]["id"].as_i64().unwrap();
    let rerun = http()
        .post(server.url(&format!("/api/v1/runs/{fork_run}/rerun")))
        .bearer_auth(crate::util::ADMIN)
        .send()
        .unwrap();
    assert!(rerun.status().is_success(), "{}", rerun.status());
    let (run, logs) = nth_run(&dir, &server, 6);
    assert_eq!(run["fork"], true, "{run}");
    assert!(logs.contains("pr=8 opened ref=refs/pull/8/head") && logs.contains("key-length=0"), "{logs}");
    assert_eq!(runs(&server).len(), 6, "closed, another base and an edited release ran nothing");
}
