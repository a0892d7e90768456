//! PyPI: `requirements.txt` (pinned `==` requirements; everything else is listed as unpinned)
//! and `poetry.lock`.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{LockfileError, Unpinned, line_of, toml_error};
use crate::package::{Ecosystem, Location, Package};

/// Reads a requirements file. Options (`-r`, `-e`, `--index-url`, …) are skipped; `--hash`
/// options after a requirement are ignored; environment markers (`; python_version < "3.9"`)
/// are dropped, so a pinned requirement counts whatever its marker says.
pub(super) fn parse_requirements(
    path: &Path,
    text: &str,
    unpinned: &mut Vec<Unpinned>,
) -> Result<Vec<Package>, LockfileError> {
    let mut packages = Vec::new();
    for (line_number, logical) in logical_lines(text) {
        let requirement = strip_comment(&logical).trim();
        if requirement.is_empty() || requirement.starts_with('-') {
            continue;
        }
        let error = |message: String| LockfileError::AtLine { path: path.to_owned(), line: line_number, message };
        // Options that follow a requirement, such as `--hash=sha256:…`.
        let requirement = match requirement.find(" --").or_else(|| requirement.find("\t--")) {
            Some(at) => requirement[..at].trim(),
            None => requirement,
        };
        let requirement = requirement.split(';').next().unwrap_or_default().trim();

        let name_length = requirement.bytes().take_while(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b)).count();
        if name_length == 0 {
            return Err(error(format!("expected a requirement (a package name), found {requirement:?}")));
        }
        let name = &requirement[..name_length];
        let mut rest = requirement[name_length..].trim_start();
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or_else(|| error(format!("extras of {name} are not closed by `]`")))?;
            rest = after[close + 1..].trim_start();
        }
        let specifier = rest.trim();
        match pinned_version(specifier) {
            Some(version) => packages.push(Package {
                ecosystem: Ecosystem::PyPi,
                name: name.to_owned(),
                version: version.to_owned(),
                source: Location { file: path.to_owned(), line: line_number },
            }),
            None => {
                unpinned.push(Unpinned { name: name.to_owned(), specifier: specifier.to_owned(), line: line_number })
            }
        }
    }
    Ok(packages)
}

/// The version of `==X` or `===X`, when that is the whole specifier and `X` has no wildcard.
fn pinned_version(specifier: &str) -> Option<&str> {
    let version = specifier.strip_prefix("===").or_else(|| specifier.strip_prefix("=="))?.trim();
    let single = !version.is_empty() && !version.contains([',', '*', ' ', '@']);
    single.then_some(version)
}

/// Lines joined where one ends in `\`, each with the number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let (start, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                current = Some((start, joined));
            }
            None => {
                joined.push_str(line);
                lines.push((start, joined));
            }
        }
    }
    lines.extend(current);
    lines
}

/// A line without its comment: `#` at the start or after whitespace (a URL's `#egg=` stays).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        if b == b'#' && (at == 0 || bytes[at - 1].is_ascii_whitespace()) {
            return &line[..at];
        }
    }
    line
}

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<Spanned<PoetryPackage>>,
}

#[derive(Deserialize)]
struct PoetryPackage {
    name: String,
    version: String,
    source: Option<PoetrySource>,
}

#[derive(Deserialize)]
struct PoetrySource {
    #[serde(rename = "type")]
    kind: String,
}

/// Reads `poetry.lock`. Packages from git, a directory, a file or a URL are not on PyPI and
/// are left out; `legacy` sources (a private index) are kept.
pub(super) fn parse_poetry(path: &Path, text: &str) -> Result<Vec<Package>, LockfileError> {
    let lock: PoetryLock = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| p.get_ref().source.as_ref().is_none_or(|s| s.kind == "legacy"))
        .map(|p| {
            let line = line_of(text, p.span().start);
            let p = p.into_inner();
            Package {
                ecosystem: Ecosystem::PyPi,
                name: p.name,
                version: p.version,
                source: Location { file: path.to_owned(), line },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirements(text: &str) -> (Vec<(String, String, usize)>, Vec<Unpinned>) {
        let mut unpinned = Vec::new();
        let packages = parse_requirements(Path::new("requirements.txt"), text, &mut unpinned).unwrap();
        (packages.into_iter().map(|p| (p.name, p.version, p.source.line)).collect(), unpinned)
    }

    #[test]
    fn pinned_requirements_are_packages_and_the_rest_unpinned() {
        let text = "# tools\n\
                    -r base.txt\n\
                    --index-url https://pypi.org/simple\n\
                    Django==4.2.1  # web\n\
                    requests[socks,security] == 2.31.0 ; python_version >= \"3.8\"\n\
                    urllib3==1.26.* \n\
                    flask>=2\n\
                    numpy\n\
                    pyyaml==6.0.1 \\\n    --hash=sha256:abc\n\
                    certifi===2023.7.22\n";
        let (packages, unpinned) = requirements(text);
        assert_eq!(
            packages,
            [
                ("Django".to_owned(), "4.2.1".to_owned(), 4),
                ("requests".to_owned(), "2.31.0".to_owned(), 5),
                ("pyyaml".to_owned(), "6.0.1".to_owned(), 9),
                ("certifi".to_owned(), "2023.7.22".to_owned(), 11),
            ]
        );
        let unpinned: Vec<_> = unpinned.iter().map(|u| (u.name.as_str(), u.specifier.as_str(), u.line)).collect();
        assert_eq!(unpinned, [("urllib3", "==1.26.*", 6), ("flask", ">=2", 7), ("numpy", "", 8)]);
    }

    #[test]
    fn a_line_that_is_no_requirement_is_an_error_at_its_line() {
        let mut unpinned = Vec::new();
        let error = parse_requirements(Path::new("req/requirements.txt"), "a==1\n==2.0\n", &mut unpinned).unwrap_err();
        assert_eq!(
            error.to_string(),
            "req/requirements.txt:2: expected a requirement (a package name), found \"==2.0\""
        );
    }

    #[test]
    fn poetry_lock_keeps_index_packages() {
        let text = r#"[[package]]
name = "jinja2"
version = "3.1.2"
description = "A very fast and expressive template engine."
optional = false
python-versions = ">=3.7"

[[package]]
name = "mylib"
version = "0.1.0"

[package.source]
type = "git"
url = "https://example.com/mylib.git"
reference = "main"

[[package]]
name = "private"
version = "1.0"

[package.source]
type = "legacy"
url = "https://pypi.example.com/simple"
reference = "private"

[metadata]
lock-version = "2.0"
"#;
        let packages = parse_poetry(Path::new("poetry.lock"), text).unwrap();
        let found: Vec<_> = packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.source.line)).collect();
        assert_eq!(found, [("jinja2", "3.1.2", 1), ("private", "1.0", 17)]);
    }

    #[test]
    fn poetry_lock_errors_name_the_line() {
        let text = "[[package]]\nname = \"a\"\n\n[[package]]\nname = \"b\"\nversion = \"1\"\n";
        let error = parse_poetry(Path::new("poetry.lock"), text).unwrap_err().to_string();
        assert!(error.starts_with("poetry.lock:"), "{error}");
        assert!(error.contains("version"), "{error}");
    }
}
