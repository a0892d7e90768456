//! Reusable workflows in files: calling jobs and `on.workflow_call`.

use mobius_pipelines::workflow::{self, CallInputKind, CallSecrets, CallTarget};
use serde_json::json;

use super::check;

const CALLER: &str = "on: push
jobs:
  build:
    uses: ./.github/workflows/build.yml
    with:
      name: app
      debug: true
      level: 3
    secrets: inherit
  remote:
    needs: build
    if: always()
    name: Remote
    strategy:
      matrix:
        os: [linux]
    concurrency: remote
    permissions: read-all
    uses: octo/lib/.github/workflows/ci.yml@v1
    secrets:
      token: ${{ secrets.DEPLOY_TOKEN }}
";

#[test]
fn calling_jobs_are_valid_and_modelled() {
    check(CALLER, &[]);
    let w = workflow::parse("w.yml", CALLER).expect("valid");
    let build = w.jobs[0].uses.as_ref().expect("a call");
    assert_eq!(build.target, CallTarget::Local { path: ".github/workflows/build.yml".into() });
    let with: Vec<_> = build.with.iter().map(|a| (a.name.as_str(), a.value.clone())).collect();
    assert_eq!(with, [("name", json!("app")), ("debug", json!(true)), ("level", json!(3))]);
    assert_eq!(build.secrets, CallSecrets::Inherit);
    let remote = w.jobs[1].uses.as_ref().expect("a call");
    assert_eq!(remote.target.to_string(), "octo/lib/.github/workflows/ci.yml@v1");
    assert_eq!(remote.secrets, CallSecrets::Map(vec![("token".into(), "${{ secrets.DEPLOY_TOKEN }}".into())]));
    assert!(w.jobs[1].steps.is_empty());
}

#[test]
fn step_job_keys_on_a_calling_job_are_errors() {
    let allowed = "allowed: name, needs, if, strategy, concurrency, permissions, uses, with, secrets";
    check(
        "on: push\njobs:\n  b:\n    uses: ./.github/workflows/x.yml\n    runs-on: ubuntu-latest\n    env: {A: b}\n    steps: [{run: x}]\n",
        &[
            &format!(
                "w.yml:5:5: error: `runs-on` is not allowed on job `b`, which calls a reusable workflow ({allowed})"
            ),
            &format!("w.yml:6:5: error: `env` is not allowed on job `b`, which calls a reusable workflow ({allowed})"),
            &format!(
                "w.yml:7:5: error: `steps` is not allowed on job `b`, which calls a reusable workflow ({allowed})"
            ),
        ],
    );
    check(
        "on: push\njobs:\n  b:\n    runs-on: x\n    with: {a: 1}\n    secrets: inherit\n    steps: [{run: x}]\n",
        &[
            "w.yml:5:5: error: `with` of job `b` goes with `uses:` (a reusable workflow call)",
            "w.yml:6:5: error: `secrets` of job `b` goes with `uses:` (a reusable workflow call)",
        ],
    );
}

#[test]
fn bad_uses_and_with_values() {
    let job = |uses: &str, rest: &str| format!("on: push\njobs:\n  b:\n    uses: {uses}\n{rest}");
    check(
        &job("./.github/workflows/x.yml@v1", ""),
        &[
            "w.yml:4:11: error: job `b` calls `./.github/workflows/x.yml@v1`: a local workflow takes no `@ref`: it is the caller's commit",
        ],
    );
    check(
        &job("octo/lib/.github/workflows/x.yml", ""),
        &[
            "w.yml:4:11: error: job `b` calls `octo/lib/.github/workflows/x.yml`: a remote workflow needs an `@ref` (`owner/repo/.github/workflows/x.yml@v1`)",
        ],
    );
    check(
        &job("./ci/x.yml", ""),
        &[
            "w.yml:4:11: error: job `b` calls `./ci/x.yml`: a reusable workflow is a `.yml` or `.yaml` file directly in `.github/workflows/`",
        ],
    );
    check(
        &job("./.github/workflows/x.yml", "    with:\n      list: [1]\n    secrets: all\n"),
        &[
            "w.yml:6:13: error: `with.list` must be a string, a number or a boolean, not a sequence",
            "w.yml:7:14: error: `secrets` must be `inherit` or a mapping, not a string",
        ],
    );
}

const CALLED: &str = "on:
  workflow_call:
    inputs:
      name:
        type: string
        required: true
        description: what to build
      debug:
        type: boolean
        default: false
      level: {type: number, default: 2}
    outputs:
      version:
        description: the version built
        value: ${{ jobs.build.outputs.version }}-${{ jobs.build.result }}
    secrets:
      token:
        required: true
      optional:
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - id: v
        run: echo version=1 >> $GITHUB_OUTPUT
";

#[test]
fn workflow_call_is_typed_and_jobs_context_is_valid_in_its_outputs() {
    check(CALLED, &[]);
    let call = workflow::parse("w.yml", CALLED).expect("valid").on.workflow_call.expect("workflow_call");
    let inputs: Vec<_> = call.inputs.iter().map(|i| (i.name.as_str(), i.kind, i.required, i.default.clone())).collect();
    assert_eq!(
        inputs,
        [
            ("name", CallInputKind::String, true, None),
            ("debug", CallInputKind::Boolean, false, Some(json!(false))),
            ("level", CallInputKind::Number, false, Some(json!(2))),
        ]
    );
    assert_eq!(call.outputs[0].value, "${{ jobs.build.outputs.version }}-${{ jobs.build.result }}");
    let secrets: Vec<_> = call.secrets.iter().map(|s| (s.name.as_str(), s.required)).collect();
    assert_eq!(secrets, [("token", true), ("optional", false)]);
    // Nothing after `workflow_call:` is a reusable workflow without inputs, and no warning.
    check(&CALLED.replace(CALLED.split("jobs:").next().unwrap_or_default(), "on: workflow_call\n"), &[]);
}

#[test]
fn workflow_call_mistakes() {
    check(
        "on:\n  workflow_call:\n    inputs:\n      a: {required: true}\n      b: {type: choice}\n      c: {type: boolean, default: 'yes'}\n    outputs:\n      o: {description: x}\n    secret: {}\njobs:\n  b:\n    steps: [{run: x}]\n",
        &[
            "w.yml:4:7: error: workflow_call input `a` needs a `type` (string, boolean or number)",
            "w.yml:5:17: error: workflow_call input `b` has unknown type `choice` (string, boolean or number)",
            "w.yml:6:35: error: default of workflow_call input `c` is not a boolean",
            "w.yml:8:7: error: workflow_call output `o` needs a `value`",
            "w.yml:9:5: error: unknown key `secret` in `workflow_call`; did you mean `secrets`?",
        ],
    );
    // `jobs` is GitHub's context of `on.workflow_call.outputs` only.
    check(
        "on: push\njobs:\n  b:\n    steps:\n      - run: echo ${{ jobs.a.result }}\n      - if: jobs.a.result\n        run: x\n",
        &[
            "w.yml:5:23: error: the `jobs` context is only available in `on.workflow_call.outputs.<name>.value`",
            "w.yml:6:13: error: the `jobs` context is only available in `on.workflow_call.outputs.<name>.value`",
        ],
    );
}
