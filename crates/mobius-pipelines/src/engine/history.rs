//! The history a job on an agent reads: `mobius/secret-scan` on a push scans the lines the
//! push range added, which the agent's workspace (an export, without `.git`) cannot show. The
//! server packs the objects the range needs from its repository ([`pack_range`]); the agent
//! indexes the pack into a bare repository of its own ([`unpack_range`]) and runs the job with
//! [`super::RunOptions::history`] set to it, so the scan reads `before..after` there as it does
//! on the server.
//!
//! The pack holds everything reachable from `after` and `before` (when the repository has
//! them): `git log -p before..after` diffs each commit of the range against its parent, so the
//! trees on both sides must be whole. A git pack, not a bundle: a bundle needs refs, and the
//! server's repository is not written to.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::actions::{Native, native};
use crate::workflow::{Job, StepAction};

/// Why a push range's history could not be packed or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot run git {what}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("git {what} failed: {stderr}")]
    Failed { what: &'static str, stderr: String },
    #[error("the push range's commit {0} is not in the repository")]
    Missing(String),
}

/// Whether a step of `job` reads the history of a push range (`mobius/secret-scan`).
pub fn reads_history(job: &Job) -> bool {
    job.steps
        .iter()
        .any(|step| matches!(&step.action, StepAction::Uses { action, .. } if native(action) == Native::SecretScan))
}

/// The push range's commits, `(before, after)`, when the `github` context has one.
pub fn range_commits(github: &Value) -> Option<(String, String)> {
    let range = super::security::push_range(github)?;
    let (before, after) = range.split_once("..")?;
    Some((before.to_owned(), after.to_owned()))
}

/// A pack of the objects `git log -p before..after` reads in `repo`; `None` when the event
/// has no push range. `after` must be in the repository; `before` is left out when it is not
/// (a force push past a pruned commit), so the range is then read from `after`'s history.
pub fn pack_range(repo: &Path, github: &Value) -> Result<Option<Vec<u8>>, HistoryError> {
    let Some((before, after)) = range_commits(github) else { return Ok(None) };
    if !has_commit(repo, &after)? {
        return Err(HistoryError::Missing(after));
    }
    let mut tips = after;
    if has_commit(repo, &before)? {
        tips = format!("{tips}\n{before}");
    }
    let mut child = git(repo)
        .args(["pack-objects", "--revs", "--stdout", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HistoryError::Spawn { what: "pack-objects", source })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{tips}\n").as_bytes())
            .map_err(|source| HistoryError::Spawn { what: "pack-objects", source })?;
    }
    let out = child.wait_with_output().map_err(|source| HistoryError::Spawn { what: "pack-objects", source })?;
    if !out.status.success() {
        return Err(failed("pack-objects", &out.stderr));
    }
    Ok(Some(out.stdout))
}

/// Makes `dir` a bare repository holding the objects of `pack` (from [`pack_range`]).
pub fn unpack_range(pack: &[u8], dir: &Path) -> Result<(), HistoryError> {
    let out = Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(dir)
        .env_remove("GIT_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HistoryError::Spawn { what: "init", source })?;
    if !out.status.success() {
        return Err(failed("init", &out.stderr));
    }
    let mut child = git(dir)
        .args(["index-pack", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HistoryError::Spawn { what: "index-pack", source })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(pack).map_err(|source| HistoryError::Spawn { what: "index-pack", source })?;
    }
    let out = child.wait_with_output().map_err(|source| HistoryError::Spawn { what: "index-pack", source })?;
    if !out.status.success() {
        return Err(failed("index-pack", &out.stderr));
    }
    Ok(())
}

fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo).env_remove("GIT_DIR").env_remove("GIT_WORK_TREE").env("GIT_TERMINAL_PROMPT", "0");
    command
}

fn has_commit(repo: &Path, sha: &str) -> Result<bool, HistoryError> {
    let status = git(repo)
        .args(["cat-file", "-e", &format!("{sha}^{{commit}}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| HistoryError::Spawn { what: "cat-file", source })?;
    Ok(status.success())
}

fn failed(what: &'static str, stderr: &[u8]) -> HistoryError {
    HistoryError::Failed { what, stderr: String::from_utf8_lossy(stderr).trim().chars().take(500).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_ok(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn a_packed_range_reads_back_the_same_diff_in_a_repository_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git_ok(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("a.txt"), "one\n").unwrap();
        git_ok(&repo, &["add", "-A"]);
        git_ok(&repo, &["commit", "-qm", "one"]);
        let before = git_ok(&repo, &["rev-parse", "HEAD"]);
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        std::fs::write(repo.join("sub/b.txt"), "added line\n").unwrap();
        git_ok(&repo, &["add", "-A"]);
        git_ok(&repo, &["commit", "-qm", "two"]);
        let after = git_ok(&repo, &["rev-parse", "HEAD"]);
        let github = serde_json::json!({ "event_name": "push", "event": { "before": before, "after": after } });

        let pack = pack_range(&repo, &github).unwrap().expect("a push has a range");
        let copy = tmp.path().join("copy.git");
        unpack_range(&pack, &copy).unwrap();
        let range = format!("{before}..{after}");
        assert_eq!(git_ok(&copy, &["log", "-p", &range]), git_ok(&repo, &["log", "-p", &range]));
        assert!(git_ok(&copy, &["log", "-p", &range]).contains("+added line"));

        let no_range =
            serde_json::json!({ "event_name": "push", "event": { "before": "0".repeat(40), "after": after } });
        assert!(pack_range(&repo, &no_range).unwrap().is_none(), "a new branch has no range");
        let unknown =
            serde_json::json!({ "event_name": "push", "event": { "before": before, "after": "ab".repeat(20) } });
        assert!(matches!(pack_range(&repo, &unknown), Err(HistoryError::Missing(_))));
        assert!(unpack_range(b"not a pack", &tmp.path().join("bad.git")).is_err());
    }
}
