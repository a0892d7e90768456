//! A job instance's place on disk and its documented environment: the workspace, home and
//! temp directories (reused between instances), and the `GITHUB_*` / `RUNNER_*` / `MOBIUS_*`
//! variables every step sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use serde_json::Value;

use super::RunOptions;
use super::actions::{self, Native};
use super::job::Instance;
use super::schedule::{base_context, github_context};
use crate::expr;
use crate::workflow::{Job, StepAction};

/// The emptied directories of finished instances. A new instance renames a set to its own
/// names rather than creating three directories: on some filesystems (ext4 with many recent
/// deletions) creating an inode is most of a short job's cost, and a rename creates none.
#[derive(Clone)]
pub(super) struct DirPool {
    dirs: Arc<std::sync::Mutex<Vec<Dirs>>>,
    /// Held by every clone, so the run can wait for the last directories being emptied
    /// ([`DirPool::new`]'s receiver ends when every clone is gone).
    _alive: tokio::sync::mpsc::Sender<()>,
}

impl DirPool {
    /// An empty pool, and what tells when every clone of it (the jobs' and the emptying
    /// tasks') is gone: `recv` gives `None` then.
    pub fn new() -> (DirPool, tokio::sync::mpsc::Receiver<()>) {
        let (alive, gone) = tokio::sync::mpsc::channel(1);
        (DirPool { dirs: Arc::default(), _alive: alive }, gone)
    }

    fn take(&self) -> Option<Dirs> {
        self.dirs.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn put(&self, dirs: Dirs) {
        self.dirs.lock().unwrap_or_else(PoisonError::into_inner).push(dirs);
    }
}

pub(super) struct Dirs {
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub temp: PathBuf,
}

/// The instance's three directories, side by side in the work dir (`3-build_linux_-workspace`,
/// `…-home`, `…-temp`) rather than under a directory of their own: creating inodes is most of a
/// short job's cost on some filesystems, and a fourth directory would be one more per job.
///
/// When steps run as another user ([`RunOptions::sandbox`]), the directories are created
/// afresh by the runner, filled (the checkout) while they are still its own, then handed over:
/// a reused one belonged to that user already, and a process of theirs left behind could have
/// put a link in it for the runner's copy to follow.
pub(super) fn prepare_dirs(opts: &RunOptions, job: &Job, instance: &Instance) -> std::io::Result<Dirs> {
    let safe: String =
        instance.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let dir = |kind: &str| opts.work_dir.join(format!("{}-{safe}-{kind}", instance.index));
    let dirs = Dirs { workspace: dir("workspace"), home: dir("home"), temp: dir("temp") };
    let recycled = match reuses_dirs(opts) {
        // The pool is a list of paths, whole even if a job task panicked while holding it.
        true => instance.pool.take(),
        false => None,
    };
    match recycled {
        Some(old) => {
            for (from, to) in [(&old.workspace, &dirs.workspace), (&old.home, &dirs.home), (&old.temp, &dirs.temp)] {
                // A directory that cannot be taken over is only a lost saving: make a new one.
                if let Err(error) = std::fs::rename(from, to) {
                    tracing::warn!(from = %from.display(), to = %to.display(), error = %error,
                        "cannot reuse a finished job's directory; creating a new one");
                    remove_dir(from);
                    fresh_dir(to)?;
                }
            }
        }
        None => {
            for dir in [&dirs.workspace, &dirs.home, &dirs.temp] {
                fresh_dir(dir)?;
            }
        }
    }
    for path in checkout_paths(opts, job, instance)? {
        actions::copy_tree(&opts.workspace_source, &dirs.workspace.join(path))?;
    }
    for dir in [&dirs.workspace, &dirs.home, &dirs.temp] {
        opts.sandbox.hand_over(dir)?;
    }
    Ok(dirs)
}

/// Where the job's `actions/checkout` steps put the tree, relative to the workspace (empty:
/// the workspace itself): each step's `path` input, rendered with the job's contexts, once
/// each. A path that leaves the workspace is refused, as `actions/checkout` refuses it.
fn checkout_paths(opts: &RunOptions, job: &Job, instance: &Instance) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    // Made for the first checkout step only: most jobs have none.
    let mut ctx = None;
    for step in &job.steps {
        let StepAction::Uses { action, with, .. } = &step.action else { continue };
        if actions::native(action) != Native::Checkout {
            continue;
        }
        let ctx = ctx.get_or_insert_with(|| {
            base_context(opts, job, &instance.needs, &instance.matrix).with("strategy", instance.strategy.clone())
        });
        let written = with.iter().find(|(k, _)| k == "path").map_or("", |(_, v)| v.as_str());
        let rendered = expr::render(written, ctx).map_err(|why| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cannot evaluate the `path` of {action}: {why}"),
            )
        })?;
        let path = inside_workspace(&rendered).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the `path` of {action}, {rendered}, is not under the workspace"),
            )
        })?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// `path` resolved lexically under the workspace (`a/./b/../c` is `a/c`, `''` the workspace
/// itself); `None` when it is absolute or climbs out.
pub(crate) fn inside_workspace(path: &str) -> Option<PathBuf> {
    use std::path::Component;
    let mut inside = PathBuf::new();
    for component in Path::new(path.trim()).components() {
        match component {
            Component::Normal(part) => inside.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !inside.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(inside)
}

/// Whether finished instances' directories serve later ones: not when they were another user's.
pub(super) fn reuses_dirs(opts: &RunOptions) -> bool {
    opts.sandbox.run_as().is_none()
}

/// Empties the instance's directories and puts them in the pool; a set that cannot be emptied
/// is left where it is. Without `reuse`, they are removed instead.
pub(super) fn recycle(dirs: Dirs, pool: &DirPool, reuse: bool) {
    if !reuse {
        for dir in [&dirs.workspace, &dirs.home, &dirs.temp] {
            remove_dir(dir);
        }
        return;
    }
    let empty = |dir: &Path| -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    };
    for dir in [&dirs.workspace, &dirs.home, &dirs.temp] {
        if let Err(error) = empty(dir) {
            // The run goes on without it: the set stays in the work dir, out of the pool.
            tracing::warn!(dir = %dir.display(), error = %error, "cannot empty a finished job's directory; leaving it");
            return;
        }
    }
    pool.put(dirs);
}

/// Removes a directory the run is done with; one that cannot be removed stays in the work dir,
/// which is the caller's, and is logged.
fn remove_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(dir = %dir.display(), error = %error, "cannot remove a finished job's directory"),
    }
}

/// Creates `dir`, empty: a work dir reused from an earlier run must not leak files into this one.
/// One `mkdir` in the usual case, where it does not exist yet.
pub(super) fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_dir_all(dir)?;
            std::fs::create_dir(dir)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir),
        Err(error) => Err(error),
    }
}

pub(super) fn documented_env(opts: &RunOptions, job: &Job, dirs: &Dirs) -> BTreeMap<String, String> {
    let context = github_context(opts);
    let github =
        |key: &str| context.get(key).map(|v| expr::Value::from_json(v).to_display_string()).unwrap_or_default();
    let runner = runner_context(opts, dirs);
    let runner = |key: &str| runner.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let path = |p: &Path| p.display().to_string();
    let mut env = BTreeMap::new();
    for (key, value) in [
        ("CI", "true".to_owned()),
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_WORKSPACE", path(&dirs.workspace)),
        ("GITHUB_REPOSITORY", github("repository")),
        ("GITHUB_REPOSITORY_OWNER", github("repository_owner")),
        ("GITHUB_ACTOR", github("actor")),
        ("GITHUB_TRIGGERING_ACTOR", github("triggering_actor")),
        ("GITHUB_SHA", github("sha")),
        ("GITHUB_REF", github("ref")),
        ("GITHUB_EVENT_NAME", opts.event_name.clone()),
        ("GITHUB_JOB", job.id.clone()),
        ("GITHUB_RUN_ID", opts.run_id.to_string()),
        ("GITHUB_REF_NAME", ref_name(&github("ref")).to_owned()),
        ("RUNNER_OS", "Linux".to_owned()),
        ("RUNNER_ARCH", runner_arch().to_owned()),
        ("RUNNER_TEMP", path(&dirs.temp)),
        ("RUNNER_NAME", runner("name")),
        ("RUNNER_TOOL_CACHE", runner("tool_cache")),
        ("RUNNER_ENVIRONMENT", runner("environment")),
        ("MOBIUS", "true".to_owned()),
        ("MOBIUS_RUN_ID", opts.run_id.to_string()),
        // Where the workspace was copied from: lets a job find what sits beside the
        // repository on this machine (this project's tests read `../shared/corpus`).
        ("MOBIUS_SOURCE_DIR", path(&opts.workspace_source)),
    ] {
        env.insert(key.to_owned(), value);
    }
    // GitHub sets it only with debug logging on.
    if debug_logging(opts) {
        env.insert("RUNNER_DEBUG".to_owned(), "1".to_owned());
    }
    env
}

/// The `runner` context of a job on this machine: GitHub's `os`, `arch`, `temp`, plus `name`
/// (the host's name), `tool_cache` (`tool-cache` in the run's store, which outlives runs as a
/// self-hosted runner's does), `environment` (`self-hosted`: this is no GitHub-hosted VM), and
/// `debug` (`1`) only with debug logging on.
pub(super) fn runner_context(opts: &RunOptions, dirs: &Dirs) -> Value {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "mobius".to_owned());
    let mut runner = serde_json::json!({
        "os": "Linux",
        "arch": runner_arch(),
        "temp": dirs.temp.display().to_string(),
        "name": name,
        "tool_cache": opts.store().join("tool-cache").display().to_string(),
        "environment": "self-hosted",
    });
    if debug_logging(opts)
        && let Value::Object(map) = &mut runner
    {
        map.insert("debug".into(), Value::String("1".into()));
    }
    runner
}

/// Whether debug logging is on: a secret or variable `ACTIONS_RUNNER_DEBUG` or
/// `ACTIONS_STEP_DEBUG` is `true`, GitHub's switches.
fn debug_logging(opts: &RunOptions) -> bool {
    ["ACTIONS_RUNNER_DEBUG", "ACTIONS_STEP_DEBUG"].iter().any(|name| {
        [&opts.secrets, &opts.vars].iter().any(|map| map.get(*name).is_some_and(|v| v.eq_ignore_ascii_case("true")))
    })
}

/// The cache scope of the run: `github.repository`, the branch from `github.ref_name` (else
/// `github.ref`), and `github.event.repository.default_branch` (else `main`).
pub(super) fn cache_scope(github: &Value) -> crate::cache::Scope {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty());
    let branch = text(github.get("ref_name"))
        .or_else(|| text(github.get("ref")).map(|r| ref_name(&r).to_owned()))
        .unwrap_or_else(|| "main".to_owned());
    crate::cache::Scope {
        repository: text(github.get("repository")).unwrap_or_default(),
        branch,
        default_branch: text(github.pointer("/event/repository/default_branch")).unwrap_or_else(|| "main".to_owned()),
    }
}

/// `refs/heads/main` → `main`, `refs/tags/v1` → `v1`; anything else as is.
pub(super) fn ref_name(reference: &str) -> &str {
    ["refs/heads/", "refs/tags/"].iter().find_map(|p| reference.strip_prefix(p)).unwrap_or(reference)
}

/// `runner.arch` in GitHub's words.
pub(super) fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "x86" => "X86",
        "aarch64" => "ARM64",
        "arm" => "ARM",
        other => other,
    }
}
