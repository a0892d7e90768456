//! Lockfile readers: each turns one file into the [`Package`]s it locks, each with the line
//! it was locked at, so findings and SARIF results point into the file.
//!
//! | file | ecosystem | what counts |
//! |---|---|---|
//! | `Cargo.lock` | crates.io | packages whose `source` is the crates.io index (path and git crates are not published there) |
//! | `package-lock.json`, `npm-shrinkwrap.json` | npm | v1: `dependencies`, nested; v2 and v3: `packages` under `node_modules/`, links and workspaces left out |
//! | `requirements*.txt` | PyPI | `name==version` only; every other requirement is listed as unpinned |
//! | `poetry.lock` | PyPI | packages from an index (not git, path or URL sources) |
//! | `go.sum` | Go | one per module and version; `/go.mod`-only lines left out |
//!
//! Errors say the file and the line, or the JSON path for `package-lock.json`'s fields.

mod cargo;
mod go;
mod json_lines;
mod npm;
mod python;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::package::Package;

/// The kinds of lockfile this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockfileKind {
    /// `Cargo.lock`.
    CargoLock,
    /// `package-lock.json` or `npm-shrinkwrap.json`.
    PackageLock,
    /// `requirements.txt` (and `requirements-*.txt`).
    Requirements,
    /// `poetry.lock`.
    PoetryLock,
    /// `go.sum`.
    GoSum,
}

impl LockfileKind {
    /// The kind a file's name says it is, if any.
    pub fn from_file_name(name: &str) -> Option<LockfileKind> {
        match name {
            "Cargo.lock" => Some(LockfileKind::CargoLock),
            "package-lock.json" | "npm-shrinkwrap.json" => Some(LockfileKind::PackageLock),
            "poetry.lock" => Some(LockfileKind::PoetryLock),
            "go.sum" => Some(LockfileKind::GoSum),
            _ if name.starts_with("requirements") && name.ends_with(".txt") => Some(LockfileKind::Requirements),
            _ => None,
        }
    }
}

/// A requirement that names no single version (`requests>=2`, `flask`, a URL), so it cannot be
/// audited: reported, not guessed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unpinned {
    /// The requirement's name.
    pub name: String,
    /// Its version specifier as written (empty when there is none).
    pub specifier: String,
    /// The line it is on.
    pub line: usize,
}

/// One lockfile, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    /// The file as given or found.
    pub path: PathBuf,
    /// What kind of lockfile it is.
    pub kind: LockfileKind,
    /// The packages it locks, in file order, each (ecosystem, name, version) once.
    pub packages: Vec<Package>,
    /// Requirements without a pinned version (requirements files only).
    pub unpinned: Vec<Unpinned>,
}

/// A lockfile that could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
    /// The file (or directory) could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// The file's name is not one of the lockfiles this crate reads.
    #[error("{}: not a lockfile this audit reads (Cargo.lock, package-lock.json, npm-shrinkwrap.json, requirements*.txt, poetry.lock, go.sum)", path.display())]
    UnknownKind {
        /// The file.
        path: PathBuf,
    },
    /// Something at a line is wrong.
    #[error("{}:{line}: {message}", path.display())]
    AtLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A field of a JSON lockfile is missing or has the wrong type.
    #[error("{}: {field}: {message}", path.display())]
    AtField {
        /// The file.
        path: PathBuf,
        /// The JSON path of the field, e.g. `packages["node_modules/a"].version`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Lockfile {
    /// Reads one lockfile, choosing the reader by the file's name.
    pub fn read(path: &Path) -> Result<Lockfile, LockfileError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let kind =
            LockfileKind::from_file_name(name).ok_or_else(|| LockfileError::UnknownKind { path: path.to_owned() })?;
        let text = fs::read_to_string(path).map_err(|source| LockfileError::Read { path: path.to_owned(), source })?;
        Lockfile::parse(kind, path, &text)
    }

    /// Reads `text` as a lockfile of `kind`; `path` is only used in locations and errors.
    pub fn parse(kind: LockfileKind, path: &Path, text: &str) -> Result<Lockfile, LockfileError> {
        let mut unpinned = Vec::new();
        let packages = match kind {
            LockfileKind::CargoLock => cargo::parse(path, text)?,
            LockfileKind::PackageLock => npm::parse(path, text)?,
            LockfileKind::Requirements => python::parse_requirements(path, text, &mut unpinned)?,
            LockfileKind::PoetryLock => python::parse_poetry(path, text)?,
            LockfileKind::GoSum => go::parse(path, text)?,
        };
        Ok(Lockfile { path: path.to_owned(), kind, packages: dedup(packages), unpinned })
    }
}

/// Directories that hold other projects' files, build output or VCS data, never lockfiles of
/// the project being audited.
const SKIPPED_DIRS: [&str; 7] = [".git", "node_modules", "target", "vendor", ".venv", "venv", "__pycache__"];

/// The lockfiles under `dir`, searched recursively (skipping `.git`, `node_modules`, `target`,
/// `vendor` and virtualenvs), in path order.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, LockfileError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| LockfileError::Read { path: dir.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| LockfileError::Read { path: dir.clone(), source })?;
            let file_type = entry.file_type().map_err(|source| LockfileError::Read { path: entry.path(), source })?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if file_type.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_ref()) {
                    pending.push(entry.path());
                }
            } else if file_type.is_file() && LockfileKind::from_file_name(&name).is_some() {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Keeps the first occurrence of each (ecosystem, name, version): npm lockfiles repeat a
/// package under several `node_modules/` paths, go.sum repeats a module per hash kind.
fn dedup(packages: Vec<Package>) -> Vec<Package> {
    let mut seen = std::collections::HashSet::new();
    packages.into_iter().filter(|p| seen.insert((p.ecosystem, p.name.clone(), p.version.clone()))).collect()
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A TOML reader's error at the line it points to.
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> LockfileError {
    LockfileError::AtLine {
        path: path.to_owned(),
        line: error.span().map_or(1, |span| line_of(text, span.start)),
        message: error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_file_name() {
        for (name, kind) in [
            ("Cargo.lock", Some(LockfileKind::CargoLock)),
            ("package-lock.json", Some(LockfileKind::PackageLock)),
            ("npm-shrinkwrap.json", Some(LockfileKind::PackageLock)),
            ("requirements.txt", Some(LockfileKind::Requirements)),
            ("requirements-dev.txt", Some(LockfileKind::Requirements)),
            ("poetry.lock", Some(LockfileKind::PoetryLock)),
            ("go.sum", Some(LockfileKind::GoSum)),
            ("go.mod", None),
            ("package.json", None),
        ] {
            assert_eq!(LockfileKind::from_file_name(name), kind, "{name}");
        }
    }

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        let text = "a\nbb\nccc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 5), 3);
    }
}
