//! Limits on every door: how many connections, how long a client may take to send its head
//! or body or sit idle, how much body the server holds at once, and how many bodies it reads
//! before knowing who sent them.
//!
//! [`serve`] is the accept loop: a connection is accepted only while fewer than
//! `max_connections` are open (the rest wait in the kernel's backlog, holding none of the
//! server's file descriptors), each is served by hyper with a header-read timeout, and its
//! socket is wrapped so that a connection with no byte in either direction for `idle_timeout`
//! is closed. Body reads (in [`crate::extract`]) take their size from a shared budget and
//! have a deadline of their own.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// The server's limits. [`Limits::default`] is what `mobius serve` uses unless configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more wait in the listen backlog. Default 4096 (lowered to
    /// half the process's file-descriptor limit when that is smaller).
    pub max_connections: usize,
    /// Time to receive a request's head, counted from when the server starts waiting for it —
    /// so it also ends a kept-alive connection that sends nothing. Default 10 s.
    pub header_read_timeout: Duration,
    /// Time to receive a whole request body. Default 30 s.
    pub body_read_timeout: Duration,
    /// A connection with no byte read or written for this long is closed. Default 60 s (SSE
    /// streams send a comment every 15 s).
    pub idle_timeout: Duration,
    /// The largest request body read into memory. Default 10 MiB.
    pub max_body_bytes: usize,
    /// Request body bytes held in memory at once, across every request; a request that would
    /// exceed it waits up to `body_read_timeout`, then gets 503. Default 64 MiB.
    pub body_budget_bytes: usize,
    /// Bodies read at once before the sender is known (webhooks, whose signature covers the
    /// body). Default 8.
    pub unauthenticated_reads: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_body_bytes: 10 << 20,
            body_budget_bytes: 64 << 20,
            unauthenticated_reads: 8,
        }
    }
}

/// The shared counters the limits are enforced with.
#[derive(Debug)]
pub struct Gates {
    pub limits: Limits,
    /// Body bytes being held, in KiB permits (a semaphore counts in `u32`).
    pub body_budget: Arc<Semaphore>,
    /// Unauthenticated body reads in progress.
    pub unauthenticated: Arc<Semaphore>,
}

impl Gates {
    pub fn new(limits: Limits) -> Gates {
        Gates {
            body_budget: Arc::new(Semaphore::new(limits.body_budget_bytes.div_ceil(1024))),
            unauthenticated: Arc::new(Semaphore::new(limits.unauthenticated_reads.max(1))),
            limits,
        }
    }
}

/// Raises the soft limit on open files to the hard limit (as Go's runtime does), so the
/// connection limit, not the file-descriptor limit, is what a flood of connections meets.
/// Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish (at most `grace`), and returns.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    let max = match raise_open_files_limit() {
        // Half the descriptors for connections; the store, logs and processes need the rest.
        Some(files) => limits.max_connections.min(usize::try_from(files / 2).unwrap_or(usize::MAX)).max(1),
        None => limits.max_connections.max(1),
    };
    let open = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Handlers that count by address (OFREP's rate without a token) read the peer.
        let service = TowerToHyperService::new(tower::Layer::layer(
            &axum::Extension(axum::extract::ConnectInfo(peer)),
            router.clone(),
        ));
        let mut stopping = stopping.clone();
        let (header_timeout, idle) = (limits.header_read_timeout, limits.idle_timeout);
        connections.spawn(async move {
            let io = TokioIo::new(Idle::new(stream, idle));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(io, service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
        // Reap finished connections as we go, so the set does not grow with them.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    if tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {grace:?}; closing them");
        connections.shutdown().await;
    }
    Ok(())
}

/// A socket that fails reads once nothing was read or written for `after`, which ends the
/// connection. A slow client still sending is not idle; one that stopped is.
struct Idle {
    inner: TcpStream,
    after: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl Idle {
    fn new(inner: TcpStream, after: Duration) -> Idle {
        Idle { inner, after, deadline: Box::pin(tokio::time::sleep(after)) }
    }

    fn active(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.after);
    }
}

impl AsyncRead for Idle {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the connection was idle too long")))
            }
        }
    }
}

impl AsyncWrite for Idle {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        if matches!(written, Ok(n) if n > 0) {
            self.active();
        }
        Poll::Ready(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        if matches!(written, Ok(n) if n > 0) {
            self.active();
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
