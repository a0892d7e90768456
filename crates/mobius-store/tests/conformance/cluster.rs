//! A throwaway PostgreSQL cluster for the tests, or the server `MOBIUS_TEST_DATABASE_URL`
//! names; each test gets a database of its own, so tests run in parallel.
//!
//! The cluster is Debian's PostgreSQL 15 (`/usr/lib/postgresql/15/bin`; `scripts/test`
//! installs it): `initdb` with trust authentication in a temporary directory, started by
//! `pg_ctl` on a free loopback port, run as the `postgres` user when the tests run as root
//! (PostgreSQL refuses to run as root). It is started once per test binary. A static is never
//! dropped, so a `Drop` guard would never run: a small watchdog process, started with the
//! cluster, stops it (`pg_ctl stop -m immediate`) and removes its directory once the test
//! process has gone, however it ended.
//!
//! Nothing here skips: a test that cannot get a database fails, saying why.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Where databases are made: a server's URL whose database is the maintenance one.
struct Server {
    admin_url: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn server() -> &'static Server {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => panic!("no PostgreSQL for the conformance tests: {why}"),
    }
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("MOBIUS_TEST_DATABASE_URL") {
        return Ok(Server { admin_url: url });
    }
    let bin = Path::new(BIN);
    if !bin.join("pg_ctl").exists() {
        return Err(format!(
            "{BIN}/pg_ctl is missing: install postgresql-15 (scripts/test does), or set MOBIUS_TEST_DATABASE_URL"
        ));
    }
    let dir = tempfile::Builder::new().prefix("mobius-pg-").tempdir().map_err(|e| e.to_string())?.keep();
    let root = std::fs::metadata("/proc/self").map_err(|e| e.to_string())?.uid() == 0;
    if root {
        run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir))?;
    }
    let data = dir.join("data");
    let as_postgres = |program: &str| {
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(program));
            c
        } else {
            Command::new(bin.join(program))
        };
        command.current_dir(&dir);
        command
    };
    run(as_postgres("initdb").arg("-D").arg(&data).args([
        "--auth=trust",
        "--username=postgres",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]))?;
    watchdog(&dir, &data, root);
    // A port found free may be taken before the server binds it: try a few.
    let mut failure = String::new();
    for _ in 0..3 {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", dir.display());
        let started = run(as_postgres("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]));
        match started {
            Ok(()) => return Ok(Server { admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres") }),
            Err(why) => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                failure = format!("{why}\n{log}");
            }
        }
    }
    Err(failure)
}

/// Stops the cluster and removes its directory once this process has exited.
fn watchdog(dir: &Path, data: &Path, root: bool) {
    let stop = format!("{BIN}/pg_ctl -D '{}' stop -m immediate", data.display());
    let stop = if root { format!("runuser -u postgres -- {stop}") } else { stop };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Its own process group: a Ctrl-C to the tests does not stop it before it cleans up.
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// A database of one test's own, dropped when the test is done with it.
pub struct Database {
    pub url: String,
    name: String,
}

impl Database {
    pub fn create() -> Database {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server();
        let name = format!("t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = Client::connect(&server.admin_url, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test server to make a database: {e:#}"));
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test's database");
        Database { url: with_database(&server.admin_url, &name), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&server().admin_url, NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// `url` (`postgres://…/db?…`) with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let base = match head[authority..].find('/') {
        Some(slash) => &head[..authority + slash],
        None => head,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
