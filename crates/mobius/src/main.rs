//! `mobius`: the command line over the server and the embedded store.
//!
//! `cli` declares the commands; `config` layers settings; `commands::*` implement them, each
//! either against the local data directory or, with `--server`, through `client`.

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
