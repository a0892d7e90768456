//! Drives the real `mobius` binary: commands in a temp data directory, and servers on
//! loopback ports chosen by the OS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token-0123456789abcdefghij";
pub const GITHUB_SECRET: &str = "github-webhook-secret";
pub const GITLAB_TOKEN: &str = "gitlab-webhook-token";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mobius")
}

/// The shared corpus, beside the project root (beside `MOBIUS_SOURCE_DIR` inside a
/// `mobius run` job, whose workspace is a copy of the project).
pub fn corpus(rel: &str) -> PathBuf {
    match std::env::var_os("MOBIUS_SOURCE_DIR") {
        Some(source) => PathBuf::from(source).join("../shared/corpus").join(rel),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(rel),
    }
}

pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        let tmp = tempfile::tempdir().expect("temp dir");
        // Run as root (CI), the server runs steps and instances as `nobody`, which must be able
        // to pass through the data directory's parent, as it can through `/var/lib`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Dir { tmp }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// `mobius --data-dir <data> ARGS…` with a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("NO_COLOR", "1")
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .current_dir(self.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("mobius runs")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mobius {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Starts `mobius serve` on a free loopback port, with [`ADMIN`] as the admin token.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut cmd = self.cmd(&args);
        cmd.env("MOBIUS_ADMIN_TOKEN", ADMIN).stdout(Stdio::null());
        self.spawn_server(cmd)
    }

    /// [`Dir::serve`] with extra environment variables.
    pub fn serve_with_env(&self, env: &[(&str, &str)]) -> Server {
        let mut cmd = self.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.env("MOBIUS_ADMIN_TOKEN", ADMIN).stdout(Stdio::null());
        for (key, value) in env {
            cmd.env(key, value);
        }
        self.spawn_server(cmd)
    }

    /// [`Dir::serve`] on a given address: a server restarted where its clients know it.
    pub fn serve_at(&self, listen: &str) -> Server {
        let mut cmd = self.cmd(&["serve", "--listen", listen]);
        cmd.env("MOBIUS_ADMIN_TOKEN", ADMIN).stdout(Stdio::null());
        self.spawn_server(cmd)
    }

    /// Starts `mobius serve` without `MOBIUS_ADMIN_TOKEN`; returns what it printed on stdout
    /// before it listened (the generated token, on a first start).
    pub fn serve_without_admin_token(&self) -> (Server, String) {
        let out = self.path().join("serve-stdout.txt");
        let mut cmd = self.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.stdout(std::fs::File::create(&out).expect("stdout file"));
        let server = self.spawn_server(cmd);
        (server, std::fs::read_to_string(&out).expect("stdout"))
    }

    fn spawn_server(&self, mut cmd: Command) -> Server {
        if !cmd.get_envs().any(|(key, _)| key == "MOBIUS_LOG") {
            cmd.env("MOBIUS_LOG", "warn");
        }
        let mut child = cmd
            .env("MOBIUS_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env("MOBIUS_GITLAB_WEBHOOK_TOKEN", GITLAB_TOKEN)
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Everything the server says goes to `serve.log`, for a failing test to show: what it
        // said while starting (warnings) too.
        let log = self.path().join("serve.log");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
        let base = loop {
            use std::io::Write;
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines.next().expect("server printed its address").expect("read");
            if let Some(file) = &mut file {
                let _ = writeln!(file, "{line}");
            }
            if let Some(url) = line.strip_prefix("mobius listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::Write;
            for line in lines.map_while(Result::ok) {
                if let Some(file) = &mut file {
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        Server { child, base }
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        self.child.wait().expect("reaped")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client for tests.
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A GitHub delivery of `event`, signed with [`GITHUB_SECRET`] as GitHub signs it, posted to
/// the server's webhook.
pub fn github_delivery(server: &Server, event: &str, payload: &serde_json::Value) -> reqwest::blocking::Response {
    let body = serde_json::to_vec(payload).expect("payload");
    http()
        .post(server.url("/api/v1/webhooks/github"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
        .header("X-Hub-Signature-256", sign(GITHUB_SECRET, &body))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .expect("webhook delivered")
}

/// A signed GitHub `push` delivery (the corpus payload) for `repository` moving `main` from
/// `before` to `after`.
pub fn github_push(server: &Server, repository: &str, before: &str, after: &str) -> reqwest::blocking::Response {
    let text = std::fs::read_to_string(corpus("github-webhooks/push/payload.json")).expect("corpus");
    let mut payload: serde_json::Value = serde_json::from_str(&text).expect("payload");
    payload["ref"] = "refs/heads/main".into();
    payload["before"] = before.into();
    payload["after"] = after.into();
    payload["repository"]["full_name"] = repository.into();
    payload["repository"]["name"] = repository.rsplit('/').next().unwrap_or(repository).into();
    github_delivery(server, "push", &payload)
}

/// `mobius ARGS` with `input` on standard input.
pub fn with_stdin(dir: &Dir, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = dir.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// What a command printed, standard output then standard error.
pub fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Every file under `dir` that holds `needle` (the SQLite database and its WAL among them).
pub fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            found.push(path.display().to_string());
        }
    }
    found
}

/// A minimal valid v0.5.1 CDEvent.
pub fn deployed(id: &str, service: &str, env: &str, at: &str) -> serde_json::Value {
    serde_json::json!({
        "context": {
            "specversion": "0.5.1",
            "id": id,
            "source": "/test/ci",
            "type": "dev.cdevents.service.deployed.0.3.0",
            "timestamp": at
        },
        "subject": {
            "id": service,
            "content": { "environment": { "id": env }, "artifactId": format!("pkg:generic/{service}@{id}") }
        }
    })
}

/// One HTTP/1.1 request as a loopback fake (a forge's API) read it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body as JSON; `null` when it is not.
    pub body: serde_json::Value,
}

/// Reads one request from `stream` (its head, then `content-length` bytes of body); `None`
/// when the peer closed without sending one.
pub fn read_request(stream: &std::net::TcpStream) -> Option<Received> {
    use std::io::Read;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    if reader.read_line(&mut head).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = std::collections::BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Some(Received { method, path, headers, body })
}

/// Answers `status` with the JSON `reply` and closes the connection.
pub fn reply_json(mut stream: std::net::TcpStream, status: u16, reply: &str) {
    use std::io::Write;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
}
