//! Repositories that live on a remote, registered and removed as the same operation for every
//! door (`mobius repo add URL` on the data directory, `POST /api/v1/repositories` on a server):
//! the server keeps a bare mirror of each under `<data>/mirrors/<name>.git`, which runs read
//! their commits from and which a push webhook or the poll fetches.
//!
//! A registration either completes or leaves nothing: the URL may not carry credentials (they
//! would be kept in the mirror's config and shown wherever the URL is) — `credentials` names a
//! stored secret of the repository instead ([`mobius_runs::remote`]); the secret must exist
//! and the remote must answer before a row or a mirror exists.

use std::path::{Path, PathBuf};

use mobius_runs::git::{self, GitError};
use mobius_runs::remote::{self, AccessError};
use mobius_secrets::{SecretError, Secrets};
use mobius_store::{Heads, Repository, Store, StoreError};
use serde::{Deserialize, Serialize};

/// The directory of the data directory holding the mirrors.
pub const MIRRORS: &str = "mirrors";

/// A remote to register.
#[derive(Debug, Clone, Default)]
pub struct NewRemote {
    /// Any URL git clones from: `https://`, `ssh://`, scp-style, `git://`, `file://`.
    pub url: String,
    /// `owner/name` (GitLab: the project path); `None`: the URL's last two path segments.
    pub name: Option<String>,
    /// The name of the repository's secret holding an HTTPS token or an SSH private key.
    pub credentials: Option<String>,
}

/// A repository registered from a remote, as the CLI and the API show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    #[serde(flatten)]
    pub repository: Repository,
    /// The URL mirrored (never with credentials: those are refused).
    pub url: String,
    /// Branches recorded as already seen: only later pushes trigger runs.
    pub branches: usize,
}

/// Why a repository cannot be registered or removed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The URL has a password or token in it.
    #[error(
        "{url} carries credentials in its URL: give the URL without them and name a stored secret holding the \
         token or key with --credentials SECRET"
    )]
    CredentialsInUrl { url: String },
    /// No name given, and none in the URL.
    #[error("cannot tell the repository's name from {url}; pass --name owner/name")]
    NoName { url: String },
    /// A name that cannot be a path under the mirrors directory.
    #[error(
        "repository name `{0}` is not valid: use owner/name, each part of letters, digits, `.`, `-` and `_` (not `.` \
         or `..`)"
    )]
    BadName(String),
    /// The name is taken.
    #[error("{name} is registered already ({path})")]
    AlreadyRegistered { name: String, path: String },
    /// No repository by that name.
    #[error("no registered repository {0} (`mobius repo list` shows them)")]
    Unknown(String),
    /// The credentials the repository names cannot be had.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The remote did not answer, refused the credentials, or is not a repository.
    #[error("cannot mirror {url}")]
    Mirror { url: String, source: GitError },
    /// The new mirror cannot be read.
    #[error("cannot read the mirror of {url}")]
    Heads { url: String, source: GitError },
    /// The mirror could not be deleted.
    #[error("cannot delete the mirror {path}")]
    Delete { path: String, source: std::io::Error },
    /// The names of the repository's secrets cannot be listed.
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// One registered repository as `mobius repo show` and `GET /api/v1/repositories/{name}` show
/// it: where it is, its branches and tags as last seen, its secrets' names (never values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    pub name: String,
    pub path: String,
    /// A mirror of a remote (else a clone on this machine).
    pub mirror: bool,
    /// The secret git authenticates to the remote with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Branch (or `refs/tags/<tag>`) → commit, as last recorded.
    pub branches: Heads,
    /// `NAME`, or `NAME (environment)`.
    pub secrets: Vec<String>,
    /// Where its commit statuses go (the token's secret by name only); `None`: nowhere.
    #[serde(default)]
    pub forge: Option<mobius_store::ForgeSettings>,
}

/// The registered repository `name`, shown.
pub fn show(
    store: &dyn Store,
    secrets: Option<&Secrets>,
    data_dir: &Path,
    name: &str,
) -> Result<Shown, RepositoryError> {
    let repository = find(store, name)?;
    let branches = store.repository_heads(name)?.unwrap_or_default();
    let listed = match secrets {
        Some(secrets) => secrets.list(Some(name))?,
        None => Vec::new(),
    };
    let secrets = listed
        .into_iter()
        .map(|s| if s.environment.is_empty() { s.name } else { format!("{} ({})", s.name, s.environment) })
        .collect();
    let mirror = is_mirror(data_dir, &repository);
    let forge = store.forge(name)?;
    Ok(Shown {
        forge,
        name: repository.name,
        path: repository.path,
        mirror,
        credentials: repository.credentials,
        branches,
        secrets,
    })
}

/// Mirrors `new.url` into the data directory and registers it with its branch heads; on any
/// failure nothing is registered and no mirror is left.
pub fn add_remote(
    store: &dyn Store,
    secrets: Option<&Secrets>,
    data_dir: &Path,
    new: NewRemote,
) -> Result<Registered, RepositoryError> {
    let url = git::shown_url(&new.url);
    if remote::carries_credentials(&new.url) {
        return Err(RepositoryError::CredentialsInUrl { url });
    }
    let name = match new.name {
        Some(name) => name,
        None => name_from_url(&new.url).ok_or_else(|| RepositoryError::NoName { url: url.clone() })?,
    };
    check_name(&name)?;
    let mirror = mirror_path(data_dir, &name);
    if let Some(existing) = store.repositories()?.into_iter().find(|r| r.name == name) {
        return Err(RepositoryError::AlreadyRegistered { name, path: existing.path });
    }
    if mirror.exists() {
        return Err(RepositoryError::AlreadyRegistered { name, path: mirror.display().to_string() });
    }
    let access = remote::access(secrets, data_dir, &name, new.credentials.as_deref())?;
    git::mirror(&new.url, &mirror, &access).map_err(|source| RepositoryError::Mirror { url: url.clone(), source })?;
    let repository = Repository { name, path: mirror.display().to_string(), credentials: new.credentials };
    let recorded = git::heads(&mirror)
        .map_err(|source| RepositoryError::Heads { url: url.clone(), source })
        .and_then(|heads| record(store, &repository, &heads).map(|()| heads));
    match recorded {
        Ok(heads) => Ok(Registered { repository, url, branches: branch_count(&heads) }),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&mirror);
            Err(error)
        }
    }
}

fn record(store: &dyn Store, repository: &Repository, heads: &Heads) -> Result<(), RepositoryError> {
    store.add_repository(repository)?;
    if let Err(error) = store.set_repository_heads(&repository.name, heads) {
        let _ = store.remove_repository(&repository.name);
        return Err(error.into());
    }
    Ok(())
}

/// The registered repository `name`.
pub fn find(store: &dyn Store, name: &str) -> Result<Repository, RepositoryError> {
    store.repositories()?.into_iter().find(|r| r.name == name).ok_or_else(|| RepositoryError::Unknown(name.to_owned()))
}

/// Unregisters `name`, deleting its mirror when it is one; returns what it was. Its runs and
/// logs stay; the tokens its git hooks hold (a clone's) are revoked, whether the clone is
/// still there or not.
pub fn remove(store: &dyn Store, data_dir: &Path, name: &str) -> Result<Repository, RepositoryError> {
    let repository = find(store, name)?;
    if is_mirror(data_dir, &repository) {
        std::fs::remove_dir_all(&repository.path)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|source| RepositoryError::Delete { path: repository.path.clone(), source })?;
    }
    store.remove_repository(name)?;
    revoke_hook_tokens(store, name)?;
    Ok(repository)
}

/// The name of the `run` token the git hooks of repository `name` hold.
pub fn hook_token_name(name: &str) -> String {
    format!("git hooks of {name}")
}

/// Revokes every token issued to the git hooks of repository `name`; how many.
pub fn revoke_hook_tokens(store: &dyn Store, name: &str) -> Result<usize, StoreError> {
    let wanted = hook_token_name(name);
    let mut revoked = 0;
    for token in store.tokens()? {
        if token.name == wanted && token.scope == mobius_store::TokenScope::Run && store.revoke_token(&token.id)? {
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Whether the repository is a mirror this data directory keeps for a remote.
pub fn is_mirror(data_dir: &Path, repository: &Repository) -> bool {
    Path::new(&repository.path).starts_with(data_dir.join(MIRRORS))
}

/// Where the mirror of `name` lives.
fn mirror_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(MIRRORS).join(format!("{name}.git"))
}

/// How many branches recorded heads hold (tags are kept there too).
pub fn branch_count(heads: &Heads) -> usize {
    heads.keys().filter(|name| !name.starts_with("refs/")).count()
}

/// Names become paths under the mirrors directory: nothing may climb out of it.
fn check_name(name: &str) -> Result<(), RepositoryError> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if name.split('/').all(part_ok) { Ok(()) } else { Err(RepositoryError::BadName(name.to_owned())) }
}

/// `owner/name` from a remote's URL: its last two path segments, without `.git`.
pub fn name_from_url(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or_else(
        || url.split_once(':').map_or(url, |(_, p)| p),
        |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p),
    );
    let mut parts: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(2).collect();
    parts.reverse();
    match parts.as_slice() {
        [owner, name] if !owner.is_empty() && !name.is_empty() => {
            Some(format!("{owner}/{}", name.strip_suffix(".git").unwrap_or(name)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_remote_urls() {
        for (url, name) in [
            ("https://github.com/acme/shop.git", Some("acme/shop")),
            ("git@github.com:acme/shop.git", Some("acme/shop")),
            ("ssh://git@host:22/group/sub/app", Some("sub/app")),
            ("git://127.0.0.1:9418/acme/app.git", Some("acme/app")),
            ("https://host/only", None),
        ] {
            assert_eq!(name_from_url(url).as_deref(), name, "{url}");
        }
    }

    #[test]
    fn names_stay_inside_the_mirrors_directory() {
        for good in ["acme/app", "group/sub/app", "a.b/c-d_e"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["../etc", "acme/..", "/abs", "acme//app", "acme/app name", "", "acme/./x"] {
            assert!(matches!(check_name(bad), Err(RepositoryError::BadName(_))), "{bad}");
        }
    }
}
