//! The server's own secrets: read from `*_FILE` variables, then gone from its environment, and
//! `/proc/<pid>/environ` out of reach of the server's own user. Runs as root, as CI does.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Dir, Server, http};

const TOKEN: &str = "admin-token-from-a-file-0123456789";
const GITHUB: &str = "github-secret-in-a-variable";
const GITLAB: &str = "gitlab-token-from-a-file";
const NOBODY: u32 = 65534;

/// Starts `cmd` (a `mobius serve` on port 0) and waits for its address.
fn start(mut cmd: Command) -> Server {
    let mut child = cmd.env("MOBIUS_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().expect("server printed its address").expect("read");
        if let Some(url) = line.strip_prefix("mobius listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Server { child, base }
}

fn secret_file(path: &Path, value: &str) {
    std::fs::write(path, format!("{value}\n")).expect("secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs the server as `nobody` and must run as root, as CI does (scripts/test)"
    );
}

#[test]
fn serve_reads_secrets_from_files_and_leaves_none_in_its_environment() {
    let dir = Dir::new();
    let (token, gitlab) = (dir.path().join("admin-token"), dir.path().join("gitlab-token"));
    secret_file(&token, TOKEN);
    secret_file(&gitlab, GITLAB);
    let mut cmd = dir.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("MOBIUS_ADMIN_TOKEN_FILE", &token)
        .env("MOBIUS_GITHUB_WEBHOOK_SECRET", GITHUB)
        .env("MOBIUS_GITLAB_WEBHOOK_TOKEN_FILE", &gitlab);
    let server = start(cmd);

    // The token came from the file, its newline trimmed: it is the admin's.
    let answer = http().get(server.url("/api/v1/tokens")).bearer_auth(TOKEN).send().expect("request");
    assert_eq!(answer.status(), 200, "{}", answer.text().unwrap_or_default());

    // What /proc shows of the environment the server started with holds no secret (the values
    // are overwritten in place), and the variables are gone from the environment its children
    // inherit (removed at start; `/proc` cannot show that list, the unit tests of `config` and
    // the supervisor's clean instance environment cover it).
    let pid = server.child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("root reads it");
    let text = String::from_utf8_lossy(&environ);
    for secret in [TOKEN, GITHUB, GITLAB] {
        assert!(!text.contains(secret), "{secret} in /proc/{pid}/environ: {text:?}");
    }
    assert!(text.contains("NO_COLOR=1"), "not the server's environment: {text:?}");
    assert!(text.contains("MOBIUS_GITHUB_WEBHOOK_SECRET=\0"), "the variable's value was not blanked: {text:?}");
}

#[test]
fn a_server_is_not_dumpable_so_its_own_user_cannot_read_its_environ() {
    require_root();
    let dir = Dir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir(dir.data()).expect("data dir");
    let token = dir.path().join("admin-token");
    secret_file(&token, TOKEN);
    for path in [dir.data(), token.clone()] {
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    let mut cmd = dir.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("MOBIUS_ADMIN_TOKEN_FILE", &token).uid(NOBODY).gid(NOBODY);
    let server = start(cmd);
    let pid = server.child.id();

    // Another process of the same user tries to read the server's environment.
    let read = Command::new("cat")
        .arg(format!("/proc/{pid}/environ"))
        .uid(NOBODY)
        .gid(NOBODY)
        .env_clear()
        .output()
        .expect("cat runs");
    assert!(!read.status.success(), "read by its own user: {:?}", String::from_utf8_lossy(&read.stdout));
    assert!(read.stdout.is_empty());
    assert!(String::from_utf8_lossy(&read.stderr).contains("Permission denied"), "{read:?}");
}

#[test]
fn a_secret_given_both_ways_is_refused() {
    let dir = Dir::new();
    let token = dir.path().join("admin-token");
    secret_file(&token, TOKEN);
    let out = dir
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env("MOBIUS_ADMIN_TOKEN", TOKEN)
        .env("MOBIUS_ADMIN_TOKEN_FILE", &token)
        .output()
        .expect("serve runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("both MOBIUS_ADMIN_TOKEN and MOBIUS_ADMIN_TOKEN_FILE are set: set only one"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

/// A secret given as a file is out of a step's reach, even a file its user could read: the
/// file's directory is hidden from steps like the data directory. (Made readable by others
/// here, so only the hiding keeps it from the step, which runs as `nobody`.)
#[test]
fn a_step_cannot_read_the_servers_secret_files() {
    require_root();
    let dir = Dir::new();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = secrets.join("admin-token");
    secret_file(&token, TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let workflow = format!(
        "on: push\njobs:\n  peek:\n    runs-on: local\n    steps:\n      - run: cat '{}' || echo no-secret-here\n",
        token.display()
    );
    let repo = crate::runs::repository(&dir, &[(".github/workflows/ci.yml", &workflow)]);
    let mut cmd = dir.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("MOBIUS_ADMIN_TOKEN_FILE", &token).env("MOBIUS_SANDBOX", "bwrap");
    let server = start(cmd);
    let out = dir
        .cmd(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/app", "--hook-server", &server.base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    crate::runs::commit(&repo, &[("a.txt", "1")], "peek");
    let runs = crate::runs::wait_for("the run", || {
        let runs: serde_json::Value =
            http().get(server.url("/api/v1/runs")).bearer_auth(TOKEN).send().ok()?.json().ok()?;
        let run = runs.as_array()?.first()?.clone();
        let state = run["state"].as_str()?.to_owned();
        (state != "queued" && state != "running").then_some(run)
    });
    let id = runs["id"].as_i64().unwrap();
    let log =
        http().get(server.url(&format!("/api/v1/runs/{id}/logs"))).bearer_auth(TOKEN).send().unwrap().text().unwrap();
    assert!(log.contains("no-secret-here"), "{log}");
    assert!(!log.contains(TOKEN), "the step read the admin token: {log}");
}
