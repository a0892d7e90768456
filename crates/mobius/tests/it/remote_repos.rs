//! Repositories that live on a remote: `mobius repo add URL` mirrors them, a verified push
//! webhook for one fetches it and runs the workflows of exactly the pushed commit, a poll
//! finds a push without a webhook, and a remote that cannot be read registers nothing and
//! never shows credentials.

use crate::actions::GitDaemon;
use crate::runs::{commit, finished, get, git, wait_for};
use crate::util::{Dir, github_push, http};

const CI: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      \
                  - run: echo \"built $(cat version.txt) at ${{ github.sha }}\"\n";

const RELEASE: &str = "on:\n  push:\n    tags: ['v*']\njobs:\n  release:\n    runs-on: ubuntu-latest\n    steps:\n      \
                       - run: echo \"released ${{ github.ref_name }} (${{ github.ref }}, ${{ github.ref_type }})\"\n";

/// A signed GitHub `push` delivery for `acme/app` moving `main` from `before` to `after`.
fn push_delivery(server: &crate::util::Server, before: &str, after: &str) -> (reqwest::StatusCode, String) {
    let response = github_push(server, "acme/app", before, after);
    let status = response.status();
    (status, response.text().unwrap_or_default())
}

/// The runs so far, oldest first, as (sha, state) once each ended.
fn run_shas(server: &crate::util::Server, count: usize) -> Vec<String> {
    wait_for(&format!("{count} runs"), || {
        let runs = get(server, "/api/v1/runs");
        let runs = runs.as_array().unwrap();
        (runs.len() >= count).then(|| {
            let mut shas: Vec<(i64, String)> =
                runs.iter().map(|r| (r["id"].as_i64().unwrap(), r["sha"].as_str().unwrap().to_owned())).collect();
            shas.sort();
            shas.into_iter().map(|(_, sha)| sha).collect()
        })
    })
}

#[test]
fn a_remote_repository_is_mirrored_and_runs_on_webhooks_and_polls() {
    let dir = Dir::new();
    let forge = dir.path().join("forge");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(work.join(".github/workflows")).unwrap();
    std::fs::write(work.join(".github/workflows/ci.yml"), CI).unwrap();
    std::fs::write(work.join(".github/workflows/release.yml"), RELEASE).unwrap();
    let first = commit(&work, &[("version.txt", "1.0")], "Initial");
    let bare = forge.join("acme/app.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let daemon = GitDaemon::start(&forge);

    // A remote that cannot be read: an error naming it, no credentials, nothing registered.
    let out = dir.run(&["repo", "add", "git://127.0.0.1:1/acme/none.git", "--name", "acme/none"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot mirror git://127.0.0.1:1/acme/none.git"), "{said}");
    let out = dir.run(&["repo", "add", "https://ci:hunter2-token@127.0.0.1:1/acme/none.git", "--name", "acme/none"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(!said.contains("hunter2") && said.contains("https://127.0.0.1:1/acme/none.git"), "{said}");
    assert!(!dir.data().join("mirrors/acme/none.git").exists());

    let url = format!("{}/acme/app.git", daemon.url);
    let added = dir.json(&["repo", "add", &url, "--name", "acme/app"]);
    assert_eq!(added["branches"], 1, "{added}");
    assert!(added["path"].as_str().unwrap_or_default().ends_with("mirrors/acme/app.git"), "{added}");

    let server = dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1h")]);
    // The server's first poll (at start) is done before the push: after this one, only the
    // webhook can find the next commit (the interval is an hour; a mirror has no git hooks).
    let token =
        dir.json(&["token", "create", "--scope", "run", "--server", &server.base, "--token", crate::util::ADMIN]);
    let poll = || {
        let polled = http()
            .post(server.url("/api/v1/poll?repository=acme/app"))
            .bearer_auth(token["token"].as_str().unwrap())
            .send()
            .unwrap();
        assert!(polled.status().is_success(), "{}", polled.status());
    };
    poll();
    // A push to the remote, then its webhook: a run on exactly the pushed commit.
    let second = commit(&work, &[("version.txt", "1.1")], "Bump");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let (status, said) = push_delivery(&server, &first, &second);
    assert!(status.is_success(), "{status}: {said}");
    let shas = run_shas(&server, 1);
    assert_eq!(shas, std::slice::from_ref(&second));
    let runs = get(&server, "/api/v1/runs");
    let id = runs[0]["id"].as_i64().unwrap();
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(logs.contains(&format!("built 1.1 at {second}")), "{logs}");

    // No webhook: the poll (what the interval and the hooks call) fetches and finds the push.
    let third = commit(&work, &[("version.txt", "1.2")], "Bump again");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    poll();
    assert_eq!(run_shas(&server, 2), [second, third.clone()]);

    // A tag pushed: the workflows whose push filters take it run (`release.yml` by its `tags`
    // filter, `ci.yml` since it has no filter), on the tagged commit, with the tag's ref.
    git(&work, &["tag", "-a", "v1.2", "-m", "Release 1.2"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "v1.2"]);
    poll();
    assert_eq!(run_shas(&server, 4)[2..], [third.clone(), third.clone()]);
    let runs = get(&server, "/api/v1/runs");
    let release =
        runs.as_array().unwrap().iter().find(|r| r["workflow_file"] == ".github/workflows/release.yml").unwrap();
    let id = release["id"].as_i64().unwrap();
    assert_eq!(finished(&server, id)["state"], "success");
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert!(logs.contains("released v1.2 (refs/tags/v1.2, tag)"), "{logs}");
    drop(server);

    let shown = dir.ok(&["repo", "show", "acme/app"]);
    assert!(shown.contains("(mirror of a remote)") && shown.contains(&format!("main at {}", &third[..12])), "{shown}");
    assert_eq!(dir.ok(&["repo", "remove", "acme/app"]), "Removed acme/app; its runs and logs stay.\n");
    assert!(!dir.data().join("mirrors/acme/app.git").exists());
    assert!(dir.ok(&["repo", "list"]).starts_with("No repositories registered."));
    let again = dir.run(&["repo", "remove", "acme/app"]);
    assert_eq!(again.status.code(), Some(1));
}
