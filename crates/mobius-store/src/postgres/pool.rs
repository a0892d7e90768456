//! A small pool of connections: at most [`MAX_CONNECTIONS`] open, each made when none is idle
//! and given back after use; a connection that broke is dropped, not given back.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use ::postgres::config::SslMode;
use ::postgres::{Client, Config, NoTls};

use crate::StoreError;

/// Connections open at once; a caller past it waits for one to be given back.
pub(super) const MAX_CONNECTIONS: usize = 8;

/// How long making a connection may take unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection checked after a failed request may take to answer before it is
/// dropped as broken.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Pool {
    config: Config,
    /// The URL with its password replaced by `***`: the only form errors and logs show.
    url: String,
    state: Mutex<Idle>,
    given_back: Condvar,
}

struct Idle {
    clients: Vec<Client>,
    /// Connections made and not dropped, idle or in use.
    open: usize,
}

impl Pool {
    /// Parses `url` and makes the first connection (so a wrong URL fails here, not later).
    pub(super) fn new(url: &str) -> Result<Pool, StoreError> {
        let redacted = redact(url);
        let refuse = |reason: &str| StoreError::PgUrl { url: redacted.clone(), reason: reason.to_owned() };
        if let Some(mode) = option(url, "sslmode").filter(|m| m.starts_with("verify") || m == "require") {
            return Err(refuse(&format!(
                "sslmode={mode} asks for TLS, which this build does not speak to PostgreSQL yet; \
                 use a server on a trusted network with sslmode=disable"
            )));
        }
        // A parse error names the option it could not read, never its value.
        let mut config: Config =
            url.parse().map_err(|e| refuse(&format!("it is not a PostgreSQL connection string ({e})")))?;
        if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
            return Err(refuse("it asks for TLS, which this build does not speak to PostgreSQL yet"));
        }
        // An unreachable server fails a request instead of hanging it; the URL may say otherwise.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("mobius");
        }
        let pool = Pool {
            config,
            url: redacted,
            state: Mutex::new(Idle { clients: Vec::new(), open: 0 }),
            given_back: Condvar::new(),
        };
        let first = pool.connect()?;
        let mut state = pool.lock();
        state.clients.push(first);
        state.open = 1;
        drop(state);
        Ok(pool)
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(|source| StoreError::PgConnect { url: self.url.clone(), source })
    }

    /// Runs `f` on a connection of the pool.
    pub(super) fn with_client<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut lease = Lease { pool: self, client: Some(self.checkout()?), broken: false };
        let client = lease.client.as_mut().expect("a lease holds its client until dropped");
        let result = f(client);
        // A failed request may have met a connection the server closed, which the client may
        // not have noticed yet: one trivial query tells, and only after a failure.
        if result.is_err() && client.is_valid(VALIDATION_TIMEOUT).is_err() {
            lease.broken = true;
        }
        result
    }

    fn checkout(&self) -> Result<Client, StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(client) = state.clients.pop() {
                return Ok(client);
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return self.connect().inspect_err(|_| self.forget());
            }
            state = self.given_back.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn forget(&self) {
        self.lock().open -= 1;
        self.given_back.notify_one();
    }
}

impl Drop for Pool {
    /// Each client runs a small runtime of its own, which may not be dropped on an async
    /// thread (a server drops its store as it stops): the idle ones go on a thread of their
    /// own.
    fn drop(&mut self) {
        let clients = std::mem::take(&mut self.lock().clients);
        if !clients.is_empty() {
            let _ = std::thread::spawn(move || drop(clients)).join();
        }
    }
}

/// A connection in use; given back (or forgotten, if it broke) when dropped, even by a panic.
struct Lease<'a> {
    pool: &'a Pool,
    client: Option<Client>,
    broken: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        if self.broken || client.is_closed() {
            self.pool.forget();
            return;
        }
        self.pool.lock().clients.push(client);
        self.pool.given_back.notify_one();
    }
}

/// The value of `name=` in a URL's query or a `key=value` connection string.
fn option(url: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=");
    let at = url.find(&needle)?;
    let value = &url[at + needle.len()..];
    let end = value.find(['&', ' ', '\t', '\n']).unwrap_or(value.len());
    Some(value[..end].trim_matches('\'').to_ascii_lowercase())
}

/// `url` with any password replaced by `***`: the `user:password@` of a URL, and a
/// `password=` option of a URL's query or a `key=value` connection string.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let rest = &out[authority_start..];
        let authority_end = rest.find(['/', '?']).map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(authority_start + colon + 1..authority_start + at, "***");
            }
        }
    }
    let mut from = 0;
    while let Some(found) = out[from..].find("password=") {
        let start = from + found + "password=".len();
        let value = &out[start..];
        let len = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted value ends at the first quote not escaped by a backslash.
            let mut escaped = false;
            let mut end = quoted.len();
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            end + 1
        } else {
            value.find(['&', ' ', '\t', '\n']).unwrap_or(value.len())
        };
        out.replace_range(start..start + len, "***");
        from = start + 3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        for (url, redacted) in [
            ("postgres://mobius:s3cr%40t@db:5432/mobius", "postgres://mobius:***@db:5432/mobius"),
            ("postgresql://mobius@db/mobius?password=hunter2&x=1", "postgresql://mobius@db/mobius?password=***&x=1"),
            ("postgres://db/mobius", "postgres://db/mobius"),
            ("host=db user=mobius password=hunter2 dbname=m", "host=db user=mobius password=*** dbname=m"),
            ("host=db password='a b\\' c' dbname=m", "host=db password=*** dbname=m"),
        ] {
            assert_eq!(redact(url), redacted, "{url}");
        }
    }

    #[test]
    fn a_url_asking_for_tls_is_refused_not_connected_in_the_clear() {
        for url in [
            "postgres://u:pw@127.0.0.1:1/db?sslmode=require",
            "postgres://u:pw@127.0.0.1:1/db?sslmode=verify-full",
            "host=127.0.0.1 port=1 password=pw sslmode=verify-ca",
        ] {
            let Err(error) = Pool::new(url) else { panic!("{url} was accepted") };
            let message = error.to_string();
            assert!(message.contains("TLS") && !message.contains("pw"), "{message}");
        }
    }

    #[test]
    fn a_malformed_url_is_refused_naming_what_is_wrong_but_not_the_password() {
        let Err(error) = Pool::new("postgres://u:hunter2@db:port/m") else { panic!("accepted") };
        let message = error.to_string();
        assert!(message.starts_with("cannot use the PostgreSQL URL postgres://u:***@db:port/m: "), "{message}");
        assert!(message.contains("port") && !message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_server_that_is_not_there_is_named_without_the_password() {
        // Port 1 on loopback: nothing listens there.
        let Err(error) = Pool::new("postgres://mobius:hunter2@127.0.0.1:1/mobius?connect_timeout=5") else {
            panic!("connected to nothing")
        };
        let message = error.to_string();
        assert_eq!(
            message,
            "cannot connect to PostgreSQL at postgres://mobius:***@127.0.0.1:1/mobius?connect_timeout=5"
        );
        assert!(std::error::Error::source(&error).is_some(), "the reason is the source");
    }
}
