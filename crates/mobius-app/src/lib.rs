//! The application: one [`App`] holds the store and the services every door calls — the log
//! ([`Ingestor`]), pipelines ([`Runner`]), delivery ([`Deployer`]) and reliability
//! ([`Alerter`]) — wired together once, and starts their background tasks.
//!
//! `mobius serve`, `mobius demo`, the CLI's embedded mode and the tests all build the
//! application here, so there is one composition root:
//!
//! ```text
//! App::open(config) ─► store ─► Ingestor ─┬─► Runner   (mobius/deploy steps ─► Deployer)
//!                                         ├─► Deployer (policy gate ─► reliability)
//!                                         ├─► Alerter
//!                                         └─► FlagSets (a deploy's flag files ◄─ Deployer)
//! app.recover()  rollouts resumed, interrupted runs queued again
//! app.start()    repository polling, commit statuses, SLO alerts, SLI recording, flag set
//!                sync ─► Background::stop()
//!                (with replicas: environments driven while their leases are held)
//! ```
//!
//! [`tokens`]: the scoped API tokens every mutation needs (issued, bootstrapped, checked).
//! [`secrets`]: changes to the stored secrets, each with its audit event.
//! [`repositories`]: repositories registered from remotes (mirrored, with their credentials
//! named) and removed.
//! [`environments`]: changes to environments' protection rules, each with its audit event.
//! [`sessions`]: the console's sign-in sessions, each as strong as its token and no longer.
//! [`flags`]: a release's flag files loaded into flag sets when it is deployed (the
//! deployer's port, over [`FlagSets`]).
//! [`gate`]: the gate policies every deploy is decided by (the deployer's port, over
//! `mobius-policy`).

pub mod environments;
pub mod flag_gate;
pub mod flag_rollouts;
pub mod flags;
pub mod gate;
pub mod repositories;
pub mod secrets;
pub mod sessions;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mobius_delivery::{DeployConfig, DeployError, Deployer};
use mobius_events::materialise::Rules;
use mobius_features::FlagSets;
use mobius_features::rollout::Rollouts;
use mobius_gitops::GitOps;
use mobius_log::blocking::Guarded;
use mobius_log::lease::Leases;
use mobius_log::{Clock, Ingestor};
use mobius_pipelines::remote::{ActionCache, DEFAULT_ACTIONS_URL};
use mobius_reliability::Alerter;
use mobius_runs::agents::{Agents, AgentsConfig};
use mobius_runs::forge::StatusDelivery;
use mobius_runs::runner::Driver;
use mobius_runs::{RunError, Runner, RunnerConfig};
use mobius_sandbox::Sandbox;
use mobius_secrets::{SecretError, SecretKey, Secrets};
use mobius_store::{PgStore, SqliteOptions, SqliteStore, Store, StoreError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How the application is set up. [`Config::new`] gives the defaults `mobius serve` uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store, run logs, artifacts and releases live.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL: the store is there instead of the data directory's SQLite file (run
    /// logs, releases and the secret key stay in the data directory).
    pub database_url: Option<String>,
    /// Whether other servers may share the store: each environment's rollouts, instances and
    /// proxy then run on the replica holding its lease (`mobius_delivery::replicas`). Default
    /// off; [`App::open`] turns it on with a [`Config::database_url`].
    pub replicas: bool,
    /// The materialisation rules (the attribution window).
    pub rules: Rules,
    /// How often every registered repository is polled when no hook says it changed.
    /// Default 30 s.
    pub poll_interval: Duration,
    /// How many job instances of one run may run at once. Default: the machine's cores.
    pub parallelism: usize,
    /// How many runs this process drives at once (`MOBIUS_RUNS`); more wait in the store's
    /// queue, where another replica with room takes them. Default 32.
    pub runs: usize,
    /// How often every SLO is evaluated for alerts. Default 30 s.
    pub alert_every: Duration,
    /// How often the proxies' SLIs are added to the per-minute counters. Default 5 s.
    pub sli_every: Duration,
    /// Route through separate `mobius proxy` processes instead of embedded proxies.
    /// Default off.
    pub external_proxy: bool,
    /// Where every service reads the time. Default: the machine's clock.
    pub clock: Clock,
    /// How job steps and service instances are started: as which user, behind what. Default:
    /// none (plain processes as this user, as `mobius run` on a laptop); `mobius serve` takes
    /// it from its settings.
    pub sandbox: Sandbox,
    /// Where runs fetch `uses: owner/repo@ref` actions, and whether only pinned ones run.
    /// Default: GitHub, into `<data_dir>/actions`.
    pub actions: ActionCache,
    /// The secret key as 64 hex digits (`MOBIUS_SECRET_KEY`); `None`: the key file in the
    /// data directory, created on first start. [`App::open`] refuses a key that does not open
    /// the stored secrets.
    pub secret_key: Option<String>,
    /// The secrets runs see; [`App::open`] fills it in. `None`: runs get no stored secrets.
    pub secrets: Option<Secrets>,
    /// The base URL commit statuses link runs under (`<public_url>/api/v1/runs/<id>`).
    /// Default `None`: statuses carry no link.
    pub public_url: Option<String>,
    /// How jobs go to `mobius agent` workers: lease, renewal, long-poll wait, and the labels
    /// the server's own executor serves.
    pub agents: AgentsConfig,
    /// The server's gate policies (`*.rego`), deciding every deploy besides the `policies/`
    /// a release ships. Default `None`.
    pub policy_dir: Option<PathBuf>,
}

impl Config {
    /// The defaults, with the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir: PathBuf = data_dir.into();
        Config {
            actions: ActionCache::new(data_dir.join("actions"), DEFAULT_ACTIONS_URL),
            data_dir,
            rules: Rules::default(),
            poll_interval: Duration::from_secs(30),
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            runs: 32,
            alert_every: Duration::from_secs(30),
            sli_every: Duration::from_secs(5),
            external_proxy: false,
            clock: Clock::System,
            sandbox: Sandbox::none(),
            secret_key: None,
            secrets: None,
            public_url: None,
            database_url: None,
            replicas: false,
            agents: AgentsConfig::default(),
            policy_dir: None,
        }
    }
}

/// The store: PostgreSQL at `database_url` when one is given, else the SQLite file of
/// `data_dir` opened with `options`.
pub fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    options: SqliteOptions,
) -> Result<Arc<dyn Store>, AppError> {
    Ok(match database_url {
        // Blocking work, as every store call: called from the blocking pool, never an async
        // thread (the PostgreSQL client runs a runtime of its own, which may not start there).
        Some(url) => Arc::new(PgStore::connect(url).map_err(AppError::Database)?),
        None => Arc::new(
            SqliteStore::open_with(data_dir, options)
                .map_err(|source| AppError::Store { data_dir: data_dir.to_owned(), source })?,
        ),
    })
}

/// Why the application could not be built or recovered.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open the store in {}", data_dir.display())]
    Store { data_dir: PathBuf, source: StoreError },
    /// The source names the URL, its password replaced by `***`.
    #[error("cannot open the PostgreSQL store")]
    Database(#[source] StoreError),
    #[error("cannot recover the rollouts a previous server left")]
    Rollouts(#[source] DeployError),
    #[error("cannot recover the runs a previous server left")]
    Runs(#[source] RunError),
    #[error("cannot open the secrets")]
    Secrets(#[source] SecretError),
    #[error("cannot read the flag sets")]
    FlagSets(#[source] StoreError),
}

/// The application services, wired together. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    /// Appending events and the facts they imply.
    pub log: Ingestor,
    /// Pipeline runs.
    pub runs: Runner,
    /// Releases, rollouts and their data planes.
    pub delivery: Deployer,
    /// SLO alerts (and the SLI series every SLO evaluation shares).
    pub reliability: Alerter,
    /// Feature flag sets: stored, in memory on every replica, and announced as they change.
    pub flags: FlagSets,
    /// Flag rollouts gated by health: a variant's share moved step by step (one replica drives
    /// them, under [`lease::FLAG_ROLLOUTS`]).
    pub flag_rollouts: Rollouts,
    /// Jobs on `mobius agent` workers: the queue, and what agents call.
    pub agents: Agents,
    /// Environments declared in deploy repositories, reconciled (one replica, under
    /// [`lease::GITOPS`]); its guard refuses manual deploys to them.
    pub gitops: GitOps,
    /// The leases this replica holds on the work that must happen once ([`App::start`]).
    pub leases: Leases,
    config: Config,
}

/// What [`App::recover`] took up from a previous server.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Rollouts whose controllers resumed.
    pub rollouts: usize,
    /// Interrupted runs queued again (the new runs' ids).
    pub runs: Vec<i64>,
}

impl App {
    /// Opens the store in the data directory (as a long-running server keeps it), or the
    /// database [`Config::database_url`] names, and builds the services on it. Blocking work:
    /// call it from the blocking pool (`mobius_log::blocking::spawn`), not an async thread.
    pub fn open(mut config: Config) -> Result<App, AppError> {
        let store = open_store(&config.data_dir, config.database_url.as_deref(), SqliteOptions::SERVER)?;
        // A database is there to be shared: whoever else serves from it is a replica.
        config.replicas |= config.database_url.is_some();
        // A key that does not open the stored secrets stops the start here, not a run later.
        let key = SecretKey::load(&config.data_dir, config.secret_key.as_deref()).map_err(AppError::Secrets)?;
        config.secrets = Some(Secrets::open(store.clone(), &key).map_err(AppError::Secrets)?);
        Ok(App::with_store(store, config))
    }

    /// Builds the services on a store that is already open. The services see it through
    /// [`Guarded`], which fails the tests when one of them calls it on an async worker.
    pub fn with_store(store: Arc<dyn Store>, config: Config) -> App {
        let store: Arc<dyn Store> = Arc::new(Guarded(store));
        let log = Ingestor::new(store.clone(), config.rules);
        let leases = Leases::new(store.clone(), replica_id(), config.clock);
        let flag_sets = FlagSets::new(store.clone(), log.clone(), config.clock);
        let policy = Arc::new(gate::PolicyGate::new(store.clone(), config.policy_dir.clone()));
        // Flag changes to sets of an environment are decided by the server's policies too.
        flag_sets.set_gate(Arc::new(flag_gate::FlagPolicies::new(policy.clone())));
        let rollouts_cell: Arc<std::sync::OnceLock<Rollouts>> = Arc::default();
        let delivery = Deployer::new(
            store.clone(),
            log.clone(),
            DeployConfig {
                clock: config.clock,
                sandbox: config.sandbox.clone(),
                data_dir: config.data_dir.clone(),
                external_proxy: config.external_proxy,
                secrets: config.secrets.clone(),
                leases: config.replicas.then(|| leases.clone()),
                flags: Some(Arc::new(flags::ReleaseFlagSets::new(flag_sets.clone(), rollouts_cell.clone()))),
                guard: Some(Arc::new(GitOps::guard(store.clone()))),
                policy: Some(policy),
            },
        );
        let runs = Runner::new(
            store.clone(),
            log.clone(),
            RunnerConfig {
                data_dir: config.data_dir.clone(),
                parallelism: config.parallelism.max(1),
                runs: config.runs.max(1),
                poll_interval: config.poll_interval,
                clock: config.clock,
                sandbox: config.sandbox.clone(),
                actions: config.actions.clone(),
                secrets: config.secrets.clone(),
            },
        );
        // `mobius/deploy` steps deploy through the control plane, on the caller's runtime.
        runs.set_deployments(delivery.for_steps());
        // Each job of a server run gets a `MOBIUS_TOKEN` limited to its repository's runs.
        runs.set_run_tokens(Arc::new(tokens::StoredRunTokens(store.clone())));
        // Jobs whose `runs-on` routes them to agents go through the store's queue.
        let files = std::path::absolute(config.data_dir.join("pipelines"))
            .unwrap_or_else(|_| config.data_dir.join("pipelines"));
        let agents = Agents::new(store.clone(), config.clock, config.secrets.clone(), config.agents.clone(), files);
        runs.set_agents(agents.clone());
        // Notifications are claimed under the replica's lease id: the claims and `/readyz` agree.
        let reliability = Alerter::new(store.clone(), log.clone(), config.clock).with_replica(leases.holder());
        // Every replica keeps a liveness lease while it runs; its runs are orphans without it.
        drop(leases.lease(&mobius_runs::runner::replica_lease(leases.holder())));
        runs.set_driver(Driver { node: node_id(&config.data_dir), holder: leases.holder().to_owned() });
        let health =
            flag_rollouts::MeasuredHealth::new(store.clone(), log.clone(), delivery.clone(), reliability.clone());
        let flag_rollouts = Rollouts::new(flag_sets.clone(), store.clone(), config.clock, Arc::new(health));
        // The deployer's flag port starts the rollouts of release files; built over the deployer.
        let _ = rollouts_cell.set(flag_rollouts.clone());
        let gitops = GitOps::new(store.clone(), log.clone(), delivery.clone(), config.clock);
        // Promotions push to remotes and open pull requests with the repositories' secrets.
        let data_dir = config.data_dir.clone();
        gitops.set_remotes(mobius_gitops::promote::Remotes { secrets: config.secrets.clone(), data_dir });
        App { store, log, runs, delivery, reliability, flags: flag_sets, flag_rollouts, agents, gitops, leases, config }
    }

    /// How the application was set up.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The time now, by the application's clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.config.clock.now()
    }

    /// Takes up what a previous server left: the control plane first (data planes back,
    /// instances re-adopted, unfinished rollouts resumed), since re-queued runs may deploy;
    /// then runs left in flight are marked interrupted and queued once more. With replicas the
    /// control plane is taken up environment by environment, as [`App::start`]'s task gains
    /// their leases.
    pub async fn recover(&self) -> Result<Recovered, AppError> {
        // The flag sets first: what evaluations and a resumed deploy read.
        self.flags.refresh().await.map_err(AppError::FlagSets)?;
        let rollouts = self.delivery.recover().await.map_err(AppError::Rollouts)?;
        let runs = self.runs.recover().await.map_err(AppError::Runs)?;
        Ok(Recovered { rollouts, runs })
    }

    /// Starts the background tasks: repository polling, scheduled workflows, commit status
    /// delivery, SLO alerts (restored from the store first), SLI recording and compaction, and
    /// with replicas the environments' rollouts. They run until [`Background::stop`]; all but
    /// SLI recording only while this replica holds their lease.
    pub fn start(&self) -> Background {
        let mut background = Background::default();
        let runs = self.runs.clone();
        background.spawn_leased(&self.leases, lease::POLLING, move |until| runs.clone().poll_forever(until));
        // Other replicas' changes to the agent queue wake this one's waiters (PostgreSQL).
        let agents = self.agents.clone();
        tokio::spawn(async move { agents.listen().await });
        let runs = self.runs.clone();
        background
            .spawn_leased(&self.leases, lease::RUN_RECOVERY, move |until| runs.clone().recover_orphans_forever(until));
        let runs = self.runs.clone();
        background.spawn_leased(&self.leases, lease::SCHEDULES, move |until| runs.clone().schedule_forever(until));
        let (alerter, every) = (self.reliability.clone(), self.config.alert_every);
        background.spawn_leased(&self.leases, lease::ALERTS, move |until| alerter.clone().run(every, until));
        // Every replica records what its own proxies counted; compacting is one's work.
        let (delivery, every) = (self.delivery.clone(), self.config.sli_every);
        background.spawn(|stop| delivery.record_slis(every, stop));
        let delivery = self.delivery.clone();
        background.spawn_leased(&self.leases, lease::SLI_COMPACTION, move |until| {
            delivery.clone().compact_slis_forever(until)
        });
        // Every replica sends commit statuses, each claimed in the store first: the replica
        // that stored a job's state is woken at once, and none sends a status another holds.
        let statuses = StatusDelivery::new(
            self.store.clone(),
            self.leases.holder(),
            self.config.secrets.clone(),
            self.config.public_url.clone(),
            self.runs.status_wake(),
            self.config.clock,
        );
        background.spawn(|stop| statuses.run(stop));
        // Every replica claims queued runs while it has room for them.
        let runs = self.runs.clone();
        background.spawn(|stop| runs.claim_forever(stop));
        // With replicas, each environment is driven while its lease is held (`lease::environment`).
        let delivery = self.delivery.clone();
        background.spawn(|stop| delivery.drive_environments(stop));
        let rollouts = self.flag_rollouts.clone();
        background.spawn_leased(&self.leases, lease::FLAG_ROLLOUTS, move |until| rollouts.clone().run(until));
        let gitops = self.gitops.clone();
        background.spawn_leased(&self.leases, lease::GITOPS, move |until| gitops.clone().run(until));
        // A push seen by this replica's poll wakes the reconciler at once (another replica's
        // push is seen within its one-second tick, through the stored revision).
        let (pushed, gitops) = (self.runs.pushed(), self.gitops.clone());
        background.spawn(|stop| async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return,
                    () = pushed.notified() => gitops.wake(),
                }
            }
        });
        // Every replica keeps its own flag sets current: each serves evaluations.
        let flags = self.flags.clone();
        background.spawn(|stop| flags.sync_forever(stop));
        // Last, so that it is stopped last: the work ends before its leases are given up.
        background.spawn(|stop| self.leases.clone().keep(stop));
        background
    }
}

/// The application's background tasks, each with the signal that stops it.
#[derive(Default)]
pub struct Background {
    tasks: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Background {
    fn spawn<F: Future<Output = ()> + Send + 'static>(&mut self, task: impl FnOnce(Stopped) -> F) {
        let (stop, stopped) = oneshot::channel();
        let handle = tokio::spawn(task(Stopped(stopped)));
        self.tasks.push((stop, handle));
    }

    /// Spawns `task` to run while this replica holds the lease `name` (see
    /// [`Leases::run_while_held`]).
    fn spawn_leased<F, Fut>(&mut self, leases: &Leases, name: &'static str, task: F)
    where
        F: FnMut(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        // Wanted from now: the keeper's first round claims it with the others.
        leases.lease(name);
        let leases = leases.clone();
        self.spawn(move |stop| async move { leases.run_while_held(name, stop, task).await });
    }

    /// Stops every task and waits for each to finish what it was doing (the SLI recorder
    /// records once more).
    pub async fn stop(self) {
        for (stop, handle) in self.tasks {
            // A task that already ended has dropped its receiver; nothing to tell it.
            let _ = stop.send(());
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "a background task panicked");
            }
        }
    }
}

/// The names of the leases [`App::start`] runs its work under.
pub mod lease {
    /// Polling registered repositories (and the runs their pushes start).
    pub const POLLING: &str = "repository-polling";
    /// `schedule` triggers.
    pub const SCHEDULES: &str = "schedules";
    /// SLO evaluation, alert notifications and the incidents they open.
    pub const ALERTS: &str = "slo-alerts";
    /// Downsampling the SLI counters (each replica records its own proxies' counts).
    pub const SLI_COMPACTION: &str = "sli-compaction";
    /// Taking up the runs of replicas that stopped.
    pub const RUN_RECOVERY: &str = "run-recovery";
    /// Stepping flag rollouts and stopping the unhealthy ones.
    pub const FLAG_ROLLOUTS: &str = "flag-rollouts";
    /// Reconciling the environments deploy repositories declare.
    pub const GITOPS: &str = "gitops";

    /// With replicas: a service's rollouts, instances and proxy in an environment
    /// (`environment:<service>/<environment>`).
    pub fn environment(service: &str, environment: &str) -> String {
        mobius_delivery::replicas::lease_name(service, environment)
    }
}

/// The data directory's id, kept in `<data>/node-id`: the same across restarts, so a starting
/// server knows the runs an earlier process on it left. Random when it cannot be kept.
fn node_id(data_dir: &std::path::Path) -> String {
    let path = data_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return id.trim().to_owned();
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Err(e) = std::fs::create_dir_all(data_dir).and_then(|()| std::fs::write(&path, &id)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep the node id; a restart will not know its runs");
    }
    id
}

/// This replica's id in lease rows: its host, its process and a random part (a restarted
/// process with the same pid is a new holder).
fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let host = if host.is_empty() { "localhost" } else { host };
    format!("{host}:{}:{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Resolves when the task is told to stop (or its [`Background`] is dropped).
pub struct Stopped(oneshot::Receiver<()>);

impl Future for Stopped {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}
