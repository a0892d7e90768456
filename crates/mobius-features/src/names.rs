//! What a flag set's name and its environment may be.
//!
//! A set's name is its one identity, as a flagd source or an OFREP client key's set is: it
//! goes in URLs (`/api/v1/flags/{set}`), event ids (`<set>@<version>`) and file names, so it is
//! kept to letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 128
//! characters. The environment is what the set belongs to (`production`), not part of its name;
//! a set a release loads is named `<file's name>.<environment>` (see [`release_set_name`]).

use crate::FlagError;

/// The longest set name accepted.
pub const MAX_NAME: usize = 128;

/// Checks a set name; the error says why it is refused.
pub fn check_set(name: &str) -> Result<(), FlagError> {
    check(name).map_err(|why| FlagError::BadName { name: name.to_owned(), why })
}

/// Checks an environment name by the same rules (environments come from `mobius.yaml`, whose
/// names are simpler still).
pub fn check_environment(name: &str) -> Result<(), FlagError> {
    check(name).map_err(|why| FlagError::BadEnvironment { name: name.to_owned(), why })
}

fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_NAME {
        return Err("it is longer than 128 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or a digit");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err("it may hold only letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

/// The set a release's flag file loads into when deployed to `environment`: the file's own
/// name for its set (flagd's `metadata.flagSetId`) or else its file name without
/// `.flagd.json`, then `.` and the environment — one set per file and environment, so staging
/// and production never share a set by accident, and `shop.flagd.json` deployed to production
/// is the set `shop.production`.
pub fn release_set_name(base: &str, environment: &str) -> String {
    format!("{base}.{environment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_and_id_safe() {
        for good in ["shop", "shop.production", "a", "Team_1-flags", &"x".repeat(128)] {
            assert!(check_set(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "-x", "with space", "a/b", "a@b", "é", &"x".repeat(129)] {
            assert!(check_set(bad).is_err(), "{bad}");
        }
    }
}
