//! A git repository with a workflow, and waiting on the application.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs git in `repo`; panics with its stderr when it fails.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository on `main` with `workflow` as `.github/workflows/ci.yml`, committed.
pub fn repository(root: &Path, workflow: &str) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/ci.yml"), workflow).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "Start"]);
    repo
}

/// One more commit on `repo`, changing `file`; returns its sha.
pub fn commit(repo: &Path, file: &str, text: &str) -> String {
    std::fs::write(repo.join(file), text).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", text]);
    git(repo, &["rev-parse", "HEAD"])
}
