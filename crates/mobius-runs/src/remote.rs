//! How git reaches the remote of a repository that lives elsewhere: with the credentials the
//! repository names (a stored secret of its own scope holding an HTTPS token or an SSH private
//! key), handed to each git process through its environment, so they are never in an argv
//! (which every user of the machine can read), in the URL, in the mirror's config or in a file
//! that outlives the git call.
//!
//! - HTTPS: `http.extraHeader = Authorization: Basic base64(USER:TOKEN)` through
//!   `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_0`/`GIT_CONFIG_VALUE_0`. A bare token is sent as user
//!   [`TOKEN_USER`], which GitHub expects for its tokens and GitLab accepts (any user name goes
//!   with a personal, project or group access token); a secret of the form `USER:TOKEN` picks
//!   the user (a GitLab deploy token, a Gitea or Bitbucket account).
//! - SSH: the key written to a 0600 temporary file for the one git call, and
//!   `GIT_SSH_COMMAND=ssh -i FILE -o IdentitiesOnly=yes -o BatchMode=yes -o
//!   StrictHostKeyChecking=accept-new -o UserKnownHostsFile=<data>/known_hosts`: the first
//!   connection to a host records its key in the data directory, a later change of that key is
//!   refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use mobius_secrets::{SecretError, Secrets};

/// The file in the data directory where SSH records the host keys of remotes.
pub const KNOWN_HOSTS: &str = "known_hosts";

/// The user name a bare HTTPS token is sent with.
pub const TOKEN_USER: &str = "x-access-token";

/// What git authenticates to a remote with, as read from a secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic authentication with a token (or password) for `user`.
    Token { user: String, token: String },
    /// An SSH private key, PEM or OpenSSH text.
    SshKey(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token { user, .. } => write!(f, "Token {{ user: {user:?}, .. }}"),
            Credentials::SshKey(_) => f.write_str("SshKey(..)"),
        }
    }
}

impl Credentials {
    /// The credentials a secret's value holds: a private key (text starting `-----BEGIN`),
    /// else a token — `USER:TOKEN`, or a bare token sent as [`TOKEN_USER`].
    pub fn from_secret(value: &str) -> Credentials {
        let trimmed = value.trim();
        if trimmed.starts_with("-----BEGIN") {
            return Credentials::SshKey(trimmed.to_owned());
        }
        match trimmed.split_once(':') {
            Some((user, token)) if !user.is_empty() && !token.is_empty() => {
                Credentials::Token { user: user.to_owned(), token: token.to_owned() }
            }
            _ => Credentials::Token { user: TOKEN_USER.to_owned(), token: trimmed.to_owned() },
        }
    }
}

/// What a git process needs to reach a remote: the credentials, if any, and where SSH keeps
/// the host keys it has seen.
#[derive(Debug, Clone)]
pub struct Access {
    credentials: Option<Credentials>,
    known_hosts: PathBuf,
}

/// The temporary key file of one git call; removed when dropped.
pub struct KeyFile(#[allow(dead_code, reason = "held for its Drop, which removes the file")] tempfile::TempPath);

impl Access {
    /// No credentials: what git finds on its own (public remotes, the user's SSH agent).
    pub fn anonymous(data_dir: &Path) -> Access {
        Access { credentials: None, known_hosts: data_dir.join(KNOWN_HOSTS) }
    }

    /// With `credentials`; SSH records host keys in `data_dir`.
    pub fn with(credentials: Credentials, data_dir: &Path) -> Access {
        Access { credentials: Some(credentials), known_hosts: data_dir.join(KNOWN_HOSTS) }
    }

    /// Sets up `command` (a git process) to authenticate; keep the returned key file until
    /// the process ended.
    pub fn apply(&self, command: &mut Command) -> std::io::Result<Option<KeyFile>> {
        // Tracing would print the Authorization header.
        command.env_remove("GIT_TRACE_CURL").env_remove("GIT_CURL_VERBOSE").env_remove("GIT_TRACE_PACKET");
        match &self.credentials {
            None => Ok(None),
            Some(Credentials::Token { user, token }) => {
                for (key, value) in token_config(user, token) {
                    command.env(key, value);
                }
                Ok(None)
            }
            Some(Credentials::SshKey(key)) => {
                let file = key_file(key)?;
                command.env("GIT_SSH_COMMAND", ssh_command(&file, &self.known_hosts));
                Ok(Some(KeyFile(file)))
            }
        }
    }
}

/// The environment that gives git an `Authorization` header for every HTTP request.
fn token_config(user: &str, token: &str) -> [(&'static str, String); 3] {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
    [
        ("GIT_CONFIG_COUNT", "1".to_owned()),
        ("GIT_CONFIG_KEY_0", "http.extraHeader".to_owned()),
        ("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}")),
    ]
}

/// `key` in a new 0600 file (with the final newline OpenSSH requires).
fn key_file(key: &str) -> std::io::Result<tempfile::TempPath> {
    let mut file = tempfile::Builder::new().prefix("mobius-ssh-key-").tempfile()?;
    file.write_all(key.as_bytes())?;
    if !key.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(file.into_temp_path())
}

/// The ssh command line git runs (through `sh`, so paths are quoted).
fn ssh_command(key: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
        quote(&key.display().to_string()),
        quote(&known_hosts.display().to_string()),
    )
}

/// `'text'` for sh, with embedded single quotes closed, escaped and reopened.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Why a repository's credentials cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The secret the repository names is not stored (in the repository's own scope).
    #[error(
        "{repository} has no secret {name} for its credentials: set it first with `mobius secret set {name} --repo \
         {repository}`"
    )]
    MissingSecret { repository: String, name: String },
    /// The server runs without a secret store.
    #[error("{repository} needs its credentials secret {name}, but no secrets are kept here")]
    NoSecrets { repository: String, name: String },
    /// The secrets could not be opened.
    #[error("cannot read the credentials of {repository}")]
    Secrets { repository: String, source: SecretError },
}

/// How git reaches `repository`'s remote: anonymously, or with the repository secret named
/// `credentials`.
pub fn access(
    secrets: Option<&Secrets>,
    data_dir: &Path,
    repository: &str,
    credentials: Option<&str>,
) -> Result<Access, AccessError> {
    let Some(name) = credentials else { return Ok(Access::anonymous(data_dir)) };
    let Some(secrets) = secrets else {
        return Err(AccessError::NoSecrets { repository: repository.to_owned(), name: name.to_owned() });
    };
    let opened = secrets
        .for_repository(repository)
        .map_err(|source| AccessError::Secrets { repository: repository.to_owned(), source })?;
    match opened.repository.get(name) {
        Some(value) => Ok(Access::with(Credentials::from_secret(value), data_dir)),
        None => Err(AccessError::MissingSecret { repository: repository.to_owned(), name: name.to_owned() }),
    }
}

/// Whether `url` carries credentials itself: a password (`scheme://user:secret@host`), or for
/// HTTP(S) any user part (`https://TOKEN@host`, how tokens are often pasted). Such a URL is
/// refused: it would be stored in the mirror's config and shown wherever the URL is.
pub fn carries_credentials(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((user_info, _)) = authority.rsplit_once('@') else { return false };
    user_info.contains(':') || scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_tokens_or_keys() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----\n";
        for (value, expected) in [
            ("ghp_abc", Credentials::Token { user: TOKEN_USER.into(), token: "ghp_abc".into() }),
            ("deploy:gldt-xyz", Credentials::Token { user: "deploy".into(), token: "gldt-xyz".into() }),
            (key, Credentials::SshKey(key.trim().into())),
        ] {
            assert_eq!(Credentials::from_secret(value), expected, "{value}");
        }
        let shown = format!("{:?}", Credentials::from_secret("deploy:gldt-xyz"));
        assert!(!shown.contains("gldt-xyz"), "{shown}");
        assert_eq!(format!("{:?}", Credentials::SshKey(key.into())), "SshKey(..)");
    }

    #[test]
    fn a_token_is_an_authorization_header_in_the_environment() {
        let config = token_config(TOKEN_USER, "t0ken");
        assert_eq!(config[0], ("GIT_CONFIG_COUNT", "1".to_owned()));
        assert_eq!(config[1], ("GIT_CONFIG_KEY_0", "http.extraHeader".to_owned()));
        // base64("x-access-token:t0ken")
        assert_eq!(config[2], ("GIT_CONFIG_VALUE_0", "Authorization: Basic eC1hY2Nlc3MtdG9rZW46dDBrZW4=".to_owned()));
        let mut command = Command::new("git");
        let access = Access::with(Credentials::from_secret("t0ken"), Path::new("/data"));
        assert!(access.apply(&mut command).unwrap().is_none());
        assert!(command.get_args().next().is_none(), "nothing in argv");
    }

    #[test]
    fn an_ssh_key_is_a_private_file_for_one_call() {
        use std::os::unix::fs::PermissionsExt;
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----";
        let data = Path::new("/var/lib/mobius data");
        let access = Access::with(Credentials::from_secret(key), data);
        let mut command = Command::new("git");
        let file = access.apply(&mut command).unwrap().unwrap();
        let path = file.0.to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{key}\n"));
        let ssh = command.get_envs().find(|(k, _)| *k == "GIT_SSH_COMMAND").and_then(|(_, v)| v).unwrap();
        assert_eq!(
            ssh.to_string_lossy(),
            format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o \
                 UserKnownHostsFile='/var/lib/mobius data/known_hosts'",
                path.display()
            )
        );
        drop(file);
        assert!(!path.exists(), "removed after the call");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn urls_that_carry_credentials() {
        for (url, carries) in [
            ("https://ci:tok@github.com/a/b.git", true),
            ("https://ghp_tok@github.com/a/b.git", true),
            ("http://user@127.0.0.1:8080/a/b.git", true),
            ("ssh://git:pw@host/a/b.git", true),
            ("https://github.com/a/b.git", false),
            ("ssh://git@host:22/a/b.git", false),
            ("git@github.com:acme/shop.git", false),
            ("https://host/a/b@c.git", false),
            ("git://127.0.0.1/acme/app.git", false),
        ] {
            assert_eq!(carries_credentials(url), carries, "{url}");
        }
    }
}
