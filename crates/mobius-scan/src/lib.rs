//! Secret scanning, compatible with gitleaks' configuration and reports.
//!
//! - [`config`]: gitleaks' `.gitleaks.toml` (rules, allowlists, `[extend]`), validated with
//!   `file:line:col` errors; the built-in rules are in the same format (`default_rules.toml`).
//! - [`pattern`]: Go RE2 patterns compiled with Rust's `regex`, and the differences handled.
//! - [`detect`]: the detector (keyword prefilter, regexes, entropy, allowlists, inline
//!   `gitleaks:allow`) and the [`Finding`] with gitleaks' field names.
//! - [`dir`] and [`git`]: the sources (a directory tree; a history range's or the index's added
//!   lines, read from the `git` CLI).
//! - [`baseline`]: a previous JSON report whose findings are not reported again; fingerprints
//!   listed in `.gitleaksignore` at the target's root are not reported either.
//! - [`report`] and [`sarif`]: text, JSON and SARIF 2.1.0 output; `sarif` is scanner-neutral.
//!
//! [`run`] is what `mobius scan secrets` calls; [`scan`] is the same without the report.
//! Exit codes follow gitleaks where it has one: 0 without leaks, 1 (or `--exit-code`) with
//! leaks. gitleaks also exits 1 on errors, which a CI step cannot tell from leaks, so an error
//! here is [`EXIT_ERROR`] (2) instead.

pub mod baseline;
pub mod config;
pub mod detect;
pub mod dir;
pub mod git;
pub mod pattern;
pub mod report;
pub mod sarif;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use baseline::Baseline;
pub use config::Config;
pub use detect::{CommitInfo, Detector, Finding, Fragment};

/// Exit status when no leak is reported.
pub const EXIT_NO_LEAKS: u8 = 0;
/// Default exit status when leaks are reported (gitleaks' default; `--exit-code` changes it).
pub const EXIT_LEAKS: u8 = 1;
/// Exit status for a bad config, baseline or target (gitleaks uses 1, the same as leaks).
pub const EXIT_ERROR: u8 = 2;
/// Files larger than this are skipped in directory scans unless told otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 25 << 20;
/// The config file looked for at the root of the scanned tree or repository.
pub const CONFIG_FILE_NAME: &str = ".gitleaks.toml";
/// Fingerprints of findings not to report, one a line (`#` starts a comment), looked for at the
/// root of the scanned tree or repository, as gitleaks does.
pub const IGNORE_FILE_NAME: &str = ".gitleaksignore";

/// What to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanTarget {
    /// A directory tree (or a single file).
    Path(PathBuf),
    /// The added lines of a repository's history.
    GitRange {
        /// The repository (any directory inside its work tree).
        repo: PathBuf,
        /// `git log` revision arguments, e.g. `main..feature`; `None` scans all refs (`--all`).
        range: Option<String>,
    },
    /// The added lines of the staged changes (for a pre-commit hook).
    Staged {
        /// The repository.
        repo: PathBuf,
    },
}

/// Report formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// For a terminal, secrets masked.
    #[default]
    Text,
    /// gitleaks' JSON report.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// Everything a scan needs; what `mobius scan secrets` flags fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArgs {
    /// What to scan.
    pub target: ScanTarget,
    /// A gitleaks config; without it, `.gitleaks.toml` at the target's root, else the built-in rules.
    pub config: Option<PathBuf>,
    /// A gitleaks JSON report whose findings are not reported again.
    pub baseline: Option<PathBuf>,
    /// The report format.
    pub format: Format,
    /// Where to write the report; `None` writes it to the `out` given to [`run`].
    pub output: Option<PathBuf>,
    /// Replace secrets by `REDACTED` in JSON and SARIF reports (text always masks them).
    pub redact: bool,
    /// Exit status when leaks are found (gitleaks' `--exit-code`). Setting it to
    /// [`EXIT_ERROR`] or 0 makes leaks indistinguishable from an error or from a clean scan;
    /// the CLI should refuse that.
    pub exit_code: u8,
    /// ANSI colour in the text report.
    pub color: bool,
    /// Files larger than this (bytes) are skipped in directory scans.
    pub max_file_size: u64,
}

impl ScanArgs {
    /// Arguments with gitleaks' defaults for a target.
    pub fn new(target: ScanTarget) -> ScanArgs {
        ScanArgs {
            target,
            config: None,
            baseline: None,
            format: Format::Text,
            output: None,
            redact: false,
            exit_code: EXIT_LEAKS,
            color: false,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The config is unreadable or invalid.
    #[error("bad config")]
    Config(#[from] config::ConfigError),
    /// The baseline is unreadable or not a gitleaks report.
    #[error("bad baseline")]
    Baseline(#[from] baseline::BaselineError),
    /// The directory could not be read.
    #[error("cannot scan the directory")]
    Dir(#[from] dir::DirError),
    /// git failed.
    #[error("cannot read git")]
    Git(#[from] git::GitError),
    /// `.gitleaksignore` exists but cannot be read.
    #[error("cannot read {}", path.display())]
    Ignore {
        /// The ignore file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The report could not be written.
    #[error("cannot write the report to {}", path.as_deref().map_or("the output".into(), |p| p.display().to_string()))]
    Write {
        /// The output file, if not the given writer.
        path: Option<PathBuf>,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

impl ScanError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        EXIT_ERROR
    }
}

/// A scan's findings (after baseline) and how much it read.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// Findings to report.
    pub findings: Vec<Finding>,
    /// Findings left out because the baseline has them.
    pub baselined: usize,
    /// Findings left out because `.gitleaksignore` lists their fingerprint.
    pub ignored: usize,
    /// Bytes scanned (file contents, or added lines).
    pub bytes: u64,
}

/// Scans the target and writes the report; returns the exit status (0, or `exit_code` with leaks).
pub fn run(args: &ScanArgs, out: &mut dyn Write) -> Result<u8, ScanError> {
    run_with_config(load_config(args)?, args, out)
}

/// [`run`] with a config already loaded (from `GITLEAKS_CONFIG_TOML`'s text, say); `args.config`
/// is not read.
pub fn run_with_config(config: Config, args: &ScanArgs, out: &mut dyn Write) -> Result<u8, ScanError> {
    let detector = Detector::new(config);
    let outcome = scan_with(&detector, args)?;
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        match args.format {
            Format::Text => report::write_text(out, &outcome.findings, args.color),
            Format::Json => report::write_json(out, &outcome.findings, args.redact),
            Format::Sarif => report::write_sarif(out, detector.config(), &outcome.findings, args.redact),
        }
    };
    match &args.output {
        None => write(out).and_then(|()| out.flush()).map_err(|source| ScanError::Write { path: None, source })?,
        Some(path) => {
            let write_error = |source| ScanError::Write { path: Some(path.clone()), source };
            let mut file = BufWriter::new(File::create(path).map_err(write_error)?);
            write(&mut file).and_then(|()| file.flush()).map_err(write_error)?;
        }
    }
    Ok(if outcome.findings.is_empty() { EXIT_NO_LEAKS } else { args.exit_code })
}

/// Scans the target and returns the findings, without writing a report.
pub fn scan(args: &ScanArgs) -> Result<ScanOutcome, ScanError> {
    scan_with_config(load_config(args)?, args)
}

/// [`scan`] with a config already loaded; `args.config` is not read.
pub fn scan_with_config(config: Config, args: &ScanArgs) -> Result<ScanOutcome, ScanError> {
    scan_with(&Detector::new(config), args)
}

fn scan_with(detector: &Detector, args: &ScanArgs) -> Result<ScanOutcome, ScanError> {
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let (mut findings, bytes) = match &args.target {
        ScanTarget::Path(root) => {
            let (findings, stats) = dir::scan_dir(detector, root, args.max_file_size)?;
            (findings, stats.bytes)
        }
        ScanTarget::GitRange { repo, range } => {
            let mut collected = GitCollector::new(detector);
            git::scan_log(repo, range.as_deref().unwrap_or("--all"), &mut |commit, hunk| collected.hunk(commit, hunk))?;
            (collected.findings, collected.bytes)
        }
        ScanTarget::Staged { repo } => {
            let mut collected = GitCollector::new(detector);
            git::scan_staged(repo, &mut |commit, hunk| collected.hunk(commit, hunk))?;
            (collected.findings, collected.bytes)
        }
    };
    let ignore = read_ignore_file(&target_root(&args.target).join(IGNORE_FILE_NAME))?;
    let before = findings.len();
    // A commit's finding is also ignored by its fingerprint without the commit, as gitleaks does.
    findings.retain(|f| {
        !ignore.contains(&f.fingerprint) && !ignore.contains(&format!("{}:{}:{}", f.file, f.rule_id, f.start_line))
    });
    let ignored = before - findings.len();
    let before = findings.len();
    if let Some(baseline) = &baseline {
        findings.retain(|f| !baseline.contains(f, args.redact));
    }
    Ok(ScanOutcome { baselined: before - findings.len(), ignored, findings, bytes })
}

/// The fingerprints listed in an ignore file; none when it does not exist.
fn read_ignore_file(path: &Path) -> Result<std::collections::HashSet<String>, ScanError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            // `#` starts a comment at a line's start or after a space (a path may hold `#`).
            .map(|line| line.split(" #").next().unwrap_or_default().trim())
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(source) => Err(ScanError::Ignore { path: path.to_path_buf(), source }),
    }
}

fn target_root(target: &ScanTarget) -> &Path {
    match target {
        ScanTarget::Path(path) => path,
        ScanTarget::GitRange { repo, .. } | ScanTarget::Staged { repo } => repo,
    }
}

struct GitCollector<'a> {
    detector: &'a Detector,
    findings: Vec<Finding>,
    bytes: u64,
}

impl<'a> GitCollector<'a> {
    fn new(detector: &'a Detector) -> Self {
        GitCollector { detector, findings: Vec::new(), bytes: 0 }
    }

    fn hunk(&mut self, commit: Option<&CommitInfo>, hunk: &git::Hunk) {
        self.bytes += hunk.added.len() as u64;
        // Binary content shows as "Binary files differ" in a patch, never as added lines; a
        // NUL in added text still means a file not worth scanning as text.
        if hunk.added.contains(&0) {
            return;
        }
        let fragment = Fragment {
            raw: &hunk.added,
            path: &hunk.path,
            start_line: hunk.start_line,
            commit,
            first_of_file: hunk.first_of_file,
        };
        self.findings.extend(self.detector.detect(&fragment));
    }
}

/// The config a scan uses: the one given, else `.gitleaks.toml` at the target's root, else
/// the built-in rules.
pub fn load_config(args: &ScanArgs) -> Result<Config, ScanError> {
    if let Some(path) = &args.config {
        return Ok(Config::load(path)?);
    }
    let candidate = target_root(&args.target).join(CONFIG_FILE_NAME);
    if candidate.is_file() { Ok(Config::load(&candidate)?) } else { Ok(Config::default_rules()) }
}

/// A POSIX `sh` pre-commit hook that blocks a commit whose staged changes hold a secret.
///
/// `mobius hooks install` writes it to `.git/hooks/pre-commit`. `SKIP=mobius-secrets` (the
/// pre-commit framework's convention) bypasses it for one commit.
pub fn pre_commit_hook_script() -> &'static str {
    include_str!("pre-commit.sh")
}
