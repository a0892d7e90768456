//! A run, and each of its jobs, reads as finished only once every event it caused is in the
//! log: what `mobius demo` relies on when it deploys the artifact a run just uploaded.

use std::sync::Arc;
use std::time::Duration;

use mobius_app::{App, Config};
use mobius_store::{Repository, Store};

use crate::support::{commit, repository};

const WORKFLOW: &str = "on: push
jobs:
  build:
    runs-on: local
    steps:
      - run: mkdir -p dist && echo \"$GITHUB_RUN_ID $GITHUB_SHA\" > dist/id
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: dist
";

/// Reads run `id` until it is final, then at once its log and whether its artifact is known:
/// `(id, digest, known)`.
fn watch(store: &dyn Store, id: i64, log: &std::path::Path) -> (i64, String, bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let run = store.run(id).unwrap().expect("the run is stored");
        if run.record.state.is_final() {
            assert_eq!(run.record.state.as_str(), "success", "run {id}: {run:?}");
            let lines = mobius_runs::logs::read_after(log, 0).unwrap();
            let digest = uploaded_digest(&lines).unwrap_or_else(|| panic!("run {id} uploaded nothing"));
            let artifact = format!("pkg:generic/dist@{}", digest.replace(':', "%3A"));
            let known = store.artifact(&artifact).unwrap().is_some();
            return (id, digest, known);
        }
        assert!(std::time::Instant::now() < deadline, "run {id} did not finish");
        std::thread::yield_now();
    }
}

/// The upload action's line: ``uploaded artifact `dist`: 1 file(s), digest sha256:…``.
fn uploaded_digest(log: &[mobius_runs::logs::RunLogLine]) -> Option<String> {
    log.iter().find_map(|line| {
        let rest = line.text.strip_prefix("uploaded artifact `dist`: ")?;
        Some(rest.rsplit_once(", digest ")?.1.to_owned())
    })
}

/// 200 runs, each checked the moment it reads as finished: its artifact (a distinct digest
/// per run) is already known to the log. Before runs stored their events first, the demo
/// found no artifact about one time in ten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_s_artifact_is_in_the_log_the_moment_the_run_reads_finished() {
    let root = tempfile::tempdir().unwrap();
    let repo = repository(root.path(), WORKFLOW);
    let mut config = Config::new(root.path().join("data"));
    config.parallelism = 1;
    let app = App::open(config).unwrap();
    let store: Arc<dyn Store> = app.store.clone();
    let repository = Repository { name: "acme/app".into(), path: repo.display().to_string(), credentials: None };
    let name = repository.name.clone();
    mobius_log::blocking::spawn(move || store.add_repository(&repository)).await.unwrap();
    app.runs.poll(&name).await.unwrap();

    // In rounds of ten: each run has a watcher from before it can finish, reading it as a
    // client would, as fast as it can, and looking its artifact up the moment it reads final.
    let mut digests = std::collections::BTreeSet::new();
    for round in 0..20 {
        let mut runs = Vec::new();
        for i in 0..10 {
            let repo = repo.clone();
            mobius_log::blocking::spawn(move || commit(&repo, "version.txt", &format!("{round}.{i}"))).await;
            runs.extend(app.runs.poll(&name).await.unwrap());
        }
        assert_eq!(runs.len(), 10, "one run per commit");
        let watchers: Vec<_> = runs
            .into_iter()
            .map(|id| {
                let (store, path) = (app.store.clone(), app.runs.log_path(id));
                std::thread::spawn(move || watch(store.as_ref(), id, &path))
            })
            .collect();
        for watcher in watchers {
            let (id, digest, known) = watcher.join().unwrap();
            assert!(known, "run {id} reads finished but its artifact {digest} is not in the log yet");
            digests.insert(digest);
        }
    }
    assert_eq!(digests.len(), 200, "each run uploaded its own artifact");
}
