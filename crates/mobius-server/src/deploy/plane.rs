//! The data plane of one service in one environment, from the control plane's side: an
//! embedded proxy (the default, inside `mobius serve`), or a separate `mobius proxy` that the
//! control plane talks to through files in `<data>/proxy/` (the routing table it follows, the
//! SLIs it publishes) — so it keeps serving its last table while the control plane is down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mobius_proxy::files;
use mobius_proxy::proxy::Proxy;
use mobius_proxy::routing::RoutingTable;
use mobius_proxy::sli::SliSnapshot;
use tokio::sync::oneshot;

/// Where a service's traffic is routed.
pub enum Plane {
    Embedded { proxy: Arc<Proxy>, stop: Option<oneshot::Sender<()>> },
    External { table: PathBuf, slis: PathBuf },
}

impl Plane {
    /// An embedded proxy listening on `listen`, starting with `table`.
    pub async fn embedded(listen: SocketAddr, table: RoutingTable) -> std::io::Result<Plane> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let proxy = Proxy::new(table);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = proxy.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = serving.serve(listener, shutdown).await {
                tracing::error!(%listen, error = %e, "the proxy stopped");
            }
        });
        Ok(Plane::Embedded { proxy, stop: Some(stop) })
    }

    /// A separate `mobius proxy` following files in `dir`.
    pub fn external(dir: PathBuf, service: &str, environment: &str) -> Plane {
        Plane::External {
            table: files::table_path(&dir, service, environment),
            slis: files::sli_path(&dir, service, environment),
        }
    }

    /// Routes by `table` from now on (a separate proxy picks it up within its poll period).
    pub fn set_table(&self, table: RoutingTable) {
        match self {
            Plane::Embedded { proxy, .. } => proxy.set_table(table),
            Plane::External { table: path, .. } => {
                if let Err(e) = files::write_atomic(path, &table) {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the routing table");
                }
            }
        }
    }

    /// How long after a table change the proxy may still send requests by the old table: the
    /// embedded one switches at once (only requests already picking an upstream remain); a
    /// separate one polls its file every 200 ms.
    pub fn settle(&self) -> std::time::Duration {
        match self {
            Plane::Embedded { .. } => std::time::Duration::from_millis(100),
            Plane::External { .. } => std::time::Duration::from_millis(1000),
        }
    }

    /// The SLIs so far (cumulative). A separate proxy that has not published yet reads empty.
    pub fn slis(&self) -> SliSnapshot {
        match self {
            Plane::Embedded { proxy, .. } => proxy.slis(),
            Plane::External { slis, .. } => std::fs::read(slis)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_else(|| SliSnapshot { taken_at_ms: 0, versions: Default::default() }),
        }
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        if let Plane::Embedded { stop, .. } = self
            && let Some(stop) = stop.take()
        {
            let _ = stop.send(());
        }
    }
}
