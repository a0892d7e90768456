//! `${{ secrets.NAME }}` in `mobius.yaml`'s `run.env`: a value may name stored secrets (the
//! whole value, or part of it: `postgres://app:${{ secrets.DB_PASSWORD }}@db/app`). The file,
//! the release and every stored rollout keep the reference; the value is put in only when an
//! instance starts, from the secrets of the service's `repository` and the environment it
//! runs in (the environment's over the repository's, as for pipeline jobs), so it is never
//! written anywhere in clear.
//!
//! Only `secrets.NAME` is resolved: any other `${{ … }}` in `run.env` is an error at the
//! variable, so a typo never reaches an instance as literal text.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::{ServiceSpec, SpecError};

/// What is wrong with a reference in a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("`${{{{` without its closing `}}}}`")]
    Unclosed,
    #[error(
        "only `${{{{ secrets.NAME }}}}` is resolved in run.env, not `${{{{ {0} }}}}` (NAME: upper-case letters, digits and `_`)"
    )]
    Unsupported(String),
}

/// One piece of a value: text as it is, or the secret it names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str),
}

fn pieces(value: &str) -> Result<Vec<Piece<'_>>, ReferenceError> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 3..];
        let end = after.find("}}").ok_or(ReferenceError::Unclosed)?;
        let inner = after[..end].trim();
        let name = inner.strip_prefix("secrets.").filter(|name| valid_name(name));
        pieces.push(Piece::Secret(name.ok_or_else(|| ReferenceError::Unsupported(inner.to_owned()))?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// A secret's name as `mobius secret set` accepts it: `[A-Z_][A-Z0-9_]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The secrets `value` names, in order (once each).
pub fn references(value: &str) -> Result<Vec<String>, ReferenceError> {
    let mut names = Vec::new();
    for piece in pieces(value)? {
        if let Piece::Secret(name) = piece
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Every secret `env` names, by variable: `(variable, secret)` in variable order.
pub fn env_references(env: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, (String, ReferenceError)> {
    let mut all = Vec::new();
    for (variable, value) in env {
        let names = references(value).map_err(|e| (variable.clone(), e))?;
        all.extend(names.into_iter().map(|name| (variable.clone(), name)));
    }
    Ok(all)
}

/// `env` with every reference replaced by its secret from `secrets`; the first variable whose
/// secret is missing, and that secret's name, when one is.
pub fn resolve(
    env: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Missing> {
    let mut resolved = BTreeMap::new();
    for (variable, value) in env {
        let mut out = String::with_capacity(value.len());
        // Values were checked when the spec was read; a broken one here is kept as it is.
        let Ok(pieces) = pieces(value) else {
            resolved.insert(variable.clone(), value.clone());
            continue;
        };
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Secret(name) => match secrets.get(name) {
                    Some(secret) => out.push_str(secret),
                    None => return Err(Missing { variable: variable.clone(), secret: name.to_owned() }),
                },
            }
        }
        resolved.insert(variable.clone(), out);
    }
    Ok(resolved)
}

/// A reference to a secret that is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The `run.env` variable.
    pub variable: String,
    /// The secret it names.
    pub secret: String,
}

/// Where variable `name` of `run.env` is in the mobius.yaml `text` (line, column).
pub fn position(text: &str, name: &str) -> (u64, u64) {
    crate::credentials::position_of(text, name)
}

/// The names of every secret `env` references.
pub fn referenced_names(env: &BTreeMap<String, String>) -> BTreeSet<String> {
    env.values().filter_map(|v| references(v).ok()).flatten().collect()
}

/// `value` with its references in place of the secrets: what a credential check should look
/// at, since a reference is not a credential.
pub fn without_references(value: &str) -> String {
    match pieces(value) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text,
                Piece::Secret(_) => "",
            })
            .collect(),
        Err(_) => value.to_owned(),
    }
}

/// `${{ secrets.NAME }}` in `run.env` is well formed, and names a repository to read the
/// secrets from; errors at the variable's line.
pub(crate) fn check_spec(spec: &ServiceSpec, file: &str, text: &str) -> Result<(), SpecError> {
    let at = |variable: &str, message: String| {
        let (line, column) = crate::credentials::position_of(text, variable);
        SpecError { file: file.to_owned(), line, column, message }
    };
    let references =
        env_references(&spec.run.env).map_err(|(variable, e)| at(&variable, format!("`run.env.{variable}`: {e}")))?;
    if let Some((variable, secret)) = references.first() {
        match &spec.repository {
            None => {
                return Err(at(
                    variable,
                    format!(
                        "`run.env.{variable}` uses secret `{secret}`: set `repository: owner/name` (the registered \
                         repository whose secrets the service reads)"
                    ),
                ));
            }
            Some(repository) if repository.split('/').filter(|p| !p.is_empty()).count() < 2 => {
                return Err(at("repository", format!("`repository`: `{repository}` is not owner/name")));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn references_whole_or_inside_a_value_resolve_and_others_are_refused() {
        assert_eq!(references("${{ secrets.API_KEY }}").unwrap(), ["API_KEY"]);
        assert_eq!(references("x${{secrets.A}}y${{ secrets.B }}${{ secrets.A }}").unwrap(), ["A", "B"]);
        assert_eq!(references("plain").unwrap(), Vec::<String>::new());
        assert_eq!(references("${{ secrets.A").unwrap_err(), ReferenceError::Unclosed);
        let wrong = references("${{ vars.A }}").unwrap_err();
        assert_eq!(wrong, ReferenceError::Unsupported("vars.A".into()));
        assert!(
            wrong.to_string().starts_with("only `${{ secrets.NAME }}` is resolved in run.env, not `${{ vars.A }}`")
        );
        assert_eq!(
            references("${{ secrets.lower }}").unwrap_err(),
            ReferenceError::Unsupported("secrets.lower".into())
        );

        let stored = env(&[("DB_PASSWORD", "hunter2"), ("API_KEY", "k-1")]);
        let spec = env(&[
            ("DB", "postgres://app:${{ secrets.DB_PASSWORD }}@db/app"),
            ("KEY", "${{ secrets.API_KEY }}"),
            ("LOG", "info"),
        ]);
        let resolved = resolve(&spec, &stored).unwrap();
        assert_eq!(resolved["DB"], "postgres://app:hunter2@db/app");
        assert_eq!((resolved["KEY"].as_str(), resolved["LOG"].as_str()), ("k-1", "info"));
        let missing = resolve(&env(&[("KEY", "${{ secrets.NOPE }}")]), &stored).unwrap_err();
        assert_eq!(missing, Missing { variable: "KEY".into(), secret: "NOPE".into() });
        assert_eq!(referenced_names(&spec).into_iter().collect::<Vec<_>>(), ["API_KEY", "DB_PASSWORD"]);
        assert_eq!(without_references("postgres://app:${{ secrets.DB_PASSWORD }}@db/app"), "postgres://app:@db/app");
        assert_eq!(env_references(&env(&[("A", "${{ x }}")])).unwrap_err().0, "A");
    }
}
