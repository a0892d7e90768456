//! The data plane of one service in one environment, from the control plane's side: an
//! embedded proxy (the default, inside `mobius serve`), or a separate `mobius proxy` that the
//! control plane talks to through files in `<data>/proxy/` (the routing table it follows, the
//! SLIs it publishes) — so it keeps serving its last table while the control plane is down.
//! Those files are written and read by a thread of the plane's own ([`Files`]), never on the
//! async workers: a table is handed to it, and the SLIs are what it read last.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mobius_proxy::chaos::Fault;
use mobius_proxy::files;
use mobius_proxy::proxy::Proxy;
use mobius_proxy::routing::RoutingTable;
use mobius_proxy::sli::SliSnapshot;
use tokio::sync::oneshot;

/// Where a service's traffic is routed, and the chaos faults injected into it.
pub struct Plane {
    route: Route,
    /// The last table set (without faults), to re-send when the faults change.
    last: Mutex<Option<RoutingTable>>,
    faults: Mutex<Vec<Injected>>,
}

/// A fault, and whether the requests it fails are left out of error budgets (a game day
/// recorded as a policy exception) or counted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Injected {
    pub fault: Fault,
    pub counted: bool,
}

enum Route {
    Embedded { proxy: Arc<Proxy>, stop: Option<oneshot::Sender<()>> },
    External(Files),
}

/// The files of a separate proxy, kept by a thread: it writes each table handed to it (the
/// newest, when several wait) and reads the published SLIs every [`SLI_READ_EVERY`].
struct Files {
    tables: std::sync::mpsc::Sender<RoutingTable>,
    slis: Arc<Mutex<SliSnapshot>>,
}

/// How often a separate proxy's published SLIs are read (it publishes about every second).
const SLI_READ_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl Files {
    fn start(table: PathBuf, slis_path: PathBuf) -> Files {
        let (tables, received) = std::sync::mpsc::channel::<RoutingTable>();
        let slis = Arc::new(Mutex::new(SliSnapshot {
            taken_at_ms: 0,
            versions: Default::default(),
            variants: Default::default(),
        }));
        let read = slis.clone();
        let spawned = std::thread::Builder::new().name("proxy-files".into()).spawn(move || {
            loop {
                match received.recv_timeout(SLI_READ_EVERY) {
                    Ok(first) => {
                        // Only the newest table matters.
                        let newest = received.try_iter().last().unwrap_or(first);
                        if let Err(e) = files::write_atomic(&table, &newest) {
                            tracing::error!(path = %table.display(), error = %e, "cannot write the routing table");
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    // The plane is gone.
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
                // A proxy that has not published yet (or a half-written file) keeps the last.
                if let Some(snapshot) = std::fs::read(&slis_path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                    *read.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the thread that keeps a proxy's files");
        }
        Files { tables, slis }
    }
}

impl Plane {
    fn with(route: Route) -> Plane {
        Plane { route, last: Mutex::new(None), faults: Mutex::new(Vec::new()) }
    }

    /// The faults now (expired ones dropped).
    pub fn faults(&self) -> Vec<Injected> {
        let now_ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or_default();
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        faults.retain(|f| !f.fault.expired(now_ms));
        faults.clone()
    }

    /// Replaces the faults and re-sends the last table with them.
    pub fn set_faults(&self, faults: Vec<Injected>) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(mut table) = last {
            table.generation = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or_default();
            self.send(table);
        }
    }

    /// Whether an active fault's failures are left out of the budget.
    pub fn excludes_injected(&self) -> bool {
        self.faults().iter().any(|f| !f.counted)
    }

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
        Ok(Plane::with(Route::Embedded { proxy, stop: Some(stop) }))
    }

    /// A separate `mobius proxy` following files in `dir`.
    pub fn external(dir: PathBuf, service: &str, environment: &str) -> Plane {
        Plane::with(Route::External(Files::start(
            files::table_path(&dir, service, environment),
            files::sli_path(&dir, service, environment),
        )))
    }

    /// Routes by `table` (with the current faults) from now on; a separate proxy picks it up
    /// within its poll period.
    pub fn set_table(&self, table: RoutingTable) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(table.clone());
        self.send(table);
    }

    fn send(&self, mut table: RoutingTable) {
        table.faults = self.faults().into_iter().map(|f| f.fault).collect();
        match &self.route {
            Route::Embedded { proxy, .. } => proxy.set_table(table),
            Route::External(files) => {
                if files.tables.send(table).is_err() {
                    tracing::error!("the thread that writes the routing table is gone");
                }
            }
        }
    }

    /// How long after a table change the proxy may still send requests by the old table: the
    /// embedded one switches at once (only requests already picking an upstream remain); a
    /// separate one polls its file every 200 ms.
    pub fn settle(&self) -> std::time::Duration {
        match &self.route {
            Route::Embedded { .. } => std::time::Duration::from_millis(100),
            // Its poll (200 ms), the file thread's, and a margin.
            Route::External(_) => std::time::Duration::from_millis(1000),
        }
    }

    /// The SLIs so far (cumulative). A separate proxy that has not published yet reads empty.
    pub fn slis(&self) -> SliSnapshot {
        match &self.route {
            Route::Embedded { proxy, .. } => proxy.slis(),
            Route::External(files) => files.slis.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        if let Route::Embedded { stop, .. } = self
            && let Some(stop) = stop.take()
        {
            let _ = stop.send(());
        }
    }
}
