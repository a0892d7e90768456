//! Environments with protection under `mobius serve`: required reviewers hold a job (state
//! `waiting`) while the rest of its run goes on, until a listed reviewer approves or rejects it;
//! a branch the rules do not allow fails the job before any step; and every job's short-lived
//! `MOBIUS_TOKEN` reaches its own repository's runs only, masked, and dies with its job.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::Value;

use crate::runs::{commit, finished, get, git, repository, start, wait_for};
use crate::util::{ADMIN, Dir, Server, files_holding, http};

/// `build` goes its way while `deploy` waits for the review of `production`.
const REVIEWED: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      \
                        - run: echo built\n  deploy:\n    runs-on: ubuntu-latest\n    environment:\n      \
                        name: production\n      url: https://example.invalid\n    steps:\n      \
                        - run: echo deployed-now\n";

/// The newest run after `after` (an id), once there is one.
fn next_run(server: &Server, after: i64) -> i64 {
    wait_for("a new run", || {
        let runs = get(server, "/api/v1/runs");
        runs.as_array().unwrap().iter().filter_map(|r| r["id"].as_i64()).find(|id| *id > after)
    })
}

/// The state of job `name` of run `id`.
fn job_state(server: &Server, id: i64, name: &str) -> String {
    let run = get(server, &format!("/api/v1/runs/{id}"));
    let job = run["jobs"].as_array().unwrap().iter().find(|j| j["name"] == name).cloned();
    job.map_or_else(String::new, |j| j["state"].as_str().unwrap_or_default().to_owned())
}

/// The job `name` of a run as the API shows it.
fn job(run: &Value, name: &str) -> Value {
    run["jobs"].as_array().unwrap().iter().find(|j| j["name"] == name).cloned().unwrap_or(Value::Null)
}

/// A new token of `scope` named `name`: its secret.
fn token(dir: &Dir, server: &Server, scope: &str, name: &str) -> String {
    let made =
        dir.json(&["token", "create", "--scope", scope, "--name", name, "--server", &server.base, "--token", ADMIN]);
    made["token"].as_str().unwrap().to_owned()
}

fn approve(server: &Server, id: i64, job: &str, token: &str) -> StatusCode {
    let url = server.url(&format!("/api/v1/runs/{id}/jobs/{job}/approve"));
    http().post(url).bearer_auth(token).send().unwrap().status()
}

#[test]
fn required_reviewers_hold_a_job_until_approved_and_a_rejection_fails_the_run() {
    let dir = Dir::new();
    let repo = repository(&dir, &[("README.md", "app\n")]);
    let server = start(&dir, &repo);
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let protected =
        dir.ok(
            &[&["environment", "protect", "acme/app", "production", "--reviewer", "alice"][..], &remote[..]].concat()
        );
    assert!(protected.contains("review by alice"), "{protected}");
    let listed = dir.ok(&["environment", "list"]);
    assert!(listed.contains("acme/app") && listed.contains("production") && listed.contains("alice"), "{listed}");
    let alice = token(&dir, &server, "deploy", "alice");
    let bob = token(&dir, &server, "deploy", "bob");
    let reader = token(&dir, &server, "read", "alice");

    commit(&repo, &[(".github/workflows/deploy.yml", REVIEWED)], "deploy");
    let id = next_run(&server, 0);
    // The rest of the run goes on while the gated job waits.
    wait_for("build to end while deploy waits", || {
        (job_state(&server, id, "build") == "success" && job_state(&server, id, "deploy") == "waiting").then_some(())
    });
    let shown = dir.ok(&["runs", "show", &id.to_string()]);
    assert!(shown.contains("waiting") && shown.contains("deploy"), "{shown}");
    assert_eq!(get(&server, &format!("/api/v1/runs/{id}"))["state"], "running");
    // Only a listed reviewer, with a deploy token, may let it go.
    assert_eq!(approve(&server, id, "deploy", &bob), StatusCode::FORBIDDEN, "bob is no reviewer");
    assert_eq!(approve(&server, id, "deploy", &reader), StatusCode::FORBIDDEN, "a read token reviews nothing");
    assert_eq!(approve(&server, id, "build", &alice), StatusCode::CONFLICT, "build waits for nothing");
    assert_eq!(job_state(&server, id, "deploy"), "waiting", "refused reviews change nothing");
    let said = dir.ok(&[
        "runs",
        "approve",
        &id.to_string(),
        "deploy",
        "--comment",
        "ship it",
        "--server",
        &server.base,
        "--token",
        &alice,
    ]);
    assert!(said.contains("Approved deploy of run") && said.contains("production"), "{said}");
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(logs.contains("deployed-now"), "{logs}");
    assert!(logs.contains("waiting for a review to deploy to `production`"), "{logs}");
    let events = get(&server, "/api/v1/events?limit=500").to_string();
    assert!(events.contains("mobius-environment.approved"), "{events}");
    assert!(events.contains("ship it") && events.contains("alice"), "{events}");
    assert!(events.contains("mobius-environment.changed"), "the protection is in the log: {events}");

    // A rejection fails the job without a step, and so the run.
    commit(&repo, &[("README.md", "app v2\n")], "v2");
    let second = next_run(&server, id);
    wait_for("deploy to wait", || (job_state(&server, second, "deploy") == "waiting").then_some(()));
    dir.ok(&["runs", "reject", &second.to_string(), "deploy", "--server", &server.base, "--token", &alice]);
    let run = finished(&server, second);
    let logs = dir.ok(&["runs", "logs", &second.to_string()]);
    assert_eq!(run["state"], "failure", "{run}\n{logs}");
    assert_eq!(job(&run, "deploy")["state"], "failure", "{run}");
    assert_eq!(job(&run, "deploy")["steps"], serde_json::json!([]), "no step ran: {run}");
    assert!(logs.contains("the deployment to `production` was rejected by alice"), "{logs}");
    assert!(!logs.contains("deployed-now"), "{logs}");
    assert!(get(&server, "/api/v1/events?limit=500").to_string().contains("mobius-environment.rejected"));

    // Cancelling a run ends its waiting job; unprotecting lets the next run through.
    commit(&repo, &[("README.md", "app v3\n")], "v3");
    let third = next_run(&server, second);
    wait_for("deploy to wait", || (job_state(&server, third, "deploy") == "waiting").then_some(()));
    dir.ok(&["runs", "cancel", &third.to_string(), "--server", &server.base, "--token", ADMIN]);
    let run = finished(&server, third);
    assert_eq!((run["state"].as_str(), job(&run, "deploy")["state"].as_str()), (Some("cancelled"), Some("cancelled")));
    assert_eq!(approve(&server, third, "deploy", &alice), StatusCode::CONFLICT, "nothing waits any more");
    dir.ok(&[&["environment", "unprotect", "acme/app", "production"][..], &remote[..]].concat());
    commit(&repo, &[("README.md", "app v4\n")], "v4");
    let fourth = next_run(&server, third);
    assert_eq!(finished(&server, fourth)["state"], "success");
}

const BRANCHES: &str = "on: push\njobs:\n  stage:\n    runs-on: ubuntu-latest\n    environment: staging\n    \
                        steps:\n      - run: echo staged-now\n";

#[test]
fn a_branch_the_rules_do_not_allow_fails_its_job_before_any_step() {
    let dir = Dir::new();
    let repo = repository(&dir, &[("README.md", "app\n")]);
    // Bad rules are refused and store nothing.
    let bad = dir.run(&["environment", "protect", "acme/app", "staging", "--branch", "two words"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("branch pattern `two words` is not valid"));
    assert!(dir.ok(&["environment", "list"]).starts_with("No protected environments."));
    dir.ok(&["environment", "protect", "acme/app", "staging", "--branch", "main-only", "--branch", "release/*"]);
    let server = start(&dir, &repo);
    commit(&repo, &[(".github/workflows/stage.yml", BRANCHES)], "stage");
    let id = next_run(&server, 0);
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "failure", "{run}\n{logs}");
    assert_eq!(job(&run, "stage")["state"], "failure");
    assert_eq!(job(&run, "stage")["steps"], serde_json::json!([]), "no step ran: {run}");
    assert!(
        logs.contains(
            "branch `main` is not allowed to deploy to `staging` by its protection rules (allowed: main-only, release/*)"
        ),
        "{logs}"
    );
    assert!(!logs.contains("staged-now"), "{logs}");
    // An allowed branch deploys.
    git(&repo, &["checkout", "-q", "-b", "release/1"]);
    commit(&repo, &[("README.md", "release\n")], "release");
    let release = next_run(&server, id);
    assert_eq!(finished(&server, release)["state"], "success");
}

/// Saves the job's token and server where the test reads them, then waits (bounded) until the
/// test has tried them, so the job still runs meanwhile.
const TOKEN_WORKFLOW: &str = "on: push\njobs:\n  use-token:\n    runs-on: ubuntu-latest\n    steps:\n      \
    - run: |\n          echo \"token: $MOBIUS_TOKEN\"\n          printf %s \"$MOBIUS_TOKEN\" > \"$OUT/token\"\n          \
    printf %s \"$MOBIUS_SERVER\" > \"$OUT/server\"\n          for i in $(seq 600); do [ -f \"$OUT/done\" ] && break; \
    sleep 0.1; done\n        env:\n          OUT: @OUT@\n";

/// A directory every user may write (steps run as `nobody` when the tests run as root).
fn shared_dir(dir: &Dir) -> std::path::PathBuf {
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    out
}

fn status_with(server: &Server, token: &str, path: &str) -> StatusCode {
    http().get(server.url(path)).bearer_auth(token).send().unwrap().status()
}

#[test]
fn a_jobs_run_token_reaches_its_own_repositorys_runs_only_masked_and_dies_with_the_job() {
    let dir = Dir::new();
    let repo = repository(&dir, &[("README.md", "app\n")]);
    let server = start(&dir, &repo);
    // Another repository with a run of its own.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    git(&other, &["init", "-q", "-b", "main"]);
    std::fs::write(other.join("README.md"), "other\n").unwrap();
    git(&other, &["add", "-A"]);
    git(&other, &["commit", "-qm", "Initial commit"]);
    dir.json(&["repo", "add", other.to_str().unwrap(), "--name", "acme/other", "--hook-server", &server.base]);
    commit(
        &other,
        &[(".github/workflows/ci.yml", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'true'\n")],
        "ci",
    );
    let other_run = next_run(&server, 0);
    finished(&server, other_run);

    let out = shared_dir(&dir);
    let workflow = TOKEN_WORKFLOW.replace("@OUT@", out.to_str().unwrap());
    commit(&repo, &[(".github/workflows/token.yml", &workflow)], "token");
    let id = next_run(&server, other_run);
    let secret = wait_for("the job's token", || {
        std::fs::read_to_string(out.join("token")).ok().filter(|t| !t.is_empty() && out.join("server").exists())
    });
    assert_eq!(std::fs::read_to_string(out.join("server")).unwrap(), server.base, "MOBIUS_SERVER");
    assert_eq!(status_with(&server, &secret, &format!("/api/v1/runs/{id}")), StatusCode::OK, "its own run");
    assert_eq!(status_with(&server, &secret, &format!("/api/v1/runs/{id}/logs")), StatusCode::OK);
    assert_eq!(status_with(&server, &secret, &format!("/api/v1/runs/{other_run}")), StatusCode::FORBIDDEN);
    assert_eq!(status_with(&server, &secret, "/api/v1/secrets"), StatusCode::FORBIDDEN);
    assert_eq!(status_with(&server, &secret, "/api/v1/events"), StatusCode::FORBIDDEN);
    let mint =
        http().post(server.url("/api/v1/tokens")).bearer_auth(&secret).json(&serde_json::json!({"scope": "admin"}));
    assert_eq!(mint.send().unwrap().status(), StatusCode::FORBIDDEN);
    let start_other = http()
        .post(server.url("/api/v1/runs"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({ "repository": "acme/other", "workflow": "ci.yml" }));
    assert_eq!(start_other.send().unwrap().status(), StatusCode::FORBIDDEN, "another repository's run");
    let listed = dir.ok(&["token", "list"]);
    assert!(listed.contains(&format!("run {id}: use-token")), "the run token is a token while its job runs: {listed}");

    std::fs::write(out.join("done"), "").unwrap();
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(logs.contains("token: ***"), "masked: {logs}");
    assert!(!logs.contains(&secret), "the token in clear: {logs}");
    assert_eq!(status_with(&server, &secret, &format!("/api/v1/runs/{id}")), StatusCode::UNAUTHORIZED, "revoked");
    assert!(!dir.ok(&["token", "list"]).contains(&format!("run {id}")), "no run token left behind");
    assert!(files_holding(&dir.data(), &secret).is_empty(), "the token in clear in the data directory");
}
