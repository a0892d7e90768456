//! Running apart from the control plane: the routing table arrives as a file the control plane
//! writes, and the SLIs leave as a file beside it. Both are written whole (temp file + rename),
//! so a reader never sees half a file.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::proxy::Proxy;
use crate::routing::RoutingTable;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot access {}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not valid JSON for this file", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
}

/// `<dir>/<service>.<environment>.table.json`
pub fn table_path(dir: &Path, service: &str, environment: &str) -> PathBuf {
    dir.join(format!("{service}.{environment}.table.json"))
}

/// `<dir>/<service>.<environment>.sli.json`
pub fn sli_path(dir: &Path, service: &str, environment: &str) -> PathBuf {
    dir.join(format!("{service}.{environment}.sli.json"))
}

/// Writes `value` as JSON to a temporary file in the same directory, flushes it to disk and
/// renames it over `path`.
pub fn write_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), FileError> {
    use std::io::Write;
    let io = |source| FileError::Io { path: path.to_owned(), source };
    let json = serde_json::to_vec_pretty(value).map_err(|source| FileError::Json { path: path.to_owned(), source })?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err()
        && let Err(error) = std::fs::remove_file(&temp)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        // The write's own error is what the caller gets; this one only leaves a stray file.
        tracing::warn!(path = %temp.display(), error = %error, "cannot remove an unfinished temporary file");
    }
    result.map_err(io)
}

/// Reads a routing table file.
pub fn read_table(path: &Path) -> Result<RoutingTable, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Io { path: path.to_owned(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| FileError::Json { path: path.to_owned(), source })
}

/// Polls `path` every `every` until `shutdown`, and swaps in the table it holds when its
/// generation is higher than the one in use. A file whose mtime and size have not changed for
/// two seconds is not read again. A missing or invalid file leaves the last good table serving, with one warning
/// until the file is good again.
pub async fn follow_table(proxy: Arc<Proxy>, path: PathBuf, every: Duration, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut seen: Option<(SystemTime, u64)> = None;
    let mut warned = false;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        let stamp = match std::fs::metadata(&path) {
            // Without an mtime (not on Linux) every poll reads the file: slower, still right.
            Ok(meta) => (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()),
            Err(source) => {
                if !warned {
                    let error = FileError::Io { path: path.clone(), source };
                    tracing::warn!(error = %display_chain(&error), "routing table unavailable; keeping the last good one");
                    warned = true;
                }
                seen = None;
                continue;
            }
        };
        // mtime has a one-second resolution on some file systems (ext3), and two tables of
        // the same size can be written within a second: skip only a file unchanged for a
        // while, and let the generation decide.
        if seen == Some(stamp) && stamp.0.elapsed().is_ok_and(|age| age > Duration::from_secs(2)) {
            continue;
        }
        let read = {
            let path = path.clone();
            // The data plane has no store to guard; its only blocking work is its two files.
            #[expect(clippy::disallowed_methods, reason = "a file read off the proxy's workers")]
            tokio::task::spawn_blocking(move || read_table(&path)).await
        };
        match read {
            Ok(Ok(table)) => {
                seen = Some(stamp);
                warned = false;
                let current = proxy.table();
                if table.generation > current.generation {
                    tracing::info!(
                        generation = table.generation,
                        canary_weight = table.canary_weight,
                        "swapping in a new routing table"
                    );
                    proxy.set_table(table);
                }
            }
            Ok(Err(error)) => {
                // Not remembered as seen: a writer that is not atomic may finish the file later
                // with the same size and mtime granularity.
                if !warned {
                    tracing::warn!(error = %display_chain(&error), "routing table invalid; keeping the last good one");
                    warned = true;
                }
            }
            Err(join) => tracing::warn!(error = %join, "reading the routing table panicked"),
        }
    }
}

/// Writes the SLI snapshot to `path` every `every`, and once more at `shutdown`.
pub async fn publish_slis(proxy: Arc<Proxy>, path: PathBuf, every: Duration, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let last = tokio::select! {
            _ = &mut shutdown => true,
            _ = ticks.tick() => false,
        };
        let snapshot = proxy.slis();
        let target = path.clone();
        #[expect(clippy::disallowed_methods, reason = "a file write off the proxy's workers")]
        let written = tokio::task::spawn_blocking(move || write_atomic(&target, &snapshot));
        match written.await {
            Ok(Ok(())) => failing = false,
            Ok(Err(error)) if !failing => {
                tracing::warn!(error = %display_chain(&error), "cannot publish SLIs");
                failing = true;
            }
            // Still failing: said once when it started.
            Ok(Err(_)) => {}
            Err(join) => tracing::warn!(error = %join, "publishing SLIs panicked"),
        }
        if last {
            return;
        }
    }
}

/// An error and its causes on one line, `error: cause: cause`, for the log.
pub(crate) fn display_chain(error: &dyn std::error::Error) -> String {
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

    #[test]
    fn paths_and_atomic_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = table_path(dir.path(), "web", "production");
        assert!(path.ends_with("web.production.table.json"));
        assert!(sli_path(dir.path(), "web", "production").ends_with("web.production.sli.json"));
        let table = RoutingTable::empty("web", "production");
        write_atomic(&path, &table).unwrap();
        assert_eq!(read_table(&path).unwrap(), table);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.json");
        let error = read_table(&path).unwrap_err();
        assert!(display_chain(&error).contains("missing.json"));
    }
}
