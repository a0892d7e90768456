//! Manual runs under `mobius serve` (`workflow_dispatch`): `mobius runs start` and
//! `POST /api/v1/runs`, with inputs typed and checked as GitHub checks them.

use crate::runs::{finished, repository, start};
use crate::util::{ADMIN, Dir, http};

const DEPLOY: &str = "name: Deploy\non:\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        \
                      options: [low, high]\n        default: low\n      dry:\n        type: boolean\n        required: true\n\
                      jobs:\n  go:\n    runs-on: ubuntu-latest\n    steps:\n      \
                      - run: echo \"level=${{ inputs.level }} dry=${{ inputs.dry }} typed=${{ inputs.dry == true }} \
                      event=${{ github.event_name }} ref=${{ github.ref }} via=${{ github.event.inputs.level }}\"\n";
const PUSH_ONLY: &str = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n";

#[test]
fn a_manual_run_gets_typed_inputs_and_bad_ones_are_refused() {
    let dir = Dir::new();
    let repo = repository(
        &dir,
        &[(".github/workflows/deploy.yml", DEPLOY), (".github/workflows/ci.yml", PUSH_ONLY), ("README.md", "x\n")],
    );
    let server = start(&dir, &repo);
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let started = dir.json(
        &[
            &["runs", "start", "Deploy", "--repo", "acme/app", "--input", "level=high", "--input", "dry=true"][..],
            &remote,
        ]
        .concat(),
    );
    let id = started["id"].as_i64().unwrap();
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert_eq!((run["event"].as_str(), run["branch"].as_str()), (Some("workflow_dispatch"), Some("main")));
    assert!(
        logs.contains("level=high dry=true typed=true event=workflow_dispatch ref=refs/heads/main via=high"),
        "{logs}"
    );

    let refused = |args: &[&str], want: &str| {
        let out = dir.run(&[&["runs", "start"][..], args, &remote].concat());
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(said.contains(want), "{args:?}: {said}");
    };
    refused(&["deploy.yml", "--repo", "acme/app", "--input", "dry=maybe"], "input `dry` must be true or false");
    refused(&["deploy.yml", "--repo", "acme/app"], "input `dry` is required");
    refused(&["deploy.yml", "--repo", "acme/app", "--input", "dry=true", "--input", "x=1"], "unknown input `x`");
    refused(&["ci.yml", "--repo", "acme/app"], "cannot be run by hand");
    refused(&["nope.yml", "--repo", "acme/app", "--input", "dry=true"], "has no workflow `nope.yml`");
    refused(
        &["deploy.yml", "--repo", "acme/app", "--ref", "v9", "--input", "dry=true"],
        "no branch, tag or commit `v9`",
    );
    let runs = dir.json(&[&["runs", "list"][..], &remote].concat());
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "a refused start queues nothing: {runs}");

    // A re-run gets the inputs the run was started with.
    let rerun = http().post(server.url(&format!("/api/v1/runs/{id}/rerun"))).bearer_auth(ADMIN).send().unwrap();
    assert!(rerun.status().is_success(), "{}", rerun.status());
    let again: serde_json::Value = rerun.json().unwrap();
    let again = again["id"].as_i64().unwrap_or_else(|| panic!("a run id: {again}"));
    assert_eq!(finished(&server, again)["state"], "success");
    let logs = dir.ok(&["runs", "logs", &again.to_string()]);
    assert!(logs.contains("level=high dry=true typed=true event=workflow_dispatch"), "{logs}");
}
