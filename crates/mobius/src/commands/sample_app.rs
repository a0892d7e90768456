//! `mobius sample-app`: a tiny versioned HTTP app to roll out in demos and tests.
//!
//! `GET /` answers `hello from <version>`, failing with 500 at `--error-rate` and waiting
//! `--latency-ms`; `GET /healthz` always answers 200 without delay, so a bad version passes
//! health checks and only canary analysis catches it. Every response carries
//! `x-mobius-version: <version>`. A request's `x-mobius-flag: <flag>=<variant>` (what a
//! service with the flag provider says it evaluated; here the caller says it) comes back on the
//! response, so Mobius's proxy counts it per variant, and `--fail-variant <flag>=<variant>`
//! fails every `GET /` served with that variant — a feature that breaks only when switched on,
//! for a flag rollout to catch. On SIGTERM (or Ctrl-C) it stops accepting, finishes the requests
//! in flight, and exits 0.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The response header naming the version that served a request.
const VERSION_HEADER: &str = "x-mobius-version";
/// The header naming the flag variants a request was served with.
const FLAG_HEADER: &str = mobius_flags::header::NAME;

#[derive(Debug, clap::Args)]
// `mobius --version` propagates to subcommands; here `--version` is the app's version.
#[command(disable_version_flag = true)]
pub struct SampleAppArgs {
    /// The version to report in responses and the `x-mobius-version` header.
    #[arg(long, env = "SAMPLE_VERSION", default_value = "v1")]
    pub version: String,
    /// Fraction of `GET /` requests answered with 500, from 0 to 1 (evenly spread: 0.1 fails
    /// every tenth request).
    #[arg(long, env = "SAMPLE_ERROR_RATE", default_value_t = 0.0, value_parser = parse_fraction)]
    pub error_rate: f64,
    /// `<flag>=<variant>`: every `GET /` whose `x-mobius-flag` names it fails with 500.
    #[arg(long, env = "SAMPLE_FAIL_VARIANT", value_parser = parse_variant)]
    pub fail_variant: Option<String>,
    /// Milliseconds to wait before answering `GET /`.
    #[arg(long, env = "SAMPLE_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_host: IpAddr,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let value: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("{value} is not between 0 and 1")) }
}

fn parse_variant(s: &str) -> Result<String, String> {
    match s.trim().split_once('=') {
        Some((flag, variant)) if !flag.trim().is_empty() && !variant.trim().is_empty() => {
            Ok(format!("{}={}", flag.trim(), variant.trim()))
        }
        _ => Err(format!("{s:?} is not <flag>=<variant>")),
    }
}

pub async fn run(args: SampleAppArgs) -> Result<ExitCode> {
    let addr = SocketAddr::new(args.listen_host, args.port);
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    eprintln!("sample-app {} listening on {local}", args.version);
    let app = App::new(&args)?;
    serve(listener, app, terminated()?).await;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or SIGINT.
fn terminated() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The app's behaviour, shared by all connections.
struct App {
    version: HeaderValue,
    greeting: Bytes,
    error_rate: f64,
    fail_variant: Option<String>,
    latency: Duration,
    /// `GET /` requests so far, numbering them for [`fails`].
    served: AtomicU64,
}

impl App {
    fn new(args: &SampleAppArgs) -> Result<Arc<Self>> {
        let version = HeaderValue::try_from(args.version.as_str())
            .with_context(|| format!("version {:?} cannot be a header value", args.version))?;
        Ok(Arc::new(App {
            version,
            greeting: Bytes::from(format!("hello from {}\n", args.version)),
            error_rate: args.error_rate,
            fail_variant: args.fail_variant.clone(),
            latency: Duration::from_millis(args.latency_ms),
            served: AtomicU64::new(0),
        }))
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let flag = request.headers().get(FLAG_HEADER).cloned();
        // Read as the proxy reads it (percent-decoded, malformed pairs skipped).
        let failing =
            self.fail_variant.as_deref().and_then(|f| f.split_once('=')).is_some_and(|(flag_key, variant)| {
                let said = flag.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default();
                mobius_flags::header::parse(said).flatten().any(|pair| pair.flag == flag_key && pair.variant == variant)
            });
        let (status, body) = match (request.method(), request.uri().path()) {
            (&Method::GET | &Method::HEAD, "/healthz") => (StatusCode::OK, Bytes::from_static(b"ok\n")),
            (&Method::GET | &Method::HEAD, "/") => {
                let n = self.served.fetch_add(1, Ordering::Relaxed);
                if !self.latency.is_zero() {
                    tokio::time::sleep(self.latency).await;
                }
                if failing {
                    (StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"failing variant\n"))
                } else if fails(n, self.error_rate) {
                    (StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"injected failure\n"))
                } else {
                    (StatusCode::OK, self.greeting.clone())
                }
            }
            (_, "/" | "/healthz") => (StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
            _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(VERSION_HEADER, self.version.clone());
        if let Some(flag) = flag {
            headers.insert(FLAG_HEADER, flag);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        response
    }
}

/// Whether request number `n` (from 0) fails at `rate`: exactly when `⌊(n+1)·rate⌋` steps past
/// `⌊n·rate⌋`, which spreads failures evenly and makes any prefix of `k` requests hold
/// `⌊k·rate⌋` failures — deterministic, so a demo's canary fails the same way every time.
fn fails(n: u64, rate: f64) -> bool {
    rate > 0.0 && ((n + 1) as f64 * rate).floor() > (n as f64 * rate).floor()
}

/// Serves on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish (idle keep-alive connections close at once), and returns.
async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    eprintln!("sample-app: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let mut draining = draining.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(request).await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            let drain_requested = async move {
                let _ = draining.wait_for(|draining| *draining).await;
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = drain_requested => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = drain.send(true);
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    #[test]
    fn error_rate_spreads_failures_evenly() {
        let failures = |rate: f64, k: u64| (0..k).filter(|&n| fails(n, rate)).count();
        assert_eq!(failures(0.0, 1000), 0);
        assert_eq!(failures(1.0, 1000), 1000);
        assert_eq!(failures(0.1, 1000), 100);
        assert_eq!(failures(0.25, 7), 1);
        assert_eq!(failures(0.05, 19), 0);
        assert_eq!(failures(0.05, 20), 1);
        // Every tenth, not the first ten.
        let first: Vec<u64> = (0..30).filter(|&n| fails(n, 0.1)).collect();
        assert_eq!(first, [9, 19, 29]);
    }

    #[derive(Debug, Parser)]
    #[command(version, propagate_version = true)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        SampleApp(SampleAppArgs),
    }

    fn parse(args: &[&str]) -> Result<SampleAppArgs, clap::Error> {
        let all = ["mobius", "sample-app"].iter().chain(args);
        Cli::try_parse_from(all).map(|Cli { command: Command::SampleApp(args) }| args)
    }

    #[test]
    fn arguments() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let args = parse(&["--version", "v2", "--error-rate", "0.5", "--port", "9000"]).unwrap();
        assert_eq!((args.version.as_str(), args.error_rate, args.port), ("v2", 0.5, 9000));
        assert_eq!(args.listen_host, IpAddr::from([127, 0, 0, 1]));
        assert!(parse(&["--error-rate", "1.5"]).is_err());
        assert!(parse(&["--error-rate", "-0.1"]).is_err());
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        response
    }

    async fn start(args: SampleAppArgs) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, App::new(&args).unwrap(), async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    fn args(error_rate: f64, latency_ms: u64) -> SampleAppArgs {
        SampleAppArgs {
            version: "v7".into(),
            error_rate,
            fail_variant: None,
            latency_ms,
            port: 0,
            listen_host: IpAddr::from([127, 0, 0, 1]),
        }
    }

    #[tokio::test]
    async fn responses() {
        let (addr, stop, server) = start(args(0.5, 0)).await;
        let first = get(addr, "/").await;
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(first.contains("x-mobius-version: v7") && first.ends_with("hello from v7\n"));
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 500"));
        // Health checks pass whatever the error rate, and do not count as requests.
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
        let missing = get(addr, "/nope").await;
        assert!(missing.starts_with("HTTP/1.1 404") && missing.contains("x-mobius-version: v7"));
        stop.send(()).unwrap();
        server.await.unwrap();
    }

    /// A request as `GET /` with `x-mobius-flag: <flag>`.
    async fn get_flagged(addr: SocketAddr, flag: &str) -> String {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET / HTTP/1.1\r\nhost: x\r\nx-mobius-flag: {flag}\r\nconnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn a_failing_variant_fails_only_its_requests_and_the_flag_comes_back() {
        let failing = SampleAppArgs { fail_variant: Some("checkout=on".into()), ..args(0.0, 0) };
        let (addr, stop, server) = start(failing).await;
        let on = get_flagged(addr, "banner=b, checkout=on").await;
        assert!(on.starts_with("HTTP/1.1 500") && on.contains("x-mobius-flag: banner=b, checkout=on"), "{on}");
        let off = get_flagged(addr, "checkout=off").await;
        assert!(off.starts_with("HTTP/1.1 200") && off.contains("x-mobius-flag: checkout=off"), "{off}");
        assert!(!get_flagged(addr, "checkout=onward").await.starts_with("HTTP/1.1 500"));
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"), "no flag, no failure");
        assert!(parse(&["--fail-variant", "checkout"]).is_err());
        stop.send(()).unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_drains_requests_in_flight() {
        let (addr, stop, server) = start(args(0.0, 300)).await;
        let in_flight = tokio::spawn(get(addr, "/"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let response = in_flight.await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
        // No longer accepting.
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
