//! One pass over a source: read git when it moved, compare each declared service with what
//! runs, act, and save where it stands.

use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use mobius_delivery::{DeployError, DeployRequest, Source as DeploySource};
use mobius_deploy::rollout::{Phase, Stored};
use mobius_events::emit::gitops::{self as emit, Declared};

use crate::desired::{self, Environment};
use crate::flags::{self, FlagPass};
use crate::{
    GitOps, GitOpsError, HISTORY, Health, Passes, Read, Reconciliation, ServiceStatus, Source, SourceStatus, Sync,
    digest_of, read_status, repo, status_key,
};

/// Environment → service → its flag files, as read at a revision.
type FlagFiles =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<mobius_delivery::flags::FlagFile>>>;

/// What started a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The reconciler's own tick.
    Timer,
    /// `mobius gitops sync`: files read again.
    Asked,
    /// `mobius gitops sync --force`: failed digests tried again, windows gone through.
    Forced,
}

/// What runs, as a sync compares it.
struct Live {
    /// What the latest rollout moves to (or moved to), and what serves now.
    target: Option<String>,
    serving: Option<String>,
    phase: Option<Phase>,
    rollout: Option<i64>,
    message: String,
}

impl Live {
    fn of(stored: Option<&Stored>) -> Live {
        let Some(stored) = stored else {
            return Live { target: None, serving: None, phase: None, rollout: None, message: String::new() };
        };
        let r = &stored.rollout;
        let new = r.new.artifact.as_deref().and_then(digest_of);
        let stable = r.stable.as_ref().and_then(|s| s.artifact.as_deref()).and_then(digest_of);
        let serving = match r.phase {
            Phase::Succeeded => new.clone(),
            _ => stable,
        };
        Live { target: new, serving, phase: Some(r.phase), rollout: Some(r.id), message: r.message.clone() }
    }

    fn health(&self) -> Health {
        match self.phase {
            None => Health::Missing,
            Some(Phase::Succeeded) => Health::Healthy,
            Some(Phase::Pending | Phase::Progressing) => Health::Progressing,
            Some(Phase::Paused) => Health::Suspended,
            Some(Phase::Aborted | Phase::Failed) => {
                if self.serving.is_some() {
                    Health::Degraded
                } else {
                    Health::Missing
                }
            }
        }
    }

    fn in_progress(&self) -> bool {
        self.phase.is_some_and(|p| !p.is_final())
    }
}

impl GitOps {
    pub(crate) async fn pass(
        &self,
        passes: &mut Passes,
        source: &Source,
        trigger: Trigger,
    ) -> Result<SourceStatus, GitOpsError> {
        let now = self.inner.clock.now();
        let store = self.inner.store.clone();
        let repository = source.repository.clone();
        let (mut status, _) = mobius_log::blocking::spawn(move || read_status(store.as_ref(), &repository)).await?;
        status.repository = source.repository.clone();
        let mut actions = Vec::new();

        // Git: the revision, and the files when it moved or the interval passed.
        let revision = match self.revision(source).await {
            Ok(revision) => revision,
            Err(error) => {
                let message = error.to_string();
                if status.error.as_deref() != Some(message.as_str()) {
                    actions.push(format!("cannot read the repository: {message}"));
                }
                status.error = Some(message);
                status.services.iter_mut().for_each(|s| s.sync = Sync::Unknown);
                return self.save(status, None, now, actions).await;
            }
        };
        let moved = status.revision.as_deref() != Some(revision.as_str());
        let stale = passes
            .read
            .get(&source.repository)
            .is_none_or(|read| read.revision != revision || now.duration_since(read.at) > interval_with_jitter(source));
        if stale || trigger != Trigger::Timer {
            match self.read_files(source, &revision).await {
                Ok((environments, flags)) => {
                    if status.error.take().is_some() || moved {
                        actions.push(format!("read {} at {}", source.repository, short(&revision)));
                    }
                    passes.read.insert(
                        source.repository.clone(),
                        Read { revision: revision.clone(), at: now, environments, flags },
                    );
                }
                Err(error) => {
                    // The previous files stay in force; nothing acts on the bad revision.
                    let message = format!("{error}");
                    if status.error.as_deref() != Some(message.as_str()) {
                        actions.push(format!("{} at {} is refused: {message}", source.repository, short(&revision)));
                    }
                    status.error = Some(message);
                    if let Some(read) = passes.read.get_mut(&source.repository) {
                        read.at = now;
                    }
                }
            }
        }
        let Some(read) = passes.read.get(&source.repository).cloned() else {
            status.services.iter_mut().for_each(|s| s.sync = Sync::Unknown);
            return self.save(status, Some(revision), now, actions).await;
        };

        status.environments = read.environments.iter().map(|e| (e.name.clone(), e.file.clone())).collect();
        let mut services = Vec::new();
        let mut flag_sets = Vec::new();
        for environment in &read.environments {
            let held = desired::held_by(&environment.windows, now).filter(|_| trigger != Trigger::Forced);
            for (service, digest) in &environment.services {
                let declared =
                    Declared { repository: &source.repository, revision: &read.revision, file: &environment.file };
                let mut one = self
                    .one(source, &mut status, declared, environment, service, digest, held.as_deref(), trigger, now)
                    .await?;
                if let Some(action) = &one.1 {
                    actions.push(format!("{service}/{}: {action}", environment.name));
                }
                let files = read.flags.get(&environment.name).and_then(|f| f.get(service));
                if let Some(files) = files.filter(|f| !f.is_empty()) {
                    let pass = FlagPass {
                        source,
                        revision: &read.revision,
                        environment,
                        service,
                        held: held.as_deref(),
                        trigger,
                    };
                    let (rows, done) = self.flag_files(pass, files, &mut status).await;
                    actions.extend(done.into_iter().map(|a| format!("{service}/{}: {a}", environment.name)));
                    flag_sets.extend(rows.iter().map(|r| format!("{}/{}", environment.name, r.set)));
                    // The service is in sync only when its flag sets are too.
                    if let Some(behind) = rows.iter().find(|r| r.sync != Sync::Synced)
                        && one.0.sync == Sync::Synced
                    {
                        one.0.sync = behind.sync;
                        if one.0.message.is_empty() {
                            one.0.message = format!("flag set {}: {}", behind.set, behind.message);
                        }
                    }
                    one.0.flags = rows;
                }
                services.push(one.0);
            }
            for (row, action) in self.undeclared(source, environment, held.as_deref()).await? {
                if let Some(action) = action {
                    actions.push(format!("{}/{}: {action}", row.service, environment.name));
                }
                services.push(row);
            }
        }
        status.services = services;
        flags::forget_undeclared(&mut status, &flag_sets);
        self.save(status, Some(read.revision), now, actions).await
    }

    /// One declared service: its status, and what this pass did about it.
    #[allow(clippy::too_many_arguments)]
    async fn one(
        &self,
        source: &Source,
        status: &mut SourceStatus,
        declared: Declared<'_>,
        environment: &Environment,
        service: &str,
        digest: &str,
        held: Option<&str>,
        trigger: Trigger,
        now: Timestamp,
    ) -> Result<(ServiceStatus, Option<String>), GitOpsError> {
        let key = format!("{}/{service}", environment.name);
        let deployer = self.inner.deployer.clone();
        let (s, e) = (service.to_owned(), environment.name.clone());
        let latest = mobius_log::blocking::spawn(move || deployer.status(&s, &e)).await?;
        let retired = self.inner.deployer.retired(service, &environment.name).await?;
        let latest = latest.filter(|l| Some(l.rollout.id) != retired);
        let live = Live::of(latest.as_ref());
        let mut row = ServiceStatus {
            environment: environment.name.clone(),
            service: service.to_owned(),
            file: environment.file.clone(),
            desired: Some(digest.to_owned()),
            live: live.serving.clone(),
            sync: if live.target.as_deref() == Some(digest) { Sync::Synced } else { Sync::OutOfSync },
            health: live.health(),
            message: String::new(),
            rollout: live.rollout,
            flags: Vec::new(),
        };
        if trigger == Trigger::Forced {
            status.failed.remove(&key);
        }
        // The declared digest's rollout ended without it serving: an automatic rollback.
        if live.target.as_deref() == Some(digest) && matches!(live.phase, Some(Phase::Aborted | Phase::Failed)) {
            row.sync = Sync::OutOfSync;
            status.failed.insert(key.clone(), digest.to_owned());
            let phase = live.phase.map_or("", Phase::as_str);
            row.message = format!(
                "the rollout of {} ended {phase}{}; {} still serves — change git (or `mobius gitops sync --force`) to try again",
                short_digest(digest),
                if live.message.is_empty() { String::new() } else { format!(": {}", live.message) },
                live.serving.as_deref().map_or("nothing".to_owned(), short_digest)
            );
            return Ok((row, None));
        }
        if row.sync == Sync::Synced {
            if !live.in_progress() {
                status.applied.insert(key.clone(), digest.to_owned());
                status.drift_seen.remove(&key);
            }
            status.failed.remove(&key);
            return Ok((row, None));
        }
        if live.in_progress() {
            row.message = format!("waiting for rollout {} to finish", live.rollout.unwrap_or_default());
            return Ok((row, None));
        }
        if let Some(failed) = status.failed.get(&key).filter(|f| f.as_str() == digest) {
            row.message = format!(
                "the sync to {} failed; change git (or `mobius gitops sync --force`) to try again",
                short_digest(failed)
            );
            return Ok((row, None));
        }
        // Git unchanged since the last sync, and something else changed what runs.
        let drift = status.applied.get(&key).is_some_and(|applied| applied == digest);
        if drift && !source.self_heal {
            let live_text = live.serving.clone().unwrap_or_else(|| "nothing".to_owned());
            row.message = format!(
                "drift: {} runs where git declares {} (self-heal is off: `mobius gitops sync` puts it back)",
                short_digest(&live_text),
                short_digest(digest)
            );
            let first = status.drift_seen.get(&key) != Some(&live_text);
            if first && trigger == Trigger::Timer {
                status.drift_seen.insert(key.clone(), live_text);
                self.record(emit::drifted(
                    declared,
                    &environment.name,
                    service,
                    digest,
                    live.serving.as_deref(),
                    "shown",
                    now,
                ))
                .await;
                return Ok((row, Some("drift shown".to_owned())));
            }
            if trigger == Trigger::Timer {
                return Ok((row, None));
            }
        }
        if let Some(held) = held {
            row.message = held.to_owned();
            return Ok((row, None));
        }
        let why = match (drift, trigger) {
            (_, Trigger::Asked | Trigger::Forced) => "manual",
            (true, Trigger::Timer) => "self-heal",
            (false, Trigger::Timer) => "sync",
        };
        if drift {
            self.record(emit::drifted(
                declared,
                &environment.name,
                service,
                digest,
                live.serving.as_deref(),
                "reverted",
                now,
            ))
            .await;
        }
        let request = DeployRequest {
            service: service.to_owned(),
            environment: environment.name.clone(),
            source: DeploySource::Artifact(digest.to_owned()),
            version: None,
            reason: None,
            by: Some(format!("gitops:{}", source.repository)),
        };
        let origin = mobius_delivery::policy::Origin::GitopsSync(mobius_delivery::policy::SyncSource {
            repository: declared.repository.to_owned(),
            revision: declared.revision.to_owned(),
            file: declared.file.to_owned(),
        });
        match self.inner.deployer.deploy_declared(request, origin).await {
            Ok(stored) => {
                let id = stored.rollout.id;
                status.applied.insert(key.clone(), digest.to_owned());
                status.drift_seen.remove(&key);
                row.rollout = Some(id);
                row.health = Health::Progressing;
                row.message = format!("syncing to {} (rollout {id})", short_digest(digest));
                let previous = live.serving.as_deref();
                self.record(emit::synced(declared, &environment.name, service, digest, previous, id, why, now)).await;
                Ok((row, Some(format!("{why} to {} (rollout {id})", short_digest(digest)))))
            }
            // Another deploy got in first: looked at again next pass.
            Err(DeployError::RolloutUnfinished { id, .. }) => {
                row.message = format!("waiting for rollout {id} to finish");
                Ok((row, None))
            }
            Err(error) => {
                let message = format!("{error}");
                status.failed.insert(key.clone(), digest.to_owned());
                row.message = format!("the sync to {} failed: {message}", short_digest(digest));
                Ok((row, Some(format!("sync to {} failed: {message}", short_digest(digest)))))
            }
        }
    }

    /// The services running in a declared environment that its file does not declare: kept
    /// (prune off), or retired — never all of an environment unless `allow_empty`.
    async fn undeclared(
        &self,
        source: &Source,
        environment: &Environment,
        held: Option<&str>,
    ) -> Result<Vec<(ServiceStatus, Option<String>)>, GitOpsError> {
        let deployer = self.inner.deployer.clone();
        let name = environment.name.clone();
        let rows = mobius_log::blocking::spawn(move || deployer.list(None, Some(&name), None, 1000)).await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for stored in rows {
            let service = stored.rollout.service.clone();
            if !seen.insert(service.clone()) || environment.services.contains_key(&service) {
                continue;
            }
            if self.inner.deployer.retired(&service, &environment.name).await? == Some(stored.rollout.id) {
                continue;
            }
            let live = Live::of(Some(&stored));
            let mut row = ServiceStatus {
                environment: environment.name.clone(),
                service: service.clone(),
                file: environment.file.clone(),
                desired: None,
                live: live.serving.clone(),
                sync: Sync::OutOfSync,
                health: live.health(),
                message: String::new(),
                rollout: live.rollout,
                flags: Vec::new(),
            };
            let action = if live.in_progress() {
                row.message =
                    format!("not declared; waiting for rollout {} to finish", live.rollout.unwrap_or_default());
                None
            } else if !source.prune {
                row.message = format!("not declared in {}: prune is off, so it keeps running", environment.file);
                None
            } else if environment.services.is_empty() && !source.allow_empty {
                row.message = format!(
                    "not declared, but {} declares no service at all: prune retires a whole environment only with --allow-empty",
                    environment.file
                );
                None
            } else if let Some(held) = held {
                row.message = held.to_owned();
                None
            } else {
                match self.inner.deployer.retire(&service, &environment.name).await {
                    Ok(_) => {
                        row.health = Health::Missing;
                        row.live = None;
                        row.message = "retired: not declared in git (prune)".to_owned();
                        Some("pruned".to_owned())
                    }
                    Err(error) => {
                        row.message = format!("prune failed: {error}");
                        Some(format!("prune failed: {error}"))
                    }
                }
            };
            out.push((row, action));
        }
        Ok(out)
    }

    async fn revision(&self, source: &Source) -> Result<String, GitOpsError> {
        let path = self.path_of(&source.repository).await?;
        let revision = source.revision.clone();
        Ok(mobius_log::blocking::spawn(move || repo::resolve(&path, &revision)).await?)
    }

    /// The environment files at `revision`, and the flag files they name, all checked.
    async fn read_files(&self, source: &Source, revision: &str) -> Result<(Vec<Environment>, FlagFiles), GitOpsError> {
        let path = self.path_of(&source.repository).await?;
        let (sha, dir) = (revision.to_owned(), source.path.clone());
        mobius_log::blocking::spawn(move || -> Result<_, GitOpsError> {
            let files = repo::environment_files(&path, &sha, &dir)?;
            let environments =
                files.iter().map(|(file, text)| desired::parse(file, text)).collect::<Result<Vec<Environment>, _>>()?;
            let mut flags = FlagFiles::new();
            for environment in &environments {
                flags.insert(environment.name.clone(), flags::read(&path, &sha, &dir, environment)?);
            }
            Ok((environments, flags))
        })
        .await
    }

    pub(crate) async fn path_of(&self, repository: &str) -> Result<PathBuf, GitOpsError> {
        let store = self.inner.store.clone();
        let all = mobius_log::blocking::spawn(move || store.repositories()).await?;
        all.into_iter()
            .find(|r| r.name == repository)
            .map(|r| PathBuf::from(r.path))
            .ok_or_else(|| GitOpsError::UnknownRepository { repository: repository.to_owned() })
    }

    async fn record(&self, event: Result<mobius_events::envelope::NewEvent, mobius_events::emit::EmitError>) {
        match event {
            Ok(event) => {
                let log = self.inner.log.clone();
                if let Err(error) = mobius_log::blocking::spawn(move || log.append(&[event])).await {
                    tracing::error!(error = %error, "gitops: cannot record an event");
                }
            }
            Err(error) => tracing::error!(error = %error, "gitops: cannot build an event"),
        }
    }

    /// Saves the status, with a history entry when the pass did something or read a new
    /// revision.
    async fn save(
        &self,
        mut status: SourceStatus,
        revision: Option<String>,
        now: Timestamp,
        actions: Vec<String>,
    ) -> Result<SourceStatus, GitOpsError> {
        let moved = revision.is_some() && revision != status.revision;
        if let Some(revision) = revision {
            status.revision = Some(revision);
        }
        status.reconciled_at = Some(now);
        if !actions.is_empty() || moved {
            let outcome = if status.error.is_some() {
                "error"
            } else if status.services.iter().any(|s| s.health == Health::Progressing) {
                "progressing"
            } else if status.services.iter().all(|s| s.sync == Sync::Synced) {
                "synced"
            } else {
                "out-of-sync"
            };
            let entry = Reconciliation {
                at: now,
                revision: status.revision.clone().unwrap_or_default(),
                outcome: outcome.to_owned(),
                actions,
            };
            status.history.insert(0, entry);
            status.history.truncate(HISTORY);
        }
        let text = serde_json::to_string(&status).map_err(GitOpsError::Corrupt)?;
        let (store, key) = (self.inner.store.clone(), status_key(&status.repository));
        mobius_log::blocking::spawn(move || store.put_state(&key, &text)).await?;
        Ok(status)
    }
}

/// The source's interval plus up to a third more, spread by its name (Argo CD's jitter keeps
/// many sources from reading their repositories in the same second).
fn interval_with_jitter(source: &Source) -> SignedDuration {
    let spread = source.repository.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let jitter = spread % (source.interval_s / 3).max(1);
    SignedDuration::from_secs((source.interval_s + jitter) as i64)
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}

/// `sha256:0123456789ab` — enough to tell digests apart in a message.
pub(crate) fn short_digest(digest: &str) -> String {
    digest.get(..19).unwrap_or(digest).to_owned()
}
