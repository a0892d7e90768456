//! mobius-policy's integration tests: the shipped example policies, loading refusals, failing
//! closed, and `opa test`-style runs.

mod decide;
mod load;
mod policy_tests;

use std::path::{Path, PathBuf};

/// `examples/policies/` at the repository root.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

/// The input `README.md` shows: its first ```json block.
fn readme_input() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```json\n").expect("README.md has a ```json block") + "```json\n".len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_owned()
}

/// The README's input with `changes` merged in (objects recursively, like Rego's
/// `object.union`), as JSON text.
fn input_with(changes: serde_json::Value) -> String {
    fn merge(base: &mut serde_json::Value, changes: serde_json::Value) {
        match (base, changes) {
            (serde_json::Value::Object(base), serde_json::Value::Object(changes)) => {
                for (key, value) in changes {
                    match base.get_mut(&key) {
                        Some(slot) => merge(slot, value),
                        None => {
                            base.insert(key, value);
                        }
                    }
                }
            }
            (slot, value) => *slot = value,
        }
    }
    let mut base: serde_json::Value = serde_json::from_str(&readme_input()).unwrap();
    merge(&mut base, changes);
    base.to_string()
}

/// A directory holding `files` (name, Rego).
fn policy_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}
