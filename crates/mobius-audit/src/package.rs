//! What a lockfile yields: a package of an ecosystem at one version, and where it was locked.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A package ecosystem, named as OSV names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Ecosystem {
    /// Rust crates from crates.io.
    #[serde(rename = "crates.io")]
    CratesIo,
    /// npm packages.
    #[serde(rename = "npm")]
    Npm,
    /// Python packages from PyPI.
    #[serde(rename = "PyPI")]
    PyPi,
    /// Go modules.
    #[serde(rename = "Go")]
    Go,
}

impl Ecosystem {
    /// Every ecosystem this crate reads.
    pub const ALL: [Ecosystem; 4] = [Ecosystem::CratesIo, Ecosystem::Npm, Ecosystem::PyPi, Ecosystem::Go];

    /// The ecosystem's name in OSV records and in the database's directory layout.
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Npm => "npm",
            Ecosystem::PyPi => "PyPI",
            Ecosystem::Go => "Go",
        }
    }

    /// The ecosystem an OSV `package.ecosystem` names, if it is one of ours. A `:suffix`
    /// (a release or a registry) is not used by these four.
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        Ecosystem::ALL.into_iter().find(|e| e.osv_name() == name)
    }

    /// The name a package is matched under: PyPI names compare after PEP 503
    /// normalisation (`Foo_Bar` is `foo-bar`); the others are exact.
    pub fn canonical_name(self, name: &str) -> String {
        match self {
            Ecosystem::PyPi => normalise_pypi_name(name),
            _ => name.to_owned(),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// PEP 503: lowercase, and every run of `-`, `_` and `.` becomes one `-`.
pub(crate) fn normalise_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

/// Where a package was locked: the lockfile and the 1-based line of its entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    /// The lockfile, as it was given or found.
    pub file: PathBuf,
    /// The line of the package's entry (its `[[package]]` header, JSON key or requirement).
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Package {
    /// The ecosystem it comes from.
    pub ecosystem: Ecosystem,
    /// Its name as the lockfile spells it (an npm scope included, a Go module path whole).
    pub name: String,
    /// Its locked version as the lockfile spells it (Go's `v` and `+incompatible` kept).
    pub version: String,
    /// Where it was locked.
    pub source: Location,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pypi_names_normalise_per_pep_503() {
        for (input, expected) in [
            ("Django", "django"),
            ("zope.interface", "zope-interface"),
            ("A__b-.C", "a-b-c"),
            ("ruamel.yaml", "ruamel-yaml"),
        ] {
            assert_eq!(normalise_pypi_name(input), expected, "{input}");
        }
    }
}
