//! GitOps (issue 16, items 1–3): environments declared in a deploy repository and reconciled.
//!
//! A *source* is a registered repository (`mobius repo add`) with `environments/<env>.yaml`
//! files under a path: for each service, the artifact digest it should run (see [`desired`]).
//! `mobius gitops add REPO [--path deploy] [--self-heal] [--prune]` makes the reconciler follow
//! it. The reconciler ([`GitOps::run`], one replica under the `gitops` lease) passes over every
//! source each second:
//! - it reads the files again when the source's revision moved (a push, seen through the
//!   repository's poll or webhook) or its `interval` passed (3 minutes with jitter, as Argo CD);
//! - it compares each declared service with what runs (the latest rollout in the store:
//!   Mobius owns the live state, so drift is seen within the second, without polling anything
//!   else) and acts through the environment's own strategy — a digest change is a deploy like
//!   any other, with its canary or blue-green, analysis, budget gate and events.
//!
//! Status has Argo CD's two axes per service and environment: sync (`Synced`, `OutOfSync`,
//! `Unknown`) against the revision, and health (`Healthy`, `Progressing`, `Suspended`,
//! `Degraded`, `Missing`). A sync that fails is not retried for the same digest (Argo CD's
//! rule: a failed revision stays failed until git changes or `mobius gitops sync`); an
//! automatic rollback by analysis leaves the service `OutOfSync` with the reason. A manual
//! deploy to a declared environment is refused by [`Guard`] unless the source self-heals, and
//! then reverted on the next pass with a `mobius-gitops.drifted` event. [`promote`] writes a
//! digest into an environment's file as a commit — pushed to the remote of a repository
//! registered by URL, or to a branch of its own with a pull request ([`review`]) when the
//! environment requires review.

pub mod desired;
pub mod flags;
mod guard;
mod land;
pub mod promote;
mod reconcile;
pub mod repo;
pub mod review;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mobius_delivery::Deployer;
use mobius_log::{Clock, Ingestor};
use mobius_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub use guard::Guard;

/// The state document the sources are registered in.
pub(crate) const SOURCES_KEY: &str = "gitops-sources";

/// The state document of one source's status.
pub(crate) fn status_key(repository: &str) -> String {
    format!("gitops-status:{repository}")
}

/// How often the reconciler passes over every source (live state is read each time; the
/// repository's files only when its revision moved or its interval passed).
pub const TICK: Duration = Duration::from_secs(1);

/// Argo CD's default: the files are read again at least this often (plus up to a third as
/// jitter), even when no push was seen.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(180);

/// The longest `interval` a source may have (a week): past it a lost push waits too long.
const MAX_INTERVAL_S: u64 = 7 * 86_400;

/// How many reconciliations a source's history keeps (Flux keeps 5; the console shows 20).
pub const HISTORY: usize = 20;

/// A deploy repository the reconciler follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The registered repository's name.
    pub repository: String,
    /// Where `environments/` is, relative to the repository (`""`: at its root).
    #[serde(default)]
    pub path: String,
    /// The revision followed (`HEAD`: the repository's default branch).
    #[serde(default = "head")]
    pub revision: String,
    /// Manual deploys to its environments are let through and reverted on the next pass,
    /// rather than refused.
    #[serde(default)]
    pub self_heal: bool,
    /// Services that run in a declared environment but are not declared are retired.
    #[serde(default)]
    pub prune: bool,
    /// Prune may retire every service of an environment (its file declares none).
    #[serde(default)]
    pub allow_empty: bool,
    /// Seconds between reads of the files when no push is seen.
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    /// Environments whose promotions wait for review: pushed to a branch of their own with a
    /// pull request through the repository's forge, never to the followed branch.
    #[serde(default)]
    pub review: Vec<String>,
}

fn head() -> String {
    "HEAD".to_owned()
}

fn default_interval() -> u64 {
    DEFAULT_INTERVAL.as_secs()
}

/// Argo CD's sync axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sync {
    Synced,
    OutOfSync,
    /// The files could not be read, or the live state not compared.
    Unknown,
}

/// Argo CD's health axis, best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Suspended,
    Progressing,
    Missing,
    Degraded,
}

/// One declared (or pruned) service in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub environment: String,
    pub service: String,
    /// The file that declares it.
    pub file: String,
    /// What git declares (`None`: not declared — a service prune would retire).
    pub desired: Option<String>,
    /// What serves (the stable version while a rollout is in progress).
    pub live: Option<String>,
    pub sync: Sync,
    pub health: Health,
    /// Why it is out of sync, held, or failed; what the last pass did.
    pub message: String,
    /// The latest rollout's id, when there is one.
    pub rollout: Option<i64>,
    /// The flag sets its `flags:` files go into (see [`flags`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<flags::FlagSetStatus>,
}

/// What one pass over a source did, when it did something or the revision moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub at: Timestamp,
    pub revision: String,
    /// `synced` (every declared service in sync), `progressing`, `out-of-sync`, `error`.
    pub outcome: String,
    /// What it did: `shop/production: sync to sha256:… (rollout 7)`, or why it did nothing.
    pub actions: Vec<String>,
}

/// A source and where it stands: what `mobius gitops status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceStatus {
    pub repository: String,
    /// The revision last read.
    pub revision: Option<String>,
    pub reconciled_at: Option<Timestamp>,
    /// The environments its files declare, by name → file.
    pub environments: BTreeMap<String, String>,
    /// Why the files at the revision could not be read; the previous ones stay in force.
    pub error: Option<String>,
    pub services: Vec<ServiceStatus>,
    /// Newest first.
    pub history: Vec<Reconciliation>,
    /// `environment/service` → the digest the reconciler last deployed or found in sync: a
    /// live digest that differs from it, with git unchanged, is drift.
    #[serde(default)]
    pub applied: BTreeMap<String, String>,
    /// `environment/service` → a digest whose sync failed: not tried again until git declares
    /// another or a sync is asked for by hand.
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
    /// `environment/service` → the live digest a drift was last reported for (reported once).
    #[serde(default)]
    pub drift_seen: BTreeMap<String, String>,
    /// `environment/set` → the flag file last loaded into the set, and the set's version then.
    #[serde(default)]
    pub flags_applied: BTreeMap<String, flags::Applied>,
    /// `environment/set` → a flag file whose load failed, not tried again until it changes.
    #[serde(default)]
    pub flags_failed: BTreeMap<String, flags::Failed>,
}

/// Why a GitOps request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum GitOpsError {
    #[error("there is no registered repository `{repository}`: add it with `mobius repo add` first")]
    UnknownRepository { repository: String },
    #[error("repository `{repository}` is not followed by GitOps")]
    NotASource { repository: String },
    #[error("`{field}`: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Desired(#[from] desired::DesiredError),
    /// A flag file an environment file names is not a flagd document (at its line and column).
    #[error(transparent)]
    FlagFile(#[from] mobius_flags::LoadError),
    #[error(transparent)]
    Git(#[from] repo::GitError),
    #[error(transparent)]
    Promote(#[from] promote::PromoteError),
    #[error(transparent)]
    Deploy(#[from] mobius_delivery::DeployError),
    #[error("the GitOps state kept changing under this change; try again")]
    Contended,
    #[error("the stored GitOps state cannot be read")]
    Corrupt(#[source] serde_json::Error),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// The reconciler and its sources. Cheap to clone.
#[derive(Clone)]
pub struct GitOps {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    log: Ingestor,
    deployer: Deployer,
    clock: Clock,
    /// One pass at a time on this replica.
    passing: tokio::sync::Mutex<Passes>,
    /// Rung by a push, an add or a sync asked for: the next pass starts at once.
    wake: tokio::sync::Notify,
    /// How promotions reach remotes and forges (set by the application).
    remotes: std::sync::OnceLock<promote::Remotes>,
}

/// What a replica keeps between passes: the files read per source, and when.
#[derive(Default)]
struct Passes {
    read: HashMap<String, Read>,
}

/// A source's files as last read.
#[derive(Clone)]
struct Read {
    revision: String,
    at: Timestamp,
    environments: Vec<desired::Environment>,
    /// Environment → service → its flag files at the revision.
    flags: BTreeMap<String, BTreeMap<String, Vec<mobius_delivery::flags::FlagFile>>>,
}

impl GitOps {
    pub fn new(store: Arc<dyn Store>, log: Ingestor, deployer: Deployer, clock: Clock) -> GitOps {
        let inner = Inner {
            store,
            log,
            deployer,
            clock,
            passing: tokio::sync::Mutex::new(Passes::default()),
            wake: tokio::sync::Notify::new(),
            remotes: std::sync::OnceLock::new(),
        };
        GitOps { inner: Arc::new(inner) }
    }

    /// The manual-deploy guard over the same store, for the deployer's config (built before
    /// the deployer this service drives).
    pub fn guard(store: Arc<dyn Store>) -> Guard {
        Guard::new(store)
    }

    /// Follows `source` (replacing how it was followed); its first pass starts at once.
    pub async fn add(&self, source: Source) -> Result<Source, GitOpsError> {
        if !(10..=MAX_INTERVAL_S).contains(&source.interval_s) {
            return Err(GitOpsError::Invalid { field: "interval", message: "between 10s and 7d".into() });
        }
        // Both reach `git` as arguments: nothing it could read as an option or a range.
        let argument = |text: &str| text.starts_with('-') || text.chars().any(|c| c.is_whitespace() || c.is_control());
        if source.revision.is_empty() || argument(&source.revision) || source.revision.contains("..") {
            return Err(GitOpsError::Invalid { field: "revision", message: "a branch, a tag, a sha or HEAD".into() });
        }
        if argument(&source.path) || source.path.split('/').any(|part| part == "..") {
            return Err(GitOpsError::Invalid { field: "path", message: "must stay inside the repository".into() });
        }
        if source.review.iter().any(|e| e.is_empty() || argument(e)) {
            return Err(GitOpsError::Invalid { field: "review", message: "environment names, comma-separated".into() });
        }
        let store = self.inner.store.clone();
        let name = source.repository.clone();
        let known = mobius_log::blocking::spawn(move || store.repositories()).await?;
        if !known.iter().any(|r| r.name == name) {
            return Err(GitOpsError::UnknownRepository { repository: name });
        }
        let added = source.clone();
        self.change_sources(move |all| {
            all.retain(|s| s.repository != added.repository);
            all.push(added.clone());
            all.sort_by(|a, b| a.repository.cmp(&b.repository));
            Ok(())
        })
        .await?;
        self.inner.wake.notify_one();
        Ok(source)
    }

    /// Stops following `repository`: what runs stays as it is.
    pub async fn remove(&self, repository: &str) -> Result<(), GitOpsError> {
        let name = repository.to_owned();
        self.change_sources(move |all| {
            let before = all.len();
            all.retain(|s| s.repository != name);
            if all.len() == before {
                return Err(GitOpsError::NotASource { repository: name.clone() });
            }
            Ok(())
        })
        .await?;
        let (store, key) = (self.inner.store.clone(), status_key(repository));
        mobius_log::blocking::spawn(move || store.put_state(&key, "{}")).await?;
        Ok(())
    }

    /// Every source followed.
    pub async fn sources(&self) -> Result<Vec<Source>, GitOpsError> {
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || read_sources(store.as_ref()).map(|(all, _)| all)).await
    }

    /// Every source with where it stands.
    pub async fn status(&self) -> Result<Vec<(Source, SourceStatus)>, GitOpsError> {
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || {
            let (sources, _) = read_sources(store.as_ref())?;
            sources
                .into_iter()
                .map(|source| {
                    let status = read_status(store.as_ref(), &source.repository)?.0;
                    Ok((source, status))
                })
                .collect()
        })
        .await
    }

    /// A pass over `repository` now, reading its files again; `force` also tries digests whose
    /// sync failed and goes through sync windows (Argo CD's manual sync). Its status after.
    pub async fn sync(&self, repository: &str, force: bool) -> Result<SourceStatus, GitOpsError> {
        let sources = self.sources().await?;
        let source = sources
            .into_iter()
            .find(|s| s.repository == repository)
            .ok_or_else(|| GitOpsError::NotASource { repository: repository.to_owned() })?;
        let mut passes = self.inner.passing.lock().await;
        passes.read.remove(repository);
        let trigger = if force { reconcile::Trigger::Forced } else { reconcile::Trigger::Asked };
        self.pass(&mut passes, &source, trigger).await
    }

    /// Wakes the reconciler (a push was seen).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// One pass over every source. A source whose pass fails is logged; the others go on.
    pub async fn reconcile(&self) -> Result<(), GitOpsError> {
        let sources = self.sources().await?;
        let mut passes = self.inner.passing.lock().await;
        passes.read.retain(|repository, _| sources.iter().any(|s| &s.repository == repository));
        for source in &sources {
            if let Err(error) = self.pass(&mut passes, source, reconcile::Trigger::Timer).await {
                tracing::error!(repository = %source.repository, error = %format!("{error:#}"), "gitops: the pass failed");
            }
        }
        Ok(())
    }

    /// The reconciler: [`GitOps::reconcile`] every [`TICK`] (at once when woken) until
    /// `shutdown`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.reconcile().await {
                tracing::error!(error = %format!("{error:#}"), "gitops: the sources cannot be read");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
                () = self.inner.wake.notified() => {}
            }
        }
    }

    async fn change_sources(
        &self,
        change: impl Fn(&mut Vec<Source>) -> Result<(), GitOpsError> + Send + 'static,
    ) -> Result<(), GitOpsError> {
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || {
            for _ in 0..16 {
                let (mut all, text) = read_sources(store.as_ref())?;
                change(&mut all)?;
                let new = serde_json::to_string(&all).map_err(GitOpsError::Corrupt)?;
                if store.swap_state(SOURCES_KEY, text.as_deref(), &new)? {
                    return Ok(());
                }
            }
            Err(GitOpsError::Contended)
        })
        .await
    }
}

pub(crate) fn read_sources(store: &dyn Store) -> Result<(Vec<Source>, Option<String>), GitOpsError> {
    let text = store.state(SOURCES_KEY)?;
    let all = match &text {
        Some(text) => serde_json::from_str(text).map_err(GitOpsError::Corrupt)?,
        None => Vec::new(),
    };
    Ok((all, text))
}

pub(crate) fn read_status(store: &dyn Store, repository: &str) -> Result<(SourceStatus, Option<String>), GitOpsError> {
    let text = store.state(&status_key(repository))?;
    let status = match text.as_deref() {
        Some(text) if text != "{}" => serde_json::from_str(text).map_err(GitOpsError::Corrupt)?,
        _ => SourceStatus { repository: repository.to_owned(), ..SourceStatus::default() },
    };
    Ok((status, text))
}

/// The digest in an artifact id (`pkg:generic/shop@sha256%3A…` → `sha256:…`).
pub fn digest_of(artifact: &str) -> Option<String> {
    artifact.rsplit_once('@').map(|(_, d)| d.replace("%3A", ":")).filter(|d| desired::is_digest(d))
}

#[cfg(test)]
mod tests;
