//! The run queue in the store (issue 14, item 3): a planned run is stored `queued` with no
//! driver, and any process sharing the store with a free run slot ([`RunnerConfig::runs`])
//! claims it ([`Store::claim_run`]: `FOR UPDATE SKIP LOCKED` on PostgreSQL, one `IMMEDIATE`
//! transaction on SQLite), becomes its driver, and rebuilds from the store and its own copy
//! of the repository what starting it needs: the workflow file at the run's commit, and the
//! `github` and `inputs` contexts the run's trigger kept. A replica whose mirror does not
//! have the commit yet fetches it first; a commit still missing after the fetch fails the run,
//! saying so (leaving it for another replica could leave it queued forever).
//!
//! The process that plans a run claims it as it stores it when it has room (one transaction,
//! so no other replica races it for its own run). Claims happen too whenever one of a
//! process's runs ends (a slot frees), when another replica's `NOTIFY` on [`mobius_store::RUNS_CHANNEL`] says one was
//! queued, and every [`CLAIM_EVERY`] as the fallback ([`Runner::claim_forever`]).

use super::*;

/// How often a process looks for queued runs when nothing woke it.
pub const CLAIM_EVERY: Duration = Duration::from_secs(1);

impl Runner {
    /// Claims queued runs while this process has a free run slot, and starts (or parks
    /// behind their concurrency group) each one (blocking). Returns how many it claimed.
    pub fn claim_queued(&self) -> usize {
        let _one_at_a_time = self.inner.claiming.lock().unwrap_or_else(|e| e.into_inner());
        let driver = self.driver_record();
        let mut claimed = 0;
        while self.has_room() {
            let id = match self.inner.store.claim_run(&driver, None) {
                Ok(Some(id)) => id,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a queued run");
                    break;
                }
            };
            claimed += 1;
            self.start_claimed(id);
        }
        claimed
    }

    fn has_room(&self) -> bool {
        self.lock().running.len() < self.inner.config.runs.max(1)
    }

    /// Starts run `id`, just claimed (or parks it behind its concurrency group).
    fn start_claimed(&self, id: i64) {
        match self.prepare(id) {
            Ok(prepared) => self.enqueue(prepared),
            Err(Unstartable::Store(e)) => tracing::error!(run = id, error = %e, "cannot read a claimed run"),
            Err(Unstartable::Invalid { run, error }) => self.fail_unstarted(id, &run, &error),
        }
    }

    /// Claims queued runs now and whenever woken — a run queued here or, on PostgreSQL, by
    /// another replica, or a slot freed — or every [`CLAIM_EVERY`], until `shutdown`. Every
    /// replica runs it.
    pub async fn claim_forever(self, shutdown: impl Future<Output = ()>) {
        let weak = Arc::downgrade(&self.inner);
        let wake: mobius_store::Listener = Box::new(move |_: &str| {
            let Some(inner) = weak.upgrade() else { return false };
            inner.queued.notify_one();
            true
        });
        let store = self.inner.store.clone();
        match mobius_log::blocking::spawn(move || store.listen(mobius_store::RUNS_CHANNEL, wake)).await {
            Ok(true) => tracing::debug!("listening for runs queued by other replicas"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot listen for queued runs; polling only"),
        }
        tokio::pin!(shutdown);
        loop {
            let this = self.clone();
            mobius_log::blocking::spawn(move || this.claim_queued()).await;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.queued.notified() => {}
                _ = tokio::time::sleep(CLAIM_EVERY) => {}
            }
        }
    }

    /// Stores `run` queued (its `trigger` holds the contexts it starts with), claimed by this
    /// process in the same transaction when it has room (and no other replica drives its
    /// concurrency group), and starts it then (blocking); its id.
    pub(super) fn store_queued(&self, run: &NewRun) -> Result<i64, RunError> {
        let _one_at_a_time = self.inner.claiming.lock().unwrap_or_else(|e| e.into_inner());
        if !self.has_room() {
            return Ok(self.inner.store.create_run(run)?);
        }
        let (id, claimed) = self.inner.store.queue_run(run, &self.driver_record())?;
        if claimed {
            self.start_claimed(id);
        }
        Ok(id)
    }

    /// Ends run `id`, queued and driven by nobody, before it started (blocking): claimed for
    /// that, so no replica starts it meanwhile. `false` when it is not such a run.
    pub(super) fn cancel_unclaimed(&self, id: i64, reason: &str) -> Result<bool, RunError> {
        if self.inner.store.claim_run(&self.driver_record(), Some(id))?.is_none() {
            return Ok(false);
        }
        match self.prepare(id) {
            Ok(prepared) => self.end_unstarted(&prepared, reason),
            Err(_) => {
                let at = self.now();
                let reason = Some(reason.to_owned());
                self.update(&[RunUpdate::Run { run: id, state: RunState::Cancelled, at, reason }]);
            }
        }
        Ok(true)
    }

    /// What this process claims runs as: its driver record, or nothing when it names none.
    fn driver_record(&self) -> String {
        let driver = self.inner.driver.lock().unwrap_or_else(|e| e.into_inner());
        driver.as_ref().map(Driver::record).unwrap_or_default()
    }

    /// Everything starting stored run `id` needs, from the store and this process's copy of
    /// its repository (fetched when it does not have the commit).
    fn prepare(&self, id: i64) -> Result<Prepared, Unstartable> {
        let detail = self.inner.store.run(id).map_err(Unstartable::Store)?;
        let Some(detail) = detail else {
            return Err(Unstartable::Store(StoreError::Corrupt(format!("claimed run {id} is gone"))));
        };
        let run = detail.record.run;
        let invalid = |run: &NewRun, error: String| Unstartable::Invalid { run: Box::new(run.clone()), error };
        let repository = match self.repository(&run.repository) {
            Ok(repository) => repository,
            Err(e) => return Err(invalid(&run, e.to_string())),
        };
        let path = PathBuf::from(&repository.path);
        if !matches!(git::resolve(&path, &run.sha), Ok(Some(_))) {
            if let Err(e) = self.fetch(&repository) {
                tracing::warn!(run = id, repository = %run.repository, error = %e, "cannot fetch a queued run's commit");
            }
            if !matches!(git::resolve(&path, &run.sha), Ok(Some(_))) {
                let error = format!("{} does not have commit {} here, even after a fetch", run.repository, run.sha);
                return Err(invalid(&run, error));
            }
        }
        let rebuilt = (|| -> Result<(Value, serde_json::Map<String, Value>, Workflow), String> {
            let default_branch = default_branch(&path);
            // The contexts the run was planned with; runs stored before they were kept get a
            // push's, rebuilt from git.
            let kept = |key: &str| run.trigger.as_ref().and_then(|t| t.get(key)).cloned();
            let github = match kept("github") {
                Some(github) => github,
                None => trigger::github_context(&Push {
                    repository: run.repository.clone(),
                    branch: run.branch.clone().unwrap_or_default(),
                    tag: false,
                    before: run.before_sha.clone(),
                    after: run.sha.clone(),
                    commits: git::landed(&path, run.before_sha.as_deref(), &run.sha).map_err(|e| e.to_string())?,
                    changed: Vec::new(),
                    default_branch: default_branch.clone(),
                }),
            };
            let inputs = match kept("inputs") {
                Some(Value::Object(inputs)) => inputs,
                _ => serde_json::Map::new(),
            };
            let text = git::file_at(&path, &run.sha, &run.workflow_file)
                .map_err(|_| format!("{} is no longer at {}", run.workflow_file, run.sha))?;
            let text = mobius_pipelines::workflow::with_default_branch(&text, &default_branch);
            let workflow = mobius_pipelines::workflow::parse(&run.workflow_file, &text)
                .map_err(|d| d.first().map_or_else(|| "invalid workflow".to_owned(), ToString::to_string))?;
            Ok((github, inputs, workflow))
        })();
        match rebuilt {
            Ok((github, inputs, workflow)) => Ok(Prepared { id, run, workflow, repository_path: path, github, inputs }),
            Err(error) => Err(invalid(&run, error)),
        }
    }
}

/// Why a claimed run cannot start.
enum Unstartable {
    /// Its workflow, repository or commit is not to be had: the run fails, saying why.
    Invalid { run: Box<NewRun>, error: String },
    /// The store failed: logged (the run stays claimed, and the orphan sweep ends it if this
    /// process dies).
    Store(StoreError),
}
