//! Actions from repositories, served from bare repositories on this machine (`file://` as the
//! actions URL): JavaScript actions with `pre`/`post` and the toolkit's files, composite
//! actions calling composite actions, local `./` actions, pinning, the shared cache, and the
//! errors a job gets when an action cannot be had.

use std::path::{Path, PathBuf};
use std::process::Command;

use mobius_pipelines::engine::{self, RecordingObserver, RunOptions, RunReport, Status};
use mobius_pipelines::remote::ActionCache;
use mobius_pipelines::workflow;
use serde_json::json;

/// A directory of bare repositories, `<root>/<owner>/<repo>`, served as `file://<root>`.
struct Forge {
    root: tempfile::TempDir,
}

impl Forge {
    fn new() -> Forge {
        Forge { root: tempfile::tempdir().unwrap() }
    }

    fn url(&self) -> String {
        format!("file://{}", self.root.path().display())
    }

    /// Publishes `files` as one commit of `owner/repo`, tagged `tag`; returns the commit SHA.
    fn publish(&self, repo: &str, tag: &str, files: &[(&str, &str)]) -> String {
        let work = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = work.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let bare = self.root.path().join(repo);
        if !bare.exists() {
            git(self.root.path(), &["init", "--quiet", "--bare", bare.to_str().unwrap()]);
        }
        git(work.path(), &["init", "--quiet"]);
        git(work.path(), &["add", "."]);
        git(work.path(), &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", tag]);
        git(work.path(), &["tag", tag]);
        git(work.path(), &["push", "--quiet", "--force", bare.to_str().unwrap(), "HEAD:refs/heads/main", tag]);
        let out = Command::new("git").arg("-C").arg(work.path()).args(["rev-parse", "HEAD"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git").arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0").status().unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A Node action with `pre` and `post` that uses the files the Actions toolkit uses: outputs
/// and state in the heredoc format `@actions/core` writes, a job summary.
const HELLO: &[(&str, &str)] = &[
    (
        "action.yml",
        "name: hello\ninputs:\n  who:\n    default: world\n  greeting:\n    required: true\noutputs:\n  message:\n    \
         description: what was said\nruns:\n  using: node20\n  pre: pre.js\n  main: main.js\n  post: post.js\n",
    ),
    (
        "pre.js",
        "const fs = require('fs');\nfs.appendFileSync(process.env.GITHUB_STATE, 'started<<ghadelimiter_1\\nyes\\nghadelimiter_1\\n');\nconsole.log('pre ran for ' + process.env.INPUT_WHO);\n",
    ),
    (
        "main.js",
        "const fs = require('fs');\nfor (const f of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY', 'GITHUB_ENV']) {\n  if (!fs.existsSync(process.env[f])) { console.log(f + ' missing'); process.exit(3); }\n}\nconst said = process.env.INPUT_GREETING + ' ' + process.env.INPUT_WHO;\nfs.appendFileSync(process.env.GITHUB_OUTPUT, 'message<<ghadelimiter_2\\n' + said + '\\nghadelimiter_2\\n');\nfs.appendFileSync(process.env.GITHUB_STATE, 'who=' + process.env.INPUT_WHO + '\\n');\nfs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, '### ' + said + '\\n');\nconsole.log('main saw pre state ' + process.env.STATE_started + ' in ' + require('path').basename(process.env.GITHUB_ACTION_PATH));\n",
    ),
    ("post.js", "console.log('post for ' + process.env.STATE_who + ' after ' + process.env.STATE_started);\n"),
];

/// Two composite actions in one repository: `outer` calls `inner` (by reference, at the same
/// tag) and maps its output.
const TOOLS: &[(&str, &str)] = &[
    (
        "inner/action.yml",
        "name: inner\ninputs:\n  name:\n    required: true\noutputs:\n  shout:\n    value: ${{ steps.up.outputs.text }}\n\
         runs:\n  using: composite\n  steps:\n    - id: up\n      shell: bash\n      run: echo \"text=$(echo '${{ inputs.name }}' | tr a-z A-Z)\" >> \"$GITHUB_OUTPUT\"\n",
    ),
    (
        "outer/action.yml",
        "name: outer\ninputs:\n  name:\n    required: true\n  suffix:\n    default: '!'\noutputs:\n  result:\n    \
         value: ${{ steps.call.outputs.shout }}${{ inputs.suffix }}\nruns:\n  using: composite\n  steps:\n    - id: call\n      \
         uses: acme/tools/inner@v1\n      with:\n        name: ${{ inputs.name }}\n    - shell: bash\n      run: |\n        \
         echo \"path ok: $(test \"$GITHUB_ACTION_PATH\" = '${{ github.action_path }}' && test -f \"$GITHUB_ACTION_PATH/action.yml\" && echo yes)\"\n        \
         echo \"inherited: $FROM_STEP\"\n",
    ),
];

struct Run {
    report: RunReport,
    logs: String,
}

async fn run_workflow(source: &Path, yaml: &str, cache: Option<ActionCache>) -> Run {
    let workflow = workflow::parse("ci.yml", yaml).unwrap_or_else(|e| panic!("{e:?}"));
    let work = tempfile::tempdir().unwrap();
    let mut opts = RunOptions::new(source, work.path());
    opts.github = json!({ "repository": "acme/app", "sha": "abc123", "ref": "refs/heads/main" });
    opts.workflow_file = ".github/workflows/ci.yml".into();
    opts.actions = cache;
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    let logs = observer.log_text().join("\n");
    Run { report, logs }
}

fn job<'r>(run: &'r Run, name: &str) -> &'r engine::JobReport {
    run.report.jobs.iter().find(|j| j.name == name).unwrap_or_else(|| panic!("no job {name}: {}", run.logs))
}

fn step_names(job: &engine::JobReport) -> Vec<&str> {
    job.steps.iter().map(|s| s.name.as_str()).collect()
}

#[tokio::test]
async fn a_node_action_runs_pre_main_and_post_with_the_toolkit_files() {
    let forge = Forge::new();
    forge.publish("acme/hello", "v1", HELLO);
    let data = tempfile::tempdir().unwrap();
    let cache = ActionCache::new(data.path().join("actions"), forge.url());
    let yaml = "on: push\njobs:\n  greet:\n    runs-on: x\n    steps:\n      - id: a\n        uses: acme/hello@v1\n        \
                with:\n          greeting: hi\n          who: Ada\n      - id: b\n        uses: ACME/Hello@v1\n        \
                with:\n          greeting: hello\n      - run: echo \"said ${{ steps.a.outputs.message }} and ${{ steps.b.outputs.message }}\"\n      \
                - run: exit 4\n";
    let run = run_workflow(Path::new("/nonexistent"), yaml, Some(cache)).await;
    let greet = job(&run, "greet");
    assert_eq!(greet.result, Status::Failure, "{}", run.logs);
    assert_eq!(
        step_names(greet),
        [
            "Pre Run acme/hello@v1",
            "Pre Run ACME/Hello@v1",
            "Run acme/hello@v1",
            "Run ACME/Hello@v1",
            "Run echo \"said ${{ steps.a.outputs.message }} and ${{ steps.b.outputs.message }}\"",
            "Run exit 4",
            "Post Run ACME/Hello@v1",
            "Post Run acme/hello@v1",
        ],
        "{}",
        run.logs
    );
    let conclusions: Vec<Status> = greet.steps.iter().map(|s| s.conclusion).collect();
    use Status::*;
    assert_eq!(conclusions, [Success, Success, Success, Success, Success, Failure, Success, Success], "{}", run.logs);
    for line in [
        "pre ran for Ada",
        "pre ran for world",
        "main saw pre state yes in ",
        "said hi Ada and hello world",
        "post for world after yes",
        "post for Ada after yes",
    ] {
        assert!(run.logs.contains(line), "log lacks {line:?}:\n{}", run.logs);
    }
    // Posts run last first, after the failed step.
    let (ada, world) = (run.logs.find("post for Ada").unwrap(), run.logs.find("post for world").unwrap());
    assert!(world < ada, "{}", run.logs);
    assert_eq!(greet.steps[2].outputs["message"], "hi Ada");
    // Fetched once for both steps (the name compares without case).
    assert_eq!(run.logs.matches("fetched acme/hello at").count() + run.logs.matches("fetched ACME/Hello").count(), 1);
}

#[tokio::test]
async fn a_failing_post_fails_the_job_and_pre_if_post_if_are_honoured() {
    let forge = Forge::new();
    let files = [
        (
            "action.yml",
            "runs:\n  using: node16\n  pre: pre.js\n  pre-if: runner.os == 'Windows'\n  main: main.js\n  post: post.js\n",
        ),
        ("pre.js", "console.log('pre must not run')\n"),
        ("main.js", "console.log('main ran')\n"),
        ("post.js", "console.log('post failing'); process.exit(2)\n"),
    ];
    forge.publish("acme/flaky", "v2", &files);
    let data = tempfile::tempdir().unwrap();
    let cache = ActionCache::new(data.path().join("actions"), forge.url());
    let yaml = "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/flaky@v2\n";
    let run = run_workflow(Path::new("/nonexistent"), yaml, Some(cache)).await;
    let j = job(&run, "j");
    assert_eq!(j.result, Status::Failure, "{}", run.logs);
    assert_eq!(step_names(j), ["Run acme/flaky@v2", "Post Run acme/flaky@v2"]);
    assert!(!run.logs.contains("pre must not run") && run.logs.contains("post failing"), "{}", run.logs);
}

#[tokio::test]
async fn composite_actions_nest_with_inputs_outputs_and_the_action_path() {
    let forge = Forge::new();
    forge.publish("acme/tools", "v1", TOOLS);
    let data = tempfile::tempdir().unwrap();
    let cache = ActionCache::new(data.path().join("actions"), forge.url());
    let yaml = "on: push\njobs:\n  j:\n    runs-on: x\n    defaults:\n      run:\n        shell: sh -e {0}\n    outputs:\n      \
                got: ${{ steps.o.outputs.result }}\n    steps:\n      - id: o\n        uses: acme/tools/outer@v1\n        \
                env:\n          FROM_STEP: caller-env\n        with:\n          name: ada\n      \
                - run: test '${{ steps.o.outputs.result }}' = 'ADA!'\n";
    let run = run_workflow(Path::new("/nonexistent"), yaml, Some(cache)).await;
    let j = job(&run, "j");
    assert_eq!(j.result, Status::Success, "{}", run.logs);
    assert_eq!(j.outputs["got"], "ADA!");
    assert!(run.logs.contains("path ok: yes") && run.logs.contains("inherited: caller-env"), "{}", run.logs);
    // The nested action was loaded before the job's first step.
    assert!(run.logs.contains("fetched acme/tools at"), "{}", run.logs);
}

#[tokio::test]
async fn a_local_action_comes_from_the_checked_out_workspace() {
    let source = tempfile::tempdir().unwrap();
    let action = source.path().join(".github/actions/greet");
    std::fs::create_dir_all(&action).unwrap();
    std::fs::write(
        action.join("action.yml"),
        "inputs:\n  who:\n    default: you\noutputs:\n  said:\n    value: ${{ steps.s.outputs.said }}\nruns:\n  using: composite\n  \
         steps:\n    - id: s\n      shell: bash\n      run: echo \"said=hello ${{ inputs.who }} from $(basename \"$GITHUB_ACTION_PATH\")\" >> \"$GITHUB_OUTPUT\"\n",
    )
    .unwrap();
    let yaml = "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: actions/checkout@v4\n      - id: g\n        \
                uses: ./.github/actions/greet\n      - run: test '${{ steps.g.outputs.said }}' = 'hello you from greet'\n      \
                - uses: ./missing\n";
    // No action cache: a local action needs none.
    let run = run_workflow(source.path(), yaml, None).await;
    let j = job(&run, "j");
    let conclusions: Vec<Status> = j.steps.iter().map(|s| s.conclusion).collect();
    use Status::*;
    assert_eq!(conclusions, [Success, Success, Success, Failure], "{}", run.logs);
    assert!(run.logs.contains(".github/workflows/ci.yml:10:15: `./missing` has no action.yml"), "{}", run.logs);
}

#[tokio::test]
async fn pinned_shas_are_verified_and_unpinned_refs_refused_when_required() {
    let forge = Forge::new();
    let sha = forge.publish("acme/hello", "v1", HELLO);
    let data = tempfile::tempdir().unwrap();
    let actions = data.path().join("actions");
    let pinned = format!(
        "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/hello@{sha}\n        with:\n          greeting: hey\n"
    );
    let strict = ActionCache::new(&actions, forge.url()).require_pinned(true);
    let run = run_workflow(Path::new("/nonexistent"), &pinned, Some(strict.clone())).await;
    assert_eq!(job(&run, "j").result, Status::Success, "{}", run.logs);
    assert!(run.logs.contains(&format!("fetched acme/hello at {sha}")), "{}", run.logs);

    let tagged = pinned.replace(&sha, "v1");
    let run = run_workflow(Path::new("/nonexistent"), &tagged, Some(strict)).await;
    let j = job(&run, "j");
    assert_eq!(j.result, Status::Failure, "{}", run.logs);
    assert!(j.steps.iter().all(|s| s.outcome == Status::Skipped), "{}", run.logs);
    assert!(
        run.logs.contains(".github/workflows/ci.yml:6:15: cannot fetch `acme/hello@v1`: `acme/hello@v1` is not pinned"),
        "{}",
        run.logs
    );

    // A SHA the repository does not have is refused, not replaced by whatever is there.
    let unknown = pinned.replace(&sha, &"0123456789abcdef".repeat(3)[..40]);
    let run = run_workflow(Path::new("/nonexistent"), &unknown, Some(ActionCache::new(&actions, forge.url()))).await;
    assert_eq!(job(&run, "j").result, Status::Failure);
    assert!(run.logs.contains("cannot fetch `acme/hello@0123456789abcdef"), "{}", run.logs);
}

#[tokio::test]
async fn two_runs_share_the_cache_and_fetch_once() {
    let forge = Forge::new();
    let sha = forge.publish("acme/hello", "v1", HELLO);
    let data = tempfile::tempdir().unwrap();
    let actions: PathBuf = data.path().join("actions");
    let yaml = "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/hello@v1\n        with:\n          greeting: yo\n";
    let first = run_workflow(Path::new("/nonexistent"), yaml, Some(ActionCache::new(&actions, forge.url()))).await;
    let second = run_workflow(Path::new("/nonexistent"), yaml, Some(ActionCache::new(&actions, forge.url()))).await;
    assert_eq!(job(&first, "j").result, Status::Success, "{}", first.logs);
    assert_eq!(job(&second, "j").result, Status::Success, "{}", second.logs);
    assert!(first.logs.contains(&format!("fetched acme/hello at {sha}")), "{}", first.logs);
    assert!(second.logs.contains(&format!("using cached acme/hello at {sha}")), "{}", second.logs);
    // The cached tree is read-only, and listed.
    let cache = ActionCache::new(&actions, forge.url());
    let listed = cache.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].repo.as_str(), listed[0].sha.as_str()), ("acme/hello", sha.as_str()));
    let main = actions.join("trees/acme/hello").join(&sha).join("main.js");
    assert!(std::fs::OpenOptions::new().append(true).open(&main).is_err() || is_root());
    assert_eq!(cache.prune(std::time::Duration::from_secs(3600)).unwrap(), []);
    assert_eq!(cache.prune(std::time::Duration::ZERO).unwrap().len(), 1);
    assert!(cache.list().unwrap().is_empty() && !main.exists());
}

fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(1)
}

#[tokio::test]
async fn actions_that_cannot_be_had_fail_the_job_before_its_first_step() {
    let forge = Forge::new();
    forge.publish("acme/hello", "v1", HELLO);
    forge.publish("acme/bad", "v1", &[("action.yml", "runs:\n  using: node99\n  main: x.js\n")]);
    forge.publish("acme/empty", "v1", &[("README.md", "no action here\n")]);
    forge.publish("acme/boat", "v1", &[("action.yml", "runs:\n  using: docker\n  image: Dockerfile\n")]);
    let data = tempfile::tempdir().unwrap();
    let cache = ActionCache::new(data.path().join("actions"), forge.url());
    let cases = [
        ("acme/hello@v9", "cannot fetch `acme/hello@v9`: acme/hello has no tag or branch `v9`"),
        ("acme/nothing@v1", "cannot fetch `acme/nothing@v1`: git ls-remote for acme/nothing failed"),
        ("acme/bad@v1", "acme/bad@v1/action.yml:2:10: error: unknown `runs.using: node99`"),
        ("acme/empty@v1", "`acme/empty@v1` has no action.yml or action.yaml"),
        ("acme/boat@v1", "`acme/boat@v1` is a Docker action, and Docker actions are not supported"),
    ];
    for (uses, message) in cases {
        let yaml = format!(
            "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo first\n      - uses: {uses}\n"
        );
        let run = run_workflow(Path::new("/nonexistent"), &yaml, Some(cache.clone())).await;
        let j = job(&run, "j");
        assert_eq!(j.result, Status::Failure, "{uses}: {}", run.logs);
        assert!(j.steps.iter().all(|s| s.outcome == Status::Skipped), "{uses}: {}", run.logs);
        assert!(!run.logs.contains("first"), "{uses}: a step ran: {}", run.logs);
        let want = ".github/workflows/ci.yml:7:15: ";
        assert!(run.logs.contains(want) && run.logs.contains(message), "{uses}: {}", run.logs);
    }
    // Without an action source, a remote action says so.
    let yaml = "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/hello@v1\n";
    let run = run_workflow(Path::new("/nonexistent"), yaml, None).await;
    assert!(run.logs.contains("this run has no action source configured"), "{}", run.logs);
}
