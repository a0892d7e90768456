//! Commit statuses back to the forge: a repository on a remote, with `mobius repo forge`
//! pointing at a loopback server that implements GitHub's and GitLab's statuses endpoints
//! (`POST /repos/{owner}/{repo}/statuses/{sha}`, `POST /projects/{id}/statuses/{sha}`) and
//! records every request. A push and its signed webhook run the workflow; each job's states
//! arrive in order with the token, the context and a link to the run. A forge that answers
//! 503 gets the statuses once it recovers (after a server restart, from the outbox), a token
//! secret that is not stored fails the delivery naming it, and neither changes the run.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::actions::GitDaemon;
use crate::runs::{commit, finished, get, git, wait_for};
use crate::util::{Dir, Received, Server, github_push, read_request, reply_json, said, with_stdin};

const TOKEN: &str = "forge-token-5be0c2d9a7";

/// Two jobs: one that succeeds, one that fails.
const CI: &str = "name: CI\non: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo built\n  \
                  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo 'lint failed' && exit 1\n";

/// One request the fake forge received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Lower-case names.
    headers: BTreeMap<String, String>,
    body: Value,
    /// What the forge answered.
    answered: u16,
}

/// A loopback forge answering every request with the status it is set to (201 at first), as
/// GitHub and GitLab answer a status they stored. Its 503 body echoes the credential it was
/// sent, as a careless proxy might: Mobius must not repeat it.
struct FakeForge {
    url: String,
    answer: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeForge {
    fn start() -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answer = Arc::new(AtomicU16::new(201));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (status, kept) = (answer.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let Some(received) = read_request(&stream) else { continue };
                let answered = status.load(Ordering::SeqCst);
                let headers = &received.headers;
                let credential = headers.get("authorization").or(headers.get("private-token")).cloned();
                let reply = if answered == 201 {
                    "{\"id\":1}".to_owned()
                } else {
                    format!("{{\"message\":\"down for maintenance (got {})\"}}", credential.unwrap_or_default())
                };
                let Received { method, path, headers, body } = received;
                kept.lock().unwrap().push(Request { method, path, headers, body, answered });
                reply_json(stream, answered, &reply);
            }
        });
        FakeForge { url, answer, requests }
    }

    fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// The requests accepted (2xx) for commit `sha`, per context, in order.
    fn accepted(&self, sha: &str, context_field: &str) -> BTreeMap<String, Vec<Request>> {
        let mut by_context: BTreeMap<String, Vec<Request>> = BTreeMap::new();
        for request in self.requests.lock().unwrap().iter() {
            if request.answered == 201 && request.path.ends_with(&format!("/statuses/{sha}")) {
                let context = request.body[context_field].as_str().unwrap_or_default().to_owned();
                by_context.entry(context).or_default().push(request.clone());
            }
        }
        by_context
    }

    fn refused(&self) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.answered != 201).count()
    }
}

/// A working copy and the bare remote it pushes to, served by `git daemon`, with one commit
/// on `main`; the repository registered by URL as `acme/app`.
struct Remote {
    work: PathBuf,
    bare: PathBuf,
    _daemon: GitDaemon,
}

impl Remote {
    fn new(dir: &Dir) -> Remote {
        let forge = dir.path().join("remote");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        commit(&work, &[("version.txt", "1.0")], "Initial");
        let bare = forge.join("acme/app.git");
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare"]);
        git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
        let daemon = GitDaemon::start(&forge);
        let added = dir.json(&["repo", "add", &format!("{}/acme/app.git", daemon.url), "--name", "acme/app"]);
        assert_eq!(added["branches"], 1, "{added}");
        Remote { work, bare, _daemon: daemon }
    }

    /// Commits `files`, pushes, and sends the signed GitHub `push` delivery; returns the sha.
    fn push(&self, server: &Server, files: &[(&str, &str)], message: &str) -> String {
        let before = git(&self.work, &["rev-parse", "HEAD"]);
        let after = commit(&self.work, files, message);
        git(&self.work, &["push", "-q", self.bare.to_str().unwrap(), "main"]);
        let response = github_push(server, "acme/app", &before, &after);
        assert!(response.status().is_success(), "{}", response.status());
        after
    }
}

/// `mobius secret set NAME --repo acme/app` with the value on standard input.
fn set_secret(dir: &Dir, name: &str, value: &str) {
    let out = with_stdin(dir, &["secret", "set", name, "--repo", "acme/app"], &format!("{value}\n"));
    assert!(out.status.success(), "{}", said(&out));
}

fn serve(dir: &Dir) -> Server {
    dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1h"), ("MOBIUS_LOG", "info")])
}

/// The id of the run on `sha`, once it ended.
fn run_on(server: &Server, sha: &str) -> (i64, Value) {
    let id = wait_for(&format!("a run on {sha}"), || {
        let runs = get(server, "/api/v1/runs");
        runs.as_array().unwrap().iter().find(|r| r["sha"] == sha).map(|r| r["id"].as_i64().unwrap())
    });
    (id, finished(server, id))
}

/// The forge states of each context, repeats folded.
fn states(by_context: &BTreeMap<String, Vec<Request>>) -> BTreeMap<String, Vec<String>> {
    by_context
        .iter()
        .map(|(context, requests)| {
            let mut states: Vec<String> =
                requests.iter().map(|r| r.body["state"].as_str().unwrap().to_owned()).collect();
            states.dedup();
            (context.clone(), states)
        })
        .collect()
}

fn expected(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(c, s)| ((*c).to_owned(), s.iter().map(|s| (*s).to_owned()).collect())).collect()
}

#[test]
fn github_statuses_follow_each_job_and_arrive_after_an_outage_and_a_restart() {
    let dir = Dir::new();
    let remote = Remote::new(&dir);
    let forge = FakeForge::start();
    set_secret(&dir, "FORGE_TOKEN", TOKEN);

    // Bad input: a clear error, nothing written.
    let out = dir.run(&["repo", "forge", "acme/app", "--kind", "bitbucket", "--api-url", &forge.url]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("unknown forge kind `bitbucket`: use github or gitlab"), "{said}");
    assert!(dir.ok(&["repo", "show", "acme/app"]).contains("forge:    none"));

    let set = dir.ok(&[
        "repo",
        "forge",
        "acme/app",
        "--kind",
        "github",
        "--api-url",
        &forge.url,
        "--token-secret",
        "FORGE_TOKEN",
    ]);
    assert!(set.contains("reports commit statuses to github"), "{set}");
    let shown = dir.ok(&["repo", "show", "acme/app"]);
    assert!(shown.contains(&format!("forge:    github at {} (token from secret FORGE_TOKEN)", forge.url)), "{shown}");
    assert!(!shown.contains(TOKEN));

    let mut server = serve(&dir);
    let sha = remote.push(&server, &[(".github/workflows/ci.yml", CI)], "CI");
    let (id, run) = run_on(&server, &sha);
    assert_eq!(run["state"], "failure", "the lint job fails: {run}");
    let by_context = wait_for("the final statuses", || {
        let by_context = forge.accepted(&sha, "context");
        let last = |c: &str| by_context.get(c).and_then(|r| r.last()).map(|r| r.body["state"].clone());
        (last("mobius/CI/build") == Some("success".into()) && last("mobius/CI/lint") == Some("failure".into()))
            .then_some(by_context)
    });
    assert_eq!(
        states(&by_context),
        expected(&[("mobius/CI/build", &["pending", "success"]), ("mobius/CI/lint", &["pending", "failure"])])
    );
    for request in by_context.values().flatten() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/repos/acme/app/statuses/{sha}"));
        assert_eq!(request.headers.get("authorization"), Some(&format!("Bearer {TOKEN}")));
        assert_eq!(request.headers.get("accept").map(String::as_str), Some("application/vnd.github+json"));
        assert_eq!(request.headers.get("x-github-api-version").map(String::as_str), Some("2022-11-28"));
        assert!(request.headers.get("user-agent").is_some_and(|ua| ua.starts_with("mobius/")), "{request:?}");
        assert_eq!(request.body["target_url"], server.url(&format!("/api/v1/runs/{id}")));
        assert!(request.body["description"].as_str().is_some_and(|d| !d.is_empty() && d.chars().count() <= 140));
    }
    let statuses = wait_for("every status recorded as delivered", || {
        let run = get(&server, &format!("/api/v1/runs/{id}"));
        let statuses = run["statuses"].as_array().cloned().unwrap_or_default();
        (!statuses.is_empty() && statuses.iter().all(|s| s["delivery"] == "delivered")).then_some(statuses)
    });
    assert!(statuses.iter().all(|s| s["attempts"] == 1), "{statuses:?}");
    let show = dir.ok(&["runs", "show", &id.to_string()]);
    assert!(show.contains("delivered  mobius/CI/build  success (1 attempt)"), "{show}");
    assert!(show.contains("delivered  mobius/CI/lint  failure (1 attempt)"), "{show}");

    // The forge fails: the run is the same, the statuses wait (their errors never show the
    // token the forge echoed), and a restarted server delivers them once the forge is back.
    forge.answer(503);
    let down = remote.push(&server, &[("version.txt", "1.1")], "Bump");
    let (down_id, down_run) = run_on(&server, &down);
    assert_eq!(down_run["state"], "failure", "{down_run}");
    let waiting = wait_for("failed attempts recorded", || {
        let run = get(&server, &format!("/api/v1/runs/{down_id}"));
        let statuses = run["statuses"].as_array().cloned().unwrap_or_default();
        statuses.iter().any(|s| s["attempts"].as_u64() >= Some(2) && s["delivery"] == "pending").then_some(statuses)
    });
    let error = waiting.iter().find_map(|s| s["last_error"].as_str()).unwrap_or_default().to_owned();
    assert!(error.contains("github answered 503") && error.contains("***"), "{error}");
    assert!(!error.contains(TOKEN), "{error}");
    let show = dir.ok(&["runs", "show", &down_id.to_string()]);
    assert!(show.contains("pending") && show.contains("github answered 503"), "{show}");
    assert!(forge.accepted(&down, "context").is_empty());
    let refused = forge.refused();
    assert!(refused >= 2, "{refused}");

    server.terminate();
    forge.answer(201);
    let server = serve(&dir);
    let arrived = wait_for("the statuses after the outage", || {
        let by_context = forge.accepted(&down, "context");
        let last = |c: &str| by_context.get(c).and_then(|r| r.last()).map(|r| r.body["state"].clone());
        (last("mobius/CI/build") == Some("success".into()) && last("mobius/CI/lint") == Some("failure".into()))
            .then_some(by_context)
    });
    assert!(arrived.values().flatten().all(|r| r.body["target_url"] == server.url(&format!("/api/v1/runs/{down_id}"))));
    let settled = wait_for("the outbox settled", || {
        let run = get(&server, &format!("/api/v1/runs/{down_id}"));
        let statuses = run["statuses"].as_array().cloned().unwrap_or_default();
        statuses.iter().all(|s| s["delivery"] == "delivered" || s["delivery"] == "superseded").then_some(run)
    });
    assert_eq!(settled["state"], "failure", "the run's result is its own: {settled}");
    assert_eq!(get(&server, &format!("/api/v1/runs/{id}"))["state"], "failure");
    drop(server);

    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("a commit status was not delivered"), "the outage is in the log");
    assert!(!log.contains(TOKEN), "the token is in the server's log");
    for run in [id, down_id] {
        let logs = dir.ok(&["runs", "logs", &run.to_string()]);
        assert!(logs.contains("lint failed") && !logs.contains(TOKEN), "{logs}");
    }
}

#[test]
fn gitlab_statuses_run_pending_running_then_final_and_a_missing_token_fails_only_the_delivery() {
    let dir = Dir::new();
    let remote = Remote::new(&dir);
    let forge = FakeForge::start();
    set_secret(&dir, "GITLAB_API_TOKEN", TOKEN);
    let api = format!("{}/api/v4", forge.url);
    dir.ok(&["repo", "forge", "acme/app", "--kind", "gitlab", "--api-url", &api, "--token-secret", "GITLAB_API_TOKEN"]);

    let server = serve(&dir);
    let sha = remote.push(&server, &[(".github/workflows/ci.yml", CI)], "CI");
    let (id, run) = run_on(&server, &sha);
    assert_eq!(run["state"], "failure", "{run}");
    let by_context = wait_for("the final statuses", || {
        let by_context = forge.accepted(&sha, "name");
        let last = |c: &str| by_context.get(c).and_then(|r| r.last()).map(|r| r.body["state"].clone());
        (last("mobius/CI/build") == Some("success".into()) && last("mobius/CI/lint") == Some("failed".into()))
            .then_some(by_context)
    });
    assert_eq!(
        states(&by_context),
        expected(&[
            ("mobius/CI/build", &["pending", "running", "success"]),
            ("mobius/CI/lint", &["pending", "running", "failed"])
        ])
    );
    for request in by_context.values().flatten() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/api/v4/projects/acme%2Fapp/statuses/{sha}"));
        assert_eq!(request.headers.get("private-token").map(String::as_str), Some(TOKEN));
        assert_eq!(request.headers.get("authorization"), None);
        assert_eq!(request.body["ref"], "main");
        assert_eq!(request.body["target_url"], server.url(&format!("/api/v1/runs/{id}")));
    }

    // The token's secret removed: the delivery fails naming it; the run is not touched.
    let removed = dir.run(&["secret", "rm", "GITLAB_API_TOKEN", "--repo", "acme/app"]);
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let next = remote.push(&server, &[("version.txt", "1.1")], "Bump");
    let (next_id, next_run) = run_on(&server, &next);
    assert_eq!(next_run["state"], "failure", "the workflow's own result: {next_run}");
    let statuses = wait_for("the delivery to fail for want of the token", || {
        let run = get(&server, &format!("/api/v1/runs/{next_id}"));
        let statuses = run["statuses"].as_array().cloned().unwrap_or_default();
        statuses
            .iter()
            .any(|s| s["last_error"].as_str().is_some_and(|e| e.contains("GITLAB_API_TOKEN")))
            .then_some(statuses)
    });
    let error = statuses.iter().find_map(|s| s["last_error"].as_str()).unwrap_or_default();
    assert_eq!(error, "the token secret `GITLAB_API_TOKEN` is not stored for acme/app");
    assert!(forge.accepted(&next, "name").is_empty(), "nothing sent without the token");
    let show = dir.ok(&["runs", "show", &next_id.to_string()]);
    assert!(show.contains("the token secret `GITLAB_API_TOKEN` is not stored"), "{show}");
    drop(server);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(!log.contains(TOKEN), "the token is in the server's log");
}
