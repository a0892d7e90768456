//! A run's page: its facts, jobs and steps with their states and durations, its log (masked
//! as stored), and — for a `run` (or `admin`) token — cancel or re-run, each checked again
//! here and carrying the session's CSRF token.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use mobius_runs::RunError;
use mobius_runs::graph::{self, JobNode};
use mobius_runs::logs::{self, RunLogLine};
use mobius_store::{RunDetail, TokenScope};

use crate::Console;
use crate::pages::CsrfForm;
use crate::view::ActionForm;
use crate::view::{Who, authorize, failed, html, not_found, viewer};

/// The most log lines a run's page shows (the last ones).
const MAX_LOG_LINES: usize = 2000;

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage<'a> {
    css: &'a str,
    icon: &'a str,
    script: &'a str,
    signed_in: Option<Who>,
    id: i64,
    state: &'static str,
    workflow: String,
    workflow_file: String,
    event: String,
    fork: bool,
    repository: String,
    branch: String,
    sha: String,
    attempt: u32,
    reason: String,
    /// Queued or running: the page refreshes itself, and offers cancel rather than re-run.
    live: bool,
    /// Ended in failure: its failed jobs can run again alone.
    failed: bool,
    can_run: bool,
    csrf: String,
    jobs: Vec<JobRow>,
    /// The job graph, stage by stage (the jobs each stage's jobs need are in earlier ones).
    stages: Vec<Vec<JobCard>>,
    log: Vec<RunLogLine>,
    truncated: bool,
    /// The last log line shown: a live page follows from there.
    last_seq: u64,
}

struct JobRow {
    name: String,
    state: &'static str,
    duration: String,
    steps: Vec<StepRow>,
}

/// The workflow's job graph, when its file could be read at the run's commit.
type Graph = Option<Vec<JobNode>>;

/// A job of the workflow in the graph: what it needs and how each of its instances went.
struct JobCard {
    label: String,
    needs: String,
    instances: Vec<InstanceRow>,
}

struct InstanceRow {
    name: String,
    state: &'static str,
    duration: String,
}

/// The run's jobs in stages: each workflow job in its stage with its instances (a job that
/// has not started shows as `pending`); an instance no job's label predicts, or every job when
/// the workflow could not be read, in a last stage of its own.
fn stages(graph: Option<&[JobNode]>, detail: &RunDetail) -> Vec<Vec<JobCard>> {
    let nodes = graph.unwrap_or(&[]);
    let mut cards: Vec<JobCard> = nodes
        .iter()
        .map(|node| JobCard { label: node.label.clone(), needs: node.needs.join(", "), instances: Vec::new() })
        .collect();
    let mut unmatched = Vec::new();
    for job in &detail.jobs {
        let row = InstanceRow {
            name: job.name.clone(),
            state: job.state.as_str(),
            duration: duration(job.started_at, job.finished_at),
        };
        match graph::node_of(nodes, &job.name) {
            Some(i) => cards[i].instances.push(row),
            None => unmatched.push(row),
        }
    }
    let depth = nodes.iter().map(|n| n.stage + 1).max().unwrap_or(0);
    let mut stages: Vec<Vec<JobCard>> = (0..depth).map(|_| Vec::new()).collect();
    for (node, mut card) in nodes.iter().zip(cards) {
        if card.instances.is_empty() {
            card.instances.push(InstanceRow { name: card.label.clone(), state: "pending", duration: String::new() });
        }
        stages[node.stage].push(card);
    }
    if !unmatched.is_empty() {
        stages.push(
            unmatched
                .into_iter()
                .map(|row| JobCard { label: row.name.clone(), needs: String::new(), instances: vec![row] })
                .collect(),
        );
    }
    stages
}

struct StepRow {
    name: String,
    state: &'static str,
    duration: String,
}

/// `12s`, `3m 20s`, or nothing when it never started; still running counts up to now.
fn duration(started: Option<Timestamp>, finished: Option<Timestamp>) -> String {
    let Some(started) = started else { return String::new() };
    let end = finished.unwrap_or_else(Timestamp::now);
    crate::view::span(end.duration_since(started).as_secs_f64())
}

/// The run id in `/runs/{id}…` (read from the path itself: the server's router matched it).
fn run_id(uri: &Uri) -> Option<i64> {
    uri.path().strip_prefix("/runs/")?.split('/').next()?.parse().ok()
}

/// `GET /runs/{id}`.
pub(crate) async fn page(State(console): State<Console>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = match viewer(&console, &headers, &uri).await {
        Ok(viewer) => viewer,
        Err(to_login) => return to_login,
    };
    let Some(id) = run_id(&uri) else { return not_found(&console, viewer.who(), "No such run.") };
    let store = console.app.store.clone();
    let runner = console.app.runs.clone();
    let path = console.app.runs.log_path(id);
    let read = mobius_log::blocking::spawn(move || -> Result<Option<(RunDetail, Vec<RunLogLine>, Graph)>, String> {
        let Some(detail) = store.run(id).map_err(|e| e.to_string())? else { return Ok(None) };
        let lines = logs::read_after(&path, 0).map_err(|e| e.to_string())?;
        let run = &detail.record.run;
        // The graph is the page's drawing, not its facts: without it the jobs are listed.
        let graph = runner.workflow_graph(&run.repository, &run.sha, &run.workflow_file).unwrap_or_else(|error| {
            tracing::warn!(run = id, error = %error, "cannot read a run's workflow for its job graph");
            None
        });
        Ok(Some((detail, lines, graph)))
    })
    .await;
    let (detail, mut log, graph) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(&console, viewer.who(), &format!("No run {id}.")),
        Err(error) => return failed("read the run", &error),
    };
    let truncated = log.len() > MAX_LOG_LINES;
    if truncated {
        log.drain(..log.len() - MAX_LOG_LINES);
    }
    let record = &detail.record;
    let jobs = detail
        .jobs
        .iter()
        .map(|job| JobRow {
            name: job.name.clone(),
            state: job.state.as_str(),
            duration: duration(job.started_at, job.finished_at),
            steps: job
                .steps
                .iter()
                .map(|step| StepRow {
                    name: step.name.clone(),
                    state: step.state.as_str(),
                    duration: duration(step.started_at, step.finished_at),
                })
                .collect(),
        })
        .collect();
    let stages = stages(graph.as_deref(), &detail);
    let last_seq = log.last().map_or(0, |line| line.seq);
    let page = RunPage {
        css: console.asset("console"),
        icon: console.asset("favicon"),
        script: console.asset("run"),
        signed_in: viewer.who(),
        id,
        state: record.state.as_str(),
        workflow: record.run.workflow_name.clone(),
        workflow_file: record.run.workflow_file.clone(),
        event: record.run.event.clone(),
        fork: record.run.fork,
        repository: record.run.repository.clone(),
        branch: record.run.branch.clone().unwrap_or_default(),
        sha: record.run.sha.clone(),
        attempt: record.run.attempt,
        reason: record.reason.clone().unwrap_or_default(),
        live: !record.state.is_final(),
        failed: record.state == mobius_store::RunState::Failure,
        can_run: viewer.allows(TokenScope::Run),
        csrf: viewer.csrf().to_owned(),
        jobs,
        stages,
        log,
        truncated,
        last_seq,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct FollowParams {
    #[serde(default)]
    after: u64,
}

/// `GET /runs/{id}/log?after=N`: the run's log lines after `N` as server-sent events, live
/// while it runs (the API's follower), then an `end` event with its state.
pub(crate) async fn follow(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Query(params): axum::extract::Query<FollowParams>,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    if viewer(&console, &headers, &uri).await.is_err() {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    }
    let Some(id) = run_id(&uri) else { return (StatusCode::NOT_FOUND, "no such run").into_response() };
    let (lines, received) = tokio::sync::mpsc::channel::<RunLogLine>(256);
    let runner = console.app.runs.clone();
    let following = tokio::spawn(async move { runner.follow(id, params.after, lines).await });
    let events = futures_util::stream::unfold((received, Some(following)), |(mut received, following)| async move {
        if let Some(line) = received.recv().await {
            let data = serde_json::json!({ "seq": line.seq, "job": line.job, "step": line.step, "text": line.text });
            let event = Event::default().id(line.seq.to_string()).data(data.to_string());
            return Some((Ok::<_, std::convert::Infallible>(event), (received, following)));
        }
        let following = following?;
        let state = following.await.unwrap_or(None).map_or("unknown", |s| s.as_str());
        let end = Event::default().event("end").data(serde_json::json!({ "state": state }).to_string());
        Some((Ok(end), (received, None)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response()
}

/// What a run action asks of the runner.
enum Action {
    Cancel,
    /// Every job again, or (`true`) only the failed ones and what needs them.
    Rerun(bool),
}

/// A re-run's form: its CSRF token, and whether only the failed jobs run again.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RerunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    failed: bool,
}

/// `POST /runs/{id}/cancel`.
pub(crate) async fn cancel(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<CsrfForm>,
) -> Response {
    act(console, headers, uri, &form.csrf, Action::Cancel).await
}

/// `POST /runs/{id}/rerun` (every job again; with `failed=true`, the failed jobs).
pub(crate) async fn rerun(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: Uri,
    ActionForm(form): ActionForm<RerunForm>,
) -> Response {
    act(console, headers, uri, &form.csrf, Action::Rerun(form.failed)).await
}

/// A run action: the session, its scope and its CSRF token checked (in that order, before
/// anything changes), then the same runner call as the API's.
async fn act(console: Console, headers: HeaderMap, uri: Uri, csrf: &str, action: Action) -> Response {
    let what = match action {
        Action::Cancel => "cancelling a run",
        Action::Rerun(_) => "re-running a run",
    };
    let session = match authorize(&console, &headers, &uri, csrf, TokenScope::Run, what).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let Some(id) = run_id(&uri) else { return not_found(&console, Some(Who::of(&session)), "No such run.") };
    let runner = console.app.runs.clone();
    let by = session.token.name.clone();
    let done = match action {
        Action::Cancel => {
            mobius_log::blocking::spawn(move || runner.cancel(id, &format!("cancelled by {by} in the console")))
                .await
                .map(|()| id)
        }
        Action::Rerun(failed_only) => runner.rerun(id, failed_only).await,
    };
    match done {
        Ok(shown) => Redirect::to(&format!("/runs/{shown}")).into_response(),
        Err(RunError::NotFound(_)) => not_found(&console, Some(Who::of(&session)), &format!("No run {id}.")),
        Err(error @ (RunError::Ended { .. } | RunError::NotEnded { .. } | RunError::NothingFailed(_))) => {
            (StatusCode::CONFLICT, error.to_string()).into_response()
        }
        Err(error) => {
            tracing::error!(run = id, error = %error, "a console run action failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the action failed; see the server's log").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_id_is_read_from_the_path() {
        assert_eq!(run_id(&"/runs/42".parse().unwrap()), Some(42));
        assert_eq!(run_id(&"/runs/42/cancel".parse().unwrap()), Some(42));
        assert_eq!(run_id(&"/runs/x".parse().unwrap()), None);
        assert_eq!(duration(None, None), "");
    }
}
