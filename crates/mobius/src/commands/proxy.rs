//! `mobius proxy`: the data plane on its own, for one service in one environment. It reads the
//! routing table the control plane writes (`<dir>/<service>.<environment>.table.json`) and
//! publishes per-version SLIs beside it (`….sli.json`), so traffic keeps flowing, split as last
//! decided, while the control plane is down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use mobius_proxy::{Proxy, RoutingTable, files};
use tokio::sync::watch;

/// How often the table file is checked for a new generation.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// How often the SLI file is rewritten.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Run the weighted reverse proxy for one service, apart from the control plane.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Address to accept traffic on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory holding the routing table and SLI files (default: <data-dir>/proxy).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The service whose traffic this proxy carries.
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// The environment of that service.
    #[arg(long, value_name = "NAME", default_value = "production")]
    pub environment: String,
    /// Event-loop threads [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<std::num::NonZeroU8>,
}

pub async fn run(data_dir: &Path, args: ProxyArgs) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| data_dir.join("proxy"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let table_path = files::table_path(&dir, &args.service, &args.environment);
    let sli_path = files::sli_path(&dir, &args.service, &args.environment);

    let table = match files::read_table(&table_path) {
        Ok(table) => table,
        Err(error) => {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::new(error)), "starting with no backend (every request gets 503)");
            RoutingTable::empty(&args.service, &args.environment)
        }
    };
    let listener =
        std::net::TcpListener::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let threads = args
        .threads
        .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |n| usize::from(n.get()));
    let proxy = Proxy::new(table);

    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let follower =
        tokio::spawn(files::follow_table(proxy.clone(), table_path, FOLLOW_EVERY, until_stopped(stopped.clone())));
    let publisher = tokio::spawn(files::publish_slis(proxy.clone(), sli_path, PUBLISH_EVERY, until_stopped(stopped)));

    eprintln!("mobius proxy listening on http://{address}");
    tracing::info!(%address, service = %args.service, environment = %args.environment, dir = %dir.display(), "proxy started");
    // One event loop per thread, like nginx's workers; the signal ends them from here.
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        let _ = done.send(());
    });
    let serving = proxy.clone();
    #[expect(clippy::disallowed_methods, reason = "the proxy's own threads, not store work: nothing to check")]
    tokio::task::spawn_blocking(move || {
        serving.serve_std(listener, threads, async {
            let _ = finished.await;
        })
    })
    .await
    .context("the proxy's threads panicked")?
    .context("the proxy failed")?;

    // In-flight requests are done: stop following and write the final SLIs.
    let _ = stop.send(true);
    let _ = follower.await;
    let _ = publisher.await;
    tracing::info!("proxy stopped");
    Ok(ExitCode::SUCCESS)
}
