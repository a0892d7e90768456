//! [`MobiusProvider`]: OpenFeature's provider over a flag set followed from a Mobius server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mobius_flags::{Context, FlagSet};
use open_feature::provider::{FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationResult, StructValue, async_trait,
};
use reqwest::header::HeaderValue;
use tokio::task::JoinHandle;

use crate::context::to_flags_context;
use crate::error::{BuildError, SyncError};
use crate::resolve;
use crate::sync::{Config, Phase, Shared};

/// The provider's name in OpenFeature's metadata.
pub const PROVIDER_NAME: &str = "mobius";

/// An OpenFeature provider that evaluates one Mobius flag set in process.
///
/// Cheap to clone: clones share the set and the sync task, so a service can give one to
/// OpenFeature and keep one to read the set or shut the task down. The task stops when the
/// last clone is dropped, or at [`MobiusProvider::shutdown`].
#[derive(Clone)]
pub struct MobiusProvider {
    shared: Arc<Shared>,
    task: Arc<Task>,
    metadata: ProviderMetadata,
}

/// The follow task, aborted when the last handle goes: a provider dropped by OpenFeature (a
/// new one set, `shutdown`) must not leave a task polling the server for nobody.
#[derive(Debug, Default)]
struct Task(Mutex<Option<JoinHandle<()>>>);

impl Task {
    fn stop(&self) {
        if let Some(handle) = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            handle.abort();
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for MobiusProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.shared.held();
        f.debug_struct("MobiusProvider")
            .field("server", &self.shared.config.server)
            .field("set", &self.shared.config.set)
            .field("version", &held.as_ref().and_then(|h| h.version.as_deref()))
            .field("phase", &self.shared.phase())
            .finish_non_exhaustive()
    }
}

/// How a [`MobiusProvider`] syncs; made by [`MobiusProvider::builder`].
#[derive(Debug)]
pub struct Builder {
    server: String,
    token: String,
    set: String,
    poll_every: Duration,
    timeout: Duration,
    max_backoff: Duration,
    follow_stream: bool,
    bootstrap: Option<FlagSet>,
}

impl Builder {
    /// How often the set is fetched besides the change stream's notices (a conditional GET,
    /// a 304 when nothing changed). Default 30 s.
    pub fn poll_every(mut self, every: Duration) -> Builder {
        self.poll_every = every;
        self
    }

    /// How long one fetch, or opening the stream, may take. Default 10 s. The first sync
    /// (`initialize`) waits at most this long.
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = timeout;
        self
    }

    /// The longest wait between attempts to reopen the change stream (the first waits
    /// 0.5 s, doubling). Default 30 s.
    pub fn max_backoff(mut self, max: Duration) -> Builder {
        self.max_backoff = max;
        self
    }

    /// Whether to follow `/ofrep/v1/events` (default) or only poll, for networks whose
    /// proxies cut long-lived responses.
    pub fn follow_stream(mut self, follow: bool) -> Builder {
        self.follow_stream = follow;
        self
    }

    /// A set to answer from until the server's is loaded — say one shipped with the service
    /// (`FlagSet::from_file`), so it answers from its first request even when it boots while
    /// the server is away. The first sync replaces it whatever its version.
    pub fn bootstrap(mut self, set: FlagSet) -> Builder {
        self.bootstrap = Some(set);
        self
    }

    /// The provider, not yet syncing: OpenFeature's `set_provider` starts it
    /// (`initialize`), or [`MobiusProvider::start`] does.
    pub fn build(self) -> Result<MobiusProvider, BuildError> {
        let server = self.server.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&server) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => return Err(BuildError::ServerUrl { url: self.server }),
        }
        if self.set.is_empty() {
            return Err(BuildError::SetName);
        }
        let token = self.token.trim();
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| BuildError::Token)?;
        if token.is_empty() {
            return Err(BuildError::Token);
        }
        authorization.set_sensitive(true);
        for (what, duration) in
            [("the poll interval", self.poll_every), ("the timeout", self.timeout), ("the backoff", self.max_backoff)]
        {
            if duration.is_zero() {
                return Err(BuildError::ZeroDuration { what });
            }
        }
        // reqwest is built without a TLS provider; ring is the workspace's. Installing fails
        // harmlessly when the service installed one of its own first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(self.timeout)
            .user_agent(concat!("mobius-openfeature/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Client)?;
        let config = Config {
            server,
            set: self.set,
            authorization,
            poll_every: self.poll_every,
            timeout: self.timeout,
            max_backoff: self.max_backoff,
            follow_stream: self.follow_stream,
        };
        Ok(MobiusProvider {
            shared: Arc::new(Shared::new(config, client, self.bootstrap)),
            task: Arc::new(Task::default()),
            metadata: ProviderMetadata::new(PROVIDER_NAME),
        })
    }
}

impl MobiusProvider {
    /// A provider for the set `set` on the Mobius server at `server` (its base URL, such as
    /// `https://mobius.example.com`), authenticated by `token` — a token that may read
    /// (`mobius token create --scope read`): the provider reads the set's rules, which a
    /// `flags` client key may not.
    pub fn builder(server: impl Into<String>, token: impl Into<String>, set: impl Into<String>) -> Builder {
        Builder {
            server: server.into(),
            token: token.into(),
            set: set.into(),
            poll_every: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
            follow_stream: true,
            bootstrap: None,
        }
    }

    /// Fetches the set once and starts following it; what `initialize` does. The error is
    /// the first sync's (the task keeps trying): a service that must not start without its
    /// flags can refuse to. Calling it again while the task runs only syncs once more.
    pub async fn start(&self) -> Result<(), SyncError> {
        let first = self.shared.sync_and_log().await;
        let mut task = self.task.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if task.as_ref().is_none_or(|t| t.is_finished()) {
            self.shared.set_phase(Phase::Running { fresh: first.is_ok() });
            *task = Some(tokio::spawn(Arc::clone(&self.shared).follow()));
        }
        first.map(|_| ())
    }

    /// Stops following the server. Evaluations go on answering from the set held;
    /// [`MobiusProvider::start`] follows again.
    pub fn shutdown(&self) {
        self.task.stop();
        self.shared.set_phase(Phase::Stopped);
    }

    /// The set in force, for evaluating with `mobius-flags` directly (its typed helpers take
    /// the caller's default), or `None` before one was loaded.
    pub fn flag_set(&self) -> Option<FlagSet> {
        self.shared.held().map(|held| held.set.clone())
    }

    /// The server's version of the set in force (its `ETag`).
    pub fn version(&self) -> Option<String> {
        self.shared.held().and_then(|held| held.version.clone())
    }

    fn resolve<T>(
        &self,
        key: &str,
        context: &EvaluationContext,
        resolve: fn(&FlagSet, &str, &Context) -> EvaluationResult<ResolutionDetails<T>>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let Some(held) = self.shared.held() else {
            return Err(EvaluationError {
                code: EvaluationErrorCode::ProviderNotReady,
                message: Some(format!("no flag set was loaded yet from {}", self.shared.config.server)),
            });
        };
        let context = to_flags_context(context)
            .map_err(|e| EvaluationError { code: EvaluationErrorCode::InvalidContext, message: Some(e.to_string()) })?;
        resolve(&held.set, key, &context)
    }
}

#[async_trait]
impl FeatureProvider for MobiusProvider {
    /// Fetches the set and starts following it. A failure is logged and leaves the status
    /// `Error` (no set) while the task keeps trying.
    async fn initialize(&mut self, _context: &EvaluationContext) {
        let _ = self.start().await;
    }

    /// `NotReady` before `initialize`; `Ready` while the set held is the server's current;
    /// `STALE` while a set is held but the server is away, sent a set that does not load, or
    /// the provider was shut down; `Error` when no set could be loaded yet.
    fn status(&self) -> ProviderStatus {
        let held = self.shared.held().is_some();
        match (self.shared.phase(), held) {
            (Phase::NotStarted, _) | (Phase::Stopped, false) => ProviderStatus::NotReady,
            (Phase::Running { .. }, false) => ProviderStatus::Error,
            (Phase::Running { fresh: true }, true) => ProviderStatus::Ready,
            (Phase::Running { fresh: false }, true) | (Phase::Stopped, true) => ProviderStatus::STALE,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(key, context, resolve::boolean)
    }

    async fn resolve_int_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(key, context, resolve::integer)
    }

    async fn resolve_float_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(key, context, resolve::float)
    }

    async fn resolve_string_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(key, context, resolve::string)
    }

    async fn resolve_struct_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(key, context, resolve::object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cannot_work_is_refused_when_built_and_the_token_is_never_shown() {
        let build = |server: &str, token: &str, set: &str| MobiusProvider::builder(server, token, set).build();
        assert!(matches!(build("mobius.example.com", "t", "web"), Err(BuildError::ServerUrl { .. })));
        assert!(matches!(build("ftp://mobius.example.com", "t", "web"), Err(BuildError::ServerUrl { .. })));
        assert!(matches!(build("http://127.0.0.1:1", "", "web"), Err(BuildError::Token)));
        let bad = build("http://127.0.0.1:1", "secret\nvalue", "web").unwrap_err();
        assert!(matches!(bad, BuildError::Token) && !bad.to_string().contains("secret"));
        assert!(matches!(build("http://127.0.0.1:1", "t", ""), Err(BuildError::SetName)));
        let zero = MobiusProvider::builder("http://127.0.0.1:1", "t", "web").poll_every(Duration::ZERO).build();
        assert!(matches!(zero, Err(BuildError::ZeroDuration { .. })));
        let provider = build("http://127.0.0.1:1/", "mbx_secret-token", "web").unwrap();
        let shown = format!("{provider:?} {:?}", provider.shared);
        assert!(!shown.contains("mbx_secret-token"), "{shown}");
        assert_eq!(provider.status(), ProviderStatus::NotReady);
        assert_eq!(provider.metadata().name, "mobius");
    }

    #[tokio::test]
    async fn with_no_server_it_is_not_ready_and_says_so_without_the_token() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let provider = MobiusProvider::builder(format!("http://127.0.0.1:{port}"), "mbx_secret-token", "web")
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let refused = provider.start().await.expect_err("nothing listens");
        let said = crate::error::Chain(&refused).to_string();
        assert!(said.contains(&format!("127.0.0.1:{port}/api/v1/flags/web")) && !said.contains("mbx_"), "{said}");
        assert_eq!(provider.status(), ProviderStatus::Error);
        let answer = provider.resolve_bool_value("banner", &EvaluationContext::default()).await;
        assert_eq!(answer.unwrap_err().code, EvaluationErrorCode::ProviderNotReady);
        provider.shutdown();
        assert_eq!(provider.status(), ProviderStatus::NotReady);
    }

    /// A server that answers each request with the next canned response and records what it
    /// was asked. Stands in for Mobius where the real one cannot go: it never serves a
    /// document that does not load.
    async fn canned(responses: Vec<String>) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (asked, heads) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for response in responses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap() == 1 {
                    head.push(byte[0]);
                }
                asked.send(String::from_utf8_lossy(&head).to_lowercase()).unwrap();
                socket.write_all(response.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        });
        (base, heads)
    }

    fn ok(version: u32, body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nETag: \"{version}\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn status(code: &str) -> String {
        format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn a_document_that_does_not_load_leaves_the_last_good_set_in_force() {
        let red = r#"{"flags": {"color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}"#;
        let blue = red.replace("\"defaultVariant\": \"red\"", "\"defaultVariant\": \"blue\"");
        let broken = red.replace("\"defaultVariant\": \"red\"", "\"defaultVariant\": \"green\"");
        let responses = vec![
            ok(1, red),
            ok(2, &broken),
            status("304 Not Modified"),
            status("500 Internal Server Error"),
            ok(3, &blue),
        ];
        let (base, mut asked) = canned(responses).await;
        let provider = MobiusProvider::builder(&base, "tok-123", "web")
            .follow_stream(false)
            .poll_every(Duration::from_secs(3600))
            .build()
            .unwrap();
        let color = async || provider.resolve_string_value("color", &EvaluationContext::default()).await.unwrap().value;

        provider.start().await.expect("version 1 loads");
        let head = asked.recv().await.unwrap();
        assert!(head.starts_with("get /api/v1/flags/web ") && head.contains("authorization: bearer tok-123"), "{head}");
        assert!(!head.contains("if-none-match"), "nothing held, nothing to match: {head}");
        assert_eq!((provider.status(), color().await.as_str()), (ProviderStatus::Ready, "red"));

        let refused = provider.shared.sync_and_log().await.expect_err("version 2 does not load");
        assert!(matches!(refused, SyncError::Refused { .. }), "{refused:?}");
        assert!(crate::error::Chain(&refused).to_string().contains("web@2:"), "the position names the version");
        assert!(asked.recv().await.unwrap().contains("if-none-match: \"1\""));
        assert_eq!((provider.status(), color().await.as_str()), (ProviderStatus::STALE, "red"));
        assert_eq!(provider.version().as_deref(), Some("1"));

        // The refused version is not fetched again, and the provider stays stale while the
        // server holds it.
        let _ = provider.shared.sync_and_log().await.expect("unchanged");
        assert!(asked.recv().await.unwrap().contains("if-none-match: \"1\", \"2\""));
        assert_eq!((provider.status(), color().await.as_str()), (ProviderStatus::STALE, "red"));

        let failed = provider.shared.sync_and_log().await.expect_err("a server error");
        assert!(matches!(failed, SyncError::Status { status: 500, .. }), "{failed:?}");
        assert_eq!(color().await, "red");

        provider.shared.sync_and_log().await.expect("version 3 loads");
        assert_eq!((provider.status(), color().await.as_str()), (ProviderStatus::Ready, "blue"));
        assert_eq!(provider.version().as_deref(), Some("3"));
        provider.shutdown();
    }

    #[tokio::test]
    async fn a_bootstrap_set_answers_until_the_server_does() {
        let document = r#"{"flags": {"banner": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#;
        let set = FlagSet::from_json("boot.flagd.json", document, &mobius_flags::LoadOptions::default()).unwrap();
        let provider = MobiusProvider::builder("http://127.0.0.1:9", "t", "web")
            .timeout(Duration::from_secs(2))
            .bootstrap(set)
            .build()
            .unwrap();
        let banner = provider.resolve_bool_value("banner", &EvaluationContext::default()).await.unwrap();
        assert_eq!((banner.value, banner.variant.as_deref()), (true, Some("on")));
        assert_eq!(provider.version(), None);
        let _ = provider.start().await;
        assert_eq!(provider.status(), ProviderStatus::STALE, "a set, but not the server's");
        assert!(provider.resolve_bool_value("banner", &EvaluationContext::default()).await.unwrap().value);
        provider.shutdown();
    }
}
