//! OSV's evaluation (`docs/schema.md`, "Evaluation"): a version is affected when it is listed
//! in `versions`, or when some `SEMVER`/`ECOSYSTEM` range, walked in version order, leaves it
//! introduced and neither fixed (`fixed` is exclusive) nor past `last_affected` (inclusive),
//! and it lies below one of the range's `limit`s (none means no limit). `GIT` ranges need the
//! repository's history and are skipped.

use std::cmp::Ordering;

use super::record::{Affected, Event, Range, RangeKind};
use crate::package::Ecosystem;
use crate::version::{Version, VersionError};

/// Whether a version is affected, and by which range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not affected.
    Unaffected,
    /// Affected; `fixed` is the lowest `fixed` version above it in the matching range, if any.
    Affected {
        /// The version to upgrade to, when the range names one.
        fixed: Option<String>,
    },
}

/// Evaluates `affected` for `version` (as written in the lockfile) of an `ecosystem` package.
/// A version that a range's ordering cannot read (the package's or an event's) leaves that
/// range undecided: unless another range or the `versions` list says affected, that is an
/// error, which the caller reports rather than guess.
pub fn evaluate(ecosystem: Ecosystem, version: &str, affected: &Affected) -> Result<Verdict, VersionError> {
    let mut listed = false;
    for candidate in &affected.versions {
        if same_version(ecosystem, version, candidate) {
            listed = true;
            break;
        }
    }
    let mut verdict = Verdict::Unaffected;
    let mut undecided = None;
    for range in &affected.ranges {
        let scheme = match range.kind {
            RangeKind::Git | RangeKind::Unknown => continue,
            // SemVer ranges order by SemVer whatever the ecosystem; crates.io's rules are it.
            RangeKind::Semver => Ecosystem::CratesIo,
            RangeKind::Ecosystem => ecosystem,
        };
        match evaluate_range(scheme, version, range) {
            // Several ranges may hold the version; the report wants a fix, so keep one.
            Ok(Verdict::Affected { fixed }) if fixed.is_some() || verdict == Verdict::Unaffected => {
                verdict = Verdict::Affected { fixed };
            }
            Ok(_) => {}
            Err(error) => undecided = undecided.or(Some(error)),
        }
    }
    if listed && verdict == Verdict::Unaffected {
        verdict = Verdict::Affected { fixed: None };
    }
    // A range that could not be read only matters when nothing else says affected.
    match (verdict, undecided) {
        (Verdict::Unaffected, Some(error)) => Err(error),
        (verdict, _) => Ok(verdict),
    }
}

/// Equality for the `versions` list: by the ecosystem's ordering when both parse (PyPI's
/// `1.0` is `1.0.0`, Go's `v1.2.3` is `1.2.3`), by string otherwise.
fn same_version(ecosystem: Ecosystem, a: &str, b: &str) -> bool {
    match (Version::parse(ecosystem, a), Version::parse(ecosystem, b)) {
        (Ok(a), Ok(b)) => a.order(&b) == Ordering::Equal,
        _ => a == b,
    }
}

/// An event's version: `Zero` is `introduced: "0"`, `Infinity` is `limit: "*"`.
#[derive(Debug)]
enum Point {
    Zero,
    At(Version),
    Infinity,
}

impl Point {
    fn order(&self, other: &Point) -> Ordering {
        match (self, other) {
            (Point::At(a), Point::At(b)) => a.order(b),
            (Point::Zero, Point::Zero) | (Point::Infinity, Point::Infinity) => Ordering::Equal,
            (Point::Zero, _) | (_, Point::Infinity) => Ordering::Less,
            (_, Point::Zero) | (Point::Infinity, _) => Ordering::Greater,
        }
    }
}

fn evaluate_range(scheme: Ecosystem, version: &str, range: &Range) -> Result<Verdict, VersionError> {
    let subject = Point::At(Version::parse(scheme, version)?);
    let mut events = Vec::with_capacity(range.events.len());
    for event in &range.events {
        let point = match event {
            Event::Introduced(v) if v == "0" => Point::Zero,
            Event::Limit(v) if v.contains('*') => Point::Infinity,
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => {
                Point::At(Version::parse(scheme, v)?)
            }
        };
        events.push((point, event));
    }

    let limits: Vec<&Point> =
        events.iter().filter(|(_, e)| matches!(e, Event::Limit(_))).map(|(point, _)| point).collect();
    if !limits.is_empty() && !limits.iter().any(|limit| subject.order(limit) == Ordering::Less) {
        return Ok(Verdict::Unaffected);
    }

    // Sorted by version; at one version an introduction comes first, so `introduced: X,
    // fixed: X` is an empty range rather than one that never closes.
    events.sort_by(|(a, ea), (b, eb)| a.order(b).then_with(|| rank(ea).cmp(&rank(eb))));
    let mut vulnerable = false;
    let mut fixed = None;
    for (point, event) in &events {
        match event {
            Event::Introduced(_) if subject.order(point) != Ordering::Less => vulnerable = true,
            Event::Fixed(_) if subject.order(point) != Ordering::Less => vulnerable = false,
            Event::LastAffected(_) if subject.order(point) == Ordering::Greater => vulnerable = false,
            Event::Fixed(v) if vulnerable && fixed.is_none() => fixed = Some(v.clone()),
            _ => {}
        }
    }
    Ok(if vulnerable { Verdict::Affected { fixed } } else { Verdict::Unaffected })
}

fn rank(event: &Event) -> u8 {
    match event {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) => 2,
        Event::Limit(_) => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::record::Affected;

    fn affected(value: serde_json::Value) -> Affected {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn an_unreadable_range_does_not_hide_a_readable_one() {
        let entry = affected(serde_json::json!({"ranges": [
            {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.x"}]},
            {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.2.0"}]},
        ]}));
        assert_eq!(evaluate(Ecosystem::Npm, "1.1.0", &entry), Ok(Verdict::Affected { fixed: Some("1.2.0".into()) }));
        let error = evaluate(Ecosystem::Npm, "2.0.0", &entry).unwrap_err();
        assert_eq!(error.version, "1.x");
    }

    #[test]
    fn equal_introduced_and_fixed_is_an_empty_range() {
        let entry = affected(serde_json::json!({"ranges": [
            {"type": "SEMVER", "events": [{"fixed": "1.0.0"}, {"introduced": "1.0.0"}]},
        ]}));
        for version in ["0.9.0", "1.0.0", "1.1.0"] {
            assert_eq!(evaluate(Ecosystem::CratesIo, version, &entry), Ok(Verdict::Unaffected), "{version}");
        }
    }
}
