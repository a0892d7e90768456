//! What goes wrong building a provider and syncing its set. No message holds the token: it
//! travels in a header marked sensitive, and requests are named by their URL alone.

use std::fmt;

/// A provider that cannot be built from what it was given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The server's address is not an `http://` or `https://` URL.
    #[error("the Mobius server's URL {url:?} is not an http(s) URL")]
    ServerUrl {
        /// As given.
        url: String,
    },
    /// The token cannot be sent in a header (control characters, or empty).
    #[error("the token is empty or has characters a header cannot carry")]
    Token,
    /// The set's name is empty.
    #[error("the flag set's name is empty")]
    SetName,
    /// A poll interval, timeout or backoff of zero.
    #[error("{what} must be longer than zero")]
    ZeroDuration {
        /// Which setting.
        what: &'static str,
    },
    /// The HTTP client could not be made (its TLS configuration).
    #[error("cannot make the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Why one sync of the set did not bring a set in force. The set held before stays.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// No answer: the server is away, or the connection broke.
    #[error("cannot reach {url}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// What the client saw.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's message, cut short.
        message: String,
    },
    /// The document is larger than any the server accepts.
    #[error("{url} sent a document over {limit} bytes")]
    TooLarge {
        /// The request's URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The document does not load (its position and why are in the source).
    #[error("the flag set from {url} does not load")]
    Refused {
        /// The request's URL.
        url: String,
        /// Where and why.
        #[source]
        source: mobius_flags::LoadError,
    },
}

/// An error and its sources on one line (`a: b: c`), for the log.
pub(crate) struct Chain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
