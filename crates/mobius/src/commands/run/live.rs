//! The live view of `mobius run` on a terminal: one row per job instance, in queue order,
//! redrawn in place as the run goes. Rendering is a pure function of the jobs' states
//! ([`render`]); [`LiveView`] only keeps that state and puts frames on screen.
//!
//! The engine calls the observer synchronously, so frames are drawn from its callbacks at
//! most every [`REDRAW_EVERY`], plus by a small ticker thread so a quiet job's clock and
//! spinner still move; a last frame is always drawn when a run ends.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mobius_pipelines::engine::Status;

use super::observer::seconds;
use crate::output::color_stdout;

/// At most ten frames a second: faster is flicker, not information.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Longer job names are cut so the other columns stay on the row.
const MAX_NAME: usize = 40;

/// Whether the live view should replace plain lines: stdout is a terminal that can move its
/// cursor, and nobody asked for JSON.
pub(super) fn wanted(json: bool) -> bool {
    !json && std::io::stdout().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Where one job instance stands.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum JobState {
    Pending,
    Running { since: Instant, step: Option<String> },
    Done { result: Status, duration: Duration },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct JobRow {
    pub name: String,
    pub state: JobState,
}

/// The terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Size {
    pub rows: usize,
    pub columns: usize,
}

impl Size {
    /// From `LINES` and `COLUMNS`, else 40×80: the binary has no terminal-size dependency,
    /// and guessing small only collapses or cuts rows earlier than needed.
    fn from_env() -> Size {
        let var = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0).unwrap_or(default)
        };
        Size { rows: var("LINES", 40), columns: var("COLUMNS", 80) }
    }
}

/// One frame: a line per job, in queue order. When the jobs do not fit in the terminal
/// (a row is kept free for the cursor), the passed ones fold into one count line, and if that
/// is still too many, the last rows fold into `… N more`. Lines are cut to the width so
/// none wraps, which would break moving back up over the frame.
pub(super) fn render(jobs: &[JobRow], now: Instant, size: Size, color: bool) -> Vec<String> {
    let budget = size.rows.saturating_sub(1).max(2);
    let passed = |j: &&JobRow| matches!(j.state, JobState::Done { result: Status::Success, .. });
    let collapse = jobs.len() > budget && jobs.iter().any(|j| passed(&j));
    let shown: Vec<&JobRow> = jobs.iter().filter(|j| !collapse || !passed(j)).collect();
    let name_width = shown.iter().map(|j| j.name.chars().count()).max().unwrap_or(0).min(MAX_NAME);

    let mut lines = Vec::new();
    if collapse {
        let n = jobs.len() - shown.len();
        let text = format!("✓ {n} passed");
        lines.push(paint(&cut(&text, size.columns), "32", color));
    }
    let room = budget - lines.len();
    let (rows, hidden) =
        if shown.len() > room { (&shown[..room - 1], shown.len() - (room - 1)) } else { (&shown[..], 0) };
    for job in rows {
        lines.push(row(job, now, name_width, size.columns, color));
    }
    if hidden > 0 {
        lines.push(paint(&cut(&format!("… {hidden} more"), size.columns), "2", color));
    }
    lines
}

fn row(job: &JobRow, now: Instant, name_width: usize, columns: usize, color: bool) -> String {
    let (symbol, word, style, duration, step) = match &job.state {
        JobState::Pending => ('·', "pending", "2", None, None),
        JobState::Running { since, step } => {
            let elapsed = now.saturating_duration_since(*since);
            let spin = SPINNER[(elapsed.as_millis() / REDRAW_EVERY.as_millis()) as usize % SPINNER.len()];
            (spin, "running", "36", Some(elapsed), step.as_deref())
        }
        JobState::Done { result, duration } => match result {
            Status::Success => ('✓', "passed", "32", Some(*duration), None),
            Status::Failure => ('✗', "failed", "1;31", Some(*duration), None),
            Status::Cancelled => ('✗', "cancelled", "33", Some(*duration), None),
            Status::Skipped => ('-', "skipped", "2", None, None),
        },
    };
    let name = cut(&job.name, name_width);
    let mut rest = format!("{name:<name_width$}");
    if let Some(d) = duration {
        rest.push_str(&format!(" {:>6}", seconds(d)));
    }
    if let Some(step) = step {
        rest.push_str(&format!("  › {step}"));
    }
    let head = format!("{symbol} {word:<9} ");
    let rest = cut(rest.trim_end(), columns.saturating_sub(head.chars().count()));
    format!("{}{rest}", paint(&head, style, color))
}

/// `text` in at most `width` characters, ending in `…` when cut.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        cut.push('…');
    }
    cut
}

fn paint(text: &str, style: &str, color: bool) -> String {
    if color { format!("\x1b[{style}m{text}\x1b[0m") } else { text.to_owned() }
}

/// What the ticker thread and the observer callbacks share.
struct Screen {
    jobs: Vec<JobRow>,
    size: Size,
    color: bool,
    /// How many lines the last frame took; the cursor sits just below them.
    drawn: usize,
    last_draw: Option<Instant>,
}

impl Screen {
    fn job(&mut self, name: &str) -> &mut JobRow {
        let at = match self.jobs.iter().position(|j| j.name == name) {
            Some(at) => at,
            None => {
                self.jobs.push(JobRow { name: name.to_owned(), state: JobState::Pending });
                self.jobs.len() - 1
            }
        };
        &mut self.jobs[at]
    }

    fn draw_if_due(&mut self) {
        if self.last_draw.is_none_or(|at| at.elapsed() >= REDRAW_EVERY) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let now = Instant::now();
        let lines = render(&self.jobs, now, self.size, self.color);
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for line in &lines {
            out.push_str(&format!("\r\x1b[2K{line}\n"));
        }
        // Clears what is left of a longer previous frame.
        out.push_str("\x1b[J");
        // A closed stdout must not abort the run, so errors are ignored.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
        self.drawn = lines.len();
        self.last_draw = Some(now);
    }
}

/// The live view of one run after another; see the module docs.
pub(super) struct LiveView {
    screen: Arc<Mutex<Screen>>,
    /// Dropping the sender stops the ticker.
    ticker: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl LiveView {
    pub fn new() -> LiveView {
        let screen =
            Screen { jobs: Vec::new(), size: Size::from_env(), color: color_stdout(), drawn: 0, last_draw: None };
        LiveView { screen: Arc::new(Mutex::new(screen)), ticker: None }
    }

    pub fn job_queued(&mut self, job: &str) {
        self.update(|s| {
            s.job(job);
        });
    }

    pub fn job_started(&mut self, job: &str) {
        self.update(|s| s.job(job).state = JobState::Running { since: Instant::now(), step: None });
    }

    pub fn step_started(&mut self, job: &str, step: &str) {
        self.update(|s| {
            if let JobState::Running { step: current, .. } = &mut s.job(job).state {
                *current = Some(step.to_owned());
            }
        });
    }

    pub fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        self.update(|s| s.job(job).state = JobState::Done { result, duration });
    }

    /// Draws the run's last frame and leaves it on screen; the next run gets a new one below.
    pub fn finish_run(&mut self) {
        self.stop_ticker();
        let mut screen = lock(&self.screen);
        if !screen.jobs.is_empty() {
            screen.draw();
        }
        screen.jobs.clear();
        screen.drawn = 0;
        screen.last_draw = None;
    }

    fn update(&mut self, change: impl FnOnce(&mut Screen)) {
        self.start_ticker();
        let mut screen = lock(&self.screen);
        change(&mut screen);
        screen.draw_if_due();
    }

    fn start_ticker(&mut self) {
        if self.ticker.is_some() {
            return;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let screen = Arc::clone(&self.screen);
        let handle = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(REDRAW_EVERY) {
                lock(&screen).draw_if_due();
            }
        });
        self.ticker = Some((stop, handle));
    }

    fn stop_ticker(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}

/// A panic while drawing leaves the state as usable as before, so poisoning is ignored.
fn lock(screen: &Mutex<Screen>) -> MutexGuard<'_, Screen> {
    screen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: Size = Size { rows: 40, columns: 80 };

    fn pending(name: &str) -> JobRow {
        JobRow { name: name.to_owned(), state: JobState::Pending }
    }

    fn done(name: &str, result: Status, millis: u64) -> JobRow {
        JobRow { name: name.to_owned(), state: JobState::Done { result, duration: Duration::from_millis(millis) } }
    }

    /// `jobs` rendered 3.4s after `t0` (the start of any running job), without colour.
    fn check(jobs: &[JobRow], t0: Instant, size: Size, expected: &[&str]) {
        let lines = render(jobs, t0 + Duration::from_millis(3400), size, false);
        assert_eq!(lines, expected);
    }

    #[test]
    fn one_row_per_state() {
        let t0 = Instant::now();
        let running = JobRow {
            name: "build (ubuntu)".to_owned(),
            state: JobState::Running { since: t0, step: Some("Run cargo test".to_owned()) },
        };
        let jobs = [
            done("lint", Status::Success, 1234),
            running,
            done("test", Status::Failure, 800),
            done("deploy", Status::Skipped, 0),
            pending("e2e"),
            done("slow", Status::Cancelled, 12_000),
        ];
        check(
            &jobs,
            t0,
            BIG,
            &[
                "✓ passed    lint             1.2s",
                "⠼ running   build (ubuntu)   3.4s  › Run cargo test",
                "✗ failed    test             0.8s",
                "- skipped   deploy",
                "· pending   e2e",
                "✗ cancelled slow            12.0s",
            ],
        );
    }

    #[test]
    fn running_without_a_step_yet() {
        let t0 = Instant::now();
        let jobs = [JobRow { name: "a".to_owned(), state: JobState::Running { since: t0, step: None } }];
        check(&jobs, t0, BIG, &["⠼ running   a   3.4s"]);
    }

    #[test]
    fn colours_only_the_state() {
        let lines = render(&[done("a", Status::Failure, 100)], Instant::now(), BIG, true);
        assert_eq!(lines, ["\x1b[1;31m✗ failed    \x1b[0ma   0.1s"]);
    }

    #[test]
    fn collapses_passed_jobs_when_too_many() {
        let t0 = Instant::now();
        let small = Size { rows: 5, columns: 80 };
        let jobs = [
            done("a", Status::Success, 100),
            done("b", Status::Success, 100),
            done("c", Status::Failure, 100),
            done("d", Status::Success, 100),
            pending("e"),
        ];
        check(&jobs, t0, small, &["✓ 3 passed", "✗ failed    c   0.1s", "· pending   e"]);
        // When they fit, nothing collapses.
        assert_eq!(render(&jobs[..4], t0, small, false).len(), 4);
    }

    #[test]
    fn folds_what_still_does_not_fit() {
        let t0 = Instant::now();
        let small = Size { rows: 4, columns: 80 };
        let jobs = [done("a", Status::Success, 100), pending("b"), pending("c"), pending("d"), pending("e")];
        check(&jobs, t0, small, &["✓ 1 passed", "· pending   b", "… 3 more"]);
    }

    #[test]
    fn cuts_rows_to_the_width() {
        let t0 = Instant::now();
        let narrow = Size { rows: 40, columns: 20 };
        check(&[pending("a-very-long-job-name")], t0, narrow, &["· pending   a-very-…"]);
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
    }
}
