//! How Mobius starts code it did not write: the `run:` steps of a pushed branch's workflows
//! and the processes of deployed services.
//!
//! A [`Sandbox`] is decided once, when the server starts ([`Sandbox::from_settings`]), is
//! cheap to clone, and wraps every such command ([`Sandbox::command`]). It does up to two
//! things:
//!
//! - **Drops privileges** to its [`User`] (`run_as`), only when the server runs as root: the
//!   server's files, its memory and `/proc/<server pid>/environ` are then another user's.
//! - **Isolates** with [bubblewrap](https://github.com/containers/bubblewrap) when `bwrap` is
//!   on `PATH` and a probe of the exact command line works ([`Isolation::Bwrap`], probed once
//!   per process): the command gets its own PID namespace and a fresh `/proc` (no other
//!   process, the server's included, is visible), its own mount namespace with the host's
//!   filesystem as it is (`--bind / /`: tools and `HOME` behave as on the host), a minimal
//!   `/dev`, and the **hidden directories** (the data directory) replaced by an empty tmpfs,
//!   in which only what the command needs is bound again ([`Confinement`]: a job's workspace,
//!   home and temp dir read-write; a release read-only). bubblewrap mounts as root, so the
//!   privilege drop happens inside it, with `setpriv` from util-linux.
//!
//! [`Mode`] chooses: `auto` (bubblewrap when it works, else plain processes), `bwrap`
//! (required: an error names what is missing), `off` (plain processes; the privilege drop
//! still applies). A [`Sandbox::none`] runs commands exactly as `std` would, as `mobius run`
//! does on a laptop.
//!
//! Invariants:
//! - **The process-group contract survives the wrapper.** The process spawned leads its own
//!   process group (its pgid is its pid), and everything inside the sandbox is in that group,
//!   so `killpg(pid, SIGTERM)` then `killpg(pid, SIGKILL)` stops it all. With bubblewrap the
//!   spawned process is `bwrap` itself: it ignores `SIGTERM` (and the namespace's init ignores
//!   it as pid 1 does), so `SIGTERM` reaches the command, which may shut down gracefully, and
//!   `bwrap` exits with the command's status (128 + the signal when it was killed). `SIGKILL`
//!   of the group kills the namespace's init, and the kernel then kills everything in it.
//! - A confined process (sandbox active) also leads a new session: it has no controlling
//!   terminal, so it cannot push input into the server's terminal (`TIOCSTI`).
//! - `die_with_parent` (steps) ends the whole PID namespace when `bwrap` exits, that is when the
//!   step's command exits or the server dies; without it (instances) the sandbox outlives the
//!   server, which re-adopts it by pid.
//! - Nothing here reads or changes the environment: callers clear it and set what the command
//!   may see; `bwrap`, `env` and `setpriv` pass it through unchanged.
//! - Files the server reads or writes for the confined user (artifacts, caches) are touched with
//!   that user's permissions ([`Sandbox::as_user`]), never with root's.
//!
//! Requirements, when dropping privileges: the user must be able to traverse the data
//! directory's parent (as `/var/lib` is), since its sandboxed paths keep their host paths.
//! Without bubblewrap the user reaches a job's directories through the data directory itself,
//! which is then made traversable (`0711`, with a warning): files in it whose name is known and
//! whose mode lets others read are then readable by every step. bubblewrap is the real
//! isolation; plain processes only separate users.

mod bwrap;
pub use bwrap::ProbeFailure;
mod fs;
mod user;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::process::Command;

pub use user::User;

/// How much isolation to ask for: `sandbox` in `mobius.toml`, `MOBIUS_SANDBOX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// bubblewrap when it works here, else plain processes; the server logs which.
    #[default]
    Auto,
    /// bubblewrap, required: starting fails with what is missing.
    Bwrap,
    /// Plain processes (privileges are still dropped to `run_as`).
    Off,
}

impl std::str::FromStr for Mode {
    type Err = SandboxError;

    fn from_str(text: &str) -> Result<Mode, SandboxError> {
        match text.trim() {
            "auto" => Ok(Mode::Auto),
            "bwrap" => Ok(Mode::Bwrap),
            "off" => Ok(Mode::Off),
            other => Err(SandboxError::UnknownMode { mode: other.to_owned() }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Bwrap => "bwrap",
            Mode::Off => "off",
        })
    }
}

/// What a sandbox isolates commands with, once probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap: own PID and mount namespaces, the hidden directories out of sight.
    Bwrap,
    /// Plain processes: the host's view, the server's PID namespace.
    Processes,
}

/// Why a sandbox cannot be made or a command cannot be wrapped.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `run_as` names no user of this machine.
    #[error("unknown user `{user}` (run_as): no such user on this machine")]
    UnknownUser {
        /// The name or id as given.
        user: String,
    },
    /// The user database could not be read.
    #[error("cannot look up user `{user}`")]
    UserLookup {
        /// The name or id as given.
        user: String,
        /// What went wrong.
        source: nix::Error,
    },
    /// `sandbox` is not one of the modes.
    #[error("unknown sandbox mode `{mode}`: use auto, bwrap or off")]
    UnknownMode {
        /// The value as given.
        mode: String,
    },
    /// `sandbox = "bwrap"` but bubblewrap does not work here.
    #[error("sandbox = \"bwrap\" but bubblewrap cannot be used here: {reason}")]
    Unavailable {
        /// What is missing or failed, e.g. `bwrap` not on PATH.
        reason: bwrap::ProbeFailure,
    },
    /// Dropping privileges inside bubblewrap needs `setpriv`.
    #[error("cannot drop privileges to `{user}` inside bubblewrap: {reason}")]
    Setpriv {
        /// The user steps and instances run as.
        user: String,
        /// What is missing or failed.
        reason: bwrap::ProbeFailure,
    },
    /// A program whose name `env` would take for a variable assignment.
    #[error("cannot start `{}` in the sandbox: a program name with `=` is read as a variable", program.display())]
    ProgramName {
        /// The program.
        program: PathBuf,
    },
    /// The data directory's mode could not be set.
    #[error("cannot make {} traversable for the run_as user", path.display())]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

/// What one confined process may see and how long it lives; paths that do not exist are left
/// out. Without bubblewrap only `workdir` is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// The working directory: it must be visible (in one of the directories below, or outside
    /// the hidden ones).
    pub workdir: PathBuf,
    /// Directories bound read-write at their own path, e.g. a job's workspace, home and temp.
    pub read_write: Vec<PathBuf>,
    /// Directories bound read-only at their own path, e.g. a release.
    pub read_only: Vec<PathBuf>,
    /// End everything inside when `bwrap` exits (with the command) or its parent dies (steps);
    /// instances outlive a restarted server and leave this off. The parent is the *thread*
    /// that spawned it (`PR_SET_PDEATHSIG`): spawn from one that lives as long as the command
    /// (a runtime's worker, a run's own thread), not from a blocking pool's, which may retire.
    pub die_with_parent: bool,
}

/// How Mobius starts code it did not write. Cheap to clone; [`Sandbox::none`] (the default)
/// starts plain processes as the server's own user.
#[derive(Clone, Default)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The user to drop to; only set when this process runs as root.
    run_as: Option<User>,
    /// The programs that wrap a command, when bubblewrap works.
    bwrap: Option<bwrap::Tools>,
    /// Directories a bubblewrap sandbox replaces with an empty tmpfs (canonical paths).
    hidden: Vec<PathBuf>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("isolation", &self.isolation())
            .field("run_as", &self.inner.run_as.as_ref().map(|u| &u.name))
            .field("hidden", &self.inner.hidden)
            .finish()
    }
}

impl Sandbox {
    /// Plain processes as the server's own user: what `std` does.
    pub fn none() -> Sandbox {
        Sandbox::default()
    }

    /// A sandbox as asked, with no policy applied: `run_as` is used only when this process
    /// runs as root and it is not root itself (ignored otherwise), `hidden` are the directories bubblewrap hides. `Auto`
    /// falls back to plain processes when bubblewrap does not work; `Bwrap` is an error then.
    pub fn new(mode: Mode, run_as: Option<User>, hidden: &[PathBuf]) -> Result<Sandbox, SandboxError> {
        let run_as = run_as.filter(|user| !user.is_root() && nix::unistd::geteuid().is_root());
        let bwrap = match mode {
            Mode::Off => None,
            Mode::Auto => bwrap::Tools::probed().ok(),
            Mode::Bwrap => Some(bwrap::Tools::probed().map_err(|reason| SandboxError::Unavailable { reason })?),
        };
        if let (Some(tools), Some(user)) = (&bwrap, &run_as) {
            tools.check_setpriv(user).map_err(|reason| SandboxError::Setpriv { user: user.name.clone(), reason })?;
        }
        let hidden = hidden.iter().map(|dir| canonical(dir)).collect();
        Ok(Sandbox { inner: Arc::new(Inner { run_as, bwrap, hidden }) })
    }

    /// The server's sandbox, from its settings, with the policy and the log lines: the data
    /// directory is hidden (and `also_hidden`: the directories of the server's secret files); as root, steps and instances run as `run_as`, or `nobody` when it
    /// is not given (a warning says so), and `run_as = "root"` keeps root (a louder warning);
    /// not as root, `run_as` is ignored (a warning when one was given). Without bubblewrap and
    /// with a user to drop to, the data directory is made traversable (`0711`) with a warning.
    /// Which isolation is used is logged.
    pub fn from_settings(
        mode: Mode,
        run_as: Option<&User>,
        data_dir: &Path,
        also_hidden: &[PathBuf],
    ) -> Result<Sandbox, SandboxError> {
        let root = nix::unistd::geteuid().is_root();
        let user = match (root, run_as) {
            (false, Some(user)) => {
                tracing::warn!(
                    user = %user.name,
                    "run_as is ignored: the server does not run as root, so steps and instances run as its own user"
                );
                None
            }
            (false, None) => None,
            (true, Some(user)) if user.is_root() => {
                tracing::warn!(
                    "run_as = \"root\": steps of pushed branches and deployed services run as root, with the \
                     server's privileges; set run_as to an unprivileged user"
                );
                None
            }
            (true, Some(user)) => Some(user.clone()),
            (true, None) => {
                let nobody = User::lookup("nobody")?;
                tracing::warn!(
                    "the server runs as root and run_as is not set: steps and instances run as `nobody`; \
                     set run_as (or MOBIUS_RUN_AS) to choose the user"
                );
                Some(nobody)
            }
        };
        let hidden: Vec<PathBuf> = std::iter::once(data_dir.to_path_buf()).chain(also_hidden.iter().cloned()).collect();
        let sandbox = Sandbox::new(mode, user, &hidden)?;
        match (sandbox.isolation(), mode) {
            (Isolation::Bwrap, _) => tracing::info!(
                data_dir = %data_dir.display(),
                "steps and instances run in bubblewrap: own PID namespace, the data directory hidden"
            ),
            (Isolation::Processes, Mode::Off) => {
                tracing::info!("sandbox = \"off\": steps and instances run as plain processes")
            }
            (Isolation::Processes, _) => tracing::warn!(
                reason = %bwrap::Tools::probed().err().map(|e| e.to_string()).unwrap_or_default(),
                "bubblewrap cannot be used: steps and instances run as plain processes, which see the server's \
                 processes and the data directory; install bubblewrap"
            ),
        }
        if let Some(user) = sandbox.run_as() {
            tracing::info!(user = %user.name, uid = user.uid, "steps and instances run as this user");
            fs::warn_untraversable(data_dir, user);
            if sandbox.isolation() == Isolation::Processes {
                fs::open_data_dir(data_dir, user)
                    .map_err(|source| SandboxError::DataDir { path: data_dir.to_path_buf(), source })?;
            }
        }
        Ok(sandbox)
    }

    /// The user commands run as, when privileges are dropped.
    pub fn run_as(&self) -> Option<&User> {
        self.inner.run_as.as_ref()
    }

    /// What commands are isolated with.
    pub fn isolation(&self) -> Isolation {
        match self.inner.bwrap {
            Some(_) => Isolation::Bwrap,
            None => Isolation::Processes,
        }
    }

    /// The directories bubblewrap hides.
    pub fn hidden(&self) -> &[PathBuf] {
        &self.inner.hidden
    }

    /// Whether commands are confined at all (isolated, or run as another user). When they are,
    /// what the server does with paths a workflow names must stay inside what the command
    /// itself may see.
    pub fn is_active(&self) -> bool {
        self.inner.bwrap.is_some() || self.inner.run_as.is_some()
    }

    /// `program` with `args`, in `confinement.workdir`, wrapped as this sandbox says. The
    /// caller sets the environment (clear it: nothing here does), stdio and `kill_on_drop`;
    /// the process already leads its own process group, so do not call `process_group`.
    ///
    /// Give `program` as a path when it has one: inside bubblewrap it is looked up in the
    /// `PATH` the caller sets.
    pub fn command(
        &self,
        program: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        confinement: &Confinement,
    ) -> Result<Command, SandboxError> {
        let mut command = match &self.inner.bwrap {
            Some(tools) => {
                if program.as_os_str().as_encoded_bytes().contains(&b'=') {
                    return Err(SandboxError::ProgramName { program: program.to_path_buf() });
                }
                let mut command = Command::new(&tools.env);
                command.args(tools.arguments(&self.inner.hidden, self.inner.run_as.as_ref(), confinement));
                command.arg(program).args(args);
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(args);
                if let Some(user) = &self.inner.run_as {
                    // std also clears the supplementary groups when root sets a uid.
                    command.uid(user.uid).gid(user.gid);
                }
                command
            }
        };
        command.current_dir(&confinement.workdir);
        if self.is_active() {
            // SAFETY: the closure runs in the child between fork and exec and calls only
            // setsid(2), which is async-signal-safe; it allocates nothing and takes no lock.
            unsafe {
                command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
            }
        } else {
            command.process_group(0);
        }
        Ok(command)
    }

    /// Gives `dir` and everything in it to the `run_as` user (a job's workspace, home and temp
    /// before its steps run). Symbolic links are changed themselves, never followed, and a
    /// directory is changed after its contents, so nothing in it is the user's while the walk
    /// is still inside. Nothing to do without a user.
    pub fn hand_over(&self, dir: &Path) -> io::Result<()> {
        match &self.inner.run_as {
            Some(user) => fs::chown_tree(dir, user),
            None => Ok(()),
        }
    }

    /// Runs `f` with this thread's filesystem identity switched to the `run_as` user's (its
    /// uid and gid, no supplementary groups), so the files `f` reads and writes are checked
    /// with that user's permissions: the server touching a path a workflow named cannot reach
    /// what the workflow's own steps could not. Without a user, `f` runs as is.
    ///
    /// The switch is per thread (`setfsuid`, `setfsgid`, the raw `setgroups` system call) and
    /// undone when `f` returns or panics; `f` must not `.await` or hand work to other threads.
    pub fn as_user<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.inner.run_as {
            Some(user) => {
                let _identity = user::FsIdentity::assume(user);
                f()
            }
            None => f(),
        }
    }
}

/// `path` with symbolic links resolved when it exists, else as given made absolute: bubblewrap
/// mounts at real paths, and a hidden directory reached through a link must still be hidden.
pub(crate) fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for mode in [Mode::Auto, Mode::Bwrap, Mode::Off] {
            assert_eq!(mode.to_string().parse::<Mode>().unwrap(), mode);
        }
        let error = "docker".parse::<Mode>().unwrap_err().to_string();
        assert_eq!(error, "unknown sandbox mode `docker`: use auto, bwrap or off");
    }

    #[test]
    fn none_is_plain() {
        let sandbox = Sandbox::none();
        assert!(!sandbox.is_active());
        assert_eq!(sandbox.isolation(), Isolation::Processes);
        assert!(sandbox.run_as().is_none());
        assert_eq!(sandbox.as_user(|| 7), 7);
        let command = sandbox.command(Path::new("/bin/true"), ["x"], &Confinement::default()).unwrap();
        assert_eq!(command.as_std().get_program(), "/bin/true");
    }
}
