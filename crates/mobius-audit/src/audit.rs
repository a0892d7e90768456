//! The audit a CLI runs: read lockfiles, read the database, match, render, and decide the
//! exit code.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::lockfile::{self, Lockfile, LockfileError};
use crate::osv::{Database, DatabaseError};
use crate::package::Ecosystem;
use crate::report::{Finding, LockfileSummary, Report, Severity, Warning};
use crate::sarif;

/// Exit code: no finding at or above the threshold.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: at least one finding at or above the threshold.
pub const EXIT_VULNERABLE: u8 = 1;
/// Exit code: the paths held no packages to audit (osv-scanner's code for this).
pub const EXIT_NO_PACKAGES: u8 = 128;

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A table for terminals.
    #[default]
    Text,
    /// The [`Report`] as JSON.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct AuditArgs {
    /// Lockfiles, or directories searched for them ([`lockfile::discover`]).
    pub paths: Vec<PathBuf>,
    /// The OSV database directory ([`Database::locate`] says where archives are looked for).
    pub osv_dir: PathBuf,
    /// The report's format.
    pub format: Format,
    /// A file to write the report to instead of the given writer.
    pub output: Option<PathBuf>,
    /// How old an archive's data may be before it is reported as stale.
    pub max_age: Option<Duration>,
    /// Refuse to audit with a stale archive, rather than warn.
    pub fail_on_old: bool,
    /// The lowest severity that fails the audit; `None` fails on any finding. Findings without
    /// a severity fail at every threshold.
    pub fail_on: Option<Severity>,
}

/// Why an audit could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A lockfile could not be read.
    #[error(transparent)]
    Lockfile(#[from] LockfileError),
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// An archive is older than allowed and `fail_on_old` is set.
    #[error("the {ecosystem} advisory database {} is {age_days} days old (data as of {as_of}), more than the {max_age_days} allowed", archive.display())]
    StaleDatabase {
        /// Its ecosystem.
        ecosystem: Ecosystem,
        /// The archive.
        archive: PathBuf,
        /// How recent its data is.
        as_of: Timestamp,
        /// Its age in whole days.
        age_days: i64,
        /// The allowed age in whole days.
        max_age_days: i64,
    },
    /// The report could not be written.
    #[error("cannot write the report to {}", path.as_ref().map_or("the output".into(), |p| p.display().to_string()))]
    Write {
        /// The output file, when there is one.
        path: Option<PathBuf>,
        /// Why not.
        source: io::Error,
    },
}

/// A maximum age that is not a whole number and one unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: expected a whole number and a unit, as 7d, 36h, 90m or 45s")]
pub struct BadAge(pub String);

/// Reads a maximum database age as gates spell it: `7d`, `36h`, `90m`, `45s`.
pub fn parse_max_age(text: &str) -> Result<Duration, BadAge> {
    let bad = || BadAge(text.to_owned());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    number.checked_mul(seconds).map(Duration::from_secs).ok_or_else(bad)
}

/// Runs the audit now and writes its report; see [`audit_at`].
pub fn audit(args: &AuditArgs, out: &mut dyn Write) -> Result<u8, AuditError> {
    audit_at(args, out, Timestamp::now())
}

/// Runs the audit as of `now` (which only the staleness rule reads), writes the report to
/// `args.output` or `out`, and returns the exit code: [`EXIT_CLEAN`], [`EXIT_VULNERABLE`] or
/// [`EXIT_NO_PACKAGES`].
pub fn audit_at(args: &AuditArgs, out: &mut dyn Write, now: Timestamp) -> Result<u8, AuditError> {
    let report = run(args, now)?;
    match &args.output {
        Some(path) => {
            let write_error = |source| AuditError::Write { path: Some(path.clone()), source };
            let mut file = BufWriter::new(File::create(path).map_err(write_error)?);
            render(&report, args.format, &mut file).and_then(|()| file.flush()).map_err(write_error)?;
        }
        None => render(&report, args.format, out).map_err(|source| AuditError::Write { path: None, source })?,
    }
    Ok(if report.package_count() == 0 {
        EXIT_NO_PACKAGES
    } else if report.findings.iter().any(|f| f.meets(args.fail_on)) {
        EXIT_VULNERABLE
    } else {
        EXIT_CLEAN
    })
}

/// Writes `report` in `format`.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => report.write_text(out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report.to_json())?;
            writeln!(out)
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif::to_sarif(report))?;
            writeln!(out)
        }
    }
}

/// Reads the lockfiles named or found under `paths`.
pub fn read_lockfiles(paths: &[PathBuf]) -> Result<Vec<Lockfile>, LockfileError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = path.metadata().map_err(|source| LockfileError::Read { path: path.clone(), source })?;
        if metadata.is_dir() {
            files.extend(lockfile::discover(path)?);
        } else {
            files.push(path.clone());
        }
    }
    files.iter().map(|f| Lockfile::read(f)).collect()
}

/// The audit without its rendering: the report, as of `now`.
pub fn run(args: &AuditArgs, now: Timestamp) -> Result<Report, AuditError> {
    let lockfiles = read_lockfiles(&args.paths)?;
    let packages: Vec<_> = lockfiles.iter().flat_map(|l| l.packages.iter().cloned()).collect();
    let database = Database::load(&args.osv_dir, &packages)?;
    let mut warnings = Vec::new();

    if let Some(max_age) = args.max_age {
        for archive in database.archives() {
            let age = now.duration_since(archive.as_of);
            let max_age = SignedDuration::try_from(max_age).unwrap_or(SignedDuration::MAX);
            if age > max_age {
                let (age_days, max_age_days) = (age.as_secs() / 86_400, max_age.as_secs() / 86_400);
                let (ecosystem, archive, as_of) = (archive.ecosystem, archive.path.clone(), archive.as_of);
                if args.fail_on_old {
                    return Err(AuditError::StaleDatabase { ecosystem, archive, as_of, age_days, max_age_days });
                }
                warnings.push(Warning::StaleDatabase { ecosystem, archive, as_of, age_days, max_age_days });
            }
        }
    }

    for lockfile in &lockfiles {
        for unpinned in &lockfile.unpinned {
            warnings.push(Warning::Unpinned {
                location: crate::Location { file: lockfile.path.clone(), line: unpinned.line },
                name: unpinned.name.clone(),
                specifier: unpinned.specifier.clone(),
            });
        }
    }

    let mut findings = Vec::new();
    for package in &packages {
        let (matches, undecided) = database.matches(package);
        let mut for_package = Vec::new();
        for found in matches {
            let record = &found.advisory.record;
            for_package.push(Finding {
                package: package.clone(),
                advisory: record.id.clone(),
                aliases: record.aliases.clone(),
                summary: record.summary.clone(),
                details: record.details.clone(),
                severity: found.advisory.severity,
                score: found.advisory.score,
                fixed: found.fixed,
                modified: record.modified,
            });
        }
        findings.extend(merge_aliases(for_package));
        for gap in undecided {
            warnings.push(Warning::Undecided {
                package: package.clone(),
                advisory: gap.advisory.record.id.clone(),
                reason: gap.error.to_string(),
            });
        }
    }
    findings.sort_by(|a, b| {
        (&a.package.source.file, a.package.source.line, &a.advisory).cmp(&(
            &b.package.source.file,
            b.package.source.line,
            &b.advisory,
        ))
    });

    Ok(Report {
        lockfiles: lockfiles
            .iter()
            .map(|l| LockfileSummary { path: l.path.clone(), kind: l.kind, packages: l.packages.len() })
            .collect(),
        database: database.archives().to_vec(),
        findings,
        warnings,
    })
}

/// One finding per vulnerability: databases publish the same one under several ids (a GHSA
/// record aliasing a RUSTSEC one, both aliasing a CVE), so findings for one package whose ids
/// and aliases overlap, directly or through another, become one. It keeps the alphabetically
/// first id (GHSA before PYSEC, RUSTSEC or GO), lists the others as aliases, and takes the
/// highest severity and score any of them states. Aliases come out sorted.
pub fn merge_aliases(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| a.advisory.cmp(&b.advisory));
    let names = |f: &Finding| -> Vec<String> { std::iter::once(&f.advisory).chain(&f.aliases).cloned().collect() };
    loop {
        let pair = (0..findings.len()).find_map(|i| {
            let of_i = names(&findings[i]);
            let j = findings[i + 1..].iter().position(|f| names(f).iter().any(|n| of_i.contains(n)))?;
            Some((i, i + 1 + j))
        });
        let Some((i, j)) = pair else {
            for finding in &mut findings {
                finding.aliases.sort();
            }
            return findings;
        };
        let other = findings.remove(j);
        let kept = &mut findings[i];
        for name in names(&other) {
            if name != kept.advisory && !kept.aliases.contains(&name) {
                kept.aliases.push(name);
            }
        }
        kept.severity = kept.severity.max(other.severity);
        kept.score = match (kept.score, other.score) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        kept.fixed = kept.fixed.take().or(other.fixed);
        kept.summary = kept.summary.take().or(other.summary);
        kept.details = kept.details.take().or(other.details);
        kept.modified = kept.modified.max(other.modified);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_a_whole_number_and_one_unit() {
        let check = |text: &str, expected: Option<u64>| {
            assert_eq!(parse_max_age(text).ok().map(|d| d.as_secs()), expected, "{text}");
        };
        check("7d", Some(7 * 86_400));
        check("36h", Some(36 * 3_600));
        check("90m", Some(5_400));
        check("45s", Some(45));
        for bad in ["7", "d", "7w", "1h30m", "-1d", "", "99999999999999999999d"] {
            check(bad, None);
        }
    }
}
