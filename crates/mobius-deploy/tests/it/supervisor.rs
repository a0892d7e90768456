//! The supervisor with real processes: what an instance's environment holds, and instances in
//! bubblewrap as `nobody` — stopped by SIGTERM with nothing left behind, and re-adopted by a
//! restarted control plane. The instance is this test binary run again as [`app`]. The sandbox
//! tests run as root with bubblewrap installed, as CI does (`scripts/test` installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mobius_deploy::supervisor::{self, INHERITED_ENV, Launch, Stopped, Supervisor};
use mobius_sandbox::{Isolation, Mode, Sandbox, User};
use tempfile::TempDir;

/// Not a test of its own: the instance the other tests start (this binary, run again with
/// `--exact supervisor::app` and `APP_DIR` set; without `APP_DIR` it returns at once). It
/// writes what it sees to `APP_DIR` (`env`: its environment's names; `uid`; `pids`: the
/// processes in its `/proc`; `server-environ`: what it could read of `APP_SERVER`'s environ),
/// starts `sleep APP_CHILD` ignoring SIGTERM, answers HTTP on `PORT`, and on SIGTERM writes
/// `APP_DIR/term` and exits.
#[test]
fn app() {
    let Some(dir) = std::env::var_os("APP_DIR").map(PathBuf::from) else { return };
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry.split(|b| *b == b'=').next().unwrap_or_default()).into_owned())
        .collect();
    let pids = std::fs::read_dir("/proc")
        .map(|entries| {
            entries.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .map(Iterator::count)
        .unwrap_or_default();
    let server = std::env::var("APP_SERVER").unwrap_or_default();
    let server_environ = std::fs::read(format!("/proc/{server}/environ")).map(|b| b.len()).unwrap_or_default();
    std::fs::write(dir.join("env"), names.join("\n")).expect("env");
    std::fs::write(dir.join("uid"), nix::unistd::getuid().to_string()).expect("uid");
    std::fs::write(dir.join("pids"), pids.to_string()).expect("pids");
    std::fs::write(dir.join("server-environ"), server_environ.to_string()).expect("server-environ");
    if let Ok(child) = std::env::var("APP_CHILD") {
        // Never waited for, on purpose: the test checks that stopping the instance ends it.
        #[expect(clippy::zombie_processes, reason = "the child must outlive the app's own SIGTERM")]
        std::process::Command::new("sh")
            .args(["-c", &format!("trap '' TERM; exec sleep {child}")])
            .spawn()
            .expect("child");
    }
    let port: u16 = std::env::var("PORT").expect("PORT").parse().expect("a port");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        use tokio::io::AsyncWriteExt;
        use tokio::signal::unix::{SignalKind, signal};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        loop {
            tokio::select! {
                _ = term.recv() => {
                    std::fs::write(dir.join("term"), "SIGTERM").expect("term");
                    std::process::exit(0);
                }
                accepted = listener.accept() => {
                    if let Ok((mut stream, _)) = accepted {
                        let mut buffer = [0u8; 1024];
                        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                        let _ = stream.write_all(answer).await;
                    }
                }
            }
        }
    });
}

/// A server's layout in a temp dir: `data/` (the data directory, with a secret) holding a
/// read-only release, and `report/`, where the app writes what it sees.
struct Layout {
    tmp: TempDir,
}

impl Layout {
    fn new() -> Layout {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mode = |path: &Path, mode| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        // The data directory's parent must be traversable by the run_as user, as /var/lib is.
        mode(tmp.path(), 0o755).expect("chmod");
        let release = tmp.path().join("data/releases/svc/v1");
        std::fs::create_dir_all(&release).expect("release");
        std::fs::write(tmp.path().join("data/secret.txt"), "the server's secret").expect("secret");
        mode(&release, 0o555).expect("chmod");
        std::fs::create_dir(tmp.path().join("report")).expect("report");
        mode(&tmp.path().join("report"), 0o777).expect("chmod");
        Layout { tmp }
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn report(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.tmp.path().join("report").join(name)).ok()
    }

    fn launch(&self, env: &[(&str, &str)]) -> Launch {
        let mut env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.insert("APP_DIR".into(), self.tmp.path().join("report").display().to_string());
        env.insert("APP_SERVER".into(), std::process::id().to_string());
        Launch {
            service: "svc".into(),
            environment: "production".into(),
            version: "v1".into(),
            workdir: self.data().join("releases/svc/v1"),
            command: std::env::current_exe().expect("test binary").display().to_string(),
            args: ["--exact", "supervisor::app", "--nocapture", "--test-threads=1", "-q"].map(str::to_owned).to_vec(),
            env,
            port_env: "PORT".into(),
            health_path: "/healthz".into(),
            readiness_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            log_dir: self.data().join("logs"),
        }
    }
}

fn bwrap_sandbox(layout: &Layout) -> Sandbox {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test drops privileges to `nobody` and must run as root, as CI does (scripts/test)"
    );
    let nobody = User::lookup("nobody").expect("the user nobody exists");
    let sandbox = Sandbox::new(Mode::Bwrap, Some(nobody), &[layout.data()]).unwrap_or_else(|e| {
        panic!("bubblewrap does not work here ({e:#}): scripts/test installs bubblewrap, and CI always has it")
    });
    assert_eq!(sandbox.isolation(), Isolation::Bwrap);
    sandbox
}

/// Host processes whose command line contains `marker`.
fn running(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep").args(["-f", marker]).output().expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// The names an instance gets besides the spec's `env`: the server's [`INHERITED_ENV`] it has,
/// and what the supervisor sets.
fn documented(spec: &[&str]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> =
        INHERITED_ENV.iter().filter(|name| std::env::var_os(name).is_some()).map(|name| name.to_string()).collect();
    names.insert("PATH".into());
    names.extend(
        ["MOBIUS_SERVICE", "MOBIUS_ENVIRONMENT", "MOBIUS_VERSION", "PORT", "APP_DIR", "APP_SERVER"].map(String::from),
    );
    names.extend(spec.iter().map(|name| name.to_string()));
    names
}

fn env_names(layout: &Layout) -> BTreeSet<String> {
    layout.report("env").expect("the app wrote its environment").lines().map(str::to_owned).collect()
}

#[test]
fn an_instance_gets_only_the_documented_environment() {
    // Cargo sets these for the test process; a leaking server environment would pass them on.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let layout = Layout::new();
    let launch = layout.launch(&[("GREETING", "hello")]);
    runtime().block_on(async {
        let supervisor = Supervisor::new();
        let instances = supervisor.start(&launch, 1).await.expect("started");
        supervisor.stop(&instances[0], Duration::from_secs(5)).await;
    });
    assert_eq!(env_names(&layout), documented(&["GREETING"]));
    let expected = supervisor::instance_env(&launch, 1, &Sandbox::none());
    assert_eq!(expected.get("HOME").map(String::as_str), std::env::var("HOME").ok().as_deref());
}

#[test]
fn a_sandboxed_instance_sees_little_stops_on_sigterm_with_nothing_left_and_is_readopted() {
    let layout = Layout::new();
    let sandbox = bwrap_sandbox(&layout);
    let marker = "1000.6161";
    let launch = layout.launch(&[("APP_CHILD", marker)]);

    // The first control plane starts it, then goes away (its runtime and supervisor dropped).
    let instances = runtime().block_on(async {
        let supervisor = Supervisor::with_sandbox(sandbox.clone());
        supervisor.start(&launch, 1).await.expect("started in the sandbox")
    });
    let instance = instances[0].clone();
    assert!(supervisor::alive(instance.pid), "the instance died with its control plane");

    // What it saw: a clean environment (bubblewrap adds PWD) with nobody's home, its own user,
    // its own PID namespace, and not the server's environ.
    let mut expected = documented(&["APP_CHILD"]);
    expected.extend(["HOME".to_owned(), "PWD".to_owned()]);
    assert_eq!(env_names(&layout), expected);
    let home = supervisor::instance_env(&launch, instance.addr.port(), &sandbox)["HOME"].clone();
    assert_eq!(home, "/nonexistent");
    assert_eq!(layout.report("uid").as_deref(), Some("65534"));
    let pids: usize = layout.report("pids").expect("pids").parse().expect("a count");
    assert!(pids <= 8, "{pids} processes visible: not its own PID namespace");
    assert_eq!(layout.report("server-environ").as_deref(), Some("0"));
    assert_eq!(running(marker).len(), 1, "the app's child");

    // A restarted control plane adopts it, then stops it: SIGTERM reaches the app, which
    // exits on its own within the grace period (it is not killed), and its child that ignores
    // SIGTERM goes with the rest of the sandbox.
    let stopped = runtime().block_on(async {
        let supervisor = Supervisor::with_sandbox(sandbox.clone());
        let adopted = supervisor.adopt(&launch, &instances).await;
        assert_eq!(adopted, instances, "not re-adopted");
        supervisor::check(instance.addr, &launch.health_path).await.expect("healthy after adoption");
        supervisor.stop(&instance, Duration::from_secs(30)).await
    });
    assert_eq!(stopped, Stopped::Terminated, "SIGTERM did not end it");
    assert_eq!(layout.report("term").as_deref(), Some("SIGTERM"));
    assert!(!supervisor::alive(instance.pid));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !running(marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running(marker), Vec::<String>::new(), "left running after the instance stopped");
}
