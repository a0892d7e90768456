//! `mobius hooks install`: the pre-commit hook that runs `mobius scan secrets --staged`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::cli::HooksCommand;

pub fn run(command: HooksCommand) -> Result<ExitCode> {
    match command {
        HooksCommand::Install { repo, force } => {
            let repo = repo.unwrap_or_else(|| PathBuf::from("."));
            let hook = hooks_dir(&repo)?.join("pre-commit");
            let installed = install(&hook, mobius_scan::pre_commit_hook_script(), force)?;
            match installed {
                Installed::AlreadyThere => println!("{} is already the mobius secret-scan hook", hook.display()),
                Installed::Written => println!(
                    "installed {}: commits adding a secret are refused (SKIP=mobius-secrets bypasses it once)",
                    hook.display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The repository's hooks directory as git resolves it (`core.hooksPath`, worktrees).
fn hooks_dir(repo: &Path) -> Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .current_dir(repo)
        .output()
        .with_context(|| format!("cannot run git in {}", repo.display()))?;
    if !out.status.success() {
        bail!("{} is not in a git repository: {}", repo.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches(['\n', '\r']));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the hooks directory {}", dir.display()))?;
    Ok(dir)
}

enum Installed {
    Written,
    AlreadyThere,
}

/// Writes the hook, executable. A different hook already there is kept unless `force`.
fn install(hook: &Path, script: &str, force: bool) -> Result<Installed> {
    match std::fs::read(hook) {
        Ok(existing) if existing == script.as_bytes() => return Ok(Installed::AlreadyThere),
        Ok(_) if !force => bail!(
            "{} already exists and is not the mobius hook: chain it from your hook, or replace it with --force",
            hook.display()
        ),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", hook.display())),
    }
    // A fresh file renamed over the old one: never a half-written hook, and never through a
    // link left at the hook's name.
    let temporary = hook.with_extension("mobius-new");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(script.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, hook).with_context(|| format!("cannot install {}", hook.display()))?;
    Ok(Installed::Written)
}
