//! `mobius agent`: runs pipeline jobs for a server, on this machine (GitLab's runners and
//! GitHub's self-hosted runners: it dials out, the server never dials in).
//!
//! One poller long-polls `POST /api/v1/agent/jobs/request?max=N` with the agent's labels,
//! asking for as many jobs as it has free slots (`--jobs`), which the server claims in one
//! transaction; each job it gets runs with the same engine as the server's (`engine::run_job`)
//! in a directory of its own under `--work-dir`, its workspace unpacked from the server's tar
//! when it checks out, and the push range's history indexed into a bare repository when it
//! scans one. While it runs, a renewer keeps the job's lease (and learns of a cancel), and a
//! shipper sends its progress — steps and log lines, NDJSON — at byte offsets, resending from
//! where the server says after a network blip. The report carries the log's last chunk (a
//! short job's whole log), so a short job is two calls: its claim and its finish. A token the
//! server refuses stops the agent.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mobius_pipelines::engine::{self, JobReport, RunObserver, RunOptions, StepReport};
use mobius_pipelines::exec::{CancellationSignal, LogLine};
use mobius_pipelines::remote::{ActionCache, DEFAULT_ACTIONS_URL};
use mobius_pipelines::store_sync::{self, Received, Record, RecordScope};
use mobius_runs::agents::{Hello, Progress};
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::cli::{AgentArgs, AgentCommand, Remote};
use crate::output::{print_json, print_table};

/// How long a poll for a job waits on the server.
const POLL_WAIT: Duration = Duration::from_secs(50);

/// How often progress goes to the server while a job runs.
const SHIP_EVERY: Duration = Duration::from_millis(250);

/// At most this much progress in one request.
const CHUNK: usize = 256 << 10;

pub async fn run(json: bool, args: AgentArgs) -> Result<ExitCode> {
    match args.command {
        Some(AgentCommand::List { remote }) => list(json, &remote).await,
        None => serve(args).await,
    }
}

async fn list(json: bool, remote: &Remote) -> Result<ExitCode> {
    let Some(client) = crate::client::Client::from(remote)? else {
        bail!("`mobius agent list` asks a server: give --server URL (or MOBIUS_SERVER) and a token");
    };
    #[derive(Deserialize, serde::Serialize)]
    struct Listed {
        agents: Vec<serde_json::Value>,
    }
    let listed: Listed = client.json(client.request(reqwest::Method::GET, "/api/v1/agents")).await?;
    if json {
        return print_json(&listed).map(|()| ExitCode::SUCCESS);
    }
    if listed.agents.is_empty() {
        println!("no agent has called this server yet");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 4]> = listed
        .agents
        .iter()
        .map(|agent| {
            let text = |key: &str| agent.get(key).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let labels: Vec<&str> = agent
                .get("labels")
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str())
                .collect();
            let job = agent.get("job").map_or_else(
                || "idle".to_owned(),
                |j| format!("run {} · {}", j["run"], j["job"].as_str().unwrap_or("")),
            );
            [text("id"), labels.join(","), text("last_contact"), job]
        })
        .collect();
    print_table(0, ["AGENT", "LABELS", "LAST CONTACT", "JOB"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// What every worker shares.
struct Agent {
    base: String,
    token: String,
    http: reqwest::Client,
    hello: Hello,
    work_dir: PathBuf,
    actions: ActionCache,
}

/// A job as the server hands it over.
#[derive(Deserialize)]
struct Claimed {
    id: i64,
    run: i64,
    job: engine::RemoteJob,
    source: bool,
    #[serde(default)]
    history: bool,
    /// The records the job may read; a server that does not send them is asked (`None`).
    #[serde(default)]
    records: Option<Vec<Record>>,
    renew_seconds: u64,
}

/// The server's answer to a request with `max`.
#[derive(Deserialize)]
struct ClaimedJobs {
    jobs: Vec<Claimed>,
}

async fn serve(args: AgentArgs) -> Result<ExitCode> {
    let server = args.server.context("give the server's URL with --server URL (or MOBIUS_SERVER)")?;
    let token = args.token.context("give an `agent` token with --token (or MOBIUS_AGENT_TOKEN)")?;
    let name = args.name.unwrap_or_else(host_name);
    let mut labels = vec!["self-hosted".to_owned(), std::env::consts::OS.to_owned(), arch().to_owned()];
    labels.extend(args.labels.iter().flat_map(|l| l.split(',')).map(|l| l.trim().to_ascii_lowercase()));
    labels.retain(|l| !l.is_empty());
    labels.sort();
    labels.dedup();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let hello = Hello { id: format!("{name}#{suffix}"), name, labels };
    let work_dir = match args.work_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("mobius-agent-{}", hello.name)),
    };
    std::fs::create_dir_all(&work_dir).with_context(|| format!("cannot create {}", work_dir.display()))?;
    let work_dir = std::path::absolute(&work_dir)?;
    let http = reqwest::Client::builder()
        .user_agent(concat!("mobius-agent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let actions = ActionCache::new(work_dir.join("actions"), DEFAULT_ACTIONS_URL);
    let agent =
        Arc::new(Agent { base: server.trim_end_matches('/').to_owned(), token, http, hello, work_dir, actions });
    eprintln!(
        "mobius agent {} polling {} with labels [{}], {} job(s) at a time, in {}",
        agent.hello.id,
        agent.base,
        agent.hello.labels.join(", "),
        args.jobs.max(1),
        agent.work_dir.display()
    );
    let slots = Arc::new(tokio::sync::Semaphore::new(args.jobs.max(1)));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopping: jobs running now are left to their lease");
            Ok(ExitCode::SUCCESS)
        }
        ended = work(agent.clone(), slots) => {
            // The poller ends only when the server refuses the agent.
            ended?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    if name.is_empty() { "agent".to_owned() } else { name }
}

/// GitHub's words for the machine's architecture.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The poller: waits for a free slot, asks for as many jobs as there are free slots, runs each
/// on a task of its own holding a slot, forever — until the server refuses the token.
async fn work(agent: Arc<Agent>, slots: Arc<tokio::sync::Semaphore>) -> Result<()> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let first = slots.clone().acquire_owned().await.context("the agent's slots closed")?;
        let mut free = vec![first];
        while let Ok(more) = slots.clone().try_acquire_owned() {
            free.push(more);
        }
        let url = format!("{}/api/v1/agent/jobs/request?wait={}&max={}", agent.base, POLL_WAIT.as_secs(), free.len());
        let sent = agent
            .http
            .post(url)
            .bearer_auth(&agent.token)
            .json(&agent.hello)
            .timeout(POLL_WAIT + Duration::from_secs(15))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                eprintln!("cannot reach {}: {e}; trying again in {}s", agent.base, backoff.as_secs());
                drop(free);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        match response.status() {
            StatusCode::NO_CONTENT => continue,
            StatusCode::CREATED => {
                let claimed: ClaimedJobs =
                    response.json().await.context("the server's jobs are not ones this agent knows")?;
                for job in claimed.jobs {
                    // The server gives at most `max`; a job past the free slots waits for one.
                    let slot = match free.pop() {
                        Some(slot) => slot,
                        None => slots.clone().acquire_owned().await.context("the agent's slots closed")?,
                    };
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        run_claimed(&agent, job).await;
                        drop(slot);
                    });
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let text = response.text().await.unwrap_or_default();
                bail!("the server refused this agent's token: {}", text.trim());
            }
            status => {
                let text = response.text().await.unwrap_or_default();
                eprintln!("the server answered {status} to a poll: {}", text.trim());
                drop(free);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Runs one job to its end and reports it; failures to talk to the server are logged (the
/// server fails the job when its lease lapses).
async fn run_claimed(agent: &Arc<Agent>, claimed: Claimed) {
    let (id, run) = (claimed.id, claimed.run);
    eprintln!("run {run}: job `{}` (agent job {id}) started", claimed.job.name);
    let dir = agent.work_dir.join(format!("job-{id}"));
    let log = Arc::new(Shipped::default());
    let cancel = CancellationSignal::new();
    let renewer = tokio::spawn(renew(
        agent.clone(),
        id,
        Duration::from_secs(claimed.renew_seconds.max(1)),
        cancel.clone(),
        log.clone(),
    ));
    let shipper = tokio::spawn(ship(agent.clone(), id, log.clone()));
    let store = agent.work_dir.join("store");
    let say =
        |step: &str, text: String| log.push(&Progress::Log { step: step.into(), at_ms: now_ms(), stderr: true, text });
    let report = match prepare(agent, &claimed, &dir).await {
        Ok((source, history, given)) => {
            let mut opts = RunOptions::new(source, dir.join("work"));
            opts.history = history;
            opts.store_dir = Some(store.clone());
            opts.cancel = cancel.clone();
            opts.actions = Some(agent.actions.clone());
            let mut observer = Observer { log: log.clone() };
            match engine::run_job(&claimed.job, opts, &mut observer).await {
                Ok(mut report) => {
                    // What the job uploaded and saved goes to the server before the job ends.
                    if let Err(e) = sync_up(agent, id, &store, &claimed.job, &given).await {
                        say("Complete job", format!("cannot send the job's artifacts and caches to the server: {e:#}"));
                        report.result = engine::Status::Failure;
                    }
                    report
                }
                Err(e) => {
                    say("Set up job", e.to_string());
                    JobReport::failed(&claimed.job)
                }
            }
        }
        Err(e) => {
            say("Set up job", format!("{e:#}"));
            JobReport::failed(&claimed.job)
        }
    };
    log.close();
    let _ = shipper.await;
    let result = report.result;
    if !log.lost()
        && let Err(e) = finish(agent, id, &report, &log).await
    {
        eprintln!("run {run}: cannot report job {id}: {e:#}");
    }
    renewer.abort();
    eprintln!("run {run}: job `{}` (agent job {id}) ended: {}", claimed.job.name, result.as_str());
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("cannot clean {}: {e}", dir.display());
    }
}

/// The job's directory and its workspace source (unpacked from the server when it has one),
/// the push range's history (when the job scans one), with the server's artifacts and caches
/// the job may read brought into the agent's store.
async fn prepare(agent: &Agent, claimed: &Claimed, dir: &Path) -> Result<(PathBuf, Option<PathBuf>, Vec<Record>)> {
    let source = unpack_source(agent, claimed, dir).await?;
    let history = match claimed.history {
        true => Some(fetch_history(agent, claimed.id, dir).await?),
        false => None,
    };
    let given = sync_down(agent, claimed, &agent.work_dir.join("store")).await?;
    Ok((source, history, given))
}

/// The objects of the push range the job scans, indexed into `dir/history.git`.
async fn fetch_history(agent: &Agent, id: i64, dir: &Path) -> Result<PathBuf> {
    let what = "cannot fetch the push range's history";
    let response =
        agent.http.get(job_url(agent, id, "history")).bearer_auth(&agent.token).send().await.context(what)?;
    let pack = checked(response, what).await?.bytes().await.context(what)?;
    let repo = dir.join("history.git");
    let dest = repo.clone();
    mobius_log::blocking::spawn(move || engine::history::unpack_range(&pack, &dest))
        .await
        .context("cannot unpack the push range's history")?;
    Ok(repo)
}

/// `?agent=ID` for the job's calls.
fn job_url(agent: &Agent, id: i64, path: &str) -> String {
    format!("{}/api/v1/agent/jobs/{id}/{path}?agent={}", agent.base, encode(&agent.hello.id))
}

async fn checked(response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    bail!("{what}: the server answered {status}: {}", text.trim())
}

/// Before the job: the records it may read (sent with the job, else asked for), and the blobs
/// they name that this store lacks.
async fn sync_down(agent: &Agent, claimed: &Claimed, store: &Path) -> Result<Vec<Record>> {
    let (id, job) = (claimed.id, &claimed.job);
    let what = "cannot fetch the run's artifacts and caches";
    let given: Vec<Record> = match &claimed.records {
        Some(records) => records.clone(),
        None => {
            let response =
                agent.http.get(job_url(agent, id, "records")).bearer_auth(&agent.token).send().await.context(what)?;
            checked(response, what).await?.json().await.context(what)?
        }
    };
    if given.is_empty() {
        return Ok(given);
    }
    let wanted = store_sync::referenced_blobs(&given)?;
    let store_dir = store.to_owned();
    let missing = mobius_log::blocking::spawn(move || store_sync::missing_blobs(&store_dir, &wanted)).await?;
    for digest in missing {
        let url = job_url(agent, id, &format!("blobs/{digest}"));
        let response = agent.http.get(url).bearer_auth(&agent.token).send().await.context(what)?;
        let bytes = checked(response, what).await?.bytes().await.context(what)?;
        let store_dir = store.to_owned();
        mobius_log::blocking::spawn(move || store_sync::write_blob(&store_dir, &digest, &bytes)).await?;
    }
    let (store_dir, scope, records) = (store.to_owned(), RecordScope::of(job), given.clone());
    mobius_log::blocking::spawn(move || store_sync::write_records(&store_dir, &scope, Received::FromServer, &records))
        .await?;
    Ok(given)
}

/// After the job: the records it made, their blobs first.
async fn sync_up(agent: &Agent, id: i64, store: &Path, job: &engine::RemoteJob, given: &[Record]) -> Result<()> {
    let (store_dir, scope) = (store.to_owned(), RecordScope::of(job));
    let now = mobius_log::blocking::spawn(move || store_sync::list_records(&store_dir, &scope)).await?;
    let made = store_sync::new_records(given, &now);
    if made.is_empty() {
        return Ok(());
    }
    let digests: Vec<String> = store_sync::referenced_blobs(&made)?.into_iter().collect();
    let response =
        agent.http.post(job_url(agent, id, "blobs/missing")).bearer_auth(&agent.token).json(&digests).send().await?;
    let missing: Vec<String> = checked(response, "cannot compare blobs").await?.json().await?;
    for digest in missing {
        let (store_dir, name) = (store.to_owned(), digest.clone());
        let bytes = mobius_log::blocking::spawn(move || store_sync::read_blob(&store_dir, &name)).await?;
        let url = job_url(agent, id, &format!("blobs/{digest}"));
        let response = agent.http.put(url).bearer_auth(&agent.token).body(bytes).send().await?;
        checked(response, "cannot upload a blob").await?;
    }
    let response = agent.http.post(job_url(agent, id, "records")).bearer_auth(&agent.token).json(&made).send().await?;
    checked(response, "cannot send the records").await?;
    Ok(())
}

async fn unpack_source(agent: &Agent, claimed: &Claimed, dir: &Path) -> Result<PathBuf> {
    let source = dir.join("source");
    std::fs::create_dir_all(&source).with_context(|| format!("cannot create {}", source.display()))?;
    std::fs::create_dir_all(dir.join("work"))?;
    if claimed.source {
        let url = job_url(agent, claimed.id, "source");
        let response =
            agent.http.get(url).bearer_auth(&agent.token).send().await.context("cannot fetch the workspace")?;
        if !response.status().is_success() {
            bail!("the server did not give the workspace: {}", response.status());
        }
        let tar = response.bytes().await.context("cannot fetch the workspace")?;
        let dest = source.clone();
        mobius_log::blocking::spawn(move || mobius_pipelines::archive::unpack(&tar[..], &dest))
            .await
            .context("cannot unpack the workspace")?;
    }
    Ok(source)
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The job's progress as NDJSON: what was written, how much the server has, and whether the
/// job ended here or was lost there.
#[derive(Default)]
struct Shipped {
    state: Mutex<ShipState>,
    wake: Notify,
}

#[derive(Default)]
struct ShipState {
    bytes: Vec<u8>,
    acked: usize,
    closed: bool,
    lost: bool,
}

impl Shipped {
    fn push(&self, progress: &Progress) {
        let mut line = serde_json::to_vec(progress).unwrap_or_default();
        line.push(b'\n');
        self.lock().bytes.extend_from_slice(&line);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ShipState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    fn lose(&self) {
        self.lock().lost = true;
        self.wake.notify_one();
    }

    fn lost(&self) -> bool {
        self.lock().lost
    }
}

/// Hands the engine's reports to the shipper.
struct Observer {
    log: Arc<Shipped>,
}

impl RunObserver for Observer {
    fn step_started(&mut self, _job: &str, step: &str) {
        self.log.push(&Progress::StepStarted { step: step.to_owned() });
    }

    fn step_finished(&mut self, _job: &str, step: &StepReport) {
        self.log.push(&Progress::StepFinished { step: step.clone() });
    }

    fn log_line(&mut self, _job: &str, step: &str, line: &LogLine) {
        self.log.push(&Progress::log(step, line));
    }
}

/// Sends progress at byte offsets until the job closed and everything is acknowledged, or the
/// server says the job is not this agent's any more.
async fn ship(agent: Arc<Agent>, id: i64, log: Arc<Shipped>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let (chunk, offset, done) = {
            let state = log.lock();
            if state.lost {
                return;
            }
            let end = state.bytes.len().min(state.acked + CHUNK);
            // Once the job ended, a last chunk of at most CHUNK goes with the report.
            (
                state.bytes[state.acked..end].to_vec(),
                state.acked,
                state.closed && state.bytes.len() - state.acked <= CHUNK,
            )
        };
        if done {
            return;
        }
        if chunk.is_empty() {
            tokio::select! {
                () = log.wake.notified() => {}
                () = tokio::time::sleep(SHIP_EVERY) => {}
            }
            continue;
        }
        let url =
            format!("{}/api/v1/agent/jobs/{id}/log?agent={}&offset={offset}", agent.base, encode(&agent.hello.id));
        let sent =
            agent.http.post(url).bearer_auth(&agent.token).body(chunk).timeout(Duration::from_secs(30)).send().await;
        match sent {
            Ok(response) if response.status().is_success() => {
                backoff = Duration::from_millis(250);
                #[derive(Deserialize)]
                struct Length {
                    length: u64,
                }
                if let Ok(Length { length }) = response.json().await {
                    let mut state = log.lock();
                    state.acked = (length as usize).min(state.bytes.len());
                }
            }
            Ok(response) if response.status() == StatusCode::CONFLICT => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                match body.get("expected").and_then(|e| e.as_u64()) {
                    // The server has a different length than this side thought: go on from it.
                    Some(expected) => {
                        let mut state = log.lock();
                        state.acked = (expected as usize).min(state.bytes.len());
                    }
                    None => {
                        eprintln!("agent job {id}: the server says this agent no longer holds the job");
                        log.lose();
                        return;
                    }
                }
            }
            Ok(response) => {
                eprintln!("agent job {id}: the server refused progress: {}", response.status());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                eprintln!("agent job {id}: cannot send progress ({e}); resending");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Renews the job's lease every `every`; a cancel in the answer cancels the job, a 409 means
/// the server gave the job up (lost or ended): the job stops here too.
async fn renew(agent: Arc<Agent>, id: i64, every: Duration, cancel: CancellationSignal, log: Arc<Shipped>) {
    loop {
        tokio::time::sleep(every).await;
        let url = format!("{}/api/v1/agent/jobs/{id}/renew", agent.base);
        let sent = agent
            .http
            .put(url)
            .bearer_auth(&agent.token)
            .json(&agent.hello)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if body.get("cancel").and_then(|c| c.as_bool()) == Some(true) && !cancel.is_cancelled() {
                    eprintln!("agent job {id}: cancelled by the server");
                    cancel.cancel();
                }
            }
            Ok(response)
                if matches!(
                    response.status(),
                    StatusCode::CONFLICT | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ) =>
            {
                eprintln!("agent job {id}: the server gave the job up ({}); stopping it", response.status());
                log.lose();
                cancel.cancel();
                return;
            }
            Ok(response) => eprintln!("agent job {id}: renewal answered {}", response.status()),
            Err(e) => eprintln!("agent job {id}: cannot renew ({e}); trying again"),
        }
    }
}

/// Sends the job's report with the log's last chunk (what the shipper left), trying again for
/// a while when the server cannot be reached; a gap resends from where the server says.
async fn finish(agent: &Agent, id: i64, report: &JobReport, log: &Shipped) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Finish<'a> {
        report: &'a JobReport,
        log: &'a str,
    }
    let mut last = None;
    let mut wait = false;
    for attempt in 0..10u32 {
        if wait {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt).min(5))).await;
        }
        wait = true;
        let (offset, tail) = {
            let state = log.lock();
            (state.acked, state.bytes[state.acked..].to_vec())
        };
        // Progress is JSON lines: text.
        let tail = String::from_utf8(tail).context("the job's progress is not UTF-8")?;
        let url =
            format!("{}/api/v1/agent/jobs/{id}/finish?agent={}&offset={offset}", agent.base, encode(&agent.hello.id));
        let body = Finish { report, log: &tail };
        match agent.http.put(&url).bearer_auth(&agent.token).json(&body).timeout(Duration::from_secs(30)).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status() == StatusCode::CONFLICT => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                match body.get("expected").and_then(|e| e.as_u64()) {
                    // The server holds a different length: resend from it, at once.
                    Some(expected) if (expected as usize) <= log.lock().bytes.len() => {
                        log.lock().acked = expected as usize;
                        wait = false;
                    }
                    _ => bail!("the server refused the report (409): {}", body["message"].as_str().unwrap_or("")),
                }
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                bail!("the server refused the report ({status}): {}", text.trim());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("cannot send the report"), anyhow::Error::from))
}
