//! One module per command family; [`backend`] is where their work is done: the application
//! services on the local data directory, or a server with `--server`, behind one interface per
//! area.

mod actions;
mod agent;
mod backend;
mod chaos;
mod demo;
mod deploy;
mod environment;
mod events;
mod flag_rollouts;
mod flags;
mod gitops;
mod hooks;
mod incident;
mod lint;
mod measure;
mod policy;
mod postmortem;
pub mod proxy;
mod repo;
mod run;
mod runs;
pub mod sample_app;
mod scan;
mod secret;
mod serve;
mod slo;
mod token;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use mobius_store::{SqliteOptions, Store};

use crate::cli::{Cli, Command};
use crate::config::{self, Overrides, Settings};

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = cli.data_dir.as_deref();
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve::run(data_dir, args).await,
        Command::Events(command) => events::run(data_dir, json, command).await,
        Command::Dora(args) => measure::dora(data_dir, json, args).await,
        Command::Flow(args) => measure::flow(data_dir, json, args).await,
        Command::Token(command) => token::run(data_dir, json, command).await,
        Command::Repo(command) => repo::run(data_dir, json, command).await,
        Command::Runs(command) => runs::run(data_dir, json, command).await,
        Command::Agent(args) => agent::run(json, args).await,
        Command::Lint(args) => lint::run(json, args),
        Command::Run(args) => run::run(data_dir, json, args),
        Command::Actions(command) => actions::run(data_dir, json, command),
        Command::Secret(command) => secret::run(data_dir, json, command).await,
        Command::Environment(command) => environment::run(data_dir, json, command).await,
        Command::Flags(command) => flags::run(data_dir, json, command).await,
        Command::Init(args) => deploy::init(args),
        Command::Deploy(args) => deploy::deploy(data_dir, json, args).await,
        Command::Rollout(command) => deploy::rollout(data_dir, json, command).await,
        Command::Gitops(command) => gitops::run(json, command).await,
        Command::Promote(args) => gitops::promote(json, args).await,
        Command::Proxy(args) => {
            let settings = settings(data_dir, None)?;
            proxy::run(&settings.data_dir, args).await
        }
        Command::SampleApp(args) => sample_app::run(args).await,
        Command::Demo(args) => demo::run(json, args).await,
        Command::Postmortem(args) => postmortem::run(data_dir, args).await,
        Command::Slo(command) => slo::run(data_dir, json, command).await,
        Command::Alerts(args) => slo::alerts(data_dir, json, args).await,
        Command::Chaos(command) => chaos::run(data_dir, json, command).await,
        Command::Incident(command) => incident::run(data_dir, json, command).await,
        Command::Scan(command) => scan::run(json, command),
        Command::Sbom(args) => scan::sbom(args),
        Command::Hooks(command) => hooks::run(command),
        Command::Policy(command) => policy::run(command),
    }
}

/// Settings with only the data directory and rules from flags.
fn settings(data_dir: Option<&Path>, attribution_window: Option<&str>) -> Result<Settings> {
    config::load(data_dir, Overrides { attribution_window, ..Default::default() })
}

/// The store (the data directory's, or the database the settings name), for the commands that
/// work only on it (`repo`, `run`).
fn open_store(settings: &Settings) -> Result<Arc<dyn Store>> {
    let url = settings.database_url.as_ref().map(|url| url.expose());
    let Some(url) = url else {
        return Ok(mobius_app::open_store(&settings.data_dir, None, SqliteOptions::SERVER)?);
    };
    // These commands call the store from async code: PostgreSQL's client runs a runtime of its
    // own, so every call goes to a thread outside this one.
    let dir = &settings.data_dir;
    let opened =
        std::thread::scope(|s| s.spawn(|| mobius_app::open_store(dir, Some(url), SqliteOptions::SERVER)).join());
    let store = opened.map_err(|_| anyhow::anyhow!("opening the store panicked"))??;
    Ok(Arc::new(mobius_log::blocking::Detached(store)))
}

/// Runs `f` on a thread of its own and waits for it: for what a [`Detached`] store cannot
/// send across threads itself — an append, whose ancestry is borrowed — called from async
/// code (PostgreSQL's blocking client must not run on a runtime's thread).
///
/// [`Detached`]: mobius_log::blocking::Detached
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
