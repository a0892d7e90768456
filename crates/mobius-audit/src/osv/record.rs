//! OSV records as serde reads them: the fields an audit uses, everything else ignored.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// One OSV record (an advisory).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// The advisory's id (`GHSA-…`, `RUSTSEC-…`, `GO-…`, `PYSEC-…`).
    pub id: String,
    /// When it was last changed.
    pub modified: Timestamp,
    /// When it was first published.
    pub published: Option<Timestamp>,
    /// Set when the advisory was retracted; such records are not matched.
    pub withdrawn: Option<Timestamp>,
    /// Other ids for the same vulnerability (CVE, GHSA, …).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A one-line summary.
    pub summary: Option<String>,
    /// The long description (CommonMark).
    pub details: Option<String>,
    /// Quantitative severities (CVSS vectors).
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// The affected packages and their versions.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// The database's own fields (GitHub's `severity` label lives here).
    pub database_specific: Option<Value>,
}

/// A `severity[]` entry: a scoring method and its score.
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityScore {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector or label.
    pub score: String,
}

/// One `affected[]` entry: a package and which of its versions are affected.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    /// The package; absent in records that only describe git ranges.
    pub package: Option<AffectedPackage>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package severities.
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// The ecosystem's own fields (RustSec's and Go's live here).
    pub ecosystem_specific: Option<Value>,
    /// The database's own fields for this package.
    pub database_specific: Option<Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize)]
pub struct AffectedPackage {
    /// The OSV ecosystem name (`crates.io`, `npm`, `PyPI`, `Go`, …).
    pub ecosystem: String,
    /// The package's name in that ecosystem.
    pub name: String,
}

/// How a range's event versions are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RangeKind {
    /// SemVer 2.0 precedence.
    #[serde(rename = "SEMVER")]
    Semver,
    /// The package ecosystem's own ordering.
    #[serde(rename = "ECOSYSTEM")]
    Ecosystem,
    /// Git commits: needs the repository's history, so not evaluated here.
    #[serde(rename = "GIT")]
    Git,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    /// How its versions are ordered.
    #[serde(rename = "type")]
    pub kind: RangeKind,
    /// The timeline of introductions and fixes.
    pub events: Vec<Event>,
}

/// One event of a range's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub enum Event {
    /// Affected from this version on (`"0"`: from the first version).
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Nothing at or above this version is in the range (`"*"`: no limit).
    Limit(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<Event, String> {
        match (raw.introduced, raw.fixed, raw.last_affected, raw.limit) {
            (Some(v), None, None, None) => Ok(Event::Introduced(v)),
            (None, Some(v), None, None) => Ok(Event::Fixed(v)),
            (None, None, Some(v), None) => Ok(Event::LastAffected(v)),
            (None, None, None, Some(v)) => Ok(Event::Limit(v)),
            _ => Err("an event must have exactly one of introduced, fixed, last_affected and limit".to_owned()),
        }
    }
}
