//! The content-addressed store behind `actions/upload-artifact` and
//! `actions/download-artifact`, and the file collection shared with [`crate::cache`].
//!
//! Layout under the store root: `blobs/sha256/<hex>` holds each distinct file content once;
//! `artifacts/runs/<run id>/<name>.json` holds an [`ArtifactRecord`]. Artifacts are scoped per
//! run, as on GitHub: a download resolves a name to the record uploaded in the same run.
//!
//! **The artifact digest** (what the delivery issue deploys) is `sha256:<hex>` of the
//! canonical manifest: one line `path \0 sha256-hex \0 size \n` per file, lines sorted by
//! path bytes, paths relative to the artifact root with `/` separators. Only paths and
//! contents enter it — no mtimes, modes or walk order — so the same files always give the
//! same digest and any changed byte, size or name gives another.

mod job_files;

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use job_files::JobFiles;

/// Why a store operation failed; the message is shown in the step's log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
    /// A `path:` pattern is not a valid glob.
    #[error("invalid path pattern `{pattern}`")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why globset refused it.
        source: globset::Error,
    },
    /// `if-no-files-found: error` and nothing matched.
    #[error("no files were found with the provided path: {0}")]
    NoFiles(String),
    /// An artifact name that could escape the store or is empty.
    #[error("invalid artifact name `{0}`: it must be non-empty and contain no `/`, `\\` or `..`")]
    BadName(String),
    /// No artifact of that name in this run.
    #[error("artifact `{0}` not found in this run")]
    NotFound(String),
    /// A stored record or manifest is not what the store wrote.
    #[error("corrupt store entry `{}`: {why}", path.display())]
    Corrupt {
        /// The entry.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A stored record or cache entry is not valid JSON of its kind (or, when writing, cannot
    /// be encoded).
    #[error("corrupt store entry `{}`", path.display())]
    Malformed {
        /// The entry.
        path: PathBuf,
        /// What JSON says is wrong.
        source: serde_json::Error,
    },
    /// A path that leads out of the job's directories while its steps are sandboxed.
    #[error("`{}` is outside the job's workspace, home and temp directories (steps are sandboxed)", path.display())]
    Outside {
        /// The path as named (or as found).
        path: PathBuf,
    },
    /// An input has a value the action does not accept.
    #[error("invalid input `{name}`: {why}")]
    Input {
        /// The input.
        name: &'static str,
        /// Why.
        why: String,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { what, path, source }
}

/// One file of an artifact or cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators.
    pub path: String,
    /// Hex SHA-256 of the content: the blob's name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// An uploaded artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// Its name.
    pub name: String,
    /// `sha256:<hex>` of the canonical manifest (see the module docs).
    pub digest: String,
    /// Its files, sorted by path.
    pub files: Vec<FileEntry>,
}

/// What to do when `path:` matches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfNoFilesFound {
    /// Succeed with a warning, uploading nothing (GitHub's default).
    #[default]
    Warn,
    /// Fail the step.
    Error,
    /// Succeed silently.
    Ignore,
}

impl IfNoFilesFound {
    /// Parses the input; empty means the default.
    pub fn parse(text: &str) -> Result<IfNoFilesFound, StoreError> {
        match text.trim() {
            "" | "warn" => Ok(IfNoFilesFound::Warn),
            "error" => Ok(IfNoFilesFound::Error),
            "ignore" => Ok(IfNoFilesFound::Ignore),
            other => Err(StoreError::Input {
                name: "if-no-files-found",
                why: format!("`{other}` is not warn, error or ignore"),
            }),
        }
    }
}

/// The canonical manifest digest of `files` (sorted here, so order does not matter).
pub fn manifest_digest(files: &[FileEntry]) -> String {
    let mut sorted: Vec<&FileEntry> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut hasher = Sha256::new();
    for file in sorted {
        hasher.update(file.path.as_bytes());
        hasher.update(b"\0");
        hasher.update(file.sha256.as_bytes());
        hasher.update(b"\0");
        hasher.update(file.size.to_string().as_bytes());
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Stores the bytes of `source`, a file of the job, as a blob under `store` and describes it as
/// `path`.
pub fn put_blob(store: &Path, path: String, source: &Path, job: &JobFiles) -> Result<FileEntry, StoreError> {
    let bytes = job.read(source)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let blob = blob_path(store, &sha256);
    if !blob.exists() {
        let dir = store.join("blobs/sha256");
        fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
        // Write then rename, so a concurrent reader never sees a half-written blob.
        let temp = dir.join(format!(".{sha256}.{}", std::process::id()));
        fs::write(&temp, &bytes).map_err(io_err("cannot write", &temp))?;
        fs::rename(&temp, &blob).map_err(io_err("cannot store", &blob))?;
    }
    Ok(FileEntry { path, sha256, size: bytes.len() as u64 })
}

fn blob_path(store: &Path, sha256: &str) -> PathBuf {
    store.join("blobs/sha256").join(sha256)
}

/// Writes `file` to `dest`, a file of the job, checking the blob still has the recorded digest.
pub fn restore_file(store: &Path, file: &FileEntry, dest: &Path, job: &JobFiles) -> Result<(), StoreError> {
    let blob = blob_path(store, &file.sha256);
    let bytes = fs::read(&blob).map_err(io_err("cannot read blob", &blob))?;
    if hex::encode(Sha256::digest(&bytes)) != file.sha256 {
        return Err(StoreError::Corrupt { path: blob, why: "content does not match its digest".into() });
    }
    job.write(dest, &bytes)
}

/// A relative stored path that stays inside its root: no `..`, not absolute.
pub fn safe_relative(path: &str) -> Option<PathBuf> {
    let candidate = Path::new(path);
    candidate.components().all(|c| matches!(c, Component::Normal(_))).then(|| candidate.to_owned())
}

/// Expands a leading `~` to `home` and makes the pattern absolute against `base`.
pub fn absolute_pattern(pattern: &str, base: &Path, home: &Path) -> PathBuf {
    if pattern == "~" {
        home.to_owned()
    } else if let Some(rest) = pattern.strip_prefix("~/") {
        home.join(rest)
    } else {
        base.join(pattern)
    }
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// The directory to search for a pattern: its components before the first one with a glob.
fn literal_prefix(pattern: &Path) -> PathBuf {
    let mut prefix = PathBuf::new();
    for component in pattern.components() {
        if has_glob(&component.as_os_str().to_string_lossy()) {
            break;
        }
        prefix.push(component);
    }
    prefix
}

fn matcher(pattern: &Path) -> Result<GlobMatcher, StoreError> {
    let text = pattern.to_string_lossy().into_owned();
    // As in `@actions/glob`, `*` stays within one path segment; `**` crosses them.
    GlobBuilder::new(&text)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|source| StoreError::Pattern { pattern: text, source })
}

/// Every regular file under `dir` (symbolic links are not followed, so nothing outside is
/// picked up), or `dir` itself if it is a file.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Io { what: "cannot read", path: dir.to_owned(), source: e }),
    };
    if meta.is_file() {
        out.push(dir.to_owned());
    } else if meta.is_dir() {
        for entry in fs::read_dir(dir).map_err(io_err("cannot list", dir))? {
            let entry = entry.map_err(io_err("cannot list", dir))?;
            walk(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// The files matched by `patterns` (newline-separated; `!` excludes; a directory means all
/// files under it), relative ones against the job's workspace, and the search root of the
/// includes: their least common ancestor, which GitHub uses as the artifact root. Files are
/// absolute, sorted and unique. A confined job's patterns must stay in its directories, and
/// are searched with its user's permissions.
pub fn collect(patterns: &str, job: &JobFiles) -> Result<(Vec<PathBuf>, PathBuf), StoreError> {
    let (base, home) = (&job.workspace, &job.home);
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    for line in patterns.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match line.strip_prefix('!') {
            Some(rest) => excludes.push(matcher(&absolute_pattern(rest.trim(), base, home))?),
            None => includes.push(absolute_pattern(line, base, home)),
        }
    }
    for pattern in &includes {
        job.check_named(&literal_prefix(pattern))?;
    }
    job.as_user(|| search(includes, excludes, base))
}

/// The files under `includes` but not `excludes`, and their search root.
fn search(
    includes: Vec<PathBuf>,
    excludes: Vec<GlobMatcher>,
    base: &Path,
) -> Result<(Vec<PathBuf>, PathBuf), StoreError> {
    let mut files = Vec::new();
    let mut roots = Vec::new();
    for pattern in &includes {
        let text = pattern.to_string_lossy();
        if !has_glob(&text) {
            let root = if pattern.is_dir() { pattern.clone() } else { pattern.parent().unwrap_or(pattern).to_owned() };
            roots.push(root);
            walk(pattern, &mut files)?;
            continue;
        }
        let prefix = literal_prefix(pattern);
        let glob = matcher(pattern)?;
        let mut found = Vec::new();
        walk(&prefix, &mut found)?;
        // A matched directory brings all its files, as on GitHub.
        files
            .extend(found.into_iter().filter(|f| f.ancestors().take_while(|a| *a != prefix).any(|a| glob.is_match(a))));
        roots.push(prefix);
    }
    files.retain(|f| !excludes.iter().any(|m| f.ancestors().any(|a| m.is_match(a))));
    files.sort();
    files.dedup();
    let root = roots.iter().skip(1).fold(roots.first().cloned().unwrap_or_else(|| base.to_owned()), |acc, r| {
        let mut common = PathBuf::new();
        for (a, b) in acc.components().zip(r.components()) {
            if a != b {
                break;
            }
            common.push(a);
        }
        common
    });
    Ok((files, root))
}

/// `path` relative to `root` with `/` separators.
pub fn relative(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(StoreError::BadName(name.to_owned()));
    }
    Ok(())
}

/// Where the records of run `run_id` are.
pub(crate) fn run_dir(store: &Path, run_id: u64) -> PathBuf {
    store.join("artifacts/runs").join(run_id.to_string())
}

fn record_path(store: &Path, run_id: u64, name: &str) -> PathBuf {
    run_dir(store, run_id).join(format!("{name}.json"))
}

/// Uploads the files matched by `paths` under `workspace` as artifact `name` of run `run_id`.
/// `Ok(None)` when nothing matched and `if_no_files` allows it.
pub fn upload(
    store: &Path,
    name: &str,
    paths: &str,
    job: &JobFiles,
    run_id: u64,
    if_no_files: IfNoFilesFound,
) -> Result<Option<ArtifactRecord>, StoreError> {
    check_name(name)?;
    let (found, root) = collect(paths, job)?;
    if found.is_empty() {
        return match if_no_files {
            IfNoFilesFound::Error => Err(StoreError::NoFiles(paths.trim().replace('\n', ", "))),
            _ => Ok(None),
        };
    }
    let mut files = Vec::new();
    for file in &found {
        files.push(put_blob(store, relative(file, &root), file, job)?);
    }
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let record = ArtifactRecord { name: name.to_owned(), digest: manifest_digest(&files), files };
    let path = record_path(store, run_id, name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
    }
    let json =
        serde_json::to_vec_pretty(&record).map_err(|source| StoreError::Malformed { path: path.clone(), source })?;
    fs::write(&path, json).map_err(io_err("cannot write", &path))?;
    Ok(Some(record))
}

fn read_record(path: &Path) -> Result<ArtifactRecord, StoreError> {
    let text = fs::read(path).map_err(io_err("cannot read", path))?;
    serde_json::from_slice(&text).map_err(|source| StoreError::Malformed { path: path.to_owned(), source })
}

/// Restores artifact `name` of run `run_id` into `dest` (among the job's files), or every
/// artifact of the run into `dest/<name>/` when `name` is `None` (as GitHub does). Returns what
/// was restored.
pub fn download(
    store: &Path,
    name: Option<&str>,
    dest: &Path,
    run_id: u64,
    job: &JobFiles,
) -> Result<Vec<ArtifactRecord>, StoreError> {
    job.check_named(dest)?;
    let records = match name {
        Some(name) => {
            check_name(name)?;
            let path = record_path(store, run_id, name);
            if !path.exists() {
                return Err(StoreError::NotFound(name.to_owned()));
            }
            vec![(dest.to_owned(), read_record(&path)?)]
        }
        None => {
            let dir = store.join("artifacts/runs").join(run_id.to_string());
            let mut out = Vec::new();
            if dir.is_dir() {
                let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
                    .map_err(io_err("cannot list", &dir))?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .map_err(io_err("cannot list", &dir))?;
                entries.retain(|p| p.extension().is_some_and(|x| x == "json"));
                entries.sort();
                for path in entries {
                    let record = read_record(&path)?;
                    out.push((dest.join(&record.name), record));
                }
            }
            out
        }
    };
    let mut restored = Vec::new();
    for (target, record) in records {
        for file in &record.files {
            let rel = safe_relative(&file.path).ok_or_else(|| StoreError::Corrupt {
                path: record_path(store, run_id, &record.name),
                why: format!("unsafe path `{}`", file.path),
            })?;
            restore_file(store, file, &target.join(rel), job)?;
        }
        restored.push(record);
    }
    Ok(restored)
}
/// The artifact whose digest is `digest`, from any run: what a deployment by digest looks up.
/// Its manifest is checked against the digest, so a tampered record is refused.
pub fn find_by_digest(store: &Path, digest: &str) -> Result<Option<ArtifactRecord>, StoreError> {
    let runs = store.join("artifacts/runs");
    let run_dirs = match fs::read_dir(&runs) {
        Ok(run_dirs) => run_dirs,
        // Nothing was ever uploaded to this store.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot list", &runs)(e)),
    };
    for run in run_dirs {
        let run = run.map_err(io_err("cannot list", &runs))?;
        // Each run has a directory; anything else there is not the store's.
        if !run.file_type().map_err(io_err("cannot read", &run.path()))?.is_dir() {
            continue;
        }
        let run = run.path();
        let records = fs::read_dir(&run).map_err(io_err("cannot list", &run))?;
        for entry in records {
            let path = entry.map_err(io_err("cannot list", &run))?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let record = read_record(&path)?;
            if record.digest == digest {
                if manifest_digest(&record.files) != digest {
                    return Err(StoreError::Corrupt { path, why: "the manifest does not match its digest".into() });
                }
                return Ok(Some(record));
            }
        }
    }
    Ok(None)
}

/// Writes every file of `record` under `dest`, each checked against its digest, with the
/// caller's own permissions (a release directory the server makes).
pub fn restore(store: &Path, record: &ArtifactRecord, dest: &Path) -> Result<(), StoreError> {
    let job = JobFiles::open(dest, dest);
    for file in &record.files {
        let rel = safe_relative(&file.path).ok_or_else(|| StoreError::Corrupt {
            path: dest.to_owned(),
            why: format!("unsafe path `{}`", file.path),
        })?;
        restore_file(store, file, &dest.join(rel), &job)?;
    }
    Ok(())
}
