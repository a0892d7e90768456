//! Version ordering per ecosystem, as OSV's range evaluation needs it.
//!
//! crates.io, npm and Go order by SemVer 2.0 precedence (build metadata ignored, so Go's
//! `+incompatible` does not change a version's place), after dropping Go's leading `v`. PyPI
//! orders by PEP 440 ([`pep440`]).

pub mod pep440;

use std::cmp::Ordering;

use crate::package::Ecosystem;

pub use pep440::Pep440Version;

/// A version parsed under its ecosystem's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// crates.io, npm and Go.
    Semver(semver::Version),
    /// PyPI.
    Pep440(Pep440Version),
}

/// A version string its ecosystem's rules cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ecosystem} version {version:?} is not valid: {reason}")]
pub struct VersionError {
    /// The ecosystem whose rules were applied.
    pub ecosystem: Ecosystem,
    /// The string as given.
    pub version: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Version {
    /// Parses `text` under `ecosystem`'s rules.
    pub fn parse(ecosystem: Ecosystem, text: &str) -> Result<Version, VersionError> {
        let error = |reason: String| VersionError { ecosystem, version: text.to_owned(), reason };
        match ecosystem {
            Ecosystem::PyPi => Pep440Version::parse(text).map(Version::Pep440).map_err(error),
            Ecosystem::CratesIo | Ecosystem::Npm | Ecosystem::Go => {
                parse_semver(text).map(Version::Semver).map_err(|e| error(e.to_string()))
            }
        }
    }

    /// Orders two versions of the same ecosystem. Versions of different schemes (which the
    /// callers never mix) order SemVer first so the order stays total.
    pub fn order(&self, other: &Version) -> Ordering {
        match (self, other) {
            (Version::Semver(a), Version::Semver(b)) => a.cmp_precedence(b),
            (Version::Pep440(a), Version::Pep440(b)) => a.cmp(b),
            (Version::Semver(_), Version::Pep440(_)) => Ordering::Less,
            (Version::Pep440(_), Version::Semver(_)) => Ordering::Greater,
        }
    }
}

/// SemVer, accepting a leading `v` (Go) and a core of one or two numbers (`1.2` is `1.2.0`),
/// which some advisories write.
fn parse_semver(text: &str) -> Result<semver::Version, semver::Error> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    match semver::Version::parse(text) {
        Ok(version) => Ok(version),
        Err(error) => {
            let split = text.find(['-', '+']).unwrap_or(text.len());
            let (core, rest) = text.split_at(split);
            let dots = core.matches('.').count();
            if dots >= 2 || core.is_empty() || !core.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(error);
            }
            let padded = format!("{core}{}{rest}", ".0".repeat(2 - dots));
            semver::Version::parse(&padded).map_err(|_| error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ecosystem: Ecosystem, lower: &str, higher: &str) {
        let a = Version::parse(ecosystem, lower).unwrap();
        let b = Version::parse(ecosystem, higher).unwrap();
        assert_eq!(a.order(&b), Ordering::Less, "{lower} < {higher}");
        assert_eq!(b.order(&a), Ordering::Greater, "{higher} > {lower}");
    }

    #[test]
    fn semver_precedence_per_spec() {
        for (a, b) in [
            ("1.0.0-alpha", "1.0.0-alpha.1"),
            ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
            ("1.0.0-beta.2", "1.0.0-beta.11"),
            ("1.0.0-rc.1", "1.0.0"),
            ("1.9.0", "1.10.0"),
            ("0.9", "0.9.1"),
        ] {
            check(Ecosystem::CratesIo, a, b);
        }
    }

    #[test]
    fn go_versions_drop_v_and_ignore_incompatible() {
        check(Ecosystem::Go, "v0.0.0-20200101000000-abcdefabcdef", "v0.1.0");
        check(Ecosystem::Go, "v1.9.9", "2.0.0");
        let incompatible = Version::parse(Ecosystem::Go, "v2.0.0+incompatible").unwrap();
        let plain = Version::parse(Ecosystem::Go, "2.0.0").unwrap();
        assert_eq!(incompatible.order(&plain), Ordering::Equal);
    }

    #[test]
    fn invalid_semver_is_an_error_naming_the_version() {
        let error = Version::parse(Ecosystem::Npm, "1.x").unwrap_err();
        assert_eq!(error.version, "1.x");
        assert!(error.to_string().starts_with("npm version \"1.x\" is not valid"), "{error}");
    }
}
