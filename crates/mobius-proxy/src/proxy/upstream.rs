//! Upstream connections: each downstream connection keeps its own keep-alive connection per
//! upstream address (see the parent module), and a request is sent over it, or a new one.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{LiveBackend, ProxyBody};

/// How long connecting to an upstream may take before the request fails (and may be retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream connections kept per downstream connection (one per address it was routed to; the
/// oldest is closed past this, e.g. after table swaps moved the addresses).
const MAX_UPSTREAMS_PER_CONNECTION: usize = 8;

/// The keep-alive upstream connections of one downstream connection, by address. A sender is
/// taken out while its request is in flight and put back once the response head arrived.
#[derive(Default)]
pub(super) struct Upstreams {
    conns: Vec<(SocketAddr, SendRequest<ProxyBody>)>,
}

impl Upstreams {
    pub(super) fn take(this: &Mutex<Upstreams>, addr: SocketAddr) -> Option<SendRequest<ProxyBody>> {
        let mut this = this.lock().unwrap_or_else(|e| e.into_inner());
        let at = this.conns.iter().position(|(a, _)| *a == addr)?;
        Some(this.conns.swap_remove(at).1)
    }

    pub(super) fn put(this: &Mutex<Upstreams>, addr: SocketAddr, sender: SendRequest<ProxyBody>) {
        let mut this = this.lock().unwrap_or_else(|e| e.into_inner());
        if this.conns.len() >= MAX_UPSTREAMS_PER_CONNECTION {
            this.conns.remove(0);
        }
        this.conns.push((addr, sender));
    }
}

/// Why a request got no response from its upstream.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    /// No connection: refused, unreachable, timed out. Nothing was sent.
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    /// The connection failed while (or after) the request went out.
    #[error("the upstream connection failed")]
    Upstream(#[source] hyper::Error),
}

impl SendError {
    pub(super) fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// Sends `req` to `backend.addrs[index]` over the downstream connection's keep-alive connection
/// to it, opening one if there is none or it closed (also when it turns out closed before the
/// request went out).
pub(super) async fn send(
    upstreams: &Mutex<Upstreams>,
    backend: &LiveBackend,
    index: usize,
    path: &PathAndQuery,
    mut req: Request<ProxyBody>,
) -> Result<Response<Incoming>, SendError> {
    let addr = backend.addrs[index];
    // Origin-form to the upstream; `Host` stays as the client sent it (the upstream's when none).
    *req.uri_mut() = Uri::from(path.clone());
    *req.version_mut() = hyper::Version::HTTP_11;
    if !req.headers().contains_key(header::HOST) {
        let host = HeaderValue::from_str(backend.authorities[index].as_str()).expect("an authority is a header value");
        req.headers_mut().insert(header::HOST, host);
    }
    // A closed connection (the upstream ended it while idle) is replaced.
    if let Some(mut sender) = Upstreams::take(upstreams, addr)
        && sender.ready().await.is_ok()
    {
        match sender.try_send_request(req).await {
            Ok(response) => {
                Upstreams::put(upstreams, addr, sender);
                return Ok(response);
            }
            Err(mut error) => match error.take_message() {
                // Not sent: the connection was closing. Send it on a new one.
                Some(unsent) => req = unsent,
                None => return Err(SendError::Upstream(error.into_error())),
            },
        }
    }
    let mut sender = connect(addr).await?;
    let response = sender.send_request(req).await.map_err(SendError::Upstream)?;
    Upstreams::put(upstreams, addr, sender);
    Ok(response)
}

pub(super) async fn connect(addr: SocketAddr) -> Result<SendRequest<ProxyBody>, SendError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(SendError::Connect(error)),
        Err(_) => return Err(SendError::Connect(std::io::ErrorKind::TimedOut.into())),
    };
    // Only latency is at stake: Nagle's algorithm delays small writes.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Upstream)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, upstream = %addr, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
