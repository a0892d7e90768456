//! The server ready for the outside world, end to end over loopback: the caller is checked
//! before anything of a request is read, a body of millions of tiny items is refused while it
//! is scanned, an unverified record of a webhook delivery is never taken for GitHub's, the
//! admin token and the data directory are the operator's alone, a deployed tree stays inside
//! its directory, and no step or instance sees the server's secrets.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::deploy::{Cleanup, against, free_port};
use crate::util::{ADMIN, Dir, GITHUB_SECRET, GITLAB_TOKEN, Server, http, sign};

/// A bound on the server's resident memory, far above what it needs (about 20 MB) and far below
/// what holding a flood would take.
pub(crate) const RSS_BOUND_KIB: u64 = 200 * 1024;

/// A token of `scope`, made with the admin token.
pub(crate) fn token(server: &Server, scope: &str) -> String {
    let created: Value = http()
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({ "scope": scope, "name": format!("{scope} (test)") }))
        .send()
        .expect("request")
        .json()
        .expect("json");
    created["token"].as_str().unwrap_or_else(|| panic!("no token: {created}")).to_owned()
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`: now; `VmHWM`: the peak so far).
pub(crate) fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// One HTTP/1.1 exchange over a raw socket, so that the request is exactly what is given — a
/// declared length with no body behind it, bytes that are not UTF-8 — with `Connection: close`.
/// Returns the status and the body of the answer.
pub(crate) fn exchange(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    // A server that answers before reading may close before taking the body: no matter.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived (the server closed with our body unread).
            Err(_) if !answer.is_empty() => break,
            Err(e) => panic!("{method} {path}: no answer: {e}"),
        }
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {:?}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = answer[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = chunked.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&chunked[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&chunked[start..(start + size).min(chunked.len())]);
        chunked = &chunked[(start + size + 2).min(chunked.len())..];
    }
    out
}

/// A request with something wrong in it, to a route that needs a token of scope `needs`, and
/// the status it gets once the caller may make it.
struct Case {
    method: &'static str,
    path: &'static str,
    needs: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// A `Content-Length` declared instead of the body's.
    declared: Option<u64>,
    answer: u16,
}

fn case(method: &'static str, path: &'static str, needs: &'static str, answer: u16) -> Case {
    Case { method, path, needs, content_type: None, body: Vec::new(), declared: None, answer }
}

impl Case {
    fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Case {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }

    fn declared(mut self, length: u64) -> Case {
        self.content_type = Some("application/json");
        self.declared = Some(length);
        self
    }

    fn send(&self, server: &Server, token: Option<&str>) -> (u16, Value) {
        let length = self.declared.map(|n| n.to_string());
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        if let Some(content_type) = self.content_type {
            headers.push(("content-type", content_type));
        }
        if let Some(length) = &length {
            headers.push(("content-length", length));
        }
        let (status, body) = exchange(&server.base, self.method, self.path, &headers, &self.body);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// The token of another scope, which the route refuses (`metrics` reads nothing but
/// `/metrics`; `read` changes nothing), or `None` when every token may call it.
fn wrong_scope(needs: &str) -> Option<&'static str> {
    match needs {
        "metrics" => None,
        "read" => Some("metrics"),
        _ => Some("read"),
    }
}

/// Every route that needs a token answers 401 to a caller without one and 403 to a token of
/// another scope, whatever is wrong with the rest of the request: nothing of the path, the
/// query string or the body is looked at first, so an unauthenticated client learns nothing of
/// what a valid request looks like. The caller who may make the request gets the 4xx its
/// mistake deserves, in the API's error shape.
#[test]
fn unauthenticated_malformed_requests_get_401_on_every_route_that_needs_a_token() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
    for scope in ["read", "ingest", "deploy", "run", "metrics"] {
        tokens.insert(scope, token(&server, scope));
    }
    tokens.insert("admin", ADMIN.to_owned());
    let not_utf8: &[u8] = &[0xff, 0xfe, b'{', 0xc3];
    let cases = vec![
        // Routes with nothing to get wrong: still no answer without a token.
        case("GET", "/metrics", "metrics", 200),
        case("GET", "/api/v1/tokens", "admin", 200),
        case("GET", "/api/v1/chaos", "read", 200),
        // Path parameters.
        case("GET", "/api/v1/runs/abc", "read", 400),
        case("GET", "/api/v1/runs/abc/logs", "read", 400),
        case("POST", "/api/v1/runs/abc/cancel", "run", 400),
        case("POST", "/api/v1/runs/abc/rerun", "run", 400),
        case("PUT", "/api/v1/uploads/not-a-digest", "deploy", 400),
        case("DELETE", "/api/v1/tokens/no-such-id", "admin", 404),
        case("GET", "/api/v1/rollouts/shop/production", "read", 404),
        case("POST", "/api/v1/rollouts/shop/production/explode", "deploy", 404),
        case("GET", "/api/v1/flags/nothing", "read", 404),
        case("PUT", "/api/v1/flags/bad%20name", "deploy", 400).body("application/json", "{}"),
        // Query strings.
        case("GET", "/api/v1/runs?limit=x", "read", 400),
        case("GET", "/api/v1/events?after=x", "read", 400),
        case("GET", "/api/v1/events?origin=bogus", "read", 400),
        case("GET", "/api/v1/dora?since=", "read", 400),
        case("GET", "/api/v1/flow?explain=maybe", "read", 400),
        case("GET", "/api/v1/slos?limit=x", "read", 400),
        case("GET", "/api/v1/slos/explain", "read", 400),
        case("GET", "/api/v1/alerts?offset=-1", "read", 400),
        case("GET", "/api/v1/incidents?open=maybe", "read", 400),
        case("GET", "/api/v1/postmortems", "read", 400),
        case("GET", "/api/v1/policy/shop/production?reason=bogus", "read", 400),
        case("GET", "/api/v1/rollouts?before=x", "read", 400),
        case("GET", "/api/v1/flags?limit=x", "read", 400),
        case("POST", "/api/v1/runs/1/rerun?failed=maybe", "run", 400),
        case("POST", "/api/v1/poll?repository=nobody/nothing", "run", 404),
        // Content types.
        case("POST", "/api/v1/events", "ingest", 415).body("text/csv", "a,b"),
        case("POST", "/api/v1/tokens", "admin", 415).body("text/plain", r#"{"scope": "read"}"#),
        case("POST", "/api/v1/postmortems", "ingest", 415).body("text/plain", "x"),
        case("POST", "/api/v1/deployments", "deploy", 415).body("application/x-www-form-urlencoded", "a=b"),
        case("PUT", "/api/v1/flags/shop/flags/f/state", "deploy", 415).body("text/plain", "x"),
        // Invalid JSON, JSON of the wrong shape.
        case("POST", "/api/v1/tokens", "admin", 400).body("application/json", r#"{"scope": "#),
        case("POST", "/api/v1/deployments", "deploy", 400).body("application/json", "{,}"),
        case("POST", "/api/v1/runs/1/cancel", "run", 400).body("application/json", "{"),
        case("POST", "/api/v1/events", "ingest", 400).body("application/cloudevents-batch+json", r#"{"an": "object"}"#),
        case("POST", "/api/v1/postmortems", "ingest", 422).body("application/json", r#"{"incident": 1}"#),
        case("POST", "/api/v1/chaos/shop/production", "deploy", 422).body("application/json", r#"{"fault": 1}"#),
        case("PUT", "/api/v1/flags/shop/flags/f/state", "deploy", 422).body("application/json", r#"{"state": "ON"}"#),
        // Bodies that are not UTF-8.
        case("POST", "/api/v1/events", "ingest", 400).body("application/json", not_utf8),
        case("POST", "/api/v1/tokens", "admin", 400).body("application/json", not_utf8),
        case("PUT", "/api/v1/flags/shop", "deploy", 400).body("application/json", not_utf8),
        // A declared length over the 10 MiB limit, no body behind it.
        case("POST", "/api/v1/events", "ingest", 413).declared(11 << 20),
        case("POST", "/api/v1/deployments", "deploy", 413).declared(11 << 20),
        case("PUT", "/api/v1/flags/shop", "deploy", 413).declared(11 << 20),
        case("POST", "/api/v1/tokens", "admin", 413).declared(1 << 40),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let what = format!("{} {} ({})", case.method, case.path, case.needs);
        let (status, body) = case.send(&server, None);
        if (status, body["error"]["code"].as_str()) != (401, Some("unauthorized")) {
            failures.push(format!("{what} without a token: {status} {body}"));
        }
        if let Some(scope) = wrong_scope(case.needs) {
            let (status, body) = case.send(&server, Some(&tokens[scope]));
            if (status, body["error"]["code"].as_str()) != (403, Some("forbidden")) {
                failures.push(format!("{what} with a `{scope}` token: {status} {body}"));
            }
        }
        let (status, body) = case.send(&server, Some(&tokens[case.needs]));
        let shaped = body["error"]["code"].is_string() && body["error"]["message"].is_string();
        if status != case.answer || (status >= 400 && !shaped) {
            failures.push(format!("{what} with its token: {status} {body}, expected {}", case.answer));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));

    drop(server);
    let events = dir.json(&["events", "list", "--limit", "10"]);
    assert_eq!(events, json!([]), "nothing was recorded");
}

/// A body of millions of `{}` is refused once its 10,001st item is met, before any item is read
/// as an event: 413, naming the limit, nothing stored, and the server's memory stays small
/// (holding the 10 MiB body and ten thousand slices of it, not millions of results).
#[test]
fn a_batch_of_millions_of_empty_items_is_refused_while_it_is_scanned() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let ingest = token(&server, "ingest");
    let post = |content_type: &str, body: Vec<u8>| {
        let response = http()
            .post(server.url("/api/v1/events"))
            .bearer_auth(&ingest)
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("request");
        let status = response.status();
        (status, response.json::<Value>().expect("a JSON answer"))
    };

    // A CloudEvents batch: `[{},{},…]`, as many items as 10 MiB holds (3 bytes each: about
    // 3.5 million).
    let items = ((10 << 20) - 2) / 3;
    let mut batch = Vec::with_capacity(10 << 20);
    batch.push(b'[');
    for i in 0..items {
        if i > 0 {
            batch.push(b',');
        }
        batch.extend_from_slice(b"{}");
    }
    batch.push(b']');
    assert!(batch.len() <= 10 << 20);
    let (status, body) = post("application/cloudevents-batch+json", batch);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("at most 10000 events"), "{body}");

    // NDJSON may run its values together: five million `{}` in 10,000,000 bytes.
    let (status, body) = post("application/x-ndjson", b"{}".repeat(5_000_000));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("at most 10000 events"), "{body}");

    let peak = status_kib(server.child.id(), "VmHWM");
    eprintln!("server peak RSS after two ~10 MiB bodies of millions of items: {} MiB", peak / 1024);
    assert!(peak < RSS_BOUND_KIB, "the server's peak RSS was {peak} KiB");
    let events: Value = http().get(server.url("/api/v1/events")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(events, json!([]), "nothing stored");
}

fn push_payload(message: &str) -> String {
    let sha = "3333333333333333333333333333333333333333";
    json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": sha,
        "repository": {"name": "shop", "full_name": "acme/shop"},
        "commits": [{"id": sha, "timestamp": "2024-05-01T09:00:00Z", "message": message}],
        "head_commit": {"id": sha, "timestamp": "2024-05-01T09:00:00Z", "message": message}
    })
    .to_string()
}

/// A recorded webhook delivery in a batch is not signed: an `ingest` token cannot append one
/// (it would be GitHub's word, forged); an admin can, and it is stored as an import. The
/// genuine, signed delivery of the same push later takes its place, as GitHub's.
#[test]
fn a_forged_recorded_delivery_is_refused_and_never_shadows_the_signed_one() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let ingest = token(&server, "ingest");
    let forged: Value = serde_json::from_str(&push_payload("feat: forged")).unwrap();
    let record = json!([{ "webhook": "github", "event": "push", "payload": forged }]).to_string();
    let append = |token: &str| {
        let response = http()
            .post(server.url("/api/v1/events"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(record.clone())
            .send()
            .unwrap();
        let status = response.status();
        (status, response.json::<Value>().unwrap())
    };
    let events = || -> Vec<Value> {
        let listed: Value = http().get(server.url("/api/v1/events")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
        listed.as_array().expect("a list").clone()
    };

    let (status, body) = append(&ingest);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("admin"), "{body}");
    assert_eq!(events(), Vec::<Value>::new(), "nothing stored");

    let (status, body) = append(ADMIN);
    assert_eq!((status, &body["results"][0]["status"]), (StatusCode::OK, &json!("stored")), "{body}");
    let log = events();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["origin"], "import", "{log:?}");

    let genuine = push_payload("feat: cart");
    let deliver = || {
        let response = http()
            .post(server.url("/api/v1/webhooks/github"))
            .header("x-github-event", "push")
            .header("x-hub-signature-256", sign(GITHUB_SECRET, genuine.as_bytes()))
            .body(genuine.clone())
            .send()
            .unwrap();
        let status = response.status();
        (status, response.json::<Value>().unwrap())
    };
    let (status, body) = deliver();
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("stored")), "not a duplicate of the record: {body}");
    let log = events();
    assert_eq!(log.len(), 1, "the signed delivery took the record's place: {log:?}");
    assert_eq!(log[0]["origin"], "github", "{log:?}");
    let raw = log[0]["raw"].as_str().unwrap_or_default();
    assert!(raw.contains("feat: cart") && !raw.contains("forged"), "{raw}");
    let (_, body) = deliver();
    assert_eq!(body["status"], "duplicate", "{body}");
}

/// Starts `cmd` (a `mobius serve` on port 0) with its whole stderr in `log` (what it says
/// before it listens included), and waits until it listens; `None` if it exited first.
fn serve_logged(mut cmd: Command, log: &Path) -> Option<Server> {
    if !cmd.get_envs().any(|(key, _)| key == "MOBIUS_LOG") {
        cmd.env("MOBIUS_LOG", "warn");
    }
    let file = std::fs::File::create(log).expect("log file");
    let mut child = cmd.stdout(Stdio::null()).stderr(file).spawn().expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix("mobius listening on ")) {
            return Some(Server { base: url.trim().to_owned(), child });
        }
        if child.try_wait().expect("wait").is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "the server neither listened nor exited: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve_cmd(dir: &Dir, admin_token: &str) -> Command {
    let mut cmd = dir.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("MOBIUS_ADMIN_TOKEN", admin_token)
        .env("MOBIUS_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("MOBIUS_GITLAB_WEBHOOK_TOKEN", GITLAB_TOKEN);
    cmd
}

/// `MOBIUS_ADMIN_TOKEN` is the key to everything: one short enough to guess stops the server
/// from starting, and changing it revokes the previous one.
#[test]
fn a_short_admin_token_is_refused_and_changing_it_revokes_the_old_one() {
    let dir = Dir::new();
    let short = "0123456789abcdef0123456789abcde";
    let log = dir.path().join("short.log");
    let started = serve_logged(serve_cmd(&dir, short), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(started.is_none(), "the server started with a 31-character admin token: {text}");
    assert!(text.contains("MOBIUS_ADMIN_TOKEN is 31 characters; it must be at least 32"), "{text}");
    assert!(!text.contains(short), "the token is not repeated: {text}");

    let (a, b) = (ADMIN, "a-second-admin-token-abcdefghijklmnopqrstuvwxyz");
    let mut server = serve_logged(serve_cmd(&dir, a), &dir.path().join("a.log")).expect("starts with A");
    let status = |server: &Server, token: &str| {
        http().get(server.url("/api/v1/tokens")).bearer_auth(token).send().unwrap().status()
    };
    assert_eq!(status(&server, a), StatusCode::OK);
    assert!(server.terminate().success());

    let server = serve_logged(serve_cmd(&dir, b), &dir.path().join("b.log")).expect("starts with B");
    assert_eq!(status(&server, a), StatusCode::UNAUTHORIZED, "A was revoked");
    assert_eq!(status(&server, b), StatusCode::OK);
    let out = against(&dir, &server, b, &["--json", "token", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bootstrap: Vec<&Value> =
        listed.as_array().unwrap().iter().filter(|t| t["name"].as_str().unwrap_or("").contains("bootstrap")).collect();
    assert_eq!(bootstrap.len(), 1, "one bootstrap token: {listed:#}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The data directory holds token hashes, webhook URLs and the whole log: it is the server's
/// alone from its first start, and one opened up since is closed again, with a warning.
#[test]
fn the_data_directory_is_private_and_tightened_at_start() {
    let dir = Dir::new();
    let (data, db) = (dir.data(), dir.data().join("mobius.db"));
    let mut server = serve_logged(serve_cmd(&dir, ADMIN), &dir.path().join("first.log")).expect("starts");
    assert_eq!((mode(&data), mode(&db)), (0o700, 0o600), "created private");
    assert!(server.terminate().success());

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("serve.log");
    let _server = serve_logged(serve_cmd(&dir, ADMIN), &log).expect("starts");
    assert_eq!((mode(&data), mode(&db)), (0o700, 0o600), "tightened at start");
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN") && l.contains("readable by others")).collect();
    for (path, was, now) in [(&data, "755", "700"), (&db, "644", "600")] {
        let said = format!("{} was readable by others ({was}); it is now {now}", path.display());
        assert!(warnings.iter().any(|w| w.contains(&said)), "no `{said}` in:\n{text}");
    }
}

/// A minimal tar, written by hand as a hostile client would: names and link targets as given,
/// `..` included (tar libraries refuse to write those).
struct Tar(Vec<u8>);

impl Tar {
    fn new() -> Tar {
        Tar(Vec::new())
    }

    fn entry(mut self, name: &str, kind: u8, link: &str, content: &[u8]) -> Tar {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
        header[136..148].copy_from_slice(b"00000000000\0");
        header[156] = kind;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..265].copy_from_slice(b"ustar\x0000");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&header);
        self.0.extend_from_slice(content);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    fn file(self, name: &str, content: &str) -> Tar {
        self.entry(name, b'0', "", content.as_bytes())
    }

    fn link(self, name: &str, target: &str) -> Tar {
        self.entry(name, b'2', target, b"")
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

fn spec(port: u16) -> String {
    format!(
        "service: shop\nrun:\n  command: mobius\n  args: [sample-app]\n  instances: 1\n  readiness_timeout: 10s\nenvironments:\n  - name: production\n    listen: 127.0.0.1:{port}\n    strategy: rolling\n"
    )
}

/// Every path under `root` (links not followed).
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else { return found };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(tree(&path));
        }
        found.push(path);
    }
    found
}

/// A release holds its own files only: `mobius deploy --dir` refuses a tree with a link out of
/// it before anything is sent; a crafted tar uploaded by hand is refused when it is deployed,
/// having written nothing outside; and the server never reads a path a client names.
#[test]
fn a_link_or_path_escaping_a_deploy_tree_is_refused() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();

    // A private file outside the tree, and a link to it inside.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "the server's private key\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let release = dir.path().join("release");
    std::fs::create_dir_all(release.join("conf")).unwrap();
    std::fs::write(release.join("mobius.yaml"), spec(port)).unwrap();
    std::os::unix::fs::symlink(&secret, release.join("conf/key.pem")).unwrap();
    let out = against(&dir, &server, ADMIN, &["deploy", "shop", "production", "--dir", release.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "deployed a tree with a link out of it: {stderr}");
    assert!(stderr.contains("conf/key.pem is a symbolic link to") && stderr.contains("outside the tree"), "{stderr}");
    let rollout = http().get(server.url("/api/v1/rollouts/shop/production")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(rollout.status(), StatusCode::NOT_FOUND, "no rollout");
    assert_eq!(tree(&dir.data().join("uploads")), Vec::<PathBuf>::new(), "no upload stored");

    // Crafted tars, uploaded as `mobius deploy --dir` would, then deployed.
    let crafted = [
        ("../evil", Tar::new().file("mobius.yaml", &spec(port)).file("../evil", "x").finish()),
        ("../../evil", Tar::new().file("mobius.yaml", &spec(port)).file("../../evil", "x").finish()),
        ("out", Tar::new().file("mobius.yaml", &spec(port)).link("out", "../../..").file("out/evil", "x").finish()),
        ("key.pem", Tar::new().file("mobius.yaml", &spec(port)).link("key.pem", secret.to_str().unwrap()).finish()),
    ];
    for (named, tar) in crafted {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
        let put = http()
            .put(server.url(&format!("/api/v1/uploads/{digest}")))
            .bearer_auth(ADMIN)
            .header("content-type", "application/x-tar")
            .body(tar)
            .send()
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED, "{named}: {}", put.text().unwrap());
        let request = json!({"service": "shop", "environment": "production", "source": {"upload": digest}});
        let response = http().post(server.url("/api/v1/deployments")).bearer_auth(ADMIN).json(&request).send().unwrap();
        let status = response.status();
        let body: Value = response.json().unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{named}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("`{named}`")) || message.starts_with(named), "{named}: {body}");
    }
    // `../evil` from the staging directory is `<data>/releases/evil`, `../../evil` is
    // `<data>/evil`, and `out/evil` through the link would be beside the data directory.
    let evil: Vec<PathBuf> = tree(dir.path()).into_iter().filter(|p| p.ends_with("evil")).collect();
    assert_eq!(evil, Vec::<PathBuf>::new(), "a refused tree wrote outside its directory");
    assert_eq!(tree(&dir.data().join("releases")), Vec::<PathBuf>::new(), "no release, no staging left");
    let rollout = http().get(server.url("/api/v1/rollouts/shop/production")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(rollout.status(), StatusCode::NOT_FOUND, "still no rollout");

    // A path on the server is not something a client names: refused, and the answer is the
    // same whether it exists or not.
    let named = |path: &str| {
        let request = json!({"service": "shop", "environment": "production", "source": {"dir": path}});
        let response = http().post(server.url("/api/v1/deployments")).bearer_auth(ADMIN).json(&request).send().unwrap();
        (response.status(), response.text().unwrap())
    };
    let (existing, missing) = (named("/etc"), named("/no/such/directory/anywhere"));
    assert!(existing.0.is_client_error(), "{existing:?}");
    assert_eq!(existing, missing, "the answer tells whether the path exists");
    assert!(!existing.1.contains("/etc"), "{existing:?}");
}

/// A step that prints its environment and every `/proc/*/environ` it can read.
const SNOOP: &str = "\
echo '== env'
env
for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < \"$f\" 2>&1 || true; done
echo '== done'
";

/// The server's secrets (the admin token and the webhook secrets, given in its environment)
/// reach neither a workflow's step nor a deployed instance: not in their environment, and not
/// through `/proc/<pid>/environ` of any process they can see.
#[test]
fn no_server_secret_reaches_a_step_or_an_instance() {
    let secrets = [ADMIN, GITHUB_SECRET, GITLAB_TOKEN];
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());

    // A workflow step, run by the server for a commit.
    let workflow = format!(
        "on: push\njobs:\n  snoop:\n    runs-on: x\n    steps:\n      - run: |\n{}",
        SNOOP.lines().map(|l| format!("          {l}\n")).collect::<String>()
    );
    let repo = crate::runs::repository(&dir, &[(".github/workflows/snoop.yml", &workflow)]);
    let server = crate::runs::start(&dir, &repo);
    crate::runs::commit(&repo, &[("a.txt", "1")], "Snoop");
    let id = crate::runs::wait_for("the run", || {
        let runs = crate::runs::get(&server, "/api/v1/runs");
        runs.as_array().unwrap().first().and_then(|r| r["id"].as_i64())
    });
    let run = crate::runs::finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(logs.contains("| == env") && logs.contains("| PATH=") && logs.contains("| == done"), "{logs}");
    assert!(logs.contains("| == /proc/"), "the step saw no process: {logs}");
    for secret in secrets {
        assert!(!logs.contains(secret), "the step saw `{secret}`:\n{logs}");
    }

    // An instance of a deployed service that prints the same before it serves.
    let port = free_port();
    let release = dir.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let script = format!("#!/bin/sh\n{SNOOP}exec \"$MOBIUS_BIN\" sample-app\n");
    std::fs::write(release.join("snoop.sh"), script).unwrap();
    std::fs::set_permissions(release.join("snoop.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = format!(
        "service: shop\nrun:\n  command: ./snoop.sh\n  env:\n    MOBIUS_BIN: {}\n    SAMPLE_VERSION: v1\n  instances: 1\n  readiness_timeout: 10s\n  shutdown_grace: 2s\nenvironments:\n  - name: production\n    listen: 127.0.0.1:{port}\n    strategy: rolling\n",
        crate::util::bin()
    );
    std::fs::write(release.join("mobius.yaml"), spec).unwrap();
    crate::deploy::deployed(&dir, &server, &release, "v1");
    let rollout = crate::deploy::finished(&server);
    assert_eq!(rollout["phase"], "succeeded", "{rollout:#}");
    assert_eq!(crate::deploy::body(port), "hello from v1");
    let log = std::fs::read_to_string(dir.data().join("deploy/shop/production/logs/v1-0.log")).expect("instance log");
    assert!(log.contains("== env") && log.contains("PORT=") && log.contains("== done"), "{log}");
    for secret in secrets {
        assert!(!log.contains(secret), "the instance saw `{secret}`:\n{log}");
    }
    // And the instance's processes, read from outside (as root).
    let releases = dir.data().join("releases");
    let mut seen = 0;
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else { continue };
        if !cwd.starts_with(&releases) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let text = String::from_utf8_lossy(&environ);
        seen += 1;
        for secret in secrets {
            assert!(!text.contains(secret), "{}/environ holds `{secret}`", entry.path().display());
        }
    }
    assert!(seen > 0, "no instance process found under {}", releases.display());
}
