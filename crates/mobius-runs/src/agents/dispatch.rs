//! The dispatcher of one run: it puts a routed job's files into a transfer in the store,
//! queues the job and follows it there to its end, handing the agent's progress to the run's
//! observer and what the job made to the run's artifact store (see the parent module).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mobius_pipelines::engine::history;
use mobius_pipelines::engine::{BoxFuture, JobDispatch, JobReport, RemoteJob, RemoteProgress};
use mobius_pipelines::exec::{CancellationSignal, LogLine, Stream};
use mobius_pipelines::store_sync::{self, Received, Record, RecordScope};
use mobius_store::transfers::{MADE, SOURCE};
use mobius_store::{AgentJob, AgentJobState, NewAgentJob, Store};
use tokio::sync::Notify;

use super::{AGENT_LOST, Agents, FOLLOW_EVERY, HISTORY, Progress, READ_CHUNK, Sealed, purpose};

/// One run's [`JobDispatch`]: queues the job and follows it to its end.
#[derive(Debug)]
pub(super) struct RunDispatch {
    pub(super) agents: Agents,
    pub(super) run: i64,
    pub(super) source: Option<PathBuf>,
}

impl JobDispatch for RunDispatch {
    fn routes(&self, labels: &[String]) -> bool {
        self.agents.inner.config.routes(labels)
    }

    fn run(&self, job: RemoteJob, progress: RemoteProgress, cancel: CancellationSignal) -> BoxFuture<JobReport> {
        let (agents, run, source) = (self.agents.clone(), self.run, self.source.clone());
        Box::pin(async move {
            match follow(&agents, run, source, job, &progress, cancel).await {
                Ok(report) => report,
                Err(why) => progress.failed(&why),
            }
        })
    }
}

fn runner_line(text: &str) -> LogLine {
    LogLine { at: SystemTime::now(), stream: Stream::Stderr, text: text.to_owned() }
}

/// Queues `job` and follows it in the store until it ends: its progress handed to the run's
/// observer, cancel passed on, a lapsed lease made "agent lost". Its transfer is released
/// however it ends.
async fn follow(
    agents: &Agents,
    run: i64,
    source: Option<PathBuf>,
    job: RemoteJob,
    progress: &RemoteProgress,
    cancel: CancellationSignal,
) -> Result<JobReport, String> {
    let transfer = format!("{}{}", super::transfer_prefix(run), uuid::Uuid::new_v4().simple());
    let followed = queue_and_follow(agents, run, source, job, &transfer, progress, cancel).await;
    let released = transfer.clone();
    if let Err(e) = agents.store(move |s| s.release_transfer(&released)).await {
        tracing::warn!(run, transfer, error = %e, "cannot release an agent job's files");
    }
    followed
}

async fn queue_and_follow(
    agents: &Agents,
    run: i64,
    source: Option<PathBuf>,
    job: RemoteJob,
    transfer: &str,
    progress: &RemoteProgress,
    cancel: CancellationSignal,
) -> Result<JobReport, String> {
    let secrets = agents.inner.secrets.as_ref().ok_or("agents need the server's secret key (MOBIUS_SECRET_KEY)")?;
    let scope = RecordScope::of(&job);
    let (store, files, name) = (agents.inner.store.clone(), agents.inner.files.clone(), transfer.to_owned());
    let scope_read = scope.clone();
    let history = job.history.clone().map(|repo| (repo, job.github.clone()));
    let (has_source, has_history, records) =
        mobius_log::blocking::spawn(move || put_files(store.as_ref(), &files, &name, source, history, &scope_read))
            .await
            .map_err(|e| format!("cannot hand the job's files to the store: {e}"))?;
    let sealed = Sealed { job, transfer: transfer.to_owned(), source: has_source, history: has_history, records };
    let plain = serde_json::to_vec(&sealed).map_err(|e| format!("cannot encode the job: {e}"))?;
    let job = sealed.job;
    let new = NewAgentJob {
        run,
        job: job.name.clone(),
        labels: job.labels.clone(),
        payload: secrets.seal_document(&purpose(run, &job.name), &plain),
        queued: agents.now(),
    };
    let id =
        agents.store(move |s| s.enqueue_agent_job(&new)).await.map_err(|e| format!("cannot queue the job: {e}"))?;
    agents.inner.queued.notify_waiters();
    let labels = job.labels.join(", ");
    progress
        .log("Set up job", runner_line(&format!("Waiting for an agent with the labels [{labels}] (agent job {id})")));
    let report =
        Follower { agents, id, progress, offset: 0, partial: Vec::new(), announced: false }.until_ended(cancel).await?;
    let (store, files, name) = (agents.inner.store.clone(), agents.inner.files.clone(), transfer.to_owned());
    mobius_log::blocking::spawn(move || take_made(store.as_ref(), &files, &name, &scope))
        .await
        .map_err(|e| format!("cannot store what the job on the agent made: {e}"))?;
    Ok(report)
}

/// Puts the job's files into its transfer: the workspace packed (when the run has one) and the
/// blobs of the records the job may read, and the objects of the push range it scans (when it
/// has one and reads it). Whether there is a workspace, whether there is history, and those
/// records.
fn put_files(
    store: &dyn Store,
    files: &std::path::Path,
    transfer: &str,
    source: Option<PathBuf>,
    history: Option<(PathBuf, serde_json::Value)>,
    scope: &RecordScope,
) -> Result<(bool, bool, Vec<Record>), String> {
    let has_source = match source.filter(|dir| dir.is_dir()) {
        Some(dir) => {
            let packed = pack(&dir).map_err(|e| format!("cannot pack the workspace: {e}"))?;
            store
                .put_transfer_file(transfer, SOURCE, &store_sync::digest_of(&packed), &packed)
                .map_err(|e| e.to_string())?;
            true
        }
        None => false,
    };
    let has_history = match history {
        Some((repo, github)) => match history::pack_range(&repo, &github)
            .map_err(|e| format!("cannot pack the push range's history: {}", mobius_pipelines::chain::Chain(&e)))?
        {
            Some(pack) => {
                store
                    .put_transfer_file(transfer, HISTORY, &store_sync::digest_of(&pack), &pack)
                    .map_err(|e| e.to_string())?;
                true
            }
            None => false,
        },
        None => false,
    };
    let records = store_sync::list_records(files, scope).map_err(|e| e.to_string())?;
    let digests: Vec<String> = store_sync::referenced_blobs(&records).map_err(|e| e.to_string())?.into_iter().collect();
    if digests.is_empty() {
        return Ok((has_source, has_history, records));
    }
    for digest in store.hold_transfer_blobs(transfer, &digests).map_err(|e| e.to_string())? {
        let bytes = store_sync::read_blob(files, &digest).map_err(|e| e.to_string())?;
        store.put_transfer_file(transfer, &digest, &digest, &bytes).map_err(|e| e.to_string())?;
    }
    Ok((has_source, has_history, records))
}

/// Writes what the job made (the records it left in its transfer, checked again, after their
/// blobs) into the run's artifact store.
fn take_made(store: &dyn Store, files: &std::path::Path, transfer: &str, scope: &RecordScope) -> Result<(), String> {
    let Some(json) = store.transfer_file(transfer, MADE).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let records: Vec<Record> = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    let named = store_sync::check_records(scope, Received::FromAgent, &records).map_err(|e| e.to_string())?;
    let digests: Vec<&String> = named.iter().map(|(_, digest)| digest).collect();
    for digest in store_sync::missing_blobs(files, digests).map_err(|e| e.to_string())? {
        let bytes = store
            .transfer_file(transfer, &digest)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("blob {digest} is not in the job's transfer"))?;
        store_sync::write_blob(files, &digest, &bytes).map_err(|e| e.to_string())?;
    }
    store_sync::write_records(files, scope, Received::FromAgent, &records).map_err(|e| e.to_string())
}

/// Takes a job's bell down when its dispatcher stops following it.
struct Unwatch<'a>(&'a Agents, i64);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.inner.watched.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

struct Follower<'a> {
    agents: &'a Agents,
    id: i64,
    progress: &'a RemoteProgress,
    /// How much of the log was handed on.
    offset: u64,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// Whether "running on agent X" was said.
    announced: bool,
}

impl Follower<'_> {
    async fn until_ended(mut self, cancel: CancellationSignal) -> Result<JobReport, String> {
        let id = self.id;
        let mut cancel_sent = false;
        let bell = Arc::new(Notify::new());
        self.agents.inner.watched.lock().unwrap_or_else(|e| e.into_inner()).insert(id, bell.clone());
        let _unwatch = Unwatch(self.agents, id);
        loop {
            // A ring between two looks is kept (a permit) for the next wait.
            let changed = bell.notified();
            let job = self
                .agents
                .store(move |s| s.agent_job(id))
                .await
                .map_err(|e| format!("cannot read agent job {id}: {e}"))?
                .ok_or_else(|| format!("agent job {id} is gone from the store"))?;
            self.read_log(job.log_len).await?;
            if let (false, Some(agent)) = (self.announced, &job.agent) {
                self.announced = true;
                self.progress.log("Set up job", runner_line(&format!("Running on agent {agent}")));
            }
            match job.state {
                AgentJobState::Finished => return self.report(&job),
                AgentJobState::Lost => {
                    return Ok(self.progress.failed(job.reason.as_deref().unwrap_or(AGENT_LOST)));
                }
                AgentJobState::Cancelled => {
                    return Ok(self
                        .progress
                        .cancelled(job.reason.as_deref().unwrap_or("cancelled before an agent took it")));
                }
                AgentJobState::Running if job.lease_expires.is_some_and(|t| t < self.agents.now()) => {
                    let now = self.agents.now();
                    self.agents
                        .store(move |s| s.expire_agent_jobs(now, AGENT_LOST))
                        .await
                        .map_err(|e| format!("cannot fail the lost agent job {id}: {e}"))?;
                    continue;
                }
                AgentJobState::Queued | AgentJobState::Running => {}
            }
            if cancel.is_cancelled() && !cancel_sent {
                cancel_sent = true;
                let at = self.agents.now();
                self.agents
                    .store(move |s| s.cancel_agent_job(id, "the run was cancelled", at))
                    .await
                    .map_err(|e| format!("cannot cancel agent job {id}: {e}"))?;
                continue;
            }
            tokio::select! {
                () = changed => {}
                () = cancel.cancelled(), if !cancel_sent => {}
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
        }
    }

    /// Hands on the whole lines of the log up to `length`.
    async fn read_log(&mut self, length: u64) -> Result<(), String> {
        while self.offset < length {
            let (id, from) = (self.id, self.offset);
            let chunk = self
                .agents
                .store(move |s| s.agent_log(id, from, READ_CHUNK))
                .await
                .map_err(|e| format!("cannot read agent job {id}'s log: {e}"))?;
            if chunk.is_empty() {
                break;
            }
            self.offset += chunk.len() as u64;
            self.partial.extend_from_slice(&chunk);
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                self.hand_on(&line[..end]);
            }
        }
        Ok(())
    }

    fn hand_on(&self, line: &[u8]) {
        match serde_json::from_slice::<Progress>(line) {
            Ok(Progress::StepStarted { step }) => self.progress.step_started(&step),
            Ok(Progress::Log { step, at_ms, stderr, text }) => {
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms);
                let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
                self.progress.log(&step, LogLine { at, stream, text });
            }
            Ok(Progress::StepFinished { step }) => self.progress.step_finished(step),
            Err(e) => tracing::warn!(job = self.id, error = %e, "an agent sent a progress line that does not parse"),
        }
    }

    fn report(&self, job: &AgentJob) -> Result<JobReport, String> {
        let result = job.result.as_deref().unwrap_or("{}");
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(result)
            && let Some(error) = map.get("error").and_then(|e| e.as_str())
        {
            return Err(error.to_owned());
        }
        let mut report: JobReport =
            serde_json::from_str(result).map_err(|e| format!("agent job {}'s report does not parse: {e}", job.id))?;
        // The name is the server's: an agent cannot report another job.
        report.name.clone_from(&job.job);
        Ok(report)
    }
}

/// The workspace as a tar, by the release archive's rules.
fn pack(dir: &std::path::Path) -> Result<Vec<u8>, mobius_pipelines::archive::ArchiveError> {
    let mut packed = Vec::new();
    mobius_pipelines::archive::pack(dir, &mut packed)?;
    Ok(packed)
}
