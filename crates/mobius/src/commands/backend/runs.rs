//! Pipeline runs: listed, one with its jobs and steps, its log; and what only the server that
//! runs them does (cancel, re-run, look at a repository now).

use anyhow::{Context, Result};
use mobius_runs::logs::{self, RunLogLine};
use mobius_store::{RunDetail, RunQuery, RunRecord, RunState};
use reqwest::Method;
use serde_json::Value;

use super::{Answer, Local, Remote};

/// Pipeline runs, read.
pub trait Runs: Send + Sync {
    /// Runs, newest first.
    fn list<'a>(&'a self, list: &'a RunList) -> Answer<'a, Vec<RunRecord>>;

    /// One run with its jobs and steps; an unknown run is an error.
    fn show(&self, id: i64) -> Answer<'_, RunDetail>;

    /// A run's log lines numbered above `after`.
    fn log_after(&self, id: i64, after: u64) -> Answer<'_, Vec<RunLogLine>>;
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunList {
    pub repository: Option<String>,
    /// A [`RunState`] by name.
    pub state: Option<String>,
    /// At most this many.
    pub limit: u32,
}

impl Runs for Local {
    fn list<'a>(&'a self, list: &'a RunList) -> Answer<'a, Vec<RunRecord>> {
        let state = list.state.as_deref().and_then(RunState::parse);
        let query = RunQuery { repository: list.repository.clone(), state, limit: list.limit, ..RunQuery::default() };
        Box::pin(self.with_store(move |store| Ok(store.runs(&query)?)))
    }

    fn show(&self, id: i64) -> Answer<'_, RunDetail> {
        Box::pin(self.with_store(move |store| store.run(id)?.with_context(|| format!("no run {id}"))))
    }

    fn log_after(&self, id: i64, after: u64) -> Answer<'_, Vec<RunLogLine>> {
        let path = logs::path(&self.data_dir, id);
        Box::pin(async move { Ok(mobius_log::blocking::spawn(move || logs::read_after(&path, after)).await?) })
    }
}

impl Runs for Remote {
    fn list<'a>(&'a self, list: &'a RunList) -> Answer<'a, Vec<RunRecord>> {
        let mut query: Vec<(&str, String)> = vec![("limit", list.limit.to_string())];
        query.extend(list.repository.clone().map(|r| ("repository", r)));
        query.extend(list.state.clone().map(|s| ("state", s)));
        let request = self.client.request(Method::GET, "/api/v1/runs").query(&query);
        Box::pin(self.client.all(request, Some(list.limit as usize)))
    }

    fn show(&self, id: i64) -> Answer<'_, RunDetail> {
        Box::pin(self.client.json(self.client.request(Method::GET, &format!("/api/v1/runs/{id}"))))
    }

    fn log_after(&self, id: i64, after: u64) -> Answer<'_, Vec<RunLogLine>> {
        let request = self.client.request(Method::GET, &format!("/api/v1/runs/{id}/logs")).query(&[("after", after)]);
        Box::pin(async move {
            let text = self.client.text(request).await?;
            Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        })
    }
}

impl Remote {
    /// Cancels a queued or running run (a `run` token); answers `{"id", "cancelling"}`.
    pub async fn cancel_run(&self, id: i64) -> Result<Value> {
        self.client.json(self.client.request(Method::POST, &format!("/api/v1/runs/{id}/cancel"))).await
    }

    /// Approves or rejects a job waiting for its environment's review (a `deploy` token);
    /// answers `{"run", "job", "environment", "decision", "by"}`.
    pub async fn review(&self, id: i64, job: &str, approve: bool, comment: Option<&str>) -> Result<Value> {
        let action = if approve { "approve" } else { "reject" };
        let mut job_segment = String::new();
        for byte in job.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => job_segment.push(byte as char),
                other => job_segment.push_str(&format!("%{other:02X}")),
            }
        }
        let path = format!("/api/v1/runs/{id}/jobs/{job_segment}/{action}");
        let body = serde_json::json!({ "comment": comment });
        self.client.json(self.client.request(Method::POST, &path).json(&body)).await
    }

    /// Queues a manual run (`workflow_dispatch`; a `run` token); answers `{"id"}`.
    pub async fn start_run(&self, body: &Value) -> Result<Value> {
        self.client.json(self.client.request(Method::POST, "/api/v1/runs").json(body)).await
    }

    /// Queues a finished run again as a new attempt, all its jobs or the failed ones (a `run`
    /// token); answers `{"id", "rerun_of"}`.
    pub async fn rerun(&self, id: i64, failed: bool) -> Result<Value> {
        let request = self.client.request(Method::POST, &format!("/api/v1/runs/{id}/rerun"));
        self.client.json(request.query(&[("failed", failed)])).await
    }

    /// Asks the server to look at a registered repository's branches now (what git hooks
    /// do); answers `{"queued": [run ids]}`.
    pub async fn poll(&self, repository: &str) -> Result<Value> {
        let request = self.client.request(Method::POST, "/api/v1/poll").query(&[("repository", repository)]);
        self.client.json(request).await
    }
}
