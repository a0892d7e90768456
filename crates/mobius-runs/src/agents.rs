//! Jobs on agents: the server's half of `mobius agent`.
//!
//! A run's engine asks [`RunDispatch`] (its `JobDispatch` port) to run a job instance whose
//! `runs-on` labels route to agents ([`AgentsConfig::routes`]): the job — its workflow, contexts,
//! that job's secrets and job token, sealed with the server's key — goes into the store's queue,
//! and the dispatcher follows it there until it ends, handing the run's observer what the agent
//! reports. The agent's calls ([`Agents::request`], which claims up to the agent's free slots
//! at once, [`Agents::renew`], [`Agents::append_log`], [`Agents::finish_with_log`], which ends a
//! job with its log's last chunk, [`Agents::source`], [`Agents::history`]) may reach any replica: the queue, the lease and the
//! log are in the store; a replica's own calls wake its dispatchers at once, others are seen
//! within [`FOLLOW_EVERY`]. So are the files the job reads and makes: its workspace tar and
//! the blobs of the artifacts and caches it may read go into the store's transfer for the job
//! before it is queued, what it uploads lands there too, and the dispatcher copies that into
//! the run's artifact store when the job ends (see `mobius_store::transfers`).
//!
//! What the agent sends as its "log" is the job's whole progress, NDJSON lines of
//! [`Progress`], appended at byte offsets so a chunk sent again after a network blip is taken
//! once and a gap is refused with the offset to resend from (409).
//!
//! A job whose agent stops renewing fails once its lease lapses, saying [`AGENT_LOST`]; it is
//! never queued again silently (GitHub's and Buildkite's semantics: a re-run is explicit). A
//! revoked agent token fails its jobs at once ([`Agents::token_revoked`]).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use mobius_pipelines::engine::{JobDispatch, JobReport, RemoteJob, StepReport};
use mobius_pipelines::exec::{LogLine, Stream};
use mobius_pipelines::store_sync::{Record, SyncError};
use mobius_store::{AgentJob, AgentJobState, AgentRecord, LogAppend, Renewal, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

mod dispatch;
mod files;

use dispatch::RunDispatch;

/// Why a job failed when its agent stopped renewing its lease.
pub const AGENT_LOST: &str = "agent lost: it stopped renewing the job's lease";

/// Why a job failed when its agent's token was revoked.
pub const TOKEN_REVOKED: &str = "agent lost: its token was revoked";

/// How often a dispatcher looks at its job in the store when nothing in this process woke it
/// (the agent reached another replica).
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// The channel PostgreSQL announces the queue's changes on (`mobius_store`'s PostgreSQL
/// backend sends `queued`, `job:<id>` and `jobs`).
const AGENT_JOBS_CHANNEL: &str = "mobius_agent_jobs";

/// How often a long poll looks for a job queued by another replica.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// An agent's last contact is written at most this often (a poll or renewal in between is
/// not a write).
const CONTACT_EVERY: Duration = Duration::from_secs(5);

/// At most this much of a job's progress is read from the store at once.
const READ_CHUNK: u64 = 1 << 20;

/// At most this many jobs in one claim (an agent asks for its free slots).
pub const MAX_CLAIM: usize = 32;

/// The name of a job's push-range history in its transfer (see [`Agents::history`]).
const HISTORY: &str = "history";

/// At most this much progress per job (64 MiB): an agent past it is answered 413.
pub const MAX_JOB_LOG: u64 = 64 << 20;

/// How the transfers of a run's agent jobs are named: `run-<id>-<random>`, so that those a
/// dead replica left are found by run (see `runner/orphans.rs`).
pub fn transfer_prefix(run: i64) -> String {
    format!("run-{run}-")
}

/// The run a transfer named by [`transfer_prefix`] belongs to.
pub fn transfer_run(transfer: &str) -> Option<i64> {
    transfer.strip_prefix("run-")?.split_once('-')?.0.parse().ok()
}

/// The purpose a job's payload is sealed for.
fn purpose(run: i64, job: &str) -> String {
    format!("agent job of run {run}: {job}")
}

/// How jobs go to agents.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// How long an agent holds a job without renewing (60 s; GitHub's runners renew every
    /// minute or so, Buildkite's every few seconds).
    pub lease: Duration,
    /// How often an agent is told to renew (a third of the lease).
    pub renew: Duration,
    /// The longest a request for a job waits before answering "none" (≤ 50 s, as GitHub's and
    /// GitLab's runners poll).
    pub max_wait: Duration,
    /// The labels the server's own executor serves; `None`: any label but `self-hosted`.
    /// A job whose labels include `self-hosted`, or one not among these, goes to agents.
    pub local_labels: Option<BTreeSet<String>>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            lease: Duration::from_secs(60),
            renew: Duration::from_secs(20),
            max_wait: Duration::from_secs(50),
            local_labels: None,
        }
    }
}

impl AgentsConfig {
    /// Whether a job with these (lowercase) labels runs on an agent.
    pub fn routes(&self, labels: &[String]) -> bool {
        if labels.iter().any(|l| l == "self-hosted") {
            return true;
        }
        match &self.local_labels {
            None => false,
            Some(local) => labels.iter().any(|l| !local.contains(l)),
        }
    }
}

/// What an agent says about itself with each request and renewal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Unique per agent process (its name and a random suffix).
    pub id: String,
    pub name: String,
    pub labels: Vec<String>,
}

/// What a job's payload holds, sealed: the job, and where its files are.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    job: RemoteJob,
    /// The job's transfer in the store (see `mobius_store::transfers`).
    transfer: String,
    /// Whether the transfer has the job's workspace.
    source: bool,
    /// Whether the transfer has the objects of the push range the job scans (`history`).
    #[serde(default)]
    history: bool,
    /// The artifact and cache records the job may read; the transfer has their blobs.
    records: Vec<Record>,
}

/// A job handed to an agent.
#[derive(Debug, Clone, Serialize)]
pub struct Claimed {
    pub id: i64,
    pub run: i64,
    pub job: RemoteJob,
    /// Whether `GET …/source` has the job's workspace (jobs that check out).
    pub source: bool,
    /// Whether `GET …/history` has the objects of the push range the job scans (jobs that
    /// use `mobius/secret-scan` on a push).
    pub history: bool,
    /// The artifact and cache records the job may read, as `GET …/records` gives them (so a
    /// job needs no call for them).
    pub records: Vec<Record>,
    pub lease_seconds: u64,
    pub renew_seconds: u64,
}

/// One line of a job's progress, as the agent sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Progress {
    StepStarted { step: String },
    Log { step: String, at_ms: u64, stderr: bool, text: String },
    StepFinished { step: StepReport },
}

impl Progress {
    pub fn log(step: &str, line: &LogLine) -> Progress {
        let at_ms = line.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Progress::Log { step: step.to_owned(), at_ms, stderr: line.stream == Stream::Stderr, text: line.text.clone() }
    }
}

/// An agent as `GET /api/v1/agents` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub labels: Vec<String>,
    pub last_contact: Timestamp,
    pub first_contact: Timestamp,
    /// The job it runs now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<AgentJobView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentJobView {
    pub id: i64,
    pub run: i64,
    pub job: String,
}

/// Why an agent's call was refused.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("job {0} is not running under this agent")]
    NotHeld(i64),
    #[error("job {id}: this chunk starts past the end of the log; resend from offset {expected}")]
    Gap { id: i64, expected: u64 },
    #[error("job {0}'s log would exceed {MAX_JOB_LOG} bytes")]
    LogTooLarge(i64),
    #[error("the agent's id, name and labels must be non-empty words of at most 100 characters")]
    BadHello,
    #[error("the report is not a job report: {0}")]
    BadReport(String),
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// A record or blob the agent sent or asked for that is refused (out of the job's scope,
    /// a digest that does not match, a record before its blobs).
    #[error(transparent)]
    Sync(SyncError),
    /// The server's own files failed.
    #[error("the server's artifact store failed")]
    Files(#[source] SyncError),
    /// The job's payload does not open here (another key).
    #[error("{0}")]
    Payload(String),
    #[error("job {0} has no blob {1} in its scope")]
    NoBlob(i64, String),
}

impl From<SyncError> for AgentError {
    fn from(error: SyncError) -> AgentError {
        match error {
            SyncError::Io { .. } => AgentError::Files(error),
            refused => AgentError::Sync(refused),
        }
    }
}

/// The server's side of agents. Cheap to clone.
#[derive(Clone)]
pub struct Agents {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn Store>,
    clock: mobius_log::Clock,
    secrets: Option<mobius_secrets::Secrets>,
    config: AgentsConfig,
    /// Told when this process queues a job: long polls look at once.
    queued: Notify,
    /// Each followed job's bell, rung when an agent's call changed it here: its dispatcher
    /// looks at once (one bell per job, so a call wakes one dispatcher, not all).
    watched: Mutex<HashMap<i64, Arc<Notify>>>,
    /// When each agent's contact was last recorded here: at most every [`CONTACT_EVERY`].
    contacts: Mutex<HashMap<String, tokio::time::Instant>>,
    /// The server's artifact and cache store (`<data>/pipelines`).
    files: PathBuf,
}

impl Agents {
    pub fn new(
        store: Arc<dyn Store>,
        clock: mobius_log::Clock,
        secrets: Option<mobius_secrets::Secrets>,
        config: AgentsConfig,
        files: PathBuf,
    ) -> Agents {
        Agents {
            inner: Arc::new(Inner {
                store,
                clock,
                secrets,
                config,
                queued: Notify::new(),
                watched: Mutex::new(HashMap::new()),
                contacts: Mutex::new(HashMap::new()),
                files,
            }),
        }
    }

    /// Wakes the dispatcher following job `id`, if it is in this process.
    fn ring(&self, id: i64) {
        if let Some(bell) = self.inner.watched.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            bell.notify_one();
        }
    }

    /// Wakes every dispatcher in this process.
    fn ring_all(&self) {
        for bell in self.inner.watched.lock().unwrap_or_else(|e| e.into_inner()).values() {
            bell.notify_one();
        }
    }

    /// Whether this agent's contact is due to be written (and, if so, notes it as written).
    fn contact_due(&self, agent: &str) -> bool {
        let now = tokio::time::Instant::now();
        let mut contacts = self.inner.contacts.lock().unwrap_or_else(|e| e.into_inner());
        match contacts.get(agent) {
            Some(last) if now.duration_since(*last) < CONTACT_EVERY => false,
            _ => {
                contacts.insert(agent.to_owned(), now);
                true
            }
        }
    }

    /// Listens for what other replicas do to the queue (PostgreSQL's `LISTEN`): a job queued
    /// elsewhere wakes this replica's long polls at once, a job changed through another replica
    /// wakes its dispatcher here. Polling stays the fallback. Call from async code once.
    pub async fn listen(&self) {
        let inner = Arc::downgrade(&self.inner);
        let wake: mobius_store::Listener = Box::new(move |payload: &str| {
            let Some(inner) = inner.upgrade() else { return false };
            let agents = Agents { inner };
            match payload {
                "queued" => agents.inner.queued.notify_waiters(),
                "jobs" => agents.ring_all(),
                other => {
                    if let Some(id) = other.strip_prefix("job:").and_then(|id| id.parse().ok()) {
                        agents.ring(id);
                    }
                }
            }
            true
        });
        match self.store(move |s| s.listen(AGENT_JOBS_CHANNEL, wake)).await {
            Ok(true) => tracing::debug!("listening for the agent queue's changes"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot listen for the agent queue's changes; polling only"),
        }
    }

    pub fn config(&self) -> &AgentsConfig {
        &self.inner.config
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn later(&self, by: Duration) -> Timestamp {
        self.now() + jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX)
    }

    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || f(store.as_ref())).await
    }

    /// The dispatcher one run's engine uses; `source` is the run's checkout, when it has one.
    pub fn for_run(&self, run: i64, source: Option<PathBuf>) -> Arc<dyn JobDispatch> {
        Arc::new(RunDispatch { agents: self.clone(), run, source })
    }

    /// `POST /api/v1/agent/jobs/request?max=N`: up to `max` (at most [`MAX_CLAIM`]) of the
    /// oldest queued jobs this agent has the labels for, claimed in one transaction, waiting up
    /// to `wait` (at most [`AgentsConfig::max_wait`]) for one; empty after that.
    pub async fn request(
        &self,
        hello: Hello,
        token: &str,
        wait: Duration,
        max: usize,
    ) -> Result<Vec<Claimed>, AgentError> {
        let mut hello = checked(hello)?;
        hello.id = bound(token, &hello.id);
        let max = max.clamp(1, MAX_CLAIM);
        let deadline = tokio::time::Instant::now() + wait.min(self.inner.config.max_wait);
        let record = AgentRecord {
            id: hello.id.clone(),
            name: hello.name.clone(),
            labels: hello.labels.clone(),
            token: token.to_owned(),
            first_contact: self.now(),
            last_contact: self.now(),
        };
        if self.contact_due(&hello.id) {
            self.store(move |s| s.record_agent(&record)).await?;
        }
        loop {
            // Registered before the claim, so a job queued in between wakes this poll.
            let queued = self.inner.queued.notified();
            let (agent, token, labels) = (hello.id.clone(), token.to_owned(), hello.labels.clone());
            let (now, until) = (self.now(), self.later(self.inner.config.lease));
            let jobs = self.store(move |s| s.claim_agent_jobs(&agent, &token, &labels, now, until, max)).await?;
            let mut claimed = Vec::with_capacity(jobs.len());
            for job in jobs {
                match self.open(&job) {
                    Ok(sealed) => {
                        self.ring(job.id);
                        claimed.push(Claimed {
                            id: job.id,
                            run: job.run,
                            job: sealed.job,
                            source: sealed.source,
                            history: sealed.history,
                            records: sealed.records,
                            lease_seconds: self.inner.config.lease.as_secs(),
                            renew_seconds: self.inner.config.renew.as_secs().max(1),
                        });
                    }
                    Err(why) => {
                        // The job cannot run anywhere: end it with the reason.
                        tracing::error!(job = job.id, run = job.run, error = %why, "an agent job's payload cannot be opened");
                        let (id, agent, result) = (job.id, hello.id.clone(), failure_result(&why));
                        let at = self.now();
                        self.store(move |s| s.finish_agent_job(id, &agent, &result, at)).await?;
                        self.ring(id);
                    }
                }
            }
            if !claimed.is_empty() {
                return Ok(claimed);
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                () = queued => {}
                () = tokio::time::sleep(CLAIM_EVERY) => {}
            }
        }
    }

    fn open(&self, job: &AgentJob) -> Result<Sealed, String> {
        let secrets = self.inner.secrets.as_ref().ok_or("the server has no secret key to open agent jobs with")?;
        let plain = secrets
            .open_document(&purpose(job.run, &job.job), &job.payload)
            .ok_or("the payload does not open with this server's key (replicas must share MOBIUS_SECRET_KEY)")?;
        serde_json::from_slice(&plain).map_err(|e| format!("the payload is not a job: {e}"))
    }

    /// `PUT /api/v1/agent/jobs/{id}/renew`: extends the lease; whether the job is to cancel.
    pub async fn renew(&self, id: i64, hello: Hello, token: &str) -> Result<bool, AgentError> {
        let mut hello = checked(hello)?;
        hello.id = bound(token, &hello.id);
        let record = AgentRecord {
            id: hello.id.clone(),
            name: hello.name,
            labels: hello.labels,
            token: token.to_owned(),
            first_contact: self.now(),
            last_contact: self.now(),
        };
        let until = self.later(self.inner.config.lease);
        let due = self.contact_due(&hello.id);
        let agent = hello.id;
        let renewal = self
            .store(move |s| {
                if due {
                    s.record_agent(&record)?;
                }
                s.renew_agent_job(id, &agent, until)
            })
            .await?;
        match renewal {
            Renewal::Held { cancel } => Ok(cancel),
            Renewal::NotHeld => Err(AgentError::NotHeld(id)),
        }
    }

    /// `POST /api/v1/agent/jobs/{id}/log?offset=N`: a chunk of the job's progress; the log's
    /// length after it.
    pub async fn append_log(&self, id: i64, agent: &str, offset: u64, data: Vec<u8>) -> Result<u64, AgentError> {
        if offset.saturating_add(data.len() as u64) > MAX_JOB_LOG {
            return Err(AgentError::LogTooLarge(id));
        }
        let agent = agent.to_owned();
        let appended = self.store(move |s| s.append_agent_log(id, &agent, offset, &data)).await?;
        match appended {
            LogAppend::Appended(length) => {
                self.ring(id);
                Ok(length)
            }
            LogAppend::Gap { expected } => Err(AgentError::Gap { id, expected }),
            LogAppend::NotHeld => Err(AgentError::NotHeld(id)),
        }
    }

    /// `PUT /api/v1/agent/jobs/{id}/finish`: the job's report; the job has ended.
    pub async fn finish(&self, id: i64, agent: &str, report: JobReport) -> Result<(), AgentError> {
        let result = serde_json::to_string(&report).map_err(|e| AgentError::BadReport(e.to_string()))?;
        let (agent, at) = (agent.to_owned(), self.now());
        if !self.store(move |s| s.finish_agent_job(id, &agent, &result, at)).await? {
            return Err(AgentError::NotHeld(id));
        }
        self.ring(id);
        Ok(())
    }

    /// `PUT /api/v1/agent/jobs/{id}/finish?offset=N`: the last chunk of the job's progress
    /// (for a short job, all of it) at byte `offset` and its report, stored in one
    /// transaction; the log's length. A gap is refused with the offset to resend from, and
    /// nothing changes.
    pub async fn finish_with_log(
        &self,
        id: i64,
        agent: &str,
        offset: u64,
        log: Vec<u8>,
        report: JobReport,
    ) -> Result<u64, AgentError> {
        if offset.saturating_add(log.len() as u64) > MAX_JOB_LOG {
            return Err(AgentError::LogTooLarge(id));
        }
        let result = serde_json::to_string(&report).map_err(|e| AgentError::BadReport(e.to_string()))?;
        let (agent, at) = (agent.to_owned(), self.now());
        let finished = self.store(move |s| s.finish_agent_job_with_log(id, &agent, offset, &log, &result, at)).await?;
        match finished {
            LogAppend::Appended(length) => {
                self.ring(id);
                Ok(length)
            }
            LogAppend::Gap { expected } => Err(AgentError::Gap { id, expected }),
            LogAppend::NotHeld => Err(AgentError::NotHeld(id)),
        }
    }

    /// Fails the jobs running under a revoked agent token, at once.
    pub async fn token_revoked(&self, token: &str) -> Result<Vec<i64>, StoreError> {
        let (token, at) = (token.to_owned(), self.now());
        let lost = self.store(move |s| s.lose_agent_jobs_of_token(&token, TOKEN_REVOKED, at)).await?;
        if !lost.is_empty() {
            self.ring_all();
        }
        Ok(lost)
    }

    /// `GET /api/v1/agents`: every agent recorded, with the job it runs.
    pub async fn list(&self) -> Result<Vec<AgentView>, StoreError> {
        let (agents, jobs) = self.store(|s| Ok((s.agents()?, s.active_agent_jobs()?))).await?;
        Ok(agents
            .into_iter()
            .map(|a| {
                let job = jobs
                    .iter()
                    .find(|j| j.state == AgentJobState::Running && j.agent.as_deref() == Some(a.id.as_str()))
                    .map(|j| AgentJobView { id: j.id, run: j.run, job: j.job.clone() });
                // The agent's own id, without the token it is bound to.
                let shown = a.id.split_once('/').map_or(a.id.as_str(), |(_, id)| id).to_owned();
                AgentView {
                    id: shown,
                    name: a.name,
                    labels: a.labels,
                    last_contact: a.last_contact,
                    first_contact: a.first_contact,
                    job,
                }
            })
            .collect())
    }

    /// Queued and running agent jobs, for `/metrics`: (queued, running).
    pub async fn queue_sizes(&self) -> Result<(usize, usize), StoreError> {
        let jobs = self.store(|s| s.active_agent_jobs()).await?;
        let queued = jobs.iter().filter(|j| j.state == AgentJobState::Queued).count();
        Ok((queued, jobs.len() - queued))
    }
}

/// The agent as the store knows it: its id under the token it calls with, so a caller with
/// another token cannot act for it even if it learns its id.
pub fn bound(token: &str, agent: &str) -> String {
    format!("{token}/{agent}")
}

/// Lowercase, sorted and deduplicated labels; the hello refused when a field is empty, too long
/// or not a plain word.
fn checked(mut hello: Hello) -> Result<Hello, AgentError> {
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '#'))
    };
    hello.labels =
        hello.labels.iter().map(|l| l.trim().to_ascii_lowercase()).collect::<BTreeSet<_>>().into_iter().collect();
    if !word(&hello.id) || !word(&hello.name) || hello.labels.len() > 50 || !hello.labels.iter().all(|l| word(l)) {
        return Err(AgentError::BadHello);
    }
    Ok(hello)
}

/// A stored result saying the job could not run, which the dispatcher turns into a failure.
fn failure_result(why: &str) -> String {
    serde_json::json!({ "error": why }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_hosted_goes_to_agents_and_local_labels_are_configurable() {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let any = AgentsConfig::default();
        assert!(any.routes(&labels(&["self-hosted", "gpu"])));
        assert!(!any.routes(&labels(&["ubuntu-latest"])));
        assert!(!any.routes(&labels(&[])));
        let local = AgentsConfig {
            local_labels: Some(["ubuntu-latest", "linux"].into_iter().map(String::from).collect()),
            ..AgentsConfig::default()
        };
        assert!(!local.routes(&labels(&["ubuntu-latest"])));
        assert!(local.routes(&labels(&["linux", "gpu"])));
        assert!(local.routes(&labels(&["self-hosted", "linux"])));
    }

    #[test]
    fn a_hello_is_normalised_or_refused() {
        let hello = |id: &str, labels: &[&str]| Hello {
            id: id.into(),
            name: "build-1".into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
        };
        let ok = checked(hello("build-1#ab12", &["GPU", "linux", "gpu"])).unwrap();
        assert_eq!(ok.labels, ["gpu", "linux"]);
        assert!(matches!(checked(hello("", &[])), Err(AgentError::BadHello)));
        assert!(matches!(checked(hello("a b", &[])), Err(AgentError::BadHello)));
        assert!(matches!(checked(hello("a", &["x/y"])), Err(AgentError::BadHello)));
    }

    #[test]
    fn progress_lines_round_trip() {
        let line = LogLine {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1234),
            stream: Stream::Stdout,
            text: "hi".into(),
        };
        let p = Progress::log("Run make", &line);
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(text, r#"{"t":"log","step":"Run make","at_ms":1234,"stderr":false,"text":"hi"}"#);
        assert_eq!(serde_json::from_str::<Progress>(&text).unwrap(), p);
    }
}
