//! Replicas sharing one store: each environment (a service in an environment) is driven by the
//! replica holding its lease, `environment:<service>/<environment>` ([`lease_name`]) — its
//! rollouts' controller, its instances and its proxy run there, and nowhere else.
//!
//! [`Deployer::drive_environments`] is the replica's side, a background task: it wants the
//! lease of every environment it knows of (those with rollouts, those whose lease rows it sees,
//! those a request here names); when one is taken it takes the environment up as a restarted
//! server would (`recovery`: instances re-adopted or restarted, proxy opened, an unfinished
//! rollout resumed), and when it is lost or the replica stops it gives it up (controller
//! stopped, proxy closed, instances stopped: the next holder starts its own).
//!
//! A change (`deploy`, `promote`, `abort`, `undo`) reaching any replica becomes a command in the
//! store ([`Change`]); the holder claims it (every [`POLL`], at once when it was queued here),
//! applies it as one server does, and stores the answer, which the asker waits for
//! (`Deployer::ask`). A deploy to an environment nobody holds takes its lease on the replica
//! it reached, so the first deploy does not wait for a renewal round.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use mobius_deploy::rollout::Stored;
use mobius_log::lease::Leases;
use mobius_store::{CommandState, NewRolloutCommand, RolloutCommand, RolloutQuery, Scope};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::recovery::Until;
use crate::{DeployError, DeployRequest, Deployer, ReleaseError, Source};

/// How often the holder looks for commands queued on other replicas.
pub const POLL: Duration = Duration::from_millis(500);
/// How often a replica looks for environments other replicas started driving (their lease
/// rows), and forgets commands answered long ago.
const SCAN_EVERY: Duration = Duration::from_secs(5);
/// How long an asker waits for a replica to take its change up before withdrawing it: more
/// than a lease's TTL and a renewal, so a change asked during a failover is applied by the
/// new holder.
pub const ANSWER_WAIT: Duration = Duration::from_secs(25);
/// How long more an asker waits for the answer to a change a replica took up.
const APPLY_WAIT: Duration = Duration::from_secs(60);
/// How often an asker reads its command's row.
const ANSWER_POLL: Duration = Duration::from_millis(100);
/// How long answered commands are kept.
const KEEP_ANSWERED: Duration = Duration::from_secs(3600);

/// The lease an environment's rollouts, instances and proxy run under.
pub fn lease_name(service: &str, environment: &str) -> String {
    format!("environment:{service}/{environment}")
}

/// The environment a lease of [`lease_name`]'s is for.
fn environment_of(lease: &str) -> Option<(String, String)> {
    let (service, environment) = lease.strip_prefix("environment:")?.split_once('/')?;
    Some((service.to_owned(), environment.to_owned()))
}

/// This machine, as `Stored::host` records it: its host name.
pub(crate) fn this_host() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() { "localhost".to_owned() } else { host.to_owned() }
}

/// A change asked of the replica driving an environment: a command's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    /// A release the asking replica made (in its data directory), with the identity it had
    /// there: the holder copies the tree into its own releases.
    Deploy {
        release: PathBuf,
        version: String,
        artifact: String,
        revision: Option<String>,
        reason: Option<mobius_slo::policy::Reason>,
        /// Who deployed (the flag files' changes name them); absent from older replicas.
        #[serde(default)]
        by: Option<String>,
        /// A GitOps sync or a deploy asked for: what the gate policies are told; absent
        /// (asked) from older replicas.
        #[serde(default)]
        origin: crate::policy::Origin,
    },
    Promote,
    Abort,
    Undo,
    Retire,
}

/// A command's answer, as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    /// The rollout as the change left it.
    Applied(Box<Stored>),
    Refused {
        refusal: Refusal,
        message: String,
    },
}

/// What kind of refusal a change met, in the control plane's words: what a replica's answer
/// keeps of its error, so the asking replica's door answers as the holder's would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The request or the release is not valid.
    Invalid,
    /// Something it names does not exist.
    NotFound,
    /// The rollout's state does not allow it now.
    Conflict,
    /// The error-budget policy freezes the environment.
    BudgetExhausted,
    /// The gate policies refuse the change.
    PolicyDenied,
    /// Nothing changed and the same change may succeed later (a busy store, no holder).
    Unavailable,
    /// The server's own failure.
    Failed,
}

impl DeployError {
    /// What kind of refusal this is.
    pub fn refusal(&self) -> Refusal {
        use DeployError as D;
        use ReleaseError as R;
        match self {
            D::Release(release) => match release {
                R::NoSpecInDir { .. }
                | R::NoSpec { .. }
                | R::Spec(_)
                | R::BadDigest { .. }
                | R::BadVersion { .. }
                | R::FlagFile(_)
                | R::Tree(_) => Refusal::Invalid,
                R::NoArtifactForCommit { .. }
                | R::ArtifactWithoutDigest { .. }
                | R::UnknownArtifact { .. }
                | R::UnknownUpload { .. } => Refusal::NotFound,
                R::Artifacts(_) | R::Io { .. } | R::NotShared { .. } | R::StoredMismatch { .. } => Refusal::Failed,
            },
            D::WrongService { .. }
            | D::UnknownEnvironment { .. }
            | D::NoListenAddress { .. }
            | D::AnalysisStep(_)
            | D::SloSource(_)
            | D::MissingSecret(_)
            | D::FlagFiles(crate::flags::FlagFilesError::Invalid { .. })
            | D::Fault(_) => Refusal::Invalid,
            D::FlagFiles(crate::flags::FlagFilesError::Conflict { .. }) => Refusal::Conflict,
            D::FlagFiles(crate::flags::FlagFilesError::Failed { .. }) => Refusal::Failed,
            D::NeverDeployed { .. } | D::NotRunningHere { .. } => Refusal::NotFound,
            D::BudgetExhausted { .. } => Refusal::BudgetExhausted,
            D::PolicyDenied { .. } => Refusal::PolicyDenied,
            D::RolloutUnfinished { .. }
            | D::AlreadyServing { .. }
            | D::NothingToUndo { .. }
            | D::ChangeRefused(_)
            | D::Managed { .. }
            | D::RolloutOver { .. }
            | D::Listen { .. } => Refusal::Conflict,
            D::Store(store) if store.is_unavailable() => Refusal::Unavailable,
            D::Store(_) | D::Encode(_) | D::Secrets { .. } | D::Answer(_) => Refusal::Failed,
            D::RefusedByHolder { refusal, .. } => *refusal,
            D::NoHolder { .. } | D::Unanswered { .. } => Refusal::Unavailable,
        }
    }
}

/// What the asking replica will say: the message alone for a refusal of the request, the
/// whole chain for an address that is taken or a failure (which its log keeps).
fn message_of(error: &DeployError) -> String {
    match (error, error.refusal()) {
        (DeployError::Listen { .. }, _) | (_, Refusal::Failed) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            message
        }
        _ => error.to_string(),
    }
}

/// This replica's side of the environments: which it drives, and the signals between the
/// requests it takes and its [`Deployer::drive_environments`].
#[derive(Default)]
pub(crate) struct Local {
    driven: Mutex<HashMap<(String, String), Driven>>,
    /// Environments requests here named, for the loop to follow.
    named: Mutex<Vec<(String, String)>>,
    /// A command was queued here, or an environment named.
    wake: Notify,
    /// A command was answered here.
    answered: Notify,
}

/// An environment this replica drives.
struct Driven {
    /// Set to false when the replica gives the environment up: its controllers stop.
    running: watch::Sender<bool>,
    controllers: Vec<JoinHandle<()>>,
    /// Taken up: its commands may be applied.
    ready: bool,
}

impl Local {
    fn driven(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Driven>> {
        self.driven.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What a controller of this environment runs under, while it is driven here.
    pub(crate) fn running(&self, service: &str, environment: &str) -> Option<watch::Receiver<bool>> {
        self.driven().get(&(service.to_owned(), environment.to_owned())).map(|d| d.running.subscribe())
    }

    /// Keeps a controller's task, to wait for it when the environment is given up.
    pub(crate) fn track(&self, service: &str, environment: &str, handle: JoinHandle<()>) {
        let mut driven = self.driven();
        match driven.get_mut(&(service.to_owned(), environment.to_owned())) {
            Some(d) => {
                d.controllers.retain(|h| !h.is_finished());
                d.controllers.push(handle);
            }
            // Given up between the spawn and now: it stops at its first look.
            None => drop(handle),
        }
    }

    fn ready(&self) -> Vec<Scope> {
        let driven = self.driven();
        let mut scopes: Vec<Scope> = driven
            .iter()
            .filter(|(_, d)| d.ready)
            .map(|((service, environment), _)| Scope { service: service.clone(), environment: environment.clone() })
            .collect();
        scopes.sort();
        scopes
    }

    fn name(&self, service: &str, environment: &str) {
        self.named.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((service.into(), environment.into()));
        self.wake.notify_one();
    }

    fn take_named(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.named.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Deployer {
    /// With replicas: drives every environment whose lease this replica holds, applies the
    /// commands queued for them, and follows the environments other replicas drive (to take
    /// them over if they die), until `stop`; then gives every environment up. On one server
    /// (no [`crate::DeployConfig::leases`]) it only waits for `stop`.
    pub async fn drive_environments(self, stop: impl std::future::Future<Output = ()>) {
        let Some(leases) = self.inner.config.leases.clone() else { return stop.await };
        let (stopping, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut followed = BTreeSet::new();
        let mut follow = |tasks: &mut tokio::task::JoinSet<()>, (service, environment): (String, String)| {
            if followed.insert((service.clone(), environment.clone())) {
                let (this, leases, stopped) = (self.clone(), leases.clone(), stopped.clone());
                tasks.spawn(this.environment(leases, service, environment, stopped));
            }
        };
        match self.environments_with_rollouts().await {
            Ok(environments) => environments.into_iter().for_each(|e| follow(&mut tasks, e)),
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the environments with rollouts; following them as their leases show")
            }
        }
        tokio::pin!(stop);
        let mut next_scan = tokio::time::Instant::now();
        loop {
            for named in self.inner.replicas.take_named() {
                follow(&mut tasks, named);
            }
            if tokio::time::Instant::now() >= next_scan {
                next_scan = tokio::time::Instant::now() + SCAN_EVERY;
                for named in self.environments_leased().await {
                    follow(&mut tasks, named);
                }
            }
            self.apply_commands(&leases).await;
            tokio::select! {
                () = &mut stop => break,
                () = self.inner.replicas.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                Some(ended) = tasks.join_next() => if let Err(error) = ended {
                    tracing::error!(error = %error, "an environment's task panicked");
                },
            }
        }
        let _ = stopping.send(true);
        while let Some(ended) = tasks.join_next().await {
            if let Err(error) = ended {
                tracing::error!(error = %error, "an environment's task panicked");
            }
        }
    }

    /// Every environment with a rollout.
    async fn environments_with_rollouts(&self) -> Result<Vec<(String, String)>, DeployError> {
        let store = self.inner.store.clone();
        let rows = mobius_log::blocking::spawn(move || {
            store.rollouts(&RolloutQuery { limit: 10_000, ..RolloutQuery::default() })
        })
        .await?;
        let environments: BTreeSet<_> = rows.into_iter().map(|r| (r.service, r.environment)).collect();
        Ok(environments.into_iter().collect())
    }

    /// Every environment some replica holds (or held) the lease of; and, while at it, the
    /// commands answered long ago forgotten.
    async fn environments_leased(&self) -> Vec<(String, String)> {
        let (store, now) = (self.inner.store.clone(), self.now());
        let forget_before = now - jiff::SignedDuration::try_from(KEEP_ANSWERED).unwrap_or_default();
        let read = mobius_log::blocking::spawn(move || {
            if let Err(error) = store.prune_rollout_commands(forget_before) {
                tracing::warn!(error = %error, "cannot forget old rollout commands");
            }
            store.leases()
        })
        .await;
        match read {
            Ok(leases) => leases.iter().filter_map(|l| environment_of(&l.name)).collect(),
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the leases");
                Vec::new()
            }
        }
    }

    /// One environment: driven here while this replica holds its lease, until `stopped`.
    async fn environment(
        self,
        leases: Leases,
        service: String,
        environment: String,
        mut stopped: watch::Receiver<bool>,
    ) {
        let name = lease_name(&service, &environment);
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        leases
            .run_while_held(&name, stop, |until| {
                let (this, leases, service, environment) =
                    (self.clone(), leases.clone(), service.clone(), environment.clone());
                async move { this.drive(&leases, &service, &environment, until).await }
            })
            .await;
    }

    /// Drives an environment from when its lease is taken until `until` (lost, or stopping).
    async fn drive(&self, leases: &Leases, service: &str, environment: &str, mut until: Until) {
        let key = (service.to_owned(), environment.to_owned());
        self.inner
            .replicas
            .driven()
            .insert(key.clone(), Driven { running: watch::channel(true).0, controllers: Vec::new(), ready: false });
        tracing::info!(%service, %environment, "taking the environment up: its lease is this replica's");
        if self.take_over(leases, service, environment, &mut until).await {
            if let Some(driven) = self.inner.replicas.driven().get_mut(&key) {
                driven.ready = true;
            }
            tracing::info!(%service, %environment, "driving the environment here");
            // Commands that waited for the takeover.
            self.inner.replicas.wake.notify_one();
            until.await;
        }
        self.give_up(service, environment).await;
    }

    /// Takes an environment up; `false` when `until` resolved first.
    async fn take_over(&self, leases: &Leases, service: &str, environment: &str, until: &mut Until) -> bool {
        // What the previous holder claimed and did not answer is lost: applying it again could,
        // say, promote past two pauses.
        let (store, holder, now) = (self.inner.store.clone(), leases.holder().to_owned(), self.now());
        let scope = Scope { service: service.to_owned(), environment: environment.to_owned() };
        match mobius_log::blocking::spawn(move || store.lose_rollout_commands(&scope, &holder, now)).await {
            Ok(lost) if !lost.is_empty() => {
                tracing::warn!(%service, %environment, commands = ?lost, "the previous holder left changes unanswered: they are lost, their askers told so");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%service, %environment, error = %error, "cannot settle the previous holder's commands")
            }
        }
        match self.latest(service, environment).await {
            Ok(None) => {}
            Ok(Some(stored)) => {
                if let Err(error) = self.take_up(stored, Some(until)).await {
                    tracing::error!(%service, %environment, error = %error, "cannot take the environment's rollout up");
                }
            }
            Err(error) => {
                tracing::error!(%service, %environment, error = %error, "cannot read the environment's rollout")
            }
        }
        tokio::select! {
            biased;
            () = until => false,
            () = std::future::ready(()) => true,
        }
    }

    /// Gives an environment up: its controllers stop between two actions, its proxy closes and
    /// its instances stop (the next holder starts its own).
    async fn give_up(&self, service: &str, environment: &str) {
        let key = (service.to_owned(), environment.to_owned());
        let driven = self.inner.replicas.driven().remove(&key);
        if let Some(driven) = driven {
            driven.running.send_replace(false);
            for controller in driven.controllers {
                if let Err(error) = controller.await {
                    tracing::error!(%service, %environment, error = %error, "a rollout's controller panicked");
                }
            }
        }
        drop(self.inner.planes.lock().await.remove(&key));
        let latest = match self.latest(service, environment).await {
            Ok(latest) => latest,
            Err(error) => {
                tracing::error!(%service, %environment, error = %error, "cannot read the environment's rollout to stop its instances");
                None
            }
        };
        let mut stopping = tokio::task::JoinSet::new();
        if let Some(stored) = latest {
            let grace = mobius_deploy::spec::ServiceSpec::parse("mobius.yaml", &stored.spec)
                .map_or(Duration::from_secs(5), |spec| spec.run.shutdown_grace.0);
            let r = &stored.rollout;
            for instance in r.stable.iter().chain(std::iter::once(&r.new)).flat_map(|d| &d.instances) {
                // Only the instances this replica runs: the supervisor knows them by address.
                if let Some(current) = self.inner.supervisor.current(instance.addr) {
                    let supervisor = self.inner.supervisor.clone();
                    stopping.spawn(async move { supervisor.stop(&current, grace).await });
                }
            }
        }
        let stopped = stopping.join_all().await.len();
        tracing::info!(%service, %environment, instances = stopped, "gave the environment up: proxy closed, instances stopped");
    }

    /// Claims and applies the commands queued for the environments driven here, oldest first.
    async fn apply_commands(&self, leases: &Leases) {
        loop {
            let environments = self.inner.replicas.ready();
            if environments.is_empty() {
                return;
            }
            let (store, holder, now) = (self.inner.store.clone(), leases.holder().to_owned(), self.now());
            let claimed =
                mobius_log::blocking::spawn(move || store.claim_rollout_command(&environments, &holder, now)).await;
            let command = match claimed {
                Ok(Some(command)) => command,
                Ok(None) => return,
                Err(error) => return tracing::warn!(error = %error, "cannot claim rollout commands"),
            };
            let answer = self.apply(&command).await;
            let result = match serde_json::to_string(&answer) {
                Ok(result) => result,
                Err(error) => {
                    tracing::error!(command = command.id, error = %error, "cannot encode a command's answer");
                    continue;
                }
            };
            let (store, holder, id, now) =
                (self.inner.store.clone(), leases.holder().to_owned(), command.id, self.now());
            match mobius_log::blocking::spawn(move || store.finish_rollout_command(id, &holder, &result, now)).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(command = id, "a command was answered after it was lost"),
                Err(error) => tracing::error!(command = id, error = %error, "cannot store a command's answer"),
            }
            self.inner.replicas.answered.notify_waiters();
        }
    }

    /// Applies one command as one server would.
    async fn apply(&self, command: &RolloutCommand) -> Answer {
        let (service, environment) = (command.service.as_str(), command.environment.as_str());
        let change: Change = match serde_json::from_str(&command.body) {
            Ok(change) => change,
            Err(error) => {
                return Answer::Refused {
                    refusal: Refusal::Failed,
                    message: format!("an unreadable change (from a newer replica?): {error}"),
                };
            }
        };
        tracing::info!(command = command.id, %service, %environment, change = ?change, "applying a change");
        let done = match change {
            Change::Deploy { release, version, artifact, revision, reason, by, origin } => {
                let _one = self.inner.changes.lock().await;
                match self.local_release(&release).await {
                    Err(error) => Err(error),
                    Ok(release) => {
                        let request = DeployRequest {
                            service: service.to_owned(),
                            environment: environment.to_owned(),
                            source: Source::Dir(release),
                            version: Some(version),
                            reason,
                            by,
                        };
                        self.deploy_made(request, artifact, revision, origin).await
                    }
                }
            }
            Change::Promote => self.promote_here(service, environment).await,
            Change::Abort => self.abort_here(service, environment).await,
            Change::Undo => self.undo_here(service, environment).await,
            Change::Retire => self.retire_here(service, environment).await,
        };
        match done {
            Ok(stored) => Answer::Applied(Box::new(stored)),
            Err(error) => Answer::Refused { refusal: error.refusal(), message: message_of(&error) },
        }
    }

    /// Deploys a release another replica made, keeping its artifact and commit.
    async fn deploy_made(
        &self,
        request: DeployRequest,
        artifact: String,
        revision: Option<String>,
        origin: crate::policy::Origin,
    ) -> Result<crate::Stored, DeployError> {
        let mut made = self.prepare(&request).await?;
        made.artifact = artifact;
        made.revision = revision;
        self.deploy_release(request, made, None, &origin).await
    }

    /// Hands a change to the replica driving the environment — this one, when it holds the
    /// lease or nobody does — and waits for its answer.
    pub(crate) async fn ask(
        &self,
        leases: &Leases,
        service: &str,
        environment: &str,
        change: Change,
    ) -> Result<Stored, DeployError> {
        let name = lease_name(service, environment);
        self.inner.replicas.name(service, environment);
        if !leases.holds(&name) && leases.take(&name).await {
            tracing::info!(%service, %environment, "nobody drove the environment: this replica does from now on");
        }
        let body = serde_json::to_string(&change).map_err(DeployError::Encode)?;
        let command = NewRolloutCommand {
            service: service.to_owned(),
            environment: environment.to_owned(),
            body,
            queued: self.now(),
        };
        let store = self.inner.store.clone();
        let id = mobius_log::blocking::spawn(move || store.enqueue_rollout_command(&command)).await?;
        self.inner.replicas.wake.notify_one();
        self.answer(id, service, environment, &name).await
    }

    /// Waits for command `id`'s answer: up to [`ANSWER_WAIT`] for a replica to take it up (then
    /// it is withdrawn), and [`APPLY_WAIT`] more for the answer.
    async fn answer(&self, id: i64, service: &str, environment: &str, lease: &str) -> Result<Stored, DeployError> {
        let started = tokio::time::Instant::now();
        let unanswered =
            |why| DeployError::Unanswered { service: service.to_owned(), environment: environment.to_owned(), why };
        loop {
            let answered = self.inner.replicas.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let store = self.inner.store.clone();
            let command = mobius_log::blocking::spawn(move || store.rollout_command(id)).await?;
            let Some(command) = command else { return Err(unanswered("forgot the change")) };
            let waited = started.elapsed();
            match command.state {
                CommandState::Done => {
                    let result = command.result.unwrap_or_default();
                    return match serde_json::from_str(&result).map_err(DeployError::Answer)? {
                        Answer::Applied(stored) => Ok(*stored),
                        Answer::Refused { refusal, message } => Err(DeployError::RefusedByHolder { refusal, message }),
                    };
                }
                CommandState::Lost => return Err(unanswered("stopped before it answered")),
                CommandState::Withdrawn => return Err(self.no_holder(service, environment, lease, waited).await),
                CommandState::Queued if waited >= ANSWER_WAIT => {
                    let (store, now) = (self.inner.store.clone(), self.now());
                    if mobius_log::blocking::spawn(move || store.withdraw_rollout_command(id, now)).await? {
                        return Err(self.no_holder(service, environment, lease, waited).await);
                    }
                    // Taken up meanwhile: its answer is coming.
                }
                CommandState::Claimed if waited >= ANSWER_WAIT + APPLY_WAIT => {
                    return Err(unanswered("has not answered yet"));
                }
                CommandState::Queued | CommandState::Claimed => {}
            }
            tokio::select! {
                () = answered => {}
                () = tokio::time::sleep(ANSWER_POLL) => {}
            }
        }
    }

    /// The error for a change nobody took up, saying who holds the environment's lease.
    async fn no_holder(&self, service: &str, environment: &str, lease: &str, waited: Duration) -> DeployError {
        let (store, name) = (self.inner.store.clone(), lease.to_owned());
        let leases = mobius_log::blocking::spawn(move || store.leases()).await.unwrap_or_default();
        let lease = match leases.iter().find(|l| l.name == name) {
            Some(held) => format!("the replica {} held its lease {name}, until {}", held.holder, held.expires),
            None => format!("no replica held its lease {name}"),
        };
        DeployError::NoHolder {
            service: service.to_owned(),
            environment: environment.to_owned(),
            lease,
            waited_s: waited.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_names_its_environment() {
        assert_eq!(lease_name("shop", "production"), "environment:shop/production");
        assert_eq!(environment_of("environment:shop/production"), Some(("shop".into(), "production".into())));
        assert_eq!(environment_of("slo-alerts"), None);
        assert_eq!(environment_of("environment:shop"), None);
    }

    #[test]
    fn a_refusal_keeps_what_kind_it_is() {
        let refused = DeployError::NothingToUndo { service: "shop".into(), environment: "production".into() };
        let answer = Answer::Refused { refusal: refused.refusal(), message: message_of(&refused) };
        let text = serde_json::to_string(&answer).unwrap();
        let Answer::Refused { refusal, message } = serde_json::from_str(&text).unwrap() else { panic!("{text}") };
        let back = DeployError::RefusedByHolder { refusal, message };
        assert_eq!((back.refusal(), back.to_string()), (Refusal::Conflict, refused.to_string()));
    }
}
