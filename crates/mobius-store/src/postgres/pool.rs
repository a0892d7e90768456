//! A small pool of connections: at most [`MAX_CONNECTIONS`] open, each made when none is idle
//! and given back after use; a connection that broke is dropped, not given back.
//!
//! A database that went away and came back (a restart, a failover) leaves the idle
//! connections dead without anyone knowing: the server said goodbye (`57P01`, then closed the
//! socket), but a connection reads only while it is used. Checking each before use would cost
//! a round trip per call; instead, a connection found dead by a call is dropped with every
//! idle one (they are from the same life of the server), and a call that failed on a reused
//! connection *before it could have changed anything* ([`Failed::Before`]: a read, or the
//! `BEGIN` of a write) is made once more on a new connection. So the first call after a
//! restart is served, and a call that may have written is never made twice: it fails, and its
//! caller answers 503 (see `StoreError::is_unavailable`).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use ::postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::StoreError;

/// Connections open at once; a caller past it waits for one to be given back.
pub(super) const MAX_CONNECTIONS: usize = 8;

/// How long making a connection may take unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection checked after a failed request may take to answer before it is
/// dropped as broken.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(2);

/// How a call on a connection failed.
pub(super) enum Failed {
    /// Before it could have changed anything (a read, a `BEGIN`): if the connection turns out
    /// dead, the call may be made again on another.
    Before(StoreError),
    /// Perhaps after it changed something (a write sent, a `COMMIT` unanswered): never made
    /// twice.
    After(StoreError),
}

pub(super) struct Pool {
    config: Config,
    /// How connections are encrypted (`sslmode`); `None` for `disable`.
    tls: Option<MakeRustlsConnect>,
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
        // The driver knows neither `verify-*` nor `sslrootcert`: those are ours (see `tls`).
        let (rest, options) = tls::split(url).map_err(|e| refuse(&e.0))?;
        // A parse error names the option it could not read, never its value.
        let mut config: Config =
            rest.parse().map_err(|e| refuse(&format!("it is not a PostgreSQL connection string ({e})")))?;
        config.ssl_mode(options.mode.driver());
        let tls = tls::connector(&options).map_err(|e| refuse(&e.0))?;
        // An unreachable server fails a request instead of hanging it; the URL may say otherwise.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("mobius");
        }
        let pool = Pool {
            config,
            tls,
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

    /// A pool of its own with the same settings and no connections: for a thread that keeps
    /// one connection apart (`listen`).
    pub(super) fn clone_config(&self) -> Pool {
        Pool {
            config: self.config.clone(),
            tls: self.tls.clone(),
            url: self.url.clone(),
            state: Mutex::new(Idle { clients: Vec::new(), open: 0 }),
            given_back: Condvar::new(),
        }
    }

    pub(super) fn connect(&self) -> Result<Client, StoreError> {
        let connected = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        };
        connected.map_err(|source| StoreError::PgConnect { url: self.url.clone(), source })
    }

    /// Runs `f` on a connection of the pool; once more on a new connection when it failed
    /// [`Failed::Before`] on a reused connection that turned out dead (the server went away
    /// while it sat idle).
    pub(super) fn with_client<T>(&self, mut f: impl FnMut(&mut Client) -> Result<T, Failed>) -> Result<T, StoreError> {
        let mut retried = false;
        loop {
            let (client, reused) = self.checkout()?;
            let mut lease = Lease { pool: self, client: Some(client), broken: false };
            let client = lease.client.as_mut().expect("a lease holds its client until dropped");
            let (error, before) = match f(client) {
                Ok(value) => return Ok(value),
                Err(Failed::Before(error)) => (error, true),
                Err(Failed::After(error)) => (error, false),
            };
            // A failed request may have met a connection the server closed, which the client
            // may not have noticed yet: one trivial query tells, and only after a failure.
            if client.is_valid(VALIDATION_TIMEOUT).is_ok() {
                return Err(error);
            }
            lease.broken = true;
            drop(lease);
            if !(before && reused) || retried {
                return Err(error);
            }
            tracing::info!(url = %self.url, error = %error, "a PostgreSQL connection was lost while idle: trying a new one");
            retried = true;
        }
    }

    /// An idle connection, or a new one: whether it was reused.
    fn checkout(&self) -> Result<(Client, bool), StoreError> {
        let mut state = self.lock();
        loop {
            if let Some(client) = state.clients.pop() {
                return Ok((client, true));
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return self.connect().map(|client| (client, false)).inspect_err(|_| self.forget());
            }
            state = self.given_back.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn forget(&self) {
        self.lock().open -= 1;
        self.given_back.notify_one();
    }

    /// Drops every idle connection: one was found broken, so the others likely are too (and a
    /// live one is cheaply made again).
    fn forget_idle(&self) {
        let idle = {
            let mut state = self.lock();
            let idle = std::mem::take(&mut state.clients);
            state.open -= idle.len();
            idle
        };
        if !idle.is_empty() {
            tracing::info!(url = %self.url, connections = idle.len(), "PostgreSQL connection lost: idle ones dropped too");
            self.given_back.notify_all();
        }
        drop(idle);
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
            self.pool.forget_idle();
            return;
        }
        self.pool.lock().clients.push(client);
        self.pool.given_back.notify_one();
    }
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
    fn tls_options_that_cannot_be_honoured_are_refused_without_the_password() {
        for (url, said) in [
            (
                "postgres://u:pw@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
            ("postgres://u:pw@127.0.0.1:1/db?sslmode=sometimes", "sslmode=sometimes"),
            ("host=127.0.0.1 port=1 password=pw sslcert=c.pem", "sslcert is not supported"),
        ] {
            let Err(error) = Pool::new(url) else { panic!("{url} was accepted") };
            let message = error.to_string();
            assert!(message.contains(said) && !message.contains("pw@") && !message.contains("=pw"), "{message}");
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
