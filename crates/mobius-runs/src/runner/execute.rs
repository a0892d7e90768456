//! Running a run: its thread and runtime, the engine, the observer that stores job and step
//! states and log lines, the run's CDEvents at the end, and the bookkeeping of runs that end
//! without starting.

use super::*;

impl Runner {
    pub(super) fn start(&self, prepared: Prepared) {
        let (live, _) = broadcast::channel(logs::LIVE_BUFFER);
        let active =
            Active { cancel: CancellationSignal::new(), reason: Arc::new(Mutex::new(None)), live: live.clone() };
        let (cancel, reason) = (active.cancel.clone(), active.reason.clone());
        self.lock().running.insert(prepared.id, active);
        let this = self.clone();
        let id = prepared.id;
        let spawned = std::thread::Builder::new().name(format!("run-{id}")).spawn(move || {
            let group = prepared.run.concurrency_group.clone();
            this.execute(prepared, cancel, reason, live);
            this.finished(id, group);
        });
        if let Err(e) = spawned {
            tracing::error!(run = id, error = %e, "cannot start a thread for the run");
            self.lock().running.remove(&id);
        }
    }

    /// After a run ended: frees its group and starts the run pending in it, or claims a
    /// queued run for the slot it freed.
    pub(super) fn finished(&self, id: i64, group: Option<String>) {
        let next = {
            let mut state = self.lock();
            state.running.remove(&id);
            group.and_then(|group| {
                if state.group_running.get(&group) == Some(&id) {
                    state.group_running.remove(&group);
                }
                let next = state.group_pending.remove(&group).and_then(|next| state.waiting.remove(&next))?;
                state.group_running.insert(group, next.id);
                Some(next)
            })
        };
        match next {
            Some(next) => self.start(next),
            None => {
                self.claim_queued();
            }
        }
    }

    /// Runs one workflow run to its end on this thread.
    pub(super) fn execute(
        &self,
        p: Prepared,
        cancel: CancellationSignal,
        reason: Arc<Mutex<Option<String>>>,
        live: broadcast::Sender<RunLogLine>,
    ) {
        let store = &self.inner.store;
        let config = &self.inner.config;
        self.update(&[RunUpdate::Run { run: p.id, state: RunState::Running, at: self.now(), reason: None }]);
        // The run's scratch space (the checkout, the jobs' directories) is outside the data
        // directory, which is the server's alone: the run's user must reach its job's
        // directories, and nothing else of the server's. Removed when the run ends.
        let scratch = match scratch_dir(p.id) {
            Ok(scratch) => scratch,
            Err(e) => return self.fail_started(p.id, &p, &format!("cannot make the run's scratch directory: {e}")),
        };
        let (source, work) = (scratch.path().join("source"), scratch.path().join("work"));
        // Only jobs that check out get the sources, so a workflow without `actions/checkout`
        // does not pay for an export.
        let checks_out = p.workflow.jobs.iter().flat_map(|j| &j.steps).any(|s| {
            matches!(&s.action, StepAction::Uses { action, .. } if action.split('@').next() == Some("actions/checkout"))
        });
        if checks_out && let Err(e) = git::export(&p.repository_path, &p.run.sha, &source) {
            self.fail_started(p.id, &p, &format!("cannot check out {}: {e}", p.run.sha));
            return;
        }
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                self.fail_started(p.id, &p, &format!("cannot start the run's runtime: {e}"));
                return;
            }
        };
        let mut opts = RunOptions::new(&source, &work);
        // The export has no history: a push's range is read from the repository itself.
        opts.history = Some(p.repository_path.clone());
        opts.jobs_parallelism = config.parallelism.max(1);
        opts.event_name.clone_from(&p.run.event);
        opts.github = p.github.clone();
        opts.inputs = p.inputs.clone();
        opts.run_id = u64::try_from(p.id).unwrap_or_default();
        opts.selected_jobs.clone_from(&p.run.only_jobs);
        opts.store_dir = Some(config.data_dir.join("pipelines"));
        opts.cancel = cancel;
        opts.sandbox = config.sandbox.clone();
        opts.actions = Some(config.actions.clone());
        opts.workflow_file.clone_from(&p.run.workflow_file);
        opts.deployments = self.inner.deployments.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A pull request from a fork runs code nobody with write access reviewed: as on
        // GitHub, it sees no secrets, and here it cannot deploy either.
        if p.run.fork {
            opts.deployments = Some(Arc::new(ForkDeployments { inner: opts.deployments.take() }));
        }
        // The repository's secrets for every job, an environment's for the jobs that name it.
        if let Some(secrets) = config.secrets.as_ref().filter(|_| !p.run.fork) {
            match secrets.for_repository(&p.run.repository) {
                Ok(run) => {
                    opts.secrets = run.repository;
                    opts.environment_secrets = run.environments;
                }
                Err(e) => {
                    let why = format!("cannot open the secrets of {}: {e}", p.run.repository);
                    return self.fail_started(p.id, &p, &why);
                }
            }
        }
        match self.protection(&p) {
            Ok(gate) => opts.gate = Some(Arc::new(gate)),
            Err(e) => {
                let why = format!("cannot read the protection rules of {}'s environments: {e}", p.run.repository);
                return self.fail_started(p.id, &p, &why);
            }
        }
        // A pull request from a fork gets a read-only token, as on GitHub.
        opts.credentials = self.run_credentials(&p, p.run.fork);
        // Jobs whose `runs-on` routes them to agents go to the queue, with the workflow's text
        // (the agent parses it again) and the checkout packed for the jobs that check out.
        let agents = self.inner.agents.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(agents) = agents {
            match git::file_at(&p.repository_path, &p.run.sha, &p.run.workflow_file) {
                Ok(text) => {
                    let branch = super::default_branch(&p.repository_path);
                    opts.workflow_text = Some(mobius_pipelines::workflow::with_default_branch(&text, &branch));
                    opts.dispatch = Some(agents.for_run(p.id, checks_out.then(|| source.clone())));
                }
                Err(e) => tracing::warn!(run = p.id, error = %e, "cannot read the workflow again: its jobs run here"),
            }
        }

        let (updates, received) = mpsc::channel::<Write>();
        let writer = {
            let (store, log, wake) = (store.clone(), self.inner.ingestor.clone(), self.inner.status_wake.clone());
            std::thread::Builder::new()
                .name(format!("run-{}-state", p.id))
                .spawn(move || write_updates(&*store, &log, &wake, received))
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => return self.fail_started(p.id, &p, &format!("cannot start the run's state writer: {e}")),
        };
        let job_events = updates.clone();
        let mut sink = Progress {
            run: p.id,
            updates,
            log: LogWriter::create(&logs::path(&config.data_dir, p.id), live),
            steps: HashMap::new(),
        };
        let report;
        let uploaded;
        let started = self.now();
        let events = {
            // A job's events reach the writer before its end does (the recorder hands them over
            // first), so the job is stored as finished only once they are in the log.
            let hand_over = Box::new(move |events| {
                if job_events.send(Write::Events(events)).is_err() {
                    tracing::error!(run = p.id, "the run's state writer is gone: a job's events are lost");
                }
            });
            let mut recorder =
                Recorder::new(&mut sink, &p.workflow, identity(&p)).queued_at(p.run.queued_at).job_events_to(hand_over);
            report = runtime.block_on(engine::run(&p.workflow, opts, &mut recorder));
            uploaded = recorder.uploaded();
            recorder.finish(report.result)
        };
        drop(sink);
        if writer.join().is_err() {
            tracing::error!(run = p.id, "the run's state writer panicked");
        }
        let state = run_state(report.result);
        let failed: Vec<&str> =
            report.jobs.iter().filter(|j| j.result == Status::Failure).map(|j| j.name.as_str()).collect();
        let why = reason.lock().unwrap_or_else(|e| e.into_inner()).clone().or_else(|| {
            (state == RunState::Failure && !failed.is_empty()).then(|| format!("failed jobs: {}", failed.join(", ")))
        });
        // Provenance and the run's own events first: once it reads as finished, everything it
        // caused is stored (a deploy reading its artifact right then finds both).
        if !p.run.fork {
            let build = mobius_audit::BuildInfo {
                repository: identity(&p).uri.trim_end_matches(&format!("/{}", p.run.workflow_file)).to_owned(),
                commit: p.run.sha.clone(),
                workflow_file: p.run.workflow_file.clone(),
                run_id: p.id.to_string(),
                run_attempt: p.run.attempt,
                started,
                finished: self.now(),
                builder_id: crate::provenance::BUILDER_ID.to_owned(),
            };
            crate::provenance::record(store.as_ref(), &build, &uploaded);
            if let Some(scanned) = crate::scans::of_run(&report) {
                crate::scans::record(store.as_ref(), &scanned, &uploaded);
            }
        }
        self.append_events(events);
        self.update(&[RunUpdate::Run { run: p.id, state, at: self.now(), reason: why }]);
        // The log stays (in the data directory); the scratch space goes.
        let path = scratch.path().to_owned();
        if let Err(e) = scratch.close() {
            tracing::warn!(run = p.id, dir = %path.display(), error = %e, "cannot clean up after a run");
        }
    }

    /// The gate of the run's jobs: its repository's protection rules as they are now.
    fn protection(&self, p: &Prepared) -> Result<ProtectionGate, StoreError> {
        let rules = self.inner.store.environments(Some(&p.run.repository))?;
        let git_ref = p.github.get("ref").and_then(Value::as_str).map_or_else(
            || p.run.branch.as_ref().map_or_else(|| p.run.sha.clone(), |b| format!("refs/heads/{b}")),
            str::to_owned,
        );
        Ok(ProtectionGate {
            run: p.id,
            repository: p.run.repository.clone(),
            git_ref,
            rules: rules.into_iter().map(|r| (r.name.clone(), r)).collect(),
            reviews: self.inner.reviews.clone(),
        })
    }

    /// What issues the run's jobs their `MOBIUS_TOKEN`; `None` when nothing does (an
    /// application without tokens, as in some tests).
    fn run_credentials(&self, p: &Prepared, read_only: bool) -> Option<Arc<dyn JobCredentials>> {
        let tokens = self.inner.run_tokens.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let server = self.inner.server_url.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let credentials = RunCredentials { tokens, repository: p.run.repository.clone(), run: p.id, server, read_only };
        Some(Arc::new(credentials))
    }

    /// A queued run that never started ends cancelled, with its events.
    pub(super) fn end_unstarted(&self, p: &Prepared, reason: &str) {
        self.append_events(cdevents::never_started(&identity(p), p.run.queued_at, Outcome::Cancel, reason));
        let at = self.now();
        self.update(&[RunUpdate::Run { run: p.id, state: RunState::Cancelled, at, reason: Some(reason.to_owned()) }]);
    }

    /// A run that cannot start at all (its workflow file is invalid at that commit).
    pub(super) fn fail_unstarted(&self, id: i64, run: &NewRun, error: &str) {
        let at = self.now();
        self.update(&[RunUpdate::Run { run: id, state: RunState::Failure, at, reason: Some(error.to_owned()) }]);
        tracing::info!(run = id, workflow = %run.workflow_file, error, "workflow invalid at this commit");
    }

    pub(super) fn fail_started(&self, id: i64, p: &Prepared, error: &str) {
        tracing::warn!(run = id, error, "run failed before its jobs");
        self.append_events(cdevents::never_started(&identity(p), p.run.queued_at, Outcome::Error, error));
        let at = self.now();
        self.update(&[RunUpdate::Run { run: id, state: RunState::Failure, at, reason: Some(error.to_owned()) }]);
    }

    pub(super) fn update(&self, updates: &[RunUpdate]) {
        match self.inner.store.update_runs(updates) {
            Ok(()) => self.inner.status_wake.notify_one(),
            Err(e) => tracing::error!(error = %e, "cannot record a run's state"),
        }
    }

    /// Appends events built here (durably: this returns once they are in the log). They are
    /// Mobius's own: one that does not build is a bug, logged.
    pub(super) fn append_events(&self, events: Result<Vec<NewEvent>, EmitError>) {
        match events {
            Ok(events) if events.is_empty() => {}
            Ok(events) => {
                if let Err(e) = self.inner.ingestor.append(&events) {
                    tracing::error!(error = %e, "cannot append a run's events");
                }
            }
            Err(e) => tracing::error!(error = %e, "a run produced an invalid event"),
        }
    }
}

/// `$TMPDIR/mobius-run-<id>-…`, 0711: its owner's alone, but a run's user may pass through
/// it to the job directories handed to it.
/// The deployments of a fork's pull request run: every deploy refused; policy checks, which
/// write nothing, answered as usual.
#[derive(Debug)]
struct ForkDeployments {
    inner: Option<Arc<dyn Deployments>>,
}

/// Why a fork's run cannot deploy.
pub(super) const FORK_CANNOT_DEPLOY: &str = "a pull request from a fork cannot deploy: its code is not in the repository until someone with write access merges it";

impl Deployments for ForkDeployments {
    fn deploy(&self, _: engine::DeployStep, _: engine::DeployProgress) -> engine::DeployFuture {
        Box::pin(async { Err(engine::DeployError::Refused { server: None, source: FORK_CANNOT_DEPLOY.into() }) })
    }

    fn check_policy(&self, request: engine::PolicyStep) -> engine::PolicyFuture {
        match &self.inner {
            Some(inner) => inner.check_policy(request),
            None => Box::pin(async { Err(engine::PolicyError::Refused { message: engine::NO_SERVER.to_owned() }) }),
        }
    }
}

fn scratch_dir(id: i64) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::Builder::new().prefix(&format!("mobius-run-{id}-")).tempdir()?;
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o711))?;
    Ok(scratch)
}

fn identity(p: &Prepared) -> RunIdentity {
    RunIdentity {
        repository: p.run.repository.clone(),
        file: p.run.workflow_file.clone(),
        pipeline_name: p.run.workflow_name.clone(),
        run_id: u64::try_from(p.id).unwrap_or_default(),
        uri: format!("file://{}/{}", p.repository_path.display(), p.run.workflow_file),
        sha: Some(p.run.sha.clone()),
        branch: p.run.branch.clone(),
        source: format!("/mobius/server/{}", p.run.repository),
    }
}
