//! Commit ancestry from local clones, through the `git` command line.
//!
//! When a repository is registered (`mobius repo add PATH`), the changes a deployment shipped
//! are exactly `git log previous..revision`: merges, rebases and squashes are seen as git sees
//! them, and pushes capped by the webhook sender (20 commits) lose nothing. Shelling out to
//! `git` costs nothing to build and reads every repository format git does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::Timestamp;
use mobius_events::materialise::Ancestry;
use mobius_events::observation::Commit;

/// A first deployment has no previous revision to stop at; bound how far back it reaches.
pub const FIRST_DEPLOYMENT_DEPTH: usize = 1000;

/// Why git could not answer: a path cannot be registered, or the commits of a range read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    #[error("{path} is not a git repository: {stderr}")]
    NotARepository { path: String, stderr: String },
    /// `git log` refused the range, typically because the clone does not have a revision yet.
    #[error("git log {range} in {path} failed: {stderr}")]
    Log { path: String, range: String, stderr: String },
    /// A line of `git log` that is not in the format asked for.
    #[error("git log {range} in {path} printed an unexpected line: {line:?}")]
    UnexpectedLine { path: String, range: String, line: String },
}

/// Registered repositories by the name events use for them.
#[derive(Debug, Clone, Default)]
pub struct GitAncestry {
    repositories: HashMap<String, PathBuf>,
}

impl GitAncestry {
    pub fn new(repositories: impl IntoIterator<Item = (String, PathBuf)>) -> GitAncestry {
        GitAncestry { repositories: repositories.into_iter().collect() }
    }
}

/// The top-level directory of the work tree (or bare repository) at `path`.
pub fn toplevel(path: &Path) -> Result<PathBuf, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["rev-parse", "--path-format=absolute", "--git-dir"])
        .output()
        .map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::NotARepository {
            path: path.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let git_dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // A work tree's git dir is `<top>/.git`; a bare repository is its own top.
    Ok(match git_dir.file_name() {
        Some(name) if name == ".git" => git_dir.parent().map(Path::to_path_buf).unwrap_or(git_dir),
        _ => git_dir,
    })
}

/// The commits reachable from `to` but not from `from` (the last [`FIRST_DEPLOYMENT_DEPTH`]
/// without `from`), oldest first.
pub fn log(path: &Path, from: Option<&str>, to: &str) -> Result<Vec<Commit>, GitError> {
    let range = match from {
        Some(from) => format!("{from}..{to}"),
        None => to.to_owned(),
    };
    let max = format!("--max-count={FIRST_DEPLOYMENT_DEPTH}");
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(path).args(["log", "--format=%H%x1f%at%x1f%ct%x1f%s"]);
    if from.is_none() {
        cmd.arg(&max);
    }
    let out =
        cmd.args(["--end-of-options", &range]).env("GIT_TERMINAL_PROMPT", "0").output().map_err(GitError::Spawn)?;
    let path = || path.display().to_string();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(GitError::Log { path: path(), range, stderr });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut commits = text
        .lines()
        .map(|line| {
            parse_line(line).ok_or_else(|| GitError::UnexpectedLine {
                path: path(),
                range: range.clone(),
                line: line.to_owned(),
            })
        })
        .collect::<Result<Vec<Commit>, GitError>>()?;
    commits.reverse();
    Ok(commits)
}

/// One line of `--format=%H%x1f%at%x1f%ct%x1f%s`; `None` when it is not one.
fn parse_line(line: &str) -> Option<Commit> {
    let mut fields = line.split('\x1f');
    let sha = fields.next()?.to_owned();
    let author = Timestamp::from_second(fields.next()?.parse().ok()?).ok()?;
    let committed = Timestamp::from_second(fields.next()?.parse().ok()?).ok()?;
    let message = fields.next().unwrap_or_default().to_owned();
    Some(Commit { sha, author_time: Some(author), commit_time: committed, message })
}

impl Ancestry for GitAncestry {
    /// `None` for a repository that is not registered; for one whose clone cannot answer (a
    /// revision not fetched yet, git missing), too, after a warning: the deployment's changes
    /// then come from the push stream, as without a clone.
    fn commits_between(&self, repository: &str, from: Option<&str>, to: &str) -> Option<Vec<Commit>> {
        let path = self.repositories.get(repository)?;
        match log(path, from, to) {
            Ok(commits) => Some(commits),
            Err(error) => {
                tracing::warn!(
                    repository, error = %chain(&error),
                    "cannot read the shipped commits from the local clone; using the push stream"
                );
                None
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn commit(dir: &Path, message: &str, at: &str) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["commit", "-q", "--allow-empty", "-m", message])
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_AUTHOR_DATE", at)
            .env("GIT_COMMITTER_DATE", at)
            .output()
            .expect("git runs");
        assert!(out.status.success());
        git(dir, &["rev-parse", "HEAD"])
    }

    #[test]
    fn ancestry_between_two_revisions_is_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        let a = commit(dir.path(), "first", "2024-01-01T10:00:00Z");
        let b = commit(dir.path(), "second\n\nbody", "2024-01-01T11:00:00Z");
        let c = commit(dir.path(), "third", "2024-01-01T12:00:00Z");
        let ancestry = GitAncestry::new([("org/repo".to_owned(), toplevel(dir.path()).unwrap())]);

        let shipped = ancestry.commits_between("org/repo", Some(&a), &c).unwrap();
        let shas: Vec<&str> = shipped.iter().map(|c| c.sha.as_str()).collect();
        assert_eq!(shas, [b.as_str(), c.as_str()]);
        assert_eq!(shipped[0].message, "second");
        assert_eq!(shipped[0].commit_time.to_string(), "2024-01-01T11:00:00Z");

        assert_eq!(ancestry.commits_between("org/repo", None, &c).unwrap().len(), 3);
        assert_eq!(ancestry.commits_between("org/other", None, &c), None);
        assert_eq!(ancestry.commits_between("org/repo", None, "0123456789abcdef0123456789abcdef01234567"), None);
        let unknown = log(dir.path(), Some(&a), "0123456789abcdef0123456789abcdef01234567");
        assert!(
            matches!(&unknown, Err(GitError::Log { range, .. }) if range.ends_with("..0123456789abcdef0123456789abcdef01234567")),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_plain_directory_is_not_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(toplevel(dir.path()), Err(GitError::NotARepository { .. })));
    }
}
