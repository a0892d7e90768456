//! Runs whose driver is gone: a run is queued and driven by the replica that planned it (its
//! DAG lives in that process), which records itself as the run's driver in the store. A run
//! in flight whose driver no longer holds its liveness lease (`replica:<holder>`, kept by
//! every replica) — or, when a server starts, one driven by an earlier process on the same
//! data directory — is an orphan: it is made `interrupted` with its jobs in flight, and its
//! agent jobs still queued are cancelled; one running on an agent finishes there. A server
//! that starts queues its own earlier runs once more (a restart, as before replicas), unless
//! a job of one is running on an agent: running it again would run it twice. A replica that
//! died is an infrastructure failure like a lost agent: its runs are not queued again by
//! themselves (GitHub re-runs nothing by itself either); re-run them explicitly.
//!
//! The same sweep releases the files a dead replica's agent jobs left in the store (their
//! transfers, `crate::agents::transfer_prefix`) once their run has ended and none of its jobs
//! is on an agent any more: a live dispatcher releases its own.

use super::*;
use mobius_store::{AgentJobState, RunQuery, RunRecord, driver_key};

/// Who drives the runs of this process: the data directory's node id (stable across restarts)
/// and the replica's lease holder (new for each process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Driver {
    pub node: String,
    pub holder: String,
}

impl Driver {
    pub(super) fn record(&self) -> String {
        format!("{} {}", self.node, self.holder)
    }

    fn parse(text: &str) -> Option<Driver> {
        let (node, holder) = text.split_once(' ')?;
        Some(Driver { node: node.to_owned(), holder: holder.to_owned() })
    }
}

/// The liveness lease every replica keeps while it runs.
pub fn replica_lease(holder: &str) -> String {
    format!("replica:{holder}")
}

/// How often the replica holding the `run-recovery` lease looks for orphans.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl Runner {
    /// This process drives the runs it queues from now on as `driver`.
    pub fn set_driver(&self, driver: Driver) {
        *self.inner.driver.lock().unwrap_or_else(|e| e.into_inner()) = Some(driver);
    }

    /// Takes up the orphans: each interrupted. `starting`: this process has just started, so
    /// runs of an earlier process on its data directory are orphans too, and those are queued
    /// once more unless an agent finishes their job. Returns the re-queued runs' ids.
    pub async fn recover_orphans(&self, starting: bool) -> Result<Vec<i64>, RunError> {
        let this = self.clone();
        let orphans = mobius_log::blocking::spawn(move || this.interrupt_orphans(starting)).await?;
        let mut requeued = Vec::new();
        for (old, on_agent) in orphans {
            if !starting {
                continue;
            }
            if old.run.requeue_of.is_some() {
                tracing::warn!(run = old.id, "interrupted twice; not re-queued again");
                continue;
            }
            if on_agent {
                tracing::info!(run = old.id, "interrupted; its job finishes on its agent, so it is not queued again");
                continue;
            }
            let mut run = old.run.clone();
            run.requeue_of = Some(old.id);
            run.queued_at = self.now();
            match self.requeue(run).await {
                Ok(id) => {
                    tracing::info!(run = old.id, new_run = id, "re-queued a run whose driver stopped");
                    requeued.push(id);
                }
                Err(e) => tracing::warn!(run = old.id, error = %e, "cannot re-queue an interrupted run"),
            }
        }
        Ok(requeued)
    }

    /// Looks for orphans every [`SWEEP_EVERY`] until `shutdown` (under the `run-recovery`
    /// lease: one replica does it).
    pub async fn recover_orphans_forever(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            if let Err(e) = self.recover_orphans(false).await {
                tracing::warn!(error = %e, "cannot look for runs whose driver stopped");
            }
            let this = self.clone();
            match mobius_log::blocking::spawn(move || this.release_left_transfers()).await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "released the files of ended runs' agent jobs"),
                Err(e) => tracing::warn!(error = %e, "cannot release the files of ended runs' agent jobs"),
            }
        }
    }

    /// Releases the transfers of runs that have ended with no job on an agent (blocking);
    /// how many.
    pub fn release_left_transfers(&self) -> Result<usize, RunError> {
        let store = &self.inner.store;
        let transfers = store.transfers("run-")?;
        if transfers.is_empty() {
            return Ok(0);
        }
        let active = store.active_agent_jobs()?;
        let mut released = 0;
        for transfer in transfers {
            let Some(run) = crate::agents::transfer_run(&transfer) else { continue };
            let ended = store.run(run)?.is_none_or(|detail| detail.record.state.is_final());
            if ended && !active.iter().any(|job| job.run == run) {
                store.release_transfer(&transfer)?;
                released += 1;
            }
        }
        Ok(released)
    }

    /// Interrupts the orphans in the store (blocking); each with whether a job of it runs on
    /// an agent.
    fn interrupt_orphans(&self, starting: bool) -> Result<Vec<(RunRecord, bool)>, RunError> {
        let store = &self.inner.store;
        let now = self.now();
        let me = self.inner.driver.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut in_flight = Vec::new();
        for state in [RunState::Queued, RunState::Running] {
            in_flight.extend(store.runs(&RunQuery { state: Some(state), limit: u32::MAX, ..RunQuery::default() })?);
        }
        if in_flight.is_empty() {
            return Ok(Vec::new());
        }
        let leases = store.leases()?;
        let alive = |d: &Driver| {
            let name = replica_lease(&d.holder);
            leases.iter().any(|l| l.name == name && l.holder == d.holder && l.expires > now)
        };
        let agent_jobs = store.active_agent_jobs()?;
        let mut orphans = Vec::new();
        for run in in_flight {
            // Queued and claimed by nobody yet: any replica takes it up, this one included.
            if !run.claimed {
                continue;
            }
            let driver = store.state(&driver_key(run.id))?.as_deref().and_then(Driver::parse);
            let orphan = match (&driver, &me) {
                // Planned here, in this process.
                (Some(d), Some(me)) if d.holder == me.holder => false,
                // An earlier process on this data directory: gone, since this one starts.
                (Some(d), Some(me)) if starting && d.node == me.node => true,
                (Some(d), _) => !alive(d),
                // Runs from before drivers were recorded: the old rule, at start only.
                (None, _) => starting,
            };
            if !orphan {
                continue;
            }
            let who = driver.map_or_else(|| "the server".to_owned(), |d| format!("replica {}", d.holder));
            let reason = format!("{who} stopped during the run");
            let detail = store.run(run.id)?;
            let mut updates: Vec<RunUpdate> = detail
                .iter()
                .flat_map(|d| &d.jobs)
                .filter(|j| !j.state.is_final())
                .map(|j| RunUpdate::Job { run: run.id, job: j.name.clone(), state: RunState::Interrupted, at: now })
                .collect();
            updates.push(RunUpdate::Run { run: run.id, state: RunState::Interrupted, at: now, reason: Some(reason) });
            store.update_runs(&updates)?;
            let mut on_agent = false;
            for job in agent_jobs.iter().filter(|j| j.run == run.id) {
                match job.state {
                    AgentJobState::Queued => {
                        store.cancel_agent_job(job.id, "its run's driver stopped", now)?;
                    }
                    AgentJobState::Running => on_agent = true,
                    _ => {}
                }
            }
            tracing::warn!(run = run.id, %who, on_agent, "a run's driver stopped: the run is interrupted");
            orphans.push((run, on_agent));
        }
        Ok(orphans)
    }
}
