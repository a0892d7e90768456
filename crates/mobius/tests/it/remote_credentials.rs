//! Private remotes: `mobius repo add URL --credentials SECRET` reaches a remote that requires
//! a token (a loopback HTTP server in front of `git http-backend` that checks the
//! `Authorization` header), locally and with `--server`; the token is in no file of the data
//! directory, no CLI output and no server log; a remote refusing the credentials registers
//! nothing; a signed GitHub push and a GitLab Push Hook each run exactly the pushed commit.
//! Over SSH (a loopback `sshd`), a deploy key does the same.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;

use crate::runs::{commit, finished, get, git, wait_for};
use crate::util::{ADMIN, Dir, GITLAB_TOKEN, Server, files_holding, github_push, http, said, with_stdin};

/// The remote's token: distinctive, so a grep for it finds nothing else.
pub(crate) const TOKEN: &str = "glpat-remote-7Qx2ZkP9vW4mB1nT";

const CI: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      \
                  - run: echo \"built $(cat version.txt) at ${{ github.sha }}\"\n";

/// A git remote over plain HTTP on loopback that answers only requests carrying
/// `Authorization: Basic base64(x-access-token:TOKEN)`, serving the bare repositories under
/// its root through `git http-backend` (CGI). Stops when dropped.
pub(crate) struct PrivateRemote {
    pub(crate) base: String,
    refused: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl PrivateRemote {
    pub(crate) fn start(root: &Path) -> PrivateRemote {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
        let expected = format!("Basic {basic}");
        let (refused, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let root = root.to_path_buf();
        let (r, s, halt) = (refused.clone(), served.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (root, expected, r, s) = (root.clone(), expected.clone(), r.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &expected, &r, &s);
                });
            }
        });
        PrivateRemote { base, refused, served, stop }
    }
}

impl Drop for PrivateRemote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

/// One request: refused with 401 without the expected header, else run through the CGI.
fn serve(
    stream: TcpStream,
    root: &Path,
    expected: &str,
    refused: &AtomicUsize,
    served: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    if header("authorization").as_deref() != Some(expected) {
        refused.fetch_add(1, Ordering::SeqCst);
        let body = "authentication required\n";
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    if header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = read_body(&mut reader, header("content-length"), header("transfer-encoding"))?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding").unwrap_or_default())
        .env("GIT_PROTOCOL", header("git-protocol").unwrap_or_default())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = cgi.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = cgi.wait_with_output()?;
    let _ = writer.join();
    served.fetch_add(1, Ordering::SeqCst);
    let split = output.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| output.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (end, gap) = split.unwrap_or((0, 0));
    let cgi_headers = String::from_utf8_lossy(&output.stdout[..end]).into_owned();
    let cgi_body = &output.stdout[end + gap..];
    let mut status = "200 OK".to_owned();
    let mut response = String::new();
    for header in cgi_headers.lines().map(str::trim_end).filter(|h| !h.is_empty()) {
        match header.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => status = value.trim().to_owned(),
            _ => response.push_str(&format!("{header}\r\n")),
        }
    }
    write!(out, "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n", cgi_body.len())?;
    out.write_all(cgi_body)?;
    out.flush()
}

/// A request body, by `Content-Length` or chunked.
fn read_body(reader: &mut impl BufRead, length: Option<String>, encoding: Option<String>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if encoding.is_some_and(|e| e.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let length: usize = length.and_then(|l| l.parse().ok()).unwrap_or(0);
    body.resize(length, 0);
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// A work tree with the CI workflow, pushed to the bare `forge/acme/app.git`.
fn forge(dir: &Dir) -> (PathBuf, PathBuf, String) {
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join(".github/workflows")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join(".github/workflows/ci.yml"), CI).unwrap();
    let first = commit(&work, &[("version.txt", "1.0")], "Initial");
    let bare = dir.path().join("forge/acme/app.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    (work, bare, first)
}

/// The token, and the header that carries it, are in no file of the data directory.
pub(crate) fn assert_token_nowhere(dir: &Dir) {
    let header = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    for needle in [TOKEN, header.as_str()] {
        assert_eq!(files_holding(&dir.data(), needle), Vec::<String>::new(), "{needle} in the data directory");
    }
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(!log.contains(TOKEN) && !log.contains(&header), "{log}");
}

/// A GitLab Push Hook delivery for project `acme/app`, as GitLab sends it (its documented
/// payload, trimmed to what a push carries), with the configured `X-Gitlab-Token`.
fn gitlab_push(server: &Server, before: &str, after: &str) {
    let payload = serde_json::json!({
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": after,
        "ref": "refs/heads/main",
        "checkout_sha": after,
        "user_username": "dev",
        "project": {
            "name": "app",
            "path_with_namespace": "acme/app",
            "default_branch": "main",
            "git_http_url": "http://gitlab.example/acme/app.git"
        },
        "commits": [{ "id": after, "message": "Bump\n", "timestamp": "2024-05-01T09:00:00+02:00" }],
        "total_commits_count": 1
    });
    let response = http()
        .post(server.url("/api/v1/webhooks/gitlab"))
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", GITLAB_TOKEN)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&payload).unwrap())
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// One poll of `acme/app` done: polls take turns, so the server's own first one (at start) is
/// over too, and with an hour's interval only a webhook finds the next push.
fn polled(dir: &Dir, server: &Server) {
    let token = dir.json(&["token", "create", "--scope", "run", "--server", &server.base, "--token", ADMIN]);
    let polled = http()
        .post(server.url("/api/v1/poll?repository=acme/app"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .unwrap();
    assert!(polled.status().is_success(), "{}", polled.status());
}

/// The run started on `sha`, once it ended successfully with its log showing it built that
/// commit.
fn ran_on(dir: &Dir, server: &Server, sha: &str, version: &str) {
    let run = wait_for(&format!("a run on {sha}"), || {
        let runs = get(server, "/api/v1/runs");
        runs.as_array().unwrap().iter().find(|r| r["sha"] == sha).cloned()
    });
    let id = run["id"].as_i64().unwrap();
    let run = finished(server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(logs.contains(&format!("built {version} at {sha}")), "{logs}");
}

#[test]
fn a_private_remote_is_mirrored_with_a_token_that_is_never_shown_or_stored_in_clear() {
    let dir = Dir::new();
    let (work, bare, first) = forge(&dir);
    let remote = PrivateRemote::start(&dir.path().join("forge"));
    let url = format!("{}/acme/app.git", remote.base);
    let mut printed = String::new();

    // No credentials: the remote answers 401; an error naming the URL, nothing registered.
    let out = dir.run(&["repo", "add", &url]);
    printed.push_str(&said(&out));
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains(&format!("cannot mirror {url}")), "{}", said(&out));
    assert!(remote.refused.load(Ordering::SeqCst) > 0, "the remote was asked and refused");
    assert!(!dir.data().join("mirrors/acme/app.git").exists());
    assert!(dir.ok(&["repo", "list"]).starts_with("No repositories registered."));

    // Credentials in the URL: refused before anything is asked, without echoing them.
    let with_token = url.replace("http://", &format!("http://x-access-token:{TOKEN}@"));
    let out = dir.run(&["repo", "add", &with_token]);
    printed.push_str(&said(&out));
    assert_eq!(out.status.code(), Some(1));
    assert!(said(&out).contains("--credentials SECRET") && said(&out).contains(&url), "{}", said(&out));

    // The secret named before it is set: refused, saying how to set it.
    let out = dir.run(&["repo", "add", &url, "--credentials", "GIT_TOKEN"]);
    printed.push_str(&said(&out));
    assert_eq!(out.status.code(), Some(1));
    assert!(said(&out).contains("mobius secret set GIT_TOKEN --repo acme/app"), "{}", said(&out));
    assert!(!dir.data().join("mirrors/acme/app.git").exists());

    // The documented order: the secret first (the repository needs not be registered yet).
    let set = with_stdin(&dir, &["secret", "set", "GIT_TOKEN", "--repo", "acme/app"], &format!("{TOKEN}\n"));
    printed.push_str(&said(&set));
    assert!(set.status.success(), "{}", said(&set));
    let served_before = remote.served.load(Ordering::SeqCst);
    let added = dir.json(&["repo", "add", &url, "--credentials", "GIT_TOKEN"]);
    printed.push_str(&added.to_string());
    assert_eq!((added["name"].as_str(), added["credentials"].as_str()), (Some("acme/app"), Some("GIT_TOKEN")));
    assert_eq!(added["branches"], 1, "{added}");
    assert!(remote.served.load(Ordering::SeqCst) > served_before, "the mirror came through the private remote");
    let shown = dir.ok(&["repo", "show", "acme/app"]);
    printed.push_str(&shown);
    assert!(shown.contains("credentials: secret GIT_TOKEN") && shown.contains("(mirror of a remote)"), "{shown}");

    // Every later fetch authenticates too: a GitHub push, then a GitLab Push Hook, each a run
    // on exactly the commit pushed.
    let server = dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1h")]);
    polled(&dir, &server);
    let second = commit(&work, &[("version.txt", "1.1")], "Bump");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let pushed = github_push(&server, "acme/app", &first, &second);
    assert!(pushed.status().is_success(), "{}", pushed.status());
    ran_on(&dir, &server, &second, "1.1");
    let third = commit(&work, &[("version.txt", "1.2")], "Bump again");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    gitlab_push(&server, &second, &third);
    ran_on(&dir, &server, &third, "1.2");
    let runs = get(&server, "/api/v1/runs");
    assert_eq!(runs.as_array().unwrap().len(), 2, "one run per push: {runs}");
    drop(server);

    assert!(!printed.contains(TOKEN), "{printed}");
    assert_token_nowhere(&dir);
}

#[test]
fn a_private_remote_is_registered_listed_and_removed_through_the_server() {
    let dir = Dir::new();
    let (work, bare, first) = forge(&dir);
    let remote = PrivateRemote::start(&dir.path().join("forge"));
    let url = format!("{}/acme/app.git", remote.base);
    let server = dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1h")]);
    let on_server = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--server", &server.base, "--token", ADMIN]);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: &[&str]| {
        let args = on_server(args);
        dir.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let mut printed = String::new();

    // Only an admin token registers.
    let runner =
        dir.json(&["token", "create", "--scope", "run", "--server", &server.base, "--token", ADMIN])["token"].clone();
    let refused = http()
        .post(server.url("/api/v1/repositories"))
        .bearer_auth(runner.as_str().unwrap())
        .json(&serde_json::json!({ "url": url }))
        .send()
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);

    // A wrong token: the remote refuses it; an error naming the URL, nothing registered.
    let args = on_server(&["secret", "set", "GIT_TOKEN", "--repo", "acme/app"]);
    let set = with_stdin(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>(), "not-the-token\n");
    assert!(set.status.success(), "{}", said(&set));
    let out = run(&["repo", "add", &url, "--credentials", "GIT_TOKEN"]);
    printed.push_str(&said(&out));
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains(&format!("cannot mirror {url}")), "{}", said(&out));
    assert!(!said(&out).contains("not-the-token"), "{}", said(&out));
    assert!(!dir.data().join("mirrors/acme/app.git").exists());
    assert_eq!(get(&server, "/api/v1/repositories"), serde_json::json!([]));

    // The right one.
    let set = with_stdin(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>(), &format!("{TOKEN}\n"));
    assert!(set.status.success(), "{}", said(&set));
    let out = run(&["repo", "add", &url, "--credentials", "GIT_TOKEN"]);
    printed.push_str(&said(&out));
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains(&format!("Registered acme/app from {url}")), "{}", said(&out));
    let out = run(&["repo", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("acme/app"), "{}", said(&out));
    let out = run(&["repo", "show", "acme/app"]);
    printed.push_str(&said(&out));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("credentials: secret GIT_TOKEN") && shown.contains(&format!("main at {}", &first[..12])));
    assert!(shown.contains("secrets:  GIT_TOKEN"), "{shown}");

    // Registered through the API, fetched with the credentials on a push.
    polled(&dir, &server);
    let second = commit(&work, &[("version.txt", "2.0")], "Two");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let pushed = github_push(&server, "acme/app", &first, &second);
    assert!(pushed.status().is_success(), "{}", pushed.status());
    ran_on(&dir, &server, &second, "2.0");

    let out = run(&["repo", "remove", "acme/app"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Removed acme/app; its runs and logs stay.\n", "{}", said(&out));
    assert!(!dir.data().join("mirrors/acme/app.git").exists());
    let again = run(&["repo", "show", "acme/app"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(said(&again).contains("no registered repository acme/app"), "{}", said(&again));
    drop(server);

    assert!(!printed.contains(TOKEN), "{printed}");
    assert_token_nowhere(&dir);
}

/// `sshd` (Debian's openssh-server, which `scripts/test` installs) on a free loopback port,
/// letting in this user with `authorized_key` only; stopped when dropped.
struct Sshd {
    child: std::process::Child,
    port: u16,
}

impl Sshd {
    fn start(dir: &Path, authorized_key: &str) -> Sshd {
        let host_key = dir.join("ssh_host_ed25519_key");
        keygen(&host_key);
        std::fs::write(dir.join("authorized_keys"), authorized_key).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n",
                host_key.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // As root, sshd needs its privilege separation directory.
        if Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd (Debian's openssh-server) is installed");
        wait_for("sshd to listen", || TcpStream::connect(("127.0.0.1", port)).ok());
        Sshd { child, port }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key pair without a passphrase at `path` (and `path.pub`).
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
}

#[test]
fn a_remote_over_ssh_is_mirrored_and_fetched_with_a_deploy_key() {
    let dir = Dir::new();
    let (work, bare, _) = forge(&dir);
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    keygen(&keys.join("deploy"));
    let private = std::fs::read_to_string(keys.join("deploy")).unwrap();
    let public = std::fs::read_to_string(keys.join("deploy.pub")).unwrap();
    let sshd = Sshd::start(&keys, &public);
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let url = format!("ssh://{}@127.0.0.1:{}{}", user.trim(), sshd.port, bare.display());

    // The key as the repository's secret (stdin drops its final newline; the key file gets
    // it back), then named.
    let set = with_stdin(&dir, &["secret", "set", "DEPLOY_KEY", "--repo", "acme/app"], &private);
    assert!(set.status.success(), "{}", said(&set));
    let out = dir.run(&["repo", "add", &url, "--credentials", "DEPLOY_KEY"]);
    let log = std::fs::read_to_string(keys.join("sshd.log")).unwrap_or_default();
    assert!(out.status.success(), "{}\nsshd: {log}", said(&out));
    let known = std::fs::read_to_string(dir.data().join("known_hosts")).unwrap_or_default();
    let host_key = std::fs::read_to_string(keys.join("ssh_host_ed25519_key.pub")).unwrap();
    let host_key = host_key.split_whitespace().nth(1).unwrap();
    assert!(known.contains(host_key), "the host's key recorded on first use: {known}");

    // Fetched with the key on a poll: a run on the pushed commit.
    let server = dir.serve_with_env(&[("MOBIUS_POLL_INTERVAL", "1h")]);
    polled(&dir, &server);
    let second = commit(&work, &[("version.txt", "3.0")], "Three");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    polled(&dir, &server);
    ran_on(&dir, &server, &second, "3.0");
    drop(server);

    // The key's body is in no file of the data directory (sealed in the store; the key file
    // of each git call lived outside it and is gone).
    let body_line = private.lines().nth(1).unwrap();
    assert_eq!(files_holding(&dir.data(), body_line), Vec::<String>::new());
    assert!(!said(&out).contains(body_line));
}
