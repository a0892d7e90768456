//! The deploy repository through the `git` CLI: its revision, its `environments/*.yaml` at that
//! revision, a commit written without a work tree (promotion), and for a repository that lives
//! on a remote (a mirror here) the push of that commit with a compare-and-swap of the remote's
//! branch (see [`push`]).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mobius_runs::remote::Access;

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
    let commit = write_commit(repo, parent, file, text, author, message)?;
    git(repo, &["update-ref", "-m", "mobius promote", branch, &commit, parent])?;
    Ok(commit)
}

/// Writes a commit of `text` as `file` on top of `parent` into the repository's objects
/// without moving any ref (a remote's branch is moved by a push). The new commit's sha.
pub fn write_commit(
    repo: &Path,
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
        Ok(commit.trim().to_owned())
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

/// The remote a repository mirrors (`git clone --mirror`: `remote.origin.mirror = true`), as
/// its URL; `None` for a repository on this machine, which a promotion commits to directly.
pub fn mirror_url(repo: &Path) -> Option<String> {
    let mirror = git(repo, &["config", "--get", "remote.origin.mirror"]).ok()?;
    if mirror.trim() != "true" {
        return None;
    }
    git(repo, &["config", "--get", "remote.origin.url"]).ok().map(|url| url.trim().to_owned()).filter(|u| !u.is_empty())
}

/// What the remote did with a pushed ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The ref moved.
    Done,
    /// The ref was not where it was expected (someone pushed meanwhile, or the branch exists
    /// already): nothing moved. Git's reason (`stale info`, `fetch first`).
    Moved(String),
    /// The remote refused the update (a protected branch, a hook): nothing moved. Its reason.
    Refused(String),
}

/// Pushes `commit` to `url` as `branch` (a full ref) only if the remote's `branch` is at
/// `expected` (`None`: only if it does not exist) — `--force-with-lease` with an explicit
/// value, which the remote checks again when it takes the update — reaching it with `access`
/// (credentials through the environment, never in argv). `commit` `None` deletes the branch.
pub fn push(
    repo: &Path,
    url: &str,
    branch: &str,
    commit: Option<&str>,
    expected: Option<&str>,
    access: &Access,
) -> Result<Pushed, GitError> {
    let lease = format!("--force-with-lease={branch}:{}", expected.unwrap_or_default());
    let refspec = format!("{}:{branch}", commit.unwrap_or_default());
    let args = ["-c", "credential.interactive=never", "push", "--porcelain", &lease, url, &refspec];
    let failed = |message: String| GitError {
        repository: repo.display().to_string(),
        command: "push".to_owned(),
        message: message.replace(url, &mobius_runs::git::shown_url(url)),
    };
    let mut command = Command::new("git");
    command.arg("-C").arg(repo).args(args).env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
    let key = access.apply(&mut command).map_err(|e| failed(format!("cannot write the SSH key file: {e}")))?;
    let out = command.output().map_err(|e| failed(format!("cannot run git: {e}")));
    drop(key);
    let out = out?;
    // `--porcelain`: one line per ref, `!` first when it was not updated, then
    // `[rejected] (why)` (checked here) or `[remote rejected] (why)` (refused there).
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = stdout.lines().find(|l| l.starts_with('!')) {
        let summary = line.split('\t').nth(2).unwrap_or(line).trim();
        let why = summary.split_once('(').map_or(summary, |(_, why)| why.trim_end_matches(')')).to_owned();
        // The remote checks the old value again under its ref lock: a push that won there is
        // a move too, not a refusal.
        let lost_race = why.contains("lock") || why.contains("failed to update ref");
        let refused = summary.starts_with("[remote rejected]") && !lost_race;
        return Ok(if refused { Pushed::Refused(why) } else { Pushed::Moved(why) });
    }
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let first = said.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
        return Err(failed(if first.is_empty() { format!("exited with {}", out.status) } else { first }));
    }
    Ok(Pushed::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) -> String {
        let env = [
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
            ("GIT_AUTHOR_NAME", "Dev"),
            ("GIT_AUTHOR_EMAIL", "dev@example.com"),
            ("GIT_COMMITTER_NAME", "Dev"),
            ("GIT_COMMITTER_EMAIL", "dev@example.com"),
        ];
        git_with(dir, args, &env, None).unwrap().trim().to_owned()
    }

    #[test]
    fn a_push_moves_the_remote_branch_only_from_where_it_was_expected() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, bare, mirror) = (tmp.path().join("work"), tmp.path().join("bare.git"), tmp.path().join("mirror"));
        std::fs::create_dir_all(&work).unwrap();
        run(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("a"), "1").unwrap();
        run(&work, &["add", "-A"]);
        run(&work, &["commit", "-qm", "one"]);
        run(tmp.path(), &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
        run(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
        run(tmp.path(), &["clone", "-q", "--mirror", bare.to_str().unwrap(), mirror.to_str().unwrap()]);
        let url = bare.display().to_string();
        assert_eq!(mirror_url(&mirror).as_deref(), Some(url.as_str()));
        assert_eq!(mirror_url(&work), None, "a clone on this machine is no mirror");

        let access = Access::anonymous(tmp.path());
        let author = Author { name: "ci".into(), email: "ci@mobius.invalid".into() };
        let parent = resolve(&mirror, "refs/heads/main").unwrap();
        let commit = write_commit(&mirror, &parent, "env.yaml", "x: 1\n", &author, "Promote\n").unwrap();
        assert_eq!(resolve(&mirror, "refs/heads/main").unwrap(), parent, "no ref moves in the mirror");

        // Someone pushes first: the lease on `parent` fails, nothing moves.
        std::fs::write(work.join("a"), "2").unwrap();
        run(&work, &["commit", "-qam", "two"]);
        run(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
        let theirs = run(&work, &["rev-parse", "HEAD"]);
        let moved = push(&mirror, &url, "refs/heads/main", Some(&commit), Some(&parent), &access).unwrap();
        assert!(matches!(&moved, Pushed::Moved(why) if why == "stale info"), "{moved:?}");
        assert_eq!(run(&bare, &["rev-parse", "main"]), theirs);

        // On top of theirs: it lands.
        let commit = write_commit(&mirror, &theirs, "env.yaml", "x: 1\n", &author, "Promote\n");
        assert!(commit.is_err(), "the mirror has not fetched theirs yet");
        run(&mirror, &["fetch", "-q", "origin"]);
        let commit = write_commit(&mirror, &theirs, "env.yaml", "x: 1\n", &author, "Promote\n").unwrap();
        assert_eq!(
            push(&mirror, &url, "refs/heads/main", Some(&commit), Some(&theirs), &access).unwrap(),
            Pushed::Done
        );
        assert_eq!(run(&bare, &["rev-parse", "main"]), commit);
        assert_eq!(run(&bare, &["show", "main:env.yaml"]), "x: 1");

        // A new branch only where none is; deleted only from the commit pushed.
        let review = "refs/heads/mobius/promote/shop-production-aaaaaaaaaaaa";
        assert_eq!(push(&mirror, &url, review, Some(&commit), None, &access).unwrap(), Pushed::Done);
        assert!(matches!(push(&mirror, &url, review, Some(&theirs), None, &access).unwrap(), Pushed::Moved(_)));
        assert!(matches!(push(&mirror, &url, review, None, Some(&theirs), &access).unwrap(), Pushed::Moved(_)));
        assert_eq!(push(&mirror, &url, review, None, Some(&commit), &access).unwrap(), Pushed::Done);
        assert_eq!(run(&bare, &["for-each-ref", "refs/heads/mobius"]), "");

        // A branch the remote protects: refused, with its reason.
        let hook = bare.join("hooks/pre-receive");
        std::fs::write(&hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let next = write_commit(&mirror, &theirs, "env.yaml", "x: 2\n", &author, "Promote\n").unwrap();
        run(&mirror, &["fetch", "-q", "origin"]);
        let refused = push(&mirror, &url, "refs/heads/main", Some(&next), Some(&commit), &access);
        assert!(matches!(&refused, Ok(Pushed::Refused(why)) if why == "pre-receive hook declined"), "{refused:?}");
        assert_eq!(run(&bare, &["rev-parse", "main"]), commit);

        // An unreachable remote is an error naming the push.
        let gone = tmp.path().join("gone.git").display().to_string();
        let error = push(&mirror, &gone, "refs/heads/main", Some(&next), Some(&commit), &access).unwrap_err();
        assert_eq!(error.command, "push");
    }
}
