//! Keeping the set in force: fetching the document, following the change stream, polling.
//!
//! The set is fetched whole (`GET /api/v1/flags/{set}`, `If-None-Match` with the version
//! held, so an unchanged set costs a 304), loaded with `mobius-flags`' default (schema)
//! strictness — the server loaded it so before storing it, and a provider laxer than its
//! server would serve rules the server refuses — and swapped in whole. One task refetches on
//! each `refetchEvaluation` of `/ofrep/v1/events`, reconnecting with exponential backoff, and
//! on a poll timer, the fallback when the stream is cut by a proxy or the server restarts.
//! Any failure leaves the set held in force and marks the provider stale.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mobius_flags::{FlagSet, LoadError, LoadErrorKind, LoadOptions};
use reqwest::header::{ACCEPT, AUTHORIZATION, ETAG, HeaderValue, IF_NONE_MATCH};
use reqwest::{Response, StatusCode};
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};

use crate::error::{Chain, SyncError};
use crate::sse;

/// The largest document read: twice what the server accepts (4 MiB), so a set the server took
/// always fits and a runaway answer does not fill the service's memory.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// The server comments every 15 s on an idle stream; three missed means the stream is dead
/// even if no socket said so (a NAT or proxy dropped it silently).
const STREAM_IDLE: Duration = Duration::from_secs(45);

/// The first reconnection waits this long, doubling up to the configured maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What a provider was built with.
#[derive(Debug)]
pub(crate) struct Config {
    /// The server's base URL, without a trailing `/` (it may have a path: a reverse proxy's).
    pub server: String,
    pub set: String,
    /// `Bearer <token>`, marked sensitive so no debug output shows it.
    pub authorization: HeaderValue,
    pub poll_every: Duration,
    pub timeout: Duration,
    pub max_backoff: Duration,
    pub follow_stream: bool,
}

/// The set in force and the version the server gave it.
#[derive(Debug)]
pub(crate) struct Held {
    pub set: FlagSet,
    pub version: Option<String>,
}

/// Where the provider stands, for OpenFeature's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    NotStarted,
    /// Following the server; `fresh` while the last sync succeeded.
    Running {
        fresh: bool,
    },
    /// Shut down: answering from the set held, following nothing.
    Stopped,
}

/// The state the provider's handles and its task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    client: reqwest::Client,
    held: RwLock<Option<Arc<Held>>>,
    /// A version the server sent that did not load: named in `If-None-Match` so it is not
    /// fetched and refused again on every poll.
    refused: Mutex<Option<String>>,
    phase: Mutex<Phase>,
    /// One sync at a time: `start` on a clone and the task could otherwise race, and an older
    /// answer arriving last would put an older set back in force.
    syncing: tokio::sync::Mutex<()>,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Synced {
    Loaded { version: Option<String> },
    Unchanged,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(config: Config, client: reqwest::Client, bootstrap: Option<FlagSet>) -> Shared {
        let held = bootstrap.map(|set| Arc::new(Held { set, version: None }));
        Shared {
            config,
            client,
            held: RwLock::new(held),
            refused: Mutex::new(None),
            phase: Mutex::new(Phase::NotStarted),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// The set in force, if one was ever loaded.
    pub fn held(&self) -> Option<Arc<Held>> {
        self.held.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    pub fn set_phase(&self, phase: Phase) {
        *lock(&self.phase) = phase;
    }

    fn document_url(&self) -> String {
        format!("{}/api/v1/flags/{}", self.config.server, encode(&self.config.set))
    }

    /// Fetches the set once and puts it in force if it changed and loads.
    pub async fn sync(&self) -> Result<Synced, SyncError> {
        let _one_at_a_time = self.syncing.lock().await;
        let url = self.document_url();
        let tags: Vec<String> = [self.held().and_then(|h| h.version.clone()), lock(&self.refused).clone()]
            .into_iter()
            .flatten()
            .map(|version| format!("\"{version}\""))
            .collect();
        let mut request =
            self.client.get(&url).header(AUTHORIZATION, self.config.authorization.clone()).timeout(self.config.timeout);
        if !tags.is_empty() {
            request = request.header(IF_NONE_MATCH, tags.join(", "));
        }
        let mut response =
            request.send().await.map_err(|source| SyncError::Unreachable { url: url.clone(), source })?;
        match response.status() {
            StatusCode::NOT_MODIFIED => return Ok(Synced::Unchanged),
            StatusCode::OK => {}
            status => return Err(status_error(url, status, response).await),
        }
        let version = response.headers().get(ETAG).and_then(|tag| version_of(tag.to_str().ok()?));
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|source| SyncError::Unreachable { url: url.clone(), source })?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(SyncError::TooLarge { url, limit: MAX_DOCUMENT_BYTES });
            }
            body.extend_from_slice(&chunk);
        }
        let source_name = match &version {
            Some(version) => format!("{}@{version}", self.config.set),
            None => self.config.set.clone(),
        };
        let loaded = String::from_utf8(body)
            .map_err(|e| LoadError {
                source_name: source_name.clone(),
                location: None,
                kind: LoadErrorKind::Syntax(format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to())),
            })
            .and_then(|text| FlagSet::from_json(&source_name, &text, &LoadOptions::default()));
        match loaded {
            Ok(set) => {
                let held = Arc::new(Held { set, version: version.clone() });
                *self.held.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(held);
                *lock(&self.refused) = None;
                Ok(Synced::Loaded { version })
            }
            Err(source) => {
                *lock(&self.refused) = version;
                Err(SyncError::Refused { url, source })
            }
        }
    }

    /// [`Shared::sync`], with its outcome logged and the provider's freshness updated.
    pub async fn sync_and_log(&self) -> Result<Synced, SyncError> {
        let outcome = self.sync().await;
        // A failure is worth a warning when it is news: the first, or the first since the
        // server last answered. Then it is debug, once per poll or reconnection.
        let known_stale = matches!(self.phase(), Phase::Running { fresh: false });
        let set = self.config.set.as_str();
        let fresh = match &outcome {
            Ok(Synced::Loaded { version }) => {
                tracing::info!(set, version = version.as_deref().unwrap_or("?"), "flag set in force");
                true
            }
            // Unchanged, but if a version was refused the server's current set may be it.
            Ok(Synced::Unchanged) => {
                let fresh = lock(&self.refused).is_none();
                if fresh && known_stale {
                    tracing::info!(set, "the Mobius server answers again; the flag set is current");
                }
                fresh
            }
            Err(error @ SyncError::Refused { .. }) => {
                tracing::error!(set, error = %Chain(error), "the flag set does not load; the set held stays in force");
                false
            }
            Err(error) if !known_stale => {
                tracing::warn!(set, error = %Chain(error), "cannot sync the flag set; the set held stays in force");
                false
            }
            Err(error) => {
                tracing::debug!(set, error = %Chain(error), "cannot sync the flag set");
                false
            }
        };
        let mut phase = lock(&self.phase);
        if let Phase::NotStarted | Phase::Running { .. } = *phase {
            *phase = Phase::Running { fresh };
        }
        outcome
    }

    /// Opens the change stream (its response's headers; events come with the body).
    async fn open_stream(&self) -> Result<Response, SyncError> {
        let url = format!("{}/ofrep/v1/events?set={}", self.config.server, encode(&self.config.set));
        let request = self
            .client
            .get(&url)
            .header(AUTHORIZATION, self.config.authorization.clone())
            .header(ACCEPT, "text/event-stream");
        // No timeout on the request itself: its body lasts as long as the stream does.
        let response = match timeout(self.config.timeout, request.send()).await {
            Ok(sent) => sent.map_err(|source| SyncError::Unreachable { url: url.clone(), source })?,
            Err(_) => {
                return Err(SyncError::Status { url, status: 504, message: "no answer in time".to_owned() });
            }
        };
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err(status_error(url, status, response).await);
        }
        Ok(response)
    }

    /// The task that keeps the set current until it is aborted.
    pub async fn follow(self: Arc<Self>) {
        let every = self.config.poll_every;
        let mut poll = tokio::time::interval_at(Instant::now() + every, every);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stream: Option<Response> = None;
        let mut decoder = sse::Decoder::new();
        let mut failures: u32 = 0;
        let mut reconnect_at = Instant::now();
        loop {
            let wake = tokio::select! {
                _ = poll.tick() => Wake::Poll,
                _ = sleep_until(reconnect_at), if self.config.follow_stream && stream.is_none() => Wake::Connect,
                read = read(&mut stream), if stream.is_some() => read,
            };
            match wake {
                Wake::Poll => {
                    let _ = self.sync_and_log().await;
                }
                Wake::Connect => match self.open_stream().await {
                    Ok(response) => {
                        tracing::debug!(set = %self.config.set, "following the flag set's change stream");
                        stream = Some(response);
                        decoder = sse::Decoder::new();
                        failures = 0;
                        // Whatever changed while no stream was open.
                        let _ = self.sync_and_log().await;
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        reconnect_at = Instant::now() + backoff(failures, self.config.max_backoff);
                        tracing::debug!(set = %self.config.set, error = %Chain(&error), "cannot open the change stream");
                    }
                },
                Wake::Data(bytes) => match decoder.feed(&bytes) {
                    Ok(events) => {
                        if events.iter().any(|event| self.asks_refetch(event)) {
                            let _ = self.sync_and_log().await;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(set = %self.config.set, %error, "dropping the change stream");
                        stream = None;
                        failures = 1;
                        reconnect_at = Instant::now() + backoff(failures, self.config.max_backoff);
                    }
                },
                Wake::Ended(why) => {
                    tracing::debug!(set = %self.config.set, why, "the change stream ended");
                    stream = None;
                    failures = 1;
                    reconnect_at = Instant::now() + backoff(failures, self.config.max_backoff);
                    // Say at once whether the server is away: the set held turns stale.
                    let _ = self.sync_and_log().await;
                }
            }
        }
    }

    /// Whether an event asks for a refetch the set held does not already answer.
    fn asks_refetch(&self, event: &sse::Event) -> bool {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&event.data) else { return false };
        if message.get("type").and_then(|t| t.as_str()) != Some("refetchEvaluation") {
            return false;
        }
        let announced = message.get("etag").and_then(|t| t.as_str());
        let held = self.held().and_then(|h| h.version.clone());
        announced.is_none() || announced != held.as_deref()
    }
}

/// What woke the follow task.
enum Wake {
    Poll,
    Connect,
    Data(Vec<u8>),
    Ended(String),
}

/// The stream's next chunk, or why it ended; never ready without a stream.
async fn read(stream: &mut Option<Response>) -> Wake {
    let Some(response) = stream else { return std::future::pending().await };
    match timeout(STREAM_IDLE, response.chunk()).await {
        Ok(Ok(Some(bytes))) => Wake::Data(bytes.to_vec()),
        Ok(Ok(None)) => Wake::Ended("the server closed it".to_owned()),
        Ok(Err(error)) => Wake::Ended(Chain(&error).to_string()),
        Err(_) => Wake::Ended(format!("nothing came for {} s", STREAM_IDLE.as_secs())),
    }
}

/// The wait before reconnection `attempt` (1-based): 0.5 s doubling, at most `max`.
pub(crate) fn backoff(attempt: u32, max: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(max)
}

/// The version an `ETag` names: `"4"` or `W/"4"` is `4`.
fn version_of(tag: &str) -> Option<String> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let version = tag.strip_prefix('"')?.strip_suffix('"')?;
    (!version.is_empty()).then(|| version.to_owned())
}

/// An error status with the start of the server's message (never the request's headers).
async fn status_error(url: String, status: StatusCode, response: Response) -> SyncError {
    let text = response.text().await.unwrap_or_default();
    let message: String = text.chars().take(300).collect();
    SyncError::Status { url, status: status.as_u16(), message }
}

/// Percent-encodes every byte but RFC 3986's unreserved ones: the set's name as one URL path
/// segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnections_back_off_to_their_maximum() {
        let max = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n, max).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(backoff(u32::MAX, max), max, "no overflow however long the server is away");
        assert_eq!(backoff(3, Duration::from_secs(1)), Duration::from_secs(1));
    }

    #[test]
    fn versions_are_read_from_strong_and_weak_tags() {
        assert_eq!(version_of("\"4\"").as_deref(), Some("4"));
        assert_eq!(version_of("W/\"17\"").as_deref(), Some("17"));
        assert_eq!(version_of("4"), None);
        assert_eq!(version_of("\"\""), None);
    }
}
