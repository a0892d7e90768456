//! The proxy alone, for the benchmark: a fixed table from the command line.
//!
//! `cargo run --release -p mobius-proxy --example proxy -- --listen 127.0.0.1:8080 \
//!     --stable 127.0.0.1:9001 [--canary 127.0.0.1:9002 --weight 10] [--threads 1]`
//!
//! `--threads N` (default 1) runs N single-threaded event loops on one listener
//! ([`Proxy::serve_std`]), like N nginx workers.
//!
//! `--stable` and `--canary` take comma-separated addresses. It stops on Ctrl-C (SIGINT).

use std::net::SocketAddr;

use mobius_proxy::{Backend, Proxy, RoutingTable};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8080".to_owned();
    let (mut stable, mut canary, mut weight, mut threads) = (None, None, 0u8, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--stable" => stable = Some(backend("stable", &value)?),
            "--canary" => canary = Some(backend("canary", &value)?),
            "--weight" => weight = value.parse()?,
            "--threads" => threads = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let table = RoutingTable {
        service: "bench".into(),
        environment: "bench".into(),
        generation: 1,
        stable,
        canary,
        canary_weight: weight,
        faults: Vec::new(),
    };
    let listener = std::net::TcpListener::bind(&listen)?;
    eprintln!("mobius proxy listening on http://{} ({threads} threads)", listener.local_addr()?);
    let proxy = Proxy::new(table);
    // For bench/proxy: the same proxy without SLI recording, to measure what recording costs.
    if std::env::var_os("MOBIUS_PROXY_NO_SLI").is_some() {
        proxy.set_recording(false);
    }
    proxy.clone().serve_std(listener, threads, async { drop(tokio::signal::ctrl_c().await) })?;
    let slis = proxy.slis();
    for (version, sli) in &slis.versions {
        eprintln!("{version}: {} requests, {} errors", sli.requests, sli.errors);
    }
    Ok(())
}

fn backend(version: &str, addrs: &str) -> Result<Backend, std::net::AddrParseError> {
    let addrs = addrs.split(',').map(str::parse).collect::<Result<Vec<SocketAddr>, _>>()?;
    Ok(Backend { version: version.into(), addrs })
}
