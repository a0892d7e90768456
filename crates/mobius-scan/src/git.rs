//! Git sources: the history of a range (`git log -p`) and the staged changes (`git diff
//! --cached`), read from the `git` CLI as a child process and parsed as a stream.
//!
//! Only *added* lines are scanned, as gitleaks does: `-U0` leaves no context lines, and the
//! `+` lines of one hunk are consecutive in the new file, so each hunk's added lines become one
//! fragment starting at the hunk's new-file line (a multi-line secret such as a PEM key is
//! found whole). Deleted lines are never scanned, so a secret removed by a commit is reported
//! for the commit that added it, not for the one that removed it; renames are detected, so
//! moving a file does not report its secrets again. The arguments are gitleaks' (`--full-history
//! --diff-filter=tuxdb`: added, copied, modified and renamed files).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::detect::CommitInfo;

/// Marks a commit header in the log stream: git puts it before each commit's metadata.
const COMMIT_MARKER: &str = "\u{1}mobius-commit\u{1}";
/// Ends a commit's metadata (after `%B`, the message, which may span lines).
const HEADER_END: &str = "\u{1}mobius-end\u{1}";

/// Why reading git failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git in {}", dir.display())]
    Spawn {
        /// The repository directory.
        dir: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Reading git's output failed.
    #[error("reading the output of `git {command}`")]
    Read {
        /// The git subcommand.
        command: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// git exited with an error.
    #[error("`git {command}` failed ({status}): {stderr}")]
    Failed {
        /// The git subcommand.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// The added lines of one hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The new file's path.
    pub path: String,
    /// The new-file line of the first added line (1-based).
    pub start_line: usize,
    /// The added lines, each ending in `\n`.
    pub added: Vec<u8>,
    /// Whether this is the first hunk of its file in its commit.
    pub first_of_file: bool,
}

/// Reads the history of `range` (a `git log` revision range such as `A..B`, or `--all`),
/// calling `on_hunk` for every hunk with added lines.
pub fn scan_log(repo: &Path, range: &str, on_hunk: &mut dyn FnMut(Option<&CommitInfo>, &Hunk)) -> Result<(), GitError> {
    let format = format!("--format={COMMIT_MARKER}%H%n%an%n%ae%n%aI%n%B{HEADER_END}");
    let mut args = vec![
        "log",
        "-p",
        "-U0",
        "--full-history",
        "--diff-filter=tuxdb",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        // A renamed file's lines are not new: with rename detection a pure rename has no hunk.
        "--find-renames",
        &format,
    ];
    args.extend(range.split_whitespace());
    // Revisions only: a ref that does not exist must not be taken for a path.
    args.push("--");
    run_streaming(repo, &args, on_hunk)
}

/// Reads the staged changes (`git diff --cached`), calling `on_hunk` for every hunk with
/// added lines.
pub fn scan_staged(repo: &Path, on_hunk: &mut dyn FnMut(Option<&CommitInfo>, &Hunk)) -> Result<(), GitError> {
    let args = ["diff", "--cached", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--find-renames", "--", "."];
    run_streaming(repo, &args, on_hunk)
}

fn run_streaming(
    repo: &Path,
    args: &[&str],
    on_hunk: &mut dyn FnMut(Option<&CommitInfo>, &Hunk),
) -> Result<(), GitError> {
    let command = args.first().copied().unwrap_or_default().to_string();
    let mut child = Command::new("git")
        .arg("-c")
        .arg("core.quotePath=false")
        .args(args)
        .current_dir(repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| GitError::Spawn { dir: repo.to_path_buf(), source })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // Drain stderr beside stdout so that a chatty git cannot block on a full pipe.
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let parsed = parse_patch(BufReader::with_capacity(1 << 16, stdout), on_hunk)
        .map_err(|source| GitError::Read { command: command.clone(), source });
    let status = child.wait().map_err(|source| GitError::Read { command: command.clone(), source })?;
    let stderr = stderr_reader.join().unwrap_or_default();
    parsed?;
    if !status.success() {
        return Err(GitError::Failed { command, status: status.to_string(), stderr: stderr.trim().to_string() });
    }
    Ok(())
}

/// Parses `git log -p` / `git diff` output (with this module's commit header format).
pub fn parse_patch(
    mut input: impl BufRead,
    on_hunk: &mut dyn FnMut(Option<&CommitInfo>, &Hunk),
) -> std::io::Result<()> {
    let mut commit: Option<CommitInfo> = None;
    let mut file: Option<String> = None;
    let mut hunk: Option<Hunk> = None;
    let mut seen_hunk_in_file = false;
    let mut line = Vec::with_capacity(256);
    let mut header: Option<Vec<String>> = None;
    // Old and new lines still to come in the current hunk.
    let mut remaining = (0usize, 0usize);
    let flush =
        |hunk: &mut Option<Hunk>, commit: &Option<CommitInfo>, on_hunk: &mut dyn FnMut(Option<&CommitInfo>, &Hunk)| {
            if let Some(h) = hunk.take()
                && !h.added.is_empty()
            {
                on_hunk(commit.as_ref(), &h);
            }
        };
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if let Some(fields) = header.as_mut() {
            // Inside a commit header: collect until the end marker.
            let text = String::from_utf8_lossy(&line);
            match text.find(HEADER_END) {
                Some(at) => {
                    fields.push(text[..at].to_string());
                    let fields = header.take().expect("in a header");
                    commit = Some(commit_from_header(&fields));
                }
                None => fields.push(text.trim_end_matches('\n').to_string()),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(COMMIT_MARKER.as_bytes()) {
            flush(&mut hunk, &commit, on_hunk);
            file = None;
            let text = String::from_utf8_lossy(rest);
            match text.find(HEADER_END) {
                Some(at) => commit = Some(commit_from_header(&[text[..at].to_string()])),
                None => header = Some(vec![text.trim_end_matches('\n').to_string()]),
            }
            continue;
        }
        if remaining.0 > 0 || remaining.1 > 0 {
            // Inside a hunk: its header said how many old and new lines follow.
            match line.first() {
                Some(b'+') if remaining.1 > 0 => {
                    remaining.1 -= 1;
                    if let Some(h) = hunk.as_mut() {
                        h.added.extend_from_slice(&line[1..]);
                        if !line.ends_with(b"\n") {
                            h.added.push(b'\n');
                        }
                    }
                    continue;
                }
                Some(b'-') if remaining.0 > 0 => {
                    remaining.0 -= 1;
                    continue;
                }
                Some(b'\\') => continue, // "\ No newline at end of file"
                _ => remaining = (0, 0),
            }
        }
        if line.starts_with(b"diff --git ") {
            flush(&mut hunk, &commit, on_hunk);
            file = None;
            seen_hunk_in_file = false;
        } else if line.starts_with(b"+++ ") {
            flush(&mut hunk, &commit, on_hunk);
            let name = String::from_utf8_lossy(&line[4..]).trim_end_matches(['\n', '\r']).to_string();
            file = match name.as_str() {
                "/dev/null" => None,
                _ => Some(name.strip_prefix("b/").unwrap_or(&name).to_string()),
            };
        } else if line.starts_with(b"@@ ") {
            flush(&mut hunk, &commit, on_hunk);
            if let Some(counts) = hunk_counts(&line) {
                remaining = (counts.old_lines, counts.new_lines);
                if let Some(path) = &file {
                    hunk = Some(Hunk {
                        path: path.clone(),
                        start_line: counts.new_start,
                        added: Vec::new(),
                        first_of_file: !seen_hunk_in_file,
                    });
                    seen_hunk_in_file = true;
                }
            }
        }
    }
    flush(&mut hunk, &commit, on_hunk);
    Ok(())
}

struct HunkCounts {
    old_lines: usize,
    new_start: usize,
    new_lines: usize,
}

/// The counts of a `@@ -a,b +c,d @@` hunk header (a missing count is 1).
fn hunk_counts(header: &[u8]) -> Option<HunkCounts> {
    let text = std::str::from_utf8(header).ok()?;
    let mut words = text.split_whitespace().skip(1);
    let range = |word: &str| -> Option<(usize, usize)> {
        let mut parts = word.split(',');
        let start = parts.next()?.parse().ok()?;
        let count = parts.next().map_or(Some(1), |c| c.parse().ok())?;
        Some((start, count))
    };
    let (_, old_lines) = range(words.next()?.strip_prefix('-')?)?;
    let (new_start, new_lines) = range(words.next()?.strip_prefix('+')?)?;
    Some(HunkCounts { old_lines, new_start, new_lines })
}

fn commit_from_header(fields: &[String]) -> CommitInfo {
    let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
    CommitInfo {
        sha: field(0),
        author: field(1),
        email: field(2),
        date: field(3),
        message: fields.get(4..).map(|m| m.join("\n")).unwrap_or_default().trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunks(patch: &str) -> Vec<(Option<String>, Hunk)> {
        let mut out = Vec::new();
        parse_patch(patch.as_bytes(), &mut |commit, hunk| out.push((commit.map(|c| c.sha.clone()), hunk.clone())))
            .expect("in-memory read");
        out
    }

    #[test]
    fn added_lines_of_each_hunk_with_new_file_line_numbers() {
        let patch = format!(
            "{COMMIT_MARKER}abc123\nAda\nada@example.test\n2026-01-01T00:00:00Z\nsubject\n\nbody{HEADER_END}\n\n\
             diff --git a/x.txt b/x.txt\n--- a/x.txt\n+++ b/x.txt\n@@ -1 +1,2 @@\n-old\n+new one\n+new two\n\
             @@ -9,0 +10 @@ ctx\n+later\ndiff --git a/gone.txt b/gone.txt\n--- a/gone.txt\n+++ /dev/null\n\
             @@ -1 +0,0 @@\n-removed secret\n"
        );
        let found = hunks(&patch);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0.as_deref(), Some("abc123"));
        assert_eq!(found[0].1.path, "x.txt");
        assert_eq!(found[0].1.start_line, 1);
        assert_eq!(found[0].1.added, b"new one\nnew two\n");
        assert!(found[0].1.first_of_file);
        assert_eq!(found[1].1.start_line, 10);
        assert!(!found[1].1.first_of_file);
    }

    #[test]
    fn lines_that_look_like_headers_inside_hunks_are_content() {
        let patch = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1,3 @@\n--- old\n+++ plus\n+-- minus\n\
                     +@@ -1 +1 @@\n";
        let found = hunks(patch);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.added, b"++ plus\n-- minus\n@@ -1 +1 @@\n");
    }
}
