//! A small HTTP/1.1 load generator: the demo's traffic and a benchmark driver.
//!
//! `connections` keep-alive connections each send `GET`s in a loop, either as fast as the server
//! answers or paced so that all of them together send `rate_per_sec`. Responses are counted per
//! version (the `x-mobius-version` header the sample app and the proxy set), so a run shows how
//! traffic was split between stable and canary. With `sticky`, each connection behaves like one
//! browser user: it keeps the cookies it is given and sends them back.
//!
//! Latency is measured from sending a request to reading the whole response (service time); a
//! paced run that falls behind does not add the queueing delay (no coordinated-omission
//! correction).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{COOKIE, HOST, HeaderName, HeaderValue, SET_COOKIE};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::analysis::percentile;

/// The response header naming the version that served a request.
pub const VERSION_HEADER: &str = "x-mobius-version";

/// Pause after a failed connection attempt, so a down server is not hammered in a tight loop.
const RECONNECT_DELAY: Duration = Duration::from_millis(20);

/// What traffic to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `http://host:port/path?query`; plain HTTP only.
    pub url: String,
    /// Concurrent keep-alive connections (at least one is used).
    pub connections: usize,
    /// Requests per second across all connections; `None` sends as fast as the server answers.
    pub rate_per_sec: Option<f64>,
    /// How long to run unless stopped earlier.
    pub duration: Duration,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Each connection keeps the cookies it receives and sends them back, like a browser user.
    pub sticky: bool,
}

/// Why a [`LoadSpec`] cannot run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid URL {url:?}: expected http://host:port/path")]
    Url { url: String },
    #[error("cannot resolve {authority}")]
    Resolve { authority: String, source: std::io::Error },
    #[error("invalid header {name:?}")]
    Header { name: String },
}

/// What a run observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Attempts: `ok + errors_4xx + errors_5xx + failed`.
    pub requests: u64,
    /// 2xx and 3xx responses.
    pub ok: u64,
    /// 4xx responses.
    pub errors_4xx: u64,
    /// 5xx responses.
    pub errors_5xx: u64,
    /// Requests without a response: connection refused, reset, closed mid-request.
    pub failed: u64,
    /// Per `x-mobius-version` (`"unknown"` without the header): `(responses, 5xx responses)`.
    pub by_version: BTreeMap<String, (u64, u64)>,
    /// Median latency of responses, in milliseconds (`None` without responses).
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency of responses, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Attempts per second over the run.
    pub rps: f64,
    /// How long the run lasted, in seconds.
    pub elapsed_secs: f64,
}

/// A load run in the background; see [`spawn`].
pub struct LoadHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<LoadReport>,
    stats: Arc<Stats>,
}

impl LoadHandle {
    /// The report so far, while the run goes on.
    pub fn snapshot(&self) -> LoadReport {
        self.stats.report()
    }

    /// Whether the run has ended by itself (its duration elapsed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the run (abandoning requests in flight) and returns its report.
    pub async fn stop(mut self) -> LoadReport {
        if let Some(stop) = self.stop.take() {
            // The run may have ended by itself already; then there is nothing to stop.
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(error = %error, "the load run's task failed; reporting what it counted");
                self.stats.report()
            }
        }
    }
}

/// Starts a run in the background on the current tokio runtime.
pub fn spawn(spec: LoadSpec) -> LoadHandle {
    let stats = Arc::new(Stats::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_with(spec, async move { _ = stopped.await }, stats.clone()));
    LoadHandle { stop: Some(stop), task, stats }
}

/// Runs until `spec.duration` has passed or `stop` completes, whichever is first. A spec that
/// cannot run (see [`LoadSpec::validate`]) returns an empty report at once.
pub async fn run(spec: LoadSpec, stop: impl Future) -> LoadReport {
    run_with(spec, stop, Arc::new(Stats::new())).await
}

impl LoadSpec {
    /// Checks the URL and headers, and resolves the address.
    pub fn validate(&self) -> Result<(), LoadError> {
        self.target().map(|_| ())
    }

    fn target(&self) -> Result<Target, LoadError> {
        let bad_url = || LoadError::Url { url: self.url.clone() };
        let uri: hyper::Uri = self.url.parse().map_err(|_| bad_url())?;
        if uri.scheme_str() != Some("http") {
            return Err(bad_url());
        }
        let authority = uri.authority().ok_or_else(bad_url)?.clone();
        let host_port = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&host_port)
            .map_err(|source| LoadError::Resolve { authority: host_port.clone(), source })?
            .next()
            .ok_or_else(bad_url)?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let bad = || LoadError::Header { name: name.clone() };
                Ok((
                    HeaderName::try_from(name.as_str()).map_err(|_| bad())?,
                    HeaderValue::try_from(value.as_str()).map_err(|_| bad())?,
                ))
            })
            .collect::<Result<_, LoadError>>()?;
        let host = HeaderValue::try_from(authority.as_str()).map_err(|_| bad_url())?;
        Ok(Target { addr, host, path, headers })
    }
}

struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

async fn run_with(spec: LoadSpec, stop: impl Future, stats: Arc<Stats>) -> LoadReport {
    let target = match spec.target() {
        Ok(target) => Arc::new(target),
        Err(error) => {
            tracing::warn!(error = %error, "load run not started");
            return LoadReport::default();
        }
    };
    stats.restart();
    let (stop_workers, stopped) = watch::channel(false);
    let pacing = spec
        .rate_per_sec
        .filter(|r| *r > 0.0)
        .map(|rate| Arc::new(Pacing { start: Instant::now(), rate, next_slot: AtomicU64::new(0) }));
    let mut workers = JoinSet::new();
    for _ in 0..spec.connections.max(1) {
        workers.spawn(connection(target.clone(), spec.sticky, pacing.clone(), stats.clone(), stopped.clone()));
    }
    tokio::select! {
        _ = tokio::time::sleep(spec.duration) => {}
        _ = stop => {}
    }
    // Every worker holds a receiver until it returns, so a failed send means none is left.
    let _ = stop_workers.send(true);
    stats.finish();
    workers.join_all().await;
    stats.report()
}

/// A shared schedule: slot `i` is due at `start + i / rate`, whichever connection takes it.
struct Pacing {
    start: Instant,
    rate: f64,
    next_slot: AtomicU64,
}

impl Pacing {
    fn next_due(&self) -> Instant {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        self.start + Duration::from_secs_f64(slot as f64 / self.rate)
    }
}

/// Races `future` with the stop signal; `None` when stopped first.
async fn unless_stopped<F: Future>(stopped: &mut watch::Receiver<bool>, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = stopped.wait_for(|stop| *stop) => None,
        output = future => Some(output),
    }
}

/// One client connection's loop: (re)connect, pace, send, record.
async fn connection(
    target: Arc<Target>,
    sticky: bool,
    pacing: Option<Arc<Pacing>>,
    stats: Arc<Stats>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    let mut cookies = CookieJar::default();
    loop {
        if let Some(pacing) = &pacing {
            let due = pacing.next_due();
            if unless_stopped(&mut stopped, tokio::time::sleep_until(due)).await.is_none() {
                return;
            }
        }
        if *stopped.borrow() {
            return;
        }
        let open = match sender.as_mut() {
            Some(s) if !s.is_closed() => match unless_stopped(&mut stopped, s.ready()).await {
                None => return,
                Some(ready) => ready.is_ok(),
            },
            _ => false,
        };
        if !open {
            // Not yet connected, or closed by the server (idle timeout, `Connection: close`).
            match unless_stopped(&mut stopped, connect(target.addr)).await {
                None => return,
                Some(Ok(s)) => sender = Some(s),
                // Counted, not logged: a load run against a failing target would log thousands of
                // lines, and the report says how many failed.
                Some(Err(_)) => {
                    sender = None;
                    stats.record_failure();
                    let pause = tokio::time::sleep(RECONNECT_DELAY);
                    if unless_stopped(&mut stopped, pause).await.is_none() {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };

        let mut request = Request::get(target.path.as_str())
            .body(Empty::<Bytes>::new())
            .expect("a validated path is a valid request");
        let headers = request.headers_mut();
        for (name, value) in &target.headers {
            headers.append(name.clone(), value.clone());
        }
        // A `Host` among the extra headers wins (e.g. to pick a virtual host on the proxy).
        headers.entry(HOST).or_insert_with(|| target.host.clone());
        if sticky && let Some(cookie) = cookies.header() {
            headers.append(COOKIE, cookie);
        }

        let started = Instant::now();
        let exchange = async {
            let response = s.send_request(request).await?;
            let (parts, body) = response.into_parts();
            body.collect().await?;
            Ok::<_, hyper::Error>(parts)
        };
        match unless_stopped(&mut stopped, exchange).await {
            None => return,
            Some(Ok(parts)) => {
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                if sticky {
                    cookies.update(parts.headers.get_all(SET_COOKIE));
                }
                let version = parts.headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
                stats.record_response(parts.status.as_u16(), version, latency_ms);
            }
            // Counted like a failed connection, for the same reason.
            Some(Err(_)) => {
                sender = None;
                stats.record_failure();
            }
        }
    }
}

/// Why a load connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("cannot connect")]
    Tcp(#[source] std::io::Error),
    #[error("the HTTP handshake failed")]
    Handshake(#[source] hyper::Error),
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, ConnectError> {
    let tcp = TcpStream::connect(addr).await.map_err(ConnectError::Tcp)?;
    // Only latency is at stake: Nagle's algorithm delays small writes.
    let _ = tcp.set_nodelay(true);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        // A connection that fails fails its next request, which is counted.
        let _ = conn.await;
    });
    Ok(sender)
}

/// The cookies one simulated user holds: name → value, in the order first received.
#[derive(Default)]
struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    /// Applies `Set-Cookie` headers: `name=value` replaces the held value; `Max-Age` of zero or
    /// less deletes it (how Flagger ends session affinity). Other attributes are ignored: every
    /// request goes to one host and path.
    fn update<'a>(&mut self, set_cookies: impl IntoIterator<Item = &'a HeaderValue>) {
        for header in set_cookies {
            // A cookie that is not visible ASCII is not one a browser would send back either.
            let Ok(header) = header.to_str() else { continue };
            let mut parts = header.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let expired = parts.any(|attribute| {
                attribute.split_once('=').is_some_and(|(key, max_age)| {
                    key.trim().eq_ignore_ascii_case("max-age")
                        && max_age.trim().parse::<i64>().is_ok_and(|age| age <= 0)
                })
            });
            self.cookies.retain(|(held, _)| held != name);
            if !expired {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// The `Cookie` header to send, if any cookie is held.
    fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let joined: Vec<String> = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        // Names and values came from valid header values, so the joined header is one too.
        HeaderValue::try_from(joined.join("; ")).ok()
    }
}

/// Counters shared by the connections of a run.
struct Stats {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    started: Option<Instant>,
    finished: Option<Instant>,
    report: LoadReport,
    latencies_ms: Vec<f64>,
}

impl Stats {
    fn new() -> Self {
        Stats { inner: Mutex::new(Counts::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn restart(&self) {
        *self.lock() = Counts { started: Some(Instant::now()), ..Counts::default() };
    }

    fn finish(&self) {
        self.lock().finished = Some(Instant::now());
    }

    fn record_failure(&self) {
        let mut counts = self.lock();
        if counts.finished.is_none() {
            counts.report.requests += 1;
            counts.report.failed += 1;
        }
    }

    fn record_response(&self, status: u16, version: &str, latency_ms: f64) {
        let mut counts = self.lock();
        if counts.finished.is_some() {
            return;
        }
        let report = &mut counts.report;
        report.requests += 1;
        let server_error = status >= 500;
        match status {
            200..=399 => report.ok += 1,
            400..=499 => report.errors_4xx += 1,
            500.. => report.errors_5xx += 1,
            _ => {}
        }
        let entry = report.by_version.entry(version.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(server_error);
        counts.latencies_ms.push(latency_ms);
    }

    fn report(&self) -> LoadReport {
        let counts = self.lock();
        let mut report = counts.report.clone();
        let end = counts.finished.unwrap_or_else(Instant::now);
        report.elapsed_secs = counts.started.map_or(0.0, |s| (end - s).as_secs_f64());
        if report.elapsed_secs > 0.0 {
            report.rps = report.requests as f64 / report.elapsed_secs;
        }
        report.p50_ms = percentile(&counts.latencies_ms, 0.50);
        report.p99_ms = percentile(&counts.latencies_ms, 0.99);
        report
    }
}

#[cfg(test)]
mod tests;
