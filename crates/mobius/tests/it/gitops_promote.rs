//! Promotion to a deploy repository that lives on a remote: a bare repository behind a
//! loopback HTTP git server that requires a token (`git http-backend`, receive-pack on),
//! registered by URL with `--credentials`. A promotion lands on the remote as a commit by the
//! token that asked and the environment syncs to it; a push that lands between the
//! promotion's fetch and its push makes it fail and changes nothing; when the environment
//! requires review the commit goes to a branch of its own with exactly one pull request to a
//! loopback fake GitHub API (a forge answering 422 or 503 is a clear error and the branch
//! goes again), and nothing syncs until the branch is merged.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::deploy::{Cleanup, against, body, free_port};
use crate::gitops::{WORKFLOW, built, events_of, gitops, registered, rollout, shop_in, template};
use crate::remote_credentials::{PrivateRemote, TOKEN, assert_token_nowhere};
use crate::runs::{commit, git, wait_for};
use crate::util::{ADMIN, Dir, Received, read_request, reply_json, said, with_stdin};

const FORGE_TOKEN: &str = "ghp-forge-promote-3Jd8sLq2";
const PROMOTED: &str = "dev.cdeventsx.mobius-gitops.promoted.0.1.0";

/// One request the fake GitHub received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
    answered: u16,
}

/// A loopback GitHub API answering `POST …/pulls` with the status it is set to: 201 with pull
/// request 7, else GitHub's validation error (422) or an outage (503) whose body echoes the
/// credential it was sent, which Mobius must not repeat.
struct FakeGitHub {
    url: String,
    answer: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeGitHub {
    fn start() -> FakeGitHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (answer, requests) = (Arc::new(AtomicU16::new(201)), Arc::new(Mutex::new(Vec::new())));
        let (status, kept) = (answer.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let Some(Received { method, path, headers, body }) = read_request(&stream) else { continue };
                let answered = status.load(Ordering::SeqCst);
                let reply = match answered {
                    201 => r#"{"number":7,"html_url":"https://github.example/acme/deploy/pull/7"}"#.to_owned(),
                    422 => r#"{"message":"Validation Failed","errors":[{"message":"No commits between main and the branch"}]}"#
                        .to_owned(),
                    _ => format!(
                        "{{\"message\":\"down for maintenance (got {})\"}}",
                        headers.get("authorization").cloned().unwrap_or_default()
                    ),
                };
                kept.lock().unwrap().push(Request { method, path, headers, body, answered });
                reply_json(stream, answered, &reply);
            }
        });
        FakeGitHub { url, answer, requests }
    }

    fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    fn accepted(&self) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.answered == 201).cloned().collect()
    }
}

/// A proxy in front of the git remote that, once armed, pushes a commit of its own to the
/// bare repository when the next push asks for the remote's refs: a push that lands between
/// the promotion's fetch and its push.
struct Racer {
    base: String,
    armed: Arc<AtomicBool>,
    raced: Arc<Mutex<Option<String>>>,
}

impl Racer {
    fn start(upstream: &str, work: PathBuf, bare: PathBuf) -> Racer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let (armed, raced) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(None)));
        let (arm, race) = (armed.clone(), raced.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).unwrap_or(0) == 0 {
                    continue;
                }
                if first.contains("service=git-receive-pack") && arm.swap(false, Ordering::SeqCst) {
                    let sha = commit(&work, &[("README.md", "a concurrent change\n")], "A concurrent change");
                    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
                    *race.lock().unwrap() = Some(sha);
                }
                let Ok(mut server) = TcpStream::connect(&upstream) else { continue };
                let _ = server.write_all(first.as_bytes());
                let mut to_server = server.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut to_server);
                });
                let mut to_client = client;
                let _ = std::io::copy(&mut server, &mut to_client);
                let _ = to_client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            }
        });
        Racer { base, armed, raced }
    }
}

/// The production file of the deploy repository before any promotion.
const PRODUCTION: &str = "# what runs in production\nservices: {}\n";

fn on_remote(bare: &Path, args: &[&str]) -> String {
    git(bare, args)
}

#[test]
fn promotions_are_pushed_to_a_remote_deploy_repository_or_wait_for_their_pull_request() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let (staging, production) = (free_port(), free_port());

    // The deploy repository on a remote that wants a token, registered by URL.
    let work = dir.path().join("deploy-work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit(&work, &[("environments/production.yaml", PRODUCTION)], "Initial");
    let bare = dir.path().join("forge/acme/deploy.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    git(&bare, &["config", "http.receivepack", "true"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let remote = PrivateRemote::start(&dir.path().join("forge"));
    let racer = Racer::start(&remote.base, work.clone(), bare.clone());
    let url = format!("{}/acme/deploy.git", racer.base);
    for (name, value) in [("GIT_TOKEN", TOKEN), ("FORGE_TOKEN", FORGE_TOKEN)] {
        let set = with_stdin(&dir, &["secret", "set", name, "--repo", "acme/deploy"], &format!("{value}\n"));
        assert!(set.status.success(), "{}", said(&set));
    }
    let added = dir.json(&["repo", "add", &url, "--name", "acme/deploy", "--credentials", "GIT_TOKEN"]);
    assert_eq!(added["branches"], 1, "{added}");
    let forge = FakeGitHub::start();
    let api = forge.url.clone();
    dir.ok(&["repo", "forge", "acme/deploy", "--kind", "github", "--api-url", &api, "--token-secret", "FORGE_TOKEN"]);

    let server = dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1s")]);
    let mut printed = String::new();
    let mut cli = |args: &[&str]| {
        let out = against(&dir, &server, ADMIN, args);
        printed.push_str(&said(&out));
        (out.status.success(), said(&out))
    };

    // The service's pipeline builds v1 and v2; staging runs v1, deployed by hand (the deploy
    // repository declares production only).
    let shop = dir.path().join("shop");
    let spec = template(staging, production, "");
    let files =
        [(".github/workflows/build.yml", WORKFLOW), ("mobius.template.yaml", spec.as_str()), ("version.txt", "v0")];
    registered(&dir, &server, &shop, "acme/shop", &files);
    let v1 = built(&server, &commit(&shop, &[("version.txt", "v1")], "v1"));
    let v2 = built(&server, &commit(&shop, &[("version.txt", "v2")], "v2"));
    let (ok, out) = cli(&["deploy", "shop", "staging", "--artifact", &v1]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["gitops", "add", "acme/deploy"]);
    assert!(ok, "{out}");
    wait_for("production declared and staging on v1", || {
        let read = gitops(&server)[0]["status"]["environments"]["production"].is_string();
        (read && rollout(&server, "staging")["phase"] == "succeeded").then_some(())
    });

    // A push lands between the promotion's fetch and its push: refused, nothing of it pushed.
    racer.armed.store(true, Ordering::SeqCst);
    let (ok, out) = cli(&["promote", "shop", "--from", "staging", "--to", "production", "--reason", "release 1"]);
    let raced = racer.raced.lock().unwrap().clone().unwrap_or_else(|| panic!("the racer did not push: {out}"));
    assert!(!ok && out.contains("refs/heads/main of") && out.contains("moved while the promotion was made"), "{out}");
    assert_eq!(on_remote(&bare, &["rev-parse", "main"]), raced, "the concurrent push stays, nothing on top");
    assert_eq!(on_remote(&bare, &["show", "main:environments/production.yaml"]), PRODUCTION.trim_end());

    // Again: a commit on top of the concurrent one, by the token that asked, then synced.
    let (ok, out) = cli(&["promote", "shop", "--from", "staging", "--to", "production", "--reason", "release 1"]);
    assert!(ok && out.starts_with("Pushed ") && out.contains("the server syncs it next"), "{out}");
    let head = on_remote(&bare, &["rev-parse", "main"]);
    assert_eq!(on_remote(&bare, &["rev-parse", "main^"]), raced);
    let by = "bootstrap (MOBIUS_ADMIN_TOKEN)";
    let logged = on_remote(&bare, &["log", "-1", "--format=%an%n%s%n%b", "main"]);
    assert!(logged.starts_with(&format!("{by}\nPromote shop to production: {}", &v1[..19])), "{logged}");
    assert!(logged.contains(&format!("shop serves {v1} in staging; {by} promoted it to production (release 1)")));
    let file = on_remote(&bare, &["show", "main:environments/production.yaml"]);
    assert_eq!(file, format!("# what runs in production\nservices:\n  shop:\n    artifact: {v1}"));
    shop_in(&server, "production", "production synced to v1", |s| s["live"] == v1.as_str() && s["sync"] == "Synced");
    assert_eq!(body(production), "hello from v1");
    let events = events_of(&dir, PROMOTED);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        (events[0]["commit"].as_str(), events[0]["branch"].as_str(), events[0]["remote"].as_str()),
        (Some(head.as_str()), Some("refs/heads/main"), Some(url.as_str()))
    );
    assert!(events[0]["pullRequest"].is_null(), "{:#}", events[0]);

    // Production requires review now; staging runs v2.
    let (ok, out) = cli(&["deploy", "shop", "staging", "--artifact", &v2]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["gitops", "add", "acme/deploy", "--review", "production"]);
    assert!(ok && out.contains("promotions to production through pull requests"), "{out}");
    wait_for("staging on v2", || {
        let latest = rollout(&server, "staging");
        (latest["new"]["artifact"].as_str()?.contains(&v2[7..]) && latest["phase"] == "succeeded").then_some(())
    });
    let branch = format!("mobius/promote/shop-production-{}", &v2[7..19]);
    let promote = ["promote", "shop", "--from", "staging", "--to", "production"];

    // A forge that refuses or is down: a clear error naming it and its answer, the branch gone.
    for (status, says) in [
        (422, "answered 422 to the pull request: Validation Failed (No commits between main and the branch)"),
        (503, "answered 503"),
    ] {
        forge.answer(status);
        let (ok, out) = cli(&promote);
        assert!(!ok && out.contains(&format!("github at {api} {says}")), "{out}");
        assert!(out.contains(&format!("the branch {branch} was deleted again")) && !out.contains(FORGE_TOKEN), "{out}");
        assert_eq!(on_remote(&bare, &["for-each-ref", "--format=%(refname)", "refs/heads/mobius"]), "");
        assert_eq!(on_remote(&bare, &["rev-parse", "main"]), head);
    }

    // The forge takes it: one pull request, the branch on the remote, main untouched.
    forge.answer(201);
    let (ok, out) = cli(&promote);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "to branch {branch} of acme/deploy and opened pull request #7: https://github.example/acme/deploy/pull/7"
        )) && out.contains("nothing syncs until it is merged into main"),
        "{out}"
    );
    let opened = forge.accepted();
    assert_eq!(opened.len(), 1, "{opened:#?}");
    let pr = &opened[0];
    assert_eq!((pr.method.as_str(), pr.path.as_str()), ("POST", "/repos/acme/deploy/pulls"));
    assert_eq!(pr.headers.get("authorization").map(String::as_str), Some(format!("Bearer {FORGE_TOKEN}").as_str()));
    assert_eq!((pr.body["head"].as_str(), pr.body["base"].as_str()), (Some(branch.as_str()), Some("main")));
    assert!(pr.body["title"].as_str().unwrap().starts_with(&format!("Promote shop to production: {}", &v2[..19])));
    assert!(pr.body["body"].as_str().unwrap().contains(&format!("shop serves {v2} in staging")), "{:#}", pr.body);
    let reviewed = on_remote(&bare, &["rev-parse", &format!("refs/heads/{branch}")]);
    assert_eq!(on_remote(&bare, &["rev-parse", &format!("{reviewed}^")]), head);
    assert_eq!(on_remote(&bare, &["rev-parse", "main"]), head, "main waits for the merge");
    let event = events_of(&dir, PROMOTED).into_iter().find(|e| e["commit"] == reviewed.as_str()).expect("an event");
    assert_eq!(event["pullRequest"], "https://github.example/acme/deploy/pull/7");
    assert_eq!(event["branch"], format!("refs/heads/{branch}"));

    // Nothing syncs while it waits: several polls and passes later production still runs v1.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let waiting = shop_in(&server, "production", "production still declared v1", |s| s["desired"] == v1.as_str());
    assert_eq!(
        (waiting["live"].as_str(), gitops(&server)[0]["status"]["revision"].as_str()),
        (Some(v1.as_str()), Some(head.as_str()))
    );

    // Merged (as the forge would, with a merge commit) and pushed: production syncs to v2.
    let merging = dir.path().join("merging");
    git(dir.path(), &["clone", "-q", bare.to_str().unwrap(), merging.to_str().unwrap()]);
    git(&merging, &["merge", "--no-ff", "-q", "-m", "Merge pull request #7", &format!("origin/{branch}")]);
    git(&merging, &["push", "-q", "origin", "main"]);
    shop_in(&server, "production", "production synced to v2", |s| s["live"] == v2.as_str() && s["sync"] == "Synced");
    assert_eq!(body(production), "hello from v2");

    // Review off, but main is protected (the remote's hook refuses it): the promotion of v1
    // back to production becomes a pull request, since the repository has a forge.
    let hook = bare.join("hooks/pre-receive");
    let protect = "#!/bin/sh\nwhile read old new name; do\n  [ \"$name\" = refs/heads/main ] && { echo 'main is protected' >&2; exit 1; }\ndone\nexit 0\n";
    std::fs::write(&hook, protect).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let merged = on_remote(&bare, &["rev-parse", "main"]);
    let (ok, out) = cli(&["gitops", "add", "acme/deploy"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["deploy", "shop", "staging", "--artifact", &v1]);
    assert!(ok, "{out}");
    wait_for("staging back on v1", || {
        let latest = rollout(&server, "staging");
        (latest["new"]["artifact"].as_str()?.contains(&v1[7..]) && latest["phase"] == "succeeded").then_some(())
    });
    let (ok, out) = cli(&promote);
    assert!(ok && out.contains("opened pull request #7"), "{out}");
    let fallback = forge.accepted();
    assert_eq!(fallback.len(), 2, "{fallback:#?}");
    let branch = format!("mobius/promote/shop-production-{}", &v1[7..19]);
    assert_eq!(fallback[1].body["head"], branch.as_str());
    assert_eq!(on_remote(&bare, &["rev-parse", "main"]), merged, "the protected branch is untouched");

    drop(server);
    assert!(!printed.contains(TOKEN) && !printed.contains(FORGE_TOKEN), "{printed}");
    assert_token_nowhere(&dir);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(!log.contains(FORGE_TOKEN), "{log}");
}
