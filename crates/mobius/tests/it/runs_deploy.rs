//! `uses: mobius/deploy@v1` under `mobius serve`: a commit runs a workflow whose build job
//! uploads a release (a `mobius.yaml` for `mobius sample-app`) and whose deploy job, once the
//! build succeeded, deploys that artifact and waits for the rollout; a release that never
//! becomes healthy fails the step, and so the run, while the previous version keeps serving.

use serde_json::Value;

use crate::deploy::{Cleanup, body, free_port};
use crate::runs::{commit, finished, get, repository, start, wait_for};
use crate::util::{Dir, Server};

const WORKFLOW: &str = "\
name: Release
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      digest: ${{ steps.upload.outputs.artifact-digest }}
      version: ${{ steps.version.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - id: version
        run: echo \"version=$(cat version.txt)\" >> \"$GITHUB_OUTPUT\"
      - run: mkdir release && sed \"s/{version}/$(cat version.txt)/\" mobius.template.yaml > release/mobius.yaml
      - id: upload
        uses: actions/upload-artifact@v4
        with:
          name: shop
          path: release
  deploy:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: mobius/policy-check@v1
        with:
          service: shop
      - id: deploy
        uses: mobius/deploy@v1
        with:
          service: shop
          environment: production
          artifact: ${{ needs.build.outputs.digest }}
          version: ${{ needs.build.outputs.version }}
      - run: echo \"deployed ${{ steps.deploy.outputs.version }} in rollout ${{ steps.deploy.outputs.rollout-id }}\"
";

/// `mobius.yaml` with `{version}` for the build to fill in; `extra_run` goes under `run:`.
fn template(port: u16, extra_run: &str) -> String {
    format!(
        "service: shop\nrun:\n  command: mobius\n  args: [sample-app]\n  env:\n    SAMPLE_VERSION: \"{{version}}\"\n  instances: 2\n  readiness_timeout: 3s\n  shutdown_grace: 2s\n{extra_run}environments:\n  - name: production\n    listen: 127.0.0.1:{port}\n    strategy: rolling\n"
    )
}

/// Waits for a new run after `after` runs, then for its end.
fn next_run(server: &Server, after: usize) -> Value {
    let runs = wait_for("the hook to trigger a run", || {
        let runs = get(server, "/api/v1/runs");
        (runs.as_array().unwrap().len() > after).then_some(runs)
    });
    let id = runs[0]["id"].as_i64().unwrap();
    finished(server, id)
}

fn jobs(run: &Value) -> Vec<(String, String)> {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["name"].as_str().unwrap().to_owned(), j["state"].as_str().unwrap().to_owned()))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn a_workflow_deploys_its_artifact_and_waits_for_the_rollout() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let port = free_port();
    let repo = repository(
        &dir,
        &[
            (".github/workflows/release.yml", WORKFLOW),
            ("mobius.template.yaml", &template(port, "")),
            ("version.txt", "v0"),
        ],
    );
    let server = start(&dir, &repo);

    // v1: built, then deployed by the step, which ends once the rollout succeeded.
    commit(&repo, &[("version.txt", "v1")], "Release v1");
    let run = next_run(&server, 0);
    let id = run["id"].as_i64().unwrap();
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert_eq!(jobs(&run), [pair("build", "success"), pair("deploy", "success")]);
    assert_eq!(body(port), "hello from v1");
    let rollout: Value = get(&server, "/api/v1/rollouts/shop/production");
    assert_eq!((rollout["phase"].as_str(), rollout["new"]["version"].as_str()), (Some("succeeded"), Some("v1")));
    let rollout_id = rollout["id"].as_i64().unwrap();
    for line in [
        "deploy › Run mobius/deploy@v1 | deploying shop to production from artifact sha256:".to_owned(),
        format!("rollout {rollout_id} of shop v1 to production started (rolling)"),
        format!("rollout {rollout_id} of shop v1 to production succeeded"),
        format!("deployed v1 in rollout {rollout_id}"),
    ] {
        assert!(logs.contains(&line), "no `{line}` in:\n{logs}");
    }
    assert!(logs.contains(&format!("| rollout {rollout_id}: ")), "the rollout's progress is logged:\n{logs}");

    // v2 never becomes healthy: the rollout fails, so does the step and the run; v1 serves.
    commit(&repo, &[("version.txt", "v2"), ("mobius.template.yaml", &template(port, "  health: /never\n"))], "v2");
    let run = next_run(&server, 1);
    let id = run["id"].as_i64().unwrap();
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "failure", "{run}\n{logs}");
    assert_eq!(jobs(&run), [pair("build", "success"), pair("deploy", "failure")]);
    let rollout: Value = get(&server, "/api/v1/rollouts/shop/production");
    let phase = rollout["phase"].as_str().unwrap().to_owned();
    assert!(["failed", "aborted"].contains(&phase.as_str()), "{rollout:#}");
    let failed = format!("mobius/deploy failed: rollout {} of shop v2 to production ended {phase}", rollout["id"]);
    assert!(logs.contains(&failed), "no `{failed}` in:\n{logs}");
    assert_eq!(body(port), "hello from v1");
}

/// `mobius run` deploys through `MOBIUS_SERVER` (the same data directory here, so the server
/// finds the artifact the local run uploaded); without it the step says what it needs.
#[test]
fn mobius_run_deploys_through_mobius_server() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let port = free_port();
    let repo = repository(
        &dir,
        &[
            (".github/workflows/release.yml", WORKFLOW),
            ("mobius.template.yaml", &template(port, "")),
            ("version.txt", "v7"),
        ],
    );
    let local = dir.cmd(&["run"]).current_dir(&repo).output().unwrap();
    let stdout = String::from_utf8_lossy(&local.stdout);
    assert!(!local.status.success(), "{stdout}");
    assert!(stdout.contains(mobius_pipelines::engine::NO_SERVER), "{stdout}");

    let server = dir.serve(&[]);
    let out = dir
        .cmd(&["run"])
        .current_dir(&repo)
        .env("MOBIUS_SERVER", &server.base)
        .env("MOBIUS_TOKEN", crate::util::ADMIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("of shop v7 to production succeeded"), "{stdout}");
    assert!(stdout.contains("deployed v7 in rollout"), "{stdout}");
    assert!(stdout.contains("shop has no SLOs in production"), "the policy was asked first: {stdout}");
    assert_eq!(body(port), "hello from v7");
}
