//! `mobius`: the command line over the server and the embedded store.
//!
//! `cli` declares the commands; `config` layers settings; `commands::*` implement them through
//! `commands::backend`, which works on the local data directory or, with `--server`, through
//! `client` (the HTTP API).

mod cli;
mod client;
mod commands;
mod config;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // SAFETY: the first thing `main` does, so this thread is the only one: Rust starts none
    // before `main`, nothing linked in starts one from a constructor, and the runtime below
    // comes later. Nothing else can read or change the environment meanwhile.
    let taken = unsafe { config::take_secrets_from_environment() };
    let cli = cli::Cli::parse();
    init_logging();
    if matches!(cli.command, cli::Command::Serve(_) | cli::Command::Demo(_)) {
        if let Err(why) = taken {
            eprintln!("error: cannot take the secrets out of the environment: {why}");
            return ExitCode::FAILURE;
        }
        // Not dumpable: a process of the same user can neither read /proc/<pid>/environ, mem
        // or fds of the server nor ptrace it (root still can: hence the secrets' removal).
        if let Err(e) = nix::sys::prctl::set_dumpable(false) {
            tracing::warn!(error = %e, "cannot make the server non-dumpable");
        }
        // Request bodies (up to 10 MiB) are read into single buffers: from 1 MiB they are
        // mapped rather than carved from glibc's heap, so their memory goes back to the system
        // when they are freed instead of staying with the process under a flood of uploads
        // (bench/RESULTS.md, "Limits under connection and upload floods").
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets glibc's allocation thresholds; no allocation is in flight
        // on another thread (there is none yet).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
    // One TLS provider for every client (ring: no C toolchain beyond cc, no aws-lc build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MOBIUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::color_stderr())
        .init();
}
