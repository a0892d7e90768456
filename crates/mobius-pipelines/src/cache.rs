//! The store behind `actions/cache`: entries keyed by `(repository, branch scope, key)`.
//!
//! Layout under the store root: `cache/<repository>/<branch>/<sha256 of key>.json` holds a
//! [`CacheEntry`]; file contents are the shared blobs of [`crate::artifacts`]. As on GitHub, a
//! run restores from its own branch first, then from the default branch; within a scope the
//! exact key wins, then each `restore-keys` prefix in order, the newest entry first. Entries
//! are immutable: saving a key that already exists in the scope keeps the old entry.
//!
//! Paths are stored relative to the workspace, or as `~/…` under the job's home, so they are
//! restored into the next job's own directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::artifacts::{self, FileEntry, JobFiles, StoreError};

/// One saved cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The key it was saved under.
    pub key: String,
    /// When it was saved, in nanoseconds since the epoch: "newest first" for restore-keys.
    pub created: u64,
    /// Its files; `~/` paths are under the home directory, others under the workspace.
    pub files: Vec<FileEntry>,
}

/// Where a cache lives: a repository and a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `owner/name`.
    pub repository: String,
    /// The branch (ref name) of the run.
    pub branch: String,
    /// The repository's default branch, whose caches every branch may read.
    pub default_branch: String,
}

/// The outcome of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The key of the entry restored.
    pub key: String,
    /// Whether it is the primary key exactly (`cache-hit`).
    pub exact: bool,
}

/// A file-name-safe form of a repository or branch, injective enough for scoping.
fn safe(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("_{b:02x}")
            }
        })
        .collect()
}

/// Where the entries of a repository's branch are.
pub(crate) fn scope_dir(store: &Path, repository: &str, branch: &str) -> PathBuf {
    store.join("cache").join(safe(repository)).join(safe(branch))
}

fn entries(dir: &Path) -> Result<Vec<CacheEntry>, StoreError> {
    let mut out = Vec::new();
    let list = match fs::read_dir(dir) {
        Ok(list) => list,
        // Nothing was saved in this scope yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => return Err(StoreError::Io { what: "cannot list", path: dir.to_owned(), source }),
    };
    for item in list {
        let path = item.map_err(|source| StoreError::Io { what: "cannot list", path: dir.to_owned(), source })?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes =
            fs::read(&path).map_err(|source| StoreError::Io { what: "cannot read", path: path.clone(), source })?;
        let entry: CacheEntry =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Malformed { path: path.clone(), source })?;
        out.push(entry);
    }
    // Newest first, the key as a tie-break so the choice is deterministic.
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.key.cmp(&b.key)));
    Ok(out)
}

/// Finds the entry for `key` / `restore_keys` and writes its files back; `None` on a miss.
pub fn restore(
    store: &Path,
    scope: &Scope,
    key: &str,
    restore_keys: &[String],
    job: &JobFiles,
) -> Result<Option<Restored>, StoreError> {
    let mut branches = vec![scope.branch.as_str()];
    if scope.default_branch != scope.branch {
        branches.push(&scope.default_branch);
    }
    for branch in branches {
        let all = entries(&scope_dir(store, &scope.repository, branch))?;
        let found = all
            .iter()
            .find(|e| e.key == key)
            .or_else(|| restore_keys.iter().find_map(|prefix| all.iter().find(|e| e.key.starts_with(prefix.as_str()))));
        if let Some(entry) = found {
            for file in &entry.files {
                restore_file(store, file, job)?;
            }
            return Ok(Some(Restored { key: entry.key.clone(), exact: entry.key == key }));
        }
    }
    Ok(None)
}

fn restore_file(store: &Path, file: &FileEntry, job: &JobFiles) -> Result<(), StoreError> {
    let (base, rel) = match file.path.strip_prefix("~/") {
        Some(rest) => (&job.home, rest),
        None => (&job.workspace, file.path.as_str()),
    };
    let rel = artifacts::safe_relative(rel).ok_or_else(|| StoreError::Corrupt {
        path: PathBuf::from(&file.path),
        why: "unsafe path in cache entry".into(),
    })?;
    artifacts::restore_file(store, file, &base.join(rel), job)
}

/// Saves the files matched by `paths` under `key` in the run's branch scope. Returns `false`
/// when nothing was saved: the key exists already there, or no file matched.
pub fn save(store: &Path, scope: &Scope, key: &str, paths: &str, job: &JobFiles) -> Result<bool, StoreError> {
    let (workspace, home) = (&job.workspace, &job.home);
    let dir = scope_dir(store, &scope.repository, &scope.branch);
    let entry_path = dir.join(format!("{}.json", hex::encode(Sha256::digest(key.as_bytes()))));
    if entry_path.exists() {
        return Ok(false);
    }
    let (found, _) = artifacts::collect(paths, job)?;
    if found.is_empty() {
        return Ok(false);
    }
    let mut files = Vec::new();
    for file in &found {
        let stored = if let Ok(rel) = file.strip_prefix(workspace) {
            artifacts::relative(rel, Path::new(""))
        } else if let Ok(rel) = file.strip_prefix(home) {
            format!("~/{}", artifacts::relative(rel, Path::new("")))
        } else {
            // Outside both roots there is nowhere safe to restore it to.
            continue;
        };
        files.push(artifacts::put_blob(store, stored, file, job)?);
    }
    // A clock before 1970 makes the entry the oldest, which only matters for `restore-keys`.
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let entry = CacheEntry { key: key.to_owned(), created, files };
    fs::create_dir_all(&dir).map_err(|source| StoreError::Io { what: "cannot create", path: dir.clone(), source })?;
    let json = serde_json::to_vec_pretty(&entry)
        .map_err(|source| StoreError::Malformed { path: entry_path.clone(), source })?;
    fs::write(&entry_path, json).map_err(|source| StoreError::Io { what: "cannot write", path: entry_path, source })?;
    Ok(true)
}
