//! How `mobius run` shows a run while it happens. Piped, in CI or with `TERM=dumb`: one
//! prefixed line per log line and per finished job, so nothing is lost when lines interleave.
//! On a terminal: the [`LiveView`] of the jobs, redrawn in place. Either way each step's last
//! lines are kept to show again when it fails.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::time::Duration;

use mobius_pipelines::engine::{RunObserver, Status};
use mobius_pipelines::exec::LogLine;

use super::live::LiveView;

/// How many of a step's last log lines are kept to show again when it fails.
pub(super) const TAIL_LINES: usize = 20;

/// Prints progress (unless quiet, for `--json`) and keeps each step's last lines.
pub(super) struct Printer {
    quiet: bool,
    /// On a terminal, the live view replaces the plain lines.
    live: Option<LiveView>,
    /// `(job, step)` → its last [`TAIL_LINES`] lines.
    tails: BTreeMap<(String, String), VecDeque<String>>,
}

impl Printer {
    pub fn new(quiet: bool) -> Printer {
        Printer { quiet, live: None, tails: BTreeMap::new() }
    }

    /// Shows the run as a [`LiveView`] instead of plain lines.
    pub fn live() -> Printer {
        Printer { quiet: true, live: Some(LiveView::new()), tails: BTreeMap::new() }
    }

    /// A workflow run ended: the live view draws its last frame, so what is printed next
    /// lands below it.
    pub fn finish_run(&mut self) {
        if let Some(live) = &mut self.live {
            live.finish_run();
        }
    }

    /// The last lines of `step` of `job`, oldest first.
    pub fn tail(&self, job: &str, step: &str) -> impl Iterator<Item = &str> {
        self.tails.get(&(job.to_owned(), step.to_owned())).into_iter().flatten().map(String::as_str)
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            // A closed pipe (`mobius run | head`) must not abort the run, so errors are ignored.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

impl RunObserver for Printer {
    fn job_queued(&mut self, job: &str) {
        if let Some(live) = &mut self.live {
            live.job_queued(job);
        }
    }

    fn job_started(&mut self, job: &str) {
        if let Some(live) = &mut self.live {
            live.job_started(job);
        }
    }

    fn step_started(&mut self, job: &str, step: &str) {
        if let Some(live) = &mut self.live {
            live.step_started(job, step);
        }
    }

    fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        if let Some(live) = &mut self.live {
            live.job_finished(job, result, duration);
        }
        let line = match result {
            Status::Success => format!("[{job}] ✓ passed {}", seconds(duration)),
            Status::Failure => format!("[{job}] ✗ failed {}", seconds(duration)),
            Status::Cancelled => format!("[{job}] ✗ cancelled {}", seconds(duration)),
            Status::Skipped => format!("[{job}] - skipped"),
        };
        self.say(&line);
    }

    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.say(&format!("[{job}] {step}: {}", line.text));
        let tail = self.tails.entry((job.to_owned(), step.to_owned())).or_default();
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.text.clone());
    }
}

/// `1.2s`: tenths are enough to tell a slow job from a fast one.
pub(super) fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use mobius_pipelines::exec::Stream;

    use super::*;

    #[test]
    fn keeps_only_the_last_lines_of_each_step() {
        let mut printer = Printer::new(true);
        for i in 0..25 {
            let line = LogLine { at: SystemTime::now(), stream: Stream::Stdout, text: i.to_string() };
            printer.log_line("a", "s", &line);
        }
        let tail: Vec<&str> = printer.tail("a", "s").collect();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!((tail[0], tail[19]), ("5", "24"));
        assert_eq!(printer.tail("a", "other").count(), 0);
        assert_eq!(seconds(Duration::from_millis(1234)), "1.2s");
    }
}
