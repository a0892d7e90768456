//! Workflow files: parsing, lint rules, matrix expansion, and the starter-workflow corpus.

mod call;
mod starters;

use mobius_pipelines::workflow::{
    self, Combination, InputKind, Job, Matrix, MatrixEntryError, MatrixError, MatrixSpec, StepAction, Strategy,
    expand_matrix,
};
use serde_json::{Value, json};

// ---- lint rules ----

/// Lints `yaml` as `w.yml` and compares the rendered diagnostics.
fn check(yaml: &str, expected: &[&str]) {
    let got: Vec<String> = workflow::lint("w.yml", yaml).iter().map(ToString::to_string).collect();
    assert_eq!(got, expected, "\n{yaml}");
}

const OK: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";

#[test]
fn valid_workflow_has_no_diagnostics() {
    check(OK, &[]);
}

#[test]
fn unknown_keys_with_suggestions() {
    check(
        "on: push\njobs:\n  build:\n    runs_on: ubuntu-latest\n    steps:\n      - run: echo hi\n        shel: bash\n",
        &[
            "w.yml:4:5: error: unknown key `runs_on` in job `build`; did you mean `runs-on`?",
            "w.yml:7:9: error: unknown key `shel` in a step of job `build`; did you mean `shell`?",
        ],
    );
    check(
        "nmae: x\non: push\njobs:\n  b:\n    steps: [{run: x}]\n",
        &["w.yml:1:1: error: unknown key `nmae` in the workflow; did you mean `name`?"],
    );
    check(
        "on:\n  push:\n    branch: [main]\njobs:\n  b:\n    steps: [{run: x}]\n",
        &["w.yml:3:5: error: unknown key `branch` in `push`; did you mean `branches`?"],
    );
    check(
        "on: pusj\njobs:\n  b:\n    steps: [{run: x}]\n",
        &["w.yml:1:5: error: unknown event `pusj` in `on`; did you mean `push`?"],
    );
    check(
        "on: push\njobs:\n  b:\n    strategy:\n      fail_fast: false\n    steps: [{run: x}]\n",
        &["w.yml:5:7: error: unknown key `fail_fast` in strategy; did you mean `fail-fast`?"],
    );
    // No merge keys on GitHub, so `<<` is just an unknown key.
    check(
        "on: push\njobs:\n  b:\n    <<: {x: 1}\n    steps: [{run: x}]\n",
        &["w.yml:4:5: error: unknown key `<<` in job `b`"],
    );
}

#[test]
fn wrong_types_name_the_key() {
    check(
        "on: push\njobs:\n  b:\n    timeout-minutes: soon\n    continue-on-error: maybe\n    steps: [{run: x}]\n",
        &[
            "w.yml:4:22: error: `timeout-minutes` must be a number, not a string",
            "w.yml:5:24: error: `continue-on-error` must be a boolean, not a string",
        ],
    );
    check(
        "on: push\njobs:\n  b:\n    steps: {run: x}\n",
        &["w.yml:4:12: error: `steps` must be a sequence, not a mapping"],
    );
    check(
        "on: push\njobs:\n  b:\n    env: [A]\n    steps: [{run: x}]\n",
        &["w.yml:4:10: error: `env` must be a mapping, not a sequence"],
    );
    check(
        "on:\n  schedule:\n    - cron: '61 * * * *'\njobs:\n  b:\n    steps: [{run: x}]\n",
        &["w.yml:3:13: error: invalid cron `61 * * * *`: minute field `61`: `61` is not in 0-59"],
    );
}

#[test]
fn bad_expressions_point_into_the_value() {
    check(
        "on: push\njobs:\n  b:\n    steps:\n      - run: echo ${{ github.sha == == 1 }}\n",
        &["w.yml:5:37: error: invalid expression: unexpected `==` at column 24"],
    );
    check(
        "on: push\njobs:\n  b:\n    if: github.ref == 'main' &&\n    steps: [{run: x}]\n",
        &["w.yml:4:9: error: invalid expression in `if`: unexpected end of expression"],
    );
    check(
        "on: push\njobs:\n  b:\n    steps:\n      - run: |\n          echo one\n          echo ${{ nope.x }}\n",
        &["w.yml:7:20: error: invalid expression: unrecognized named-value `nope` at column 19"],
    );
    check(
        "on: push\njobs:\n  b:\n    steps:\n      - if: ${{ lenght(github.ref) }}\n        run: x\n",
        &["w.yml:5:17: error: invalid expression: unknown function `lenght` at column 5"],
    );
}

#[test]
fn needs_undefined_and_cycles() {
    check(
        "on: push\njobs:\n  build:\n    steps: [{run: x}]\n  test:\n    needs: [biuld]\n    steps: [{run: x}]\n",
        &["w.yml:6:13: error: job `test` needs `biuld`, which is not defined; did you mean `build`?"],
    );
    check(
        "on: push\njobs:\n  build:\n    needs: test\n    steps: [{run: x}]\n  test:\n    needs: build\n    steps: [{run: x}]\n",
        &["w.yml:3:3: error: `needs` cycle: build → test → build"],
    );
    check(
        "on: push\njobs:\n  a:\n    needs: [c]\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    steps: [{run: x}]\n  c:\n    needs: [b]\n    steps: [{run: x}]\n  d:\n    needs: [d]\n    steps: [{run: x}]\n",
        &["w.yml:3:3: error: `needs` cycle: a → c → b → a", "w.yml:12:3: error: `needs` cycle: d → d"],
    );
}

#[test]
fn matrix_over_256() {
    let axis = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let yaml = format!(
        "on: push\njobs:\n  b:\n    strategy:\n      matrix:\n        a: [{}]\n        b: [{}]\n    steps: [{{run: x}}]\n",
        axis(16),
        axis(17)
    );
    check(&yaml, &["w.yml:3:3: error: matrix of job `b` expands to 272 combinations (at most 256)"]);
    let yaml = yaml.replace(&format!("[{}]\n    steps", axis(17)), &format!("[{}]\n    steps", axis(16)));
    check(&yaml, &[]);
}

#[test]
fn unsupported_actions_container_services() {
    check(
        "on: push\njobs:\n  b:\n    steps:\n      - uses: actions/checkout@v4\n      - name: login\n        uses: docker/login-action@v3\n      - uses: ./local\n      - uses: docker://alpine:3\n      - uses: actions/cache\n      - uses: dtolnay/rust-toolchain@stable\n      - uses: mobius/deploy@main\n        with: {service: shop, environment: staging, artifact: x}\n",
        &[
            "w.yml:9:15: error: unsupported action `docker://alpine:3` in job `b`: Docker actions are not supported: jobs run as host processes",
            "w.yml:10:15: error: unsupported action `actions/cache` in job `b`: a remote action needs an @ref (a tag, branch or commit SHA)",
        ],
    );
    check(
        "on: push\njobs:\n  b:\n    container: node:20\n    services:\n      db: {image: postgres}\n    steps: [{run: x}]\n",
        &[
            "w.yml:4:5: error: `container` is not supported: jobs run as host processes (job `b`)",
            "w.yml:5:5: error: `services` is not supported: jobs run as host processes (job `b`)",
        ],
    );
}

#[test]
fn deploy_inputs_are_required_and_known() {
    check(
        "on: push\njobs:\n  d:\n    steps:\n      - uses: mobius/deploy@v1\n        with:\n          service: shop\n          enviroment: staging\n          artifact: ${{ needs.build.outputs.digest }}\n      - id: bare\n        uses: Mobius/Deploy@v1\n      - uses: mobius/deploy@v1\n        with: {service: a, environment: b, artifact: c, version: v1}\n",
        &[
            "w.yml:5:15: error: `mobius/deploy` needs input `environment` in `with:` (step of job `d`)",
            "w.yml:8:11: error: unknown input `enviroment` of `mobius/deploy` in step of job `d` (inputs: service, environment, artifact, version); did you mean `environment`?",
            "w.yml:11:15: error: `Mobius/Deploy` needs input `service` in `with:` (step `bare` of job `d`)",
            "w.yml:11:15: error: `Mobius/Deploy` needs input `environment` in `with:` (step `bare` of job `d`)",
            "w.yml:11:15: error: `Mobius/Deploy` needs input `artifact` in `with:` (step `bare` of job `d`)",
        ],
    );
}

#[test]
fn step_shape_and_ids() {
    check(
        "on: push\njobs:\n  b:\n    steps:\n      - id: one\n        run: x\n      - id: one\n        run: y\n      - run: x\n        uses: actions/checkout@v4\n      - name: nothing\n  empty:\n    steps: []\n  none:\n    runs-on: x\n",
        &[
            "w.yml:7:9: error: duplicate step id `one` in job `b`",
            "w.yml:9:9: error: step of job `b` has both `run` and `uses`",
            "w.yml:11:9: error: step `nothing` of job `b` has neither `run` nor `uses`",
            "w.yml:12:3: error: job `empty` has no steps",
            "w.yml:14:3: error: job `none` has no steps",
        ],
    );
}

#[test]
fn duplicate_keys_are_invalid_yaml() {
    check("on: push\non: pull_request\njobs: {}\n", &["w.yml:2:1: error: invalid YAML: duplicate mapping key: on"]);
}

#[test]
fn missing_top_level_keys_and_non_mapping_documents() {
    check(
        "name: x\n",
        &["w.yml:1:1: error: missing required key `on`", "w.yml:1:1: error: missing required key `jobs`"],
    );
    check("", &["w.yml:1:1: error: `the workflow` must be a mapping, not a null"]);
    check("- a\n", &["w.yml:1:1: error: `the workflow` must be a mapping, not a sequence"]);
}

#[test]
fn lint_never_panics_on_odd_input() {
    let deep = format!("on: push\njobs: {}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(workflow::lint("w.yml", &deep)[0].message.starts_with("invalid YAML"));
    for text in [
        "{",
        "on: [",
        "\t",
        ": :",
        "jobs: 3\non: 4",
        "jobs:\n  a:\n    steps: [1, [2], {run: [3]}]\non: {push: {branches: {}}}",
        "a: *b",
    ] {
        let _ = workflow::lint("w.yml", text);
        let _ = workflow::parse("w.yml", text);
    }
}

#[test]
fn whole_mappings_as_one_expression() {
    // `env` may be one expression (evaluated at run time); `with` and `outputs` may not.
    let env = "on: push\nenv: ${{ fromJSON(vars.E) }}\njobs:\n  b:\n    env: ${{ fromJSON(vars.J) }}\n    steps:\n      - env: ${{ fromJSON(vars.S) }}\n        run: x\n";
    check(env, &[]);
    let w = parse(env);
    assert_eq!(w.env, [(String::new(), "${{ fromJSON(vars.E) }}".to_owned())]);
    assert_eq!(w.jobs[0].env, [(String::new(), "${{ fromJSON(vars.J) }}".to_owned())]);
    assert_eq!(w.jobs[0].steps[0].env, [(String::new(), "${{ fromJSON(vars.S) }}".to_owned())]);
    check(
        "on: push\njobs:\n  b:\n    outputs: ${{ fromJSON(vars.O) }}\n    steps:\n      - uses: actions/cache@v4\n        with: ${{ fromJSON(vars.W) }}\n",
        &[
            "w.yml:4:14: error: `outputs` must be a mapping, not one expression",
            "w.yml:7:15: error: `with` must be a mapping, not one expression",
        ],
    );
}

// ---- the model ----

fn parse(yaml: &str) -> workflow::Workflow {
    workflow::parse("w.yml", yaml)
        .unwrap_or_else(|e| panic!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

#[test]
fn shorthand_on_forms() {
    let w = parse(OK);
    assert!(w.on.push.is_some() && w.on.pull_request.is_none());
    let w = parse(&OK.replace("on: push", "on: [push, pull_request]"));
    assert!(w.on.push.is_some() && w.on.pull_request.is_some());
    let w = parse(&OK.replace("on: push", "on:\n  push:\n  workflow_dispatch:"));
    assert_eq!(w.on.workflow_dispatch, Some(vec![]));
    // YAML 1.2: `on` is a key, never `true`.
    let w = parse(&OK.replace("on: push", "\"on\": push"));
    assert!(w.on.push.is_some());
}

#[test]
fn events_mobius_does_not_raise_are_warnings() {
    check(
        &OK.replace("on: push", "on:\n  push:\n  watch:\n    types: [started]"),
        &["w.yml:3:3: warning: event `watch` is accepted but Mobius never raises it"],
    );
    assert!(workflow::parse("w.yml", &OK.replace("on: push", "on: [push, watch]")).is_ok());
    // `release` is raised (by a forge's release webhook), with only a `types` filter.
    check(&OK.replace("on: push", "on:\n  release:\n    types: [published]"), &[]);
    let w = workflow::parse("w.yml", &OK.replace("on: push", "on:\n  release:\n    types: [published]")).unwrap();
    assert_eq!(w.on.release.map(|f| f.types), Some(vec!["published".to_owned()]));
    check(
        &OK.replace("on: push", "on:\n  release:\n    branches: [main]"),
        &["w.yml:3:5: error: unknown key `branches` in `release`"],
    );
}

#[test]
fn triggers_in_full() {
    let w = parse(&OK.replace(
        "on: push",
        "on:\n  push:\n    branches: [main, 'release/**']\n    tags: v*\n    paths-ignore: [docs/**]\n  pull_request:\n    branches-ignore: [wip]\n    paths: ['src/**']\n  schedule:\n    - cron: '30 5 * * 1-5'\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [info, debug]\n        default: info\n      dry:\n        type: boolean\n        default: true\n      n:\n        type: number\n        required: true\n      env:\n        type: environment\n      text:\n        description: free text",
    ));
    let push = w.on.push.unwrap();
    assert_eq!(push.branches, ["main", "release/**"]);
    assert_eq!(push.tags, ["v*"]);
    assert_eq!(push.paths_ignore, ["docs/**"]);
    let pr = w.on.pull_request.unwrap();
    assert_eq!((pr.branches_ignore, pr.paths), (vec!["wip".to_string()], vec!["src/**".to_string()]));
    assert_eq!(w.on.schedule, ["30 5 * * 1-5"]);
    let inputs = w.on.workflow_dispatch.unwrap();
    let kinds: Vec<_> =
        inputs.iter().map(|i| (i.name.as_str(), i.kind.clone(), i.default.clone(), i.required)).collect();
    assert_eq!(
        kinds,
        [
            ("level", InputKind::Choice(vec!["info".into(), "debug".into()]), Some("info".into()), false),
            ("dry", InputKind::Boolean, Some("true".into()), false),
            ("n", InputKind::Number, None, true),
            ("env", InputKind::Environment, None, false),
            ("text", InputKind::String, None, false),
        ]
    );
    check(
        &OK.replace("on: push", "on:\n  workflow_dispatch:\n    inputs:\n      x:\n        type: choice\n        options: [a]\n        default: b\n      y:\n        type: text"),
        &[
            "w.yml:7:18: error: default `b` of input `x` does not fit its type",
            "w.yml:9:15: error: input `y` has unknown type `text` (string, boolean, choice, number or environment)",
        ],
    );
}

#[test]
fn jobs_and_steps_in_full() {
    let w = parse(
        "name: CI\nrun-name: Build ${{ github.ref }}\non: push\nenv:\n  A: 1\ndefaults:\n  run:\n    shell: bash\npermissions:\n  contents: read\nconcurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true\njobs:\n  build:\n    name: Build\n    runs-on: [self-hosted, linux]\n    environment:\n      name: production\n      url: https://example.com\n    timeout-minutes: 10\n    continue-on-error: ${{ matrix.experimental }}\n    outputs:\n      v: ${{ steps.s.outputs.v }}\n    strategy:\n      fail-fast: false\n      max-parallel: 2\n      matrix:\n        os: [a, b]\n    steps:\n      - id: s\n        name: Step\n        run: echo v=1 >> $GITHUB_OUTPUT\n        shell: sh\n        working-directory: sub\n        env:\n          B: true\n        if: success()\n        continue-on-error: true\n        timeout-minutes: 1.5\n      - uses: actions/checkout@v4\n        with:\n          fetch-depth: 0\n  test:\n    needs: build\n    if: always()\n    concurrency: tests\n    steps: [{run: x}]\n",
    );
    assert_eq!(w.name.as_deref(), Some("CI"));
    assert_eq!(w.env, [("A".to_string(), "1".to_string())]);
    assert_eq!(w.defaults.shell.as_deref(), Some("bash"));
    assert_eq!(w.permissions, Some(json!({"contents": "read"})));
    let c = w.concurrency.clone().unwrap();
    assert_eq!((c.group.as_str(), c.cancel_in_progress), ("ci-${{ github.ref }}", workflow::Setting::Value(true)));
    let ids: Vec<&str> = w.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["build", "test"]);
    let build: &Job = w.job("build").unwrap();
    assert_eq!(build.runs_on, Some(json!(["self-hosted", "linux"])));
    assert_eq!(build.environment.as_deref(), Some("production"));
    assert_eq!(build.timeout_minutes, workflow::Setting::Value(10.0));
    assert_eq!(build.continue_on_error, workflow::Setting::Expr("${{ matrix.experimental }}".into()));
    let s = build.strategy.as_ref().unwrap();
    assert_eq!(
        (s.fail_fast.clone(), s.max_parallel.clone()),
        (workflow::Setting::Value(false), Some(workflow::Setting::Value(2.0)))
    );
    assert_eq!(expand_matrix(s).unwrap().len(), 2);
    let step = &build.steps[0];
    assert_eq!(step.id.as_deref(), Some("s"));
    assert_eq!((step.shell.as_deref(), step.working_directory.as_deref()), (Some("sh"), Some("sub")));
    assert_eq!(step.env, [("B".to_string(), "true".to_string())]);
    assert_eq!(step.timeout_minutes, Some(workflow::Setting::Value(1.5)));
    assert_eq!((step.pos.line, step.pos.column), (31, 9));
    match &build.steps[1].action {
        StepAction::Uses { action, with, .. } => {
            assert_eq!(action, "actions/checkout@v4");
            assert_eq!(with, &[("fetch-depth".to_string(), "0".to_string())]);
        }
        other => panic!("{other:?}"),
    }
    let test = w.job("test").unwrap();
    assert_eq!(test.needs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["build"]);
    assert_eq!(test.if_.as_deref(), Some("always()"));
    assert_eq!(test.timeout_minutes, workflow::Setting::Value(360.0));
    assert_eq!(test.concurrency.as_ref().map(|c| c.group.as_str()), Some("tests"));
}

#[test]
fn anchors_and_aliases_are_resolved() {
    let w = parse(
        "on: push\nenv: &common\n  A: one\njobs:\n  a:\n    env: *common\n    steps: &steps\n      - run: echo $A\n  b:\n    steps: *steps\n",
    );
    assert_eq!(w.job("a").unwrap().env, [("A".to_string(), "one".to_string())]);
    assert_eq!(w.job("b").unwrap().steps.len(), 1);
}

// ---- matrix expansion ----

/// The strategy of a job whose matrix is `matrix` (YAML flow text, so key order is kept).
fn strategy(matrix: &str) -> Strategy {
    let yaml = format!("on: push\njobs:\n  b:\n    strategy:\n      matrix: {matrix}\n    steps: [{{run: x}}]\n");
    let w = parse(&yaml);
    w.jobs[0].strategy.clone().unwrap()
}

fn combos(matrix: &str) -> Vec<Value> {
    expand_matrix(&strategy(matrix)).unwrap().into_iter().map(Value::Object).collect()
}

/// A strategy built directly, for matrices that lint rejects.
fn static_strategy(axes: Vec<(&str, Vec<Value>)>) -> Strategy {
    let matrix = Matrix { axes: axes.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), ..Matrix::default() };
    Strategy { matrix: Some(MatrixSpec::Static(matrix)), fail_fast: workflow::Setting::Value(true), max_parallel: None }
}

#[test]
fn matrix_expansion_table() {
    let cases: Vec<(&str, Value)> = vec![
        // Plain product, first axis outermost.
        (
            r#"{"os": ["l", "w"], "v": [1, 2]}"#,
            json!([{"os": "l", "v": 1}, {"os": "l", "v": 2}, {"os": "w", "v": 1}, {"os": "w", "v": 2}]),
        ),
        // Docs, "Expanding or adding matrix configurations".
        (
            r#"{"fruit": ["apple", "pear"], "animal": ["cat", "dog"], "include": [ {"color": "green"}, {"color": "pink", "animal": "cat"}, {"fruit": "apple", "shape": "circle"}, {"fruit": "banana"}, {"fruit": "banana", "animal": "cat"}]}"#,
            json!([
                {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
                {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
                {"fruit": "pear", "animal": "cat", "color": "pink"},
                {"fruit": "pear", "animal": "dog", "color": "green"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ]),
        ),
        // Docs, "Excluding matrix configurations": 12 - 1 - 2 = 9.
        (
            r#"{"os": ["macos", "windows"], "version": [12, 14, 16], "environment": ["staging", "production"], "exclude": [{"os": "macos", "version": 12, "environment": "production"}, {"os": "windows", "version": 16}]}"#,
            json!([
                {"os": "macos", "version": 12, "environment": "staging"},
                {"os": "macos", "version": 14, "environment": "staging"},
                {"os": "macos", "version": 14, "environment": "production"},
                {"os": "macos", "version": 16, "environment": "staging"},
                {"os": "macos", "version": 16, "environment": "production"},
                {"os": "windows", "version": 12, "environment": "staging"},
                {"os": "windows", "version": 12, "environment": "production"},
                {"os": "windows", "version": 14, "environment": "staging"},
                {"os": "windows", "version": 14, "environment": "production"},
            ]),
        ),
        // Docs, "Example: Expanding configurations": node 16 gets npm 6 only on windows.
        (
            r#"{"os": ["windows-latest", "ubuntu-latest"], "node": [14, 16], "include": [{"os": "windows-latest", "node": 16, "npm": 6}]}"#,
            json!([
                {"os": "windows-latest", "node": 14},
                {"os": "windows-latest", "node": 16, "npm": 6},
                {"os": "ubuntu-latest", "node": 14},
                {"os": "ubuntu-latest", "node": 16},
            ]),
        ),
        // Docs, "Example: Adding configurations": includes that fit nothing are appended.
        (
            r#"{"os": ["windows-latest", "ubuntu-latest"], "version": [10, 12, 14], "include": [ {"os": "windows-latest", "version": 17}]}"#,
            json!([
                {"os": "windows-latest", "version": 10}, {"os": "windows-latest", "version": 12},
                {"os": "windows-latest", "version": 14}, {"os": "ubuntu-latest", "version": 10},
                {"os": "ubuntu-latest", "version": 12}, {"os": "ubuntu-latest", "version": 14},
                {"os": "windows-latest", "version": 17},
            ]),
        ),
        // Only include: each entry is one combination.
        (r#"{"include": [{"a": 1}, {"a": 2}]}"#, json!([{"a": 1}, {"a": 2}])),
        // Excluding everything leaves the appended includes.
        (r#"{"a": [1], "exclude": [{"a": 1}], "include": [{"a": 2}]}"#, json!([{"a": 2}])),
        // Exclude with a number written as a string matches the number.
        (r#"{"a": [1, 2], "exclude": [{"a": "1"}]}"#, json!([{"a": 2}])),
    ];
    for (matrix, expected) in cases {
        assert_eq!(Value::Array(combos(matrix)), expected, "{matrix}");
    }
}

#[test]
fn matrix_limits_and_dynamic() {
    let axis = |n: u32| (0..n).map(Value::from).collect::<Vec<_>>();
    assert_eq!(expand_matrix(&static_strategy(vec![("a", axis(257))])), Err(MatrixError::TooMany { count: 257 }));
    let huge = static_strategy(vec![("a", axis(1000)), ("b", axis(1000))]);
    assert_eq!(expand_matrix(&huge), Err(MatrixError::TooMany { count: 1_000_000 }));
    assert_eq!(expand_matrix(&static_strategy(vec![("a", axis(256))])).map(|c| c.len()), Ok(256));
    let empty = Strategy { matrix: Some(MatrixSpec::Static(Matrix::default())), ..static_strategy(vec![]) };
    assert_eq!(expand_matrix(&empty), Err(MatrixError::Empty));
    let s = strategy("${{ fromJSON(needs.a.outputs.m) }}");
    assert!(matches!(s.matrix, Some(MatrixSpec::Expr(_))));
    assert_eq!(expand_matrix(&s), Err(MatrixError::Dynamic));
    // One computed axis keeps the whole mapping, in file order, for the engine to evaluate.
    let s = strategy("{os: [linux], node: '${{ fromJSON(needs.a.outputs.v) }}', include: [{os: linux, x: 1}]}");
    let Some(MatrixSpec::Computed(entries)) = &s.matrix else { panic!("computed: {:?}", s.matrix) };
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["os", "node", "include"]);
    assert_eq!(expand_matrix(&s), Err(MatrixError::Dynamic));
    let computed = [("os", json!(["linux"])), ("node", json!([18, 20])), ("exclude", json!([{ "node": 20 }]))];
    let matrix = workflow::matrix_from_entries(computed.iter().map(|(k, v)| (*k, v))).expect("well-formed");
    assert_eq!(
        expand_matrix(&Strategy { matrix: Some(MatrixSpec::Static(matrix)), ..s.clone() }).map(|c| c.len()),
        Ok(1)
    );
    let bad = [("node", json!("18"))];
    let error = workflow::matrix_from_entries(bad.iter().map(|(k, v)| (*k, v))).unwrap_err();
    assert_eq!(error, MatrixEntryError::AxisNotASequence { axis: "node".into(), value: json!("18") });
    assert_eq!(error.to_string(), "`matrix.node` is \"18\", not a sequence");
    let no_matrix = Strategy { matrix: None, fail_fast: workflow::Setting::Value(true), max_parallel: None };
    assert_eq!(expand_matrix(&no_matrix), Ok(vec![Combination::new()]));
}

// ---- syntax GitHub accepts, and how messages quote ----

/// A job's `snapshot`, a schedule's `timezone` and a dispatch input without a body are valid on
/// GitHub, so they lint clean; their wrong shapes are still errors.
#[test]
fn snapshot_timezone_and_bare_inputs_are_accepted() {
    let text = "on:\n  schedule:\n    - cron: '0 3 * * *'\n      timezone: America/New_York\n  workflow_dispatch:\n    \
                inputs:\n      bare:\n      empty: {}\njobs:\n  a:\n    runs-on: x\n    snapshot: my-image\n    \
                steps: [{run: x}]\n  b:\n    runs-on: x\n    snapshot:\n      image-name: my-image\n      \
                version: 2.*\n    steps: [{run: x}]\n";
    check(text, &[]);
    let parsed = workflow::parse("w.yml", text).expect("valid");
    let inputs = parsed.on.workflow_dispatch.expect("dispatch");
    assert_eq!(
        inputs.iter().map(|i| (i.name.as_str(), i.required)).collect::<Vec<_>>(),
        [("bare", false), ("empty", false)]
    );
    assert_eq!(inputs[0].kind, InputKind::String);
    check(
        "on:\n  schedule:\n    - cron: '0 3 * * *'\n      timezone: [x]\njobs:\n  a:\n    runs-on: x\n    \
         snapshot:\n      version: '1'\n      size: big\n    steps: [{run: x}]\n",
        &[
            "w.yml:4:17: error: `timezone` must be a string, not a sequence",
            "w.yml:9:7: error: `snapshot` needs an `image-name`",
            "w.yml:10:7: error: unknown key `size` in snapshot",
        ],
    );
}

/// Whether `message` puts a quote inside a quote: a `'` or `"` inside backticks, or a backtick
/// inside double quotes.
fn nests_quotes(message: &str) -> bool {
    let (mut in_backticks, mut in_double) = (false, false);
    for c in message.chars() {
        match c {
            '`' if in_double => return true,
            '`' => in_backticks = !in_backticks,
            '"' | '\'' if in_backticks => return true,
            '"' => in_double = !in_double,
            _ => {}
        }
    }
    false
}

/// Lint messages quote one level deep: a string token is shown as `string 'x'`, never inside
/// backticks, and no message wraps a quoted value in more quotes.
#[test]
fn lint_messages_never_nest_quotes() {
    let files = [
        "on: push\njobs:\n  a:\n    runs-on: x\n    if: ${{ 'a' 'b' }}\n    steps: [{run: \"${{ 'x' == }}\"}]\n",
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: \"${{ format('{0') }}\"}]\n",
        "on:\n  schedule:\n    - cron: '0 0 * 13 *'\n    - cron: '*/0 * * * *'\n      timezone: ''\n  \
         workflow_dispatch:\n    inputs:\n      n:\n        type: number\n        default: abc\n      c:\n        \
         type: choice\n      k:\n        type: kind\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        \
         os: linux\n        include: [1]\n    steps:\n      - uses: mobius/deploy@v1\n        with: {servce: x}\n      \
         - uses: nope/nope@v1\n      - uses: x\n  b:\n    needs: [zz, b]\n    runs-on: x\n    container: x\n    steps: []\n",
    ];
    let mut messages = Vec::new();
    for text in files {
        messages.extend(workflow::lint("w.yml", text).into_iter().map(|d| d.message));
    }
    assert!(messages.len() > 15, "{messages:#?}");
    assert!(messages.iter().any(|m| m.ends_with("unexpected string 'b' at column 9")), "{messages:#?}");
    let nested: Vec<&String> = messages.iter().filter(|m| nests_quotes(m)).collect();
    assert!(nested.is_empty(), "{nested:#?}");
}
