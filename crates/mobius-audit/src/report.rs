//! What an audit found, and its text and JSON renderings. SARIF is in [`crate::sarif`].

use std::io::{self, Write};
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;

use crate::lockfile::LockfileKind;
use crate::osv::Archive;
use crate::package::{Ecosystem, Location, Package};

pub use crate::osv::severity::Severity;

/// A package version that an advisory affects.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The package, with where it is locked.
    pub package: Package,
    /// The advisory's id.
    pub advisory: String,
    /// Its other ids (CVE, GHSA, …).
    pub aliases: Vec<String>,
    /// Its one-line summary.
    pub summary: Option<String>,
    /// Its long description.
    #[serde(skip)]
    pub details: Option<String>,
    /// Its severity band, when it states one.
    pub severity: Option<Severity>,
    /// Its CVSS v3 base score, when it has a vector.
    pub score: Option<f64>,
    /// The lowest fixed version above the locked one, when the advisory names one.
    pub fixed: Option<String>,
    /// When the advisory was last modified.
    pub modified: Timestamp,
}

impl Finding {
    /// Whether this finding fails a gate at `threshold`. A finding without a severity fails
    /// every gate: an advisory nobody rated is not known to be harmless.
    pub fn meets(&self, threshold: Option<Severity>) -> bool {
        match (threshold, self.severity) {
            (None, _) | (Some(_), None) => true,
            (Some(threshold), Some(severity)) => severity >= threshold,
        }
    }
}

/// Something the reader of a report should know that is not a finding.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// A requirement without a single pinned version, which cannot be audited.
    Unpinned {
        /// Where it is.
        location: Location,
        /// Its name.
        name: String,
        /// Its specifier as written.
        specifier: String,
    },
    /// An advisory whose ranges could not be evaluated for a package.
    Undecided {
        /// The package.
        package: Package,
        /// The advisory.
        advisory: String,
        /// Why.
        reason: String,
    },
    /// An archive older than the allowed age.
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
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Unpinned { location, name, specifier } if specifier.is_empty() => {
                write!(f, "{location}: {name} has no pinned version (use ==) and was not audited")
            }
            Warning::Unpinned { location, name, specifier } => {
                write!(f, "{location}: {name} {specifier} is not pinned with == and was not audited")
            }
            Warning::Undecided { package, advisory, reason } => write!(
                f,
                "{}: {advisory} could not be evaluated for {} {}: {reason}",
                package.source, package.name, package.version
            ),
            Warning::StaleDatabase { ecosystem, archive, as_of, age_days, max_age_days } => write!(
                f,
                "the {ecosystem} advisory database {} is {age_days} days old (data as of {as_of}), more than {max_age_days}",
                archive.display()
            ),
        }
    }
}

/// A lockfile the audit read.
#[derive(Debug, Clone, Serialize)]
pub struct LockfileSummary {
    /// Its path.
    pub path: PathBuf,
    /// Its kind.
    pub kind: LockfileKind,
    /// How many packages it locks.
    pub packages: usize,
}

/// The outcome of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The lockfiles read.
    pub lockfiles: Vec<LockfileSummary>,
    /// The archives read.
    pub database: Vec<Archive>,
    /// The findings, by lockfile, line and advisory.
    pub findings: Vec<Finding>,
    /// Everything else worth knowing.
    pub warnings: Vec<Warning>,
}

impl Report {
    /// Packages audited, across lockfiles.
    pub fn package_count(&self) -> usize {
        self.lockfiles.iter().map(|l| l.packages).sum()
    }

    /// The report as a JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report always serialises")
    }

    /// A table of findings (package, version, advisory, severity, fixed version, location),
    /// then the warnings, the date of each archive's data, and a one-line summary.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let header = ["PACKAGE", "VERSION", "ADVISORY", "SEVERITY", "FIXED", "LOCATION"];
        let rows: Vec<[String; 6]> = self
            .findings
            .iter()
            .map(|f| {
                [
                    format!("{}/{}", f.package.ecosystem, f.package.name),
                    f.package.version.clone(),
                    f.advisory.clone(),
                    match (f.severity, f.score) {
                        (Some(s), Some(score)) => format!("{s} ({score:.1})"),
                        (Some(s), None) => s.to_string(),
                        (None, _) => "unknown".to_owned(),
                    },
                    f.fixed.clone().unwrap_or_else(|| "-".to_owned()),
                    f.package.source.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            let mut widths = header.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let line = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
                let mut text = String::new();
                for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
                    if index + 1 == cells.len() {
                        text.push_str(cell);
                    } else {
                        text.push_str(&format!("{cell:<width$}  "));
                    }
                }
                writeln!(out, "{}", text.trim_end())
            };
            line(out, &header)?;
            for row in &rows {
                line(out, &row.each_ref().map(String::as_str))?;
            }
            writeln!(out)?;
        }
        for warning in &self.warnings {
            writeln!(out, "warning: {warning}")?;
        }
        for archive in &self.database {
            writeln!(
                out,
                "advisories: {} as of {} ({} records, {} withdrawn)",
                archive.ecosystem, archive.as_of, archive.records, archive.withdrawn
            )?;
        }
        let affected: std::collections::HashSet<_> =
            self.findings.iter().map(|f| (f.package.ecosystem, &f.package.name, &f.package.version)).collect();
        writeln!(
            out,
            "{} {} in {} of {} packages ({} lockfiles)",
            self.findings.len(),
            if self.findings.len() == 1 { "vulnerability" } else { "vulnerabilities" },
            affected.len(),
            self.package_count(),
            self.lockfiles.len(),
        )
    }
}
