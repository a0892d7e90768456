//! Baselines: a previous gitleaks JSON report whose findings are not reported again.
//!
//! As gitleaks' `--baseline-path` (`detect/baseline.go`): a finding is old when RuleID,
//! Description, the four line and column fields, File, Commit, Author, Email, Date, Message and
//! Entropy all equal a baseline entry's, and Match and Secret too unless the scan redacts
//! (a redacted baseline holds no secrets to compare). The fingerprint is deliberately not
//! compared: gitleaks does not, and a baseline written by gitleaks may not carry one.

use std::path::{Path, PathBuf};

use crate::detect::Finding;

/// Why a baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be read.
    #[error("cannot read baseline {}", path.display())]
    Read {
        /// The baseline path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a gitleaks JSON report.
    #[error("{}:{line}:{column}: not a gitleaks JSON report: {message}", path.display())]
    Parse {
        /// The baseline path.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said.
        message: String,
    },
}

/// Findings already known.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    findings: Vec<Finding>,
}

impl Baseline {
    /// Reads a gitleaks JSON report.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read(path).map_err(|source| BaselineError::Read { path: path.to_path_buf(), source })?;
        let findings: Vec<Finding> = serde_json::from_slice(&text).map_err(|err| BaselineError::Parse {
            path: path.to_path_buf(),
            line: err.line(),
            column: err.column(),
            // serde_json's message ends with the position, which the error already leads with.
            message: {
                let text = err.to_string();
                text.rsplit_once(" at line ").map_or(text.clone(), |(message, _)| message.to_string())
            },
        })?;
        Ok(Baseline { findings })
    }

    /// A baseline of these findings.
    pub fn from_findings(findings: Vec<Finding>) -> Baseline {
        Baseline { findings }
    }

    /// Whether `finding` is already in the baseline.
    pub fn contains(&self, finding: &Finding, redact: bool) -> bool {
        self.findings.iter().any(|old| same(old, finding, redact))
    }
}

fn same(old: &Finding, new: &Finding, redact: bool) -> bool {
    old.rule_id == new.rule_id
        && old.description == new.description
        && old.start_line == new.start_line
        && old.end_line == new.end_line
        && old.start_column == new.start_column
        && old.end_column == new.end_column
        && old.file == new.file
        && old.commit == new.commit
        && old.author == new.author
        && old.email == new.email
        && old.date == new.date
        && old.message == new.message
        && old.entropy == new.entropy
        && (redact || (old.matched == new.matched && old.secret == new.secret))
}
