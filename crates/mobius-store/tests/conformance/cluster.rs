//! A throwaway PostgreSQL cluster for the tests, or the server `MOBIUS_TEST_DATABASE_URL`
//! names; each test gets a database of its own, so tests run in parallel.
//!
//! The cluster is Debian's PostgreSQL 15 (`/usr/lib/postgresql/15/bin`; `scripts/test`
//! installs it): `initdb` with trust authentication in a temporary directory, started by
//! `pg_ctl` on a free loopback port, run as the `postgres` user when the tests run as root
//! (PostgreSQL refuses to run as root). The shared one is started once per test binary. A
//! static is never dropped, so a `Drop` guard would never run: a small watchdog process,
//! started with each cluster, stops it (`pg_ctl stop -m immediate`) and removes its directory
//! once the test process has gone, however it ended.
//!
//! A test that needs a server of its own — one it configures (TLS) or stops and starts again
//! (the database lost under load) — makes a [`Cluster`]; it is stopped and removed when dropped.
//!
//! Nothing here skips: a test that cannot get a database fails, saying why.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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
    let mut cluster = Cluster::init()?;
    cluster.start()?;
    let admin_url = cluster.admin_url();
    // The shared cluster lives as long as the process; its watchdog stops it.
    std::mem::forget(cluster);
    Ok(Server { admin_url })
}

/// A PostgreSQL cluster of its own: `initdb` done, started by [`Cluster::start`], stopped (and
/// its directory removed) when dropped or, should the test process die, by its watchdog.
pub struct Cluster {
    dir: PathBuf,
    data: PathBuf,
    root: bool,
    /// Chosen at the first start, kept by every later one (so URLs stay valid).
    port: Option<u16>,
}

impl Cluster {
    /// A new cluster (not started): trust authentication, UTF-8, no fsync.
    pub fn init() -> Result<Cluster, String> {
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
        let cluster = Cluster { data: dir.join("data"), dir, root, port: None };
        run(cluster.as_postgres("initdb").arg("-D").arg(&cluster.data).args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        watchdog(&cluster.dir, &cluster.data, root);
        Ok(cluster)
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(Path::new(BIN).join(program));
            c
        } else {
            Command::new(Path::new(BIN).join(program))
        };
        command.current_dir(&self.dir);
        command
    }

    /// Writes `name` in the data directory, readable by the server only (as a key must be).
    #[allow(dead_code, reason = "the store's TLS tests use it; mobius's tests share this file")]
    pub fn write(&self, name: &str, contents: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let owner = std::fs::metadata(&self.data).expect("the data directory");
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown");
    }

    /// Appends `lines` to `postgresql.conf`.
    #[allow(dead_code, reason = "the store's TLS tests use it; mobius's tests share this file")]
    pub fn configure(&self, lines: &str) {
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push('\n');
        text.push_str(lines);
        std::fs::write(&conf, text).expect("postgresql.conf");
    }

    /// Starts the server: on a free loopback port the first time, on the same one after.
    pub fn start(&mut self) -> Result<(), String> {
        // A port found free may be taken before the server binds it: try a few.
        let mut failure = String::new();
        for _ in 0..3 {
            let port = match self.port {
                Some(port) => port,
                None => std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(|e| e.to_string())?
                    .port(),
            };
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                self.dir.display()
            );
            let started = run(self
                .as_postgres("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]));
            match started {
                Ok(()) => {
                    self.port = Some(port);
                    return Ok(());
                }
                Err(why) => {
                    let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                    failure = format!("{why}\n{log}");
                }
            }
        }
        Err(failure)
    }

    /// Stops the server as an operator would (`pg_ctl stop -m fast`: sessions are ended,
    /// transactions in flight rolled back, what committed kept).
    pub fn stop(&self) -> Result<(), String> {
        run(self.as_postgres("pg_ctl").arg("-D").arg(&self.data).args(["-w", "-t", "60", "-m", "fast", "stop"]))
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port.expect("the cluster was started")
    }

    /// The URL of the maintenance database, as the superuser (over TCP on loopback).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port())
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        with_database(&self.admin_url(), name)
    }

    /// Makes the database `name`, connecting through the Unix socket (which `pg_hba.conf`
    /// trusts whatever a test asks of TCP connections).
    pub fn create_database(&self, name: &str) {
        let socket = format!("host={} port={} user=postgres dbname=postgres", self.dir.display(), self.port());
        let mut admin = Client::connect(&socket, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster to make a database: {e:#}"));
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test's database");
    }

    /// What the server logged, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(self.as_postgres("pg_ctl").arg("-D").arg(&self.data).args(["-w", "-m", "immediate", "stop"]));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
