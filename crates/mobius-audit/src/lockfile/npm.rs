//! `package-lock.json` and `npm-shrinkwrap.json`, lockfile versions 1, 2 and 3.
//!
//! Version 1 nests `dependencies` by install location; versions 2 and 3 list `packages` by
//! their `node_modules/` path (version 2 carries both; `packages` is read). The root (`""`),
//! workspace members (paths outside `node_modules/`) and `link` entries are the project's own
//! code, not registry packages, and are left out; so are v1 entries whose version is a git,
//! file or URL reference.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{LockfileError, json_lines};
use crate::package::{Ecosystem, Location, Package};

struct Reader<'a> {
    path: &'a Path,
    lines: HashMap<Vec<String>, usize>,
    packages: Vec<Package>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Package>, LockfileError> {
    let document: Value = serde_json::from_str(text).map_err(|e| LockfileError::AtLine {
        path: path.to_owned(),
        line: e.line(),
        message: format!("invalid JSON: {e}"),
    })?;
    let mut reader = Reader { path, lines: json_lines::object_key_lines(text), packages: Vec::new() };
    let root = document.as_object().ok_or_else(|| reader.field("$", "expected an object"))?;
    let version = root
        .get("lockfileVersion")
        .ok_or_else(|| reader.field("lockfileVersion", "missing"))?
        .as_u64()
        .ok_or_else(|| reader.field("lockfileVersion", "expected a number"))?;
    match version {
        1 => {
            if let Some(dependencies) = root.get("dependencies") {
                reader.read_v1(&["dependencies".to_owned()], dependencies)?;
            }
        }
        2 | 3 => {
            let packages = root.get("packages").ok_or_else(|| reader.field("packages", "missing"))?;
            reader.read_v3(packages)?;
        }
        other => return Err(reader.field("lockfileVersion", &format!("version {other} is not 1, 2 or 3"))),
    }
    // File order, whatever order the JSON map iterates in, so the first of a repeated
    // package (the one kept) is the first in the file.
    reader.packages.sort_by_key(|p| p.source.line);
    Ok(reader.packages)
}

impl Reader<'_> {
    fn field(&self, field: &str, message: &str) -> LockfileError {
        LockfileError::AtField { path: self.path.to_owned(), field: field.to_owned(), message: message.to_owned() }
    }

    fn object<'v>(&self, value: &'v Value, field: &str) -> Result<&'v Map<String, Value>, LockfileError> {
        value.as_object().ok_or_else(|| self.field(field, "expected an object"))
    }

    fn string<'v>(
        &self,
        entry: &'v Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<&'v str>, LockfileError> {
        match entry.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.field(&format!("{field}.{key}"), "expected a string")),
        }
    }

    fn push(&mut self, name: &str, version: &str, key_path: &[String]) {
        let line = self.lines.get(key_path).copied().unwrap_or(1);
        self.packages.push(Package {
            ecosystem: Ecosystem::Npm,
            name: name.to_owned(),
            version: version.to_owned(),
            source: Location { file: self.path.to_owned(), line },
        });
    }

    /// `dependencies: { name: { version, dependencies: { … } } }`, recursively.
    fn read_v1(&mut self, key_path: &[String], dependencies: &Value) -> Result<(), LockfileError> {
        let field = json_path(key_path);
        for (name, entry) in self.object(dependencies, &field)? {
            let entry_field = format!("{field}[{}]", quoted(name));
            let entry = self.object(entry, &entry_field)?;
            let mut entry_path = key_path.to_vec();
            entry_path.push(name.clone());
            let version = self
                .string(entry, "version", &entry_field)?
                .ok_or_else(|| self.field(&format!("{entry_field}.version"), "missing"))?;
            // An alias (`"npm:real-name@1.2.3"`) installs another package under this name.
            let (real_name, real_version) = match version.strip_prefix("npm:").and_then(|v| v.rsplit_once('@')) {
                Some((real_name, real_version)) => (real_name, real_version),
                None => (name.as_str(), version),
            };
            if is_registry_version(real_version) {
                let (real_name, real_version) = (real_name.to_owned(), real_version.to_owned());
                self.push(&real_name, &real_version, &entry_path);
            }
            if let Some(nested) = entry.get("dependencies") {
                entry_path.push("dependencies".to_owned());
                self.read_v1(&entry_path, nested)?;
            }
        }
        Ok(())
    }

    /// `packages: { "node_modules/a/node_modules/@s/b": { version, name?, link? } }`.
    fn read_v3(&mut self, packages: &Value) -> Result<(), LockfileError> {
        for (key, entry) in self.object(packages, "packages")? {
            let field = format!("packages[{}]", quoted(key));
            let entry = self.object(entry, &field)?;
            let Some(at) = key.rfind("node_modules/") else {
                continue; // the root, or a workspace member
            };
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let installed_as = &key[at + "node_modules/".len()..];
            let name = self.string(entry, "name", &field)?.unwrap_or(installed_as);
            let version = self
                .string(entry, "version", &field)?
                .ok_or_else(|| self.field(&format!("{field}.version"), "missing"))?;
            let (name, version) = (name.to_owned(), version.to_owned());
            self.push(&name, &version, &["packages".to_owned(), key.clone()]);
        }
        Ok(())
    }
}

/// A v1 version that names a registry release, not a git, file or URL reference.
fn is_registry_version(version: &str) -> bool {
    version.starts_with(|c: char| c.is_ascii_digit())
}

fn quoted(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"))
}

/// `dependencies["a"].dependencies` for the key path `[dependencies, a, dependencies]`.
fn json_path(keys: &[String]) -> String {
    let mut out = String::new();
    for (index, key) in keys.iter().enumerate() {
        if index % 2 == 0 {
            if index > 0 {
                out.push('.');
            }
            out.push_str(key);
        } else {
            out.push('[');
            out.push_str(&quoted(key));
            out.push(']');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, expected: &str) {
        assert_eq!(parse(Path::new("package-lock.json"), text).unwrap_err().to_string(), expected);
    }

    #[test]
    fn errors_name_the_json_path() {
        check_error(r#"{"name": "x"}"#, "package-lock.json: lockfileVersion: missing");
        check_error(r#"{"lockfileVersion": 4}"#, "package-lock.json: lockfileVersion: version 4 is not 1, 2 or 3");
        check_error(
            r#"{"lockfileVersion": 3, "packages": {"node_modules/a": {"resolved": "x"}}}"#,
            "package-lock.json: packages[\"node_modules/a\"].version: missing",
        );
        check_error(
            r#"{"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0", "dependencies": {"b": {"version": 2}}}}}"#,
            "package-lock.json: dependencies[\"a\"].dependencies[\"b\"].version: expected a string",
        );
        check_error(
            "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n}",
            "package-lock.json:4: invalid JSON: EOF while parsing an object at line 4 column 1",
        );
    }
}
