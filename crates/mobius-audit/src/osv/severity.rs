//! An advisory's severity: a label (GitHub's `database_specific.severity`, or an ecosystem's)
//! and, when a CVSS v3 vector is given, its base score.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use super::cvss;
use super::record::Record;

/// Severity bands, in CVSS v3's ranges (low 0.1–3.9, medium 4.0–6.9, high 7.0–8.9, critical
/// 9.0–10.0). GitHub's `MODERATE` is `Medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 0.1–3.9.
    Low,
    /// 4.0–6.9.
    Medium,
    /// 7.0–8.9.
    High,
    /// 9.0–10.0.
    Critical,
}

impl Severity {
    /// The band of a CVSS score; a score of 0 has none.
    pub fn from_score(score: f64) -> Option<Severity> {
        match score {
            s if s >= 9.0 => Some(Severity::Critical),
            s if s >= 7.0 => Some(Severity::High),
            s if s >= 4.0 => Some(Severity::Medium),
            s if s > 0.0 => Some(Severity::Low),
            _ => None,
        }
    }

    /// A number inside the band, for consumers that want a score (SARIF's
    /// `security-severity`) when an advisory gives only a label.
    pub fn representative_score(self) -> f64 {
        match self {
            Severity::Low => 2.0,
            Severity::Medium => 5.5,
            Severity::High => 8.0,
            Severity::Critical => 9.5,
        }
    }

    /// The lowercase name (`low`, `medium`, `high`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is none of the bands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected low, medium, moderate, high or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(text: &str) -> Result<Severity, UnknownSeverity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(text.to_owned())),
        }
    }
}

/// The severity band and CVSS v3 base score of a record. The label comes from the record's
/// `database_specific.severity`, else from an affected entry's `database_specific` or
/// `ecosystem_specific` `severity`, else from the score's band.
pub(super) fn assess(record: &Record) -> (Option<Severity>, Option<f64>) {
    let score = record
        .severity
        .iter()
        .chain(record.affected.iter().flat_map(|a| &a.severity))
        .filter(|s| s.kind == "CVSS_V3")
        .find_map(|s| cvss::base_score_v3(&s.score));
    let label = |value: &Option<Value>| -> Option<Severity> { value.as_ref()?.get("severity")?.as_str()?.parse().ok() };
    let labelled = label(&record.database_specific).or_else(|| {
        record.affected.iter().find_map(|a| label(&a.database_specific).or_else(|| label(&a.ecosystem_specific)))
    });
    (labelled.or_else(|| score.and_then(Severity::from_score)), score)
}
