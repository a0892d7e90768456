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
    /// A type this reader does not know (a later schema's): skipped like `GIT`.
    #[serde(other)]
    Unknown,
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

// Keys other than the four are ignored (a later schema may add some); an event must still
// have exactly one of the four.
#[derive(Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as the exports are: GitHub's record with its own fields, a RustSec-style
    /// `ecosystem_specific`, range-level `database_specific`, a CVSS v4 vector, fractional
    /// seconds, and a range type this reader does not know.
    #[test]
    fn reads_records_as_the_databases_export_them() {
        let text = r#"{
          "schema_version": "1.6.0",
          "id": "GHSA-xxxx-yyyy-zzzz",
          "modified": "2024-03-01T12:34:56.789012Z",
          "published": "2021-01-04T00:00:00Z",
          "aliases": ["CVE-2021-25900", "RUSTSEC-2021-0003"],
          "related": [],
          "summary": "Buffer overflow in SmallVec::insert_many",
          "details": "A bug in `insert_many` ...",
          "severity": [
            {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
          ],
          "affected": [{
            "package": {"ecosystem": "crates.io", "name": "smallvec", "purl": "pkg:cargo/smallvec"},
            "ranges": [
              {"type": "SEMVER", "events": [{"introduced": "0.6.3"}, {"fixed": "0.6.14"}],
               "database_specific": {"last_known_affected_version_range": "< 0.6.14"}},
              {"type": "CHERRY_PICKED", "events": [{"introduced": "0"}]}
            ],
            "ecosystem_specific": {"affects": {"arch": [], "os": [], "functions": ["smallvec::SmallVec::insert_many"]}},
            "database_specific": {"source": "https://example.com/RUSTSEC-2021-0003.json"}
          }],
          "references": [{"type": "ADVISORY", "url": "https://example.com/advisory"}],
          "credits": [{"name": "someone", "type": "FINDER"}],
          "database_specific": {"cwe_ids": ["CWE-787"], "severity": "CRITICAL", "github_reviewed": true, "nvd_published_at": null}
        }"#;
        let record: Record = serde_json::from_str(text).unwrap();
        assert_eq!(record.id, "GHSA-xxxx-yyyy-zzzz");
        assert_eq!(record.modified.to_string(), "2024-03-01T12:34:56.789012Z");
        assert_eq!(
            record.affected[0].ranges[0].events,
            [Event::Introduced("0.6.3".into()), Event::Fixed("0.6.14".into())]
        );
        assert_eq!(record.affected[0].ranges[1].kind, RangeKind::Unknown);
        assert_eq!(record.severity.len(), 2);
    }

    #[test]
    fn an_event_needs_exactly_one_of_the_four() {
        for text in [r#"{}"#, r#"{"introduced": "0", "fixed": "1"}"#, r#"{"note": "x"}"#] {
            let error = serde_json::from_str::<Event>(text).unwrap_err().to_string();
            assert!(error.contains("exactly one of introduced, fixed, last_affected and limit"), "{text}: {error}");
        }
        assert_eq!(serde_json::from_str::<Event>(r#"{"limit": "*", "note": "x"}"#).unwrap(), Event::Limit("*".into()));
    }
}
