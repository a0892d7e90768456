//! Running one job's `run:` steps as local processes.
//!
//! A caller describes the job once with a [`JobEnv`] (workspace, home, temp dir, the documented
//! `GITHUB_*` / `RUNNER_*` / `CI` / `MOBIUS_*` variables, the initial `PATH`, the secrets'
//! [`Masker`]) and wraps it in a [`JobState`], which carries what steps hand to later steps:
//! variables written to `GITHUB_ENV` and directories written to `GITHUB_PATH`. Each
//! [`StepSpec`] is then run with [`run_step`]:
//!
//! - the script is written to a file in the temp dir (`mobius-step-<n>.sh`, no directory per
//!   step) and the step's [`Shell`] runs it; the shell's program is looked up in the step's
//!   `PATH` by Mobius itself (the answer is kept for the job until `GITHUB_PATH` changes), which
//!   lets the process start with `posix_spawn` rather than a fork of the whole runner;
//! - the environment is clean: only the job's variables, the accumulated `GITHUB_ENV` values,
//!   the step's `env`, `HOME`, the four environment-file paths, and `PATH` — nothing of the
//!   host's environment leaks in;
//! - the step runs in its own process group, so a timeout or a [`CancellationSignal`] ends the
//!   whole tree: `SIGTERM` to the group, then `SIGKILL` after a grace period;
//! - with a [`Sandbox`] ([`JobState::with_sandbox`]) the shell is started through it: as its
//!   `run_as` user, and with bubblewrap in a PID namespace of its own where the data directory
//!   is hidden but the job's workspace, home and temp dir (read-write) and the given read-only
//!   directories are bound again (bubblewrap also sets `PWD`, and a shell killed by a signal
//!   exits 128 + its number). The namespace ends when the shell exits (`--die-with-parent`), so
//!   in a sandbox a process a step leaves in the background ends with the step rather than with
//!   the job, and every step ends if the server dies. The script is written, and the files the
//!   runner reads back from the temp dir are read, as that user and never through a link;
//! - stdout and stderr are read concurrently, masked, split into [`LogLine`]s and handed to a
//!   [`LogSink`] ([`NdjsonSink`] stores them as NDJSON); workflow commands in them are applied
//!   on the way (`::add-mask::` adds to the job's [`Masker`], `::warning::` and its kin become
//!   readable lines, `::stop-commands::` pauses them, the legacy `::set-output` and
//!   `::save-state` work with GitHub's deprecation warning, `::set-env` and `::add-path` fail
//!   the step unless `ACTIONS_ALLOW_UNSECURE_COMMANDS` is `true`), on both streams as GitHub's
//!   runner does;
//! - afterwards `GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH` and `GITHUB_STEP_SUMMARY` are read
//!   as GitHub's runner reads them (after what the legacy commands set, so the files win);
//! - a step whose process exits with a nonzero code ends its log with GitHub's line
//!   `Process completed with exit code N.`
//!
//! Difference from GitHub: the four environment files (in the temp dir, with names of their
//! own for each step) are not created before the step; the step's first write (`>>`) creates
//! them, and one still missing afterwards counts as empty. A script that tests whether
//! `$GITHUB_OUTPUT` exists, or a tool that insists on it (`@actions/core` called from a
//! `run:` step), sees the difference. Creating files is most of a short step's cost on some
//! filesystems, so a step creates only its script and what it writes.
//!
//! Evaluating `if:`, expressions and the job DAG belongs to the caller.

mod commands;
mod envfiles;
mod log;
mod run;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mobius_sandbox::Sandbox;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;

pub use envfiles::{EnvFileError, parse_assignments, parse_path};
pub use log::{LogLine, LogSink, NdjsonSink, Stream, rfc3339};
pub use run::{ExecError, run_step};

use crate::mask::Masker;

/// How long a step's process group gets between `SIGTERM` and `SIGKILL` unless told otherwise.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long output is still read after a step's shell exits unless told otherwise. A background
/// process started by the step can keep the pipes open forever; its output after this is lost.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(1);

/// The program that runs a step's script, as in a step's `shell:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shell {
    /// `bash --noprofile --norc -eo pipefail {0}`: GitHub's default on Linux.
    Bash,
    /// `sh -e {0}`.
    Sh,
    /// `python3 {0}`.
    Python,
    /// A custom command line; `{0}` is replaced by the script's path. Words are split on
    /// whitespace, without quoting.
    Custom(String),
}

impl Shell {
    /// The command line, with `{0}` where the script's path goes.
    pub fn template(&self) -> &str {
        match self {
            Shell::Bash => "bash --noprofile --norc -eo pipefail {0}",
            Shell::Sh => "sh -e {0}",
            Shell::Python => "python3 {0}",
            Shell::Custom(template) => template,
        }
    }

    /// The script file's extension; some interpreters care (GitHub does the same).
    fn extension(&self) -> &'static str {
        match self {
            Shell::Python => "py",
            _ => "sh",
        }
    }
}

/// One `run:` step, with its expressions already evaluated.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// The step's display name; it prefixes the runner's own error lines in the log.
    pub name: String,
    /// The script, i.e. the `run:` text.
    pub script: String,
    /// The shell that runs it.
    pub shell: Shell,
    /// Where it runs, relative to the workspace (an absolute path is used as is); the
    /// workspace itself when `None`.
    pub working_directory: Option<PathBuf>,
    /// The step's `env:`, merged over the job's and `GITHUB_ENV`'s variables.
    pub env: BTreeMap<String, String>,
    /// `timeout-minutes`, as a duration.
    pub timeout: Option<Duration>,
    /// `continue-on-error`: a failure still concludes as success.
    pub continue_on_error: bool,
    /// A program to run instead of the script (a JavaScript action: `node <action>/main.js`);
    /// its first word is looked up on `PATH` like a shell. Such a step also gets `GITHUB_STATE`,
    /// and its environment files exist (empty) before it starts, as the Actions toolkit insists.
    pub program: Option<Vec<String>>,
}

/// What every step of a job shares, given by the caller.
#[derive(Clone)]
pub struct JobEnv {
    /// The job's workspace (`GITHUB_WORKSPACE`); steps run here by default.
    pub workspace: PathBuf,
    /// The job's own home directory, set as `HOME`.
    pub home: PathBuf,
    /// The job's temp dir (`RUNNER_TEMP`); scripts and environment files go here.
    pub temp: PathBuf,
    /// The documented variables: `GITHUB_*`, `RUNNER_*`, `CI=true`, `MOBIUS_*`, plus the
    /// workflow's and job's `env:`.
    pub base_env: BTreeMap<String, String>,
    /// The initial `PATH` entries, after those added through `GITHUB_PATH`.
    pub path: Vec<PathBuf>,
    /// Masks the job's secrets in its logs.
    pub masker: Masker,
}

/// Shows the variables' names only and not the masker: either may hold a secret (a token in
/// `base_env`, the masker's patterns), and debug output ends up in logs.
impl std::fmt::Debug for JobEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEnv")
            .field("workspace", &self.workspace)
            .field("home", &self.home)
            .field("temp", &self.temp)
            .field("base_env", &self.base_env.keys().collect::<Vec<_>>())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A job in progress: its [`JobEnv`] and what earlier steps handed on.
///
/// Dropping it kills the process groups of its steps that were still alive when their step
/// ended (a server started with `&`, say), as GitHub's runner cleans up orphans at job end. In a
/// bubblewrap sandbox there are none: a step's PID namespace ends with its shell.
#[derive(Debug)]
pub struct JobState {
    env: JobEnv,
    exported: BTreeMap<String, String>,
    added_path: Vec<PathBuf>,
    /// Shell programs found on `PATH`, by name; cleared when `GITHUB_PATH` adds a directory.
    programs: HashMap<String, PathBuf>,
    kill_grace: Duration,
    drain: Duration,
    steps_started: usize,
    leftover_groups: Vec<Pid>,
    /// How steps are started; plain processes unless told otherwise.
    sandbox: Sandbox,
    /// Directories a sandboxed step may read besides its own (bound read-only).
    read_only: Vec<PathBuf>,
}

impl JobState {
    /// A job about to run its first step.
    pub fn new(env: JobEnv) -> JobState {
        JobState {
            env,
            exported: BTreeMap::new(),
            added_path: Vec::new(),
            programs: HashMap::new(),
            kill_grace: DEFAULT_KILL_GRACE,
            drain: DEFAULT_DRAIN,
            steps_started: 0,
            leftover_groups: Vec::new(),
            sandbox: Sandbox::none(),
            read_only: Vec::new(),
        }
    }

    /// Starts the steps through `sandbox`, which may also read `read_only` (e.g. the directory
    /// the workspace was copied from). The workspace, home and temp dir must already belong to
    /// the sandbox's user ([`Sandbox::hand_over`]).
    pub fn with_sandbox(mut self, sandbox: Sandbox, read_only: Vec<PathBuf>) -> JobState {
        self.sandbox = sandbox;
        self.read_only = read_only;
        self
    }

    /// Sets the time between `SIGTERM` and `SIGKILL` on timeout or cancellation.
    pub fn with_kill_grace(mut self, grace: Duration) -> JobState {
        self.kill_grace = grace;
        self
    }

    /// Sets how long output is still read after a step's shell exits.
    pub fn with_drain(mut self, drain: Duration) -> JobState {
        self.drain = drain;
        self
    }

    /// The job's environment as given.
    pub fn job_env(&self) -> &JobEnv {
        &self.env
    }

    /// Variables written to `GITHUB_ENV` by the steps so far (the later write wins).
    pub fn exported_env(&self) -> &BTreeMap<String, String> {
        &self.exported
    }

    /// Sets a variable for the job's later steps, as a line in `GITHUB_ENV` would.
    pub fn export(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.exported.insert(name.into(), value.into());
    }

    /// Directories written to `GITHUB_PATH` so far, newest first, as they lead `PATH`.
    pub fn added_path(&self) -> &[PathBuf] {
        &self.added_path
    }

    /// Kills (`SIGKILL`) what is left of the job's steps' process groups.
    pub fn kill_leftovers(&mut self) {
        for group in self.leftover_groups.drain(..) {
            // The group may be gone already (ESRCH); nothing to do then.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for JobState {
    fn drop(&mut self) {
        self.kill_leftovers();
    }
}

/// How a step's process ended: GitHub's `steps.<id>.outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with status 0.
    Success,
    /// Exited with another status, was killed by a signal (`exit_code` is `None`), could not
    /// start, or wrote an environment file that cannot be read (`None` too; the log says why).
    Failure {
        /// The exit status, when the shell exited on its own.
        exit_code: Option<i32>,
    },
    /// Ran past its timeout and was killed.
    TimedOut,
    /// Was cancelled, before it started or while running.
    Cancelled,
}

/// The conclusion of a step once `continue-on-error` is applied: `steps.<id>.conclusion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    /// The step succeeded, or failed with `continue-on-error`.
    Success,
    /// The step failed or timed out.
    Failure,
    /// The step was cancelled.
    Cancelled,
}

/// What running a step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// How the process ended.
    pub outcome: Outcome,
    /// The step's `continue-on-error`, kept to compute [`StepResult::conclusion`].
    pub continue_on_error: bool,
    /// Values written to `GITHUB_OUTPUT`, over those of the legacy `::set-output` command.
    pub outputs: BTreeMap<String, String>,
    /// The state a JavaScript action's script saved for its later scripts (`STATE_<name>`):
    /// written to `GITHUB_STATE` (a [`StepSpec::program`] step only) or with the legacy
    /// `::save-state name=x::v` command; the file wins.
    pub state: BTreeMap<String, String>,
    /// What was written to `GITHUB_STEP_SUMMARY`: Markdown.
    pub summary: String,
    /// Wall time from start to the end of the log.
    pub duration: Duration,
}

impl StepResult {
    /// The conclusion: a failure or timeout concludes as success under `continue-on-error`;
    /// cancellation is never excused.
    pub fn conclusion(&self) -> Conclusion {
        match self.outcome {
            Outcome::Success => Conclusion::Success,
            Outcome::Cancelled => Conclusion::Cancelled,
            Outcome::Failure { .. } | Outcome::TimedOut if self.continue_on_error => Conclusion::Success,
            Outcome::Failure { .. } | Outcome::TimedOut => Conclusion::Failure,
        }
    }
}

/// A cancellation flag shared between whoever cancels and the steps that watch it. Clones are
/// the same flag; once cancelled it stays cancelled.
#[derive(Debug, Clone)]
pub struct CancellationSignal(Arc<watch::Sender<bool>>);

impl CancellationSignal {
    /// A signal not yet triggered.
    pub fn new() -> CancellationSignal {
        CancellationSignal(Arc::new(watch::Sender::new(false)))
    }

    /// Triggers it: running steps are terminated, later ones do not start.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Whether it has been triggered.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once it is triggered.
    pub async fn cancelled(&self) {
        let mut receiver = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

impl Default for CancellationSignal {
    fn default() -> CancellationSignal {
        CancellationSignal::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conclusion_applies_continue_on_error() {
        let result = |outcome, continue_on_error| StepResult {
            outcome,
            continue_on_error,
            outputs: BTreeMap::new(),
            state: BTreeMap::new(),
            summary: String::new(),
            duration: Duration::ZERO,
        };
        let failed = Outcome::Failure { exit_code: Some(1) };
        assert_eq!(result(Outcome::Success, false).conclusion(), Conclusion::Success);
        assert_eq!(result(failed.clone(), false).conclusion(), Conclusion::Failure);
        assert_eq!(result(failed, true).conclusion(), Conclusion::Success);
        assert_eq!(result(Outcome::TimedOut, true).conclusion(), Conclusion::Success);
        assert_eq!(result(Outcome::Cancelled, true).conclusion(), Conclusion::Cancelled);
    }
}
