//! The artifact and cache stores, directly and through the engine: digest reproducibility,
//! `if-no-files-found`, cache hits across runs, restore-keys, failed jobs and branch scoping.

use std::fs;
use std::path::Path;

use mobius_pipelines::artifacts::{self, IfNoFilesFound, JobFiles, StoreError};
use mobius_pipelines::engine::{self, RecordingObserver, RunOptions, RunReport, Status};
use mobius_pipelines::workflow;
use serde_json::json;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }
}

fn upload_digest(files: &[(&str, &str)]) -> String {
    let (store, ws) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    write(ws.path(), files);
    let record =
        artifacts::upload(store.path(), "a", "dist", &JobFiles::open(ws.path(), ws.path()), 1, IfNoFilesFound::Error)
            .expect("upload")
            .expect("some files");
    assert!(record.digest.starts_with("sha256:") && record.digest.len() == 7 + 64, "{}", record.digest);
    record.digest
}

#[test]
fn digest_is_reproducible() {
    let one = upload_digest(&[("dist/a.txt", "alpha"), ("dist/b/c.txt", "gamma")]);
    // Written in the other order, later, so with other mtimes and inode order.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let two = upload_digest(&[("dist/b/c.txt", "gamma"), ("dist/a.txt", "alpha")]);
    assert_eq!(one, two);
    let changed = upload_digest(&[("dist/a.txt", "alphb"), ("dist/b/c.txt", "gamma")]);
    assert_ne!(one, changed);
    let renamed = upload_digest(&[("dist/a2.txt", "alpha"), ("dist/b/c.txt", "gamma")]);
    assert_ne!(one, renamed);
}

#[test]
fn upload_download_and_no_files() {
    let (store, ws, out) =
        (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    write(
        ws.path(),
        &[("dist/x.bin", "same"), ("dist/y.bin", "same"), ("dist/z.log", "no"), ("dist/deep/w.bin", "deep")],
    );
    let record = artifacts::upload(
        store.path(),
        "bins",
        "dist/*.bin",
        &JobFiles::open(ws.path(), ws.path()),
        7,
        IfNoFilesFound::Warn,
    )
    .expect("upload")
    .expect("files");
    let paths: Vec<&str> = record.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["x.bin", "y.bin"]);
    // Identical contents are stored once.
    assert_eq!(fs::read_dir(store.path().join("blobs/sha256")).expect("blobs").count(), 1);
    let got = artifacts::download(store.path(), Some("bins"), out.path(), 7, &JobFiles::open(out.path(), out.path()))
        .expect("download");
    assert_eq!(got, vec![record]);
    assert_eq!(fs::read_to_string(out.path().join("y.bin")).expect("read"), "same");
    // Another run does not see it; all artifacts go under their names.
    assert!(matches!(
        artifacts::download(store.path(), Some("bins"), out.path(), 8, &JobFiles::open(out.path(), out.path())),
        Err(StoreError::NotFound(_))
    ));
    artifacts::download(store.path(), None, out.path(), 7, &JobFiles::open(out.path(), out.path()))
        .expect("download all");
    assert!(out.path().join("bins/x.bin").is_file());
    let none = artifacts::upload(
        store.path(),
        "e",
        "missing/",
        &JobFiles::open(ws.path(), ws.path()),
        7,
        IfNoFilesFound::Error,
    );
    assert!(matches!(none, Err(StoreError::NoFiles(_))), "{none:?}");
    assert!(matches!(
        artifacts::upload(store.path(), "../x", "dist", &JobFiles::open(ws.path(), ws.path()), 7, IfNoFilesFound::Warn),
        Err(StoreError::BadName(_))
    ));
}

const CACHE_WORKFLOW: &str = r#"
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      hit: ${{ steps.c.outputs.cache-hit }}
      content: ${{ steps.show.outputs.content }}
    steps:
      - id: c
        uses: actions/cache@v4
        with:
          path: |
            deps
            ~/.tool
          key: deps-${{ env.VERSION }}
          restore-keys: deps-
      - id: show
        run: |
          echo "content=$(cat deps/file 2>/dev/null || echo none)/$(cat ~/.tool/t 2>/dev/null || echo none)" >> "$GITHUB_OUTPUT"
          mkdir -p deps ~/.tool
          echo "$VERSION" > deps/file
          echo "tool-$VERSION" > ~/.tool/t
          test "$FAIL" != yes
"#;

/// Runs the cache workflow with `VERSION`, on `branch`, failing its job when `fail`.
fn run_cache(store: &Path, version: &str, branch: &str, fail: bool) -> RunReport {
    let text = CACHE_WORKFLOW.replace(
        "on: push\n",
        &format!("on: push\nenv:\n  VERSION: '{version}'\n  FAIL: '{}'\n", if fail { "yes" } else { "no" }),
    );
    let workflow = workflow::parse("cache.yml", &text).expect("workflow");
    let (src, work) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let mut opts = RunOptions::new(src.path(), work.path());
    opts.github = json!({ "repository": "acme/app", "sha": "abc", "ref": format!("refs/heads/{branch}") });
    opts.store_dir = Some(store.to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(engine::run(&workflow, opts, &mut RecordingObserver::default()))
}

fn outputs(report: &RunReport) -> (String, String) {
    let job = &report.jobs[0];
    (job.outputs["hit"].clone(), job.outputs["content"].clone())
}

#[test]
fn cache_across_runs() {
    let store = tempfile::tempdir().expect("tmp");
    // A failed job saves nothing.
    let failed = run_cache(store.path(), "1", "main", true);
    assert_eq!(failed.result, Status::Failure);
    assert_eq!(outputs(&failed), ("false".into(), "none/none".into()));
    let miss = run_cache(store.path(), "1", "main", false);
    assert_eq!(miss.result, Status::Success);
    assert_eq!(outputs(&miss), ("false".into(), "none/none".into()));
    let hit = run_cache(store.path(), "1", "main", false);
    assert_eq!(outputs(&hit), ("true".into(), "1/tool-1".into()));
    // Another key: restored by the `deps-` prefix, but not a hit; then saved under deps-2.
    let partial = run_cache(store.path(), "2", "main", false);
    assert_eq!(outputs(&partial), ("false".into(), "1/tool-1".into()));
    let newest = run_cache(store.path(), "3", "main", false);
    assert_eq!(outputs(&newest), ("false".into(), "2/tool-2".into()), "restore-keys pick the newest entry");
}

#[test]
fn cache_branch_scoping() {
    let store = tempfile::tempdir().expect("tmp");
    run_cache(store.path(), "f", "feature", false);
    assert_eq!(outputs(&run_cache(store.path(), "f", "feature", false)).0, "true");
    // Not visible from another branch, nor from the default branch.
    assert_eq!(outputs(&run_cache(store.path(), "f", "other", false)), ("false".into(), "none/none".into()));
    assert_eq!(outputs(&run_cache(store.path(), "f", "main", false)).0, "false");
    // What main saved is visible from a branch that has nothing of its own.
    run_cache(store.path(), "m", "main", false);
    assert_eq!(outputs(&run_cache(store.path(), "m", "third", false)), ("true".into(), "m/tool-m".into()));
}
