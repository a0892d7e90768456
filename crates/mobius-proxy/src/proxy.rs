//! The proxy itself: accepts HTTP/1.1 (keep-alive), routes each request with
//! [`routing::decide`], forwards it over a pooled keep-alive client with the body streamed both
//! ways, and counts the outcome in the version's SLIs.
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
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::routing::{self, RoutingTable, Side};
use crate::sli::{SliRegistry, SliSnapshot, VersionCounters};

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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// A weighted reverse proxy for one service in one environment. Share it with `Arc`.
pub struct Proxy {
    live: RwLock<Arc<Live>>,
    slis: SliRegistry,
    client: Client<HttpConnector, ProxyBody>,
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
}

impl LiveBackend {
    fn pick(&self) -> usize {
        self.next.fetch_add(1, Relaxed) % self.addrs.len()
    }
}

impl Proxy {
    /// A proxy routing by `table`.
    pub fn new(table: RoutingTable) -> Arc<Proxy> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector);
        let slis = SliRegistry::default();
        let live = RwLock::new(Arc::new(Live::new(table, &slis)));
        Arc::new(Proxy { live, slis, client })
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
        let _ = stop.send(());
        while connections.join_next().await.is_some() {}
        Ok(())
    }

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>, peer_ip: &HeaderValue) -> Response<ProxyBody> {
        let started = Instant::now();
        let live = self.current();
        let Some(decision) = routing::decide(&live.table, req.headers(), routing::draw_percent()) else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "no backend for this service\n");
        };
        let backend = match decision.side {
            Side::Stable => live.stable.as_ref(),
            Side::Canary => live.canary.as_ref(),
        }
        .expect("decide only picks a side that has addresses");
        backend.counters.request();

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
            match self.send(backend, first, &path, Request::from_parts(parts, empty())).await {
                Err(error) if error.is_connect() => {
                    let next = (first + 1) % backend.addrs.len();
                    tracing::debug!(%error, upstream = %backend.addrs[first], "retrying on {}", backend.addrs[next]);
                    self.send(backend, next, &path, again).await
                }
                other => other,
            }
        } else {
            self.send(backend, first, &path, Request::from_parts(parts, ProxyBody::Streamed(body))).await
        };

        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(response) => {
                backend.counters.response(response.status().as_u16(), latency_ms);
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if decision.set_cookie {
                    parts.headers.append(header::SET_COOKIE, backend.cookie.clone());
                }
                Response::from_parts(parts, ProxyBody::Streamed(body))
            }
            Err(error) => {
                backend.counters.response(StatusCode::BAD_GATEWAY.as_u16(), latency_ms);
                tracing::warn!(error = %error, upstream = %backend.addrs[first], "upstream request failed");
                text(StatusCode::BAD_GATEWAY, "upstream unavailable\n")
            }
        }
    }

    async fn send(
        &self,
        backend: &LiveBackend,
        index: usize,
        path: &PathAndQuery,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        // The authority is the upstream; `Host` stays as the client sent it.
        let mut uri = hyper::http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(backend.authorities[index].clone());
        uri.path_and_query = Some(path.clone());
        *req.uri_mut() = Uri::from_parts(uri).expect("scheme, authority and path make a URI");
        *req.version_mut() = hyper::Version::HTTP_11;
        self.client.request(req).await
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
            })
        };
        Live { stable: resolve(&table.stable), canary: resolve(&table.canary), table }
    }
}

async fn serve_connection(
    proxy: Arc<Proxy>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<()>,
) {
    // The peer's address as it goes into `x-forwarded-for`, formatted once per connection.
    let peer_ip = HeaderValue::try_from(peer.ip().to_string()).expect("an IP address is a header value");
    let service = hyper::service::service_fn(move |req| {
        let (proxy, peer_ip) = (proxy.clone(), peer_ip.clone());
        async move { Ok::<_, Infallible>(proxy.handle(req, &peer_ip).await) }
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

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and those the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, peer_ip: &HeaderValue) {
    let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => HeaderValue::try_from(format!("{earlier}, {}", peer_ip.to_str().unwrap_or_default())),
        None => Ok(peer_ip.clone()),
    };
    if let Ok(value) = value {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

fn clone_head(parts: &hyper::http::request::Parts) -> hyper::http::request::Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.1"));
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.2"));
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 10.0.0.2");
    }
}
