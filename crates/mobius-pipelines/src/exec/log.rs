//! Step logs: one [`LogLine`] per line of output, kept per stream and masked, handed to a
//! [`LogSink`]. [`NdjsonSink`] stores them as one JSON object per line.

use std::io::{self, Write};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::commands::{Commands, SharedRequests};
use crate::mask::{MaskStream, Masker};

/// Which output of a step a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The step's standard output.
    Stdout,
    /// The step's standard error.
    Stderr,
}

impl Stream {
    /// The name used in stored logs: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of a step's output, already masked, without its line terminator. Serialisable so
/// that an agent can send the lines of a remote job to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the line was complete (read up to its newline, or the stream ended).
    pub at: SystemTime,
    /// Which stream it was written to.
    pub stream: Stream,
    /// The masked text; bytes that are not UTF-8 are replaced by U+FFFD.
    pub text: String,
}

/// Where a step's log lines go, in the order they were read.
///
/// `Send` so that the future of [`run_step`](super::run_step) can run on any tokio worker.
pub trait LogSink: Send {
    /// Takes one line.
    fn line(&mut self, line: LogLine);
}

/// Collects lines in memory; handy for tests and for short steps.
impl LogSink for Vec<LogLine> {
    fn line(&mut self, line: LogLine) {
        self.push(line);
    }
}

/// Writes each line as one JSON object per line:
/// `{"t":"2026-11-26T04:11:00.123Z","stream":"stdout","line":"…"}`, the time in RFC 3339 UTC.
///
/// A sink cannot fail a step, so the first write error is kept and returned by
/// [`NdjsonSink::finish`]; lines after it are dropped.
#[derive(Debug)]
pub struct NdjsonSink<W> {
    writer: W,
    error: Option<io::Error>,
}

#[derive(serde::Serialize)]
struct Record<'a> {
    t: String,
    stream: &'static str,
    line: &'a str,
}

impl<W: Write + Send> NdjsonSink<W> {
    /// A sink writing to `writer`.
    pub fn new(writer: W) -> NdjsonSink<W> {
        NdjsonSink { writer, error: None }
    }

    /// Flushes and returns the writer, or the first error met while writing.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.writer.flush()?;
        Ok(self.writer)
    }

    fn write(&mut self, line: &LogLine) -> io::Result<()> {
        let record = Record { t: rfc3339(line.at), stream: line.stream.as_str(), line: &line.text };
        serde_json::to_writer(&mut self.writer, &record)?;
        self.writer.write_all(b"\n")
    }
}

impl<W: Write + Send> LogSink for NdjsonSink<W> {
    fn line(&mut self, line: LogLine) {
        if self.error.is_none()
            && let Err(error) = self.write(&line)
        {
            self.error = Some(error);
        }
    }
}

/// `at` in RFC 3339 UTC with the precision it has.
pub fn rfc3339(at: SystemTime) -> String {
    // Only times before 1970 or past year 9999 fail; a clock that wrong is not worth a panic.
    jiff::Timestamp::try_from(at).map(|t| t.to_string()).unwrap_or_default()
}

/// Longest line kept whole, in bytes; a longer run without a newline is cut into lines of
/// this size so that a process printing no newlines cannot grow memory without bound
/// (GitLab's runner cuts at 16 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Turns the chunks read from one stream into masked lines, applying workflow commands
/// (see [`super::commands`]).
///
/// Masking runs on the raw bytes before splitting, so a secret split across writes (or
/// across a chunk boundary of the pipe) is still caught. Chunks are masked a line at a time,
/// so a value added by `::add-mask::` is masked from the very next line on.
pub(crate) struct LineSplitter {
    stream: Stream,
    mask: MaskStream,
    commands: Commands,
    partial: Vec<u8>,
}

impl LineSplitter {
    #[cfg(test)]
    pub(crate) fn new(stream: Stream, masker: &Masker) -> LineSplitter {
        LineSplitter::for_step(stream, masker, SharedRequests::default(), false)
    }

    /// The splitter of one stream of a step, whose legacy commands' requests go to `requests`.
    pub(crate) fn for_step(
        stream: Stream,
        masker: &Masker,
        requests: SharedRequests,
        unsecure_allowed: bool,
    ) -> LineSplitter {
        let commands = Commands::for_step(masker.clone(), requests, unsecure_allowed);
        LineSplitter { stream, mask: masker.stream(), commands, partial: Vec::new() }
    }

    /// Takes a chunk and returns the lines it completes.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<LogLine> {
        let mut lines = Vec::new();
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            let masked = self.mask.write(piece);
            self.partial.extend_from_slice(&masked);
            while let Some(newline) = self.partial.iter().position(|&b| b == b'\n') {
                let rest = self.partial.split_off(newline + 1);
                let mut line = std::mem::replace(&mut self.partial, rest);
                line.pop();
                emit(self.stream, &mut self.commands, line, &mut lines);
            }
            while self.partial.len() >= MAX_LINE_BYTES {
                let rest = self.partial.split_off(MAX_LINE_BYTES);
                let line = std::mem::replace(&mut self.partial, rest);
                emit(self.stream, &mut self.commands, line, &mut lines);
            }
        }
        lines
    }

    /// Ends the stream: the held-back bytes and an unterminated last line.
    pub(crate) fn finish(mut self) -> Vec<LogLine> {
        let rest = self.mask.finish();
        // Feed the tail through the same splitting with a mask that has nothing left to hold.
        self.partial.extend_from_slice(&rest);
        let mut lines = Vec::new();
        let partial = std::mem::take(&mut self.partial);
        let mut parts = partial.split(|&b| b == b'\n').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() && part.is_empty() {
                break;
            }
            emit(self.stream, &mut self.commands, part.to_vec(), &mut lines);
        }
        lines
    }
}

/// Passes one complete line through the workflow commands.
fn emit(stream: Stream, commands: &mut Commands, bytes: Vec<u8>, lines: &mut Vec<LogLine>) {
    let line = make_line(stream, bytes);
    for text in commands.line(line.text) {
        lines.push(LogLine { at: line.at, stream: line.stream, text });
    }
}

/// A line from its masked bytes, without a CR left by a CRLF ending.
fn make_line(stream: Stream, mut bytes: Vec<u8>) -> LogLine {
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    LogLine { at: SystemTime::now(), stream, text: String::from_utf8_lossy(&bytes).into_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn splits_and_masks_across_chunks() {
        let masker = Masker::new([("S", "hunter22")]).expect("valid secret");
        let mut splitter = LineSplitter::new(Stream::Stdout, &masker);
        let mut lines = splitter.push(b"a\r\nhun");
        lines.extend(splitter.push(b"ter22 b\nlast"));
        lines.extend(splitter.finish());
        assert_eq!(texts(&lines), ["a", "*** b", "last"]);
    }

    #[test]
    fn add_mask_applies_from_the_next_line_of_the_same_chunk() {
        let masker = Masker::new(Vec::<(String, String)>::new()).expect("no secrets");
        let mut splitter = LineSplitter::new(Stream::Stdout, &masker);
        let mut lines =
            splitter.push(b"::add-mask::supersecret123\nsupersecret123\n::warning file=a,line=1::x supersec");
        lines.extend(splitter.push(b"ret123"));
        lines.extend(splitter.finish());
        assert_eq!(texts(&lines), ["***", "warning: x *** (a:1)"]);
    }

    #[test]
    fn cuts_overlong_lines() {
        let masker = Masker::new(Vec::<(String, String)>::new()).expect("no secrets");
        let mut splitter = LineSplitter::new(Stream::Stderr, &masker);
        let mut lines = splitter.push(&vec![b'x'; MAX_LINE_BYTES + 10]);
        lines.extend(splitter.finish());
        let lengths: Vec<usize> = lines.iter().map(|l| l.text.len()).collect();
        assert_eq!(lengths, [MAX_LINE_BYTES, 10]);
    }

    #[test]
    fn ndjson_record() {
        let mut sink = NdjsonSink::new(Vec::new());
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500);
        sink.line(LogLine { at, stream: Stream::Stderr, text: "x \"y\"".into() });
        let out = sink.finish().expect("no error");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"t\":\"1970-01-01T00:00:01.5Z\",\"stream\":\"stderr\",\"line\":\"x \\\"y\\\"\"}\n"
        );
    }
}
