//! The server's pipeline runner: turns pushes into queued runs, runs them, and keeps their
//! state in the store.
//!
//! Life of a run: a poll (the git hook's notification, or the periodic fallback) sees a branch
//! move → [`super::trigger::plan`] picks the workflows → each becomes a `queued` run in the
//! store → it starts at once, or waits for its concurrency group → a thread of its own drives
//! the engine on a current-thread runtime (the engine's future is not `Send`) while an observer
//! streams job and step states to the store in batches and log lines to the run's log → at the
//! end the run's CDEvents are appended to the event log.
//!
//! Concurrency groups (GitHub's rules): at most one run in progress and one pending per group;
//! a newer pending run cancels the older pending one; with `cancel-in-progress` it also cancels
//! the one in progress.
//!
//! The queue is the store (`queue.rs`): a planned run is stored `queued` with no driver, and
//! whichever process sharing the store has a free run slot ([`RunnerConfig::runs`]) claims it,
//! becomes its driver and runs it — the process that planned it at once when it has room,
//! another replica otherwise, or when the planner died before starting it.
//!
//! Restart and replicas: a run's driver is recorded with its claim. Runs in flight whose
//! driver stopped — an earlier server on this data directory, found when it starts
//! ([`Runner::recover`]), or a replica whose liveness lease lapsed, found by the replica
//! holding `run-recovery` ([`Runner::recover_orphans_forever`]) — are marked `interrupted`;
//! on a restart each is queued again once (a run that was itself such a re-queue is not
//! re-queued a second time, nor one whose job an agent finishes). A queued run nobody claimed
//! yet is no orphan: any replica claims it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use mobius_pipelines::engine::{self, Deployments, JobCredentials, RunOptions, Status};
use mobius_pipelines::exec::CancellationSignal;
use mobius_pipelines::workflow::{StepAction, Workflow};
use mobius_store::{NewRun, Repository, RunState, RunUpdate, Store, StoreError};
use serde_json::Value;
use tokio::sync::broadcast;

use super::cdevents::{self, Recorder, RunIdentity};
use super::environments::{ProtectionGate, Review, ReviewError, Reviewed, Reviews, RunCredentials, RunTokens};
use super::git::{self, GitError};
use super::logs::{self, LogWriter, RunLogLine};
use super::progress::{Progress, Write, run_state, write_updates};
use super::remote;
use super::trigger::{self, Event, Planned, Push};
use mobius_events::NewEvent;
use mobius_events::emit::EmitError;
use mobius_events::emit::pipeline::Outcome;
use mobius_log::Ingestor;

mod execute;
mod forge_events;
mod orphans;
mod queue;
mod triggers;

pub use orphans::{Driver, SWEEP_EVERY, replica_lease};
pub use queue::CLAIM_EVERY;

pub use triggers::Dispatch;

/// How the runner is set up.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The data directory: run logs and work directories go under `runs/`, artifacts and
    /// caches under `pipelines/`.
    pub data_dir: PathBuf,
    /// How many job instances of one run may run at once.
    pub parallelism: usize,
    /// How many runs this process drives at once; more wait in the store's queue, for this
    /// process or another replica.
    pub runs: usize,
    /// How often every registered repository is polled when no hook says it changed.
    pub poll_interval: Duration,
    /// Where runs read the time.
    pub clock: mobius_log::Clock,
    /// How steps are started (as which user, behind what).
    pub sandbox: mobius_sandbox::Sandbox,
    /// Where `uses: owner/repo@ref` actions come from.
    pub actions: mobius_pipelines::remote::ActionCache,
    /// The stored secrets: a run sees its repository's, and a job those of its environment.
    pub secrets: Option<mobius_secrets::Secrets>,
}

/// Why a runner operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no run {0}")]
    NotFound(i64),
    #[error("run {id} already ended ({state})")]
    Ended { id: i64, state: &'static str },
    #[error("run {id} is still {state}; re-run it once it ends")]
    NotEnded { id: i64, state: &'static str },
    #[error("run {0} has no failed jobs to re-run")]
    NothingFailed(i64),
    #[error("no registered repository {0}")]
    UnknownRepository(String),
    #[error("{repository} has no branch, tag or commit `{git_ref}`")]
    UnknownRef { repository: String, git_ref: String },
    #[error("{repository} has no workflow `{workflow}` at {sha}")]
    UnknownWorkflow { repository: String, workflow: String, sha: String },
    #[error("{file}: {source}")]
    Dispatch { file: String, source: mobius_pipelines::workflow::DispatchError },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Access(#[from] remote::AccessError),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// The server's pipeline runner. Cheap to clone; clones share one state.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    ingestor: Ingestor,
    config: RunnerConfig,
    state: Mutex<State>,
    /// One poll at a time, so a hook and the timer never both see the same move.
    polling: tokio::sync::Mutex<()>,
    /// What `mobius/deploy` steps deploy with ([`Runner::set_deployments`]).
    deployments: Mutex<Option<Arc<dyn Deployments>>>,
    /// Told whenever job states were stored: the commit status delivery waits on it.
    status_wake: Arc<tokio::sync::Notify>,
    /// Jobs waiting for a review before they deploy to a protected environment.
    reviews: Arc<Reviews>,
    /// What issues each job's `MOBIUS_TOKEN` ([`Runner::set_run_tokens`]).
    run_tokens: Mutex<Option<Arc<dyn RunTokens>>>,
    /// The server's URL, given to jobs as `MOBIUS_SERVER` ([`Runner::set_server_url`]).
    server_url: Mutex<Option<String>>,
    /// Where jobs whose `runs-on` routes them to agents go ([`Runner::set_agents`]).
    agents: Mutex<Option<crate::agents::Agents>>,
    /// Who drives the runs this process queues ([`Runner::set_driver`]).
    driver: Mutex<Option<Driver>>,
    /// Rung after a poll that saw a branch or tag move ([`Runner::pushed`]).
    pushed: Arc<tokio::sync::Notify>,
    /// Rung when a run was queued (here, or by another replica): [`Runner::claim_forever`].
    queued: tokio::sync::Notify,
    /// One claimer at a time in this process, so the run slots are counted right.
    claiming: Mutex<()>,
}

#[derive(Default)]
struct State {
    running: HashMap<i64, Active>,
    /// Runs waiting for their concurrency group.
    waiting: HashMap<i64, Prepared>,
    /// Group → the run in progress in it.
    group_running: HashMap<String, i64>,
    /// Group → the run pending in it.
    group_pending: HashMap<String, i64>,
}

/// A run in progress.
struct Active {
    cancel: CancellationSignal,
    /// Why it was cancelled, once it was.
    reason: Arc<Mutex<Option<String>>>,
    live: broadcast::Sender<RunLogLine>,
}

/// Everything a queued run needs to start.
struct Prepared {
    id: i64,
    run: NewRun,
    workflow: Workflow,
    repository_path: PathBuf,
    github: Value,
    /// The `inputs` context (a manual run's).
    inputs: serde_json::Map<String, Value>,
}

impl Runner {
    pub fn new(store: Arc<dyn Store>, ingestor: Ingestor, mut config: RunnerConfig) -> Runner {
        // Steps run in other directories: a relative data directory would not resolve there.
        if let Ok(absolute) = std::path::absolute(&config.data_dir) {
            config.data_dir = absolute;
        }
        Runner {
            inner: Arc::new(Inner {
                store,
                ingestor,
                config,
                state: Mutex::new(State::default()),
                polling: tokio::sync::Mutex::new(()),
                deployments: Mutex::new(None),
                status_wake: Arc::new(tokio::sync::Notify::new()),
                reviews: Arc::new(Reviews::default()),
                run_tokens: Mutex::new(None),
                server_url: Mutex::new(None),
                agents: Mutex::new(None),
                driver: Mutex::new(None),
                pushed: Arc::new(tokio::sync::Notify::new()),
                queued: tokio::sync::Notify::new(),
                claiming: Mutex::new(()),
            }),
        }
    }

    /// Gives `mobius/deploy` steps their deployments (the server's control plane,
    /// `mobius_delivery::Deployer::for_steps`); runs started before have none, and such a step
    /// fails saying so.
    pub fn set_deployments(&self, deployments: Arc<dyn Deployments>) {
        *self.inner.deployments.lock().unwrap_or_else(|e| e.into_inner()) = Some(deployments);
    }

    /// What the commit status delivery ([`crate::forge::StatusDelivery`]) waits on: told
    /// each time job states are stored, so their statuses go out at once.
    pub fn status_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.status_wake.clone()
    }

    /// Gives every job of the runs started from now on a `MOBIUS_TOKEN` issued by `tokens`.
    pub fn set_run_tokens(&self, tokens: Arc<dyn RunTokens>) {
        *self.inner.run_tokens.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens);
    }

    /// Sends the jobs of runs started from now on whose `runs-on` routes them to agents to
    /// `agents`' queue; without it every job runs here.
    pub fn set_agents(&self, agents: crate::agents::Agents) {
        *self.inner.agents.lock().unwrap_or_else(|e| e.into_inner()) = Some(agents);
    }

    /// Tells jobs where the server's API is (`MOBIUS_SERVER`), once it listens.
    pub fn set_server_url(&self, url: impl Into<String>) {
        *self.inner.server_url.lock().unwrap_or_else(|e| e.into_inner()) = Some(url.into());
    }

    /// Approves or rejects a job waiting for a review: the event first (who, when, run, job,
    /// environment), then the job goes on or fails. Refused when the job is not waiting, or
    /// when the environment lists its reviewers and `review.by` is not among them.
    pub async fn review(&self, review: Review) -> Result<Reviewed, ReviewError> {
        let decided = self.inner.reviews.decide(&review)?;
        let (this, event) = (self.clone(), decided.event.as_ref().map(|e| vec![e.clone()]).map_err(Clone::clone));
        mobius_log::blocking::spawn(move || this.append_events(event)).await;
        let reviewed = decided.reviewed.clone();
        decided.hand_over(review.comment.as_deref());
        Ok(reviewed)
    }

    /// Takes up the runs left in flight by an earlier server on this data directory, or by a
    /// replica that stopped: each is interrupted and queued again once (see `orphans.rs`).
    /// Returns the new runs' ids.
    pub async fn recover(&self) -> Result<Vec<i64>, RunError> {
        self.recover_orphans(true).await
    }

    /// Polls one registered repository now: every branch that moved since the last poll
    /// triggers its workflows. Returns the ids of the runs queued. The first poll of a
    /// repository only records where its branches are.
    pub async fn poll(&self, repository: &str) -> Result<Vec<i64>, RunError> {
        let _one_at_a_time = self.inner.polling.lock().await;
        let this = self.clone();
        let repository = repository.to_owned();
        mobius_log::blocking::spawn(move || this.poll_blocking(&repository)).await
    }

    /// Rung (one waiter; a permit is kept when none waits) after a poll — the timer's, a webhook's or a
    /// hook's — saw a branch or tag move: what GitOps wakes on.
    pub fn pushed(&self) -> Arc<tokio::sync::Notify> {
        self.inner.pushed.clone()
    }

    /// Polls every registered repository, logging failures.
    pub async fn poll_all(&self) {
        let this = self.clone();
        let repositories = match mobius_log::blocking::spawn(move || this.inner.store.repositories()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list repositories to poll");
                return;
            }
        };
        for repository in repositories {
            if let Err(e) = self.poll(&repository.name).await {
                tracing::warn!(repository = %repository.name, error = %e, "poll failed");
            }
        }
    }

    /// Polls every repository every [`RunnerConfig::poll_interval`] until `shutdown`.
    pub async fn poll_forever(self, shutdown: impl Future<Output = ()>) {
        let mut timer = tokio::time::interval(self.inner.config.poll_interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = timer.tick() => self.poll_all().await,
            }
        }
    }

    /// Cancels a run: a running one is stopped (its steps' processes killed, `always()` steps
    /// still run), a waiting one ends at once.
    pub fn cancel(&self, id: i64, reason: &str) -> Result<(), RunError> {
        let waiting = {
            let mut state = self.lock();
            if let Some(active) = state.running.get(&id) {
                active.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| reason.to_owned());
                active.cancel.cancel();
                return Ok(());
            }
            let prepared = state.waiting.remove(&id);
            if let Some(p) = &prepared
                && let Some(group) = &p.run.concurrency_group
                && state.group_pending.get(group) == Some(&id)
            {
                state.group_pending.remove(group);
            }
            prepared
        };
        match waiting {
            Some(prepared) => {
                self.end_unstarted(&prepared, reason);
                Ok(())
            }
            None if self.cancel_unclaimed(id, reason)? => Ok(()),
            None => match self.inner.store.run(id)? {
                None => Err(RunError::NotFound(id)),
                Some(detail) => Err(RunError::Ended { id, state: detail.record.state.as_str() }),
            },
        }
    }

    /// Queues a run again: every job, or only the jobs that failed (and, as on GitHub, the
    /// jobs that need them run again too, since they need fresh outputs).
    pub async fn rerun(&self, id: i64, failed_only: bool) -> Result<i64, RunError> {
        let this = self.clone();
        let detail =
            mobius_log::blocking::spawn(move || this.inner.store.run(id)).await?.ok_or(RunError::NotFound(id))?;
        let record = &detail.record;
        if !record.state.is_final() {
            return Err(RunError::NotEnded { id, state: record.state.as_str() });
        }
        let mut run = record.run.clone();
        run.attempt = record.run.attempt + 1;
        run.rerun_of = Some(id);
        run.requeue_of = None;
        run.queued_at = self.now();
        run.only_jobs = Vec::new();
        if failed_only {
            let mut failed: Vec<String> = detail
                .jobs
                .iter()
                .filter(|j| matches!(j.state, RunState::Failure | RunState::Cancelled | RunState::Interrupted))
                // `test (linux, 20)` → `test`: the selection is by job id.
                .map(|j| j.name.split(" (").next().unwrap_or(&j.name).to_owned())
                .collect();
            failed.dedup();
            if failed.is_empty() {
                return Err(RunError::NothingFailed(id));
            }
            run.only_jobs = failed;
        }
        self.requeue(run).await
    }

    /// A receiver of run `id`'s log lines as they are written; `None` when it is not running.
    pub fn subscribe(&self, id: i64) -> Option<broadcast::Receiver<RunLogLine>> {
        self.lock().running.get(&id).map(|a| a.live.subscribe())
    }

    /// Sends run `id`'s log lines after `after` to `lines`: the stored ones, then live ones as
    /// they are written, re-reading the file whenever the live feed skipped some (a slow
    /// reader) and once more after the run ended. Returns the run's state once it ended and
    /// every line was sent; `None` when the reader went away or the run cannot be read.
    pub async fn follow(
        &self,
        id: i64,
        mut after: u64,
        lines: tokio::sync::mpsc::Sender<RunLogLine>,
    ) -> Option<RunState> {
        let path = self.log_path(id);
        // Subscribe before reading the file, so no line falls between the two.
        let mut live = self.subscribe(id);
        loop {
            let read = {
                let path = path.clone();
                mobius_log::blocking::spawn(move || logs::read_after(&path, after)).await
            };
            let stored = read.unwrap_or_else(|e| {
                tracing::warn!(run = id, error = %e, "cannot read a run's log for a follower");
                Vec::new()
            });
            for line in stored {
                after = line.seq;
                lines.send(line).await.ok()?;
            }
            let Some(receiver) = &mut live else { break };
            match receiver.recv().await {
                Ok(line) => {
                    if line.seq > after {
                        after = line.seq;
                        lines.send(line).await.ok()?;
                    }
                    // Drain what is already there without touching the file.
                    loop {
                        match receiver.try_recv() {
                            Ok(line) if line.seq > after => {
                                after = line.seq;
                                lines.send(line).await.ok()?;
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
                // Fell behind: the file has every line; read it again.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                // The run ended: read the file's tail once more, then stop.
                Err(broadcast::error::RecvError::Closed) => live = None,
            }
        }
        let store = self.inner.store.clone();
        match mobius_log::blocking::spawn(move || store.run(id)).await {
            Ok(detail) => detail.map(|d| d.record.state),
            Err(e) => {
                tracing::warn!(run = id, error = %e, "cannot read a followed run's state");
                None
            }
        }
    }

    /// Where run `id`'s log is stored.
    pub fn log_path(&self, id: i64) -> PathBuf {
        logs::path(&self.inner.config.data_dir, id)
    }

    /// How many runs are in progress and waiting.
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (state.running.len(), state.waiting.len())
    }

    /// The time now, by the runner's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `run` again: whoever claims it reads its commit's workflow file again.
    async fn requeue(&self, run: NewRun) -> Result<i64, RunError> {
        let this = self.clone();
        mobius_log::blocking::spawn(move || this.store_queued(&run)).await
    }

    /// The jobs of the workflow `file` of `repository` at `sha`, as a graph (a run page's
    /// job DAG); `None` when the file is gone or no longer parses. Reads git: call it from the
    /// blocking pool.
    pub fn workflow_graph(
        &self,
        repository: &str,
        sha: &str,
        file: &str,
    ) -> Result<Option<Vec<crate::graph::JobNode>>, RunError> {
        let repository = self.repository(repository)?;
        let Ok(text) = git::file_at(Path::new(&repository.path), sha, file) else { return Ok(None) };
        Ok(mobius_pipelines::workflow::parse(file, &text).ok().map(|w| crate::graph::nodes(&w)))
    }

    fn repository(&self, name: &str) -> Result<Repository, RunError> {
        self.inner
            .store
            .repositories()?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| RunError::UnknownRepository(name.to_owned()))
    }

    /// Brings a repository that lives on a remote (a mirror here) up to date, with the
    /// credentials it names; a clone on this machine is left as it is.
    fn fetch(&self, repository: &Repository) -> Result<(), RunError> {
        let config = &self.inner.config;
        let access = remote::access(
            config.secrets.as_ref(),
            &config.data_dir,
            &repository.name,
            repository.credentials.as_deref(),
        )?;
        git::fetch_mirror(Path::new(&repository.path), &access)?;
        Ok(())
    }

    fn poll_blocking(&self, name: &str) -> Result<Vec<i64>, RunError> {
        let repository = self.repository(name)?;
        let path = PathBuf::from(&repository.path);
        self.fetch(&repository)?;
        let now = git::heads(&path)?;
        let Some(before) = self.inner.store.repository_heads(name)? else {
            self.inner.store.set_repository_heads(name, &now)?;
            return Ok(Vec::new());
        };
        let default_branch = default_branch(&path);
        // Heads recorded before tags were tracked: the tags there are now are not new pushes.
        let tags_known = before.contains_key(git::TAGS_TRACKED);
        let mut queued = Vec::new();
        for (branch, after) in &now {
            let previous = before.get(branch);
            if previous == Some(after) || branch == git::TAGS_TRACKED {
                continue;
            }
            let tag = branch.strip_prefix("refs/tags/");
            if tag.is_some() && !tags_known {
                continue;
            }
            let push = Push {
                repository: name.to_owned(),
                branch: tag.unwrap_or(branch).to_owned(),
                tag: tag.is_some(),
                before: previous.cloned(),
                after: after.clone(),
                commits: git::landed(&path, previous.map(String::as_str), after)?,
                changed: git::changed_files(&path, previous.map(String::as_str), after)?,
                default_branch: default_branch.clone(),
            };
            let files = git::workflow_files(&path, after)?;
            let stored = self.stored_secret_names(name);
            for planned in trigger::plan(Event::Push(&push), &files, &stored) {
                queued.push(self.queue_planned(Event::Push(&push), planned)?);
            }
            // After the runs started: the first step does not wait for this append. A tag's
            // commits landed with a branch, which recorded them.
            if tag.is_none() {
                let uri = format!("file://{}", repository.path);
                self.append_events(cdevents::change_events(name, &uri, branch, &push.commits));
            }
        }
        // Recorded after the runs exist: a crash in between re-triggers (runs are cheap to
        // cancel) rather than silently dropping a push.
        self.inner.store.set_repository_heads(name, &now)?;
        if before != now {
            self.inner.pushed.notify_one();
        }
        Ok(queued)
    }

    /// The names of the secrets stored for `repository`, in any environment; none without a
    /// secret store, or when it cannot be read (the run then fails naming the secret).
    fn stored_secret_names(&self, repository: &str) -> BTreeSet<String> {
        let Some(secrets) = &self.inner.config.secrets else { return BTreeSet::new() };
        match secrets.list(Some(repository)) {
            Ok(listed) => listed.into_iter().map(|s| s.name).collect(),
            Err(error) => {
                tracing::warn!(repository, error = %error, "cannot list the repository's secrets");
                BTreeSet::new()
            }
        }
    }

    /// Stores the run `planned` for `event` and queues it, or stores it failed when its
    /// workflow is invalid.
    fn queue_planned(&self, event: Event<'_>, planned: Planned) -> Result<i64, RunError> {
        let (file, name, group, cancel_in_progress) = match &planned {
            Planned::Run { file, workflow, group, cancel_in_progress } => (
                file.clone(),
                workflow.name.clone().unwrap_or_else(|| file.clone()),
                group.clone(),
                *cancel_in_progress,
            ),
            Planned::Invalid { file, name, .. } => (file.clone(), name.clone(), None, false),
        };
        let github = event.github();
        let run = NewRun {
            repository: event.repository().to_owned(),
            workflow_file: file,
            workflow_name: name,
            event: event.name().to_owned(),
            branch: event.branch().map(str::to_owned),
            sha: event.sha().to_owned(),
            before_sha: event.before().map(str::to_owned),
            concurrency_group: group,
            cancel_in_progress,
            only_jobs: Vec::new(),
            attempt: 1,
            rerun_of: None,
            requeue_of: None,
            queued_at: self.now(),
            fork: event.fork(),
            trigger: Some(trigger_record(&github, &serde_json::Map::new())),
        };
        match planned {
            Planned::Run { .. } => self.queue(run, github, serde_json::Map::new()),
            Planned::Invalid { error, .. } => {
                let id = self.inner.store.create_run(&run)?;
                self.fail_unstarted(id, &run, &error);
                Ok(id)
            }
        }
    }

    /// Starts the run now or parks it behind its concurrency group.
    fn enqueue(&self, prepared: Prepared) {
        let mut superseded = None;
        let start = {
            let mut state = self.lock();
            match prepared.run.concurrency_group.clone() {
                None => Some(prepared),
                Some(group) => match state.group_running.get(&group).copied() {
                    None => {
                        state.group_running.insert(group, prepared.id);
                        Some(prepared)
                    }
                    Some(running) => {
                        let id = prepared.id;
                        if prepared.run.cancel_in_progress
                            && let Some(active) = state.running.get(&running)
                        {
                            let reason = format!("superseded by run {id} (cancel-in-progress)");
                            active.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(reason);
                            active.cancel.cancel();
                        }
                        if let Some(older) = state.group_pending.insert(group, id) {
                            superseded = state.waiting.remove(&older).map(|p| (p, id));
                        }
                        state.waiting.insert(id, prepared);
                        None
                    }
                },
            }
        };
        if let Some((older, by)) = superseded {
            self.end_unstarted(&older, &format!("superseded by run {by} in its concurrency group"));
        }
        if let Some(prepared) = start {
            self.start(prepared);
        }
    }
}

/// What [`NewRun::trigger`] keeps of a run's contexts.
pub(crate) fn trigger_record(github: &Value, inputs: &serde_json::Map<String, Value>) -> Value {
    serde_json::json!({ "github": github, "inputs": inputs })
}

/// The branch `HEAD` names in the registered clone: what `$default-branch` means here.
pub fn default_branch(path: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["symbolic-ref", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".to_owned())
}
