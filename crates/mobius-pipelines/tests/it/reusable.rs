//! Remote reusable workflows (`owner/repo/.github/workflows/x.yml@ref`), fetched through the
//! action cache from bare repositories on this machine (`file://` as the actions URL).

use std::path::Path;
use std::process::Command;

use mobius_pipelines::engine::{self, RecordingObserver, RunOptions, Status};
use mobius_pipelines::remote::ActionCache;
use mobius_pipelines::workflow;
use serde_json::json;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git").arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0").status();
    assert!(status.is_ok_and(|s| s.success()), "git {args:?}");
}

/// Publishes `files` as `<root>/<repo>` (bare), tagged `tag`.
fn publish(root: &Path, repo: &str, tag: &str, files: &[(&str, &str)]) {
    let work = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = work.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let bare = root.join(repo);
    git(root, &["init", "--quiet", "--bare", bare.to_str().expect("utf-8")]);
    git(work.path(), &["init", "--quiet"]);
    git(work.path(), &["add", "."]);
    git(work.path(), &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", tag]);
    git(work.path(), &["tag", tag]);
    git(work.path(), &["push", "--quiet", bare.to_str().expect("utf-8"), "HEAD:refs/heads/main", tag]);
}

const GREET: &str = "on:
  workflow_call:
    inputs:
      who: {type: string, required: true}
    outputs:
      said:
        value: ${{ jobs.inner.outputs.said }}
jobs:
  inner:
    uses: ./.github/workflows/say.yml
    with:
      text: hello ${{ inputs.who }}
";

const SAY: &str = "on:
  workflow_call:
    inputs:
      text: {type: string, required: true}
    outputs:
      said:
        value: ${{ jobs.say.outputs.said }}
jobs:
  say:
    runs-on: ubuntu-latest
    outputs:
      said: ${{ steps.s.outputs.said }}
    steps:
      - id: s
        run: echo \"said=${{ inputs.text }} from say\" >> \"$GITHUB_OUTPUT\"
";

const CALLER: &str = "on: push
jobs:
  greet:
    uses: octo/shared/.github/workflows/greet.yml@v1
    with:
      who: mobius
  check:
    needs: greet
    runs-on: ubuntu-latest
    steps:
      - run: test \"${{ needs.greet.outputs.said }}\" = \"hello mobius from say\"
";

/// A remote reusable workflow is fetched at its tag, and its own `./` call reads the same
/// repository at the same commit (as GitHub does), not the caller's; without a source of
/// repositories the calling job fails, saying so.
#[tokio::test]
async fn remote_reusable_workflows_come_from_the_action_cache() {
    let forge = tempfile::tempdir().expect("temp dir");
    publish(
        forge.path(),
        "octo/shared",
        "v1",
        &[(".github/workflows/greet.yml", GREET), (".github/workflows/say.yml", SAY)],
    );
    let caller = workflow::parse("ci.yml", CALLER).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new(work.path(), work.path().join("run"));
    opts.github = json!({ "repository": "acme/app" });
    opts.actions = Some(ActionCache::new(work.path().join("cache"), format!("file://{}", forge.path().display())));
    let mut observer = RecordingObserver::default();
    let report = engine::run(&caller, opts, &mut observer).await;
    let jobs: Vec<(&str, Status)> = report.jobs.iter().map(|j| (j.name.as_str(), j.result)).collect();
    assert_eq!(
        jobs,
        [
            ("greet", Status::Success),
            ("greet / inner", Status::Success),
            ("greet / inner / say", Status::Success),
            ("check", Status::Success)
        ],
        "{:?}",
        observer.log_text()
    );
    assert_eq!(report.jobs[0].outputs.get("said").map(String::as_str), Some("hello mobius from say"));

    let mut observer = RecordingObserver::default();
    let report = engine::run(&caller, RunOptions::new(work.path(), work.path().join("bare")), &mut observer).await;
    assert_eq!(report.jobs[0].result, Status::Failure);
    let expected = "job `greet` (ci.yml:4:11): `octo/shared/.github/workflows/greet.yml@v1` is a remote workflow, \
                    and this run has no source of repositories (`--actions-url`)";
    assert!(observer.log_text().contains(&expected), "{:?}", observer.log_text());
}
