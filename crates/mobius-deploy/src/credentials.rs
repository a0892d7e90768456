//! Credentials do not belong in `mobius.yaml`'s `run.env`: the file is stored with every
//! rollout (in the database, its WAL and backups) and in the release directory, in clear.
//! A release whose `run.env` holds what looks like a credential is refused, naming the variable
//! and where it is; the place for one is the secret store, named as `${{ secrets.NAME }}` (see
//! [`crate::secret_refs`]).
//!
//! "Looks like" is two checks: a variable named like a secret (`…PASSWORD…`, `…SECRET…`,
//! `…TOKEN…`, `…CREDENTIAL…`, `…PRIVATE_KEY`, `…API_KEY`, `…ACCESS_KEY`, `…DEPLOY_KEY` and
//! the other key names in `KEY_NAMES`) whose value is not a boolean, a plain URL or (but for a
//! password) a number, since `TOKEN_TTL=3600` and `TOKEN_URL=https://…` are settings; or a
//! value in a well-known credential format (GitHub, GitLab and Slack tokens, AWS access keys,
//! Stripe live keys, private keys, JWTs, URLs with a password) whatever its name.

use std::collections::BTreeMap;

use crate::spec::SpecError;

/// Words in a variable's name that say its value is a secret.
const SECRET_NAMES: [&str; 6] = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE_KEY"];

/// Endings of a variable's name that say its value is a key (not `SORT_KEY` or `CACHE_KEY`).
const KEY_NAMES: [&str; 10] = [
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "AUTH_KEY",
    "DEPLOY_KEY",
    "ENCRYPTION_KEY",
    "HMAC_KEY",
    "LICENSE_KEY",
    "SIGNING_KEY",
    "SSH_KEY",
];

/// Prefixes of well-known tokens.
const TOKEN_PREFIXES: [&str; 10] =
    ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "sk_live_"];

/// Refuses `env` (the `run.env` of `text`, read from `file`) when a variable looks like a
/// credential; the error is at the variable's line in `text`.
pub fn check(file: &str, text: &str, env: &BTreeMap<String, String>) -> Result<(), SpecError> {
    for (name, value) in env {
        // `${{ secrets.NAME }}` is where a credential belongs: around one (`Bearer …`), only a
        // credential's own format counts, not the variable's name.
        let around = crate::secret_refs::without_references(value);
        let judged_name = if around.len() == value.len() { name.as_str() } else { "" };
        if let Some(why) = looks_like_credential(judged_name, &around) {
            let (line, column) = position_of(text, name);
            return Err(SpecError {
                file: file.to_owned(),
                line,
                column,
                message: format!(
                    "`run.env.{name}` looks like a credential ({why}): mobius.yaml is stored in clear with every \
                     rollout and release, so it must not hold secrets — store it (`mobius secret set {name} --repo \
                     owner/name [--environment E]`) and write `${{{{ secrets.{name} }}}}` here, with `repository: \
                     owner/name` in mobius.yaml"
                ),
            });
        }
    }
    Ok(())
}

/// Why `value` of variable `name` looks like a credential, if it does.
pub fn looks_like_credential(name: &str, value: &str) -> Option<&'static str> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    let named =
        SECRET_NAMES.iter().any(|word| upper.contains(word)) || KEY_NAMES.iter().any(|end| upper.ends_with(end));
    // A number, a boolean or a plain URL is a setting about a secret, not the secret; but a
    // password may well be all digits.
    let password = upper.contains("PASSWORD") || upper.contains("PASSWD");
    let setting = (value.parse::<f64>().is_ok() && !password)
        || ["true", "false", "yes", "no", "on", "off"].contains(&value.to_ascii_lowercase().as_str())
        || value.contains("://");
    if named && !setting {
        return Some("its name says it is a secret");
    }
    if TOKEN_PREFIXES.iter().any(|prefix| value.starts_with(prefix)) && value.len() >= 20 {
        return Some("it has the form of an API token");
    }
    if value.len() == 20
        && value.starts_with("AKIA")
        && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Some("it has the form of an AWS access key");
    }
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("it is a private key");
    }
    if value.starts_with("eyJ") && value.split('.').count() == 3 && value.len() > 40 {
        return Some("it has the form of a JWT");
    }
    if let Some((scheme, rest)) = value.split_once("://")
        && !scheme.is_empty()
        && let Some((userinfo, _)) = rest.split_once('@')
        && !userinfo.contains('/')
        && userinfo.split_once(':').is_some_and(|(_, password)| !password.is_empty())
    {
        return Some("it is a URL with a password");
    }
    None
}

/// The line and column of `name` as a key in `text` (its first appearance followed by `:`),
/// else the top of the file.
/// Where `name:` first appears in `text` (line, column; `(1, 1)` when it does not).
pub(crate) fn position_of(text: &str, name: &str) -> (u64, u64) {
    for (index, line) in text.lines().enumerate() {
        for quote in ["", "\"", "'"] {
            let key = format!("{quote}{name}{quote}:");
            if let Some(column) = line.find(&key) {
                return (index as u64 + 1, column as u64 + 1);
            }
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_one(name: &str, value: &str) -> Option<&'static str> {
        looks_like_credential(name, value)
    }

    #[test]
    fn credentials_are_told_from_settings() {
        for (name, value) in [
            ("DB_PASSWORD", "hunter2"),
            ("STRIPE_SECRET", "x"),
            ("API_TOKEN", "abc"),
            ("AWS_SECRET_ACCESS_KEY", "abc"),
            ("SIGNING_KEY", "abc"),
            ("STRIPE_API_KEY", "abc"),
            ("DB_PASSWORD", "123456"),
            ("DEPLOY_KEY", "abc"),
            ("GITHUB", "ghp_0123456789abcdefghij0123"),
            ("SLACK", "xoxb-1234-5678-abcdefghijklmnop"),
            ("AWS", "AKIAIOSFODNN7EXAMPLE"),
            ("DATABASE_URL", "postgres://app:s3cret@db:5432/app"),
            ("CERT", "-----BEGIN RSA PRIVATE KEY-----\nMII..."),
            ("SESSION", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
        ] {
            assert!(check_one(name, value).is_some(), "{name}={value}");
        }
        for (name, value) in [
            ("LOG", "info"),
            ("PORT", "8080"),
            ("TOKEN_URL", ""),
            ("DATABASE_URL", "postgres://db:5432/app"),
            ("ENDPOINT", "https://user@example.com/path"),
            ("KEYBOARD", "qwerty"),
            ("ERROR_RATE", "0.2"),
            ("SORT_KEY", "name"),
            ("CACHE_KEY_PREFIX", "shop"),
            ("TOKEN_TTL", "3600"),
            ("TOKEN_URL", "https://auth.example.com/token"),
            ("REQUIRE_PASSWORD", "true"),
        ] {
            assert_eq!(check_one(name, value), None, "{name}={value}");
        }
    }

    #[test]
    fn the_error_names_the_variable_where_it_is() {
        let text = "service: shop\nrun:\n  command: ./shop\n  env:\n    LOG: info\n    DB_PASSWORD: hunter2\n";
        let env = BTreeMap::from([("LOG".into(), "info".into()), ("DB_PASSWORD".into(), "hunter2".into())]);
        let error = check("mobius.yaml", text, &env).unwrap_err();
        assert_eq!((error.line, error.column), (6, 5));
        let shown = error.to_string();
        assert!(shown.starts_with("mobius.yaml:6:5: `run.env.DB_PASSWORD` looks like a credential"), "{shown}");
        assert!(!shown.contains("hunter2"), "the value is never repeated: {shown}");
        assert!(shown.contains("`${{ secrets.DB_PASSWORD }}`"), "it says where the secret goes: {shown}");
    }

    #[test]
    fn a_reference_to_a_stored_secret_is_not_a_credential() {
        let env = BTreeMap::from([
            ("DB_PASSWORD".into(), "${{ secrets.DB_PASSWORD }}".into()),
            ("DATABASE_URL".into(), "postgres://app:${{ secrets.DB_PASSWORD }}@db/app".into()),
            ("API_TOKEN".into(), "Bearer ${{ secrets.API_TOKEN }}".into()),
        ]);
        assert!(check("mobius.yaml", "", &env).is_ok());
        let mut leaked = env.clone();
        leaked.insert("AUTH".into(), "ghp_abcdefghijklmnopqrstuvwxyz0123${{ secrets.SUFFIX }}".into());
        let error = check("mobius.yaml", "", &leaked).unwrap_err();
        assert!(error.message.starts_with("`run.env.AUTH`"), "a token around a reference still counts: {error}");
    }
}
