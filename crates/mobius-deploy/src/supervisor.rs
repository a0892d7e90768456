//! The embedded runtime: each version's instances as local processes on loopback ports.
//!
//! An instance is started with the port in its `port_env` variable, in its own process group
//! (so stopping it stops whatever it started), with stdout and stderr appended to a log file.
//! Its environment is clean: nothing of the server's (whose environment may hold its admin
//! token and webhook secrets) but the documented set of [`instance_env`].
//!
//! With a [`Sandbox`] ([`Supervisor::with_sandbox`]) instances start through it: as its
//! `run_as` user, and with bubblewrap in a PID namespace of their own with the data directory
//! hidden and their release bound read-only. They do not die with the server
//! (no `--die-with-parent`): the pid stored is `bwrap`'s, which lives as long as the instance's
//! command, so re-adoption, health by port and stopping by process group work as without it.
//! It is ready when its health path answers 2xx; one that exits or is not healthy within the
//! readiness timeout fails the start with the reason and the last lines of its log, and is
//! killed. Stopping is SIGTERM to the group, then SIGKILL after the grace period; the proxy
//! stops routing to an instance before it is stopped, and the instance drains what it has.
//!
//! A crashed instance is restarted on the same port with a backoff (1 s, doubling to 30 s),
//! so the routing table stays valid. Instances are not children that die with the control
//! plane: after a restart of `mobius serve` they are **re-adopted** from their stored records
//! (the process is alive and its port answers health), and traffic never stops. An adopted
//! instance is watched by polling its health.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use jiff::Timestamp;
use mobius_sandbox::{Confinement, Sandbox};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The variables of the server's environment an instance gets, when the server has them:
/// `PATH` to find programs, `HOME` (the `run_as` user's home instead when privileges are
/// dropped), and the locale and time zone.
pub const INHERITED_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// What starting one version's instances needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub service: String,
    pub environment: String,
    pub version: String,
    /// The release directory: the working directory, and where a relative `command` is found.
    pub workdir: PathBuf,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub port_env: String,
    pub health_path: String,
    pub readiness_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Where instance logs go (`<version>-<index>.log`).
    pub log_dir: PathBuf,
}

/// A running instance, as stored with its rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub version: String,
    pub index: u32,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
    pub started_at: Timestamp,
}

/// Why instances did not start. The message is whole (a rollout keeps it as its reason), so
/// what it says about the process (its exit status, the last health check, its log) is part
/// of it rather than a source.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start `{command}`: {message}")]
    Spawn { command: String, message: String },
    #[error("instance {index} of {version} exited before it was healthy ({status}); last log lines:\n{tail}")]
    Exited { version: String, index: u32, status: String, tail: String },
    #[error(
        "instance {index} of {version} was not healthy within {seconds:.0} s ({}); last log lines:\n{tail}",
        chain(last)
    )]
    Unhealthy {
        version: String,
        index: u32,
        seconds: f64,
        /// The last health check's answer.
        last: HealthError,
        tail: String,
    },
}

/// Why one health check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Nothing accepts connections on the instance's port (yet).
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    /// Something accepted the connection but does not speak HTTP/1.
    #[error("the HTTP handshake failed")]
    Handshake(#[source] hyper::Error),
    /// The health path is not a valid request path.
    #[error("`{path}` is not a request path")]
    Path {
        path: String,
        #[source]
        source: hyper::http::Error,
    },
    /// The connection failed while the request went out or the answer came back.
    #[error("the request failed")]
    Request(#[source] hyper::Error),
    /// An answer that is not 2xx.
    #[error("{path} answered {status}")]
    Status { path: String, status: hyper::StatusCode },
    /// No answer within a second.
    #[error("{path} did not answer within 1 s")]
    Timeout { path: String },
}

/// How [`Supervisor::stop`] ended an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited on SIGTERM within the grace period.
    Terminated,
    /// It was still there after the grace period and was killed (SIGKILL).
    Killed,
}

/// Starts, watches and stops instances.
#[derive(Clone, Default)]
pub struct Supervisor {
    /// pid → whether it is being stopped on purpose (a watcher then does not restart it).
    stopping: Arc<Mutex<BTreeMap<u32, bool>>>,
    /// The launches of running instances, by address, for restarts.
    launches: Arc<Mutex<BTreeMap<SocketAddr, (Launch, Instance)>>>,
    /// How instances are started.
    sandbox: Sandbox,
}

impl Supervisor {
    /// Instances as plain processes of the server's own user.
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Instances started through `sandbox` (the server's: its data directory hidden, its
    /// `run_as` user). A release must be readable by that user, as releases are (0444/0555).
    pub fn with_sandbox(sandbox: Sandbox) -> Supervisor {
        Supervisor { sandbox, ..Supervisor::default() }
    }

    /// Starts `count` instances of a version and waits until all are healthy. All or nothing:
    /// when one fails, the ones started are stopped and the error says why.
    pub async fn start(&self, launch: &Launch, count: u32) -> Result<Vec<Instance>, StartError> {
        let mut started: Vec<Instance> = Vec::new();
        for index in 0..count {
            match self.start_one(launch, index, None).await {
                Ok(instance) => started.push(instance),
                Err(e) => {
                    for instance in &started {
                        self.stop(instance, launch.shutdown_grace).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(started)
    }

    /// Starts instance `index`, on `port` when given (a restart), else on a free port.
    pub async fn start_one(&self, launch: &Launch, index: u32, port: Option<u16>) -> Result<Instance, StartError> {
        let port = match port {
            Some(port) => port,
            None => free_port().map_err(|e| StartError::Spawn {
                command: launch.command.clone(),
                message: format!("no free port: {}", chain(&e)),
            })?,
        };
        std::fs::create_dir_all(&launch.log_dir).map_err(|e| spawn_error(launch, &e))?;
        let log = launch.log_dir.join(format!("{}-{index}.log", launch.version));
        let out =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| spawn_error(launch, &e))?;
        let err = out.try_clone().map_err(|e| spawn_error(launch, &e))?;
        let program = resolve(&launch.workdir, &launch.command);
        let confinement = Confinement {
            workdir: launch.workdir.clone(),
            read_only: vec![launch.workdir.clone()],
            read_write: Vec::new(),
            // Instances outlive the control plane; they are re-adopted when it comes back.
            die_with_parent: false,
        };
        let mut command = self
            .sandbox
            .command(&program, &launch.args, &confinement)
            .map_err(|e| StartError::Spawn { command: launch.command.clone(), message: chain(&e) })?;
        command
            .env_clear()
            .envs(instance_env(launch, port, &self.sandbox))
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(false);
        let mut child = command.spawn().map_err(|e| spawn_error(launch, &e))?;
        // A child that was just spawned and not yet waited for always has its pid.
        let pid = child.id().unwrap_or_default();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let instance = Instance {
            version: launch.version.clone(),
            index,
            pid,
            addr,
            log: log.clone(),
            started_at: Timestamp::now(),
        };
        let deadline = Instant::now() + launch.readiness_timeout;
        let mut last;
        loop {
            // Not knowing yet (a failed `waitpid`) is as good as running: the readiness timeout
            // still ends the wait.
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartError::Exited {
                    version: launch.version.clone(),
                    index,
                    status: status.to_string(),
                    tail: tail(&log, 10),
                });
            }
            match check(addr, &launch.health_path).await {
                Ok(()) => break,
                Err(why) => last = why,
            }
            if Instant::now() >= deadline {
                kill_group(pid, Signal::SIGKILL);
                // Only reaps it; the error is already the unhealthy instance.
                if let Err(error) = child.wait().await {
                    tracing::warn!(pid, error = %chain(&error), "cannot reap an instance killed for not being healthy");
                }
                return Err(StartError::Unhealthy {
                    version: launch.version.clone(),
                    index,
                    seconds: launch.readiness_timeout.as_secs_f64(),
                    last,
                    tail: tail(&log, 10),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.lock_launches().insert(addr, (launch.clone(), instance.clone()));
        self.watch_child(child, instance.clone());
        Ok(instance)
    }

    /// Stops an instance: SIGTERM to its process group, SIGKILL after `grace` if it is
    /// still there. Returns once it is gone, and with it whatever it left in its group (in a
    /// sandbox, its whole PID namespace), saying whether it had to be killed.
    pub async fn stop(&self, instance: &Instance, grace: Duration) -> Stopped {
        self.lock_stopping().insert(instance.pid, true);
        self.lock_launches().remove(&instance.addr);
        // The current pid of that address (a restart may have replaced the stored one).
        kill_group(instance.pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while alive(instance.pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stopped = if alive(instance.pid) {
            tracing::warn!(
                version = %instance.version, addr = %instance.addr, grace_s = grace.as_secs_f64(),
                "instance still running after SIGTERM and its grace period; killing it"
            );
            kill_group(instance.pid, Signal::SIGKILL);
            while alive(instance.pid) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Stopped::Killed
        } else {
            Stopped::Terminated
        };
        // Members left in the group keep its id from being reused, so this reaches only them.
        if let Ok(raw) = i32::try_from(instance.pid)
            && raw > 0
            && signal::killpg(Pid::from_raw(raw), None).is_ok()
        {
            // ESRCH: they left between the check and the kill, which is what was wanted.
            let _ = signal::killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
        stopped
    }

    /// Takes over instances a previous control plane started: those whose process is still
    /// alive are watched from now on and returned (they are serving traffic through the proxy
    /// right now: killing one for a slow health answer would fail requests); the others are
    /// left out, for the caller to start again.
    pub async fn adopt(&self, launch: &Launch, instances: &[Instance]) -> Vec<Instance> {
        let mut adopted = Vec::new();
        for instance in instances {
            if !alive(instance.pid) {
                continue;
            }
            if let Err(error) = check(instance.addr, &launch.health_path).await {
                tracing::warn!(addr = %instance.addr, error = %chain(&error), "adopted an instance that does not answer health yet");
            }
            self.lock_launches().insert(instance.addr, (launch.clone(), instance.clone()));
            self.watch_adopted(instance.clone());
            adopted.push(instance.clone());
        }
        adopted
    }

    /// The instance now serving `addr` (its pid changes when it was restarted).
    pub fn current(&self, addr: SocketAddr) -> Option<Instance> {
        self.lock_launches().get(&addr).map(|(_, i)| i.clone())
    }

    fn lock_stopping(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, bool>> {
        self.stopping.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_launches(&self) -> std::sync::MutexGuard<'_, BTreeMap<SocketAddr, (Launch, Instance)>> {
        self.launches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a child; an exit nobody asked for is a crash: restart it on its port.
    fn watch_child(&self, mut child: tokio::process::Child, instance: Instance) {
        let this = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            this.exited(instance, status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())).await;
        });
    }

    /// Polls an adopted instance (not our child: it cannot be waited for).
    fn watch_adopted(&self, instance: Instance) {
        let this = self.clone();
        tokio::spawn(async move {
            while alive(instance.pid) {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            this.exited(instance, "exited".to_owned()).await;
        });
    }

    async fn exited(&self, instance: Instance, status: String) {
        if self.lock_stopping().remove(&instance.pid).is_some() {
            return;
        }
        let mut backoff = Duration::from_secs(1);
        loop {
            let Some((launch, _)) = self.lock_launches().get(&instance.addr).cloned() else { return };
            tracing::warn!(
                service = %launch.service, version = %instance.version, addr = %instance.addr, %status,
                "instance crashed; restarting in {} s", backoff.as_secs()
            );
            tokio::time::sleep(backoff).await;
            // Stopped on purpose while we waited.
            if !self.lock_launches().contains_key(&instance.addr) {
                return;
            }
            match self.start_one(&launch, instance.index, Some(instance.addr.port())).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(addr = %instance.addr, error = %chain(&e), "restart failed");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// An instance's whole environment, in the order later entries win: [`INHERITED_ENV`] from the
/// server's environment (`HOME` is the `run_as` user's home when the sandbox drops privileges;
/// `PATH` defaults to `/usr/local/bin:/usr/bin:/bin`), the spec's `env`, `MOBIUS_SERVICE`,
/// `MOBIUS_ENVIRONMENT`, `MOBIUS_VERSION`, and the port in `port_env`. Inside bubblewrap the
/// process also finds `PWD`, which bubblewrap sets.
pub fn instance_env(launch: &Launch, port: u16, sandbox: &Sandbox) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            env.insert(name.to_owned(), value.to_string_lossy().into_owned());
        }
    }
    env.entry("PATH".to_owned()).or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    if let Some(user) = sandbox.run_as() {
        env.insert("HOME".to_owned(), user.home.display().to_string());
    }
    env.extend(launch.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert("MOBIUS_SERVICE".to_owned(), launch.service.clone());
    env.insert("MOBIUS_ENVIRONMENT".to_owned(), launch.environment.clone());
    env.insert("MOBIUS_VERSION".to_owned(), launch.version.clone());
    env.insert(launch.port_env.clone(), port.to_string());
    env
}

fn spawn_error(launch: &Launch, e: &std::io::Error) -> StartError {
    StartError::Spawn { command: launch.command.clone(), message: chain(e) }
}

/// An error and its causes on one line, `error: cause: cause`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `command` relative to the release directory when it names a file there (`./server`,
/// `bin/server`), else as given (found on `PATH`). `mobius` is the running binary itself,
/// so `mobius sample-app` works wherever Mobius is installed.
fn resolve(workdir: &Path, command: &str) -> PathBuf {
    // Without its own path (rare: `/proc` not mounted), `mobius` is looked up on `PATH`.
    if command == "mobius"
        && let Ok(exe) = std::env::current_exe()
    {
        return exe;
    }
    let candidate = workdir.join(command);
    if command.contains('/') && candidate.exists() { candidate } else { PathBuf::from(command) }
}

/// A port the OS says is free now. Another process could take it before the instance binds;
/// the instance then fails to start and the error shows its log.
fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port())
}

/// Whether a process exists (signal 0).
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    // A zombie (exited, not yet reaped by its watcher) counts as gone.
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(state) = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next())
        && state == "Z"
    {
        return false;
    }
    signal::kill(Pid::from_raw(raw), None).is_ok()
}

fn kill_group(pid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw > 0 {
        // The group first (it has the instance's own children), then the process itself in
        // case it left the group. ESRCH (already gone) is the outcome wanted; EPERM cannot
        // happen to our own children.
        let _ = signal::killpg(Pid::from_raw(raw), sig);
        let _ = signal::kill(Pid::from_raw(raw), sig);
    }
}

/// The last `n` lines of a log file (for an error message: one that cannot be read says why).
pub fn tail(path: &Path, n: usize) -> String {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return format!("(cannot read {}: {})", path.display(), chain(&e)),
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One health check: `GET path` answers 2xx within a second.
pub async fn check(addr: SocketAddr, path: &str) -> Result<(), HealthError> {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(HealthError::Connect)?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io).await.map_err(HealthError::Handshake)?;
        tokio::spawn(async move {
            // A connection that fails fails the request below, which says so.
            let _ = connection.await;
        });
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::new())
            .map_err(|source| HealthError::Path { path: path.to_owned(), source })?;
        let response = sender.send_request(request).await.map_err(HealthError::Request)?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(HealthError::Status { path: path.to_owned(), status }),
        }
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_elapsed| Err(HealthError::Timeout { path: path.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(dir: &Path, script: &str) -> Launch {
        std::fs::write(dir.join("app.sh"), script).unwrap();
        Launch {
            service: "svc".into(),
            environment: "test".into(),
            version: "v1".into(),
            workdir: dir.to_owned(),
            command: "sh".into(),
            args: vec!["app.sh".into()],
            env: BTreeMap::new(),
            port_env: "PORT".into(),
            health_path: "/healthz".into(),
            readiness_timeout: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(1),
            log_dir: dir.join("logs"),
        }
    }

    #[tokio::test]
    async fn an_instance_that_exits_fails_with_its_log_and_one_that_never_answers_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new();
        let exits = launch(dir.path(), "echo cannot bind port $PORT >&2; exit 3\n");
        let error = supervisor.start(&exits, 1).await.unwrap_err().to_string();
        assert!(error.contains("exited before it was healthy") && error.contains("cannot bind port"), "{error}");

        let silent = launch(dir.path(), "echo started; exec sleep 30\n");
        let error = supervisor.start(&silent, 1).await.unwrap_err().to_string();
        assert!(error.contains("not healthy within 2 s") && error.contains("started"), "{error}");
        // Nothing is left running: the group was killed.
        let out = std::process::Command::new("pgrep").args(["-f", "sleep 30"]).output().unwrap();
        let stray: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.parse().ok())
            .filter(|pid: &u32| {
                std::fs::read_link(format!("/proc/{pid}/cwd")).map(|c| c == dir.path()).unwrap_or(false)
            })
            .collect();
        assert!(stray.is_empty(), "orphans: {stray:?}");
    }

    #[test]
    fn tails_and_resolution() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log"), "1\n2\n3\n").unwrap();
        assert_eq!(tail(&dir.path().join("log"), 2), "2\n3");
        std::fs::write(dir.path().join("server"), "").unwrap();
        assert_eq!(resolve(dir.path(), "./server"), dir.path().join("./server"));
        assert_eq!(resolve(dir.path(), "python3"), PathBuf::from("python3"));
    }
}
