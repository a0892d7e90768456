//! bubblewrap: finding it and the tools around it, probing the exact command line once per
//! process, and building it for one command.
//!
//! The command line, outside in:
//!
//! ```text
//! env --ignore-signal=TERM bwrap --unshare-pid [--die-with-parent] --bind / / --dev /dev
//!     --proc /proc --tmpfs <hidden>… --bind <rw> <rw>… --ro-bind <ro> <ro>… --chdir <workdir>
//!   -- env --default-signal=TERM [setpriv --reuid=U --regid=G --clear-groups --inh-caps=-all
//!      --bounding-set=-all --] <program> <args>…
//! ```
//!
//! `bwrap` dies of `SIGTERM` without a word to its child, so a `SIGTERM` to the process group
//! would end it first and leave the command running, unwatched. It is therefore started with
//! `SIGTERM` ignored (an ignored signal stays ignored across `exec`, which is also why the
//! command gets it back to the default just before it starts); the signal still reaches the
//! command, and `bwrap` exits when the command does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use crate::{Confinement, User, canonical};

/// The programs that wrap a command, found on `PATH` when the probe ran.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub env: PathBuf,
    pub bwrap: PathBuf,
    pub setpriv: Option<PathBuf>,
}

/// Why bubblewrap (or `setpriv` inside it) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    #[error("`{tool}` is not on PATH ({hint})")]
    Missing { tool: &'static str, hint: &'static str },
    #[error("cannot run `{command}`: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
}

/// The probe's answer, for the life of the process: whether bubblewrap works does not change.
static PROBE: OnceLock<Result<Tools, ProbeFailure>> = OnceLock::new();

impl Tools {
    /// The tools, if the probe (run once) started a command in bubblewrap; else why not.
    pub(crate) fn probed() -> Result<Tools, ProbeFailure> {
        PROBE.get_or_init(probe).clone()
    }

    /// Whether `setpriv` is there and can drop to `user` inside bubblewrap.
    pub(crate) fn check_setpriv(&self, user: &User) -> Result<(), ProbeFailure> {
        if self.setpriv.is_none() {
            return Err(ProbeFailure::Missing {
                tool: "setpriv",
                hint: "it comes with util-linux: apt-get install util-linux",
            });
        }
        let confinement = Confinement { workdir: PathBuf::from("/"), die_with_parent: true, ..Confinement::default() };
        run(&self.env, self.arguments(&[], Some(user), &confinement))
    }

    /// The arguments of `env` (this struct's) that run a program in bubblewrap: everything
    /// before the program's path.
    pub(crate) fn arguments(
        &self,
        hidden: &[PathBuf],
        run_as: Option<&User>,
        confinement: &Confinement,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--ignore-signal=TERM".into(), self.bwrap.clone().into()];
        let mut push = |words: &[&str]| args.extend(words.iter().map(OsString::from));
        push(&["--unshare-pid"]);
        if confinement.die_with_parent {
            push(&["--die-with-parent"]);
        }
        push(&["--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]);
        // A hidden directory that does not exist has nothing to hide, and bubblewrap would
        // create it on the host to mount over it.
        for dir in hidden.iter().filter(|dir| dir.is_dir()) {
            args.extend(["--tmpfs".into(), dir.clone().into_os_string()]);
        }
        // Parents before children, so a directory bound inside another stays visible.
        let mut binds: Vec<(PathBuf, &str)> = confinement
            .read_write
            .iter()
            .map(|dir| (dir, "--bind"))
            .chain(confinement.read_only.iter().map(|dir| (dir, "--ro-bind")))
            .filter(|(dir, _)| dir.exists())
            .map(|(dir, how)| (canonical(dir), how))
            .collect();
        binds.sort_by_key(|(dir, _)| dir.components().count());
        // bubblewrap would create the directories leading to a bind inside a hidden one as
        // 0700 root, which the user cannot pass; create them 0755 first (`--dir`). Those inside
        // another bind are real directories and left alone.
        let mut leading: Vec<PathBuf> = Vec::new();
        for (dir, _) in &binds {
            let Some(hidden) = hidden.iter().find(|h| dir.starts_with(h) && dir != *h) else { continue };
            let ancestors: Vec<&Path> = dir.ancestors().skip(1).take_while(|a| a != hidden).collect();
            for ancestor in ancestors.into_iter().rev() {
                let in_bind = binds.iter().any(|(bound, _)| ancestor.starts_with(bound));
                if !in_bind && !leading.iter().any(|known| known == ancestor) {
                    leading.push(ancestor.to_path_buf());
                }
            }
        }
        for dir in leading {
            args.extend(["--dir".into(), dir.into_os_string()]);
        }
        for (dir, how) in binds {
            args.extend([how.into(), dir.clone().into_os_string(), dir.into_os_string()]);
        }
        args.extend(["--chdir".into(), canonical(&confinement.workdir).into_os_string()]);
        args.extend(["--".into(), self.env.clone().into_os_string(), "--default-signal=TERM".into()]);
        if let (Some(user), Some(setpriv)) = (run_as, &self.setpriv) {
            args.push(setpriv.clone().into_os_string());
            args.extend(
                [
                    format!("--reuid={}", user.uid),
                    format!("--regid={}", user.gid),
                    "--clear-groups".to_owned(),
                    "--inh-caps=-all".to_owned(),
                    "--bounding-set=-all".to_owned(),
                    "--".to_owned(),
                ]
                .map(OsString::from),
            );
        }
        args
    }
}

/// Finds the tools and starts `true` with the command line every command gets.
fn probe() -> Result<Tools, ProbeFailure> {
    let bwrap = find("bwrap").ok_or(ProbeFailure::Missing { tool: "bwrap", hint: "apt-get install bubblewrap" })?;
    let env = find("env").ok_or(ProbeFailure::Missing { tool: "env", hint: "it comes with coreutils" })?;
    let tools = Tools { env, bwrap, setpriv: find("setpriv") };
    let confinement = Confinement { workdir: PathBuf::from("/"), die_with_parent: true, ..Confinement::default() };
    run(&tools.env, tools.arguments(&[], None, &confinement))?;
    Ok(tools)
}

/// Runs `true` after `args`; the error says how it failed.
fn run(env: &Path, mut args: Vec<OsString>) -> Result<(), ProbeFailure> {
    args.push("true".into());
    let shown = || {
        let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        format!("{} {}", env.display(), words.join(" "))
    };
    let output = std::process::Command::new(env)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ProbeFailure::Spawn { command: shown(), reason: e.to_string() })?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(ProbeFailure::Failed { command: shown(), status: output.status.to_string(), stderr })
    }
}

/// `name` in this process's `PATH`, as an executable file.
fn find(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_hides_then_binds_parents_first() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let work = data.join("runs/1/work");
        let workspace = work.join("0-build-workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        let tools = Tools { env: "/usr/bin/env".into(), bwrap: "/usr/bin/bwrap".into(), setpriv: Some("/sp".into()) };
        let user = User { name: "nobody".into(), uid: 65534, gid: 65534, home: "/nonexistent".into() };
        let confinement = Confinement {
            workdir: workspace.clone(),
            read_write: vec![workspace.clone(), dir.path().join("missing")],
            read_only: vec![work.clone()],
            die_with_parent: false,
        };
        let data = canonical(&data);
        let (work, workspace) = (canonical(&work), canonical(&workspace));
        let args: Vec<String> = tools
            .arguments(std::slice::from_ref(&data), Some(&user), &confinement)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let expected: Vec<String> = [
            "--ignore-signal=TERM",
            "/usr/bin/bwrap",
            "--unshare-pid",
            "--bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            &data.display().to_string(),
            "--dir",
            &data.join("runs").display().to_string(),
            "--dir",
            &data.join("runs/1").display().to_string(),
            "--ro-bind",
            &work.display().to_string(),
            &work.display().to_string(),
            "--bind",
            &workspace.display().to_string(),
            &workspace.display().to_string(),
            "--chdir",
            &workspace.display().to_string(),
            "--",
            "/usr/bin/env",
            "--default-signal=TERM",
            "/sp",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(args, expected);
    }
}
