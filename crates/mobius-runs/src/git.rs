//! What the server asks git about a registered repository, through the `git` CLI (as
//! `mobius-git` does for ancestry). Every function blocks; call them off the async runtime.

use std::path::Path;
use std::process::{Command, Stdio};

use jiff::Timestamp;
use mobius_store::Heads;

use super::cdevents::LandedCommit;
use super::remote::Access;

/// The most commits one push reports; older ones in a larger push are left out (their
/// changes are still found through ancestry when a deployment ships them).
pub const MAX_COMMITS: usize = 1000;

/// A git command that failed, with git's own message.
#[derive(Debug, thiserror::Error)]
#[error("`git {command}` in {repository} failed: {message}")]
pub struct GitError {
    pub repository: String,
    pub command: String,
    pub message: String,
}

fn git(repo: &Path, args: &[&str]) -> Result<String, GitError> {
    let failed =
        |message: String| GitError { repository: repo.display().to_string(), command: args.join(" "), message };
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    String::from_utf8(out.stdout).map_err(|_| failed("output is not UTF-8".to_owned()))
}

/// The key under which [`heads`] records that it tracks tags too: heads recorded before it
/// did lack it, and their repository's existing tags are then taken as seen, not as pushed.
pub const TAGS_TRACKED: &str = "refs/tags/";

/// Every branch (by name) and every tag (as `refs/tags/<name>`, the commit an annotated tag
/// points at) with its commit, and the [`TAGS_TRACKED`] mark.
pub fn heads(repo: &Path) -> Result<Heads, GitError> {
    let format = "--format=%(objectname) %(*objectname) %(refname)";
    let out = git(repo, &["for-each-ref", format, "refs/heads", "refs/tags"])?;
    let mut heads: Heads = out
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (sha, peeled, name) = (parts.next()?, parts.next()?, parts.next()?);
            let commit = if peeled.is_empty() { sha } else { peeled };
            match name.strip_prefix("refs/heads/") {
                Some(branch) => Some((branch.to_owned(), commit.to_owned())),
                None => name.starts_with("refs/tags/").then(|| (name.to_owned(), commit.to_owned())),
            }
        })
        .collect();
    heads.insert(TAGS_TRACKED.to_owned(), String::new());
    Ok(heads)
}

/// The commits a branch gained moving from `before` to `after`, oldest first (at most
/// [`MAX_COMMITS`], the newest ones). A new branch (`before` = `None`) reports its head commit.
pub fn landed(repo: &Path, before: Option<&str>, after: &str) -> Result<Vec<LandedCommit>, GitError> {
    let format = "--format=%H%x1f%cI%x1f%aI%x1f%s";
    let max = format!("--max-count={MAX_COMMITS}");
    let range = before.map(|b| format!("{b}..{after}"));
    let args: Vec<&str> = match &range {
        Some(range) => vec!["log", format, &max, range.as_str()],
        None => vec!["log", format, "--max-count=1", after],
    };
    let out = git(repo, &args)?;
    let mut commits: Vec<LandedCommit> = out
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\x1f');
            let sha = parts.next()?.to_owned();
            let times = (parts.next()?.parse::<Timestamp>(), parts.next()?.parse::<Timestamp>());
            let (Ok(commit_time), Ok(author_time)) = times else {
                // Git printed a time its own format promises: a commit that breaks it is skipped.
                tracing::warn!(%sha, "git gave a commit time that does not parse: the commit is left out");
                return None;
            };
            let subject = parts.next().unwrap_or_default().to_owned();
            Some(LandedCommit { sha, commit_time, author_time, subject })
        })
        .collect();
    commits.reverse();
    Ok(commits)
}

/// The files that differ between `before` and `after`; for a new branch, the files its head
/// commit touched.
pub fn changed_files(repo: &Path, before: Option<&str>, after: &str) -> Result<Vec<String>, GitError> {
    let out = match before {
        Some(before) => git(repo, &["diff", "--name-only", "--no-renames", before, after])?,
        None => git(repo, &["diff-tree", "--root", "--no-commit-id", "--name-only", "-r", after])?,
    };
    Ok(out.lines().map(str::to_owned).collect())
}

/// Whether `url` names a remote repository rather than a directory on this machine:
/// `https://`, `ssh://`, `git://`, `file://` URLs and scp-style `user@host:path`.
pub fn is_remote_url(url: &str) -> bool {
    url.contains("://") || url.split_once(':').is_some_and(|(host, _)| host.contains('@') && !host.contains('/'))
}

/// `url` without what a URL may carry as credentials (`https://user:token@host/…`), for
/// messages: credentials are never printed.
pub fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
                format!("{scheme}://{host}/{path}")
            }
            None => format!("{scheme}://{}", rest.rsplit_once('@').map_or(rest, |(_, host)| host)),
        },
        None => url.to_owned(),
    }
}

/// Makes `dir` a bare mirror of `url` (every branch and tag), for a repository that lives on a
/// remote, reaching it with `access`. Nothing is left at `dir` when it fails.
pub fn mirror(url: &str, dir: &Path, access: &Access) -> Result<(), GitError> {
    let failed = |message: String| GitError { repository: shown_url(url), command: "clone --mirror".into(), message };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed(e.to_string()))?;
    }
    let mut command = Command::new("git");
    command.args(["clone", "--mirror", "--quiet", "--", url]).arg(dir).env("GIT_TERMINAL_PROMPT", "0");
    let key = access.apply(&mut command).map_err(|e| failed(format!("cannot write the SSH key file: {e}")))?;
    let out = command.stdin(Stdio::null()).output().map_err(|e| failed(e.to_string()));
    drop(key);
    let out = out?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(dir);
        let text = String::from_utf8_lossy(&out.stderr);
        let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("failed");
        return Err(failed(first.replace(url, &shown_url(url))));
    }
    Ok(())
}

/// Brings a mirror made by [`mirror`] up to date with its remote (branches moved, added and
/// deleted), reaching it with `access`; does nothing for a repository that is not a mirror (a
/// clone on this machine).
pub fn fetch_mirror(repo: &Path, access: &Access) -> Result<(), GitError> {
    // `git clone --mirror` writes `mirror = true` under `[remote "origin"]`; reading the file
    // spares a git process on every poll (a webhook waits for it).
    let config = std::fs::read_to_string(repo.join("config")).unwrap_or_default();
    let is_mirror = config.lines().any(|line| line.trim().replace(' ', "") == "mirror=true");
    if !is_mirror {
        return Ok(());
    }
    let args = ["-c", "credential.interactive=never", "fetch", "--prune", "--quiet", "origin"];
    let failed =
        |message: String| GitError { repository: repo.display().to_string(), command: args.join(" "), message };
    let mut command = Command::new("git");
    command.arg("-C").arg(repo).args(args).env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
    let key = access.apply(&mut command).map_err(|e| failed(format!("cannot write the SSH key file: {e}")))?;
    let out = command.output().map_err(|e| failed(format!("cannot run git: {e}")));
    drop(key);
    let out = out?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(())
}

/// The commit `git_ref` names (a branch, a tag or a commit), and the branch when it is one;
/// `None` when it names nothing.
pub fn resolve(repo: &Path, git_ref: &str) -> Result<Option<(String, Option<String>)>, GitError> {
    if git_ref.starts_with('-') || git_ref.is_empty() {
        return Ok(None);
    }
    let name = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
    for (candidate, branch) in [(format!("refs/heads/{name}"), Some(name.to_owned())), (git_ref.to_owned(), None)] {
        let spec = format!("{candidate}^{{commit}}");
        if let Ok(sha) = git(repo, &["rev-parse", "--verify", "--quiet", &spec]) {
            return Ok(Some((sha.trim().to_owned(), branch)));
        }
    }
    Ok(None)
}

/// The commit a pull request's run checks out, and the ref it is at: the forge's merge commit
/// (`<prefix>/merge`) when it has one that merges `head` (a stale one, computed before the
/// last push, does not), else `head` itself (`<prefix>/head`). `None` when the repository
/// does not have the head commit.
pub fn pull_request_commit(repo: &Path, prefix: &str, head: &str) -> Option<(String, String)> {
    let commit = |spec: &str| {
        git(repo, &["rev-parse", "--verify", "--quiet", &format!("{spec}^{{commit}}")])
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let merge = format!("{prefix}/merge");
    if let (Some(sha), Some(parent)) = (commit(&merge), commit(&format!("{merge}^2")))
        && parent == head
    {
        return Some((sha, merge));
    }
    if head.len() != 40 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    commit(head).map(|sha| (sha, format!("{prefix}/head")))
}

/// The files a pull request changes: those that differ between `head` and where it forked
/// from `base` (`git diff base...head`, as the forge's diff shows).
pub fn pull_request_files(repo: &Path, base: &str, head: &str) -> Result<Vec<String>, GitError> {
    let range = format!("{base}...{head}");
    let out = git(repo, &["diff", "--name-only", "--no-renames", &range, "--"])?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Every workflow file at `sha` (`.github/workflows/*.yml|yaml`, `.mobius/workflows/…`), as
/// `(path, text)` in path order.
pub fn workflow_files(repo: &Path, sha: &str) -> Result<Vec<(String, String)>, GitError> {
    let out = git(repo, &["ls-tree", "--name-only", sha, "--", ".github/workflows/", ".mobius/workflows/"])?;
    let mut files = Vec::new();
    for path in out.lines() {
        if path.ends_with(".yml") || path.ends_with(".yaml") {
            files.push((path.to_owned(), git(repo, &["show", &format!("{sha}:{path}")])?));
        }
    }
    files.sort();
    Ok(files)
}

/// The text of `path` at `sha`.
pub fn file_at(repo: &Path, sha: &str, path: &str) -> Result<String, GitError> {
    git(repo, &["show", &format!("{sha}:{path}")])
}

/// Writes the tree of `sha` into `dest` (created if missing): `git archive | tar -x`, so the
/// repository itself is untouched (no worktree bookkeeping, no index change).
pub fn export(repo: &Path, sha: &str, dest: &Path) -> Result<(), GitError> {
    let failed = |message: String| GitError {
        repository: repo.display().to_string(),
        command: format!("archive {sha} | tar -x"),
        message,
    };
    std::fs::create_dir_all(dest).map_err(|e| failed(format!("cannot create {}: {e}", dest.display())))?;
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", sha])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run git: {e}")))?;
    let stdout = archive.stdout.take().ok_or_else(|| failed("no output".to_owned()))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(stdout)
        .output()
        .map_err(|e| failed(format!("cannot run tar: {e}")))?;
    let git_out = archive.wait_with_output().map_err(|e| failed(e.to_string()))?;
    if !git_out.status.success() {
        return Err(failed(String::from_utf8_lossy(&git_out.stderr).trim().to_owned()));
    }
    if !tar.status.success() {
        return Err(failed(String::from_utf8_lossy(&tar.stderr).trim().to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    #[test]
    fn heads_commits_files_and_workflows_of_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        sh(
            repo,
            "git init -q -b main && mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml && echo x > README && git add -A && git commit -qm first",
        );
        let first = heads(repo).unwrap()["main"].clone();
        sh(
            repo,
            "echo y > a.txt && git add -A && git commit -qm 'second one' && echo z > b.txt && git add -A && git commit -qm third",
        );
        sh(repo, "git tag -a v1 -m release && git tag light");
        let now = heads(repo).unwrap();
        assert_eq!(now.keys().collect::<Vec<_>>(), ["main", "refs/tags/", "refs/tags/light", "refs/tags/v1"]);
        assert_eq!(now["refs/tags/v1"], now["main"], "an annotated tag is recorded at its commit");
        assert_eq!(now["refs/tags/light"], now["main"]);
        let commits = landed(repo, Some(&first), &now["main"]).unwrap();
        let subjects: Vec<&str> = commits.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(subjects, ["second one", "third"], "oldest first");
        assert_eq!(commits[1].sha, now["main"]);
        assert_eq!(landed(repo, None, &now["main"]).unwrap().len(), 1);
        assert_eq!(changed_files(repo, Some(&first), &now["main"]).unwrap(), ["a.txt", "b.txt"]);
        assert_eq!(changed_files(repo, None, &first).unwrap(), [".github/workflows/ci.yml", "README"]);
        let workflows = workflow_files(repo, &first).unwrap();
        assert_eq!(workflows, [(".github/workflows/ci.yml".to_owned(), "on: push\n".to_owned())]);
        let out = tempfile::tempdir().unwrap();
        export(repo, &first, out.path()).unwrap();
        assert!(out.path().join("README").is_file());
        assert!(!out.path().join("a.txt").exists(), "the tree of that commit, not the working copy");
        let error = heads(&repo.join("missing")).unwrap_err().to_string();
        assert!(error.contains("for-each-ref"), "{error}");
    }
}
