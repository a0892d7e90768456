//! The deploy repository through the `git` CLI: its revision, its `environments/*.yaml` at that
//! revision, and a commit written without a work tree (promotion).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A git command that failed: which, and what git said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("git {command} in {repository}: {message}")]
pub struct GitError {
    pub repository: String,
    pub command: String,
    pub message: String,
}

fn git_with(repo: &Path, args: &[&str], env: &[(&str, &str)], input: Option<&[u8]>) -> Result<String, GitError> {
    let failed = |message: String| GitError {
        repository: repo.display().to_string(),
        command: args.first().copied().unwrap_or_default().to_owned(),
        message,
    };
    let mut command = Command::new("git");
    command.arg("-C").arg(repo).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().map_err(|e| failed(format!("cannot run git: {e}")))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).map_err(|e| failed(format!("cannot write to git: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| failed(format!("git did not finish: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(failed(if said.is_empty() { format!("exited with {}", out.status) } else { said }));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn git(repo: &Path, args: &[&str]) -> Result<String, GitError> {
    git_with(repo, args, &[], None)
}

/// The commit `revision` (`HEAD`, a branch, a tag, a sha) names.
pub fn resolve(repo: &Path, revision: &str) -> Result<String, GitError> {
    Ok(git(repo, &["rev-parse", "--verify", "--quiet", &format!("{revision}^{{commit}}")])?.trim().to_owned())
}

/// The branch `revision` is, as a full ref (`HEAD` → the branch it points at); `None` for a
/// tag or a sha, which a promotion cannot move.
pub fn branch_of(repo: &Path, revision: &str) -> Option<String> {
    if revision == "HEAD" {
        return git(repo, &["symbolic-ref", "--quiet", "HEAD"]).ok().map(|r| r.trim().to_owned());
    }
    let full = format!("refs/heads/{revision}");
    git(repo, &["show-ref", "--verify", "--quiet", &full]).ok().map(|_| full)
}

/// The `environments/*.yaml` files under `path` at `sha`: `(path in the repository, text)`.
pub fn environment_files(repo: &Path, sha: &str, path: &str) -> Result<Vec<(String, String)>, GitError> {
    let dir = environments_dir(path);
    let listed = git(repo, &["ls-tree", "--name-only", sha, "--", &format!("{dir}/")])?;
    let mut files = Vec::new();
    for file in listed.lines() {
        if file.ends_with(".yaml") || file.ends_with(".yml") {
            files.push((file.to_owned(), git(repo, &["show", &format!("{sha}:{file}")])?));
        }
    }
    files.sort();
    Ok(files)
}

/// `environments` under `path` (`deploy/environments`, or `environments` at the root).
pub fn environments_dir(path: &str) -> String {
    let path = path.trim_matches('/');
    if path.is_empty() { "environments".to_owned() } else { format!("{path}/environments") }
}

/// Who a commit is by.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Commits `text` as `file` on top of `parent` and moves `branch` from `parent` to it — only
/// if the branch is still at `parent` (another writer in between makes this fail, and nothing
/// moves). No work tree is touched: the tree is built in a throwaway index. The new commit's
/// sha.
pub fn commit_file(
    repo: &Path,
    branch: &str,
    parent: &str,
    file: &str,
    text: &str,
    author: &Author,
    message: &str,
) -> Result<String, GitError> {
    let index = tempfile_path(repo)?;
    let index_str = index.display().to_string();
    let env = [
        ("GIT_INDEX_FILE", index_str.as_str()),
        ("GIT_AUTHOR_NAME", author.name.as_str()),
        ("GIT_AUTHOR_EMAIL", author.email.as_str()),
        ("GIT_COMMITTER_NAME", author.name.as_str()),
        ("GIT_COMMITTER_EMAIL", author.email.as_str()),
    ];
    let result = (|| {
        git_with(repo, &["read-tree", parent], &env, None)?;
        let blob = git_with(repo, &["hash-object", "-w", "--stdin"], &env, Some(text.as_bytes()))?;
        let cacheinfo = format!("100644,{},{file}", blob.trim());
        git_with(repo, &["update-index", "--add", "--cacheinfo", &cacheinfo], &env, None)?;
        let tree = git_with(repo, &["write-tree"], &env, None)?;
        let commit =
            git_with(repo, &["commit-tree", tree.trim(), "-p", parent, "-F", "-"], &env, Some(message.as_bytes()))?;
        let commit = commit.trim().to_owned();
        git_with(repo, &["update-ref", "-m", "mobius promote", branch, &commit, parent], &env, None)?;
        Ok(commit)
    })();
    let _ = std::fs::remove_file(&index);
    result
}

/// A path for a throwaway index inside the repository's git directory.
fn tempfile_path(repo: &Path) -> Result<std::path::PathBuf, GitError> {
    let dir = git(repo, &["rev-parse", "--absolute-git-dir"])?;
    let unique = format!(
        "mobius-index-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    );
    Ok(Path::new(dir.trim()).join(unique))
}

/// The text of `file` at `sha`.
pub fn file_at(repo: &Path, sha: &str, file: &str) -> Result<String, GitError> {
    git(repo, &["show", &format!("{sha}:{file}")])
}
