//! Starting a step's process, watching it, and ending its process group.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use mobius_sandbox::{Confinement, Sandbox};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant as Deadline, sleep_until};

use super::commands::{ALLOW_UNSECURE_COMMANDS, Requests, SharedRequests, allows_unsecure_commands};
use super::envfiles::{EnvFileError, parse_assignments, parse_path};
use super::log::{LineSplitter, LogLine, LogSink, Stream};
use super::{CancellationSignal, JobState, Outcome, StepResult, StepSpec};
use crate::chain::Chain;

/// Why a step could not run or its environment files could not be read. Reported in the step's
/// log and as [`Outcome::Failure`] with no exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The script or the environment files could not be written.
    #[error("cannot prepare the step's files in {}", dir.display())]
    Prepare {
        /// The job's temp dir, where the step's files go.
        dir: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// A custom shell has no `{0}` where the script goes.
    #[error("shell `{template}` has no `{{0}}` placeholder for the script")]
    NoPlaceholder {
        /// The shell's command line.
        template: String,
    },
    /// The working directory is not a directory.
    #[error("working directory {} does not exist", path.display())]
    WorkingDirectory {
        /// The directory, resolved against the workspace.
        path: PathBuf,
    },
    /// The shell could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The shell's program, e.g. `bash`.
        program: String,
        /// What went wrong.
        source: io::Error,
    },
    /// The sandbox cannot start the shell.
    #[error("cannot start the step in the sandbox")]
    Sandbox(#[source] mobius_sandbox::SandboxError),
    /// Waiting for the shell failed.
    #[error("cannot wait for the step's process")]
    Wait(#[source] io::Error),
    /// An environment file could not be read back.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// An environment file is a symbolic link, a FIFO or anything else than a plain file: the
    /// runner reads it with more privileges than the step, and must not be led elsewhere.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// An environment file is not in GitHub's format.
    #[error("{file} is malformed")]
    EnvFile {
        /// `GITHUB_ENV`, `GITHUB_OUTPUT` or `GITHUB_STATE`.
        file: &'static str,
        /// Where and how.
        source: EnvFileError,
    },
}

/// The files of one step, straight in the job's temp dir: the script, written before the step
/// starts, and the four environment files, which are not created beforehand: the step's first
/// `>>` creates them, and one that does not exist afterwards was not written (it reads as empty).
/// Each step has its own names, so a process a step left behind cannot write into a later step's
/// files. Creating no directory and as few files as possible per step matters: creating inodes
/// is most of a short step's cost on some filesystems.
struct StepFiles {
    script: PathBuf,
    env: PathBuf,
    output: PathBuf,
    path: PathBuf,
    summary: PathBuf,
    /// `GITHUB_STATE`, for a program step (a JavaScript action) only.
    state: Option<PathBuf>,
}

impl StepFiles {
    /// Writes the script of step number `number` (as the sandbox's user: the temp dir is
    /// theirs); names its environment files.
    fn create(temp: &Path, number: usize, step: &StepSpec, sandbox: &Sandbox) -> Result<StepFiles, ExecError> {
        let name = |suffix: &str| temp.join(format!("mobius-step-{number}{suffix}"));
        let files = StepFiles {
            script: name(&format!(".{}", step.shell.extension())),
            env: name("-github_env"),
            output: name("-github_output"),
            path: name("-github_path"),
            summary: name("-step_summary.md"),
            state: step.program.is_some().then(|| name("-github_state")),
        };
        let prepare = || match &step.program {
            None => write_new(&files.script, step.script.as_bytes()),
            // The Actions toolkit refuses to write to a file that does not exist yet.
            Some(_) => [&files.env, &files.output, &files.path, &files.summary]
                .into_iter()
                .chain(&files.state)
                .try_for_each(|path| write_new(path, b"")),
        };
        sandbox.as_user(prepare).map_err(|source| ExecError::Prepare { dir: temp.to_path_buf(), source })?;
        Ok(files)
    }
}

/// Writes `bytes` to a new file at `path`, never through what is there: a file or link left
/// by an earlier step (in a directory it can write) is removed first, as the link itself.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let create = || std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    let mut file = match create() {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()?
        }
        other => other?,
    };
    file.write_all(bytes)
}

/// Runs one step to its end and returns how it went. Log lines go to `log` as they are read.
///
/// Never fails as a function: a step that cannot start is a failed step with the reason in its
/// log, as on GitHub. `GITHUB_ENV` and `GITHUB_PATH` are applied to `job` whatever the
/// outcome.
pub async fn run_step(
    job: &mut JobState,
    step: &StepSpec,
    log: &mut dyn LogSink,
    cancel: CancellationSignal,
) -> StepResult {
    let started = Instant::now();
    let finish = |outcome, outputs, state, summary| StepResult {
        outcome,
        continue_on_error: step.continue_on_error,
        outputs,
        state,
        summary,
        duration: started.elapsed(),
    };
    if cancel.is_cancelled() {
        return finish(Outcome::Cancelled, BTreeMap::new(), BTreeMap::new(), String::new());
    }
    job.steps_started += 1;
    let files = match StepFiles::create(&job.env.temp, job.steps_started, step, &job.sandbox) {
        Ok(files) => files,
        Err(error) => {
            report(job, step, log, &error);
            return finish(Outcome::Failure { exit_code: None }, BTreeMap::new(), BTreeMap::new(), String::new());
        }
    };
    let requests = SharedRequests::default();
    let (mut outcome, shown_code) = match execute(job, step, &files, log, &cancel, &requests).await {
        Ok(ended) => ended,
        Err(error) => {
            report(job, step, log, &error);
            (Outcome::Failure { exit_code: None }, None)
        }
    };
    // The readers are done with it; a poisoned lock still holds whole maps.
    let requests = std::mem::take(&mut *requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let Requests { outputs: mut all_outputs, mut state, env, path, failed } = requests;
    if failed && outcome == Outcome::Success {
        // A refused or malformed command fails the step, as GitHub's runner does.
        outcome = Outcome::Failure { exit_code: None };
    }
    // What the legacy commands set comes first: the files, read after the step, win.
    job.exported.extend(env);
    prepend_path(job, path);
    let summary = match read_back(job, &files) {
        Ok((outputs, summary, file_state)) => {
            all_outputs.extend(outputs);
            state.extend(file_state);
            summary
        }
        Err(error) => {
            report(job, step, log, &error);
            if outcome == Outcome::Success {
                outcome = Outcome::Failure { exit_code: None };
            }
            all_outputs.clear();
            String::new()
        }
    };
    // GitHub's runner ends a step that exited nonzero with this line, whatever it printed.
    if let Some(code) = shown_code {
        let text = format!("error: Process completed with exit code {code}.");
        log.line(LogLine { at: std::time::SystemTime::now(), stream: Stream::Stderr, text });
    }
    finish(outcome, all_outputs, state, summary)
}

/// Starts the step's shell and follows it to the end of its output.
///
/// Returns how it ended and, when its shell exited on its own with a nonzero code, that code
/// (128 + the signal's number for a shell killed by a signal nobody here sent, as a shell
/// reports it) for the log's last line.
async fn execute(
    job: &mut JobState,
    step: &StepSpec,
    files: &StepFiles,
    log: &mut dyn LogSink,
    cancel: &CancellationSignal,
    requests: &SharedRequests,
) -> Result<(Outcome, Option<i32>), ExecError> {
    let (mut command, program) = command(job, step, files)?;
    let mut child = command.spawn().map_err(|source| ExecError::Spawn { program, source })?;
    // The sandbox made the child the leader of a group whose id is its pid.
    let group = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);

    let (sender, mut lines) = mpsc::channel::<LogLine>(256);
    let readers: Vec<JoinHandle<()>> = [
        child.stdout.take().map(|out| spawn_reader(out, Stream::Stdout, job, step, requests, sender.clone())),
        child.stderr.take().map(|err| spawn_reader(err, Stream::Stderr, job, step, requests, sender.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    drop(sender);

    let status = watch(&mut child, group, step, job, &mut lines, log, cancel).await;
    if status.is_err() {
        // The shell's state is unknown: end the step's tree rather than leave it running.
        signal(group, Signal::SIGKILL);
    }

    // Read what is left; a background process holding the pipes open must not hold the step.
    let drained = tokio::time::timeout(job.drain, async {
        while let Some(line) = lines.recv().await {
            log.line(line);
        }
    })
    .await;
    if drained.is_err() {
        for reader in &readers {
            reader.abort();
        }
        while let Ok(line) = lines.try_recv() {
            log.line(line);
        }
    }
    // Still members in the group: leave them to the end of the job, like GitHub's runner.
    if let Some(group) = group
        && killpg(group, None).is_ok()
    {
        job.leftover_groups.push(group);
    }

    match status? {
        Ended::Exited(status) if status.success() => Ok((Outcome::Success, None)),
        Ended::Exited(status) => {
            use std::os::unix::process::ExitStatusExt;
            let shown = status.code().or_else(|| status.signal().map(|signal| 128 + signal));
            Ok((Outcome::Failure { exit_code: status.code() }, shown))
        }
        Ended::Stopped(outcome) => Ok((outcome, None)),
    }
}

/// How the shell ended.
enum Ended {
    /// On its own (or by a signal nobody here sent).
    Exited(ExitStatus),
    /// Killed for a timeout or cancellation.
    Stopped(Outcome),
}

/// Waits for the shell to exit while forwarding log lines, ending its group on timeout or
/// cancellation.
async fn watch(
    child: &mut Child,
    group: Option<Pid>,
    step: &StepSpec,
    job: &JobState,
    lines: &mut mpsc::Receiver<LogLine>,
    log: &mut dyn LogSink,
    cancel: &CancellationSignal,
) -> Result<Ended, ExecError> {
    // A timeout too large to represent is no timeout, rather than a panic on overflow.
    let timeout_at = step.timeout.and_then(|timeout| Deadline::now().checked_add(timeout));
    let mut stopped: Option<Outcome> = None;
    let mut kill_at: Option<Deadline> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(ExecError::Wait)?,
            Some(line) = lines.recv() => log.line(line),
            () = sleep_until_some(timeout_at), if stopped.is_none() => {
                stopped = Some(Outcome::TimedOut);
                signal(group, Signal::SIGTERM);
                kill_at = Deadline::now().checked_add(job.kill_grace);
            }
            () = cancel.cancelled(), if stopped.is_none() => {
                stopped = Some(Outcome::Cancelled);
                signal(group, Signal::SIGTERM);
                kill_at = Deadline::now().checked_add(job.kill_grace);
            }
            () = sleep_until_some(kill_at) => {
                signal(group, Signal::SIGKILL);
                kill_at = None;
            }
        }
    };
    match stopped {
        Some(outcome) => {
            // The shell is gone but children that ignored SIGTERM may not be: the step is over.
            signal(group, Signal::SIGKILL);
            Ok(Ended::Stopped(outcome))
        }
        None => Ok(Ended::Exited(status)),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Deadline>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends `sig` to the step's process group.
fn signal(group: Option<Pid>, sig: Signal) {
    if let Some(group) = group {
        // ESRCH means everything in the group has exited already, which is what we want.
        let _ = killpg(group, sig);
    }
}

/// The shell's command with its clean environment, and the shell's program for errors.
fn command(job: &mut JobState, step: &StepSpec, files: &StepFiles) -> Result<(Command, String), ExecError> {
    let template = step.shell.template();
    let script = files.script.to_string_lossy();
    let mut words: Box<dyn Iterator<Item = String>> = match &step.program {
        Some(argv) => Box::new(argv.clone().into_iter()),
        None if !template.contains("{0}") => {
            return Err(ExecError::NoPlaceholder { template: template.to_owned() });
        }
        None => Box::new(template.split_whitespace().map(|word| word.replace("{0}", &script))),
    };
    let program = words.next().ok_or_else(|| ExecError::NoPlaceholder { template: template.to_owned() })?;

    let workdir = match &step.working_directory {
        Some(dir) => job.env.workspace.join(dir),
        None => job.env.workspace.clone(),
    };
    if !workdir.is_dir() {
        return Err(ExecError::WorkingDirectory { path: workdir });
    }

    let resolved = resolve_program(job, &program, &workdir);
    let confinement = Confinement {
        workdir,
        read_write: vec![job.env.workspace.clone(), job.env.home.clone(), job.env.temp.clone()],
        read_only: job.read_only.clone(),
        die_with_parent: true,
    };
    let mut command = job.sandbox.command(&resolved, words, &confinement).map_err(ExecError::Sandbox)?;
    command
        .env_clear()
        .envs(&job.env.base_env)
        .envs(&job.exported)
        .envs(&step.env)
        .env("HOME", &job.env.home)
        .env("GITHUB_ENV", &files.env)
        .env("GITHUB_OUTPUT", &files.output)
        .env("GITHUB_PATH", &files.path)
        .env("GITHUB_STEP_SUMMARY", &files.summary)
        .env("PATH", search_path(job))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Should this future be dropped mid-step, do not leave the shell running.
        .kill_on_drop(true);
    if let Some(state) = &files.state {
        command.env("GITHUB_STATE", state);
    }
    // A login shell's variable, as on GitHub's runners; without it bash looks the user up in
    // the password database (nscd, nsswitch.conf, /etc/passwd) each time it starts.
    let has_shell = [&job.env.base_env, &job.exported, &step.env].iter().any(|env| env.contains_key("SHELL"));
    if !has_shell {
        let bash = resolve_program(job, "bash", &job.env.workspace.clone());
        if bash.is_absolute() {
            command.env("SHELL", bash);
        }
    }
    Ok((command, program))
}

/// The shell's program as a path: a name without `/` is looked up in the step's `PATH` here, as
/// `execvp` would (relative entries against the working directory), and the answer is cached for
/// the job until `GITHUB_PATH` changes. Giving std an absolute path lets it start the process
/// with `posix_spawn`; with a bare name and a `PATH` of the child's own, it forks the whole
/// (multi-threaded) runner and tries `execve` in every `PATH` entry. A name found nowhere is
/// left as it is, so starting it fails as it always did.
fn resolve_program(job: &mut JobState, program: &str, workdir: &Path) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    if let Some(found) = job.programs.get(program) {
        return found.clone();
    }
    let entries: Vec<&PathBuf> = job.added_path.iter().chain(&job.env.path).collect();
    let found = entries.iter().map(|dir| workdir.join(dir).join(program)).find(|candidate| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    match found {
        Some(found) => {
            // With a relative entry, the answer depends on the working directory.
            if entries.iter().all(|dir| dir.is_absolute()) {
                job.programs.insert(program.to_owned(), found.clone());
            }
            found
        }
        None => PathBuf::from(program),
    }
}

/// `PATH`: the `GITHUB_PATH` additions (newest first), then the job's initial entries. The
/// program itself is looked up in it too, since std uses the child's `PATH` when one is set.
fn search_path(job: &JobState) -> OsString {
    let entries = job.added_path.iter().chain(&job.env.path);
    // An entry with `:` cannot be expressed in PATH; it would be split, as on GitHub.
    std::env::join_paths(entries).unwrap_or_else(|_| {
        let joined: Vec<String> =
            job.added_path.iter().chain(&job.env.path).map(|p| p.to_string_lossy().into_owned()).collect();
        OsString::from(joined.join(":"))
    })
}

/// Starts a task that reads one stream into masked lines, applying workflow commands.
fn spawn_reader<R>(
    reader: R,
    stream: Stream,
    job: &JobState,
    step: &StepSpec,
    requests: &SharedRequests,
    sender: mpsc::Sender<LogLine>,
) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    // The step's environment as its process gets it: the step's `env` over `GITHUB_ENV`'s
    // values over the job's.
    let allowed = [&step.env, &job.exported, &job.env.base_env]
        .iter()
        .find_map(|env| env.get(ALLOW_UNSECURE_COMMANDS))
        .map(String::as_str);
    let splitter = LineSplitter::for_step(stream, &job.env.masker, requests.clone(), allows_unsecure_commands(allowed));
    tokio::spawn(read_lines(reader, splitter, sender))
}

async fn read_lines<R: AsyncRead + Unpin>(mut reader: R, mut splitter: LineSplitter, sender: mpsc::Sender<LogLine>) {
    let mut buffer = vec![0u8; 8192];
    loop {
        match reader.read(&mut buffer).await {
            // A read error on a pipe means the other end is gone, like EOF.
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for line in splitter.push(&buffer[..n]) {
                    if sender.send(line).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
    for line in splitter.finish() {
        if sender.send(line).await.is_err() {
            return;
        }
    }
}

/// What a step's files handed back: outputs, summary and state.
type ReadBack = (BTreeMap<String, String>, String, BTreeMap<String, String>);

/// Reads the environment files back: applies `GITHUB_ENV` and `GITHUB_PATH` to the job and
/// returns the outputs, the summary and the saved state.
fn read_back(job: &mut JobState, files: &StepFiles) -> Result<ReadBack, ExecError> {
    // The files are created by the step's first write: a missing one was not written.
    let read = |path: &PathBuf| match job.sandbox.as_user(|| read_plain(path)) {
        Ok(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(None) => Err(ExecError::NotAFile { path: path.clone() }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ExecError::ReadFile { path: path.clone(), source }),
    };
    let env =
        parse_assignments(&read(&files.env)?).map_err(|source| ExecError::EnvFile { file: "GITHUB_ENV", source })?;
    let outputs = parse_assignments(&read(&files.output)?)
        .map_err(|source| ExecError::EnvFile { file: "GITHUB_OUTPUT", source })?;
    let added = parse_path(&read(&files.path)?);
    let summary = read(&files.summary)?;
    let state = match &files.state {
        Some(path) => {
            parse_assignments(&read(path)?).map_err(|source| ExecError::EnvFile { file: "GITHUB_STATE", source })?
        }
        None => BTreeMap::new(),
    };
    job.exported.extend(env);
    prepend_path(job, added);
    Ok((outputs, summary, state))
}

/// Puts directories at the front of the job's `PATH` for its later steps, each new one first.
fn prepend_path(job: &mut JobState, added: Vec<PathBuf>) {
    if !added.is_empty() {
        job.programs.clear();
    }
    for dir in added {
        job.added_path.retain(|known| known != &dir);
        job.added_path.insert(0, dir);
    }
}

/// A plain file's bytes; `None` for a symbolic link (not followed), a FIFO (not waited for), a
/// device or a directory. The step wrote the file and may have put anything at its name.
fn read_plain(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let opened =
        std::fs::OpenOptions::new().read(true).custom_flags(libc_flags::NOFOLLOW | libc_flags::NONBLOCK).open(path);
    let mut file = match opened {
        Ok(file) => file,
        // ELOOP: the name is a symbolic link.
        Err(error) if error.raw_os_error() == Some(libc_flags::ELOOP) => return Ok(None),
        Err(error) => return Err(error),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The `open(2)` flags and errno `read_plain` needs, from nix's bindings.
mod libc_flags {
    use nix::errno::Errno;
    use nix::fcntl::OFlag;

    pub const NOFOLLOW: i32 = OFlag::O_NOFOLLOW.bits();
    pub const NONBLOCK: i32 = OFlag::O_NONBLOCK.bits();
    pub const ELOOP: i32 = Errno::ELOOP as i32;
}

/// Puts a runner error in the step's log, with its causes, on stderr.
fn report(job: &JobState, step: &StepSpec, log: &mut dyn LogSink, error: &ExecError) {
    let text = format!("mobius: step `{}`: {}", step.name, Chain(error));
    let text = String::from_utf8_lossy(&job.env.masker.mask(text.as_bytes())).into_owned();
    log.line(LogLine { at: std::time::SystemTime::now(), stream: Stream::Stderr, text });
}
