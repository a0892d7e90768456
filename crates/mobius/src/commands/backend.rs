//! Where a command's work is done: by the application services on the local data directory
//! ([`Local`]), or by a server through its HTTP API ([`Remote`], with `--server`).
//!
//! One interface per area, each implemented by both:
//! - [`Log`]: events in (one, or an import's batches), the raw log out, DORA and the value
//!   stream.
//! - [`Tokens`]: create, list, revoke.
//! - [`Reliability`]: SLO statuses, where a budget went, the error-budget policy, incidents
//!   (listed, found, opened, acknowledged, resolved) and their post-mortems.
//! - [`Runs`]: the pipeline runs, one run, its log.
//!
//! [`Backend::choose`] picks one from `--server` once; commands then call the interface and
//! never ask which it is. Work only a running server does — deployments, rollouts and chaos
//! ([`delivery`]), cancelling and re-running runs and polling repositories ([`runs`]), alerts
//! ([`reliability`]) — is on [`Remote`] alone, reached through [`server`]: `--server`, else the
//! configured listen address.
//!
//! [`Local`] opens the store only when a call needs it, and builds the application
//! ([`mobius_app::App`]) on it only to write; every store call goes through the blocking pool
//! ([`mobius_log::blocking::spawn`]), so a command may run inside a task. [`Remote`] calls the
//! endpoints a script would, and reads every page (`Link: rel="next"`) of a list it wants whole.

pub mod delivery;
pub mod log;
pub mod reliability;
pub mod runs;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result};
use mobius_app::App;
use mobius_events::materialise::Rules;
use mobius_log::blocking::Guarded;
use mobius_store::{SqliteOptions, Store};
use tokio::sync::OnceCell;

pub use self::log::Log;
pub use self::reliability::Reliability;
pub use self::runs::Runs;
pub use self::tokens::Tokens;
use crate::client::Client;
use crate::config::{self, Overrides};

/// What a method of an interface answers: a future the command awaits (boxed, so that the
/// interfaces can be used as `dyn`).
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The local data directory, or a server: chosen once per command.
pub enum Backend {
    Local(Box<Local>),
    Remote(Remote),
}

impl Backend {
    /// The server of `--server` (with `--token`), else the data directory, whose settings are
    /// read with `attribution_window` over them.
    pub fn choose(
        data_dir: Option<&Path>,
        remote: &crate::cli::Remote,
        attribution_window: Option<&str>,
    ) -> Result<Backend> {
        Ok(match Client::from(remote)? {
            Some(client) => Backend::Remote(Remote { client }),
            None => Backend::Local(Box::new(Local::new(data_dir, attribution_window)?)),
        })
    }

    /// For `mobius events import`: a local store tuned for large transactions, of
    /// `transaction` events if given.
    pub fn bulk(self, transaction: Option<usize>) -> Backend {
        match self {
            Backend::Local(mut local) => {
                let bulk = SqliteOptions::BULK;
                let import_commit_events = transaction.map_or(bulk.import_commit_events, |n| n.max(1));
                local.options = SqliteOptions { import_commit_events, ..bulk };
                Backend::Local(local)
            }
            remote @ Backend::Remote(_) => remote,
        }
    }

    pub fn log(self) -> Box<dyn Log> {
        match self {
            Backend::Local(local) => local,
            Backend::Remote(remote) => Box::new(remote),
        }
    }

    pub fn tokens(self) -> Box<dyn Tokens> {
        match self {
            Backend::Local(local) => local,
            Backend::Remote(remote) => Box::new(remote),
        }
    }

    pub fn reliability(self) -> Box<dyn Reliability> {
        match self {
            Backend::Local(local) => local,
            Backend::Remote(remote) => Box::new(remote),
        }
    }

    pub fn runs(self) -> Box<dyn Runs> {
        match self {
            Backend::Local(local) => local,
            Backend::Remote(remote) => Box::new(remote),
        }
    }
}

/// The server for work only a running server does: `--server`, else the configured listen
/// address.
pub fn server(data_dir: Option<&Path>, remote: &crate::cli::Remote) -> Result<Remote> {
    let mut remote = remote.clone();
    if remote.server.is_none() {
        let settings = config::load(data_dir, Overrides::default())?;
        remote.server = Some(format!("http://{}", settings.listen));
    }
    Remote::connect(&remote)
}

/// The application services on the local data directory.
pub struct Local {
    data_dir: PathBuf,
    /// The PostgreSQL store the settings name, if any.
    database_url: Option<String>,
    rules: Rules,
    options: SqliteOptions,
    store: OnceCell<Arc<dyn Store>>,
    app: OnceCell<App>,
}

impl Local {
    fn new(data_dir: Option<&Path>, attribution_window: Option<&str>) -> Result<Local> {
        let settings = config::load(data_dir, Overrides { attribution_window, ..Default::default() })?;
        Ok(Local {
            data_dir: settings.data_dir,
            database_url: settings.database_url.map(|url| url.expose().to_owned()),
            rules: settings.rules,
            options: SqliteOptions::SERVER,
            store: OnceCell::new(),
            app: OnceCell::new(),
        })
    }

    /// The store, opened on first use.
    async fn store(&self) -> Result<Arc<dyn Store>> {
        let store = self
            .store
            .get_or_try_init(|| async {
                let (dir, url, options) = (self.data_dir.clone(), self.database_url.clone(), self.options);
                mobius_log::blocking::spawn(move || {
                    let store = mobius_app::open_store(&dir, url.as_deref(), options)?;
                    // Checked as the application's is: a call on an async worker fails the tests.
                    Ok::<_, anyhow::Error>(Arc::new(Guarded(store)) as Arc<dyn Store>)
                })
                .await
            })
            .await?;
        Ok(store.clone())
    }

    /// The application on the store, built on first use: what writes go through.
    async fn app(&self) -> Result<&App> {
        self.app
            .get_or_try_init(|| async {
                let mut config = mobius_app::Config::new(&self.data_dir);
                config.rules = self.rules;
                config.database_url = self.database_url.clone();
                Ok(App::with_store(self.store().await?, config))
            })
            .await
    }

    /// Runs `work` on the store, off the async workers.
    async fn with_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store().await?;
        mobius_log::blocking::spawn(move || work(store.as_ref())).await
    }
}

/// A server, through its HTTP API.
pub struct Remote {
    client: Client,
}

impl Remote {
    /// The server of `remote` (its `--server` and `--token`).
    pub fn connect(remote: &crate::cli::Remote) -> Result<Remote> {
        Ok(Remote { client: Client::from(remote)?.context("no server")? })
    }
}

#[cfg(test)]
mod tests {
    use mobius_events::emit::reliability::{CLI_SOURCE, IncidentRef};
    use mobius_log::ingest::Status;

    use super::log::{Batch, EventList, Measure};
    use super::reliability::Change;
    use super::runs::RunList;
    use super::*;

    /// Every call of the local backend, from inside a task: a store call made on an async
    /// worker instead of the blocking pool panics there (debug builds), failing the task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_store_calls_stay_off_the_async_workers() {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(Local::new(Some(dir.path()), None).unwrap());
        let task = tokio::spawn(async move {
            let log: &dyn Log = local.as_ref();
            let incident = IncidentRef { id: "inc-1", source: CLI_SOURCE, service: "shop", environment: "production" };
            let reliability: &dyn Reliability = local.as_ref();
            let now = jiff::Timestamp::now();
            reliability.change(incident, Change::Opened { title: "down", severity: "sev1" }, now).await.unwrap();
            let event =
                mobius_events::emit::reliability::acknowledged_by_hand(&incident, now, mobius_events::Origin::Api);
            assert_eq!(log.append(event.unwrap()).await.unwrap().status, Status::Stored);
            let sent = log.send("{".to_owned()).await.unwrap();
            assert_eq!(sent.status, Status::Rejected, "a bad record is a rejected result");
            let (batches, reports) = (tokio::sync::mpsc::channel(1), std::sync::mpsc::channel());
            batches.0.send(Batch::Records(vec!["{}".to_owned()])).await.unwrap();
            drop(batches.0);
            let report = reports.0;
            log.import(batches.1, Box::new(move |r| report.send(r).unwrap())).await.unwrap();
            assert_eq!(reports.1.recv().unwrap().rejected, 1);
            let listed = log.events(&EventList { limit: 10, ..EventList::default() }).await.unwrap();
            assert_eq!(listed.len(), 2);
            let measure = Measure {
                service: None,
                environment: "production".to_owned(),
                since: None,
                from: None,
                to: None,
                bands: "seed-2023".to_owned(),
                explain: false,
            };
            assert_eq!(log.dora(&measure).await.unwrap().len(), 1, "the incident's service");
            assert_eq!(log.flow(&measure).await.unwrap().len(), 1);

            let tokens: &dyn Tokens = local.as_ref();
            let created = tokens.create("read", "ci", None).await.unwrap();
            assert_eq!(tokens.list().await.unwrap().len(), 1);
            tokens.revoke(&created.id).await.unwrap();
            assert!(tokens.revoke(&created.id).await.is_err(), "revoked already");

            assert!(reliability.slos().await.unwrap().is_empty());
            assert!(reliability.explain("shop", "availability").await.is_err(), "no such SLO");
            assert!(reliability.check("shop", "production", None).await.unwrap().allowed);
            assert_eq!(reliability.incidents(true).await.unwrap().len(), 1);
            let found = reliability.incident("inc-1").await.unwrap().expect("found by its id");
            assert!(found.acknowledged.is_some());
            reliability.change(incident, Change::Resolved, now).await.unwrap();
            assert!(reliability.postmortem_draft("inc-1").await.unwrap().contains("down"));
            assert_eq!(reliability.record_postmortem("inc-1", "wiki/1").await.unwrap(), incident.key());

            let runs: &dyn Runs = local.as_ref();
            assert!(runs.list(&RunList { limit: 5, ..RunList::default() }).await.unwrap().is_empty());
            assert!(runs.show(1).await.is_err(), "no run 1");
            let _ = runs.log_after(1, 0).await;
        });
        task.await.expect("no store call on an async worker");
    }
}
