//! Directory scans: every regular file under a root, read whole, one fragment per file.
//!
//! `.git` directories, symlinks (not followed, as gitleaks' default), files over the size
//! limit and binary files (a NUL byte in the first 8 KiB, git's own test) are skipped. Files
//! are scanned on every available core; findings come back sorted by file then line, so the
//! report does not depend on scheduling.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::detect::{Detector, Finding, Fragment};

/// How much of a file is looked at to decide that it is binary.
const BINARY_SNIFF: usize = 8 << 10;

/// Why a directory scan failed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// A directory or file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// What a directory scan did, besides its findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Files read and scanned.
    pub files: usize,
    /// Bytes scanned.
    pub bytes: u64,
    /// Files skipped as binary or over the size limit.
    pub skipped: usize,
}

/// Scans every file under `root` (or `root` itself when it is a file).
pub fn scan_dir(detector: &Detector, root: &Path, max_file_size: u64) -> Result<(Vec<Finding>, DirStats), DirError> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<(Vec<Finding>, DirStats, Option<DirError>)> = Mutex::new(Default::default());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = (Vec::new(), DirStats::default());
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, size)) = files.get(index) else { break };
                    let display = display_path(root, path);
                    if detector.path_is_allowlisted(&display) {
                        continue;
                    }
                    if *size > max_file_size {
                        local.1.skipped += 1;
                        continue;
                    }
                    let content = match std::fs::read(path) {
                        Ok(content) => content,
                        Err(source) => {
                            results.lock().expect("no worker panics holding it").2 =
                                Some(DirError::Read { path: path.clone(), source });
                            break;
                        }
                    };
                    if content[..content.len().min(BINARY_SNIFF)].contains(&0) {
                        local.1.skipped += 1;
                        continue;
                    }
                    local.1.files += 1;
                    local.1.bytes += content.len() as u64;
                    let fragment =
                        Fragment { raw: &content, path: &display, start_line: 1, commit: None, first_of_file: true };
                    local.0.extend(detector.detect(&fragment));
                }
                let mut shared = results.lock().expect("no worker panics holding it");
                shared.0.extend(local.0);
                shared.1.files += local.1.files;
                shared.1.bytes += local.1.bytes;
                shared.1.skipped += local.1.skipped;
            });
        }
    });
    let (mut findings, stats, error) = results.into_inner().expect("workers are done");
    if let Some(error) = error {
        return Err(error);
    }
    findings.sort_by(|a, b| {
        (&a.file, a.start_line, a.start_column, &a.rule_id).cmp(&(&b.file, b.start_line, b.start_column, &b.rule_id))
    });
    Ok((findings, stats))
}

/// The path as reports show it: relative to the scanned root, `/`-separated.
fn display_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).ok().filter(|r| !r.as_os_str().is_empty()).unwrap_or(path);
    relative.to_string_lossy().replace('\\', "/")
}

/// Regular files under `path` with their sizes, `.git` and symlinks left out.
fn collect(path: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<(), DirError> {
    let read_error = |source| DirError::Read { path: path.to_path_buf(), source };
    let meta = std::fs::symlink_metadata(path).map_err(read_error)?;
    if meta.is_file() {
        out.push((path.to_path_buf(), meta.len()));
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> =
        std::fs::read_dir(path).map_err(read_error)?.collect::<Result<Vec<_>, _>>().map_err(read_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name() == ".git" {
            continue;
        }
        let kind = entry.file_type().map_err(|source| DirError::Read { path: entry.path(), source })?;
        if kind.is_dir() {
            collect(&entry.path(), out)?;
        } else if kind.is_file() {
            let len = entry.metadata().map_err(|source| DirError::Read { path: entry.path(), source })?.len();
            out.push((entry.path(), len));
        }
    }
    Ok(())
}
