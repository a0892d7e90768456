//! Each run's log: one NDJSON file (`runs/<id>/log.ndjson` in the data directory) of masked
//! lines, numbered from 1, and a broadcast of the same lines to live subscribers. The number
//! is the SSE event id, so a client that reconnects with `Last-Event-ID: N` resumes after line N.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mobius_pipelines::exec::LogLine;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// How many lines a slow live subscriber may fall behind before it re-reads the file.
pub const LIVE_BUFFER: usize = 1024;

/// One stored line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLogLine {
    /// 1, 2, 3… in the order lines were written.
    pub seq: u64,
    /// The job instance's display name.
    pub job: String,
    pub step: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub at: Timestamp,
    /// Already masked.
    pub text: String,
}

/// Where the log of run `id` lives under the data directory.
pub fn path(data_dir: &Path, id: i64) -> PathBuf {
    data_dir.join("runs").join(id.to_string()).join("log.ndjson")
}

/// Appends a run's lines to its file and to live subscribers.
pub struct LogWriter {
    file: Option<File>,
    next: u64,
    live: broadcast::Sender<RunLogLine>,
}

impl LogWriter {
    /// Creates (truncates) the log at `path`. A log that cannot be written must not stop the
    /// run: lines then only go to live subscribers, and the failure is logged once.
    pub fn create(path: &Path, live: broadcast::Sender<RunLogLine>) -> LogWriter {
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(path))
            .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot write the run's log"))
            .ok();
        LogWriter { file, next: 1, live }
    }

    pub fn write(&mut self, job: &str, step: &str, line: &LogLine) {
        let record = RunLogLine {
            seq: self.next,
            job: job.to_owned(),
            step: step.to_owned(),
            stream: line.stream.as_str().to_owned(),
            at: Timestamp::try_from(line.at).unwrap_or_else(|_| Timestamp::now()),
            text: line.text.clone(),
        };
        self.next += 1;
        if let Some(file) = &mut self.file
            && let Ok(mut text) = serde_json::to_string(&record)
        {
            text.push('\n');
            // One write per line: a reader never sees half a line as a whole one (it skips
            // the unterminated tail), and the line is on disk before subscribers hear of it.
            if let Err(e) = file.write_all(text.as_bytes()) {
                tracing::warn!(error = %e, "cannot write the run's log");
                self.file = None;
            }
        }
        // No subscriber is the common case, not an error.
        // No one following the run live is the usual case, not an error.
        let _ = self.live.send(record);
    }
}

/// The lines of a log file numbered above `after`. A missing file is an empty log; an
/// unterminated last line (being written) is left for the next read.
pub fn read_after(path: &Path, after: u64) -> std::io::Result<Vec<RunLogLine>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut lines = Vec::new();
    let mut buffer = String::new();
    loop {
        buffer.clear();
        if reader.read_line(&mut buffer)? == 0 || !buffer.ends_with('\n') {
            break;
        }
        if let Ok(line) = serde_json::from_str::<RunLogLine>(&buffer)
            && line.seq > after
        {
            lines.push(line);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use mobius_pipelines::exec::Stream;

    use super::*;

    #[test]
    fn lines_are_numbered_stored_and_broadcast() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), 7);
        let (live, mut receiver) = broadcast::channel(LIVE_BUFFER);
        let mut writer = LogWriter::create(&path, live);
        for text in ["one", "two", "three"] {
            writer.write(
                "build",
                "Run make",
                &LogLine { at: SystemTime::now(), stream: Stream::Stdout, text: text.into() },
            );
        }
        let all = read_after(&path, 0).unwrap();
        assert_eq!(
            all.iter().map(|l| (l.seq, l.text.as_str())).collect::<Vec<_>>(),
            [(1, "one"), (2, "two"), (3, "three")]
        );
        assert_eq!(read_after(&path, 2).unwrap().len(), 1, "resumes after the given line");
        assert_eq!(receiver.try_recv().unwrap().text, "one");
        assert!(read_after(&dir.path().join("none"), 0).unwrap().is_empty());
        // A half-written line is not returned until it is complete.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"seq\":4").unwrap();
        assert_eq!(read_after(&path, 0).unwrap().len(), 3);
    }
}
