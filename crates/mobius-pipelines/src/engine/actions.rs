//! What the engine does natively for `uses:` steps, and the workspace copy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a `uses:` step amounts to here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Native {
    /// `actions/checkout`: the workspace was already copied when the job started.
    Checkout,
    /// A setup action: succeeds when the tool is on `PATH`, since nothing is installed.
    RequireTool(&'static str),
    /// Supported by `mobius lint` but not run yet; the message says so.
    NotImplemented(String),
}

/// The action's name without its `@ref`.
pub(super) fn action_name(reference: &str) -> &str {
    reference.split('@').next().unwrap_or(reference)
}

/// How the engine handles `uses: reference`.
pub(super) fn native(reference: &str) -> Native {
    let name = action_name(reference);
    match name {
        "actions/checkout" => Native::Checkout,
        "actions/setup-python" => Native::RequireTool("python3"),
        "dtolnay/rust-toolchain" => Native::RequireTool("cargo"),
        "actions/setup-node" => Native::RequireTool("node"),
        "actions/setup-go" => Native::RequireTool("go"),
        "actions/setup-java" => Native::RequireTool("java"),
        _ => match crate::workflow::unsupported(reference) {
            Some(why) => Native::NotImplemented(why),
            None => Native::NotImplemented(format!("`{name}` is not implemented yet")),
        },
    }
}

/// Whether an executable file named `tool` is in one of `dirs`.
pub(super) fn on_path(tool: &str, dirs: &[PathBuf]) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter()
        .any(|dir| fs::metadata(dir.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Copies `from` into `to` recursively, leaving out `.git` (the job must not push with the
/// user's credentials or see other branches) and `target/` (build output, often huge). Symbolic
/// links are recreated as links, not followed, so a link cannot pull in files from outside.
pub(super) fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" || name == "target" {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &dest)?;
        } else if kind.is_dir() {
            copy_tree(&source, &dest)?;
        } else if kind.is_file() {
            fs::copy(&source, &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_actions() {
        assert_eq!(native("actions/checkout@v4"), Native::Checkout);
        assert_eq!(native("dtolnay/rust-toolchain@stable"), Native::RequireTool("cargo"));
        assert_eq!(native("actions/cache@v4"), Native::NotImplemented("`actions/cache` is not implemented yet".into()));
    }
}
