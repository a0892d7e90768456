//! `Cargo.lock`: `[[package]]` tables with `name`, `version` and, for registry crates, `source`.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{LockfileError, line_of, toml_error};
use crate::package::{Ecosystem, Location, Package};

/// The index crates.io is reached through, in git and sparse form.
const CRATES_IO_SOURCES: [&str; 2] =
    ["registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"];

#[derive(Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<Spanned<CargoPackage>>,
}

#[derive(Deserialize)]
struct CargoPackage {
    name: String,
    version: String,
    source: Option<String>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Package>, LockfileError> {
    let lock: CargoLock = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| p.get_ref().source.as_deref().is_some_and(|s| CRATES_IO_SOURCES.contains(&s)))
        .map(|p| {
            let line = line_of(text, p.span().start);
            let p = p.into_inner();
            Package {
                ecosystem: Ecosystem::CratesIo,
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

    #[test]
    fn reads_registry_crates_and_skips_path_and_git_ones() {
        let text = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["smallvec"]

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "fe0f37c9e8f3c5a4a66ad655a93c74daac4ad00c441533bf5c6e7990bb42604e"

[[package]]
name = "forked"
version = "0.2.0"
source = "git+https://example.com/forked#abc"

[[package]]
name = "time"
version = "0.1.44"
source = "sparse+https://index.crates.io/"
"#;
        let packages = parse(Path::new("Cargo.lock"), text).unwrap();
        let found: Vec<_> = packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.source.line)).collect();
        assert_eq!(found, [("smallvec", "1.6.0", 8), ("time", "0.1.44", 19)]);
    }

    #[test]
    fn a_package_without_version_is_an_error_at_its_line() {
        let text = "[[package]]\nname = \"a\"\nsource = \"sparse+https://index.crates.io/\"\n";
        let error = parse(Path::new("x/Cargo.lock"), text).unwrap_err().to_string();
        assert!(error.starts_with("x/Cargo.lock:"), "{error}");
        assert!(error.contains("version"), "{error}");
    }

    #[test]
    fn bad_toml_is_an_error_at_its_line() {
        let text = "[[package]]\nname = \"a\"\nversion = 1.0.0\n";
        let error = parse(Path::new("Cargo.lock"), text).unwrap_err().to_string();
        assert!(error.starts_with("Cargo.lock:3:"), "{error}");
    }
}
