//! The security gates' arguments: `scan secrets`, `scan deps`, `sbom`, `hooks` and `policy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Find secrets (keys, tokens, passwords) in files, in git history or in staged changes
    ///
    /// Reads gitleaks' configuration: --config, else GITLEAKS_CONFIG (a path) or
    /// GITLEAKS_CONFIG_TOML (the text), else `.gitleaks.toml` at the scanned root, else the
    /// built-in rules (65 credential types). A line with `gitleaks:allow` is never reported,
    /// nor a fingerprint listed in `.gitleaksignore`. Secrets are masked in the text report.
    ///
    /// Exit codes: 0 no leak, 1 (or --exit-code) leaks found, 2 the scan could not run (bad
    /// config, baseline, path or repository).
    #[command(after_help = "Examples:\n  mobius scan secrets                  # the current directory\n  \
                            mobius scan secrets --git main..HEAD  # lines added on this branch\n  \
                            mobius scan secrets --staged          # what `git commit` would add\n  \
                            mobius scan secrets --format sarif --output secrets.sarif")]
    Secrets(ScanSecretsArgs),
    /// Find known vulnerabilities of locked dependencies in an offline OSV database
    ///
    /// Reads Cargo.lock, package-lock.json / npm-shrinkwrap.json, requirements*.txt (pinned
    /// with ==), poetry.lock and go.sum, found under each PATH (default: the current
    /// directory), and matches them against `<osv-dir>/<Ecosystem>/all.zip`, the exports of
    /// https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip.
    ///
    /// Exit codes: 0 nothing at or above --fail-on, 1 vulnerable, 2 the audit could not run
    /// (a lockfile or archive that cannot be read, a database older than --max-age with
    /// --fail-on-old), 128 no package found.
    #[command(after_help = "Example:\n  mobius scan deps --osv-dir /srv/osv --fail-on high --max-age 7d")]
    Deps(ScanDepsArgs),
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For a terminal
    Text,
    /// Machine-readable JSON (gitleaks' report for secrets)
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards
    Sarif,
}

#[derive(Debug, Args)]
pub struct ScanSecretsArgs {
    /// A directory or file to scan; with --git or --staged, the repository [default: .]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Scan the lines added by commits instead of files: all refs, or a `git log` range
    /// such as `main..HEAD` or `HEAD~5..`
    #[arg(long, value_name = "RANGE", num_args = 0..=1, default_missing_value = "", conflicts_with = "staged")]
    pub git: Option<String>,
    /// Scan the lines added by the staged changes (what a pre-commit hook sees)
    #[arg(long)]
    pub staged: bool,
    /// A gitleaks config (TOML) [default: GITLEAKS_CONFIG, GITLEAKS_CONFIG_TOML, then
    /// `.gitleaks.toml` at the scanned root, then the built-in rules]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A previous JSON report: findings it lists are not reported again
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// The report's format [default: text, or json with --json]
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write the report to FILE instead of standard output
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace secrets by REDACTED in JSON and SARIF reports (text always masks them)
    #[arg(long)]
    pub redact: bool,
    /// The exit status when leaks are found (not 0 or 2, which mean no leak and an error)
    #[arg(long, value_name = "N", default_value_t = mobius_scan::EXIT_LEAKS, value_parser = leak_exit_code)]
    pub exit_code: u8,
}

#[derive(Debug, Args)]
pub struct ScanDepsArgs {
    /// Lockfiles, or directories searched for them [default: .]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The OSV database: a directory holding `<Ecosystem>/all.zip` (crates.io, npm, PyPI, Go)
    #[arg(long, env = "MOBIUS_OSV_DIR", value_name = "DIR")]
    pub osv_dir: PathBuf,
    /// The report's format [default: text, or json with --json]
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write the report to FILE instead of standard output
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Warn when the database's newest record is older than this: 7d, 36h, 90m
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub max_age: Option<Duration>,
    /// With --max-age: refuse to audit with an older database instead of warning
    #[arg(long, requires = "max_age")]
    pub fail_on_old: bool,
    /// Fail only on findings of this severity or above (low, medium, high, critical); a
    /// finding without a severity always fails [default: any finding fails]
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<mobius_audit::Severity>,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// Lockfiles, or directories searched for them [default: .]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The application's name [default: the first path's directory name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The application's version
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Write the SBOM to FILE instead of standard output
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install a pre-commit hook that refuses commits adding a secret
    ///
    /// Writes the hook to the repository's hooks directory (`git rev-parse --git-path
    /// hooks`, so core.hooksPath is honoured). The hook runs `mobius scan secrets --staged`;
    /// `SKIP=mobius-secrets git commit …` bypasses it once.
    Install {
        /// The repository [default: .]
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        /// Replace an existing pre-commit hook that is not this one
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the policies' tests (`test_*` rules) as `opa test` does; exits 1 if one fails
    Test {
        /// The policy directory: `*.rego` with `package mobius.gate`, and `*_test.rego`
        #[arg(value_name = "DIR", default_value = "policies")]
        dir: PathBuf,
    },
    /// Decide on an input document: prints {"allow", "deny", "warn"} and exits 1 on deny
    ///
    /// The input is the JSON a gate sees (action, service, environment, artifact, actor,
    /// reason, time, slo; see crates/mobius-policy/README.md). A policy that errs denies.
    Eval {
        /// The policy directory
        #[arg(long, value_name = "DIR")]
        policy: PathBuf,
        /// The input document (JSON); `-` reads standard input
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
}

fn leak_exit_code(text: &str) -> Result<u8, String> {
    let code: u8 = text.parse().map_err(|_| format!("`{text}` is not an exit status (1 to 255)"))?;
    match code {
        mobius_scan::EXIT_NO_LEAKS => Err("0 would make leaks look like a clean scan".into()),
        mobius_scan::EXIT_ERROR => Err("2 is the status of a scan that could not run".into()),
        code => Ok(code),
    }
}

fn parse_severity(text: &str) -> Result<mobius_audit::Severity, String> {
    text.parse().map_err(|e: <mobius_audit::Severity as std::str::FromStr>::Err| e.to_string())
}

fn parse_age(text: &str) -> Result<Duration, String> {
    mobius_audit::parse_max_age(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leak_exit_codes_that_mean_something_else_are_refused() {
        assert_eq!(leak_exit_code("1"), Ok(1));
        assert_eq!(leak_exit_code("3"), Ok(3));
        assert!(leak_exit_code("0").unwrap_err().contains("clean"));
        assert!(leak_exit_code("2").unwrap_err().contains("could not run"));
        assert!(leak_exit_code("256").is_err());
    }
}
