//! Keeping an agent's store in step with the server's around a remote job, so that a job on
//! an agent downloads the artifacts and restores the caches the run made on the server, and
//! the server (and later jobs) see what the agent uploaded and saved.
//!
//! A store ([`crate::artifacts`], [`crate::cache`]) is small JSON **records** (an artifact's
//! [`ArtifactRecord`], a cache's [`CacheEntry`]) over **blobs** named by the SHA-256 of their
//! content. So the two stores are synced as records by relative path and blobs by digest, and
//! the protocol the agent and the server build with these functions is:
//!
//! 1. Before the job, the server sends the records the job may read, [`list_records`] of its
//!    [`RecordScope::of`] (the run's artifacts; the caches of the run's branch and default
//!    branch). The agent computes [`referenced_blobs`], asks for the [`missing_blobs`] of its
//!    own store, fetches each ([`read_blob`] on the server), stores it with [`write_blob`]
//!    (which checks the digest), then [`write_records`] what it received
//!    ([`Received::FromServer`]). It keeps the list it received.
//! 2. The job runs ([`crate::engine::run_job`]) with the agent's store.
//! 3. After the job, the agent lists its records again and keeps the [`new_records`]: what the
//!    job uploaded or saved. It sends their [`referenced_blobs`]; the server answers with its
//!    [`missing_blobs`]; the agent uploads each ([`read_blob`] here, [`write_blob`] there),
//!    then the new records, which the server writes with [`Received::FromAgent`].
//!
//! A record is written only once every blob it names is in the store, so a reader never finds
//! a record whose files are missing; blobs first, records last. Records are checked before they
//! are written: a path inside the job's scope (an agent's job writes its run's artifacts and
//! its branch's caches, never the default branch's, as on GitHub), content that parses, file
//! paths that stay inside their root, an artifact's digest that matches its manifest, a cache
//! entry stored under its key's hash. Cache entries are immutable: one that exists is kept.
//! Sizes are the transport's to limit (a blob is read and written whole).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::artifacts::{self, ArtifactRecord, FileEntry, manifest_digest, safe_relative};
use crate::cache::{self, CacheEntry};
use crate::engine::RemoteJob;

/// One record of a store: its path relative to the store's root (`/`-separated, e.g.
/// `artifacts/runs/42/app.json`) and its bytes (base64 in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Relative to the store's root.
    pub path: String,
    /// The record's JSON, as stored.
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// The records one job sees and makes: its run's artifacts, its repository's caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordScope {
    /// The run (`artifacts/runs/<run id>/`).
    pub run_id: u64,
    /// The cache scope: its branch is read and written, its default branch only read.
    pub cache: cache::Scope,
}

impl RecordScope {
    /// The scope of a remote job.
    pub fn of(job: &RemoteJob) -> RecordScope {
        RecordScope { run_id: job.run_id, cache: job.cache_scope() }
    }

    /// The directories (relative, `/`-separated) of the records the job may read, and, when
    /// `writing`, of those an agent's job may make.
    fn dirs(&self, writing: bool) -> Vec<String> {
        let root = Path::new("");
        let relative = |dir: PathBuf| artifacts::relative(&dir, root);
        let mut dirs = vec![
            relative(artifacts::run_dir(root, self.run_id)),
            relative(cache::scope_dir(root, &self.cache.repository, &self.cache.branch)),
        ];
        let default = relative(cache::scope_dir(root, &self.cache.repository, &self.cache.default_branch));
        if !writing && !dirs.contains(&default) {
            dirs.push(default);
        }
        dirs
    }
}

/// Where records being written come from, which decides what they may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The agent writes what the server sent: any record the job may read.
    FromServer,
    /// The server writes what an agent's job made: its run's artifacts and its branch's
    /// caches only.
    FromAgent,
}

/// Why records or blobs cannot be listed, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A file-system operation failed.
    #[error("{what} `{}`", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Not a blob's name: 64 lowercase hex digits.
    #[error("`{digest}` is not a SHA-256 digest (64 lowercase hex digits)")]
    BadDigest {
        /// As given.
        digest: String,
    },
    /// A blob whose content has another digest than its name.
    #[error("the content of blob {digest} has digest {actual}")]
    DigestMismatch {
        /// Its name.
        digest: String,
        /// What its content hashes to.
        actual: String,
    },
    /// A record outside the job's scope, or whose path is not a record's.
    #[error("`{path}` is not a record this job may {}", if *writing { "write" } else { "read" })]
    OutOfScope {
        /// The record's path.
        path: String,
        /// Whether an agent's job wrote it.
        writing: bool,
    },
    /// A record that is not JSON of its kind.
    #[error("record `{path}` is not valid")]
    Malformed {
        /// The record's path.
        path: String,
        /// What JSON says.
        source: serde_json::Error,
    },
    /// A record that parses but contradicts itself or its path.
    #[error("record `{path}`: {why}")]
    Invalid {
        /// The record's path.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A record naming a blob the store lacks: its blobs must be written first.
    #[error("record `{path}` names blob {digest}, which the store lacks")]
    MissingBlob {
        /// The record's path.
        path: String,
        /// The blob.
        digest: String,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SyncError {
    let path = path.to_owned();
    move |source| SyncError::Io { what, path, source }
}

/// The records of `scope` in `store` that the job may read, by path.
pub fn list_records(store: &Path, scope: &RecordScope) -> Result<Vec<Record>, SyncError> {
    let mut records = Vec::new();
    for dir in scope.dirs(false) {
        let full = store.join(&dir);
        let entries = match fs::read_dir(&full) {
            Ok(entries) => entries,
            // Nothing was recorded there yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("cannot list", &full)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("cannot list", &full))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temporary files of a write in progress start with a dot.
            if name.starts_with('.') || !name.ends_with(".json") || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let bytes = fs::read(entry.path()).map_err(io_err("cannot read", &entry.path()))?;
            records.push(Record { path: format!("{dir}/{name}"), bytes });
        }
    }
    records.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(records)
}

/// The records of `after` that are not in `before` as they are: what a job made or changed.
pub fn new_records(before: &[Record], after: &[Record]) -> Vec<Record> {
    after.iter().filter(|record| !before.contains(record)).cloned().collect()
}

/// The files a record names, once its path and content are checked against `scope`.
fn checked(record: &Record, scope: &RecordScope, writing: bool) -> Result<Vec<FileEntry>, SyncError> {
    let path = &record.path;
    let out_of_scope = || SyncError::OutOfScope { path: path.clone(), writing };
    let (dir, file) = path.rsplit_once('/').ok_or_else(out_of_scope)?;
    let stem = file.strip_suffix(".json").filter(|s| !s.is_empty() && !s.starts_with('.')).ok_or_else(out_of_scope)?;
    let dirs = scope.dirs(writing);
    let invalid = |why: String| SyncError::Invalid { path: path.clone(), why };
    let malformed = |source| SyncError::Malformed { path: path.clone(), source };
    let files = if dirs.first().is_some_and(|d| d == dir) {
        artifacts::check_name(stem).map_err(|_| out_of_scope())?;
        let artifact: ArtifactRecord = serde_json::from_slice(&record.bytes).map_err(malformed)?;
        if artifact.name != stem {
            return Err(invalid(format!("it is artifact `{}`", artifact.name)));
        }
        if manifest_digest(&artifact.files) != artifact.digest {
            return Err(invalid("its digest does not match its files".into()));
        }
        artifact.files
    } else if dirs.iter().skip(1).any(|d| d == dir) {
        let entry: CacheEntry = serde_json::from_slice(&record.bytes).map_err(malformed)?;
        if hex::encode(Sha256::digest(entry.key.as_bytes())) != stem {
            return Err(invalid(format!("it is the entry of another key, `{}`", entry.key)));
        }
        entry.files
    } else {
        return Err(out_of_scope());
    };
    for entry in &files {
        check_digest(&entry.sha256)?;
        let relative = entry.path.strip_prefix("~/").unwrap_or(&entry.path);
        if safe_relative(relative).is_none() || relative.is_empty() {
            return Err(invalid(format!("unsafe file path `{}`", entry.path)));
        }
    }
    Ok(files)
}

/// Writes records into `store`, each checked first (see the module doc); none is written if
/// one is refused. An artifact record replaces the one of its name (an upload again in the same
/// run); a cache entry that exists is kept. Every blob a record names must be in the store.
pub fn write_records(store: &Path, scope: &RecordScope, from: Received, records: &[Record]) -> Result<(), SyncError> {
    for (path, digest) in check_records(scope, from, records)? {
        if !blob_path(store, &digest).is_file() {
            return Err(SyncError::MissingBlob { path, digest });
        }
    }
    for record in records {
        // Checked above: a path of known directories and a plain file name.
        let path = store.join(&record.path);
        if record.path.starts_with("cache/") && path.exists() {
            continue;
        }
        let dir = path.parent().unwrap_or(store);
        fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        write_atomically(dir, &path, &record.bytes)?;
    }
    Ok(())
}

/// Checks records as [`write_records`] does before writing them; the blobs they name, as
/// (record path, digest) pairs in order.
pub fn check_records(
    scope: &RecordScope,
    from: Received,
    records: &[Record],
) -> Result<Vec<(String, String)>, SyncError> {
    let writing = from == Received::FromAgent;
    let mut named = Vec::new();
    for record in records {
        for file in checked(record, scope, writing)? {
            named.push((record.path.clone(), file.sha256));
        }
    }
    Ok(named)
}

/// The SHA-256 of `bytes`, as blobs are named.
pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Refuses a name that is not a digest, or content whose digest is another.
pub fn check_blob(digest: &str, bytes: &[u8]) -> Result<(), SyncError> {
    check_digest(digest)?;
    verify(digest, bytes)
}

/// Refuses a name that is not a digest.
pub fn check_digest(digest: &str) -> Result<(), SyncError> {
    let hex = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex { Ok(()) } else { Err(SyncError::BadDigest { digest: digest.to_owned() }) }
}

/// The blobs the records name, by digest. Records that do not parse are refused.
pub fn referenced_blobs(records: &[Record]) -> Result<BTreeSet<String>, SyncError> {
    #[derive(Deserialize)]
    struct Files {
        files: Vec<FileEntry>,
    }
    let mut digests = BTreeSet::new();
    for record in records {
        let parsed: Files = serde_json::from_slice(&record.bytes)
            .map_err(|source| SyncError::Malformed { path: record.path.clone(), source })?;
        for file in parsed.files {
            check_digest(&file.sha256)?;
            digests.insert(file.sha256);
        }
    }
    Ok(digests)
}

/// Which of `digests` the store lacks, in order.
pub fn missing_blobs<'d>(
    store: &Path,
    digests: impl IntoIterator<Item = &'d String>,
) -> Result<Vec<String>, SyncError> {
    let mut missing = Vec::new();
    for digest in digests {
        check_digest(digest)?;
        if !blob_path(store, digest).is_file() {
            missing.push(digest.clone());
        }
    }
    Ok(missing)
}

/// The content of blob `digest`, checked against it (a corrupt blob is not passed on).
pub fn read_blob(store: &Path, digest: &str) -> Result<Vec<u8>, SyncError> {
    check_digest(digest)?;
    let path = blob_path(store, digest);
    let bytes = fs::read(&path).map_err(io_err("cannot read blob", &path))?;
    verify(digest, &bytes)?;
    Ok(bytes)
}

/// Stores `bytes` as blob `digest`, refusing content whose SHA-256 is another. A blob that is
/// there already is kept (it has the same content).
pub fn write_blob(store: &Path, digest: &str, bytes: &[u8]) -> Result<(), SyncError> {
    check_digest(digest)?;
    verify(digest, bytes)?;
    let path = blob_path(store, digest);
    if path.is_file() {
        return Ok(());
    }
    let dir = store.join("blobs/sha256");
    fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
    write_atomically(&dir, &path, bytes)
}

fn blob_path(store: &Path, digest: &str) -> PathBuf {
    store.join("blobs/sha256").join(digest)
}

fn verify(digest: &str, bytes: &[u8]) -> Result<(), SyncError> {
    let actual = digest_of(bytes);
    if actual == digest { Ok(()) } else { Err(SyncError::DigestMismatch { digest: digest.to_owned(), actual }) }
}

/// Writes a temporary file in `dir` then renames it to `path`, so a reader never sees half a
/// file; the temporary name is unique among this process's writers too.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), SyncError> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".sync.{}.{n}", std::process::id()));
    fs::write(&temp, bytes).map_err(io_err("cannot write", &temp))?;
    fs::rename(&temp, path).map_err(|e| {
        let _ = fs::remove_file(&temp);
        io_err("cannot store", path)(e)
    })
}

/// A record's bytes as base64 in JSON.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
