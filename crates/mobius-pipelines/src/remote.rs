//! Action repositories, fetched with `git` and cached by commit.
//!
//! `uses: owner/repo[/path]@ref` names a repository at `<base URL>/owner/repo` (GitHub by
//! default; a mirror, GitHub Enterprise or a local directory of bare repositories otherwise;
//! any transport `git` speaks). [`ActionCache::fetch`] resolves the ref with `git ls-remote`
//! (a tag wins over a branch of the same name, as on GitHub; a full-length commit SHA is taken
//! as is), and when that commit is not in the cache yet fetches it into a bare mirror and
//! exports its tree:
//!
//! ```text
//! <dir>/git/<owner>/<repo>.git          bare mirror, only what was fetched (depth 1)
//! <dir>/trees/<owner>/<repo>/<sha>/     the tree at that commit, read-only (files 0444, dirs 0555)
//! ```
//!
//! Trees are shared by every run that uses the data directory and never change once written
//! (written to a temporary name, then renamed). A fetched commit is verified: the SHA asked
//! for (or resolved) must be a commit the mirror holds after the fetch, so a branch or tag
//! named like a SHA cannot stand in for it. With [`ActionCache::require_pinned`], only
//! full-length SHAs are accepted.
//!
//! This is the crate's one place that reaches the network, and only through `git`
//! (`GIT_TERMINAL_PROMPT=0`: a repository that wants credentials fails instead of asking).
//! Fetches of one cache are serialised within the process and across processes (a lock file);
//! reading a cached tree takes no lock.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::process::Command;

/// GitHub, where `owner/repo` actions live unless told otherwise.
pub const DEFAULT_ACTIONS_URL: &str = "https://github.com";

/// How long a fetch (or `ls-remote`) may take before it is given up.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// `uses: owner/repo[/path]@ref`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionRef {
    /// `owner/repo`.
    pub repo: String,
    /// The directory of the action in the repository (`""` for its root).
    pub path: String,
    /// The tag, branch or commit SHA after `@`.
    pub git_ref: String,
}

impl ActionRef {
    /// Parses a remote `uses:` value; `None` for anything else (`./local`, `docker://…`, a
    /// value without `@ref`, names with characters a repository name cannot have).
    pub fn parse(uses: &str) -> Option<ActionRef> {
        let (name, git_ref) = uses.split_once('@')?;
        let mut parts = name.split('/');
        let (owner, repo) = (parts.next()?, parts.next()?);
        let path: Vec<&str> = parts.collect();
        let name_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        let ref_ok = !git_ref.is_empty()
            && !git_ref.starts_with('-')
            && !git_ref.contains("..")
            && git_ref.chars().all(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '~' | '^' | ':' | '\\'));
        if !name_ok(owner) || !name_ok(repo) || !ref_ok || !path.iter().all(|p| name_ok(p)) {
            return None;
        }
        Some(ActionRef { repo: format!("{owner}/{repo}"), path: path.join("/"), git_ref: git_ref.to_owned() })
    }

    /// Whether the ref is a full-length commit SHA (SHA-1 or SHA-256 object names).
    pub fn is_pinned(&self) -> bool {
        is_commit_sha(&self.git_ref)
    }
}

/// A full-length hexadecimal object name.
pub fn is_commit_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Why an action repository could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `--require-pinned-actions` and the ref is a tag or branch.
    #[error(
        "`{repo}@{git_ref}` is not pinned: pinned actions are required, so use a full-length commit SHA instead of \
         a tag or branch"
    )]
    Unpinned { repo: String, git_ref: String },
    /// `git` could not be started.
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    /// A git command failed; `stderr` is what it said.
    #[error("git {what} for {repo} failed: {stderr}")]
    Git { what: &'static str, repo: String, stderr: String },
    /// A git command ran past its time limit (5 minutes).
    #[error("git {what} for {repo} took longer than {} s", GIT_TIMEOUT.as_secs())]
    TimedOut { what: &'static str, repo: String },
    /// No tag or branch of that name.
    #[error("{repo} has no tag or branch `{git_ref}`")]
    NoSuchRef { repo: String, git_ref: String },
    /// The fetched repository does not have the commit asked for.
    #[error("{repo}: `{sha}` is not a commit of the repository")]
    NotACommit { repo: String, sha: String },
    /// The cache directory could not be written.
    #[error("cannot write the action cache at {}", path.display())]
    Cache { path: PathBuf, source: std::io::Error },
}

/// A repository's tree at one commit, in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The commit.
    pub sha: String,
    /// Its tree (read-only).
    pub dir: PathBuf,
    /// Whether this call fetched it (`false`: it was in the cache).
    pub fetched: bool,
}

/// One cached tree, as `mobius actions cache list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAction {
    /// `owner/repo`.
    pub repo: String,
    /// The commit.
    pub sha: String,
    /// Bytes of its files.
    pub bytes: u64,
    /// When a run last used it.
    pub last_used: SystemTime,
}

/// The action cache of a data directory (see the module docs). Cheap to clone; clones share
/// the lock that serialises fetches.
#[derive(Debug, Clone)]
pub struct ActionCache {
    dir: PathBuf,
    base_url: String,
    require_pinned: bool,
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl ActionCache {
    /// A cache in `dir` fetching from `base_url` (`https://github.com`, `file:///srv/actions`…).
    pub fn new(dir: impl Into<PathBuf>, base_url: impl Into<String>) -> ActionCache {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        ActionCache { dir: dir.into(), base_url, require_pinned: false, fetching: Arc::default() }
    }

    /// Refuses tags and branches: only full-length commit SHAs are fetched.
    pub fn require_pinned(mut self, yes: bool) -> ActionCache {
        self.require_pinned = yes;
        self
    }

    /// Whether only pinned actions are accepted.
    pub fn requires_pinned(&self) -> bool {
        self.require_pinned
    }

    /// The base URL repositories are fetched from.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Where the cached trees are; a sandbox binds it read-only for the steps.
    pub fn trees_dir(&self) -> PathBuf {
        self.dir.join("trees")
    }

    fn url(&self, repo: &str) -> String {
        format!("{}/{repo}", self.base_url)
    }

    /// The tree of `repo` (`owner/name`) at `git_ref`, fetched unless cached.
    pub async fn fetch(&self, repo: &str, git_ref: &str) -> Result<Fetched, FetchError> {
        let pinned = is_commit_sha(git_ref);
        if self.require_pinned && !pinned {
            return Err(FetchError::Unpinned { repo: repo.to_owned(), git_ref: git_ref.to_owned() });
        }
        let sha = if pinned { git_ref.to_owned() } else { self.resolve(repo, git_ref).await? };
        let tree = self.trees_dir().join(repo).join(&sha);
        if tree.is_dir() {
            touch(&tree);
            return Ok(Fetched { sha, dir: tree, fetched: false });
        }
        let _in_process = self.fetching.lock().await;
        let _across_processes = self.lock_file().await?;
        if tree.is_dir() {
            return Ok(Fetched { sha, dir: tree, fetched: false });
        }
        let mirror = self.dir.join("git").join(format!("{repo}.git"));
        if !mirror.join("HEAD").is_file() {
            std::fs::create_dir_all(&mirror).map_err(|source| FetchError::Cache { path: mirror.clone(), source })?;
            self.git(repo, "init", &["init", "--bare", "--quiet"], Some(&mirror)).await?;
        }
        let url = self.url(repo);
        self.git(repo, "fetch", &["fetch", "--quiet", "--no-tags", "--depth=1", &url, &sha], Some(&mirror)).await?;
        let found = self
            .git(repo, "rev-parse", &["rev-parse", "--verify", "--quiet", &format!("{sha}^{{commit}}")], Some(&mirror))
            .await
            .unwrap_or_default();
        if found.trim() != sha {
            return Err(FetchError::NotACommit { repo: repo.to_owned(), sha });
        }
        self.export(repo, &mirror, &sha, &tree).await?;
        Ok(Fetched { sha, dir: tree, fetched: true })
    }

    /// The commit a tag (peeled) or, failing that, a branch names.
    async fn resolve(&self, repo: &str, git_ref: &str) -> Result<String, FetchError> {
        let url = self.url(repo);
        let listed = self.git(repo, "ls-remote", &["ls-remote", "--", &url, git_ref], None).await?;
        let wanted = |name: &str| listed.lines().find_map(|l| l.split_once('\t').filter(|(_, n)| *n == name));
        let tag = format!("refs/tags/{git_ref}");
        let found = wanted(&format!("{tag}^{{}}"))
            .or_else(|| wanted(&tag))
            .or_else(|| wanted(&format!("refs/heads/{git_ref}")));
        match found {
            Some((sha, _)) => Ok(sha.to_owned()),
            None => Err(FetchError::NoSuchRef { repo: repo.to_owned(), git_ref: git_ref.to_owned() }),
        }
    }

    /// Writes the tree of `sha` to `tree`, read-only, through a temporary directory.
    async fn export(&self, repo: &str, mirror: &Path, sha: &str, tree: &Path) -> Result<(), FetchError> {
        let cache_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FetchError::Cache { path, source }
        };
        let parent = tree.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(cache_error(parent))?;
        let staging = parent.join(format!(".{sha}.partial"));
        if staging.exists() {
            make_writable(&staging);
            std::fs::remove_dir_all(&staging).map_err(cache_error(&staging))?;
        }
        std::fs::create_dir(&staging).map_err(cache_error(&staging))?;
        let mut archive = git_command(&["archive", "--format=tar", sha], Some(mirror))
            .stdout(Stdio::piped())
            .spawn()
            .map_err(FetchError::Spawn)?;
        let tar_input: Stdio = archive
            .stdout
            .take()
            .ok_or_else(|| FetchError::Git { what: "archive", repo: repo.to_owned(), stderr: "no output".into() })?
            .try_into()
            .map_err(FetchError::Spawn)?;
        let untar = Command::new("tar")
            .args(["-x", "--no-same-owner", "-f", "-", "-C"])
            .arg(&staging)
            .stdin(tar_input)
            .stderr(Stdio::piped())
            .output();
        let (archived, untarred) = tokio::join!(archive.wait_with_output(), untar);
        let archived = archived.map_err(FetchError::Spawn)?;
        let untarred = untarred.map_err(FetchError::Spawn)?;
        if !archived.status.success() || !untarred.status.success() {
            let stderr = format!(
                "{}{}",
                String::from_utf8_lossy(&archived.stderr).trim(),
                String::from_utf8_lossy(&untarred.stderr).trim()
            );
            return Err(FetchError::Git { what: "archive", repo: repo.to_owned(), stderr });
        }
        make_read_only(&staging);
        std::fs::rename(&staging, tree).map_err(cache_error(tree))
    }

    /// Holds the cache's lock file, waiting for another process's fetch to end.
    async fn lock_file(&self) -> Result<std::fs::File, FetchError> {
        let path = self.dir.join("fetch.lock");
        std::fs::create_dir_all(&self.dir).map_err(|source| FetchError::Cache { path: self.dir.clone(), source })?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| FetchError::Cache { path: path.clone(), source })?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(std::fs::TryLockError::Error(source)) => return Err(FetchError::Cache { path, source }),
            }
        }
    }

    /// Runs git (in `dir` as its git directory, if given) and returns its stdout.
    async fn git(
        &self,
        repo: &str,
        what: &'static str,
        args: &[&str],
        dir: Option<&Path>,
    ) -> Result<String, FetchError> {
        let run = git_command(args, dir).stdout(Stdio::piped()).stderr(Stdio::piped()).output();
        let output = match tokio::time::timeout(GIT_TIMEOUT, run).await {
            Ok(output) => output.map_err(FetchError::Spawn)?,
            Err(_) => return Err(FetchError::TimedOut { what, repo: repo.to_owned() }),
        };
        if !output.status.success() {
            // Git's first line says what failed; the rest is advice ("Please make sure…").
            let text = String::from_utf8_lossy(&output.stderr);
            let stderr = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message").to_owned();
            return Err(FetchError::Git { what, repo: repo.to_owned(), stderr });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Every cached tree, by repository and commit.
    pub fn list(&self) -> std::io::Result<Vec<CachedAction>> {
        let mut found = Vec::new();
        let trees = self.trees_dir();
        for owner in read_dirs(&trees)? {
            for repo in read_dirs(&owner)? {
                for tree in read_dirs(&repo)? {
                    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    let sha = name(&tree);
                    if !is_commit_sha(&sha) {
                        continue;
                    }
                    let last_used =
                        std::fs::metadata(&tree).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                    found.push(CachedAction {
                        repo: format!("{}/{}", name(&owner), name(&repo)),
                        sha,
                        bytes: size(&tree),
                        last_used,
                    });
                }
            }
        }
        found.sort_by(|a, b| (&a.repo, &a.sha).cmp(&(&b.repo, &b.sha)));
        Ok(found)
    }

    /// Removes the trees no run used within `unused_for` (all of them with zero), and the
    /// mirrors of repositories left without a tree; returns what was removed.
    pub fn prune(&self, unused_for: Duration) -> std::io::Result<Vec<CachedAction>> {
        let now = SystemTime::now();
        let mut removed = Vec::new();
        for cached in self.list()? {
            let age = now.duration_since(cached.last_used).unwrap_or_default();
            if age < unused_for {
                continue;
            }
            let tree = self.trees_dir().join(&cached.repo).join(&cached.sha);
            make_writable(&tree);
            std::fs::remove_dir_all(&tree)?;
            removed.push(cached);
        }
        for cached in &removed {
            let repo = self.trees_dir().join(&cached.repo);
            if read_dirs(&repo).map(|left| left.is_empty()).unwrap_or(false) {
                std::fs::remove_dir_all(&repo)?;
                let mirror = self.dir.join("git").join(format!("{}.git", cached.repo));
                if mirror.exists() {
                    std::fs::remove_dir_all(&mirror)?;
                }
            }
        }
        Ok(removed)
    }
}

/// A git command with nothing of the caller's git setup that would prompt or redirect it.
fn git_command(args: &[&str], git_dir: Option<&Path>) -> Command {
    let mut command = Command::new("git");
    if let Some(dir) = git_dir {
        command.arg("--git-dir").arg(dir);
    }
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The subdirectories of `dir` (none if it does not exist).
fn read_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut dirs = Vec::new();
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    dirs.push(entry.path());
                }
            }
            dirs.sort();
            Ok(dirs)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// Bytes of the files under `dir`.
fn size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Marks a tree as used now (its directory's modification time), for `prune`.
fn touch(dir: &Path) {
    // A tree the cache cannot touch (another user's) is still usable; prune then sees it older.
    if let Ok(file) = std::fs::File::open(dir) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Files 0444 (0555 if executable), directories 0555; links left as they are.
fn make_read_only(dir: &Path) {
    set_modes(dir, &|mode, is_dir| if is_dir || mode & 0o100 != 0 { 0o555 } else { 0o444 });
}

/// Directories writable by their owner again, so they can be removed.
fn make_writable(dir: &Path) {
    set_modes(dir, &|mode, is_dir| if is_dir { 0o755 } else { mode });
}

fn set_modes(dir: &Path, mode_for: &dyn Fn(u32, bool) -> u32) {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &Path, is_dir: bool| {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let mode = mode_for(meta.permissions().mode() & 0o777, is_dir);
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        }
    };
    // Children first while the directory is still writable (making it writable comes first).
    set(dir, true);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => set_modes(&entry.path(), mode_for),
                Ok(t) if t.is_file() => set(&entry.path(), false),
                _ => {}
            }
        }
    }
    set(dir, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_refs() {
        let r = ActionRef::parse("actions/github-script@v7").unwrap();
        assert_eq!((r.repo.as_str(), r.path.as_str(), r.git_ref.as_str()), ("actions/github-script", "", "v7"));
        let r = ActionRef::parse("github/codeql-action/init@v3").unwrap();
        assert_eq!((r.repo.as_str(), r.path.as_str()), ("github/codeql-action", "init"));
        assert!(!r.is_pinned());
        let sha = "8f4b7f84864484a7bf31766abe9204da3cbe65b3";
        assert!(ActionRef::parse(&format!("a/b@{sha}")).unwrap().is_pinned());
        for bad in
            ["./local", "docker://alpine", "a/b", "a@v1", "a/b@", "a/../b@v1", "a/b@-x", "a/b@v1 --x", "a b/c@v1"]
        {
            assert_eq!(ActionRef::parse(bad), None, "{bad}");
        }
        assert!(!is_commit_sha("8F4B7F84864484A7BF31766ABE9204DA3CBE65B3"));
        assert!(!is_commit_sha("8f4b7f8"));
    }
}
