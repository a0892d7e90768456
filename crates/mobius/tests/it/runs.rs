//! Pipelines under `mobius serve`: a commit to a registered repository runs its workflow
//! (through the installed git hook), the run is persisted with its jobs, steps and logs, its
//! CDEvents fill in DORA and the value stream, and concurrency groups, cancellation, re-runs
//! and restarts behave as documented.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{ADMIN, Dir, Server, http};

const CI: &str = "\
name: CI
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo building $(cat version.txt)
      - run: mkdir -p dist && cp version.txt dist/
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: dist
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo testing
";

/// `git` in `dir` with a fixed identity and no user configuration.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository under `dir/repo` with `files`, committed on `main`.
pub(crate) fn repository(dir: &Dir, files: &[(&str, &str)]) -> std::path::PathBuf {
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    write(&repo, files);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "Initial commit"]);
    repo
}

fn write(repo: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = repo.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

pub(crate) fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    write(repo, files);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// Waits until `check` returns `Some`, or fails after 60 s.
pub(crate) fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn get(server: &Server, path: &str) -> Value {
    let response = http().get(server.url(path)).bearer_auth(ADMIN).send().unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().unwrap()
}

/// The run with this id once it reached a final state.
pub(crate) fn finished(server: &Server, id: i64) -> Value {
    wait_for(&format!("run {id} to end"), || {
        let run = get(server, &format!("/api/v1/runs/{id}"));
        let state = run["state"].as_str().unwrap_or_default();
        (!["queued", "running"].contains(&state)).then_some(run)
    })
}

pub(crate) fn start(dir: &Dir, repo: &Path) -> Server {
    let server = dir.serve(&[]);
    let added = dir.json(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/app", "--hook-server", &server.base]);
    assert_eq!(added["branches"], 1, "{added}");
    assert_eq!(added["hooks"].as_array().map(Vec::len), Some(2), "{added}");
    server
}

/// Registering a repository again gives its hooks a new token and revokes the old one.
#[test]
fn re_adding_a_repository_revokes_its_old_hook_token() {
    let dir = Dir::new();
    let repo = repository(&dir, &[(".github/workflows/ci.yml", CI), ("version.txt", "1.0")]);
    let server = start(&dir, &repo);
    let token_file = repo.join(".git/mobius-hook-token");
    let first = std::fs::read_to_string(&token_file).unwrap();
    dir.json(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/app", "--hook-server", &server.base]);
    let second = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(first, second);
    let status =
        |token: &str| http().get(server.url("/api/v1/runs")).bearer_auth(token.trim()).send().unwrap().status();
    assert_eq!(status(&first), reqwest::StatusCode::UNAUTHORIZED, "the old hook token is revoked");
    assert_eq!(status(&second), reqwest::StatusCode::OK);
}

#[test]
fn a_commit_runs_its_workflow_and_fills_in_dora_and_the_value_stream() {
    let dir = Dir::new();
    let repo = repository(&dir, &[(".github/workflows/ci.yml", CI), ("version.txt", "1.0")]);
    let server = start(&dir, &repo);
    let token = std::fs::read_to_string(repo.join(".git/mobius-hook-token")).unwrap();
    assert!(token.starts_with("mbx_"), "the hook's token lives in the git directory");
    assert!(!std::fs::read_to_string(repo.join(".git/hooks/post-commit")).unwrap().contains(&token));

    // Registering recorded the existing commit: nothing ran for it.
    assert_eq!(get(&server, "/api/v1/runs"), json!([]));
    let sha = commit(&repo, &[("version.txt", "1.1")], "Bump to 1.1");
    let runs = wait_for("the hook to trigger a run", || {
        let runs = get(&server, "/api/v1/runs");
        (!runs.as_array().unwrap().is_empty()).then_some(runs)
    });
    let id = runs[0]["id"].as_i64().unwrap();
    let run = finished(&server, id);
    assert_eq!(run["state"], "success", "{run}");
    assert_eq!((run["sha"].as_str(), run["branch"].as_str()), (Some(sha.as_str()), Some("main")));
    let jobs: Vec<(&str, &str)> = run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["name"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(jobs, [("build", "success"), ("test", "success")]);
    assert_eq!(run["jobs"][0]["steps"].as_array().unwrap().len(), 4);

    // Logs: the CLI reads them locally; the API streams them as resumable SSE.
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert!(logs.contains("build › Run echo building $(cat version.txt) | building 1.1"), "{logs}");
    let sse = http()
        .get(server.url(&format!("/api/v1/runs/{id}/logs")))
        .bearer_auth(ADMIN)
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", "1")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!sse.contains("id: 1\n") && sse.contains("id: 2\n"), "resumes after line 1: {sse}");
    assert!(sse.contains("event: end\ndata: {\"state\":\"success\"}"), "{sse}");

    // The run's CDEvents are in the log, with the commit that triggered it.
    let events = dir.json(&["events", "list", "--limit", "100"]);
    let types: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    for ty in ["change.merged", "pipelinerun.queued", "pipelinerun.finished", "taskrun.finished", "artifact.packaged"] {
        assert!(types.iter().any(|t| t.contains(ty)), "{ty} missing from {types:?}");
    }
    let digest = logs.split("digest ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("digest");

    // Deploying that artifact closes the loop: lead time and every pipeline stage are known.
    let now = jiff::Timestamp::now().to_string();
    let deployed = json!({
        "context": {"specversion": "0.5.1", "id": "deploy-1", "source": "/test/cd", "type": "dev.cdevents.service.deployed.0.3.0", "timestamp": now},
        "subject": {"id": "app", "source": "/test/cd", "content": {
            "environment": {"id": "production"},
            "artifactId": format!("pkg:generic/dist@{}", digest.replace(':', "%3A")),
        }},
    });
    let response = http().post(server.url("/api/v1/events")).bearer_auth(ADMIN).json(&deployed).send().unwrap();
    assert!(response.status().is_success(), "{}", response.text().unwrap());
    let flow = dir.json(&["flow", "--service", "app"]);
    let stage = |name: &str| flow["stages"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap();
    for name in ["commit_to_queued", "queued_to_started", "started_to_finished", "finished_to_deploy_started"] {
        assert!(stage(name)["median_seconds"].is_number(), "{name} is unknown: {flow}");
    }
    // The first deployment ships every commit it reaches: the initial one and the bump.
    assert_eq!(flow["changes"], 2, "{flow}");
    let dora = dir.json(&["dora", "--service", "app"]);
    assert_eq!(dora["lead_time"]["changes"], 2, "{dora}");
    assert!(dora["lead_time"]["median_seconds"].is_number(), "{dora}");
}

#[test]
fn concurrency_cancel_rerun_and_restart() {
    let slow = "\
on: push
concurrency:
  group: deploy-${{ github.ref }}
  cancel-in-progress: true
jobs:
  slow:
    runs-on: x
    steps:
      - run: echo started; sleep 30
      - if: always()
        run: echo cleanup
";
    let dir = Dir::new();
    let repo = repository(&dir, &[(".github/workflows/slow.yml", slow)]);
    let mut server = start(&dir, &repo);
    commit(&repo, &[("a.txt", "1")], "First");
    let first = wait_for("the first run to start", || {
        let runs = get(&server, "/api/v1/runs?state=running");
        runs.as_array().unwrap().first().and_then(|r| r["id"].as_i64())
    });
    // A newer run in the group cancels the one in progress; its always() step still runs.
    commit(&repo, &[("a.txt", "2")], "Second");
    let cancelled = finished(&server, first);
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert!(cancelled["reason"].as_str().unwrap().contains("superseded by run"), "{cancelled}");
    let logs = dir.ok(&["runs", "logs", &first.to_string()]);
    assert!(logs.contains("| cleanup"), "always() ran in the cancelled job: {logs}");

    // The second run is now in progress; cancel it by hand, with the CLI.
    let second = wait_for("the second run to start", || {
        let runs = get(&server, "/api/v1/runs?state=running");
        runs.as_array().unwrap().first().and_then(|r| r["id"].as_i64())
    });
    assert_ne!(first, second);
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let mut args = vec!["runs", "cancel", "999"];
    args.extend(remote);
    let out = dir.run(&args);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no run 999"));
    let id = second.to_string();
    let mut args = vec!["runs", "cancel", id.as_str()];
    args.extend(remote);
    dir.ok(&args);
    assert_eq!(finished(&server, second)["state"], "cancelled");

    // A re-run of the failed (cancelled) jobs is a new attempt; kill -9 the server under it.
    let mut args = vec!["runs", "rerun", id.as_str(), "--failed"];
    args.extend(remote);
    let rerun: i64 = dir.ok(&args).split_whitespace().nth(2).and_then(|n| n.parse().ok()).expect("new run id");
    wait_for("the re-run to start", || {
        (get(&server, &format!("/api/v1/runs/{rerun}"))["state"] == "running").then_some(())
    });
    assert_eq!(get(&server, &format!("/api/v1/runs/{rerun}"))["attempt"], 2);
    server.kill9();

    // Restarted: the run in flight is interrupted and queued once more.
    let server = dir.serve(&[]);
    let interrupted = get(&server, &format!("/api/v1/runs/{rerun}"));
    assert_eq!(interrupted["state"], "interrupted", "{interrupted}");
    let runs = get(&server, "/api/v1/runs");
    let requeued = runs.as_array().unwrap().iter().find(|r| r["requeue_of"] == rerun).expect("re-queued");
    assert_eq!(requeued["attempt"], 2);
    let id = requeued["id"].as_i64().unwrap();
    let response = http().post(server.url(&format!("/api/v1/runs/{id}/cancel"))).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(finished(&server, id)["state"], "cancelled");
    let response = http().post(server.url(&format!("/api/v1/runs/{id}/cancel"))).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(response.status(), 409, "an ended run cannot be cancelled");
    // Cancelling needs a token that may run pipelines.
    let response = http().post(server.url(&format!("/api/v1/runs/{id}/rerun"))).send().unwrap();
    assert_eq!(response.status(), 401);
}

/// Removing a clone's registration through the API revokes the token its hooks hold, as the
/// CLI does: a forgotten clone cannot go on starting runs.
#[test]
fn removing_a_repository_through_the_api_revokes_its_hook_token() {
    let dir = Dir::new();
    let repo = repository(&dir, &[(".github/workflows/ci.yml", CI), ("version.txt", "1.0")]);
    let server = start(&dir, &repo);
    let token = std::fs::read_to_string(repo.join(".git/mobius-hook-token")).unwrap();
    let status =
        |token: &str| http().get(server.url("/api/v1/runs")).bearer_auth(token.trim()).send().unwrap().status();
    assert_eq!(status(&token), reqwest::StatusCode::OK);
    let removed = http().delete(server.url("/api/v1/repositories/acme/app")).bearer_auth(ADMIN).send().unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());
    assert_eq!(status(&token), reqwest::StatusCode::UNAUTHORIZED, "the hooks' token went with the registration");
}
