//! `go.sum`: `<module> <version>[/go.mod] <hash>` per line. A `/go.mod` line only records the
//! module's `go.mod` file hash (the module graph), not code that is built, so it is left out.

use std::path::Path;

use super::LockfileError;
use crate::package::{Ecosystem, Location, Package};

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Package>, LockfileError> {
    let mut packages = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let error = |message: String| LockfileError::AtLine { path: path.to_owned(), line: line_number, message };
        let [module, version, hash] = fields[..] else {
            return Err(error(format!("expected `<module> <version> <hash>`, found {} fields", fields.len())));
        };
        if !hash.contains(':') {
            return Err(error(format!("hash {hash:?} has no `<algorithm>:` prefix")));
        }
        if version.ends_with("/go.mod") {
            continue;
        }
        // `+incompatible` stays in the version as written; ordering ignores it (it is SemVer
        // build metadata), so `v2.0.0+incompatible` compares as `2.0.0`.
        if !version.starts_with('v') {
            return Err(error(format!("version {version:?} of {module} does not start with `v`")));
        }
        packages.push(Package {
            ecosystem: Ecosystem::Go,
            name: module.to_owned(),
            version: version.to_owned(),
            source: Location { file: path.to_owned(), line: line_number },
        });
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modules_and_drops_go_mod_lines() {
        let text = "github.com/a/b v1.2.3 h1:abc=\n\
                    github.com/a/b v1.2.3/go.mod h1:def=\n\
                    github.com/c/d v1.0.0/go.mod h1:ghi=\n\
                    \n\
                    github.com/e/f v2.0.0+incompatible h1:jkl=\n";
        let packages = parse(Path::new("go.sum"), text).unwrap();
        let found: Vec<_> = packages.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.source.line)).collect();
        assert_eq!(found, [("github.com/a/b", "v1.2.3", 1), ("github.com/e/f", "v2.0.0+incompatible", 5)]);
    }

    #[test]
    fn malformed_lines_are_errors_at_their_line() {
        for (text, expected) in [
            (
                "github.com/a/b v1.0.0 h1:x=\ngithub.com/a/b v1.0.0\n",
                "go.sum:2: expected `<module> <version> <hash>`, found 2 fields",
            ),
            ("github.com/a/b 1.0.0 h1:x=\n", "go.sum:1: version \"1.0.0\" of github.com/a/b does not start with `v`"),
            ("github.com/a/b v1.0.0 abc\n", "go.sum:1: hash \"abc\" has no `<algorithm>:` prefix"),
        ] {
            assert_eq!(parse(Path::new("go.sum"), text).unwrap_err().to_string(), expected);
        }
    }
}
