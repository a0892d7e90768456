//! The proxy itself: accepts HTTP/1.1 (keep-alive), routes each request with
//! [`routing::decide`], forwards it over a keep-alive connection to the upstream with the body
//! streamed both ways, and counts the outcome in the version's SLIs.
//!
//! Upstream connections belong to the downstream connection they serve: HTTP/1.1 carries one
//! request at a time, so one keep-alive connection per upstream address, opened on first use
//! and closed with the downstream connection, serves all of its requests with no shared pool
//! (no lock, no checkout, no idle timer). [`Proxy::serve_std`] runs one single-threaded event
//! loop per thread on a shared listener, like nginx's workers.
//!
//! Layers, in the order a request meets them (each a small function below): route → count →
//! rewrite the head (hop-by-hop headers, `x-forwarded-for`, upstream URI) → send, with one retry
//! → rewrite the response head (hop-by-hop, `Set-Cookie`) → count.
//!
//! Retry: a `GET` or `HEAD` without a body whose connection to the upstream fails (refused,
//! unreachable, timed out connecting — nothing was sent) is sent once more to the next address
//! of the same version. Nothing else is retried: other methods may not be idempotent, and once
//! bytes went out the upstream may have acted on them. A request routed to the canary is never
//! moved to the stable: that would hide the canary's failures from its SLIs.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::chaos::{self, LiveFault};
use crate::files::display_chain;
use crate::routing::{self, RoutingTable, Side};
use crate::sli::{SliRegistry, SliSnapshot, VersionCounters};

mod headers;
mod upstream;

use headers::{append_forwarded_for, clone_head, strip_hop_by_hop};
use upstream::{Upstreams, send};

/// The body of requests sent upstream and of responses sent downstream: streamed from the other
/// side, or the proxy's own (an enum rather than a boxed body: no allocation per message).
#[derive(Debug)]
pub enum ProxyBody {
    /// No body (a retried `GET`/`HEAD`).
    Empty,
    /// The proxy's own short answer (503, 502); `None` once sent.
    Text(Option<Bytes>),
    /// Streamed from the client or the upstream.
    Streamed(Incoming),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            ProxyBody::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Text(text) => text.is_none(),
            ProxyBody::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty | ProxyBody::Text(None) => SizeHint::with_exact(0),
            ProxyBody::Text(Some(text)) => SizeHint::with_exact(text.len() as u64),
            ProxyBody::Streamed(body) => body.size_hint(),
        }
    }
}

const FAULT_HEADER: HeaderName = HeaderName::from_static(chaos::FAULT_HEADER);

/// A weighted reverse proxy for one service in one environment. Share it with `Arc`.
pub struct Proxy {
    live: RwLock<Arc<Live>>,
    slis: SliRegistry,
    /// Whether requests are counted in the SLIs (always, but for measuring what counting costs).
    recording: std::sync::atomic::AtomicBool,
}

/// The table as the request path uses it: counters and round-robin state resolved once.
struct Live {
    table: RoutingTable,
    stable: Option<LiveBackend>,
    canary: Option<LiveBackend>,
}

struct LiveBackend {
    addrs: Vec<SocketAddr>,
    /// `addrs` as URI authorities, built once per table rather than per request.
    authorities: Vec<Authority>,
    next: AtomicUsize,
    counters: Arc<VersionCounters>,
    cookie: HeaderValue,
    /// The table's valid faults that apply to this version, in table order.
    faults: Vec<LiveFault>,
}

impl LiveBackend {
    fn pick(&self) -> usize {
        self.next.fetch_add(1, Relaxed) % self.addrs.len()
    }
}

impl Proxy {
    /// A proxy routing by `table`.
    pub fn new(table: RoutingTable) -> Arc<Proxy> {
        let slis = SliRegistry::default();
        let live = RwLock::new(Arc::new(Live::new(table, &slis)));
        Arc::new(Proxy { live, slis, recording: std::sync::atomic::AtomicBool::new(true) })
    }

    /// Swaps in a new table. Requests already routed finish where they were sent.
    pub fn set_table(&self, table: RoutingTable) {
        let live = Arc::new(Live::new(table, &self.slis));
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = live;
    }

    /// The table in use.
    pub fn table(&self) -> RoutingTable {
        self.current().table.clone()
    }

    /// Turns SLI recording off or on. Only for measuring what recording costs: a proxy that
    /// does not record gives analysis and SLOs nothing to judge.
    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every version's SLIs since the proxy started.
    pub fn slis(&self) -> SliSnapshot {
        self.slis.snapshot()
    }

    fn current(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting, lets
    /// every connection finish its in-flight request (idle keep-alive connections are closed)
    /// and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(());
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Only latency is at stake: Nagle's algorithm delays small writes.
                        let _ = stream.set_nodelay(true);
                        connections.spawn(serve_connection(self.clone(), stream, peer, stopped.clone()));
                    }
                    Err(error) => {
                        // Usually out of file descriptors; back off rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        // No receiver left means no connection left to stop.
        let _ = stop.send(());
        while connections.join_next().await.is_some() {}
        Ok(())
    }

    /// Serves HTTP/1.1 on `listener` with `threads` threads (at least one; the calling thread is
    /// one of them), each a single-threaded tokio runtime serving its own connections, like
    /// nginx's workers, until `shutdown` completes; then as [`Proxy::serve`]. The calling thread
    /// also accepts, and hands each connection to the thread with the fewest open connections
    /// (threads accepting from a shared listener themselves can end up with all the connections
    /// on one thread). Blocks; call it outside any async runtime. `shutdown` is polled on the
    /// calling thread.
    pub fn serve_std(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        threads: usize,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
        let main = runtime()?;
        let mut handoffs = Vec::new();
        let mut workers = Vec::new();
        let mut own = None;
        let mut spawned = Ok(());
        for n in 0..threads.max(1) {
            let (handoff, incoming) = tokio::sync::mpsc::unbounded_channel();
            let open = Arc::new(AtomicUsize::new(0));
            handoffs.push((handoff, open.clone()));
            let worker = serve_handed(self.clone(), incoming, open);
            if n == 0 {
                own = Some(main.spawn(worker));
                continue;
            }
            let thread = runtime().and_then(|rt| {
                std::thread::Builder::new().name(format!("mobius-proxy-{n}")).spawn(move || rt.block_on(worker))
            });
            match thread {
                Ok(thread) => workers.push(thread),
                Err(error) => {
                    spawned = Err(error);
                    break;
                }
            }
        }
        let result = main.block_on(async move {
            spawned?;
            let listener = TcpListener::from_std(listener)?;
            let mut shutdown = std::pin::pin!(shutdown);
            let mut next = 0;
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            // The least busy thread; ties go round-robin.
                            let n = handoffs.len();
                            let pick = (0..n)
                                .map(|k| (next + k) % n)
                                .min_by_key(|&k| handoffs[k].1.load(Relaxed))
                                .unwrap_or(0);
                            next = (pick + 1) % n;
                            // Only latency is at stake: Nagle's algorithm delays small writes.
                            let _ = stream.set_nodelay(true);
                            match stream.into_std() {
                                Ok(stream) => {
                                    handoffs[pick].1.fetch_add(1, Relaxed);
                                    // Its thread ends only when the hand-offs close, or if it
                                    // panicked; the connection is then dropped, like the thread's.
                                    if handoffs[pick].0.send((stream, peer)).is_err() {
                                        handoffs[pick].1.fetch_sub(1, Relaxed);
                                        tracing::error!(thread = pick, "a proxy thread is gone; dropping a connection");
                                    }
                                }
                                Err(error) => tracing::warn!(%peer, error = %error, "cannot hand a connection over; dropping it"),
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                }
            }
            // Closing the hand-offs stops the threads (gracefully, as `serve`).
            drop(listener);
            drop(handoffs);
            match own {
                // The join error says which task panicked and with what message.
                Some(own) => own.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
                None => Ok(()),
            }
        });
        let mut result = result;
        for worker in workers {
            let joined = worker.join().unwrap_or_else(|_| Err(std::io::Error::other("a proxy thread panicked")));
            result = result.and(joined);
        }
        result
    }

    async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer_ip: &HeaderValue,
        upstreams: &Mutex<Upstreams>,
    ) -> Response<ProxyBody> {
        let record = self.recording.load(std::sync::atomic::Ordering::Relaxed);
        // The clock is read only to record latency.
        let started = record.then(Instant::now);
        let elapsed_ms = || started.map_or(0.0, |s| s.elapsed().as_secs_f64() * 1000.0);
        let live = self.current();
        let Some(decision) = routing::decide(&live.table, req.headers(), routing::draw_percent()) else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "no backend for this service\n");
        };
        let backend = match decision.side {
            Side::Stable => live.stable.as_ref(),
            Side::Canary => live.canary.as_ref(),
        }
        .expect("decide only picks a side that has addresses");
        if record {
            backend.counters.request();
        }

        // Game-day faults, after the version is chosen. No faults for this version: one check.
        let mut delayed_by = None;
        if !backend.faults.is_empty()
            && let Some(fault) = chaos::pick(&backend.faults, req.headers())
        {
            match &fault.action {
                chaos::Action::Abort(status, body) => {
                    if record {
                        backend.counters.injected(Some(status.as_u16()));
                        backend.counters.response(status.as_u16(), elapsed_ms());
                    }
                    let mut response = Response::new(ProxyBody::Text(Some(body.clone())));
                    *response.status_mut() = *status;
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                    headers.insert(FAULT_HEADER, fault.id.clone());
                    if decision.set_cookie {
                        headers.append(header::SET_COOKIE, backend.cookie.clone());
                    }
                    return response;
                }
                chaos::Action::Delay { .. } => {
                    if record {
                        backend.counters.injected(None);
                    }
                    if let Some(delay) = fault.delay() {
                        tokio::time::sleep(delay).await;
                    }
                    delayed_by = Some(fault.id.clone());
                }
            }
        }

        strip_hop_by_hop(req.headers_mut());
        append_forwarded_for(req.headers_mut(), peer_ip);
        let retry = matches!(*req.method(), Method::GET | Method::HEAD)
            && req.body().is_end_stream()
            && backend.addrs.len() > 1;
        let (parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let first = backend.pick();

        let result = if retry {
            let again = Request::from_parts(clone_head(&parts), empty());
            match send(upstreams, backend, first, &path, Request::from_parts(parts, empty())).await {
                Err(error) if error.is_connect() => {
                    let next = (first + 1) % backend.addrs.len();
                    tracing::debug!(
                        error = %display_chain(&error), upstream = %backend.addrs[first],
                        "retrying on {}", backend.addrs[next]
                    );
                    send(upstreams, backend, next, &path, again).await
                }
                other => other,
            }
        } else {
            send(upstreams, backend, first, &path, Request::from_parts(parts, ProxyBody::Streamed(body))).await
        };

        let latency_ms = elapsed_ms();
        match result {
            Ok(response) => {
                if record {
                    let status = response.status().as_u16();
                    backend.counters.response(status, latency_ms);
                    for value in response.headers().get_all(mobius_flags::header::NAME) {
                        if let Ok(value) = value.to_str() {
                            self.slis.record_variants(value, status, latency_ms);
                        }
                    }
                }
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if decision.set_cookie {
                    parts.headers.append(header::SET_COOKIE, backend.cookie.clone());
                }
                if let Some(id) = delayed_by {
                    parts.headers.insert(FAULT_HEADER, id);
                }
                Response::from_parts(parts, ProxyBody::Streamed(body))
            }
            Err(error) => {
                if record {
                    backend.counters.response(StatusCode::BAD_GATEWAY.as_u16(), latency_ms);
                }
                tracing::warn!(error = %display_chain(&error), upstream = %backend.addrs[first], "upstream request failed");
                let mut response = text(StatusCode::BAD_GATEWAY, "upstream unavailable\n");
                if let Some(id) = delayed_by {
                    response.headers_mut().insert(FAULT_HEADER, id);
                }
                response
            }
        }
    }
}

impl Live {
    fn new(table: RoutingTable, slis: &SliRegistry) -> Live {
        let resolve = |backend: &Option<routing::Backend>| {
            backend.as_ref().filter(|b| !b.addrs.is_empty()).map(|b| LiveBackend {
                addrs: b.addrs.clone(),
                authorities: b
                    .addrs
                    .iter()
                    .map(|a| Authority::try_from(a.to_string()).expect("a socket address is an authority"))
                    .collect(),
                next: AtomicUsize::new(0),
                counters: slis.counters(&b.version),
                cookie: HeaderValue::from_str(&routing::set_cookie_value(&b.version))
                    .unwrap_or_else(|_| HeaderValue::from_static("mobius-version=invalid; Max-Age=0")),
                faults: LiveFault::for_version(&table.faults, &b.version),
            })
        };
        Live { stable: resolve(&table.stable), canary: resolve(&table.canary), table }
    }
}

/// One thread of [`Proxy::serve_std`]: serves the connections handed to it until the hand-off
/// closes, then shuts them down gracefully. `open` counts its connections for the acceptor.
async fn serve_handed(
    proxy: Arc<Proxy>,
    mut incoming: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    open: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            handed = incoming.recv() => match handed {
                Some((stream, peer)) => match TcpStream::from_std(stream) {
                    Ok(stream) => {
                        let (proxy, stopped, open) = (proxy.clone(), stopped.clone(), open.clone());
                        connections.spawn(async move {
                            serve_connection(proxy, stream, peer, stopped).await;
                            open.fetch_sub(1, Relaxed);
                        });
                    }
                    Err(error) => {
                        open.fetch_sub(1, Relaxed);
                        tracing::warn!(%error, "cannot register a connection");
                    }
                },
                None => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // No receiver left means no connection left to stop.
    let _ = stop.send(());
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection(
    proxy: Arc<Proxy>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<()>,
) {
    // The peer's address as it goes into `x-forwarded-for`, formatted once per connection.
    let peer_ip = HeaderValue::try_from(peer.ip().to_string()).expect("an IP address is a header value");
    let upstreams = Arc::new(Mutex::new(Upstreams::default()));
    let service = hyper::service::service_fn(move |req| {
        let (proxy, peer_ip, upstreams) = (proxy.clone(), peer_ip.clone(), upstreams.clone());
        async move { Ok::<_, Infallible>(proxy.handle(req, &peer_ip, &upstreams).await) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

fn empty() -> ProxyBody {
    ProxyBody::Empty
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Text(Some(Bytes::from_static(body.as_bytes()))));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
