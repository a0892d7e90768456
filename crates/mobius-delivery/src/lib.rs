//! Releases on the server: the control plane (the delivery service).
//!
//! `Deployer::deploy` makes a release (a read-only directory from a local directory or an
//! artifact by digest, with its `mobius.yaml`), opens the environment's data plane (an
//! embedded proxy on the environment's `listen` address, or files for a separate
//! `mobius proxy`), stores a [`Rollout`] and starts its controller ([`controller`]): a task
//! that asks [`mobius_deploy::rollout::next`] for the next action, performs it (processes via
//! the supervisor, routing via the plane, analysis from the plane's SLIs), stores the rollout
//! and emits CDEvents ([`events`]). `promote`, `abort` and `undo` change the stored rollout
//! and wake its controller.
//!
//! Restart: [`Deployer::recover`] re-opens every environment's data plane, re-adopts the
//! instances recorded with each rollout (alive and healthy: kept; others: restarted), and
//! resumes the controllers of unfinished rollouts where they were ([`recovery`]).
//!
//! Replicas ([`DeployConfig::leases`]): each environment is driven by the replica holding its
//! lease, which takes it up as a restarted server does; the others hand it their changes
//! through the store's command queue ([`replicas`]).

/// Trees as they travel (release uploads, agents' workspaces): now in `mobius-pipelines`.
pub use mobius_pipelines::archive;
mod controller;
mod faults;
pub mod flags;
mod guard;
pub use guard::DeployGuard;
mod instances;
mod plane;
pub use plane::Injected;
pub mod policy;
mod recovery;
pub mod release;
pub mod replicas;
mod retire;
mod shared;
pub(crate) mod sli;
pub mod steps;
pub mod upload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use mobius_deploy::rollout::{Deployed, Phase, Plan, Rollout, Stored};
use mobius_deploy::spec::ServiceSpec;
use mobius_deploy::supervisor::Supervisor;
use mobius_events::NewEvent;
use mobius_events::emit::{EmitError, delivery as emit};
use mobius_proxy::routing::{Backend, RoutingTable};
use mobius_store::{RolloutQuery, RolloutRow, Store, StoreError};
use serde::{Deserialize, Serialize};

use mobius_log::Ingestor;
use mobius_log::lease::Leases;
use plane::Plane;
pub use release::{ReleaseError, Source};
pub use replicas::Refusal;

/// How the control plane is set up.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Where rollouts read the time.
    pub clock: mobius_log::Clock,
    /// How instances are started (as which user, behind what).
    pub sandbox: mobius_sandbox::Sandbox,
    pub data_dir: PathBuf,
    /// Route through separate `mobius proxy` processes (files in `<data>/proxy/`) instead of
    /// proxies embedded in this process.
    pub external_proxy: bool,
    /// Where `${{ secrets.NAME }}` in `run.env` is read from when an instance starts; without
    /// it a release that names a secret is refused.
    pub secrets: Option<mobius_secrets::Secrets>,
    /// With replicas sharing the store: the leases each environment is driven under (see
    /// [`replicas`]). `None`: this process drives every environment (one server).
    pub leases: Option<Leases>,
    /// Where a release's flag files are loaded when its rollout starts (see [`flags`]);
    /// `None`: a release with flag files is refused.
    pub flags: Option<Arc<dyn flags::ReleaseFlags>>,
    /// Asked before a deploy through [`Deployer::deploy`] (a person, a pipeline step); `None`:
    /// every environment takes deploys. GitOps refuses manual deploys to the environments a
    /// deploy repository declares, and deploys them itself through [`Deployer::deploy_declared`].
    pub guard: Option<Arc<dyn DeployGuard>>,
    /// The gate policies asked before every rollout starts (see [`policy`]); `None`: no gate.
    pub policy: Option<Arc<dyn policy::GatePolicies>>,
}

/// Why a deployment operation was refused or failed, in the control plane's words.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The release itself cannot be made (see [`ReleaseError`]).
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error("the release is service `{found}` (its mobius.yaml), not `{wanted}`")]
    WrongService { wanted: String, found: String },
    #[error("`{environment}` is not an environment of {service} (its mobius.yaml has {known})")]
    UnknownEnvironment { service: String, environment: String, known: String },
    #[error("{service} has no listen address for {environment}")]
    NoListenAddress { service: String, environment: String },
    #[error(transparent)]
    AnalysisStep(#[from] mobius_deploy::rollout::AnalysisStepError),
    /// A Prometheus SLI source of the release does not answer (a hotfix goes ahead anyway).
    #[error(transparent)]
    SloSource(#[from] mobius_reliability::slo::SourceError),
    /// The error-budget policy freezes the environment; the message has the budget and when
    /// it recovers.
    #[error("{message}")]
    BudgetExhausted { service: String, environment: String, message: String },
    /// The guard refused a deploy by hand (the environment is declared in a deploy repository).
    #[error("{message}")]
    Managed { service: String, environment: String, message: String },
    /// The gate policies refuse the change; every deny message is listed.
    #[error("the gate policies refuse the {action} of {service} to {environment}:{}", policy::listed(deny))]
    PolicyDenied { service: String, environment: String, action: &'static str, deny: Vec<String> },
    #[error("rollout {id} of {service} to {environment} is still {phase}: promote, abort or wait for it")]
    RolloutUnfinished { id: i64, service: String, environment: String, phase: &'static str },
    #[error("{version} is already the version serving {environment}")]
    AlreadyServing { version: String, environment: String },
    #[error("{service} was never deployed to {environment}")]
    NeverDeployed { service: String, environment: String },
    #[error("nothing to undo: {service} has no previous version in {environment}")]
    NothingToUndo { service: String, environment: String },
    /// The rollout's controller refused the change (e.g. promoting a rollout that is not paused).
    #[error(transparent)]
    ChangeRefused(#[from] mobius_deploy::rollout::ChangeRefused),
    #[error("rollout {id} of {service} to {environment} already {phase}: nothing to change")]
    RolloutOver { id: i64, service: String, environment: String, phase: &'static str },
    #[error(transparent)]
    Fault(#[from] mobius_proxy::chaos::FaultError),
    #[error("{service} does not run in {environment} on this server")]
    NotRunningHere { service: String, environment: String },
    #[error("cannot listen on {listen} for {service} in {environment}")]
    Listen { listen: std::net::SocketAddr, service: String, environment: String, source: std::io::Error },
    /// `run.env` names a secret that is not stored (the message says where and how to set it).
    #[error("{0}")]
    MissingSecret(String),
    #[error("cannot open the secrets of {repository}")]
    Secrets {
        repository: String,
        #[source]
        source: mobius_secrets::SecretError,
    },
    /// The release's flag files cannot go into their sets (see [`flags`]).
    #[error(transparent)]
    FlagFiles(#[from] flags::FlagFilesError),
    #[error("cannot encode the rollout")]
    Encode(#[source] serde_json::Error),
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// The replica driving the environment refused the change or failed to make it; the
    /// message is its error's, with its sources.
    #[error("{message}")]
    RefusedByHolder { refusal: Refusal, message: String },
    /// No replica took the change up in time: it was withdrawn, and will not happen.
    #[error(
        "no replica took the change to {service} in {environment} up within {waited_s} s ({lease}): it was \
         withdrawn; try again"
    )]
    NoHolder { service: String, environment: String, lease: String, waited_s: u64 },
    /// The replica applying the change stopped, or has not answered: whether it happened, the
    /// rollout says.
    #[error("the replica applying the change to {service} in {environment} {why}: look at the rollout, then ask again")]
    Unanswered { service: String, environment: String, why: &'static str },
    #[error("cannot read another replica's answer")]
    Answer(#[source] serde_json::Error),
}

/// The control plane. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    ingestor: Ingestor,
    config: DeployConfig,
    supervisor: Supervisor,
    planes: tokio::sync::Mutex<HashMap<(String, String), Arc<Plane>>>,
    /// Rollout id → its controller's command channel.
    wakers: Mutex<HashMap<i64, tokio::sync::mpsc::UnboundedSender<controller::Request>>>,
    /// One deploy/promote/abort/undo at a time.
    changes: tokio::sync::Mutex<()>,
    /// The SLI snapshot last recorded from each data plane.
    readings: tokio::sync::Mutex<sli::Readings>,
    /// What every controller runs under on one server: always on.
    always: tokio::sync::watch::Sender<bool>,
    /// With replicas: the environments this replica drives, and how it learns of others.
    replicas: replicas::Local,
}

/// The request to deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRequest {
    pub service: String,
    pub environment: String,
    pub source: Source,
    /// The version label (default: from the content digest).
    #[serde(default)]
    pub version: Option<String>,
    /// Why a deployment may go through a frozen error budget (`hotfix`, `security`).
    #[serde(default)]
    pub reason: Option<mobius_slo::policy::Reason>,
    /// Who deploys (a token's name): what the release's flag set changes record. Set by the
    /// door from the caller, never read from a request's body.
    #[serde(default, skip_deserializing)]
    pub by: Option<String>,
}

impl Deployer {
    pub fn new(store: Arc<dyn Store>, ingestor: Ingestor, mut config: DeployConfig) -> Deployer {
        if let Ok(absolute) = std::path::absolute(&config.data_dir) {
            config.data_dir = absolute;
        }
        let supervisor = Supervisor::with_sandbox(config.sandbox.clone());
        Deployer {
            inner: Arc::new(Inner {
                store,
                ingestor,
                config,
                supervisor,
                planes: tokio::sync::Mutex::new(HashMap::new()),
                wakers: Mutex::new(HashMap::new()),
                changes: tokio::sync::Mutex::new(()),
                readings: tokio::sync::Mutex::new(sli::Readings::new()),
                always: tokio::sync::watch::channel(true).0,
                replicas: replicas::Local::default(),
            }),
        }
    }

    /// Starts a rollout of a release to an environment. Refused while another rollout of the
    /// service to that environment is unfinished. With replicas, the release is made here and
    /// the replica driving the environment starts the rollout.
    pub async fn deploy(&self, request: DeployRequest) -> Result<Stored, DeployError> {
        if let Some(guard) = self.inner.config.guard.clone() {
            let (service, environment) = (request.service.clone(), request.environment.clone());
            let checked = mobius_log::blocking::spawn(move || guard.check(&service, &environment)).await;
            if let Err(message) = checked {
                let (service, environment) = (request.service.clone(), request.environment.clone());
                return Err(DeployError::Managed { service, environment, message });
            }
        }
        self.deploy_declared(request, policy::Origin::Asked).await
    }

    /// A deploy the [`DeployConfig::guard`] is not asked about: what GitOps itself deploys,
    /// as git declares it. `origin` is what the gate policies are told it is (a GitOps sync
    /// names its repository and revision).
    pub async fn deploy_declared(&self, request: DeployRequest, origin: policy::Origin) -> Result<Stored, DeployError> {
        let Some(leases) = &self.inner.config.leases else {
            return self.deploy_with(request, None, &origin).await;
        };
        let release = self.prepare(&request).await?;
        self.share(&release).await?;
        let change = replicas::Change::Deploy {
            release: release.dir,
            version: release.version,
            artifact: release.artifact,
            revision: release.revision,
            reason: request.reason,
            by: request.by.clone(),
            origin,
        };
        self.ask(leases, &request.service, &request.environment, change).await
    }

    /// Makes the release a request names (blocking work, on the pool).
    async fn prepare(&self, request: &DeployRequest) -> Result<release::Release, DeployError> {
        let this = self.clone();
        let req = request.clone();
        Ok(mobius_log::blocking::spawn(move || {
            let lookup = |key: &str| this.artifact_of(key);
            release::prepare(&this.inner.config.data_dir, &req.source, req.version.as_deref(), &lookup)
        })
        .await?)
    }

    async fn deploy_with(
        &self,
        request: DeployRequest,
        plan: Option<Plan>,
        origin: &policy::Origin,
    ) -> Result<Stored, DeployError> {
        let _one = self.inner.changes.lock().await;
        let release = self.prepare(&request).await?;
        self.deploy_release(request, release, plan, origin).await
    }

    /// Starts the rollout of a release made already (here, or by the replica a deploy reached,
    /// whose `artifact` and `revision` it keeps). The caller holds `changes`.
    async fn deploy_release(
        &self,
        request: DeployRequest,
        release: release::Release,
        plan: Option<Plan>,
        origin: &policy::Origin,
    ) -> Result<Stored, DeployError> {
        let spec = &release.spec;
        if spec.name() != request.service {
            return Err(DeployError::WrongService { wanted: request.service.clone(), found: spec.name().to_owned() });
        }
        let environment = spec.environment(&request.environment).ok_or_else(|| {
            let names: Vec<&str> = spec.environments.value.iter().map(|e| e.name.value.as_str()).collect();
            DeployError::UnknownEnvironment {
                service: spec.name().to_owned(),
                environment: request.environment.clone(),
                known: names.join(", "),
            }
        })?;
        // Every secret `run.env` names is stored, and every flag file can go into its set,
        // before anything is written.
        self.instance_env(spec, Some(&release.spec_text), &request.environment).await?;
        self.check_flags(&release, &request.environment).await?;
        let exception = self.check_policy(&request.service, &request.environment, request.reason).await?;
        self.check_slo_sources(spec, request.reason.is_some()).await?;
        let latest = self.latest(&request.service, &request.environment).await?;
        // A retired service's last rollout serves nothing: this is a first deploy.
        let retired = self.retired(&request.service, &request.environment).await?;
        let latest = latest.filter(|l| Some(l.rollout.id) != retired);
        if let Some(current) = &latest
            && !current.rollout.phase.is_final()
        {
            return Err(DeployError::RolloutUnfinished {
                id: current.rollout.id,
                service: request.service.clone(),
                environment: request.environment.clone(),
                phase: current.rollout.phase.as_str(),
            });
        }
        self.check_gate(&request, &release, origin).await?;
        let (stable, stable_spec) = self.serving(latest.as_ref());
        let plane = self.plane(spec, &request.environment, stable.as_ref()).await?;
        let now = self.now();
        let plan = match plan {
            Some(plan) => plan,
            None => Plan::for_environment(spec, environment)?,
        };
        let new = Deployed {
            version: release.version.clone(),
            release: release.dir.display().to_string(),
            artifact: Some(release.artifact.clone()),
            revision: release.revision.clone(),
            instances: Vec::new(),
        };
        if stable.as_ref().is_some_and(|s| s.version == new.version) {
            return Err(DeployError::AlreadyServing {
                version: new.version.clone(),
                environment: request.environment.clone(),
            });
        }
        let first_in_environment = latest.is_none();
        let rollout = Rollout::new(spec.name(), environment, plan, spec.run.instances.value, stable, new, now);
        let host = self.inner.config.leases.as_ref().map(|_| replicas::this_host());
        let mut stored = Stored { rollout, spec: release.spec_text.clone(), stable_spec, host };
        // The release's flags are in force as its rollout starts.
        self.load_flags(&release, &request).await?;
        self.save(&mut stored).await?;
        // Recorded only now that the deploy it excuses is going ahead.
        if let Some(exception) = exception {
            self.emit(exception.map(|e| vec![e])).await;
        }
        if first_in_environment {
            let url = format!("http://{}", environment.listen.value);
            self.emit(emit::environment_created(spec.name(), &request.environment, &url, now).map(|e| vec![e])).await;
        }
        self.spawn_controller(stored.clone(), plane);
        Ok(stored)
    }

    /// Goes on from a pause (or a manual approval). Refused when the rollout is not paused, or
    /// when the error-budget policy freezes the environment.
    pub async fn promote(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        if let Some(leases) = &self.inner.config.leases {
            return self.ask(leases, service, environment, replicas::Change::Promote).await;
        }
        self.promote_here(service, environment).await
    }

    async fn promote_here(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        // Without a reason there is never an exception to record.
        self.check_policy(service, environment, None).await?;
        self.change(service, environment, controller::Command::Promote).await
    }

    /// Every Prometheus SLI source of the release answers (see `slo::check_sources`). A hotfix
    /// or security fix goes ahead with a warning: a monitoring outage must not block a fix.
    async fn check_slo_sources(&self, spec: &ServiceSpec, urgent: bool) -> Result<(), DeployError> {
        let (slos, now) = (spec.slos.clone(), self.now());
        let checked =
            mobius_log::blocking::spawn(move || mobius_reliability::slo::check_sources("mobius.yaml", &slos, now))
                .await;
        match checked {
            Ok(()) => Ok(()),
            Err(why) if urgent => {
                tracing::warn!(service = spec.name(), "{why} (deploying anyway: a hotfix or security fix)");
                Ok(())
            }
            Err(why) => Err(why.into()),
        }
    }

    /// The error-budget policy: refuses with the budget and when it recovers, or lets the
    /// change through — with the policy exception event to record for a hotfix or security
    /// fix once the change is under way.
    async fn check_policy(
        &self,
        service: &str,
        environment: &str,
        reason: Option<mobius_slo::policy::Reason>,
    ) -> Result<Option<Result<NewEvent, EmitError>>, DeployError> {
        let store = self.inner.store.clone();
        let (s, e, now) = (service.to_owned(), environment.to_owned(), self.now());
        let decision =
            mobius_log::blocking::spawn(move || mobius_reliability::slo::gate(store.as_ref(), &s, &e, reason, now))
                .await?;
        match decision {
            mobius_slo::policy::Decision::Allow => Ok(None),
            mobius_slo::policy::Decision::AllowWithWarning(message) => {
                tracing::warn!(%service, %environment, "{message}");
                Ok(None)
            }
            mobius_slo::policy::Decision::AllowAsException { reason, message } => {
                Ok(Some(emit::policy_exception(service, environment, &reason.to_string(), &message, now)))
            }
            mobius_slo::policy::Decision::Refuse(message) => Err(DeployError::BudgetExhausted {
                service: service.to_owned(),
                environment: environment.to_owned(),
                message,
            }),
        }
    }

    /// Rolls the current rollout back now.
    pub async fn abort(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        if let Some(leases) = &self.inner.config.leases {
            return self.ask(leases, service, environment, replicas::Change::Abort).await;
        }
        self.abort_here(service, environment).await
    }

    async fn abort_here(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        self.change(service, environment, controller::Command::Abort("aborted by hand".to_owned())).await
    }

    /// Back to the version before the last successful rollout: instantly while a blue-green
    /// switch keeps it warm, else as a new rollout of that release switched at once.
    pub async fn undo(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        if let Some(leases) = &self.inner.config.leases {
            return self.ask(leases, service, environment, replicas::Change::Undo).await;
        }
        self.undo_here(service, environment).await
    }

    async fn undo_here(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        let latest = self.latest(service, environment).await?.ok_or_else(|| never_deployed(service, environment))?;
        if !latest.rollout.phase.is_final() {
            return self.abort_here(service, environment).await;
        }
        if latest.rollout.old_is_warm() {
            return self.change(service, environment, controller::Command::UndoSwitch).await;
        }
        let previous =
            latest.rollout.stable.clone().filter(|_| latest.rollout.phase == Phase::Succeeded).ok_or_else(|| {
                DeployError::NothingToUndo { service: service.to_owned(), environment: environment.to_owned() }
            })?;
        let request = DeployRequest {
            service: service.to_owned(),
            environment: environment.to_owned(),
            source: Source::Dir(self.local_release(Path::new(&previous.release)).await?),
            version: Some(previous.version.clone()),
            // Going back to what ran before is how a frozen budget recovers.
            reason: Some(mobius_slo::policy::Reason::Hotfix),
            by: None,
        };
        // The previous release directory is reused as it is; the switch skips the steps.
        self.deploy_with(request, Some(Plan::switch()), &policy::Origin::Asked).await
    }

    /// The latest rollout of a service to an environment. Blocking: reads the store.
    pub fn status(&self, service: &str, environment: &str) -> Result<Option<Stored>, DeployError> {
        let rows = self.inner.store.rollouts(&RolloutQuery {
            service: Some(service.to_owned()),
            environment: Some(environment.to_owned()),
            limit: 1,
            ..RolloutQuery::default()
        })?;
        Ok(rows.first().and_then(decode))
    }

    /// Recent rollouts, newest first. Blocking: reads the store.
    pub fn list(
        &self,
        service: Option<&str>,
        environment: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Stored>, DeployError> {
        let rows = self.inner.store.rollouts(&RolloutQuery {
            service: service.map(str::to_owned),
            environment: environment.map(str::to_owned),
            before,
            limit,
            ..RolloutQuery::default()
        })?;
        Ok(rows.iter().filter_map(decode).collect())
    }

    /// Stops every instance this control plane runs and closes the embedded proxies (for
    /// `mobius demo`; `mobius serve` leaves instances running to re-adopt them).
    pub async fn stop_all(&self) {
        let store = self.inner.store.clone();
        let rows = match mobius_log::blocking::spawn(move || {
            store.rollouts(&RolloutQuery { limit: 10_000, ..RolloutQuery::default() })
        })
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the rollouts to stop their instances");
                Vec::new()
            }
        };
        for stored in rows.iter().filter_map(decode) {
            for deployed in stored.rollout.stable.iter().chain(std::iter::once(&stored.rollout.new)) {
                for instance in &deployed.instances {
                    if let Some(current) = self.inner.supervisor.current(instance.addr) {
                        self.inner.supervisor.stop(&current, std::time::Duration::from_secs(5)).await;
                    }
                }
            }
        }
        self.inner.planes.lock().await.clear();
    }

    /// The artifact id and revision known for an artifact id or a commit, from the facts.
    fn artifact_of(&self, key: &str) -> Option<(String, Option<String>)> {
        self.inner
            .store
            .artifact(key)
            .map_err(|e| tracing::error!(error = %e, key, "cannot look an artifact up"))
            .ok()
            .flatten()
    }

    async fn latest(&self, service: &str, environment: &str) -> Result<Option<Stored>, DeployError> {
        let (this, service, environment) = (self.clone(), service.to_owned(), environment.to_owned());
        mobius_log::blocking::spawn(move || this.status(&service, &environment)).await
    }

    /// The version serving after `latest` and its `mobius.yaml`.
    fn serving(&self, latest: Option<&Stored>) -> (Option<Deployed>, Option<String>) {
        let Some(latest) = latest else { return (None, None) };
        let r = &latest.rollout;
        match r.phase {
            // Even while the old version is still warm after a switch, the new one serves.
            Phase::Succeeded => (Some(r.new.clone()), Some(latest.spec.clone())),
            // Aborted or failed, or still going: the stable one serves.
            _ => (r.stable.clone(), latest.stable_spec.clone()),
        }
    }

    /// The data plane of an environment, opened on first use.
    async fn plane(
        &self,
        spec: &ServiceSpec,
        environment: &str,
        serving: Option<&Deployed>,
    ) -> Result<Arc<Plane>, DeployError> {
        let key = (spec.name().to_owned(), environment.to_owned());
        let mut planes = self.inner.planes.lock().await;
        if let Some(plane) = planes.get(&key) {
            return Ok(plane.clone());
        }
        let mut table = RoutingTable::empty(spec.name(), environment);
        if let Some(serving) = serving {
            table.stable = Some(Backend {
                version: serving.version.clone(),
                addrs: serving.instances.iter().map(|i| i.addr).collect(),
            });
        }
        let plane = if self.inner.config.external_proxy {
            let plane = Plane::external(self.inner.config.data_dir.join("proxy"), spec.name(), environment);
            plane.set_table(table);
            plane
        } else {
            let listen = spec.environment(environment).and_then(|e| e.listen.value.parse().ok()).ok_or_else(|| {
                DeployError::NoListenAddress { service: spec.name().to_owned(), environment: environment.to_owned() }
            })?;
            Plane::embedded(listen, table).await.map_err(|source| DeployError::Listen {
                listen,
                service: spec.name().to_owned(),
                environment: environment.to_owned(),
                source,
            })?
        };
        let plane = Arc::new(plane);
        planes.insert(key, plane.clone());
        Ok(plane)
    }

    async fn change(
        &self,
        service: &str,
        environment: &str,
        command: controller::Command,
    ) -> Result<Stored, DeployError> {
        let _one = self.inner.changes.lock().await;
        let latest = self.latest(service, environment).await?.ok_or_else(|| never_deployed(service, environment))?;
        match self.send(latest.rollout.id, command).await {
            Some(answer) => Ok(answer?),
            // No controller: the rollout is over (or this server has not resumed it).
            None => Err(DeployError::RolloutOver {
                id: latest.rollout.id,
                service: service.to_owned(),
                environment: environment.to_owned(),
                phase: latest.rollout.phase.as_str(),
            }),
        }
    }

    /// Stores the rollout (durably, off the async workers); a new one gets its id.
    async fn save(&self, stored: &mut Stored) -> Result<(), DeployError> {
        let r = &stored.rollout;
        let mut row = RolloutRow {
            id: r.id,
            service: r.service.clone(),
            environment: r.environment.clone(),
            phase: r.phase.as_str().to_owned(),
            active: !r.phase.is_final() || r.retire_at.is_some(),
            body: serde_json::to_string(&*stored).map_err(DeployError::Encode)?,
            created: r.created_at,
            updated: self.now(),
        };
        let store = self.inner.store.clone();
        if stored.rollout.id == 0 {
            // Inserted, then stored once more so the body carries its id.
            let inserted = mobius_log::blocking::spawn(move || store.save_rollout(&row).map(|id| (id, row))).await?;
            stored.rollout.id = inserted.0;
            row = inserted.1;
            row.id = stored.rollout.id;
            row.body = serde_json::to_string(&*stored).map_err(DeployError::Encode)?;
            let store = self.inner.store.clone();
            mobius_log::blocking::spawn(move || store.save_rollout(&row)).await?;
        } else {
            mobius_log::blocking::spawn(move || store.save_rollout(&row)).await?;
        }
        Ok(())
    }

    /// Appends the events a rollout caused (durably, off the async workers). They are Mobius's
    /// own: one that does not build is a bug, logged.
    async fn emit(&self, events: Result<Vec<NewEvent>, EmitError>) {
        let events = match events {
            Ok(events) => events,
            Err(e) => return tracing::error!(error = %e, "a deployment produced an invalid event"),
        };
        let ingestor = self.inner.ingestor.clone();
        if let Err(e) = mobius_log::blocking::spawn(move || ingestor.append(&events)).await {
            tracing::error!(error = %e, "cannot append deployment events");
        }
    }
}

impl Deployer {
    /// The time now, by the control plane's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }
}

fn never_deployed(service: &str, environment: &str) -> DeployError {
    DeployError::NeverDeployed { service: service.to_owned(), environment: environment.to_owned() }
}

fn decode(row: &RolloutRow) -> Option<Stored> {
    serde_json::from_str(&row.body)
        .map_err(|e| tracing::warn!(rollout = row.id, error = %e, "unreadable stored rollout"))
        .ok()
}
